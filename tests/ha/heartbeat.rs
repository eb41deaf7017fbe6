//! Slurm's heartbeat file stops moving while the primary's slurmctld stays
//! in control and answers: a stalled or full StateSaveLocation, an NFS
//! server that hangs one client's writes. Slurm's backup does not take
//! over (the primary answers its pings), so exactly one controller is in
//! control and its exporter must keep exporting. Before the fix both
//! daemons stood by ("no controller wrote the heartbeat within
//! SlurmctldTimeout"), an outage of the metrics for as long as the stall
//! lasted (issue #25's lead). Daemon mode only: in plugin mode slurmctld's
//! own flag decides.

use super::*;

const STATE: &str = "/var/spool/slurmctld";

/// A directory where slurmctld writes its next heartbeat (`heartbeat.new`,
/// then a rename): its open fails, the file keeps its last time, and
/// nothing else in slurmctld notices. Removed when dropped.
pub(super) struct HeartbeatBlocked;

impl HeartbeatBlocked {
    pub(super) fn new() -> Self {
        ok(&["exec", "ctl1", "mkdir", &format!("{STATE}/heartbeat.new")]);
        HeartbeatBlocked
    }
}

impl Drop for HeartbeatBlocked {
    fn drop(&mut self) {
        cluster(&["exec", "ctl1", "rmdir", &format!("{STATE}/heartbeat.new")]);
    }
}

fn heartbeat_age() -> Option<i64> {
    let (up, out) = cluster(&["heartbeat-age"]);
    up.then(|| out.trim().parse().ok()).flatten()
}

#[test]
fn a_stale_heartbeat_beside_an_answering_primary_leaves_its_exporter_active() {
    if plugin_mode() {
        eprintln!("plugin mode: slurmctld's control_time decides, not the heartbeat");
        return;
    }
    let _scenario = scenario();
    wait_until(
        "ctl1 in control, its exporter active, ctl2's standby",
        Duration::from_secs(120),
        || in_control() == Some(0) && active("ctl1") == Some(true) && active("ctl2") == Some(false),
    );
    let before = settled("ctl1");
    let blocked = HeartbeatBlocked::new();
    let stale = wait_until(
        "the heartbeat to go stale (older than SlurmctldTimeout, 10 s)",
        Duration::from_secs(60),
        || heartbeat_age().is_some_and(|a| a > 12),
    );
    // Jobs end while the heartbeat stands still: they must be counted by
    // the exporter that stays active, not wait for the stall to end.
    let since = now_in("ctl1");
    std::thread::sleep(Duration::from_secs(1));
    submit("ctl1", 4, 1);
    // Three role polls and more past the staleness, both seen from
    // inside the bed network every 100 ms.
    let s = sample_actives(Duration::from_secs(20));
    let age = heartbeat_age();
    let control = in_control();
    eprintln!(
        "heartbeat stale after {stale:?}, {age:?} s old at the end; in control: {control:?}; ctl1 active in {}/{} samples ({} answered), ctl2 in {}",
        s.active[0], s.samples, s.answered[0], s.active[1]
    );
    assert_eq!(
        control,
        Some(0),
        "Slurm's backup took over: not the case under test"
    );
    assert!(
        age.is_some_and(|a| a > 12),
        "the heartbeat moved again: {age:?}"
    );
    assert_eq!(
        s.active[1], 0,
        "ctl2's exporter went active beside ctl1 in control"
    );
    assert_eq!(
        s.active[0],
        s.samples,
        "ctl1 is in control and answers, but its exporter stood by in {} of {} samples",
        s.samples - s.active[0],
        s.samples
    );
    let (counted, _) = wait_exact("ctl1", &since, &before, 4.0, Duration::from_secs(120));
    eprintln!("jobs that ended during the stall are counted: {counted:?}");
    drop(blocked);
    wait_until(
        "the heartbeat to move again",
        Duration::from_secs(60),
        || heartbeat_age().is_some_and(|a| a <= 5),
    );
    assert_eq!(active("ctl1"), Some(true));
    assert_eq!(active("ctl2"), Some(false));
}
