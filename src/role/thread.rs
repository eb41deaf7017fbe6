//! The role thread of the daemon: polls the role every poll interval and
//! samples the heartbeat in between, publishes a standby at once, and
//! wakes the engine when this exporter turns active. A collector can block
//! for seconds in libslurm's fail-over retries; a switch to standby must
//! not wait for it, so the decision lives on a thread of its own.

use super::poller::{RolePoller, RoleView};
use super::Role;
use crate::collect::Sources;
use crate::metrics::{Family, Kind};
use crate::publish::{Published, Snapshot};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A standby's whole exposition: who it is, nothing about the cluster.
/// Not ready before the first decision: a readiness probe (and a test)
/// that saw it would otherwise take "not decided yet" for an answer.
pub(crate) fn standby_snapshot(view: &RoleView) -> Snapshot {
    let own = role_families(Some(view), false);
    Snapshot::of(&own.iter().collect::<Vec<_>>(), view.standby_ready(), false)
}

/// How often the role thread looks at the heartbeat between full polls.
const HEARTBEAT_SAMPLE: Duration = Duration::from_millis(100);

/// Polls the role every poll interval and samples the heartbeat in
/// between (RolePoller::sample). A standby decision is published at once,
/// whatever the engine thread is doing; an active one wakes the engine.
/// Its own Sources: only the configuration (configless clusters) is ever
/// loaded, and it is cached for minutes.
pub(crate) fn role_loop(
    mut poller: RolePoller,
    view: Arc<Mutex<RoleView>>,
    published: Arc<Published>,
) {
    let mut sources = Sources::new();
    while !published.stopping() {
        let full = Instant::now() >= poller.next_poll;
        let (decision, changed) = if full {
            sources.begin_cycle();
            poller.poll(&mut sources)
        } else {
            poller.sample()
        };
        let v = poller.view();
        // What a scrape gets if this role thread stalls (a ping or a file
        // read that blocks) past its claim's lease; rendered only where
        // there is a lease (several controllers), once a full poll.
        let lease = poller.lease_until_ms();
        let lapsed = (full && lease != u64::MAX).then(|| {
            standby_snapshot(&RoleView {
                role: Role::Standby,
                source: "claim",
                ..v.clone()
            })
        });
        published.set_lease(lease, lapsed);
        if let Ok(mut g) = view.lock() {
            *g = v.clone();
            if decision.role != Role::Active && (full || changed) {
                published.set(standby_snapshot(&v));
            }
        }
        // Under the lock above, the engine thread can no longer publish
        // cluster series: now the claim may go.
        poller.published();
        if changed && decision.role == Role::Active {
            published.nudge();
        }
        // Between full polls the heartbeat is sampled only where another
        // controller can take over (there is a lease): with one controller
        // nothing but the full poll can change the role, and sampling
        // cost 40 % of the exporter's CPU on a steady cluster (perf).
        let next = if lease == u64::MAX {
            poller.next_poll
        } else {
            poller.next_poll.min(Instant::now() + HEARTBEAT_SAMPLE)
        };
        published.pause_until(next);
    }
    poller.release();
}

/// The families every snapshot carries, standby or active.
pub(crate) fn role_families(view: Option<&RoleView>, active: bool) -> Vec<Family> {
    let mut role_info = Family::info(
        "slurm_exporter_role_info",
        "This exporter's role, the controller index it runs beside, and what decided",
        &["role", "controller", "source"],
    );
    let mut transitions = Family::counter(
        "slurm_exporter_role_transitions_total",
        "Changes of role since the exporter started",
        &[],
    );
    let mut hb_age = Family::gauge(
        "slurm_exporter_heartbeat_age_seconds",
        "Age of Slurm's heartbeat file",
        &[],
    );
    match view {
        Some(v) => {
            let controller = v.my_index.map(|i| i.to_string()).unwrap_or_default();
            role_info.add(&[v.role.as_str(), controller.as_str(), v.source], 1.0);
            transitions.add::<&str>(&[], v.transitions as f64);
            if let Some(a) = v.heartbeat_age {
                hb_age.add::<&str>(&[], a as f64);
            }
        }
        None => {
            role_info.add(&["active", "", "none"], 1.0);
        }
    }
    let mut build = Family::info(
        "slurm_exporter_build_info",
        "Exporter version and the Slurm release it was built against",
        &["version", "slurm_version"],
    );
    build.add(
        &[env!("CARGO_PKG_VERSION"), crate::slurm::BUILD_VERSION],
        1.0,
    );
    vec![
        Family::single(
            "slurm_exporter_active",
            "1 if this exporter serves cluster metrics (it runs on the controller in control)",
            Kind::Gauge,
            if active { 1.0 } else { 0.0 },
        ),
        role_info,
        transitions,
        hb_age,
        build,
        Family::single(
            "slurm_exporter_snapshot_timestamp_seconds",
            "When this snapshot was rendered",
            Kind::Gauge,
            crate::role::claim::now_ms() as f64 / 1000.0,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The engine publishes what it has before the role thread's first
    /// poll; a readiness probe must not take that for an answer (a test
    /// scraped such a snapshot and found no cluster series).
    #[test]
    fn a_standby_is_ready_only_once_the_role_is_decided() {
        let undecided = RoleView::default();
        assert!(!undecided.decided());
        assert!(!standby_snapshot(&undecided).complete);
        let decided = RoleView {
            role: Role::Standby,
            source: "heartbeat",
            ..RoleView::default()
        };
        assert!(standby_snapshot(&decided).complete);
        // "Not a controller" is a decision too, and final.
        let elsewhere = RoleView {
            role: Role::Unknown,
            source: "config",
            ..RoleView::default()
        };
        assert!(standby_snapshot(&elsewhere).complete);
        // Active, but not yet seen by the engine (it publishes a standby
        // until it has): the cluster's families are still to come.
        let active = RoleView {
            role: Role::Active,
            source: "config",
            transitions: 1,
            ..RoleView::default()
        };
        assert!(!standby_snapshot(&active).complete);
    }
}
