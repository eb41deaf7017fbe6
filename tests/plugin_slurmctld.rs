//! The plugin inside the real slurmctld of the embedded cluster, started
//! with EMBED_PLUGIN (scripts/test.sh sets it): it serves, jobs still run,
//! reconfigure keeps exactly one listener, shutdown is clean.

mod common;

use common::{embed_dir, http_get, sh, sh_ok, wait_until};
use std::time::{Duration, Instant};

fn port() -> u16 {
    std::env::var("EMBED_PLUGIN_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(19180)
}

/// The cluster lock, and a slurmctld that loaded the plugin.
fn plugin_cluster() -> common::ClusterGuard {
    let guard = common::cluster();
    let conf = std::fs::read_to_string(common::slurm_conf()).unwrap();
    assert!(
        conf.contains("JobSubmitPlugins=ha_exporter"),
        "the embedded cluster runs without the plugin: start it with \
         EMBED_PLUGIN=target/debug/libjob_submit_ha_exporter.so (scripts/test.sh does)"
    );
    // Active and ready: the first active snapshot is published after the
    // first collector, before the others (nodes) have run.
    wait_until("the plugin to serve", Duration::from_secs(60), || {
        scrape().is_some_and(|t| t.contains("slurm_exporter_active 1"))
            && http_get(port(), "/-/ready", None).is_some_and(|(s, _, _)| s == 200)
    });
    guard
}

fn scrape() -> Option<String> {
    http_get(port(), "/metrics", None).and_then(|(s, _, b)| (s == 200).then_some(b))
}

fn slurmctld_log() -> String {
    std::fs::read_to_string(embed_dir().join("log/slurmctld.log")).unwrap_or_default()
}

fn slurmctld_pid() -> Option<i32> {
    std::fs::read_to_string(embed_dir().join("run/slurmctld.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Sockets listening on `port` (IPv4), from /proc/net/tcp.
fn listeners(port: u16) -> usize {
    let want = format!(":{port:04X}");
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap()
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[1].ends_with(&want) && f[3] == "0A"
        })
        .count()
}

fn count_for_exit(text: &str, exit: &str) -> f64 {
    common::family(text, "sacct_terminal_jobs_total")
        .iter()
        .filter(|(k, _)| k.contains(&format!("exit_code=\"{exit}\"")))
        .map(|(_, v)| v)
        .sum()
}

#[test]
fn the_plugin_serves_the_cluster_and_counts_a_job_that_ran() {
    let _c = plugin_cluster();
    let text = scrape().unwrap();
    assert!(text.contains("slurm_node_cpus{node=\"node1\"} 4"), "{text}");
    assert!(
        text.contains(
            "slurm_exporter_role_info{role=\"active\",controller=\"0\",source=\"slurmctld\"}"
        ),
        "{text}"
    );
    let problems = common::promtool_problems(&text);
    assert!(problems.is_empty(), "promtool: {problems:?}");

    // A job submitted through slurmctld (the plugin's job_submit accepts
    // it unchanged) runs, and its end is counted once, via the helper.
    // Exit code 13: below the 20..=121 that finished_jobs_are_counted_like_sacct
    // draws its own codes from (it once drew 78, this test's old code, and
    // counted these jobs as its own).
    let before = count_for_exit(&text, "13:0");
    let out = std::process::Command::new("sbatch")
        .args(["--wait", "-p", "debug", "--wrap", "exit 13"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(13), "{out:?}");
    wait_until(
        "the plugin to count the job",
        Duration::from_secs(60),
        || scrape().is_some_and(|t| count_for_exit(&t, "13:0") == before + 1.0),
    );
    // And only once, over several more accounting runs.
    std::thread::sleep(Duration::from_secs(7));
    assert_eq!(count_for_exit(&scrape().unwrap(), "13:0"), before + 1.0);
}

#[test]
fn twenty_reconfigures_leave_exactly_one_working_listener() {
    let _c = plugin_cluster();
    let pid = slurmctld_pid().unwrap();
    for i in 0..20 {
        sh_ok("scontrol", &["reconfigure"]);
        wait_until(
            &format!("slurmctld to answer after reconfigure {i}"),
            Duration::from_secs(60),
            || sh("scontrol", &["ping"]).contains("is UP"),
        );
        wait_until(
            &format!("the plugin to answer after reconfigure {i}"),
            Duration::from_secs(60),
            || scrape().is_some_and(|t| t.contains("slurm_exporter_active 1")),
        );
    }
    assert_eq!(listeners(port()), 1, "one listener on port {}", port());
    // 22.05 keeps its process on reconfigure (23.11+ re-executes itself).
    let now = slurmctld_pid().unwrap();
    eprintln!("20 reconfigures: slurmctld pid {pid} -> {now}, listeners 1");
    // Still a working slurmctld: a job runs.
    let out = std::process::Command::new("sbatch")
        .args(["--wait", "-p", "debug", "--wrap", "true"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// slurmctld never calls fini() on shutdown (only when its plugin list
/// changes, and in leak-debug builds): it exits with our threads running,
/// and the plugin's exit handler stops them. Run in the foreground as our
/// child, so its exit status is known.
#[test]
fn slurmctld_shuts_down_cleanly_with_the_plugin() {
    let _c = plugin_cluster();
    let out = common::script(&["stop-ctld"]);
    assert!(out.status.success(), "{out:?}");
    let mut ctld = std::process::Command::new("slurmctld")
        .args(["-D", "-f"])
        .arg(common::slurm_conf())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // control_time is set before slurmctld's RPC thread listens: wait for both.
    wait_until(
        "the new slurmctld and its plugin",
        Duration::from_secs(60),
        || {
            scrape().is_some_and(|t| t.contains("slurm_exporter_active 1"))
                && sh("scontrol", &["ping"]).contains("is UP")
        },
    );
    let log_before = slurmctld_log().len();
    let t0 = Instant::now();
    sh_ok("scontrol", &["shutdown", "slurmctld"]);
    let status = loop {
        if let Some(st) = ctld.try_wait().unwrap() {
            break st;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "slurmctld did not exit within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let took = t0.elapsed();
    let log = slurmctld_log();
    let tail = &log[log_before.min(log.len())..];
    eprintln!("slurmctld with the plugin shut down in {took:?}: {status}");
    // A panic or a signal (SIGSEGV, SIGABRT) would not be exit status 0.
    assert_eq!(status.code(), Some(0), "{status}\n{tail}");
    for bad in ["fatal", "panic", "did not stop"] {
        assert!(!tail.contains(bad), "{bad:?} in slurmctld's log:\n{tail}");
    }
    assert_eq!(listeners(port()), 0);
    // Back for the other tests.
    let out = common::script(&["start-ctld"]);
    assert!(out.status.success(), "{out:?}");
    wait_until("the plugin to serve again", Duration::from_secs(60), || {
        scrape().is_some_and(|t| t.contains("slurm_exporter_active 1"))
    });
}

/// A plugin built for another Slurm release (FOREIGN_PLUGIN: scripts/suite.sh
/// passes the bookworm build, 22.05, into the trixie and forky containers)
/// is refused by slurmctld: a log line naming the plugin, and slurmctld
/// stops instead of running without it. A slurmctld
/// of its own (temporary directory, free port, no accounting) so the
/// embedded cluster is not touched.
#[test]
fn a_plugin_built_for_another_release_is_refused_by_slurmctld() {
    let _c = common::cluster();
    // Selected only where a build of another release exists (the suite
    // containers; scripts/single-host-tests.sh): without it, a failure.
    let foreign = std::env::var_os("FOREIGN_PLUGIN")
        .filter(|v| !v.is_empty())
        .expect("FOREIGN_PLUGIN: the path of a plugin built for another Slurm release");
    let dir = std::env::temp_dir().join(format!("foreign-plugin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("plugins")).unwrap();
    std::fs::create_dir_all(dir.join("state")).unwrap();
    std::fs::copy(&foreign, dir.join("plugins/job_submit_ha_exporter.so")).unwrap();
    let embedded = std::fs::read_to_string(common::slurm_conf()).unwrap();
    let sysdir = embedded
        .lines()
        .find_map(|l| l.strip_prefix("PluginDir="))
        .and_then(|d| d.split(':').next())
        .expect("the embedded slurm.conf names Slurm's PluginDir (EMBED_PLUGIN)")
        .to_string();
    let host = sh("hostname", &["-s"]).trim().to_string();
    let port = common::free_port();
    let conf = format!(
        "ClusterName=foreign\nSlurmctldHost={host}(127.0.0.1)\nSlurmctldPort={port}\n\
         SlurmUser=root\nAuthType=auth/munge\nStateSaveLocation={state}\n\
         PluginDir={sysdir}:{plugins}\nJobSubmitPlugins=ha_exporter\n\
         ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n\
         NodeName=n1 NodeAddr=127.0.0.1 CPUs=1 State=UNKNOWN\nPartitionName=p Nodes=n1\n",
        state = dir.join("state").display(),
        plugins = dir.join("plugins").display(),
    );
    std::fs::write(dir.join("slurm.conf"), conf).unwrap();
    let mut child = std::process::Command::new("slurmctld")
        .args(["-D", "-i", "-f"])
        .arg(dir.join("slurm.conf"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if t0.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = child.wait_with_output().unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!(
        "slurmctld {} with a foreign plugin:\n{log}",
        sh("slurmctld", &["-V"]).trim()
    );
    let status = status.expect("slurmctld kept running for 30 s with a plugin of another release");
    assert!(!status.success(), "slurmctld exited 0: {log}");
    // Two ways, both Slurm's: where the other release renamed a libslurm
    // function the plugin calls, dlopen fails on that symbol (Rust binds
    // every symbol at load); otherwise plugin_version differs and Slurm's
    // version check refuses it. Either way slurmctld names the plugin and
    // stops rather than run without it.
    assert!(
        log.contains("job_submit_ha_exporter")
            && (log.contains("Incompatible Slurm plugin") || log.contains("undefined symbol"))
            && log.contains("failed to initialize job_submit plugin"),
        "no refusal naming the plugin in slurmctld's output:\n{log}"
    );
}
