//! Signalling a process for sure: a pidfd (Linux 5.3 and later) names one process for good,
//! where a pid may be reused as soon as the process is reaped. A pidfd taken while /proc
//! still shows the process that was judged (same start time) reaches that process or
//! nothing. Without pidfds (an older kernel, or a seccomp filter that refuses the call),
//! gwshim falls back to checking the start time right before kill(2), and says so once at
//! debug level. See docs/pidfiles.md.

use crate::proc;
use log::debug;
use nix::libc;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

/// A handle on one process.
pub struct PidFd(OwnedFd);

/// What taking a handle on a process found.
pub enum Taken {
    Fd(PidFd),
    /// The process is gone, or the pid now names another process.
    Gone,
    /// No pidfd (this kernel has none, or no fd is left): only the pid can be used.
    ByPid,
}

static SAID_UNSUPPORTED: AtomicBool = AtomicBool::new(false);

/// Whether an errno from pidfd_open means "no pidfds here" (ENOSYS: before Linux 5.3;
/// EPERM: a seccomp filter, e.g. an old container runtime's, refuses unknown calls). Pure.
pub fn unsupported(errno: i32) -> bool {
    errno == libc::ENOSYS || errno == libc::EPERM
}

fn say_unsupported(e: &io::Error) {
    if !SAID_UNSUPPORTED.swap(true, Ordering::Relaxed) {
        debug!(
            "no pidfds here (pidfd_open: {e}; Linux 5.3 and later have them): processes are \
             signalled by pid after a start time check"
        );
    }
}

/// pidfd_open(2).
fn open_raw(pid: i32) -> io::Result<PidFd> {
    // SAFETY: pidfd_open takes a pid and flags (none) and returns a new fd or -1; it touches
    // no memory of ours.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd, open and owned by nobody else.
    Ok(PidFd(unsafe { OwnedFd::from_raw_fd(fd as i32) }))
}

/// A handle on `pid` (not a thread id), or None where the kernel has no pidfds (said once
/// at debug level). Err: ESRCH when there is no such process.
pub fn open(pid: i32) -> io::Result<Option<PidFd>> {
    match open_raw(pid) {
        Ok(fd) => Ok(Some(fd)),
        Err(e) if e.raw_os_error().is_some_and(unsupported) => {
            say_unsupported(&e);
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// A handle on the process `pid` that started at `start_time` (field 22 of /proc/PID/stat).
/// The pidfd is taken first and the start time checked after: if it still matches, the
/// pidfd names that very process, whatever happens to the pid afterwards.
pub fn take(pid: i32, start_time: u64) -> Taken {
    let fd = match open(pid) {
        Ok(Some(fd)) => fd,
        Ok(None) => return Taken::ByPid,
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Taken::Gone,
        // EMFILE and the like: the process still deserves its signal.
        Err(e) => {
            debug!("cannot open a pidfd for pid {pid} ({e}); signalling it by pid");
            return Taken::ByPid;
        }
    };
    match proc::stat(pid) {
        Some(s) if s.start_time == start_time => Taken::Fd(fd),
        _ => Taken::Gone,
    }
}

impl PidFd {
    /// pidfd_send_signal(2): like kill(2) (the receiver sees SI_USER and gwshim's pid), but
    /// to this process only. ESRCH once it has ended.
    pub fn send(&self, sig: i32) -> io::Result<()> {
        // SAFETY: plain integers and a NULL siginfo (the kernel fills in what kill(2) would);
        // the fd is open for the duration of the call.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.0.as_raw_fd(),
                sig,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        match r {
            0 => Ok(()),
            _ => Err(io::Error::last_os_error()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_a_missing_syscall_from_a_missing_process() {
        assert!(unsupported(libc::ENOSYS));
        assert!(unsupported(libc::EPERM));
        assert!(!unsupported(libc::ESRCH));
        assert!(!unsupported(libc::EINVAL));
    }

    #[test]
    fn a_pidfd_outlives_the_pid() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let pid = child.id() as i32;
        let start = proc::stat(pid).expect("stat").start_time;
        let Taken::Fd(fd) = take(pid, start) else {
            // A kernel without pidfds: nothing to check here.
            let _ = child.kill();
            let _ = child.wait();
            return;
        };
        assert!(matches!(take(pid, start + 1), Taken::Gone));
        fd.send(libc::SIGKILL).expect("signal");
        child.wait().expect("reap");
        // Reaped: the pid is free for reuse, the fd reaches nobody.
        let err = fd.send(libc::SIGTERM).expect_err("no process");
        assert_eq!(err.raw_os_error(), Some(libc::ESRCH));
    }
}
