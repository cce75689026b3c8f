//! Terminals, process groups and job control: which process group the child gets, whether
//! it shares gwshim's (so a terminal's signals reach it already), handing the terminal to
//! the child's group (--group), and whether a job-control stop can ever be undone (an
//! orphaned process group is never continued by a shell).
//!
//! The choices are pure functions; the syscalls are thin ones at the bottom.

use nix::libc;
use std::os::fd::{OwnedFd, RawFd};

/// Where the child goes. Pure.
///
/// In a terminal's foreground the child shares gwshim's process group, as a shell's job:
/// Ctrl-C and Ctrl-Z reach both from the terminal (gwshim does not send them again) and the
/// child can read the terminal. Anywhere else (systemd, a container, a background job,
/// timeout(1)) the child gets a group of its own, so a signal sent to gwshim's whole group
/// (`kill -- -PGID`, a shell's `kill %1`) reaches the child once, from gwshim. With --group
/// the child always has its own group, and in the terminal's foreground the terminal is
/// handed to it (as tini does), so it can read and set the terminal.
pub fn plan(group: bool, foreground: bool) -> Plan {
    Plan {
        own_group: group || !foreground,
        hand_terminal: group && foreground,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The child starts a process group of its own.
    pub own_group: bool,
    /// The child's group becomes the terminal's foreground group.
    pub hand_terminal: bool,
}

/// One process's place: pid, parent, process group, session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place {
    pub pid: i32,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
}

/// Whether process group `pgrp` is orphaned (POSIX): none of its members has a parent in
/// another group of the same session, so no shell will ever continue it, and the kernel
/// discards SIGTSTP, SIGTTIN and SIGTTOU for its members. Pure.
pub fn orphaned(procs: &[Place], pgrp: i32) -> bool {
    !procs.iter().filter(|p| p.pgrp == pgrp).any(|member| {
        procs.iter().any(|parent| {
            parent.pid == member.ppid && parent.pgrp != pgrp && parent.session == member.session
        })
    })
}

/// Parses /proc/PID/stat into a Place. Pure.
pub fn parse_place(pid: i32, text: &str) -> Option<Place> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace().skip(1);
    let mut next = || fields.next()?.parse::<i32>().ok();
    Some(Place {
        pid,
        ppid: next()?,
        pgrp: next()?,
        session: next()?,
    })
}

fn place(pid: i32) -> Option<Place> {
    parse_place(
        pid,
        &std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?,
    )
}

/// Whether gwshim's own process group is orphaned now (a /proc scan; only after a
/// job-control signal). An unreadable /proc counts as not orphaned: stop, as before.
pub fn own_group_orphaned() -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    let procs: Vec<Place> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(place)
        .collect();
    let me = std::process::id() as i32;
    procs.iter().any(|p| p.pid == me) && orphaned(&procs, own_pgrp())
}

/// Whether `child` is in gwshim's process group right now (it may have left it: setsid,
/// setpgid), so a signal the terminal sent to gwshim's group reached it too.
pub fn shares_group(child: i32) -> bool {
    place(child).is_some_and(|p| p.pgrp == own_pgrp())
}

fn own_pgrp() -> i32 {
    nix::unistd::getpgrp().as_raw()
}

/// Whether gwshim leads its session (then a terminal's hangup is sent to it alone).
pub fn session_leader() -> bool {
    nix::unistd::getsid(None).is_ok_and(|sid| sid == nix::unistd::getpid())
}

/// gwshim's controlling terminal, opened (close-on-exec, never acquiring one), if it has one.
pub fn controlling() -> Option<OwnedFd> {
    use nix::fcntl::OFlag;
    nix::fcntl::open(
        "/dev/tty",
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ok()
}

/// Whether gwshim's process group is the terminal's foreground group.
pub fn foreground(tty: RawFd) -> bool {
    // SAFETY: tcgetpgrp only reads the terminal's foreground group.
    let fg = unsafe { libc::tcgetpgrp(tty) };
    fg > 0 && fg == own_pgrp()
}

/// Makes `pgrp` the terminal's foreground group. Async-signal-safe (ioctl), for the child
/// between fork and exec too. Allowed from a background group because SIGTTOU is blocked.
pub fn give(tty: RawFd, pgrp: i32) -> std::io::Result<()> {
    // SAFETY: tcsetpgrp takes an fd and a pid and touches no memory of ours.
    match unsafe { libc::tcsetpgrp(tty, pgrp) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: i32, ppid: i32, pgrp: i32, session: i32) -> Place {
        Place {
            pid,
            ppid,
            pgrp,
            session,
        }
    }

    #[test]
    fn plans_the_childs_group() {
        let plan_of = |g, f| {
            let p = plan(g, f);
            (p.own_group, p.hand_terminal)
        };
        assert_eq!(plan_of(false, true), (false, false), "a shell's job");
        assert_eq!(plan_of(false, false), (true, false), "systemd, containers");
        assert_eq!(plan_of(true, true), (true, true), "--group in a terminal");
        assert_eq!(plan_of(true, false), (true, false));
    }

    #[test]
    fn tells_orphaned_groups() {
        // (processes, group, orphaned)
        let shell_job = [p(10, 1, 10, 10), p(20, 10, 20, 10), p(21, 20, 20, 10)];
        let under_systemd = [p(1, 0, 1, 1), p(20, 1, 20, 20), p(21, 20, 20, 20)];
        // timeout(1) leads the group; its parent, the shell, is in another group
        let under_timeout = [p(10, 1, 10, 10), p(30, 10, 30, 10), p(31, 30, 30, 10)];
        // a shell's job whose shell is gone: reparented to init in another session
        let shell_gone = [p(1, 0, 1, 1), p(20, 1, 20, 10), p(21, 20, 20, 10)];
        let table: &[(&[Place], i32, bool)] = &[
            (&shell_job, 20, false),
            (&under_systemd, 20, true),
            (&under_timeout, 30, false),
            (&shell_gone, 20, true),
            (&[], 20, true),
        ];
        for &(procs, group, want) in table {
            assert_eq!(orphaned(procs, group), want, "{procs:?} group {group}");
        }
    }

    #[test]
    fn parses_places() {
        let line = "4242 (py thon) S 100 4242 90 34816 4242 4194560 1 0";
        assert_eq!(parse_place(4242, line), Some(p(4242, 100, 4242, 90)));
        assert_eq!(parse_place(1, "1 (x) S 1"), None);
    }
}
