//! Exactly-once counting of finished jobs, apart from any I/O so that every
//! rule can be tested with made-up records.
//!
//! Each query to slurmdbd asks for jobs that ended in [window_start, now].
//! A job is counted when its db_index (unique per cluster) was not counted
//! before; the window reaches back behind the watermark so records that
//! reach slurmdbd late are still found, and the ids counted within the
//! window are remembered so nothing is counted twice.
//!
//! Three rules keep late records from being lost or mislabelled:
//! - the watermark only moves to a time by which slurmctld had handed
//!   slurmdbd every record (its DBD agent queue was seen empty); while the
//!   queue holds records (slurmdbd down, or slow) it stays put, for at most
//!   MAX_HOLD_SECS, so a backlog flushed after a long outage is still inside
//!   the window;
//! - a record without a partition (a job that ended within a second of
//!   starting can reach slurmdbd like that on 22.05) waits up to
//!   SETTLE_SECS from when it was first seen for the partition to be filled
//!   in, and the window keeps reaching back to it meanwhile;
//! - jobs that ended before `counting_since` are history, never counted.

use crate::slurm::{FinishedJob, JobState};
use crate::state::accounting::{AccountingState, Key};

/// How long a record without a partition is given to get one, from when
/// it is first seen.
pub const SETTLE_SECS: i64 = 60;

/// How long the watermark may be held back while slurmctld still has
/// records queued for slurmdbd. Past this the window would grow without
/// bound on a cluster whose queue never drains; the watermark then trails
/// `now` by this much.
pub const MAX_HOLD_SECS: i64 = 3600;

/// The overlap the state counts with after a window that moved the
/// watermark from `before`: this exporter's setting, reached at once when
/// it is shorter than the file's, and when longer by no more than the
/// watermark moved. Counted ids are forgotten once they fall out of the
/// window; a window that reached back further at once than the last one
/// would return ids already forgotten, and count them again. Growing by
/// the watermark's step, the start of the window never moves back.
fn follow_overlap(st: &mut AccountingState, setting: i64, before: i64) {
    st.overlap = if setting <= st.overlap {
        setting
    } else {
        setting.min(st.overlap + (st.watermark - before).max(0))
    };
}

/// Where the next query's window starts.
pub fn window_start(st: &AccountingState) -> i64 {
    let behind_watermark = if st.watermark == 0 {
        st.counting_since
    } else {
        st.watermark - st.overlap
    };
    let oldest_waiting = st.waiting.values().map(|w| w.0).min();
    oldest_waiting
        .map_or(behind_watermark, |t| t.min(behind_watermark))
        .max(st.counting_since)
}

/// The `class` label of the duration histograms.
pub fn state_class(state: JobState) -> &'static str {
    match state {
        JobState::Completed => "completed",
        JobState::Failed | JobState::NodeFail | JobState::BootFail | JobState::OutOfMemory => {
            "failed"
        }
        _ => "other",
    }
}

/// Adds a job being counted to the histograms of its partition and class:
/// its queue wait (submit to start, or to its end if it never started) and
/// its run time (start to end; 0 if it never started). Every counted job
/// is observed once in each, so their counts equal the counter's.
fn observe_durations(st: &mut AccountingState, job: &FinishedJob) {
    let ran = job.start_time > 0 && job.start_time <= job.end_time;
    let left_queue = if ran { job.start_time } else { job.end_time };
    // An unknown submit time (an older helper) reads as no wait.
    let submitted = if job.submit_time > 0 {
        job.submit_time
    } else {
        left_queue
    };
    let wait = (left_queue - submitted).max(0) as u64;
    let run = if ran {
        (job.end_time - job.start_time) as u64
    } else {
        0
    };
    let class = state_class(job.state);
    for (what, seconds) in [("wait", wait), ("run", run)] {
        st.histograms
            .entry((what.into(), job.partition.clone(), class.into()))
            .or_default()
            .observe(seconds);
    }
}

/// The CycleCloud exporter's `reason` label: what an exit code usually means.
pub fn exit_reason(exit_code: &str) -> &'static str {
    match exit_code {
        "1:0" => "General failure",
        "2:0" => "Misuse of shell built-in",
        "125:0" => "Slurm Out of Memory Error",
        "126:0" => "Command invoked cannot execute",
        "127:0" => "Command not found",
        "128:0" => "Invalid argument to exit",
        "129:0" => "SIGHUP",
        "130:0" => "SIGINT - Ctrl+C",
        "131:0" => "SIGQUIT",
        "134:0" => "SIGABRT",
        "137:0" => "SIGKILL - Force killed",
        "139:0" => "SIGSEGV - Segfault",
        "141:0" => "SIGPIPE",
        "143:0" => "SIGTERM - Terminated",
        "152:0" => "SIGXCPU - CPU limit",
        "153:0" => "SIGXFSZ - File size limit",
        _ => "",
    }
}

/// Whether `job`, on a row whose ending at `counted_end` was counted, is
/// another ending of that row: a run that started after that end and
/// ended after it. A row that never ran has no start (slurmdbd returns
/// 4294967294 on 24.11, 0 elsewhere): not a run, whatever its end says.
fn is_new_ending(job: &FinishedJob, counted_end: i64) -> bool {
    let ran = job.start_time > 0 && job.start_time <= job.end_time;
    ran && job.start_time > counted_end && job.end_time > counted_end
}

/// Counts the jobs slurmdbd returned for the window that ends at `end`.
/// `synced`: a time by which slurmctld had handed slurmdbd every record
/// (None when unknown: slurmctld did not answer, or its queue was busy).
/// Returns how many jobs were counted.
/// `overlap`: this exporter's setting, which the state's overlap follows
/// (follow_overlap).
pub fn count_window(
    st: &mut AccountingState,
    jobs: Vec<FinishedJob>,
    end: i64,
    synced: Option<i64>,
    overlap: i64,
) -> usize {
    let mut counted = 0;
    for job in jobs {
        if job.end_time < st.counting_since {
            continue;
        }
        // An ending is its row and its end: a counted db_index counts
        // again only for a later run written onto the same row (Slurm 22.05
        // records a requeued job's next run on its old row when the job's
        // node went DOWN while the requeue completed, and a backup that
        // lost a completion in a kill -9 runs the job again on its row).
        // Such a run started after the end we counted and ended after it.
        // Either alone is not enough: slurmdbd can return a row half
        // updated, the new run's start beside the old end and state (seen
        // across a quick failback, docs/counting.md), and the same run can
        // come back with a later end (slurmdbd rewriting the row).
        if let Some(counted_end) = st.seen.get_mut(&job.db_index) {
            if !is_new_ending(&job, *counted_end) {
                // Not counted, but remembered for as long as windows can
                // return it: by the counted end alone the row would be
                // forgotten while its later end is still inside them, and
                // then counted as new.
                *counted_end = (*counted_end).max(job.end_time);
                continue;
            }
        }
        if job.partition.is_empty() {
            let first_seen = st
                .waiting
                .entry(job.db_index)
                .or_insert((job.end_time, end))
                .1;
            if end - first_seen < SETTLE_SECS {
                crate::debug!(
                    "job {} (db_index {}) ended without a partition: waiting for it",
                    job.job_id,
                    job.db_index
                );
                continue;
            }
        }
        st.waiting.remove(&job.db_index);
        st.seen.insert(job.db_index, job.end_time);
        crate::debug!(
            "counted job {} (db_index {}, ended {}): {} {} {:?}",
            job.job_id,
            job.db_index,
            job.end_time,
            job.state.as_str(),
            job.exit_code,
            job.partition
        );
        observe_durations(st, &job);
        let reason = exit_reason(&job.exit_code).to_string();
        let key: Key = (
            job.partition,
            job.exit_code,
            reason,
            job.state.as_str().to_string(),
        );
        *st.counts.entry(key).or_insert(0) += 1;
        counted += 1;
    }
    // A waiting record that stopped coming back (its job was removed from
    // the database) must not pin the window forever.
    st.waiting.retain(|_, w| end - w.1 < 2 * SETTLE_SECS);
    crate::debug!(
        "window ending {end}: {counted} counted, {} ids remembered, synced {synced:?}",
        st.seen.len()
    );
    let target = synced.map_or(st.watermark, |t| t.min(end));
    let before = st.watermark;
    st.watermark = target.max(st.watermark).max(end - MAX_HOLD_SECS);
    follow_overlap(st, overlap, before);
    // An id whose end lies before every future window cannot come back.
    let horizon = window_start(st);
    st.seen.retain(|_, t| *t >= horizon);
    counted
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::accounting::DEFAULT_OVERLAP_SECS as OVERLAP_SECS;
    use std::collections::BTreeMap;

    fn job(db_index: u64, partition: &str, end_time: i64) -> FinishedJob {
        FinishedJob {
            db_index,
            // Unlike db_index, so that a rule keyed by the wrong one fails.
            job_id: 9_000 + db_index as u32,
            cluster: "c".into(),
            partition: partition.into(),
            state: JobState::Completed,
            exit_code: "0:0".into(),
            start_time: end_time - 1,
            end_time,
            submit_time: end_time - 61,
        }
    }

    /// What slurmdbd returns: the records that ended inside the window.
    fn query(st: &AccountingState, db: &[FinishedJob], end: i64) -> Vec<FinishedJob> {
        let start = window_start(st);
        db.iter()
            .filter(|j| j.end_time >= start && j.end_time <= end)
            .cloned()
            .collect()
    }

    /// One collector run against `db`, with slurmctld's queue empty.
    fn step(st: &mut AccountingState, db: &[FinishedJob], end: i64) -> usize {
        let got = query(st, db, end);
        count(st, got, end, Some(end))
    }

    /// A window counted by an exporter with the default overlap.
    fn count(
        st: &mut AccountingState,
        jobs: Vec<FinishedJob>,
        end: i64,
        synced: Option<i64>,
    ) -> usize {
        count_window(st, jobs, end, synced, OVERLAP_SECS)
    }

    fn state(since: i64) -> AccountingState {
        AccountingState {
            counting_since: since,
            ..Default::default()
        }
    }

    #[test]
    fn a_job_returned_by_overlapping_windows_is_counted_once() {
        let mut st = state(0);
        assert_eq!(count(&mut st, vec![job(1, "p", 100)], 110, Some(110)), 1);
        assert_eq!(st.watermark, 110);
        assert_eq!(
            window_start(&st),
            0,
            "reaches back the overlap, not before counting_since"
        );
        assert_eq!(
            count(
                &mut st,
                vec![job(1, "p", 100), job(2, "p", 112)],
                120,
                Some(120)
            ),
            1
        );
        assert_eq!(st.total(), 2);
    }

    #[test]
    fn a_later_run_written_onto_a_counted_row_is_counted_again() {
        let mut st = state(0);
        let mut first = job(1, "p", 100);
        first.start_time = 100;
        first.state = JobState::NodeFail;
        assert_eq!(count(&mut st, vec![first], 110, Some(110)), 1);
        // The requeued job ran again on the same db_index: started after
        // the end that was counted.
        let mut rerun = job(1, "p", 133);
        rerun.start_time = 130;
        rerun.state = JobState::Failed;
        rerun.exit_code = "40:0".into();
        assert_eq!(count(&mut st, vec![rerun.clone()], 140, Some(140)), 1);
        assert_eq!(st.total(), 2);
        // The rerun itself, returned by the next overlapping window, once.
        assert_eq!(count(&mut st, vec![rerun], 150, Some(150)), 0);
        assert_eq!(st.total(), 2);
    }

    /// A row that ended at 100 and was counted; the real rerun Slurm
    /// wrote onto it later (start 150, end 160, another state); and the
    /// half-updated row slurmdbd returns in between: the rerun's start
    /// beside the old end and state.
    fn reused_row() -> (FinishedJob, FinishedJob, FinishedJob) {
        let mut first = job(1, "p", 100);
        first.start_time = 90;
        first.state = JobState::Failed;
        first.exit_code = "1:0".into();
        let mut half = first.clone();
        half.start_time = 150;
        let mut rerun = first.clone();
        rerun.start_time = 150;
        rerun.end_time = 160;
        rerun.state = JobState::Completed;
        rerun.exit_code = "0:0".into();
        (first, half, rerun)
    }

    #[test]
    fn a_row_with_a_new_start_beside_the_counted_end_is_not_counted_again() {
        let (first, half, rerun) = reused_row();
        let mut st = state(0);
        assert_eq!(count(&mut st, vec![first], 110, Some(110)), 1);
        assert_eq!(
            count(&mut st, vec![half.clone()], 152, Some(152)),
            0,
            "the same ending, whatever start the row carries now"
        );
        assert_eq!(count(&mut st, vec![half], 155, Some(155)), 0);
        assert_eq!(count(&mut st, vec![rerun.clone()], 165, Some(165)), 1);
        assert_eq!(count(&mut st, vec![rerun], 170, Some(170)), 0);
        assert_eq!(st.total(), 2, "two endings of the row, each once");
    }

    #[test]
    fn exporters_taking_turns_on_a_reused_row_count_each_ending_once() {
        // The failback: the backup's exporter counts the first
        // ending and writes the file; the primary's exporter, active again,
        // reads it and meets the half-updated row, then the real rerun; the
        // backup's exporter, active once more, reads the primary's file.
        let (first, half, rerun) = reused_row();
        let mut backup = state(0);
        count(&mut backup, vec![first.clone()], 110, Some(110));
        let mut primary = backup.clone();
        assert_eq!(count(&mut primary, vec![first, half], 152, Some(152)), 0);
        assert_eq!(count(&mut primary, vec![rerun.clone()], 165, Some(165)), 1);
        let mut backup_again = primary.clone();
        assert_eq!(count(&mut backup_again, vec![rerun], 170, Some(170)), 0);
        assert_eq!(backup_again.total(), 2);
        assert_eq!(
            backup_again.counts.len(),
            2,
            "failed 1:0 once, completed 0:0 once"
        );
        histograms_count_what_the_counter_counts(&backup_again);
    }

    /// Each histogram's count is the counter's sum over the same partition
    /// and state class, for both what they measure.
    fn histograms_count_what_the_counter_counts(st: &AccountingState) {
        let mut by_class: BTreeMap<(String, String), u64> = BTreeMap::new();
        for ((p, _, _, state), n) in &st.counts {
            let class = state_class(JobState::from_name(state).unwrap());
            *by_class.entry((p.clone(), class.to_string())).or_default() += n;
        }
        for what in ["wait", "run"] {
            let hist: BTreeMap<(String, String), u64> = st
                .histograms
                .iter()
                .filter(|(k, _)| k.0 == what)
                .map(|((_, p, c), h)| ((p.clone(), c.clone()), h.count))
                .collect();
            assert_eq!(hist, by_class, "{what}");
        }
    }

    #[test]
    fn durations_are_observed_once_per_counted_ending() {
        let mut st = state(0);
        let mut ran = job(1, "p", 100);
        ran.submit_time = 10;
        ran.start_time = 40;
        let mut never_ran = job(2, "p", 100);
        never_ran.state = JobState::Cancelled;
        never_ran.start_time = 0;
        never_ran.submit_time = 70;
        count(
            &mut st,
            vec![ran.clone(), never_ran.clone()],
            110,
            Some(110),
        );
        // The same records again (an overlapping window): no new observation.
        count(&mut st, vec![ran, never_ran], 120, Some(120));
        let h = |what: &str, class: &str| {
            st.histograms[&(what.into(), "p".into(), class.into())].clone()
        };
        assert_eq!(
            (h("wait", "completed").count, h("wait", "completed").sum),
            (1, 30)
        );
        assert_eq!(
            (h("run", "completed").count, h("run", "completed").sum),
            (1, 60)
        );
        assert_eq!(
            (h("wait", "other").count, h("wait", "other").sum),
            (1, 30),
            "pending until cancelled"
        );
        assert_eq!((h("run", "other").count, h("run", "other").sum), (1, 0));
        histograms_count_what_the_counter_counts(&st);
        // And they survive the state file.
        let back = AccountingState::from_json(&st.to_json()).unwrap();
        assert_eq!(back.histograms, st.histograms);
    }

    #[test]
    fn the_same_run_recorded_again_is_not_counted_again() {
        let mut st = state(0);
        assert_eq!(count(&mut st, vec![job(1, "p", 100)], 110, Some(110)), 1);
        // Same start, a later end or another state (slurmdbd updating the
        // row of the run it already ended): still the one ending.
        let mut again = job(1, "p", 105);
        again.start_time = 99;
        again.state = JobState::Failed;
        assert_eq!(count(&mut st, vec![again], 120, Some(120)), 0);
        // Never started (cancelled while pending): start 0.
        let mut never = job(2, "p", 100);
        never.start_time = 0;
        assert_eq!(count(&mut st, vec![never.clone()], 130, Some(130)), 1);
        assert_eq!(count(&mut st, vec![never], 140, Some(140)), 0);
        assert_eq!(st.total(), 2);
    }

    #[test]
    fn jobs_before_counting_since_are_history() {
        let mut st = state(1000);
        assert_eq!(count(&mut st, vec![job(1, "p", 999)], 1010, Some(1010)), 0);
        assert_eq!(window_start(&st), 1000);
    }

    #[test]
    fn the_watermark_waits_for_slurmctld_to_hand_over_its_queue() {
        let mut st = state(0);
        count(&mut st, vec![], 10_000, Some(10_000));
        // slurmdbd comes back after a long outage; slurmctld still holds
        // the records of jobs that ended while it was down.
        for end in (10_005..11_000).step_by(5) {
            count(&mut st, vec![], end, None);
        }
        assert_eq!(
            st.watermark, 10_000,
            "held while the queue is not known empty"
        );
        // The backlog arrives: a job that ended 900 s before this query.
        let n = count(&mut st, vec![job(7, "p", 10_100)], 11_000, Some(10_990));
        assert_eq!(n, 1, "a record flushed late is still inside the window");
        assert_eq!(st.watermark, 10_990);
    }

    #[test]
    fn the_watermark_is_held_for_at_most_max_hold() {
        let mut st = state(0);
        count(&mut st, vec![], 1_000, Some(1_000));
        count(&mut st, vec![], 1_000 + MAX_HOLD_SECS + 50, None);
        assert_eq!(st.watermark, 1_050);
        // And never moves backwards, whatever slurmctld's clock says.
        count(&mut st, vec![], 1_000 + MAX_HOLD_SECS + 60, Some(500));
        assert_eq!(st.watermark, 1_060);
    }

    #[test]
    fn a_record_without_partition_waits_from_first_sight_then_counts() {
        let mut st = state(0);
        count(&mut st, vec![], 1_000, Some(1_000));
        // Reaches slurmdbd 200 s after the job ended, still without
        // partition: the old rule (60 s from the job's end) counted it at
        // once under partition="".
        let mut db = vec![job(3, "", 800)];
        assert_eq!(step(&mut st, &db, 1_010), 0);
        assert!(st.waiting.contains_key(&3));
        // The partition is filled in 30 s later: counted with it, once.
        db[0].partition = "p".into();
        for end in (1_040..1_400).step_by(5) {
            step(&mut st, &db, end);
        }
        assert_eq!(st.total(), 1);
        assert!(st.counts.keys().all(|k| k.0 == "p"));
        assert!(st.waiting.is_empty());
    }

    #[test]
    fn a_record_that_never_gets_a_partition_is_counted_after_settling() {
        let mut st = state(0);
        count(&mut st, vec![], 98_990, Some(98_990));
        // slurmctld could not hand it over for 1000 s (watermark held), and
        // it arrives without partition: counted once, after SETTLE_SECS
        // from first sight, under partition="".
        for end in (98_995..100_000).step_by(5) {
            count(&mut st, vec![], end, None);
        }
        let db = vec![job(4, "", 99_000)];
        let mut total = step(&mut st, &db, 100_005);
        assert_eq!(st.waiting.len(), 1);
        assert_eq!(
            window_start(&st),
            99_000,
            "the window keeps reaching back to it"
        );
        let mut end = 100_010;
        while end < 100_000 + 4 * SETTLE_SECS {
            total += step(&mut st, &db, end);
            end += 5;
        }
        assert_eq!(total, 1);
        assert_eq!(st.counts.keys().next().unwrap().0, "");
        assert!(st.waiting.is_empty());
    }

    #[test]
    fn a_row_rewritten_without_a_run_is_not_a_new_ending() {
        // A held job cancelled (counted), then slurmctld restarts within
        // MinJobAge: "Script for JobId=18 lost, state set to FAILED"
        // rewrites the row with a later end and no start (seen on 24.11,
        // where slurmdbd returns start 4294967294).
        let mut st = state(0);
        let mut cancelled = job(18, "p", 1_000);
        cancelled.state = JobState::Cancelled;
        cancelled.start_time = 4_294_967_294;
        assert_eq!(step(&mut st, &[cancelled.clone()], 1_005), 1);
        let mut failed = cancelled.clone();
        failed.state = JobState::Failed;
        failed.end_time = 1_200;
        assert_eq!(step(&mut st, &[failed.clone()], 1_205), 0);
        failed.start_time = 0;
        assert_eq!(step(&mut st, &[failed.clone()], 1_210), 0);
        // Still not once the counted end has left the windows while the
        // rewritten one has not.
        for end in (1_215..1_200 + 2 * OVERLAP_SECS).step_by(5) {
            step(&mut st, &[failed.clone()], end);
        }
        assert_eq!(st.total(), 1);
    }

    #[test]
    fn two_exporters_writing_the_same_file_never_count_a_job_twice() {
        // Split brain: A and B both read generation G, both count, and each
        // writes the whole file; whoever writes last wins.
        let mut db = vec![job(1, "p", 1_000), job(2, "p", 1_001)];
        let mut file = state(0);
        step(&mut file, &db, 1_005);
        db.push(job(3, "p", 1_006));
        let (mut a, mut b) = (file.clone(), file.clone());
        db.push(job(4, "p", 1_008));
        step(&mut a, &db, 1_010); // A sees 3 and 4
        step(&mut b, &db[..3], 1_007); // B queried before 4 reached slurmdbd
        for last_writer in [a.clone(), b.clone()] {
            let mut next = last_writer.clone();
            // The next active exporter continues from the file and its
            // overlap window brings back whatever the winner lacked.
            step(&mut next, &db, 1_020);
            assert_eq!(next.total(), 4, "each job exactly once");
        }
        assert_eq!((a.total(), b.total()), (4, 3));
    }

    #[test]
    fn a_changed_overlap_setting_never_counts_a_job_twice() {
        // Jobs end every 10 s; exporters take turns on the file with
        // overlaps of 60, 300 and 900 s (a setting changed, or two
        // exporters set differently), each window ending 20 s after the
        // last. slurmdbd returns every job of the window: each must be
        // counted exactly once, whatever the turns.
        let db: Vec<FinishedJob> = (0..400)
            .map(|i| job(i, "p", 1_000 + 10 * i as i64))
            .collect();
        let mut st = state(0);
        let turns = [300, 60, 900, 900, 60, 300, 900, 60, 60, 900, 300];
        let mut end = 1_200;
        let mut last_start = 0;
        for setting in turns.iter().cycle().take(180) {
            let start = window_start(&st);
            // The window never reaches back past where the last began: what
            // it returns from there on is remembered.
            assert!(start >= last_start, "{start} < {last_start}");
            last_start = start;
            let got: Vec<FinishedJob> = db
                .iter()
                .filter(|j| j.end_time >= start && j.end_time <= end)
                .cloned()
                .collect();
            count_window(&mut st, got, end, Some(end), *setting);
            end += 20;
        }
        let ended = db.iter().filter(|j| j.end_time <= end - 20).count() as u64;
        assert_eq!(st.total(), ended, "each job exactly once");
        let mut st = state(0);
        count_window(&mut st, vec![], 2_000, Some(2_000), 900);
        assert_eq!(
            st.overlap, 900,
            "from the first window, nothing forgotten yet"
        );
        count_window(&mut st, vec![], 2_020, Some(2_020), 60);
        assert_eq!(st.overlap, 60, "a shorter one at once");
        count_window(&mut st, vec![], 2_040, Some(2_040), 300);
        assert_eq!(st.overlap, 80, "a longer one by the watermark's step");
    }

    #[test]
    fn ids_are_forgotten_only_after_no_window_can_return_them() {
        let mut st = state(0);
        count(&mut st, vec![job(5, "p", 1_000)], 1_010, Some(1_010));
        count(
            &mut st,
            vec![],
            1_000 + OVERLAP_SECS,
            Some(1_000 + OVERLAP_SECS),
        );
        assert!(st.seen.contains_key(&5), "still inside the next window");
        count(
            &mut st,
            vec![],
            1_020 + OVERLAP_SECS,
            Some(1_020 + OVERLAP_SECS),
        );
        assert!(!st.seen.contains_key(&5));
    }
}
