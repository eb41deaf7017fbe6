use super::error::SlurmError;
use super::ffi;
use super::strings::owned;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct License {
    pub name: String,
    pub total: u32,
    pub in_use: u32,
    pub available: u32,
    pub reserved: u32,
    pub remote: bool,
}

/// Loads licenses (one small RPC) and copies them out.
pub fn load_licenses() -> Result<Vec<License>, SlurmError> {
    let mut msg: *mut ffi::license_info_msg_t = std::ptr::null_mut();
    // SAFETY: out-pointer, freed below.
    let rc = unsafe { ffi::slurm_load_licenses(0, &mut msg, ffi::SHOW_ALL as u16) };
    if rc != 0 || msg.is_null() {
        return Err(SlurmError::last("slurm_load_licenses"));
    }
    // SAFETY: lic_array holds num_lic records owned by msg.
    let out = unsafe {
        let m = &*msg;
        let slice: &[ffi::slurm_license_info_t] = if m.lic_array.is_null() {
            &[]
        } else {
            std::slice::from_raw_parts(m.lic_array, m.num_lic as usize)
        };
        slice
            .iter()
            .map(|l| License {
                name: owned(l.name),
                total: l.total,
                in_use: l.in_use,
                available: l.available,
                reserved: l.reserved,
                remote: l.remote != 0,
            })
            .collect()
    };
    // SAFETY: freed once.
    unsafe { ffi::slurm_free_license_info_msg(msg) };
    Ok(out)
}
