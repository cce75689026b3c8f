//! The child: the command gwshim supervises, started with gwshim's own argv tail,
//! environment, working directory, stdio, signal mask and signal dispositions.
//!
//! Usually the child starts with posix_spawn (a vfork), its attributes restoring the signal
//! mask and SIGPIPE's action. When more must happen between fork and exec (LISTEN_PID and
//! WATCHDOG_PID must carry the child's own pid, --pdeathsig, closed stdio, an ignored
//! SIGCHLD), std's Command does the fork and reports a failed exec, and the exec is ours, in
//! the pre_exec closure, after those steps, without allocating.

use crate::signals;
use log::info;
use nix::libc;
use nix::sys::signal::{
    SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal, sigaction, sigprocmask,
};
use nix::unistd::{AccessFlags, Pid, access, setpgid};
use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU8, Ordering};

pub const SUPERVISOR_ENV: &str = "HERMES_GATEWAY_EXTERNAL_SUPERVISOR";
/// Variables that name the process systemd meant; the child gets its own pid in them.
const PID_VARS: [&str; 2] = ["LISTEN_PID", "WATCHDOG_PID"];

/// Which of fds 0-2 were closed when gwshim started (bit N for fd N), read before main:
/// Rust's runtime then opens /dev/null on each (so none of gwshim's own files can land on
/// them and take log lines), and the child gets them closed again, as gwshim got them.
static CLOSED_AT_START: AtomicU8 = AtomicU8::new(0);

extern "C" fn record_closed_stdio() {
    let mut closed = 0u8;
    for fd in 0..3 {
        // SAFETY: F_GETFD only reads the descriptor's flags; -1 (EBADF) means it is closed.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            closed |= 1 << fd;
        }
    }
    CLOSED_AT_START.store(closed, Ordering::Relaxed);
}

#[used]
// SAFETY: .init_array holds plain `extern "C" fn()` pointers run once before main (before
// Rust's runtime reopens closed standard fds); record_closed_stdio only calls fcntl(2) and
// stores an atomic.
#[unsafe(link_section = ".init_array")]
static RECORD_CLOSED_STDIO: extern "C" fn() = record_closed_stdio;

/// The standard fds (0-2) that gwshim was started without.
pub fn closed_at_start() -> Vec<i32> {
    let closed = CLOSED_AT_START.load(Ordering::Relaxed);
    (0..3).filter(|fd| closed & (1 << fd) != 0).collect()
}

/// What the child needs that gwshim changed for itself.
pub struct Setup {
    pub mask: SigSet,
    pub sigchld: SigAction,
    /// Put the child in a process group of its own (--group).
    pub own_group: bool,
    pub supervisor_env: bool,
    /// Variables set (Some) or removed (None) for the child, e.g. NOTIFY_SOCKET.
    pub env_overrides: Vec<(OsString, Option<OsString>)>,
    /// The signal the child gets when gwshim dies (--pdeathsig).
    pub pdeathsig: Option<i32>,
    /// The terminal to hand to the child's own group before exec (--group in a terminal).
    pub hand_terminal: Option<std::os::fd::RawFd>,
}

/// The command could not be executed: a message and the shell's status for it.
#[derive(Debug)]
pub struct SpawnFailure {
    pub message: String,
    pub status: i32,
}

/// The child's environment: gwshim's, less its own GWSHIM_* settings, with
/// HERMES_GATEWAY_EXTERNAL_SUPERVISOR=1 unless set (and asked for), and the overrides.
pub fn child_env(
    parent: impl IntoIterator<Item = (OsString, OsString)>,
    setup_supervisor: bool,
    overrides: &[(OsString, Option<OsString>)],
) -> Vec<(OsString, OsString)> {
    let mut vars: Vec<(OsString, OsString)> = parent
        .into_iter()
        .filter(|(k, _)| !k.as_bytes().starts_with(b"GWSHIM_"))
        .collect();
    if setup_supervisor && !vars.iter().any(|(k, _)| k == SUPERVISOR_ENV) {
        vars.push((SUPERVISOR_ENV.into(), "1".into()));
    }
    for (key, value) in overrides {
        vars.retain(|(k, _)| k != key);
        if let Some(v) = value {
            vars.push((key.clone(), v.clone()));
        }
    }
    vars
}

/// The variables (LISTEN_PID, WATCHDOG_PID) that name gwshim and must name the child.
pub fn pid_slots(vars: &[(OsString, OsString)], own_pid: u32) -> Vec<usize> {
    let own = own_pid.to_string();
    (0..vars.len())
        .filter(|&i| PID_VARS.iter().any(|p| vars[i].0 == *p) && vars[i].1 == *own)
        .collect()
}

/// `NAME=VALUE` entries, NUL-terminated, for execve; the `slots` get room for any pid.
pub fn env_entries(vars: &[(OsString, OsString)], slots: &[usize]) -> Vec<Vec<u8>> {
    let entries = vars.iter().enumerate().map(|(i, (k, v))| {
        let mut e = [k.as_bytes(), b"="].concat();
        if slots.contains(&i) {
            e.resize(k.len() + 1 + 20, 0);
        } else {
            e.extend_from_slice(v.as_bytes());
        }
        e.push(0);
        e
    });
    entries.collect()
}

/// Whether the child needs nothing done between fork and exec that posix_spawn's attributes
/// (signal mask, SIGPIPE's default, process group) cannot do: no pid to write into its
/// environment, no parent-death signal, SIGCHLD at its default, fds 0-2 as gwshim has them.
/// Pure.
pub fn plain_start(setup: &Setup, pid_slots: &[usize], stdio_closed: bool) -> bool {
    pid_slots.is_empty()
        && !stdio_closed
        && setup.pdeathsig.is_none()
        && setup.hand_terminal.is_none()
        && matches!(setup.sigchld.handler(), SigHandler::SigDfl)
        && setup.sigchld.flags().is_empty()
}

/// Starts the child with posix_spawn (a vfork: no copy of gwshim's page tables), giving it
/// gwshim's original signal mask, SIGPIPE's original action and, with --group, its own group.
fn posix_spawn(
    path: &CString,
    args: &[CString],
    env: &[Vec<u8>],
    setup: &Setup,
    sigpipe_ignored: bool,
) -> io::Result<Pid> {
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr().cast()).collect();
    envp.push(std::ptr::null());
    let check = |r: libc::c_int| {
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::from_raw_os_error(r))
        }
    };
    // SETSIGDEF always: glibc's posix_spawn otherwise gives the child its own signals (32,
    // 33) ignored. Those it resets, unless gwshim was started with them ignored.
    let mut flags = libc::POSIX_SPAWN_SETSIGMASK | libc::POSIX_SPAWN_SETSIGDEF;
    let mut bits = signals::libc_internal();
    if !sigpipe_ignored {
        bits |= 1 << (libc::SIGPIPE - 1);
    }
    for sig in 1..=64 {
        if signals::ignored_at_start(sig) {
            bits &= !(1 << (sig - 1));
        }
    }
    let default = signals::set_of(bits);
    if setup.own_group {
        flags |= libc::POSIX_SPAWN_SETPGROUP;
    }
    let mut attr = std::mem::MaybeUninit::<libc::posix_spawnattr_t>::uninit();
    // SAFETY: `attr` is initialised by posix_spawnattr_init before any other use and destroyed
    // after; the sets, the path and the NULL-terminated argv/envp arrays (whose strings live
    // in `args` and `env`) outlive the call; `pid` is a valid out-pointer.
    unsafe {
        check(libc::posix_spawnattr_init(attr.as_mut_ptr()))?;
        let a = attr.as_mut_ptr();
        let mut pid: libc::pid_t = 0;
        let result = check(libc::posix_spawnattr_setsigmask(a, setup.mask.as_ref()))
            .and_then(|()| check(libc::posix_spawnattr_setsigdefault(a, default.as_ref())))
            .and_then(|()| check(libc::posix_spawnattr_setpgroup(a, 0)))
            .and_then(|()| check(libc::posix_spawnattr_setflags(a, flags as libc::c_short)))
            .and_then(|()| {
                check(libc::posix_spawn(
                    &mut pid,
                    path.as_ptr(),
                    std::ptr::null(),
                    a,
                    argv.as_ptr().cast(),
                    envp.as_ptr().cast(),
                ))
            });
        libc::posix_spawnattr_destroy(a);
        result.map(|()| Pid::from_raw(pid))
    }
}

/// Writes `pid` in decimal after the '=' of `entry`, NUL-terminated. No allocation: it
/// runs between fork and exec.
pub fn write_pid(entry: &mut [u8], pid: u32) {
    let Some(eq) = entry.iter().position(|&b| b == b'=') else {
        return;
    };
    let mut digits = [0u8; 10];
    let (mut n, mut len) = (pid, 0);
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let value = &mut entry[eq + 1..];
    if value.len() <= len {
        return;
    }
    for i in 0..len {
        value[i] = digits[len - 1 - i];
    }
    value[len] = 0;
}

/// Finds `program` as a shell does: a name with a slash as is, else the first executable
/// match in PATH. Errors carry the shell's status (127 not found, 126 not executable).
pub fn resolve(program: &OsStr, path_var: Option<&OsStr>) -> Result<PathBuf, SpawnFailure> {
    let name = program.to_string_lossy();
    let fail = |what: &str, status| SpawnFailure {
        message: format!("cannot run {name}: {what}"),
        status,
    };
    if program.is_empty() {
        return Err(fail("empty command name", 127));
    }
    if program.as_bytes().contains(&b'/') {
        return Ok(PathBuf::from(program));
    }
    let path_var = path_var.unwrap_or(OsStr::new("/usr/local/bin:/usr/bin:/bin"));
    let mut denied = None;
    for dir in path_var.as_bytes().split(|&b| b == b':') {
        let dir = if dir.is_empty() {
            Path::new(".")
        } else {
            Path::new(OsStr::from_bytes(dir))
        };
        let candidate = dir.join(program);
        match std::fs::metadata(&candidate) {
            Ok(m) if m.is_file() && access(&candidate, AccessFlags::X_OK).is_ok() => {
                return Ok(candidate);
            }
            Ok(m) if m.is_file() => denied = denied.or(Some(candidate)),
            _ => {}
        }
    }
    match denied {
        Some(p) => Err(fail(&format!("{} is not executable", p.display()), 126)),
        None => Err(fail("not found in PATH", 127)),
    }
}

fn cstring(bytes: &[u8], what: &str, program: &OsStr) -> Result<CString, SpawnFailure> {
    CString::new(bytes).map_err(|_| SpawnFailure {
        message: format!(
            "cannot run {}: {what} contains a NUL byte",
            program.to_string_lossy()
        ),
        status: 126,
    })
}

pub fn spawn(command: &[OsString], setup: &Setup) -> Result<Pid, SpawnFailure> {
    let Some(program) = command.first() else {
        return Err(SpawnFailure {
            message: "no command given".into(),
            status: 2,
        });
    };
    let path = resolve(program, std::env::var_os("PATH").as_deref())?;
    let c_path = cstring(path.as_os_str().as_bytes(), "the command", program)?;
    let c_args = command
        .iter()
        .map(|a| cstring(a.as_bytes(), "an argument", program))
        .collect::<Result<Vec<_>, _>>()?;
    let vars = child_env(
        std::env::vars_os(),
        setup.supervisor_env,
        &setup.env_overrides,
    );
    let pid_slots = pid_slots(&vars, std::process::id());
    // Command resets SIGPIPE to the default in the child; an inherited SIG_IGN goes back.
    let sigpipe_ignored = signals::ignored_at_start(libc::SIGPIPE);
    let closed_stdio = closed_at_start();
    if plain_start(setup, &pid_slots, !closed_stdio.is_empty()) {
        let env = env_entries(&vars, &[]);
        return posix_spawn(&c_path, &c_args, &env, setup, sigpipe_ignored)
            .inspect(|pid| info!("started {} as pid {pid}", describe(command)))
            .map_err(|e| failure(&path, &e));
    }
    let mut env = env_entries(&vars, &pid_slots);
    // execve's NULL-terminated pointer arrays, held as addresses: pre_exec wants a Send
    // closure and raw pointers are not. The strings they point to live in the closure too.
    let mut argv: Vec<usize> = c_args.iter().map(|a| a.as_ptr() as usize).collect();
    argv.push(0);
    // Filled in the child after the pid is written; reserved here so that needs no allocation.
    let mut envp: Vec<usize> = Vec::with_capacity(env.len() + 1);
    let (mask, sigchld, own_group) = (setup.mask, setup.sigchld, setup.own_group);

    let pdeathsig = setup.pdeathsig;
    let hand_terminal = setup.hand_terminal;
    // Captured before fork: the child compares its parent with it.
    let gwshim = nix::unistd::getpid();

    let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    let mut cmd = Command::new(&path);
    // SAFETY: the closure runs between fork and exec and calls only async-signal-safe
    // functions (setpgid, tcsetpgrp, sigaction, prctl, getpid, getppid, sigprocmask, kill,
    // _exit, close, execve); it writes into buffers allocated before the fork and pushes into `envp` within
    // its reserved capacity (io::Error from an errno does not allocate).
    unsafe {
        cmd.pre_exec(move || {
            if own_group {
                setpgid(Pid::from_raw(0), Pid::from_raw(0))?;
            }
            // Before exec, so the child never finds itself in the background (SIGTTOU is
            // still blocked here). A terminal that refuses just leaves it where it is.
            if let Some(tty) = hand_terminal {
                let _ = crate::terminal::give(tty, libc::getpid());
            }
            if sigpipe_ignored {
                sigaction(Signal::SIGPIPE, &ignore)?;
            }
            sigaction(Signal::SIGCHLD, &sigchld)?;
            if let Some(sig) = pdeathsig {
                set_pdeathsig(sig)?;
            }
            let me = libc::getpid() as u32;
            for &slot in &pid_slots {
                write_pid(&mut env[slot], me);
            }
            envp.clear();
            envp.extend(env.iter().map(|e| e.as_ptr() as usize));
            envp.push(0);
            sigprocmask(SigmaskHow::SIG_SETMASK, Some(&mask), None)?;
            // gwshim died before prctl took effect: nobody will send `sig`, so act on it now,
            // as if it had come (with the child's own mask and dispositions).
            if let Some(sig) = pdeathsig
                && nix::unistd::getppid() != gwshim
            {
                die_of(sig);
            }
            for &fd in &closed_stdio {
                libc::close(fd);
            }
            let _keep = &c_args;
            libc::execve(c_path.as_ptr(), argv.as_ptr().cast(), envp.as_ptr().cast());
            Err(io::Error::last_os_error())
        });
    }
    started(cmd, command, &path)
}

fn started(mut cmd: Command, command: &[OsString], path: &Path) -> Result<Pid, SpawnFailure> {
    match cmd.spawn() {
        Ok(child) => {
            let pid = Pid::from_raw(child.id() as i32);
            info!("started {} as pid {pid}", describe(command));
            Ok(pid)
        }
        Err(e) => Err(failure(path, &e)),
    }
}

/// PR_SET_PDEATHSIG: the kernel sends `sig` to the calling process when its parent (thread)
/// dies. Async-signal-safe; nix's wrapper takes only the standard signals.
fn set_pdeathsig(sig: i32) -> io::Result<()> {
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes plain integers and touches no memory of ours.
    match unsafe { nix::libc::prctl(nix::libc::PR_SET_PDEATHSIG, sig as nix::libc::c_ulong) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Sends `sig` to the calling process, then exits 128 + sig should it survive (the signal
/// is blocked or ignored). Async-signal-safe, for use between fork and exec.
fn die_of(sig: i32) -> ! {
    // SAFETY: kill, getpid and _exit are async-signal-safe syscalls on plain integers.
    unsafe {
        nix::libc::kill(nix::libc::getpid(), sig);
        nix::libc::_exit(128 + sig)
    }
}

/// What is at a path that could not be executed, for the message that says why.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Found {
    pub exists: bool,
    pub is_dir: bool,
    pub executable: bool,
    /// The interpreter its `#!` line names, and whether that exists.
    pub interpreter: Option<(String, bool)>,
    /// An ELF binary (ENOENT then means its dynamic loader is missing).
    pub elf: bool,
}

/// Looks at `path` after a failed exec. Only reads: the child is not running.
fn look_at(path: &Path) -> Found {
    let Ok(meta) = std::fs::metadata(path) else {
        return Found::default();
    };
    let mut head = [0u8; 256];
    let len = std::fs::File::open(path)
        .and_then(|mut f| io::Read::read(&mut f, &mut head))
        .unwrap_or(0);
    let interpreter = shebang(&head[..len]).map(|i| {
        let exists = Path::new(&i).exists();
        (i, exists)
    });
    Found {
        exists: true,
        is_dir: meta.is_dir(),
        executable: access(path, AccessFlags::X_OK).is_ok(),
        interpreter,
        elf: head[..len].starts_with(b"\x7fELF"),
    }
}

/// The interpreter a `#!` line names (its first word), if the file starts with one. Pure.
pub fn shebang(head: &[u8]) -> Option<String> {
    let line = head.strip_prefix(b"#!")?;
    let line = line.split(|&b| b == b'\n').next().unwrap_or_default();
    let word = line
        .split(|b| b.is_ascii_whitespace())
        .find(|w| !w.is_empty())?;
    Some(String::from_utf8_lossy(word).into_owned())
}

/// Why exec of `path` failed with `errno`, in one line, and the shell's status for it. Pure.
pub fn explain(path: &Path, errno: i32, found: &Found) -> SpawnFailure {
    let (why, status) = match errno {
        libc::ENOENT if !found.exists => ("no such file".to_string(), 127),
        libc::ENOENT => match &found.interpreter {
            Some((i, false)) => (format!("its interpreter {i} does not exist"), 127),
            Some((i, true)) => (
                format!("its interpreter {i} cannot start (a file it needs does not exist)"),
                127,
            ),
            None if found.elf => (
                "its dynamic loader does not exist (built for another system?)".to_string(),
                127,
            ),
            None => ("a file it needs does not exist".to_string(), 127),
        },
        libc::EACCES if found.is_dir => ("it is a directory".to_string(), 126),
        libc::EACCES if found.exists && !found.executable => {
            ("it is not executable".to_string(), 126)
        }
        libc::EACCES => match &found.interpreter {
            Some((i, true)) => (format!("permission denied for its interpreter {i}"), 126),
            _ => ("permission denied".to_string(), 126),
        },
        libc::ENOEXEC => ("not an executable format (no #! line?)".to_string(), 126),
        e => (nix::errno::Errno::from_raw(e).desc().to_string(), 126),
    };
    SpawnFailure {
        message: format!("cannot run {}: {why}", path.display()),
        status,
    }
}

fn failure(path: &Path, e: &io::Error) -> SpawnFailure {
    match e.raw_os_error() {
        Some(errno) => explain(path, errno, &look_at(path)),
        None => SpawnFailure {
            message: format!("cannot run {}: {e}", path.display()),
            status: 126,
        },
    }
}

/// The command as one quoted-enough string for logs.
pub fn describe(command: &[OsString]) -> String {
    let words: Vec<String> = command
        .iter()
        .map(|w| {
            let w = w.to_string_lossy();
            if w.is_empty() || w.contains(char::is_whitespace) {
                format!("{w:?}")
            } else {
                w.into_owned()
            }
        })
        .collect();
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(entries: &[Vec<u8>]) -> Vec<String> {
        entries
            .iter()
            .map(|e| {
                String::from_utf8_lossy(e.split(|&b| b == 0).next().unwrap_or_default())
                    .into_owned()
            })
            .collect()
    }

    fn pairs(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs.iter().map(|(k, v)| (k.into(), v.into())).collect()
    }

    #[test]
    fn builds_the_child_environment() {
        type Vars<'a> = &'a [(&'a str, &'a str)];
        let table: &[(Vars, bool, Vars)] = &[
            (
                &[("A", "1"), ("GWSHIM_GRACE", "3")],
                true,
                &[("A", "1"), (SUPERVISOR_ENV, "1")],
            ),
            (&[(SUPERVISOR_ENV, "0")], true, &[(SUPERVISOR_ENV, "0")]),
            (&[("A", "1")], false, &[("A", "1")]),
        ];
        for &(parent, supervisor, want) in table {
            assert_eq!(
                child_env(pairs(parent), supervisor, &[]),
                pairs(want),
                "{parent:?}"
            );
        }
        let overrides = [
            ("NOTIFY_SOCKET".into(), Some("/x".into())),
            ("A".into(), None),
        ];
        let vars = child_env(
            pairs(&[("A", "1"), ("NOTIFY_SOCKET", "/run/systemd/notify")]),
            false,
            &overrides,
        );
        assert_eq!(vars, pairs(&[("NOTIFY_SOCKET", "/x")]));
        // LISTEN_PID/WATCHDOG_PID naming gwshim get room for the child's pid; others pass.
        let vars = pairs(&[
            ("LISTEN_PID", "7"),
            ("WATCHDOG_PID", "8"),
            ("LISTEN_FDS", "2"),
            ("X", "7"),
        ]);
        let slots = pid_slots(&vars, 7);
        assert_eq!(slots, vec![0]);
        let mut env = env_entries(&vars, &slots);
        write_pid(&mut env[0], 4_194_304);
        assert_eq!(
            env_of(&env),
            [
                "LISTEN_PID=4194304",
                "WATCHDOG_PID=8",
                "LISTEN_FDS=2",
                "X=7"
            ]
        );
    }

    #[test]
    fn takes_posix_spawn_only_when_nothing_needs_doing_after_fork() {
        let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
        let ign = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
        let setup = |sigchld: SigAction, pdeathsig: Option<i32>| Setup {
            mask: SigSet::empty(),
            sigchld,
            own_group: true,
            supervisor_env: true,
            env_overrides: Vec::new(),
            pdeathsig,
            hand_terminal: None,
        };
        // (setup, pid slots, a std fd closed at start) -> plain
        let table = [
            (setup(dfl, None), vec![], false, true),
            (setup(dfl, None), vec![0], false, false),
            (setup(dfl, None), vec![], true, false),
            (setup(ign, None), vec![], false, false),
            (setup(dfl, Some(15)), vec![], false, false),
        ];
        for (i, (s, slots, closed, want)) in table.iter().enumerate() {
            assert_eq!(plain_start(s, slots, *closed), *want, "row {i}");
        }
    }

    #[test]
    fn writes_pids() {
        for (pid, want) in [(1, "1"), (42, "42"), (4_294_967_295, "4294967295")] {
            let mut e = b"P=".to_vec();
            e.resize(2 + 20, b'x');
            write_pid(&mut e, pid);
            assert_eq!(&e[2..2 + want.len()], want.as_bytes());
            assert_eq!(e[2 + want.len()], 0);
        }
        let mut short = b"P=1".to_vec();
        write_pid(&mut short, 12345);
        assert_eq!(short, b"P=1", "never writes past the room it has");
    }

    #[test]
    fn explains_exec_failures() {
        let found = |interpreter: Option<(&str, bool)>| Found {
            exists: true,
            executable: true,
            interpreter: interpreter.map(|(i, e)| (i.to_string(), e)),
            ..Found::default()
        };
        let dir = Found {
            is_dir: true,
            ..found(None)
        };
        let plain = Found {
            executable: false,
            ..found(None)
        };
        let elf = Found {
            elf: true,
            ..found(None)
        };
        let old = Some(("/old/venv/bin/python3", false));
        let table: &[(i32, &Found, &str, i32)] = &[
            (libc::ENOENT, &Found::default(), "no such file", 127),
            (
                libc::ENOENT,
                &found(old),
                "its interpreter /old/venv/bin/python3 does not exist",
                127,
            ),
            (libc::ENOENT, &elf, "its dynamic loader does not exist", 127),
            (libc::EACCES, &dir, "it is a directory", 126),
            (libc::EACCES, &plain, "it is not executable", 126),
            (libc::ENOEXEC, &found(None), "not an executable format", 126),
            (libc::ETXTBSY, &found(None), "Text file busy", 126),
        ];
        for &(errno, found, want, status) in table {
            let f = explain(Path::new("/v/bin/hermes"), errno, found);
            assert_eq!(f.status, status, "{errno} {found:?}");
            assert!(
                f.message.starts_with("cannot run /v/bin/hermes: ") && f.message.contains(want),
                "{errno} {found:?}: {}",
                f.message
            );
        }
        assert_eq!(
            explain(Path::new("/v/bin/hermes"), libc::ENOENT, &found(old)).message,
            "cannot run /v/bin/hermes: its interpreter /old/venv/bin/python3 does not exist"
        );
        assert_eq!(
            shebang(b"#!/usr/bin/env python3\n"),
            Some("/usr/bin/env".into())
        );
        assert_eq!(shebang(b"#! /bin/sh -e"), Some("/bin/sh".into()));
        assert_eq!(shebang(b"#!\n"), None);
        assert_eq!(shebang(b"\x7fELF"), None);
    }

    #[test]
    fn resolves_like_a_shell() {
        let sh = resolve(OsStr::new("sh"), Some(OsStr::new("/nonexistent:/bin"))).unwrap();
        assert_eq!(sh, PathBuf::from("/bin/sh"));
        assert_eq!(
            resolve(OsStr::new("./x"), None).unwrap(),
            PathBuf::from("./x")
        );
        assert_eq!(
            resolve(OsStr::new("no-such-cmd-gwshim"), Some(OsStr::new("/bin")))
                .unwrap_err()
                .status,
            127
        );
        assert_eq!(
            resolve(OsStr::new("passwd"), Some(OsStr::new("/etc")))
                .unwrap_err()
                .status,
            126
        );
        assert_eq!(resolve(OsStr::new(""), None).unwrap_err().status, 127);
    }
}
