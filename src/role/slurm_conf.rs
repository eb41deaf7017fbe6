//! The settings the role check needs, read from the local slurm.conf
//! without an RPC: StateSaveLocation and the controller list (and SlurmUser,
//! for `setup`). Reading the
//! file works while no controller answers and inside SlurmctldPrimaryOnProg,
//! when the new controller may not serve RPCs yet. `Include` lines are not
//! followed; configless clusters use the RPC configuration instead.

use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LocalConf {
    pub state_save_location: Option<PathBuf>,
    /// SlurmctldHost (or ControlMachine, BackupController) names, in order.
    pub controllers: Vec<String>,
    pub slurmctld_timeout: Option<i64>,
    /// SlurmUser, without a "(uid)" suffix.
    pub slurm_user: Option<String>,
}

pub fn parse(text: &str) -> LocalConf {
    let mut c = LocalConf::default();
    let mut legacy_backup = None;
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        for item in line.split_whitespace() {
            let Some((k, v)) = item.split_once('=') else {
                continue;
            };
            match k.to_ascii_lowercase().as_str() {
                "statesavelocation" => c.state_save_location = Some(PathBuf::from(v)),
                // "ctl1(10.0.0.1)" or "ctl1,ctl1-alt(10.0.0.1)": the name is what
                // a controller compares with its hostname.
                "slurmctldhost" | "controlmachine" => c
                    .controllers
                    .push(v.split(['(', ',']).next().unwrap_or(v).to_string()),
                "backupcontroller" => legacy_backup = Some(v.to_string()),
                "slurmctldtimeout" => c.slurmctld_timeout = v.parse().ok(),
                "slurmuser" => c.slurm_user = Some(v.split('(').next().unwrap_or(v).to_string()),
                _ => {}
            }
        }
    }
    if let Some(b) = legacy_backup {
        c.controllers.push(b);
    }
    c
}

pub fn read(path: &Path) -> Result<LocalConf, String> {
    std::fs::read_to_string(path)
        .map(|t| parse(&t))
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// This host's index among the controllers, by short hostname.
pub fn my_index(controllers: &[String], hostname: &str) -> Option<u32> {
    let short = hostname.split('.').next().unwrap_or(hostname);
    controllers
        .iter()
        .position(|c| c == hostname || c == short)
        .map(|i| i as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_controllers_and_state_dir() {
        let c = parse("ClusterName=x\nSlurmctldHost=ctl1(10.0.0.1)\nslurmctldhost=ctl2 # backup\nStateSaveLocation=/nfs/state\nSlurmctldTimeout=10\n");
        assert_eq!(c.controllers, vec!["ctl1", "ctl2"]);
        assert_eq!(c.state_save_location, Some(PathBuf::from("/nfs/state")));
        assert_eq!(c.slurmctld_timeout, Some(10));
        assert_eq!(c.slurm_user, None);
        assert_eq!(
            parse("SlurmUser=slurm(64030)").slurm_user.as_deref(),
            Some("slurm")
        );
        assert_eq!(my_index(&c.controllers, "ctl2.cluster.local"), Some(1));
        assert_eq!(my_index(&c.controllers, "login1"), None);
        let legacy = parse("ControlMachine=a\nBackupController=b\n");
        assert_eq!(legacy.controllers, vec!["a", "b"]);
    }
}
