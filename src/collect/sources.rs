//! The Slurm data collectors share: each source is loaded at most once per
//! collection cycle, however many collectors read it, and the large ones
//! (jobs, nodes, partitions) are loaded incrementally with update_time so an
//! unchanged cluster costs slurmctld only a "no change" answer.

use crate::slurm::{self, Config, Jobs, Nodes, Partitions, SchedulerStats};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Jobs,
    Nodes,
    Partitions,
    Stats,
    Config,
}

/// How long the slurmctld configuration is reused before it is reloaded.
const CONFIG_MAX_AGE: Duration = Duration::from_secs(300);

/// Loaded data plus what it cost, for the self-metrics and benchmarks.
#[derive(Default)]
pub struct Sources {
    cycle: u64,
    jobs: Slot<Jobs>,
    nodes: Slot<Nodes>,
    partitions: Slot<Partitions>,
    stats: Slot<SchedulerStats>,
    config: Slot<Config>,
    config_loaded_at: Option<Instant>,
    /// RPCs issued to slurmctld so far, by source (for self-metrics).
    pub rpcs: RpcCounts,
}

#[derive(Default, Clone, Copy, Debug)]
pub struct RpcCounts {
    pub jobs: u64,
    pub jobs_unchanged: u64,
    pub nodes: u64,
    pub nodes_unchanged: u64,
    pub partitions: u64,
    pub partitions_unchanged: u64,
    pub stats: u64,
    pub config: u64,
}

struct Slot<T> {
    value: Option<T>,
    /// Cycle in which the last load was attempted, and its error if it failed.
    tried_in: u64,
    error: Option<String>,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot {
            value: None,
            tried_in: 0,
            error: None,
        }
    }
}

impl Sources {
    pub fn new() -> Sources {
        Sources::default()
    }

    /// Starts a cycle: every source may be loaded again, once.
    pub fn begin_cycle(&mut self) {
        self.cycle += 1;
    }

    /// Makes sure each of `needs` is loaded for this cycle. A source that
    /// failed in this cycle is not retried until the next one.
    pub fn ensure(&mut self, needs: &[Source]) -> Result<(), String> {
        for need in needs {
            self.ensure_one(*need)?;
        }
        Ok(())
    }

    fn ensure_one(&mut self, need: Source) -> Result<(), String> {
        let cycle = self.cycle;
        match need {
            Source::Jobs => {
                let (slot, n, u) = (
                    &mut self.jobs,
                    &mut self.rpcs.jobs,
                    &mut self.rpcs.jobs_unchanged,
                );
                incremental(slot, cycle, n, u, Jobs::load, Jobs::last_update)
            }
            Source::Nodes => {
                let (slot, n, u) = (
                    &mut self.nodes,
                    &mut self.rpcs.nodes,
                    &mut self.rpcs.nodes_unchanged,
                );
                incremental(slot, cycle, n, u, Nodes::load, Nodes::last_update)
            }
            Source::Partitions => {
                let (slot, n, u) = (
                    &mut self.partitions,
                    &mut self.rpcs.partitions,
                    &mut self.rpcs.partitions_unchanged,
                );
                incremental(slot, cycle, n, u, Partitions::load, Partitions::last_update)
            }
            Source::Stats => {
                let count = &mut self.rpcs.stats;
                once_per_cycle(&mut self.stats, cycle, || {
                    *count += 1;
                    slurm::load_statistics()
                })
            }
            Source::Config => {
                let fresh = self
                    .config_loaded_at
                    .is_some_and(|t| t.elapsed() < CONFIG_MAX_AGE);
                if fresh && self.config.value.is_some() {
                    return Ok(());
                }
                let count = &mut self.rpcs.config;
                let r = once_per_cycle(&mut self.config, cycle, || {
                    *count += 1;
                    Config::load()
                });
                if r.is_ok() {
                    self.config_loaded_at = Some(Instant::now());
                }
                r
            }
        }
    }

    pub fn jobs(&self) -> &Jobs {
        self.jobs
            .value
            .as_ref()
            .expect("jobs not loaded: declare Source::Jobs")
    }
    pub fn nodes(&self) -> &Nodes {
        self.nodes
            .value
            .as_ref()
            .expect("nodes not loaded: declare Source::Nodes")
    }
    pub fn partitions(&self) -> &Partitions {
        self.partitions
            .value
            .as_ref()
            .expect("partitions not loaded: declare Source::Partitions")
    }
    pub fn stats(&self) -> &SchedulerStats {
        self.stats
            .value
            .as_ref()
            .expect("stats not loaded: declare Source::Stats")
    }
    pub fn config(&self) -> &Config {
        self.config
            .value
            .as_ref()
            .expect("config not loaded: declare Source::Config")
    }
    /// The configuration if it was ever loaded (no RPC).
    pub fn config_if_loaded(&self) -> Option<&Config> {
        self.config.value.as_ref()
    }
}

/// Loads with update_time = the held message's last_update; keeps the held
/// message when slurmctld says nothing changed.
fn incremental<T>(
    slot: &mut Slot<T>,
    cycle: u64,
    rpcs: &mut u64,
    unchanged: &mut u64,
    load: fn(Option<i64>) -> Result<Option<T>, slurm::SlurmError>,
    last_update: fn(&T) -> i64,
) -> Result<(), String> {
    if slot.tried_in == cycle {
        return slot.error.clone().map_or(Ok(()), Err);
    }
    slot.tried_in = cycle;
    *rpcs += 1;
    let since = slot.value.as_ref().map(last_update);
    match load(since) {
        Ok(Some(v)) => {
            slot.value = Some(v);
            slot.error = None;
            Ok(())
        }
        Ok(None) if slot.value.is_some() => {
            *unchanged += 1;
            slot.error = None;
            Ok(())
        }
        Ok(None) => {
            slot.error = Some("slurmctld reported no change but nothing is loaded".into());
            Err(slot.error.clone().unwrap_or_default())
        }
        Err(e) => {
            slot.error = Some(e.to_string());
            Err(e.to_string())
        }
    }
}

fn once_per_cycle<T>(
    slot: &mut Slot<T>,
    cycle: u64,
    load: impl FnOnce() -> Result<T, slurm::SlurmError>,
) -> Result<(), String> {
    if slot.tried_in == cycle {
        return slot.error.clone().map_or(Ok(()), Err);
    }
    slot.tried_in = cycle;
    match load() {
        Ok(v) => {
            slot.value = Some(v);
            slot.error = None;
            Ok(())
        }
        Err(e) => {
            slot.error = Some(e.to_string());
            Err(e.to_string())
        }
    }
}
