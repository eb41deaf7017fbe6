use super::error::SlurmError;
use super::ffi;
use super::strings::borrow;
use std::ptr::NonNull;

/// A node table from `slurm_load_node`, freed on drop.
pub struct Nodes {
    msg: NonNull<ffi::node_info_msg_t>,
}

// SAFETY: plain heap memory owned by this value (see Jobs).
unsafe impl Send for Nodes {}
unsafe impl Sync for Nodes {}

impl Drop for Nodes {
    fn drop(&mut self) {
        // SAFETY: msg came from slurm_load_node and is freed exactly once.
        unsafe { ffi::slurm_free_node_info_msg(self.msg.as_ptr()) }
    }
}

impl Nodes {
    /// Loads every node; `Ok(None)` when nothing changed since `since`.
    ///
    /// Unlike slurm_load_jobs this returns -1 and leaves the reason, including
    /// SLURM_NO_CHANGE_IN_DATA, in slurm's errno.
    pub fn load(since: Option<i64>) -> Result<Option<Nodes>, SlurmError> {
        let mut msg: *mut ffi::node_info_msg_t = std::ptr::null_mut();
        // SAFETY: msg is an out-pointer; on success libslurm allocates it.
        let rc =
            unsafe { ffi::slurm_load_node(since.unwrap_or(0), &mut msg, ffi::SHOW_ALL as u16) };
        if rc != 0 {
            let err = SlurmError::last("slurm_load_node");
            return if err.is_no_change() || rc == ffi::SLURM_NO_CHANGE_IN_DATA as i32 {
                Ok(None)
            } else {
                Err(err)
            };
        }
        NonNull::new(msg)
            .map(|msg| Some(Nodes { msg }))
            .ok_or_else(|| SlurmError::from_code("slurm_load_node", -1))
    }

    pub fn last_update(&self) -> i64 {
        // SAFETY: msg is valid while self lives.
        unsafe { self.msg.as_ref().last_update }
    }

    /// The node at `index` of the node table (see Partition::node_indices).
    pub fn at(&self, index: usize) -> Option<Node<'_>> {
        // SAFETY: bounds-checked against record_count; records owned by msg.
        unsafe {
            let m = self.msg.as_ref();
            if m.node_array.is_null() || index >= m.record_count as usize {
                return None;
            }
            let raw = &*m.node_array.add(index);
            (!raw.name.is_null()).then_some(Node { raw })
        }
    }

    /// Every configured node. Records with no name (free slots of the node
    /// table, e.g. for dynamic nodes) are skipped.
    pub fn iter(&self) -> impl Iterator<Item = Node<'_>> {
        // SAFETY: node_array holds record_count records owned by msg.
        let slice: &[ffi::node_info_t] = unsafe {
            let m = self.msg.as_ref();
            if m.node_array.is_null() {
                &[]
            } else {
                std::slice::from_raw_parts(m.node_array, m.record_count as usize)
            }
        };
        slice
            .iter()
            .filter(|n| !n.name.is_null())
            .map(|raw| Node { raw })
    }
}

/// One node, borrowed from its `Nodes` table.
#[derive(Clone, Copy)]
pub struct Node<'a> {
    raw: &'a ffi::node_info_t,
}

impl<'a> Node<'a> {
    pub fn name(&self) -> &'a str {
        // SAFETY: owned by the message.
        unsafe { borrow(self.raw.name) }
    }
    /// The state word, with MIXED derived the way sinfo derives it: the
    /// controller reports ALLOCATED (or IDLE) and only the allocated-CPU
    /// count tells a partly used node apart.
    pub fn state(&self) -> NodeState {
        let raw = self.raw.node_state;
        let base = raw & ffi::NODE_STATE_BASE;
        if matches!(base, ffi::NODE_STATE_ALLOCATED | ffi::NODE_STATE_IDLE) {
            let alloc = self.alloc_cpus();
            if alloc > 0 && alloc < self.cpus() {
                return NodeState((raw & !ffi::NODE_STATE_BASE) | ffi::NODE_STATE_MIXED);
            }
        }
        NodeState(raw)
    }
    pub fn cpus(&self) -> u32 {
        self.raw.cpus as u32
    }
    /// Configured memory in MiB.
    pub fn real_memory_mib(&self) -> u64 {
        self.raw.real_memory
    }
    /// Free memory the node reported, in MiB; `None` when never reported.
    pub fn free_memory_mib(&self) -> Option<u64> {
        match self.raw.free_mem {
            v if v == ffi::NO_VAL64 as u64 || v == ffi::INFINITE64 as u64 => None,
            v => Some(v),
        }
    }
    pub fn cpu_load(&self) -> Option<f64> {
        match self.raw.cpu_load {
            ffi::NO_VAL => None,
            v => Some(v as f64 / 100.0),
        }
    }

    /// CPUs allocated to jobs. Up to 24.11 it sits in the select plugin's
    /// opaque node info; from 25.05 it is a plain field.
    #[cfg(not(slurm_ge_25_05))]
    pub fn alloc_cpus(&self) -> u32 {
        let mut v: u16 = 0;
        // SAFETY: SUBCNT with state ALLOCATED writes one u16.
        let rc = unsafe {
            ffi::slurm_get_select_nodeinfo(
                self.raw.select_nodeinfo,
                ffi::SELECT_NODEDATA_SUBCNT,
                ffi::NODE_STATE_ALLOCATED,
                &mut v as *mut u16 as *mut _,
            )
        };
        if rc == 0 {
            v as u32
        } else {
            0
        }
    }
    #[cfg(slurm_ge_25_05)]
    pub fn alloc_cpus(&self) -> u32 {
        self.raw.alloc_cpus as u32
    }

    /// Memory allocated to jobs, MiB (see alloc_cpus for the version split).
    #[cfg(not(slurm_ge_25_05))]
    pub fn alloc_memory_mib(&self) -> u64 {
        let mut v: u64 = 0;
        // SAFETY: MEM_ALLOC writes one u64.
        let rc = unsafe {
            ffi::slurm_get_select_nodeinfo(
                self.raw.select_nodeinfo,
                ffi::SELECT_NODEDATA_MEM_ALLOC,
                ffi::NODE_STATE_ALLOCATED,
                &mut v as *mut u64 as *mut _,
            )
        };
        if rc == 0 {
            v
        } else {
            0
        }
    }
    #[cfg(slurm_ge_25_05)]
    pub fn alloc_memory_mib(&self) -> u64 {
        self.raw.alloc_memory
    }

    /// Configured generic resources, "gpu:a100:4(S:0-1)".
    pub fn gres(&self) -> &'a str {
        // SAFETY: owned by the message.
        unsafe { borrow(self.raw.gres) }
    }
    /// Generic resources in use, "gpu:a100:2(IDX:0-1)".
    pub fn gres_used(&self) -> &'a str {
        // SAFETY: owned by the message.
        unsafe { borrow(self.raw.gres_used) }
    }
    pub fn reason(&self) -> &'a str {
        // SAFETY: owned by the message.
        unsafe { borrow(self.raw.reason) }
    }
}

/// A node's state word: a base state plus flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeState(pub u32);

/// Flags we export, with the label each gets.
pub const NODE_FLAGS: &[(u32, &str)] = &[
    (ffi::NODE_STATE_DRAIN, "drain"),
    (ffi::NODE_STATE_COMPLETING, "completing"),
    (ffi::NODE_STATE_NO_RESPOND, "not_responding"),
    (ffi::NODE_STATE_POWERED_DOWN, "powered_down"),
    (ffi::NODE_STATE_POWERING_UP, "powering_up"),
    (ffi::NODE_STATE_POWERING_DOWN, "powering_down"),
    (ffi::NODE_STATE_POWER_DOWN, "power_down"),
    (ffi::NODE_STATE_FAIL, "fail"),
    (ffi::NODE_STATE_MAINT, "maint"),
    (ffi::NODE_STATE_RES, "reserved"),
    (ffi::NODE_STATE_REBOOT_REQUESTED, "reboot_requested"),
    (ffi::NODE_STATE_REBOOT_ISSUED, "reboot_issued"),
    (ffi::NODE_STATE_CLOUD, "cloud"),
    (ffi::NODE_STATE_PLANNED, "planned"),
    (ffi::NODE_STATE_INVALID_REG, "invalid_reg"),
];

impl NodeState {
    fn has(self, flag: u32) -> bool {
        self.0 & flag != 0
    }

    /// Base state: "idle", "allocated", "mixed", "down", "error", "future", "unknown".
    pub fn base(self) -> &'static str {
        match self.0 & ffi::NODE_STATE_BASE {
            ffi::NODE_STATE_DOWN => "down",
            ffi::NODE_STATE_IDLE => "idle",
            ffi::NODE_STATE_ALLOCATED => "allocated",
            ffi::NODE_STATE_ERROR => "error",
            ffi::NODE_STATE_MIXED => "mixed",
            ffi::NODE_STATE_FUTURE => "future",
            _ => "unknown",
        }
    }

    /// Labels of the flags set, in NODE_FLAGS order.
    pub fn flags(self) -> impl Iterator<Item = &'static str> {
        NODE_FLAGS
            .iter()
            .filter(move |(f, _)| self.has(*f))
            .map(|(_, n)| *n)
    }

    fn busy(self) -> bool {
        matches!(
            self.0 & ffi::NODE_STATE_BASE,
            ffi::NODE_STATE_ALLOCATED | ffi::NODE_STATE_MIXED
        ) || self.has(ffi::NODE_STATE_COMPLETING)
    }

    /// sinfo's long state (%T) before its suffix: drain and fail read as
    /// "drained"/"draining" and "fail"/"failing" depending on running work.
    pub fn long(self) -> &'static str {
        if self.has(ffi::NODE_STATE_INVALID_REG) {
            return "inval";
        }
        if self.has(ffi::NODE_STATE_DRAIN) {
            return if self.busy() { "draining" } else { "drained" };
        }
        if self.has(ffi::NODE_STATE_FAIL) {
            return if self.busy() { "failing" } else { "fail" };
        }
        if self.has(ffi::NODE_STATE_MAINT) {
            return "maint";
        }
        if self.has(ffi::NODE_STATE_REBOOT_REQUESTED) || self.has(ffi::NODE_STATE_REBOOT_ISSUED) {
            return "reboot";
        }
        if self.has(ffi::NODE_STATE_COMPLETING)
            && self.0 & ffi::NODE_STATE_BASE != ffi::NODE_STATE_DOWN
        {
            return "completing";
        }
        if self.has(ffi::NODE_STATE_RES) && self.0 & ffi::NODE_STATE_BASE == ffi::NODE_STATE_IDLE {
            return "reserved";
        }
        if self.has(ffi::NODE_STATE_PLANNED)
            && self.0 & ffi::NODE_STATE_BASE == ffi::NODE_STATE_IDLE
        {
            return "planned";
        }
        self.base()
    }

    /// The state label of the CycleCloud exporter's sinfo_partition_nodes_state:
    /// when sinfo would print a suffix (`*`, `~`, `#`, ...), the suffix's
    /// meaning replaces the state; otherwise the long state.
    pub fn cyclecloud(self) -> &'static str {
        const SUFFIXES: &[(u32, &str)] = &[
            (ffi::NODE_STATE_NO_RESPOND, "not_responding"),
            (ffi::NODE_STATE_POWERED_DOWN, "powered_off"),
            (ffi::NODE_STATE_POWERING_UP, "powering_up"),
            (ffi::NODE_STATE_POWERING_DOWN, "powering_down"),
            (ffi::NODE_STATE_POWER_DOWN, "pending_power_down"),
            (ffi::NODE_STATE_REBOOT_ISSUED, "reboot_issued"),
            (ffi::NODE_STATE_REBOOT_REQUESTED, "pending_reboot"),
            (ffi::NODE_STATE_PLANNED, "planned_backfill"),
        ];
        SUFFIXES
            .iter()
            .find(|(f, _)| self.has(*f))
            .map(|(_, n)| *n)
            .unwrap_or_else(|| self.long())
    }

    /// Whether a node's free CPUs count as idle. This is sinfo's rule (%C):
    /// only drained or down nodes put their CPUs in "other"; a node that is
    /// merely not responding still counts as idle.
    pub fn schedulable(self) -> bool {
        !self.has(ffi::NODE_STATE_DRAIN) && self.0 & ffi::NODE_STATE_BASE != ffi::NODE_STATE_DOWN
    }

    pub fn is_drain(self) -> bool {
        self.has(ffi::NODE_STATE_DRAIN)
    }
    pub fn is_down(self) -> bool {
        self.0 & ffi::NODE_STATE_BASE == ffi::NODE_STATE_DOWN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drain_reads_as_drained_or_draining() {
        let idle_drain = NodeState(ffi::NODE_STATE_IDLE | ffi::NODE_STATE_DRAIN);
        assert_eq!(idle_drain.long(), "drained");
        let mixed_drain = NodeState(ffi::NODE_STATE_MIXED | ffi::NODE_STATE_DRAIN);
        assert_eq!(mixed_drain.long(), "draining");
        assert!(!mixed_drain.schedulable());
    }

    #[test]
    fn suffix_meaning_replaces_state() {
        let down_noresp = NodeState(ffi::NODE_STATE_DOWN | ffi::NODE_STATE_NO_RESPOND);
        assert_eq!(down_noresp.cyclecloud(), "not_responding");
        let cloud_off =
            NodeState(ffi::NODE_STATE_IDLE | ffi::NODE_STATE_CLOUD | ffi::NODE_STATE_POWERED_DOWN);
        assert_eq!(cloud_off.cyclecloud(), "powered_off");
        assert_eq!(
            cloud_off.flags().collect::<Vec<_>>(),
            vec!["powered_down", "cloud"]
        );
        assert_eq!(NodeState(ffi::NODE_STATE_IDLE).cyclecloud(), "idle");
    }
}
