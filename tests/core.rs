//! Integration tests for the core of gwshim: the real binary, real child processes (the
//! Python helper in tests/helpers/child.py) and real signals. Every wait is bounded.

mod common;
mod skip;

use common::*;
use nix::libc;
use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::Duration;

const SUPERVISOR_ENV: &str = "HERMES_GATEWAY_EXTERNAL_SUPERVISOR";

/// Runs gwshim to its end (bounded); returns its status and its stderr.
fn run(args: &[&str]) -> (ExitStatus, String) {
    let dir = TempDir::new("run");
    let log = dir.join("gwshim.log");
    let mut cmd = gwshim(args, &log);
    cmd.current_dir(dir.path());
    let mut running = Running::start(cmd, &log);
    let status = running.wait();
    (status, running.log_text())
}

fn sh(gw_opts: &[&str], script: &str) -> (ExitStatus, String) {
    let mut args = gw_opts.to_vec();
    args.extend(["--", "sh", "-c", script]);
    run(&args)
}

/// gwshim GW_OPTS -- python3 child.py record DIR CHILD_OPTS, started, with the child ready.
fn recorder(py: &str, dir: &TempDir, gw_opts: &[&str], child_opts: &[&str]) -> (Running, i32) {
    recorder_with(py, dir, gw_opts, &[], child_opts)
}

/// `recorder`, with gwshim's environment also holding `vars`.
fn recorder_with(
    py: &str,
    dir: &TempDir,
    gw_opts: &[&str],
    vars: &[(&str, &str)],
    child_opts: &[&str],
) -> (Running, i32) {
    let log = dir.join("gwshim.log");
    let mut args = gw_opts.to_vec();
    args.extend(["--", py, CHILD_PY, "record", dir.str()]);
    args.extend(child_opts);
    let mut cmd = gwshim(&args, &log);
    cmd.envs(vars.iter().copied());
    let running = Running::start(cmd, &log);
    let (child, ppid, _) = ready(dir, &running);
    assert_eq!(ppid, running.pid, "the recorder is gwshim's child");
    (running, child)
}

// ---------------------------------------------------------------------------------------
// The exit table (README).

#[test]
fn exit_table_plain_exits() {
    let table: &[(&[&str], &str, i32)] = &[
        (&[], "exit 0", 0),
        // the default keep list
        (&[], "exit 75", 75),
        (&[], "exit 78", 78),
        // anything else becomes the restart status
        (&[], "exit 1", 75),
        (&[], "exit 2", 75),
        (&[], "exit 77", 75),
        (&[], "exit 255", 75),
        // a custom keep list replaces the default one
        (
            &["--keep-status", "3,4", "--restart-status", "99"],
            "exit 3",
            3,
        ),
        (
            &["--keep-status", "3,4", "--restart-status", "99"],
            "exit 4",
            4,
        ),
        (
            &["--keep-status", "3,4", "--restart-status", "99"],
            "exit 75",
            99,
        ),
        (
            &["--keep-status", "3,4", "--restart-status", "99"],
            "exit 78",
            99,
        ),
        (
            &["--keep-status", "3,4", "--restart-status", "99"],
            "exit 0",
            0,
        ),
        (&["--keep-status", "none"], "exit 78", 75),
        (&["--keep-status", "none"], "exit 0", 0),
        // a custom restart status
        (&["--restart-status", "1"], "exit 5", 1),
        (&["--restart-status", "1"], "exit 78", 78),
    ];
    for &(opts, script, want) in table {
        let (status, log) = sh(opts, script);
        assert_code(status, want, &format!("{opts:?} sh -c '{script}'"), &log);
    }
}

#[test]
fn exit_table_unrequested_signal_death_is_restart_status() {
    for sig in ["KILL", "TERM", "INT", "SEGV", "HUP"] {
        let script = format!("ulimit -c 0; kill -{sig} $$");
        let (status, log) = sh(&[], &script);
        assert_code(
            status,
            75,
            &format!("child killed itself with SIG{sig}"),
            &log,
        );
        let (status, log) = sh(&["--restart-status", "99"], &script);
        assert_code(status, 99, &format!("--restart-status 99, SIG{sig}"), &log);
    }
}

#[test]
fn exit_table_after_a_stop_signal_any_exit_is_zero() {
    let py = need_python!();
    for (name, sig) in [("TERM", 15), ("INT", 2), ("QUIT", 3)] {
        for code in ["3", "0", "78", "1"] {
            let dir = TempDir::new("stopexit");
            let exit_on = format!("{name}={code}");
            let (mut run, _) = recorder(py, &dir, &[], &["--exit-on", &exit_on, "--linger", "0.1"]);
            kill(run.pid, sig);
            let status = run.wait();
            assert_code(
                status,
                0,
                &format!("SIG{name} forwarded, child exited {code}"),
                &run.log_text(),
            );
            assert_eq!(
                record(dir.path()),
                vec![sig],
                "the child got SIG{name} once"
            );
        }
    }
}

/// A child that dies of a signal gwshim passed on, stop signal or not, ends gwshim the way
/// it would end the command run alone: gwshim dies of the same signal.
#[test]
fn exit_table_child_dies_of_a_forwarded_signal_so_gwshim_does() {
    let py = need_python!();
    let forwarded = [
        ("TERM", libc::SIGTERM),
        ("INT", libc::SIGINT),
        ("QUIT", libc::SIGQUIT),
        ("HUP", libc::SIGHUP),
        ("USR2", libc::SIGUSR2),
        ("ALRM", libc::SIGALRM),
    ];
    for (name, sig) in forwarded {
        let dir = TempDir::new("stopdie");
        let (mut run, _) = recorder(py, &dir, &[], &["--die-on", name, "--linger", "0.1"]);
        kill(run.pid, sig);
        let status = run.wait();
        assert_eq!(
            (status.signal(), status.code()),
            (Some(sig), None),
            "child died of the SIG{name} gwshim forwarded: gwshim must die of it too, got \
             {status:?}; log:\n{}",
            run.log_text()
        );
        assert_eq!(record(dir.path()), vec![sig]);
    }
}

/// A reload (`ExecReload=/bin/kill -HUP $MAINPID`) is no stop request: a child that survives
/// the HUP and fails later is restarted (75). (That a HUP starts no --stop-timeout:
/// stop_timeout_starts_only_after_a_stop_signal.)
#[test]
fn exit_table_hup_then_a_crash_is_a_crash() {
    let py = need_python!();
    for (opts, want) in [
        (&[][..], 75),
        (&["--stop-signal", "TERM,HUP"], 0),
        (&["--stop-signal=QUIT,HUP"], 0),
    ] {
        let dir = TempDir::new("hupcrash");
        let (mut run, child) = recorder(py, &dir, opts, &["--exit-on", "USR2=1"]);
        kill(run.pid, libc::SIGHUP);
        record_len(dir.path(), 1, &run);
        assert!(
            stat(child).is_some_and(|s| s.0 != 'Z'),
            "{opts:?}: the child survived its reload; log:\n{}",
            run.log_text()
        );
        kill(run.pid, libc::SIGUSR2);
        let status = run.wait();
        assert_code(
            status,
            want,
            &format!("{opts:?}: HUP, then the child exited 1"),
            &run.log_text(),
        );
        assert_eq!(record(dir.path()), vec![libc::SIGHUP, libc::SIGUSR2]);
    }
    // The environment twin.
    let dir = TempDir::new("hupenv");
    let log = dir.join("gwshim.log");
    let args = [
        "--",
        py,
        CHILD_PY,
        "record",
        dir.str(),
        "--exit-on",
        "HUP=1",
    ];
    let mut cmd = gwshim(&args, &log);
    cmd.env("GWSHIM_STOP_SIGNAL", "HUP");
    let mut run = Running::start(cmd, &log);
    ready(&dir, &run);
    kill(run.pid, libc::SIGHUP);
    let status = run.wait();
    assert_code(status, 0, "GWSHIM_STOP_SIGNAL=HUP", &run.log_text());
}

#[test]
fn exit_table_stop_signal_is_judged_after_rewrite() {
    let py = need_python!();
    // USR2 rewritten to TERM is a stop: the child dies of TERM, so gwshim does.
    let dir = TempDir::new("rwstop");
    let (mut run, _) = recorder(
        py,
        &dir,
        &["--rewrite-signal", "USR2:TERM"],
        &["--die-on", "TERM"],
    );
    kill(run.pid, libc::SIGUSR2);
    let status = run.wait();
    assert_eq!(
        status.signal(),
        Some(libc::SIGTERM),
        "{status:?}; log:\n{}",
        run.log_text()
    );
    assert_eq!(record(dir.path()), vec![libc::SIGTERM]);

    // TERM rewritten to USR1 is not a stop: exit 5 becomes the restart status.
    let dir = TempDir::new("rwnostop");
    let (mut run, _) = recorder(
        py,
        &dir,
        &["--rewrite-signal", "TERM:USR1"],
        &["--exit-on", "USR1=5"],
    );
    kill(run.pid, libc::SIGTERM);
    let status = run.wait();
    assert_code(status, 75, "TERM:USR1, child exited 5", &run.log_text());
    assert_eq!(record(dir.path()), vec![libc::SIGUSR1]);
}

/// Signals 1-31 whose default action ends a process.
const KILLING: &[i32] = &[
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 24, 25, 26, 27, 29, 30, 31,
];

#[test]
fn exit_table_transparent() {
    for code in [0, 1, 3, 75, 78, 255] {
        let (status, log) = sh(&["--transparent"], &format!("exit {code}"));
        assert_code(status, code, &format!("--transparent, exit {code}"), &log);
    }
    for &sig in KILLING {
        let (status, log) = sh(&["--transparent"], &format!("ulimit -c 0; kill -{sig} $$"));
        assert_code(
            status,
            128 + sig,
            &format!("--transparent, child died of signal {sig}"),
            &log,
        );
    }
}

#[test]
fn exit_table_transparent_after_stop() {
    let py = need_python!();
    let dir = TempDir::new("transstop");
    let (mut run, _) = recorder(py, &dir, &["--transparent"], &["--die-on", "TERM"]);
    kill(run.pid, libc::SIGTERM);
    let status = run.wait();
    assert_code(
        status,
        128 + libc::SIGTERM,
        "--transparent, TERM forwarded, child died of it",
        &run.log_text(),
    );

    let dir = TempDir::new("transstop2");
    let (mut run, _) = recorder(py, &dir, &["--transparent"], &["--exit-on", "TERM=1"]);
    kill(run.pid, libc::SIGTERM);
    let status = run.wait();
    assert_code(
        status,
        1,
        "--transparent, TERM forwarded, child exited 1",
        &run.log_text(),
    );
}

#[test]
fn exit_table_cannot_exec() {
    let dir = TempDir::new("noexec");
    let plain = dir.join("plain-file");
    fs::write(&plain, "#!/bin/sh\nexit 0\n").unwrap();
    let plain = plain.to_str().unwrap();
    // A venv's entry point after the venv it names was recreated elsewhere.
    let stale = dir.join("hermes");
    fs::write(&stale, "#!/nonexistent/old-venv/bin/python3\nimport sys\n").unwrap();
    fs::set_permissions(&stale, fs::Permissions::from_mode(0o755)).unwrap();
    let stale = stale.to_str().unwrap();
    let why_stale = format!(
        "cannot run {stale}: its interpreter /nonexistent/old-venv/bin/python3 does not exist"
    );
    let why_plain = format!("cannot run {plain}: it is not executable");
    let cases: &[(&str, i32, &str)] = &[
        (
            "/nonexistent/gwshim-test-command",
            127,
            "cannot run /nonexistent/gwshim-test-command: no such file",
        ),
        (
            "gwshim-test-no-such-command-on-path",
            127,
            "cannot run gwshim-test-no-such-command-on-path: not found in PATH",
        ),
        (plain, 126, &why_plain),
        ("/etc", 126, "cannot run /etc: it is a directory"),
        (stale, 127, &why_stale),
    ];
    // Both ways of starting the child: posix_spawn, and fork + exec (with --pdeathsig).
    for opts in [&[][..], &["--pdeathsig", "TERM"]] {
        for &(command, want, why) in cases {
            let mut args = opts.to_vec();
            args.extend(["--", command, "arg"]);
            let (status, log) = run(&args);
            assert_code(status, want, &format!("{opts:?} exec {command}"), &log);
            assert_eq!(
                log,
                format!("gwshim: error: {why}\n"),
                "{opts:?}: one line, no repeated text"
            );
        }
    }
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    let dir = TempDir::new("usage");
    let marker = dir.join("started");
    let marker = marker.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--bogus", "--", "touch", marker], "--bogus"),
        (&[], "no command"),
        (&["--"], "no command"),
        (&["-v"], "no command"),
        (
            &["--rewrite-signal", "FOO:USR1", "--", "touch", marker],
            "unknown signal",
        ),
        (
            &["--rewrite-signal", "HUP:BOGUS", "--", "touch", marker],
            "unknown signal",
        ),
        (
            &["--rewrite-signal", "HUP", "--", "touch", marker],
            "--rewrite-signal",
        ),
        (
            &["--rewrite-signal", "KILL:TERM", "--", "touch", marker],
            "--rewrite-signal",
        ),
        (
            &["--keep-status", "75,x", "--", "touch", marker],
            "--keep-status",
        ),
        (
            &["--keep-status", "300", "--", "touch", marker],
            "--keep-status",
        ),
        (
            &["--keep-status", "75,", "--", "touch", marker],
            "--keep-status",
        ),
        (
            &["--restart-status", "abc", "--", "touch", marker],
            "--restart-status",
        ),
        (
            &["--stop-timeout", "-1", "--", "touch", marker],
            "--stop-timeout",
        ),
        // An empty value never silently changes behaviour (--keep-status '' once meant none).
        (
            &["--keep-status", "", "--", "touch", marker],
            "--keep-status: empty value",
        ),
        (&["--grace=", "--", "touch", marker], "--grace: empty value"),
        (
            &["--stop-timeout", "99999999999999", "--", "touch", marker],
            "--stop-timeout: '99999999999999' is too large",
        ),
        (
            &["--group=yes", "--", "touch", marker],
            "--group takes no value",
        ),
        (&["-vx", "--", "touch", marker], "unknown option -x"),
        (
            &["--grace", "1", "--grace", "2", "--", "touch", marker],
            "--grace is given twice",
        ),
        (&["--grace"], "--grace needs a value"),
    ];
    for &(args, needle) in cases {
        let out = Command::new(GWSHIM)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("running gwshim");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {:?} stderr {stderr}",
            out.status
        );
        assert_eq!(
            stderr.lines().count(),
            1,
            "{args:?}: one line on stderr, got {stderr:?}"
        );
        assert!(stderr.starts_with("gwshim: "), "{args:?}: {stderr:?}");
        assert!(
            stderr.trim_end().ends_with("(see 'gwshim --help')"),
            "{args:?}: {stderr:?}"
        );
        assert!(
            stderr.contains(needle),
            "{args:?}: {stderr:?} should mention {needle:?}"
        );
        assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
        assert!(
            !std::path::Path::new(marker).exists(),
            "{args:?}: the command must not run"
        );
    }
}

#[test]
fn command_line_spellings_are_accepted() {
    let (status, log) = run(&["--keep-status=3", "--grace=0.1", "--", "sh", "-c", "exit 3"]);
    assert_code(status, 3, "--keep-status=3", &log);
    let (status, log) = run(&["--restart-status=9", "sh", "-c", "exit 3"]);
    assert_code(status, 9, "--restart-status=9", &log);
    for help in ["-h", "--help"] {
        let out = Command::new(GWSHIM).arg(help).output().expect("gwshim");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{help}");
        assert!(text.starts_with("Usage: gwshim"), "{help}: {text}");
        assert!(text.ends_with('\n'), "{help}: the text ends its line");
        // Every exit status, in order.
        let codes: Vec<&str> = text
            .split("Error codes:")
            .nth(1)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        assert_eq!(codes, ["0", "1", "2", "75", "78", "126", "127"], "{text}");
    }
}

/// -vv shows more than -v: a line for every signal that reaches gwshim.
#[test]
fn very_verbose_shows_more_than_verbose() {
    let (status, v) = run(&["-v", "--", "sh", "-c", "exit 0"]);
    assert_code(status, 0, "-v", &v);
    let (status, vv) = run(&["-vv", "--", "sh", "-c", "exit 0"]);
    assert_code(status, 0, "-vv", &vv);
    assert!(!v.contains("SIGCHLD from pid"), "{v}");
    assert!(vv.contains("SIGCHLD from pid"), "{vv}");
}

/// -q still says why gwshim exited non-zero: the exit line is a warning then.
#[test]
fn quiet_keeps_the_exit_line_of_a_failure() {
    let (status, log) = run(&["-q", "--", "sh", "-c", "exit 1"]);
    assert_code(status, 75, "-q, exit 1", &log);
    assert_eq!(
        log.lines().collect::<Vec<_>>().len(),
        1,
        "only the exit line: {log}"
    );
    assert!(log.starts_with("gwshim: warning: child pid "), "{log}");
    assert!(
        log.contains("exited 1; exiting 75 (failure: restart status)"),
        "{log}"
    );
    let (status, log) = run(&["-q", "--", "sh", "-c", "exit 0"]);
    assert_code(status, 0, "-q, exit 0", &log);
    assert_eq!(log, "", "a clean exit stays quiet");
}

#[test]
fn log_level_flags_are_accepted() {
    for (flags, quiet) in [
        (&["-v"][..], false),
        (&["-vv"], false),
        (&["-q"], true),
        (&["-qq"], true),
    ] {
        let mut args = flags.to_vec();
        args.extend(["--", "sh", "-c", "exit 0"]);
        let (status, log) = run(&args);
        assert_code(status, 0, &format!("{flags:?}"), &log);
        assert_eq!(log.is_empty(), quiet, "{flags:?}: log {log:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Signal forwarding: exactly once.

/// Catchable standard signals (1-31 without KILL, STOP and CHLD).
fn catchable() -> Vec<i32> {
    (1..=31)
        .filter(|&s| ![libc::SIGKILL, libc::SIGSTOP, libc::SIGCHLD].contains(&s))
        .collect()
}

fn is_job_stop(sig: i32) -> bool {
    [libc::SIGTSTP, libc::SIGTTIN, libc::SIGTTOU].contains(&sig)
}

/// After gwshim forwarded a job-stop signal it stops itself; the test then continues the
/// whole job (its process group) as a shell's `fg` does.
fn continue_job(run: &Running) {
    let pid = run.pid;
    assert!(
        wait_until(|| stopped(pid)),
        "gwshim did not stop itself after a job-stop signal; log:\n{}",
        run.log_text()
    );
    kill(-pid, libc::SIGCONT);
    assert!(wait_until(|| !stopped(pid)), "gwshim did not continue");
}

#[test]
fn each_signal_forwarded_exactly_once_one_at_a_time() {
    let py = need_python!();
    let dir = TempDir::new("oneatatime");
    let (run, child) = recorder(py, &dir, &["-v"], &[]);
    let mut want = Vec::new();
    let mut signals = catchable();
    signals.extend([rtmin(), rtmin() + 5, rtmax()]);
    for sig in signals {
        kill(run.pid, sig);
        want.push(sig);
        record_len(dir.path(), want.len(), &run);
        if is_job_stop(sig) {
            continue_job(&run);
            want.push(libc::SIGCONT);
            record_len(dir.path(), want.len(), &run);
        }
    }
    settle();
    assert_eq!(record(dir.path()), want, "log:\n{}", run.log_text());
    assert!(
        stat(child).is_some_and(|s| s.0 != 'Z'),
        "the child is still running"
    );
    let log = run.log_text();
    assert!(
        log.contains("forwarding SIGUSR1"),
        "-v logs each forwarded signal:\n{log}"
    );
    assert!(
        log.contains("forwarding SIGRTMIN+5"),
        "-v logs real-time signals:\n{log}"
    );
}

#[test]
fn mixed_signals_forwarded_exactly_once() {
    let py = need_python!();
    let dir = TempDir::new("mixed");
    let (run, _) = recorder(py, &dir, &[], &[]);
    let mut want: Vec<i32> = catchable()
        .into_iter()
        .filter(|&s| !is_job_stop(s))
        .collect();
    want.extend([rtmin(), rtmin() + 1, rtmin() + 5, rtmax()]);
    for &sig in &want {
        kill(run.pid, sig);
    }
    record_len(dir.path(), want.len(), &run);
    // Then a burst with a job stop last (the kernel drops a pending SIGCONT when a stop
    // signal is sent, so no SIGCONT is sent with it): gwshim forwards all, stops itself, and
    // `fg` continues the group.
    let second = [libc::SIGUSR1, rtmin() + 3, libc::SIGWINCH, libc::SIGTSTP];
    for sig in second {
        kill(run.pid, sig);
    }
    // A SIGCONT discards a stop signal still pending in the child: wait for the record.
    let tstp_seen = wait_until(|| record(dir.path()).contains(&libc::SIGTSTP));
    assert!(tstp_seen, "TSTP not forwarded; log:\n{}", run.log_text());
    continue_job(&run);
    want.extend(second);
    want.push(libc::SIGCONT);
    record_len(dir.path(), want.len(), &run);
    settle();
    let mut got = record(dir.path());
    got.sort();
    want.sort();
    assert_eq!(
        got,
        want,
        "each signal exactly once; log:\n{}",
        run.log_text()
    );
}

#[test]
fn realtime_signals_are_forwarded_per_delivery() {
    let py = need_python!();
    let dir = TempDir::new("rt");
    let (run, _) = recorder(py, &dir, &[], &[]);
    // Real-time signals queue: three RTMIN sent at once are three deliveries.
    let sent = [rtmin(), rtmin(), rtmin() + 5, rtmin(), rtmax() - 1];
    for sig in sent {
        kill(run.pid, sig);
    }
    record_len(dir.path(), sent.len(), &run);
    settle();
    let mut got = record(dir.path());
    let mut want = sent.to_vec();
    got.sort();
    want.sort();
    assert_eq!(got, want, "log:\n{}", run.log_text());
}

#[test]
fn fault_signals_sent_with_kill_are_forwarded_and_gwshim_survives() {
    let py = need_python!();
    let dir = TempDir::new("faults");
    let (mut run, child) = recorder(py, &dir, &[], &[]);
    let faults = [
        libc::SIGSEGV,
        libc::SIGBUS,
        libc::SIGFPE,
        libc::SIGILL,
        libc::SIGABRT,
        libc::SIGTRAP,
        libc::SIGSYS,
    ];
    for (i, sig) in faults.into_iter().enumerate() {
        kill(run.pid, sig);
        record_len(dir.path(), i + 1, &run);
        assert!(
            run.alive(),
            "gwshim died of signal {sig}; log:\n{}",
            run.log_text()
        );
    }
    settle();
    assert_eq!(record(dir.path()), faults.to_vec());
    assert!(run.alive() && stat(run.pid).is_some_and(|s| s.0 != 'Z'));
    // The child still ends gwshim the normal way: unrequested SIGKILL -> 75.
    kill(child, libc::SIGKILL);
    let status = run.wait();
    assert_code(
        status,
        75,
        "child SIGKILLed after the fault signals",
        &run.log_text(),
    );
}

#[test]
fn rewrite_signal_hup_to_usr1_and_term_to_none() {
    let opts = [
        "--rewrite-signal",
        "HUP:USR1",
        "--rewrite-signal",
        "TERM:none",
    ];
    rewrites_hup_to_usr1_and_drops_term(&opts, &[]);
}

/// A repeatable option's twin: each comma-separated value is one --rewrite-signal.
#[test]
fn rewrite_signal_twin_takes_a_list() {
    let vars = [("GWSHIM_REWRITE_SIGNAL", "HUP:USR1, TERM:none")];
    rewrites_hup_to_usr1_and_drops_term(&[], &vars);
}

fn rewrites_hup_to_usr1_and_drops_term(opts: &[&str], vars: &[(&str, &str)]) {
    let py = need_python!();
    let dir = TempDir::new("rewrite");
    let (mut run, child) = recorder_with(py, &dir, opts, vars, &[]);
    kill(run.pid, libc::SIGHUP);
    record_len(dir.path(), 1, &run);
    kill(run.pid, libc::SIGTERM);
    kill(run.pid, libc::SIGUSR2); // a marker behind the dropped TERM
    record_len(dir.path(), 2, &run);
    settle();
    assert_eq!(
        record(dir.path()),
        vec![libc::SIGUSR1, libc::SIGUSR2],
        "log:\n{}",
        run.log_text()
    );
    assert!(run.alive(), "a dropped TERM does not end gwshim");
    // Neither the rewritten HUP nor the dropped TERM was a stop request.
    kill(child, libc::SIGKILL);
    let status = run.wait();
    assert_code(status, 75, "no stop was requested", &run.log_text());
}

#[test]
fn group_signals_reach_the_childs_process_group() {
    let py = need_python!();
    let dir = TempDir::new("group");
    let dir2 = TempDir::new("group2");
    let (mut run, child) = recorder(py, &dir, &["--group"], &["--spawn-recorder", dir2.str()]);
    run.extra_groups.push(child);
    let (grandchild, gc_parent, gc_group) = ready(&dir2, &run);
    assert_eq!(gc_parent, child);
    let (_, _, child_group) = stat(child).expect("child stat");
    assert_eq!(
        child_group, child,
        "--group: the child leads its own process group"
    );
    assert_ne!(child_group, run.pid);
    assert_eq!(gc_group, child, "the grandchild is in the child's group");
    for sig in [libc::SIGUSR1, libc::SIGUSR2, rtmin() + 2] {
        kill(run.pid, sig);
    }
    let want = vec![libc::SIGUSR1, libc::SIGUSR2, rtmin() + 2];
    record_len(dir.path(), 3, &run);
    record_len(dir2.path(), 3, &run);
    settle();
    assert_eq!(record(dir.path()), want, "the child");
    assert_eq!(
        record(dir2.path()),
        want,
        "the grandchild, pid {grandchild}"
    );
}

// ---------------------------------------------------------------------------------------
// --stop-timeout

#[test]
fn stop_timeout_kills_a_child_that_ignores_term() {
    let py = need_python!();
    let dir = TempDir::new("stoptimeout");
    // The recorder takes SIGTERM without exiting.
    let (mut run, child) = recorder(py, &dir, &["--stop-timeout", "0.3"], &[]);
    kill(run.pid, libc::SIGTERM);
    let status = run.wait();
    let log = run.log_text();
    assert_code(
        status,
        0,
        "SIGKILLed after the stop timeout, stop requested",
        &log,
    );
    assert!(log.contains("SIGKILL"), "the kill is logged:\n{log}");
    assert_eq!(record(dir.path()), vec![libc::SIGTERM]);
    assert!(stat(child).is_none(), "the child is gone");
}

#[test]
fn stop_timeout_starts_only_after_a_stop_signal() {
    let py = need_python!();
    for sig in [libc::SIGUSR1, libc::SIGHUP] {
        let dir = TempDir::new("notimeout");
        let (mut run, child) = recorder(py, &dir, &["--stop-timeout", "0.2"], &[]);
        kill(run.pid, sig);
        record_len(dir.path(), 1, &run);
        sleep(Duration::from_millis(1000)); // five times the timeout
        assert!(
            stat(child).is_some_and(|s| s.0 != 'Z'),
            "the child was killed after signal {sig}; log:\n{}",
            run.log_text()
        );
        assert!(run.alive());
        // A stop signal afterwards starts it.
        kill(run.pid, libc::SIGTERM);
        let status = run.wait();
        let log = run.log_text();
        assert_code(status, 0, "SIGKILLed after the stop timeout", &log);
        assert!(
            log.contains("still running 0.2 s after the stop signal"),
            "{log}"
        );
        assert_eq!(record(dir.path()), vec![sig, libc::SIGTERM]);
    }
}

// ---------------------------------------------------------------------------------------
// Reaping orphans

#[test]
fn orphans_are_adopted_and_reaped() {
    let py = need_python!();
    let dir = TempDir::new("orphans");
    let (mut run, _) = recorder(
        py,
        &dir,
        &["-v"],
        &["--orphans", "3", "--exit-on", "TERM=0"],
    );
    let orphans: Vec<i32> = fs::read_to_string(dir.join("orphans"))
        .expect("the orphans file")
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(orphans.len(), 3);
    for &pid in &orphans {
        assert!(
            wait_until(|| stat(pid).is_some_and(|s| s.1 == run.pid)),
            "orphan {pid} should be re-parented to gwshim {}: {:?}",
            run.pid,
            stat(pid)
        );
    }
    fs::write(dir.join("release"), "").unwrap();
    for &pid in &orphans {
        assert!(
            wait_until(|| stat(pid).is_none()),
            "orphan {pid} was not reaped: {:?}; log:\n{}",
            stat(pid),
            run.log_text()
        );
    }
    let zombies: Vec<i32> = fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| stat(pid).is_some_and(|s| s.0 == 'Z' && s.1 == run.pid))
        .collect();
    assert!(zombies.is_empty(), "zombies left under gwshim: {zombies:?}");
    assert!(run.alive());
    // Each reap is logged in plain words (not Rust's `Exited(0)`).
    let log = run.log_text();
    for pid in orphans {
        assert!(
            log.contains(&format!("reaped orphan pid {pid}, which exited 0")),
            "{log}"
        );
    }
    kill(run.pid, libc::SIGTERM);
    let status = run.wait();
    assert_code(status, 0, "stopped with TERM", &run.log_text());
}

/// The child starts in gwshim's working directory; gwshim itself moves to `/`, so it keeps no
/// mount point busy, and still finds its relative pid file and state folder afterwards.
#[test]
fn gwshim_leaves_its_working_directory_to_the_child() {
    let dir = TempDir::new("cwd");
    let log = dir.join("gwshim.log");
    let script = "echo $$ > rel.pid; touch ready; exec sleep 30";
    let args = [
        "--pidfile",
        "rel.pid",
        "--state-dir",
        "state",
        "--start-limit",
        "0",
        "--backoff",
        "0",
        "--restart-sec",
        "0",
        "--",
        "sh",
        "-c",
        script,
    ];
    let mut cmd = gwshim(&args, &log);
    cmd.current_dir(dir.path());
    let mut run = Running::start(cmd, &log);
    assert!(
        wait_until(|| dir.join("ready").exists()),
        "{}",
        run.log_text()
    );
    let child: i32 = fs::read_to_string(dir.join("rel.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let cwd = |pid: i32| fs::read_link(format!("/proc/{pid}/cwd")).unwrap();
    assert_eq!(cwd(run.pid), std::path::PathBuf::from("/"), "gwshim's cwd");
    assert_eq!(
        cwd(child),
        dir.path().canonicalize().unwrap(),
        "the child's cwd"
    );
    kill(child, libc::SIGKILL);
    let status = run.wait();
    let text = run.log_text();
    assert_code(status, 75, "child SIGKILLed", &text);
    // Cleaned after the child's end, from /: the path was made absolute first.
    assert!(
        !dir.join("rel.pid").exists(),
        "the stale pid file is gone: {text}"
    );
    assert!(text.contains("removed stale"), "{text}");
    assert!(!text.contains("cannot"), "{text}");
    let state: Vec<_> = fs::read_dir(dir.join("state")).unwrap().collect();
    assert_eq!(state.len(), 1, "one pacing state file, in ./state");
}

// ---------------------------------------------------------------------------------------
// What the child inherits

/// Runs gwshim with the info child; feeds `input`; returns (status, stdout, stderr), bounded.
fn run_captured(mut cmd: Command, input: &[u8]) -> (ExitStatus, String, String) {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut proc = cmd.spawn().expect("starting gwshim");
    let mut stdin = proc.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let mut out = proc.stdout.take().unwrap();
    let mut err = proc.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = wait_timeout(&mut proc, TIMEOUT);
    if status.is_none() {
        // SAFETY: kill(2) with plain integers; gwshim leads its own group.
        unsafe { libc::kill(-(proc.id() as i32), libc::SIGKILL) };
        let _ = proc.wait();
        panic!("gwshim with the info child did not end");
    }
    writer.join().unwrap();
    (
        status.unwrap(),
        reader.join().unwrap(),
        err_reader.join().unwrap(),
    )
}

fn info_cmd(py: &str, gw_opts: &[&str], code: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(GWSHIM);
    cmd.args(gw_opts)
        .args(["--", py, CHILD_PY, "info", code])
        .args(args)
        .process_group(0);
    default_signals(&mut cmd);
    cmd
}

/// The value (hex-decoded) of KEY=HEX in the info output; None when absent.
fn field(out: &str, key: &str) -> Option<String> {
    out.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .map(|h| {
            let bytes: Vec<u8> = (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                .collect();
            String::from_utf8(bytes).unwrap()
        })
}

#[test]
fn argv_env_cwd_and_stdio_pass_through() {
    let py = need_python!();
    let dir = TempDir::new("info");
    let args = ["two words", "", "  ", "--", "-v", "x\ty", "é"];
    let mut cmd = info_cmd(py, &["-qq"], "3", &args);
    cmd.current_dir(dir.path())
        .env("GW_TEST_VAR", "a value = with spaces");
    let (status, out, err) = run_captured(cmd, b"line one\nline two\n");
    assert_code(status, 75, "exit 3 becomes 75", &err);
    let got: Vec<String> = out
        .lines()
        .filter_map(|l| l.strip_prefix("arg="))
        .map(|h| field(&format!("arg={h}"), "arg").unwrap())
        .collect();
    assert_eq!(got, args, "argv passes exactly");
    assert_eq!(
        field(&out, "cwd").as_deref(),
        Some(fs::canonicalize(dir.path()).unwrap().to_str().unwrap())
    );
    assert_eq!(
        field(&out, "stdin").as_deref(),
        Some("line one\nline two\n")
    );
    assert_eq!(
        field(&out, "env.GW_TEST_VAR").as_deref(),
        Some("a value = with spaces")
    );
    assert_eq!(
        err, "child stderr line\n",
        "stderr is the child's (gwshim -qq says nothing)"
    );
}

#[test]
fn supervisor_env_variable() {
    let py = need_python!();
    let key = format!("env.{SUPERVISOR_ENV}");
    let cases: &[(&[&str], Option<&str>, Option<&str>)] = &[
        (&[], None, Some("1")),
        (&["--no-supervisor-env"], None, None),
        (&[], Some("custom"), Some("custom")),
        (&["--no-supervisor-env"], Some("yes"), Some("yes")),
    ];
    for &(opts, existing, want) in cases {
        let mut cmd = info_cmd(py, opts, "0", &[]);
        match existing {
            Some(v) => cmd.env(SUPERVISOR_ENV, v),
            None => cmd.env_remove(SUPERVISOR_ENV),
        };
        let (status, out, err) = run_captured(cmd, b"");
        assert_code(status, 0, "info child", &err);
        assert_eq!(
            field(&out, &key).as_deref(),
            want,
            "{opts:?} with {existing:?}"
        );
    }
}

/// Starts gwshim with SIGHUP and SIGPIPE ignored (like `nohup`, or systemd's default
/// IgnoreSIGPIPE=yes) and SIGUSR2 blocked.
fn with_hup_pipe_ignored_usr2_blocked(cmd: &mut Command) {
    // SAFETY: signal(2) and sigprocmask(2) are async-signal-safe; the set lives on the
    // stack of the forked child.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGUSR2);
            libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            Ok(())
        });
    }
}

/// nohup: a SIGHUP that gwshim was started ignoring is ignored, as it would be for the child
/// run directly; it neither reaches the child nor counts as a stop request.
#[test]
fn a_signal_ignored_at_start_stays_ignored() {
    let dir = TempDir::new("nohup");
    let log = dir.join("gwshim.log");
    let started = dir.join("started");
    let script = format!("touch {}; sleep 0.5; exit 1", started.to_str().unwrap());
    let mut cmd = gwshim(&["-v", "--", "sh", "-c", &script], &log);
    with_hup_pipe_ignored_usr2_blocked(&mut cmd);
    let mut run = Running::start(cmd, &log);
    assert!(wait_until(|| started.exists()), "log:\n{}", run.log_text());
    kill(run.pid, libc::SIGHUP);
    let status = wait_timeout(&mut run.proc, Duration::from_secs(10)).expect("gwshim exits");
    let text = run.log_text();
    assert_code(status, 75, "exit 1 is a failure, not a stop", &text);
    assert!(
        text.contains("SIGHUP was ignored when gwshim started"),
        "{text}"
    );
}

fn mask_bit(mask: &str, sig: i32) -> bool {
    u64::from_str_radix(mask, 16).unwrap() & (1 << (sig - 1)) != 0
}

/// SigIgn and SigBlk of the child `sh -c 'exec cat /proc/self/status'` (a shell and cat
/// change neither, unlike Python, which ignores SIGPIPE itself).
fn child_sig_state(inherit: bool) -> (String, String) {
    let mut cmd = Command::new(GWSHIM);
    cmd.args(["-q", "--", "sh", "-c", "exec cat /proc/self/status"])
        .process_group(0);
    default_signals(&mut cmd);
    if inherit {
        with_hup_pipe_ignored_usr2_blocked(&mut cmd);
    }
    let (status, out, err) = run_captured(cmd, b"");
    assert_code(status, 0, "cat /proc/self/status", &err);
    let get = |key: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in {out}"))
            .trim()
            .to_string()
    };
    (get("SigIgn:"), get("SigBlk:"))
}

#[test]
fn signal_mask_and_ignored_signals_reach_the_child() {
    let (ign, blk) = child_sig_state(true);
    assert!(
        mask_bit(&ign, libc::SIGHUP),
        "SIGHUP stays ignored: SigIgn {ign}"
    );
    assert!(
        mask_bit(&ign, libc::SIGPIPE),
        "SIGPIPE stays ignored: SigIgn {ign}"
    );
    assert_eq!(
        u64::from_str_radix(&blk, 16).unwrap(),
        1 << (libc::SIGUSR2 - 1),
        "SigBlk {blk}"
    );

    // Without them the child gets neither: gwshim's own blocking and Rust's SIGPIPE
    // ignoring do not leak.
    let (ign, blk) = child_sig_state(false);
    assert!(!mask_bit(&ign, libc::SIGHUP), "SigIgn {ign}");
    assert!(!mask_bit(&ign, libc::SIGPIPE), "SigIgn {ign}");
    assert_eq!(blk, "0000000000000000");
}

fn fds(pid: i32) -> BTreeSet<(i32, String)> {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let n = e.file_name().to_str()?.parse().ok()?;
            let target = fs::read_link(e.path()).ok()?;
            Some((n, target.to_string_lossy().into_owned()))
        })
        .collect()
}

#[test]
fn the_child_gets_no_extra_fd() {
    let dir = TempDir::new("fds");
    let log = dir.join("gwshim.log");
    let pidfile = dir.join("pid");
    let script = format!(
        "echo $$ > {0}.tmp && mv {0}.tmp {0} && exec sleep 30",
        pidfile.to_str().unwrap()
    );
    let inherited = fs::File::open("/dev/null").unwrap();
    let raw = inherited.as_raw_fd();
    let mut cmd = gwshim(&["--", "sh", "-c", &script], &log);
    // SAFETY: dup2 is async-signal-safe; the new fd 7 is not close-on-exec, so gwshim
    // inherits it like any fd its parent left open.
    unsafe {
        cmd.pre_exec(move || {
            libc::dup2(raw, 7);
            Ok(())
        });
    }
    let run = Running::start(cmd, &log);
    assert!(wait_until(|| pidfile.exists()), "log:\n{}", run.log_text());
    let child: i32 = fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(wait_until(|| fs::read_link(format!("/proc/{child}/exe"))
        .is_ok_and(|p| p.to_string_lossy().ends_with("/sleep"))));
    let gw = fds(run.pid);
    let mine: BTreeSet<_> = gw
        .iter()
        .filter(|(_, t)| !t.contains("signalfd") && !t.contains("pidfd"))
        .cloned()
        .collect();
    let own = |kind: &str| gw.iter().filter(|(_, t)| t.contains(kind)).count();
    // Its own: one signalfd, and the child's pidfd where the kernel has pidfds (5.3+).
    assert!(
        own("signalfd") == 1 && own("pidfd") <= 1,
        "gwshim holds one signalfd and at most one pidfd: {gw:?}"
    );
    assert!(wait_asleep(child), "sleep never went to sleep");
    let got = fds(child);
    assert_eq!(got, mine, "the child has exactly the fds gwshim inherited");
    // What else the test process leaves open (a jobserver, ...) varies; 0-2 and 7 are ours.
    let numbers: Vec<i32> = got.iter().map(|(n, _)| *n).collect();
    assert!(
        numbers.starts_with(&[0, 1, 2]) && numbers.contains(&7),
        "{numbers:?}"
    );
}

// ---------------------------------------------------------------------------------------
// A real terminal

fn pty_driver(py: &str, mode: &str, dir: &TempDir) -> (ExitStatus, String, String) {
    let mut cmd = Command::new(py);
    cmd.args([PTY_DRIVER, mode, GWSHIM, CHILD_PY, dir.str()])
        .process_group(0);
    default_signals(&mut cmd);
    let (status, out, err) = run_captured(cmd, b"");
    (status, out, err)
}

#[test]
fn terminal_ctrl_c_reaches_the_child_once_and_gwshim_dies_of_it() {
    let py = need_python!();
    let dir = TempDir::new("ctrlc");
    let (status, out, err) = pty_driver(py, "ctrl-c", &dir);
    assert!(status.success(), "pty driver failed: {out}\n{err}");
    assert_eq!(
        out.trim(),
        format!("signaled {}", libc::SIGINT),
        "gwshim's end; transcript:\n{err}"
    );
    settle();
    assert_eq!(
        record(dir.path()),
        vec![libc::SIGINT],
        "Ctrl-C reached the child once:\n{err}"
    );
}

#[test]
fn terminal_ctrl_z_stops_the_job_and_fg_resumes_it() {
    let py = need_python!();
    if !std::path::Path::new("/bin/bash").exists() {
        return skip::skip("/bin/bash is needed for a job-control shell");
    }
    let dir = TempDir::new("ctrlz");
    let (status, out, err) = pty_driver(py, "ctrl-z", &dir);
    assert!(
        status.success() && out.trim() == "ok",
        "pty driver: {out}\n{err}"
    );
}
