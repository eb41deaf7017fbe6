//! --web.config.file end to end: certificates made here with openssl, the
//! daemon serving TLS with basic auth over the embedded cluster, curl for
//! every answer, and a real Prometheus (Debian's package) scraping it.

mod common;

use common::{free_port, wait_until};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const PASSWORD: &str = "correct horse";

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(cmd: &str, args: &[&str], dir: &Path) {
    let out = Command::new(cmd)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A key `{name}.key` and a certificate `{name}.pem` for subject `cn` with
/// the SANs `san` (openssl's syntax), signed by the test CA in `dir`
/// (made on first use).
fn issue_cert(dir: &Path, name: &str, cn: &str, san: &str) {
    if !dir.join("ca.pem").exists() {
        run(
            "openssl",
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=test-ca",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ],
            dir,
        );
    }
    let (key, csr, ext, pem) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.ext"),
        format!("{name}.pem"),
    );
    run(
        "openssl",
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            &format!("/CN={cn}"),
            "-keyout",
            &key,
            "-out",
            &csr,
        ],
        dir,
    );
    std::fs::write(dir.join(&ext), format!("subjectAltName={san}\n")).unwrap();
    run(
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &ext,
            "-out",
            &pem,
        ],
        dir,
    );
}

/// The server certificate for 127.0.0.1, named `cn`, in server.pem/.key.
fn make_certs(dir: &Path, cn: &str) {
    issue_cert(dir, "new", cn, "IP:127.0.0.1,DNS:localhost");
    // Replace both files by rename, as a certificate manager would.
    std::fs::rename(dir.join("new.key"), dir.join("server.key")).unwrap();
    std::fs::rename(dir.join("new.pem"), dir.join("server.pem")).unwrap();
}

fn curl(port: u16, dir: &Path, extra: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-i", "--max-time", "10", "--cacert"])
        .arg(dir.join("ca.pem"))
        .args(extra)
        .arg(format!("https://127.0.0.1:{port}/metrics"))
        .output()
        .unwrap();
    status_and_text(&out.stdout)
}

/// `curl -i` output: (HTTP status, 0 if none; the whole text).
fn status_and_text(stdout: &[u8]) -> (u16, String) {
    let text = String::from_utf8_lossy(stdout).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

fn subject(port: u16, dir: &Path) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect 127.0.0.1:{port} -CAfile {}/ca.pem </dev/null 2>/dev/null | openssl x509 -noout -subject",
            dir.display()
        ))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn start_exporter(port: u16, web_config: &Path) -> Killed {
    let child = common::exporter()
        .args(["run", &format!("--web.listen-address=127.0.0.1:{port}")])
        .arg(format!("--web.config.file={}", web_config.display()))
        .args(["--no-collector.accounting", "--no-collector.cyclecloud"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let k = Killed(child);
    wait_until("the exporter to listen", Duration::from_secs(30), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    k
}

#[test]
fn prometheus_scrapes_through_tls_with_basic_auth() {
    let _c = common::cluster();
    let dir = tmpdir("web-tls");
    make_certs(&dir, "server-one");
    let hash = bcrypt::hash(PASSWORD, 10).unwrap();
    let web = dir.join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n\
             basic_auth_users:\n  prom: {hash}\n\
             http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let _exporter = start_exporter(port, &web);

    // curl: no password, a wrong one, the right one; gzip when asked.
    let (status, head) = curl(port, &dir, &[]);
    assert_eq!(status, 401, "{head}");
    assert!(head.contains("WWW-Authenticate: Basic"), "{head}");
    assert_eq!(curl(port, &dir, &["-u", "prom:wrong"]).0, 401);
    assert_eq!(curl(port, &dir, &["-u", "nobody:wrong"]).0, 401);
    let auth = format!("prom:{PASSWORD}");
    wait_until("a complete scrape", Duration::from_secs(60), || {
        curl(port, &dir, &["-u", &auth])
            .1
            .contains("slurm_node_cpus{")
    });
    let (status, ok) = curl(port, &dir, &["-u", &auth]);
    assert_eq!(status, 200);
    assert!(ok.contains("X-Content-Type-Options: nosniff"), "{ok}");
    let (_, gz) = curl(port, &dir, &["-u", &auth, "--compressed"]);
    assert!(
        gz.contains("Content-Encoding: gzip") && gz.contains("slurm_exporter_active 1"),
        "{gz}"
    );
    // Plain HTTP on the TLS port gets nothing useful.
    assert!(common::http_get(port, "/metrics", None).is_none_or(|(s, _, _)| s != 200));

    // A real Prometheus, configured as a user would: CA, user, password.
    let prom_port = free_port();
    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
             scrape_configs:\n- job_name: slurm\n  scheme: https\n\
             \x20 tls_config:\n    ca_file: {dir}/ca.pem\n\
             \x20 basic_auth:\n    username: prom\n    password: '{PASSWORD}'\n\
             \x20 static_configs:\n  - targets: ['127.0.0.1:{port}']\n",
            dir = dir.display()
        ),
    )
    .unwrap();
    let prom = Killed(
        Command::new("prometheus")
            .arg(format!("--config.file={}/prometheus.yml", dir.display()))
            .arg(format!("--storage.tsdb.path={}/tsdb", dir.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let query = |q: &str| {
        common::http_get(prom_port, &format!("/api/v1/query?query={q}"), None)
            .map(|(_, _, b)| b)
            .unwrap_or_default()
    };
    wait_until(
        "Prometheus to scrape the exporter over TLS",
        Duration::from_secs(90),
        || {
            query("up%7Bjob%3D%22slurm%22%7D").contains("\"1\"]")
                && query("slurm_exporter_active").contains("\"1\"]")
        },
    );
    drop(prom);

    // A client that trickles a TLS handshake is cut off at the 5 s head
    // deadline (not after one socket timeout per byte).
    {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        // A handshake record header announcing 512 bytes, then one a second.
        s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00]).unwrap();
        let t0 = std::time::Instant::now();
        let closed_after = loop {
            assert!(
                t0.elapsed() < Duration::from_secs(15),
                "a trickling TLS client was never cut off"
            );
            if s.write_all(&[0]).is_err() {
                break t0.elapsed();
            }
            let mut b = [0u8; 64];
            match s.read(&mut b) {
                Ok(0) => break t0.elapsed(),
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break t0.elapsed(),
            }
            std::thread::sleep(Duration::from_millis(500));
        };
        eprintln!("a trickling TLS handshake was cut off after {closed_after:?}");
        assert!(closed_after < Duration::from_secs(8), "{closed_after:?}");
    }

    // Certificate rotation: new files, no restart.
    assert!(subject(port, &dir).contains("server-one"));
    make_certs(&dir, "server-two");
    wait_until("the rotated certificate", Duration::from_secs(20), || {
        subject(port, &dir).contains("server-two")
    });
    assert_eq!(curl(port, &dir, &["-u", &auth]).0, 200);
}

/// A client certificate `{cn}.pem` with a DNS SAN `san`, signed by the test CA.
fn make_client_cert(dir: &Path, cn: &str, san: &str) {
    issue_cert(dir, cn, cn, &format!("DNS:{san}"));
}

#[test]
fn client_certificates_are_required_verified_and_matched() {
    let _c = common::cluster();
    let dir = tmpdir("web-mtls");
    make_certs(&dir, "server");
    make_client_cert(&dir, "prom", "prometheus.example");
    make_client_cert(&dir, "other", "other.example");
    // A certificate from a CA the server does not trust.
    let rogue = dir.join("rogue");
    std::fs::create_dir_all(&rogue).unwrap();
    make_certs(&rogue, "rogue-server");
    make_client_cert(&rogue, "prom", "prometheus.example");
    let web = dir.join("web.yml");
    std::fs::write(
        &web,
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n\
         \x20 client_ca_file: ca.pem\n  client_auth_type: RequireAndVerifyClientCert\n\
         \x20 client_allowed_sans: [prometheus.example]\n",
    )
    .unwrap();
    let port = free_port();
    let _exporter = start_exporter(port, &web);
    let with = |d: &Path, cn: &str| {
        let (cert, key) = (d.join(format!("{cn}.pem")), d.join(format!("{cn}.key")));
        curl(
            port,
            &dir,
            &[
                "--cert",
                cert.to_str().unwrap(),
                "--key",
                key.to_str().unwrap(),
            ],
        )
    };
    wait_until(
        "a scrape with the allowed client certificate",
        Duration::from_secs(60),
        || with(&dir, "prom").0 == 200,
    );
    assert_eq!(
        curl(port, &dir, &[]).0,
        0,
        "no client certificate: no TLS session"
    );
    assert_eq!(
        with(&rogue, "prom").0,
        0,
        "a certificate of another CA is refused"
    );
    assert_eq!(
        with(&dir, "other").0,
        403,
        "a verified certificate without an allowed SAN"
    );
}

#[test]
fn a_bad_web_config_stops_the_daemon_with_the_reason() {
    let dir = tmpdir("web-bad");
    for (text, says) in [
        (
            "tls_server_config:\n  cert_file: missing.pem\n  key_file: missing.key\n",
            "does not exist",
        ),
        (
            "basic_auth_users:\n  prom: plaintext\n",
            "not a bcrypt hash",
        ),
        ("tls_server_config:\n  min_version: TLS10\n", "cert_file"),
        ("unknown_section: {}\n", "unknown field"),
    ] {
        let web = dir.join("web.yml");
        std::fs::write(&web, text).unwrap();
        let out = common::exporter()
            .args(["run", "--web.listen-address=127.0.0.1:0"])
            .arg(format!("--web.config.file={}", web.display()))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{text}: {err}");
        assert!(
            err.contains(says) && err.contains("web.yml"),
            "{text}: {err}"
        );
    }
}

/// One plain-HTTP request: (status, head and body).
fn get(port: u16, user: Option<&str>) -> (u16, String) {
    let mut args = vec!["-s", "-i", "--max-time", "10"];
    if let Some(u) = user {
        args.extend(["-u", u]);
    }
    let url = format!("http://127.0.0.1:{port}/metrics");
    let out = Command::new("curl").args(&args).arg(url).output().unwrap();
    status_and_text(&out.stdout)
}

/// Replaces the web config by rename, as a configuration manager would.
fn replace(web: &Path, text: &str) {
    let new = web.with_extension("new");
    std::fs::write(&new, text).unwrap();
    std::fs::rename(&new, web).unwrap();
}

#[test]
fn a_changed_web_config_is_used_and_a_bad_one_keeps_the_last_good_one() {
    let _c = common::cluster();
    let dir = tmpdir("web-reload");
    let web = dir.join("web.yml");
    let log = dir.join("exporter.log");
    let hash = |pw: &str| bcrypt::hash(pw, 4).unwrap();
    std::fs::write(
        &web,
        format!(
            "basic_auth_users:\n  alice: {}\n\
             http_server_config:\n  headers:\n    X-Frame-Options: deny\n",
            hash("one")
        ),
    )
    .unwrap();
    let port = free_port();
    let child = common::exporter()
        .args(["run", &format!("--web.listen-address=127.0.0.1:{port}")])
        .arg(format!("--web.config.file={}", web.display()))
        .args(["--no-collector.accounting", "--no-collector.cyclecloud"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let _exporter = Killed(child);
    wait_until("alice's scrape", Duration::from_secs(30), || {
        get(port, Some("alice:one")).0 == 200
    });
    let (_, head) = get(port, Some("alice:one"));
    assert!(head.contains("X-Frame-Options: deny"), "{head}");
    assert_eq!(get(port, Some("bob:two")).0, 401);

    // Users and headers change with the file.
    replace(
        &web,
        &format!(
            "basic_auth_users:\n  bob: {}\n\
             http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n",
            hash("two")
        ),
    );
    wait_until(
        "bob's scrape after the change",
        Duration::from_secs(10),
        || get(port, Some("bob:two")).0 == 200,
    );
    assert_eq!(get(port, Some("alice:one")).0, 401, "alice is gone");
    let (_, head) = get(port, Some("bob:two"));
    assert!(head.contains("X-Content-Type-Options: nosniff"), "{head}");
    assert!(!head.contains("X-Frame-Options"), "{head}");

    // A change that does not load keeps the previous configuration, and
    // says so once.
    replace(&web, "basic_auth_users:\n  carol: plaintext\n");
    let logged = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .matches("keeping the previous web config")
            .count()
    };
    wait_until(
        "the bad change to be logged",
        Duration::from_secs(10),
        || {
            get(port, Some("bob:two"));
            logged() > 0
        },
    );
    for _ in 0..3 {
        assert_eq!(get(port, Some("bob:two")).0, 200, "bob still in");
        assert_eq!(get(port, Some("carol:plaintext")).0, 401);
    }
    // Requests over two more reload checks (one a second): still one line.
    let t = std::time::Instant::now();
    while t.elapsed() < Duration::from_millis(2200) {
        get(port, Some("bob:two"));
    }
    assert_eq!(logged(), 1, "the bad change is logged once");

    // A rate limit added by a change: 3 requests a minute, the 4th is 429
    // before any password check.
    replace(
        &web,
        &format!(
            "basic_auth_users:\n  bob: {}\nrate_limit:\n  interval: 1m\n  burst: 3\n",
            hash("two")
        ),
    );
    wait_until("a 429", Duration::from_secs(15), || {
        get(port, Some("bob:two")).0 == 429
    });
    let (status, text) = get(port, None);
    assert_eq!(status, 429, "{text}");
    assert!(text.contains("rate limit exceeded"), "{text}");
}
