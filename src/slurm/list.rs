//! Walking a Slurm `List` (`struct xlist *`: spelled `List` up to 23.02,
//! `list_t *` after) whose items are all of one C type.

use super::ffi;

/// Calls `f` on every item of `list` in order; a NULL list has none.
///
/// SAFETY: `list` is NULL or a valid Slurm list whose items are `T`, and
/// nothing else uses it during the call.
pub(crate) unsafe fn for_each<T>(list: *mut ffi::xlist, mut f: impl FnMut(&T)) {
    if list.is_null() {
        return;
    }
    let it = ffi::slurm_list_iterator_create(list);
    loop {
        let item = ffi::slurm_list_next(it) as *const T;
        let Some(item) = item.as_ref() else {
            break;
        };
        f(item);
    }
    ffi::slurm_list_iterator_destroy(it);
}
