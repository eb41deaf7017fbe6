//! The engine's contract with its collectors, with a test double in place
//! of a collector (no Slurm here: the real collectors are proven against
//! real clusters in single_host.rs and ha_cluster.rs). An integration test
//! because anything that reaches the engine links libslurm, which the
//! library's own unit tests do not (build.rs: the plugin must not).

use slurm_ha_exporter::collect::{Collector, Source, Sources};
use slurm_ha_exporter::engine::Engine;
use slurm_ha_exporter::expose::Format;
use slurm_ha_exporter::metrics::{Family, Kind};
use slurm_ha_exporter::publish::Published;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Stands in for a collector of slurmctld data that runs first.
struct Quick;

impl Collector for Quick {
    fn name(&self) -> &'static str {
        "jobs"
    }
    fn needs(&self) -> &'static [Source] {
        &[]
    }
    fn collect(&mut self, _: &Sources, out: &mut Vec<Family>) -> Result<(), String> {
        out.push(Family::single("slurm_jobs", "t", Kind::Gauge, 1.0));
        Ok(())
    }
}

/// Stands in for the accounting collector: its counters are known from
/// "the state file" (42); slurmdbd answers `answer` (43 counted) or not.
/// While it runs it looks at what a scrape would get at that moment.
struct Accounting {
    answer: bool,
    published: Arc<Published>,
    seen_meanwhile: Arc<Mutex<String>>,
}

impl Collector for Accounting {
    fn name(&self) -> &'static str {
        "accounting"
    }
    fn needs(&self) -> &'static [Source] {
        &[]
    }
    fn uses_slurmctld(&self) -> bool {
        false
    }
    fn collect(&mut self, _: &Sources, out: &mut Vec<Family>) -> Result<(), String> {
        if let Some(s) = self.published.get() {
            *self.seen_meanwhile.lock().unwrap() =
                String::from_utf8_lossy(&s.body(Format::Text)).into_owned();
        }
        if !self.answer {
            return Err("slurmdbd does not answer".into());
        }
        out.push(counter(43.0));
        Ok(())
    }
    fn durable_families(&mut self, _: Option<&std::path::Path>) -> Vec<Family> {
        vec![counter(42.0)]
    }
}

fn counter(v: f64) -> Family {
    Family::single("sacct_terminal_jobs_total", "t", Kind::Counter, v)
}

/// One cycle of an engine that just started; returns what a scrape got
/// while the accounting collector ran, and after the cycle.
fn first_cycle(answer: bool) -> (String, String) {
    let published = Arc::new(Published::default());
    let seen = Arc::new(Mutex::new(String::new()));
    let mut e = Engine::new(vec![
        (Box::new(Quick), Duration::from_secs(5)),
        (
            Box::new(Accounting {
                answer,
                published: published.clone(),
                seen_meanwhile: seen.clone(),
            }),
            Duration::from_secs(5),
        ),
    ]);
    e.run_due_publishing(Some(&published));
    let after = String::from_utf8_lossy(&published.get().unwrap().body(Format::Text)).into_owned();
    let meanwhile = seen.lock().unwrap().clone();
    (meanwhile, after)
}

#[test]
fn the_first_snapshot_carries_the_counters_of_the_state_file() {
    let (meanwhile, after) = first_cycle(true);
    assert!(meanwhile.contains("slurm_jobs 1"), "{meanwhile}");
    assert!(
        meanwhile.contains("sacct_terminal_jobs_total 42"),
        "published before the accounting collector ran:\n{meanwhile}"
    );
    assert!(after.contains("sacct_terminal_jobs_total 43"), "{after}");
}

#[test]
fn without_slurmdbd_the_counters_of_the_state_file_stay_with_success_0() {
    let (_, after) = first_cycle(false);
    assert!(after.contains("sacct_terminal_jobs_total 42"), "{after}");
    assert!(
        after.contains("slurm_exporter_collector_success{collector=\"accounting\"} 0"),
        "{after}"
    );
}

/// Stands in for the accounting collector once its state file cannot be
/// written any more (StateSaveLocation read-only, full, or owned by another
/// user): the first run persists and publishes 43; every later run counts,
/// fails to persist, raises its error count and returns the error. What
/// the file holds (its `durable_families`) is still 43.
struct Unwritable {
    runs: u32,
    errors: u32,
}

impl Unwritable {
    fn families(&self) -> Vec<Family> {
        vec![
            counter(43.0),
            Family::single(
                "slurm_exporter_state_errors_total",
                "t",
                Kind::Counter,
                self.errors as f64,
            ),
        ]
    }
}

impl Collector for Unwritable {
    fn name(&self) -> &'static str {
        "accounting"
    }
    fn needs(&self) -> &'static [Source] {
        &[]
    }
    fn uses_slurmctld(&self) -> bool {
        false
    }
    fn collect(&mut self, _: &Sources, out: &mut Vec<Family>) -> Result<(), String> {
        self.runs += 1;
        if self.runs > 1 {
            self.errors += 1;
            return Err("cannot persist accounting state: Permission denied".into());
        }
        out.extend(self.families());
        Ok(())
    }
    fn durable_families(&mut self, _: Option<&std::path::Path>) -> Vec<Family> {
        self.families()
    }
}

/// A state file that stops being writable must show: the error count rises
/// (SlurmExporterStateErrors fires) while the counters stay published from
/// what was last persisted. Before, the engine kept the last good snapshot
/// whole, error count 0 included.
#[test]
fn a_state_file_that_cannot_be_written_counts_as_a_state_error_and_keeps_the_counters() {
    let published = Arc::new(Published::default());
    let mut e = Engine::new(vec![(
        Box::new(Unwritable { runs: 0, errors: 0 }),
        Duration::ZERO,
    )]);
    let scrape =
        |p: &Published| String::from_utf8_lossy(&p.get().unwrap().body(Format::Text)).into_owned();
    e.run_due_publishing(Some(&published));
    let first = scrape(&published);
    assert!(
        first.contains("slurm_exporter_state_errors_total 0"),
        "{first}"
    );
    e.run_due_publishing(Some(&published));
    let after = scrape(&published);
    assert!(
        after.contains("slurm_exporter_state_errors_total 1"),
        "{after}"
    );
    assert!(after.contains("sacct_terminal_jobs_total 43"), "{after}");
    assert!(
        after.contains("slurm_exporter_collector_success{collector=\"accounting\"} 0"),
        "{after}"
    );
}
