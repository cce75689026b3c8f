//! sd_notify under a real systemd: Type=notify, NotifyAccess=main and WatchdogSec= work for a
//! service under gwshim because gwshim relays its notifications (harness:
//! tests/systemd_harness/mod.rs). The control runs gwshim with --no-notify-relay.

mod common;
mod skip;
mod systemd_harness;

use std::fs;
use std::time::{Duration, Instant};
use systemd_harness::{GWSHIM, Manager, python};

const SEC: Duration = Duration::from_secs(1);
const CHILD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/helpers/notify_child.py");

fn notify_unit(m: &Manager, gwshim_opts: &str) -> std::path::PathBuf {
    let dir = m.dir().join("notify");
    fs::create_dir_all(&dir).expect("notify dir");
    let py = python();
    let unit = format!(
        "[Unit]\nStartLimitBurst=4\nStartLimitIntervalSec=20\n\
         [Service]\nType=notify\nNotifyAccess=main\nWatchdogSec=2\nTimeoutStartSec=6\n\
         Restart=on-failure\nRestartSec=300ms\n\
         ExecStart={GWSHIM} {gwshim_opts} -- {} {CHILD} {}\n",
        py.to_string_lossy(),
        dir.display()
    );
    m.install_unit("notify.service", &unit);
    dir
}

fn starts(dir: &std::path::Path) -> usize {
    fs::read_to_string(dir.join("starts"))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

#[test]
fn notify_and_watchdog_work_through_the_relay() {
    let Some(m) = Manager::start_or_skip() else {
        return;
    };
    let dir = notify_unit(&m, "");
    let mark = m.log_mark();
    // Type=notify: `systemctl start` returns once READY=1 has arrived from the main pid.
    m.start("notify.service");
    let st = m.state("notify.service");
    assert!(st.is_running(), "{st:?}{}", m.context());
    assert_eq!(
        m.prop("notify.service", "StatusText"),
        "ready",
        "{}",
        m.context()
    );
    // The watchdog is fed: the unit stays up, never restarted, for 10 s.
    let until = Instant::now() + 10 * SEC;
    while Instant::now() < until {
        let st = m.state("notify.service");
        assert!(
            st.is_running() && st.n_restarts == 0,
            "{st:?}{}",
            m.context()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(starts(&dir), 1);
    // No more pings: the watchdog fires and the unit is restarted per its config.
    fs::write(dir.join("stop-pinging"), "").expect("stop pinging");
    m.wait_log(mark, "notify.service: Watchdog timeout", 10 * SEC);
    fs::remove_file(dir.join("stop-pinging")).expect("ping again");
    m.wait_state("notify.service", 20 * SEC, |s| {
        s.n_restarts >= 1 && s.is_running()
    });
    assert_eq!(starts(&dir), 2, "{}", m.context());
    assert!(
        !m.log_since(mark)
            .contains("reception only permitted for main PID"),
        "{}",
        m.context()
    );
}

#[test]
fn without_the_relay_the_unit_never_becomes_ready() {
    let Some(m) = Manager::start_or_skip() else {
        return;
    };
    let dir = notify_unit(&m, "--no-notify-relay");
    let mark = m.log_mark();
    let out = m.systemctl(&["start", "notify.service"]);
    assert!(
        !out.status.success(),
        "start must fail: the READY=1 is refused{}",
        m.context()
    );
    let st = m.state("notify.service");
    assert_ne!(st.active, "active", "{st:?}{}", m.context());
    assert!(starts(&dir) >= 1, "the service did start{}", m.context());
    m.wait_log(mark, "reception only permitted for main PID", 5 * SEC);
}

/// With stderr on the journal, gwshim's own lines carry their syslog priority: its warning
/// shows under `journalctl -p warning`, its info lines do not; the child's output is untouched.
#[test]
fn gwshim_lines_carry_their_priority_in_the_journal() {
    let Some(m) = Manager::start_or_skip() else {
        return;
    };
    m.start_journald();
    // A pid file that is a folder: gwshim leaves it alone, with a warning.
    let odd = m.dir().join("a-folder.pid");
    fs::create_dir_all(&odd).expect("folder");
    m.install_unit(
        "journal.service",
        &format!(
            "[Unit]\nStartLimitBurst=4\nStartLimitIntervalSec=20\n\
             [Service]\nRestartSec=300ms\nStandardOutput=journal\nStandardError=journal\n\
             ExecStart={GWSHIM} --pidfile {} -- sh -c 'echo \"<3>child line\" >&2; exit 0'\n",
            odd.display()
        ),
    );
    m.start("journal.service");
    m.wait_state("journal.service", 10 * SEC, |s| {
        s.active == "inactive" || s.is_failed()
    });
    let warnings = m.wait_until("gwshim's warning in the journal", 10 * SEC, |m| {
        let text = m.journal("-p warning");
        text.contains("gwshim: warning:").then_some(text)
    });
    assert!(
        !warnings.contains("gwshim: started"),
        "info lines are not warnings:\n{warnings}"
    );
    let all = m.journal("-p debug");
    assert!(all.contains("gwshim: started sh"), "{all}");
    assert!(
        !all.contains("<6>gwshim") && !all.contains("<4>gwshim"),
        "the prefix is consumed: {all}"
    );
    // The child's own line keeps its text (journald reads its "<3>" as priority, as it would
    // without gwshim).
    assert!(m.journal("-p err").contains("child line"), "{all}");
}

/// gwshim's own STATUS= lines, where systemd gave it a notify socket (here `NotifyAccess=main`
/// on a plain Type=simple unit): while it waits before a restart the unit is `active (running)`
/// with no child, and `systemctl status` says why; once the child runs, its pid.
#[test]
fn the_status_line_says_what_gwshim_is_doing() {
    let Some(m) = Manager::start_or_skip() else {
        return;
    };
    let dir = m.dir().join("status");
    fs::create_dir_all(&dir).expect("dir");
    let up = dir.join("up");
    m.install_unit(
        "status.service",
        &format!(
            "[Unit]\nStartLimitIntervalSec=0\n[Service]\nNotifyAccess=main\nRestart=always\n\
             RestartSec=100ms\nRestartForceExitStatus=75\nKillMode=mixed\n\
             ExecStart={GWSHIM} --backoff 4s:8s -- sh -c 'test -e {} || exit 1; \
             trap \"sleep 2; exit 75\" USR1; touch {}; while :; do sleep 0.2; done'\n",
            up.display(),
            dir.join("trap-set").display()
        ),
    );
    m.start("status.service");
    // The first child fails at once; gwshim waits 3.9 s, the unit running all the while.
    let (text, shown) = m.wait_until("the status line of the wait", 10 * SEC, |m| {
        let p = m.show("status.service", &["StatusText", "ActiveState", "SubState"]);
        let shown = m.systemctl(&["status", "status.service"]);
        let shown = String::from_utf8_lossy(&shown.stdout).into_owned();
        (p["StatusText"].contains("next start") && shown.contains("next start"))
            .then_some((p, shown))
    });
    assert!(
        shown.contains("Status: \"child failed 1 time fast; next start in 4 s\""),
        "{shown}"
    );
    assert_eq!(
        text["StatusText"],
        "child failed 1 time fast; next start in 4 s",
        "{}",
        m.context()
    );
    assert_eq!(
        (text["ActiveState"].as_str(), text["SubState"].as_str()),
        ("active", "running")
    );
    // The next child stays up: the status names it.
    fs::write(&up, "").expect("up");
    let (pid, text) = m.wait_until("the child's pid in the status line", 20 * SEC, |m| {
        let st = m.state("status.service");
        let text = m.prop("status.service", "StatusText");
        let pid = common::children_of(st.main_pid as i32).pop()?;
        text.starts_with("child running").then_some((pid, text))
    });
    assert_eq!(text, format!("child running, pid {pid}"), "{}", m.context());
    // A restart asked for with SIGUSR1 (`systemctl reload` of the hermes unit): said while the
    // child drains.
    m.wait_until("the child's trap", 10 * SEC, |_| {
        dir.join("trap-set").exists().then_some(())
    });
    let gwshim = m.state("status.service").main_pid as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(gwshim),
        nix::sys::signal::Signal::SIGUSR1,
    )
    .expect("kill");
    let text = m.wait_until("the restart in the status line", 2 * SEC, |m| {
        let text = m.prop("status.service", "StatusText");
        text.starts_with("restart").then_some(text)
    });
    assert_eq!(
        text,
        format!("restart asked: SIGUSR1 sent to child pid {pid}")
    );
}

/// A stop that does not come from systemd (`kill -TERM` of the main pid, or hermes's own
/// `stop --all` scans) is announced with STOPPING=1: the unit shows `deactivating` while the
/// child takes its time. It does not change systemd's restart decision: with `--transparent`
/// the child's 75 after the stop is still restarted (RestartForceExitStatus=75).
#[test]
fn stopping_shows_deactivating_and_a_75_after_it_is_still_restarted() {
    let Some(m) = Manager::start_or_skip() else {
        return;
    };
    let ready = m.dir().join("trap-set");
    m.install_unit(
        "stopping.service",
        &format!(
            "[Service]\nNotifyAccess=main\nRestart=on-failure\nRestartSec=100ms\n\
             RestartForceExitStatus=75\nKillMode=mixed\n\
             ExecStart={GWSHIM} --transparent -- sh -c 'trap \"sleep 3; exit 75\" TERM; \
             touch {}; while :; do sleep 0.2; done'\n",
            ready.display()
        ),
    );
    m.start("stopping.service");
    let first = m.wait_state("stopping.service", 10 * SEC, |s| s.is_running());
    let gwshim = first.main_pid as i32;
    m.wait_until("the child's trap", 10 * SEC, |_| {
        ready.exists().then_some(())
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(gwshim),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("kill");
    let p = m.wait_until("deactivating while the child drains", 3 * SEC, |m| {
        let p = m.show(
            "stopping.service",
            &["ActiveState", "SubState", "StatusText", "MainPID"],
        );
        (p["ActiveState"] == "deactivating").then_some(p)
    });
    assert_eq!(p["MainPID"], gwshim.to_string(), "gwshim still runs: {p:?}");
    assert!(
        p["StatusText"].starts_with("stopping: SIGTERM sent to child pid"),
        "{p:?}"
    );
    let st = m.wait_state("stopping.service", 20 * SEC, |s| {
        s.is_running() && s.main_pid as i32 != gwshim || s.is_failed()
    });
    assert!(
        st.is_running() && st.n_restarts == 1,
        "{st:?}{}",
        m.context()
    );
}
