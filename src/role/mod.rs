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
//!    itself ends a split brain.
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
    /// Newest heartbeat time seen per controller index, over past polls.
    pub seen: BTreeMap<u32, i64>,
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
        None if still_mine(i, me) => d(
            Role::Active,
            "hook",
            "the heartbeat is stale, but SlurmctldPrimaryOnProg ran here last and this slurmctld answers",
        ),
        None => d(
            Role::Standby,
            "heartbeat",
            "no controller wrote the heartbeat within SlurmctldTimeout (a switch is under way)",
        ),
    }
}

/// With no fresh heartbeat at all, whether this controller still holds
/// control by Slurm's last word on it: SlurmctldPrimaryOnProg ran here
/// last (a backup that took over since would have run it there), this
/// slurmctld answers (checked before), and no controller that would win a
/// split brain (a lower index) wrote the heartbeat after that. The
/// heartbeat then stands still because writing it fails (a full or stalled
/// StateSaveLocation, an NFS hiccup), not because of a switch: Slurm's
/// backup does not take over from a primary that answers its pings, so
/// standing by would leave no exporter while a controller is in control.
fn still_mine(i: &Inputs, me: u32) -> bool {
    let Some(h) = i.hook.as_ref().filter(|h| h.on && h.index == me) else {
        return false;
    };
    !i.seen.iter().any(|(ix, t)| *ix < me && *t > h.time)
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

    #[test]
    fn a_stale_heartbeat_keeps_the_controller_that_took_control_last() {
        let on = |index, time| HookRecord {
            index,
            on: true,
            time,
        };
        // Primary-on here at 900, own heartbeat last written at 950, and
        // nothing since: writing the heartbeat fails, control did not move.
        let mut i = with_hb(base(0), 0, 950);
        i.hook = Some(on(0, 900));
        let dec = decide(&i);
        assert_eq!((dec.role, dec.source), (Role::Active, "hook"));
        // The other controller's exporter stays standby on the same record.
        let mut other = with_hb(base(1), 0, 950);
        other.hook = Some(on(0, 900));
        assert_eq!(decide(&other).role, Role::Standby);
        // A backup that took control last, when the primary (lower index)
        // wrote the heartbeat after that: the primary came back, wait.
        let mut b = with_hb(base(1), 1, 950);
        b.hook = Some(on(1, 900));
        assert_eq!(decide(&b).role, Role::Active);
        b.seen.insert(0, 960);
        assert_eq!(decide(&b).role, Role::Standby);
        // After primary-off, or with no record at all: standby as before.
        i.hook = Some(HookRecord {
            on: false,
            ..on(0, 900)
        });
        assert_eq!(decide(&i).role, Role::Standby);
        i.hook = None;
        assert_eq!(decide(&i).role, Role::Standby);
        // A slurmctld that does not answer is never active.
        i.hook = Some(on(0, 900));
        i.own_ping_ok = false;
        assert_eq!(decide(&i).role, Role::Standby);
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
