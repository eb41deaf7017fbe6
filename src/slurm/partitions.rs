use super::ffi;
use super::loaded::{Loaded, Message};
use super::strings::borrow;
use std::os::raw::c_int;

/// Every partition (`slurm_load_partitions`), freed on drop.
pub type Partitions = Loaded<ffi::partition_info_msg_t>;

impl Message for ffi::partition_info_msg_t {
    const CALL: &'static str = "slurm_load_partitions";
    /// SHOW_ALL: hidden partitions too.
    unsafe fn load(since: i64, out: *mut *mut Self) -> c_int {
        ffi::slurm_load_partitions(since, out, ffi::SHOW_ALL as u16)
    }
    unsafe fn free(msg: *mut Self) {
        ffi::slurm_free_partition_info_msg(msg)
    }
    fn last_update(&self) -> i64 {
        self.last_update
    }
}

impl Partitions {
    pub fn iter(&self) -> impl Iterator<Item = Partition<'_>> {
        // SAFETY: partition_array holds record_count records owned by msg.
        let slice: &[ffi::partition_info_t] = unsafe {
            let m = self.message();
            if m.partition_array.is_null() {
                &[]
            } else {
                std::slice::from_raw_parts(m.partition_array, m.record_count as usize)
            }
        };
        slice
            .iter()
            .filter(|p| !p.name.is_null())
            .map(|raw| Partition { raw })
    }
}

#[derive(Clone, Copy)]
pub struct Partition<'a> {
    raw: &'a ffi::partition_info_t,
}

impl<'a> Partition<'a> {
    pub fn name(&self) -> &'a str {
        // SAFETY: owned by the message.
        unsafe { borrow(self.raw.name) }
    }
    /// Host-list expression of the partition's nodes.
    pub fn nodes(&self) -> &'a str {
        // SAFETY: owned by the message.
        unsafe { borrow(self.raw.nodes) }
    }
    /// Indices of the partition's nodes in the node table (the record order
    /// of `Nodes`, valid for a node table loaded in the same cycle).
    /// `node_inx` holds start,end pairs closed by -1.
    pub fn node_indices(&self) -> Vec<usize> {
        let mut out = Vec::new();
        let p = self.raw.node_inx;
        if p.is_null() {
            return out;
        }
        let mut i = 0;
        // SAFETY: node_inx is a -1 terminated array of pairs owned by the message.
        unsafe {
            loop {
                let start = *p.add(i);
                if start < 0 {
                    break;
                }
                let end = *p.add(i + 1);
                if end < start {
                    break;
                }
                out.extend(start as usize..=end as usize);
                i += 2;
            }
        }
        out
    }
    pub fn total_cpus(&self) -> u32 {
        self.raw.total_cpus
    }
    pub fn total_nodes(&self) -> u32 {
        self.raw.total_nodes
    }
    /// "up", "down", "drain" or "inactive".
    pub fn state(&self) -> &'static str {
        match self.raw.state_up as u32 {
            ffi::PARTITION_UP => "up",
            ffi::PARTITION_DOWN => "down",
            ffi::PARTITION_DRAIN => "drain",
            ffi::PARTITION_INACTIVE => "inactive",
            _ => "unknown",
        }
    }
    /// MaxTime in minutes; `None` for UNLIMITED.
    pub fn max_time_minutes(&self) -> Option<u32> {
        match self.raw.max_time {
            ffi::INFINITE | ffi::NO_VAL => None,
            v => Some(v),
        }
    }
    pub fn is_default(&self) -> bool {
        // `flags` widened from u16 to u32 in 24.05 (a cast to u32 would be
        // clippy's unnecessary_cast there).
        #[cfg(slurm_ge_24_05)]
        let flags = self.raw.flags;
        #[cfg(not(slurm_ge_24_05))]
        let flags = u32::from(self.raw.flags);
        flags & ffi::PART_FLAG_DEFAULT != 0
    }
}
