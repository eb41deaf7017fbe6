//! The exporter against a real single-host Slurm (slurmctld, three slurmd,
//! slurmdbd, MariaDB; scripts/embedded-slurm.sh). Ground truth comes from
//! squeue/sinfo/scontrol/sacct, which only the tests run.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[test]
fn jobs_by_partition_and_state_match_squeue() {
    let _c = cluster();
    sh_ok(
        "sbatch",
        &["-Q", "-p", "debug", "-n", "1", "--wrap", "sleep 300"],
    );
    sh_ok(
        "sbatch",
        &["-Q", "-H", "-p", "debug,batch", "--wrap", "true"],
    );
    sh_ok(
        "sbatch",
        &[
            "-Q",
            "-H",
            "-p",
            "batch",
            "--array=0-199%4",
            "--wrap",
            "true",
        ],
    );
    sh_ok(
        "sbatch",
        &[
            "-Q",
            "-H",
            "-p",
            "batch",
            "--array=1,3,5-9",
            "--wrap",
            "true",
        ],
    );
    // An array with some tasks running and the rest pending: node3 fits
    // one 3-CPU task at a time (with or without the 1-CPU job above).
    sh_ok(
        "sbatch",
        &[
            "-Q",
            "-p",
            "debug",
            "-w",
            "node3",
            "-N",
            "1",
            "-n",
            "3",
            "--array=1-4",
            "--wrap",
            "sleep 300",
        ],
    );
    wait_until(
        "the first job and one array task to run",
        Duration::from_secs(60),
        || sh("squeue", &["-h", "-t", "R", "-o", "%i"]).lines().count() >= 2,
    );

    let (text, ok) = collect_once(&["--no-collector.accounting"]);
    assert!(ok, "collect --once failed");
    // squeue -r lists every array task; a multi-partition job counts in each.
    let mut want: BTreeMap<String, f64> = BTreeMap::new();
    for line in sh("squeue", &["-r", "-h", "-o", "%P|%T"]).lines() {
        let (parts, state) = line.split_once('|').unwrap();
        for p in parts.split(',') {
            *want
                .entry(labels(&[
                    ("partition", p),
                    ("state", &state.to_lowercase()),
                ]))
                .or_default() += 1.0;
        }
    }
    assert_eq!(family(&text, "squeue_partition_jobs_state"), want);
    // 200 + 7 held array tasks and one held 2-partition job pend in batch;
    // in debug the 2-partition job and 3 tasks of the array pend, one runs.
    assert_eq!(
        want[&labels(&[("partition", "batch"), ("state", "pending")])],
        208.0
    );
    assert_eq!(
        want[&labels(&[("partition", "debug"), ("state", "pending")])],
        4.0
    );
    assert_eq!(
        want[&labels(&[("partition", "debug"), ("state", "running")])],
        2.0
    );
    let held = family(&text, "slurm_partition_jobs_pending_reason");
    assert_eq!(
        held[&labels(&[("partition", "batch"), ("reason", "JobHeldUser")])],
        208.0
    );
    assert_eq!(
        family(&text, "slurm_jobs")[&labels(&[("state", "pending")])],
        211.0
    );
    // The running job holds one CPU in debug, the running task three; the
    // pending tasks ask for 3 each.
    let cpus = family(&text, "slurm_partition_job_cpus");
    assert_eq!(
        cpus[&labels(&[("partition", "debug"), ("state", "running")])],
        4.0
    );
    assert_eq!(
        cpus[&labels(&[("partition", "debug"), ("state", "pending")])],
        10.0
    );
}

/// squeue's time limit (%l): "UNLIMITED", "[D-]HH:MM:SS", "MM:SS".
fn limit_seconds(l: &str) -> Option<f64> {
    let (days, rest) = match l.split_once('-') {
        Some((d, r)) => (d.parse::<f64>().ok()?, r),
        None => (0.0, l),
    };
    let parts: Option<Vec<f64>> = rest.split(':').map(|p| p.parse().ok()).collect();
    let secs = parts?.iter().fold(0.0, |acc, p| acc * 60.0 + p);
    Some(days * 86400.0 + secs)
}

/// sshare's rows, keyed like our series: accounts by `{account="a"}`,
/// users by `{account="a",user="u",partition="p"}`; the values in
/// sshare's column order (RawShares, NormShares, RawUsage, EffectvUsage,
/// FairShare, LevelFS), an empty column as None.
fn sshare_rows() -> BTreeMap<String, Vec<Option<f64>>> {
    let text = sh_ok(
        "sshare",
        &[
            "-n",
            "-P",
            "-a",
            "-o",
            "Account,User,Partition,RawShares,NormShares,RawUsage,EffectvUsage,FairShare,LevelFS",
        ],
    );
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split('|').map(str::trim).collect();
            let [account, user, partition, rest @ ..] = f.as_slice() else {
                return None;
            };
            let key = if user.is_empty() {
                labels(&[("account", account)])
            } else {
                labels(&[
                    ("account", account),
                    ("user", user),
                    ("partition", partition),
                ])
            };
            // "parent" shares and empty columns have no number.
            Some((key, rest.iter().map(|v| v.parse().ok()).collect()))
        })
        .collect()
}

#[test]
fn fairshare_matches_sshare() {
    let _c = cluster();
    // Two accounts with different shares; root in one, daemon in the other.
    // Adding what exists already is refused harmlessly (a rerun).
    for args in [
        &["-i", "add", "account", "fsphys", "fairshare=30"][..],
        &["-i", "add", "account", "fschem", "fairshare=10"],
        &["-i", "add", "user", "root", "account=fsphys", "fairshare=2"],
        &[
            "-i",
            "add",
            "user",
            "daemon",
            "account=fschem",
            "fairshare=parent",
        ],
    ] {
        sh("sacctmgr", args);
    }
    let me = labels(&[("account", "fsphys"), ("user", "root"), ("partition", "")]);
    // slurmdbd sends new associations to slurmctld on its own time; a job
    // submitted before it has them is charged to no association.
    wait_until(
        "the new associations in slurmctld",
        Duration::from_secs(60),
        || sshare_rows().contains_key(&me),
    );
    // Without AccountingStorageEnforce=limits a job's usage is charged only
    // by slurmctld's decay run (each minute on the bed) while it runs, so
    // the job runs until a run has charged it.
    let job = submit(&[
        "-A",
        "fsphys",
        "-p",
        "debug",
        "-n",
        "1",
        "--wrap",
        "sleep 300",
    ]);
    wait_until(
        "fsphys/root usage in sshare",
        Duration::from_secs(150),
        || {
            let rows = sshare_rows();
            rows.contains_key(&labels(&[("account", "fschem")]))
                && rows.get(&me).is_some_and(|v| v[2].unwrap_or(0.0) > 0.0)
        },
    );
    sh_ok("scancel", &[&job]);
    // Both read the same association manager; a decay run between the two
    // sshare calls changes the figures, so compare only when it did not.
    let (ours, theirs) = (1..=5)
        .find_map(|_| {
            let before = sshare_rows();
            let (text, ok) = collect_once(&["--collector.fairshare.users"]);
            assert!(ok, "collect --once failed");
            (sshare_rows() == before).then_some((text, before))
        })
        .expect("sshare changed across five collections in a row");
    let column = |prefix: &str, name: &str, col: usize| {
        let family = family(&ours, &format!("{prefix}_{name}"));
        for (key, row) in &theirs {
            let is_user = key.contains("user=");
            if is_user != (prefix == "slurm_user_fairshare") {
                continue;
            }
            let (got, want) = (family.get(key).copied(), row[col]);
            let equal = match (got, want) {
                (Some(g), Some(w)) if name == "raw_usage" => g.floor() == w,
                (Some(g), Some(w)) => g == w || (g - w).abs() < 1.5e-6,
                (None, None) => true,
                _ => false,
            };
            assert!(equal, "{prefix}_{name}{key}: ours {got:?}, sshare {want:?}");
        }
        // No series sshare does not show.
        for key in family.keys() {
            assert!(
                theirs.contains_key(key),
                "{prefix}_{name}{key} not in sshare"
            );
        }
    };
    for prefix in ["slurm_account_fairshare", "slurm_user_fairshare"] {
        for (name, col) in [
            ("shares", 0),
            ("shares_normalized", 1),
            ("raw_usage", 2),
            ("effective_usage", 3),
            ("level", 5),
        ] {
            column(prefix, name, col);
        }
    }
    column("slurm_user_fairshare", "factor", 4);
    // Not all zeros: the figures the comparison rests on moved.
    let norm = family(&ours, "slurm_account_fairshare_shares_normalized");
    let phys = norm[&labels(&[("account", "fsphys")])];
    let chem = norm[&labels(&[("account", "fschem")])];
    assert!(phys > chem && chem > 0.0, "fsphys {phys}, fschem {chem}");
    assert!(family(&ours, "slurm_user_fairshare_raw_usage")[&me] > 0.0);
    // Per-user series only when asked for.
    let (text, _) = collect_once(&[]);
    assert!(!text.contains("slurm_user_fairshare_"));
    assert!(text.contains("slurm_account_fairshare_shares_normalized{"));
}

#[test]
fn accounts_users_and_queue_pressure_match_squeue() {
    let _c = cluster();
    // root in its default account and in physics; daemon (uid 1) in
    // chemistry, with a running job, a pending array and a job pending in
    // two partitions.
    let daemon = ["--uid=daemon", "--chdir=/tmp", "-A", "chemistry"];
    let job = |extra: &[&str], args: &[&str]| {
        let mut all: Vec<&str> = extra.to_vec();
        all.extend_from_slice(args);
        submit(&all)
    };
    job(
        &[],
        &["-H", "-p", "debug", "-n", "3", "-t", "30", "--wrap", "true"],
    );
    job(
        &["-A", "physics"],
        &["-H", "-p", "batch", "-n", "2", "--wrap", "true"],
    );
    job(
        &["-A", "physics"],
        &[
            "-H",
            "-p",
            "debug",
            "-n",
            "1",
            "-t",
            "2-00:00:00",
            "--wrap",
            "true",
        ],
    );
    let running = job(
        &daemon,
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
    );
    job(
        &daemon,
        &[
            "-H", "-p", "batch", "-a", "0-3", "-t", "10", "--wrap", "true",
        ],
    );
    job(
        &daemon,
        &[
            "-H",
            "-p",
            "debug,batch",
            "-n",
            "4",
            "-t",
            "5",
            "--wrap",
            "true",
        ],
    );
    wait_until("daemon's job to run", Duration::from_secs(60), || {
        sh("squeue", &["-h", "-j", &running, "-o", "%T"]).trim() == "RUNNING"
    });

    let squeue = || sh("squeue", &["-r", "-h", "-o", "%a|%u|%T|%C|%P|%l|%V"]);
    let (text, rows) = loop {
        let before = squeue();
        let (text, ok) = collect_once(&[
            "--no-collector.accounting",
            "--collector.accounts",
            "--collector.users",
        ]);
        assert!(ok, "collect --once failed:\n{text}");
        if squeue() == before {
            break (text, before);
        }
    };
    // One cycle, and jobs read by three collectors (jobs, accounts, users)
    // and nodes by two: each source was still loaded once.
    for source in ["jobs", "nodes", "partitions"] {
        assert_eq!(requests(&text, source), (1.0, 0.0), "{source}");
    }
    // squeue -r lists each array task; %C is what a pending job asks for
    // and a running one holds.
    let mut jobs: BTreeMap<String, f64> = BTreeMap::new();
    let mut cpus: BTreeMap<String, f64> = BTreeMap::new();
    let mut oldest: BTreeMap<String, f64> = BTreeMap::new();
    let mut backlog: BTreeMap<String, f64> = BTreeMap::new();
    for line in rows.lines() {
        let f: Vec<&str> = line.split('|').collect();
        let (account, user, state) = (f[0], f[1], f[2].to_lowercase());
        let n: f64 = f[3].parse().unwrap();
        for (by, who) in [("account", account), ("user", user)] {
            let key = format!("{by}|{}", labels(&[(by, who), ("state", &state)]));
            *jobs.entry(key.clone()).or_default() += 1.0;
            *cpus.entry(key).or_default() += n;
        }
        if state == "pending" {
            let submit: f64 = sh("date", &["-d", f[6], "+%s"]).trim().parse().unwrap();
            for p in f[4].split(',') {
                let key = labels(&[("partition", p)]);
                let o = oldest.entry(key.clone()).or_insert(f64::MAX);
                *o = o.min(submit);
                *backlog.entry(key).or_default() += limit_seconds(f[5]).map_or(0.0, |l| n * l);
            }
        }
    }
    let ours = |by: &str, family_name: &str| -> BTreeMap<String, f64> {
        family(&text, family_name)
            .into_iter()
            .map(|(k, v)| (format!("{by}|{k}"), v))
            .collect()
    };
    let split = |m: &BTreeMap<String, f64>, by: &str| -> BTreeMap<String, f64> {
        m.iter()
            .filter(|(k, _)| k.starts_with(&format!("{by}|")))
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    };
    for by in ["account", "user"] {
        assert_eq!(
            ours(by, &format!("slurm_{by}_jobs")),
            split(&jobs, by),
            "{by} jobs"
        );
        assert_eq!(
            ours(by, &format!("slurm_{by}_cpus")),
            split(&cpus, by),
            "{by} CPUs"
        );
    }
    assert_eq!(
        jobs[&format!(
            "user|{}",
            labels(&[("user", "daemon"), ("state", "pending")])
        )],
        5.0,
        "the array's 4 tasks and the 2-partition job"
    );
    assert_eq!(
        family(
            &text,
            "slurm_partition_pending_oldest_submit_timestamp_seconds"
        ),
        oldest
    );
    assert_eq!(
        family(&text, "slurm_partition_pending_cpu_seconds"),
        backlog
    );
    // debug: 3 CPUs x 30 min + 1 x 2 days + 4 x 5 min.
    assert_eq!(
        backlog[&labels(&[("partition", "debug")])],
        3.0 * 1800.0 + 172_800.0 + 4.0 * 300.0
    );
}

#[test]
fn partition_node_states_and_cpus_match_sinfo() {
    let _c = cluster();
    sh_ok(
        "scontrol",
        &[
            "update",
            "nodename=node2",
            "state=drain",
            "reason=disk_check",
        ],
    );
    // ghost1 has no slurmd; while slurmctld still waits for its first
    // registration the update may not stick, so repeat it until it shows.
    wait_until(
        "ghost1 to be down with our reason",
        Duration::from_secs(60),
        || {
            sh_ok(
                "scontrol",
                &["update", "nodename=ghost1", "state=down", "reason=hw_fault"],
            );
            sh("scontrol", &["show", "node", "ghost1"]).contains("Reason=hw_fault")
        },
    );
    sh_ok(
        "sbatch",
        &[
            "-Q",
            "-p",
            "debug",
            "-w",
            "node1",
            "-n",
            "3",
            "--wrap",
            "sleep 300",
        ],
    );
    wait_until("the job to run on node1", Duration::from_secs(60), || {
        sh("squeue", &["-h", "-t", "R", "-o", "%N"]).contains("node1")
    });
    let (text, ok) = collect_once(&["--no-collector.accounting"]);
    let want = sinfo_partition_rows();
    let cpus = sh("sinfo", &["-h", "-N", "-o", "%N %C"]);
    sh_ok("scontrol", &["update", "nodename=node2", "state=resume"]);
    assert!(ok);

    assert_eq!(family(&text, "sinfo_partition_nodes_state"), want);
    assert!(
        want.keys()
            .any(|k| k.contains("node2") && k.contains("drained") && k.contains("disk_check")),
        "{want:?}"
    );
    assert!(
        want.keys()
            .any(|k| k.contains("ghost1") && k.contains("hw_fault")),
        "{want:?}"
    );
    // A down node's CPUs are "other" (sinfo's %C), not idle.
    assert_eq!(idle_of(&text, "ghost1"), 0.0);

    // %C is allocated/idle/other/total per node.
    let alloc = family(&text, "slurm_node_cpus_alloc");
    let idle = family(&text, "slurm_node_cpus_idle");
    for line in cpus.lines() {
        let (node, c) = line.split_once(' ').unwrap();
        let v: Vec<f64> = c.split('/').map(|x| x.parse().unwrap()).collect();
        let key = labels(&[("node", node)]);
        assert_eq!(alloc[&key], v[0], "alloc cpus of {node}");
        assert_eq!(idle[&key], v[1], "idle cpus of {node}");
    }
    assert_eq!(alloc[&labels(&[("node", "node1")])], 3.0);
}

/// GPUs per type of a GRES string as sinfo prints it ("gpu:tesla:1(IDX:0)",
/// "gpu:1(S:0)", "(null)"): type "" for untyped.
fn sinfo_gpus(gres: &str) -> BTreeMap<String, f64> {
    let mut plain = String::new();
    let mut depth = 0;
    for c in gres.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ if depth == 0 => plain.push(c),
            _ => {}
        }
    }
    let mut out = BTreeMap::new();
    for entry in plain.split(',') {
        let parts: Vec<&str> = entry.split(':').collect();
        let (kind, n) = match parts.as_slice() {
            ["gpu", n] => ("", n),
            ["gpu", kind, n] => (*kind, n),
            _ => continue,
        };
        *out.entry(kind.to_string()).or_insert(0.0) += n.parse::<f64>().unwrap();
    }
    out
}

#[test]
fn gpus_by_type_match_sinfo() {
    let _c = cluster();
    // node3 has two typed GPUs (tesla), node2 one untyped (embedded-slurm.sh).
    submit(&[
        "-p",
        "debug",
        "-w",
        "node3",
        "--gres=gpu:tesla:1",
        "--wrap",
        "sleep 300",
    ]);
    submit(&[
        "-p",
        "debug",
        "-w",
        "node2",
        "--gres=gpu:1",
        "--wrap",
        "sleep 300",
    ]);
    wait_until("both GPU jobs to run", Duration::from_secs(60), || {
        sh("squeue", &["-h", "-t", "R", "-o", "%i"]).lines().count() == 2
    });
    let (text, ok) = collect_once(&["--no-collector.accounting"]);
    assert!(ok);
    let configured = sh("sinfo", &["-h", "-N", "-o", "%N %G"]);
    let used = sh("sinfo", &["-h", "-N", "-O", "NodeList:30,GresUsed:80"]);
    let mut want_total: BTreeMap<String, f64> = BTreeMap::new();
    let mut want_alloc: BTreeMap<String, f64> = BTreeMap::new();
    for (lines, want) in [(&configured, &mut want_total), (&used, &mut want_alloc)] {
        for line in lines.lines() {
            let mut f = line.split_whitespace();
            let (node, gres) = (f.next().unwrap(), f.next().unwrap_or(""));
            let gpus = sinfo_gpus(gres);
            if gpus.is_empty() {
                want.insert(labels(&[("node", node), ("type", "")]), 0.0);
            }
            for (kind, n) in gpus {
                want.insert(labels(&[("node", node), ("type", &kind)]), n);
            }
        }
    }
    let total = family(&text, "slurm_node_gpus");
    assert_eq!(total, want_total);
    // sinfo prints a used entry only for what is configured: the same keys.
    assert_eq!(family(&text, "slurm_node_gpus_alloc"), want_alloc);
    assert_eq!(total[&labels(&[("node", "node3"), ("type", "tesla")])], 2.0);
    assert_eq!(
        want_alloc[&labels(&[("node", "node3"), ("type", "tesla")])],
        1.0
    );
    assert_eq!(want_alloc[&labels(&[("node", "node2"), ("type", "")])], 1.0);
    let cluster_gpus = family(&text, "slurm_cluster_gpus");
    assert_eq!(
        cluster_gpus[&labels(&[("state", "total"), ("type", "tesla")])],
        2.0
    );
    assert_eq!(
        cluster_gpus[&labels(&[("state", "alloc"), ("type", "")])],
        1.0
    );
    let part = family(&text, "slurm_partition_gpus");
    assert_eq!(
        part[&labels(&[
            ("partition", "debug"),
            ("state", "alloc"),
            ("type", "tesla")
        ])],
        1.0
    );
}

fn idle_of(text: &str, node: &str) -> f64 {
    family(text, "slurm_node_cpus_idle")[&labels(&[("node", node)])]
}

#[test]
fn licenses_reservations_scheduler_and_controllers_are_exported() {
    let _c = cluster();
    let _ = sh("scontrol", &["delete", "reservation=maint_test"]);
    sh_ok(
        "scontrol",
        &[
            "create",
            "reservation",
            "reservationname=maint_test",
            "starttime=now",
            "duration=60",
            "nodes=node3",
            "users=root",
            "flags=maint",
        ],
    );
    sh_ok(
        "sbatch",
        &["-Q", "-p", "debug", "-L", "fluent:3", "--wrap", "sleep 300"],
    );
    wait_until("the licensed job to run", Duration::from_secs(60), || {
        sh("squeue", &["-h", "-t", "R", "-o", "%i"]).lines().count() == 1
    });
    let (text, ok) = collect_once(&["--no-collector.accounting"]);
    sh_ok("scontrol", &["delete", "reservation=maint_test"]);
    assert!(ok);
    let f = |name: &str, l: &[(&str, &str)]| family(&text, name).get(&labels(l)).copied();
    assert_eq!(
        f("slurm_license_configured", &[("license", "fluent")]),
        Some(10.0)
    );
    assert_eq!(
        f("slurm_license_in_use", &[("license", "fluent")]),
        Some(3.0)
    );
    assert_eq!(f("slurm_license_free", &[("license", "fluent")]), Some(7.0));
    assert_eq!(
        f("slurm_reservation_nodes", &[("reservation", "maint_test")]),
        Some(1.0)
    );
    assert_eq!(
        f("slurm_reservation_active", &[("reservation", "maint_test")]),
        Some(1.0)
    );
    let host = sh_ok("scontrol", &["show", "config"])
        .lines()
        .find(|l| l.starts_with("SlurmctldHost[0]"))
        .and_then(|l| l.split('=').nth(1))
        .map(|h| h.trim().split('(').next().unwrap().to_string())
        .unwrap();
    assert_eq!(
        f("slurm_controller_up", &[("host", &host), ("index", "0")]),
        Some(1.0)
    );
    // The scheduler counts our own RPCs: at least one REQUEST_JOB_INFO.
    assert!(f("slurm_rpc_calls_total", &[("rpc", "REQUEST_JOB_INFO")]).unwrap_or(0.0) >= 1.0);
    assert!(f("sdiag_server_thread_count", &[]).unwrap_or(0.0) >= 1.0);
}

#[test]
fn both_formats_pass_promtool_and_negotiation_picks_them() {
    let _c = cluster();
    // Held, so it pends whatever the nodes do: the job families then have
    // a sample for promtool to check whether a launch fails or not.
    let id = sh_ok(
        "sbatch",
        &["--parsable", "-H", "-p", "debug", "--wrap", "sleep 300"],
    );
    let id = id.trim();
    wait_until("the held job to be listed", Duration::from_secs(30), || {
        sh("squeue", &["-h", "-j", id, "-o", "%T"]).trim() == "PENDING"
    });
    // Every collector that can run here, the opt-in ones too.
    let d = daemon(&["--collector.accounts", "--collector.users"]);
    let text = metrics(d.port);
    assert!(
        text.contains("slurm_user_jobs{user=\"root\",state=\"pending\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("squeue_partition_jobs_state{partition=\"debug\",state=\"pending\"} 1"),
        "job {id}: {}\n{text}",
        sh("scontrol", &["show", "job", id])
    );
    assert_eq!(promtool_problems(&text), Vec::<String>::new());

    let prom_accept =
        "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
    let (status, head, om) = http_get(d.port, "/metrics", Some(prom_accept)).unwrap();
    assert_eq!(status, 200);
    assert!(
        head.contains("Content-Type: application/openmetrics-text; version=1.0.0; charset=utf-8"),
        "{head}"
    );
    assert!(om.ends_with("# EOF\n"));
    assert_eq!(openmetrics_parse_error(&om), None);
    // The parser is strict: a broken exposition does fail it.
    assert!(openmetrics_parse_error(&om.replace("# EOF\n", "")).is_some());
    assert!(om.contains("# TYPE slurm_rpc_calls counter\n"));
    // Same samples in both formats (the OpenMetrics one may be a later snapshot).
    assert_eq!(
        family(&om, "slurm_node_cpus").keys().collect::<Vec<_>>(),
        family(&text, "slurm_node_cpus").keys().collect::<Vec<_>>()
    );
    let (status, head, _) = http_get(d.port, "/metrics", Some("text/plain;version=0.0.4")).unwrap();
    assert_eq!(status, 200);
    assert!(head.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8"));
    assert_eq!(http_get(d.port, "/nope", None).unwrap().0, 404);
    assert_eq!(
        http_raw(
            d.port,
            "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
        )
        .unwrap()
        .0,
        405
    );
    let big = format!(
        "GET /metrics HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    assert_eq!(http_raw(d.port, &big).unwrap().0, 431);
    assert_eq!(http_get(d.port, "/-/healthy", None).unwrap().0, 200);
}

fn success(text: &str, collector: &str) -> Option<f64> {
    family(text, "slurm_exporter_collector_success")
        .get(&labels(&[("collector", collector)]))
        .copied()
}

#[test]
fn a_dead_slurmctld_keeps_the_last_snapshot_and_recovers() {
    let _c = cluster();
    sh_ok("sbatch", &["-Q", "-p", "debug", "--wrap", "sleep 300"]);
    // Running before the first scrape: a job that starts after it would
    // change the last good values this test expects to be kept.
    wait_until("the job to run", Duration::from_secs(60), || {
        sh("squeue", &["-h", "-t", "R", "-o", "%i"]).lines().count() == 1
    });
    let d = daemon(&[
        "--collector.jobs.interval=1s",
        "--collector.nodes.interval=1s",
        "--no-collector.accounting",
    ]);
    let before = family(&metrics(d.port), "squeue_partition_jobs_state");
    assert!(!before.is_empty());
    let out = script(&["stop-ctld"]);
    assert!(out.status.success());
    wait_until(
        "the jobs collector to report failure",
        Duration::from_secs(90),
        || success(&metrics(d.port), "jobs") == Some(0.0),
    );
    // Still serving the last good values while slurmctld is gone.
    let during = metrics(d.port);
    assert_eq!(family(&during, "squeue_partition_jobs_state"), before);
    // One-shot collection says so in its exit status.
    let (_, ok) = collect_once(&["--no-collector.accounting", "--no-collector.cyclecloud"]);
    assert!(!ok, "collect --once must fail while slurmctld is down");
    let out = script(&["start-ctld"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until(
        "the jobs collector to recover",
        Duration::from_secs(90),
        || success(&metrics(d.port), "jobs") == Some(1.0),
    );
}

#[test]
fn a_dead_slurmdbd_fails_only_the_accounting_collector() {
    let _c = cluster();
    let d = daemon(&[
        "--collector.accounting.interval=1s",
        "--collector.jobs.interval=1s",
        "--collector.dbd.interval=1s",
    ]);
    let dbd_up = |m: &str| family(m, "slurm_dbd_up").values().next().copied();
    wait_until("accounting to succeed", Duration::from_secs(60), || {
        let m = metrics(d.port);
        success(&m, "accounting") == Some(1.0) && dbd_up(&m) == Some(1.0)
    });
    assert!(script(&["stop-dbd"]).status.success());
    // A dead slurmdbd is what the dbd collector reports, not its failure.
    wait_until("accounting to fail", Duration::from_secs(120), || {
        let m = metrics(d.port);
        success(&m, "accounting") == Some(0.0)
            && success(&m, "jobs") == Some(1.0)
            && dbd_up(&m) == Some(0.0)
            && success(&m, "dbd") == Some(1.0)
    });
    let out = script(&["start-dbd"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until("accounting to recover", Duration::from_secs(120), || {
        let m = metrics(d.port);
        success(&m, "accounting") == Some(1.0) && dbd_up(&m) == Some(1.0)
    });
}

#[test]
fn slurmdbd_statistics_match_sacctmgr() {
    let _c = cluster();
    // sacctmgr prints "  NAME  ( NUMBER) count:N ave_time:A total_time:T"
    // under "Remote Procedure Call statistics by message type".
    let sacctmgr = || -> BTreeMap<String, f64> {
        let out = sh("sacctmgr", &["show", "stats"]);
        let mut m = BTreeMap::new();
        let mut in_types = false;
        for line in out.lines() {
            if line.starts_with("Remote Procedure Call statistics by message type") {
                in_types = true;
                continue;
            }
            if line.starts_with("Remote Procedure Call statistics by user") {
                in_types = false;
            }
            let (Some(open), Some(close)) = (line.find('('), line.find(')')) else {
                continue;
            };
            let count = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("count:"))
                .and_then(|c| c.parse::<f64>().ok());
            if let (true, Some(count)) = (in_types, count) {
                m.insert(labels(&[("type", line[open + 1..close].trim())]), count);
            }
        }
        m
    };
    let before = sacctmgr();
    let (text, ok) = collect_once(&["--no-collector.accounting"]);
    assert!(ok, "{text}");
    let after = sacctmgr();
    let ours = family(&text, "slurm_dbd_rpc_type_calls_total");
    assert_eq!(family(&text, "slurm_dbd_up").values().next(), Some(&1.0));
    assert!(!ours.is_empty(), "no RPC statistics:\n{text}");
    // Each count lies between sacctmgr's before and after (the requests of
    // sacctmgr and ours move them in between).
    for (k, v) in &ours {
        let (lo, hi) = (
            before.get(k).copied().unwrap_or(0.0),
            after.get(k).copied().unwrap_or(0.0),
        );
        assert!(
            lo <= *v && *v <= hi,
            "{k}: sacctmgr {lo} then {hi}, ours {v}"
        );
    }
    // Every type sacctmgr saw before, ours has; every type of ours,
    // sacctmgr sees after.
    for k in before.keys() {
        assert!(ours.contains_key(k), "{k} missing: ours {ours:?}");
    }
    for k in ours.keys() {
        assert!(after.contains_key(k), "{k} unknown to sacctmgr: {after:?}");
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn finished_jobs_are_counted_like_sacct() {
    let _c = cluster();
    let started = now();
    // A state of its own, new: counting starts now, with empty histograms
    // (the cluster's StateSaveLocation keeps what earlier runs counted).
    let state = std::env::temp_dir().join(format!("finished-jobs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    std::fs::create_dir_all(&state).unwrap();
    let d = daemon(&[
        "--collector.accounting.interval=1s",
        &format!("--ha.state-save-location={}", state.display()),
    ]);
    wait_until("accounting to succeed", Duration::from_secs(60), || {
        success(&metrics(d.port), "accounting") == Some(1.0)
    });
    // Exit codes no other test (or earlier run) uses mark this test's jobs
    // (20..=121 as sacct prints them; plugin_slurmctld uses 13).
    let code = 20 + std::process::id() % 100;
    // The batch jobs exit with 128 or more: sacct before 25.11 prints that
    // minus 128, and the label must read the same.
    let (c1, c2) = (format!("exit {code}"), format!("exit {}", code + 130));
    // Series whose exit code is not this test's alone, read before and
    // after: a cancelled job ("CANCELLED by 0" in sacct) and exit 1
    // (reason "General failure", the CycleCloud exporter's meaning).
    let label = |k: &str, n: &str| -> String {
        k.split(&format!("{n}=\""))
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or("")
            .to_string()
    };
    let series = |partition: &str, state: &str, exit: &str, reason: &str| -> f64 {
        family(&metrics(d.port), "sacct_terminal_jobs_total")
            .iter()
            .filter(|(k, _)| {
                label(k, "partition") == partition
                    && label(k, "state") == state
                    && label(k, "exit_code") == exit
                    && label(k, "reason") == reason
            })
            .map(|(_, v)| *v)
            .sum()
    };
    // Everything that ended before this test is counted by now, so the
    // increase below is this test's jobs.
    wait_until(
        "the watermark to pass the start",
        Duration::from_secs(120),
        || {
            family(
                &metrics(d.port),
                "slurm_exporter_accounting_watermark_timestamp_seconds",
            )
            .values()
            .any(|w| *w >= started as f64)
        },
    );
    let cancelled_before = series("debug", "cancelled", "0:0", "");
    let general_before = series("batch", "failed", "1:0", "General failure");
    for _ in 0..4 {
        sh_ok("sbatch", &["-Q", "-p", "debug", "--wrap", &c1]);
    }
    for _ in 0..2 {
        sh_ok("sbatch", &["-Q", "-p", "batch", "--wrap", &c2]);
    }
    sh_ok("sbatch", &["-Q", "-p", "batch", "--wrap", "exit 1"]);
    let to_cancel: Vec<String> = (0..2)
        .map(|_| submit(&["-p", "debug", "--wrap", "sleep 600"]))
        .collect();
    wait_until("the jobs to cancel to run", Duration::from_secs(60), || {
        to_cancel
            .iter()
            .all(|id| sh("squeue", &["-h", "-j", id, "-o", "%T"]).trim() == "RUNNING")
    });
    for id in &to_cancel {
        sh_ok("scancel", &[id]);
    }
    let ours = |k: &(String, String, String)| {
        [code, code + 2, code + 130]
            .iter()
            .any(|c| k.2 == format!("{c}:0"))
    };
    // The exporter counts every job that ended since its counting_since
    // (a lookback before its start), an earlier run's jobs with the same
    // exit code among them: sacct is asked for the same window.
    let since = family(
        &metrics(d.port),
        "slurm_exporter_accounting_counting_since_timestamp_seconds",
    )
    .values()
    .next()
    .copied()
    .expect("counting_since is exported");
    let start = chrono_like(since as u64);
    // Finished allocations in the exporter's window, times in Unix seconds.
    let sacct = |fields: &str| {
        let out = std::process::Command::new("sacct")
            .args([
                "-a",
                "-X",
                "-n",
                "-P",
                "-S",
                &start,
                "-E",
                "now",
                "-s",
                "CD,F,CA,TO,NF,PR,BF,DL,OOM",
                "-o",
                fields,
            ])
            .env("SLURM_CONF", slurm_conf())
            .env("SLURM_TIME_FORMAT", "%s")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let truth = || {
        let mut m = BTreeMap::new();
        let out = sacct("partition,state,exitcode");
        for line in out.lines() {
            let f: Vec<&str> = line.split('|').collect();
            let state = f[1].split(' ').next().unwrap().to_lowercase();
            let key = (f[0].to_string(), state, f[2].to_string());
            if ours(&key) {
                *m.entry(key).or_insert(0.0) += 1.0;
            }
        }
        m
    };
    // Records may lack their partition for a moment (see SETTLE_SECS).
    wait_until("sacct to show the 6 jobs", Duration::from_secs(120), || {
        let t = truth();
        t.values().sum::<f64>() >= 6.0 && t.keys().all(|k| !k.0.is_empty())
    });
    let counted = || {
        let mut got = BTreeMap::new();
        for (k, v) in family(&metrics(d.port), "sacct_terminal_jobs_total") {
            let get = |n: &str| {
                k.split(&format!("{n}=\""))
                    .nth(1)
                    .and_then(|r| r.split('"').next())
                    .unwrap_or("")
                    .to_string()
            };
            let key = (get("partition"), get("state"), get("exit_code"));
            if ours(&key) {
                got.insert(key, v);
            }
        }
        got
    };
    wait_until(
        "the exporter to count what sacct shows",
        Duration::from_secs(60),
        || {
            let (c, t) = (counted(), truth());
            if c != t {
                eprintln!("exporter {c:?} sacct {t:?}");
            }
            c == t
        },
    );
    let got = counted();
    eprintln!("counted: {got:?}");
    assert_eq!(
        got[&(
            "debug".to_string(),
            "failed".to_string(),
            format!("{code}:0")
        )],
        4.0
    );
    assert_eq!(
        got[&(
            "batch".to_string(),
            "failed".to_string(),
            format!(
                "{}:0",
                if cfg!(slurm_ge_25_11) {
                    code + 130
                } else {
                    code + 2
                }
            )
        )],
        2.0
    );
    // Counted once: later queries overlap the same window and must not add.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(counted(), got);

    // The duration histograms hold the same jobs as the counter, and their
    // sums are sacct's: (partition, class) -> (jobs, Σ wait, Σ run).
    let class = |state: &str| match state {
        "completed" => "completed",
        "failed" | "node_fail" | "boot_fail" | "out_of_memory" => "failed",
        _ => "other",
    };
    let sacct_durations = || {
        let out = sacct("partition,state,submit,start,end");
        let mut m: BTreeMap<String, (f64, f64, f64)> = BTreeMap::new();
        for line in out.lines() {
            let f: Vec<&str> = line.split('|').collect();
            // -P: "CANCELLED by 0" whole, no truncated names.
            let state = f[1].split(' ').next().unwrap().to_lowercase();
            let (submit, end): (f64, f64) = (f[2].parse().unwrap(), f[4].parse().unwrap());
            // sacct also lists jobs that ended before -S; the exporter
            // counts from counting_since on.
            if end < since {
                continue;
            }
            let (wait, run) = match f[3].parse::<f64>() {
                Ok(start) if start > 0.0 => (start - submit, end - start),
                _ => (end - submit, 0.0),
            };
            let e = m
                .entry(labels(&[("partition", f[0]), ("class", class(&state))]))
                .or_default();
            e.0 += 1.0;
            e.1 += wait.max(0.0);
            e.2 += run;
        }
        m
    };
    let ours_durations = || {
        let text = metrics(d.port);
        let mut m: BTreeMap<String, (f64, f64, f64)> = BTreeMap::new();
        for (k, v) in family(&text, "slurm_job_queue_wait_seconds_count") {
            m.entry(k).or_default().0 = v;
        }
        for (k, v) in family(&text, "slurm_job_queue_wait_seconds_sum") {
            m.entry(k).or_default().1 = v;
        }
        for (k, v) in family(&text, "slurm_job_run_seconds_sum") {
            m.entry(k).or_default().2 = v;
        }
        for (k, v) in family(&text, "slurm_job_run_seconds_count") {
            assert_eq!(
                m.get(&k).map(|x| x.0),
                Some(v),
                "wait and run count the same jobs: {k}"
            );
        }
        m
    };
    wait_until(
        "the histograms to hold what sacct shows",
        Duration::from_secs(60),
        || {
            let (o, t) = (ours_durations(), sacct_durations());
            if o != t {
                eprintln!("histograms {o:?} sacct {t:?}");
            }
            o == t
        },
    );
    let text = metrics(d.port);
    let mut counter_by_class: BTreeMap<String, f64> = BTreeMap::new();
    for (k, v) in family(&text, "sacct_terminal_jobs_total") {
        let key = labels(&[
            ("partition", &label(&k, "partition")),
            ("class", class(&label(&k, "state"))),
        ]);
        *counter_by_class.entry(key).or_default() += v;
    }
    assert_eq!(
        family(&text, "slurm_job_run_seconds_count"),
        counter_by_class
    );
    assert_eq!(promtool_problems(&text), Vec::<String>::new());

    // sacct prints the cancelled jobs with who cancelled them; the label
    // is the state alone, and exit 1 carries its CycleCloud reason.
    let ids = to_cancel.join(",");
    wait_until(
        "sacct to show the cancels",
        Duration::from_secs(120),
        || {
            let out = sh(
                "sacct",
                &["-X", "-n", "-P", "-j", &ids, "-o", "partition,state"],
            );
            out.lines()
                .filter(|l| l.starts_with("debug|CANCELLED by "))
                .count()
                == 2
        },
    );
    wait_until(
        "the cancelled jobs and exit 1 to be counted",
        Duration::from_secs(60),
        || {
            series("debug", "cancelled", "0:0", "") >= cancelled_before + 2.0
                && series("batch", "failed", "1:0", "General failure") >= general_before + 1.0
        },
    );
    for k in family(&metrics(d.port), "sacct_terminal_jobs_total").keys() {
        let state = label(k, "state");
        assert!(
            slurm_ha_exporter::slurm::JobState::TERMINAL
                .iter()
                .any(|s| s.as_str() == state),
            "state label {state:?} is not a bare terminal state: {k}"
        );
    }
}

/// sacct's -S format, local time.
fn chrono_like(t: u64) -> String {
    let out = std::process::Command::new("date")
        .args(["-d", &format!("@{t}"), "+%Y-%m-%dT%H:%M:%S"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn bad_input_gets_a_clear_error() {
    let out = exporter().arg("--collector.nope").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown collector \"nope\""));
    let out = exporter()
        .args(["collect", "--once"])
        .env("SLURM_CONF", "/nonexistent/slurm.conf")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("cannot read Slurm configuration /nonexistent/slurm.conf"));

    // `state check` on a corrupt, truncated or missing state file: exit 1,
    // the file and what is wrong with it on stderr, nothing on stdout, and
    // the file left as it was (only the exporter sets a bad file aside).
    let dir = std::env::temp_dir().join(format!("state-check-{}", std::process::id()));
    let file = dir.join("ha_exporter/accounting.json");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let location = format!("--ha.state-save-location={}", dir.display());
    for (how, bytes, says) in [
        ("garbage", &b"garbage\x00\xff"[..], "not UTF-8"),
        (
            "truncated",
            &b"{\"format\": 1, \"gener"[..],
            "not valid JSON",
        ),
        ("missing", &b""[..], "cannot read"),
    ] {
        if how == "missing" {
            let _ = std::fs::remove_file(&file);
        } else {
            std::fs::write(&file, bytes).unwrap();
        }
        let out = exporter()
            .args(["state", "check", &location])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{how}: {err}");
        assert!(out.stdout.is_empty(), "{how}: nothing on stdout");
        assert!(
            err.starts_with("slurm-ha-exporter: ") && err.contains(&file.display().to_string()),
            "{how}: names the file: {err}"
        );
        assert!(err.contains(says), "{how}: says why: {err}");
        if how != "missing" {
            assert_eq!(
                std::fs::read(&file).unwrap(),
                bytes,
                "{how}: file untouched"
            );
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn collect_once_exits_1_when_a_collector_fails() {
    let _c = cluster();
    // The embedded cluster's slurm.conf, but slurmctld on a port where
    // nothing listens: every collector that asks slurmctld fails.
    let dir = std::env::temp_dir().join(format!("collect-fail-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("slurm.conf");
    let text = std::fs::read_to_string(slurm_conf()).unwrap();
    std::fs::write(&conf, format!("{text}SlurmctldPort=1\n")).unwrap();
    let out = exporter()
        .args(["collect", "--once", "--no-collector.accounting"])
        .env("SLURM_CONF", &conf)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("collector jobs failed"), "{err}");
    // What it could not read is said in the exposition too.
    assert_eq!(success(&text, "jobs"), Some(0.0), "{text}");
    let ok = exporter()
        .args(["collect", "--once", "--no-collector.accounting"])
        .output()
        .unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn per_node_series_can_be_switched_off_and_reasons_are_cut() {
    let _c = cluster();
    let long = format!("{}_tail", "x".repeat(40));
    sh_ok(
        "scontrol",
        &[
            "update",
            "nodename=node2",
            "state=drain",
            &format!("reason={long}"),
        ],
    );
    let (whole, ok_whole) = collect_once(&["--no-collector.accounting"]);
    let (cut, ok_cut) = collect_once(&[
        "--no-collector.accounting",
        "--no-collector.nodes.per-node",
        "--collector.nodes.reason-max-length=40",
    ]);
    sh_ok("scontrol", &["update", "nodename=node2", "state=resume"]);
    assert!(ok_whole && ok_cut);
    let per_node = [
        "slurm_node_cpus",
        "slurm_node_cpus_alloc",
        "slurm_node_cpus_idle",
        "slurm_node_memory_bytes",
        "slurm_node_memory_alloc_bytes",
        "slurm_node_gpus",
        "slurm_node_gpus_alloc",
        "slurm_node_info",
    ];
    for f in per_node {
        assert!(!family(&whole, f).is_empty(), "{f} by default");
        assert!(family(&cut, f).is_empty(), "{f} switched off");
    }
    // The totals stay, and equal.
    for f in ["slurm_nodes", "slurm_cluster_cpus", "slurm_partition_nodes"] {
        assert_eq!(family(&whole, f), family(&cut, f), "{f}");
    }
    let reasons = |text: &str| -> Vec<String> {
        family(text, "sinfo_partition_nodes_state")
            .keys()
            .filter(|k| k.contains("xxxx"))
            .cloned()
            .collect()
    };
    assert!(
        reasons(&whole).iter().all(|k| k.contains(&long)),
        "{:?}",
        reasons(&whole)
    );
    let cut_reasons = reasons(&cut);
    assert!(!cut_reasons.is_empty());
    for k in &cut_reasons {
        assert!(
            k.contains(&format!("reason=\"{}\"", "x".repeat(40))) && !k.contains("_tail"),
            "{k}"
        );
    }
}

/// Requests this exporter sent for `source`, answered with data and with
/// "no change".
fn requests(text: &str, source: &str) -> (f64, f64) {
    let f = family(text, "slurm_exporter_slurmctld_requests_total");
    let get = |answer: &str| {
        f.get(&labels(&[("source", source), ("answer", answer)]))
            .copied()
            .unwrap_or(-1.0)
    };
    (get("data"), get("unchanged"))
}

#[test]
fn an_unchanged_source_costs_a_no_change_answer_and_a_change_is_loaded() {
    let _c = cluster();
    let d = daemon(&[
        "--collector.partitions.interval=1s",
        "--no-collector.accounting",
        "--no-collector.dbd",
        "--no-collector.fairshare",
    ]);
    // Partitions change only when an admin changes one: between changes
    // each load is answered "no change" (other tests here may change
    // nodes and jobs at any time, never the partitions' settings).
    let mut first = (0.0, 0.0);
    wait_until(
        "partition loads answered \"no change\"",
        Duration::from_secs(60),
        || {
            first = requests(&metrics(d.port), "partitions");
            first.0 >= 1.0 && first.1 >= 3.0
        },
    );
    // Set to what it is: slurmctld still stamps the partition table
    // changed, and the next load must bring the data.
    sh_ok("scontrol", &["update", "partitionname=batch", "maxtime=60"]);
    wait_until(
        "the changed partition table loaded with its data",
        Duration::from_secs(60),
        || {
            let (data, unchanged) = requests(&metrics(d.port), "partitions");
            data > first.0 && unchanged >= first.1
        },
    );
    let text = metrics(d.port);
    assert_eq!(success(&text, "partitions"), Some(1.0));
    // Every source has both answers, for the dashboards' rate queries.
    for source in ["jobs", "nodes", "partitions", "stats", "config"] {
        let (data, unchanged) = requests(&text, source);
        assert!(
            data >= 0.0 && unchanged >= 0.0,
            "{source}: {data} {unchanged}"
        );
    }
    assert_eq!(
        requests(&text, "stats").1,
        0.0,
        "stats are never incremental"
    );
}

#[test]
fn sigterm_and_sigint_stop_the_daemon_cleanly_and_at_once() {
    let _c = cluster();
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let mut d = daemon(&["--no-collector.accounting"]);
        // Wait for a first snapshot: the engine is asleep between cycles,
        // where a stop used to be noticed by polling.
        wait_until("a first snapshot", Duration::from_secs(60), || {
            metrics(d.port).contains("slurm_exporter_collector_success")
        });
        let t0 = std::time::Instant::now();
        // SAFETY: a signal to our own child, still unreaped (its pid is ours).
        assert_eq!(unsafe { libc::kill(d.child.id() as i32, sig) }, 0);
        let status = loop {
            if let Some(s) = d.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "signal {sig}: the daemon did not stop within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "signal {sig}: {status:?}");
    }
}
