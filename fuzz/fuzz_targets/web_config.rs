//! Any text as a --web.config.file: parsed and checked, never a panic, a
//! hang or a blow-up (libFuzzer's -timeout and -rss_limit_mb catch those).
//! The files the seeds name exist, so the TLS checks past them run too.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("web-config-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("fuzz temp dir");
        for f in ["server.crt", "server.key", "ca.pem"] {
            std::fs::write(d.join(f), "x").expect("fuzz temp file");
        }
        d
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = slurm_ha_exporter::http::webconfig::parse(text, dir());
    }
});
