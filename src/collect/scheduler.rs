//! Scheduler statistics (what sdiag prints) from one REQUEST_STATS_INFO.
//! Slurm resets these counters at midnight and on `sdiag -r`; exported as
//! counters, Prometheus' rate() handles the resets.

use super::{Collector, Source, Sources};
use crate::metrics::{Family, Kind};

pub struct SchedulerCollector {
    pub per_user: bool,
}

/// At most this many users get their own RPC series (largest counts first).
const MAX_RPC_USERS: usize = 50;

/// Names of the message types slurmctld counts. The numbers are Slurm's
/// internal slurm_msg_type_t values, checked identical in 22.05, 24.11 and
/// 26.05; anything else is labelled by its number.
const RPC_NAMES: &[(u32, &str)] = &[
    (1001, "REQUEST_NODE_REGISTRATION_STATUS"),
    (1002, "MESSAGE_NODE_REGISTRATION_STATUS"),
    (1003, "REQUEST_RECONFIGURE"),
    (1005, "REQUEST_SHUTDOWN"),
    (1008, "REQUEST_PING"),
    (1010, "REQUEST_SET_DEBUG_LEVEL"),
    (1012, "REQUEST_TAKEOVER"),
    (1021, "REQUEST_LICENSE_INFO"),
    (1028, "REQUEST_DBD_RELAY"),
    (2001, "REQUEST_BUILD_INFO"),
    (2003, "REQUEST_JOB_INFO"),
    (2005, "REQUEST_JOB_STEP_INFO"),
    (2007, "REQUEST_NODE_INFO"),
    (2009, "REQUEST_PARTITION_INFO"),
    (2015, "REQUEST_CONFIG"),
    (2018, "REQUEST_TRIGGER_GET"),
    (2021, "REQUEST_JOB_INFO_SINGLE"),
    (2022, "REQUEST_SHARE_INFO"),
    (2024, "REQUEST_RESERVATION_INFO"),
    (2026, "REQUEST_PRIORITY_FACTORS"),
    (2035, "REQUEST_STATS_INFO"),
    (2037, "REQUEST_BURST_BUFFER_INFO"),
    (2039, "REQUEST_JOB_USER_INFO"),
    (2040, "REQUEST_NODE_INFO_SINGLE"),
    (2043, "REQUEST_ASSOC_MGR_INFO"),
    (2049, "REQUEST_FED_INFO"),
    (2051, "REQUEST_BATCH_SCRIPT"),
    (2053, "REQUEST_CONTROL_STATUS"),
    (2057, "REQUEST_JOB_STATE"),
    (2200, "REQUEST_CRONTAB"),
    (3001, "REQUEST_UPDATE_JOB"),
    (3002, "REQUEST_UPDATE_NODE"),
    (3005, "REQUEST_UPDATE_PARTITION"),
    (3006, "REQUEST_CREATE_RESERVATION"),
    (3008, "REQUEST_DELETE_RESERVATION"),
    (3009, "REQUEST_UPDATE_RESERVATION"),
    (4001, "REQUEST_RESOURCE_ALLOCATION"),
    (4003, "REQUEST_SUBMIT_BATCH_JOB"),
    (4012, "REQUEST_JOB_WILL_RUN"),
    (4014, "REQUEST_JOB_ALLOCATION_INFO"),
    (4019, "REQUEST_JOB_READY"),
    (4022, "REQUEST_JOB_NOTIFY"),
    (4023, "REQUEST_JOB_SBCAST_CRED"),
    (4027, "REQUEST_HET_JOB_ALLOC_INFO"),
    (4028, "REQUEST_SUBMIT_BATCH_HET_JOB"),
    (5001, "REQUEST_JOB_STEP_CREATE"),
    (5005, "REQUEST_CANCEL_JOB_STEP"),
    (5007, "REQUEST_UPDATE_JOB_STEP"),
    (5014, "REQUEST_SUSPEND"),
    (5016, "REQUEST_STEP_COMPLETE"),
    (5017, "REQUEST_COMPLETE_JOB_ALLOCATION"),
    (5018, "REQUEST_COMPLETE_BATCH_SCRIPT"),
    (5021, "REQUEST_STEP_LAYOUT"),
    (5023, "REQUEST_JOB_REQUEUE"),
    (5032, "REQUEST_KILL_JOB"),
    (5038, "REQUEST_TOP_JOB"),
    (5041, "REQUEST_KILL_JOBS"),
    (6012, "MESSAGE_EPILOG_COMPLETE"),
    (6018, "REQUEST_COMPLETE_PROLOG"),
    (6500, "REQUEST_PERSIST_INIT"),
];

pub fn rpc_name(id: u32) -> String {
    RPC_NAMES
        .iter()
        .find(|(n, _)| *n == id)
        .map(|(_, s)| s.to_string())
        .unwrap_or_else(|| format!("rpc_{id}"))
}

fn mean(sum: f64, count: u32) -> f64 {
    if count == 0 {
        0.0
    } else {
        sum / count as f64
    }
}

impl Collector for SchedulerCollector {
    fn name(&self) -> &'static str {
        "scheduler"
    }
    fn needs(&self) -> &'static [Source] {
        &[Source::Stats]
    }
    fn collect(&mut self, sources: &Sources, out: &mut Vec<Family>) -> Result<(), String> {
        let s = sources.stats();
        let g = |name: &str, help: &str, v: f64| Family::single(name, help, Kind::Gauge, v);
        let c = |name: &str, help: &str, v: f64| Family::single(name, help, Kind::Counter, v);
        let us = 1e-6;
        let main_mean = mean(s.schedule_cycle_sum as f64, s.schedule_cycle_counter);
        let bf_mean = mean(s.bf_cycle_sum as f64, s.bf_cycle_counter);

        // The CycleCloud exporter's names, kept for its dashboards.
        out.push(g(
            "sdiag_server_thread_count",
            "Number of server threads currently active in slurmctld",
            s.server_thread_count as f64,
        ));
        out.push(g(
            "sdiag_agent_queue_size",
            "Number of outgoing RPC requests queued for compute nodes",
            s.agent_queue_size as f64,
        ));
        out.push(g(
            "sdiag_dbd_agent_queue_size",
            "Number of messages queued for Slurm database daemon",
            s.dbd_agent_queue_size as f64,
        ));
        let mut f = Family::gauge(
            "sdiag_main_cycle_time_us",
            "Main scheduling cycle time in microseconds by type",
            &["type"],
        );
        f.add(&["last"], s.schedule_cycle_last as f64)
            .add(&["max"], s.schedule_cycle_max as f64)
            .add(&["mean"], main_mean.floor());
        out.push(f);
        out.push(g(
            "sdiag_main_mean_depth_cycle",
            "Mean number of jobs examined per scheduling cycle",
            mean(s.schedule_cycle_depth as f64, s.schedule_cycle_counter).floor(),
        ));

        out.extend([
            g(
                "slurm_scheduler_threads",
                "Server threads active in slurmctld",
                s.server_thread_count as f64,
            ),
            g(
                "slurm_scheduler_agent_queue_size",
                "Outgoing RPCs queued for compute nodes",
                s.agent_queue_size as f64,
            ),
            g(
                "slurm_scheduler_agents",
                "Agents active in slurmctld",
                s.agent_count as f64,
            ),
            g(
                "slurm_scheduler_agent_threads",
                "Agent threads active in slurmctld",
                s.agent_thread_count as f64,
            ),
            g(
                "slurm_scheduler_dbd_agent_queue_size",
                "Messages queued for slurmdbd",
                s.dbd_agent_queue_size as f64,
            ),
            g(
                "slurm_scheduler_gettimeofday_latency_seconds",
                "Latency of gettimeofday() in slurmctld",
                s.gettimeofday_latency as f64 * us,
            ),
            g(
                "slurm_scheduler_cycle_last_seconds",
                "Duration of the last main scheduling cycle",
                s.schedule_cycle_last as f64 * us,
            ),
            g(
                "slurm_scheduler_cycle_max_seconds",
                "Longest main scheduling cycle since the statistics were reset",
                s.schedule_cycle_max as f64 * us,
            ),
            g(
                "slurm_scheduler_cycle_mean_seconds",
                "Mean main scheduling cycle since the statistics were reset",
                main_mean * us,
            ),
            c(
                "slurm_scheduler_cycles_total",
                "Main scheduling cycles since the statistics were reset",
                s.schedule_cycle_counter as f64,
            ),
            g(
                "slurm_scheduler_cycle_mean_depth",
                "Mean jobs examined per main scheduling cycle",
                mean(s.schedule_cycle_depth as f64, s.schedule_cycle_counter),
            ),
            g(
                "slurm_scheduler_queue_length",
                "Jobs in the main scheduler's last queue",
                s.schedule_queue_len as f64,
            ),
            c(
                "slurm_scheduler_jobs_submitted_total",
                "Jobs submitted since the statistics were reset",
                s.jobs_submitted as f64,
            ),
            c(
                "slurm_scheduler_jobs_started_total",
                "Jobs started since the statistics were reset",
                s.jobs_started as f64,
            ),
            c(
                "slurm_scheduler_jobs_completed_total",
                "Jobs completed since the statistics were reset",
                s.jobs_completed as f64,
            ),
            c(
                "slurm_scheduler_jobs_canceled_total",
                "Jobs canceled since the statistics were reset",
                s.jobs_canceled as f64,
            ),
            c(
                "slurm_scheduler_jobs_failed_total",
                "Jobs failed since the statistics were reset",
                s.jobs_failed as f64,
            ),
            g(
                "slurm_scheduler_stats_reset_timestamp_seconds",
                "When slurmctld last reset these statistics",
                s.req_time_start as f64,
            ),
            c(
                "slurm_backfill_jobs_total",
                "Jobs started by backfill since slurmctld started (or sdiag --reset)",
                s.bf_backfilled_jobs as f64,
            ),
            c(
                "slurm_backfill_het_jobs_total",
                "Heterogeneous job components started by backfill since the reset",
                s.bf_backfilled_het_jobs as f64,
            ),
            g(
                "slurm_backfill_last_jobs",
                "Jobs started by backfill since the statistics were last reset",
                s.bf_last_backfilled_jobs as f64,
            ),
            c(
                "slurm_backfill_cycles_total",
                "Backfill cycles since the statistics were reset",
                s.bf_cycle_counter as f64,
            ),
            g(
                "slurm_backfill_cycle_last_seconds",
                "Duration of the last backfill cycle",
                s.bf_cycle_last as f64 * us,
            ),
            g(
                "slurm_backfill_cycle_max_seconds",
                "Longest backfill cycle since the reset",
                s.bf_cycle_max as f64 * us,
            ),
            g(
                "slurm_backfill_cycle_mean_seconds",
                "Mean backfill cycle since the reset",
                bf_mean * us,
            ),
            g(
                "slurm_backfill_last_depth",
                "Jobs considered in the last backfill cycle",
                s.bf_last_depth as f64,
            ),
            g(
                "slurm_backfill_last_depth_try",
                "Jobs tried in the last backfill cycle",
                s.bf_last_depth_try as f64,
            ),
            g(
                "slurm_backfill_depth_mean",
                "Mean jobs considered per backfill cycle",
                mean(s.bf_depth_sum as f64, s.bf_cycle_counter),
            ),
            g(
                "slurm_backfill_depth_try_mean",
                "Mean jobs tried per backfill cycle",
                mean(s.bf_depth_try_sum as f64, s.bf_cycle_counter),
            ),
            g(
                "slurm_backfill_queue_length",
                "Jobs in the last backfill queue",
                s.bf_queue_len as f64,
            ),
            g(
                "slurm_backfill_queue_length_mean",
                "Mean backfill queue length",
                mean(s.bf_queue_len_sum as f64, s.bf_cycle_counter),
            ),
            g(
                "slurm_backfill_table_size",
                "Time slots in the last backfill table",
                s.bf_table_size as f64,
            ),
            g(
                "slurm_backfill_table_size_mean",
                "Mean backfill table size",
                mean(s.bf_table_size_sum as f64, s.bf_cycle_counter),
            ),
            g(
                "slurm_backfill_active",
                "1 while a backfill cycle runs",
                if s.bf_active { 1.0 } else { 0.0 },
            ),
            g(
                "slurm_backfill_last_cycle_timestamp_seconds",
                "When the last backfill cycle ran",
                s.bf_when_last_cycle as f64,
            ),
        ]);

        let mut calls = Family::counter(
            "slurm_rpc_calls_total",
            "RPCs slurmctld received, by message type",
            &["rpc"],
        );
        let mut time = Family::counter(
            "slurm_rpc_time_seconds_total",
            "Time slurmctld spent in RPCs, by message type",
            &["rpc"],
        );
        let mut rows: Vec<_> = s
            .rpc_by_type
            .iter()
            .map(|r| (rpc_name(r.id), r.count, r.time_us))
            .collect();
        rows.sort();
        rows.dedup_by(|a, b| a.0 == b.0);
        for (name, count, t) in rows {
            calls.add(&[name.as_str()], count as f64);
            time.add(&[name.as_str()], t as f64 * us);
        }
        out.extend([calls, time]);

        if self.per_user {
            let mut users = s.rpc_by_user.clone();
            users.sort_by_key(|u| std::cmp::Reverse(u.count));
            users.truncate(MAX_RPC_USERS);
            users.sort_by_key(|u| u.id);
            let mut calls = Family::counter(
                "slurm_rpc_user_calls_total",
                "RPCs slurmctld received, by user id (top users only)",
                &["uid"],
            );
            let mut time = Family::counter(
                "slurm_rpc_user_time_seconds_total",
                "Time slurmctld spent in RPCs, by user id (top users only)",
                &["uid"],
            );
            for u in users {
                let uid = u.id.to_string();
                calls.add(&[uid.as_str()], u.count as f64);
                time.add(&[uid.as_str()], u.time_us as f64 * us);
            }
            out.extend([calls, time]);
        }
        Ok(())
    }
}
