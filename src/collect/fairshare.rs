//! Fairshare from slurmctld's association manager (what sshare prints):
//! per account, and per user with `--collector.fairshare.users`, the
//! configured and normalized shares, raw and effective usage, the
//! fair-tree level and (users) the fairshare factor. One RPC per run.
//!
//! Only the multifactor priority plugin computes these; under
//! priority/basic every usage stays 0, so the collector then exports
//! nothing rather than figures that look real. Under the fair-tree
//! algorithm (the default) the fairshare factor is a user's figure and an
//! account's is its level (sshare prints FairShare empty for accounts).

use super::{Collector, Source, Sources};
use crate::metrics::Family;
use crate::slurm::{self, Association};

pub struct FairshareCollector {
    pub users: bool,
}

impl Collector for FairshareCollector {
    fn name(&self) -> &'static str {
        "fairshare"
    }
    fn needs(&self) -> &'static [Source] {
        &[Source::Config]
    }
    fn collect(&mut self, sources: &Sources, out: &mut Vec<Family>) -> Result<(), String> {
        let config = sources.config();
        if !config.computes_fairshare() {
            return Ok(());
        }
        let assocs = slurm::load_associations().map_err(|e| e.to_string())?;
        families(&assocs, self.users, config.fair_tree, out);
        Ok(())
    }
}

/// The families of the associations (accounts always, users if asked).
pub fn families(assocs: &[Association], users: bool, fair_tree: bool, out: &mut Vec<Family>) {
    let mut rows: Vec<&Association> = assocs
        .iter()
        .filter(|a| users || a.user.is_empty())
        .collect();
    rows.sort_by(|a, b| {
        (&a.account, &a.user, &a.partition).cmp(&(&b.account, &b.user, &b.partition))
    });
    let (accounts, user_rows): (Vec<&Association>, Vec<&Association>) =
        rows.into_iter().partition(|a| a.user.is_empty());
    // Names spelled out: tests/contrib_files.rs finds the dashboards'
    // metrics in the source by their literal names.
    for (names, labels, rows) in [
        (
            [
                "slurm_account_fairshare_shares",
                "slurm_account_fairshare_shares_normalized",
                "slurm_account_fairshare_raw_usage",
                "slurm_account_fairshare_effective_usage",
                "slurm_account_fairshare_level",
            ],
            &["account"][..],
            &accounts,
        ),
        (
            [
                "slurm_user_fairshare_shares",
                "slurm_user_fairshare_shares_normalized",
                "slurm_user_fairshare_raw_usage",
                "slurm_user_fairshare_effective_usage",
                "slurm_user_fairshare_level",
            ],
            &["account", "user", "partition"][..],
            &user_rows,
        ),
    ] {
        if rows.is_empty() {
            continue;
        }
        let f = |i: usize, help: &str| Family::gauge(names[i], help, labels);
        let mut shares = f(0, "Fairshare= shares set with sacctmgr (sshare's RawShares; absent for root and `parent`)");
        let mut norm = f(
            1,
            "Shares as a fraction of the siblings' (sshare's NormShares)",
        );
        let mut raw = f(
            2,
            "Decayed usage in TRES-billing seconds (sshare's RawUsage)",
        );
        let mut efctv = f(
            3,
            "Usage as a fraction of the cluster's, after decay (sshare's EffectvUsage)",
        );
        let mut level = f(4, "Fair-tree level fairshare: shares over usage among siblings (sshare's LevelFS; +Inf without usage)");
        for a in rows.iter() {
            let values: Vec<&str> = if a.user.is_empty() {
                vec![&a.account]
            } else {
                vec![&a.account, &a.user, &a.partition]
            };
            if let Some(s) = a.shares_raw {
                shares.add(&values, f64::from(s));
            }
            norm.add(&values, a.shares_norm);
            raw.add(&values, a.usage_raw);
            if let Some(e) = a.usage_efctv {
                efctv.add(&values, e);
            }
            if fair_tree && a.shares_raw.is_some() {
                level.add(&values, a.level_fs);
            }
        }
        out.extend([shares, norm, raw, efctv, level]);
    }
    // The fair-tree factor is a user's figure: sshare prints it empty for
    // accounts.
    if fair_tree && !user_rows.is_empty() {
        let mut factor = Family::gauge(
            "slurm_user_fairshare_factor",
            "Fair-tree fairshare factor a user's jobs get, 0..1 (sshare's FairShare)",
            &["account", "user", "partition"],
        );
        for a in &user_rows {
            factor.add(&[&a.account, &a.user, &a.partition], a.fs_factor);
        }
        out.push(factor);
    }
}

#[cfg(test)]
mod tests {
    use super::families;
    use crate::slurm::Association;

    fn assoc(account: &str, user: &str, shares: Option<u32>, level: f64) -> Association {
        Association {
            account: account.into(),
            user: user.into(),
            partition: String::new(),
            shares_raw: shares,
            shares_norm: 0.5,
            usage_raw: 1234.0,
            usage_efctv: Some(0.25),
            fs_factor: 0.75,
            level_fs: level,
        }
    }

    fn names(out: &[crate::metrics::Family]) -> Vec<&str> {
        out.iter().map(|f| f.name.as_str()).collect()
    }

    #[test]
    fn accounts_by_default_users_when_asked() {
        let assocs = [
            assoc("root", "", None, 1.0),
            assoc("physics", "", Some(3), f64::INFINITY),
            assoc("physics", "alice", Some(1), 2.0),
        ];
        let mut out = Vec::new();
        families(&assocs, false, true, &mut out);
        assert!(names(&out)
            .iter()
            .all(|n| n.starts_with("slurm_account_fairshare_")));
        let shares = &out[0];
        assert_eq!(shares.name, "slurm_account_fairshare_shares");
        // Root has no shares of its own, and so no level either.
        assert_eq!(shares.samples.len(), 1);
        let level = out.iter().find(|f| f.name.ends_with("_level")).unwrap();
        assert_eq!(level.samples.len(), 1);
        assert!(level.samples[0].value.is_infinite());
        // Under fair tree accounts have no factor.
        assert!(!names(&out).contains(&"slurm_account_fairshare_factor"));

        let mut out = Vec::new();
        families(&assocs, true, true, &mut out);
        let factor = out
            .iter()
            .find(|f| f.name == "slurm_user_fairshare_factor")
            .unwrap();
        assert_eq!(factor.samples.len(), 1);
        assert_eq!(factor.samples[0].value, 0.75);
    }

    #[test]
    fn level_and_factor_only_under_fair_tree() {
        let assocs = [assoc("physics", "alice", Some(1), 2.0)];
        let mut out = Vec::new();
        families(&assocs, true, false, &mut out);
        let level = out.iter().find(|f| f.name.ends_with("_level")).unwrap();
        assert!(level.samples.is_empty());
        assert!(!names(&out).contains(&"slurm_user_fairshare_factor"));
    }
}
