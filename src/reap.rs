//! Reaping: collect every child that has ended, the main one or an adopted orphan.
//!
//! Wait statuses are decoded here from the raw integer the kernel gives: nix's WaitStatus
//! holds only the standard signals, and a child killed by a real-time signal (32-64) made
//! its waitpid fail with EINVAL after the kernel had already reaped the child.

use crate::signals;
use log::{debug, warn};
use nix::errno::Errno;
use nix::libc;
use nix::sys::prctl;
use nix::unistd::Pid;

/// Makes orphans of gwshim's descendants its own children, so it can reap them.
/// Pid 1 gets them anyway.
pub fn become_subreaper() {
    if std::process::id() == 1 {
        return;
    }
    if let Err(e) = prctl::set_child_subreaper(true) {
        warn!("cannot become a child subreaper ({e}); orphans go to the system's init");
    }
}

/// How a process ended, as its wait status says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Termination {
    Exited(i32),
    Signaled(i32),
}

/// "exited 1", "was killed by SIGTERM": how log lines tell a process's end.
impl std::fmt::Display for Termination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Termination::Exited(n) => write!(f, "exited {n}"),
            Termination::Signaled(s) => write!(f, "was killed by {}", signals::name(s)),
        }
    }
}

/// What one wait status says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Report {
    Ended(Termination),
    /// Stopped by this signal (only reported with WUNTRACED).
    Stopped(i32),
    /// Continued (WCONTINUED), or anything else that is no end.
    Other,
}

/// Decodes a raw wait status, for every signal 1-64. Pure.
pub fn decode(status: i32) -> Report {
    if libc::WIFEXITED(status) {
        Report::Ended(Termination::Exited(libc::WEXITSTATUS(status)))
    } else if libc::WIFSIGNALED(status) {
        Report::Ended(Termination::Signaled(libc::WTERMSIG(status)))
    } else if libc::WIFSTOPPED(status) {
        Report::Stopped(libc::WSTOPSIG(status))
    } else {
        Report::Other
    }
}

/// waitpid(2): Ok(None) when WNOHANG found nothing (pid 0).
fn waitpid_raw(pid: i32, flags: i32) -> Result<Option<(i32, i32)>, Errno> {
    let mut status = 0;
    // SAFETY: waitpid writes one int into `status`, which lives across the call.
    match unsafe { libc::waitpid(pid, &mut status, flags) } {
        -1 => Err(Errno::last()),
        0 => Ok(None),
        pid => Ok(Some((pid, status))),
    }
}

/// What one pass of reaping found about the main child.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reaped {
    pub end: Option<Termination>,
    /// The main child was seen stopped, by this signal (with `untraced`).
    pub stopped: Option<i32>,
}

/// Reaps every child that has ended, without blocking; returns how `main` ended if it did.
pub fn reap_ended(main: Pid) -> Option<Termination> {
    reap(main, false).end
}

/// Reaps every child that has ended, without blocking. With `untraced`, also reports the
/// main child stopping (the stops of other children are consumed and dropped).
pub fn reap(main: Pid, untraced: bool) -> Reaped {
    let mut found = Reaped::default();
    let flags = libc::WNOHANG | if untraced { libc::WUNTRACED } else { 0 };
    loop {
        let (pid, status) = match waitpid_raw(-1, flags) {
            Ok(Some(got)) => got,
            Ok(None) | Err(Errno::ECHILD) => return found,
            Err(Errno::EINTR) => continue,
            Err(e) => {
                warn!("waitpid failed: {e}");
                return found;
            }
        };
        match decode(status) {
            Report::Ended(end) if pid == main.as_raw() => found.end = Some(end),
            Report::Ended(end) => debug!("reaped orphan pid {pid}, which {end}"),
            Report::Stopped(sig) if pid == main.as_raw() => found.stopped = Some(sig),
            Report::Stopped(_) | Report::Other => {}
        }
    }
}

/// Whether gwshim has any child at all, live or ended, without reaping one.
pub fn has_children() -> bool {
    let flags = libc::WEXITED | libc::WSTOPPED | libc::WCONTINUED | libc::WNOHANG | libc::WNOWAIT;
    let mut info = std::mem::MaybeUninit::<libc::siginfo_t>::zeroed();
    // SAFETY: waitid fills the zeroed siginfo it is given and reaps nothing (WNOWAIT).
    let r = unsafe { libc::waitid(libc::P_ALL, 0, info.as_mut_ptr(), flags) };
    // ECHILD is the only answer that proves there is none; any other errs on the safe side.
    !(r == -1 && Errno::last() == Errno::ECHILD)
}

/// Blocks until `main` ends (used only when the event loop failed), reaping on the way.
pub fn wait_for(main: Pid) -> Termination {
    loop {
        match waitpid_raw(-1, 0) {
            Ok(Some((pid, status))) if pid == main.as_raw() => {
                if let Report::Ended(end) = decode(status) {
                    return end;
                }
            }
            Ok(_) | Err(Errno::EINTR) => {}
            // No child left: it was reaped elsewhere; report an unexplained failure.
            Err(_) => return Termination::Exited(255),
        }
    }
}

/// Reaps `pid` if it has ended, without blocking: Some(end) once it has, None while it
/// runs (or is only stopped), Some(Exited(255)) when there is no such child any more.
pub fn try_reap(pid: i32) -> Option<Termination> {
    loop {
        match waitpid_raw(pid, libc::WNOHANG) {
            Ok(Some((_, status))) => match decode(status) {
                Report::Ended(end) => return Some(end),
                _ => continue,
            },
            Ok(None) => return None,
            Err(Errno::EINTR) => continue,
            Err(_) => return Some(Termination::Exited(255)),
        }
    }
}

/// Blocks until `pid` has ended and reaps it.
pub fn reap_blocking(pid: i32) {
    loop {
        match waitpid_raw(pid, 0) {
            Ok(Some((_, status))) if matches!(decode(status), Report::Ended(_)) => return,
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Termination::*;

    #[test]
    fn tells_how_a_process_ended() {
        assert_eq!(Exited(1).to_string(), "exited 1");
        assert_eq!(Signaled(15).to_string(), "was killed by SIGTERM");
    }

    #[test]
    fn decodes_every_status() {
        // (raw status as the kernel builds it, what it says)
        let mut table = vec![
            (0, Report::Ended(Exited(0))),
            (1 << 8, Report::Ended(Exited(1))),
            (75 << 8, Report::Ended(Exited(75))),
            (255 << 8, Report::Ended(Exited(255))),
            // SIGSEGV with a core dump (0x80)
            (11 | 0x80, Report::Ended(Signaled(11))),
            (0x7f | (20 << 8), Report::Stopped(20)),
            (0xffff, Report::Other),
        ];
        for sig in 1..=64 {
            if sig != 0x7f {
                table.push((sig, Report::Ended(Signaled(sig))));
            }
        }
        for (raw, want) in table {
            assert_eq!(decode(raw), want, "status {raw:#x}");
        }
    }
}
