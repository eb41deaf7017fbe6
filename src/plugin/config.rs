//! `ha_exporter.conf`: the plugin's settings, in a file next to slurm.conf.
//!
//! It holds the daemon's own flags, one per line (`--flag=value` or
//! `--flag value`), `#` comments and blank lines allowed, so the two modes
//! share one parser, one set of names and one set of checks. A missing
//! file means the defaults.

use crate::cli::{self, Command, Settings};
use std::path::{Path, PathBuf};

/// Where the plugin looks for the accounting helper when the file does not
/// say (`--collector.accounting.helper`): the first of these that exists,
/// else the first. The README's install steps put the daemon binary in
/// /usr/local/sbin; the Debian package (packaging/) in /usr/bin.
pub const DEFAULT_HELPERS: [&str; 2] = [
    "/usr/local/sbin/slurm-ha-exporter",
    "/usr/bin/slurm-ha-exporter",
];

/// The helper used when `ha_exporter.conf` names none (see DEFAULT_HELPERS).
pub fn default_helper() -> PathBuf {
    first_existing(&DEFAULT_HELPERS)
}

fn first_existing(candidates: &[&str]) -> PathBuf {
    candidates
        .iter()
        .find(|p| Path::new(p).exists())
        .or(candidates.first())
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// `SLURM_HA_EXPORTER_CONF`, else `ha_exporter.conf` beside slurm.conf.
pub fn path() -> PathBuf {
    if let Some(p) = std::env::var_os("SLURM_HA_EXPORTER_CONF") {
        return p.into();
    }
    let conf = crate::slurm::conf_path();
    conf.parent()
        .unwrap_or(Path::new("/etc/slurm"))
        .join("ha_exporter.conf")
}

/// Reads and checks the file; the error names the file and the line.
pub fn load(file: &Path) -> Result<Settings, String> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("cannot read {}: {e}", file.display())),
    };
    parse(&text).map_err(|e| format!("{}: {e}", file.display()))
}

pub fn parse(text: &str) -> Result<Settings, String> {
    let mut args = vec!["run".to_string()];
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !line.starts_with("--") {
            return Err(format!(
                "line {}: {line:?} is not a flag (write e.g. --web.listen-address=:9101)",
                n + 1
            ));
        }
        match line.split_once(char::is_whitespace) {
            Some((flag, value)) if !flag.contains('=') => {
                args.push(flag.to_string());
                args.push(value.trim().to_string());
            }
            _ => args.push(line.to_string()),
        }
    }
    let mut settings = match cli::parse(args)? {
        Command::Run(s) => s,
        _ => return Err("only flags belong in this file".into()),
    };
    let opts = &mut settings.options.0;
    opts.durable_accounting = true;
    opts.inside_slurmctld = true;
    if opts.accounting_helper.is_none() {
        opts.accounting_helper = Some(default_helper());
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn flags_one_per_line_with_comments() {
        let s = parse(
            "# plugin settings\n\n--web.listen-address=127.0.0.1:9200\n--collector.jobs.interval 30s\n  --no-collector.licenses  \n",
        )
        .unwrap();
        assert_eq!(s.listen_address, "127.0.0.1:9200");
        assert!(s.collectors.contains(&("jobs", Duration::from_secs(30))));
        assert!(!s.collectors.iter().any(|(n, _)| *n == "licenses"));
        assert!(s.options.0.durable_accounting);
        assert_eq!(
            s.options.0.accounting_helper.as_deref(),
            Some(default_helper().as_path())
        );
    }

    #[test]
    fn the_default_helper_is_the_first_that_exists() {
        let dir = std::env::temp_dir().join(format!("ha-exporter-helper-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let present = dir.join("present");
        std::fs::write(&present, b"").unwrap();
        let missing = dir.join("missing");
        let (p, m) = (present.to_str().unwrap(), missing.to_str().unwrap());
        assert_eq!(first_existing(&[m, p]), present);
        assert_eq!(first_existing(&[p, m]), present);
        // None there: the first, so the error names where it was looked for.
        assert_eq!(first_existing(&[m, "/nonexistent/x"]), missing);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn empty_file_is_the_defaults_and_errors_name_the_line() {
        assert_eq!(parse("").unwrap().listen_address, "0.0.0.0:9101");
        assert!(parse("listen=9101").unwrap_err().contains("line 1"));
        assert!(parse("--collector.bogus")
            .unwrap_err()
            .contains("unknown collector"));
        assert!(parse("--web.listen-address=nowhere").is_err());
        let missing = load(Path::new("/nonexistent/ha_exporter.conf")).unwrap();
        assert_eq!(missing.listen_address, "0.0.0.0:9101");
    }
}
