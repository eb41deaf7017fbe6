//! Jobs and the resources they ask for or hold, by account (`accounts`
//! collector) or by user (`users`), from the job list the jobs collector
//! loads anyway: no RPC of their own. Both are off by default. Only the
//! top N accounts or users by CPUs held by running jobs get their own
//! series; the rest are summed into one `other` row, so a cluster with
//! thousands of users stays a bounded number of series.

use super::jobs::{counts_resources, resources, tasks};
use super::view::JobView;
use super::{Collector, Source, Sources};
use crate::metrics::Family;
use std::collections::{BTreeMap, HashMap};

/// Default of `--collector.accounts.top` and `--collector.users.top`.
pub const DEFAULT_TOP: usize = 50;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum By {
    Account,
    User,
}

pub struct UsageCollector {
    by: By,
    top: usize,
    /// uid -> user name, looked up once per uid.
    names: HashMap<u32, String>,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Key<'a> {
    Account(&'a str),
    Uid(u32),
}

#[derive(Default)]
struct Totals {
    /// state -> jobs (array tasks counted singly), CPUs, memory, GPUs.
    jobs: BTreeMap<&'static str, f64>,
    cpus: BTreeMap<&'static str, f64>,
    memory: BTreeMap<&'static str, f64>,
    gpus: BTreeMap<&'static str, f64>,
}

impl Totals {
    fn running_cpus(&self) -> f64 {
        self.cpus.get("running").copied().unwrap_or(0.0)
    }
    fn absorb(&mut self, other: Totals) {
        for (mine, theirs) in [
            (&mut self.jobs, other.jobs),
            (&mut self.cpus, other.cpus),
            (&mut self.memory, other.memory),
            (&mut self.gpus, other.gpus),
        ] {
            for (k, v) in theirs {
                *mine.entry(k).or_default() += v;
            }
        }
    }
}

impl UsageCollector {
    pub fn new(by: By, top: usize) -> UsageCollector {
        UsageCollector {
            by,
            top,
            names: HashMap::new(),
        }
    }

    /// What jobs are summed by: borrowed from the job (an account) or a
    /// number (a uid), so no string is made per job; names come after.
    fn key<'a>(&self, job: &impl JobView<'a>) -> Key<'a> {
        match self.by {
            By::Account => Key::Account(job.account()),
            By::User => Key::Uid(job.user_id()),
        }
    }

    fn name(&mut self, key: Key) -> String {
        match key {
            Key::Account(a) => a.to_string(),
            Key::Uid(uid) => self
                .names
                .entry(uid)
                .or_insert_with_key(|uid| user_name(*uid))
                .clone(),
        }
    }

    /// The families of this collector from any job records (see `view`).
    pub fn families<'a, J: JobView<'a>>(
        &mut self,
        jobs: impl Iterator<Item = J>,
        out: &mut Vec<Family>,
    ) {
        let mut by_key: HashMap<Key<'a>, Totals> = HashMap::new();
        for job in jobs {
            let state = job.state();
            if state.is_finished() {
                continue;
            }
            let n = tasks(&job) as f64;
            let name = state.as_str();
            let t = by_key.entry(self.key(&job)).or_default();
            *t.jobs.entry(name).or_default() += n;
            if counts_resources(state) {
                let res = resources(&job);
                *t.cpus.entry(name).or_default() += res.cpus as f64 * n;
                *t.memory.entry(name).or_default() += res.memory_bytes as f64 * n;
                *t.gpus.entry(name).or_default() += res.gpus as f64 * n;
            }
        }
        // Two uids never share a name, but sum them if the system says so.
        let mut by_name: HashMap<String, Totals> = HashMap::with_capacity(by_key.len());
        for (key, t) in by_key {
            let name = self.name(key);
            by_name.entry(name).or_default().absorb(t);
        }
        // The top N by running CPUs (then by name, so the cut is stable).
        let mut ranked: Vec<(String, Totals)> = by_name.into_iter().collect();
        ranked.sort_by(|a, b| {
            b.1.running_cpus()
                .total_cmp(&a.1.running_cpus())
                .then_with(|| a.0.cmp(&b.0))
        });
        let rest = ranked.split_off(self.top.min(ranked.len()));
        if !rest.is_empty() {
            let mut other = Totals::default();
            for (_, t) in rest {
                other.absorb(t);
            }
            ranked.push(("other".to_string(), other));
        }

        // Names spelled out: tests/contrib_files.rs finds the dashboards'
        // metrics in the source by their literal names.
        let (what, names) = match self.by {
            By::Account => (
                "account",
                [
                    "slurm_account_jobs",
                    "slurm_account_cpus",
                    "slurm_account_memory_bytes",
                    "slurm_account_gpus",
                ],
            ),
            By::User => (
                "user",
                [
                    "slurm_user_jobs",
                    "slurm_user_cpus",
                    "slurm_user_memory_bytes",
                    "slurm_user_gpus",
                ],
            ),
        };
        let labels = &[what, "state"];
        let held = "requested by pending jobs and allocated to running or suspended jobs";
        let mut fams = [
            (
                names[0],
                format!("Jobs (array tasks counted singly) by {what} and state"),
            ),
            (names[1], format!("CPUs {held}, by {what}")),
            (names[2], format!("Memory {held}, by {what}")),
            (names[3], format!("GPUs {held}, by {what}")),
        ]
        .map(|(name, help)| Family::gauge(name, &help, labels));
        ranked.sort_by(|a, b| a.0.cmp(&b.0));
        for (key, t) in &ranked {
            for (family, values) in fams.iter_mut().zip([&t.jobs, &t.cpus, &t.memory, &t.gpus]) {
                for (state, v) in values {
                    family.add(&[key.as_str(), state], *v);
                }
            }
        }
        out.extend(fams);
    }
}

impl Collector for UsageCollector {
    fn name(&self) -> &'static str {
        match self.by {
            By::Account => "accounts",
            By::User => "users",
        }
    }
    fn needs(&self) -> &'static [Source] {
        &[Source::Jobs]
    }
    fn collect(&mut self, sources: &Sources, out: &mut Vec<Family>) -> Result<(), String> {
        self.families(sources.jobs().iter(), out);
        Ok(())
    }
}

/// The user name of `uid` as squeue prints it, or the number when the
/// system knows no such user.
fn user_name(uid: u32) -> String {
    let mut buf = vec![0u8; 4096];
    // SAFETY: a zeroed passwd is a valid out-parameter; getpwuid_r writes
    // its strings into `buf`, which outlives every read of `pw` below.
    unsafe {
        let mut pw: libc::passwd = std::mem::zeroed();
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr().cast(), buf.len(), &mut found);
        if rc == 0 && !found.is_null() && !pw.pw_name.is_null() {
            return std::ffi::CStr::from_ptr(pw.pw_name)
                .to_string_lossy()
                .into_owned();
        }
    }
    uid.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_system_or_stay_numbers() {
        assert_eq!(user_name(0), "root");
        assert_eq!(user_name(4_000_000_123), "4000000123");
    }
}
