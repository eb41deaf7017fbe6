//! When a collector runs: the collection loop runs due collectors on one
//! thread, keeps each collector's last good families with their rendered
//! pieces, and publishes a snapshot (publish.rs) that the HTTP thread
//! serves as is. In the daemon the role check runs on a thread of its own
//! (role/thread.rs). Both threads publish under the role view's lock, and
//! only a thread that sees the role active publishes cluster families.

use crate::collect::{Collector, Source, Sources};
use crate::expose::part::Part;
use crate::metrics::Family;
use crate::publish::{Published, Snapshot};
use crate::role::poller::{RolePoller, RoleView};
use crate::role::thread::{role_families, role_loop, standby_snapshot};
use crate::role::Role;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

struct Slot {
    collector: Box<dyn Collector>,
    interval: Duration,
    next_due: Instant,
    /// The last good families, rendered.
    out: Rendered,
    ran: bool,
    success: bool,
    duration: Duration,
    last_success: Option<f64>,
    last_error: Option<String>,
    /// Versions of the incremental sources at the last good run.
    seen: Vec<(Source, u64)>,
}

/// A collector's families and, in the same order, their rendered pieces.
#[derive(Default)]
struct Rendered {
    families: Vec<Family>,
    parts: Vec<Arc<Part>>,
}

impl Rendered {
    /// Replaces the families; a family equal to one of the last set keeps
    /// its rendered piece (a steady cluster renders and compresses only
    /// what changed: the scheduler's counters, not 10,000 nodes). Returns
    /// whether any piece changed (a family rendered anew, or gone).
    fn set(&mut self, families: Vec<Family>) -> bool {
        let old: HashMap<&str, (&Family, &Arc<Part>)> = self
            .families
            .iter()
            .zip(&self.parts)
            .map(|(f, p)| (f.name.as_str(), (f, p)))
            .collect();
        let parts: Vec<Arc<Part>> = families
            .iter()
            .map(|f| match old.get(f.name.as_str()) {
                Some((was, part)) if *was == f => Arc::clone(part),
                _ => Arc::new(Part::render(&[f])),
            })
            .collect();
        let changed = parts.len() != self.parts.len()
            || parts
                .iter()
                .zip(&self.parts)
                .any(|(a, b)| !Arc::ptr_eq(a, b));
        self.parts = parts;
        self.families = families;
        changed
    }
}

pub struct Engine {
    slots: Vec<Slot>,
    sources: Sources,
    cycles: u64,
    /// The daemon's role, as the role thread last decided it; None
    /// (collect --once) means always active.
    role: Option<Arc<Mutex<RoleView>>>,
    /// The poller, until `run` moves it to the role thread.
    poller: Option<RolePoller>,
    /// Role transitions already applied to the slots.
    transitions_seen: u64,
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Engine {
    pub fn new(collectors: Vec<(Box<dyn Collector>, Duration)>) -> Engine {
        let now = Instant::now();
        Engine {
            slots: collectors
                .into_iter()
                .map(|(collector, interval)| Slot {
                    collector,
                    interval,
                    next_due: now,
                    out: Rendered::default(),
                    ran: false,
                    success: false,
                    duration: Duration::ZERO,
                    last_success: None,
                    last_error: None,
                    seen: Vec::new(),
                })
                .collect(),
            sources: Sources::new(),
            cycles: 0,
            role: None,
            poller: None,
            transitions_seen: 0,
        }
    }

    /// Exports cluster metrics only while `poller` says this host is active.
    pub fn with_role(mut self, poller: RolePoller) -> Engine {
        self.role = Some(Arc::new(Mutex::new(RoleView::default())));
        self.poller = Some(poller);
        self
    }

    fn view(&self) -> Option<RoleView> {
        self.role
            .as_ref()
            .map(|r| r.lock().map(|g| g.clone()).unwrap_or_default())
    }

    pub fn active(&self) -> bool {
        self.view().is_none_or(|v| v.role == Role::Active)
    }

    /// Applies what the role thread decided since the last look: on a
    /// change, starts collecting at once (active) or drops every cluster
    /// family (standby). Returns whether the role changed.
    fn check_role(&mut self) -> bool {
        let Some(view) = self.view() else {
            return false;
        };
        self.sources.state_dir = view.state_dir.clone();
        if view.transitions == self.transitions_seen {
            return false;
        }
        self.transitions_seen = view.transitions;
        let now = Instant::now();
        for s in &mut self.slots {
            if view.role == Role::Active {
                s.next_due = now;
            } else {
                s.out.set(Vec::new());
                s.seen.clear();
                s.ran = false;
                s.success = false;
            }
        }
        true
    }

    /// Publishes this engine's snapshot if the role is still active when
    /// it is handed over (under the role lock, so a standby decided
    /// meanwhile by the role thread is never overwritten with cluster data).
    fn publish(&self, published: &Published) {
        let Some(role) = &self.role else {
            published.set(self.snapshot());
            return;
        };
        let Ok(view) = role.lock() else {
            return;
        };
        if view.role == Role::Active && view.transitions == self.transitions_seen {
            published.set(self.render(true, Some(&view)));
        } else {
            published.set(standby_snapshot(&view));
        }
    }

    /// Runs every collector that is due; returns when the next one is.
    ///
    /// A libslurm call can block for about 1.5 x SlurmctldTimeout while a
    /// controller hangs (client fail-over tries the primary first). The role
    /// thread publishes a standby meanwhile; between collectors this thread
    /// applies the role it decided (a standby stops collecting mid-cycle)
    /// and, when `published` is given, republishes after each collector
    /// whose families changed, and once at the end for the self-metrics of
    /// those whose families did not (a steady cycle renders them once).
    pub fn run_due_publishing(&mut self, published: Option<&Published>) -> Instant {
        let now = Instant::now();
        self.sources.begin_cycle();
        self.cycles += 1;
        // A collector ran whose run is not in the published snapshot yet.
        let mut unpublished = false;
        for i in 0..self.slots.len() {
            let changed = self.check_role();
            if !self.active() {
                if changed {
                    if let Some(p) = published {
                        self.publish(p);
                    }
                }
                break;
            }
            // Before any publish of this role: the first active snapshot
            // already carries what the state file holds.
            self.start_from_durable_state();
            if changed {
                if let Some(p) = published {
                    self.publish(p);
                }
            }
            if self.slots[i].next_due > now {
                continue;
            }
            unpublished = true;
            if self.run_slot(i, now) {
                if let Some(p) = published {
                    self.publish(p);
                    unpublished = false;
                }
            }
        }
        if let Some(p) = published.filter(|_| unpublished && self.active()) {
            self.publish(p);
        }
        self.sources.release();
        self.slots
            .iter()
            .map(|s| s.next_due)
            .min()
            .unwrap_or(now + Duration::from_secs(60))
    }

    /// Slots that have not run since the role turned active (or the
    /// exporter started) begin with what their collector knows without
    /// asking Slurm, so the first active snapshot already carries the
    /// finished-job counters of the state file. Only slots still empty are
    /// asked (the accounting collector reads one small file).
    fn start_from_durable_state(&mut self) {
        let dir = self.sources.state_dir.clone();
        for s in self
            .slots
            .iter_mut()
            .filter(|s| !s.ran && s.out.families.is_empty())
        {
            let families = s.collector.durable_families(dir.as_deref());
            s.out.set(families);
        }
    }

    pub fn run_due(&mut self) -> Instant {
        self.run_due_publishing(None)
    }

    /// Runs one collector; whether its families changed.
    fn run_slot(&mut self, i: usize, now: Instant) -> bool {
        let mut changed = false;
        let slot = &mut self.slots[i];
        {
            let t0 = Instant::now();
            // None: nothing it reads changed, its families stand.
            let mut fams = None;
            let needs = slot.collector.needs();
            let skip = self
                .sources
                .failed_in_cycle()
                .filter(|_| slot.collector.uses_slurmctld())
                .map(|e| format!("skipped: slurmctld did not answer earlier in this cycle ({e})"));
            let result = match skip {
                Some(e) => Err(e),
                None => Ok(()),
            }
            .and_then(|_| self.sources.ensure(needs))
            .map(|_| {
                // Best effort, and not against a slurmctld that already
                // timed out in this cycle.
                if self.sources.failed_in_cycle().is_none() {
                    let _ = self.sources.ensure(slot.collector.wants());
                }
            })
            .and_then(|_| {
                let versions: Vec<(Source, u64)> = needs
                    .iter()
                    .filter(|n| n.incremental())
                    .map(|n| (*n, self.sources.version(*n)))
                    .collect();
                // Nothing it reads changed since its last good run: its
                // families are still exact.
                if slot.success
                    && !versions.is_empty()
                    && versions == slot.seen
                    && needs.iter().all(|n| n.incremental())
                {
                    return Ok(());
                }
                self.sources.ensure_held(needs)?;
                let mut out = Vec::new();
                slot.collector.collect(&self.sources, &mut out)?;
                fams = Some(out);
                slot.seen = needs
                    .iter()
                    .filter(|n| n.incremental())
                    .map(|n| (*n, self.sources.version(*n)))
                    .collect();
                Ok(())
            });
            slot.duration = t0.elapsed();
            slot.ran = true;
            slot.next_due = now + slot.interval;
            match result {
                Ok(()) => {
                    if let Some(fams) = fams {
                        changed = slot.out.set(fams);
                    }
                    slot.success = true;
                    slot.last_success = Some(unix_now());
                    if slot.last_error.take().is_some() {
                        crate::info!("collector {} recovered", slot.collector.name());
                    }
                }
                Err(e) => {
                    // Keep serving the last good families; a collector with
                    // durable state serves what it holds now instead: the
                    // counts last persisted and its error count, which a
                    // write that failed has just raised (a frozen snapshot
                    // would say 0 errors while nothing is saved). Say once
                    // per change.
                    slot.success = false;
                    let durable = slot
                        .collector
                        .durable_families(self.sources.state_dir.as_deref());
                    if !durable.is_empty() || slot.out.families.is_empty() {
                        changed = slot.out.set(durable);
                    }
                    if slot.last_error.as_deref() != Some(e.as_str()) {
                        crate::error!("collector {} failed: {e}", slot.collector.name());
                    }
                    slot.last_error = Some(e);
                }
            }
        }
        changed
    }

    /// Runs every collector once, now (collect --once).
    pub fn run_all_once(&mut self) {
        let now = Instant::now();
        for s in &mut self.slots {
            s.next_due = now;
        }
        self.run_due();
    }

    pub fn all_succeeded(&self) -> bool {
        self.slots.iter().all(|s| s.success)
    }

    pub fn errors(&self) -> Vec<(&'static str, String)> {
        self.slots
            .iter()
            .filter_map(|s| s.last_error.clone().map(|e| (s.collector.name(), e)))
            .collect()
    }

    /// The collectors' own metrics (active only).
    fn collector_families(&self) -> Vec<Family> {
        let l = &["collector"];
        let mut dur = Family::gauge(
            "slurm_exporter_collector_duration_seconds",
            "How long the collector's last run took",
            l,
        );
        let mut ok = Family::gauge(
            "slurm_exporter_collector_success",
            "1 if the collector's last run succeeded",
            l,
        );
        let mut last = Family::gauge(
            "slurm_exporter_collector_last_success_timestamp_seconds",
            "When the collector last succeeded (its families are from then)",
            l,
        );
        for s in self.slots.iter().filter(|s| s.ran) {
            let n = [s.collector.name()];
            dur.add(&n, s.duration.as_secs_f64());
            ok.add(&n, if s.success { 1.0 } else { 0.0 });
            if let Some(t) = s.last_success {
                last.add(&n, t);
            }
        }
        let r = &self.sources.rpcs;
        let mut rpcs = Family::counter(
            "slurm_exporter_slurmctld_requests_total",
            "Requests this exporter sent to slurmctld, by data source and answer",
            &["source", "answer"],
        );
        for src in Source::ALL {
            let (data, unchanged) = r.of(src);
            rpcs.add(&[src.name(), "data"], data as f64);
            rpcs.add(&[src.name(), "unchanged"], unchanged as f64);
        }
        vec![dur, ok, last, rpcs]
    }

    /// Every collector's last good pieces (when `active`) plus self-metrics,
    /// the only families rendered anew for every snapshot.
    fn render(&self, active: bool, view: Option<&RoleView>) -> Snapshot {
        let mut own = role_families(view, active);
        if active {
            own.extend(self.collector_families());
        }
        let slots = || self.slots.iter().filter(|_| active);
        let mut parts: Vec<Arc<Part>> = slots().flat_map(|s| s.out.parts.iter().cloned()).collect();
        parts.push(Arc::new(Part::render(&own.iter().collect::<Vec<_>>())));
        let series = slots()
            .flat_map(|s| s.out.families.iter())
            .chain(own.iter())
            .map(|f| f.samples.len())
            .sum();
        Snapshot::new(
            parts,
            // Active: ready once every collector ran. A standby: once
            // the role thread has decided it.
            if active {
                self.slots.iter().all(|s| s.ran)
            } else {
                view.is_none_or(RoleView::standby_ready)
            },
            active,
            series,
        )
    }

    /// What a scrape would get now.
    pub fn snapshot(&self) -> Snapshot {
        let view = self.view();
        let active = view.as_ref().is_none_or(|v| v.role == Role::Active);
        self.render(active, view.as_ref())
    }

    /// The daemon loop: collect when due, publish, sleep; until stopped.
    /// With a role poller, the role thread runs beside it until the end.
    pub fn run(mut self, published: Arc<Published>) {
        let role_thread = match (self.poller.take(), &self.role) {
            (Some(poller), Some(view)) => {
                let (view, p) = (view.clone(), published.clone());
                std::thread::Builder::new()
                    .name("role".into())
                    .spawn(move || role_loop(poller, view, p))
                    .map_err(|e| crate::error!("cannot start the role thread: {e}"))
                    .ok()
            }
            _ => None,
        };
        while !published.stopping() {
            self.check_role();
            let next = if self.active() {
                self.run_due_publishing(Some(&published))
            } else {
                self.publish(&published);
                // Nudged awake when the role thread decides active.
                Instant::now() + Duration::from_secs(3600)
            };
            published.sleep_until(next);
        }
        if let Some(t) = role_thread {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Rendered;
    use crate::metrics::Family;
    use std::sync::Arc;

    fn family(name: &str, value: f64) -> Family {
        let mut f = Family::gauge(name, "help", &[]);
        f.add::<&str>(&[], value);
        f
    }

    #[test]
    fn only_a_changed_family_is_rendered_again() {
        let mut r = Rendered::default();
        r.set(vec![family("slurm_a", 1.0), family("slurm_b", 2.0)]);
        let before = r.parts.clone();
        r.set(vec![family("slurm_a", 1.0), family("slurm_b", 3.0)]);
        assert!(
            Arc::ptr_eq(&before[0], &r.parts[0]),
            "unchanged: same piece"
        );
        assert!(
            !Arc::ptr_eq(&before[1], &r.parts[1]),
            "changed: rendered again"
        );
        // Order follows the new families; a family gone takes its piece along.
        r.set(vec![family("slurm_b", 3.0), family("slurm_c", 1.0)]);
        assert_eq!(r.parts.len(), 2);
        let text = |i: usize| {
            String::from_utf8_lossy(&r.parts[i].get(crate::expose::Format::Text).bytes).into_owned()
        };
        assert!(text(0).contains("slurm_b 3"), "{}", text(0));
        assert!(text(1).contains("slurm_c 1"), "{}", text(1));
    }
}
