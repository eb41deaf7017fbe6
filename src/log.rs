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
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let ts = format!("{}.{:03}", ts.as_secs(), ts.subsec_millis());
    let line = if JSON.load(Ordering::Relaxed) == 1 {
        format!(
            "{{\"ts\":{ts},\"level\":\"{}\",\"msg\":{}}}\n",
            level.name(),
            json_string(msg)
        )
    } else {
        format!("ts={ts} level={} msg={}\n", level.name(), json_string(msg))
    };
    let _ = std::io::stderr().write_all(line.as_bytes());
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
