//! No systemd timer ends gwshim while it waits (issue 21): gwshim's pacing keeps the unit's main
//! process alive after the child died, and systemd's own timers (the watchdog, TimeoutStartSec=
//! before READY=1) go on counting meanwhile. Under the machine's own `systemd --user` (252 here;
//! harness: tests/systemd_harness/mod.rs), with the seed's limits (3 starts per 30 s,
//! RestartSec=500ms, TimeoutStopSec=5s, gwshim `--backoff 0`: the waits are the start limit's,
//! about 32 s, longer than every timer of the units) and a service that fails 5 times fast, then
//! stays up. Each shape has its control, the same unit without gwshim, which fails. Also: a
//! command that cannot be executed for 20 s (a venv being rebuilt) is paced like any fast
//! failure, and a hung (SIGSTOPped) child is still killed by the watchdog under gwshim.
//!
//! Run only these: `cargo test --release --test systemd_timers` (as root; about 3 minutes, one
//! manager at a time).

mod skip;
mod systemd_harness;

use std::path::PathBuf;
use std::time::{Duration, Instant};
use systemd_harness::{GWSHIM, Manager, StandIn, UnitState};

const SEC: Duration = Duration::from_secs(1);
/// The seed's limits, none of them systemd's defaults.
const LIMITS: &str = "[Unit]\nStartLimitBurst=3\nStartLimitIntervalSec=30\n";
const SERVICE: &str = "Restart=on-failure\nRestartSec=500ms\nTimeoutStopSec=5s\n";
/// The service fails this many times fast, then stays up.
const FAILURES: u32 = 5;
/// What systemd says when one of its timers ends a unit's main process.
const TIMER_FIRED: [&str; 3] = ["Watchdog timeout", "timed out", "Killing process"];

/// The notify stand-in (tests/systemd_harness/notify-stand-in.py) recording into `dir()/NAME/`,
/// and its command line for SHAPE.
fn notify_stand_in(m: &Manager, name: &str, fail_starts: u32, shape: &str) -> (StandIn, String) {
    let script = m.dir().join("notify-stand-in.py");
    std::fs::write(&script, include_str!("systemd_harness/notify-stand-in.py"))
        .expect("write the notify stand-in");
    let svc = StandIn {
        script,
        ..m.stand_in(name)
    };
    let command = format!(
        "{} {} {} {fail_starts} {shape}",
        systemd_harness::python().to_string_lossy(),
        svc.script.display(),
        svc.dir.display()
    );
    (svc, command)
}

fn unit_text(exec: &str, shape_lines: &str) -> String {
    format!("{LIMITS}[Service]\nExecStart={exec}\n{SERVICE}{shape_lines}\n")
}

/// The control: the unit without gwshim ends `failed` on its start limit after 3 starts.
fn assert_control_fails(m: &Manager, name: &str, svc: &StandIn) {
    let mark = m.log_mark();
    m.start_no_block(name);
    let st = m.wait_state(name, 30 * SEC, |s| s.is_failed());
    std::thread::sleep(SEC);
    assert!(m.state(name).is_failed(), "{st:?}{}", m.context());
    assert_eq!(svc.starts(), 3, "{:?}{}", svc.events(), m.context());
    m.wait_log(mark, "Start request repeated too quickly.", 5 * SEC);
}

/// Under gwshim the unit never fails, no timer of systemd's fires, and the 6th start stays up.
/// Returns the log of the run.
fn assert_gwshim_holds(m: &Manager, name: &str, svc: &StandIn) -> String {
    let mark = m.log_mark();
    m.start_no_block(name);
    // The 4th start about 33 s after the 1st, the 5th and 6th at once after it: ~36 s.
    m.wait_until_every(
        "the 6th start to be up",
        90 * SEC,
        Duration::from_millis(200),
        |m| {
            let st = m.state(name);
            assert!(
                !st.is_failed(),
                "{name} failed after {} starts: {st:?}{}",
                svc.starts(),
                m.context()
            );
            (svc.is_up(FAILURES as usize + 1) && st.is_running()).then_some(())
        },
    );
    std::thread::sleep(Duration::from_millis(500));
    let st = m.state(name);
    assert!(st.is_running(), "{st:?}{}", m.context());
    assert_eq!(st.n_restarts, FAILURES, "{st:?}{}", m.context());
    let log = m.log_since(mark);
    for fired in TIMER_FIRED {
        assert!(!log.contains(fired), "{fired:?}{}", m.context());
    }
    assert!(
        !log.contains("Start request repeated too quickly"),
        "{}",
        m.context()
    );
    // gwshim did wait, longer than any of the unit's timers, for the unit's own limit.
    assert!(
        log.contains(&format!("so {name} stays under StartLimitBurst=3/30s")),
        "{}",
        m.context()
    );
    let r = svc.start_records();
    assert!(r[3].time - r[0].time >= 30.0, "{r:?}");
    m.stop(name);
    log
}

// ---------------------------------------------------------------------------------------------
// (a) Type=notify, NotifyAccess=main, WatchdogSec=3s: READY=1, a few WATCHDOG=1, then exit 1.
//     TimeoutAbortSec= is shorter than the wait too.

const WATCHDOG_UNIT: &str = "Type=notify\nNotifyAccess=main\nWatchdogSec=3s\nTimeoutAbortSec=2s";

#[test]
fn notify_watchdog_unit_control_fails() {
    let Some(m) = Manager::start_or_skip() else {
        return;
    };
    let (svc, cmd) = notify_stand_in(&m, "wd", FAILURES, "ready-watchdog");
    m.install_unit("wd.service", &unit_text(&cmd, WATCHDOG_UNIT));
    assert_control_fails(&m, "wd.service", &svc);
}

#[test]
fn notify_watchdog_unit_under_gwshim_is_never_killed_while_it_waits() {
    let Some(m) = Manager::start_or_skip() else {
        return;
    };
    let (svc, cmd) = notify_stand_in(&m, "wd", FAILURES, "ready-watchdog");
    let exec = format!("{GWSHIM} -v --backoff 0 -- {cmd}");
    m.install_unit("wd.service", &unit_text(&exec, WATCHDOG_UNIT));
    let log = assert_gwshim_holds(&m, "wd.service", &svc);
    // The one message that holds the timers: the watchdog sized to the wait.
    assert!(
        log.contains("told systemd: EXTEND_TIMEOUT_USEC=") && log.contains(" WATCHDOG=1"),
        "{}",
        m.context()
    );
}

// ---------------------------------------------------------------------------------------------
// (b) Type=notify, TimeoutStartSec=4s: exit 1 before READY=1 (a start-up failure).

const START_TIMEOUT_UNIT: &str = "Type=notify\nTimeoutStartSec=4s";

#[test]
fn notify_start_timeout_unit_control_fails() {
    let Some(m) = Manager::start_or_skip() else {
        return;
    };
    let (svc, cmd) = notify_stand_in(&m, "st", FAILURES, "before-ready");
    m.install_unit("st.service", &unit_text(&cmd, START_TIMEOUT_UNIT));
    assert_control_fails(&m, "st.service", &svc);
}

#[test]
fn notify_start_timeout_unit_under_gwshim_waits_past_timeout_start_sec() {
    let Some(m) = Manager::start_or_skip() else {
        return;
    };
    let (svc, cmd) = notify_stand_in(&m, "st", FAILURES, "before-ready");
    let exec = format!("{GWSHIM} --backoff 0 -- {cmd}");
    m.install_unit("st.service", &unit_text(&exec, START_TIMEOUT_UNIT));
    assert_gwshim_holds(&m, "st.service", &svc);
}

// ---------------------------------------------------------------------------------------------
// (d) Type=exec with WatchdogSec=3s, and the relay off (`--no-notify-relay`, NotifyAccess=all:
//     the child feeds systemd's watchdog itself): gwshim still speaks for itself during a wait.

const EXEC_UNIT: &str = "Type=exec\nNotifyAccess=all\nWatchdogSec=3s";

#[test]
fn exec_watchdog_unit_control_fails() {
    let Some(m) = Manager::start_or_skip() else {
        return;
    };
    let (svc, cmd) = notify_stand_in(&m, "ex", FAILURES, "watchdog");
    m.install_unit("ex.service", &unit_text(&cmd, EXEC_UNIT));
    assert_control_fails(&m, "ex.service", &svc);
}

#[test]
fn exec_watchdog_unit_without_the_relay_under_gwshim_is_never_killed_while_it_waits() {
    let Some(m) = Manager::start_or_skip() else {
        return;
    };
    let (svc, cmd) = notify_stand_in(&m, "ex", FAILURES, "watchdog");
    let exec = format!("{GWSHIM} --no-notify-relay --backoff 0 -- {cmd}");
    m.install_unit("ex.service", &unit_text(&exec, EXEC_UNIT));
    assert_gwshim_holds(&m, "ex.service", &svc);
}

// ---------------------------------------------------------------------------------------------
// (c) The command is missing for 20 s (a venv being rebuilt), then appears.

/// A unit whose command `DIR/bin/svc` does not exist yet; the path it will have.
fn install_missing(m: &Manager, gwshim: bool) -> (StandIn, PathBuf) {
    let svc = m.stand_in("missing");
    let bin = svc.dir.join("bin/svc");
    let exec = match gwshim {
        true => format!("{GWSHIM} --backoff 0 -- {}", bin.display()),
        false => bin.display().to_string(),
    };
    m.install_unit("missing.service", &unit_text(&exec, "Type=simple"));
    (svc, bin)
}

/// Makes the command appear: a script that runs the stand-in, which stays up.
fn make_command_appear(svc: &StandIn, bin: &PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let dir = bin.parent().expect("bin folder");
    std::fs::create_dir_all(dir).expect("bin folder");
    let tmp = dir.join(".svc.tmp");
    let text = format!("#!/bin/sh\nexec {}\n", svc.command(0, 1));
    std::fs::write(&tmp, text).expect("write the command");
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::rename(&tmp, bin).expect("rename the command into place");
}

#[test]
fn missing_command_control_fails() {
    let Some(m) = Manager::start_or_skip() else {
        return;
    };
    let (_svc, _bin) = install_missing(&m, false);
    let mark = m.log_mark();
    m.start_no_block("missing.service");
    let st = m.wait_state("missing.service", 30 * SEC, |s| s.is_failed());
    assert_eq!(st.exec_main_status, 203, "systemd's EXEC failure: {st:?}");
    m.wait_log(mark, "Start request repeated too quickly.", 5 * SEC);
}

#[test]
fn missing_command_under_gwshim_is_paced_until_it_appears() {
    let Some(m) = Manager::start_or_skip() else {
        return;
    };
    let (svc, bin) = install_missing(&m, true);
    let mark = m.log_mark();
    let t0 = Instant::now();
    m.start_no_block("missing.service");
    // 20 s without the command: the unit never fails meanwhile.
    while t0.elapsed() < 20 * SEC {
        let st = m.state("missing.service");
        assert!(!st.is_failed(), "{st:?}{}", m.context());
        std::thread::sleep(Duration::from_millis(500));
    }
    make_command_appear(&svc, &bin);
    m.wait_until_every(
        "the command to be up",
        60 * SEC,
        Duration::from_millis(200),
        |m| {
            let st = m.state("missing.service");
            assert!(!st.is_failed(), "{st:?}{}", m.context());
            (svc.is_up(1) && st.is_running()).then_some(())
        },
    );
    let log = m.log_since(mark);
    let cannot = format!("gwshim: error: cannot run {}: no such file", bin.display());
    let failures = log.matches(&cannot).count();
    assert!(failures >= 3, "{failures} exec failures{}", m.context());
    // Every exec failure but the ones the start limit still allowed was paced.
    assert!(
        log.contains("so missing.service stays under StartLimitBurst=3/30s"),
        "{}",
        m.context()
    );
    assert!(
        !log.contains("Start request repeated too quickly"),
        "{}",
        m.context()
    );
    let st = m.state("missing.service");
    assert_eq!(st.main_pid, svc.start_records()[0].ppid, "{st:?}");
    m.stop("missing.service");
}

// ---------------------------------------------------------------------------------------------
// (e) A hung gateway (SIGSTOPped) is still killed by the watchdog under gwshim: gwshim sends
//     nothing of its own while the child runs.

const HUNG_UNIT: &str = "Type=notify\nNotifyAccess=main\nWatchdogSec=3s";

/// Starts the unit, hangs its service once it is up, and waits until the watchdog has ended it
/// and systemd started it again; the log of that.
fn run_hung(m: &Manager, exec_of: impl Fn(&str) -> String) -> (StandIn, String) {
    let (svc, cmd) = notify_stand_in(m, "hung", 0, "ready-watchdog");
    m.install_unit("hung.service", &unit_text(&exec_of(&cmd), HUNG_UNIT));
    let mark = m.log_mark();
    m.start("hung.service");
    m.wait_until("the service to be up", 10 * SEC, |_| {
        svc.is_up(1).then_some(())
    });
    let pid = svc.start_records()[0].pid;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGSTOP,
    )
    .expect("SIGSTOP the service");
    m.wait_log(mark, "hung.service: Watchdog timeout", 20 * SEC);
    let st: UnitState = m.wait_state("hung.service", 30 * SEC, |s| s.is_running() && svc.is_up(2));
    assert_eq!(st.n_restarts, 1, "{st:?}{}", m.context());
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the hung service {pid} is still there{}",
        m.context()
    );
    m.stop("hung.service");
    (svc, m.log_since(mark))
}

#[test]
fn hung_service_control_is_killed_by_the_watchdog() {
    let Some(m) = Manager::start_or_skip() else {
        return;
    };
    run_hung(&m, |cmd| cmd.to_string());
}

#[test]
fn hung_child_under_gwshim_is_still_killed_by_the_watchdog() {
    let Some(m) = Manager::start_or_skip() else {
        return;
    };
    let (_svc, log) = run_hung(&m, |cmd| format!("{GWSHIM} -v --backoff 0 -- {cmd}"));
    // While the child ran gwshim relayed its pings and said nothing to the watchdog itself.
    let first_wait = log.find("; waiting ").unwrap_or(log.len());
    assert!(
        !log[..first_wait].contains("told systemd: EXTEND_TIMEOUT_USEC="),
        "{}",
        m.context()
    );
}
