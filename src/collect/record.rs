//! A cluster state on file: the jobs, nodes and partitions slurmctld
//! returned, as plain records with exactly what the collectors read (see
//! `view`). `slurm-ha-exporter record` writes one from a live cluster,
//! together with the families the collectors made of it at that moment;
//! tests/golden.rs feeds the records back through the collectors and must
//! get the same families, with no slurmctld.
//!
//! The file is JSON, one record per line. States are stored by name (a
//! job's as `JobState::as_str`, a node's as `NodeState::names`), so a file
//! recorded on one Slurm release reads the same on another.

use super::nodes::NodesCollector;
use super::partitions::PartitionsCollector;
use super::usage::{self, By, UsageCollector};
use super::view::{JobView, NodeView, PartitionView};
use super::{jobs, REASON_MAX_CHARS};
use crate::expose::{self, Format};
use crate::metrics::Family;
use crate::slurm::{JobState, Jobs, NodeState, Nodes, Partitions};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Where `record` puts the records and the families made of them.
pub const RECORD_FILE: &str = "cluster.json";
pub const FAMILIES_FILE: &str = "families.prom";

/// The families of the jobs, accounts, users, nodes and partitions
/// collectors (default options) as the text exposition, from any views of
/// one cluster state.
pub fn render<'a, J, N, P>(
    jobs: impl Iterator<Item = J> + Clone,
    nodes: impl Iterator<Item = N>,
    parts: &[P],
    node_at: impl Fn(usize) -> Option<N>,
) -> String
where
    J: JobView<'a>,
    N: NodeView<'a>,
    P: PartitionView<'a>,
{
    let mut out: Vec<Family> = Vec::new();
    jobs::families(jobs.clone(), &mut out);
    for by in [By::Account, By::User] {
        UsageCollector::new(by, usage::DEFAULT_TOP).families(jobs.clone(), &mut out);
    }
    let per_node = NodesCollector {
        per_node: true,
        reason_max_chars: REASON_MAX_CHARS,
    };
    per_node.families(nodes, &mut out);
    PartitionsCollector {
        reason_max_chars: REASON_MAX_CHARS,
    }
    .families(parts, node_at, &mut out);
    let refs: Vec<&Family> = out.iter().collect();
    let mut text = Vec::new();
    expose::render(Format::Text, &refs, &mut text);
    String::from_utf8(text).expect("the exposition is UTF-8")
}

/// `slurm-ha-exporter record DIR`: loads jobs, nodes and partitions once
/// and writes them as records (RECORD_FILE) and, from the same libslurm
/// messages, the families the collectors make of them (FAMILIES_FILE).
pub fn record_live(dir: &Path) -> Result<String, String> {
    let none = |what: &str| format!("{what}: slurmctld sent nothing");
    let jobs = Jobs::load(None)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| none("jobs"))?;
    let nodes = Nodes::load(None)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| none("nodes"))?;
    let parts = Partitions::load(None)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| none("partitions"))?;
    let part_views: Vec<_> = parts.iter().collect();
    let families = render(jobs.iter(), nodes.iter(), &part_views, |i| nodes.at(i));
    // Partition node indices are positions in the node table, named
    // records included; the record keeps only named nodes, so it maps them.
    let mut position = vec![usize::MAX; nodes.len()];
    let mut kept = Vec::new();
    for (i, slot) in position.iter_mut().enumerate() {
        if let Some(node) = nodes.at(i) {
            *slot = kept.len();
            kept.push(NodeRecord::of(&node));
        }
    }
    let mut partitions: Vec<PartitionRecord> = part_views.iter().map(PartitionRecord::of).collect();
    for p in &mut partitions {
        let indices: Vec<usize> = p
            .node_ranges
            .iter()
            .flat_map(|&(a, b)| a..=b)
            .filter_map(|i| position.get(i).copied().filter(|&i| i != usize::MAX))
            .collect();
        p.node_ranges = ranges(indices);
    }
    let record = ClusterRecord {
        jobs: jobs.iter().map(|j| JobRecord::of(&j)).collect(),
        nodes: kept,
        partitions,
    };
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for (name, text) in [(RECORD_FILE, record.to_json()), (FAMILIES_FILE, families)] {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(format!(
        "recorded {} job records, {} nodes, {} partitions in {}",
        record.jobs.len(),
        record.nodes.len(),
        record.partitions.len(),
        dir.display()
    ))
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

/// Consecutive indices as first-last ranges.
fn ranges(indices: impl IntoIterator<Item = usize>) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for i in indices {
        match out.last_mut() {
            Some((_, last)) if *last + 1 == i => *last = i,
            _ => out.push((i, i)),
        }
    }
    out
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClusterRecord {
    pub jobs: Vec<JobRecord>,
    pub nodes: Vec<NodeRecord>,
    pub partitions: Vec<PartitionRecord>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JobRecord {
    /// 0 for a job that is not part of an array.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub array_job_id: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub array_task_id: Option<u32>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub array_task_str: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_array_tasks: Option<u64>,
    /// `JobState::as_str`.
    pub state: String,
    pub reason: String,
    pub partition: String,
    pub tres_req: String,
    pub tres_alloc: String,
    #[serde(default)]
    pub user_id: u32,
    #[serde(default)]
    pub account: String,
    #[serde(default)]
    pub submit_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_limit_minutes: Option<u32>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NodeRecord {
    pub name: String,
    /// `NodeState::names`: "mixed+drain+maint".
    pub state: String,
    pub cpus: u32,
    pub alloc_cpus: u32,
    pub real_memory_mib: u64,
    pub alloc_memory_mib: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_memory_mib: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_load: Option<f64>,
    pub gres: String,
    pub gres_used: String,
    pub reason: String,
    /// The state word `state` names, on this build's release.
    #[serde(skip)]
    word: u32,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PartitionRecord {
    pub name: String,
    pub nodes: String,
    /// Indices of its nodes in `nodes` of the record, as first-last ranges.
    pub node_ranges: Vec<(usize, usize)>,
    pub total_cpus: u32,
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_time_minutes: Option<u32>,
    pub is_default: bool,
}

impl JobRecord {
    pub fn of<'a>(job: &impl JobView<'a>) -> JobRecord {
        JobRecord {
            array_job_id: job.array_job_id(),
            array_task_id: job.array_task_id(),
            array_task_str: job.array_task_str().into(),
            pending_array_tasks: job.pending_array_tasks(),
            state: job.state().as_str().into(),
            reason: job.reason().into(),
            partition: job.partition().into(),
            tres_req: job.tres_req().into(),
            tres_alloc: job.tres_alloc().into(),
            user_id: job.user_id(),
            account: job.account().into(),
            submit_time: job.submit_time(),
            time_limit_minutes: job.time_limit_minutes(),
        }
    }
}

impl NodeRecord {
    pub fn of<'a>(node: &impl NodeView<'a>) -> NodeRecord {
        NodeRecord {
            name: node.name().into(),
            state: node.state().names(),
            cpus: node.cpus(),
            alloc_cpus: node.alloc_cpus(),
            real_memory_mib: node.real_memory_mib(),
            alloc_memory_mib: node.alloc_memory_mib(),
            free_memory_mib: node.free_memory_mib(),
            cpu_load: node.cpu_load(),
            gres: node.gres().into(),
            gres_used: node.gres_used().into(),
            reason: node.reason().into(),
            word: node.state().0,
        }
    }
}

impl PartitionRecord {
    pub fn of<'a>(part: &impl PartitionView<'a>) -> PartitionRecord {
        PartitionRecord {
            name: part.name().into(),
            nodes: part.nodes().into(),
            node_ranges: ranges(part.node_indices()),
            total_cpus: part.total_cpus(),
            state: part.state().into(),
            max_time_minutes: part.max_time_minutes(),
            is_default: part.is_default(),
        }
    }
}

impl ClusterRecord {
    /// Reads a record file; every state must name a known state and every
    /// partition's node ranges must lie in the node table.
    pub fn parse(text: &str) -> Result<ClusterRecord, String> {
        let mut c: ClusterRecord =
            serde_json::from_str(text).map_err(|e| format!("cluster record: {e}"))?;
        for job in &c.jobs {
            JobState::from_name(&job.state)
                .ok_or_else(|| format!("cluster record: unknown job state {:?}", job.state))?;
        }
        for node in &mut c.nodes {
            node.word = NodeState::from_names(&node.state)
                .map_err(|e| format!("cluster record: node {}: {e}", node.name))?
                .0;
        }
        for p in &c.partitions {
            if p.node_ranges
                .iter()
                .any(|&(a, b)| a > b || b >= c.nodes.len())
            {
                return Err(format!(
                    "cluster record: partition {}: node ranges outside the node table",
                    p.name
                ));
            }
        }
        Ok(c)
    }

    /// The exposition the collectors make of this record (see `render`).
    pub fn render(&self) -> String {
        let parts: Vec<&PartitionRecord> = self.partitions.iter().collect();
        render(self.jobs.iter(), self.nodes.iter(), &parts, |i| {
            self.nodes.get(i)
        })
    }

    /// JSON with one record per line, so a diff shows which record changed.
    pub fn to_json(&self) -> String {
        fn lines<T: Serialize>(key: &str, items: &[T]) -> String {
            let rows: Vec<String> = items
                .iter()
                .map(|i| serde_json::to_string(i).expect("records serialize"))
                .collect();
            format!("\"{key}\": [\n{}\n]", rows.join(",\n"))
        }
        format!(
            "{{\n{},\n{},\n{}\n}}\n",
            lines("jobs", &self.jobs),
            lines("nodes", &self.nodes),
            lines("partitions", &self.partitions)
        )
    }
}

impl<'a> JobView<'a> for &'a JobRecord {
    fn array_job_id(&self) -> u32 {
        self.array_job_id
    }
    fn array_task_id(&self) -> Option<u32> {
        self.array_task_id
    }
    fn array_task_str(&self) -> &'a str {
        &self.array_task_str
    }
    fn pending_array_tasks(&self) -> Option<u64> {
        self.pending_array_tasks
    }
    fn state(&self) -> JobState {
        JobState::from_name(&self.state).unwrap_or(JobState::Unknown)
    }
    fn reason(&self) -> &'a str {
        &self.reason
    }
    fn partition(&self) -> &'a str {
        &self.partition
    }
    fn tres_req(&self) -> &'a str {
        &self.tres_req
    }
    fn tres_alloc(&self) -> &'a str {
        &self.tres_alloc
    }
    fn user_id(&self) -> u32 {
        self.user_id
    }
    fn account(&self) -> &'a str {
        &self.account
    }
    fn submit_time(&self) -> i64 {
        self.submit_time
    }
    fn time_limit_minutes(&self) -> Option<u32> {
        self.time_limit_minutes
    }
}

impl<'a> NodeView<'a> for &'a NodeRecord {
    fn name(&self) -> &'a str {
        &self.name
    }
    fn state(&self) -> NodeState {
        NodeState(self.word)
    }
    fn cpus(&self) -> u32 {
        self.cpus
    }
    fn alloc_cpus(&self) -> u32 {
        self.alloc_cpus
    }
    fn real_memory_mib(&self) -> u64 {
        self.real_memory_mib
    }
    fn alloc_memory_mib(&self) -> u64 {
        self.alloc_memory_mib
    }
    fn free_memory_mib(&self) -> Option<u64> {
        self.free_memory_mib
    }
    fn cpu_load(&self) -> Option<f64> {
        self.cpu_load
    }
    fn gres(&self) -> &'a str {
        &self.gres
    }
    fn gres_used(&self) -> &'a str {
        &self.gres_used
    }
    fn reason(&self) -> &'a str {
        &self.reason
    }
}

impl<'a> PartitionView<'a> for &'a PartitionRecord {
    fn name(&self) -> &'a str {
        &self.name
    }
    fn nodes(&self) -> &'a str {
        &self.nodes
    }
    fn node_indices(&self) -> Vec<usize> {
        self.node_ranges.iter().flat_map(|&(a, b)| a..=b).collect()
    }
    fn total_cpus(&self) -> u32 {
        self.total_cpus
    }
    fn state(&self) -> &'static str {
        ["up", "down", "drain", "inactive"]
            .into_iter()
            .find(|s| *s == self.state)
            .unwrap_or("unknown")
    }
    fn max_time_minutes(&self) -> Option<u32> {
        self.max_time_minutes
    }
    fn is_default(&self) -> bool {
        self.is_default
    }
}
