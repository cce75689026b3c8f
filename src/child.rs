//! The child: the command gwshim supervises, started with gwshim's own argv tail,
//! environment, working directory, stdio, signal mask and signal dispositions.

use crate::signals;
use log::info;
use nix::sys::signal::{
    SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal, sigaction, sigprocmask,
};
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
    // Command resets SIGPIPE to the default in the child; give back an inherited SIG_IGN.
    let sigpipe_ignored = signals::sigpipe_was_ignored();
    let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    // SAFETY: the closure runs between fork and exec and calls only async-signal-safe
    // functions (setpgid, sigaction, sigprocmask); it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if own_group {
                setpgid(Pid::from_raw(0), Pid::from_raw(0))?;
            }
            if sigpipe_ignored {
                sigaction(Signal::SIGPIPE, &ignore)?;
            }
            sigaction(Signal::SIGCHLD, &sigchld)?;
            sigprocmask(SigmaskHow::SIG_SETMASK, Some(&mask), None)?;
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
