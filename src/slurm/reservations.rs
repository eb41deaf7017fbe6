use super::error::SlurmError;
use super::ffi;
use super::strings::owned;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reservation {
    pub name: String,
    pub partition: String,
    pub node_list: String,
    pub node_count: u32,
    pub core_count: u32,
    pub start_time: i64,
    pub end_time: i64,
    pub users: String,
    pub accounts: String,
    pub flags: u64,
}

impl Reservation {
    pub fn is_maint(&self) -> bool {
        self.flags & ffi::RESERVE_FLAG_MAINT as u64 != 0
    }
}

/// Loads reservations (one small RPC) and copies them out.
pub fn load_reservations() -> Result<Vec<Reservation>, SlurmError> {
    let mut msg: *mut ffi::reserve_info_msg_t = std::ptr::null_mut();
    // SAFETY: out-pointer, freed below.
    let rc = unsafe { ffi::slurm_load_reservations(0, &mut msg) };
    if rc != 0 || msg.is_null() {
        return Err(SlurmError::last("slurm_load_reservations"));
    }
    // SAFETY: reservation_array holds record_count records owned by msg.
    let out = unsafe {
        let m = &*msg;
        let slice: &[ffi::reserve_info_t] = if m.reservation_array.is_null() {
            &[]
        } else {
            std::slice::from_raw_parts(m.reservation_array, m.record_count as usize)
        };
        slice
            .iter()
            .map(|r| Reservation {
                name: owned(r.name),
                partition: owned(r.partition),
                node_list: owned(r.node_list),
                node_count: r.node_cnt,
                core_count: r.core_cnt,
                start_time: r.start_time,
                end_time: r.end_time,
                users: owned(r.users),
                accounts: owned(r.accounts),
                flags: r.flags,
            })
            .collect()
    };
    // SAFETY: freed once.
    unsafe { ffi::slurm_free_reservation_info_msg(msg) };
    Ok(out)
}
