//! Leftover processes: when the main child has ended, end what it left behind.
//!
//! The leftovers are gwshim's live descendants (adopted orphans included; as pid 1, every
//! process of the namespace), plus members of the child's own process group (--group). They
//! get SIGTERM, up to `--grace` seconds to exit, then SIGKILL, and gwshim reaps them all
//! before it exits. Nothing that is not provably gwshim's is ever signalled.
//!
//! The choices are pure functions over a /proc snapshot; the syscalls are at the bottom.

use crate::error::{Error, Result};
use crate::logging::count;
use crate::proc::{self, Entry};
use crate::signals::{self, Set, Signals};
use crate::{pidfd, reap, timespan};
use log::{debug, info, warn};
use nix::libc;
use nix::unistd::Pid;
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// How long gwshim waits for SIGKILLed processes to vanish before it gives up on them
/// (a process in uninterruptible sleep, state D, dies only when its I/O completes).
pub const KILL_WAIT: Duration = Duration::from_secs(5);

/// The default `--grace`.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

pub struct Options {
    /// Time between SIGTERM and SIGKILL; zero sends SIGKILL at once.
    pub grace: Duration,
    /// The child's own process group (its pid), with --group.
    pub group: Option<i32>,
    /// A stop signal during the grace SIGKILLs at once (--stop-signal).
    pub stop_signals: Set,
}

/// A process is named for good by its pid and start time (a pid can be reused).
type Key = (i32, u64);

fn key(e: &Entry) -> Key {
    (e.pid, e.stat.start_time)
}

fn is_live(e: &Entry) -> bool {
    !matches!(e.stat.state, 'Z' | 'X' | 'x')
}

/// The leftovers in `snapshot`: live processes whose parent chain leads to `me`, plus live
/// members of process group `group`. The group counts only while it is provably the child's:
/// a pid number stays reserved while a group of that number has members, so a process whose
/// own pid equals the group number and that is not gwshim's descendant means the group had
/// emptied and the number was reused by somebody else. Pure.
pub fn select(snapshot: &[Entry], me: i32, group: Option<i32>) -> Vec<Entry> {
    let mut children: HashMap<i32, Vec<&Entry>> = HashMap::new();
    for e in snapshot {
        if e.pid != me {
            children.entry(e.stat.ppid).or_default().push(e);
        }
    }
    let mut descendants: BTreeSet<i32> = BTreeSet::new();
    let mut todo = vec![me];
    while let Some(pid) = todo.pop() {
        for c in children.get(&pid).into_iter().flatten() {
            if descendants.insert(c.pid) {
                todo.push(c.pid);
            }
        }
    }
    let group = group.filter(|&g| {
        !snapshot
            .iter()
            .any(|e| e.pid == g && !descendants.contains(&e.pid))
    });
    let mut out: Vec<Entry> = snapshot
        .iter()
        .filter(|e| e.pid != me && is_live(e))
        .filter(|e| descendants.contains(&e.pid) || Some(e.stat.pgrp) == group)
        .copied()
        .collect();
    out.sort_by_key(|e| e.pid);
    out
}

/// The stage of ending the leftovers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// SIGTERM sent, waiting up to the grace.
    Term,
    /// SIGKILL sent, waiting for them to vanish.
    Kill,
}

/// What a signal arriving while the leftovers are being ended does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnSignal {
    /// Reap, then look again.
    Reap,
    /// A second stop request (a stop signal) during the grace: SIGKILL now.
    KillNow,
    /// Nothing: there is no main child left to forward it to.
    Ignore,
}

/// Pure.
pub fn on_signal(signo: i32, phase: Phase, stop_signals: Set) -> OnSignal {
    match phase {
        _ if signo == libc::SIGCHLD => OnSignal::Reap,
        Phase::Term if stop_signals.contains(signo) => OnSignal::KillNow,
        _ => OnSignal::Ignore,
    }
}

/// The targets that have not yet been sent this stage's signal. Pure.
pub fn pending<'a>(targets: &'a [Entry], sent: &BTreeSet<Key>) -> Vec<&'a Entry> {
    targets.iter().filter(|e| !sent.contains(&key(e))).collect()
}

/// "pid 7", "pids 7 8".
fn pid_list(entries: &[&Entry]) -> String {
    let pids: Vec<String> = entries.iter().map(|e| e.pid.to_string()).collect();
    match pids.len() {
        1 => format!("pid {}", pids[0]),
        _ => format!("pids {}", pids.join(" ")),
    }
}

/// Ends every leftover process, as the module comment says, and reaps them. `main` is the
/// main child (already reaped). Returns once none is left, or KILL_WAIT after SIGKILL; an
/// error when /proc cannot tell which processes are gwshim's (then nothing was signalled).
pub fn end_all(signals: &Signals, main: Pid, opts: &Options) -> Result<()> {
    reap::reap_ended(main);
    // Every descendant has a parent chain through a child of gwshim (orphans are adopted:
    // gwshim is a subreaper or pid 1), so with no child left there is none, and the /proc
    // scan below (a read of every process's stat on the machine) would find nothing. A
    // --group member need not be a descendant: that case still scans.
    if opts.group.is_none() && !reap::has_children() {
        return Ok(());
    }
    let me = std::process::id() as i32;
    if !proc_is_ours(me) {
        return Err(Error::msg("/proc does not show gwshim's PID namespace"));
    }
    let mut targets = select(&proc::snapshot(), me, opts.group);
    if targets.is_empty() {
        return Ok(());
    }
    let started = Instant::now();
    let all: Vec<&Entry> = targets.iter().collect();
    let (mut phase, mut deadline) = if opts.grace.is_zero() {
        info!(
            "ending {} ({}) with SIGKILL (grace 0)",
            count(all.len(), "leftover process", "leftover processes"),
            pid_list(&all)
        );
        (Phase::Kill, started + KILL_WAIT)
    } else {
        info!(
            "ending {} ({}) with SIGTERM, grace {}",
            count(all.len(), "leftover process", "leftover processes"),
            pid_list(&all),
            timespan::show(opts.grace)
        );
        (Phase::Term, started + opts.grace)
    };
    let mut termed = BTreeSet::new();
    let mut killed = BTreeSet::new();
    loop {
        match phase {
            Phase::Term => {
                for e in pending(&targets, &termed) {
                    terminate(e);
                    termed.insert(key(e));
                }
            }
            Phase::Kill => {
                let batch = pending(&targets, &killed);
                if !batch.is_empty() && !opts.grace.is_zero() {
                    warn!("{} needed SIGKILL", pid_list(&batch));
                }
                for e in batch {
                    send(e, libc::SIGKILL);
                    killed.insert(key(e));
                }
            }
        }
        match signals.wait(Some(deadline))? {
            None if phase == Phase::Term => {
                phase = Phase::Kill;
                deadline = Instant::now() + KILL_WAIT;
            }
            None => {
                let left: Vec<&Entry> = targets.iter().collect();
                warn!(
                    "{} still there {} after SIGKILL (uninterruptible sleep?); exiting without them",
                    pid_list(&left),
                    timespan::show(KILL_WAIT)
                );
                return Ok(());
            }
            Some(d) => match on_signal(d.signo, phase, opts.stop_signals) {
                OnSignal::Reap => {
                    reap::reap_ended(main);
                }
                OnSignal::KillNow => {
                    info!(
                        "{} (from pid {}) during the grace: SIGKILL now",
                        signals::name(d.signo),
                        d.sender
                    );
                    phase = Phase::Kill;
                    deadline = Instant::now() + KILL_WAIT;
                }
                OnSignal::Ignore => debug!(
                    "ignoring {} (from pid {}) while ending leftover processes",
                    signals::name(d.signo),
                    d.sender
                ),
            },
        }
        targets = select(&proc::snapshot(), me, opts.group);
        if targets.is_empty() {
            info!(
                "leftover processes ended after {}",
                timespan::show(started.elapsed())
            );
            return Ok(());
        }
    }
}

/// True when /proc belongs to gwshim's own PID namespace: pid numbers read there are the
/// ones kill(2) means. (As pid 1 under `unshare --pid` without --mount-proc, /proc is the
/// host's, and its pid 1 and descendants are not ours.)
fn proc_is_ours(me: i32) -> bool {
    std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_str()?.parse::<i32>().ok())
        == Some(me)
}

/// SIGTERM, and SIGCONT to a stopped process so it can act on it.
fn terminate(e: &Entry) {
    if send(e, libc::SIGTERM) && e.stat.state == 'T' {
        send(e, libc::SIGCONT);
    }
}

/// Sends `sig` to the process `e` names, and to no other: through a pidfd taken while the
/// pid still names it (same start time), so a pid that a descendant's own parent reaped and
/// the system reused meanwhile gets nothing. Without a pidfd the start time is checked right
/// before kill(2), which leaves the window of those two syscalls.
fn send(e: &Entry, sig: i32) -> bool {
    let sent = match pidfd::take(e.pid, e.stat.start_time) {
        pidfd::Taken::Fd(fd) => fd.send(sig),
        pidfd::Taken::Gone => return false,
        pidfd::Taken::ByPid => {
            if proc::stat(e.pid).map(|s| s.start_time) != Some(e.stat.start_time) {
                return false;
            }
            signals::send(e.pid, sig, false)
        }
    };
    match sent {
        Ok(()) => true,
        Err(err) => {
            if err.raw_os_error() != Some(libc::ESRCH) {
                warn!("cannot send {} to pid {}: {err}", signals::name(sig), e.pid);
            }
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proc::Stat;

    fn p(pid: i32, ppid: i32, pgrp: i32, state: char) -> Entry {
        Entry {
            pid,
            stat: Stat {
                state,
                ppid,
                pgrp,
                start_time: 1000 + pid as u64,
            },
        }
    }

    fn pids(v: &[Entry]) -> Vec<i32> {
        v.iter().map(|e| e.pid).collect()
    }

    #[test]
    fn selects_descendants_and_the_group() {
        // gwshim is 100 (child of 50); the main child was 101 (reaped).
        let host = [
            p(1, 0, 1, 'S'),
            p(50, 1, 50, 'S'),
            p(100, 50, 50, 'S'),
            // an orphan adopted by gwshim (subreaper), its child, and its grandchild
            p(102, 100, 102, 'S'),
            p(103, 102, 102, 'S'),
            p(104, 103, 102, 'R'),
            // a zombie child of gwshim: reaped, never signalled
            p(105, 100, 101, 'Z'),
            // a stopped descendant
            p(106, 100, 106, 'T'),
            // a sibling of gwshim and its child: not ours
            p(200, 50, 50, 'S'),
            p(201, 200, 50, 'S'),
            // in the child's old group 101 but reparented to init (no subreaper)
            p(300, 1, 101, 'S'),
            p(301, 1, 101, 'Z'),
        ];
        // (snapshot, me, the child's own group, the leftovers)
        type Row<'a> = (&'a [Entry], i32, Option<i32>, Vec<i32>);
        let table: &[Row] = &[
            (&host, 100, None, vec![102, 103, 104, 106]),
            (&host, 100, Some(101), vec![102, 103, 104, 106, 300]),
            // group 102 holds only descendants anyway
            (&host, 100, Some(102), vec![102, 103, 104, 106]),
            // a group nobody is in
            (&host, 100, Some(999), vec![102, 103, 104, 106]),
            // the sibling's view: only its own child
            (&host, 200, None, vec![201]),
            (&[], 100, Some(101), vec![]),
            (&[p(100, 50, 50, 'S')], 100, None, vec![]),
        ];
        for (snapshot, me, group, want) in table {
            assert_eq!(
                &pids(&select(snapshot, *me, *group)),
                want,
                "me={me} group={group:?}"
            );
        }
    }

    #[test]
    fn a_reused_group_number_is_not_the_childs() {
        // The group 101 emptied, pid 101 was reused by a stranger that leads a group 101.
        let snapshot = [
            p(100, 50, 50, 'S'),
            p(101, 1, 101, 'S'),
            p(400, 101, 101, 'S'),
            p(102, 100, 102, 'S'),
        ];
        assert_eq!(pids(&select(&snapshot, 100, Some(101))), vec![102]);
        // ... unless that pid 101 is gwshim's own descendant: then it is ours anyway.
        let snapshot = [
            p(100, 50, 50, 'S'),
            p(101, 100, 101, 'S'),
            p(400, 101, 101, 'S'),
        ];
        assert_eq!(pids(&select(&snapshot, 100, Some(101))), vec![101, 400]);
    }

    #[test]
    fn as_pid_1_everything_is_a_descendant() {
        let ns = [
            p(1, 0, 1, 'S'),
            p(7, 1, 7, 'S'),
            p(8, 1, 8, 'S'),
            p(9, 8, 8, 'D'),
            p(10, 1, 10, 'Z'),
        ];
        assert_eq!(pids(&select(&ns, 1, None)), vec![7, 8, 9]);
    }

    #[test]
    fn ppid_loops_do_not_hang() {
        // Cannot happen in /proc, but a snapshot is read piecemeal.
        let odd = [
            p(100, 50, 50, 'S'),
            p(5, 6, 5, 'S'),
            p(6, 5, 5, 'S'),
            p(7, 100, 7, 'S'),
        ];
        assert_eq!(pids(&select(&odd, 100, None)), vec![7]);
    }

    #[test]
    fn signals_during_the_grace() {
        use OnSignal::*;
        use Phase::*;
        let stop = Set::of(&crate::exit::DEFAULT_STOP_SIGNALS);
        let table = [
            (libc::SIGCHLD, Term, Reap),
            (libc::SIGCHLD, Kill, Reap),
            (libc::SIGTERM, Term, KillNow),
            (libc::SIGINT, Term, KillNow),
            (libc::SIGQUIT, Term, KillNow),
            (libc::SIGHUP, Term, Ignore),
            (libc::SIGTERM, Kill, Ignore),
            (libc::SIGUSR1, Term, Ignore),
            (libc::SIGWINCH, Term, Ignore),
            (libc::SIGCONT, Kill, Ignore),
        ];
        for (sig, phase, want) in table {
            assert_eq!(
                on_signal(sig, phase, stop),
                want,
                "signal {sig} in {phase:?}"
            );
        }
    }

    #[test]
    fn sends_each_stage_once_per_process() {
        let targets = [p(7, 1, 7, 'S'), p(8, 1, 8, 'S')];
        let mut sent = BTreeSet::new();
        assert_eq!(pending(&targets, &sent).len(), 2);
        sent.insert(key(&targets[0]));
        let left: Vec<i32> = pending(&targets, &sent).iter().map(|e| e.pid).collect();
        assert_eq!(left, vec![8]);
        // pid 7 reused by another process (another start time) is a new target
        let reused = [Entry {
            pid: 7,
            stat: Stat {
                start_time: 5,
                ..targets[0].stat
            },
        }];
        assert_eq!(pending(&reused, &sent).len(), 1);
    }
}
