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

/// `Key=value` pairs of one line as Slurm's parser reads them: spaces
/// allowed around `=`, a value in double quotes taken whole, `#` starts a
/// comment.
fn pairs(line: &str) -> Vec<(String, String)> {
    let line = line.split('#').next().unwrap_or("");
    let mut out = Vec::new();
    let mut rest = line.trim_start();
    while !rest.is_empty() {
        let key_len = rest
            .find(|c: char| c.is_whitespace() || c == '=')
            .unwrap_or(rest.len());
        let (key, after) = rest.split_at(key_len);
        let after = after.trim_start();
        let Some(value_start) = after.strip_prefix('=') else {
            // A word that is not a key: skip it.
            rest = after;
            continue;
        };
        let value_start = value_start.trim_start();
        let (value, next) = if let Some(q) = value_start.strip_prefix('"') {
            let end = q.find('"').unwrap_or(q.len());
            (&q[..end], q.get(end + 1..).unwrap_or(""))
        } else {
            let end = value_start
                .find(char::is_whitespace)
                .unwrap_or(value_start.len());
            value_start.split_at(end)
        };
        if !key.is_empty() {
            out.push((key.to_string(), value.to_string()));
        }
        rest = next.trim_start();
    }
    out
}

pub fn parse(text: &str) -> LocalConf {
    let mut c = LocalConf::default();
    let mut legacy_backup = None;
    for line in text.lines() {
        for (k, v) in pairs(line) {
            let v = v.as_str();
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
        // As Slurm reads them: spaces around `=`, quoted values.
        let spaced = parse(
            "SlurmUser = slurmadm StateSaveLocation= \"/nfs/my state\" SlurmctldTimeout =30\n",
        );
        assert_eq!(spaced.slurm_user.as_deref(), Some("slurmadm"));
        assert_eq!(
            spaced.state_save_location,
            Some(PathBuf::from("/nfs/my state"))
        );
        assert_eq!(spaced.slurmctld_timeout, Some(30));
        let legacy = parse("ControlMachine=a\nBackupController=b\n");
        assert_eq!(legacy.controllers, vec!["a", "b"]);
    }
}
