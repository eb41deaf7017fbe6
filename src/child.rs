//! Running a program (the accounting helper, azslurm, jetpack) without
//! disturbing the process we live in.
//!
//! Inside slurmctld a child must not send SIGCHLD when it ends. Slurm 26.05
//! handles signals through its connection manager: the handler writes the
//! signal number into a pipe that conmgr reads. While a backup slurmctld
//! hands control back, conmgr quiesces and waits until that pipe is empty;
//! once its quiesce timeout (2 x MessageTimeout) has passed it re-arms an
//! interrupt on every loop that keeps it from ever polling the pipe again,
//! so a signal arriving then is never read and slurmctld spins at 100% CPU,
//! answering nothing (seen on the HA bed: five SIGCHLD from the accounting
//! helper were sitting in the pipe; reading them by hand let it finish).
//! A child started with `std::process::Command` is a fork or vfork that
//! signals SIGCHLD on exit, and so is any process that execs (the kernel
//! resets the exit signal on exec). So the program runs as a grandchild:
//! our direct child, the keeper, is cloned with exit signal 0 and never
//! execs; it forks the program, waits for it and ends the way it ended.
//! The program's SIGCHLD goes to the keeper; the keeper's end signals us
//! nothing, and slurmctld's own `waitpid(-1)` cannot reap it either (only
//! a wait with `__WALL`/`__WCLONE` sees such a child).
//!
//! Everything else is what a careful spawn does: the child gets default
//! signal dispositions and an empty signal mask (our threads block every
//! signal), stdin from /dev/null, stdout and stderr piped, and none of the
//! parent's other descriptors (slurmctld's are not all close-on-exec).
//! Every raw call of this crate's process handling is in this module.

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::mpsc;
use std::time::Duration;

/// What a finished run left.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// Killed at the deadline (the output is then partial).
    pub timed_out: bool,
}

/// Runs `program` with `args`, the environment of this process plus `env`,
/// and waits for it, killing it (SIGKILL) at `deadline`. An error means it
/// could not be started (not found, not executable, no descriptors).
pub fn run(
    program: &Path,
    args: &[&str],
    env: &[(&str, &OsStr)],
    deadline: Duration,
) -> io::Result<Output> {
    let child = spawn(program, args, env)?;
    let pid = child.pid;
    // The watchdog kills at the deadline unless told (by the sender being
    // dropped) that both pipes reached EOF. The child is reaped only after
    // the watchdog ended, so the pid it may kill is still ours.
    let (done, until_done) = mpsc::channel::<()>();
    let watchdog = std::thread::Builder::new()
        .name("child-deadline".into())
        .spawn(move || match until_done.recv_timeout(deadline) {
            Err(mpsc::RecvTimeoutError::Timeout) => {
                kill(pid);
                true
            }
            _ => false,
        });
    if let Err(e) = watchdog {
        // No deadline, no run: a hung program would hang us.
        kill(pid);
        let _ = reap(pid);
        return Err(e);
    }
    let mut stderr_file = child.stderr;
    let stderr_reader = std::thread::Builder::new()
        .name("child-stderr".into())
        .spawn(move || {
            let mut s = Vec::new();
            let _ = stderr_file.read_to_end(&mut s);
            s
        });
    let mut stdout = Vec::new();
    let mut stdout_file = child.stdout;
    let _ = stdout_file.read_to_end(&mut stdout);
    let stderr = match stderr_reader {
        Ok(h) => h.join().unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    drop(done);
    let timed_out = watchdog.map(|h| h.join().unwrap_or(false)).unwrap_or(false);
    let status = reap(pid)?;
    Ok(Output {
        status,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        timed_out,
    })
}

/// SIGKILL to the keeper's process group (the keeper, the program and
/// whatever the program started that still holds our pipes), and to the
/// keeper itself in case it has not made its group yet (the program then
/// dies by PDEATHSIG).
fn kill(keeper: libc::pid_t) {
    // SAFETY: kill(2) on our unreaped child and the group it leads.
    unsafe {
        libc::kill(-keeper, libc::SIGKILL);
        libc::kill(keeper, libc::SIGKILL);
    }
}

struct Started {
    pid: libc::pid_t,
    stdout: File,
    stderr: File,
}

/// The program's path: as given when it names a directory, else the first
/// executable of that name on PATH (what a shell would run).
fn resolve(program: &Path) -> io::Result<PathBuf> {
    if program.as_os_str().as_bytes().contains(&b'/') {
        return Ok(program.to_path_buf());
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt;
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} not found on PATH", program.display()),
            )
        })
}

fn cstring(b: &[u8]) -> io::Result<CString> {
    CString::new(b).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in an argument"))
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array on success; each
    // is then owned by exactly one OwnedFd.
    unsafe {
        if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok((OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])))
    }
}

/// Everything the child needs, prepared before the clone: between clone
/// and exec the child may not allocate (another thread may have held the
/// allocator's lock at the moment of the copy).
struct Prepared {
    path: CString,
    _argv: Vec<CString>,
    argv: Vec<*const libc::c_char>,
    _envp: Vec<CString>,
    envp: Vec<*const libc::c_char>,
    max_fd: libc::c_int,
    max_signal: libc::c_int,
}

fn prepare(program: &Path, args: &[&str], env: &[(&str, &OsStr)]) -> io::Result<Prepared> {
    let path = resolve(program)?;
    let path = cstring(path.as_os_str().as_bytes())?;
    let mut argv_owned = vec![cstring(program.as_os_str().as_bytes())?];
    for a in args {
        argv_owned.push(cstring(a.as_bytes())?);
    }
    let mut vars: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter(|(k, _)| !env.iter().any(|(e, _)| OsStr::new(e) == k))
        .collect();
    vars.extend(
        env.iter()
            .map(|(k, v)| (OsString::from(k), v.to_os_string())),
    );
    let mut envp_owned = Vec::with_capacity(vars.len());
    for (k, v) in vars {
        let mut kv = k.into_vec();
        kv.push(b'=');
        kv.extend_from_slice(v.as_bytes());
        envp_owned.push(cstring(&kv)?);
    }
    let argv = argv_owned
        .iter()
        .map(|c| c.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let envp = envp_owned
        .iter()
        .map(|c| c.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    Ok(Prepared {
        path,
        _argv: argv_owned,
        argv,
        _envp: envp_owned,
        envp,
        max_fd: open_files_limit(),
        max_signal: libc::SIGRTMAX(),
    })
}

/// The highest descriptor number to mark close-on-exec where close_range
/// is not available (Linux < 5.11).
fn open_files_limit() -> libc::c_int {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct it is given.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } == 0;
    if ok {
        rl.rlim_cur.min(1 << 20) as libc::c_int
    } else {
        4096
    }
}

fn spawn(program: &Path, args: &[&str], env: &[(&str, &OsStr)]) -> io::Result<Started> {
    let p = prepare(program, args, env)?;
    // SAFETY: /dev/null is opened with a static NUL-terminated path.
    let null = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if null < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a descriptor we just opened and own.
    let null = unsafe { OwnedFd::from_raw_fd(null) };
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    // The program's process writes its errno here if exec fails; on
    // success the close-on-exec write end closes and we read EOF.
    let (status_r, status_w) = pipe()?;
    let fds = ChildFds {
        null: null.as_raw_fd(),
        out: out_w.as_raw_fd(),
        err: err_w.as_raw_fd(),
        status: status_w.as_raw_fd(),
    };

    // SAFETY: a clone without CLONE_VM and with exit signal 0 is a fork
    // whose end signals nothing. The child runs on its copy of this stack
    // and calls only async-signal-safe functions on data prepared above,
    // then _exits: it never returns into Rust code.
    let pid = unsafe { raw_fork(0) };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: see above.
        unsafe { keeper(&p, &fds) }
    }
    let pid = pid as libc::pid_t;
    drop((null, out_w, err_w, status_w));
    let mut report = Vec::new();
    let _ = File::from(status_r).read_to_end(&mut report);
    if let Ok(errno) = <[u8; 4]>::try_from(report.as_slice()) {
        let _ = reap(pid);
        return Err(io::Error::from_raw_os_error(i32::from_ne_bytes(errno)));
    }
    Ok(Started {
        pid,
        stdout: File::from(out_r),
        stderr: File::from(err_r),
    })
}

/// The descriptors the program gets (raw: used between fork and exec).
struct ChildFds {
    null: i32,
    out: i32,
    err: i32,
    status: i32,
}

/// fork(2) by the raw system call, with the given exit signal: glibc's
/// fork would run slurmctld's atfork handlers, which may take locks that
/// another thread held at the moment of the copy.
///
/// # Safety
/// The child may only call async-signal-safe functions and must not
/// return into code that expects the parent's other threads.
unsafe fn raw_fork(exit_signal: libc::c_int) -> libc::c_long {
    let flags = exit_signal as libc::c_ulong;
    let zero: libc::c_ulong = 0;
    libc::syscall(libc::SYS_clone, flags, zero, zero, zero, zero)
}

/// Our direct child, the keeper: the kernel resets the exit signal to
/// SIGCHLD when a process execs, so the program cannot be our child. The
/// keeper never execs: it forks the program, waits for it, and ends the
/// way the program ended; its own end signals nothing to us. If it is
/// killed (the deadline), the program gets SIGKILL with it (PDEATHSIG).
///
/// # Safety
/// Only in the exit-signal-0 child of `spawn`; never returns.
unsafe fn keeper(p: &Prepared, fds: &ChildFds) -> ! {
    // Block everything, then drop the parent's handlers: slurmctld's write
    // to its own signal pipe, whose descriptor this copy still holds.
    let mut all: libc::sigset_t = std::mem::zeroed();
    libc::sigfillset(&mut all);
    libc::pthread_sigmask(libc::SIG_SETMASK, &all, std::ptr::null_mut());
    for sig in 1..=p.max_signal {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            libc::signal(sig, libc::SIG_DFL);
        }
    }
    let keeper_pid = libc::getpid();
    // Our own process group, inherited by the program and its children:
    // the deadline kills them all (`kill`).
    libc::setpgid(0, 0);
    let pid = raw_fork(libc::SIGCHLD);
    if pid == 0 {
        program(p, fds, keeper_pid);
    }
    // The keeper holds nothing: our reads see EOF when the program ends.
    if libc::syscall(
        libc::SYS_close_range,
        0 as libc::c_uint,
        libc::c_uint::MAX,
        0,
    ) != 0
    {
        for fd in 0..p.max_fd {
            libc::close(fd);
        }
    }
    if pid < 0 {
        libc::_exit(127);
    }
    let pid = pid as libc::pid_t;
    let mut status = 0;
    while libc::waitpid(pid, &mut status, 0) != pid {
        if *libc::__errno_location() != libc::EINTR {
            libc::_exit(127);
        }
    }
    if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        // Die of the same signal, but never dump a core of this copy of
        // slurmctld's memory.
        let no_core = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::setrlimit(libc::RLIMIT_CORE, &no_core);
        let mut one: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut one);
        libc::sigaddset(&mut one, sig);
        libc::kill(keeper_pid, sig);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &one, std::ptr::null_mut());
        libc::_exit(128 + sig);
    }
    libc::_exit(libc::WEXITSTATUS(status))
}

/// The keeper's child: becomes the program.
///
/// # Safety
/// Only in the keeper's child; never returns.
unsafe fn program(p: &Prepared, fds: &ChildFds, keeper_pid: libc::pid_t) -> ! {
    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    if libc::getppid() != keeper_pid {
        // The keeper was killed before PDEATHSIG was set.
        libc::_exit(127);
    }
    if libc::dup2(fds.null, 0) < 0 || libc::dup2(fds.out, 1) < 0 || libc::dup2(fds.err, 2) < 0 {
        fail(fds.status);
    }
    if libc::syscall(
        libc::SYS_close_range,
        3 as libc::c_uint,
        libc::c_uint::MAX,
        libc::CLOSE_RANGE_CLOEXEC,
    ) != 0
    {
        for fd in 3..p.max_fd {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 {
                libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
            }
        }
    }
    let mut empty: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut empty);
    libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    libc::execve(p.path.as_ptr(), p.argv.as_ptr(), p.envp.as_ptr());
    fail(fds.status)
}

/// In the program's process: report errno to the parent and end.
unsafe fn fail(status: i32) -> ! {
    let e = *libc::__errno_location();
    let b = e.to_ne_bytes();
    libc::write(status, b.as_ptr().cast(), b.len());
    libc::_exit(127)
}

/// Waits for our child `pid` (a clone child: `__WALL` is needed to see it).
fn reap(pid: libc::pid_t) -> io::Result<ExitStatus> {
    let mut status = 0;
    loop {
        // SAFETY: waitpid writes the status of our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
        if r == pid {
            return Ok(ExitStatus::from_raw(status));
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn sh(script: &str, deadline: Duration) -> io::Result<Output> {
        run(Path::new("sh"), &["-c", script], &[], deadline)
    }

    #[test]
    fn output_status_and_environment_come_back() {
        let out = run(
            Path::new("/bin/sh"),
            &["-c", "echo \"out $GREETING\"; echo err >&2; exit 3"],
            &[("GREETING", OsStr::new("hello"))],
            Duration::from_secs(30),
        )
        .unwrap();
        assert_eq!(out.stdout, "out hello\n");
        assert_eq!(out.stderr, "err\n");
        assert_eq!(out.status.code(), Some(3));
        assert!(!out.timed_out);
    }

    #[test]
    fn a_program_killed_by_a_signal_is_reported_so() {
        for (sig, name) in [(libc::SIGTERM, "TERM"), (libc::SIGSEGV, "SEGV")] {
            let out = sh(
                &format!("ulimit -c 0; kill -{name} $$"),
                Duration::from_secs(30),
            )
            .unwrap();
            assert_eq!(out.status.signal(), Some(sig), "{name}: {:?}", out.status);
            assert!(!out.timed_out);
        }
    }

    #[test]
    fn a_missing_program_is_an_error_naming_the_cause() {
        let e = run(
            Path::new("/nonexistent/helper"),
            &[],
            &[],
            Duration::from_secs(5),
        )
        .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let e = run(Path::new("/etc"), &[], &[], Duration::from_secs(5)).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EACCES));
    }

    #[test]
    fn a_child_past_its_deadline_is_killed() {
        let t0 = Instant::now();
        let out = sh("echo $$; exec sleep 30", Duration::from_millis(300)).unwrap();
        assert!(out.timed_out);
        assert_eq!(out.status.signal(), Some(libc::SIGKILL));
        // The reads ended long before the program would have: it died with
        // the keeper (PDEATHSIG), it was not left behind.
        assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
        let program: u32 = out.stdout.trim().parse().unwrap();
        assert!(
            wait_gone(program, Duration::from_secs(10)),
            "program {program} still runs"
        );
    }

    /// A program that left a child holding its stdout: the deadline takes
    /// that one too, or the read would wait for it.
    #[test]
    fn the_deadline_kills_what_the_program_started() {
        let t0 = Instant::now();
        let out = sh("sleep 30 & echo $!; wait", Duration::from_millis(300)).unwrap();
        assert!(out.timed_out);
        assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
        let left: u32 = out.stdout.trim().parse().unwrap();
        assert!(
            wait_gone(left, Duration::from_secs(10)),
            "the program's child {left} still runs"
        );
    }

    /// True once `pid` has ended (gone, or a zombie not reaped yet).
    fn wait_gone(pid: u32, within: Duration) -> bool {
        let gone = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
                s.rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('Z'))
            })
        };
        let deadline = Instant::now() + within;
        while !gone() {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    #[test]
    fn the_child_holds_none_of_our_descriptors_and_no_blocked_signals() {
        // A descriptor without close-on-exec, like slurmctld's sockets.
        let (r, _w) = pipe().unwrap();
        // SAFETY: duplicates a descriptor we own to 100 or above, without
        // FD_CLOEXEC; the copy is closed below.
        let fd = unsafe { libc::fcntl(r.as_raw_fd(), libc::F_DUPFD, 100) };
        assert!(fd >= 100);
        let out = sh(
            "ls /proc/self/fd; grep SigBlk /proc/self/status",
            Duration::from_secs(30),
        )
        .unwrap();
        // SAFETY: closes the copy made above.
        unsafe { libc::close(fd) };
        let fds: Vec<&str> = out
            .stdout
            .lines()
            .take_while(|l| !l.starts_with("Sig"))
            .collect();
        assert!(
            !fds.contains(&fd.to_string().as_str()),
            "{fds:?} holds {fd}"
        );
        assert!(fds.contains(&"1"), "{fds:?}");
        assert!(
            out.stdout.contains("SigBlk:\t0000000000000000"),
            "{}",
            out.stdout
        );
    }

    /// The child we wait for is a clone child that signals nothing on
    /// exit, so a plain waitpid (slurmctld's) does not see it.
    #[test]
    fn the_child_is_invisible_to_a_plain_waitpid() {
        let c = spawn(Path::new("sleep"), &["30"], &[]).unwrap();
        let mut status = 0;
        // SAFETY: waitpid on a pid we started; WNOHANG never blocks.
        let r = unsafe { libc::waitpid(c.pid, &mut status, libc::WNOHANG) };
        let e = io::Error::last_os_error();
        // SAFETY: our unreaped child.
        unsafe { libc::kill(c.pid, libc::SIGKILL) };
        let st = reap(c.pid).unwrap();
        assert_eq!(r, -1);
        assert_eq!(e.raw_os_error(), Some(libc::ECHILD));
        assert_eq!(st.signal(), Some(libc::SIGKILL));
    }

    /// Senders of the SIGCHLDs this process received (test-wide).
    static SIGCHLD_FROM: [std::sync::atomic::AtomicI32; 64] =
        [const { std::sync::atomic::AtomicI32::new(0) }; 64];
    static SIGCHLD_COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    extern "C" fn on_sigchld(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
        use std::sync::atomic::Ordering;
        let i = SIGCHLD_COUNT.fetch_add(1, Ordering::SeqCst);
        // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
        let pid = unsafe { (*info).si_pid() };
        if let Some(slot) = SIGCHLD_FROM.get(i) {
            slot.store(pid, Ordering::SeqCst);
        }
    }

    fn sigchld_senders() -> Vec<i32> {
        use std::sync::atomic::Ordering;
        let n = SIGCHLD_COUNT.load(Ordering::SeqCst).min(SIGCHLD_FROM.len());
        SIGCHLD_FROM[..n]
            .iter()
            .map(|p| p.load(Ordering::SeqCst))
            .collect()
    }

    /// What slurmctld 26.05 needs: neither the keeper nor the program (its
    /// pid is the shell's `$$`) sends us SIGCHLD, while a child of
    /// std::process::Command does (the handler works).
    #[test]
    fn no_sigchld_reaches_the_parent() {
        // SAFETY: installs a handler that only touches atomics.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_sigchld as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            assert_eq!(libc::sigaction(libc::SIGCHLD, &sa, std::ptr::null_mut()), 0);
        }
        let c = spawn(Path::new("sh"), &["-c", "echo $$"], &[]).unwrap();
        let mut text = String::new();
        let mut stdout = c.stdout;
        stdout.read_to_string(&mut text).unwrap();
        let program: i32 = text.trim().parse().unwrap();
        let st = reap(c.pid).unwrap();
        assert!(st.success());
        let std_child = std::process::Command::new("true").spawn().unwrap();
        let std_pid = std_child.id() as i32;
        let mut std_child = std_child;
        std_child.wait().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !sigchld_senders().contains(&std_pid) {
            assert!(
                Instant::now() < deadline,
                "no SIGCHLD from std's child: {:?}",
                sigchld_senders()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let senders = sigchld_senders();
        assert!(
            !senders.contains(&c.pid),
            "keeper {} signalled: {senders:?}",
            c.pid
        );
        assert!(
            !senders.contains(&program),
            "program {program} signalled: {senders:?}"
        );
        assert_ne!(program, c.pid);
    }
}
