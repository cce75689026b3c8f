//! What a bug in gwshim does to the child: a panic (which aborts gwshim, `panic = "abort"`)
//! first ends the child, so it is never left running unsupervised. The child gets SIGTERM
//! (its whole group with --group), up to `PANIC_GRACE` to exit, then SIGKILL, and is reaped;
//! then gwshim aborts (SIGABRT), which systemd and docker see as a crash. Leftover processes
//! (the child's orphans) are not chased: under systemd the cgroup, in a container pid 1's
//! death, ends them.

use crate::signals;
use nix::libc;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

/// How long the child may drain after SIGTERM before the panic hook SIGKILLs it.
pub const PANIC_GRACE: Duration = Duration::from_secs(5);

/// The running child (0: none); negative when it leads its own group (--group).
static CHILD: AtomicI32 = AtomicI32::new(0);

/// Installs the panic hook. Call once, before the child starts.
pub fn install() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let child = target(CHILD.swap(0, Ordering::SeqCst));
        // SIGTERM before anything that could panic again (a panic in the hook aborts at once).
        if let Some((pid, group)) = child {
            let _ = signals::send(pid, libc::SIGTERM, group);
        }
        report(info);
        if let Some((pid, group)) = child {
            log::error!(
                "gwshim hit a bug; sent SIGTERM to child pid {pid} and waits up to {} s for \
                 it (then SIGKILL) before aborting",
                PANIC_GRACE.as_secs()
            );
            wait_or_kill(pid, group);
        }
    }));
}

/// The child is running: a panic from now on ends it.
pub fn watch(pid: Pid, group: bool) {
    let raw = pid.as_raw();
    CHILD.store(if group { -raw } else { raw }, Ordering::SeqCst);
}

/// The child has been reaped: its pid may be reused, so a panic must not signal it any more.
pub fn forget() {
    CHILD.store(0, Ordering::SeqCst);
}

/// The stored value as (pid, group). Pure.
pub fn target(stored: i32) -> Option<(i32, bool)> {
    match stored {
        0 | i32::MIN => None,
        n => Some((n.abs(), n < 0)),
    }
}

/// Reaps the child, SIGKILLing it once the grace has passed.
fn wait_or_kill(pid: i32, group: bool) {
    let deadline = Instant::now() + PANIC_GRACE;
    loop {
        match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(WaitStatus::StillAlive) => {
                let _ = signals::send(pid, libc::SIGKILL, group);
                let _ = waitpid(Pid::from_raw(pid), None);
                return;
            }
            Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) => return,
            // A stop or continue report: keep waiting for the end.
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_stored_child() {
        assert_eq!(target(0), None);
        assert_eq!(target(4242), Some((4242, false)));
        assert_eq!(target(-4242), Some((4242, true)));
        assert_eq!(target(i32::MIN), None);
    }
}
