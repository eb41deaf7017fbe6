//! The seeded chaos soak (issue 25): jobs of every ending submitted all
//! the time, a fault every 1-4 minutes drawn from a seed, and the oracle
//! checked all along. A test of this binary, not a script, because the
//! oracle (slurmdbd's endings against the exporters' own counted lines
//! and counters) is the one `a_quick_failback_counts_every_ending_once`
//! uses, and it lives here. Ignored by default; `scripts/soak.sh` runs it
//! (`--seed`, `--duration`, `--release`, `--mode`), docs/soak.md says what
//! it proves and what it does not yet.
//!
//! The same seed gives the same schedule of faults and jobs (what Slurm
//! does with them differs from run to run; a failure prints its seed and
//! the schedule so far).

use super::*;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// splitmix64: small, seedable, the same on every machine.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// In lo..=hi.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Who a fault hits: the controller in control when it lands, or the other.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Whom {
    InControl,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    /// kill -9 of a slurmctld, started again after the hold.
    KillCtld(Whom),
    /// kill -9 of the primary in control, restarted as soon as the backup
    /// has control (the quick failback of issue 13).
    QuickFailback,
    /// The container frozen (slurmctld and exporter hang).
    Pause(Whom),
    /// slurmctld alone stopped (SIGSTOP), its exporter running on: a
    /// slurmctld hung in a syscall or a debugger.
    StopCtld(Whom),
    /// The controller cut off the network.
    Cut(Whom),
    /// `scontrol takeover` on the backup, the primary back after the hold.
    Takeover,
    /// kill -9 of the active exporter (daemon mode; plugin mode restarts
    /// the slurmctld it lives in).
    KillExporter,
    /// slurmdbd and MariaDB down.
    DbdDown,
    /// slurmctld's heartbeat writes fail (StateSaveLocation full, or
    /// stalled on NFS) while it stays in control.
    HeartbeatStall,
    /// StateSaveLocation full: every write there fails (slurmctld's state
    /// and heartbeat, the exporter's state file, claims and hook record).
    StateFull,
    /// node2 frozen past SlurmdTimeout: Slurm sets it DOWN, its jobs end
    /// NODE_FAIL and are requeued; it comes back when its slurmd answers
    /// (ReturnToService=2). node1 is never hit: the soak's client runs there.
    NodeFail,
}

impl Fault {
    fn name(&self) -> String {
        format!("{self:?}")
    }
}

/// One planned fault: when (seconds into the soak), what, how long.
#[derive(Debug, Clone)]
struct Planned {
    at: u64,
    fault: Fault,
    hold: u64,
    /// Two at once: slurmdbd and MariaDB go down 10 s before the fault and
    /// come back 30 s after its hold (the lead began that way).
    dbd_down_too: bool,
}

/// The schedule of faults: depends on the seed and duration alone.
fn plan(seed: u64, duration: u64) -> Vec<Planned> {
    let mut r = Rng(seed);
    let mut out = Vec::new();
    let mut at = r.range(30, 90);
    while at < duration {
        let whom = if r.range(0, 3) == 0 {
            Whom::Other
        } else {
            Whom::InControl
        };
        let (fault, hold) = match r.range(0, 13) {
            0 | 1 => (Fault::KillCtld(whom), r.range(5, 60)),
            2 => (Fault::QuickFailback, 0),
            3 => (Fault::Pause(whom), r.range(10, 90)),
            4 => (Fault::Cut(whom), r.range(10, 90)),
            5 => (Fault::Takeover, r.range(20, 120)),
            6 | 7 => (Fault::KillExporter, r.range(0, 5)),
            8 => (Fault::HeartbeatStall, r.range(20, 120)),
            9 => (Fault::StopCtld(whom), r.range(10, 90)),
            10 => (Fault::StateFull, r.range(20, 120)),
            11 => (Fault::NodeFail, r.range(40, 120)),
            _ => (Fault::DbdDown, r.range(30, 480)),
        };
        let dbd_down_too = fault != Fault::DbdDown && r.range(0, 4) == 0;
        out.push(Planned {
            at,
            fault,
            hold,
            dbd_down_too,
        });
        at += hold + r.range(60, 240);
    }
    out
}

fn ctl_name(i: u32) -> &'static str {
    if i == 0 {
        "ctl1"
    } else {
        "ctl2"
    }
}

/// The controller a fault aimed at `whom` hits now (ctl1 when the heartbeat
/// says nobody is in control).
fn target(whom: Whom) -> &'static str {
    let ic = in_control().unwrap_or(0);
    match whom {
        Whom::InControl => ctl_name(ic),
        Whom::Other => ctl_name(1 - ic.min(1)),
    }
}

/// Set while a controller is held paused or cut off: no exporter can be
/// active then in daemon mode (its own slurmctld does not answer it, or
/// nobody reaches it), as no client reaches that slurmctld either; the
/// metrics' outage is not measured during such a hold, only after it.
static EXCUSED: AtomicBool = AtomicBool::new(false);

/// `fault` on `ctl` (pause, disconnect), held, then `undo`. No exporter can
/// be active on a paused or cut-off controller meanwhile: EXCUSED.
fn held_off(ctl: &str, fault: &str, undo: &str, hold: Duration) -> String {
    EXCUSED.store(true, Ordering::Relaxed);
    cluster(&[fault, ctl]);
    std::thread::sleep(hold);
    cluster(&[undo, ctl]);
    EXCUSED.store(false, Ordering::Relaxed);
    format!("{fault} {ctl} for {}s", hold.as_secs())
}

/// Carries out one fault (with slurmdbd down around it when planned so),
/// holds it, undoes it; returns what happened.
fn inflict(p: &Planned) -> String {
    if !p.dbd_down_too {
        return inflict_one(p);
    }
    cluster(&["stop-dbd"]);
    std::thread::sleep(Duration::from_secs(10));
    let what = inflict_one(p);
    std::thread::sleep(Duration::from_secs(30));
    cluster(&["start-dbd"]);
    format!("{what}, slurmdbd and MariaDB down from 10 s before to 30 s after")
}

fn inflict_one(p: &Planned) -> String {
    let hold = Duration::from_secs(p.hold);
    match p.fault {
        Fault::KillCtld(whom) => {
            let ctl = target(whom);
            cluster(&["kill-ctld", ctl]);
            std::thread::sleep(hold);
            cluster(&["start-ctld", ctl]);
            format!("kill -9 slurmctld on {ctl}, back after {}s", p.hold)
        }
        Fault::QuickFailback => {
            if in_control() != Some(0) {
                return "quick failback skipped: ctl1 not in control".into();
            }
            cluster(&["kill-ctld", "ctl1"]);
            let t0 = Instant::now();
            while in_control() != Some(1) && t0.elapsed() < Duration::from_secs(90) {
                std::thread::sleep(Duration::from_millis(250));
            }
            cluster(&["start-ctld", "ctl1"]);
            format!(
                "quick failback: ctl2 in control after {:?}, ctl1 restarted at once",
                t0.elapsed()
            )
        }
        Fault::Pause(whom) => held_off(target(whom), "pause", "unpause", hold),
        Fault::Cut(whom) => held_off(target(whom), "disconnect", "connect", hold),
        Fault::StateFull => {
            let (ok, out) = cluster(&["fill-statesave"]);
            std::thread::sleep(hold);
            cluster(&["unfill-statesave"]);
            if ok {
                format!("StateSaveLocation full for {}s ({})", p.hold, out.trim())
            } else {
                format!("StateSaveLocation full refused: {}", out.trim())
            }
        }
        Fault::StopCtld(whom) => {
            let ctl = target(whom);
            cluster(&["exec", ctl, "pkill", "-STOP", "-x", "slurmctld"]);
            std::thread::sleep(hold);
            cluster(&["exec", ctl, "pkill", "-CONT", "-x", "slurmctld"]);
            format!("SIGSTOP of slurmctld on {ctl} for {}s", p.hold)
        }
        Fault::Takeover => {
            if in_control() != Some(0) {
                return "takeover skipped: ctl1 not in control".into();
            }
            let (ok, out) = cluster(&["exec", "ctl2", "scontrol", "takeover"]);
            std::thread::sleep(hold);
            if !slurmctld_runs("ctl1") {
                cluster(&["start-ctld", "ctl1"]);
            }
            format!(
                "scontrol takeover on ctl2 ({}), ctl1 back after {}s",
                if ok { "accepted".into() } else { out },
                p.hold
            )
        }
        Fault::KillExporter => {
            let ctl = target(Whom::InControl);
            if plugin_mode() {
                cluster(&["kill-ctld", ctl]);
                std::thread::sleep(hold);
                cluster(&["start-ctld", ctl]);
                format!(
                    "kill -9 of {ctl}'s slurmctld with the plugin, back after {}s",
                    p.hold
                )
            } else {
                cluster(&["kill-exporter", ctl]);
                format!("kill -9 of {ctl}'s exporter")
            }
        }
        Fault::HeartbeatStall => {
            let blocked = heartbeat::HeartbeatBlocked::new();
            std::thread::sleep(hold);
            drop(blocked);
            format!("heartbeat writes failing for {}s", p.hold)
        }
        Fault::NodeFail => {
            cluster(&["pause", "node2"]);
            std::thread::sleep(hold);
            cluster(&["unpause", "node2"]);
            format!("node2 frozen for {}s", p.hold)
        }
        Fault::DbdDown => {
            cluster(&["stop-dbd"]);
            std::thread::sleep(hold);
            cluster(&["start-dbd"]);
            format!("slurmdbd and MariaDB down {}s", p.hold)
        }
    }
}

/// Back to a whole bed after a fault: every fault undone, both slurmctld
/// answering. What it took is returned (Slurm's own hang after a late
/// relinquish is restarted by `heal`, and reported).
fn heal_bed() -> String {
    cluster(&["start-dbd"]);
    let (_, out) = cluster(&["heal"]);
    let t0 = Instant::now();
    let both_up = || {
        let (ok, out) = cluster(&["exec", "node1", "scontrol", "ping"]);
        ok && out.contains("ctl1 is UP") && out.contains("ctl2 is UP")
    };
    while !both_up() && t0.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_secs(1));
    }
    let mut said = out.trim().to_string();
    if !both_up() {
        said.push_str(" both controllers not UP 120 s after healing");
    }
    said
}

/// What one submission asks of Slurm, and what the soak does to it later.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Later {
    Nothing,
    Cancel,
    Release,
    Requeue,
}

/// Submits one job of a kind drawn from `r` through node1 (a client that
/// follows whichever controller is in control); returns its id and what to
/// do to it later, or None when no controller took it.
fn submit_one(r: &mut Rng) -> Option<(String, Later, u64)> {
    let kind = r.range(0, 10);
    let short = r.range(1, 20);
    // Two partitions when the bed has the second (URGENT_PARTITION, set by
    // scripts/soak.sh): arrays and a whole node go to `urgent`, whose jobs
    // preempt (cancel) `debug`'s when no node is free.
    let two = std::env::var("URGENT_PARTITION").is_ok_and(|v| v == "1");
    let partition = if two && kind >= 9 { "urgent" } else { "debug" };
    let (args, later, after): (Vec<String>, Later, u64) = match kind {
        0..=2 => (
            vec!["--wrap".into(), format!("sleep {short}")],
            Later::Nothing,
            0,
        ),
        3 => (
            vec!["--wrap".into(), format!("sleep {short}; exit 3")],
            Later::Nothing,
            0,
        ),
        4 => (
            vec!["--wrap".into(), format!("sleep {}", r.range(120, 400))],
            Later::Nothing,
            0,
        ),
        5 => (
            vec!["-t".into(), "1".into(), "--wrap".into(), "sleep 200".into()],
            Later::Nothing,
            0,
        ),
        6 => (
            vec!["--wrap".into(), "sleep 300".into()],
            Later::Cancel,
            r.range(20, 90),
        ),
        7 => {
            let later = if r.range(0, 1) == 0 {
                Later::Release
            } else {
                Later::Cancel
            };
            (
                vec!["-H".into(), "--wrap".into(), format!("sleep {short}")],
                later,
                r.range(10, 60),
            )
        }
        8 => (
            vec!["--requeue".into(), "--wrap".into(), "sleep 40".into()],
            Later::Requeue,
            r.range(15, 30),
        ),
        9 => (
            vec![
                "--array".into(),
                "0-3".into(),
                "--wrap".into(),
                format!("sleep {short}"),
            ],
            Later::Nothing,
            0,
        ),
        _ => (
            vec![
                "--exclusive".into(),
                "-N".into(),
                "1".into(),
                "--wrap".into(),
                format!("sleep {short}"),
            ],
            Later::Nothing,
            0,
        ),
    };
    let mut all: Vec<&str> = vec![
        "exec",
        "node1",
        "sbatch",
        "--parsable",
        "-J",
        "soak",
        "-p",
        partition,
    ];
    all.extend(args.iter().map(|s| s.as_str()));
    let (ok, out) = cluster(&all);
    let id = out.trim().split(';').next().unwrap_or("").to_string();
    (ok && !id.is_empty()).then_some((id, later, after))
}

fn act(id: &str, later: Later) {
    let cmd: Vec<&str> = match later {
        Later::Nothing => return,
        Later::Cancel => vec!["exec", "node1", "scancel", id],
        Later::Release => vec!["exec", "node1", "scontrol", "release", id],
        Later::Requeue => vec!["exec", "node1", "scontrol", "requeue", id],
    };
    cluster(&cmd);
}

/// Every terminal ending of the soak's jobs slurmdbd shows now (asked
/// through node1, which no fault touches).
fn soak_endings(since: &str) -> Option<SoakEndings> {
    let (ok, rows) = cluster(&[
        "exec",
        "node1",
        "env",
        "SLURM_TIME_FORMAT=%s",
        "sacct",
        "-a",
        "-X",
        "-D",
        "-n",
        "-P",
        // Every job, not only those named soak: the soak owns the bed, and
        // a job Slurm lost (slurmdbd down while it ran, a slurmctld killed
        // after taking it) is left as a row without a partition, and the
        // first plugin-mode soak's three such rows were not among the jobs
        // named soak; the exporter counts them as recorded
        // (docs/counting.md, "A job Slurm lost"), so the oracle must see them.
        // As the exporter asks slurmdbd: by state, so that a job cancelled
        // while held (never eligible) is listed; without -s, sacct's
        // window leaves out jobs that were never eligible.
        "-s",
        TERMINAL_STATES,
        "-S",
        since,
        "-E",
        "now",
        "-o",
        "dbindex,partition,state,exitcode,end,start",
    ]);
    if !ok {
        return None;
    }
    let mut out = SoakEndings::default();
    for l in rows.lines() {
        let f: Vec<&str> = l.split('|').collect();
        if f.len() != 6 {
            continue;
        }
        let state = f[2].split(' ').next().unwrap_or("");
        if let (true, Ok(db), Ok(end)) = (
            TERMINAL.contains(&state),
            f[0].parse::<u64>(),
            f[4].parse::<i64>(),
        ) {
            out.endings.insert(
                (db, end),
                format!("{}|{}|{}", f[1], state.to_lowercase(), f[3]),
            );
            // Unknown (never started) is 0: no run of its own.
            out.starts.insert(db, f[5].parse().unwrap_or(0));
        }
    }
    Some(out)
}

/// What slurmdbd shows of the soak's jobs now: its endings, and each
/// row's start.
#[derive(Default)]
struct SoakEndings {
    endings: Endings,
    starts: BTreeMap<u64, i64>,
}

impl SoakEndings {
    /// Whether slurmdbd showed (`seen`, at any 5 s look) or shows the
    /// ending `e` an exporter counted: itself, or the same run with its end
    /// and state rewritten later, before a look saw the first version (a
    /// TIMEOUT rewritten 6 s later as FAILED 0:15 after a SIGSTOP).
    fn shows_run_of(&self, e: &Ending, seen: &Endings) -> bool {
        let start = self.starts.get(&e.0).copied().unwrap_or(0);
        seen.contains_key(e)
            || self.endings.contains_key(e)
            || seen
                .keys()
                .chain(self.endings.keys())
                .any(|(db, end)| *db == e.0 && *end >= e.1 && start <= e.1)
    }

    /// Whether `e` is an ending `counted` holds: itself, or the same run
    /// with its end rewritten later by slurmdbd (a row whose start is no
    /// later than an end counted on it; how the exporter tells a new run
    /// from a rewrite, counting.rs `is_new_ending`).
    fn accounted(&self, e: &Ending, counted: &Endings) -> bool {
        let start = self.starts.get(&e.0).copied().unwrap_or(0);
        counted.contains_key(e)
            || counted
                .keys()
                .any(|(db, end)| *db == e.0 && *end <= e.1 && start <= *end)
    }
}

/// Both exporters sampled from inside their containers, and who is in
/// control, twice a second for the whole soak.
#[derive(Default, Debug)]
struct Watch {
    samples: u64,
    /// Samples with both exporters active, and the longest such stretch.
    both: u64,
    longest_both: Duration,
    /// The longest stretch with a controller in control whose slurmctld
    /// answers and no exporter active: the exporter's share of an outage
    /// of the metrics.
    longest_none: Duration,
    /// The same stretch as the heartbeat tells it, with a stopped or killed
    /// slurmctld still named in control until the backup takes over:
    /// Slurm's own switch time included (reported, not judged).
    longest_none_named: Duration,
    /// Per switch of control: (to, seconds until its exporter was active).
    switches: Vec<(u32, f64)>,
    /// Every soak ending slurmdbd showed at any time.
    endings: Endings,
}

fn watch(since: String, stop: Arc<AtomicBool>) -> (Arc<Mutex<Watch>>, std::thread::JoinHandle<()>) {
    let w = Arc::new(Mutex::new(Watch::default()));
    let out = w.clone();
    let t = std::thread::spawn(move || {
        let (mut both_since, mut none_since) = (None::<Instant>, None::<Instant>);
        let mut named_since = None::<Instant>;
        let mut last_ic = in_control();
        let mut switched: Option<(u32, Instant)> = None;
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let ic = in_control();
            // Side by side: a stopped exporter makes its curl wait its 2 s.
            let (a1, a2) = std::thread::scope(|s| {
                let a1 = s.spawn(|| active_inside("ctl1"));
                let a2 = active_inside("ctl2");
                (a1.join().unwrap_or(None), a2)
            });
            let actives = [a1 == Some(true), a2 == Some(true)];
            let none =
                ic.is_some() && !actives[0] && !actives[1] && !EXCUSED.load(Ordering::Relaxed);
            // A stopped (SIGSTOP) or killed slurmctld stays named in the
            // heartbeat until the backup takes over: SlurmctldTimeout and
            // one or two of the backup's pings, each waiting MessageTimeout
            // on a stopped process that accepts and never answers (21-24 s
            // on 25.11). No exporter can serve then: the plugin stops or
            // dies with it, and a daemon reads nothing from it.
            //
            // Nor while the named slurmctld does not answer: started again
            // and still waiting for slurmdbd, with a backup stuck in its
            // takeover on the same (seed 5 on the NFS stand-in: 103 s, no
            // slurmctld answering, after a takeover with slurmdbd down).
            let runs = none && ic.is_some_and(|i| ctld_serves(ctl_name(i)));
            let now = Instant::now();
            let mut g = out.lock().unwrap();
            g.samples += 1;
            if ic != last_ic {
                if let Some(to) = ic {
                    switched = Some((to, now));
                }
                last_ic = ic;
            }
            if let Some((to, t)) = switched {
                if actives[to as usize] {
                    g.switches.push((to, t.elapsed().as_secs_f64()));
                    switched = None;
                }
            }
            if actives[0] && actives[1] {
                g.both += 1;
                let s = *both_since.get_or_insert(now);
                g.longest_both = g.longest_both.max(s.elapsed());
            } else {
                both_since = None;
            }
            if none {
                let s = *named_since.get_or_insert(now);
                g.longest_none_named = g.longest_none_named.max(s.elapsed());
            } else {
                named_since = None;
            }
            if runs {
                let s = *none_since.get_or_insert(now);
                g.longest_none = g.longest_none.max(s.elapsed());
            } else {
                none_since = None;
            }
            drop(g);
            n += 1;
            // slurmdbd's endings every 5 s (a rerun overwrites an ending on
            // its row after Slurm's requeue delay, a minute or more).
            if n.is_multiple_of(10) {
                if let Some(e) = soak_endings(&since) {
                    out.lock().unwrap().endings.extend(e.endings);
                }
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    });
    (w, t)
}

/// Whether slurmctld on `ctl` runs, neither stopped (SIGSTOP) nor dead
/// (killed, not yet reaped), and answers a ping within 3 s. /proc first:
/// a ping to a stopped slurmctld waits its MessageTimeout.
fn ctld_serves(ctl: &str) -> bool {
    let script = format!(
        "p=$(pgrep -xo slurmctld) && ! grep -q '^State:[[:space:]]*[TtZX]' /proc/$p/status \\
         && timeout 3 scontrol ping | grep -q 'at {ctl} is UP'"
    );
    cluster(&["exec", ctl, "sh", "-c", &script]).0
}

/// Counters per "partition|state|exit code", every series (the soak owns
/// the bed: no other scenario's jobs end while it runs).
fn all_completions(text: &str) -> BTreeMap<String, f64> {
    completions_where(text, |_| true)
}

/// RSS (kB), threads and open files of the exporter on `ctl` (the daemon,
/// or slurmctld with the plugin in it).
fn footprint(ctl: &str) -> Option<(u64, u64, u64)> {
    let pick = if plugin_mode() {
        "pgrep -xo slurmctld"
    } else {
        "pgrep -nx slurm-ha-export"
    };
    let script = format!(
        "p=$({pick}) && echo $(awk '/^VmRSS/ {{print $2}}' /proc/$p/status) $(awk '/^Threads/ {{print $2}}' /proc/$p/status) $(ls /proc/$p/fd | wc -l)"
    );
    let (ok, out) = cluster(&["exec", ctl, "sh", "-c", &script]);
    let v: Vec<u64> = out
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    (ok && v.len() == 3).then(|| (v[0], v[1], v[2]))
}

/// The merged view: the counters of the one active exporter, if exactly one.
fn merged() -> Option<BTreeMap<String, f64>> {
    let ctl = the_active()?;
    scrape(ctl).map(|t| all_completions(&t))
}

/// The oracle at one moment: (exported minus before) against the distinct
/// endings the exporters say they counted (a double count shows here), and
/// those against what slurmdbd showed (`missing`: shown now, counted by
/// none; `phantom`: counted, never shown). Tried for `patience` (the
/// exporters count between our scrape and our reading of their logs).
fn oracle(
    since: &str,
    since_epoch: i64,
    before: &BTreeMap<String, f64>,
    seen: &Endings,
    require_all: bool,
    patience: Duration,
) -> Result<String, String> {
    let t0 = Instant::now();
    let mut equal_since: Option<Instant> = None;
    loop {
        // Every ending counted since the soak began, whatever slurmdbd
        // shows: one it never showed is a phantom. Read before and after
        // the scrape: only a snapshot in which no exporter counted
        // anything meanwhile is compared (jobs end all the time).
        let counted = counted_by_exporters_where(|_, end, _| end >= since_epoch);
        let got = merged().map(|m| diff(&m, before));
        let again = counted_by_exporters_where(|_, end, _| end >= since_epoch);
        // After them: an ending reaches slurmdbd before it is counted.
        let now = soak_endings(since).unwrap_or_default();
        let missing: Vec<&Ending> = now
            .endings
            .keys()
            .filter(|e| !now.accounted(e, &counted))
            .collect();
        let phantom: Vec<&Ending> = counted
            .keys()
            .filter(|e| !now.shows_run_of(e, seen))
            .collect();
        let ok = counted == again
            && got.as_ref() == Some(&per_key(&counted))
            && phantom.is_empty()
            && (!require_all || missing.is_empty());
        // At the end nothing runs any more: equal for 10 s straight.
        let hold = if require_all { 10 } else { 0 };
        if !ok {
            equal_since = None;
        } else if equal_since.get_or_insert_with(Instant::now).elapsed()
            >= Duration::from_secs(hold)
        {
            return Ok(format!(
                "{} endings counted once each, {} in slurmdbd now",
                counted.len(),
                now.endings.len()
            ));
        }
        if t0.elapsed() > patience {
            return Err(format!(
                "exported (minus before): {got:?}\ndistinct endings counted: {:?}\nin slurmdbd now, counted by none: {missing:?}\ncounted, never in slurmdbd: {phantom:?}",
                per_key(&counted)
            ));
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The shipped dashboards' finished-jobs panels over the whole soak, on the
/// bed's Prometheus and on the CycleCloud-style agents' store, against the
/// endings the oracle found counted once each: `total`, of which
/// `completed` completed. Dozens of switches lie in that window; a query
/// that counts a counter again at each switch (CycleCloud's own did) shows
/// here. `exported`: the active exporter's counters summed, which each
/// store must hold first.
fn finished_panels(
    since_epoch: i64,
    exported: Option<f64>,
    total: f64,
    completed: f64,
) -> Result<String, String> {
    let mut wrong = Vec::new();
    let mut panels = 0;
    for store in [Store::Bed, Store::Agents] {
        let held = format!(
            "sum(max by (cluster, partition, exit_code, reason, state) (sacct_terminal_jobs_total{{cluster=\"{}\"}}))",
            store.cluster()
        );
        let t0 = Instant::now();
        while prom_sum_at(store, &held) != exported && t0.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_secs(1));
        }
        // A second ahead: the newest samples are younger than the whole second.
        let range = unix_now() + 1 - since_epoch;
        for (dash, title, expr) in grafana::dashboard_exprs() {
            let q = as_grafana_would_at(store, &expr, range);
            let Some(shown) = finished_panel(store, &expr, &q, total, completed) else {
                continue;
            };
            panels += 1;
            if let Err(e) = shown {
                wrong.push(format!("{dash} / {title} (the {range} s soak): {e}"));
            }
        }
    }
    if panels == 0 {
        wrong.push("no finished-jobs panel in the dashboards".into());
    }
    if wrong.is_empty() {
        Ok(format!(
            "{panels} finished-jobs panel queries on the bed and agents' stores show the {total} endings ({completed} completed)"
        ))
    } else {
        Err(wrong.join("\n"))
    }
}

#[test]
#[ignore = "hours long: scripts/soak.sh"]
fn soak() {
    let _scenario = scenario();
    let seed = env_u64("SOAK_SEED", 1);
    let duration = env_u64("SOAK_DURATION", 600);
    let schedule = plan(seed, duration);
    eprintln!(
        "soak: seed {seed}, {duration}s, {} mode, {} faults planned:",
        if plugin_mode() { "plugin" } else { "daemon" },
        schedule.len()
    );
    for p in &schedule {
        eprintln!(
            "  at {:>5}s {:?} hold {}s{}",
            p.at,
            p.fault,
            p.hold,
            if p.dbd_down_too {
                ", slurmdbd down too"
            } else {
                ""
            }
        );
    }
    // The soak owns the bed: nothing queued, every record in slurmdbd,
    // counters settled, before its first job.
    cluster(&["exec", "ctl1", "scancel", "-u", "root"]);
    wait_until(
        "an empty queue and DBD agent queue",
        Duration::from_secs(300),
        || {
            cluster(&["exec", "ctl1", "squeue", "-h"])
                .1
                .trim()
                .is_empty()
                && dbd_agent_queue("ctl1") == 0
        },
    );
    let since = now_in("ctl1");
    let since_epoch: i64 = ok(&["exec", "ctl1", "date", "+%s"]).trim().parse().unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let before = settled_where("ctl1", |_| true);
    let stop = Arc::new(AtomicBool::new(false));
    let (watched, watcher) = watch(since.clone(), stop.clone());

    let mut jobs = Rng(seed ^ 0x5eed);
    let mut failures: Vec<String> = Vec::new();
    let mut done: Vec<(u64, String, String)> = Vec::new();
    let mut pending: Vec<(Instant, String, Later)> = Vec::new();
    let mut highest: BTreeMap<String, f64> = BTreeMap::new();
    let (mut submitted, mut refused) = (0u64, 0u64);
    let mut footprints = vec![(0u64, footprint("ctl1"), footprint("ctl2"))];
    let t0 = Instant::now();
    let mut next = schedule.iter().peekable();
    let mut last_check = Instant::now();
    while t0.elapsed() < Duration::from_secs(duration) {
        // Work: 1-3 jobs every few seconds, and what was promised to them.
        for _ in 0..jobs.range(1, 3) {
            match submit_one(&mut jobs) {
                Some((id, later, after)) => {
                    submitted += 1;
                    if later != Later::Nothing {
                        pending.push((Instant::now() + Duration::from_secs(after), id, later));
                    }
                }
                None => refused += 1,
            }
        }
        let due: Vec<_> = pending
            .iter()
            .filter(|(t, _, _)| *t <= Instant::now())
            .cloned()
            .collect();
        pending.retain(|(t, _, _)| *t > Instant::now());
        for (_, id, later) in due {
            act(&id, later);
        }
        // A fault, when one is due (it blocks the work while it holds:
        // jobs already queued keep running and ending).
        if let Some(p) = next.next_if(|p| t0.elapsed().as_secs() >= p.at) {
            let what = inflict(p);
            let healed = heal_bed();
            eprintln!(
                "soak {:>5}s: {what}{}",
                t0.elapsed().as_secs(),
                if healed.is_empty() {
                    String::new()
                } else {
                    format!(" (heal: {healed})")
                }
            );
            done.push((t0.elapsed().as_secs(), p.fault.name(), what));
        }
        // Never backwards: the merged counter, at every look.
        if let Some(m) = merged() {
            for (k, v) in m {
                let high = highest.entry(k.clone()).or_insert(v);
                if v < *high {
                    let what = format!(
                        "{}s: {k} went back from {high} to {v}",
                        t0.elapsed().as_secs()
                    );
                    eprintln!("soak: COUNTER BACK: {what}");
                    failures.push(what);
                }
                *high = high.max(v);
            }
        }
        // Every five minutes: nothing counted twice, nothing counted that
        // slurmdbd never showed.
        if last_check.elapsed() > Duration::from_secs(300) {
            let seen = watched.lock().unwrap().endings.clone();
            match oracle(
                &since,
                since_epoch,
                &before,
                &seen,
                false,
                Duration::from_secs(60),
            ) {
                Ok(s) => eprintln!("soak {:>5}s: oracle: {s}", t0.elapsed().as_secs()),
                Err(e) => {
                    eprintln!("soak {:>5}s: ORACLE FAILED: {e}", t0.elapsed().as_secs());
                    failures.push(format!("{}s: {e}", t0.elapsed().as_secs()));
                }
            }
            footprints.push((t0.elapsed().as_secs(), footprint("ctl1"), footprint("ctl2")));
            last_check = Instant::now();
        }
        std::thread::sleep(Duration::from_secs(jobs.range(2, 6)));
    }

    // The end: no more faults or jobs; what is left is cancelled, ctl1
    // takes control back (26.05's backup holds records until then), every
    // record reaches slurmdbd, and then every ending is counted, once.
    heal_bed();
    for (_, id, later) in pending.drain(..) {
        if later == Later::Release {
            act(&id, Later::Release);
        }
    }
    cluster(&["exec", "node1", "scancel", "--name=soak"]);
    if in_control() != Some(0) && !slurmctld_runs("ctl1") {
        cluster(&["start-ctld", "ctl1"]);
    }
    let end_wait = Instant::now();
    while end_wait.elapsed() < Duration::from_secs(600) {
        cluster(&["exec", "node1", "scancel", "--name=soak"]);
        let (ok, q) = cluster(&["exec", "node1", "squeue", "-h", "--name=soak"]);
        if ok && q.trim().is_empty() && in_control() == Some(0) && dbd_agent_queue("ctl1") == 0 {
            break;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    let seen = watched.lock().unwrap().endings.clone();
    match oracle(
        &since,
        since_epoch,
        &before,
        &seen,
        true,
        Duration::from_secs(300),
    ) {
        Ok(s) => {
            eprintln!("soak end: oracle: {s}");
            let counted = counted_by_exporters_where(|_, end, _| end >= since_epoch);
            let completed = counted
                .values()
                .filter(|k| k.split('|').nth(1) == Some("completed"))
                .count();
            let exported = merged().map(|m| m.values().sum::<f64>());
            match finished_panels(
                since_epoch,
                exported,
                counted.len() as f64,
                completed as f64,
            ) {
                Ok(s) => eprintln!("soak end: dashboards: {s}"),
                Err(e) => failures.push(format!("at the end, the dashboards: {e}")),
            }
        }
        Err(e) => failures.push(format!("at the end: {e}")),
    }
    footprints.push((t0.elapsed().as_secs(), footprint("ctl1"), footprint("ctl2")));
    stop.store(true, Ordering::Relaxed);
    let _ = watcher.join();
    let w = watched.lock().unwrap();

    // The report.
    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    for (_, k, _) in &done {
        *kinds.entry(k.clone()).or_default() += 1;
    }
    let mut costs: Vec<f64> = w.switches.iter().map(|s| s.1).collect();
    costs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |q: f64| {
        costs
            .get(((costs.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    eprintln!(
        "soak report: seed {seed}, {}s, {} mode\n  faults: {kinds:?}\n  jobs submitted {submitted} (refused while no controller answered: {refused}); endings slurmdbd showed: {}\n  samples {}: both exporters active in {} (longest {:?}); longest with a controller in control, its slurmctld answering, and none active: {:?} (with a stopped, dead or unanswering slurmctld still named in control: {:?})\n  switches {}: seconds to the new exporter's first active answer: min {:.1} median {:.1} p90 {:.1} max {:.1}\n  footprint (s, ctl1 (rss kB, threads, fds), ctl2): {footprints:?}",
        t0.elapsed().as_secs(),
        if plugin_mode() { "plugin" } else { "daemon" },
        w.endings.len(),
        w.samples,
        w.both,
        w.longest_both,
        w.longest_none,
        w.longest_none_named,
        costs.len(),
        pct(0.0),
        pct(0.5),
        pct(0.9),
        pct(1.0),
    );
    // One poll interval (2 s on the bed) plus a sampling step and scrapes.
    if w.longest_both > Duration::from_millis(3500) {
        failures.push(format!("both exporters active for {:?}", w.longest_both));
    }
    // Slurm's own switch after a kill takes SlurmctldTimeout (10 s on the
    // bed) and its start; the exporter should follow within a poll or two.
    if w.longest_none > Duration::from_secs(30) {
        failures.push(format!(
            "a controller in control and no exporter active for {:?}",
            w.longest_none
        ));
    }
    assert!(
        failures.is_empty(),
        "soak seed {seed} failed:\n{}\nfaults so far:\n{}",
        failures.join("\n"),
        done.iter()
            .map(|(t, _, w)| format!("  {t}s {w}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_soak_schedule_is_the_seeds_alone() {
    let a = plan(7, 3600);
    let b = plan(7, 3600);
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
    assert_ne!(format!("{a:?}"), format!("{:?}", plan(8, 3600)));
    // A fault every 1-4 minutes after the last one's hold.
    for w in a.windows(2) {
        let gap = w[1].at - (w[0].at + w[0].hold);
        assert!((60..=240).contains(&gap), "{w:?}");
    }
}
