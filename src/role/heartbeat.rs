//! Slurm's heartbeat file, StateSaveLocation/heartbeat: written by the
//! controller in control every min(SlurmctldTimeout/4, 30) s when two or
//! more controllers are configured. 16 bytes: big-endian u64 unix time,
//! then big-endian u64 index of the controller (0 = primary). Unchanged
//! from 22.05 to 26.05.

use std::io::ErrorKind;
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Heartbeat {
    pub time: i64,
    pub index: u32,
}

pub fn parse(bytes: &[u8]) -> Result<Heartbeat, String> {
    if bytes.len() < 16 {
        return Err(format!(
            "heartbeat file has {} bytes, expected 16",
            bytes.len()
        ));
    }
    let time = u64::from_be_bytes(bytes[0..8].try_into().expect("8 bytes"));
    let index = u64::from_be_bytes(bytes[8..16].try_into().expect("8 bytes"));
    if index > 1024 || time > i64::MAX as u64 {
        return Err(format!(
            "heartbeat file holds nonsense (time {time}, index {index})"
        ));
    }
    Ok(Heartbeat {
        time: time as i64,
        index: index as u32,
    })
}

/// Reads the heartbeat; `Ok(None)` when there is none (one controller, or
/// no controller ever took control). Unreadable is an error that says why.
pub fn read(state_save_location: &Path) -> Result<Option<Heartbeat>, String> {
    let path = state_save_location.join("heartbeat");
    match std::fs::read(&path) {
        Ok(bytes) => parse(&bytes).map(Some),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) if e.kind() == ErrorKind::PermissionDenied => Err(format!(
            "cannot read {}: permission denied (it is mode 0600: run the exporter as SlurmUser)",
            path.display()
        )),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_big_endian_time_and_index() {
        let mut b = Vec::new();
        b.extend_from_slice(&1_795_000_000u64.to_be_bytes());
        b.extend_from_slice(&1u64.to_be_bytes());
        assert_eq!(
            parse(&b).unwrap(),
            Heartbeat {
                time: 1_795_000_000,
                index: 1
            }
        );
        assert!(parse(&b[..10]).is_err());
        let mut bad = b.clone();
        bad[8..16].copy_from_slice(&u64::MAX.to_be_bytes());
        assert!(parse(&bad).is_err());
    }
}
