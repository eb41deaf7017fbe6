use super::error::SlurmError;
use super::ffi;
use super::strings::owned;

/// The few slurmctld settings the exporter needs, copied out of
/// `slurm_load_ctl_conf` (which costs one RPC, so it is loaded rarely).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    pub cluster_name: String,
    /// SlurmctldHost entries in order: index 0 is the primary.
    pub control_machines: Vec<String>,
    pub state_save_location: String,
    pub slurmctld_timeout_secs: u32,
    pub slurmctld_port: u32,
    pub accounting_storage_type: String,
    /// PriorityType, "priority/multifactor" or "priority/basic".
    pub priority_type: String,
    /// PriorityFlags has FAIR_TREE (the default since Slurm 19.05).
    pub fair_tree: bool,
    /// Last change of slurmctld's configuration.
    pub last_update: i64,
}

impl Config {
    pub fn load() -> Result<Config, SlurmError> {
        let mut conf: *mut ffi::slurm_conf_t = std::ptr::null_mut();
        // SAFETY: out-pointer, freed below.
        let rc = unsafe { ffi::slurm_load_ctl_conf(0, &mut conf) };
        if rc != 0 || conf.is_null() {
            return Err(SlurmError::last("slurm_load_ctl_conf"));
        }
        // SAFETY: conf is valid until freed; strings are copied before that.
        let out = unsafe {
            let c = &*conf;
            let mut machines = Vec::new();
            if !c.control_machine.is_null() {
                for i in 0..c.control_cnt as usize {
                    let p = *c.control_machine.add(i);
                    machines.push(owned(p));
                }
            }
            Config {
                cluster_name: owned(c.cluster_name),
                control_machines: machines,
                state_save_location: owned(c.state_save_location),
                slurmctld_timeout_secs: c.slurmctld_timeout as u32,
                slurmctld_port: c.slurmctld_port,
                accounting_storage_type: owned(c.accounting_storage_type),
                priority_type: owned(c.priority_type),
                fair_tree: u64::from(c.priority_flags) & u64::from(ffi::PRIORITY_FLAGS_FAIR_TREE)
                    != 0,
                last_update: c.last_update,
            }
        };
        // SAFETY: freed once (the call was renamed in 26.05).
        #[cfg(slurm_ge_26_05)]
        unsafe {
            ffi::slurm_free_conf(conf)
        };
        #[cfg(not(slurm_ge_26_05))]
        unsafe {
            ffi::slurm_free_ctl_conf(conf)
        };
        Ok(out)
    }

    /// Whether slurmctld computes fairshare: only the multifactor priority
    /// plugin does (with priority/basic usage stays 0), and only over
    /// associations, which come from slurmdbd. Without accounting there is
    /// nothing to ask for, and asking is dangerous: 23.11's slurmctld
    /// crashes on REQUEST_ASSOC_MGR_INFO when it has no association lists
    /// (docs/slurm-bugs.md), and multifactor is the default from 23.11 on.
    pub fn computes_fairshare(&self) -> bool {
        self.priority_type.ends_with("multifactor") && self.has_slurmdbd()
    }

    /// Whether finished jobs can be read from slurmdbd.
    pub fn has_slurmdbd(&self) -> bool {
        self.accounting_storage_type.ends_with("slurmdbd")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(priority: &str, storage: &str) -> Config {
        Config {
            cluster_name: "c".into(),
            control_machines: vec!["ctl1".into()],
            state_save_location: "/var/spool/slurmctld".into(),
            slurmctld_timeout_secs: 120,
            slurmctld_port: 6817,
            accounting_storage_type: storage.into(),
            priority_type: priority.into(),
            fair_tree: true,
            last_update: 0,
        }
    }

    #[test]
    fn fairshare_is_asked_for_only_with_multifactor_and_slurmdbd() {
        let mf = "priority/multifactor";
        assert!(config(mf, "accounting_storage/slurmdbd").computes_fairshare());
        // No accounting (a cluster without slurmdbd, 23.11's default
        // priority plugin): the RPC that crashes 23.11 is never sent.
        assert!(!config(mf, "").computes_fairshare());
        assert!(!config(mf, "accounting_storage/none").computes_fairshare());
        assert!(!config("priority/basic", "accounting_storage/slurmdbd").computes_fairshare());
    }
}
