//! The plugin in a test host instead of slurmctld: this binary links the
//! real libslurm (initialized against the embedded cluster, as slurmctld's
//! is), exports a stand-in `control_time` (the one thing named a stand-in
//! here), dlopens the built cdylib the way slurmctld's plugin loader does,
//! and drives init/fini.
//!
//! Needs the plugin built first: `cargo build -p slurm-ha-exporter-plugin`
//! (scripts/test.sh does it).

mod common;

use common::{free_port, http_get};
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// slurmctld's in-control flag, as the plugin sees it: 0 = standby.
#[no_mangle]
#[used]
pub static mut control_time: i64 = 0;

fn set_control_time(t: i64) {
    // SAFETY: a plain store to our own global; the plugin reads it with a
    // volatile load from another thread, as it reads slurmctld's.
    unsafe { std::ptr::write_volatile(std::ptr::addr_of_mut!(control_time), t) };
}

fn plugin_path() -> PathBuf {
    if let Some(p) = std::env::var_os("PLUGIN_SO") {
        return p.into();
    }
    // target/<profile>/deps/plugin_host-<hash> -> target/<profile>/
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let so = dir.join("libjob_submit_ha_exporter.so");
    assert!(
        so.exists(),
        "{} is missing: build it first with `cargo build -p slurm-ha-exporter-plugin`",
        so.display()
    );
    so
}

struct Plugin {
    handle: *mut c_void,
    init: extern "C" fn() -> c_int,
    fini: extern "C" fn() -> c_int,
}

impl Plugin {
    /// dlopen + the symbol checks slurmctld's plugin loader makes.
    fn open() -> Plugin {
        let path = CString::new(plugin_path().to_str().unwrap()).unwrap();
        // SAFETY: dlopen/dlsym with valid strings; the symbols are checked
        // for NULL before use and have the types the plugin exports.
        unsafe {
            let handle = libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
            if handle.is_null() {
                panic!(
                    "dlopen: {}",
                    CStr::from_ptr(libc::dlerror()).to_string_lossy()
                );
            }
            let sym = |name: &str| {
                let n = CString::new(name).unwrap();
                let p = libc::dlsym(handle, n.as_ptr());
                assert!(!p.is_null(), "plugin lacks {name}");
                p
            };
            let name = CStr::from_ptr(sym("plugin_name") as *const c_char);
            let kind = CStr::from_ptr(sym("plugin_type") as *const c_char);
            let version = *(sym("plugin_version") as *const u32);
            assert!(!name.to_bytes().is_empty());
            assert_eq!(kind.to_str().unwrap(), "job_submit/ha_exporter");
            assert_eq!(version, slurm_ha_exporter::slurm::BUILD_VERSION_NUMBER);
            for f in ["job_submit", "job_modify"] {
                sym(f);
            }
            let submit: extern "C" fn(*mut c_void, u32, *mut *mut c_char) -> c_int =
                std::mem::transmute(sym("job_submit"));
            assert_eq!(submit(std::ptr::null_mut(), 0, std::ptr::null_mut()), 0);
            Plugin {
                handle,
                init: std::mem::transmute::<*mut c_void, extern "C" fn() -> c_int>(sym("init")),
                fini: std::mem::transmute::<*mut c_void, extern "C" fn() -> c_int>(sym("fini")),
            }
        }
    }

    /// fini must return 0 and within its bound.
    fn fini(&self) -> Duration {
        let t0 = Instant::now();
        assert_eq!((self.fini)(), 0);
        let took = t0.elapsed();
        assert!(took < Duration::from_secs(11), "fini took {took:?}");
        took
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        // SAFETY: the handle from dlopen, closed once.
        unsafe { libc::dlclose(self.handle) };
    }
}

/// The embedded cluster (taken under the cluster lock), libslurm set up as
/// slurmctld's would be, and a plugin configuration on a free port.
fn host(extra: &[&str]) -> (common::ClusterGuard, u16, tempdir::Dir) {
    let guard = common::cluster();
    slurm_ha_exporter::slurm::init().unwrap();
    let dir = tempdir::Dir::new("plugin-host");
    let port = free_port();
    let mut conf = format!(
        "# written by tests/plugin_host.rs\n--web.listen-address=127.0.0.1:{port}\n--ha.poll-interval=1s\n\
         --collector.jobs.interval=2s\n--collector.accounting.interval=2s\n\
         --ha.state-save-location={}\n--collector.accounting.helper={}\n",
        dir.path().display(),
        env!("CARGO_BIN_EXE_slurm-ha-exporter"),
    );
    for l in extra {
        conf.push_str(l);
        conf.push('\n');
    }
    let file = dir.path().join("ha_exporter.conf");
    std::fs::write(&file, conf).unwrap();
    std::env::set_var("SLURM_HA_EXPORTER_CONF", &file);
    (guard, port, dir)
}

fn scrape(port: u16) -> Option<String> {
    http_get(port, "/metrics", None).and_then(|(s, _, b)| (s == 200).then_some(b))
}

fn active(port: u16) -> Option<bool> {
    scrape(port).map(|t| t.lines().any(|l| l == "slurm_exporter_active 1"))
}

fn listening(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

fn count(dir: &str) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

#[test]
fn init_serves_follows_control_time_and_fini_closes_the_port() {
    let (_guard, port, _dir) = host(&[]);
    let plugin = Plugin::open();
    set_control_time(0);
    let t0 = Instant::now();
    assert_eq!((plugin.init)(), 0);
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "init must return at once"
    );

    common::wait_until("the standby answer", Duration::from_secs(20), || {
        active(port) == Some(false)
    });
    let standby = scrape(port).unwrap();
    assert!(!standby.contains("slurm_node_cpus{"), "{standby}");
    assert!(
        standby.contains("role=\"standby\"") && standby.contains("source=\"slurmctld\""),
        "{standby}"
    );

    // slurmctld takes control: cluster series appear.
    set_control_time(1_700_000_000);
    common::wait_until("cluster series", Duration::from_secs(30), || {
        scrape(port).is_some_and(|t| {
            t.contains("slurm_exporter_active 1") && t.contains("slurm_node_cpus{")
        })
    });
    // And leaves it: back to the standby answer.
    set_control_time(0);
    common::wait_until("standby again", Duration::from_secs(20), || {
        scrape(port).is_some_and(|t| {
            t.contains("slurm_exporter_active 0") && !t.contains("slurm_node_cpus{")
        })
    });

    let took = plugin.fini();
    eprintln!("fini took {took:?}");
    assert!(
        !listening(port),
        "the port must be closed once fini returns"
    );
}

#[test]
fn a_hundred_init_fini_cycles_leak_no_thread_or_fd() {
    let (_guard, port, _dir) = host(&[]);
    let plugin = Plugin::open();
    let (threads0, fds0) = (count("/proc/self/task"), count("/proc/self/fd"));
    let mut slowest = Duration::ZERO;
    for i in 0..100 {
        // Every 25th cycle runs the collectors against the real slurmctld.
        let as_active = i % 25 == 24;
        set_control_time(if as_active { 1_700_000_000 } else { 0 });
        assert_eq!((plugin.init)(), 0);
        common::wait_until("the plugin to answer", Duration::from_secs(20), || {
            active(port) == Some(as_active)
        });
        slowest = slowest.max(plugin.fini());
        assert!(!listening(port), "cycle {i}: port still open after fini");
    }
    set_control_time(0);
    // Connection threads of the last scrapes end a moment after answering.
    let t0 = Instant::now();
    let (mut threads, mut fds) = (0, 0);
    while t0.elapsed() < Duration::from_secs(15) {
        (threads, fds) = (count("/proc/self/task"), count("/proc/self/fd"));
        if threads <= threads0 && fds <= fds0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "100 cycles: threads {threads0} -> {threads}, fds {fds0} -> {fds}, slowest fini {slowest:?}"
    );
    assert!(
        threads <= threads0,
        "threads leaked: {threads0} -> {threads}"
    );
    assert!(fds <= fds0, "fds leaked: {fds0} -> {fds}");
}

#[test]
fn panics_in_init_or_the_engine_never_reach_the_host() {
    let (_guard, port, _dir) = host(&[]);
    let plugin = Plugin::open();
    let threads0 = count("/proc/self/task");
    set_control_time(1_700_000_000);

    std::env::set_var("SLURM_HA_EXPORTER_TEST_PANIC", "init");
    assert_eq!(
        (plugin.init)(),
        0,
        "init reports success and stays disabled"
    );
    assert_eq!(
        count("/proc/self/task"),
        threads0,
        "no thread after a panic in init"
    );
    plugin.fini();

    std::env::set_var("SLURM_HA_EXPORTER_TEST_PANIC", "engine");
    assert_eq!((plugin.init)(), 0);
    // The engine thread dies by its panic and takes the listener with it.
    common::wait_until(
        "the panicked plugin to close its port",
        Duration::from_secs(20),
        || count("/proc/self/task") <= threads0 && !listening(port),
    );
    plugin.fini();

    // The host goes on, and the next init works again.
    std::env::remove_var("SLURM_HA_EXPORTER_TEST_PANIC");
    assert_eq!((plugin.init)(), 0);
    common::wait_until("the plugin to serve again", Duration::from_secs(30), || {
        active(port) == Some(true)
    });
    plugin.fini();
}

#[test]
fn a_bad_configuration_disables_the_plugin_and_nothing_else() {
    let (_guard, port, _dir) = host(&["--collector.bogus"]);
    let plugin = Plugin::open();
    let threads0 = count("/proc/self/task");
    assert_eq!((plugin.init)(), 0);
    common::wait_until(
        "the plugin thread to give up",
        Duration::from_secs(10),
        || count("/proc/self/task") <= threads0,
    );
    assert!(!listening(port));
    plugin.fini();
}

/// The HTTP front's limits hold inside the plugin too: slowloris clients
/// do not hold up a scrape, oversized heads get 431, garbage 400, and fini
/// still closes the port at once.
#[test]
fn hostile_clients_against_the_plugin_build() {
    use std::io::{Read, Write};
    let (_guard, port, _dir) = host(&[]);
    let plugin = Plugin::open();
    set_control_time(0);
    assert_eq!((plugin.init)(), 0);
    common::wait_until("the plugin to answer", Duration::from_secs(20), || {
        active(port) == Some(false)
    });
    let mut slow = Vec::new();
    for _ in 0..300 {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nX-Slow: ").unwrap();
        slow.push(s);
    }
    let t0 = Instant::now();
    assert_eq!(active(port), Some(false));
    let took = t0.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "a scrape behind 300 slow clients took {took:?}"
    );
    let big = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(10_000));
    let answer = |req: &[u8]| {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = s.write_all(req);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    };
    assert!(answer(big.as_bytes()).starts_with("HTTP/1.1 431"));
    assert!(answer(b"\x00\xff\xfe garbage\r\n\r\n").starts_with("HTTP/1.1 400"));
    assert!(answer(b"DELETE /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
    eprintln!("plugin build: scrape behind 300 slowloris clients took {took:?}");
    plugin.fini();
    assert!(!listening(port));
    drop(slow);
}

/// A temporary directory removed on drop (no extra crate for it).
mod tempdir {
    use std::path::{Path, PathBuf};
    pub struct Dir(PathBuf);
    impl Dir {
        pub fn new(prefix: &str) -> Dir {
            let p = std::env::temp_dir().join(format!(
                "{prefix}-{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos()
            ));
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
