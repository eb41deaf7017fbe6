//! The collection loop: runs due collectors on one thread, keeps each
//! collector's last good families, and publishes a rendered snapshot that
//! the HTTP thread serves as is. In the daemon the role check runs on a
//! thread of its own (`role_loop`): a collector can block for seconds in
//! libslurm's fail-over retries, and a switch to standby must not wait for
//! it. Both threads publish under the role view's lock, and only a thread
//! that sees the role active publishes cluster families.

use crate::collect::{Collector, Source, Sources};
use crate::expose::{self, Format};
use crate::metrics::{Family, Kind};
use crate::role::poller::{RolePoller, RoleView};
use crate::role::Role;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What a scrape serves: both formats, rendered once per collection, and
/// their gzipped forms, made on the first scrape that asks.
pub struct Snapshot {
    pub text: Vec<u8>,
    pub openmetrics: Vec<u8>,
    /// False until every enabled collector has run once.
    pub complete: bool,
    /// Whether this exporter exports the cluster (else it is a standby).
    pub active: bool,
    pub series: usize,
    gzip: [std::sync::OnceLock<Vec<u8>>; 2],
}

impl Snapshot {
    pub fn new(
        text: Vec<u8>,
        openmetrics: Vec<u8>,
        complete: bool,
        active: bool,
        series: usize,
    ) -> Snapshot {
        Snapshot {
            text,
            openmetrics,
            complete,
            active,
            series,
            gzip: Default::default(),
        }
    }

    pub fn body(&self, f: Format) -> &[u8] {
        match f {
            Format::Text => &self.text,
            Format::OpenMetrics => &self.openmetrics,
        }
    }

    /// The body gzipped, compressed once per snapshot however many scrape
    /// it. Deflate needs more stack than a connection thread has, so it runs
    /// on a thread of its own with a normal stack (once per snapshot and
    /// format, so the thread costs nothing that matters).
    pub fn gzipped(&self, f: Format) -> &[u8] {
        let slot = &self.gzip[matches!(f, Format::OpenMetrics) as usize];
        slot.get_or_init(|| {
            let body = self.body(f).to_vec();
            std::thread::Builder::new()
                .name("gzip".into())
                .stack_size(8 << 20)
                .spawn(move || {
                    use std::io::Write;
                    let mut z =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                    let _ = z.write_all(&body);
                    z.finish().unwrap_or_default()
                })
                .ok()
                .and_then(|t| t.join().ok())
                .unwrap_or_default()
        })
    }
}

/// Shared between the engine and the HTTP thread.
pub struct Published {
    current: RwLock<Option<Arc<Snapshot>>>,
    /// Until when (ms since the epoch) an active snapshot may be served:
    /// this exporter's claim lease (role/claim.rs). Past it, whatever has
    /// blocked the role thread, scrapes get `lapsed` instead, before any
    /// other exporter can take the claim over. u64::MAX: no lease (one
    /// controller, or no StateSaveLocation to claim in).
    lease_ms: AtomicU64,
    lapsed: RwLock<Option<Arc<Snapshot>>>,
    stop: AtomicBool,
    /// Set by the role thread when the engine should look at once.
    nudged: AtomicBool,
    wake: (Mutex<()>, Condvar),
}

impl Default for Published {
    fn default() -> Self {
        Published {
            current: RwLock::new(None),
            lease_ms: AtomicU64::new(u64::MAX),
            lapsed: RwLock::new(None),
            stop: AtomicBool::new(false),
            nudged: AtomicBool::new(false),
            wake: (Mutex::new(()), Condvar::new()),
        }
    }
}

impl Published {
    pub fn get(&self) -> Option<Arc<Snapshot>> {
        let current = self.current.read().map(|g| g.clone()).unwrap_or(None);
        if current.as_ref().is_some_and(|s| s.active)
            && crate::role::claim::now_ms() > self.lease_ms.load(Ordering::SeqCst)
        {
            if let Some(l) = self.lapsed.read().map(|g| g.clone()).unwrap_or(None) {
                return Some(l);
            }
        }
        current
    }
    /// The role thread: the lease, and the standby served once it lapses.
    fn set_lease(&self, until_ms: u64, lapsed: Option<Snapshot>) {
        if let Some(l) = lapsed {
            if let Ok(mut g) = self.lapsed.write() {
                *g = Some(Arc::new(l));
            }
        }
        self.lease_ms.store(until_ms, Ordering::SeqCst);
    }
    pub(crate) fn set(&self, s: Snapshot) {
        if let Ok(mut g) = self.current.write() {
            *g = Some(Arc::new(s));
        }
    }
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.wake.1.notify_all();
    }
    /// From a signal handler: only the atomic store; the sleeper polls.
    pub fn request_stop_from_signal(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
    /// Ends the engine's current sleep (the role became active).
    fn nudge(&self) {
        self.nudged.store(true, Ordering::SeqCst);
        self.wake.1.notify_all();
    }
    /// Sleeps until `deadline`, a stop request or a nudge (the engine).
    fn sleep_until(&self, deadline: Instant) {
        self.wait(deadline, true)
    }
    /// Sleeps until `deadline` or a stop request (the role thread, which
    /// must not swallow the nudge it gives the engine).
    fn pause_until(&self, deadline: Instant) {
        self.wait(deadline, false)
    }
    fn wait(&self, deadline: Instant, nudgeable: bool) {
        let mut guard = match self.wake.0.lock() {
            Ok(g) => g,
            Err(_) => return,
        };
        while !self.stopping() {
            let now = Instant::now();
            if now >= deadline || (nudgeable && self.nudged.swap(false, Ordering::SeqCst)) {
                return;
            }
            let step = (deadline - now).min(Duration::from_millis(200));
            guard = match self.wake.1.wait_timeout(guard, step) {
                Ok((g, _)) => g,
                Err(_) => return,
            };
        }
    }
}

struct Slot {
    collector: Box<dyn Collector>,
    interval: Duration,
    next_due: Instant,
    families: Vec<Family>,
    ran: bool,
    success: bool,
    duration: Duration,
    last_success: Option<f64>,
    last_error: Option<String>,
    /// Versions of the incremental sources at the last good run.
    seen: Vec<(Source, u64)>,
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
                    families: Vec::new(),
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
                s.families.clear();
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
    /// and, when `published` is given, republishes after each collector.
    pub fn run_due_publishing(&mut self, published: Option<&Published>) -> Instant {
        let now = Instant::now();
        self.sources.begin_cycle();
        self.cycles += 1;
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
            self.run_slot(i, now);
            if let Some(p) = published {
                self.publish(p);
            }
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
            .filter(|s| !s.ran && s.families.is_empty())
        {
            s.families = s.collector.durable_families(dir.as_deref());
        }
    }

    pub fn run_due(&mut self) -> Instant {
        self.run_due_publishing(None)
    }

    fn run_slot(&mut self, i: usize, now: Instant) {
        let slot = &mut self.slots[i];
        {
            let t0 = Instant::now();
            let mut fams = Vec::new();
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
                    fams = std::mem::take(&mut slot.families);
                    return Ok(());
                }
                self.sources.ensure_held(needs)?;
                slot.collector.collect(&self.sources, &mut fams)?;
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
                    slot.families = fams;
                    slot.success = true;
                    slot.last_success = Some(unix_now());
                    if slot.last_error.take().is_some() {
                        crate::info!("collector {} recovered", slot.collector.name());
                    }
                }
                Err(e) => {
                    // Keep serving the last good families (or, before the
                    // first success, what the state file holds); say once
                    // per change.
                    slot.success = false;
                    if slot.families.is_empty() {
                        slot.families = slot
                            .collector
                            .durable_families(self.sources.state_dir.as_deref());
                    }
                    if slot.last_error.as_deref() != Some(e.as_str()) {
                        crate::error!("collector {} failed: {e}", slot.collector.name());
                    }
                    slot.last_error = Some(e);
                }
            }
        }
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
        for (src, total, unchanged) in [
            ("jobs", r.jobs, r.jobs_unchanged),
            ("nodes", r.nodes, r.nodes_unchanged),
            ("partitions", r.partitions, r.partitions_unchanged),
            ("stats", r.stats, 0),
            ("config", r.config, 0),
        ] {
            rpcs.add(&[src, "data"], (total - unchanged) as f64);
            rpcs.add(&[src, "unchanged"], unchanged as f64);
        }
        vec![dur, ok, last, rpcs]
    }

    /// Every collector's last good families (when `active`) plus
    /// self-metrics.
    fn render(&self, active: bool, view: Option<&RoleView>) -> Snapshot {
        let mut own = role_families(view, active);
        if active {
            own.extend(self.collector_families());
        }
        let slots = self.slots.iter().filter(|_| active);
        let fams: Vec<&Family> = slots
            .flat_map(|s| s.families.iter())
            .chain(own.iter())
            .collect();
        Snapshot::render(
            &fams,
            // A standby is ready as soon as it answers.
            !active || self.slots.iter().all(|s| s.ran),
            active,
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
                // Nudged awake when the role thread decides active.
                Instant::now() + Duration::from_secs(3600)
            };
            self.publish(&published);
            published.sleep_until(next);
        }
        if let Some(t) = role_thread {
            let _ = t.join();
        }
    }
}

impl Snapshot {
    fn render(fams: &[&Family], complete: bool, active: bool) -> Snapshot {
        let series = fams.iter().map(|f| f.samples.len()).sum();
        let mut text = Vec::with_capacity(series * 64);
        let mut om = Vec::with_capacity(series * 64);
        expose::render(Format::Text, fams, &mut text);
        expose::render(Format::OpenMetrics, fams, &mut om);
        Snapshot::new(text, om, complete, active, series)
    }
}

/// A standby's whole exposition: who it is, nothing about the cluster.
fn standby_snapshot(view: &RoleView) -> Snapshot {
    let own = role_families(Some(view), false);
    Snapshot::render(&own.iter().collect::<Vec<_>>(), true, false)
}

/// How often the role thread looks at the heartbeat between full polls.
const HEARTBEAT_SAMPLE: Duration = Duration::from_millis(100);

/// Polls the role every poll interval and samples the heartbeat in
/// between (RolePoller::sample). A standby decision is published at once,
/// whatever the engine thread is doing; an active one wakes the engine.
/// Its own Sources: only the configuration (configless clusters) is ever
/// loaded, and it is cached for minutes.
fn role_loop(mut poller: RolePoller, view: Arc<Mutex<RoleView>>, published: Arc<Published>) {
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
        published.pause_until(poller.next_poll.min(Instant::now() + HEARTBEAT_SAMPLE));
    }
    poller.release();
}

/// The families every snapshot carries, standby or active.
fn role_families(view: Option<&RoleView>, active: bool) -> Vec<Family> {
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
            unix_now(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nudge_wakes_the_engine_and_is_not_swallowed_by_the_role_thread() {
        let p = Published::default();
        p.nudge();
        // The role thread's pause runs to its deadline and leaves the nudge.
        let t0 = Instant::now();
        p.pause_until(t0 + Duration::from_millis(300));
        assert!(t0.elapsed() >= Duration::from_millis(300));
        // The engine's sleep ends at once instead of after an hour.
        let t1 = Instant::now();
        p.sleep_until(t1 + Duration::from_secs(3600));
        assert!(t1.elapsed() < Duration::from_secs(5));
    }

    /// A role thread that stalls stops renewing its lease: from then on
    /// scrapes get the standby it left, not the cluster.
    #[test]
    fn an_active_snapshot_is_served_only_within_the_lease() {
        let p = Published::default();
        let active = Snapshot::new(b"cluster".to_vec(), vec![], true, true, 1);
        let standby = Snapshot::new(b"standby".to_vec(), vec![], true, false, 1);
        p.set(active);
        // No lease (one controller): served.
        assert_eq!(p.get().unwrap().text, b"cluster");
        let now = crate::role::claim::now_ms();
        p.set_lease(now + 60_000, Some(standby));
        assert_eq!(p.get().unwrap().text, b"cluster");
        p.set_lease(now - 1, None);
        assert_eq!(p.get().unwrap().text, b"standby");
        // A standby is a standby, lease or not.
        p.set(Snapshot::new(b"own".to_vec(), vec![], true, false, 1));
        assert_eq!(p.get().unwrap().text, b"own");
    }
}
