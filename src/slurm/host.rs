//! What the plugin reads from the slurmctld that loaded it: the in-process
//! "I am in control" flag and the daemon's own log functions.
//!
//! Both are looked up at run time with `dlsym(RTLD_DEFAULT, ...)`, never
//! linked: the cdylib must load (and refuse cleanly) in any host, and a
//! test host provides stand-ins of its own.

use std::ffi::{c_char, CString};
use std::sync::OnceLock;

/// slurmctld's global `time_t control_time`: 0 while it is a standby, the
/// time it took control while it is in control (what it answers to
/// CONTROL_STATUS). `slurmctld_primary` would say "configured as primary",
/// which is not the same thing.
#[derive(Clone, Copy, Debug)]
pub struct ControlFlag {
    addr: usize,
}

impl ControlFlag {
    /// Finds `control_time` in the process; None outside slurmctld.
    pub fn find() -> Option<ControlFlag> {
        lookup("control_time").map(|addr| ControlFlag { addr })
    }

    /// The time slurmctld took control, or 0 in standby.
    pub fn control_time(&self) -> i64 {
        // SAFETY: `addr` is the address of slurmctld's global time_t (a
        // 64-bit integer on every platform Slurm supports), valid for the
        // life of the process. slurmctld writes it without a lock; an
        // aligned 64-bit load cannot tear, and a value one poll old is fine.
        unsafe { std::ptr::read_volatile(self.addr as *const i64) }
    }
}

/// From 25.11 slurmctld's in-process reconfigure runs its main loop again
/// and leaves `control_time` at 0 for a moment while it stays in control.
pub const CONTROL_TIME_ZERO_WHILE_RECONFIGURING: bool = cfg!(slurm_ge_25_11);

fn lookup(name: &str) -> Option<usize> {
    let c = CString::new(name).ok()?;
    // SAFETY: dlsym with the default handle and a NUL-terminated name.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c.as_ptr()) };
    (!p.is_null()).then_some(p as usize)
}

type LogFn = unsafe extern "C" fn(fmt: *const c_char, ...);

struct HostLog {
    info: Option<LogFn>,
    error: Option<LogFn>,
    verbose: Option<LogFn>,
}

fn host_log() -> &'static HostLog {
    static LOG: OnceLock<HostLog> = OnceLock::new();
    LOG.get_or_init(|| {
        let get = |name: &str| {
            // SAFETY: libslurm's slurm_info/slurm_error/slurm_verbose are
            // printf-style functions of this exact signature (the return
            // value of slurm_error, an int in some releases, is ignored,
            // which the C calling convention allows).
            lookup(name).map(|a| unsafe { std::mem::transmute::<usize, LogFn>(a) })
        };
        HostLog {
            info: get("slurm_info"),
            error: get("slurm_error"),
            verbose: get("slurm_verbose"),
        }
    })
}

/// Severity of a line for slurmctld's log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostLevel {
    Verbose,
    Info,
    Error,
}

/// Writes one line through slurmctld's own logger (its log file, syslog
/// or stderr, as slurm.conf says). Returns false when the host has no
/// such logger (a test host), so the caller can fall back to stderr.
pub fn log(level: HostLevel, msg: &str) -> bool {
    let l = host_log();
    let f = match level {
        HostLevel::Verbose => l.verbose,
        HostLevel::Info => l.info,
        HostLevel::Error => l.error,
    };
    let Some(f) = f else {
        return false;
    };
    // Interior NULs would cut the line; replace them.
    let Ok(text) = CString::new(msg.replace('\0', " ")) else {
        return false;
    };
    // SAFETY: "%s" with one NUL-terminated string: the message is never
    // used as a format.
    unsafe { f(c"%s".as_ptr(), text.as_ptr()) };
    true
}
