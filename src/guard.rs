//! What a bug in gwshim does to the child: a panic (which aborts gwshim, `panic = "abort"`)
//! first ends the child, so it is never left running unsupervised. The child gets SIGTERM
//! (its whole group with --group), up to `PANIC_GRACE` to exit, then SIGKILL, and is reaped;
//! then gwshim aborts (SIGABRT), which systemd and docker see as a crash. Leftover processes
//! (the child's orphans) are not chased: under systemd the cgroup, in a container pid 1's
//! death, ends them.

use crate::{reap, signals};
use nix::libc;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;
use std::os::fd::AsFd;
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
    // SIGCHLD has been blocked since gwshim started, so the child's exit stays pending for
    // this signalfd to see. Without one there is nothing to sleep on: SIGKILL at once.
    let sigchld = SignalFd::with_flags(&SigSet::from(Signal::SIGCHLD), SfdFlags::SFD_NONBLOCK);
    // Decoded by reap (raw statuses): a child killed by a real-time signal ends this too.
    while reap::try_reap(pid).is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        match &sigchld {
            Ok(fd) if !left.is_zero() => sleep_for_sigchld(fd, left),
            _ => {
                let _ = signals::send(pid, libc::SIGKILL, group);
                reap::reap_blocking(pid);
                return;
            }
        }
    }
}

/// Sleeps until a SIGCHLD is pending or `left` has passed; then empties the signalfd.
fn sleep_for_sigchld(fd: &SignalFd, left: Duration) {
    // Rounded up, so the last millisecond is slept, not spun.
    let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    let _ = poll(
        &mut fds,
        PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
    );
    while let Ok(Some(_)) = fd.read_signal() {}
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
