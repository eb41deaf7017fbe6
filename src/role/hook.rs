//! The record `slurm-ha-exporter hook primary-on|primary-off` writes when
//! slurmctld runs it as SlurmctldPrimaryOnProg / SlurmctldPrimaryOffProg:
//! it makes a switch visible at once instead of after the next heartbeat.
//! OffProg does not run on a crash, kill -9 or host loss, so the record is
//! a hint checked against the heartbeat and a ping, never the only source.

use crate::state::atomic;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookRecord {
    pub index: u32,
    pub on: bool,
    pub time: i64,
}

pub fn path(state_save_location: &Path) -> PathBuf {
    state_save_location.join("ha_exporter").join("role")
}

pub fn parse(text: &str) -> Result<HookRecord, String> {
    // "primary-on <index> <unix time>\n"
    let mut it = text.split_whitespace();
    let on = match it.next() {
        Some("primary-on") => true,
        Some("primary-off") => false,
        other => return Err(format!("bad hook record event {other:?}")),
    };
    let index = it
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or("bad hook record index")?;
    let time = it
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or("bad hook record time")?;
    Ok(HookRecord { index, on, time })
}

pub fn read(state_save_location: &Path) -> Option<HookRecord> {
    std::fs::read_to_string(path(state_save_location))
        .ok()
        .and_then(|t| parse(&t).ok())
}

pub fn write(state_save_location: &Path, rec: &HookRecord) -> Result<(), String> {
    let text = format!(
        "{} {} {}\n",
        if rec.on { "primary-on" } else { "primary-off" },
        rec.index,
        rec.time
    );
    atomic::replace(&path(state_save_location), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let dir = std::env::temp_dir().join(format!("hook-test-{}", std::process::id()));
        let rec = HookRecord {
            index: 1,
            on: true,
            time: 42,
        };
        write(&dir, &rec).unwrap();
        assert_eq!(read(&dir), Some(rec));
        assert!(parse("primary-sideways 1 2").is_err());
        assert!(parse("primary-on x 2").is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
