//! The `hook` and `state` commands: small, no RPC, safe to run from
//! slurmctld (SlurmctldPrimaryOnProg/OffProg run as SlurmUser).

use crate::role::hook::{self, HookRecord};
use crate::role::poller::HaSettings;
use crate::role::slurm_conf;
use crate::slurm;
use crate::state::accounting as durable;
use crate::state::atomic::hostname;
use std::path::PathBuf;

fn local_conf() -> slurm_conf::LocalConf {
    let path = std::env::var("SLURM_CONF").unwrap_or_else(|_| slurm::DEFAULT_SLURM_CONF.into());
    slurm_conf::read(std::path::Path::new(&path)).unwrap_or_default()
}

fn state_dir(ha: &HaSettings, conf: &slurm_conf::LocalConf) -> Result<PathBuf, String> {
    ha.state_save_location
        .clone()
        .or_else(|| conf.state_save_location.clone())
        .ok_or_else(|| {
            "StateSaveLocation not found in slurm.conf (set SLURM_CONF or --ha.state-save-location)"
                .into()
        })
}

/// Records that this host's slurmctld entered (or left) primary mode.
pub fn hook(on: bool, ha: &HaSettings) -> Result<String, String> {
    let conf = local_conf();
    let dir = state_dir(ha, &conf)?;
    let host = hostname();
    let index = ha
        .controller_index
        .or_else(|| slurm_conf::my_index(&conf.controllers, &host))
        .ok_or_else(|| {
            format!("host {host} is not a SlurmctldHost in slurm.conf (set --ha.controller-index)")
        })?;
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    hook::write(&dir, &HookRecord { index, on, time })?;
    Ok(format!(
        "recorded primary-{} for controller {index} in {}",
        if on { "on" } else { "off" },
        hook::path(&dir).display()
    ))
}

/// `state show` prints the durable counters; `state check` only validates.
pub fn state(check: bool, ha: &HaSettings) -> Result<String, String> {
    let conf = local_conf();
    let file = durable::path(&state_dir(ha, &conf)?);
    let st = durable::inspect(&file)?;
    if check {
        return Ok(format!(
            "{}: valid (generation {}, {} jobs counted)",
            file.display(),
            st.generation,
            st.total()
        ));
    }
    let mut out = format!(
        "file:            {}\ngeneration:      {}\nlast writer:     {}\ncounting since:  {}\nwatermark:       {}\noverlap:         {} s\njobs counted:    {}\nids remembered:  {}\nawaiting partition: {}\n\n",
        file.display(),
        st.generation,
        st.writer,
        st.counting_since,
        st.watermark,
        st.overlap,
        st.total(),
        st.seen.len(),
        st.waiting.len()
    );
    out.push_str(&format!(
        "{:>8}  {:<16} {:<10} {:<14} reason\n",
        "jobs", "partition", "exit_code", "state"
    ));
    for ((p, e, r, s), n) in &st.counts {
        out.push_str(&format!("{n:>8}  {p:<16} {e:<10} {s:<14} {r}\n"));
    }
    Ok(out)
}
