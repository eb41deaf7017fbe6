//! Finished jobs from slurmdbd, counted into sacct_terminal_jobs_total.
//!
//! Each query asks for jobs that ended in [watermark - overlap, now] and
//! counts a job only if its db_index (unique per cluster) was not seen, so
//! the overlap catches records that reach slurmdbd late without counting
//! anything twice. This version keeps its state in memory; the durable
//! version (state in StateSaveLocation) builds on it.

use super::{Collector, Source, Sources};
use crate::metrics::Family;
use crate::slurm::DbConnection;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How far back each query reaches before the previous one's end.
pub const OVERLAP_SECS: i64 = 300;

/// How long a record without a partition is given to get one.
pub const SETTLE_SECS: i64 = 60;

use crate::state::accounting::{self as durable, AccountingState, Key, Loaded};
use std::path::PathBuf;

pub struct AccountingCollector {
    lookback: Duration,
    /// Keep the state in StateSaveLocation (the daemon) or in memory only.
    durable: bool,
    conn: Option<DbConnection>,
    /// What was last persisted (durable) or counted (in memory): published.
    state: Option<AccountingState>,
    state_errors: u64,
}

/// The CycleCloud exporter's `reason` label: what an exit code usually means.
pub fn exit_reason(exit_code: &str) -> &'static str {
    match exit_code {
        "1:0" => "General failure",
        "2:0" => "Misuse of shell built-in",
        "125:0" => "Slurm Out of Memory Error",
        "126:0" => "Command invoked cannot execute",
        "127:0" => "Command not found",
        "128:0" => "Invalid argument to exit",
        "129:0" => "SIGHUP",
        "130:0" => "SIGINT - Ctrl+C",
        "131:0" => "SIGQUIT",
        "134:0" => "SIGABRT",
        "137:0" => "SIGKILL - Force killed",
        "139:0" => "SIGSEGV - Segfault",
        "141:0" => "SIGPIPE",
        "143:0" => "SIGTERM - Terminated",
        "152:0" => "SIGXCPU - CPU limit",
        "153:0" => "SIGXFSZ - File size limit",
        _ => "",
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl AccountingCollector {
    pub fn new(lookback: Duration, durable: bool) -> AccountingCollector {
        AccountingCollector {
            lookback,
            durable,
            conn: None,
            state: None,
            state_errors: 0,
        }
    }

    fn fresh(&self, since: i64) -> AccountingState {
        AccountingState {
            counting_since: since,
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
                crate::error!(
                    "accounting state unusable ({reason}); kept aside as {}; counting resumes from the last {OVERLAP_SECS} s",
                    kept_as.map_or("(could not rename)".into(), |p| p.display().to_string())
                );
                self.fresh(end - OVERLAP_SECS)
            }
        }
    }
}

impl Collector for AccountingCollector {
    fn name(&self) -> &'static str {
        "accounting"
    }
    fn needs(&self) -> &'static [Source] {
        &[Source::Config]
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
        let start = if st.watermark == 0 {
            st.counting_since
        } else {
            (st.watermark - OVERLAP_SECS).max(st.counting_since)
        };
        if self.conn.is_none() {
            self.conn = Some(DbConnection::open().map_err(|e| e.to_string())?);
        }
        let conn = self.conn.as_mut().expect("just opened");
        let jobs = match conn.finished_jobs(&config.cluster_name, start, end) {
            Ok(j) => j,
            Err(e) => {
                // Reconnect next time: the connection may be broken for good.
                self.conn = None;
                return Err(e.to_string());
            }
        };
        crate::debug!(
            "slurmdbd: {} finished jobs ended in [{start}, {end}]",
            jobs.len()
        );
        for job in jobs {
            if job.end_time < st.counting_since || st.seen.contains_key(&job.db_index) {
                continue;
            }
            // A job that ends within a second of starting can reach slurmdbd
            // as an end record before its start record fills in the
            // partition (seen on 22.05). Counting it then would label it
            // partition="" for good; wait for the record to settle (the
            // query overlap brings it back), up to SETTLE_SECS.
            if job.partition.is_empty() && end - job.end_time < SETTLE_SECS {
                continue;
            }
            st.seen.insert(job.db_index, job.end_time);
            let reason = exit_reason(&job.exit_code).to_string();
            let key: Key = (
                job.partition,
                job.exit_code,
                reason,
                job.state.as_str().to_string(),
            );
            *st.counts.entry(key).or_insert(0) += 1;
        }
        st.watermark = end;
        // A db_index older than any future window's start cannot come back.
        let horizon = end - 2 * OVERLAP_SECS;
        st.seen.retain(|_, t| *t >= horizon);
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

        let mut f = Family::counter(
            "sacct_terminal_jobs_total",
            "Total Number of completed slurm jobs",
            &["partition", "exit_code", "reason", "state"],
        );
        for ((p, e, r, s), v) in &st.counts {
            f.add(&[p, e, r, s], *v as f64);
        }
        out.push(f);
        out.push(Family::single(
            "slurm_exporter_accounting_watermark_timestamp_seconds",
            "End of the last finished-jobs window read from slurmdbd",
            crate::metrics::Kind::Gauge,
            end as f64,
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
        Ok(())
    }
}
