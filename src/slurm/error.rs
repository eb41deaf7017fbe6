use super::ffi;
use std::ffi::CStr;
use std::fmt;

/// A failed libslurm call: which call, Slurm's error number and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlurmError {
    pub call: &'static str,
    pub code: i32,
    pub message: String,
}

impl SlurmError {
    pub(crate) fn from_code(call: &'static str, code: i32) -> Self {
        // SAFETY: slurm_strerror returns a pointer to a static string.
        let message = unsafe {
            let p = ffi::slurm_strerror(code);
            if p.is_null() {
                format!("error {code}")
            } else {
                CStr::from_ptr(p).to_string_lossy().into_owned()
            }
        };
        SlurmError {
            call,
            code,
            message,
        }
    }

    /// For calls that return -1 and leave the reason in slurm's errno.
    pub(crate) fn last(call: &'static str) -> Self {
        // libslurm keeps its error number in errno (slurm_get_errno(),
        // removed in 24.11, only returned it).
        let code = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        Self::from_code(call, code)
    }

    pub fn is_no_change(&self) -> bool {
        self.code == ffi::SLURM_NO_CHANGE_IN_DATA as i32
    }
}

impl fmt::Display for SlurmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} (slurm errno {})",
            self.call, self.message, self.code
        )
    }
}

impl std::error::Error for SlurmError {}

/// Turns the "0 or -1 with errno" convention into a Result.
pub(crate) fn check_rc(call: &'static str, rc: i32) -> Result<(), SlurmError> {
    if rc == 0 {
        Ok(())
    } else {
        Err(SlurmError::last(call))
    }
}
