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

// Adding a source: a variant here (and in ALL and `name`), its slot in
// `Slots` and in `get`/`get_mut`, its typed accessor, and a `Load` impl
// if it is loaded in a way none of the impls below covers.
impl Source {
    pub const ALL: [Source; 5] = [
        Source::Jobs,
        Source::Nodes,
        Source::Partitions,
        Source::Stats,
        Source::Config,
    ];

    /// Its `source` label in the self-metrics.
    pub fn name(self) -> &'static str {
        match self {
            Source::Jobs => "jobs",
            Source::Nodes => "nodes",
            Source::Partitions => "partitions",
            Source::Stats => "stats",
            Source::Config => "config",
        }
    }

    /// Loaded with update_time and versioned.
    pub fn incremental(self) -> bool {
        matches!(self, Source::Jobs | Source::Nodes | Source::Partitions)
    }

    /// Freed after every cycle. Partitions stay held: their message is
    /// small, and the partitions collector runs again whenever nodes change
    /// (every slurmd ping brings load and free memory), which would
    /// otherwise reload them in full each time although they did not change.
    fn released_after_cycle(self) -> bool {
        matches!(self, Source::Jobs | Source::Nodes)
    }
}

/// How long the slurmctld configuration is reused before it is reloaded.
const CONFIG_MAX_AGE: Duration = Duration::from_secs(300);

#[derive(Default)]
pub struct Sources {
    cycle: u64,
    slots: Slots,
    /// RPCs issued to slurmctld so far, by source (for self-metrics).
    pub rpcs: RpcCounts,
    /// StateSaveLocation as the role check found it (daemon only).
    pub state_dir: Option<std::path::PathBuf>,
    /// The first load error of this cycle: while slurmctld does not answer
    /// each call blocks for its timeout, so the rest of the cycle skips it.
    failed_in_cycle: Option<String>,
}

/// One slot per source, apart from the rest of `Sources` so a slot and
/// its RPC count can be borrowed together.
#[derive(Default)]
struct Slots {
    jobs: Slot<Jobs>,
    nodes: Slot<Nodes>,
    partitions: Slot<Partitions>,
    stats: Slot<SchedulerStats>,
    config: Slot<Config>,
}

impl Slots {
    fn get(&self, s: Source) -> &dyn Load {
        match s {
            Source::Jobs => &self.jobs,
            Source::Nodes => &self.nodes,
            Source::Partitions => &self.partitions,
            Source::Stats => &self.stats,
            Source::Config => &self.config,
        }
    }

    fn get_mut(&mut self, s: Source) -> &mut dyn Load {
        match s {
            Source::Jobs => &mut self.jobs,
            Source::Nodes => &mut self.nodes,
            Source::Partitions => &mut self.partitions,
            Source::Stats => &mut self.stats,
            Source::Config => &mut self.config,
        }
    }
}

/// Requests one source sent to slurmctld: all of them, and those answered
/// "no change" (incremental sources only).
#[derive(Default, Clone, Copy, Debug)]
struct Count {
    sent: u64,
    unchanged: u64,
}

/// Requests sent to slurmctld, by source.
#[derive(Default, Clone, Copy, Debug)]
pub struct RpcCounts([Count; Source::ALL.len()]);

impl RpcCounts {
    /// (answered with data, answered "no change") for `s`.
    pub fn of(&self, s: Source) -> (u64, u64) {
        let c = self.0[s as usize];
        (c.sent - c.unchanged, c.unchanged)
    }
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
    loaded_at: Option<Instant>,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot {
            value: None,
            last_update: None,
            version: 0,
            tried_in: None,
            error: None,
            loaded_at: None,
        }
    }
}

/// What the engine asks of any slot, whatever it holds. The defaults are
/// those of a source loaded whole when asked and kept (not versioned).
trait Load {
    /// Checks the source for this cycle (`full`: load the whole data even
    /// if slurmctld would answer "no change"); counts the RPCs it sends.
    fn ensure(&mut self, cycle: u64, full: bool, rpcs: &mut Count) -> Result<(), String>;
    fn version(&self) -> u64 {
        0
    }
    fn held(&self) -> bool {
        true
    }
    fn release(&mut self) {}
}

/// Incremental: loads with update_time = the newest last_update we got
/// (none when `full`). "No change" keeps the version; new data bumps it.
impl<M: Message> Load for Slot<Loaded<M>> {
    fn ensure(&mut self, cycle: u64, full: bool, rpcs: &mut Count) -> Result<(), String> {
        if self.tried_in == Some(cycle) && !(full && self.value.is_none()) {
            return self.error.clone().map_or(Ok(()), Err);
        }
        self.tried_in = Some(cycle);
        rpcs.sent += 1;
        let since = if full { None } else { self.last_update };
        match Loaded::<M>::load(since) {
            Ok(Some(v)) => {
                self.last_update = Some(v.last_update());
                self.value = Some(v);
                self.version += 1;
                self.error = None;
                Ok(())
            }
            Ok(None) => {
                rpcs.unchanged += 1;
                self.error = None;
                Ok(())
            }
            Err(e) => {
                self.error = Some(e.to_string());
                Err(e.to_string())
            }
        }
    }
    fn version(&self) -> u64 {
        self.version
    }
    fn held(&self) -> bool {
        self.value.is_some()
    }
    fn release(&mut self) {
        self.value = None;
    }
}

/// Loaded again in every cycle that needs it.
impl Load for Slot<SchedulerStats> {
    fn ensure(&mut self, cycle: u64, _full: bool, rpcs: &mut Count) -> Result<(), String> {
        once_per_cycle(self, cycle, || {
            rpcs.sent += 1;
            slurm::load_statistics()
        })
    }
}

/// Reused for CONFIG_MAX_AGE: it changes only on reconfigure.
impl Load for Slot<Config> {
    fn ensure(&mut self, cycle: u64, _full: bool, rpcs: &mut Count) -> Result<(), String> {
        let fresh = self.loaded_at.is_some_and(|t| t.elapsed() < CONFIG_MAX_AGE);
        if fresh && self.value.is_some() {
            return Ok(());
        }
        let res = once_per_cycle(self, cycle, || {
            rpcs.sent += 1;
            Config::load()
        });
        if res.is_ok() {
            self.loaded_at = Some(Instant::now());
        }
        res
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

    /// Frees the large messages; their versions and update times stay.
    pub fn release(&mut self) {
        for s in Source::ALL.into_iter().filter(|s| s.released_after_cycle()) {
            self.slots.get_mut(s).release();
        }
    }

    /// Version of an incremental source's newest data (0: none yet).
    pub fn version(&self, s: Source) -> u64 {
        self.slots.get(s).version()
    }

    /// Whether the data of a source is in memory now.
    pub fn held(&self, s: Source) -> bool {
        self.slots.get(s).held()
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
        let count = &mut self.rpcs.0[need as usize];
        self.slots.get_mut(need).ensure(self.cycle, full, count)
    }

    pub fn jobs(&self) -> &Jobs {
        value_of(&self.slots.jobs, "jobs not loaded: declare Source::Jobs")
    }
    pub fn nodes(&self) -> &Nodes {
        value_of(&self.slots.nodes, "nodes not loaded: declare Source::Nodes")
    }
    pub fn partitions(&self) -> &Partitions {
        value_of(
            &self.slots.partitions,
            "partitions not loaded: declare Source::Partitions",
        )
    }
    pub fn stats(&self) -> &SchedulerStats {
        value_of(&self.slots.stats, "stats not loaded: declare Source::Stats")
    }
    pub fn config(&self) -> &Config {
        value_of(
            &self.slots.config,
            "config not loaded: declare Source::Config",
        )
    }
    /// The statistics if this cycle loaded them (a `wants` source).
    pub fn stats_this_cycle(&self) -> Option<&SchedulerStats> {
        let s = &self.slots.stats;
        (s.tried_in == Some(self.cycle) && s.error.is_none())
            .then_some(s.value.as_ref())
            .flatten()
    }
    /// The configuration if it was ever loaded (no RPC).
    pub fn config_if_loaded(&self) -> Option<&Config> {
        self.slots.config.value.as_ref()
    }
}

/// A slot's value; a collector that reads a source it did not declare is a
/// bug of ours, caught by the first test that runs it.
fn value_of<'a, T>(slot: &'a Slot<T>, bug: &str) -> &'a T {
    slot.value.as_ref().expect(bug)
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
