//! Where the accounting collector gets finished jobs from slurmdbd.
//!
//! The daemon opens its own libslurm connection. Inside slurmctld that is
//! not safe: there, libslurm's accounting_storage/slurmdbd plugin hands a
//! new connection to slurmctld's own DBD agent (`slurmdbd_agent_set_conn`
//! when running in slurmctld), and closing it shuts that agent down
//! (`slurmdbd_agent_rem_conn`), so slurmctld would stop sending job records
//! to slurmdbd. Borrowing slurmctld's connection is no better: it is freed
//! when slurmctld leaves control, racing with any query. So the plugin
//! asks slurmdbd from a short-lived helper process, this crate's binary run
//! as `slurm-ha-exporter accounting-jobs`, which prints the records in the
//! line format below.

use crate::slurm::{DbConnection, FinishedJob, JobState};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long the helper may take before it is killed (a query that long is
/// retried at the next run; nothing is counted from a partial answer).
const HELPER_DEADLINE: Duration = Duration::from_secs(120);

pub enum FinishedJobs {
    /// The daemon: its own connection, kept between runs.
    Direct(Option<DbConnection>),
    /// Plugin mode: the helper program and the slurm.conf it should read.
    Helper {
        program: PathBuf,
        slurm_conf: PathBuf,
    },
}

impl FinishedJobs {
    /// Jobs of `cluster` that ended in [start, end].
    pub fn query(
        &mut self,
        cluster: &str,
        start: i64,
        end: i64,
    ) -> Result<Vec<FinishedJob>, String> {
        match self {
            FinishedJobs::Direct(conn) => {
                if conn.is_none() {
                    *conn = Some(DbConnection::open().map_err(|e| e.to_string())?);
                }
                let c = conn.as_mut().expect("just opened");
                c.finished_jobs(cluster, start, end).map_err(|e| {
                    // Reconnect next time: the connection may be broken for good.
                    *conn = None;
                    e.to_string()
                })
            }
            FinishedJobs::Helper {
                program,
                slurm_conf,
            } => run_helper(program, slurm_conf, cluster, start, end),
        }
    }
}

/// One record per line, tab-separated; the last line says how many came,
/// so a helper that dies halfway is never mistaken for a short answer.
pub fn write_lines(jobs: &[FinishedJob], out: &mut impl std::io::Write) -> std::io::Result<()> {
    for j in jobs {
        writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            j.db_index,
            j.job_id,
            clean(&j.cluster),
            clean(&j.partition),
            j.state.base_number().unwrap_or(u32::MAX),
            j.exit_code,
            j.end_time,
            j.start_time,
            j.submit_time
        )?;
    }
    writeln!(out, "end\t{}", jobs.len())
}

fn clean(s: &str) -> String {
    s.replace(['\t', '\n'], " ")
}

pub fn parse_lines(text: &str) -> Result<Vec<FinishedJob>, String> {
    let mut jobs = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if f.first() == Some(&"end") {
            let n: usize = f
                .get(1)
                .and_then(|n| n.parse().ok())
                .ok_or("bad end line")?;
            return if n == jobs.len() {
                Ok(jobs)
            } else {
                Err(format!("helper announced {n} records, sent {}", jobs.len()))
            };
        }
        let bad = || format!("bad record from the helper: {line:?}");
        // A helper from before start times were sent has 7 fields: its
        // records count as never started (a rerun on the same row is then
        // not told apart, as before); one from before submit times, 8:
        // submitted at an unknown time (0).
        if !(7..=9).contains(&f.len()) {
            return Err(bad());
        }
        let number = |i: usize| match f.get(i) {
            Some(s) => s.parse().map_err(|_| bad()),
            None => Ok(0),
        };
        jobs.push(FinishedJob {
            db_index: f[0].parse().map_err(|_| bad())?,
            job_id: f[1].parse().map_err(|_| bad())?,
            cluster: f[2].to_string(),
            partition: f[3].to_string(),
            state: JobState::from_base(f[4].parse().map_err(|_| bad())?),
            exit_code: f[5].to_string(),
            end_time: f[6].parse().map_err(|_| bad())?,
            start_time: number(7)?,
            submit_time: number(8)?,
        });
    }
    Err("the helper's answer ended early (no end line)".into())
}

fn run_helper(
    program: &Path,
    slurm_conf: &Path,
    cluster: &str,
    start: i64,
    end: i64,
) -> Result<Vec<FinishedJob>, String> {
    // crate::child: inside slurmctld the helper must not send SIGCHLD.
    let out = crate::child::run(
        program,
        &[
            "accounting-jobs",
            "--cluster",
            cluster,
            "--start",
            &start.to_string(),
            "--end",
            &end.to_string(),
        ],
        &[("SLURM_CONF", slurm_conf.as_os_str())],
        HELPER_DEADLINE,
    )
    .map_err(|e| {
        format!(
            "cannot run the accounting helper {}: {e}",
            program.display()
        )
    })?;
    if out.timed_out {
        return Err(format!(
            "accounting helper killed after {HELPER_DEADLINE:?} (slurmdbd slow or unreachable?)"
        ));
    }
    parse_lines(&out.stdout).map_err(|e| {
        let why = out.stderr.trim();
        if !out.status.success() && !why.is_empty() {
            format!("accounting helper: {why}")
        } else if !out.status.success() {
            format!("accounting helper exited with {}", out.status)
        } else {
            format!("accounting helper: {e}")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(db_index: u64, partition: &str) -> FinishedJob {
        FinishedJob {
            db_index,
            job_id: 7,
            cluster: "c".into(),
            partition: partition.into(),
            state: JobState::Completed,
            exit_code: "0:0".into(),
            start_time: 1_699_999_000,
            end_time: 1_700_000_000,
            submit_time: 1_699_998_000,
        }
    }

    #[test]
    fn records_survive_the_helper_protocol() {
        let jobs = vec![job(1, "debug"), job(2, ""), job(3, "a\tb")];
        let mut buf = Vec::new();
        write_lines(&jobs, &mut buf).unwrap();
        let back = parse_lines(std::str::from_utf8(&buf).unwrap()).unwrap();
        assert_eq!(back.len(), 3);
        assert_eq!(back[0], jobs[0]);
        assert_eq!(back[1].partition, "");
        assert_eq!(back[2].partition, "a b");
        // Helpers of earlier formats: no submit time, no start time either.
        let no_submit =
            parse_lines("5\t7\tc\tdebug\t3\t0:0\t1700000000\t1699999000\nend\t1\n").unwrap();
        assert_eq!(
            (no_submit[0].start_time, no_submit[0].submit_time),
            (1_699_999_000, 0)
        );
        let old = parse_lines("5\t7\tc\tdebug\t3\t0:0\t1700000000\nend\t1\n").unwrap();
        assert_eq!((old[0].db_index, old[0].start_time), (5, 0));
    }

    #[test]
    fn a_partial_answer_is_an_error_not_fewer_jobs() {
        let mut buf = Vec::new();
        write_lines(&[job(1, "debug"), job(2, "debug")], &mut buf).unwrap();
        let text = String::from_utf8(buf).unwrap();
        let cut: String = text.lines().take(1).map(|l| format!("{l}\n")).collect();
        assert!(parse_lines(&cut).is_err());
        assert!(parse_lines("").is_err());
        assert!(parse_lines("end\t3\n").is_err());
        assert!(parse_lines("garbage\nend\t1\n").is_err());
    }
}
