//! The messages slurmctld sends incrementally (jobs, nodes, partitions)
//! share one life: loaded with `update_time` (a "no change" answer reads as
//! `None`), read through borrowed views, freed once in `Drop`. `Loaded<M>`
//! is that life; each message type says only how it is loaded and freed
//! (`Message`), and adds its own readers as `impl Loaded<its type>`.

use super::error::SlurmError;
use super::ffi;
use std::os::raw::c_int;
use std::ptr::NonNull;

pub trait Message {
    /// libslurm's load call, for error messages.
    const CALL: &'static str;
    /// Calls libslurm's load with `update_time` = `since`.
    ///
    /// # Safety
    /// `out` is a valid out-pointer.
    unsafe fn load(since: i64, out: *mut *mut Self) -> c_int;
    /// Frees what `load` returned.
    ///
    /// # Safety
    /// `msg` came from `load` and is freed exactly once.
    unsafe fn free(msg: *mut Self);
    fn last_update(&self) -> i64;
}

/// A message from slurmctld, freed on drop.
pub struct Loaded<M: Message> {
    msg: NonNull<M>,
}

// SAFETY: plain heap memory owned by this value; libslurm keeps no
// reference to it, and every reader takes `&self`.
unsafe impl<M: Message> Send for Loaded<M> {}
unsafe impl<M: Message> Sync for Loaded<M> {}

impl<M: Message> Drop for Loaded<M> {
    fn drop(&mut self) {
        // SAFETY: msg came from M::load and this is its only owner.
        unsafe { M::free(self.msg.as_ptr()) }
    }
}

impl<M: Message> Loaded<M> {
    /// Loads everything (`since` None) or what changed since `since`;
    /// `Ok(None)` when nothing did. Some calls return
    /// SLURM_NO_CHANGE_IN_DATA, others -1 with it in slurm's errno: both
    /// read as "no change".
    pub fn load(since: Option<i64>) -> Result<Option<Self>, SlurmError> {
        let mut msg: *mut M = std::ptr::null_mut();
        // SAFETY: msg is an out-pointer; on success libslurm allocates it.
        let rc = unsafe { M::load(since.unwrap_or(0), &mut msg) };
        if rc != 0 {
            if rc == ffi::SLURM_NO_CHANGE_IN_DATA as c_int {
                return Ok(None);
            }
            let err = SlurmError::last(M::CALL);
            return if err.is_no_change() {
                Ok(None)
            } else {
                Err(err)
            };
        }
        NonNull::new(msg)
            .map(|msg| Some(Loaded { msg }))
            .ok_or_else(|| SlurmError::from_code(M::CALL, -1))
    }

    /// When slurmctld last changed what this message holds.
    pub fn last_update(&self) -> i64 {
        self.message().last_update()
    }

    /// The message itself, for its type's readers.
    pub(super) fn message(&self) -> &M {
        // SAFETY: msg is valid and unaliased by writers while self lives.
        unsafe { self.msg.as_ref() }
    }
}
