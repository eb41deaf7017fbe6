//! Any bytes a client may send before the blank line: the head parser and
//! what reads its headers (content negotiation, gzip, basic credentials).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    slurm_ha_exporter::http::fuzz_request(data);
});
