//! The child: the command gwshim supervises, started with gwshim's own argv tail,
//! environment, working directory, stdio, signal mask and signal dispositions.

use log::info;
use nix::sys::signal::{SigAction, SigSet, SigmaskHow, Signal, sigaction, sigprocmask};
use nix::unistd::{Pid, setpgid};
use std::ffi::OsString;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

pub const SUPERVISOR_ENV: &str = "HERMES_GATEWAY_EXTERNAL_SUPERVISOR";

/// What the child needs that gwshim changed for itself.
pub struct Setup {
    pub mask: SigSet,
    pub sigchld: SigAction,
    /// Put the child in a process group of its own (--group).
    pub own_group: bool,
    pub supervisor_env: bool,
    /// The signal the child gets when gwshim dies (--pdeathsig).
    pub pdeathsig: Option<i32>,
}

/// The command could not be executed: a message and the shell's status for it.
pub struct SpawnFailure {
    pub message: String,
    pub status: i32,
}

pub fn spawn(command: &[OsString], setup: &Setup) -> Result<Pid, SpawnFailure> {
    let Some((program, args)) = command.split_first() else {
        return Err(SpawnFailure {
            message: "no command given".into(),
            status: 2,
        });
    };
    let mut cmd = Command::new(program);
    cmd.args(args);
    if setup.supervisor_env && std::env::var_os(SUPERVISOR_ENV).is_none() {
        cmd.env(SUPERVISOR_ENV, "1");
    }
    let (mask, sigchld, own_group) = (setup.mask, setup.sigchld, setup.own_group);
    let pdeathsig = setup.pdeathsig;
    // Captured before fork: the child compares its parent with it.
    let gwshim = nix::unistd::getpid();
    // SAFETY: the closure runs between fork and exec and calls only async-signal-safe
    // functions (setpgid, sigaction, prctl, sigprocmask, getppid, kill, _exit); it allocates
    // nothing (io::Error from an errno does not allocate).
    unsafe {
        cmd.pre_exec(move || {
            if own_group {
                setpgid(Pid::from_raw(0), Pid::from_raw(0))?;
            }
            sigaction(Signal::SIGCHLD, &sigchld)?;
            if let Some(sig) = pdeathsig {
                set_pdeathsig(sig)?;
            }
            sigprocmask(SigmaskHow::SIG_SETMASK, Some(&mask), None)?;
            if let Some(sig) = pdeathsig {
                // gwshim died before prctl took effect: nobody will send `sig`, so act on it
                // now, as if it had come (with the child's own mask and dispositions).
                if nix::unistd::getppid() != gwshim {
                    die_of(sig);
                }
            }
            Ok(())
        });
    }
    match cmd.spawn() {
        Ok(child) => {
            let pid = Pid::from_raw(child.id() as i32);
            info!("started {} as pid {pid}", describe(command));
            Ok(pid)
        }
        Err(e) => Err(failure(program, &e)),
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

fn failure(program: &OsString, e: &io::Error) -> SpawnFailure {
    let (what, status) = match e.kind() {
        io::ErrorKind::NotFound => ("command not found", 127),
        io::ErrorKind::PermissionDenied => ("permission denied", 126),
        _ => ("cannot execute", 126),
    };
    SpawnFailure {
        message: format!("{}: {what} ({e})", program.to_string_lossy()),
        status,
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
