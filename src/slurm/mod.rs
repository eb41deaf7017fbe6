//! The one place that touches libslurm's raw pointers.
//!
//! Every loaded message is owned by a type here that frees it in `Drop`, and
//! is read through borrowed views (`Job`, `Node`, ...) with typed accessors.
//! Version differences between Slurm releases are settled in this module,
//! behind those accessors, so collectors never see a `cfg`.
//!
//! libslurm is not thread-safe in every call and its controller fail-over is
//! process-global, so the engine calls into this module from one thread only.

mod accounting;
mod assoc;
mod config;
mod error;
mod ffi;
pub mod host;
mod jobs;
mod licenses;
mod list;
pub mod loaded;
mod nodes;
mod partitions;
mod reservations;
mod stats;
mod strings;

pub use accounting::{DbConnection, DbdStats, FinishedJob};
pub use assoc::{load_associations, Association};
pub use config::Config;
pub use error::SlurmError;
pub use jobs::{library_state_string, Job, JobState, Jobs};
pub use licenses::{load_licenses, License};
pub use loaded::{Loaded, Message};
pub use nodes::{Node, NodeState, Nodes, NODE_FLAGS};
pub use partitions::{Partition, Partitions};
pub use reservations::{load_reservations, Reservation};
pub use stats::{load_statistics, RpcStat, SchedulerStats};

use std::ffi::CString;
use std::sync::OnceLock;

// build.rs links libslurm into the binaries, integration tests and benches,
// never into the plugin (inside slurmctld every `slurm_*` symbol is the
// daemon's own). The crate's unit tests call libslurm's pure functions
// (state names), so their binary asks for it here.
#[cfg(test)]
#[link(name = "slurm")]
unsafe extern "C" {}

/// Release of the headers this crate was built against, "22.05.8".
pub const BUILD_VERSION: &str = env!("SLURM_BUILD_VERSION");

/// `SLURM_VERSION_NUMBER` of the headers this crate was built against:
/// the plugin's `plugin_version`, which slurmctld compares with its own
/// (major, minor and micro must all match).
pub const BUILD_VERSION_NUMBER: u32 = ffi::SLURM_VERSION_NUMBER;

/// Where libslurm will look for slurm.conf when `SLURM_CONF` is unset.
/// Debian and most builds use this default.
pub const DEFAULT_SLURM_CONF: &str = "/etc/slurm/slurm.conf";

/// The slurm.conf libslurm reads: `SLURM_CONF`, else the default.
pub fn conf_path() -> std::path::PathBuf {
    std::env::var_os("SLURM_CONF")
        .map(Into::into)
        .unwrap_or_else(|| DEFAULT_SLURM_CONF.into())
}

static INIT: OnceLock<Result<(), String>> = OnceLock::new();

/// Initializes libslurm once per process (never call this inside slurmctld).
///
/// `slurm_init` calls `fatal()`, which exits the process, when it cannot read
/// its configuration. We check for the file first so the user gets one clear
/// line instead of a libslurm abort.
pub fn init() -> Result<(), String> {
    INIT.get_or_init(|| {
        let path = std::env::var("SLURM_CONF").unwrap_or_else(|_| DEFAULT_SLURM_CONF.into());
        if let Err(e) = std::fs::metadata(&path) {
            return Err(format!(
                "cannot read Slurm configuration {path}: {e} (set SLURM_CONF to the slurm.conf of your cluster)"
            ));
        }
        let conf = CString::new(path.clone()).map_err(|_| format!("bad SLURM_CONF {path:?}"))?;
        // SAFETY: conf is a valid NUL-terminated string that outlives the call.
        unsafe { ffi::slurm_init(conf.as_ptr()) };
        Ok(())
    })
    .clone()
}

/// Pings controller `index` (0 = primary) of slurm.conf's SlurmctldHost list.
/// A standby controller answers too: this says "up", not "in control".
pub fn ping(index: usize) -> Result<(), SlurmError> {
    // SAFETY: plain RPC; index bounds are checked by libslurm.
    let rc = unsafe { ffi::slurm_ping(index as i32) };
    error::check_rc("slurm_ping", rc)
}
