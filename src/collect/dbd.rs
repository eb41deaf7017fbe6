//! slurmdbd's health: whether it answers (`slurm_dbd_up`) and its own
//! statistics, what `sacctmgr show stats` prints: RPCs by message type and
//! by user, and its rollups. When accounting is the bottleneck, this is
//! where a dashboard shows it.
//!
//! slurmdbd not answering is what this collector reports, not a failure of
//! it: it stays successful and says `slurm_dbd_up 0`. Daemon mode only
//! (inside slurmctld no process of ours may open its own slurmdbd
//! connection; the plugin leaves this collector out).

use super::{Collector, Source, Sources};
use crate::metrics::{Family, Kind};
use crate::slurm::{DbConnection, DbdStats};

#[derive(Default)]
pub struct DbdCollector {
    conn: Option<DbConnection>,
}

impl DbdCollector {
    fn stats(&mut self) -> Result<DbdStats, String> {
        if self.conn.is_none() {
            self.conn = Some(DbConnection::open().map_err(|e| e.to_string())?);
        }
        let conn = self.conn.as_mut().expect("opened above");
        conn.stats().map_err(|e| {
            // A connection that failed once is opened afresh next time.
            self.conn = None;
            e.to_string()
        })
    }
}

/// The families of one answer (`None`: slurmdbd did not answer).
pub fn families(stats: Option<&DbdStats>, out: &mut Vec<Family>) {
    out.push(Family::single(
        "slurm_dbd_up",
        "1 if slurmdbd answered this exporter's statistics request, 0 if not",
        Kind::Gauge,
        if stats.is_some() { 1.0 } else { 0.0 },
    ));
    let Some(s) = stats else {
        return;
    };
    out.push(Family::single(
        "slurm_dbd_stats_start_timestamp_seconds",
        "Since when slurmdbd counts its statistics (its start or last reset): the counters below restart then",
        Kind::Gauge,
        s.since as f64,
    ));
    for (calls_name, time_name, by, label, rows) in [
        (
            "slurm_dbd_rpc_type_calls_total",
            "slurm_dbd_rpc_type_time_seconds_total",
            "message type (the number sacctmgr show stats prints beside its name)",
            "type",
            &s.rpcs,
        ),
        (
            "slurm_dbd_rpc_user_calls_total",
            "slurm_dbd_rpc_user_time_seconds_total",
            "user",
            "uid",
            &s.users,
        ),
    ] {
        let mut calls = Family::counter(
            calls_name,
            &format!("RPCs slurmdbd served, by {by}"),
            &[label],
        );
        let mut time = Family::counter(
            time_name,
            &format!("Time slurmdbd spent on RPCs, by {by}"),
            &[label],
        );
        for (id, count, micros) in rows {
            let id = id.to_string();
            calls.add(&[&id], *count as f64);
            time.add(&[&id], *micros as f64 / 1e6);
        }
        out.extend([calls, time]);
    }
    let mut rollups = Family::counter(
        "slurm_dbd_rollups_total",
        "Usage rollups slurmdbd ran, by period",
        &["period"],
    );
    let mut rollup_time = Family::counter(
        "slurm_dbd_rollup_time_seconds_total",
        "Time slurmdbd spent on usage rollups, by period",
        &["period"],
    );
    let mut last = Family::gauge(
        "slurm_dbd_rollup_last_timestamp_seconds",
        "Start of the last usage rollup slurmdbd ran, by period",
        &["period"],
    );
    for (period, count, micros, at) in &s.rollups {
        rollups.add(&[period], *count as f64);
        rollup_time.add(&[period], *micros as f64 / 1e6);
        if *at > 0 {
            last.add(&[period], *at as f64);
        }
    }
    out.extend([rollups, rollup_time, last]);
}

impl Collector for DbdCollector {
    fn name(&self) -> &'static str {
        "dbd"
    }
    fn needs(&self) -> &'static [Source] {
        &[]
    }
    fn uses_slurmctld(&self) -> bool {
        false
    }
    fn collect(&mut self, _: &Sources, out: &mut Vec<Family>) -> Result<(), String> {
        match self.stats() {
            Ok(s) => families(Some(&s), out),
            Err(e) => {
                crate::debug!("slurmdbd statistics: {e}");
                families(None, out);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silent_slurmdbd_is_up_0_and_nothing_else() {
        let mut out = Vec::new();
        families(None, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].samples[0].value, 0.0);
        let s = DbdStats {
            since: 1_700_000_000,
            rpcs: vec![(1444, 5, 2_500_000)],
            users: vec![(0, 7, 1_000)],
            rollups: vec![("hour", 2, 3_000_000, 1_700_003_600), ("day", 0, 0, 0)],
        };
        let mut out = Vec::new();
        families(Some(&s), &mut out);
        let get = |name: &str| out.iter().find(|f| f.name == name).unwrap();
        assert_eq!(get("slurm_dbd_up").samples[0].value, 1.0);
        let time = &get("slurm_dbd_rpc_type_time_seconds_total").samples[0];
        assert_eq!((time.label_values[0].as_str(), time.value), ("1444", 2.5));
        assert_eq!(get("slurm_dbd_rpc_user_calls_total").samples[0].value, 7.0);
        // A period that never ran has no "last" time.
        assert_eq!(
            get("slurm_dbd_rollup_last_timestamp_seconds").samples.len(),
            1
        );
    }
}
