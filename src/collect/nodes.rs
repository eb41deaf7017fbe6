//! Per-node resources and state, and cluster-wide totals.

use super::view::NodeView;
use super::{bump, reason_label, Collector, Source, Sources};
use crate::metrics::Family;
use crate::parse::gres;
use std::collections::BTreeMap;

pub struct NodesCollector {
    /// Export the per-node families (`--no-collector.nodes.per-node`).
    pub per_node: bool,
    pub reason_max_chars: usize,
}

const MIB: f64 = 1024.0 * 1024.0;

/// CPUs of a node split into allocated, idle (schedulable and free) and
/// other (down or drained), the way sinfo's %C splits them.
pub fn cpu_split<'a>(node: &impl NodeView<'a>) -> (u32, u32, u32) {
    let total = node.cpus();
    let alloc = node.alloc_cpus().min(total);
    let idle = if node.state().schedulable() {
        total - alloc
    } else {
        0
    };
    (alloc, idle, total - alloc - idle)
}

/// A node's GPUs by GRES type: (configured, in use); a node without GPUs
/// has one untyped entry of 0, so every node keeps its series.
pub fn gpus_by_type<'a>(node: &impl NodeView<'a>) -> BTreeMap<&'a str, (f64, f64)> {
    let mut out: BTreeMap<&'a str, (f64, f64)> = BTreeMap::new();
    for (kind, n) in gres::by_type(node.gres(), "gpu") {
        out.entry(kind).or_default().0 += n as f64;
    }
    for (kind, n) in gres::by_type(node.gres_used(), "gpu") {
        out.entry(kind).or_default().1 += n as f64;
    }
    if out.is_empty() {
        out.insert("", (0.0, 0.0));
    }
    out
}

/// The rows of a GPU total: nodes without GPUs add an untyped 0, not worth
/// a series beside typed GPUs; no GPUs at all is one untyped 0.
pub fn gpu_rows<'a, 'm>(
    totals: &'m BTreeMap<&'a str, (f64, f64)>,
) -> impl Iterator<Item = (&'a str, (f64, f64))> + 'm {
    let typed = totals.keys().any(|k| !k.is_empty());
    let none = (!typed && totals.is_empty()).then_some(("", (0.0, 0.0)));
    totals
        .iter()
        .filter(move |(k, v)| !(typed && k.is_empty() && **v == (0.0, 0.0)))
        .map(|(k, v)| (*k, *v))
        .chain(none)
}

impl Collector for NodesCollector {
    fn name(&self) -> &'static str {
        "nodes"
    }
    fn needs(&self) -> &'static [Source] {
        &[Source::Nodes]
    }
    fn collect(&mut self, sources: &Sources, out: &mut Vec<Family>) -> Result<(), String> {
        self.families(sources.nodes().iter(), out);
        Ok(())
    }
}

impl NodesCollector {
    /// The families of this collector from any node records (see `view`).
    pub fn families<'a, N: NodeView<'a>>(
        &self,
        nodes: impl Iterator<Item = N>,
        out: &mut Vec<Family>,
    ) {
        let l = &["node"];
        let mut cpus = Family::gauge("slurm_node_cpus", "Configured CPUs of a node", l);
        let mut cpus_alloc = Family::gauge(
            "slurm_node_cpus_alloc",
            "CPUs of a node allocated to jobs",
            l,
        );
        let mut cpus_idle = Family::gauge(
            "slurm_node_cpus_idle",
            "CPUs of a schedulable node not allocated",
            l,
        );
        let mut mem = Family::gauge(
            "slurm_node_memory_bytes",
            "Configured memory (RealMemory) of a node",
            l,
        );
        let mut mem_alloc = Family::gauge(
            "slurm_node_memory_alloc_bytes",
            "Memory of a node allocated to jobs",
            l,
        );
        let mut mem_free = Family::gauge(
            "slurm_node_memory_free_bytes",
            "Free memory a node's slurmd reported",
            l,
        );
        let mut load = Family::gauge(
            "slurm_node_cpu_load",
            "CPU load a node's slurmd reported",
            l,
        );
        let lt = &["node", "type"];
        let mut gpus = Family::gauge(
            "slurm_node_gpus",
            "Configured GPUs (gres/gpu) of a node, by GRES type (\"\" untyped)",
            lt,
        );
        let mut gpus_alloc = Family::gauge(
            "slurm_node_gpus_alloc",
            "GPUs of a node in use by jobs, by GRES type",
            lt,
        );
        let mut info = Family::info(
            "slurm_node_info",
            "Node state (as sinfo's long state) and down/drain reason",
            &["node", "state", "reason"],
        );
        let mut by_state: BTreeMap<&'static str, f64> = BTreeMap::new();
        // Every flag, 0 when no node has it: a panel or alert on a flag
        // shows 0, not "no data", on a healthy cluster (15 series).
        let mut by_flag: BTreeMap<&'static str, f64> = crate::slurm::NODE_FLAGS
            .iter()
            .map(|(_, name)| (*name, 0.0))
            .collect();
        let (mut c_alloc, mut c_idle, mut c_other) = (0.0, 0.0, 0.0);
        let (mut m_total, mut m_alloc) = (0.0, 0.0);
        // GRES type -> (configured, in use).
        let mut cluster_gpus: BTreeMap<&'a str, (f64, f64)> = BTreeMap::new();

        for node in nodes {
            let name = [node.name()];
            let (a, i, o) = cpu_split(&node);
            cpus.add(&name, node.cpus() as f64);
            cpus_alloc.add(&name, a as f64);
            cpus_idle.add(&name, i as f64);
            let m = node.real_memory_mib() as f64 * MIB;
            let ma = node.alloc_memory_mib() as f64 * MIB;
            mem.add(&name, m);
            mem_alloc.add(&name, ma);
            if let Some(free) = node.free_memory_mib() {
                mem_free.add(&name, free as f64 * MIB);
            }
            if let Some(l) = node.cpu_load() {
                load.add(&name, l);
            }
            for (kind, (total, used)) in gpus_by_type(&node) {
                gpus.add(&[node.name(), kind], total);
                gpus_alloc.add(&[node.name(), kind], used);
                let c = cluster_gpus.entry(kind).or_default();
                c.0 += total;
                c.1 += used;
            }
            let state = node.state();
            let reason = reason_label(node.reason(), self.reason_max_chars);
            info.add(&[node.name(), state.long(), reason], 1.0);
            bump(&mut by_state, state.long(), 1.0);
            for flag in state.flags() {
                bump(&mut by_flag, flag, 1.0);
            }
            c_alloc += a as f64;
            c_idle += i as f64;
            c_other += o as f64;
            m_total += m;
            m_alloc += ma;
        }
        if self.per_node {
            out.extend([
                cpus, cpus_alloc, cpus_idle, mem, mem_alloc, mem_free, load, gpus, gpus_alloc, info,
            ]);
        }

        let mut f = Family::gauge(
            "slurm_nodes",
            "Nodes by state (sinfo's long state)",
            &["state"],
        );
        for (s, v) in &by_state {
            f.add(&[*s], *v);
        }
        out.push(f);
        let mut f = Family::gauge("slurm_nodes_flag", "Nodes with a state flag set", &["flag"]);
        for (s, v) in &by_flag {
            f.add(&[*s], *v);
        }
        out.push(f);

        let mut f = Family::gauge(
            "slurm_cluster_cpus",
            "CPUs of the cluster: alloc, idle, other (unavailable), total",
            &["state"],
        );
        f.add(&["alloc"], c_alloc)
            .add(&["idle"], c_idle)
            .add(&["other"], c_other)
            .add(&["total"], c_alloc + c_idle + c_other);
        out.push(f);
        let mut f = Family::gauge(
            "slurm_cluster_memory_bytes",
            "Memory of the cluster: alloc, total",
            &["state"],
        );
        f.add(&["alloc"], m_alloc).add(&["total"], m_total);
        out.push(f);
        let mut f = Family::gauge(
            "slurm_cluster_gpus",
            "GPUs of the cluster: alloc, total, by GRES type (\"\" untyped)",
            &["state", "type"],
        );
        for (kind, (total, used)) in gpu_rows(&cluster_gpus) {
            f.add(&["alloc", kind], used).add(&["total", kind], total);
        }
        out.push(f);
    }
}
