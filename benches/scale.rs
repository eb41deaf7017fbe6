//! How the exporter's own costs grow with the cluster: 1,000 to 100,000
//! separate jobs (pending and running, four partitions, 200 accounts and
//! 2,000 users) and 1,000 to 10,000 nodes. Records stand in for libslurm's
//! messages (collect/record.rs), so this measures our side only: what
//! libslurm spends unpacking slurmctld's answer is not in it (bench/run.sh
//! measures a live cluster). Per size it prints:
//!
//! - the steps of a cycle whose sources changed: making the families
//!   (jobs, accounts, users, nodes, partitions collectors), comparing each
//!   with the last one, rendering them (both formats and their deflate),
//!   which the engine does only for families that differ;
//! - series and body size, peak RSS of this process so far (sizes run in
//!   ascending order, so each figure is that size's peak);
//! - scrape latency p50 / p99 through the real HTTP server, plain and gzip.
//!
//!   cargo bench --bench scale

use slurm_ha_exporter::collect::jobs;
use slurm_ha_exporter::collect::nodes::NodesCollector;
use slurm_ha_exporter::collect::partitions::PartitionsCollector;
use slurm_ha_exporter::collect::record::{ClusterRecord, JobRecord, PartitionRecord};
use slurm_ha_exporter::collect::usage::{By, UsageCollector, DEFAULT_TOP};
use slurm_ha_exporter::collect::REASON_MAX_CHARS;
use slurm_ha_exporter::expose::part::Part;
use slurm_ha_exporter::expose::Format;
use slurm_ha_exporter::http::Server;
use slurm_ha_exporter::metrics::Family;
use slurm_ha_exporter::publish::{Published, Snapshot};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Instant;

const PARTITIONS: [&str; 4] = ["hpc", "htc", "gpu", "debug"];

fn cluster(njobs: usize, nnodes: usize) -> ClusterRecord {
    // Nodes as JSON: parsing gives each its state word, as a recording does.
    let nodes: Vec<String> = (0..nnodes)
        .map(|i| {
            let gpu = i % 10 == 0;
            let (state, alloc) = match i % 4 {
                0 => ("idle", 0),
                1 => ("mixed", 32),
                _ => ("allocated", 64),
            };
            format!(
                r#"{{"name":"node{i:05}","state":"{state}","cpus":64,"alloc_cpus":{alloc},"real_memory_mib":256000,"alloc_memory_mib":{},"free_memory_mib":100000,"cpu_load":{},"gres":"{}","gres_used":"{}","reason":""}}"#,
                alloc * 2000,
                f64::from(alloc) * 0.9,
                if gpu { "gpu:a100:4" } else { "" },
                if gpu { "gpu:a100:2(IDX:0-1)" } else { "" },
            )
        })
        .collect();
    // Each partition a quarter of the nodes; debug all of them.
    let quarter = nnodes / 4;
    let partitions: Vec<PartitionRecord> = PARTITIONS
        .iter()
        .enumerate()
        .map(|(p, name)| {
            let (a, b) = if *name == "debug" {
                (0, nnodes - 1)
            } else {
                (p * quarter, (p + 1) * quarter - 1)
            };
            PartitionRecord {
                name: name.to_string(),
                nodes: format!("node[{a:05}-{b:05}]"),
                node_ranges: vec![(a, b)],
                total_cpus: ((b - a + 1) * 64) as u32,
                state: "up".into(),
                max_time_minutes: Some(2880),
                is_default: p == 0,
            }
        })
        .collect();
    let reasons = [
        "Priority",
        "Resources",
        "Dependency",
        "JobHeldUser",
        "QOSMaxCpuPerUserLimit",
    ];
    let jobs: Vec<JobRecord> = (0..njobs)
        .map(|i| {
            let running = i % 10 < 3;
            let cpus = 1 << (i % 6);
            JobRecord {
                state: if running { "running" } else { "pending" }.into(),
                reason: if running {
                    "None"
                } else {
                    reasons[i % reasons.len()]
                }
                .into(),
                partition: PARTITIONS[i % PARTITIONS.len()].into(),
                tres_req: format!("cpu={cpus},mem={}M,node=1", cpus * 2000),
                tres_alloc: if running {
                    format!("cpu={cpus},mem={}M,node=1", cpus * 2000)
                } else {
                    String::new()
                },
                user_id: 10_000 + (i % 2000) as u32,
                account: format!("acct{:03}", i % 200),
                submit_time: 1_790_000_000 + i as i64,
                time_limit_minutes: Some(60 + (i % 100) as u32),
                ..Default::default()
            }
        })
        .collect();
    let json = format!(
        r#"{{"jobs":{},"nodes":[{}],"partitions":{}}}"#,
        serde_json::to_string(&jobs).expect("jobs serialize"),
        nodes.join(","),
        serde_json::to_string(&partitions).expect("partitions serialize"),
    );
    ClusterRecord::parse(&json).expect("a valid cluster record")
}

/// What the jobs, accounts, users, nodes and partitions collectors make.
fn families(c: &ClusterRecord, users: &mut UsageCollector) -> Vec<Family> {
    let mut out = Vec::new();
    jobs::families(c.jobs.iter(), &mut out);
    UsageCollector::new(By::Account, DEFAULT_TOP).families(c.jobs.iter(), &mut out);
    users.families(c.jobs.iter(), &mut out);
    NodesCollector {
        per_node: true,
        reason_max_chars: REASON_MAX_CHARS,
    }
    .families(c.nodes.iter(), &mut out);
    let parts: Vec<&PartitionRecord> = c.partitions.iter().collect();
    PartitionsCollector {
        reason_max_chars: REASON_MAX_CHARS,
    }
    .families(&parts, |i| c.nodes.get(i), &mut out);
    out
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn mean_ms<T>(runs: u32, mut f: impl FnMut() -> T) -> f64 {
    let t0 = Instant::now();
    for _ in 0..runs {
        std::hint::black_box(f());
    }
    t0.elapsed().as_secs_f64() * 1000.0 / f64::from(runs)
}

/// p50 and p99 of `n` scrapes, in ms.
fn scrape_latency(port: u16, gzip: bool, n: usize) -> (f64, f64) {
    let req = if gzip {
        "GET /metrics HTTP/1.1\r\nAccept-Encoding: gzip\r\n\r\n"
    } else {
        "GET /metrics HTTP/1.1\r\n\r\n"
    };
    let mut lat: Vec<f64> = (0..n)
        .map(|_| {
            let t = Instant::now();
            let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
            s.write_all(req.as_bytes()).expect("request");
            let mut body = Vec::new();
            s.read_to_end(&mut body).expect("response");
            assert!(body.starts_with(b"HTTP/1.1 200"), "scrape failed");
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    lat.sort_by(f64::total_cmp);
    (lat[n / 2], lat[n * 99 / 100])
}

fn main() {
    let published = Arc::new(Published::default());
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    let server = Server {
        listener,
        telemetry_path: "/metrics".into(),
        published: published.clone(),
        web: None,
    };
    std::thread::spawn(move || server.serve());

    println!(
        "{:>7} {:>6} {:>8} {:>9} {:>8} {:>11} {:>10} {:>8} {:>15} {:>15}",
        "jobs",
        "nodes",
        "series",
        "body KiB",
        "make ms",
        "compare ms",
        "render ms",
        "RSS MB",
        "plain p50/p99",
        "gzip p50/p99"
    );
    for (njobs, nnodes) in [
        (1_000, 1_000),
        (10_000, 1_000),
        (10_000, 10_000),
        (100_000, 1_000),
        (100_000, 10_000),
    ] {
        let c = cluster(njobs, nnodes);
        let mut users = UsageCollector::new(By::User, DEFAULT_TOP);
        let render = |fams: &[Family]| -> Vec<Arc<Part>> {
            fams.iter().map(|f| Arc::new(Part::render(&[f]))).collect()
        };
        let runs = if njobs >= 100_000 { 3 } else { 10 };
        // The three steps of a cycle whose sources changed: the collectors
        // make the families, the engine compares each with the last one,
        // and renders (both formats and deflate) those that differ.
        let make = mean_ms(runs, || families(&c, &mut users));
        let fams = families(&c, &mut users);
        let again = families(&c, &mut users);
        let compare = mean_ms(runs, || {
            assert!(again == fams, "a family changed without a change");
        });
        let render_all = mean_ms(runs, || render(&fams));
        let parts = render(&fams);
        let series: usize = fams.iter().map(|f| f.samples.len()).sum();
        let snapshot = Snapshot::new(parts, true, true, series);
        let body = snapshot.body(Format::Text).len();
        published.set(snapshot);
        let (p50, p99) = scrape_latency(port, false, 200);
        let (g50, g99) = scrape_latency(port, true, 200);
        println!(
            "{njobs:>7} {nnodes:>6} {series:>8} {:>9} {make:>8.1} {compare:>11.2} {render_all:>10.1} {:>8.1} {:>15} {:>15}",
            body / 1024,
            peak_rss_mb(),
            format!("{p50:.2}/{p99:.2}"),
            format!("{g50:.2}/{g99:.2}"),
        );
    }
    println!("make: the jobs, accounts, users, nodes and partitions collectors; compare: every family with the last (all equal);");
    println!("render: every family in both formats and deflated (what a steady cycle skips); RSS: this process, records and copies included");
}
