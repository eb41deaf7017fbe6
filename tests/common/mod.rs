//! Helpers for tests against the real single-host Slurm of
//! scripts/embedded-slurm.sh (started here if it is not running).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn embed_dir() -> PathBuf {
    std::env::var_os("EMBED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".embedded"))
}

pub fn slurm_conf() -> PathBuf {
    embed_dir().join("slurm.conf")
}

/// Holds an exclusive lock so tests that change the cluster run one at a
/// time, whatever the runner (nextest runs each test in its own process).
pub struct ClusterGuard {
    _fd: std::fs::File,
}

pub fn script(args: &[&str]) -> Output {
    Command::new(repo().join("scripts/embedded-slurm.sh"))
        .args(args)
        .output()
        .expect("run scripts/embedded-slurm.sh")
}

/// Starts (or checks) the embedded cluster and takes the cluster lock.
pub fn cluster() -> ClusterGuard {
    static STARTED: OnceLock<()> = OnceLock::new();
    std::fs::create_dir_all(embed_dir()).unwrap();
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(embed_dir().join("test.lock"))
        .unwrap();
    use std::os::fd::AsRawFd;
    // SAFETY: flock on an fd we own; released when the file is closed.
    assert_eq!(unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) }, 0);
    STARTED.get_or_init(|| {});
    let out = script(&["start"]);
    assert!(
        out.status.success(),
        "embedded cluster did not start: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::env::set_var("SLURM_CONF", slurm_conf());
    // Every test starts from an empty queue (jobs of root and of daemon,
    // the other user tests submit as).
    sh("scancel", &["--quiet", "-u", "root"]);
    sh("scancel", &["--quiet", "-u", "daemon"]);
    wait_until("queue to empty", Duration::from_secs(60), || {
        sh("squeue", &["-h", "-o", "%i"]).trim().is_empty()
    });
    ClusterGuard { _fd: f }
}

/// Runs a Slurm command (ground truth: used by tests only, never by the exporter).
pub fn sh(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .env("SLURM_CONF", slurm_conf())
        .output()
        .expect(cmd);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn sh_ok(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .env("SLURM_CONF", slurm_conf())
        .output()
        .expect(cmd);
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// sbatch with its output discarded; the job id.
pub fn submit(args: &[&str]) -> String {
    let mut all = vec!["--parsable", "-o", "/dev/null"];
    all.extend_from_slice(args);
    sh_ok("sbatch", &all).trim().to_string()
}

pub fn wait_until(what: &str, deadline: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while !f() {
        assert!(
            Instant::now() < end,
            "timed out after {deadline:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

pub fn exporter() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_slurm-ha-exporter"));
    c.env("SLURM_CONF", slurm_conf());
    c
}

/// `collect --once` with extra flags: (stdout, success).
pub fn collect_once(flags: &[&str]) -> (String, bool) {
    let out = exporter()
        .arg("collect")
        .arg("--once")
        .args(flags)
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.success(),
    )
}

/// The label part of a sample's key, `{k="v",...}`, in the order given.
pub fn labels(pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{{{}}}", inner.join(","))
}

/// sinfo's %T with its suffix replaced by the suffix's meaning, as the
/// CycleCloud exporter normalizes it (it knows no `+`).
pub fn cyclecloud_state(s: &str) -> String {
    let suffixes = [
        ('*', "not_responding"),
        ('~', "powered_off"),
        ('#', "powering_up"),
        ('!', "pending_power_down"),
        ('%', "powering_down"),
        ('$', "maintenance_reservation"),
        ('@', "pending_reboot"),
        ('^', "reboot_issued"),
        ('-', "planned_backfill"),
    ];
    let last = s.chars().last().unwrap_or(' ');
    suffixes
        .iter()
        .find(|(c, _)| *c == last)
        .map(|(_, n)| n.to_string())
        .unwrap_or_else(|| s.to_string())
}

/// sinfo_partition_nodes_state as the CycleCloud exporter builds it from
/// `sinfo -h -o '%N|%D|%R|%E|%T'`: label part -> node count.
pub fn sinfo_partition_rows() -> BTreeMap<String, f64> {
    let mut want = BTreeMap::new();
    for line in sh("sinfo", &["-h", "-o", "%N|%D|%R|%E|%T"]).lines() {
        let f: Vec<&str> = line.split('|').collect();
        let key = labels(&[
            ("node_list", f[0]),
            ("partition", f[2]),
            ("state", &cyclecloud_state(f[4])),
            ("reason", f[3]),
        ]);
        want.insert(key, f[1].parse::<f64>().unwrap());
    }
    want
}

/// Samples of an exposition keyed by `name{labels}` exactly as printed.
pub fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

/// Samples of one family, keyed by the label part only.
pub fn family(text: &str, name: &str) -> BTreeMap<String, f64> {
    samples(text)
        .into_iter()
        .filter_map(|(k, v)| {
            let rest = k.strip_prefix(name)?;
            (rest.is_empty() || rest.starts_with('{')).then(|| (rest.to_string(), v))
        })
        .collect()
}

pub struct Daemon {
    pub child: Child,
    pub port: u16,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the daemon on a free loopback port and waits until it answers.
pub fn daemon(flags: &[&str]) -> Daemon {
    let port = free_port();
    let child = exporter()
        .arg("run")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args(flags)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let d = Daemon { child, port };
    wait_until("the daemon to be ready", Duration::from_secs(60), || {
        http_get(port, "/-/ready", None).is_some_and(|(s, _, _)| s == 200)
    });
    d
}

/// GET over loopback: (status, headers, body).
pub fn http_get(port: u16, path: &str, accept: Option<&str>) -> Option<(u16, String, String)> {
    http_raw(
        port,
        &format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\n{}Connection: close\r\n\r\n",
            accept
                .map(|a| format!("Accept: {a}\r\n"))
                .unwrap_or_default()
        ),
    )
}

pub fn http_raw(port: u16, request: &str) -> Option<(u16, String, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(request.as_bytes()).ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, head.to_string(), body.to_string()))
}

pub fn metrics(port: u16) -> String {
    let (status, _, body) = http_get(port, "/metrics", None).expect("scrape");
    assert_eq!(status, 200);
    body
}

/// promtool's verdict on an exposition, ignoring only the lint findings on
/// the two CycleCloud names we must keep for existing dashboards.
pub fn promtool_problems(text: &str) -> Vec<String> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) must be installed");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    all.lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| !l.starts_with("sdiag_main_cycle_time_us metric names should not contain abbreviated units"))
        .filter(|l| !l.starts_with("sdiag_server_thread_count non-histogram and non-summary metrics should not have \"_count\" suffix"))
        .map(str::to_string)
        .collect()
}

/// Parses OpenMetrics text with the Prometheus Python client's strict parser
/// (Debian package python3-prometheus-client); the parser's error if any.
pub fn openmetrics_parse_error(text: &str) -> Option<String> {
    let script = "import sys\nfrom prometheus_client.openmetrics.parser import text_string_to_metric_families as p\nn = sum(len(f.samples) for f in p(sys.stdin.read()))\nprint(n)\n";
    let out = pipe("/usr/bin/python3", &["-c", script], text);
    if out.status.success() {
        None
    } else {
        Some(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Runs `program` with `text` on its stdin (from scripts/install-deps.sh).
pub fn pipe(program: &str, args: &[&str], text: &str) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} (installed by scripts/install-deps.sh): {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}
