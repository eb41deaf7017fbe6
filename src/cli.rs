//! Command line, in the Prometheus exporters' flag style:
//! `--web.listen-address=:9101`, `--collector.<name>`, `--no-collector.<name>`,
//! `--collector.<name>.interval=15s`, `--log.level=info`.

use crate::collect::{self, Options, KNOWN};
use crate::log::Level;
use crate::role::poller::HaSettings;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Run(Settings),
    CollectOnce(Settings),
    /// `hook primary-on|primary-off`, for SlurmctldPrimaryOnProg/OffProg.
    Hook {
        on: bool,
        ha: HaSettings,
    },
    /// `state show|check`.
    State {
        check: bool,
        ha: HaSettings,
    },
    /// `accounting-jobs --cluster C --start T --end T`: the plugin's helper
    /// (see collect::finished_jobs); prints finished jobs, one per line.
    AccountingJobs {
        cluster: String,
        start: i64,
        end: i64,
    },
    /// `setup [--remove]`: the install scripts' work (see setup.rs).
    Setup(crate::setup::SetupArgs),
    /// `record DIR`: the cluster state and the families made of it, for
    /// tests/golden.rs (see collect::record).
    Record(std::path::PathBuf),
    Version,
    Help,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub listen_address: String,
    pub telemetry_path: String,
    /// --web.config.file: TLS, basic auth, headers, rate limit.
    pub web_config: Option<std::path::PathBuf>,
    /// Enabled collectors with their intervals, in KNOWN order.
    pub collectors: Vec<(&'static str, Duration)>,
    pub log_level: Level,
    pub log_json: bool,
    pub options: OptionsEq,
    pub ha: HaSettings,
}

/// collect::Options, comparable for tests.
#[derive(Debug, Clone, Default)]
pub struct OptionsEq(pub Options);
impl PartialEq for OptionsEq {
    fn eq(&self, o: &Self) -> bool {
        format!("{:?}", self.0) == format!("{:?}", o.0)
    }
}

pub const USAGE: &str = "\
usage: slurm-ha-exporter [run] [flags]      serve metrics (the daemon)
       slurm-ha-exporter collect --once [flags]   print one exposition and exit
       slurm-ha-exporter hook primary-on|primary-off   (SlurmctldPrimaryOnProg/OffProg)
       slurm-ha-exporter state show|check   the finished-jobs counters' durable state
       slurm-ha-exporter setup [--remove]   (as root) the service's user and state directory, from
                                     slurm.conf and the flags file; run by the packages' install scripts
       slurm-ha-exporter accounting-jobs --cluster C --start T --end T   (the plugin's slurmdbd helper)
       slurm-ha-exporter record DIR   write jobs, nodes and partitions as records and the families made of them (tests)
       slurm-ha-exporter version

flags:
  --web.listen-address=ADDR        where to listen (default :9101)
  --web.telemetry-path=PATH        metrics path (default /metrics)
  --web.config.file=FILE           TLS, basic auth, headers, rate limit (exporter-toolkit format)
  --collector.NAME / --no-collector.NAME      enable / disable a collector
  --collector.NAME.interval=DUR    how often it runs (e.g. 15s, 2m)
  --collector.scheduler.rpc-users  also export RPC counts per user (top 50)
  --collector.fairshare.users      also export fairshare per user association (one series per association and family)
  --no-collector.nodes.per-node    no per-node series (slurm_node_*{node}, slurm_node_info); totals stay
  --collector.nodes.reason-max-length=N   cut node reasons in labels to N characters (default 128)
  --collector.accounts.top=N, --collector.users.top=N   accounts / users with series of their own (default 50; the rest: other)
  --collector.accounting.lookback=DUR   count jobs that ended this long before start (default 0s)
  --collector.accounting.overlap=DUR    each slurmdbd query reaches this far behind the last (default 5m,
                                        30s to 1h; a longer one is reached step by step, see docs/counting.md)
  --collector.accounting.helper=PATH    plugin mode: this program (slurm-ha-exporter) asks slurmdbd
  --collector.cyclecloud.azslurm-path=PATH, --collector.cyclecloud.jetpack-path=PATH
  --ha.poll-interval=DUR           how often the role is checked (default 5s)
  --ha.handover-delay=DUR          after a failback, stand by this long once the other exporter
                                   withdrew (default 15s; at least Prometheus' scrape interval)
  --ha.state-save-location=DIR     override slurm.conf's StateSaveLocation
  --ha.controller-index=N          this host's SlurmctldHost index (default: by hostname)
  --log.level=debug|info|warn|error    (default info)
  --log.format=logfmt|json             (default logfmt)

Slurm's configuration is found like every Slurm client finds it: SLURM_CONF,
else /etc/slurm/slurm.conf.

collectors (default on unless marked):";

pub fn usage() -> String {
    let mut s = USAGE.to_string();
    for k in KNOWN {
        s.push_str(&format!(
            "\n  {:<13} every {:>4}s  {}{}",
            k.name,
            k.default_interval.as_secs(),
            k.help,
            if k.enabled_by_default {
                ""
            } else {
                " (off by default)"
            }
        ));
    }
    s.push('\n');
    s
}

/// "15s", "2m", "1h", "500ms", or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("bad duration {s:?} (use e.g. 500ms, 15s, 2m, 1h)");
    let (num, mult_ms) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60_000)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3_600_000)
    } else {
        (s, 1000)
    };
    let n: u64 = num.parse().map_err(|_| bad())?;
    Ok(Duration::from_millis(
        n.checked_mul(mult_ms).ok_or_else(bad)?,
    ))
}

pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Command, String> {
    let mut args: Vec<String> = args.into_iter().collect();
    // `slurm-ha-exporter run --help`, `state check --version`: an admin
    // asking for help gets it whatever else the line holds.
    if args.iter().any(|a| a == "--help" || a == "-h") {
        return Ok(Command::Help);
    }
    if args.iter().any(|a| a == "--version") {
        return Ok(Command::Version);
    }
    let sub = match args.first().map(String::as_str) {
        Some("run") => {
            args.remove(0);
            "run"
        }
        Some("collect") => {
            args.remove(0);
            "collect"
        }
        Some("hook") | Some("state") => {
            let cmd = args.remove(0);
            let what = if args.is_empty() {
                String::new()
            } else {
                args.remove(0)
            };
            let ha = parse_ha_only(&args)?;
            return match (cmd.as_str(), what.as_str()) {
                ("hook", "primary-on") => Ok(Command::Hook { on: true, ha }),
                ("hook", "primary-off") => Ok(Command::Hook { on: false, ha }),
                ("state", "show") => Ok(Command::State { check: false, ha }),
                ("state", "check") => Ok(Command::State { check: true, ha }),
                (c, w) => Err(format!(
                    "unknown {c} action {w:?} (hook primary-on|primary-off, state show|check)"
                )),
            };
        }
        Some("accounting-jobs") => return parse_accounting_jobs(&args[1..]),
        Some("setup") => return parse_setup(&args[1..]),
        Some("record") => {
            return match &args[1..] {
                [dir] if !dir.starts_with('-') => Ok(Command::Record(dir.into())),
                _ => Err("record needs one argument: the directory to write".into()),
            }
        }
        Some("version") | Some("--version") => return Ok(Command::Version),
        Some("help") | Some("--help") | Some("-h") => return Ok(Command::Help),
        Some(a) if !a.starts_with("--") => {
            return Err(format!("unknown command {a:?}; see --help"))
        }
        _ => "run",
    };

    let mut enabled: Vec<bool> = KNOWN.iter().map(|k| k.enabled_by_default).collect();
    let mut intervals: Vec<Duration> = KNOWN.iter().map(|k| k.default_interval).collect();
    let mut listen = ":9101".to_string();
    let mut path = "/metrics".to_string();
    let mut web_config = None;
    let mut level = Level::Info;
    let mut json = false;
    let mut once = false;
    let mut opts = collect::Options::default();
    let mut ha = HaSettings::default();

    let mut i = 0;
    while i < args.len() {
        let arg = args[i].clone();
        i += 1;
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        // Flags that take a value accept "--flag=v" and "--flag v".
        let mut value = |name: &str| -> Result<String, String> {
            if let Some(v) = inline.clone() {
                return Ok(v);
            }
            if i < args.len() && !args[i].starts_with("--") {
                i += 1;
                return Ok(args[i - 1].clone());
            }
            Err(format!("flag {name} needs a value"))
        };
        match flag.as_str() {
            "--once" if sub == "collect" => once = true,
            "--web.listen-address" => listen = value(&flag)?,
            "--web.config.file" => web_config = Some(value(&flag)?.into()),
            "--web.telemetry-path" => {
                path = value(&flag)?;
                if !path.starts_with('/') {
                    return Err(format!(
                        "--web.telemetry-path must start with '/': {path:?}"
                    ));
                }
            }
            "--log.level" => {
                let v = value(&flag)?;
                level = Level::parse(&v)
                    .ok_or_else(|| format!("bad --log.level {v:?} (debug, info, warn, error)"))?;
            }
            "--log.format" => match value(&flag)?.as_str() {
                "logfmt" => json = false,
                "json" => json = true,
                v => return Err(format!("bad --log.format {v:?} (logfmt, json)")),
            },
            "--ha.poll-interval" => {
                ha.poll = parse_duration(&value(&flag)?)?;
                if ha.poll < Duration::from_secs(1) {
                    return Err("--ha.poll-interval must be at least 1s".into());
                }
            }
            "--ha.handover-delay" => ha.handover_delay = parse_duration(&value(&flag)?)?,
            "--ha.state-save-location" => {
                let v = value(&flag)?;
                if !v.starts_with('/') {
                    return Err(format!(
                        "--ha.state-save-location must be an absolute directory, not {v:?}"
                    ));
                }
                ha.state_save_location = Some(v.into());
            }
            "--ha.controller-index" => {
                let v = value(&flag)?;
                ha.controller_index = Some(
                    v.parse()
                        .map_err(|_| format!("bad --ha.controller-index {v:?}"))?,
                );
            }
            "--collector.scheduler.rpc-users" => opts.scheduler_rpc_users = true,
            "--collector.fairshare.users" => opts.fairshare_users = true,
            "--collector.nodes.per-node" => opts.nodes_per_node = true,
            "--no-collector.nodes.per-node" => opts.nodes_per_node = false,
            "--collector.nodes.reason-max-length" => {
                let v = value(&flag)?;
                opts.reason_max_chars = v
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("bad --collector.nodes.reason-max-length {v:?} (a number of characters, 1 or more)"))?;
            }
            "--collector.accounts.top" | "--collector.users.top" => {
                let v = value(&flag)?;
                let n = v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    format!("bad {flag} {v:?} (a number of accounts or users, 1 or more)")
                })?;
                if flag == "--collector.accounts.top" {
                    opts.accounts_top = n;
                } else {
                    opts.users_top = n;
                }
            }
            "--collector.accounting.lookback" => {
                opts.accounting_lookback = parse_duration(&value(&flag)?)?
            }
            "--collector.accounting.overlap" => {
                let d = parse_duration(&value(&flag)?)?;
                if d < Duration::from_secs(30) {
                    return Err(format!(
                        "{flag} must be at least 30s: records that reach slurmdbd later than the overlap, while slurmctld shows nothing queued, would be missed"
                    ));
                }
                if d > Duration::from_secs(3600) {
                    return Err(format!(
                        "{flag} must be at most 1h: every query reaches back that far and the state file remembers every job ended in it"
                    ));
                }
                opts.accounting_overlap = d
            }
            "--collector.accounting.helper" => opts.accounting_helper = Some(value(&flag)?.into()),
            "--collector.cyclecloud.azslurm-path" => opts.azslurm_path = Some(value(&flag)?),
            "--collector.cyclecloud.jetpack-path" => opts.jetpack_path = Some(value(&flag)?),
            f => {
                if let Some(name) = f.strip_prefix("--no-collector.") {
                    enabled[index_of(name)?] = false;
                } else if let Some(rest) = f.strip_prefix("--collector.") {
                    if let Some(name) = rest.strip_suffix(".interval") {
                        let d = parse_duration(&value(&flag)?)?;
                        if d < Duration::from_secs(1) {
                            return Err(format!("{flag}: interval must be at least 1s"));
                        }
                        intervals[index_of(name)?] = d;
                    } else {
                        enabled[index_of(rest)?] = true;
                    }
                } else {
                    return Err(format!("unknown flag {arg:?}; see --help"));
                }
            }
        }
    }
    if sub == "collect" && !once {
        return Err("collect needs --once".into());
    }
    let collectors = KNOWN
        .iter()
        .enumerate()
        .filter(|(i, _)| enabled[*i])
        .map(|(i, k)| (k.name, intervals[i]))
        .collect();
    let settings = Settings {
        listen_address: normalize_listen(&listen)?,
        telemetry_path: path,
        web_config,
        collectors,
        log_level: level,
        log_json: json,
        options: OptionsEq(opts),
        ha,
    };
    Ok(if sub == "collect" {
        Command::CollectOnce(settings)
    } else {
        Command::Run(settings)
    })
}

fn parse_accounting_jobs(args: &[String]) -> Result<Command, String> {
    let (mut cluster, mut start, mut end) = (None, None, None);
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let v = it
            .next()
            .ok_or_else(|| format!("accounting-jobs: {flag} needs a value"))?;
        let time = || {
            v.parse::<i64>()
                .map_err(|_| format!("accounting-jobs: bad time {v:?} for {flag}"))
        };
        match flag.as_str() {
            "--cluster" => cluster = Some(v.clone()),
            "--start" => start = Some(time()?),
            "--end" => end = Some(time()?),
            _ => return Err(format!("accounting-jobs: unknown flag {flag:?}")),
        }
    }
    match (cluster, start, end) {
        (Some(cluster), Some(start), Some(end)) => Ok(Command::AccountingJobs {
            cluster,
            start,
            end,
        }),
        _ => Err("accounting-jobs needs --cluster NAME --start UNIXTIME --end UNIXTIME".into()),
    }
}

/// The --ha.* flags alone (for `hook` and `state`).
/// `setup [--remove] [--environment-file=F]... [--dropin-dir=D]` (the last
/// two for tests and unusual layouts).
fn parse_setup(args: &[String]) -> Result<Command, String> {
    let mut s = crate::setup::SetupArgs::default();
    let mut files = Vec::new();
    for a in args {
        if a == "--remove" {
            s.remove = true;
        } else if let Some(f) = a.strip_prefix("--environment-file=") {
            files.push(f.into());
        } else if let Some(d) = a.strip_prefix("--dropin-dir=") {
            s.dropin_dir = d.into();
        } else {
            return Err(format!(
                "setup: unknown argument {a:?} (--remove, --environment-file=FILE, --dropin-dir=DIR)"
            ));
        }
    }
    if !files.is_empty() {
        s.environment_files = files;
    }
    Ok(Command::Setup(s))
}

fn parse_ha_only(args: &[String]) -> Result<HaSettings, String> {
    match parse(args.iter().cloned())? {
        Command::Run(s) => Ok(s.ha),
        _ => Err("unexpected arguments".into()),
    }
}

fn index_of(name: &str) -> Result<usize, String> {
    KNOWN.iter().position(|k| k.name == name).ok_or_else(|| {
        let names: Vec<_> = KNOWN.iter().map(|k| k.name).collect();
        format!("unknown collector {name:?} (known: {})", names.join(", "))
    })
}

/// ":9101" listens on every IPv4 address.
fn normalize_listen(s: &str) -> Result<String, String> {
    let full = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_string()
    };
    let port_ok = full
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok());
    if port_ok {
        Ok(full)
    } else {
        Err(format!(
            "bad --web.listen-address {s:?} (use HOST:PORT or :PORT)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Command, String> {
        parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults_and_overrides() {
        let Command::Run(s) = p(&[]).unwrap() else {
            panic!()
        };
        assert_eq!(s.listen_address, "0.0.0.0:9101");
        let on_by_default = KNOWN.iter().filter(|k| k.enabled_by_default).count();
        assert_eq!(s.collectors.len(), on_by_default);
        assert!(!s
            .collectors
            .iter()
            .any(|(n, _)| *n == "users" || *n == "accounts"));
        let Command::Run(s) = p(&["--collector.users", "--collector.users.top=3"]).unwrap() else {
            panic!()
        };
        assert_eq!(s.collectors.len(), on_by_default + 1);
        assert_eq!(s.options.0.users_top, 3);
        assert!(p(&["--collector.accounts.top=0"])
            .unwrap_err()
            .contains("1 or more"));
        let Command::Run(s) = p(&[
            "--no-collector.licenses",
            "--collector.jobs.interval=30s",
            "--web.listen-address",
            "127.0.0.1:9999",
        ])
        .unwrap() else {
            panic!()
        };
        assert!(!s.collectors.iter().any(|(n, _)| *n == "licenses"));
        assert_eq!(s.collectors[0], ("jobs", Duration::from_secs(30)));
        assert_eq!(s.listen_address, "127.0.0.1:9999");
        assert!(matches!(
            p(&["collect", "--once"]).unwrap(),
            Command::CollectOnce(_)
        ));
    }

    #[test]
    fn help_and_version_work_after_any_subcommand() {
        for sub in [
            &["run"][..],
            &["collect"],
            &["state", "check"],
            &["hook"],
            &["accounting-jobs"],
            &["record"],
        ] {
            let mut help = sub.to_vec();
            help.push("--help");
            assert!(matches!(p(&help), Ok(Command::Help)), "{help:?}");
            let mut version = sub.to_vec();
            version.push("--version");
            assert!(matches!(p(&version), Ok(Command::Version)), "{version:?}");
        }
        assert!(matches!(p(&["run", "-h", "--nope"]), Ok(Command::Help)));
    }

    #[test]
    fn node_cardinality_flags() {
        let Command::Run(s) = p(&[]).unwrap() else {
            panic!()
        };
        assert!(s.options.0.nodes_per_node);
        assert_eq!(s.options.0.reason_max_chars, collect::REASON_MAX_CHARS);
        let Command::Run(s) = p(&[
            "--no-collector.nodes.per-node",
            "--collector.nodes.reason-max-length=10",
        ])
        .unwrap() else {
            panic!()
        };
        assert!(!s.options.0.nodes_per_node);
        assert_eq!(s.options.0.reason_max_chars, 10);
        assert!(s.collectors.iter().any(|(n, _)| *n == "nodes"));
        for bad in ["0", "many"] {
            let flag = format!("--collector.nodes.reason-max-length={bad}");
            assert!(p(&[&flag]).unwrap_err().contains("reason-max-length"));
        }
    }

    #[test]
    fn accounting_overlap_defaults_to_five_minutes_between_30s_and_1h() {
        let Command::Run(s) = p(&[]).unwrap() else {
            panic!()
        };
        assert_eq!(s.options.0.accounting_overlap, Duration::from_secs(300));
        let Command::Run(s) = p(&["--collector.accounting.overlap=1m"]).unwrap() else {
            panic!()
        };
        assert_eq!(s.options.0.accounting_overlap, Duration::from_secs(60));
        assert!(p(&["--collector.accounting.overlap=29s"])
            .unwrap_err()
            .contains("at least 30s"));
        assert!(p(&["--collector.accounting.overlap=5h"])
            .unwrap_err()
            .contains("at most 1h"));
    }

    #[test]
    fn bad_flags_are_clear_errors() {
        assert!(p(&["--nope"]).unwrap_err().contains("unknown flag"));
        assert!(p(&["--collector.bogus"])
            .unwrap_err()
            .contains("unknown collector"));
        assert!(p(&["--collector.jobs.interval=fast"])
            .unwrap_err()
            .contains("bad duration"));
        assert!(p(&["--web.listen-address=nowhere"])
            .unwrap_err()
            .contains("listen-address"));
        assert!(p(&["collect"]).unwrap_err().contains("--once"));
        for rel in [
            "--ha.state-save-location=",
            "--ha.state-save-location=spool",
        ] {
            assert!(p(&[rel]).unwrap_err().contains("absolute"), "{rel}");
        }
        assert!(p(&["--log.level"]).unwrap_err().contains("needs a value"));
        assert!(p(&["hook", "primary-maybe"])
            .unwrap_err()
            .contains("unknown hook action"));
        assert!(matches!(
            p(&["hook", "primary-on", "--ha.controller-index=1"]).unwrap(),
            Command::Hook { on: true, .. }
        ));
        assert!(p(&["--ha.controller-index=x"])
            .unwrap_err()
            .contains("controller-index"));
        assert!(p(&["record"]).unwrap_err().contains("directory"));
        assert!(p(&["record", "a", "b"]).is_err());
        assert_eq!(p(&["record", "d"]), Ok(Command::Record("d".into())));
        let Ok(Command::Setup(s)) = p(&["setup", "--environment-file=/e", "--dropin-dir=/d"])
        else {
            panic!()
        };
        assert_eq!(
            (s.environment_files, s.dropin_dir, s.remove),
            (vec!["/e".into()], "/d".into(), false)
        );
        assert!(matches!(p(&["setup", "--remove"]), Ok(Command::Setup(s)) if s.remove));
        assert!(p(&["setup", "--force"])
            .unwrap_err()
            .contains("unknown argument"));
        assert!(p(&["accounting-jobs", "--cluster", "c", "--start", "1"])
            .unwrap_err()
            .contains("needs --cluster"));
        assert!(p(&["accounting-jobs", "--start", "soon"])
            .unwrap_err()
            .contains("bad time"));
        assert_eq!(
            p(&[
                "accounting-jobs",
                "--cluster",
                "c",
                "--start",
                "1",
                "--end",
                "2"
            ])
            .unwrap(),
            Command::AccountingJobs {
                cluster: "c".into(),
                start: 1,
                end: 2
            }
        );
    }
}
