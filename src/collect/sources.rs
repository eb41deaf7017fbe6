//! The Slurm data collectors share: each source is loaded at most once per
//! collection cycle, however many collectors read it, and the large ones
//! (jobs, nodes, partitions) are loaded incrementally with update_time so an
//! unchanged cluster costs slurmctld only a "no change" answer.
//!
//! Each large source carries a version that grows when new data arrives.
//! The engine skips a collector whose sources did not change since its last
//! good run, and releases the large messages (jobs, nodes) after every
//! cycle, so between cycles they cost no memory and a reload never holds two
//! copies. A collector that is behind while its message is released gets a
//! full load.

use crate::slurm::{self, Config, Jobs, Loaded, Message, Nodes, Partitions, SchedulerStats};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    Jobs,
    Nodes,
    Partitions,
    Stats,
    Config,
}

impl Source {
    /// Loaded with update_time and versioned.
    pub fn incremental(self) -> bool {
        matches!(self, Source::Jobs | Source::Nodes | Source::Partitions)
    }
}

/// How long the slurmctld configuration is reused before it is reloaded.
const CONFIG_MAX_AGE: Duration = Duration::from_secs(300);

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
    /// StateSaveLocation as the role check found it (daemon only).
    pub state_dir: Option<std::path::PathBuf>,
    /// The first load error of this cycle: while slurmctld does not answer
    /// each call blocks for its timeout, so the rest of the cycle skips it.
    failed_in_cycle: Option<String>,
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
    /// last_update of the newest data slurmctld sent, kept after release.
    last_update: Option<i64>,
    version: u64,
    /// Cycle in which the last load was attempted (None: never, which a
    /// role check before the first cycle must not mistake for "tried in
    /// cycle 0"), and its error if it failed.
    tried_in: Option<u64>,
    error: Option<String>,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot {
            value: None,
            last_update: None,
            version: 0,
            tried_in: None,
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
        self.failed_in_cycle = None;
    }

    /// Why slurmctld failed earlier in this cycle, if it did.
    pub fn failed_in_cycle(&self) -> Option<&str> {
        self.failed_in_cycle.as_deref()
    }

    /// Frees the large messages, jobs and nodes; their versions and update
    /// times stay. Partitions stay held: their message is small, and the
    /// partitions collector runs again whenever nodes change (every slurmd
    /// ping cycle brings load and free memory), which would otherwise
    /// reload them in full each time although they did not change.
    pub fn release(&mut self) {
        self.jobs.value = None;
        self.nodes.value = None;
    }

    /// Version of an incremental source's newest data (0: none yet).
    pub fn version(&self, s: Source) -> u64 {
        match s {
            Source::Jobs => self.jobs.version,
            Source::Nodes => self.nodes.version,
            Source::Partitions => self.partitions.version,
            _ => 0,
        }
    }

    /// Whether the data of an incremental source is in memory now.
    pub fn held(&self, s: Source) -> bool {
        match s {
            Source::Jobs => self.jobs.value.is_some(),
            Source::Nodes => self.nodes.value.is_some(),
            Source::Partitions => self.partitions.value.is_some(),
            _ => true,
        }
    }

    /// Makes sure each of `needs` is checked for this cycle (incremental
    /// sources may stay released when slurmctld reports no change). A
    /// source that failed in this cycle is not retried until the next one.
    pub fn ensure(&mut self, needs: &[Source]) -> Result<(), String> {
        for need in needs {
            self.ensure_one(*need, false).inspect_err(|e| {
                self.failed_in_cycle.get_or_insert_with(|| e.clone());
            })?;
        }
        Ok(())
    }

    /// Loads the full data of `needs` that is not in memory.
    pub fn ensure_held(&mut self, needs: &[Source]) -> Result<(), String> {
        for need in needs {
            if !self.held(*need) {
                self.ensure_one(*need, true)?;
            }
        }
        Ok(())
    }

    fn ensure_one(&mut self, need: Source, full: bool) -> Result<(), String> {
        let cycle = self.cycle;
        let r = &mut self.rpcs;
        match need {
            Source::Jobs => incremental(
                &mut self.jobs,
                cycle,
                full,
                &mut r.jobs,
                &mut r.jobs_unchanged,
            ),
            Source::Nodes => incremental(
                &mut self.nodes,
                cycle,
                full,
                &mut r.nodes,
                &mut r.nodes_unchanged,
            ),
            Source::Partitions => incremental(
                &mut self.partitions,
                cycle,
                full,
                &mut r.partitions,
                &mut r.partitions_unchanged,
            ),
            Source::Stats => {
                let count = &mut r.stats;
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
                let count = &mut r.config;
                let res = once_per_cycle(&mut self.config, cycle, || {
                    *count += 1;
                    Config::load()
                });
                if res.is_ok() {
                    self.config_loaded_at = Some(Instant::now());
                }
                res
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
    /// The statistics if this cycle loaded them (a `wants` source).
    pub fn stats_this_cycle(&self) -> Option<&SchedulerStats> {
        let s = &self.stats;
        (s.tried_in == Some(self.cycle) && s.error.is_none())
            .then_some(s.value.as_ref())
            .flatten()
    }
    /// The configuration if it was ever loaded (no RPC).
    pub fn config_if_loaded(&self) -> Option<&Config> {
        self.config.value.as_ref()
    }
}

/// Loads with update_time = the newest last_update we got (none when `full`).
/// "No change" keeps the version; new data bumps it.
fn incremental<M: Message>(
    slot: &mut Slot<Loaded<M>>,
    cycle: u64,
    full: bool,
    rpcs: &mut u64,
    unchanged: &mut u64,
) -> Result<(), String> {
    if slot.tried_in == Some(cycle) && !(full && slot.value.is_none()) {
        return slot.error.clone().map_or(Ok(()), Err);
    }
    slot.tried_in = Some(cycle);
    *rpcs += 1;
    let since = if full { None } else { slot.last_update };
    match Loaded::<M>::load(since) {
        Ok(Some(v)) => {
            slot.last_update = Some(v.last_update());
            slot.value = Some(v);
            slot.version += 1;
            slot.error = None;
            Ok(())
        }
        Ok(None) => {
            *unchanged += 1;
            slot.error = None;
            Ok(())
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
    if slot.tried_in == Some(cycle) {
        return slot.error.clone().map_or(Ok(()), Err);
    }
    slot.tried_in = Some(cycle);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_never_tried_is_loaded_even_before_the_first_cycle() {
        // The role check can ask for the configuration before the engine
        // begins cycle 1; that must load, not report a silent success.
        let mut slot: Slot<u32> = Slot::default();
        let mut calls = 0;
        assert!(once_per_cycle(&mut slot, 0, || {
            calls += 1;
            Ok(7)
        })
        .is_ok());
        assert_eq!((calls, slot.value), (1, Some(7)));
        // Within the same cycle a second ask costs nothing.
        assert!(once_per_cycle(&mut slot, 0, || {
            calls += 1;
            Ok(8)
        })
        .is_ok());
        assert_eq!((calls, slot.value), (1, Some(7)));
    }
}
