use super::error::SlurmError;
use super::ffi;

/// slurmctld's scheduler statistics (what sdiag prints), copied out.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SchedulerStats {
    /// When slurmctld answered and when its counters were last reset.
    pub req_time: i64,
    pub req_time_start: i64,
    pub server_thread_count: u32,
    pub agent_queue_size: u32,
    pub agent_count: u32,
    pub agent_thread_count: u32,
    pub dbd_agent_queue_size: u32,
    pub gettimeofday_latency: u32,

    pub schedule_cycle_max: u32,
    pub schedule_cycle_last: u32,
    /// u32 up to 25.05 (wraps after ~71 min of cycles in microseconds), u64 from 25.11.
    pub schedule_cycle_sum: u64,
    pub schedule_cycle_counter: u32,
    pub schedule_cycle_depth: u32,
    pub schedule_queue_len: u32,

    pub jobs_submitted: u32,
    pub jobs_started: u32,
    pub jobs_completed: u32,
    pub jobs_canceled: u32,
    pub jobs_failed: u32,
    pub jobs_pending: u32,
    pub jobs_running: u32,

    pub bf_backfilled_jobs: u32,
    pub bf_last_backfilled_jobs: u32,
    pub bf_backfilled_het_jobs: u32,
    pub bf_cycle_counter: u32,
    pub bf_cycle_sum: u64,
    pub bf_cycle_last: u32,
    pub bf_cycle_max: u32,
    pub bf_last_depth: u32,
    pub bf_last_depth_try: u32,
    pub bf_depth_sum: u32,
    pub bf_depth_try_sum: u32,
    pub bf_queue_len: u32,
    pub bf_queue_len_sum: u32,
    pub bf_table_size: u32,
    pub bf_table_size_sum: u32,
    pub bf_when_last_cycle: i64,
    pub bf_active: bool,

    pub rpc_by_type: Vec<RpcStat>,
    pub rpc_by_user: Vec<RpcStat>,
}

/// Count and total time (microseconds) of RPCs of one type or one user.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RpcStat {
    pub id: u32,
    pub count: u32,
    pub time_us: u64,
}

/// One REQUEST_STATS_INFO RPC.
pub fn load_statistics() -> Result<SchedulerStats, SlurmError> {
    let mut req = ffi::stats_info_request_msg_t {
        command_id: ffi::STAT_COMMAND_GET as u16,
    };
    let mut resp: *mut ffi::stats_info_response_msg_t = std::ptr::null_mut();
    // SAFETY: req lives across the call; resp is an out-pointer freed below.
    let rc = unsafe { ffi::slurm_get_statistics(&mut resp, &mut req) };
    if rc != 0 || resp.is_null() {
        return Err(SlurmError::last("slurm_get_statistics"));
    }
    // SAFETY: resp is valid until freed; arrays hold *_size entries.
    let out = unsafe { copy(&*resp) };
    // SAFETY: freed once, with the function declared in slurm-headers/.
    unsafe { ffi::slurm_free_stats_response_msg(resp) };
    Ok(out)
}

unsafe fn rpc_table(n: u32, ids: Vec<u32>, cnt: *const u32, time: *const u64) -> Vec<RpcStat> {
    if n == 0 || cnt.is_null() || time.is_null() || ids.len() < n as usize {
        return Vec::new();
    }
    (0..n as usize)
        .map(|i| RpcStat {
            id: ids[i],
            count: *cnt.add(i),
            time_us: *time.add(i),
        })
        .collect()
}

unsafe fn copy(r: &ffi::stats_info_response_msg_t) -> SchedulerStats {
    let type_ids: Vec<u32> = if r.rpc_type_id.is_null() {
        Vec::new()
    } else {
        (0..r.rpc_type_size as usize)
            .map(|i| *r.rpc_type_id.add(i) as u32)
            .collect()
    };
    let user_ids: Vec<u32> = if r.rpc_user_id.is_null() {
        Vec::new()
    } else {
        (0..r.rpc_user_size as usize)
            .map(|i| *r.rpc_user_id.add(i))
            .collect()
    };
    SchedulerStats {
        req_time: r.req_time,
        req_time_start: r.req_time_start,
        server_thread_count: r.server_thread_count,
        agent_queue_size: r.agent_queue_size,
        agent_count: r.agent_count,
        agent_thread_count: r.agent_thread_count,
        dbd_agent_queue_size: r.dbd_agent_queue_size,
        gettimeofday_latency: r.gettimeofday_latency,
        schedule_cycle_max: r.schedule_cycle_max,
        schedule_cycle_last: r.schedule_cycle_last,
        #[cfg(slurm_ge_25_11)]
        schedule_cycle_sum: r.schedule_cycle_sum,
        #[cfg(not(slurm_ge_25_11))]
        schedule_cycle_sum: u64::from(r.schedule_cycle_sum),
        schedule_cycle_counter: r.schedule_cycle_counter,
        schedule_cycle_depth: r.schedule_cycle_depth,
        schedule_queue_len: r.schedule_queue_len,
        jobs_submitted: r.jobs_submitted,
        jobs_started: r.jobs_started,
        jobs_completed: r.jobs_completed,
        jobs_canceled: r.jobs_canceled,
        jobs_failed: r.jobs_failed,
        jobs_pending: r.jobs_pending,
        jobs_running: r.jobs_running,
        bf_backfilled_jobs: r.bf_backfilled_jobs,
        bf_last_backfilled_jobs: r.bf_last_backfilled_jobs,
        bf_backfilled_het_jobs: r.bf_backfilled_het_jobs,
        bf_cycle_counter: r.bf_cycle_counter,
        bf_cycle_sum: r.bf_cycle_sum,
        bf_cycle_last: r.bf_cycle_last,
        bf_cycle_max: r.bf_cycle_max,
        bf_last_depth: r.bf_last_depth,
        bf_last_depth_try: r.bf_last_depth_try,
        bf_depth_sum: r.bf_depth_sum,
        bf_depth_try_sum: r.bf_depth_try_sum,
        bf_queue_len: r.bf_queue_len,
        bf_queue_len_sum: r.bf_queue_len_sum,
        bf_table_size: r.bf_table_size,
        bf_table_size_sum: r.bf_table_size_sum,
        bf_when_last_cycle: r.bf_when_last_cycle,
        bf_active: r.bf_active != 0,
        rpc_by_type: rpc_table(r.rpc_type_size, type_ids, r.rpc_type_cnt, r.rpc_type_time),
        rpc_by_user: rpc_table(r.rpc_user_size, user_ids, r.rpc_user_cnt, r.rpc_user_time),
    }
}
