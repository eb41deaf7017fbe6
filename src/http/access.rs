//! Who may be answered: the web config in force (reloaded when one of its
//! files changes, so a rotated certificate needs no restart), basic auth
//! against bcrypt hashes, and the rate limit.

use super::tls;
use super::webconfig::{self, WebConfig};
use base64::Engine as _;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

/// Successful (user, password) checks kept so bcrypt, tens of ms by
/// design, runs once per client rather than once per scrape. Failures are
/// never cached; the rate limit bounds what they cost.
const AUTH_CACHE: usize = 64;
/// How often the files' modification times are looked at, at most.
const RELOAD_CHECK: Duration = Duration::from_secs(1);

/// One loaded configuration, with what was derived from it.
pub struct Loaded {
    pub config: WebConfig,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// A hash of the users' cost, checked for unknown users so a reply
    /// takes as long whether the user exists or not.
    dummy_hash: Option<String>,
    auth_ok: Mutex<HashSet<(String, String)>>,
    bucket: Mutex<(f64, Instant)>,
    stamps: Vec<(PathBuf, Option<SystemTime>)>,
}

fn stamps(files: &[PathBuf]) -> Vec<(PathBuf, Option<SystemTime>)> {
    files
        .iter()
        .map(|f| {
            (
                f.clone(),
                std::fs::metadata(f).and_then(|m| m.modified()).ok(),
            )
        })
        .collect()
}

impl Loaded {
    pub fn from_config(config: WebConfig) -> Result<Loaded, String> {
        let tls = config.tls.as_ref().map(tls::server_config).transpose()?;
        let dummy_hash = match config.users.values().next() {
            Some(h) => {
                let cost = webconfig::bcrypt_cost(h).unwrap_or(bcrypt::DEFAULT_COST);
                Some(bcrypt::hash("no such user", cost).map_err(|e| e.to_string())?)
            }
            None => None,
        };
        let burst = config.rate_limit.map_or(0, |(_, b)| b) as f64;
        Ok(Loaded {
            stamps: stamps(&config.files),
            config,
            tls,
            dummy_hash,
            auth_ok: Mutex::new(HashSet::new()),
            bucket: Mutex::new((burst, Instant::now())),
        })
    }

    /// Whether an `Authorization` header value lets the request in.
    pub fn authorized(&self, header: Option<&str>) -> bool {
        if self.config.users.is_empty() {
            return true;
        }
        let Some((user, pass)) = header.and_then(basic_credentials) else {
            return false;
        };
        let key = (user, pass);
        if self.auth_ok.lock().is_ok_and(|c| c.contains(&key)) {
            return true;
        }
        let (user, pass) = &key;
        let hash = match self.config.users.get(user) {
            Some(h) => h.as_str(),
            None => {
                // Same work for an unknown user, then no.
                if let Some(d) = &self.dummy_hash {
                    let _ = bcrypt::verify(pass, d);
                }
                return false;
            }
        };
        let ok = bcrypt::verify(pass, hash).unwrap_or(false);
        if ok {
            if let Ok(mut c) = self.auth_ok.lock() {
                if c.len() >= AUTH_CACHE {
                    c.clear();
                }
                c.insert(key);
            }
        }
        ok
    }

    /// Token bucket: false when the request is over the rate limit.
    pub fn admit(&self) -> bool {
        let Some((interval, burst)) = self.config.rate_limit else {
            return true;
        };
        let Ok(mut b) = self.bucket.lock() else {
            return true;
        };
        let now = Instant::now();
        let refill = now.duration_since(b.1).as_secs_f64() / interval.as_secs_f64();
        b.0 = (b.0 + refill).min(burst as f64);
        b.1 = now;
        if b.0 >= 1.0 {
            b.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

/// "Basic dXNlcjpwYXNz" -> ("user", "pass").
pub(crate) fn basic_credentials(header: &str) -> Option<(String, String)> {
    let (scheme, value) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// The web config in force for the server; reloaded from its file when a
/// file it reads changes. A reload that fails keeps the last good one (and
/// says so once): a half-written certificate must not take scrapes down.
pub struct WebState {
    path: PathBuf,
    current: RwLock<Arc<Loaded>>,
    checked: Mutex<Instant>,
    last_error: Mutex<Option<String>>,
}

impl WebState {
    /// Loads `path`; an error here stops the daemon (a bad file at start).
    pub fn load(path: PathBuf) -> Result<WebState, String> {
        let loaded = Loaded::from_config(webconfig::load(&path)?)?;
        Ok(WebState {
            path,
            current: RwLock::new(Arc::new(loaded)),
            checked: Mutex::new(Instant::now()),
            last_error: Mutex::new(None),
        })
    }

    pub fn current(&self) -> Arc<Loaded> {
        self.maybe_reload();
        self.current
            .read()
            .map(|g| g.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    fn maybe_reload(&self) {
        {
            let Ok(mut t) = self.checked.lock() else {
                return;
            };
            if t.elapsed() < RELOAD_CHECK {
                return;
            }
            *t = Instant::now();
        }
        let cur = match self.current.read() {
            Ok(g) => g.clone(),
            Err(_) => return,
        };
        if stamps(&cur.config.files) == cur.stamps {
            return;
        }
        match webconfig::load(&self.path).and_then(Loaded::from_config) {
            Ok(l) => {
                if let Ok(mut g) = self.current.write() {
                    *g = Arc::new(l);
                }
                crate::info!("web config {} reloaded", self.path.display());
                if let Ok(mut e) = self.last_error.lock() {
                    *e = None;
                }
            }
            Err(e) => {
                if let Ok(mut last) = self.last_error.lock() {
                    if last.as_deref() != Some(e.as_str()) {
                        crate::error!("{e}; keeping the previous web config");
                        *last = Some(e);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_users(users: &[(&str, &str)], rate: Option<(Duration, u32)>) -> Loaded {
        let mut cfg = WebConfig {
            rate_limit: rate,
            ..Default::default()
        };
        for (u, p) in users {
            cfg.users.insert(u.to_string(), bcrypt::hash(p, 4).unwrap());
        }
        Loaded::from_config(cfg).unwrap()
    }

    fn basic(user: &str, pass: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        )
    }

    #[test]
    fn basic_auth_checks_the_bcrypt_hash_and_caches_successes_only() {
        let l = with_users(&[("alice", "s3cret")], None);
        assert!(l.authorized(Some(&basic("alice", "s3cret"))));
        assert!(
            l.authorized(Some(&basic("alice", "s3cret"))),
            "from the cache"
        );
        assert!(!l.authorized(Some(&basic("alice", "wrong"))));
        assert!(!l.authorized(Some(&basic("mallory", "s3cret"))));
        assert!(!l.authorized(None));
        assert!(!l.authorized(Some("Bearer abc")));
        assert!(!l.authorized(Some("Basic !!!not-base64")));
        assert_eq!(l.auth_ok.lock().unwrap().len(), 1);
        // No users: no authentication.
        assert!(with_users(&[], None).authorized(None));
    }

    #[test]
    fn the_rate_limit_allows_a_burst_then_one_per_interval() {
        let l = with_users(&[], Some((Duration::from_millis(200), 3)));
        assert!((0..3).all(|_| l.admit()));
        assert!(!l.admit());
        std::thread::sleep(Duration::from_millis(250));
        assert!(l.admit());
        assert!(!l.admit());
        assert!(with_users(&[], None).admit());
    }
}
