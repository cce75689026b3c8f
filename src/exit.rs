//! The exit decision: what gwshim exits with once the child has ended.
//!
//! A pure function over plain data, so the whole table in the README is tested here.

use crate::signals::{self, Set};
use std::fmt;

/// How the main child ended, as waitpid reported it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildEnd {
    Exited(i32),
    Signaled(i32),
}

/// What gwshim does at the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Exit(i32),
    /// Die of this signal, so the parent sees the same clean signal death as the child's.
    Die(i32),
}

/// The user's rewriting policy (from the command line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub keep: Vec<i32>,
    pub restart_status: i32,
    pub transparent: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            keep: vec![75, 78],
            restart_status: 75,
            transparent: false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub outcome: Outcome,
    pub reason: &'static str,
    /// Anything but exit 0 or a death by the stop signal asked for: worth a warning, so
    /// even a quiet (-q) log says why gwshim ended so.
    pub failure: bool,
}

/// The signals that ask the child to stop for good, unless `--stop-signal` says otherwise.
/// Not SIGHUP: services reload on it (`ExecReload=/bin/kill -HUP $MAINPID`).
pub const DEFAULT_STOP_SIGNALS: [i32; 3] =
    [nix::libc::SIGTERM, nix::libc::SIGINT, nix::libc::SIGQUIT];

/// The signal that asks for a restart (the gateway drains and exits 75 on it).
pub const RESTART_SIGNAL: i32 = nix::libc::SIGUSR1;

/// `stop` is the last stop signal that reached the child (forwarded by gwshim, or sent to
/// the whole group by the terminal), if any; `reached` every signal that reached it so.
pub fn decide(end: ChildEnd, stop: Option<i32>, reached: Set, policy: &Policy) -> Decision {
    let (outcome, reason) = match (end, stop) {
        (ChildEnd::Exited(n), _) if policy.transparent => (Outcome::Exit(n), "transparent"),
        (ChildEnd::Signaled(s), _) if policy.transparent => {
            (Outcome::Exit(128 + s), "transparent: 128 + signal")
        }
        (ChildEnd::Signaled(s), Some(stop)) if s == stop => {
            (Outcome::Die(s), "stop requested; child died of that signal")
        }
        // A restart asked for (SIGUSR1) that killed a child not yet ready for it (the
        // gateway before its handlers are set, during its own restart brake): the restart
        // it asked for, not a failure by signal that systemd would count.
        // It exits as the child's own planned restart would: 75 where the keep list passes
        // it (the drop-in's --restart-status 70 would make it a failure for systemd).
        (ChildEnd::Signaled(s), None) if s == RESTART_SIGNAL && reached.contains(s) => (
            Outcome::Exit(planned_restart_status(policy)),
            "restart requested; child died of that signal: planned restart",
        ),
        (ChildEnd::Signaled(s), Some(_)) if s == RESTART_SIGNAL => {
            (Outcome::Exit(0), "stop requested")
        }
        // As the command run alone would have: a hangup, or a signal it does not handle.
        (ChildEnd::Signaled(s), _) if reached.contains(s) => {
            (Outcome::Die(s), "child died of a signal gwshim passed on")
        }
        (_, Some(_)) => (Outcome::Exit(0), "stop requested"),
        (ChildEnd::Exited(0), None) => (Outcome::Exit(0), "clean exit"),
        (ChildEnd::Exited(n), None) if policy.keep.contains(&n) => {
            (Outcome::Exit(n), "status in the keep list")
        }
        (ChildEnd::Exited(_), None) => (
            Outcome::Exit(policy.restart_status),
            "failure: restart status",
        ),
        (ChildEnd::Signaled(_), None) => (
            Outcome::Exit(policy.restart_status),
            "killed by a signal nobody asked for: restart status",
        ),
    };
    let planned_restart = matches!(end, ChildEnd::Signaled(s) if s == RESTART_SIGNAL)
        && stop.is_none()
        && reached.contains(RESTART_SIGNAL)
        && !policy.transparent;
    let failure = match outcome {
        Outcome::Exit(_) if planned_restart => false,
        Outcome::Exit(n) => n != 0,
        Outcome::Die(s) => stop != Some(s),
    };
    Decision {
        outcome,
        reason,
        failure,
    }
}

/// "exited 1", "was killed by SIGTERM": how log lines tell a child's end.
impl fmt::Display for ChildEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ChildEnd::Exited(n) => write!(f, "exited {n}"),
            ChildEnd::Signaled(s) => write!(f, "was killed by {}", signals::name(s)),
        }
    }
}

/// Whether the child asked for a restart (its own exit 75, EX_TEMPFAIL: the gateway's planned
/// restart after SIGUSR1, `systemctl reload` or /restart) and gwshim passes it on as 75: no
/// failure to warn about, though systemd restarts on it. Logged at info level.
pub fn planned_restart(end: ChildEnd, outcome: Outcome, policy: &Policy) -> bool {
    end == ChildEnd::Exited(RESTART_NOW)
        && outcome == Outcome::Exit(RESTART_NOW)
        && (policy.transparent || policy.keep.contains(&RESTART_NOW))
}

/// EX_TEMPFAIL: "restart me now", the Hermes gateway's planned-restart status.
const RESTART_NOW: i32 = 75;

/// What a child's own exit 75 (a planned restart) becomes under `policy`. Pure.
fn planned_restart_status(policy: &Policy) -> i32 {
    if policy.keep.contains(&RESTART_NOW) {
        RESTART_NOW
    } else {
        policy.restart_status
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ChildEnd::*;
    use Outcome::*;

    const HUP: i32 = 1;
    const INT: i32 = 2;
    const KILL: i32 = 9;
    const USR1: i32 = 10;
    const USR2: i32 = 12;
    const TERM: i32 = 15;

    #[test]
    fn exit_table() {
        let default = Policy::default();
        let custom = Policy {
            keep: vec![3],
            restart_status: 99,
            transparent: false,
        };
        let dropin = Policy {
            restart_status: 70,
            ..Policy::default()
        };
        let transparent = Policy {
            transparent: true,
            ..Policy::default()
        };
        // (how the child ended, the stop signal, the signals that reached it, policy)
        type Row<'a> = (ChildEnd, Option<i32>, &'a [i32], &'a Policy, Outcome);
        let table: &[Row] = &[
            (Exited(0), None, &[], &default, Exit(0)),
            (Exited(75), None, &[], &default, Exit(75)),
            (Exited(78), None, &[], &default, Exit(78)),
            (Exited(1), None, &[], &default, Exit(75)),
            (Exited(2), None, &[], &default, Exit(75)),
            (Exited(255), None, &[], &default, Exit(75)),
            (Signaled(KILL), None, &[], &default, Exit(75)),
            (Signaled(11), None, &[], &default, Exit(75)),
            (Signaled(TERM), None, &[], &default, Exit(75)),
            // after a requested stop
            (Exited(1), Some(TERM), &[TERM], &default, Exit(0)),
            (Exited(0), Some(TERM), &[TERM], &default, Exit(0)),
            (Exited(78), Some(TERM), &[TERM], &default, Exit(0)),
            (Signaled(TERM), Some(TERM), &[TERM], &default, Die(TERM)),
            (Signaled(INT), Some(INT), &[INT], &default, Die(INT)),
            (Signaled(KILL), Some(TERM), &[TERM], &default, Exit(0)),
            // a signal that is no stop request (a reload): survived, it changes nothing
            (Exited(1), None, &[HUP], &default, Exit(75)),
            (Exited(0), None, &[HUP], &default, Exit(0)),
            (Signaled(11), None, &[HUP], &default, Exit(75)),
            (Signaled(KILL), None, &[HUP, USR2], &default, Exit(75)),
            // ... not survived: gwshim dies of it, as the command alone would
            (Signaled(HUP), None, &[HUP], &default, Die(HUP)),
            (Signaled(USR2), None, &[HUP, USR2], &custom, Die(USR2)),
            // a restart asked for that killed the child: the planned restart it asked for
            (Signaled(USR1), None, &[USR1], &default, Exit(75)),
            (Signaled(USR1), None, &[USR1], &custom, Exit(99)),
            // The drop-in's crash status is 70; the restart asked for stays 75, a success.
            (Signaled(USR1), None, &[USR1], &dropin, Exit(75)),
            (Exited(1), None, &[USR1], &dropin, Exit(70)),
            (Signaled(USR1), Some(TERM), &[USR1, TERM], &default, Exit(0)),
            (Signaled(USR1), None, &[], &default, Exit(75)),
            (Signaled(USR1), None, &[USR1], &transparent, Exit(138)),
            // every signal, real-time ones included
            (Signaled(36), None, &[36], &default, Die(36)),
            (Signaled(64), None, &[64], &default, Die(64)),
            (Signaled(36), None, &[], &default, Exit(75)),
            (Signaled(40), None, &[], &transparent, Exit(168)),
            (Signaled(HUP), Some(TERM), &[TERM, HUP], &default, Die(HUP)),
            // custom keep list and restart status
            (Exited(3), None, &[], &custom, Exit(3)),
            (Exited(75), None, &[], &custom, Exit(99)),
            (Exited(78), None, &[], &custom, Exit(99)),
            (Signaled(KILL), None, &[], &custom, Exit(99)),
            // transparent
            (Exited(1), None, &[], &transparent, Exit(1)),
            (Exited(0), None, &[], &transparent, Exit(0)),
            (Signaled(KILL), None, &[], &transparent, Exit(137)),
            (Signaled(TERM), Some(TERM), &[TERM], &transparent, Exit(143)),
            (Signaled(HUP), None, &[HUP], &transparent, Exit(129)),
            (Exited(1), Some(TERM), &[TERM], &transparent, Exit(1)),
        ];
        for &(end, stop, reached, policy, want) in table {
            assert_eq!(
                decide(end, stop, Set::of(reached), policy).outcome,
                want,
                "{end:?} stop={stop:?} reached={reached:?} {policy:?}"
            );
        }
    }

    #[test]
    fn failures_are_what_is_not_zero_or_the_stop_asked_for() {
        let p = Policy::default();
        let failure = |end, stop, reached: &[i32]| decide(end, stop, Set::of(reached), &p).failure;
        assert!(!failure(Exited(0), None, &[]));
        assert!(!failure(Exited(1), Some(TERM), &[TERM]));
        assert!(!failure(Signaled(TERM), Some(TERM), &[TERM]));
        assert!(failure(Exited(1), None, &[]));
        assert!(failure(Exited(75), None, &[]));
        assert!(failure(Signaled(HUP), None, &[HUP]));
        assert!(!failure(Signaled(USR1), None, &[USR1]), "a planned restart");
        assert!(failure(Signaled(USR1), None, &[]), "nobody asked");
    }

    #[test]
    fn a_planned_restart_is_the_childs_own_75_passed_on() {
        let default = Policy::default();
        let keep_none = Policy {
            keep: vec![],
            ..Policy::default()
        };
        let transparent = Policy {
            transparent: true,
            keep: vec![],
            ..Policy::default()
        };
        let table: &[(ChildEnd, Outcome, &Policy, bool)] = &[
            (Exited(75), Exit(75), &default, true),
            (Exited(75), Exit(75), &transparent, true),
            // 75 is gwshim's restart status for a failure: not asked for by the child
            (Exited(1), Exit(75), &default, false),
            (Signaled(KILL), Exit(75), &default, false),
            // --keep-status without 75: the child's 75 is a failure like any other
            (Exited(75), Exit(75), &keep_none, false),
            (Exited(75), Exit(0), &default, false),
        ];
        for &(end, outcome, policy, want) in table {
            assert_eq!(
                planned_restart(end, outcome, policy),
                want,
                "{end:?} {outcome:?} {policy:?}"
            );
        }
    }

    #[test]
    fn tells_how_a_child_ended() {
        assert_eq!(Exited(1).to_string(), "exited 1");
        assert_eq!(Signaled(TERM).to_string(), "was killed by SIGTERM");
    }
}
