//! A small leveled logger: to stderr in logfmt or JSON (--log.format) in
//! the daemon, through slurmctld's own logger in plugin mode.

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug = 0,
    Info = 1,
    Warn = 2,
    Error = 3,
}

impl Level {
    pub fn parse(s: &str) -> Option<Level> {
        Some(match s {
            "debug" => Level::Debug,
            "info" => Level::Info,
            "warn" => Level::Warn,
            "error" => Level::Error,
            _ => return None,
        })
    }
    fn name(self) -> &'static str {
        ["debug", "info", "warn", "error"][self as usize]
    }
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);
static JSON: AtomicU8 = AtomicU8::new(0);
/// 1: lines go to slurmctld's log (plugin mode).
static TO_SLURMCTLD: AtomicU8 = AtomicU8::new(0);

/// Plugin mode: every line goes through slurmctld's logger, prefixed with
/// the plugin's name, so an admin finds it in SlurmctldLogFile.
pub fn to_slurmctld(on: bool) {
    TO_SLURMCTLD.store(on as u8, Ordering::Relaxed);
}

pub fn configure(level: Level, json: bool) {
    LEVEL.store(level as u8, Ordering::Relaxed);
    JSON.store(json as u8, Ordering::Relaxed);
}

pub fn enabled(level: Level) -> bool {
    level as u8 >= LEVEL.load(Ordering::Relaxed)
}

pub fn write(level: Level, msg: &str) {
    if !enabled(level) {
        return;
    }
    if TO_SLURMCTLD.load(Ordering::Relaxed) == 1 {
        use crate::slurm::host::{self, HostLevel};
        let l = match level {
            Level::Debug => HostLevel::Verbose,
            Level::Info | Level::Warn => HostLevel::Info,
            Level::Error => HostLevel::Error,
        };
        if host::log(l, &format!("job_submit/ha_exporter: {msg}")) {
            return;
        }
    }
    let ts = rfc3339(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default(),
    );
    let line = if JSON.load(Ordering::Relaxed) == 1 {
        format!(
            "{{\"ts\":\"{ts}\",\"level\":\"{}\",\"msg\":{}}}\n",
            level.name(),
            json_string(msg)
        )
    } else {
        format!("ts={ts} level={} msg={}\n", level.name(), json_string(msg))
    };
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// `2026-11-30T07:03:38.123Z`: RFC 3339 in UTC with milliseconds, as
/// Prometheus and its exporters log (go-kit's `ts=`).
fn rfc3339(since_epoch: std::time::Duration) -> String {
    let secs = since_epoch.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60,
        since_epoch.subsec_millis()
    )
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[macro_export]
macro_rules! log_at {
    ($lvl:expr, $($arg:tt)*) => {
        if $crate::log::enabled($lvl) { $crate::log::write($lvl, &format!($($arg)*)) }
    };
}
#[macro_export]
macro_rules! debug { ($($arg:tt)*) => { $crate::log_at!($crate::log::Level::Debug, $($arg)*) }; }
#[macro_export]
macro_rules! info { ($($arg:tt)*) => { $crate::log_at!($crate::log::Level::Info, $($arg)*) }; }
#[macro_export]
macro_rules! warn { ($($arg:tt)*) => { $crate::log_at!($crate::log::Level::Warn, $($arg)*) }; }
#[macro_export]
macro_rules! error { ($($arg:tt)*) => { $crate::log_at!($crate::log::Level::Error, $($arg)*) }; }

#[cfg(test)]
mod tests {
    use super::rfc3339;
    use std::time::Duration;

    #[test]
    fn timestamps_are_rfc3339_in_utc() {
        assert_eq!(rfc3339(Duration::ZERO), "1970-01-01T00:00:00.000Z");
        // A leap day, and the session's own date as `date -u -d @...` prints it.
        assert_eq!(
            rfc3339(Duration::from_millis(951_782_400_250)),
            "2000-02-29T00:00:00.250Z"
        );
        assert_eq!(
            rfc3339(Duration::from_secs(1_796_022_218)),
            "2026-11-30T07:03:38.000Z"
        );
        assert_eq!(
            rfc3339(Duration::from_secs(4_102_444_799)),
            "2099-12-31T23:59:59.000Z"
        );
    }
}
