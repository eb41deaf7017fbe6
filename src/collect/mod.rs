//! Collectors: each turns the shared Slurm data into metric families.
//!
//! The contract is small (node_exporter's): a name, the sources it reads, and
//! `collect` that appends families or returns an error. Timing and success
//! are measured by the engine around the call, in one place.

pub mod accounting;
pub mod controllers;
pub mod counting;
pub mod cyclecloud;
pub mod dbd;
pub mod fairshare;
pub mod finished_jobs;
pub mod jobs;
pub mod licenses;
pub mod nodes;
pub mod partitions;
pub mod record;
pub mod reservations;
pub mod scheduler;
pub mod sources;
pub mod usage;
pub mod view;

use crate::metrics::Family;
pub use sources::{Source, Sources};
use std::time::Duration;

pub trait Collector: Send {
    fn name(&self) -> &'static str;
    /// Sources loaded (once per cycle, shared) before `collect` runs.
    fn needs(&self) -> &'static [Source];
    /// Sources loaded if slurmctld answers; the collector works without
    /// them (and must check whether they are there).
    fn wants(&self) -> &'static [Source] {
        &[]
    }
    fn collect(&mut self, sources: &Sources, out: &mut Vec<Family>) -> Result<(), String>;
    /// Whether it calls slurmctld (skipped for the rest of a cycle in which
    /// slurmctld did not answer).
    fn uses_slurmctld(&self) -> bool {
        true
    }
    /// Families known without asking Slurm (the finished-job counters kept
    /// in StateSaveLocation): served from the moment the exporter becomes
    /// active and while the collector fails before its first success, so
    /// no scrape sees an active exporter without them.
    fn durable_families(&mut self, _state_dir: Option<&std::path::Path>) -> Vec<Family> {
        Vec::new()
    }
}

/// A collector known to the exporter, with its defaults.
pub struct Known {
    pub name: &'static str,
    pub enabled_by_default: bool,
    pub default_interval: Duration,
    pub help: &'static str,
}

pub const KNOWN: &[Known] = &[
    Known { name: "jobs", enabled_by_default: true, default_interval: Duration::from_secs(15), help: "jobs by partition, state and pending reason; requested and allocated CPUs, memory, GPUs" },
    Known { name: "nodes", enabled_by_default: true, default_interval: Duration::from_secs(15), help: "per-node CPUs, memory, GPUs and state; cluster totals" },
    Known { name: "partitions", enabled_by_default: true, default_interval: Duration::from_secs(15), help: "per-partition nodes by state, CPUs, memory, GPUs" },
    Known { name: "scheduler", enabled_by_default: true, default_interval: Duration::from_secs(30), help: "sdiag: main and backfill scheduler statistics, RPCs by type" },
    Known { name: "controllers", enabled_by_default: true, default_interval: Duration::from_secs(15), help: "ping of every configured slurmctld" },
    Known { name: "licenses", enabled_by_default: true, default_interval: Duration::from_secs(60), help: "license counts" },
    Known { name: "reservations", enabled_by_default: true, default_interval: Duration::from_secs(60), help: "reservations: nodes, cores, times" },
    Known { name: "accounting", enabled_by_default: true, default_interval: Duration::from_secs(60), help: "finished jobs from slurmdbd (sacct_terminal_jobs_total)" },
    Known { name: "accounts", enabled_by_default: false, default_interval: Duration::from_secs(15), help: "jobs, CPUs, memory, GPUs by account (top N by running CPUs, the rest as `other`); no RPC of its own" },
    Known { name: "users", enabled_by_default: false, default_interval: Duration::from_secs(15), help: "jobs, CPUs, memory, GPUs by user (top N by running CPUs, the rest as `other`); no RPC of its own" },
    Known { name: "fairshare", enabled_by_default: true, default_interval: Duration::from_secs(60), help: "sshare's figures per account (per user with --collector.fairshare.users) from slurmctld's association manager; with priority/multifactor only" },
    Known { name: "dbd", enabled_by_default: true, default_interval: Duration::from_secs(60), help: "slurmdbd up, its RPC statistics by type and user and its rollups (sacctmgr show stats); daemon only" },
    Known { name: "cyclecloud", enabled_by_default: true, default_interval: Duration::from_secs(300), help: "azslurm/jetpack metadata (only where those programs exist)" },
];

pub fn known(name: &str) -> Option<&'static Known> {
    KNOWN.iter().find(|k| k.name == name)
}

/// Options some collectors take.
#[derive(Clone, Debug)]
pub struct Options {
    /// The per-node families (`slurm_node_*{node}`, `slurm_node_info`): on
    /// by default; off for clusters where one series per node and family
    /// is too many (the totals by state, flag and partition stay).
    pub nodes_per_node: bool,
    /// Node reasons (free text) are cut to this many characters in labels.
    pub reason_max_chars: usize,
    /// RPC statistics per user (uid label): opt-in, capped.
    pub scheduler_rpc_users: bool,
    /// Fairshare per user association too (opt-in: one series per
    /// association and family).
    pub fairshare_users: bool,
    /// How many accounts / users get their own series (the rest: `other`).
    pub accounts_top: usize,
    pub users_top: usize,
    /// Look-back of the accounting collector's first query.
    pub accounting_lookback: Duration,
    /// How far each slurmdbd query reaches back behind the watermark.
    pub accounting_overlap: Duration,
    /// Keep finished-job counters in StateSaveLocation (the daemon).
    pub durable_accounting: bool,
    pub azslurm_path: Option<String>,
    pub jetpack_path: Option<String>,
    /// Plugin mode: ask slurmdbd through this program (see finished_jobs).
    pub accounting_helper: Option<std::path::PathBuf>,
    /// Running inside slurmctld (the plugin): collectors that would open a
    /// slurmdbd connection of their own are left out.
    pub inside_slurmctld: bool,
}

/// Default of `--collector.nodes.reason-max-length`.
pub const REASON_MAX_CHARS: usize = 128;

impl Default for Options {
    fn default() -> Self {
        Options {
            nodes_per_node: true,
            reason_max_chars: REASON_MAX_CHARS,
            scheduler_rpc_users: false,
            fairshare_users: false,
            accounts_top: usage::DEFAULT_TOP,
            users_top: usage::DEFAULT_TOP,
            accounting_lookback: Duration::ZERO,
            accounting_overlap: Duration::from_secs(
                crate::state::accounting::DEFAULT_OVERLAP_SECS as u64,
            ),
            durable_accounting: false,
            azslurm_path: None,
            jetpack_path: None,
            accounting_helper: None,
            inside_slurmctld: false,
        }
    }
}

/// A node's reason as a label: "" stays "", longer than `max` characters
/// is cut there (on a character boundary).
pub fn reason_label(reason: &str, max: usize) -> &str {
    match reason.char_indices().nth(max) {
        Some((i, _)) => &reason[..i],
        None => reason,
    }
}

/// The enabled collectors with their intervals, ready for Engine::new.
pub fn build_enabled(
    enabled: &[(&'static str, Duration)],
    opts: &Options,
) -> Vec<(Box<dyn Collector>, Duration)> {
    enabled
        .iter()
        .filter_map(|(name, interval)| build(name, opts).map(|c| (c, *interval)))
        .collect()
}

pub fn build(name: &str, opts: &Options) -> Option<Box<dyn Collector>> {
    Some(match name {
        "jobs" => Box::new(jobs::JobsCollector),
        "nodes" => Box::new(nodes::NodesCollector {
            per_node: opts.nodes_per_node,
            reason_max_chars: opts.reason_max_chars,
        }),
        "partitions" => Box::new(partitions::PartitionsCollector {
            reason_max_chars: opts.reason_max_chars,
        }),
        "scheduler" => Box::new(scheduler::SchedulerCollector {
            per_user: opts.scheduler_rpc_users,
        }),
        "controllers" => Box::new(controllers::ControllersCollector),
        "licenses" => Box::new(licenses::LicensesCollector),
        "reservations" => Box::new(reservations::ReservationsCollector),
        "accounting" => Box::new(accounting::AccountingCollector::new(
            opts.accounting_lookback,
            opts.accounting_overlap,
            opts.durable_accounting,
            match &opts.accounting_helper {
                Some(program) => finished_jobs::FinishedJobs::Helper {
                    program: program.clone(),
                    slurm_conf: crate::slurm::conf_path(),
                },
                None => finished_jobs::FinishedJobs::Direct(None),
            },
        )),
        "accounts" => Box::new(usage::UsageCollector::new(
            usage::By::Account,
            opts.accounts_top,
        )),
        "users" => Box::new(usage::UsageCollector::new(usage::By::User, opts.users_top)),
        "fairshare" => Box::new(fairshare::FairshareCollector {
            users: opts.fairshare_users,
        }),
        // Inside slurmctld no slurmdbd connection of our own (the plugin
        // asks slurmdbd through its helper, for finished jobs only).
        "dbd" if opts.inside_slurmctld => return None,
        "dbd" => Box::new(dbd::DbdCollector::default()),
        "cyclecloud" => Box::new(cyclecloud::CycleCloudCollector::new(
            opts.azslurm_path.clone(),
            opts.jetpack_path.clone(),
        )),
        _ => return None,
    })
}

/// Adds one to a counting map.
pub(crate) fn bump<K: Ord>(map: &mut std::collections::BTreeMap<K, f64>, key: K, by: f64) {
    *map.entry(key).or_insert(0.0) += by;
}

#[cfg(test)]
mod reason_tests {
    use super::reason_label;

    #[test]
    fn reasons_are_cut_on_a_character_boundary() {
        assert_eq!(reason_label("", 3), "");
        assert_eq!(reason_label("disk", 4), "disk");
        assert_eq!(reason_label("disk failure", 4), "disk");
        // 'é' is two bytes: cut after 2 characters, not 2 bytes.
        assert_eq!(reason_label("rééboot", 2), "ré");
    }
}
