//! Scenarios on the Docker HA cluster (docker/cluster.sh): a primary and a
//! backup slurmctld sharing StateSaveLocation, slurmdbd, two slurmd.
//! This proves the test bed itself: Slurm fails over and back, and no job
//! is lost. On failure every daemon's log is printed.

use std::process::Command;
use std::time::{Duration, Instant};

fn repo() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn cluster(args: &[&str]) -> (bool, String) {
    let out = Command::new(repo().join("docker/cluster.sh"))
        .args(args)
        .output()
        .expect("docker/cluster.sh");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.success(), text)
}

fn ok(args: &[&str]) -> String {
    let out = Command::new(repo().join("docker/cluster.sh"))
        .args(args)
        .output()
        .expect("docker/cluster.sh");
    assert!(
        out.status.success(),
        "docker/cluster.sh {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls until `f` holds; returns how long it took.
fn wait_until(what: &str, deadline: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let t0 = Instant::now();
    while !f() {
        assert!(
            t0.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    t0.elapsed()
}

/// Prints every daemon's log and `docker-compose ps` when the test fails.
struct LogsOnFailure;
impl Drop for LogsOnFailure {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let dir = repo().join("target/ha-logs");
            let _ = cluster(&["logs", dir.to_str().unwrap()]);
            let (_, text) = cluster(&["logs"]);
            eprintln!("{text}\n(full logs in {})", dir.display());
        }
    }
}

fn in_control() -> Option<u32> {
    let (ok, out) = cluster(&["in-control"]);
    if ok {
        out.trim().parse().ok()
    } else {
        None
    }
}

#[test]
fn slurm_fails_over_to_the_backup_and_back_without_losing_jobs() {
    let _logs = LogsOnFailure;
    ok(&["up"]);
    ok(&["wait", "180"]);
    // Start from a running primary with its own slurmctld.
    assert_eq!(in_control(), Some(0));

    let mut ids = Vec::new();
    for _ in 0..20 {
        let out = ok(&[
            "exec",
            "ctl1",
            "sbatch",
            "--parsable",
            "-p",
            "debug",
            "--wrap",
            "sleep 5",
        ]);
        ids.push(out.trim().to_string());
    }

    // slurmctld saves job state a moment after changes; a kill -9 before
    // that loses the newest jobs (Slurm's behaviour, not a bed fault). Kill
    // once job_state is newer than the last submission.
    let submitted = ok(&["exec", "ctl1", "date", "+%s"])
        .trim()
        .parse::<u64>()
        .unwrap();
    wait_until(
        "slurmctld to save the submitted jobs",
        Duration::from_secs(60),
        || {
            let (ok, out) = cluster(&[
                "exec",
                "ctl1",
                "stat",
                "-c",
                "%Y",
                "/var/spool/slurmctld/job_state",
            ]);
            ok && out.trim().parse::<u64>().is_ok_and(|t| t > submitted)
        },
    );
    ok(&["kill-ctld", "ctl1"]);
    let takeover = wait_until("ctl2 to take control", Duration::from_secs(90), || {
        in_control() == Some(1)
    });
    eprintln!("takeover after kill -9 of ctl1's slurmctld: {takeover:?}");
    // Clients reach the backup now.
    wait_until("squeue through ctl2", Duration::from_secs(60), || {
        cluster(&["exec", "ctl2", "squeue", "-h", "-o", "%i"]).0
    });

    let list = ids.join(",");
    let done = wait_until(
        "the 20 jobs to finish and reach sacct",
        Duration::from_secs(240),
        || {
            let (ok, out) = cluster(&[
                "exec",
                "ctl2",
                "sacct",
                "-n",
                "-X",
                "-P",
                "-o",
                "jobid,state",
                "-j",
                &list,
            ]);
            ok && out.lines().filter(|l| l.ends_with("|COMPLETED")).count() == 20
        },
    );
    eprintln!("all 20 jobs completed and in sacct {done:?} after takeover");

    ok(&["start-ctld", "ctl1"]);
    let failback = wait_until(
        "ctl1 to take control back",
        Duration::from_secs(120),
        || in_control() == Some(0),
    );
    eprintln!("failback after restarting ctl1's slurmctld: {failback:?}");
    wait_until("both controllers up again", Duration::from_secs(60), || {
        let (ok, out) = cluster(&["exec", "ctl1", "scontrol", "ping"]);
        ok && out.contains("ctl1 is UP") && out.contains("ctl2 is UP")
    });
    let (_, out) = cluster(&[
        "exec",
        "ctl1",
        "sacct",
        "-n",
        "-X",
        "-P",
        "-o",
        "jobid,state",
        "-j",
        &list,
    ]);
    assert_eq!(
        out.lines().filter(|l| l.ends_with("|COMPLETED")).count(),
        20,
        "{out}"
    );
}
