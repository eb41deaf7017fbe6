//! Gathers the role inputs (local slurm.conf, heartbeat, hook record, a ping
//! of this host's slurmctld, and of the controllers before it when the
//! heartbeat is stale and names this one) and feeds the tracker. It runs on its own
//! thread (engine::role_loop) so that a collector blocked in libslurm's
//! fail-over retries never delays a switch to standby; the engine reads the
//! outcome as a RoleView. In standby these are the only Slurm calls the
//! daemon makes. In plugin mode slurmctld's `control_time` takes the place
//! of the ping and the hook record.

use super::claim::Claims;
use super::slurm_conf::{self, LocalConf};
use super::{heartbeat, hook, Decision, Inputs, Role, RoleTracker};
use crate::collect::{Source, Sources};
use crate::slurm;
use crate::slurm::host::{ControlFlag, CONTROL_TIME_ZERO_WHILE_RECONFIGURING};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Slurm's default SlurmctldTimeout, when neither slurm.conf nor slurmctld says.
const DEFAULT_SLURMCTLD_TIMEOUT: i64 = 120;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HaSettings {
    pub poll: Duration,
    /// After another exporter withdrew, how long to stand by before
    /// exporting (claim.rs): at least Prometheus' scrape interval.
    pub handover_delay: Duration,
    pub state_save_location: Option<PathBuf>,
    pub controller_index: Option<u32>,
}

impl Default for HaSettings {
    fn default() -> Self {
        HaSettings {
            poll: Duration::from_secs(5),
            handover_delay: Duration::from_secs(15),
            state_save_location: None,
            controller_index: None,
        }
    }
}

/// What the rest of the daemon needs to know of the role, copied out after
/// each poll.
#[derive(Clone, Debug, PartialEq)]
pub struct RoleView {
    pub role: Role,
    /// Which input decided ("none" before the first decision).
    pub source: &'static str,
    pub my_index: Option<u32>,
    pub transitions: u64,
    pub heartbeat_age: Option<i64>,
    pub state_dir: Option<PathBuf>,
}

/// What a view says before the role thread's first decision.
const UNDECIDED: &str = "none";

impl RoleView {
    /// Whether the role thread has decided at all: until then the
    /// exporter answers but is not ready (a scrape could get neither the
    /// cluster nor a standby's verdict).
    pub fn decided(&self) -> bool {
        self.source != UNDECIDED
    }

    /// Whether a standby answer of this view is final (ready): decided,
    /// and not active (an active view is answered as a standby only in
    /// the instant before the engine has seen the change).
    pub fn standby_ready(&self) -> bool {
        self.decided() && self.role != Role::Active
    }
}

impl Default for RoleView {
    fn default() -> Self {
        RoleView {
            role: Role::Unknown,
            source: UNDECIDED,
            my_index: None,
            transitions: 0,
            heartbeat_age: None,
            state_dir: None,
        }
    }
}

pub struct RolePoller {
    pub settings: HaSettings,
    pub tracker: RoleTracker,
    pub next_poll: Instant,
    pub state_dir: Option<PathBuf>,
    pub my_index: Option<u32>,
    pub heartbeat_age: Option<i64>,
    last_problem: Option<String>,
    /// Plugin mode: slurmctld's own flag replaces the ping and the hook.
    flag: Option<ControlFlag>,
    /// The last full poll's inputs, which `sample` refreshes.
    last: Option<Inputs>,
    /// This exporter's claim among the controllers' (`claim.rs`), once its
    /// index, the controllers and StateSaveLocation are known.
    claims: Option<Claims>,
    claim_problem: Option<String>,
}

/// Logs a role-check problem when it first appears or changes, not at
/// every poll while it lasts.
fn log_on_change(last: &mut Option<String>, p: Option<String>) {
    if p != *last {
        if let Some(msg) = &p {
            crate::error!("role check: {msg}");
        }
        *last = p;
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl RolePoller {
    pub fn new(settings: HaSettings) -> RolePoller {
        RolePoller {
            settings,
            tracker: RoleTracker::default(),
            next_poll: Instant::now(),
            state_dir: None,
            my_index: None,
            heartbeat_age: None,
            last_problem: None,
            flag: None,
            last: None,
            claims: None,
            claim_problem: None,
        }
    }

    /// Inside slurmctld: the role follows slurmctld's `control_time`; no
    /// ping (no RPC while slurmctld may still be starting).
    pub fn in_process(settings: HaSettings, flag: ControlFlag) -> RolePoller {
        RolePoller {
            flag: Some(flag),
            ..RolePoller::new(settings)
        }
    }

    pub fn view(&self) -> RoleView {
        RoleView {
            role: self.role(),
            source: self
                .tracker
                .current
                .as_ref()
                .map_or(UNDECIDED, |d| d.source),
            my_index: self.my_index,
            transitions: self.tracker.transitions,
            heartbeat_age: self.heartbeat_age,
            state_dir: self.state_dir.clone(),
        }
    }

    pub fn role(&self) -> Role {
        self.tracker
            .current
            .as_ref()
            .map_or(Role::Unknown, |d| d.role)
    }

    fn problem(&mut self, p: Option<String>) {
        log_on_change(&mut self.last_problem, p);
    }

    /// One role check; returns the decision and whether the role changed.
    pub fn poll(&mut self, sources: &mut Sources) -> (Decision, bool) {
        self.next_poll = Instant::now() + self.settings.poll;
        let conf_path =
            std::env::var("SLURM_CONF").unwrap_or_else(|_| slurm::DEFAULT_SLURM_CONF.into());
        let mut local = slurm_conf::read(std::path::Path::new(&conf_path)).unwrap_or_default();
        let in_control = self.flag.map(|f| f.control_time() != 0);
        // In plugin mode slurmctld is asked only once it is in control.
        let may_ask = in_control != Some(false);
        if may_ask && (local.controllers.is_empty() || local.state_save_location.is_none()) {
            // Configless: ask slurmctld (cached for minutes by Sources).
            if sources.ensure(&[Source::Config]).is_ok() {
                let c = sources.config();
                local = LocalConf {
                    state_save_location: Some(PathBuf::from(&c.state_save_location)),
                    controllers: c.control_machines.clone(),
                    slurmctld_timeout: Some(c.slurmctld_timeout_secs as i64),
                    slurm_user: None,
                };
            }
        }
        let my_index = self.settings.controller_index.or_else(|| {
            slurm_conf::my_index(&local.controllers, &crate::state::atomic::hostname())
        });
        self.my_index = my_index;
        let state_dir = self
            .settings
            .state_save_location
            .clone()
            .or(local.state_save_location.clone());
        self.state_dir = state_dir.clone();
        let mut problem = None;
        let hb = match &state_dir {
            Some(dir) => heartbeat::read(dir).unwrap_or_else(|e| {
                problem = Some(e);
                None
            }),
            None => {
                problem = Some("StateSaveLocation unknown (set --ha.state-save-location)".into());
                None
            }
        };
        let t = now();
        self.heartbeat_age = hb.map(|h| t - h.time);
        // One controller: the decision does not depend on the ping, and a
        // ping of a dead slurmctld can block for seconds; skip it.
        let own_ping_ok = local.controllers.len() <= 1
            || in_control.is_some()
            || my_index.is_some_and(|i| slurm::ping(i as usize).is_ok());
        let mut inputs = Inputs {
            now: t,
            my_index,
            controllers: local.controllers.len().max(1) as u32,
            slurmctld_timeout: local.slurmctld_timeout.unwrap_or(DEFAULT_SLURMCTLD_TIMEOUT),
            own_ping_ok,
            in_control,
            flag_may_lag: CONTROL_TIME_ZERO_WHILE_RECONFIGURING,
            heartbeat: hb,
            hook: state_dir.as_deref().and_then(hook::read),
            lower_answers: None,
            seen: Default::default(),
        };
        // Only when the heartbeat is stale and names this controller does
        // the decision ask whether a controller before it answers (role::
        // stale_but_mine): pings of the others otherwise cost slurmctld
        // nothing it needs, and one of a hung host blocks for seconds.
        inputs.lower_answers = match my_index {
            Some(0) => Some(false),
            Some(me) if inputs.stale_heartbeat_is_mine() && own_ping_ok && in_control.is_none() => {
                Some((0..me).any(|ix| slurm::ping(ix as usize).is_ok()))
            }
            _ => None,
        };
        self.problem(problem);
        self.keep_claims(&inputs);
        self.last = Some(inputs.clone());
        self.decide(inputs, true)
    }

    /// (Re)creates the claims when what they depend on is known or changed.
    fn keep_claims(&mut self, inputs: &Inputs) {
        let want = match (&self.state_dir, inputs.my_index) {
            (Some(dir), Some(me)) if inputs.controllers > 1 => Some((dir.clone(), me)),
            _ => None,
        };
        let same = match (&self.claims, &want) {
            (Some(c), Some((dir, me))) => {
                c.dir == *dir && c.me == *me && c.controllers == inputs.controllers
            }
            (None, None) => true,
            _ => false,
        };
        if same {
            return;
        }
        if let Some(mut old) = self.claims.take() {
            if let Err(e) = old.withdraw() {
                crate::error!("role check: {e}");
            }
        }
        self.claims = want.map(|(dir, me)| {
            Claims::new(
                dir,
                me,
                inputs.controllers,
                self.settings.poll,
                self.settings.handover_delay,
            )
        });
    }

    /// Until when (ms since the epoch) this exporter may serve as active:
    /// its claim's lease, or u64::MAX where it makes no claims.
    pub fn lease_until_ms(&self) -> u64 {
        self.claims
            .as_ref()
            .map_or(u64::MAX, |c| c.lease_until_ms())
    }

    /// Once a decision other than active is published (cluster series no
    /// longer served): withdraws our claim, which lets the next exporter
    /// start.
    pub fn published(&mut self) {
        let holding = self.claims.as_ref().is_some_and(Claims::holding);
        if self.role() != Role::Active && !holding {
            self.release();
        }
    }

    /// On the way out: a standby successor need not wait for our claim to
    /// expire.
    pub fn release(&mut self) {
        if let Some(Err(e)) = self.claims.as_mut().map(Claims::withdraw) {
            crate::error!("role check: {e}");
        }
    }

    /// Between full polls: reads the heartbeat and the hook record again
    /// (16-byte files) and the in-process flag, keeps the rest of the last
    /// poll, and decides. While two slurmctlds both write the heartbeat
    /// (a split brain) the file shows only the last writer, for as long as
    /// the other one waits to write again: a look every poll interval can
    /// miss the lower index for seconds, a look every 100 ms rarely does.
    pub fn sample(&mut self) -> (Decision, bool) {
        let (Some(mut inputs), Some(dir)) = (self.last.clone(), self.state_dir.clone()) else {
            return match &self.tracker.current {
                Some(d) => (d.clone(), false),
                None => (super::decide(&Inputs::default()), false),
            };
        };
        inputs.now = now();
        inputs.heartbeat = heartbeat::read(&dir).unwrap_or(None);
        inputs.hook = hook::read(&dir);
        inputs.in_control = self.flag.map(|f| f.control_time() != 0);
        self.heartbeat_age = inputs.heartbeat.map(|h| inputs.now - h.time);
        // The heartbeat went stale naming this controller since the last
        // poll, which did not ask whether a controller before it answers:
        // the next poll asks (a sample never pings); until then, no change.
        if inputs.stale_heartbeat_is_mine()
            && inputs.lower_answers.is_none()
            && inputs.in_control.is_none()
        {
            if let Some(d) = &self.tracker.current {
                return (d.clone(), false);
            }
        }
        self.decide(inputs, false)
    }

    /// Slurm's signals decide (`role::decide`), then the exporters' claims
    /// settle who of those Slurm lets export does (`claim.rs`).
    fn decide(&mut self, inputs: Inputs, full: bool) -> (Decision, bool) {
        let now = inputs.now;
        let base = self.tracker.observe(inputs);
        let active_now = self.role() == Role::Active;
        let decision = match self.claims.as_mut() {
            Some(c) => {
                let (d, problem) = c.settle(base, active_now, full, now);
                log_on_change(&mut self.claim_problem, problem);
                d
            }
            None => base,
        };
        let changed = self.tracker.record(decision.clone());
        if changed {
            crate::info!(
                "role: {} (from {}: {})",
                decision.role.as_str(),
                decision.source,
                decision.why
            );
        }
        (decision, changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_heartbeat(dir: &std::path::Path, time: i64, index: u64) {
        let mut b = (time as u64).to_be_bytes().to_vec();
        b.extend_from_slice(&index.to_be_bytes());
        std::fs::write(dir.join("heartbeat"), b).unwrap();
    }

    /// The look between full polls (`sample`, every 100 ms in the role
    /// thread): the backup's exporter sees the primary's heartbeat between
    /// two writes of its own slurmctld, and stays standby while the
    /// primary's stays fresh although the file names the backup again (a
    /// split brain: two writers, the file holds the last).
    #[test]
    fn a_sample_between_polls_catches_the_lower_index_and_keeps_it() {
        let dir = std::env::temp_dir().join(format!("poller-sample-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut p = RolePoller::new(HaSettings::default());
        p.state_dir = Some(dir.clone());
        let t = now();
        p.last = Some(Inputs {
            now: t,
            my_index: Some(1),
            controllers: 2,
            slurmctld_timeout: 10,
            own_ping_ok: true,
            ..Default::default()
        });
        write_heartbeat(&dir, t, 1);
        let (d, _) = p.sample();
        assert_eq!(d.role, Role::Active, "{d:?}");

        write_heartbeat(&dir, t, 0);
        let (d, changed) = p.sample();
        assert_eq!((d.role, changed), (Role::Standby, true), "{d:?}");

        write_heartbeat(&dir, t, 1);
        let (d, changed) = p.sample();
        assert_eq!((d.role, changed), (Role::Standby, false), "{d:?}");
        assert_eq!(p.heartbeat_age, Some(now() - t));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_sample_before_any_full_poll_changes_nothing() {
        let mut p = RolePoller::new(HaSettings::default());
        let (d, changed) = p.sample();
        assert_eq!((d.role, changed), (Role::Unknown, false), "{d:?}");
    }
}
