//! Plugin mode: the exporter inside slurmctld, behind the job_submit
//! plugin's C entry points (the `plugin/` crate). `start` is called from
//! `init()`, `stop` from `fini()`.
//!
//! Rules this follows, because the host is slurmctld:
//! - one thread of ours is started and `init()` returns at once; it owns
//!   the HTTP listener and the engine, and makes no RPC until slurmctld's
//!   own flag says it is in control (its RPC thread may not exist before);
//! - no slurm_init/slurm_fini (slurmctld's libslurm is already set up), no
//!   slurmdbd connection in-process (see collect::finished_jobs), no
//!   slurmctld locks, no signal handlers; our threads block the signals
//!   slurmctld handles, so they are always delivered to slurmctld's own;
//! - the programs we run (the accounting helper, azslurm) send slurmctld
//!   no SIGCHLD (crate::child: on 26.05 a signal during a hand-over of
//!   control wedges slurmctld);
//! - every panic is caught at the thread's edge, logged, and leaves the
//!   plugin disabled, never slurmctld down;
//! - a problem (bad ha_exporter.conf, no `control_time`) is one line in
//!   slurmctld's log and a disabled plugin; slurmctld starts regardless;
//! - `stop` returns within a bounded time; a thread still inside a Slurm
//!   call then finishes on its own (the cdylib is linked `-z nodelete`, so
//!   its code stays mapped after dlclose);
//! - slurmctld calls `fini()` only when its plugin list changes on
//!   reconfigure (and in leak-debug builds): a normal shutdown is `exit(0)`
//!   with our threads running, so an `atexit` handler stops them first.

pub mod config;

use crate::engine::Engine;
use crate::http::access::WebState;
use crate::http::{self, Server};
use crate::publish::Published;
use crate::role::poller::RolePoller;
use crate::slurm::host::ControlFlag;
use crate::{collect, error, info, log};
use std::net::{SocketAddr, TcpListener};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, Once};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long `fini()` waits for our threads.
pub const STOP_DEADLINE: Duration = Duration::from_secs(10);
/// How long slurmctld's exit may wait for them.
const EXIT_DEADLINE: Duration = Duration::from_secs(2);

/// Test hook, named as such: `SLURM_HA_EXPORTER_TEST_PANIC=engine` makes
/// the engine thread panic once it serves, `=init` makes `start` panic, so
/// the tests can prove that no panic reaches slurmctld.
const TEST_PANIC: &str = "SLURM_HA_EXPORTER_TEST_PANIC";

struct Running {
    published: Arc<Published>,
    addr: Arc<Mutex<Option<SocketAddr>>>,
    finished: Arc<(Mutex<bool>, Condvar)>,
    thread: JoinHandle<()>,
}

static RUNNING: Mutex<Option<Running>> = Mutex::new(None);

fn test_panic(at: &str) -> bool {
    std::env::var(TEST_PANIC).is_ok_and(|v| v == at)
}

/// `init()`: starts the exporter thread and returns.
pub fn start() -> Result<(), String> {
    log::to_slurmctld(true);
    install_panic_hook();
    stop_at_exit();
    if test_panic("init") {
        panic!("forced by {TEST_PANIC}=init");
    }
    let mut running = RUNNING.lock().map_err(|_| "plugin state poisoned")?;
    if running.is_some() {
        return Ok(());
    }
    let published = Arc::new(Published::default());
    let addr = Arc::new(Mutex::new(None));
    let finished = Arc::new((Mutex::new(false), Condvar::new()));
    let (p, a, f) = (published.clone(), addr.clone(), finished.clone());
    let thread = with_signals_blocked(|| {
        std::thread::Builder::new()
            .name("ha_exporter".into())
            .spawn(move || {
                if let Err(e) = catch_unwind(AssertUnwindSafe(|| serve(&p, &a))) {
                    error!(
                        "exporter thread stopped by a panic ({}); the plugin stays disabled until slurmctld restarts",
                        panic_text(&*e)
                    );
                }
                let (done, cv) = &*f;
                if let Ok(mut d) = done.lock() {
                    *d = true;
                }
                cv.notify_all();
            })
    })
    .map_err(|e| format!("cannot start the exporter thread: {e}"))?;
    *running = Some(Running {
        published,
        addr,
        finished,
        thread,
    });
    Ok(())
}

/// `fini()`: stops the exporter and waits for it, at most `deadline`.
/// Returns false if a thread was still busy (left to finish on its own).
pub fn stop(deadline: Duration) -> bool {
    let Some(r) = RUNNING.lock().ok().and_then(|mut g| g.take()) else {
        return true;
    };
    r.published.request_stop();
    if let Some(a) = r.addr.lock().ok().and_then(|g| *g) {
        http::wake(a);
    }
    let until = Instant::now() + deadline;
    let (done, cv) = &*r.finished;
    let mut d = match done.lock() {
        Ok(d) => d,
        Err(_) => return false,
    };
    while !*d {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            error!(
                "the exporter thread did not stop within {deadline:?} (inside a Slurm call); it ends on its own"
            );
            return false;
        }
        d = match cv.wait_timeout(d, left) {
            Ok((g, _)) => g,
            Err(_) => return false,
        };
    }
    drop(d);
    let _ = r.thread.join();
    info!("stopped");
    true
}

/// The exporter thread: settings, the in-process flag, the listener, then
/// the engine until stopped. Whatever happens, the HTTP thread is stopped
/// and joined before this returns.
fn serve(published: &Arc<Published>, addr: &Mutex<Option<SocketAddr>>) {
    let file = config::path();
    let settings = match config::load(&file) {
        Ok(s) => s,
        Err(e) => {
            error!("{e}; the plugin stays disabled (slurmctld is not affected)");
            return;
        }
    };
    log::configure(settings.log_level, false);
    let web = match settings.web_config.clone().map(WebState::load).transpose() {
        Ok(w) => w.map(Arc::new),
        Err(e) => {
            error!("{e}; the plugin stays disabled (slurmctld is not affected)");
            return;
        }
    };
    let Some(flag) = ControlFlag::find() else {
        error!("slurmctld's control_time symbol was not found (is this slurmctld?); the plugin stays disabled");
        return;
    };
    let Some(listener) = bind(&settings.listen_address, published) else {
        return;
    };
    let local = listener.local_addr().ok();
    if let Ok(mut a) = addr.lock() {
        *a = local;
    }
    info!(
        "serving {} on {} (settings from {}); cluster metrics while this slurmctld is in control",
        settings.telemetry_path,
        settings.listen_address,
        file.display()
    );
    let server = Server {
        listener,
        telemetry_path: settings.telemetry_path.clone(),
        published: published.clone(),
        web,
    };
    let http = std::thread::Builder::new()
        .name("ha_exporter_http".into())
        .spawn(move || server.serve());
    let engine_result = catch_unwind(AssertUnwindSafe(|| {
        if test_panic("engine") {
            panic!("forced by {TEST_PANIC}=engine");
        }
        Engine::new(collect::build_enabled(
            &settings.collectors,
            &settings.options.0,
        ))
        .with_role(RolePoller::in_process(settings.ha.clone(), flag))
        .run(published.clone());
    }));
    published.request_stop();
    if let Some(a) = local {
        http::wake(a);
    }
    if let Ok(h) = http {
        let _ = h.join();
    }
    if let Err(e) = engine_result {
        std::panic::resume_unwind(e);
    }
}

/// Registers (once per process) a handler that stops the exporter when
/// slurmctld exits: the listener closes and a state write in progress
/// ends before libc tears the process down.
fn stop_at_exit() {
    static ONCE: Once = Once::new();
    extern "C" fn at_exit() {
        let _ = catch_unwind(|| {
            // slurmctld closed its log before exit(): say nothing there.
            log::to_slurmctld(false);
            log::configure(log::Level::Error, false);
            stop(EXIT_DEADLINE);
        });
    }
    ONCE.call_once(|| {
        // SAFETY: registers a function of the type atexit expects; the
        // code stays mapped until the process ends (-z nodelete).
        unsafe { libc::atexit(at_exit) };
    });
}

/// Binds, retrying every second until stopped: from 23.11 `scontrol
/// reconfigure` re-executes slurmctld, and the new process loads the
/// plugin while the old one may still hold the port.
fn bind(address: &str, published: &Published) -> Option<TcpListener> {
    let mut said = false;
    loop {
        match TcpListener::bind(address) {
            Ok(l) => {
                if said {
                    info!("{address} is free again; listening");
                }
                return Some(l);
            }
            Err(e) => {
                if !said {
                    error!("cannot listen on {address}: {e}; retrying every second");
                    said = true;
                }
            }
        }
        let until = Instant::now() + Duration::from_secs(1);
        while Instant::now() < until {
            if published.stopping() {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Runs `f` (which starts a thread) with every signal blocked but the ones
/// a fault raises in the faulting thread, so the new thread and all it
/// starts inherit that mask: slurmctld's signal thread gets every signal.
fn with_signals_blocked<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: sigset_t values are initialized by sigfillset/sigdelset
    // before use; pthread_sigmask only changes this thread's mask, and the
    // old mask is restored before returning.
    unsafe {
        let mut block: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut block);
        for s in [libc::SIGSEGV, libc::SIGBUS, libc::SIGFPE, libc::SIGILL] {
            libc::sigdelset(&mut block, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &block, &mut old);
        let out = f();
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        out
    }
}

/// Panics are logged through slurmctld's log (the default hook writes to
/// a stderr that slurmctld may have closed).
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let at = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .unwrap_or_default();
            error!("panic at {at}: {}", panic_text(info.payload()));
        }));
    });
}

pub fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-text panic".into())
}
