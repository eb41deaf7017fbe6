//! `slurm-ha-exporter setup`: what every install path does once the files
//! are in place (the .deb's postinst, the .rpm's %post, the tarball's
//! install.sh), written once. The service must run as slurm.conf's
//! SlurmUser, never root, and may write only <StateSaveLocation>/ha_exporter;
//! a unit cannot read slurm.conf, so this writes both into a drop-in,
//! `slurm-ha-exporter.service.d/user.conf`, and creates that directory owned
//! by that user. Run again after changing SlurmUser, StateSaveLocation or
//! the flags; `setup --remove` takes the drop-in away (purge), never the
//! state: the counters are shared with the other controllers and the plugin.

use crate::role::slurm_conf;
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Where the unit reads its flags: Debian's and EL's place, both listed in
/// the unit (a missing one is skipped, the later one wins).
pub const ENVIRONMENT_FILES: &[&str] = &[
    "/etc/default/slurm-ha-exporter",
    "/etc/sysconfig/slurm-ha-exporter",
];
pub const DROPIN_DIR: &str = "/etc/systemd/system/slurm-ha-exporter.service.d";
/// Slurm's built-in StateSaveLocation.
const DEFAULT_STATE: &str = "/var/spool/slurmctld";

#[derive(Debug, Clone, PartialEq)]
pub struct SetupArgs {
    pub environment_files: Vec<PathBuf>,
    pub dropin_dir: PathBuf,
    pub remove: bool,
}

impl Default for SetupArgs {
    fn default() -> Self {
        SetupArgs {
            environment_files: ENVIRONMENT_FILES.iter().map(PathBuf::from).collect(),
            dropin_dir: DROPIN_DIR.into(),
            remove: false,
        }
    }
}

/// A systemd EnvironmentFile (what the unit reads, so what counts):
/// KEY=VALUE lines, `#` and `;` comment lines, a value in double or single
/// quotes taken whole (backslash escapes in double quotes).
pub fn parse_environment(text: &str) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        let value = if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') {
            let mut out = String::new();
            let mut chars = value[1..value.len() - 1].chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => out.extend(chars.next()),
                    c => out.push(c),
                }
            }
            out
        } else if value.len() >= 2 && value.starts_with('\'') && value.ends_with('\'') {
            value[1..value.len() - 1].to_string()
        } else {
            value.to_string()
        };
        vars.insert(key.trim().to_string(), value);
    }
    vars
}

/// A user as the system resolves it (NSS: local files, LDAP, SSSD).
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub user: String,
    pub uid: u32,
    pub group: String,
    pub gid: u32,
}

/// `getent passwd USER` and `getent group GID`: NSS as every tool sees it,
/// no libc lookup to get wrong. None when the user does not exist.
pub fn lookup(user: &str) -> Option<Account> {
    let getent = |db: &str, key: &str| -> Option<String> {
        let out = std::process::Command::new("getent")
            .args([db, key])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| {
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .next()
                    .map(str::to_string)
            })
            .flatten()
    };
    let pw = getent("passwd", user)?;
    let f: Vec<&str> = pw.split(':').collect();
    let (uid, gid): (u32, u32) = (f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?);
    let group = getent("group", &gid.to_string())
        .and_then(|g| g.split(':').next().map(str::to_string))
        .unwrap_or_else(|| gid.to_string());
    Some(Account {
        user: f[0].to_string(),
        uid,
        group,
        gid,
    })
}

/// What setup will do, decided from the files before anything is touched.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub slurm_conf: PathBuf,
    /// The user the service runs as; its account, when it exists.
    pub user: String,
    pub account: Option<Account>,
    pub state_save_location: PathBuf,
    pub warnings: Vec<String>,
}

impl Plan {
    /// The directory the service may write.
    pub fn dir(&self) -> PathBuf {
        self.state_save_location.join("ha_exporter")
    }

    pub fn dropin(&self, sources: &str) -> String {
        let group = self.account.as_ref().map_or(&self.user, |a| &a.group);
        format!(
            "# Written by `slurm-ha-exporter setup` from {} (SlurmUser,\n\
             # StateSaveLocation) and {sources}; rewritten\n\
             # each time the package is configured. After changing those, run\n\
             # slurm-ha-exporter setup (as root), then restart the service.\n\
             # Your own settings belong in another file here (systemctl edit\n\
             # slurm-ha-exporter writes override.conf, which is read after this one).\n\
             [Service]\nUser={}\nGroup={group}\nReadWritePaths=\"{}\"\n",
            self.slurm_conf.display(),
            self.user,
            self.dir().display()
        )
    }
}

/// slurm.conf as the service finds it: SLURM_CONF from its flags file (the
/// environment of whoever runs setup does not reach the service).
fn conf_path(env: &BTreeMap<String, String>) -> PathBuf {
    PathBuf::from(
        env.get("SLURM_CONF")
            .filter(|s| !s.is_empty())
            .map_or(crate::slurm::DEFAULT_SLURM_CONF, String::as_str),
    )
}

/// Decides user and directory from the flags' environment (the unit's) and
/// slurm.conf's text (None: not readable).
pub fn plan(
    env: &BTreeMap<String, String>,
    conf_text: Option<&str>,
    lookup: impl Fn(&str) -> Option<Account>,
) -> Plan {
    let mut warnings = Vec::new();
    let slurm_conf = conf_path(env);
    let conf = conf_text.map(slurm_conf::parse).unwrap_or_default();
    if conf_text.is_none() {
        warnings.push(format!(
            "{} not found: using SlurmUser=slurm and Slurm's default StateSaveLocation",
            slurm_conf.display()
        ));
    }
    let mut user = match conf.slurm_user.as_deref() {
        None | Some("") => "slurm".to_string(),
        Some("root") => {
            warnings.push(format!(
                "SlurmUser is root in {}; the exporter never runs as root: using slurm (it cannot read a heartbeat file that only root can read)",
                slurm_conf.display()
            ));
            "slurm".to_string()
        }
        Some(u) => u.to_string(),
    };
    let mut account = lookup(&user);
    if account.as_ref().is_some_and(|a| a.uid == 0) {
        warnings.push(format!(
            "SlurmUser {user} is uid 0 (root); the exporter never runs as root: using slurm"
        ));
        user = "slurm".to_string();
        account = lookup(&user).filter(|a| a.uid != 0);
    }
    if account.is_none() {
        warnings.push(format!(
            "user {user} does not exist (Slurm's packages create it); the service cannot start before it does"
        ));
    }
    // --ha.state-save-location in the flags overrides slurm.conf. The unit
    // splits $SLURM_HA_EXPORTER_ARGS at white space; so does this.
    let args = env
        .get("SLURM_HA_EXPORTER_ARGS")
        .map(|a| a.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .unwrap_or_default();
    let from_flags = match crate::cli::parse(args) {
        Ok(crate::cli::Command::Run(s)) => s.ha.state_save_location,
        Ok(_) => {
            warnings.push(
                "SLURM_HA_EXPORTER_ARGS holds a command, not flags: the service will not start"
                    .into(),
            );
            None
        }
        Err(e) => {
            warnings.push(format!(
                "SLURM_HA_EXPORTER_ARGS: {e}: the service will not start until it is fixed"
            ));
            None
        }
    };
    // An empty value means none given; systemd ignores a relative
    // ReadWritePaths=, so one is said.
    let given = |p: Option<PathBuf>| p.filter(|p| !p.as_os_str().is_empty());
    let state = given(from_flags)
        .or(given(conf.state_save_location))
        .unwrap_or_else(|| DEFAULT_STATE.into());
    if state.is_relative() {
        warnings.push(format!(
            "StateSaveLocation {} is not an absolute path: the service cannot be given it",
            state.display()
        ));
    }
    // "/var/spool/slurmctld/" and "/var/spool/slurmctld" are one directory.
    let state = PathBuf::from(state.to_string_lossy().trim_end_matches('/')).to_path_buf();
    let state = if state.as_os_str().is_empty() {
        PathBuf::from("/")
    } else {
        state
    };
    Plan {
        slurm_conf,
        user,
        account,
        state_save_location: state,
        warnings,
    }
}

/// Files under `dir` (itself included) not owned by `uid`:`gid`, depth
/// first; symbolic links are not followed. Only looked at: the change is
/// `chown -R -P`'s, which works through open directories, so a link swapped
/// in meanwhile cannot redirect it (SlurmUser owns the parent).
fn foreign_files(dir: &Path, uid: u32, gid: u32, out: &mut Vec<PathBuf>) {
    let Ok(meta) = std::fs::symlink_metadata(dir) else {
        return;
    };
    if meta.uid() != uid || meta.gid() != gid {
        out.push(dir.to_path_buf());
    }
    if meta.is_dir() {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            foreign_files(&entry.path(), uid, gid, out);
        }
    }
}

/// Runs a coreutils command; its error output is the message.
fn coreutils(program: &str, args: &[&std::ffi::OsStr]) -> Result<(), String> {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// `install -d` with owner and mode, as the packages' scripts always did.
fn create_dir(path: &Path, mode: &str, a: &Account) -> Result<(), String> {
    let (uid, gid) = (a.uid.to_string(), a.gid.to_string());
    coreutils(
        "install",
        &[
            "-d".as_ref(),
            "-o".as_ref(),
            uid.as_ref(),
            "-g".as_ref(),
            gid.as_ref(),
            "-m".as_ref(),
            mode.as_ref(),
            path.as_os_str(),
        ],
    )
}

/// Carries the plan out: the directories (StateSaveLocation only if missing,
/// as slurmctld needs it; an existing one is left as it is), the files in
/// ours given back to the user, the drop-in written by rename. Returns what
/// to tell the admin; problems that leave the service unable to save its
/// counters are in the warnings, and the install goes on (a package script
/// that fails leaves a half-configured package for a directory the admin
/// can fix by hand).
pub fn apply(plan: &Plan, dropin_dir: &Path, sources: &str) -> Result<Vec<String>, String> {
    let mut said = plan.warnings.clone();
    let dir = plan.dir();
    if let Some(a) = &plan.account {
        let state = &plan.state_save_location;
        if !state.is_dir() {
            if let Err(e) = create_dir(state, "0755", a) {
                said.push(format!(
                    "cannot create {} (StateSaveLocation): {e}",
                    state.display()
                ));
            }
        }
        if !dir.is_dir() {
            if let Err(e) = create_dir(&dir, "0750", a) {
                said.push(format!(
                    "cannot create {}: {e}: create it (owner {}, mode 0750) before starting the service",
                    dir.display(),
                    a.user
                ));
            }
        }
        // The directory is ours and the service writes it as that user:
        // whatever else owns something in it (a run as root to try it out,
        // a restore) would stop the counters being saved. Take it back.
        let mut foreign = Vec::new();
        foreign_files(&dir, a.uid, a.gid, &mut foreign);
        if !foreign.is_empty() {
            let owner = format!("{}:{}", a.uid, a.gid);
            let examples: Vec<String> = foreign
                .iter()
                .take(5)
                .map(|p| p.display().to_string())
                .collect();
            match coreutils(
                "chown",
                &["-R".as_ref(), "-P".as_ref(), owner.as_ref(), dir.as_os_str()],
            ) {
                Ok(()) => said.push(format!(
                    "{} had files not owned by {}:{} (e.g. {}); now theirs",
                    dir.display(),
                    a.user,
                    a.group,
                    examples.join(" ")
                )),
                Err(e) => said.push(format!(
                    "files in {} are not owned by {} and chown failed ({e}; NFS root_squash?): chown -R {}:{} {} where it can be done",
                    dir.display(),
                    a.user,
                    a.user,
                    a.group,
                    dir.display()
                )),
            }
        }
    }
    std::fs::create_dir_all(dropin_dir)
        .map_err(|e| format!("cannot create {}: {e}", dropin_dir.display()))?;
    let path = dropin_dir.join("user.conf");
    let tmp = dropin_dir.join("user.conf.new");
    // Written, synced, then renamed: a crash leaves the old drop-in or the
    // new one, never half of one.
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut f, plan.dropin(sources).as_bytes())?;
        f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let group = plan.account.as_ref().map_or(&plan.user, |a| &a.group);
    said.push(format!(
        "runs as {}:{group}, writes {} ({})",
        plan.user,
        dir.display(),
        path.display()
    ));
    Ok(said)
}

/// Removes what `apply` wrote under the drop-in directory.
pub fn remove(dropin_dir: &Path) -> Result<Vec<String>, String> {
    for f in ["user.conf", "user.conf.new"] {
        match std::fs::remove_file(dropin_dir.join(f)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(format!(
                    "cannot remove {}: {e}",
                    dropin_dir.join(f).display()
                ))
            }
        }
    }
    // Only if empty: an admin's override.conf stays.
    let _ = std::fs::remove_dir(dropin_dir);
    Ok(vec![format!("removed {}/user.conf", dropin_dir.display())])
}

/// The `setup` command. Messages go to stderr prefixed as package scripts
/// print them; the exit status is 1 only when the drop-in could not be
/// written.
pub fn run(args: &SetupArgs) -> Result<Vec<String>, String> {
    if args.remove {
        return remove(&args.dropin_dir);
    }
    let mut env = BTreeMap::new();
    let mut read = Vec::new();
    for f in &args.environment_files {
        if let Ok(text) = std::fs::read_to_string(f) {
            env.extend(parse_environment(&text));
            read.push(f.display().to_string());
        }
    }
    let sources = if read.is_empty() {
        "no flags file".to_string()
    } else {
        read.join(", ")
    };
    let conf_text = std::fs::read_to_string(conf_path(&env)).ok();
    let p = plan(&env, conf_text.as_deref(), lookup);
    apply(&p, &args.dropin_dir, &sources)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// An account the test may give files to: its own, or (as root, which
    /// setup refuses as SlurmUser) nobody's.
    fn me() -> Account {
        let meta = std::fs::metadata("/proc/self").unwrap();
        let (uid, gid) = if meta.uid() == 0 {
            (65534, 65534)
        } else {
            (meta.uid(), meta.gid())
        };
        Account {
            user: "slurm".into(),
            uid,
            group: "slurm".into(),
            gid,
        }
    }

    #[test]
    fn environment_files_are_read_as_systemd_reads_them() {
        let e = parse_environment(
            "# flags\n; also a comment\nSLURM_HA_EXPORTER_ARGS=\"--log.level=debug  --ha.state-save-location=/nfs/s\"\n\
             SLURM_CONF='/etc/slurm-llnl/slurm.conf'\n  PLAIN = a b \nESC=\"say \\\"hi\\\"\"\nnot a line\n",
        );
        assert_eq!(
            e["SLURM_HA_EXPORTER_ARGS"],
            "--log.level=debug  --ha.state-save-location=/nfs/s"
        );
        assert_eq!(e["SLURM_CONF"], "/etc/slurm-llnl/slurm.conf");
        assert_eq!(e["PLAIN"], "a b");
        assert_eq!(e["ESC"], "say \"hi\"");
        assert_eq!(e.len(), 4);
    }

    #[test]
    fn the_user_and_directory_come_from_slurm_conf_and_the_flags() {
        let conf = "SlurmUser=slurmadm # ours\nStateSaveLocation=/sched/c1/spool/slurmctld/\n";
        let known = |u: &str| {
            (u == "slurmadm").then(|| Account {
                user: u.into(),
                uid: 500,
                group: "slurmgrp".into(),
                gid: 501,
            })
        };
        let p = plan(&env(&[]), Some(conf), known);
        assert_eq!(p.user, "slurmadm");
        assert_eq!(
            p.dir(),
            PathBuf::from("/sched/c1/spool/slurmctld/ha_exporter")
        );
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        let d = p.dropin("/etc/default/slurm-ha-exporter");
        assert!(d.contains("\nUser=slurmadm\nGroup=slurmgrp\n"), "{d}");
        assert!(d.contains("ReadWritePaths=\"/sched/c1/spool/slurmctld/ha_exporter\""));

        // The flag wins over slurm.conf.
        let flags = env(&[(
            "SLURM_HA_EXPORTER_ARGS",
            "--log.level=info --ha.state-save-location /srv/state",
        )]);
        assert_eq!(
            plan(&flags, Some(conf), known).dir(),
            PathBuf::from("/srv/state/ha_exporter")
        );
    }

    #[test]
    fn root_a_missing_user_a_missing_conf_and_bad_flags_are_said() {
        let none = |_: &str| None;
        let p = plan(&env(&[]), Some("SlurmUser=root\n"), none);
        assert_eq!(p.user, "slurm");
        assert!(
            p.warnings[0].contains("never runs as root"),
            "{:?}",
            p.warnings
        );
        assert!(p.warnings[1].contains("user slurm does not exist"));

        // Root by another name is root too.
        let uid0 = |u: &str| {
            Some(Account {
                user: u.into(),
                uid: if u == "toor" { 0 } else { 64030 },
                group: u.into(),
                gid: 64030,
            })
        };
        let p = plan(&env(&[]), Some("SlurmUser=toor\n"), uid0);
        assert_eq!(
            (p.user.as_str(), p.account.as_ref().unwrap().uid),
            ("slurm", 64030)
        );
        assert!(p.warnings[0].contains("uid 0"), "{:?}", p.warnings);
        // An empty flag value is refused (by the daemon too) and said;
        // slurm.conf's directory is the one set up.
        let empty = env(&[("SLURM_HA_EXPORTER_ARGS", "--ha.state-save-location=")]);
        let p = plan(&empty, Some("StateSaveLocation=/s\n"), uid0);
        assert_eq!(p.dir(), PathBuf::from("/s/ha_exporter"));
        assert!(p.warnings[0].contains("absolute"), "{:?}", p.warnings);

        let p = plan(&env(&[("SLURM_CONF", "/x/slurm.conf")]), None, none);
        assert_eq!(p.slurm_conf, PathBuf::from("/x/slurm.conf"));
        assert_eq!(p.dir(), PathBuf::from("/var/spool/slurmctld/ha_exporter"));
        assert!(p.warnings[0].contains("/x/slurm.conf not found"));

        let p = plan(
            &env(&[("SLURM_HA_EXPORTER_ARGS", "--no-such-flag")]),
            Some(""),
            |_: &str| Some(me()),
        );
        assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
        assert!(p.warnings[0].contains("will not start"), "{:?}", p.warnings);
    }

    #[test]
    fn apply_creates_the_directory_writes_the_dropin_and_remove_takes_it_away() {
        let root = std::env::temp_dir().join(format!("setup-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let state = root.join("spool/slurmctld");
        let conf = format!("StateSaveLocation={}\n", state.display());
        let p = plan(&env(&[]), Some(&conf), |_: &str| Some(me()));
        let dropins = root.join("etc/slurm-ha-exporter.service.d");
        let said = apply(&p, &dropins, "test").unwrap();
        assert!(
            said.last().unwrap().starts_with("runs as slurm:slurm"),
            "{said:?}"
        );
        let meta = std::fs::metadata(p.dir()).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o750);
        assert_eq!(meta.uid(), me().uid);
        let text = std::fs::read_to_string(dropins.join("user.conf")).unwrap();
        assert_eq!(text, p.dropin("test"));
        // Again: the same drop-in, nothing more to say.
        assert_eq!(apply(&p, &dropins, "test").unwrap(), said);

        // An admin's override stays; ours goes.
        std::fs::write(dropins.join("override.conf"), "[Service]\n").unwrap();
        remove(&dropins).unwrap();
        assert!(!dropins.join("user.conf").exists());
        assert!(dropins.join("override.conf").exists());
        let _ = std::fs::remove_dir_all(&root);
    }
}
