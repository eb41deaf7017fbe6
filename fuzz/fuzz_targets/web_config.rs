//! Any text as a --web.config.file: parsed and checked, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = slurm_ha_exporter::http::webconfig::parse(text, std::path::Path::new("/nonexistent"));
    }
});
