//! Exporter claims: break before make between the exporters themselves.
//!
//! Slurm's own signals cannot keep two exporters from exporting at once
//! for a moment: while a backup hands control back it stays in control
//! (its `control_time` set, its heartbeat still beating) until it has torn
//! down, and the primary is in control already; each exporter learns of
//! the other from the heartbeat file, which holds only its last writer, at
//! its own poll. Seen on 24.11 and 26.05 in plugin mode: both exported for
//! one Prometheus scrape.
//!
//! So an exporter that Slurm's signals make active first writes
//! `StateSaveLocation/ha_exporter/claim.<index>` ("<index> <unix time>
//! <seconds valid>") and reads the other controllers' claims:
//! - a fresh claim of a lower index: it stands by and withdraws its own
//!   claim (the lowest index wins, as in Slurm's split brain);
//! - a fresh claim of a higher index: it waits, claim kept, until that
//!   exporter has seen this claim at its next full poll and withdrawn;
//! - none, and no other exporter withdrew within the handover delay: it
//!   exports, refreshing its claim every full poll.
//!
//! A claim is withdrawn (replaced by "withdrawn <index> <unix ms>") as
//! soon as its exporter stops being active and when it shuts down; the
//! next exporter stands by for the handover delay after that moment. One
//! left by a crash counts for three poll intervals and a second after its
//! last refresh, so a takeover after a kill -9 (which Slurm makes only
//! after SlurmctldTimeout) never waits for it. Plain files, replaced
//! atomically, no locks: StateSaveLocation is often NFS.

use super::{Decision, Role};
use crate::state::atomic;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim {
    pub index: u32,
    /// When it was last written (unix seconds, the writer's clock: Slurm's
    /// heartbeat needs the controllers' clocks in step as well).
    pub time: i64,
    /// For how long after `time` it stands without a refresh.
    pub valid: i64,
}

impl Claim {
    pub fn fresh(&self, now: i64) -> bool {
        now - self.time <= self.valid
    }
}

pub fn path(state_save_location: &Path, index: u32) -> PathBuf {
    state_save_location
        .join("ha_exporter")
        .join(format!("claim.{index}"))
}

pub fn parse(text: &str) -> Result<Claim, String> {
    let mut it = text.split_whitespace().map(str::parse::<i64>);
    match (it.next(), it.next(), it.next(), it.next()) {
        (Some(Ok(index)), Some(Ok(time)), Some(Ok(valid)), None)
            if (0..=u32::MAX as i64).contains(&index) && valid > 0 =>
        {
            Ok(Claim {
                index: index as u32,
                time,
                valid,
            })
        }
        _ => Err(format!("bad exporter claim {text:?}")),
    }
}

/// A claim file after its exporter withdrew: "withdrawn <index> <unix ms>".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Withdrawal {
    pub index: u32,
    pub at_ms: u64,
}

pub fn parse_withdrawal(text: &str) -> Option<Withdrawal> {
    let mut it = text.split_whitespace();
    match (it.next(), it.next(), it.next(), it.next()) {
        (Some("withdrawn"), Some(i), Some(t), None) => Some(Withdrawal {
            index: i.parse().ok()?,
            at_ms: t.parse().ok()?,
        }),
        _ => None,
    }
}

/// The other controllers' claim files, each read once.
#[derive(Default)]
pub struct Others {
    /// Claims that stand at `now`.
    pub fresh: Vec<Claim>,
    /// Claims withdrawn, with when.
    pub withdrawn: Vec<Withdrawal>,
}

/// Reads the claim files of the controllers other than `me`. An unreadable
/// or garbled file is neither: only its own exporter writes it, atomically,
/// so that can only be a file left half-way by a full disk or a crashed
/// writer, which the writer replaces at its next poll.
pub fn read_others(dir: &Path, me: u32, controllers: u32, now: i64) -> Others {
    let mut o = Others::default();
    for text in (0..controllers)
        .filter(|&i| i != me)
        .filter_map(|i| std::fs::read_to_string(path(dir, i)).ok())
    {
        if let Ok(c) = parse(&text) {
            if c.fresh(now) {
                o.fresh.push(c);
            }
        } else if let Some(w) = parse_withdrawal(&text) {
            o.withdrawn.push(w);
        }
    }
    o
}

/// Where one exporter stands in the claims, and the I/O that goes with it.
pub struct Claims {
    pub dir: PathBuf,
    pub me: u32,
    pub controllers: u32,
    /// How long a claim stands without a refresh: three full polls and a
    /// second.
    pub valid: i64,
    /// Whether our claim file is (as far as we know) in place.
    claimed: bool,
    /// Until when (ms since the epoch) we may serve as active on the
    /// strength of our last claim: a second less than the others wait
    /// before they take it for stale (its time is in whole seconds).
    lease_ms: u64,
    /// How long we still stand by after another exporter withdrew
    /// (`--ha.handover-delay`): Prometheus keeps each target's
    /// last sample until its next scrape, so a takeover sooner than one
    /// scrape interval after the withdrawal shows both exporters active
    /// in every query between the two scrapes.
    handover_delay: Duration,
    /// We stand by but keep our claim (see `holding`).
    holding: bool,
}

/// Milliseconds since the epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Claims {
    pub fn new(
        dir: PathBuf,
        me: u32,
        controllers: u32,
        poll: Duration,
        handover_delay: Duration,
    ) -> Claims {
        Claims {
            dir,
            me,
            controllers,
            valid: 3 * poll.as_secs().max(1) as i64 + 1,
            claimed: false,
            lease_ms: 0,
            handover_delay,
            holding: false,
        }
    }

    /// Whether we stand by but keep our claim: waiting for a higher
    /// index's exporter to withdraw, or for the handover delay after it
    /// did. Our claim must stay then, or that exporter never sees it.
    pub fn holding(&self) -> bool {
        self.holding
    }

    /// Until when this exporter may serve as active (`Published::get`): a
    /// role thread that stalls (a ping or a read of StateSaveLocation that
    /// blocks) stops refreshing its claim, and its exporter must stop
    /// exporting before the others take the claim for stale.
    pub fn lease_until_ms(&self) -> u64 {
        if self.controllers <= 1 {
            u64::MAX
        } else {
            self.lease_ms
        }
    }

    fn write(&mut self, now: i64) -> Result<(), String> {
        // The lease follows the attempt, written or not: a StateSaveLocation
        // we cannot write must not stop an export (see `settle`).
        self.lease_ms = now_ms() + (self.valid as u64 - 1) * 1000;
        let text = format!("{} {} {}\n", self.me, now, self.valid);
        let r = atomic::replace(&path(&self.dir, self.me), text.as_bytes());
        self.claimed = r.is_ok();
        r
    }

    /// Removes our claim, if we hold one. A failure leaves it to expire.
    pub fn withdraw(&mut self) -> Result<(), String> {
        if !std::mem::take(&mut self.claimed) {
            return Ok(());
        }
        // In place of the claim, when it was withdrawn: the next exporter
        // waits the handover delay from then (`withdrawals`).
        let text = format!("withdrawn {} {}\n", self.me, now_ms());
        atomic::replace(&path(&self.dir, self.me), text.as_bytes()).map_err(|e| {
            format!(
                "cannot withdraw the exporter claim {}: {e}",
                path(&self.dir, self.me).display()
            )
        })
    }

    /// Turns the decision Slurm's signals gave (`base`) into the one to
    /// act on. `active_now`: this exporter exports at the moment; `full`:
    /// a full poll (an active exporter looks at the others' claims only
    /// then, a waiting one at every look). Errors are returned beside the
    /// decision: an unwritable StateSaveLocation must not stop an export
    /// that Slurm's signals support, the state file reports it as well.
    ///
    /// A decision other than active leaves the claim in place: the caller
    /// withdraws it once that decision is published (so the next exporter
    /// cannot start while this one still serves cluster series).
    pub fn settle(
        &mut self,
        base: Decision,
        active_now: bool,
        full: bool,
        now: i64,
    ) -> (Decision, Option<String>) {
        if self.controllers <= 1 {
            return (base, None);
        }
        if base.role != Role::Active {
            self.holding = false;
            return (base, None);
        }
        if active_now && !full {
            return (base, None);
        }
        let me = self.me;
        let lower = |cs: &[Claim]| cs.iter().filter(|c| c.index < me).map(|c| c.index).min();
        // Yield to a lower index before claiming: no write while it stands.
        let others = read_others(&self.dir, self.me, self.controllers, now);
        if let Some(ix) = lower(&others.fresh) {
            self.holding = false;
            return (yield_to(ix), None);
        }
        let mut problem = None;
        if full || !self.claimed {
            problem = self.write(now).err();
        }
        // Read again after writing: of two exporters that claim at once,
        // at least one sees the other.
        let others = read_others(&self.dir, self.me, self.controllers, now);
        if let Some(ix) = lower(&others.fresh) {
            self.holding = false;
            return (yield_to(ix), problem);
        }
        if let Some(c) = others.fresh.iter().find(|c| c.index > self.me) {
            self.holding = true;
            let why = format!(
                "{}; waiting for controller {}'s exporter to withdraw its claim",
                base.why, c.index
            );
            return (standing_by(why), problem);
        }
        // However Slurm ordered the switch, an exporter that withdrew less
        // than the handover delay ago may still be active in Prometheus.
        let delay_ms = self.handover_delay.as_millis() as u64;
        let now_ms = now_ms();
        if let Some(w) = others
            .withdrawn
            .into_iter()
            .filter(|w| w.at_ms + delay_ms > now_ms)
            .max_by_key(|w| w.at_ms)
        {
            self.holding = true;
            let why = format!(
                "{}; controller {}'s exporter withdrew {} ms ago: standing by {:?} (--ha.handover-delay) so that no scrape sees two exporters",
                base.why,
                w.index,
                now_ms.saturating_sub(w.at_ms),
                self.handover_delay
            );
            return (standing_by(why), problem);
        }
        self.holding = false;
        (base, problem)
    }
}

fn standing_by(why: String) -> Decision {
    Decision {
        role: Role::Standby,
        source: "claim",
        why,
    }
}

fn yield_to(ix: u32) -> Decision {
    Decision {
        role: Role::Standby,
        source: "claim",
        why: format!("controller {ix}'s exporter claims the cluster (the lowest index wins)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn withdrawn(d: &Path, index: u32) -> bool {
        std::fs::read_to_string(path(d, index))
            .ok()
            .and_then(|t| parse_withdrawal(&t))
            .is_some_and(|w| w.index == index)
    }

    fn active() -> Decision {
        Decision {
            role: Role::Active,
            source: "slurmctld",
            why: "in control".into(),
        }
    }

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("claims-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("ha_exporter")).unwrap();
        d
    }

    #[test]
    fn parses_what_it_writes_and_rejects_the_rest() {
        assert_eq!(
            parse("1 1000 7\n"),
            Ok(Claim {
                index: 1,
                time: 1000,
                valid: 7
            })
        );
        for bad in ["", "1 1000", "1 1000 7 8", "-1 1000 7", "1 x 7", "1 1000 0"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        let c = parse("0 1000 7").unwrap();
        assert!(c.fresh(1007));
        assert!(!c.fresh(1008));
    }

    /// The failback race: the backup's exporter exports, the primary's
    /// becomes active by Slurm's signals. At no step are both active, and
    /// the primary exports once the backup has withdrawn.
    #[test]
    fn a_failback_hands_over_without_overlap() {
        let d = dir("failback");
        let poll = Duration::from_secs(2);
        let mut backup = Claims::new(d.clone(), 1, 2, poll, Duration::ZERO);
        let mut primary = Claims::new(d.clone(), 0, 2, poll, Duration::ZERO);
        let (b, _) = backup.settle(active(), false, true, 1000);
        assert_eq!(b.role, Role::Active);
        // The primary takes control: it claims but waits.
        let (p, _) = primary.settle(active(), false, true, 1001);
        assert_eq!((p.role, p.source), (Role::Standby, "claim"));
        assert!(p.why.contains("waiting for controller 1"), "{}", p.why);
        // Between the backup's full polls it stays active (no file read).
        let (b, _) = backup.settle(active(), true, false, 1001);
        assert_eq!(b.role, Role::Active);
        let (p, _) = primary.settle(active(), false, false, 1001);
        assert_eq!(p.role, Role::Standby, "both would export");
        // The backup's next full poll sees the primary's claim: it yields.
        let (b, _) = backup.settle(active(), true, true, 1002);
        assert_eq!((b.role, b.source), (Role::Standby, "claim"));
        // Until it has published its standby, its claim holds the primary.
        assert_eq!(
            primary.settle(active(), false, false, 1002).0.role,
            Role::Standby
        );
        backup.withdraw().unwrap();
        assert!(withdrawn(&d, 1), "the backup withdrew");
        let (p, _) = primary.settle(active(), false, false, 1002);
        assert_eq!(p.role, Role::Active);
        // Its lease ends a second before the others take its claim (time
        // 1001, valid 7) for stale.
        let lease = primary.lease_until_ms();
        let now = now_ms();
        assert!(
            lease > now + 5_000 && lease <= now + 6_000,
            "{lease} vs {now}"
        );
        // The backup keeps yielding, without writing a claim, while the
        // primary's stands.
        let (b, _) = backup.settle(active(), false, false, 1003);
        assert_eq!(b.role, Role::Standby);
        assert!(withdrawn(&d, 1));
    }

    /// After the backup withdrew, the primary stands by for the handover
    /// delay, claim kept (`holding`), then exports.
    #[test]
    fn a_failback_waits_the_handover_delay_after_the_withdrawal() {
        let d = dir("handover");
        let poll = Duration::from_secs(2);
        let delay = Duration::from_millis(300);
        let mut backup = Claims::new(d.clone(), 1, 2, poll, delay);
        let mut primary = Claims::new(d.clone(), 0, 2, poll, delay);
        backup.settle(active(), false, true, 1000);
        let (p, _) = primary.settle(active(), false, true, 1001);
        assert_eq!(p.role, Role::Standby);
        assert!(primary.holding(), "a waiting exporter keeps its claim");
        // The backup sees it at its next full poll and yields.
        let (b, _) = backup.settle(active(), true, true, 1002);
        assert_eq!(b.role, Role::Standby);
        assert!(!backup.holding());
        backup.withdraw().unwrap();
        let t = std::time::Instant::now();
        let (p, _) = primary.settle(active(), false, false, 1002);
        assert_eq!((p.role, p.source), (Role::Standby, "claim"));
        assert!(p.why.contains("handover-delay"), "{}", p.why);
        assert!(primary.holding() && path(&d, 0).exists());
        let mut role = p.role;
        while role != Role::Active {
            assert!(t.elapsed() < Duration::from_secs(2), "never took over");
            std::thread::sleep(Duration::from_millis(20));
            role = primary.settle(active(), false, false, 1002).0.role;
        }
        // (The delay runs from the withdrawal, written just before `t`.)
        assert!(
            t.elapsed() + Duration::from_millis(50) >= delay,
            "took over after {:?}",
            t.elapsed()
        );
        assert!(!primary.holding());
    }

    /// Slurm may turn the backup's exporter standby before the primary's
    /// becomes active (so no claim is ever seen waiting): the withdrawal's
    /// time still holds the primary back for the delay.
    #[test]
    fn a_recent_withdrawal_holds_a_new_exporter_back() {
        let d = dir("recent");
        let poll = Duration::from_secs(2);
        let delay = Duration::from_millis(300);
        let mut backup = Claims::new(d.clone(), 1, 2, poll, delay);
        backup.settle(active(), false, true, 1000);
        backup.withdraw().unwrap();
        let mut primary = Claims::new(d.clone(), 0, 2, poll, delay);
        let (p, _) = primary.settle(active(), false, true, 1001);
        assert_eq!((p.role, p.source), (Role::Standby, "claim"));
        assert!(p.why.contains("withdrew"), "{}", p.why);
        let t = std::time::Instant::now();
        while primary.settle(active(), false, false, 1001).0.role != Role::Active {
            assert!(t.elapsed() < Duration::from_secs(2), "never took over");
            std::thread::sleep(Duration::from_millis(20));
        }
        // An old withdrawal holds nobody back.
        let mut later = Claims::new(d.clone(), 0, 2, poll, delay);
        assert_eq!(
            later.settle(active(), false, true, 1002).0.role,
            Role::Active
        );
        assert!(parse_withdrawal("withdrawn 1 x").is_none());
        assert!(
            parse("withdrawn 1 1000").is_err(),
            "a withdrawal is no claim"
        );
    }

    #[test]
    fn a_crashed_exporters_claim_expires_and_a_withdrawn_one_is_gone() {
        let d = dir("expire");
        let poll = Duration::from_secs(2);
        let mut dead = Claims::new(d.clone(), 0, 2, poll, Duration::ZERO);
        dead.settle(active(), false, true, 1000);
        let mut backup = Claims::new(d.clone(), 1, 2, poll, Duration::ZERO);
        // Within 3 polls + 1 s of its last refresh the claim stands.
        assert_eq!(
            backup.settle(active(), false, true, 1007).0.role,
            Role::Standby
        );
        assert_eq!(
            backup.settle(active(), false, true, 1008).0.role,
            Role::Active
        );
        // Slurm's signals turn the primary's exporter to standby: its
        // claim goes at once.
        let mut primary = Claims::new(d.clone(), 0, 2, poll, Duration::ZERO);
        primary.settle(active(), false, true, 2000);
        assert!(path(&d, 0).exists());
        let standby = Decision {
            role: Role::Standby,
            source: "ping",
            why: "down".into(),
        };
        assert_eq!(
            primary.settle(standby, true, true, 2001).0.role,
            Role::Standby
        );
        primary.withdraw().unwrap();
        assert!(withdrawn(&d, 0));
    }

    #[test]
    fn one_controller_and_garbage_are_no_claims() {
        let d = dir("single");
        let mut only = Claims::new(d.clone(), 0, 1, Duration::from_secs(2), Duration::ZERO);
        assert_eq!(
            only.settle(active(), false, true, 1000).0.role,
            Role::Active
        );
        assert!(!path(&d, 0).exists(), "nobody to tell");
        std::fs::write(path(&d, 0), "garbage").unwrap();
        let mut backup = Claims::new(d.clone(), 1, 2, Duration::from_secs(2), Duration::ZERO);
        assert_eq!(
            backup.settle(active(), false, true, 1000).0.role,
            Role::Active
        );
    }
}
