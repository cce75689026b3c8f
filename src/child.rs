//! The child: the command gwshim supervises, started with gwshim's own argv tail,
//! environment, working directory, stdio, signal mask and signal dispositions.

use log::info;
use nix::libc;
use nix::sys::signal::{SigAction, SigHandler, SigSet, SigmaskHow, Signal, sigaction, sigprocmask};
use nix::unistd::Pid;
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
    if setup.supervisor_env && std::env::var_os(SUPERVISOR_ENV).is_none() {
        // Set in gwshim's own environment, which the child inherits as it is: Command::env
        // would copy and sort the whole environment on every start (measured: two thirds of
        // gwshim's own instructions from exec to exit).
        // SAFETY: gwshim has one thread, so nothing reads the environment meanwhile.
        unsafe { std::env::set_var(SUPERVISOR_ENV, "1") };
    }
    let mut cmd = Command::new(program);
    cmd.args(args);
    let (mask, sigchld, own_group) = (setup.mask, setup.sigchld, setup.own_group);
    if own_group {
        cmd.process_group(0);
    }
    // std starts the child with an empty signal mask and SIGCHLD at its default. Only when
    // gwshim was started otherwise does the child need a hook, which makes std fork instead
    // of using posix_spawn (vfork: no copy of gwshim's page tables, no exec-status pipe).
    if !is_empty(&mask) || !matches!(sigchld.handler(), SigHandler::SigDfl) {
        // SAFETY: the closure runs between fork and exec and calls only async-signal-safe
        // functions (sigaction, sigprocmask); it allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                sigaction(Signal::SIGCHLD, &sigchld)?;
                sigprocmask(SigmaskHow::SIG_SETMASK, Some(&mask), None)?;
                Ok(())
            });
        }
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

/// Whether `set` holds no signal, the real-time ones included (nix's SigSet compares only
/// the standard ones).
fn is_empty(set: &SigSet) -> bool {
    let raw: &libc::sigset_t = set.as_ref();
    // SAFETY: sigismember only reads the set it is given.
    (1..=libc::SIGRTMAX()).all(|sig| unsafe { libc::sigismember(raw, sig) } != 1)
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
