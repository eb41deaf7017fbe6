//! Jobs by partition and state, pending reasons, and the resources jobs ask
//! for or hold. Fixes the CycleCloud exporter's counting: a pending array
//! counts its tasks, not one record; a job pending in "a,b" counts once in
//! each partition.

use super::view::JobView;
use super::{bump, Collector, Source, Sources};
use crate::metrics::{gauge2, Family};
use crate::parse::{array, tres};
use crate::slurm::JobState;
use std::collections::BTreeMap;

pub struct JobsCollector;

/// Number of jobs a record stands for: the pending tasks of an array
/// meta-record, otherwise 1.
pub fn tasks<'a>(job: &impl JobView<'a>) -> u64 {
    if job.array_job_id() != 0 && job.array_task_id().is_none() {
        job.pending_array_tasks()
            .unwrap_or_else(|| array::count_tasks(job.array_task_str()))
            .max(1)
    } else {
        1
    }
}

impl Collector for JobsCollector {
    fn name(&self) -> &'static str {
        "jobs"
    }
    fn needs(&self) -> &'static [Source] {
        &[Source::Jobs]
    }
    fn collect(&mut self, sources: &Sources, out: &mut Vec<Family>) -> Result<(), String> {
        families(sources.jobs().iter(), out);
        Ok(())
    }
}

/// Whether a job in `state` is counted in the resource families: pending
/// jobs ask, running and suspended ones hold.
pub fn counts_resources(state: JobState) -> bool {
    matches!(
        state,
        JobState::Pending | JobState::Running | JobState::Suspended
    )
}

/// What a job holds (running, suspended: tres_alloc) or asks for
/// (pending: tres_req), per task.
pub fn resources<'a>(job: &impl JobView<'a>) -> tres::Tres {
    match job.state() {
        JobState::Pending => tres::parse(job.tres_req()),
        _ => {
            let a = tres::parse(job.tres_alloc());
            if a.cpus > 0 {
                a
            } else {
                tres::parse(job.tres_req())
            }
        }
    }
}

/// Queue pressure of one partition's pending jobs, all of it independent
/// of the time of collection (families are reused while no job changes):
/// ages are left to PromQL's time().
struct Pressure {
    oldest_submit: f64,
    /// Σ requested CPUs × submit time, and Σ requested CPUs.
    cpu_submit: f64,
    cpus: f64,
    /// Σ requested CPUs × time limit (jobs with a limit).
    cpu_limit_seconds: f64,
}

impl Default for Pressure {
    fn default() -> Self {
        Pressure {
            oldest_submit: f64::INFINITY,
            cpu_submit: 0.0,
            cpus: 0.0,
            cpu_limit_seconds: 0.0,
        }
    }
}

/// The families of this collector from any job records (see `view`).
pub fn families<'a, J: JobView<'a>>(jobs: impl Iterator<Item = J>, out: &mut Vec<Family>) {
    let mut by_part_state: BTreeMap<(&'a str, &'static str), f64> = BTreeMap::new();
    let mut by_state: BTreeMap<&'static str, f64> = BTreeMap::new();
    let mut reasons: BTreeMap<(&'a str, &'a str), f64> = BTreeMap::new();
    let mut cpus: BTreeMap<(&'a str, &'static str), f64> = BTreeMap::new();
    let mut mem: BTreeMap<(&'a str, &'static str), f64> = BTreeMap::new();
    let mut gpus: BTreeMap<(&'a str, &'static str), f64> = BTreeMap::new();
    let mut pressure: BTreeMap<&'a str, Pressure> = BTreeMap::new();

    for job in jobs {
        let state = job.state();
        // Counted like squeue counts: finished jobs are left out.
        if state.is_finished() {
            continue;
        }
        let n = tasks(&job) as f64;
        let name = state.as_str();
        bump(&mut by_state, name, n);
        let res = resources(&job);
        for part in job.partition().split(',').filter(|p| !p.is_empty()) {
            bump(&mut by_part_state, (part, name), n);
            if state == JobState::Pending {
                bump(&mut reasons, (part, job.reason()), n);
                let p = pressure.entry(part).or_default();
                let submit = job.submit_time() as f64;
                p.oldest_submit = p.oldest_submit.min(submit);
                p.cpu_submit += res.cpus as f64 * n * submit;
                p.cpus += res.cpus as f64 * n;
                if let Some(limit) = job.time_limit_minutes() {
                    p.cpu_limit_seconds += res.cpus as f64 * n * limit as f64 * 60.0;
                }
            }
            if counts_resources(state) {
                bump(&mut cpus, (part, name), res.cpus as f64 * n);
                bump(&mut mem, (part, name), res.memory_bytes as f64 * n);
                bump(&mut gpus, (part, name), res.gpus as f64 * n);
            }
        }
    }

    let ps = ["partition", "state"];
    out.push(gauge2(
        "squeue_partition_jobs_state",
        "Number of jobs in a state per partition",
        ps,
        &by_part_state,
    ));
    out.push(gauge2(
            "slurm_partition_jobs",
            "Jobs (array tasks counted singly) by partition and state; a job pending in several partitions counts in each",
            ps,
            &by_part_state,
        ));
    let mut f = Family::gauge(
        "slurm_jobs",
        "Jobs (array tasks counted singly) by state",
        &["state"],
    );
    for (s, v) in &by_state {
        f.add(&[*s], *v);
    }
    out.push(f);
    out.push(gauge2(
        "slurm_partition_jobs_pending_reason",
        "Pending jobs by partition and the reason they wait",
        ["partition", "reason"],
        &reasons,
    ));
    out.push(gauge2(
        "slurm_partition_job_cpus",
        "CPUs requested by pending jobs and allocated to running or suspended jobs",
        ps,
        &cpus,
    ));
    out.push(gauge2(
        "slurm_partition_job_memory_bytes",
        "Memory requested by pending jobs and allocated to running or suspended jobs",
        ps,
        &mem,
    ));
    out.push(gauge2(
        "slurm_partition_job_gpus",
        "GPUs requested by pending jobs and allocated to running or suspended jobs",
        ps,
        &gpus,
    ));
    let part = &["partition"];
    let mut oldest = Family::gauge(
        "slurm_partition_pending_oldest_submit_timestamp_seconds",
        "Submit time of the oldest job pending in the partition (its age: time() minus this)",
        part,
    );
    let mut backlog = Family::gauge(
        "slurm_partition_pending_cpu_seconds",
        "CPUs requested by pending jobs times their time limit (jobs without a limit add nothing)",
        part,
    );
    let mut waited = Family::gauge(
        "slurm_partition_pending_cpu_weighted_submit_timestamp_seconds",
        "Submit time of pending jobs averaged with their requested CPUs as weights: the CPU-seconds waited so far are slurm_partition_job_cpus{state=\"pending\"} * (time() - this)",
        part,
    );
    for (p, x) in &pressure {
        oldest.add(&[*p], x.oldest_submit);
        backlog.add(&[*p], x.cpu_limit_seconds);
        if x.cpus > 0.0 {
            waited.add(&[*p], x.cpu_submit / x.cpus);
        }
    }
    out.extend([oldest, backlog, waited]);
}
