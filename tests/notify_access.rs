//! Who speaks for the unit through gwshim's notify relay, under a real user manager (harness:
//! tests/systemd_harness), with `Type=notify` and `NotifyAccess=main`: only the main child, as
//! systemd itself would have it without gwshim. Each case runs under gwshim and, as its
//! control, the same service without gwshim. The service: tests/helpers/notify_speaker.py.

mod common;
mod skip;
mod systemd_harness;

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use systemd_harness::{GWSHIM, Manager, python};

const SEC: Duration = Duration::from_secs(1);
const SPEAKER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/helpers/notify_speaker.py"
);

/// Installs UNIT running the speaker in MODE, under gwshim (with `gwshim_opts`) or not.
fn speaker_unit(m: &Manager, unit: &str, mode: &str, gwshim: Option<&str>, extra: &str) -> PathBuf {
    let dir = m.dir().join(unit);
    fs::create_dir_all(&dir).expect("dir");
    let command = format!(
        "{} {SPEAKER} {} {mode}",
        python().to_string_lossy(),
        dir.display()
    );
    let exec = match gwshim {
        Some(opts) => format!("{GWSHIM} -v {opts} -- {command}"),
        None => command,
    };
    m.install_unit(
        unit,
        &format!("[Service]\nType=notify\nNotifyAccess=main\n{extra}ExecStart={exec}\n"),
    );
    dir
}

fn starts(dir: &std::path::Path) -> Vec<(i32, String)> {
    fs::read_to_string(dir.join("starts"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (pid, sock) = l.split_once(' ')?;
            Some((pid.parse().ok()?, sock.to_string()))
        })
        .collect()
}

/// Row 1 of issue 24: a grandchild runs `systemd-notify --ready`, the service never does.
/// systemd refuses it (not the main pid) and the start times out; under gwshim the same.
#[test]
fn a_grandchilds_ready_is_refused() {
    let Some(m) = Manager::start_or_skip() else {
        return;
    };
    for gwshim in [Some(""), None] {
        let unit = if gwshim.is_some() {
            "ready-gw.service"
        } else {
            "ready-ctl.service"
        };
        let dir = speaker_unit(&m, unit, "grandchild-ready", gwshim, "TimeoutStartSec=3s\n");
        let mark = m.log_mark();
        let out = m.systemctl(&["start", unit]);
        assert!(
            fs::metadata(dir.join("grandchildren-done")).is_ok(),
            "{unit}: the grandchild ran{}",
            m.context()
        );
        assert!(
            !out.status.success(),
            "{unit}: a grandchild's READY=1 made the unit active{}",
            m.context()
        );
        m.wait_log(mark, &format!("{unit}: start operation timed out"), 5 * SEC);
        if gwshim.is_some() {
            let log = m.log_since(mark);
            assert!(log.contains("refused a notification from pid"), "{log}");
            assert!(!log.contains("relayed from pid"), "{log}");
        }
    }
}

/// The gateway's own READY=1 (in a datagram with lines systemd cannot use), STATUS= and
/// WATCHDOG=1 pass; a grandchild's STOPPING=1 (row 2) and a grandchild's failing systemctl's
/// ERRNO= (row 3) do not: the unit stays active, with no error in `systemctl status`, as it does
/// without gwshim.
#[test]
fn only_the_gateway_speaks_for_the_unit() {
    let Some(m) = Manager::start_or_skip() else {
        return;
    };
    for gwshim in [Some(""), None] {
        let unit = if gwshim.is_some() {
            "speak-gw.service"
        } else {
            "speak-ctl.service"
        };
        let dir = speaker_unit(&m, unit, "gateway", gwshim, "WatchdogSec=2s\n");
        let mark = m.log_mark();
        m.start(unit);
        m.wait_until("the grandchildren", 10 * SEC, |_| {
            fs::metadata(dir.join("grandchildren-done")).ok()
        });
        // Past WatchdogSec: still fed by the gateway alone.
        std::thread::sleep(3 * SEC);
        let p = m.show(
            unit,
            &[
                "ActiveState",
                "SubState",
                "StatusText",
                "StatusErrno",
                "NRestarts",
            ],
        );
        let ctx = m.context();
        assert_eq!(
            (
                p["ActiveState"].as_str(),
                p["SubState"].as_str(),
                p["NRestarts"].as_str()
            ),
            ("active", "running", "0"),
            "{unit}: {p:?}{ctx}"
        );
        assert_eq!(
            p["StatusText"], "ready beside lines systemd cannot use",
            "{unit}{ctx}"
        );
        assert_eq!(
            p["StatusErrno"], "0",
            "{unit}: a grandchild's ERRNO= reached systemd{ctx}"
        );
        let log = m.log_since(mark);
        assert!(!log.contains("Watchdog timeout"), "{unit}{ctx}");
        if gwshim.is_some() {
            assert!(log.contains("refused a notification from pid"), "{log}");
            assert_eq!(starts(&dir).len(), 1);
        } else {
            // systemd's own refusal, which gwshim's relay mirrors.
            assert!(
                log.contains("reception only permitted for main PID"),
                "{log}"
            );
        }
        m.stop(unit);
    }
}

/// An FDSTORE=1 the child sends right before it exits reaches systemd even when gwshim reads
/// the child's death first (gwshim is stopped while the child sends and exits, so both wait
/// when it continues): after the restart, systemd holds the fd.
#[test]
fn an_fdstore_sent_right_before_the_exit_reaches_systemd() {
    let Some(m) = Manager::start_or_skip() else {
        return;
    };
    let unit = "fdstore.service";
    let dir = speaker_unit(
        &m,
        unit,
        "fdstore",
        Some("--backoff 0"),
        "FileDescriptorStoreMax=3\nRestart=always\nRestartSec=200ms\nRestartForceExitStatus=75\n",
    );
    m.start(unit);
    m.wait_until("the child to wait", 10 * SEC, |_| {
        fs::metadata(dir.join("waiting")).ok()
    });
    let gwshim: i32 = m.prop(unit, "MainPID").parse().expect("MainPID");
    let child = starts(&dir)[0].0;
    common::kill(gwshim, nix::libc::SIGSTOP);
    assert!(common::wait_until(|| common::stopped(gwshim)));
    fs::write(dir.join("go"), "").expect("go");
    assert!(
        common::wait_until(|| common::stat(child).is_some_and(|s| s.0 == 'Z')),
        "the child exits{}",
        m.context()
    );
    common::kill(gwshim, nix::libc::SIGCONT);
    m.wait_until("the second start", 15 * SEC, |_| {
        (starts(&dir).len() == 2).then_some(())
    });
    let st = m.wait_state(unit, 10 * SEC, |s| s.is_running());
    assert_eq!(st.n_restarts, 1, "{st:?}");
    assert_eq!(
        m.prop(unit, "NFileDescriptorStore"),
        "1",
        "the child's last fd is in systemd's store{}",
        m.context()
    );
    m.stop(unit);
}

/// A 62-character profile name: the unit's RuntimeDirectory= (gwshim's state folder) is too long
/// a path for a socket under $XDG_RUNTIME_DIR, so the relay binds an abstract socket, and the
/// gateway's READY=1 still reaches systemd (with NotifyAccess=main it could not go there
/// directly).
#[test]
fn a_62_character_profile_name_still_relays() {
    let Some(m) = Manager::start_or_skip() else {
        return;
    };
    let unit = format!("hermes-gateway-{}.service", "p".repeat(62));
    let dir = speaker_unit(
        &m,
        &unit,
        "ready",
        Some(""),
        "TimeoutStartSec=5s\nRuntimeDirectory=gwshim-%N\n",
    );
    let folder = m
        .runtime_dir()
        .join(format!("gwshim-{}", unit.trim_end_matches(".service")));
    assert!(folder.join("notify-1234567").as_os_str().len() > 107);
    m.start(unit.as_str());
    assert!(m.state(&unit).is_running(), "{}", m.context());
    let socket = &starts(&dir)[0].1;
    assert!(socket.starts_with("@gwshim/notify/"), "{socket}");
    assert!(
        !m.log().contains("cannot open a notify socket"),
        "{}",
        m.context()
    );
    m.stop(&unit);
}

/// Issue 21's shape: `READY=1`, then `STOPPING=1` and exit 1, three times fast (limits 3/30s,
/// RestartSec=500ms, TimeoutStopSec=5s), then a run that stays up. gwshim keeps the child's
/// STOPPING=1 from systemd: its wait before the 4th start (longer than TimeoutStopSec=) is not a
/// stop that systemd ends, and the unit is never `failed`. The control, without gwshim, hits
/// the start limit.
#[test]
fn the_childs_stopping_does_not_turn_a_paced_restart_into_a_stop() {
    let Some(m) = Manager::start_or_skip() else {
        return;
    };
    let limits = "StartLimitBurst=3\nStartLimitIntervalSec=30s\n";
    let service = "Restart=on-failure\nRestartSec=500ms\nTimeoutStopSec=5s\n";
    for gwshim in [None, Some("--backoff 0")] {
        let unit = if gwshim.is_some() {
            "stopping-gw.service"
        } else {
            "stopping-ctl.service"
        };
        let dir = m.dir().join(unit);
        fs::create_dir_all(&dir).expect("dir");
        let command = format!(
            "{} {SPEAKER} {} stopping",
            python().to_string_lossy(),
            dir.display()
        );
        let exec = match gwshim {
            Some(opts) => format!("{GWSHIM} {opts} -- {command}"),
            None => command,
        };
        m.install_unit(
            unit,
            &format!(
                "[Unit]\n{limits}[Service]\nType=notify\nNotifyAccess=main\n{service}ExecStart={exec}\n"
            ),
        );
        m.systemctl_ok(&["start", "--no-block", unit]);
        if gwshim.is_none() {
            let st = m.wait_state(unit, 20 * SEC, |s| s.is_failed());
            assert!(starts(&dir).len() <= 3, "{st:?}");
            continue;
        }
        let deadline = Instant::now() + 60 * SEC;
        loop {
            let st = m.state(unit);
            assert!(!st.is_failed(), "{st:?}{}", m.context());
            assert_ne!(st.active, "deactivating", "{st:?}{}", m.context());
            if starts(&dir).len() == 4 && st.is_running() {
                break;
            }
            assert!(Instant::now() < deadline, "{st:?}{}", m.context());
            std::thread::sleep(Duration::from_millis(200));
        }
        let log = m.log();
        assert!(
            !log.contains(&format!("{unit}: State 'stop-sigterm' timed out")),
            "{log}"
        );
        m.stop(unit);
    }
}

/// `NotifyAccess=all`: systemd listens to every process of the unit, and so does the relay
/// (gwshim reads the setting with `systemctl show`): a grandchild's `systemd-notify --ready`
/// makes the unit active, under gwshim as without it.
#[test]
fn under_notify_access_all_every_process_of_the_unit_speaks() {
    let Some(m) = Manager::start_or_skip() else {
        return;
    };
    for gwshim in [Some(""), None] {
        let unit = if gwshim.is_some() {
            "all-gw.service"
        } else {
            "all-ctl.service"
        };
        let dir = speaker_unit(
            &m,
            unit,
            "grandchild-ready",
            gwshim,
            "NotifyAccess=all\nTimeoutStartSec=5s\n",
        );
        m.start(unit);
        assert!(m.state(unit).is_running(), "{unit}{}", m.context());
        assert!(fs::metadata(dir.join("grandchildren-done")).is_ok());
        m.stop(unit);
    }
}
