//! The job_submit plugin slurmctld loads (`JobSubmitPlugins=ha_exporter`):
//! C entry points only. Each catches every panic, so none unwinds into
//! slurmctld; the work is in `slurm_ha_exporter::plugin`.
//!
//! Slurm finds the plugin by three data symbols: `plugin_name` and
//! `plugin_type` are char arrays (Slurm uses the symbol's address as the
//! string), `plugin_version` must equal the running slurmctld's
//! SLURM_VERSION_NUMBER, major, minor and micro, so it comes from the
//! headers this was built against: rebuild for every Slurm release.

use slurm_ha_exporter::plugin;
use std::ffi::{c_char, c_int, c_void};
use std::panic::catch_unwind;

const SLURM_SUCCESS: c_int = 0;

#[no_mangle]
pub static plugin_name: [u8; 37] = *b"Prometheus exporter for HA slurmctld\0";
#[no_mangle]
pub static plugin_type: [u8; 23] = *b"job_submit/ha_exporter\0";
#[no_mangle]
pub static plugin_version: u32 = slurm_ha_exporter::slurm::BUILD_VERSION_NUMBER;

/// Starts the exporter thread and returns at once. Always succeeds: a
/// plugin that cannot run logs why and stays disabled, slurmctld goes on.
#[no_mangle]
pub extern "C" fn init() -> c_int {
    match catch_unwind(plugin::start) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => slurm_ha_exporter::error!("not started: {e}"),
        Err(p) => {
            slurm_ha_exporter::error!("not started: panic in init ({})", plugin::panic_text(&*p))
        }
    }
    SLURM_SUCCESS
}

/// Stops the exporter and joins its threads (bounded; see plugin::stop).
#[no_mangle]
pub extern "C" fn fini() -> c_int {
    let _ = catch_unwind(|| plugin::stop(plugin::STOP_DEADLINE));
    SLURM_SUCCESS
}

/// Accepts every job unchanged: the plugin is here to run inside slurmctld.
#[no_mangle]
pub extern "C" fn job_submit(
    _job_desc: *mut c_void,
    _submit_uid: u32,
    _err_msg: *mut *mut c_char,
) -> c_int {
    SLURM_SUCCESS
}

/// Accepts every change unchanged.
#[no_mangle]
pub extern "C" fn job_modify(
    _job_desc: *mut c_void,
    _job_ptr: *mut c_void,
    _submit_uid: u32,
    _err_msg: *mut *mut c_char,
) -> c_int {
    SLURM_SUCCESS
}
