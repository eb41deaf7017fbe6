use std::ffi::CStr;
use std::os::raw::c_char;

/// Borrows a C string owned by a Slurm message; NULL reads as "".
///
/// SAFETY: `p` is NULL or a NUL-terminated string that lives at least as long
/// as `'a` (the message that owns it).
pub(crate) unsafe fn borrow<'a>(p: *const c_char) -> &'a str {
    if p.is_null() {
        return "";
    }
    // Slurm strings are bytes; non-UTF-8 names are rare enough that we show
    // them as empty rather than allocate for every field.
    CStr::from_ptr(p).to_str().unwrap_or("")
}

/// Copies a C string into an owned String; NULL reads as "".
pub(crate) unsafe fn owned(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    CStr::from_ptr(p).to_string_lossy().into_owned()
}
