//! Partitions: the CycleCloud sinfo_partition_nodes_state family and
//! per-partition resources, from the node table and the partition list.

use super::nodes::{cpu_split, gpu_rows, gpus_by_type};
use super::view::{NodeView, PartitionView};
use super::{bump, reason_label, Collector, Source, Sources};
use crate::metrics::Family;
use crate::parse::hostlist;
use std::collections::BTreeMap;

pub struct PartitionsCollector {
    pub reason_max_chars: usize,
}

const MIB: f64 = 1024.0 * 1024.0;

#[derive(Default)]
struct Totals<'a> {
    cpus: [f64; 3], // alloc, idle, other
    mem: [f64; 2],  // alloc, total
    /// GRES type -> (configured, in use).
    gpus: BTreeMap<&'a str, (f64, f64)>,
    nodes: BTreeMap<&'static str, f64>,
}

impl Collector for PartitionsCollector {
    fn name(&self) -> &'static str {
        "partitions"
    }
    fn needs(&self) -> &'static [Source] {
        &[Source::Nodes, Source::Partitions]
    }
    fn collect(&mut self, sources: &Sources, out: &mut Vec<Family>) -> Result<(), String> {
        let nodes = sources.nodes();
        let parts: Vec<_> = sources.partitions().iter().collect();
        self.families(&parts, |i| nodes.at(i), out);
        Ok(())
    }
}

impl PartitionsCollector {
    /// The families of this collector from any partition and node records
    /// (see `view`); `node_at` looks a node up by its index in the table.
    pub fn families<'a, P: PartitionView<'a>, N: NodeView<'a>>(
        &self,
        parts: &[P],
        node_at: impl Fn(usize) -> Option<N>,
        out: &mut Vec<Family>,
    ) {
        // (partition, state, reason) -> node names, as sinfo groups its lines.
        let mut groups: BTreeMap<(&str, &'static str, &str), Vec<&str>> = BTreeMap::new();
        let mut totals: BTreeMap<&str, Totals> = BTreeMap::new();
        for part in parts {
            let t = totals.entry(part.name()).or_default();
            for node in part.node_indices().into_iter().filter_map(&node_at) {
                let state = node.state();
                let reason = match node.reason() {
                    "" => "none",
                    r => reason_label(r, self.reason_max_chars),
                };
                groups
                    .entry((part.name(), state.cyclecloud(), reason))
                    .or_default()
                    .push(node.name());
                let (a, i, o) = cpu_split(&node);
                t.cpus[0] += a as f64;
                t.cpus[1] += i as f64;
                t.cpus[2] += o as f64;
                t.mem[0] += node.alloc_memory_mib() as f64 * MIB;
                t.mem[1] += node.real_memory_mib() as f64 * MIB;
                for (kind, (total, used)) in gpus_by_type(&node) {
                    let g = t.gpus.entry(kind).or_default();
                    g.0 += total;
                    g.1 += used;
                }
                bump(&mut t.nodes, state.long(), 1.0);
            }
        }

        let mut f = Family::gauge(
            "sinfo_partition_nodes_state",
            "Number of nodes in a state per partition",
            &["node_list", "partition", "state", "reason"],
        );
        for ((part, state, reason), names) in &groups {
            f.add(
                &[
                    hostlist::compress(names.iter().copied()).as_str(),
                    part,
                    state,
                    reason,
                ],
                names.len() as f64,
            );
        }
        out.push(f);

        let mut info = Family::info(
            "slurm_partition_info",
            "Partition state, whether it is the default, and its nodes",
            &["partition", "state", "default", "nodes"],
        );
        let mut max_time = Family::gauge(
            "slurm_partition_max_time_seconds",
            "MaxTime of a partition (absent: unlimited)",
            &["partition"],
        );
        let mut total_cpus = Family::gauge(
            "slurm_partition_total_cpus",
            "CPUs slurmctld counts for the partition",
            &["partition"],
        );
        for p in parts {
            info.add(
                &[
                    p.name(),
                    p.state(),
                    if p.is_default() { "true" } else { "false" },
                    p.nodes(),
                ],
                1.0,
            );
            if let Some(m) = p.max_time_minutes() {
                max_time.add(&[p.name()], m as f64 * 60.0);
            }
            total_cpus.add(&[p.name()], p.total_cpus() as f64);
        }
        out.extend([info, max_time, total_cpus]);

        let l = &["partition", "state"];
        let mut cpus = Family::gauge(
            "slurm_partition_cpus",
            "CPUs of a partition's nodes: alloc, idle, other, total",
            l,
        );
        let mut mem = Family::gauge(
            "slurm_partition_memory_bytes",
            "Memory of a partition's nodes: alloc, total",
            l,
        );
        let mut gpus = Family::gauge(
            "slurm_partition_gpus",
            "GPUs of a partition's nodes: alloc, total, by GRES type (\"\" untyped)",
            &["partition", "state", "type"],
        );
        let mut nodes = Family::gauge(
            "slurm_partition_nodes",
            "Nodes of a partition by state (sinfo's long state)",
            l,
        );
        for (part, t) in &totals {
            cpus.add(&[*part, "alloc"], t.cpus[0])
                .add(&[*part, "idle"], t.cpus[1])
                .add(&[*part, "other"], t.cpus[2])
                .add(&[*part, "total"], t.cpus.iter().sum());
            mem.add(&[*part, "alloc"], t.mem[0])
                .add(&[*part, "total"], t.mem[1]);
            for (kind, (total, used)) in gpu_rows(&t.gpus) {
                gpus.add(&[*part, "alloc", kind], used)
                    .add(&[*part, "total", kind], total);
            }
            for (s, v) in &t.nodes {
                nodes.add(&[*part, s], *v);
            }
        }
        out.extend([cpus, mem, gpus, nodes]);
    }
}
