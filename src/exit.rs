//! The exit decision: what gwshim exits with once the child has ended.
//!
//! A pure function over plain data, so the whole table in the README is tested here.

use crate::reap::Termination;
use crate::signals::{self, Set};
use std::fmt;

/// One run of the main child as gwshim saw it: how it ended, and which signals reached it.
/// The decision's input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    pub end: Termination,
    /// The last stop signal that reached the child (forwarded by gwshim, or sent to the
    /// whole group by the terminal), if any.
    pub stop: Option<i32>,
    /// Every signal that reached the child (after rewrites).
    pub reached: Set,
}

impl Run {
    /// A run no signal reached (a command that could not be executed, say).
    pub fn unsignalled(end: Termination) -> Run {
        Run {
            end,
            stop: None,
            reached: Set::default(),
        }
    }

    /// SIGUSR1 reached the child: a restart was asked for (the gateway then exits 75).
    pub fn restart_requested(&self) -> bool {
        self.reached.contains(RESTART_SIGNAL)
    }
}

/// What gwshim does last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
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
            keep: DEFAULT_KEEP.to_vec(),
            restart_status: DEFAULT_RESTART_STATUS,
            transparent: false,
        }
    }
}

/// The statuses passed on as they are unless `--keep-status` says otherwise: the gateway's
/// planned restart (75) and its fatal configuration error (78, never restarted).
pub const DEFAULT_KEEP: [i32; 2] = [75, 78];

/// What a failure becomes unless `--restart-status` says otherwise: EX_TEMPFAIL.
pub const DEFAULT_RESTART_STATUS: i32 = 75;

/// The exit decision: what gwshim does last, and why, in words for the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub action: Action,
    pub reason: &'static str,
    /// Anything but exit 0, a death by the stop signal asked for or a planned restart:
    /// logged as a warning, so even a quiet (-q) log says why gwshim ended so.
    pub warn: bool,
}

impl Decision {
    /// The level of gwshim's last log line: a warning unless the end was asked for.
    pub fn log_level(&self) -> log::Level {
        if self.warn {
            log::Level::Warn
        } else {
            log::Level::Info
        }
    }
}

/// "exiting 75 (failure: restart status)", "dying of SIGHUP (child died of a signal gwshim
/// passed on)": the end of gwshim's last log line.
impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.action {
            Action::Exit(n) => write!(f, "exiting {n}")?,
            Action::Die(s) => write!(f, "dying of {}", signals::name(s))?,
        }
        write!(f, " ({})", self.reason)
    }
}

/// The signals that ask the child to stop for good, unless `--stop-signal` says otherwise.
/// Not SIGHUP: services reload on it (`ExecReload=/bin/kill -HUP $MAINPID`).
pub const DEFAULT_STOP_SIGNALS: [i32; 3] =
    [nix::libc::SIGTERM, nix::libc::SIGINT, nix::libc::SIGQUIT];

/// The signal that asks for a restart (the gateway drains and exits 75 on it).
pub const RESTART_SIGNAL: i32 = nix::libc::SIGUSR1;

/// What gwshim does once the child's `run` has ended, under `policy`. Pure.
pub fn decide(run: &Run, policy: &Policy) -> Decision {
    let Run { end, stop, reached } = *run;
    let (action, reason) = match (end, stop) {
        (Termination::Exited(n), _) if policy.transparent => (Action::Exit(n), "transparent"),
        (Termination::Signaled(s), _) if policy.transparent => {
            (Action::Exit(128 + s), "transparent: 128 + signal")
        }
        (Termination::Signaled(s), Some(stop)) if s == stop => {
            (Action::Die(s), "stop requested; child died of that signal")
        }
        // A restart asked for (SIGUSR1) that killed a child not yet ready for it (the
        // gateway before its handlers are set, during its own restart brake): the restart
        // it asked for, not a failure by signal that systemd would count.
        // It exits as the child's own planned restart would: 75 where the keep list passes
        // it (the drop-in's --restart-status 70 would make it a failure for systemd).
        (Termination::Signaled(s), None) if s == RESTART_SIGNAL && reached.contains(s) => (
            Action::Exit(planned_restart_status(policy)),
            "restart requested; child died of that signal: planned restart",
        ),
        (Termination::Signaled(s), Some(_)) if s == RESTART_SIGNAL => {
            (Action::Exit(0), "stop requested")
        }
        // As the command run alone would have: a hangup, or a signal it does not handle.
        (Termination::Signaled(s), _) if reached.contains(s) => {
            (Action::Die(s), "child died of a signal gwshim passed on")
        }
        (_, Some(_)) => (Action::Exit(0), "stop requested"),
        (Termination::Exited(0), None) => (Action::Exit(0), "clean exit"),
        (Termination::Exited(n), None) if policy.keep.contains(&n) => {
            (Action::Exit(n), "status in the keep list")
        }
        (Termination::Exited(_), None) => (
            Action::Exit(policy.restart_status),
            "failure: restart status",
        ),
        (Termination::Signaled(_), None) => (
            Action::Exit(policy.restart_status),
            "killed by a signal nobody asked for: restart status",
        ),
    };
    let killed_by_restart = matches!(end, Termination::Signaled(s) if s == RESTART_SIGNAL)
        && stop.is_none()
        && reached.contains(RESTART_SIGNAL)
        && !policy.transparent;
    let failure = match action {
        Action::Exit(_) if killed_by_restart => false,
        Action::Exit(n) => n != 0,
        Action::Die(s) => stop != Some(s),
    };
    Decision {
        action,
        reason,
        // A planned restart is logged, but no warning: `-q` and `journalctl -p warning`
        // stay quiet.
        warn: failure && !planned_restart(end, action, policy),
    }
}

/// Whether the child asked for a restart (its own exit 75, EX_TEMPFAIL: the gateway's planned
/// restart after SIGUSR1, `systemctl reload` or /restart) and gwshim passes it on as 75: no
/// failure to warn about, though systemd restarts on it. Pure.
fn planned_restart(end: Termination, action: Action, policy: &Policy) -> bool {
    end == Termination::Exited(RESTART_NOW)
        && action == Action::Exit(RESTART_NOW)
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
    use Action::*;
    use Termination::*;

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
        type Row<'a> = (Termination, Option<i32>, &'a [i32], &'a Policy, Action);
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
            let run = Run {
                end,
                stop,
                reached: Set::of(reached),
            };
            assert_eq!(
                decide(&run, policy).action,
                want,
                "{end:?} stop={stop:?} reached={reached:?} {policy:?}"
            );
        }
    }

    #[test]
    fn warnings_are_what_is_not_zero_the_stop_asked_for_or_a_planned_restart() {
        let p = Policy::default();
        let warn = |end, stop, reached: &[i32]| {
            let run = Run {
                end,
                stop,
                reached: Set::of(reached),
            };
            decide(&run, &p).warn
        };
        assert!(!warn(Exited(0), None, &[]));
        assert!(!warn(Exited(1), Some(TERM), &[TERM]));
        assert!(!warn(Signaled(TERM), Some(TERM), &[TERM]));
        assert!(warn(Exited(1), None, &[]));
        assert!(
            !warn(Exited(75), None, &[]),
            "the child's own planned restart"
        );
        assert!(warn(Signaled(HUP), None, &[HUP]));
        assert!(!warn(Signaled(USR1), None, &[USR1]), "a planned restart");
        assert!(warn(Signaled(USR1), None, &[]), "nobody asked");
        let keep_none = Policy {
            keep: vec![],
            ..Policy::default()
        };
        let run = Run::unsignalled(Exited(75));
        assert!(decide(&run, &keep_none).warn, "75 not kept: a failure");
    }

    #[test]
    fn the_decision_says_what_and_why() {
        let p = Policy::default();
        let d = decide(&Run::unsignalled(Exited(1)), &p);
        assert_eq!(d.to_string(), "exiting 75 (failure: restart status)");
        assert_eq!(d.log_level(), log::Level::Warn);
        let run = Run {
            end: Signaled(HUP),
            stop: None,
            reached: Set::of(&[HUP]),
        };
        assert_eq!(
            decide(&run, &p).to_string(),
            "dying of SIGHUP (child died of a signal gwshim passed on)"
        );
        let d = decide(&Run::unsignalled(Exited(0)), &p);
        assert_eq!(d.to_string(), "exiting 0 (clean exit)");
        assert_eq!(d.log_level(), log::Level::Info);
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
        let table: &[(Termination, Action, &Policy, bool)] = &[
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
}
