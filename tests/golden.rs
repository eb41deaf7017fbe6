//! The jobs, nodes and partitions collectors without slurmctld: cluster
//! states recorded from the real embedded cluster, fed back through the
//! collectors (collect::view, collect::record), must give exactly the
//! families the collectors made of the live libslurm messages at that
//! moment; and small hand-made states check the aggregation rules one by
//! one.
//!
//! tests/golden/big/ was made by `scripts/record-golden.sh` on the host's
//! Slurm 22.05 (2,004 nodes: 2,000 CLOUD nodes, drained, down, powering up,
//! reserved and in maintenance; arrays, jobs pending in several partitions
//! and for many reasons). Run it again to re-record after a change that is
//! meant to change the families.

use slurm_ha_exporter::collect::record::ClusterRecord;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

fn gunzip(path: &Path) -> String {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut text = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut text)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text
}

fn golden(name: &str) -> (ClusterRecord, String) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    let record = ClusterRecord::parse(&gunzip(&dir.join("cluster.json.gz"))).unwrap();
    (record, gunzip(&dir.join("families.prom.gz")))
}

/// family name -> its sample lines, for a readable first difference.
fn by_family(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let name = line.split(['{', ' ']).next().unwrap_or("").to_string();
        out.entry(name).or_default().push(line.to_string());
    }
    out
}

#[test]
fn recorded_cluster_gives_the_families_the_live_collectors_made() {
    let (record, want) = golden("big");
    let got = record.render();
    if got != want {
        let (g, w) = (by_family(&got), by_family(&want));
        for (name, lines) in &w {
            let theirs = g.get(name).cloned().unwrap_or_default();
            if &theirs != lines {
                let first = lines.iter().zip(&theirs).find(|(a, b)| a != b);
                panic!(
                    "{name}: {} lines recorded, {} from the records; first difference: {first:?}",
                    lines.len(),
                    theirs.len()
                );
            }
        }
        panic!("families differ (extra families from the records: {:?})", {
            g.keys().filter(|k| !w.contains_key(*k)).collect::<Vec<_>>()
        });
    }
}

#[test]
fn the_recorded_cluster_has_what_the_collectors_must_handle() {
    // So a re-recording on a bed that lost a state cannot make the golden
    // test above trivially true.
    let (record, families) = golden("big");
    assert!(record.nodes.len() >= 2000, "{} nodes", record.nodes.len());
    let states: Vec<&str> = record.nodes.iter().map(|n| n.state.as_str()).collect();
    for want in [
        "drain",
        "down",
        "cloud",
        "powered_down",
        "maint",
        "reserved",
        "powering_up",
    ] {
        assert!(
            states.iter().any(|s| s.split('+').any(|p| p == want)),
            "no node with {want}"
        );
    }
    assert!(states.iter().any(|s| s.starts_with("mixed")));
    let arrays = record.jobs.iter().filter(|j| j.array_job_id != 0).count();
    assert!(arrays > 0, "no array job");
    assert!(record.jobs.iter().any(|j| j.partition.contains(',')));
    let reasons: std::collections::BTreeSet<&str> = record
        .jobs
        .iter()
        .filter(|j| j.state == "pending")
        .map(|j| j.reason.as_str())
        .collect();
    assert!(reasons.len() >= 4, "pending reasons: {reasons:?}");
    for family in [
        "slurm_node_info",
        "sinfo_partition_nodes_state",
        "slurm_partition_jobs",
    ] {
        assert!(
            families.contains(&format!("\n{family}{{")),
            "{family} missing"
        );
    }
}

/// A small state written by hand: node lines, job lines, partition lines.
fn state(nodes: &[&str], jobs: &[&str], parts: &[&str]) -> String {
    let text = format!(
        "{{\"jobs\": [{}], \"nodes\": [{}], \"partitions\": [{}]}}",
        jobs.join(","),
        nodes.join(","),
        parts.join(",")
    );
    ClusterRecord::parse(&text).unwrap().render()
}

fn node(name: &str, state: &str, cpus: u32, alloc: u32, reason: &str) -> String {
    format!(
        r#"{{"name":"{name}","state":"{state}","cpus":{cpus},"alloc_cpus":{alloc},"real_memory_mib":1000,"alloc_memory_mib":0,"gres":"gpu:2","gres_used":"gpu:0","reason":"{reason}"}}"#
    )
}

fn job(state: &str, partition: &str, reason: &str, extra: &str) -> String {
    format!(
        r#"{{"state":"{state}","reason":"{reason}","partition":"{partition}","tres_req":"cpu=2,mem=1G,node=1","tres_alloc":""{extra}}}"#
    )
}

fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

const PART: &str = r#"{"name":"hpc","nodes":"n[1-3]","node_ranges":[[0,2]],"total_cpus":12,"state":"up","is_default":true}"#;

#[test]
fn a_pending_array_counts_its_tasks_and_a_job_in_two_partitions_counts_in_each() {
    let array = job(
        "pending",
        "hpc",
        "Priority",
        r#","array_job_id":7,"array_task_str":"0-9%2","pending_array_tasks":8"#,
    );
    let text_only = job(
        "pending",
        "hpc",
        "Priority",
        r#","array_job_id":9,"array_task_str":"0-4""#,
    );
    let task = job(
        "running",
        "hpc",
        "None",
        r#","array_job_id":7,"array_task_id":3"#,
    );
    let two = job("pending", "hpc,gpu", "Resources", "");
    let done = job("completed", "hpc", "None", "");
    let text = state(&[], &[&array, &text_only, &task, &two, &done], &[]);
    // 8 from the bitmap, 5 from the expression, the job in two partitions.
    assert_eq!(
        sample(
            &text,
            r#"slurm_partition_jobs{partition="hpc",state="pending"}"#
        ),
        Some(14.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"slurm_partition_jobs{partition="gpu",state="pending"}"#
        ),
        Some(1.0)
    );
    assert_eq!(sample(&text, r#"slurm_jobs{state="pending"}"#), Some(14.0));
    assert_eq!(sample(&text, r#"slurm_jobs{state="running"}"#), Some(1.0));
    assert_eq!(sample(&text, r#"slurm_jobs{state="completed"}"#), None);
    assert_eq!(
        sample(
            &text,
            r#"slurm_partition_jobs_pending_reason{partition="hpc",reason="Priority"}"#
        ),
        Some(13.0)
    );
    // A running job without tres_alloc falls back to what it asked for.
    assert_eq!(
        sample(
            &text,
            r#"slurm_partition_job_cpus{partition="hpc",state="pending"}"#
        ),
        Some(28.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"slurm_partition_job_cpus{partition="hpc",state="running"}"#
        ),
        Some(2.0)
    );
}

#[test]
fn cpus_split_like_sinfo_and_nodes_group_by_state_and_reason() {
    let nodes = [
        node("n1", "mixed", 4, 1, ""),
        node("n2", "mixed+drain", 4, 2, "disk"),
        node("n3", "idle+drain", 4, 0, "disk"),
    ];
    let text = state(&nodes.each_ref().map(String::as_str), &[], &[PART]);
    // n1: 1 alloc, 3 idle; n2 draining: 2 alloc, 2 other; n3 drained: 4 other.
    for (label, want) in [
        ("alloc", 3.0),
        ("idle", 3.0),
        ("other", 6.0),
        ("total", 12.0),
    ] {
        assert_eq!(
            sample(&text, &format!("slurm_cluster_cpus{{state=\"{label}\"}}")),
            Some(want)
        );
        assert_eq!(
            sample(
                &text,
                &format!("slurm_partition_cpus{{partition=\"hpc\",state=\"{label}\"}}")
            ),
            Some(want)
        );
    }
    assert_eq!(
        sample(&text, r#"slurm_node_cpus_idle{node="n2"}"#),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"sinfo_partition_nodes_state{node_list="n2",partition="hpc",state="draining",reason="disk"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"sinfo_partition_nodes_state{node_list="n1",partition="hpc",state="mixed",reason="none"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, r#"slurm_nodes_flag{flag="drain"}"#),
        Some(2.0)
    );
    assert_eq!(
        sample(&text, r#"slurm_cluster_gpus{state="total",type=""}"#),
        Some(6.0)
    );
}

#[test]
fn nodes_with_the_same_state_and_reason_share_one_compressed_line() {
    let nodes = [
        node("n1", "idle+drain", 4, 0, "bad fan"),
        node("n2", "idle+drain", 4, 0, "bad fan"),
        node("n3", "idle+maint", 4, 0, ""),
    ];
    let text = state(&nodes.each_ref().map(String::as_str), &[], &[PART]);
    assert_eq!(
        sample(
            &text,
            r#"sinfo_partition_nodes_state{node_list="n[1-2]",partition="hpc",state="drained",reason="bad fan"}"#
        ),
        Some(2.0)
    );
    // A MAINT flag on an idle node is the whole word "maint" in sinfo.
    assert_eq!(
        sample(
            &text,
            r#"sinfo_partition_nodes_state{node_list="n3",partition="hpc",state="maint",reason="none"}"#
        ),
        Some(1.0)
    );
}

#[test]
fn a_bad_record_is_refused_with_the_reason() {
    let bad_state = ClusterRecord::parse(&format!(
        "{{\"jobs\":[],\"nodes\":[{}],\"partitions\":[]}}",
        node("n1", "idle+sleepy", 4, 0, "")
    ));
    assert!(bad_state.unwrap_err().contains("sleepy"));
    let bad_job = ClusterRecord::parse(&format!(
        "{{\"jobs\":[{}],\"nodes\":[],\"partitions\":[]}}",
        job("dozing", "hpc", "None", "")
    ));
    assert!(bad_job.unwrap_err().contains("dozing"));
    let outside = ClusterRecord::parse(&format!(
        "{{\"jobs\":[],\"nodes\":[],\"partitions\":[{PART}]}}"
    ));
    assert!(outside.unwrap_err().contains("outside"));
    assert!(ClusterRecord::parse("{\"jobs\":[]").is_err());
}

#[test]
fn accounts_and_users_beyond_the_top_are_summed_as_other() {
    // Three accounts; with the default top (50) each has its own series.
    let running = |account: &str, cpus: u32| {
        format!(
            r#"{{"state":"running","reason":"None","partition":"hpc","tres_req":"","tres_alloc":"cpu={cpus},mem=1G","account":"{account}","user_id":0}}"#
        )
    };
    let jobs = [
        running("a", 8),
        running("b", 2),
        running("c", 4),
        running("c", 4),
    ];
    let text = state(&[], &jobs.each_ref().map(String::as_str), &[]);
    assert_eq!(
        sample(&text, r#"slurm_account_cpus{account="c",state="running"}"#),
        Some(8.0)
    );
    assert_eq!(
        sample(&text, r#"slurm_account_jobs{account="c",state="running"}"#),
        Some(2.0)
    );
    assert_eq!(
        sample(&text, r#"slurm_user_cpus{user="root",state="running"}"#),
        Some(18.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"slurm_account_memory_bytes{account="b",state="running"}"#
        ),
        Some(1024.0 * 1024.0 * 1024.0)
    );

    // With a top of 1, "a" (8 running CPUs, tied with "c" and first by
    // name) stays and the others are one row.
    let record = ClusterRecord::parse(&format!(
        "{{\"jobs\":[{}],\"nodes\":[],\"partitions\":[]}}",
        jobs.join(",")
    ))
    .unwrap();
    let mut out = Vec::new();
    slurm_ha_exporter::collect::usage::UsageCollector::new(
        slurm_ha_exporter::collect::usage::By::Account,
        1,
    )
    .families(record.jobs.iter(), &mut out);
    let cpus = &out[1];
    let rows: Vec<(Vec<String>, f64)> = cpus
        .samples
        .iter()
        .map(|s| (s.label_values.clone(), s.value))
        .collect();
    assert_eq!(
        rows,
        vec![
            (vec!["a".to_string(), "running".to_string()], 8.0),
            (vec!["other".to_string(), "running".to_string()], 10.0),
        ]
    );
}

#[test]
fn queue_pressure_per_partition() {
    let pending = |partition: &str, cpus: u32, submit: i64, limit: &str| {
        format!(
            r#"{{"state":"pending","reason":"Priority","partition":"{partition}","tres_req":"cpu={cpus}","tres_alloc":"","submit_time":{submit}{limit}}}"#
        )
    };
    let jobs = [
        pending("hpc", 4, 1000, r#","time_limit_minutes":10"#),
        pending("hpc", 12, 2000, ""),
        pending("hpc,gpu", 2, 500, r#","time_limit_minutes":60"#),
    ];
    let text = state(&[], &jobs.each_ref().map(String::as_str), &[]);
    let get = |family: &str, part: &str| {
        sample(
            &text,
            &format!("slurm_partition_pending_{family}{{partition=\"{part}\"}}"),
        )
    };
    assert_eq!(get("oldest_submit_timestamp_seconds", "hpc"), Some(500.0));
    assert_eq!(get("oldest_submit_timestamp_seconds", "gpu"), Some(500.0));
    // 4 CPUs x 600 s + 2 x 3600 s; the job without a limit adds nothing.
    assert_eq!(get("cpu_seconds", "hpc"), Some(9600.0));
    // (4 x 1000 + 12 x 2000 + 2 x 500) / 18
    assert_eq!(
        get("cpu_weighted_submit_timestamp_seconds", "hpc"),
        Some(29000.0 / 18.0)
    );
    assert_eq!(get("cpu_seconds", "gpu"), Some(7200.0));
}
