//! The seam between libslurm's records and the collectors that aggregate
//! them: the `jobs`, `nodes` and `partitions` collectors read a job, node
//! or partition only through these traits. libslurm's views
//! (`slurm::Job`, `Node`, `Partition`) implement them for the daemon; the
//! plain records of `collect::record` implement them for tests, so the
//! aggregation (CPU split, array counting, CycleCloud labels) is tested
//! from recorded cluster states without a running slurmctld.
//!
//! Each method is the one accessor of the libslurm view with the same name;
//! `'a` is the lifetime of the data, so a collector can key its maps by
//! the strings it reads without copying them.

use crate::slurm::{Job, JobState, Node, NodeState, Partition};

pub trait JobView<'a>: Copy {
    fn array_job_id(&self) -> u32;
    /// `None` for the record that stands for an array's pending tasks.
    fn array_task_id(&self) -> Option<u32>;
    fn array_task_str(&self) -> &'a str;
    fn pending_array_tasks(&self) -> Option<u64>;
    fn state(&self) -> JobState;
    fn reason(&self) -> &'a str;
    fn partition(&self) -> &'a str;
    fn tres_req(&self) -> &'a str;
    fn tres_alloc(&self) -> &'a str;
    fn user_id(&self) -> u32;
    fn account(&self) -> &'a str;
    /// Unix seconds.
    fn submit_time(&self) -> i64;
    /// `None`: no limit.
    fn time_limit_minutes(&self) -> Option<u32>;
}

pub trait NodeView<'a>: Copy {
    fn name(&self) -> &'a str;
    fn state(&self) -> NodeState;
    fn cpus(&self) -> u32;
    fn alloc_cpus(&self) -> u32;
    fn real_memory_mib(&self) -> u64;
    fn alloc_memory_mib(&self) -> u64;
    fn free_memory_mib(&self) -> Option<u64>;
    fn cpu_load(&self) -> Option<f64>;
    fn gres(&self) -> &'a str;
    fn gres_used(&self) -> &'a str;
    fn reason(&self) -> &'a str;
}

pub trait PartitionView<'a>: Copy {
    fn name(&self) -> &'a str;
    fn nodes(&self) -> &'a str;
    /// Indices of its nodes in the node table loaded in the same cycle.
    fn node_indices(&self) -> Vec<usize>;
    fn total_cpus(&self) -> u32;
    fn state(&self) -> &'static str;
    fn max_time_minutes(&self) -> Option<u32>;
    fn is_default(&self) -> bool;
}

/// Forwards each trait method to the inherent method of the same name.
macro_rules! forward {
    ($($name:ident -> $ty:ty),* $(,)?) => {
        $(fn $name(&self) -> $ty { Self::$name(self) })*
    };
}

impl<'a> JobView<'a> for Job<'a> {
    forward!(
        array_job_id -> u32,
        array_task_id -> Option<u32>,
        array_task_str -> &'a str,
        pending_array_tasks -> Option<u64>,
        state -> JobState,
        reason -> &'a str,
        partition -> &'a str,
        tres_req -> &'a str,
        tres_alloc -> &'a str,
        user_id -> u32,
        account -> &'a str,
        submit_time -> i64,
        time_limit_minutes -> Option<u32>,
    );
}

impl<'a> NodeView<'a> for Node<'a> {
    forward!(
        name -> &'a str,
        state -> NodeState,
        cpus -> u32,
        alloc_cpus -> u32,
        real_memory_mib -> u64,
        alloc_memory_mib -> u64,
        free_memory_mib -> Option<u64>,
        cpu_load -> Option<f64>,
        gres -> &'a str,
        gres_used -> &'a str,
        reason -> &'a str,
    );
}

impl<'a> PartitionView<'a> for Partition<'a> {
    forward!(
        name -> &'a str,
        nodes -> &'a str,
        node_indices -> Vec<usize>,
        total_cpus -> u32,
        state -> &'static str,
        max_time_minutes -> Option<u32>,
        is_default -> bool,
    );
}
