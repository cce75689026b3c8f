//! The exit decision: what gwshim exits with once the child has ended.
//!
//! A pure function over plain data, so the whole table in the README is tested here.

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
}

/// Signals that ask the child to stop for good (after any rewrite).
pub fn is_stop_signal(sig: i32) -> bool {
    [
        nix::libc::SIGTERM,
        nix::libc::SIGINT,
        nix::libc::SIGQUIT,
        nix::libc::SIGHUP,
    ]
    .contains(&sig)
}

/// `stop` is the last stop signal gwshim forwarded (or saw reach the child), if any.
pub fn decide(end: ChildEnd, stop: Option<i32>, policy: &Policy) -> Decision {
    let (outcome, reason) = match (end, stop) {
        (ChildEnd::Exited(n), _) if policy.transparent => (Outcome::Exit(n), "transparent"),
        (ChildEnd::Signaled(s), _) if policy.transparent => {
            (Outcome::Exit(128 + s), "transparent: 128 + signal")
        }
        (ChildEnd::Signaled(s), Some(stop)) if s == stop => {
            (Outcome::Die(s), "stop requested; child died of that signal")
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
    Decision { outcome, reason }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ChildEnd::*;
    use Outcome::*;

    const TERM: i32 = 15;
    const INT: i32 = 2;
    const KILL: i32 = 9;

    #[test]
    fn exit_table() {
        let default = Policy::default();
        let custom = Policy {
            keep: vec![3],
            restart_status: 99,
            transparent: false,
        };
        let transparent = Policy {
            transparent: true,
            ..Policy::default()
        };
        let table: &[(ChildEnd, Option<i32>, &Policy, Outcome)] = &[
            (Exited(0), None, &default, Exit(0)),
            (Exited(75), None, &default, Exit(75)),
            (Exited(78), None, &default, Exit(78)),
            (Exited(1), None, &default, Exit(75)),
            (Exited(2), None, &default, Exit(75)),
            (Exited(255), None, &default, Exit(75)),
            (Signaled(KILL), None, &default, Exit(75)),
            (Signaled(11), None, &default, Exit(75)),
            (Signaled(TERM), None, &default, Exit(75)),
            // after a requested stop
            (Exited(1), Some(TERM), &default, Exit(0)),
            (Exited(0), Some(TERM), &default, Exit(0)),
            (Exited(78), Some(TERM), &default, Exit(0)),
            (Signaled(TERM), Some(TERM), &default, Die(TERM)),
            (Signaled(INT), Some(INT), &default, Die(INT)),
            (Signaled(KILL), Some(TERM), &default, Exit(0)),
            // custom keep list and restart status
            (Exited(3), None, &custom, Exit(3)),
            (Exited(75), None, &custom, Exit(99)),
            (Exited(78), None, &custom, Exit(99)),
            (Signaled(KILL), None, &custom, Exit(99)),
            // transparent
            (Exited(1), None, &transparent, Exit(1)),
            (Exited(0), None, &transparent, Exit(0)),
            (Signaled(KILL), None, &transparent, Exit(137)),
            (Signaled(TERM), Some(TERM), &transparent, Exit(143)),
            (Exited(1), Some(TERM), &transparent, Exit(1)),
        ];
        for &(end, stop, policy, want) in table {
            assert_eq!(
                decide(end, stop, policy).outcome,
                want,
                "{end:?} stop={stop:?} {policy:?}"
            );
        }
    }

    #[test]
    fn stop_signals() {
        for (sig, stop) in [
            (15, true),
            (2, true),
            (3, true),
            (1, true),
            (10, false),
            (9, false),
        ] {
            assert_eq!(is_stop_signal(sig), stop, "signal {sig}");
        }
    }
}
