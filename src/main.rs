use slurm_ha_exporter::cli::{self, Command, Settings};
use slurm_ha_exporter::collect;
use slurm_ha_exporter::engine::Engine;
use slurm_ha_exporter::http::access::WebState;
use slurm_ha_exporter::http::Server;
use slurm_ha_exporter::publish::Published;
use slurm_ha_exporter::role::poller::RolePoller;
use slurm_ha_exporter::{error, info, log, slurm};
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

fn build_engine(s: &Settings, durable: bool) -> Engine {
    let mut opts = s.options.0.clone();
    opts.durable_accounting = durable;
    Engine::new(collect::build_enabled(&s.collectors, &opts))
}

fn report(r: Result<String, String>) -> ExitCode {
    match r {
        Ok(msg) => {
            println!("{msg}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("slurm-ha-exporter: {e}");
            ExitCode::from(1)
        }
    }
}

fn main() -> ExitCode {
    let cmd = match cli::parse(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("slurm-ha-exporter: {e}");
            return ExitCode::from(2);
        }
    };
    let settings = match cmd {
        Command::Help => {
            print!("{}", cli::usage());
            return ExitCode::SUCCESS;
        }
        Command::Hook { on, ref ha } => return report(slurm_ha_exporter::admin::hook(on, ha)),
        Command::State { check, ref ha } => {
            return report(slurm_ha_exporter::admin::state(check, ha))
        }
        Command::Version => {
            println!(
                "slurm-ha-exporter {} (built against Slurm {})",
                env!("CARGO_PKG_VERSION"),
                slurm::BUILD_VERSION
            );
            return ExitCode::SUCCESS;
        }
        Command::AccountingJobs {
            ref cluster,
            start,
            end,
        } => return accounting_jobs(cluster, start, end),
        Command::Setup(ref args) => {
            return match slurm_ha_exporter::setup::run(args) {
                Ok(said) => {
                    for line in said {
                        eprintln!("slurm-ha-exporter: {line}");
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("slurm-ha-exporter: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Record(ref dir) => {
            return report(
                slurm::init().and_then(|()| slurm_ha_exporter::collect::record::record_live(dir)),
            )
        }
        Command::Run(ref s) | Command::CollectOnce(ref s) => s.clone(),
    };
    log::configure(settings.log_level, settings.log_json);
    // A bad web config stops the daemon at start, with the reason (checked
    // before Slurm is touched, so the reason is never hidden behind that).
    let web = match settings.web_config.clone().map(WebState::load).transpose() {
        Ok(w) => w.map(Arc::new),
        Err(e) => {
            eprintln!("slurm-ha-exporter: {e}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = slurm::init() {
        eprintln!("slurm-ha-exporter: {e}");
        return ExitCode::from(1);
    }

    if let Command::CollectOnce(_) = cmd {
        let mut engine = build_engine(&settings, false);
        engine.run_all_once();
        let snap = engine.snapshot();
        let _ = std::io::stdout().write_all(&snap.body(slurm_ha_exporter::expose::Format::Text));
        let errors = engine.errors();
        for (name, e) in &errors {
            eprintln!("slurm-ha-exporter: collector {name} failed: {e}");
        }
        return if errors.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        };
    }

    let listener = match std::net::TcpListener::bind(&settings.listen_address) {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "slurm-ha-exporter: cannot listen on {}: {e}",
                settings.listen_address
            );
            return ExitCode::from(1);
        }
    };
    let published = Arc::new(Published::default());
    if let Err(e) = install_stop_signals(published.clone()) {
        eprintln!("slurm-ha-exporter: cannot take SIGTERM and SIGINT: {e}");
        return ExitCode::from(1);
    }
    let server = Server {
        listener,
        telemetry_path: settings.telemetry_path.clone(),
        published: published.clone(),
        web,
    };
    info!(
        "listening on {} ({}), collectors: {}",
        settings.listen_address,
        settings.telemetry_path,
        settings
            .collectors
            .iter()
            .map(|(n, d)| format!("{n}/{}s", d.as_secs()))
            .collect::<Vec<_>>()
            .join(",")
    );
    let http = std::thread::Builder::new()
        .name("http".into())
        .spawn(move || server.serve());
    if let Err(e) = http {
        error!("cannot start the HTTP thread: {e}");
        return ExitCode::from(1);
    }
    // The daemon decides its role (active/standby) and keeps the
    // finished-job counters in StateSaveLocation.
    build_engine(&settings, true)
        .with_role(RolePoller::new(settings.ha.clone()))
        .run(published);
    info!("stopped");
    ExitCode::SUCCESS
}

/// The plugin's helper: slurmdbd's finished jobs on stdout, in the format
/// of collect::finished_jobs (the plugin must not open a slurmdbd
/// connection inside slurmctld).
fn accounting_jobs(cluster: &str, start: i64, end: i64) -> ExitCode {
    if let Err(e) = slurm::init() {
        eprintln!("slurm-ha-exporter: {e}");
        return ExitCode::from(1);
    }
    let jobs = slurm::DbConnection::open().and_then(|mut c| c.finished_jobs(cluster, start, end));
    match jobs {
        Ok(jobs) => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            match collect::finished_jobs::write_lines(&jobs, &mut out).and_then(|_| out.flush()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("slurm-ha-exporter: cannot write: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Err(e) => {
            eprintln!("slurm-ha-exporter: {e}");
            ExitCode::from(1)
        }
    }
}

/// SIGTERM/SIGINT end the daemon cleanly (the daemon only: plugin mode
/// installs no signal handling). They are blocked in every thread (so this
/// runs before any other thread starts, and threads inherit the mask) and
/// taken by one thread that waits for them: it may do what a signal handler
/// may not, wake the sleeping engine and role threads, so neither has to
/// wake up now and then to look for a stop.
fn install_stop_signals(published: Arc<Published>) -> std::io::Result<()> {
    // SAFETY: a zeroed sigset_t is what sigemptyset initializes; the set
    // is a local passed by reference to functions that only read or fill it.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if rc != 0 {
            return Err(std::io::Error::from_raw_os_error(rc));
        }
        set
    };
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || loop {
            let mut sig = 0;
            // SAFETY: sigwait reads the set and writes the signal number.
            if unsafe { libc::sigwait(&set, &mut sig) } == 0 {
                info!("signal {sig}: stopping");
                published.request_stop();
                return;
            }
        })
        .map(drop)
}

/// Symbols libslurm's accounting_storage/slurmdbd plugin expects from its
/// host program but libslurm.so does not export (Slurm's own clients link
/// the private libslurmfull, which has them). The plugin calls them only to
/// word error messages, e.g. when slurmdbd is down; without them the
/// dynamic loader kills the whole exporter at that moment. They live in the
/// binary only: inside slurmctld (plugin mode) the daemon's own copies win.
mod host_symbols {
    use std::os::raw::{c_char, c_int};

    #[no_mangle]
    pub extern "C" fn slurmdbd_msg_type_2_str(_msg_type: c_int, _get_enum: c_int) -> *const c_char {
        c"slurmdbd message".as_ptr()
    }

    #[no_mangle]
    pub extern "C" fn rpc_num2string(_opcode: u16) -> *const c_char {
        c"RPC".as_ptr()
    }
}
