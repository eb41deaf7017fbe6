//! Fairshare: slurmctld's association manager (what `scontrol show
//! assoc_mgr` and sshare read): per association its shares, usage and
//! fairshare figures, in one RPC (REQUEST_ASSOC_MGR_INFO).

use super::error::SlurmError;
use super::ffi;
use super::list;
use super::strings::owned;

/// One association: an account (`user` empty) or a user in an account,
/// optionally for one partition.
#[derive(Clone, Debug, PartialEq)]
pub struct Association {
    pub account: String,
    pub user: String,
    pub partition: String,
    /// Fairshare= as set with sacctmgr; None for the root association and
    /// for `parent` (the association uses its parent's).
    pub shares_raw: Option<u32>,
    pub shares_norm: f64,
    /// Decayed usage in TRES-billing seconds (sshare's RawUsage).
    pub usage_raw: f64,
    /// None while slurmctld has not computed it (users' effective usage is
    /// computed on demand).
    pub usage_efctv: Option<f64>,
    /// The fair-tree fairshare factor (users' FairShare in sshare).
    pub fs_factor: f64,
    /// The fair-tree level fairshare (sshare's LevelFS; infinite for an
    /// association without usage).
    pub level_fs: f64,
}

/// Loads every association of this cluster with its usage.
pub fn load_associations() -> Result<Vec<Association>, SlurmError> {
    let mut req = ffi::assoc_mgr_info_request_msg_t {
        flags: ffi::ASSOC_MGR_INFO_FLAG_ASSOC,
        ..Default::default()
    };
    let mut msg: *mut ffi::assoc_mgr_info_msg_t = std::ptr::null_mut();
    // SAFETY: req (no filter lists) lives across the call; msg is an
    // out-pointer freed below.
    let rc = unsafe { ffi::slurm_load_assoc_mgr_info(&mut req, &mut msg) };
    if rc != 0 || msg.is_null() {
        return Err(SlurmError::last("slurm_load_assoc_mgr_info"));
    }
    let mut out = Vec::new();
    // SAFETY: the list's items are slurmdb_assoc_rec_t owned by msg, their
    // usage packed with them; everything kept is copied before the free.
    unsafe {
        list::for_each((*msg).assoc_list, |a: &ffi::slurmdb_assoc_rec_t| {
            let Some(u) = a.usage.as_ref() else {
                return;
            };
            let efctv = long_double(u.usage_efctv);
            let account = owned(a.acct);
            // sshare shows no shares for the root association either.
            let root = a.user.is_null() && account == "root";
            let shares_set =
                a.shares_raw != ffi::SLURMDB_FS_USE_PARENT && a.shares_raw != ffi::NO_VAL;
            out.push(Association {
                user: owned(a.user),
                partition: owned(a.partition),
                shares_raw: (!root && shares_set).then_some(a.shares_raw),
                account,
                shares_norm: u.shares_norm,
                usage_raw: long_double(u.usage_raw),
                usage_efctv: (efctv != f64::from(ffi::NO_VAL)).then_some(efctv),
                fs_factor: u.fs_factor,
                level_fs: long_double(u.level_fs),
            });
        });
        ffi::slurm_free_assoc_mgr_info_msg(msg);
    }
    Ok(out)
}

/// A C `long double` as bindgen hands it over (its 16 bytes) read as f64.
/// On x86-64 that is the x87 80-bit format; on aarch64 IEEE binary128.
fn long_double(bits: u128) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        x87_extended(bits)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        binary128(bits)
    }
}

/// 2^e without overflow in the intermediate step.
fn scaled(m: f64, e: i32) -> f64 {
    let half = e / 2;
    m * 2f64.powi(half) * 2f64.powi(e - half)
}

/// x87 extended precision: 64-bit significand with an explicit integer
/// bit, 15-bit exponent (bias 16383), sign; the upper 6 bytes are padding.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn x87_extended(bits: u128) -> f64 {
    let significand = bits as u64;
    let exponent = ((bits >> 64) & 0x7fff) as i32;
    let negative = (bits >> 79) & 1 == 1;
    let magnitude = if exponent == 0x7fff {
        if significand << 1 == 0 {
            f64::INFINITY
        } else {
            f64::NAN
        }
    } else {
        // Denormals have exponent 0 and mean 2^-16382.
        let e = if exponent == 0 { 1 } else { exponent };
        scaled(significand as f64, e - 16383 - 63)
    };
    if negative {
        -magnitude
    } else {
        magnitude
    }
}

/// IEEE binary128: 112-bit fraction with an implicit integer bit.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn binary128(bits: u128) -> f64 {
    let fraction = bits & ((1u128 << 112) - 1);
    let exponent = ((bits >> 112) & 0x7fff) as i32;
    let negative = bits >> 127 == 1;
    // The fraction's top 60 bits are more than an f64 keeps.
    let top = (fraction >> 52) as u64 as f64;
    let magnitude = match exponent {
        0x7fff if fraction == 0 => f64::INFINITY,
        0x7fff => f64::NAN,
        0 => scaled(top, -16382 - 60),
        e => scaled(top + 2f64.powi(60), e - 16383 - 60),
    };
    if negative {
        -magnitude
    } else {
        magnitude
    }
}

#[cfg(test)]
mod tests {
    use super::{binary128, x87_extended};

    /// An x87 value from sign, biased exponent and significand.
    fn x87(negative: bool, exponent: u128, significand: u64) -> u128 {
        (u128::from(negative) << 79) | (exponent << 64) | u128::from(significand)
    }

    #[test]
    fn x87_extended_values_read_as_f64() {
        let one = 1u64 << 63;
        assert_eq!(x87_extended(0), 0.0);
        assert_eq!(x87_extended(x87(false, 16383, one)), 1.0);
        assert_eq!(x87_extended(x87(true, 16383, one)), -1.0);
        assert_eq!(x87_extended(x87(false, 16382, one | one >> 1)), 0.75);
        // 123456789 = 0x75BCD15: 27 bits, exponent 26.
        assert_eq!(
            x87_extended(x87(false, 16383 + 26, 0x075B_CD15_u64 << 37)),
            123_456_789.0
        );
        assert_eq!(x87_extended(x87(false, 0x7fff, one)), f64::INFINITY);
        assert!(x87_extended(x87(false, 0x7fff, one | 1)).is_nan());
        // Padding bytes above the 80 bits are ignored.
        assert_eq!(x87_extended(x87(false, 16383, one) | (0xdead << 96)), 1.0);
    }

    #[test]
    fn binary128_values_read_as_f64() {
        let q = |negative: bool, exponent: u128, fraction: u128| {
            (u128::from(negative) << 127) | (exponent << 112) | fraction
        };
        assert_eq!(binary128(0), 0.0);
        assert_eq!(binary128(q(false, 16383, 0)), 1.0);
        assert_eq!(binary128(q(true, 16384, 1 << 111)), -3.0);
        assert_eq!(binary128(q(false, 16382, 1 << 110)), 0.625);
        assert_eq!(binary128(q(false, 0x7fff, 0)), f64::INFINITY);
    }
}
