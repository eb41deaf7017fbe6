use super::ffi;
use super::loaded::{Loaded, Message};
use super::strings::borrow;
use std::os::raw::c_int;

/// Every job slurmctld holds (`slurm_load_jobs`), freed on drop.
pub type Jobs = Loaded<ffi::job_info_msg_t>;

impl Message for ffi::job_info_msg_t {
    const CALL: &'static str = "slurm_load_jobs";
    /// SHOW_ALL: jobs of hidden partitions too. With `since` = the
    /// `last_update` of the list we hold, slurmctld answers
    /// SLURM_NO_CHANGE_IN_DATA when nothing changed.
    unsafe fn load(since: i64, out: *mut *mut Self) -> c_int {
        ffi::slurm_load_jobs(since, out, ffi::SHOW_ALL as u16)
    }
    unsafe fn free(msg: *mut Self) {
        ffi::slurm_free_job_info_msg(msg)
    }
    fn last_update(&self) -> i64 {
        self.last_update
    }
}

impl Jobs {
    pub fn len(&self) -> usize {
        self.message().record_count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = Job<'_>> + Clone {
        // SAFETY: job_array holds record_count records owned by msg.
        let slice: &[ffi::slurm_job_info_t] = unsafe {
            let m = self.message();
            if m.job_array.is_null() {
                &[]
            } else {
                std::slice::from_raw_parts(m.job_array, m.record_count as usize)
            }
        };
        slice.iter().map(|raw| Job { raw })
    }
}

/// One job record, borrowed from its `Jobs` list.
#[derive(Clone, Copy)]
pub struct Job<'a> {
    raw: &'a ffi::slurm_job_info_t,
}

impl<'a> Job<'a> {
    pub fn job_id(&self) -> u32 {
        self.raw.job_id
    }
    pub fn array_job_id(&self) -> u32 {
        self.raw.array_job_id
    }
    /// `None` for the record that stands for an array's still-pending tasks.
    pub fn array_task_id(&self) -> Option<u32> {
        match self.raw.array_task_id {
            ffi::NO_VAL => None,
            id => Some(id),
        }
    }
    /// Task-id expression of a pending array meta-record, e.g. "3-99%10".
    pub fn array_task_str(&self) -> &'a str {
        // SAFETY: owned by the message.
        unsafe { borrow(self.raw.array_task_str) }
    }
    /// Pending tasks of an array meta-record, counted from its bitmap; the
    /// string form is cut to 64 bytes by default, the bitmap never is.
    pub fn pending_array_tasks(&self) -> Option<u64> {
        if self.raw.array_bitmap.is_null() {
            return None;
        }
        // SAFETY: array_bitmap is a bitstr_t owned by the message.
        let n = unsafe { ffi::slurm_bit_set_count(self.raw.array_bitmap) };
        u64::try_from(n).ok()
    }
    pub fn state(&self) -> JobState {
        JobState::from_raw(self.raw.job_state)
    }
    /// Why a job pends (or failed), as squeue shows it: "Resources", "Priority"...
    pub fn reason(&self) -> &'static str {
        // SAFETY: both return a static string.
        #[cfg(slurm_ge_24_05)]
        let s = unsafe { ffi::slurm_job_state_reason_string(self.raw.state_reason as i32) };
        #[cfg(not(slurm_ge_24_05))]
        let s = unsafe { ffi::slurm_job_reason_string(self.raw.state_reason as i32) };
        // SAFETY: static, never freed.
        unsafe { borrow(s) }
    }
    /// One partition, or a comma list while a job pends in several.
    pub fn partition(&self) -> &'a str {
        // SAFETY: owned by the message.
        unsafe { borrow(self.raw.partition) }
    }
    pub fn num_cpus(&self) -> u32 {
        self.raw.num_cpus
    }
    pub fn num_nodes(&self) -> u32 {
        self.raw.num_nodes
    }
    pub fn user_id(&self) -> u32 {
        self.raw.user_id
    }
    pub fn account(&self) -> &'a str {
        // SAFETY: owned by the message.
        unsafe { borrow(self.raw.account) }
    }
    /// When the job was submitted (Unix seconds).
    pub fn submit_time(&self) -> i64 {
        self.raw.submit_time
    }
    /// Its time limit in minutes; `None` for none (INFINITE) or not set.
    pub fn time_limit_minutes(&self) -> Option<u32> {
        match self.raw.time_limit {
            ffi::INFINITE | ffi::NO_VAL => None,
            v => Some(v),
        }
    }
    /// TRES the job asked for, "cpu=4,mem=8G,node=1,gres/gpu=2".
    pub fn tres_req(&self) -> &'a str {
        // SAFETY: owned by the message.
        unsafe { borrow(self.raw.tres_req_str) }
    }
    /// TRES allocated to a started job; empty while pending.
    pub fn tres_alloc(&self) -> &'a str {
        // SAFETY: owned by the message.
        unsafe { borrow(self.raw.tres_alloc_str) }
    }
}

/// A job's state as squeue names it (flags such as COMPLETING win over the
/// base state, in the order Slurm's own job_state_string uses).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JobState {
    Pending,
    Running,
    Suspended,
    Completed,
    Cancelled,
    Failed,
    Timeout,
    NodeFail,
    Preempted,
    BootFail,
    Deadline,
    OutOfMemory,
    Completing,
    Configuring,
    Resizing,
    Requeued,
    RequeueFed,
    RequeueHold,
    SpecialExit,
    Stopped,
    Revoked,
    ResvDelHold,
    Signaling,
    StageOut,
    Unknown,
}

impl JobState {
    pub fn from_raw(state: u32) -> JobState {
        use JobState::*;
        let flag = |f: u32| state & f != 0;
        if flag(ffi::JOB_COMPLETING) {
            return Completing;
        }
        if flag(ffi::JOB_CONFIGURING) {
            return Configuring;
        }
        if flag(ffi::JOB_RESIZING) {
            return Resizing;
        }
        if flag(ffi::JOB_REQUEUE) {
            return Requeued;
        }
        if flag(ffi::JOB_REQUEUE_FED) {
            return RequeueFed;
        }
        if flag(ffi::JOB_REQUEUE_HOLD) {
            return RequeueHold;
        }
        if flag(ffi::JOB_SPECIAL_EXIT) {
            return SpecialExit;
        }
        if flag(ffi::JOB_STOPPED) {
            return Stopped;
        }
        if flag(ffi::JOB_REVOKED) {
            return Revoked;
        }
        if flag(ffi::JOB_RESV_DEL_HOLD) {
            return ResvDelHold;
        }
        if flag(ffi::JOB_SIGNALING) {
            return Signaling;
        }
        if flag(ffi::JOB_STAGE_OUT) {
            return StageOut;
        }
        Self::from_base(state)
    }

    /// Whether the job is finished (squeue hides these; slurmctld keeps them
    /// for MinJobAge). Completing jobs are not finished yet.
    pub fn is_finished(self) -> bool {
        JobState::TERMINAL.contains(&self)
    }

    /// The base state alone, as slurmdbd stores it for finished jobs.
    pub fn from_base(state: u32) -> JobState {
        use JobState::*;
        match state & ffi::JOB_STATE_BASE {
            ffi::JOB_PENDING => Pending,
            ffi::JOB_RUNNING => Running,
            ffi::JOB_SUSPENDED => Suspended,
            ffi::JOB_COMPLETE => Completed,
            ffi::JOB_CANCELLED => Cancelled,
            ffi::JOB_FAILED => Failed,
            ffi::JOB_TIMEOUT => Timeout,
            ffi::JOB_NODE_FAIL => NodeFail,
            ffi::JOB_PREEMPTED => Preempted,
            ffi::JOB_BOOT_FAIL => BootFail,
            ffi::JOB_DEADLINE => Deadline,
            ffi::JOB_OOM => OutOfMemory,
            _ => Unknown,
        }
    }

    /// Lower-case long name, as the CycleCloud exporter labels states.
    pub fn as_str(self) -> &'static str {
        use JobState::*;
        match self {
            Pending => "pending",
            Running => "running",
            Suspended => "suspended",
            Completed => "completed",
            Cancelled => "cancelled",
            Failed => "failed",
            Timeout => "timeout",
            NodeFail => "node_fail",
            Preempted => "preempted",
            BootFail => "boot_fail",
            Deadline => "deadline",
            OutOfMemory => "out_of_memory",
            Completing => "completing",
            Configuring => "configuring",
            Resizing => "resizing",
            Requeued => "requeued",
            RequeueFed => "requeue_fed",
            RequeueHold => "requeue_hold",
            SpecialExit => "special_exit",
            Stopped => "stopped",
            Revoked => "revoked",
            ResvDelHold => "resv_del_hold",
            Signaling => "signaling",
            StageOut => "stage_out",
            Unknown => "unknown",
        }
    }

    /// Every state, in declaration order.
    pub const ALL: [JobState; 25] = {
        use JobState::*;
        [
            Pending,
            Running,
            Suspended,
            Completed,
            Cancelled,
            Failed,
            Timeout,
            NodeFail,
            Preempted,
            BootFail,
            Deadline,
            OutOfMemory,
            Completing,
            Configuring,
            Resizing,
            Requeued,
            RequeueFed,
            RequeueHold,
            SpecialExit,
            Stopped,
            Revoked,
            ResvDelHold,
            Signaling,
            StageOut,
            Unknown,
        ]
    };

    /// The state `as_str` names.
    pub fn from_name(name: &str) -> Option<JobState> {
        JobState::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Every terminal base state slurmdbd can report.
    pub const TERMINAL: [JobState; 9] = [
        JobState::Completed,
        JobState::Cancelled,
        JobState::Failed,
        JobState::Timeout,
        JobState::NodeFail,
        JobState::Preempted,
        JobState::BootFail,
        JobState::Deadline,
        JobState::OutOfMemory,
    ];

    /// The number slurmdbd stores for a base state.
    pub fn base_number(self) -> Option<u32> {
        use JobState::*;
        Some(match self {
            Pending => ffi::JOB_PENDING,
            Running => ffi::JOB_RUNNING,
            Suspended => ffi::JOB_SUSPENDED,
            Completed => ffi::JOB_COMPLETE,
            Cancelled => ffi::JOB_CANCELLED,
            Failed => ffi::JOB_FAILED,
            Timeout => ffi::JOB_TIMEOUT,
            NodeFail => ffi::JOB_NODE_FAIL,
            Preempted => ffi::JOB_PREEMPTED,
            BootFail => ffi::JOB_BOOT_FAIL,
            Deadline => ffi::JOB_DEADLINE,
            OutOfMemory => ffi::JOB_OOM,
            _ => return None,
        })
    }
}

/// Slurm's own name for a job state, for cross-checks in tests.
pub fn library_state_string(state: u32) -> String {
    // SAFETY: returns a static string.
    unsafe { borrow(ffi::slurm_job_state_string(state)).to_string() }
}
