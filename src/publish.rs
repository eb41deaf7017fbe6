//! How a scrape is served: the snapshot the engine (or, for a standby, the
//! role thread) publishes, and the shared place it is published in, with
//! the claim's lease and the wake-ups between the two threads. A scrape
//! only copies the snapshot's bytes; it never renders, compresses or waits
//! on Slurm.

use crate::expose::part::{self, Encoded, Part};
use crate::expose::Format;
use crate::metrics::Family;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, RwLock};
use std::time::Instant;

/// What a scrape serves: pieces rendered in both formats and compressed
/// when they were made (expose/part.rs), shared with the engine's cache:
/// a family that did not change since the last snapshot is the same piece.
pub struct Snapshot {
    parts: Vec<Arc<Part>>,
    /// False until every enabled collector has run once.
    pub complete: bool,
    /// Whether this exporter exports the cluster (else it is a standby).
    pub active: bool,
    pub series: usize,
}

impl Snapshot {
    /// The pieces in order; OpenMetrics' `# EOF` is added here.
    pub fn new(mut parts: Vec<Arc<Part>>, complete: bool, active: bool, series: usize) -> Snapshot {
        static EOF: OnceLock<Arc<Part>> = OnceLock::new();
        parts.push(EOF.get_or_init(|| Arc::new(Part::eof())).clone());
        Snapshot {
            parts,
            complete,
            active,
            series,
        }
    }

    /// A snapshot of these families alone, rendered now as one piece.
    pub fn of(families: &[&Family], complete: bool, active: bool) -> Snapshot {
        let series = families.iter().map(|f| f.samples.len()).sum();
        Snapshot::new(
            vec![Arc::new(Part::render(families))],
            complete,
            active,
            series,
        )
    }

    fn pieces(&self, f: Format) -> impl Iterator<Item = &Encoded> {
        self.parts.iter().map(move |p| p.get(f))
    }

    /// The body's pieces, to be written one after the other.
    pub fn chunks(&self, f: Format) -> Vec<&[u8]> {
        self.pieces(f)
            .map(|e| e.bytes.as_slice())
            .filter(|b| !b.is_empty())
            .collect()
    }

    /// The whole body in one buffer (collect --once, tests).
    pub fn body(&self, f: Format) -> Vec<u8> {
        self.chunks(f).concat()
    }

    /// The body gzipped, as pieces to write one after the other (one gzip
    /// member) and the trailer that ends them.
    pub fn gzip_chunks(&self, f: Format) -> (Vec<&[u8]>, [u8; 10]) {
        let mut chunks = vec![&part::GZIP_HEADER[..]];
        chunks.extend(
            self.pieces(f)
                .map(|e| e.deflate.as_slice())
                .filter(|d| !d.is_empty()),
        );
        (chunks, part::gzip_trailer(self.pieces(f)))
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
    pub(crate) fn set_lease(&self, until_ms: u64, lapsed: Option<Snapshot>) {
        if let Some(l) = lapsed {
            if let Ok(mut g) = self.lapsed.write() {
                *g = Some(Arc::new(l));
            }
        }
        self.lease_ms.store(until_ms, Ordering::SeqCst);
    }
    pub fn set(&self, s: Snapshot) {
        if let Ok(mut g) = self.current.write() {
            *g = Some(Arc::new(s));
        }
    }
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.wake_sleepers();
    }
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
    /// Ends the engine's current sleep (the role became active).
    pub(crate) fn nudge(&self) {
        self.nudged.store(true, Ordering::SeqCst);
        self.wake_sleepers();
    }
    /// After a flag was set: a sleeper holds the lock from its check of the
    /// flags until it waits, so taking the lock here means it either sees
    /// the flag or is already waiting and gets the notification (no lost
    /// wake-up, hence no polling while asleep).
    fn wake_sleepers(&self) {
        drop(self.wake.0.lock());
        self.wake.1.notify_all();
    }
    /// Sleeps until `deadline`, a stop request or a nudge (the engine).
    pub(crate) fn sleep_until(&self, deadline: Instant) {
        self.wait(deadline, true)
    }
    /// Sleeps until `deadline` or a stop request (the role thread, which
    /// must not swallow the nudge it gives the engine).
    pub(crate) fn pause_until(&self, deadline: Instant) {
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
            guard = match self.wake.1.wait_timeout(guard, deadline - now) {
                Ok((g, _)) => g,
                Err(_) => return,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_stop_or_a_nudge_wakes_a_long_sleep_at_once() {
        // Sleepers no longer poll: the wake-up must come from the
        // notification, whichever side reaches the lock first.
        for round in 0..50 {
            let p = Arc::new(Published::default());
            let sleeper = {
                let p = p.clone();
                std::thread::spawn(move || {
                    let t0 = Instant::now();
                    p.sleep_until(t0 + Duration::from_secs(60));
                    t0.elapsed()
                })
            };
            if round % 2 == 0 {
                p.nudge();
            } else {
                p.request_stop();
            }
            let slept = sleeper.join().unwrap();
            assert!(
                slept < Duration::from_secs(5),
                "round {round}: slept {slept:?}"
            );
        }
    }

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
        // Told apart by their series counts.
        let (cluster, standby, own) = (100, 2, 3);
        p.set(Snapshot::new(vec![], true, true, cluster));
        // No lease (one controller): served.
        assert_eq!(p.get().unwrap().series, cluster);
        let now = crate::role::claim::now_ms();
        p.set_lease(
            now + 60_000,
            Some(Snapshot::new(vec![], true, false, standby)),
        );
        assert_eq!(p.get().unwrap().series, cluster);
        p.set_lease(now - 1, None);
        assert_eq!(p.get().unwrap().series, standby);
        // A standby is a standby, lease or not.
        p.set(Snapshot::new(vec![], true, false, own));
        assert_eq!(p.get().unwrap().series, own);
    }

    #[test]
    fn a_snapshot_is_its_pieces_in_order_and_one_gzip_member() {
        use std::io::Read;
        let mut a = Family::gauge("slurm_a", "A", &["node"]);
        a.add(&["n1"], 1.0);
        let mut b = Family::counter("slurm_b_total", "B", &[]);
        b.add::<&str>(&[], 2.0);
        let parts = vec![Arc::new(Part::render(&[&a])), Arc::new(Part::render(&[&b]))];
        let s = Snapshot::new(parts, true, true, 2);
        for f in [Format::Text, Format::OpenMetrics] {
            let mut whole = Vec::new();
            crate::expose::render(f, &[&a, &b], &mut whole);
            assert_eq!(s.body(f), whole, "{f:?}");
            let (chunks, trailer) = s.gzip_chunks(f);
            let mut gz = chunks.concat();
            gz.extend_from_slice(&trailer);
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&gz[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, whole, "{f:?}");
        }
    }
}
