//! Who exports: the daemon on the controller that is in control is Active,
//! the others are Standby (they answer scrapes with self-metrics only).
//!
//! Sources, in the order they are trusted (see `decide`):
//! 1. a ping of this host's own slurmctld: a controller that does not
//!    answer is never active (this catches kill -9 within one poll, long
//!    before its heartbeat goes stale);
//! 2. the hook record of SlurmctldPrimaryOnProg/OffProg, when it is newer
//!    than the heartbeat: switches are seen at once;
//! 3. Slurm's heartbeat file: among the controllers seen writing it within
//!    SlurmctldTimeout, the lowest index is in control, which is how Slurm
//!    itself ends a split brain. A stale heartbeat still names the
//!    controller in control when that one answers and none before it does
//!    (`stale_but_mine`: its writes fail, nothing switched).
//!
//! In plugin mode slurmctld's own flag (`control_time`) replaces the ping
//! and the hook; the heartbeat still settles a split brain (see `decide`).

pub mod claim;
pub mod heartbeat;
pub mod hook;
pub mod poller;
pub mod slurm_conf;
pub mod thread;

use heartbeat::Heartbeat;
use hook::HookRecord;
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Active,
    Standby,
    Unknown,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Active => "active",
            Role::Standby => "standby",
            Role::Unknown => "unknown",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub role: Role,
    /// Which input decided: "ping", "hook", "heartbeat", "config",
    /// "slurmctld" (plugin mode) or "claim" (another exporter's claim).
    pub source: &'static str,
    pub why: String,
}

/// Everything `decide` looks at; gathered by RoleEngine::poll.
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    pub now: i64,
    /// This host's index among SlurmctldHost entries.
    pub my_index: Option<u32>,
    pub controllers: u32,
    pub slurmctld_timeout: i64,
    pub own_ping_ok: bool,
    /// Plugin mode: slurmctld's in-process flag (control_time != 0).
    pub in_control: Option<bool>,
    /// The flag can read 0 while slurmctld stays in control (25.11+
    /// in-process reconfigure): trust a fresh heartbeat that names us then.
    pub flag_may_lag: bool,
    pub heartbeat: Option<Heartbeat>,
    pub hook: Option<HookRecord>,
    /// Whether a controller with a lower index than this one answers a
    /// ping; asked only when the heartbeat is stale and names this
    /// controller (None when not asked).
    pub lower_answers: Option<bool>,
    /// Newest heartbeat time seen per controller index, over past polls.
    pub seen: BTreeMap<u32, i64>,
}

impl Inputs {
    /// The heartbeat file, read as it is, names this controller and is
    /// older than SlurmctldTimeout (`stale_but_mine` needs `lower_answers`).
    pub fn stale_heartbeat_is_mine(&self) -> bool {
        self.heartbeat.is_some_and(|h| {
            Some(h.index) == self.my_index && self.now - h.time > self.slurmctld_timeout
        })
    }
}

fn d(role: Role, source: &'static str, why: impl Into<String>) -> Decision {
    Decision {
        role,
        source,
        why: why.into(),
    }
}

/// Lowest controller index seen writing the heartbeat within
/// SlurmctldTimeout: the one Slurm keeps in control after a split brain.
fn lowest_fresh(i: &Inputs) -> Option<u32> {
    i.seen
        .iter()
        .filter(|(_, t)| i.now - **t <= i.slurmctld_timeout)
        .map(|(ix, _)| *ix)
        .min()
}

/// Plugin mode: slurmctld says whether it is in control. Two slurmctlds can
/// both say so for up to SlurmctldTimeout (a hung primary that resumes),
/// so a controller whose flag is set still stands by while a fresh
/// heartbeat names another controller and not this one: the same wait the
/// daemon makes, and the way Slurm itself ends it.
fn decide_in_process(i: &Inputs, in_control: bool) -> Decision {
    let fresh = lowest_fresh(i);
    let me = i.my_index;
    if in_control {
        return match (fresh, me) {
            (Some(ix), Some(me)) if ix != me => d(
                Role::Standby,
                "heartbeat",
                format!("slurmctld is in control but the heartbeat names controller {ix}"),
            ),
            _ => d(
                Role::Active,
                "slurmctld",
                "slurmctld is in control (control_time)",
            ),
        };
    }
    match (fresh, me) {
        (Some(ix), Some(me)) if ix == me && i.flag_may_lag => d(
            Role::Active,
            "heartbeat",
            "control_time is 0 but a fresh heartbeat names this controller (reconfigure)",
        ),
        _ => d(
            Role::Standby,
            "slurmctld",
            "slurmctld is not in control (control_time 0)",
        ),
    }
}

/// The decision table. Pure: tests feed it inputs.
pub fn decide(i: &Inputs) -> Decision {
    if let Some(flag) = i.in_control {
        return decide_in_process(i, flag);
    }
    let Some(me) = i.my_index else {
        return d(Role::Unknown, "config", "this host is not one of slurm.conf's SlurmctldHost entries (see --ha.controller-index)");
    };
    // With one controller nobody else can export: stay active and let the
    // collectors report slurmctld's absence (last values, success 0).
    if i.controllers <= 1 {
        return d(Role::Active, "config", "the only controller");
    }
    if !i.own_ping_ok {
        return d(
            Role::Standby,
            "ping",
            format!("slurmctld on this host (controller {me}) does not answer"),
        );
    }
    let hb_time = i.heartbeat.map_or(0, |h| h.time);
    if let Some(h) = &i.hook {
        if h.time >= hb_time && h.index == me {
            return if h.on {
                d(
                    Role::Active,
                    "hook",
                    "SlurmctldPrimaryOnProg ran here after the last heartbeat",
                )
            } else {
                d(
                    Role::Standby,
                    "hook",
                    "SlurmctldPrimaryOffProg ran here after the last heartbeat",
                )
            };
        }
    }
    match lowest_fresh(i) {
        Some(ix) if ix == me => d(
            Role::Active,
            "heartbeat",
            format!("heartbeat names controller {me}"),
        ),
        Some(ix) => d(
            Role::Standby,
            "heartbeat",
            format!("controller {ix} is in control"),
        ),
        None if stale_but_mine(i, me) => d(
            Role::Active,
            "ping",
            "the heartbeat is stale but names this controller, whose slurmctld answers, and no controller before it answers",
        ),
        None => d(
            Role::Standby,
            "heartbeat",
            "no controller wrote the heartbeat within SlurmctldTimeout (a switch is under way)",
        ),
    }
}

/// With no fresh heartbeat at all, whether this controller is still the
/// one in control: the heartbeat names it (it wrote last), its slurmctld
/// answers (checked before), no controller with a lower index answers
/// (Slurm's backups take over only from a controller that stops
/// answering, so among those that answer the lowest is in control), and
/// no hook record newer than the heartbeat says another took control.
/// The heartbeat then stands still because writing it fails (a full or
/// stalled StateSaveLocation, an NFS server hanging one client), not
/// because of a switch; standing by would leave no exporter. The file is
/// read as it is, not through `seen`, so nothing ages out, and only times
/// written on one host are compared.
fn stale_but_mine(i: &Inputs, me: u32) -> bool {
    let Some(hb) = i.heartbeat else {
        return false;
    };
    let another_took_over = i
        .hook
        .as_ref()
        .is_some_and(|h| h.on && h.index != me && h.time >= hb.time);
    hb.index == me && i.lower_answers == Some(false) && !another_took_over
}

/// Keeps the heartbeat history between polls and counts transitions.
#[derive(Default)]
pub struct RoleTracker {
    seen: BTreeMap<u32, i64>,
    pub current: Option<Decision>,
    pub transitions: u64,
}

impl RoleTracker {
    /// Adds this poll's observations, decides, and reports a change.
    pub fn update(&mut self, inputs: Inputs) -> (Decision, bool) {
        let decision = self.observe(inputs);
        let changed = self.record(decision.clone());
        (decision, changed)
    }

    /// Adds this poll's observations and decides from Slurm's signals.
    pub fn observe(&mut self, mut inputs: Inputs) -> Decision {
        if let Some(h) = inputs.heartbeat {
            let t = self.seen.entry(h.index).or_insert(h.time);
            *t = (*t).max(h.time);
        }
        // Forget controllers not seen for long, so the map stays small.
        let horizon = inputs.now - 10 * inputs.slurmctld_timeout.max(1);
        self.seen.retain(|_, t| *t >= horizon);
        inputs.seen = self.seen.clone();
        decide(&inputs)
    }

    /// Takes the decision acted on; whether the role changed.
    pub fn record(&mut self, decision: Decision) -> bool {
        let changed = self.current.as_ref().map(|c| c.role) != Some(decision.role);
        if changed && self.current.is_some() {
            self.transitions += 1;
        }
        self.current = Some(decision);
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(me: u32) -> Inputs {
        Inputs {
            now: 1000,
            my_index: Some(me),
            controllers: 2,
            slurmctld_timeout: 10,
            own_ping_ok: true,
            ..Default::default()
        }
    }

    fn with_hb(mut i: Inputs, index: u32, time: i64) -> Inputs {
        i.heartbeat = Some(Heartbeat { time, index });
        i.seen.insert(index, time);
        i
    }

    #[test]
    fn heartbeat_names_the_active_controller() {
        assert_eq!(decide(&with_hb(base(0), 0, 998)).role, Role::Active);
        assert_eq!(decide(&with_hb(base(1), 0, 998)).role, Role::Standby);
        // Stale heartbeat and no hook record: nobody is active (transition).
        assert_eq!(decide(&with_hb(base(0), 0, 980)).role, Role::Standby);
    }

    #[test]
    fn a_dead_own_slurmctld_is_never_active() {
        let mut i = with_hb(base(0), 0, 999);
        i.own_ping_ok = false;
        let dec = decide(&i);
        assert_eq!((dec.role, dec.source), (Role::Standby, "ping"));
    }

    #[test]
    fn split_brain_resolves_to_the_lowest_fresh_index() {
        let mut i = with_hb(base(1), 1, 999);
        i.seen.insert(0, 995);
        assert_eq!(decide(&i).role, Role::Standby);
        let mut j = with_hb(base(0), 1, 999);
        j.seen.insert(0, 995);
        assert_eq!(decide(&j).role, Role::Active);
    }

    #[test]
    fn a_newer_hook_record_switches_at_once() {
        let mut i = with_hb(base(1), 0, 990);
        i.hook = Some(HookRecord {
            index: 1,
            on: true,
            time: 995,
        });
        assert_eq!(decide(&i).source, "hook");
        assert_eq!(decide(&i).role, Role::Active);
        // An older hook record loses to the heartbeat.
        i.hook = Some(HookRecord {
            index: 1,
            on: true,
            time: 900,
        });
        assert_eq!(decide(&i).role, Role::Standby);
        i.hook = Some(HookRecord {
            index: 0,
            on: false,
            time: 995,
        });
        assert_eq!(decide(&i).role, Role::Standby);
    }

    /// The heartbeat written last at `time` by `index`, now stale, with
    /// whether a lower-index controller answers.
    fn stale(me: u32, index: u32, time: i64, lower_answers: bool) -> Inputs {
        let mut i = with_hb(base(me), index, time);
        i.lower_answers = Some(lower_answers);
        i
    }

    #[test]
    fn a_stale_heartbeat_keeps_its_writer_while_it_answers_first() {
        // The primary wrote last, at 950, and answers: its heartbeat
        // writes fail, control did not move. Its exporter stays active,
        // the backup's stands by.
        let dec = decide(&stale(0, 0, 950, false));
        assert_eq!((dec.role, dec.source), (Role::Active, "ping"));
        assert_eq!(decide(&stale(1, 0, 950, true)).role, Role::Standby);
        // The backup in control wrote last, the primary is down: active.
        assert_eq!(decide(&stale(1, 1, 950, false)).role, Role::Active);
        // The backup wrote last but the primary answers: the primary has
        // taken control back (its own writes failing too), or is taking
        // it. Never the backup then.
        assert_eq!(decide(&stale(1, 1, 950, true)).role, Role::Standby);
        // Not asked (None), or its own slurmctld does not answer: standby.
        let mut i = with_hb(base(0), 0, 950);
        assert_eq!(decide(&i).role, Role::Standby);
        i.lower_answers = Some(false);
        i.own_ping_ok = false;
        assert_eq!(decide(&i).role, Role::Standby);
        // A hook record newer than the heartbeat: another took control.
        let mut t = stale(0, 0, 950, false);
        t.hook = Some(HookRecord {
            index: 1,
            on: true,
            time: 960,
        });
        assert_eq!(decide(&t).role, Role::Standby);
        // An older record of the other's, or its primary-off: no matter.
        t.hook = Some(HookRecord {
            index: 1,
            on: false,
            time: 960,
        });
        assert_eq!(decide(&t).role, Role::Active);
    }

    #[test]
    fn a_long_stall_keeps_the_same_answer_through_the_tracker() {
        // Past 10 x SlurmctldTimeout the tracker forgets the heartbeat it
        // saw; the decision reads the file as it is, so it holds.
        let mut t = RoleTracker::default();
        for now in [1000, 1100, 5000] {
            let mut i = stale(0, 0, 950, false);
            i.now = now;
            assert_eq!(t.observe(i).role, Role::Active, "at {now}");
        }
        // A fresh exporter (empty tracker) decides the same at once.
        let mut i = stale(1, 0, 950, true);
        i.now = 5000;
        assert_eq!(RoleTracker::default().observe(i).role, Role::Standby);
    }

    #[test]
    fn single_controller_and_unknown_host() {
        let mut i = base(0);
        i.controllers = 1;
        assert_eq!(decide(&i).role, Role::Active);
        i.own_ping_ok = false;
        assert_eq!(decide(&i).role, Role::Active, "nobody else could export");
        i.my_index = None;
        assert_eq!(decide(&i).role, Role::Unknown);
    }

    fn in_process(me: u32, flag: bool) -> Inputs {
        let mut i = base(me);
        i.own_ping_ok = false; // never consulted in plugin mode
        i.in_control = Some(flag);
        i
    }

    #[test]
    fn in_process_flag_decides_without_a_heartbeat() {
        assert_eq!(decide(&in_process(0, true)).role, Role::Active);
        assert_eq!(decide(&in_process(0, false)).role, Role::Standby);
        // One controller or a host missing from SlurmctldHost: the flag alone.
        let mut i = in_process(0, true);
        i.my_index = None;
        i.controllers = 1;
        assert_eq!(decide(&i).role, Role::Active);
        // A stale heartbeat of the dead primary does not hold a takeover back.
        assert_eq!(
            decide(&with_hb(in_process(1, true), 0, 980)).role,
            Role::Active
        );
    }

    #[test]
    fn in_process_split_brain_waits_for_our_own_heartbeat() {
        // A resumed primary whose flag is still set, while the backup's
        // heartbeat is fresh: stand by until its own heartbeat shows.
        let resumed = with_hb(in_process(0, true), 1, 999);
        assert_eq!(decide(&resumed).role, Role::Standby);
        assert_eq!(decide(&with_hb(resumed, 0, 1000)).role, Role::Active);
        // The backup, flag still set, sees the primary's fresh heartbeat.
        let backup = with_hb(in_process(1, true), 0, 999);
        assert_eq!(decide(&backup).role, Role::Standby);
    }

    #[test]
    fn a_lagging_flag_trusts_a_fresh_heartbeat_only_where_it_can_lag() {
        let mut i = with_hb(in_process(0, false), 0, 999);
        assert_eq!(decide(&i).role, Role::Standby);
        i.flag_may_lag = true;
        let dec = decide(&i);
        assert_eq!((dec.role, dec.source), (Role::Active, "heartbeat"));
        // Never on another controller's heartbeat.
        let mut j = with_hb(in_process(1, false), 0, 999);
        j.flag_may_lag = true;
        assert_eq!(decide(&j).role, Role::Standby);
    }

    #[test]
    fn tracker_counts_transitions() {
        let mut t = RoleTracker::default();
        let (d1, _) = t.update(with_hb(base(1), 0, 998));
        assert_eq!(d1.role, Role::Standby);
        let mut i = base(1);
        i.now = 1020;
        let (d2, changed) = t.update(with_hb(i, 1, 1019));
        assert_eq!(d2.role, Role::Active);
        assert!(changed);
        assert_eq!(t.transitions, 1);
    }
}
