//! Finished jobs from slurmdbd, counted into sacct_terminal_jobs_total.
//!
//! The counting rules (window, overlap, settle, watermark) live in
//! `counting`; this collector does the I/O around them: the state file in
//! StateSaveLocation (daemon) or memory (collect --once), the slurmdbd
//! query, and slurmctld's DBD agent queue as the proof that slurmdbd has
//! every record up to a time.

use super::counting;
use super::finished_jobs::FinishedJobs;
use super::{Collector, Source, Sources};
use crate::metrics::Family;
use crate::state::accounting::{self as durable, AccountingState, Loaded};
use crate::state::histogram::BOUNDS;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub struct AccountingCollector {
    lookback: Duration,
    /// --collector.accounting.overlap, in seconds.
    overlap: i64,
    /// Keep the state in StateSaveLocation (the daemon) or in memory only.
    durable: bool,
    source: FinishedJobs,
    /// What was last persisted (durable) or counted (in memory): published.
    state: Option<AccountingState>,
    state_errors: u64,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl AccountingCollector {
    pub fn new(
        lookback: Duration,
        overlap: Duration,
        durable: bool,
        source: FinishedJobs,
    ) -> AccountingCollector {
        AccountingCollector {
            lookback,
            overlap: overlap.as_secs().max(1) as i64,
            durable,
            source,
            state: None,
            state_errors: 0,
        }
    }

    fn fresh(&self, since: i64) -> AccountingState {
        AccountingState {
            counting_since: since,
            overlap: self.overlap,
            ..Default::default()
        }
    }

    /// The state to continue from. Durable: the file, re-read every time, so
    /// whatever another exporter (the previous active one) persisted is
    /// where this one goes on.
    fn starting_state(&mut self, file: Option<&PathBuf>, end: i64) -> AccountingState {
        let Some(file) = file else {
            return self
                .state
                .clone()
                .unwrap_or_else(|| self.fresh(end - self.lookback.as_secs() as i64));
        };
        match durable::load(file) {
            Loaded::State(st) => st,
            Loaded::Missing => self.fresh(end - self.lookback.as_secs() as i64),
            Loaded::SetAside { reason, kept_as } => {
                self.state_errors += 1;
                let kept_as =
                    kept_as.map_or("(could not rename)".into(), |p| p.display().to_string());
                // The state this process last saved, if it has one, is a
                // valid point to count on from: the window reaches back to
                // its watermark, so whatever another exporter counted since
                // is counted again into the same totals, and no counter goes
                // back. Without one (a fresh process), nothing says what
                // was counted: start over from the last overlap.
                match self.state.clone() {
                    Some(mine) => {
                        crate::error!(
                            "accounting state unusable ({reason}); kept aside as {kept_as}; counting goes on from this exporter's last state (watermark {})",
                            mine.watermark
                        );
                        mine
                    }
                    None => {
                        crate::error!(
                            "accounting state unusable ({reason}); kept aside as {kept_as}; counting resumes from the last {} s",
                            self.overlap
                        );
                        self.fresh(end - self.overlap)
                    }
                }
            }
        }
    }
}

impl AccountingCollector {
    /// The counters of `st` and how far they reach.
    fn families(&self, st: &AccountingState) -> Vec<Family> {
        let mut out = Vec::new();
        let mut f = Family::counter(
            "sacct_terminal_jobs_total",
            "Total Number of completed slurm jobs",
            &["partition", "exit_code", "reason", "state"],
        );
        for ((p, e, r, s), v) in &st.counts {
            f.add(&[p, e, r, s], *v as f64);
        }
        out.push(f);
        for (what, name, help) in [
            (
                "wait",
                "slurm_job_queue_wait_seconds",
                "Queue wait of finished jobs (submit to start, or to the end for a job that never started), by partition and state class; counted with sacct_terminal_jobs_total",
            ),
            (
                "run",
                "slurm_job_run_seconds",
                "Run time of finished jobs (0 for a job that never started), by partition and state class; counted with sacct_terminal_jobs_total",
            ),
        ] {
            let mut h = Family::histogram(name, help, &["partition", "class"]);
            for ((_, p, class), hist) in st.histograms.iter().filter(|(k, _)| k.0 == what) {
                h.add_histogram(
                    &[p, class],
                    &BOUNDS,
                    &hist.cumulative(),
                    hist.sum as f64,
                    hist.count,
                );
            }
            out.push(h);
        }
        out.push(Family::single(
            "slurm_exporter_accounting_watermark_timestamp_seconds",
            "Every job that ended before this is counted (held back while slurmctld still queues records for slurmdbd)",
            crate::metrics::Kind::Gauge,
            st.watermark as f64,
        ));
        out.push(Family::single(
            "slurm_exporter_accounting_counting_since_timestamp_seconds",
            "Jobs that ended before this are not counted (start of the durable counters)",
            crate::metrics::Kind::Gauge,
            st.counting_since as f64,
        ));
        out.push(Family::single(
            "slurm_exporter_state_errors_total",
            "Accounting state files found unusable (set aside) or not writable",
            crate::metrics::Kind::Counter,
            self.state_errors as f64,
        ));
        out
    }
}

impl Collector for AccountingCollector {
    fn name(&self) -> &'static str {
        "accounting"
    }
    fn needs(&self) -> &'static [Source] {
        &[Source::Config]
    }
    /// slurmctld's DBD agent queue (sdiag) tells how far slurmdbd is
    /// complete; without it the watermark just waits.
    fn wants(&self) -> &'static [Source] {
        &[Source::Stats]
    }
    /// Its one slurmctld source, the configuration, is cached for minutes,
    /// and its data comes from slurmdbd: a slurmctld that timed out earlier
    /// in the cycle must not starve the finished-job counters.
    fn uses_slurmctld(&self) -> bool {
        false
    }
    /// The counters as the state file holds them (read only: a corrupt
    /// file is set aside by the next real run, which also reports it), with
    /// the error count as it is now. A file that cannot be read gives
    /// nothing: older counts from memory could be lower than what another
    /// exporter saved since, and a counter must never go back.
    fn durable_families(&mut self, state_dir: Option<&std::path::Path>) -> Vec<Family> {
        let st = match (self.durable, state_dir) {
            (true, Some(dir)) => durable::inspect(&durable::path(dir)).ok(),
            _ => self.state.clone(),
        };
        st.map(|st| self.families(&st)).unwrap_or_default()
    }
    fn collect(&mut self, sources: &Sources, out: &mut Vec<Family>) -> Result<(), String> {
        let config = sources.config();
        if !config.has_slurmdbd() {
            return Err(format!(
                "AccountingStorageType is {:?}, not accounting_storage/slurmdbd: no finished-job data (disable with --no-collector.accounting)",
                config.accounting_storage_type
            ));
        }
        let file = self.durable.then(|| {
            durable::path(
                &sources
                    .state_dir
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(&config.state_save_location)),
            )
        });
        let end = now();
        let mut st = self.starting_state(file.as_ref(), end);
        let start = counting::window_start(&st);
        let jobs = self.source.query(&config.cluster_name, start, end)?;
        crate::debug!(
            "slurmdbd: {} finished jobs ended in [{start}, {end}]",
            jobs.len()
        );
        // Loaded before the query, so an empty queue then means every
        // record of a job that ended before it is in slurmdbd now.
        let synced = sources
            .stats_this_cycle()
            .filter(|s| s.dbd_agent_queue_size == 0)
            .map(|s| s.req_time);
        counting::count_window(&mut st, jobs, end, synced, self.overlap);
        st.generation += 1;
        st.writer = crate::state::atomic::hostname();
        // Publish only what is persisted: a failed write keeps the old
        // values and the next run counts the same jobs again.
        if let Some(file) = &file {
            durable::save(file, &st).map_err(|e| {
                self.state_errors += 1;
                format!("cannot persist accounting state: {e}")
            })?;
        }
        self.state = Some(st);
        let st = self.state.as_ref().expect("just set");

        out.extend(self.families(st));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A corrupt file met by a process that has counted before goes on from
    /// what that process last saved (no counter goes back); met by a fresh
    /// process, counting starts over from the last overlap.
    #[test]
    fn a_corrupt_file_resumes_from_this_process_state_or_starts_over() {
        let dir = std::env::temp_dir().join(format!("acct-corrupt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = durable::path(&dir);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        let source = FinishedJobs::Helper {
            program: "/nonexistent".into(),
            slurm_conf: "/nonexistent".into(),
        };
        let mut c = AccountingCollector::new(Duration::ZERO, Duration::from_secs(60), true, source);
        let end = 1_800_000_000;

        std::fs::write(&file, "garbage").unwrap();
        let fresh = c.starting_state(Some(&file), end);
        assert_eq!(fresh.counting_since, end - 60);
        assert!(fresh.counts.is_empty());
        assert_eq!(c.state_errors, 1);

        let mut mine = c.fresh(end - 86_400);
        mine.counts.insert(
            (
                "debug".into(),
                "0:0".into(),
                "None".into(),
                "completed".into(),
            ),
            7,
        );
        mine.watermark = end - 30;
        c.state = Some(mine.clone());
        std::fs::write(&file, "{\"trunc").unwrap();
        let resumed = c.starting_state(Some(&file), end);
        assert_eq!(resumed, mine);
        assert_eq!(c.state_errors, 2);
        // Both bad files are kept aside.
        let aside = std::fs::read_dir(file.parent().unwrap())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(".corrupt.")
            })
            .count();
        assert!(aside >= 1, "{aside}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
