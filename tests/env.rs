//! GWSHIM_* environment twins against the real binary.

use std::process::Command;

const GWSHIM: &str = env!("CARGO_BIN_EXE_gwshim");

fn gwshim(vars: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(GWSHIM);
    cmd.args(["--no-pacing"]).args(args);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.env_remove("INVOCATION_ID")
        .output()
        .expect("run gwshim")
}

#[test]
fn variables_change_behaviour_as_their_flags_do() {
    let exit3 = ["--", "sh", "-c", "exit 3"];
    assert_eq!(gwshim(&[], &exit3).status.code(), Some(75));
    assert_eq!(
        gwshim(&[("GWSHIM_KEEP_STATUS", "3")], &exit3).status.code(),
        Some(3)
    );
    assert_eq!(
        gwshim(&[("GWSHIM_RESTART_STATUS", "9")], &exit3)
            .status
            .code(),
        Some(9)
    );
    assert_eq!(
        gwshim(&[("GWSHIM_TRANSPARENT", "1")], &exit3).status.code(),
        Some(3)
    );
    // The flag wins over its variable.
    let out = gwshim(
        &[("GWSHIM_RESTART_STATUS", "9")],
        &["--restart-status", "8", "--", "sh", "-c", "exit 3"],
    );
    assert_eq!(out.status.code(), Some(8));
    // GWSHIM_LOG=warn hides the info lines.
    let out = gwshim(&[("GWSHIM_LOG", "warn")], &exit3);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("started"));
}

#[test]
fn a_bad_value_exits_2_naming_the_variable() {
    for (var, value) in [
        ("GWSHIM_GRACE", "soon"),
        ("GWSHIM_KEEP_STATUS", "x"),
        ("GWSHIM_GROUP", "perhaps"),
    ] {
        let out = gwshim(&[(var, value)], &["--", "true"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{var}: {err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.contains(var), "{err}");
    }
}

#[test]
fn gwshim_variables_do_not_reach_the_child() {
    let out = gwshim(
        &[
            ("GWSHIM_GRACE", "1"),
            ("GWSHIM_LOG", "info"),
            ("OTHER", "kept"),
        ],
        &["--", "env"],
    );
    let env = String::from_utf8_lossy(&out.stdout);
    assert!(!env.contains("GWSHIM_"), "{env}");
    assert!(env.contains("OTHER=kept"));
}

/// An empty variable counts as unset: `GWSHIM_KEEP_STATUS=` once meant "keep nothing" and
/// turned a fatal-config 78 into 75, past `RestartPreventExitStatus=78`.
#[test]
fn an_empty_variable_counts_as_unset() {
    let exit78 = ["--", "sh", "-c", "exit 78"];
    for var in [
        "GWSHIM_KEEP_STATUS",
        "GWSHIM_RESTART_STATUS",
        "GWSHIM_GRACE",
        "GWSHIM_STOP_SIGNAL",
        "GWSHIM_REWRITE_SIGNAL",
        "GWSHIM_TRANSPARENT",
        "GWSHIM_PIDFILE",
        "GWSHIM_LOG",
    ] {
        let out = gwshim(&[(var, "")], &exit78);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{var}=: {err}");
        assert!(err.contains("exited 78; exiting 78"), "{var}=: {err}");
    }
}
