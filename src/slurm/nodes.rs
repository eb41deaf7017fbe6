use super::ffi;
use super::loaded::{Loaded, Message};
use super::strings::borrow;
use std::os::raw::c_int;

/// The node table (`slurm_load_node`), freed on drop.
pub type Nodes = Loaded<ffi::node_info_msg_t>;

impl Message for ffi::node_info_msg_t {
    const CALL: &'static str = "slurm_load_node";
    /// Returns -1 and leaves the reason, SLURM_NO_CHANGE_IN_DATA included,
    /// in slurm's errno.
    ///
    /// SHOW_MIXED: libslurm turns a partly allocated node's state into MIXED
    /// by its release's own rule, as it does for sinfo and scontrol (sinfo
    /// 22.05 applies its own rule, which names every state the same way).
    ///
    /// SHOW_DETAIL: without it slurmctld sends no `gres_used` (GPUs in use
    /// read 0), as sinfo knows (it asks for it when it prints GresUsed).
    unsafe fn load(since: i64, out: *mut *mut Self) -> c_int {
        ffi::slurm_load_node(
            since,
            out,
            (ffi::SHOW_ALL | ffi::SHOW_MIXED | ffi::SHOW_DETAIL) as u16,
        )
    }
    unsafe fn free(msg: *mut Self) {
        ffi::slurm_free_node_info_msg(msg)
    }
    fn last_update(&self) -> i64 {
        self.last_update
    }
}

impl Nodes {
    /// Records in the node table, unnamed free slots included.
    pub fn len(&self) -> usize {
        self.message().record_count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The node at `index` of the node table (see Partition::node_indices).
    pub fn at(&self, index: usize) -> Option<Node<'_>> {
        // SAFETY: bounds-checked against record_count; records owned by msg.
        unsafe {
            let m = self.message();
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
            let m = self.message();
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
    /// The state word, MIXED included (see Nodes::load).
    pub fn state(&self) -> NodeState {
        NodeState(self.raw.node_state)
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

/// Base states by name, for `NodeState::names` (stable across releases).
const BASE_NAMES: &[(u32, &str)] = &[
    (ffi::NODE_STATE_UNKNOWN, "unknown"),
    (ffi::NODE_STATE_DOWN, "down"),
    (ffi::NODE_STATE_IDLE, "idle"),
    (ffi::NODE_STATE_ALLOCATED, "allocated"),
    (ffi::NODE_STATE_ERROR, "error"),
    (ffi::NODE_STATE_MIXED, "mixed"),
    (ffi::NODE_STATE_FUTURE, "future"),
];

/// Flags we do not export but a recorded state must keep: each release
/// 22.05..26.05 has them at the same bit.
const OTHER_FLAG_NAMES: &[(u32, &str)] = &[
    (ffi::NODE_STATE_UNDRAIN, "undrain"),
    (ffi::NODE_STATE_REBOOT_CANCEL, "reboot_cancel"),
    (ffi::NODE_STATE_DYNAMIC_FUTURE, "dynamic_future"),
    (ffi::NODE_STATE_POWER_UP, "power_up"),
    (ffi::NODE_STATE_POWER_DRAIN, "power_drain"),
    (ffi::NODE_STATE_DYNAMIC_NORM, "dynamic_norm"),
];

/// The characters sinfo puts after a long state for a flag.
const SINFO_SUFFIXES: &[char] = &['*', '~', '#', '!', '%', '$', '@', '^', '-', '+'];

/// The lower-case copy of one of libslurm's state literals, made once per
/// literal: a bounded set (Slurm has about 150), so the leak is bounded too.
fn lower_case(upper: *const std::os::raw::c_char) -> &'static str {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static MADE: Mutex<Option<HashMap<usize, &'static str>>> = Mutex::new(None);
    let mut made = MADE.lock().unwrap_or_else(|e| e.into_inner());
    made.get_or_insert_with(HashMap::new)
        .entry(upper as usize)
        .or_insert_with(|| {
            // SAFETY: a NUL-terminated literal of libslurm (or null: "").
            let s = unsafe { borrow(upper) };
            Box::leak(s.to_ascii_lowercase().into_boxed_str())
        })
}

impl NodeState {
    fn has(self, flag: u32) -> bool {
        self.0 & flag != 0
    }

    /// Labels of the flags set, in NODE_FLAGS order.
    pub fn flags(self) -> impl Iterator<Item = &'static str> {
        NODE_FLAGS
            .iter()
            .filter(move |(f, _)| self.has(*f))
            .map(|(_, n)| *n)
    }

    /// sinfo's long state (%T) for this state word, in lower case: "idle",
    /// "mixed$", "drained*", "reboot^", "allocated+". It is Slurm's own
    /// `node_state_string`, so which flag's suffix wins when several are set
    /// (maintenance before reboot before power before not responding, and
    /// whole words such as MAINT or REBOOT^) is the release's, as sinfo's.
    pub fn sinfo(self) -> &'static str {
        // SAFETY: returns a pointer to one of libslurm's string literals
        // (never freed, never null), whatever the argument.
        let upper = unsafe { ffi::slurm_node_state_string(self.0) };
        lower_case(upper)
    }

    /// sinfo's long state without its suffix: "mixed" for "mixed$". The
    /// flags the suffix stood for are in slurm_nodes_flag.
    pub fn long(self) -> &'static str {
        let s = self.sinfo();
        s.strip_suffix(SINFO_SUFFIXES).unwrap_or(s)
    }

    /// The state label of the CycleCloud exporter's sinfo_partition_nodes_state:
    /// sinfo's long state, or the meaning of its suffix (`*`, `~`, `$`, ...)
    /// when it has one the CycleCloud exporter knows (not `+`).
    pub fn cyclecloud(self) -> &'static str {
        const MEANINGS: &[(char, &str)] = &[
            ('*', "not_responding"),
            ('~', "powered_off"),
            ('#', "powering_up"),
            ('!', "pending_power_down"),
            ('%', "powering_down"),
            ('$', "maintenance_reservation"),
            ('@', "pending_reboot"),
            ('^', "reboot_issued"),
            ('-', "planned_backfill"),
        ];
        let s = self.sinfo();
        s.chars()
            .last()
            .and_then(|last| MEANINGS.iter().find(|(c, _)| *c == last))
            .map(|(_, meaning)| *meaning)
            .unwrap_or(s)
    }

    /// The state word by name, "mixed+drain+maint": the base state, then
    /// every flag set (a bit no table names as "bitN"). What a recorded
    /// cluster state keeps, readable and independent of the bit layout.
    pub fn names(self) -> String {
        let base = self.0 & ffi::NODE_STATE_BASE;
        let mut out = match BASE_NAMES.iter().find(|(b, _)| *b == base) {
            Some((_, name)) => name.to_string(),
            None => format!("base{base}"),
        };
        for bit in 4..32 {
            let flag = 1u32 << bit;
            if self.has(flag) {
                let name = NODE_FLAGS
                    .iter()
                    .chain(OTHER_FLAG_NAMES)
                    .find(|(f, _)| *f == flag);
                out.push('+');
                match name {
                    Some((_, name)) => out.push_str(name),
                    None => out.push_str(&format!("bit{bit}")),
                }
            }
        }
        out
    }

    /// The inverse of `names`.
    pub fn from_names(text: &str) -> Result<NodeState, String> {
        let mut parts = text.split('+');
        let base = parts.next().unwrap_or("");
        let mut word = match BASE_NAMES.iter().find(|(_, n)| *n == base) {
            Some((b, _)) => *b,
            None => base
                .strip_prefix("base")
                .and_then(|n| n.parse::<u32>().ok())
                .filter(|n| *n <= ffi::NODE_STATE_BASE)
                .ok_or_else(|| format!("node state {text:?}: unknown base state {base:?}"))?,
        };
        for flag in parts {
            let known = NODE_FLAGS
                .iter()
                .chain(OTHER_FLAG_NAMES)
                .find(|(_, n)| *n == flag);
            word |= match known {
                Some((f, _)) => *f,
                None => flag
                    .strip_prefix("bit")
                    .and_then(|n| n.parse::<u32>().ok())
                    .filter(|n| (4..32).contains(n))
                    .map(|n| 1 << n)
                    .ok_or_else(|| format!("node state {text:?}: unknown flag {flag:?}"))?,
            };
        }
        Ok(NodeState(word))
    }

    /// Whether a node's free CPUs count as idle. This is sinfo's rule (%C):
    /// only drained or down nodes put their CPUs in "other"; a node that is
    /// merely not responding still counts as idle.
    pub fn schedulable(self) -> bool {
        !self.has(ffi::NODE_STATE_DRAIN) && self.0 & ffi::NODE_STATE_BASE != ffi::NODE_STATE_DOWN
    }
}

#[cfg(test)]
mod tests {
    //! These call libslurm's own node_state_string (the real function of
    //! the release built against): what they check is ours, the lower
    //! case, the suffix stripped for `long` and its meaning for CycleCloud.
    use super::*;

    fn st(flags: &[u32]) -> NodeState {
        NodeState(flags.iter().fold(0, |a, f| a | f))
    }

    #[test]
    fn drain_reads_as_drained_or_draining() {
        let idle_drain = st(&[ffi::NODE_STATE_IDLE, ffi::NODE_STATE_DRAIN]);
        assert_eq!(idle_drain.long(), "drained");
        let mixed_drain = st(&[ffi::NODE_STATE_MIXED, ffi::NODE_STATE_DRAIN]);
        assert_eq!(mixed_drain.long(), "draining");
        assert!(!mixed_drain.schedulable());
    }

    #[test]
    fn maintenance_wins_over_not_responding_as_in_sinfo() {
        // The node of the issue: busy in a MAINT reservation.
        let busy_maint = st(&[ffi::NODE_STATE_MIXED, ffi::NODE_STATE_MAINT]);
        assert_eq!(busy_maint.sinfo(), "mixed$");
        assert_eq!(busy_maint.long(), "mixed");
        assert_eq!(busy_maint.cyclecloud(), "maintenance_reservation");
        let idle_maint = st(&[ffi::NODE_STATE_IDLE, ffi::NODE_STATE_MAINT]);
        assert_eq!(idle_maint.cyclecloud(), "maint");
        let drained_maint_noresp = st(&[
            ffi::NODE_STATE_IDLE,
            ffi::NODE_STATE_DRAIN,
            ffi::NODE_STATE_MAINT,
            ffi::NODE_STATE_NO_RESPOND,
        ]);
        assert_eq!(drained_maint_noresp.sinfo(), "drained$");
    }

    #[test]
    fn a_rebooting_node_that_stops_answering_is_still_rebooting() {
        let s = st(&[
            ffi::NODE_STATE_IDLE,
            ffi::NODE_STATE_REBOOT_ISSUED,
            ffi::NODE_STATE_NO_RESPOND,
        ]);
        assert_eq!(s.sinfo(), "reboot^");
        assert_eq!(s.cyclecloud(), "reboot_issued");
        assert_eq!(s.long(), "reboot");
        let asap = st(&[
            ffi::NODE_STATE_MIXED,
            ffi::NODE_STATE_DRAIN,
            ffi::NODE_STATE_REBOOT_REQUESTED,
        ]);
        assert_eq!(asap.sinfo(), "draining@");
        assert_eq!(asap.cyclecloud(), "pending_reboot");
    }

    #[test]
    fn suffix_meaning_replaces_state() {
        let down_noresp = st(&[ffi::NODE_STATE_DOWN, ffi::NODE_STATE_NO_RESPOND]);
        assert_eq!(down_noresp.sinfo(), "down*");
        assert_eq!(down_noresp.cyclecloud(), "not_responding");
        assert_eq!(down_noresp.long(), "down");
        let cloud_off = st(&[
            ffi::NODE_STATE_IDLE,
            ffi::NODE_STATE_CLOUD,
            ffi::NODE_STATE_POWERED_DOWN,
        ]);
        assert_eq!(cloud_off.cyclecloud(), "powered_off");
        assert_eq!(
            cloud_off.flags().collect::<Vec<_>>(),
            vec!["powered_down", "cloud"]
        );
        let planned = st(&[ffi::NODE_STATE_MIXED, ffi::NODE_STATE_PLANNED]);
        assert_eq!(planned.cyclecloud(), "planned_backfill");
        assert_eq!(NodeState(ffi::NODE_STATE_IDLE).cyclecloud(), "idle");
    }

    #[test]
    fn names_round_trip_and_bad_names_are_errors() {
        let s = st(&[
            ffi::NODE_STATE_MIXED,
            ffi::NODE_STATE_DRAIN,
            ffi::NODE_STATE_MAINT,
            ffi::NODE_STATE_POWER_DRAIN,
            1 << 31,
        ]);
        assert_eq!(s.names(), "mixed+drain+maint+power_drain+bit31");
        assert_eq!(NodeState::from_names(&s.names()), Ok(s));
        assert_eq!(
            NodeState::from_names("idle"),
            Ok(st(&[ffi::NODE_STATE_IDLE]))
        );
        assert!(NodeState::from_names("idle+sleepy")
            .unwrap_err()
            .contains("sleepy"));
        assert!(NodeState::from_names("busy").unwrap_err().contains("busy"));
        assert!(NodeState::from_names("idle+bit2").is_err());
    }

    #[test]
    fn completing_keeps_the_plus_the_cyclecloud_exporter_does_not_map() {
        let s = st(&[ffi::NODE_STATE_ALLOCATED, ffi::NODE_STATE_COMPLETING]);
        assert_eq!(s.sinfo(), "allocated+");
        assert_eq!(s.cyclecloud(), "allocated+");
        assert_eq!(s.long(), "allocated");
        // One copy per literal: the same pointer twice.
        assert!(std::ptr::eq(s.sinfo(), s.sinfo()));
    }
}
