//! Node states exactly as sinfo prints them, for every state an admin can
//! put a node of the embedded cluster in (scripts/embedded-slurm.sh: power
//! saving on, RebootProgram and a slow-epilog switch for this test), and
//! the combinations the steps make: drained, draining, down, fail(ing), in
//! a MAINT reservation (idle and busy), reboot ASAP and issued, power down
//! pending, powering down, powered down, powering up, completing, planned
//! by the backfill scheduler, down and not responding (ghost1, which has
//! no slurmd).
//!
//! At each step `slurm_node_info{state}` must be sinfo's `%T` without its
//! suffix and `sinfo_partition_nodes_state` what the CycleCloud exporter
//! makes of `sinfo -o '%N|%D|%R|%E|%T'`.

mod common;
use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const SUFFIXES: &[char] = &['*', '~', '#', '!', '%', '$', '@', '^', '-', '+'];

/// node -> sinfo's %T (`-N` lists a node once per partition: same state).
fn sinfo_node_states() -> BTreeMap<String, String> {
    sh("sinfo", &["-h", "-N", "-o", "%N|%T"])
        .lines()
        .filter_map(|l| l.split_once('|'))
        .map(|(n, s)| (n.to_string(), s.to_string()))
        .collect()
}

fn state_of(node: &str) -> String {
    sinfo_node_states().remove(node).unwrap_or_default()
}

/// node -> state label of our slurm_node_info.
fn our_node_states(text: &str) -> BTreeMap<String, String> {
    let value = |key: &str, label: &str| -> String {
        let start = key.find(&format!("{label}=\"")).unwrap() + label.len() + 2;
        key[start..][..key[start..].find('"').unwrap()].to_string()
    };
    family(text, "slurm_node_info")
        .keys()
        .map(|k| (value(k, "node"), value(k, "state")))
        .collect()
}

/// Collects once and compares with sinfo, taken just before and just after
/// (a state that moved in between, such as powering down, is taken again).
/// Returns sinfo's states of that moment.
fn assert_matches_sinfo(step: &str) -> BTreeMap<String, String> {
    for _ in 0..5 {
        let before = (sinfo_node_states(), sinfo_partition_rows());
        let (text, ok) = collect_once(&["--no-collector.accounting"]);
        let after = (sinfo_node_states(), sinfo_partition_rows());
        if before != after {
            continue;
        }
        assert!(ok, "{step}: a collector failed:\n{text}");
        let (nodes, rows) = before;
        let want: BTreeMap<String, String> = nodes
            .iter()
            .map(|(n, s)| {
                let word = s.strip_suffix(SUFFIXES).unwrap_or(s);
                (n.clone(), word.to_string())
            })
            .collect();
        assert_eq!(
            our_node_states(&text),
            want,
            "{step}: slurm_node_info{{state}} against sinfo -N %T {nodes:?}"
        );
        assert_eq!(
            family(&text, "sinfo_partition_nodes_state"),
            rows,
            "{step}: sinfo_partition_nodes_state against sinfo"
        );
        return nodes;
    }
    panic!("{step}: sinfo kept changing while we collected");
}

fn scontrol(args: &[&str]) {
    sh_ok("scontrol", args);
}

fn update(node: &str, state: &str) {
    sh_ok(
        "scontrol",
        &[
            "update",
            &format!("nodename={node}"),
            &format!("state={state}"),
            "reason=node_states_test",
        ],
    );
}

/// Puts the cluster back as the other tests expect it, also when a step
/// failed: every node idle and answering, no reservation, no job of ours.
struct Restore {
    jobs: Vec<String>,
}

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(embed_dir().join("slow-epilog"));
        for j in &self.jobs {
            sh("scancel", &[j]);
        }
        sh("scontrol", &["delete", "reservation=node_states"]);
        let end = Instant::now() + Duration::from_secs(120);
        loop {
            let states = sinfo_node_states();
            let settled = ["node1", "node2", "node3"]
                .iter()
                .all(|n| states.get(*n).map(String::as_str) == Some("idle"));
            if settled || Instant::now() > end {
                if !settled {
                    eprintln!("node_states: nodes not back to idle: {states:?}");
                }
                return;
            }
            for n in ["node1", "node2", "node3"] {
                let s = states.get(n).cloned().unwrap_or_default();
                if s == "idle" {
                    continue;
                }
                sh("scontrol", &["cancel_reboot", n]);
                // A powered-down node is back when its slurmd registers anew.
                if s.ends_with('~') {
                    restart_slurmd(n);
                } else if !s.ends_with('%') && !s.ends_with('#') && !s.starts_with("completing") {
                    sh(
                        "scontrol",
                        &["update", &format!("nodename={n}"), "state=resume"],
                    );
                }
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// Kills a node's slurmd and lets embedded-slurm.sh start it again.
fn restart_slurmd(node: &str) {
    let pidfile = embed_dir().join(format!("run/slurmd-{node}.pid"));
    if let Ok(pid) = std::fs::read_to_string(&pidfile) {
        sh("kill", &[pid.trim()]);
        let end = Instant::now() + Duration::from_secs(20);
        while std::path::Path::new(&format!("/proc/{}", pid.trim())).exists()
            && Instant::now() < end
        {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let out = script(&["start"]);
    if !out.status.success() {
        eprintln!(
            "node_states: restarting slurmd of {node}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn node_states_match_sinfo_in_every_state_an_admin_sets() {
    let _c = cluster();
    let mut restore = Restore { jobs: vec![] };
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut step = |what: &str, node: &str, want: &dyn Fn(&str) -> bool| {
        // Every state the node passes through while we wait is printed, so
        // a step that times out says where the node went instead.
        let mut last = String::new();
        wait_until(
            &format!("{what}: {node} in the state the step makes"),
            Duration::from_secs(90),
            || {
                let now = state_of(node);
                if now != last {
                    eprintln!("node_states: {what}: waiting, {node} is {now:?}");
                    last = now.clone();
                }
                want(&now)
            },
        );
        let states = assert_matches_sinfo(what);
        eprintln!("node_states: {what}: {states:?}");
        seen.extend(states.into_values());
    };

    // node1 busy on 2 of its 4 CPUs for at most 10 minutes (a time limit,
    // so the backfill scheduler can plan around it below).
    restore.jobs.push(submit(&[
        "-p",
        "debug",
        "-w",
        "node1",
        "-n",
        "2",
        "-t",
        "10",
        "--wrap",
        "sleep 600",
    ]));
    step("a partly used node", "node1", &|s| s == "mixed");

    update("node2", "drain");
    step("drain, idle", "node2", &|s| s == "drained");
    update("node1", "drain");
    step("drain, busy", "node1", &|s| s == "draining");
    update("node1", "resume");
    update("node2", "resume");
    step("resumed", "node1", &|s| s == "mixed");

    scontrol(&[
        "create",
        "reservation",
        "reservationname=node_states",
        "flags=maint,ignore_jobs",
        "nodes=node1,node2",
        "starttime=now",
        "duration=30",
        "users=root",
    ]);
    step("MAINT reservation, busy", "node1", &|s| s == "mixed$");
    step("MAINT reservation, idle", "node2", &|s| s == "maint");
    update("node2", "drain");
    step("MAINT reservation, drained", "node2", &|s| s == "drained$");
    update("node2", "resume");
    scontrol(&["delete", "reservation=node_states"]);
    step("reservation gone", "node2", &|s| s == "idle");

    update("node2", "fail");
    step("fail, idle", "node2", &|s| s == "fail");
    // "failing" from 25.05 on, "fail" before: sinfo says which.
    update("node1", "fail");
    step("fail, busy", "node1", &|s| s.starts_with("fail"));
    update("node1", "resume");
    update("node2", "resume");
    // A node whose slurmd answers is back from DOWN at its next ping
    // (ReturnToService=2): ghost1 has none. Until slurmctld has given up
    // waiting for its first registration the update may not stick.
    wait_until("ghost1 down", Duration::from_secs(60), || {
        sh(
            "scontrol",
            &[
                "update",
                "nodename=ghost1",
                "state=down",
                "reason=node_states_test",
            ],
        );
        state_of("ghost1") == "down*"
    });
    step("down, not responding", "ghost1", &|s| s == "down*");

    scontrol(&[
        "reboot",
        "ASAP",
        "nextstate=resume",
        "reason=node_states_test",
        "node1",
    ]);
    step("reboot ASAP, busy", "node1", &|s| s == "draining@");
    scontrol(&["cancel_reboot", "node1"]);
    step("reboot cancelled", "node1", &|s| s == "mixed");
    scontrol(&[
        "reboot",
        "nextstate=resume",
        "reason=node_states_test",
        "node2",
    ]);
    step("reboot issued", "node2", &|s| s == "reboot^");
    update("node2", "resume");
    step("reboot aborted", "node2", &|s| s == "idle");

    update("node2", "power_down");
    step("powering down", "node2", &|s| s == "idle%");
    step("powered down", "node2", &|s| s == "idle~");
    update("node2", "power_up");
    step("powering up", "node2", &|s| s == "idle#");
    // Its slurmd never stopped, so it cannot "boot" (22.05 ignores a
    // restarted slurmd while the node powers up): forced down, then its
    // slurmd restarted, as a boot would. A registration in flight may
    // clear the power flags first (idle at once), and a release may mark
    // the node down on the way: both end in idle below.
    update("node2", "power_down_force");
    step("forced down", "node2", &|s| s.ends_with('~') || s == "idle");
    restart_slurmd("node2");
    wait_until(
        "node2 back after power down",
        Duration::from_secs(90),
        || {
            let s = state_of("node2");
            if s.starts_with("down") {
                sh("scontrol", &["update", "nodename=node2", "state=resume"]);
            }
            s == "idle"
        },
    );
    step("back after power down", "node2", &|s| s == "idle");

    std::fs::write(embed_dir().join("slow-epilog"), "").unwrap();
    let job = submit(&[
        "-p",
        "debug",
        "-w",
        "node3",
        "-n",
        "1",
        "--wrap",
        "sleep 600",
    ]);
    restore.jobs.push(job.clone());
    step("before completing", "node3", &|s| s == "mixed");
    sh_ok("scancel", &[&job]);
    step("completing (slow epilog)", "node3", &|s| s == "completing");
    std::fs::remove_file(embed_dir().join("slow-epilog")).unwrap();

    // batch is node1 and node2; node1 is busy until its job's time limit,
    // so a job for both whole nodes is planned there by the backfill
    // scheduler, which holds node2 for it: PLANNED.
    restore.jobs.push(submit(&[
        "-p",
        "batch",
        "-N",
        "2",
        "--exclusive",
        "-t",
        "5",
        "--wrap",
        "true",
    ]));
    step("planned by backfill", "node2", &|s| s == "planned");

    // Last: nothing but the end of its job takes a power down pending away
    // (resume only undrains), and then node1 powers down (Restore brings it
    // back).
    update("node1", "power_down_asap");
    step("power down ASAP, busy", "node1", &|s| s == "draining!");
    update("node1", "resume");
    step("power down pending, busy", "node1", &|s| {
        s.ends_with('!') && !s.starts_with("drain")
    });

    for want in [
        "mixed",
        "drained",
        "draining",
        "mixed$",
        "maint",
        "drained$",
        "fail",
        "down*",
        "draining@",
        "reboot^",
        "draining!",
        "idle%",
        "idle~",
        "idle#",
        "completing",
        "planned",
    ] {
        assert!(seen.contains(want), "state {want} never seen: {seen:?}");
    }
}
