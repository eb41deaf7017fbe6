//! Our numbers against Slurm's own exporter (metrics/openmetrics, Slurm
//! 25.11+, served by slurmctld on its port), on one cluster state.
//!
//! Selected by scripts/single-host-tests.sh where Slurm is 25.11 or later
//! (scripts/embedded-slurm.sh enables metrics/openmetrics wherever it is
//! installed); there, a slurmctld that serves no /metrics/jobs fails the
//! test. Every quantity both exporters report is compared; where Slurm's
//! figure is known to be wrong (docs/slurm-metrics.md) the comparison says
//! how, so a fix on either side makes this test fail and be revisited.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const SLURMCTLD_PORT: u16 = 6817;
const MIB: f64 = 1024.0 * 1024.0;

/// Slurm's own exposition of every endpoint, or None where it has none.
fn slurms() -> Option<BTreeMap<String, f64>> {
    let mut all = BTreeMap::new();
    for ep in ["jobs", "nodes", "partitions", "scheduler"] {
        let (status, _, body) = http_get(SLURMCTLD_PORT, &format!("/metrics/{ep}"), None)?;
        if status != 200 {
            return None;
        }
        all.extend(samples(&body));
    }
    Some(all)
}

fn get(m: &BTreeMap<String, f64>, key: &str) -> f64 {
    m.get(key).copied().unwrap_or(0.0)
}

/// Sum of the samples of `name` whose labels contain every one of `with`.
fn sum(m: &BTreeMap<String, f64>, name: &str, with: &[&str]) -> f64 {
    m.iter()
        .filter(|(k, _)| {
            k.strip_prefix(name)
                .is_some_and(|r| r.is_empty() || r.starts_with('{'))
                && with.iter().all(|w| k.contains(w))
        })
        .map(|(_, v)| v)
        .sum()
}

/// (what, ours, Slurm's) for every quantity both report.
fn pairs(ours: &BTreeMap<String, f64>, theirs: &BTreeMap<String, f64>) -> Vec<(String, f64, f64)> {
    let mut p = Vec::new();
    let mut add = |what: String, o: f64, t: f64| p.push((what, o, t));

    // Jobs by state, and what running jobs hold.
    for st in ["running", "pending"] {
        add(
            format!("jobs {st}"),
            get(ours, &format!("slurm_jobs{{state=\"{st}\"}}")),
            get(theirs, &format!("slurm_jobs_{st}")),
        );
    }
    add(
        "jobs held".into(),
        sum(
            ours,
            "slurm_partition_jobs_pending_reason",
            &["reason=\"JobHeld"],
        ),
        get(theirs, "slurm_jobs_hold"),
    );
    add(
        "CPUs allocated to jobs".into(),
        sum(ours, "slurm_partition_job_cpus", &["state=\"running\""]),
        get(theirs, "slurm_jobs_cpus_alloc"),
    );
    // Slurm: MiB under a name without a unit.
    add(
        "memory allocated to jobs, MiB".into(),
        sum(
            ours,
            "slurm_partition_job_memory_bytes",
            &["state=\"running\""],
        ) / MIB,
        get(theirs, "slurm_jobs_memory_alloc"),
    );

    // Nodes by state.
    add(
        "nodes".into(),
        sum(ours, "slurm_nodes", &[]),
        get(theirs, "slurm_nodes"),
    );
    // Slurm counts nodes by base state and flags apart: a drained idle
    // node is in both slurm_nodes_idle and slurm_nodes_drained. Ours count
    // each node once, as sinfo shows it (drained, not idle).
    add(
        "nodes idle, drained ones included".into(),
        get(ours, "slurm_nodes{state=\"idle\"}") + get(ours, "slurm_nodes{state=\"drained\"}"),
        get(theirs, "slurm_nodes_idle"),
    );
    for (o, t) in [
        ("mixed", "mixed"),
        ("allocated", "alloc"),
        ("down", "down"),
        ("unknown", "unknown"),
    ] {
        add(
            format!("nodes {o}"),
            get(ours, &format!("slurm_nodes{{state=\"{o}\"}}")),
            get(theirs, &format!("slurm_nodes_{t}")),
        );
    }
    add(
        "nodes with the drain flag".into(),
        get(ours, "slurm_nodes_flag{flag=\"drain\"}"),
        get(theirs, "slurm_nodes_drain"),
    );
    add(
        "nodes drained".into(),
        get(ours, "slurm_nodes{state=\"drained\"}"),
        get(theirs, "slurm_nodes_drained"),
    );
    add(
        "nodes draining".into(),
        get(ours, "slurm_nodes{state=\"draining\"}"),
        get(theirs, "slurm_nodes_draining"),
    );

    // Per node: CPUs and memory, total and allocated.
    for key in theirs.keys().filter(|k| k.starts_with("slurm_node_cpus{")) {
        let node = key.trim_start_matches("slurm_node_cpus");
        for (o, t, scale) in [
            ("slurm_node_cpus", "slurm_node_cpus", 1.0),
            ("slurm_node_cpus_alloc", "slurm_node_cpus_alloc", 1.0),
            // Slurm's *_bytes node memory is in MiB.
            ("slurm_node_memory_bytes", "slurm_node_memory_bytes", MIB),
            (
                "slurm_node_memory_alloc_bytes",
                "slurm_node_memory_alloc_bytes",
                MIB,
            ),
        ] {
            add(
                format!("{o}{node}"),
                get(ours, &format!("{o}{node}")) / scale,
                get(theirs, &format!("{t}{node}")),
            );
        }
    }

    // Per partition: CPUs, memory, nodes, jobs.
    for key in theirs
        .keys()
        .filter(|k| k.starts_with("slurm_partition_cpus{"))
    {
        let part = key.trim_start_matches("slurm_partition_cpus");
        let p = part.trim_start_matches('{').trim_end_matches('}');
        let ours_p = |name: &str, st: &str| get(ours, &format!("{name}{{{p},state=\"{st}\"}}"));
        add(
            format!("CPUs of partition {p}"),
            ours_p("slurm_partition_cpus", "total"),
            get(theirs, key),
        );
        add(
            format!("CPUs allocated in partition {p}"),
            ours_p("slurm_partition_cpus", "alloc"),
            get(theirs, &format!("slurm_partition_nodes_cpus_alloc{part}")),
        );
        add(
            format!("memory of partition {p}, MiB"),
            ours_p("slurm_partition_memory_bytes", "total") / MIB,
            get(theirs, &format!("slurm_partition_nodes_mem_tot{part}")),
        );
        add(
            format!("memory allocated in partition {p}, MiB"),
            ours_p("slurm_partition_memory_bytes", "alloc") / MIB,
            get(theirs, &format!("slurm_partition_nodes_mem_alloc{part}")),
        );
        add(
            format!("nodes of partition {p}"),
            sum(ours, "slurm_partition_nodes", &[p]),
            get(theirs, &format!("slurm_partition_nodes{part}")),
        );
        for st in ["running", "pending"] {
            add(
                format!("{st} jobs of partition {p}"),
                ours_p("slurm_partition_jobs", st),
                get(theirs, &format!("slurm_partition_jobs_{st}{part}")),
            );
        }
        add(
            format!("CPUs of running jobs in partition {p}"),
            ours_p("slurm_partition_job_cpus", "running"),
            get(theirs, &format!("slurm_partition_jobs_cpus_alloc{part}")),
        );
    }

    // Scheduler (sdiag) counters.
    for (o, t) in [
        ("slurm_scheduler_cycles_total", "slurm_schedule_cycle_cnt"),
        ("slurm_backfill_cycles_total", "slurm_bf_cycle_cnt"),
        (
            "slurm_scheduler_jobs_submitted_total",
            "slurm_sdiag_jobs_submitted",
        ),
        (
            "slurm_scheduler_jobs_started_total",
            "slurm_sdiag_jobs_started",
        ),
        (
            "slurm_scheduler_jobs_completed_total",
            "slurm_sdiag_jobs_completed",
        ),
        (
            "slurm_scheduler_jobs_canceled_total",
            "slurm_sdiag_jobs_canceled",
        ),
        (
            "slurm_scheduler_jobs_failed_total",
            "slurm_sdiag_jobs_failed",
        ),
        ("slurm_scheduler_agent_queue_size", "slurm_agent_queue_size"),
        (
            "slurm_scheduler_dbd_agent_queue_size",
            "slurm_slurmdbd_queue_size",
        ),
        ("slurm_backfill_jobs_total", "slurm_backfilled_jobs"),
    ] {
        add(o.into(), get(ours, o), get(theirs, t));
    }
    // Microseconds in Slurm's.
    add(
        "last scheduling cycle, µs".into(),
        (get(ours, "slurm_scheduler_cycle_last_seconds") * 1e6).round(),
        get(theirs, "slurm_schedule_cycle_last"),
    );
    p
}

#[test]
fn every_quantity_both_report_agrees_with_slurms_own_exporter() {
    let _c = cluster();
    // Selected only where Slurm has its exporter (scripts/single-host-tests.sh:
    // 25.11 and later): not serving it there is a failure, not a skip.
    assert!(
        slurms().is_some(),
        "slurmctld ({}) serves no /metrics/jobs: MetricsType=metrics/openmetrics missing from the embedded cluster?",
        sh("slurmctld", &["-V"]).trim()
    );
    // A state with something in every column: jobs running on two nodes
    // (one full, one in part; CPUs and memory allocated), one held job,
    // one node drained; ghost1 (no slurmd) is down or unknown.
    sh_ok(
        "scontrol",
        &["update", "nodename=node2", "state=drain", "reason=xcheck"],
    );
    for args in [
        &[
            "-p",
            "debug",
            "-w",
            "node1",
            "-n",
            "3",
            "--mem=700",
            "--wrap",
            "sleep 300",
        ][..],
        &[
            "-p",
            "batch",
            "-w",
            "node1",
            "-n",
            "1",
            "--wrap",
            "sleep 300",
        ],
        &[
            "-p",
            "debug",
            "-w",
            "node3",
            "-n",
            "2",
            "--wrap",
            "sleep 300",
        ],
        &["-p", "debug", "-H", "--wrap", "sleep 1"],
    ] {
        sh_ok("sbatch", &[&["-Q"][..], args].concat());
    }
    wait_until("three jobs to run", Duration::from_secs(60), || {
        sh("squeue", &["-h", "-t", "R", "-o", "%i"]).lines().count() == 3
    });

    // Slurm's figures before and after ours, the same both times: nothing
    // moved in between (scheduler counters do move).
    let t0 = Instant::now();
    let (ours, theirs) = loop {
        let before = slurms().expect("Slurm's exporter answers");
        let (text, ok) = collect_once(&["--no-collector.accounting"]);
        assert!(ok, "collect --once failed:\n{text}");
        let after = slurms().expect("Slurm's exporter answers");
        let stable = |m: &BTreeMap<String, f64>| {
            m.iter()
                .filter(|(k, _)| {
                    !k.contains("timestamp")
                        && !k.ends_with("_ts")
                        && !k.contains("latency")
                        && !k.contains("last_proc_req")
                })
                .map(|(k, v)| (k.clone(), *v))
                .collect::<BTreeMap<_, _>>()
        };
        if stable(&before) == stable(&after) {
            break (samples(&text), after);
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "Slurm's figures never held still for one collection"
        );
    };
    sh_ok("scontrol", &["update", "nodename=node2", "state=resume"]);

    let all = pairs(&ours, &theirs);
    let differ: Vec<String> = all
        .iter()
        .filter(|(_, o, t)| (o - t).abs() > 1e-9)
        .map(|(w, o, t)| format!("{w}: ours {o}, Slurm's {t}"))
        .collect();
    eprintln!(
        "compared {} quantities with Slurm's own exporter",
        all.len()
    );
    for (w, o, t) in &all {
        eprintln!("  {w}: ours {o}, Slurm's {t}");
    }
    assert!(
        differ.is_empty(),
        "{} of {} quantities differ:\n{}",
        differ.len(),
        all.len(),
        differ.join("\n")
    );
}
