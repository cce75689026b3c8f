//! Reaping: collect every child that has ended, the main one or an adopted orphan.

use crate::exit::ChildEnd;
use log::{debug, warn};
use nix::errno::Errno;
use nix::sys::prctl;
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid, waitpid};
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

/// Reaps every child that has ended, without blocking; returns how `main` ended if it did.
pub fn reap_ended(main: Pid) -> Option<ChildEnd> {
    let mut main_end = None;
    loop {
        let (pid, end) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => (pid, ChildEnd::Exited(code)),
            Ok(WaitStatus::Signaled(pid, sig, _)) => (pid, ChildEnd::Signaled(sig as i32)),
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return main_end,
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(e) => {
                warn!("waitpid failed: {e}");
                return main_end;
            }
        };
        if pid == main {
            main_end = Some(end);
        } else {
            debug!("reaped orphan pid {pid}, which {end}");
        }
    }
}

/// Whether gwshim has any child at all, live or ended, without reaping one.
pub fn has_children() -> bool {
    let flags = WaitPidFlag::WEXITED
        | WaitPidFlag::WSTOPPED
        | WaitPidFlag::WCONTINUED
        | WaitPidFlag::WNOHANG
        | WaitPidFlag::WNOWAIT;
    // ECHILD is the only answer that proves there is none; any other errs on the safe side.
    waitid(Id::All, flags) != Err(Errno::ECHILD)
}

/// Blocks until `main` ends (used only when the event loop failed), reaping on the way.
pub fn wait_for(main: Pid) -> ChildEnd {
    loop {
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(pid, code)) if pid == main => return ChildEnd::Exited(code),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == main => {
                return ChildEnd::Signaled(sig as i32);
            }
            Ok(_) | Err(Errno::EINTR) => {}
            // No child left: it was reaped elsewhere; report an unexplained failure.
            Err(_) => return ChildEnd::Exited(255),
        }
    }
}
