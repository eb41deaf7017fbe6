//! `--web.config.file`: the Prometheus exporter-toolkit web configuration
//! (TLS, basic auth, response headers, rate limit), parsed strictly: an
//! unknown key, a value rustls cannot honour (TLS 1.0/1.1, a curve or a
//! cipher suite it does not have, client certificates it would not
//! verify) or a missing file is an error that names it, never a setting
//! quietly dropped. Relative file names are read from the file's directory,
//! as the exporter-toolkit does.
//!
//! The YAML parser (serde-saphyr) runs with small budgets, since the same
//! code runs inside slurmctld: a file over [`MAX_FILE_BYTES`], nesting
//! deeper than the format needs, an alias bomb or a stream of documents is
//! an error, never a panic, a hang or a blow-up of memory.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct RawFile {
    tls_server_config: Option<RawTls>,
    http_server_config: Option<RawHttp>,
    // Option: `alice:` (no hash) is "not a bcrypt hash", said by us.
    basic_auth_users: Option<BTreeMap<String, Option<String>>>,
    rate_limit: Option<RawRate>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: Option<String>,
    key: Option<String>,
    client_ca: Option<String>,
    cert_file: Option<String>,
    key_file: Option<String>,
    client_ca_file: Option<String>,
    client_auth_type: Option<String>,
    client_allowed_sans: Option<Vec<String>>,
    min_version: Option<String>,
    max_version: Option<String>,
    cipher_suites: Option<Vec<String>>,
    prefer_server_cipher_suites: Option<bool>,
    curve_preferences: Option<Vec<String>>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    http2: Option<bool>,
    // Option: an empty value (`X-Frame-Options:`) sets no header.
    headers: Option<BTreeMap<String, Option<String>>>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct RawRate {
    interval: Option<String>,
    burst: Option<u32>,
}

/// PEM text, inline in the file or in a file of its own.
#[derive(Clone, Debug, PartialEq)]
pub enum Pem {
    Inline(String),
    File(PathBuf),
}

impl Pem {
    pub fn read(&self) -> Result<Vec<u8>, String> {
        match self {
            Pem::Inline(s) => Ok(s.as_bytes().to_vec()),
            Pem::File(p) => {
                std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    /// VerifyClientCertIfGiven: a certificate is optional, but verified.
    VerifyIfGiven,
    /// RequireAndVerifyClientCert.
    Require,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TlsSettings {
    pub cert: Pem,
    pub key: Pem,
    pub client_ca: Option<Pem>,
    pub client_auth: ClientAuth,
    pub allowed_sans: Vec<String>,
    pub min_version: TlsVersion,
    pub max_version: TlsVersion,
    /// TLS 1.2 suites by IANA name; None = rustls' defaults. (TLS 1.3
    /// suites are not configurable, as in Go.)
    pub cipher_suites: Option<Vec<String>>,
    pub prefer_server_cipher_suites: bool,
    /// rustls key-exchange groups by our name: X25519, P256, P384.
    pub curves: Option<Vec<&'static str>>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct WebConfig {
    pub tls: Option<TlsSettings>,
    /// Extra response headers, in a fixed order.
    pub headers: Vec<(String, String)>,
    /// User -> bcrypt hash. Empty: no authentication.
    pub users: BTreeMap<String, String>,
    /// Token bucket: one request per interval, bursts of `burst`.
    pub rate_limit: Option<(Duration, u32)>,
    /// Every file this configuration was read from (reloaded on change).
    pub files: Vec<PathBuf>,
}

/// Headers the exporter-toolkit allows, with the values it accepts
/// (None: any value).
const HEADERS: &[(&str, Option<&[&str]>)] = &[
    ("Content-Security-Policy", None),
    ("X-Frame-Options", Some(&["deny", "sameorigin"])),
    ("X-Content-Type-Options", Some(&["nosniff"])),
    ("X-XSS-Protection", None),
    ("Strict-Transport-Security", None),
];

/// The largest web config read (inline PEM certificates included); a
/// larger file is refused before it is parsed.
pub const MAX_FILE_BYTES: usize = 1 << 20;

/// Reads and checks `path`.
pub fn load(path: &Path) -> Result<WebConfig, String> {
    let text = read_text(path).map_err(|e| format!("web config {}: {e}", path.display()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut cfg = parse(&text, dir).map_err(|e| format!("web config {}: {e}", path.display()))?;
    cfg.files.insert(0, path.to_path_buf());
    Ok(cfg)
}

/// The file's text: at most MAX_FILE_BYTES of UTF-8.
fn read_text(path: &Path) -> Result<String, String> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE_BYTES as u64 + 1).read_to_end(&mut bytes))
        .map_err(|e| e.to_string())?;
    if bytes.len() > MAX_FILE_BYTES {
        return Err(too_large());
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

fn too_large() -> String {
    format!(
        "larger than {} KiB, which no web config needs",
        MAX_FILE_BYTES / 1024
    )
}

/// Parser settings: the exporter-toolkit format nests three levels deep
/// (tls_server_config.cipher_suites[0]) and is one document; a real file
/// has a few hundred events and rarely an alias. Each limit is far above
/// that and far below what would cost memory or time.
fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: 16,
            flow_nesting_limit: 16,
            max_documents: 2,
            max_events: 200_000,
            max_nodes: 100_000,
            max_aliases: 64,
            max_anchors: 64,
            max_merge_keys: 64,
            max_recorded_anchor_events: 10_000,
            max_total_scalar_bytes: 2 * MAX_FILE_BYTES,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 10_000,
            max_replay_stack_depth: 16,
        },
        // One line with "at line L, column C", no source excerpt: the
        // message goes to logs (slurmctld's too), and the file may hold a key.
        with_snippet: false,
        crop_radius: 0,
    }
}

/// Deserializes one YAML document; an error starts with the key path where
/// it was found (`rate_limit.burst: invalid u32 at line 3, column 10`) and
/// is worded for whoever wrote the file, not for a Rust programmer.
fn from_yaml<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    let mut path = String::new();
    serde_saphyr::with_deserializer_from_str_with_options(text, yaml_options(), |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            path = key_path(e.path());
            e.into_inner()
        })
    })
    .map_err(|e| {
        let msg = e.render_with_formatter(&serde_saphyr::UserMessageFormatter);
        if path.is_empty() {
            msg
        } else {
            format!("{path}: {msg}")
        }
    })
}

/// `tls_server_config.cipher_suites[2]`; a key that is not a plain word is
/// quoted (and cut short), so the file cannot write into the log line.
fn key_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    use std::fmt::Write;
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Seq { index } => {
                let _ = write!(out, "[{index}]");
            }
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                let plain = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
                if !key.is_empty() && key.len() <= 64 && key.chars().all(plain) {
                    out.push_str(key);
                } else {
                    let short: String = key.chars().take(64).collect();
                    let _ = write!(out, "{short:?}");
                }
            }
            Segment::Unknown => break,
        }
    }
    out
}

/// Parses the YAML text; relative file names are taken from `dir`.
pub fn parse(text: &str, dir: &Path) -> Result<WebConfig, String> {
    if text.len() > MAX_FILE_BYTES {
        return Err(too_large());
    }
    // An empty file (or one of comments, or a null document) is a valid,
    // empty configuration.
    let raw: RawFile = if text.trim().is_empty() {
        RawFile::default()
    } else {
        from_yaml::<Option<RawFile>>(text)?.unwrap_or_default()
    };
    let mut cfg = WebConfig::default();
    if let Some(t) = raw.tls_server_config {
        cfg.tls = Some(tls_settings(t, dir, &mut cfg.files)?);
    }
    if let Some(h) = raw.http_server_config {
        // HTTP/2 is not served (HTTP/1.1 only): accepted, as Prometheus
        // falls back to HTTP/1.1, and said here.
        if h.http2 == Some(true) {
            crate::info!("web config: http2 is not supported; serving HTTP/1.1");
        }
        for (name, value) in h.headers.unwrap_or_default() {
            let value = value.unwrap_or_default();
            let Some((canon, allowed)) =
                HEADERS.iter().find(|(n, _)| n.eq_ignore_ascii_case(&name))
            else {
                let names: Vec<_> = HEADERS.iter().map(|(n, _)| *n).collect();
                return Err(format!(
                    "http_server_config.headers: {name:?} is not allowed (allowed: {})",
                    names.join(", ")
                ));
            };
            if value.is_empty() {
                continue;
            }
            if let Some(ok) = allowed {
                if !ok.iter().any(|v| v.eq_ignore_ascii_case(&value)) {
                    return Err(format!(
                        "http_server_config.headers: {canon}: {value:?} is not one of {ok:?}"
                    ));
                }
            }
            if value.contains(['\r', '\n']) {
                return Err(format!(
                    "http_server_config.headers: {canon}: line break in value"
                ));
            }
            cfg.headers.push((canon.to_string(), value));
        }
    }
    for (user, hash) in raw.basic_auth_users.unwrap_or_default() {
        let hash = hash.unwrap_or_default();
        if user.contains(':') || user.is_empty() {
            return Err(format!("basic_auth_users: bad user name {user:?}"));
        }
        // Checked now, so a typo is an error at start, not a 401 forever.
        bcrypt_cost(&hash).ok_or_else(|| {
            format!("basic_auth_users: the password of {user:?} is not a bcrypt hash ($2y$...)")
        })?;
        cfg.users.insert(user, hash);
    }
    if let Some(r) = raw.rate_limit {
        let interval = match r.interval.as_deref() {
            None | Some("0") | Some("0s") => Duration::ZERO,
            Some(v) => {
                crate::cli::parse_duration(v).map_err(|e| format!("rate_limit.interval: {e}"))?
            }
        };
        if !interval.is_zero() {
            cfg.rate_limit = Some((interval, r.burst.unwrap_or(0).max(1)));
        }
    }
    Ok(cfg)
}

/// The cost of a bcrypt hash ("$2y$10$..." -> 10), if it is one.
pub fn bcrypt_cost(hash: &str) -> Option<u32> {
    let mut parts = hash.split('$');
    let (empty, variant, cost, rest) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if !empty.is_empty() || !["2a", "2b", "2x", "2y"].contains(&variant) || rest.len() != 53 {
        return None;
    }
    cost.parse().ok().filter(|c| (4..=31).contains(c))
}

fn tls_settings(t: RawTls, dir: &Path, files: &mut Vec<PathBuf>) -> Result<TlsSettings, String> {
    let mut pem =
        |inline: Option<String>, file: Option<String>, what: &str| -> Result<Option<Pem>, String> {
            match (inline, file) {
                (Some(_), Some(_)) => Err(format!(
                    "tls_server_config: both {what} and {what}_file are set (use one)"
                )),
                (Some(s), None) => Ok(Some(Pem::Inline(s))),
                (None, Some(f)) => {
                    let p = dir.join(f);
                    if !p.is_file() {
                        return Err(format!(
                            "tls_server_config.{what}_file: {} does not exist",
                            p.display()
                        ));
                    }
                    files.push(p.clone());
                    Ok(Some(Pem::File(p)))
                }
                (None, None) => Ok(None),
            }
        };
    let cert = pem(t.cert, t.cert_file, "cert")?
        .ok_or("tls_server_config: cert_file (or cert) is required")?;
    let key =
        pem(t.key, t.key_file, "key")?.ok_or("tls_server_config: key_file (or key) is required")?;
    let client_ca = pem(t.client_ca, t.client_ca_file, "client_ca")?;
    let client_auth = match t.client_auth_type.as_deref().unwrap_or("NoClientCert") {
        "NoClientCert" => ClientAuth::None,
        "VerifyClientCertIfGiven" => ClientAuth::VerifyIfGiven,
        "RequireAndVerifyClientCert" => ClientAuth::Require,
        v @ ("RequestClientCert" | "RequireAnyClientCert") => {
            return Err(format!(
                "tls_server_config.client_auth_type: {v} accepts client certificates without verifying them, which rustls does not do; use VerifyClientCertIfGiven or RequireAndVerifyClientCert"
            ))
        }
        v => return Err(format!("tls_server_config.client_auth_type: unknown value {v:?}")),
    };
    if client_auth != ClientAuth::None && client_ca.is_none() {
        return Err(
            "tls_server_config: client_auth_type needs client_ca_file (or client_ca)".into(),
        );
    }
    let allowed_sans = t.client_allowed_sans.unwrap_or_default();
    if !allowed_sans.is_empty() && client_auth != ClientAuth::Require {
        return Err(
            "tls_server_config.client_allowed_sans needs client_auth_type RequireAndVerifyClientCert".into(),
        );
    }
    for san in &allowed_sans {
        if rustls_pki_types::ServerName::try_from(san.as_str()).is_err() {
            return Err(format!(
                "tls_server_config.client_allowed_sans: {san:?} is not a DNS name or IP address (e-mail and URI SANs are not supported)"
            ));
        }
    }
    let version = |v: Option<String>, default: TlsVersion, what: &str| match v.as_deref() {
        None => Ok(default),
        Some("TLS12") => Ok(TlsVersion::Tls12),
        Some("TLS13") => Ok(TlsVersion::Tls13),
        Some(v @ ("TLS10" | "TLS11")) => Err(format!(
            "tls_server_config.{what}: {v} is not supported (rustls speaks TLS12 and TLS13)"
        )),
        Some(v) => Err(format!("tls_server_config.{what}: unknown version {v:?}")),
    };
    let min_version = version(t.min_version, TlsVersion::Tls12, "min_version")?;
    let max_version = version(t.max_version, TlsVersion::Tls13, "max_version")?;
    if min_version > max_version {
        return Err("tls_server_config: min_version is above max_version".into());
    }
    if let Some(list) = &t.cipher_suites {
        let known = super::tls::tls12_suite_names();
        for s in list {
            if !known.contains(&s.as_str()) {
                return Err(format!(
                    "tls_server_config.cipher_suites: {s:?} is not available (available: {})",
                    known.join(", ")
                ));
            }
        }
    }
    let curves = match t.curve_preferences {
        None => None,
        Some(list) => Some(
            list.iter()
                .map(|c| match c.as_str() {
                    "X25519" => Ok("X25519"),
                    "CurveP256" => Ok("P256"),
                    "CurveP384" => Ok("P384"),
                    other => Err(format!(
                        "tls_server_config.curve_preferences: {other:?} is not available (X25519, CurveP256, CurveP384)"
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    Ok(TlsSettings {
        cert,
        key,
        client_ca,
        client_auth,
        allowed_sans,
        min_version,
        max_version,
        cipher_suites: t.cipher_suites,
        prefer_server_cipher_suites: t.prefer_server_cipher_suites.unwrap_or(true),
        curves,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "$2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG";

    fn dir_with(files: &[&str]) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("webconfig-{}-{}", std::process::id(), files.len()));
        std::fs::create_dir_all(&d).unwrap();
        for f in files {
            std::fs::write(d.join(f), "x").unwrap();
        }
        d
    }

    #[test]
    fn the_toolkit_example_parses() {
        let d = dir_with(&["server.crt", "server.key"]);
        let cfg = parse(
            &format!(
                "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n\
                 basic_auth_users:\n  alice: {HASH}\n\
                 http_server_config:\n  headers:\n    X-Frame-Options: deny\n\
                 rate_limit:\n  interval: 1s\n  burst: 20\n"
            ),
            &d,
        )
        .unwrap();
        let tls = cfg.tls.unwrap();
        assert_eq!(tls.cert, Pem::File(d.join("server.crt")));
        assert_eq!(tls.min_version, TlsVersion::Tls12);
        assert_eq!(cfg.users.get("alice").map(String::as_str), Some(HASH));
        assert_eq!(cfg.headers, vec![("X-Frame-Options".into(), "deny".into())]);
        assert_eq!(cfg.rate_limit, Some((Duration::from_secs(1), 20)));
        assert_eq!(cfg.files.len(), 2);
        assert_eq!(parse("", &d).unwrap(), WebConfig::default());
    }

    #[test]
    fn strict_errors_name_what_is_wrong() {
        let d = dir_with(&["a.crt", "a.key"]);
        let err = |text: &str| parse(text, &d).unwrap_err();
        assert!(err("tls_server_config:\n  cert_fil: a.crt\n").contains("unknown field"));
        assert!(err("basic_auth: {}\n").contains("unknown field"));
        assert!(err("tls_server_config:\n  key_file: a.key\n").contains("cert_file"));
        assert!(
            err("tls_server_config:\n  cert_file: nope.crt\n  key_file: a.key\n")
                .contains("does not exist")
        );
        let tls = "tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n";
        assert!(err(&format!("{tls}  min_version: TLS10\n")).contains("not supported"));
        assert!(err(&format!(
            "{tls}  min_version: TLS13\n  max_version: TLS12\n"
        ))
        .contains("above"));
        assert!(
            err(&format!("{tls}  client_auth_type: RequireAnyClientCert\n"))
                .contains("without verifying")
        );
        assert!(err(&format!(
            "{tls}  client_auth_type: RequireAndVerifyClientCert\n"
        ))
        .contains("client_ca"));
        assert!(err(&format!("{tls}  curve_preferences: [CurveP521]\n")).contains("not available"));
        assert!(err(&format!(
            "{tls}  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n"
        ))
        .contains("not available"));
        assert!(err("basic_auth_users:\n  bob: plaintext\n").contains("not a bcrypt hash"));
        assert!(
            err("http_server_config:\n  headers:\n    X-Powered-By: me\n").contains("not allowed")
        );
        assert!(
            err("http_server_config:\n  headers:\n    X-Frame-Options: allow\n")
                .contains("not one of")
        );
        assert!(err("rate_limit:\n  interval: soon\n").contains("rate_limit.interval"));
        assert!(err("- a list\n").contains("expected mapping"));
        // The key path, the line and the column of what is wrong.
        assert_eq!(
            err("rate_limit:\n  burst: 99999999999\n"),
            "rate_limit.burst: invalid u32 at line 2, column 10"
        );
        assert!(err(&format!("{tls}  prefer_server_cipher_suites: maybe\n"))
            .starts_with("tls_server_config.prefer_server_cipher_suites: invalid boolean"));
        assert!(err(&format!("{tls}  cipher_suites: [~]\n"))
            .starts_with("tls_server_config.cipher_suites[0]: null is not allowed"));
        assert!(
            err(&format!("basic_auth_users:\n  a: {HASH}\n  a: {HASH}\n"))
                .contains("duplicate mapping key `a`")
        );
        assert!(err("basic_auth_users:\n  alice:\n").contains("not a bcrypt hash"));
        assert!(err("rate_limit: {}\n---\nrate_limit: {}\n").contains("multiple"));
    }

    #[test]
    fn empty_documents_and_empty_values_are_nothing() {
        let d = dir_with(&[]);
        for text in [
            "",
            "\n",
            "# nothing yet\n",
            "---\n",
            "--- # c\n...\n",
            "~\n",
            "null\n",
        ] {
            assert_eq!(parse(text, &d), Ok(WebConfig::default()), "{text:?}");
        }
        // An empty header value sets no header, as before.
        let cfg = parse(
            "http_server_config:\n  headers:\n    X-Frame-Options:\n",
            &d,
        )
        .unwrap();
        assert!(cfg.headers.is_empty());
    }

    /// What a hostile or broken file can do to the parser: each is an error
    /// that says what is wrong, soon, never a panic, a hang or gigabytes.
    #[test]
    fn hostile_yaml_is_an_error_not_a_panic_or_a_blow_up() {
        let d = dir_with(&[]);
        let check = |name: &str, text: &str, expect: &str| {
            let t = std::time::Instant::now();
            let r = std::panic::catch_unwind(|| parse(text, &d));
            let took = t.elapsed();
            let e = match r {
                Ok(Err(e)) => e,
                Ok(Ok(cfg)) => panic!("{name}: accepted: {cfg:?}"),
                Err(_) => panic!("{name}: panicked"),
            };
            assert!(e.contains(expect), "{name}: {e:?} does not say {expect:?}");
            assert!(e.len() < 1000 && !e.contains('\n'), "{name}: message {e:?}");
            assert!(took < Duration::from_secs(5), "{name}: took {took:?}");
        };
        // Billion laughs: nine levels of ten aliases each (10^9 strings
        // once expanded), at the top and where a map of strings is read.
        let mut laughs =
            String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for i in 1..10 {
            let refs = vec![format!("*a{}", i - 1); 10].join(", ");
            laughs.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        check("laughs", &laughs, "unknown field");
        let indented: String = laughs.lines().map(|l| format!("  {l}\n")).collect();
        check(
            "laughs in a map",
            &format!("basic_auth_users:\n{indented}"),
            "expected string",
        );
        // Many aliases of one string: past the alias budget.
        let users: String = (0..200).map(|i| format!("  u{i}: *h\n")).collect();
        check(
            "alias storm",
            &format!("basic_auth_users:\n  u: &h {HASH}\n{users}"),
            "too large or too complex",
        );
        // Few aliases of a large string: past the bytes budget, before the
        // copies add up (60 x 900 KB).
        let big = "x".repeat(900_000);
        let users: String = (0..60).map(|i| format!("  u{i}: *h\n")).collect();
        check(
            "alias of a large string",
            &format!("basic_auth_users:\n  u: &h {big}\n{users}"),
            "too large or too complex",
        );
        check("alias loop", "rate_limit: &r\n  burst: *r\n", "line 2");
        check("unknown alias", "rate_limit: *nowhere\n", "unknown");
        // Deep nesting, flow and block, within the size limit.
        let deep = format!(
            "rate_limit: {}{}\n",
            "[".repeat(400_000),
            "]".repeat(400_000)
        );
        check("deep flow", &deep, "line 1");
        let deep = format!(
            "tls_server_config:\n  cipher_suites: {}\n",
            "[".repeat(400_000)
        );
        check("deep unclosed flow", &deep, "cipher_suites");
        let deep = format!(
            "basic_auth_users:\n  ? {}x\n  : y\n",
            "{a: ".repeat(200_000)
        );
        check("deep key", &deep, "basic_auth_users");
        let deep: String = (0..1000)
            .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
            .collect();
        check("deep block", &deep, "unknown field");
        let deep = format!(
            "tls_server_config:\n  cipher_suites:\n    {}x\n",
            "- ".repeat(100_000)
        );
        check("deep block list", &deep, "cipher_suites[0]");
        // Tabs, stray and unclosed syntax, NUL, odd escapes, many documents.
        check("tab indent", "tls_server_config:\n\tcert_file: a\n", "tabs");
        check(
            "tab value indent",
            "rate_limit:\n  burst:\n\t\t1\n",
            "line 3",
        );
        check(
            "unclosed quote",
            "rate_limit:\n  interval: \"1s\n",
            "line 2",
        );
        check(
            "unclosed flow",
            "rate_limit: {interval: 1s, burst: [\n",
            "rate_limit",
        );
        check("stray", "rate_limit: ]\n", "line 1");
        check("NUL", "rate_limit:\n  interval: \u{0}\n", "rate_limit");
        check(
            "lone surrogate",
            "rate_limit:\n  interval: \"\\ud800\"\n",
            "line 2",
        );
        check("tag", "rate_limit: !!binary \"%%%\"\n", "rate_limit");
        check(
            "directive",
            "%YAML 9.9\n%TAG ! !\n---\nrate_limit: {}\n",
            "line",
        );
        check("document storm", &"--- {}\n".repeat(100_000), "multiple");
        check("key storm", &"? \n".repeat(300_000), "line");
        let many: String = (0..200_000).map(|i| format!("  k{i}: v\n")).collect();
        check(
            "too large",
            &format!("basic_auth_users:\n{many}"),
            "larger than",
        );
        // A key with an escape and 900 more characters, then a wrong value:
        // the key path quotes it and cuts it short.
        let long_key = format!(
            "http_server_config:\n  headers:\n    \"\\e{}\": [x]\n",
            "k".repeat(900)
        );
        check("long key", &long_key, "headers.\"\\u{1b}kkk");
        check(
            "longer key",
            &format!("rate_limit:\n  {}: 1\n", "k".repeat(5000)),
            "line 2",
        );

        // Through load(): bytes that are not UTF-8, and a file past the limit.
        let f = d.join("binary.yml");
        std::fs::write(&f, b"rate_limit:\n  interval: \xff\xfe1s\n").unwrap();
        let e = load(&f).unwrap_err();
        assert!(
            e.contains("binary.yml") && e.contains("not UTF-8 text"),
            "{e}"
        );
        std::fs::write(&f, vec![b'#'; MAX_FILE_BYTES + 1]).unwrap();
        let e = load(&f).unwrap_err();
        assert!(e.contains("binary.yml") && e.contains("larger than"), "{e}");
        std::fs::remove_file(&f).unwrap();
    }

    #[test]
    fn bcrypt_hashes_are_recognised() {
        assert_eq!(bcrypt_cost(HASH), Some(10));
        assert_eq!(bcrypt_cost("$2b$04$abc"), None);
        assert_eq!(bcrypt_cost("secret"), None);
    }
}
