use super::error::SlurmError;
use super::ffi;
use super::jobs::JobState;
use super::list;
use super::strings::owned;
use std::ffi::{c_void, CString};

/// A connection to slurmdbd (through libslurm's accounting_storage plugin).
pub struct DbConnection {
    conn: *mut c_void,
}

// SAFETY: the handle is only used from the thread that owns this value.
unsafe impl Send for DbConnection {}

impl Drop for DbConnection {
    fn drop(&mut self) {
        // SAFETY: closes and NULLs the handle from slurmdb_connection_get.
        unsafe { ffi::slurmdb_connection_close(&mut self.conn) };
    }
}

/// A job that reached a terminal state, as slurmdbd recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinishedJob {
    /// Unique per cluster: the key that keeps a job from being counted twice.
    pub db_index: u64,
    pub job_id: u32,
    pub cluster: String,
    pub partition: String,
    pub state: JobState,
    /// "exit:signal", the way sacct prints ExitCode.
    pub exit_code: String,
    /// When the run this record describes started (0: it never did).
    pub start_time: i64,
    pub end_time: i64,
    /// When the job was submitted (0: unknown, from an older helper).
    pub submit_time: i64,
}

/// sacct before 25.11 prints an exit status of 128 or more as status - 128
/// (a guess that the shell reported a signal that way; removed in 25.11.0,
/// "Don't subtract 128 from sacct returned exit codes" in its changelog).
/// The label follows the sacct of the Slurm we are built for, so it reads
/// as it did in the CycleCloud exporter, which parsed sacct.
const SACCT_SUBTRACTS_128: bool = !cfg!(slurm_ge_25_11);

/// Formats a wait(2) status the way sacct's ExitCode column does.
pub fn format_exit_code(status: u32) -> String {
    format_exit_code_as(status, SACCT_SUBTRACTS_128)
}

fn format_exit_code_as(status: u32, subtract_128: bool) -> String {
    if status == ffi::NO_VAL {
        return "0:0".into();
    }
    let status = status as i32;
    // Same decoding as WIFSIGNALED/WTERMSIG/WEXITSTATUS.
    let sig = status & 0x7f;
    if sig != 0 && sig != 0x7f {
        format!("0:{sig}")
    } else {
        let code = (status >> 8) & 0xff;
        let code = if subtract_128 && code >= 128 {
            code - 128
        } else {
            code
        };
        format!("{code}:0")
    }
}

/// slurmdbd's own statistics (what `sacctmgr show stats` prints), since
/// `since` (slurmdbd's start or its last reset).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DbdStats {
    pub since: i64,
    /// RPCs by message type: (type number, count, total microseconds).
    /// libslurm has no public table of their names; sacctmgr prints each
    /// name with its number.
    pub rpcs: Vec<(u32, u64, u64)>,
    /// RPCs by user: (uid, count, total microseconds).
    pub users: Vec<(u32, u64, u64)>,
    /// slurmdbd's own rollups: (period "hour"|"day"|"month", count, total
    /// microseconds, last one's start).
    pub rollups: Vec<(&'static str, u64, u64, i64)>,
}

/// A slurm List of borrowed C strings; the strings stay owned by Rust and
/// outlive the list, which is created without a destructor for its items.
struct StrList {
    // `struct xlist *`: spelled `List` up to 23.02, `list_t *` after.
    list: *mut ffi::xlist,
    _items: Vec<CString>,
}

impl StrList {
    fn new(items: Vec<CString>) -> StrList {
        // SAFETY: a list with no item destructor; items appended as borrowed pointers.
        let list = unsafe { ffi::slurm_list_create(None) };
        for s in &items {
            // SAFETY: s outlives the list (both dropped together, list first).
            unsafe { ffi::slurm_list_append(list, s.as_ptr() as *mut c_void) };
        }
        StrList {
            list,
            _items: items,
        }
    }
}

impl Drop for StrList {
    fn drop(&mut self) {
        // SAFETY: destroys the list only; items have no destructor.
        unsafe { ffi::slurm_list_destroy(self.list) };
    }
}

impl DbConnection {
    pub fn open() -> Result<DbConnection, SlurmError> {
        // SAFETY: NULL flags: a plain client connection.
        let conn = unsafe { ffi::slurmdb_connection_get(std::ptr::null_mut()) };
        if conn.is_null() {
            return Err(SlurmError::last("slurmdb_connection_get"));
        }
        Ok(DbConnection { conn })
    }

    /// slurmdbd's RPC and rollup statistics (DBD_GET_STATS).
    pub fn stats(&mut self) -> Result<DbdStats, SlurmError> {
        let mut rec: *mut ffi::slurmdb_stats_rec_t = std::ptr::null_mut();
        // SAFETY: rec is an out-pointer; on success libslurm allocates it.
        let rc = unsafe { ffi::slurmdb_get_stats(self.conn, &mut rec) };
        if rc != 0 || rec.is_null() {
            return Err(SlurmError::last("slurmdb_get_stats"));
        }
        // SAFETY: rec and its lists are owned by us until destroyed below;
        // each list item is a slurmdb_rpc_obj_t.
        let out = unsafe {
            let r = &*rec;
            let objs = |list: *mut ffi::xlist| {
                let mut v = Vec::new();
                list::for_each(list, |o: &ffi::slurmdb_rpc_obj_t| {
                    v.push((o.id, u64::from(o.cnt), o.time))
                });
                v
            };
            let mut rollups = Vec::new();
            if let Some(d) = r.dbd_rollup_stats.as_ref() {
                for (i, period) in ["hour", "day", "month"].into_iter().enumerate() {
                    rollups.push((
                        period,
                        u64::from(d.count[i]),
                        d.time_total[i],
                        d.timestamp[i],
                    ));
                }
            }
            DbdStats {
                since: r.time_start,
                rpcs: objs(r.rpc_list),
                users: objs(r.user_list),
                rollups,
            }
        };
        // SAFETY: frees rec and everything it owns, once.
        unsafe { ffi::slurmdb_destroy_stats_rec(rec as *mut c_void) };
        // The read-only transaction of this connection (see finished_jobs).
        // SAFETY: plain call on our connection handle.
        unsafe { ffi::slurmdb_connection_commit(self.conn, false) };
        Ok(out)
    }

    /// Jobs of `cluster` whose end time lies in [start, end] (slurmdbd
    /// includes both ends), in any terminal state, allocations only.
    pub fn finished_jobs(
        &mut self,
        cluster: &str,
        start: i64,
        end: i64,
    ) -> Result<Vec<FinishedJob>, SlurmError> {
        let cluster_c = CString::new(cluster).unwrap_or_default();
        let clusters = StrList::new(vec![cluster_c]);
        let states = StrList::new(
            JobState::TERMINAL
                .iter()
                .filter_map(|s| s.base_number())
                .map(|n| CString::new(n.to_string()).unwrap_or_default())
                .collect(),
        );
        let mut cond = ffi::slurmdb_job_cond_t {
            cluster_list: clusters.list,
            state_list: states.list,
            usage_start: start,
            usage_end: end,
            // Left at 0 the server filters on "no flags set" and returns
            // nothing; NOTSET is what sacct sends.
            db_flags: ffi::SLURMDB_JOB_FLAG_NOTSET,
            // DUP: every record, also those that share a job id (ids are
            // handed out again after a takeover from an older job_state);
            // without it slurmdbd returns only the newest per id and an
            // older one could vanish before we saw it.
            flags: ffi::JOBCOND_FLAG_NO_STEP | ffi::JOBCOND_FLAG_NO_TRUNC | ffi::JOBCOND_FLAG_DUP,
            ..Default::default()
        };
        // SAFETY: cond and its lists live across the call; the result list
        // owns its records and is destroyed below.
        let list = unsafe { ffi::slurmdb_jobs_get(self.conn, &mut cond) };
        if list.is_null() {
            return Err(SlurmError::last("slurmdb_jobs_get"));
        }
        let mut out = Vec::new();
        // SAFETY: iterates records owned by `list`, copying what we keep.
        unsafe {
            list::for_each(list, |r: &ffi::slurmdb_job_rec_t| {
                out.push(FinishedJob {
                    db_index: r.db_index,
                    job_id: r.jobid,
                    cluster: owned(r.cluster),
                    partition: owned(r.partition),
                    state: JobState::from_base(r.state),
                    exit_code: format_exit_code(r.exitcode),
                    start_time: r.start,
                    end_time: r.end,
                    submit_time: r.submit,
                })
            });
            ffi::slurm_list_destroy(list);
        }
        // slurmdbd keeps a transaction open per persistent connection, and
        // MariaDB's repeatable-read isolation then answers every later query
        // from the same snapshot: jobs that end afterwards never show up.
        // Ending the (read-only) transaction makes the next query see them.
        // SAFETY: plain call on our connection handle.
        unsafe { ffi::slurmdb_connection_commit(self.conn, false) };
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::format_exit_code_as;

    #[test]
    fn exit_codes_read_like_sacct() {
        for old in [true, false] {
            assert_eq!(format_exit_code_as(0, old), "0:0");
            assert_eq!(format_exit_code_as(1 << 8, old), "1:0");
            assert_eq!(format_exit_code_as(9, old), "0:9");
            assert_eq!(format_exit_code_as(127 << 8, old), "127:0");
        }
        // `exit 137`: sacct up to 25.05 prints 9:0, 25.11 and later 137:0.
        assert_eq!(format_exit_code_as(137 << 8, true), "9:0");
        assert_eq!(format_exit_code_as(137 << 8, false), "137:0");
    }
}
