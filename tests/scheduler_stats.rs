//! Every sdiag figure we export, against sdiag itself on the embedded
//! cluster: taken just before and just after one collection, each figure
//! that did not move in between must be ours exactly (sdiag's means are
//! integer divisions: ours, floored, must equal them).

mod common;
use common::*;
use std::collections::BTreeMap;

/// (section, sdiag's label) -> value. Sections: "main", "backfill", and ""
/// for the lines outside them; "Last cycle when" and "Data since"
/// give the epoch seconds in parentheses.
fn sdiag() -> BTreeMap<(String, String), f64> {
    let mut out = BTreeMap::new();
    let mut section = "";
    for line in sh("sdiag", &[]).lines() {
        let t = line.trim();
        if t.starts_with("Main schedule statistics") {
            section = "main";
        } else if t.starts_with("Backfilling stats") {
            section = "backfill";
        } else if t.starts_with("Latency for") {
            section = "";
        } else if t.starts_with("Remote Procedure Call statistics") {
            break;
        }
        let (label, value) = if let Some(rest) = t.strip_prefix("Data since") {
            ("Data since", rest)
        } else if let Some((l, v)) = t.split_once(": ") {
            (l.trim(), v)
        } else {
            continue;
        };
        let number = match value.rsplit_once('(') {
            Some((_, n)) if label == "Data since" || label == "Last cycle when" => {
                n.trim_end_matches(')').to_string()
            }
            _ => value.split_whitespace().next().unwrap_or("").to_string(),
        };
        if let Ok(v) = number.parse::<f64>() {
            out.insert((section.to_string(), label.to_string()), v);
        }
    }
    out
}

/// How a figure reads in sdiag and in our exposition.
struct Figure {
    section: &'static str,
    label: &'static str,
    series: &'static str,
    /// Our value divided by this is sdiag's unit (1e-6: we say seconds,
    /// sdiag microseconds).
    scale: f64,
    /// sdiag prints an integer division: compare our value floored.
    floor: bool,
}

const fn fig(section: &'static str, label: &'static str, series: &'static str) -> Figure {
    Figure {
        section,
        label,
        series,
        scale: 1.0,
        floor: false,
    }
}
/// We say seconds where sdiag says microseconds.
const fn micros(mut f: Figure) -> Figure {
    f.scale = 1e-6;
    f
}
const fn mean(mut f: Figure) -> Figure {
    f.floor = true;
    f
}

const FIGURES: &[Figure] = &[
    fig("", "Server thread count", "slurm_scheduler_threads"),
    fig("", "Server thread count", "sdiag_server_thread_count"),
    fig("", "Agent queue size", "slurm_scheduler_agent_queue_size"),
    fig("", "Agent queue size", "sdiag_agent_queue_size"),
    fig("", "Agent count", "slurm_scheduler_agents"),
    fig("", "Agent thread count", "slurm_scheduler_agent_threads"),
    fig(
        "",
        "DBD Agent queue size",
        "slurm_scheduler_dbd_agent_queue_size",
    ),
    fig("", "DBD Agent queue size", "sdiag_dbd_agent_queue_size"),
    fig("", "Jobs submitted", "slurm_scheduler_jobs_submitted_total"),
    fig("", "Jobs started", "slurm_scheduler_jobs_started_total"),
    fig("", "Jobs completed", "slurm_scheduler_jobs_completed_total"),
    fig("", "Jobs canceled", "slurm_scheduler_jobs_canceled_total"),
    fig("", "Jobs failed", "slurm_scheduler_jobs_failed_total"),
    fig(
        "",
        "Data since",
        "slurm_scheduler_stats_reset_timestamp_seconds",
    ),
    micros(fig(
        "",
        "Latency for 1000 calls to gettimeofday()",
        "slurm_scheduler_gettimeofday_latency_seconds",
    )),
    micros(fig(
        "main",
        "Last cycle",
        "slurm_scheduler_cycle_last_seconds",
    )),
    fig(
        "main",
        "Last cycle",
        "sdiag_main_cycle_time_us{type=\"last\"}",
    ),
    micros(fig(
        "main",
        "Max cycle",
        "slurm_scheduler_cycle_max_seconds",
    )),
    fig(
        "main",
        "Max cycle",
        "sdiag_main_cycle_time_us{type=\"max\"}",
    ),
    fig("main", "Total cycles", "slurm_scheduler_cycles_total"),
    mean(micros(fig(
        "main",
        "Mean cycle",
        "slurm_scheduler_cycle_mean_seconds",
    ))),
    fig(
        "main",
        "Mean cycle",
        "sdiag_main_cycle_time_us{type=\"mean\"}",
    ),
    mean(fig(
        "main",
        "Mean depth cycle",
        "slurm_scheduler_cycle_mean_depth",
    )),
    fig("main", "Mean depth cycle", "sdiag_main_mean_depth_cycle"),
    fig("main", "Last queue length", "slurm_scheduler_queue_length"),
    fig(
        "backfill",
        "Total backfilled jobs (since last slurm start)",
        "slurm_backfill_jobs_total",
    ),
    fig(
        "backfill",
        "Total backfilled jobs (since last stats cycle start)",
        "slurm_backfill_last_jobs",
    ),
    fig(
        "backfill",
        "Total backfilled heterogeneous job components",
        "slurm_backfill_het_jobs_total",
    ),
    fig("backfill", "Total cycles", "slurm_backfill_cycles_total"),
    fig(
        "backfill",
        "Last cycle when",
        "slurm_backfill_last_cycle_timestamp_seconds",
    ),
    micros(fig(
        "backfill",
        "Last cycle",
        "slurm_backfill_cycle_last_seconds",
    )),
    micros(fig(
        "backfill",
        "Max cycle",
        "slurm_backfill_cycle_max_seconds",
    )),
    mean(micros(fig(
        "backfill",
        "Mean cycle",
        "slurm_backfill_cycle_mean_seconds",
    ))),
    fig("backfill", "Last depth cycle", "slurm_backfill_last_depth"),
    fig(
        "backfill",
        "Last depth cycle (try sched)",
        "slurm_backfill_last_depth_try",
    ),
    mean(fig("backfill", "Depth Mean", "slurm_backfill_depth_mean")),
    mean(fig(
        "backfill",
        "Depth Mean (try depth)",
        "slurm_backfill_depth_try_mean",
    )),
    fig(
        "backfill",
        "Last queue length",
        "slurm_backfill_queue_length",
    ),
    mean(fig(
        "backfill",
        "Queue length mean",
        "slurm_backfill_queue_length_mean",
    )),
    fig("backfill", "Last table size", "slurm_backfill_table_size"),
    mean(fig(
        "backfill",
        "Mean table size",
        "slurm_backfill_table_size_mean",
    )),
];

#[test]
fn every_sdiag_figure_equals_sdiag() {
    let _c = cluster();
    // Jobs to schedule, so both schedulers have cycles (and means) to show:
    // the second waits for node3's CPUs, so the backfill scheduler has a
    // pending job to look at (25.11 counts no cycle without one).
    for _ in 0..2 {
        sh_ok(
            "sbatch",
            &[
                "-Q", "-p", "debug", "-w", "node3", "-N", "1", "-n", "4", "--wrap", "sleep 5",
            ],
        );
    }
    wait_until(
        "a backfill cycle with the jobs done",
        std::time::Duration::from_secs(90),
        || {
            let d = sdiag();
            let get = |s: &str, l: &str| d.get(&(s.to_string(), l.to_string())).copied();
            get("backfill", "Total cycles").unwrap_or(0.0) > 0.0
                && get("main", "Total cycles").unwrap_or(0.0) > 0.0
                && sh("squeue", &["-h", "-o", "%i"]).trim().is_empty()
        },
    );
    let (mut compared, mut moved) = (vec![], vec![]);
    for attempt in 0..5 {
        compared.clear();
        moved.clear();
        let before = sdiag();
        let (text, ok) = collect_once(&["--no-collector.accounting"]);
        let after = sdiag();
        assert!(ok, "collect --once failed");
        let ours = samples(&text);
        for f in FIGURES {
            let key = (f.section.to_string(), f.label.to_string());
            let (Some(b), Some(a)) = (before.get(&key), after.get(&key)) else {
                panic!("sdiag has no {:?} {:?}: {before:?}", f.section, f.label);
            };
            if a != b {
                moved.push(f.label);
                continue;
            }
            let Some(v) = ours.get(f.series) else {
                panic!("we export no {}", f.series);
            };
            let v = v / f.scale;
            let v = if f.floor {
                (v + 1e-6).floor()
            } else {
                v.round()
            };
            assert_eq!(
                v, *b,
                "{} against sdiag's {:?} {:?}",
                f.series, f.section, f.label
            );
            compared.push(f.series);
        }
        // Most figures hold still on an idle cluster; retry a busy moment.
        if compared.len() >= FIGURES.len() - 4 {
            eprintln!(
                "compared {} figures with sdiag (attempt {attempt}); moved in between: {moved:?}",
                compared.len()
            );
            return;
        }
    }
    panic!("too many figures moved while we collected: {moved:?}");
}
