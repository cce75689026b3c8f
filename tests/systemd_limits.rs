//! gwshim and the unit's own limits under a real systemd (`systemd --user`, harness:
//! tests/systemd_harness/mod.rs), where gwshim cannot see them all by itself: starts that never
//! ran gwshim (a failed `ExecStartPre=`), a start limit printed in weeks ("1w 1d"), and gwshim
//! run by hand where systemd's variables and a service's cgroup are inherited.
//! Each case with a unit shape that fails without what gwshim does, shown by its control.
//!
//! Run only these: `cargo test --release --test systemd_limits` (as root; about 45 s).

mod skip;
mod systemd_harness;

use std::fs;
use std::time::Duration;
use systemd_harness::{GWSHIM, Manager, StandIn, UnitState};

const SEC: Duration = Duration::from_secs(1);

/// Limits of the units here: 3 starts per 30 s, RestartSec=500ms (none of systemd's defaults).
const LIMITS: &str = "StartLimitBurst=3\nStartLimitIntervalSec=30";
const SERVICE: &str = "Restart=on-failure\nRestartSec=500ms\nRestartForceExitStatus=75";

fn unit(unit_lines: &str, service_lines: &str) -> String {
    format!("[Unit]\n{unit_lines}\n[Service]\n{service_lines}\n")
}

/// Polls until `up` holds; panics at once when the unit failed.
fn wait_up(
    m: &Manager,
    svc: &StandIn,
    name: &str,
    what: &str,
    timeout: Duration,
    up: impl Fn(&UnitState) -> bool,
) -> UnitState {
    m.wait_until_every(what, timeout, Duration::from_millis(200), |m| {
        let st = m.state(name);
        assert!(
            !st.is_failed(),
            "{name} failed after {} service starts: {st:?}\n{:?}{}",
            svc.starts(),
            svc.events(),
            m.context()
        );
        up(&st).then_some(st)
    })
}

// ---------------------------------------------------------------------------------------------
// 1. An ExecStartPre= that fails once among fast child failures. systemd checks the start limit
//    before ExecStartPre=, so the failed start uses one of the 3 slots, though gwshim never ran.

/// `ExecStartPre=`: fails on its 2nd run only (counted in DIR/pre).
fn pre_command(svc: &StandIn) -> String {
    let count = svc.dir.join("pre");
    format!(
        "/bin/sh -c 'n=$(($(cat {c} 2>/dev/null || echo 0) + 1)); echo $n > {c}; [ $n -ne 2 ]'",
        c = count.display()
    )
}

/// The service fails this many times, then stays up.
const PRE_FAILURES: u32 = 3;

fn install_pre(m: &Manager, gwshim: bool) -> StandIn {
    let svc = m.stand_in("pre");
    let command = svc.command(PRE_FAILURES, 1);
    let exec = if gwshim {
        format!("{GWSHIM} --backoff 0 -- {command}")
    } else {
        command
    };
    let service = format!(
        "ExecStartPre={}\nExecStart={exec}\n{SERVICE}",
        pre_command(&svc)
    );
    m.install_unit("pre.service", &unit(LIMITS, &service));
    svc
}

#[test]
fn a_failed_exec_start_pre_without_gwshim_the_unit_fails() {
    let Some(m) = Manager::start_or_skip() else {
        return;
    };
    let svc = install_pre(&m, false);
    let mark = m.log_mark();
    m.start("pre.service");
    m.wait_state("pre.service", 20 * SEC, |s| s.is_failed());
    // Starts 1 and 3 ran the service, 2 failed its ExecStartPre=: the 4th was refused.
    assert_eq!(svc.starts(), 2, "{:?}{}", svc.events(), m.context());
    m.wait_log(
        mark,
        "pre.service: Start request repeated too quickly.",
        5 * SEC,
    );
}

#[test]
fn a_failed_exec_start_pre_is_counted_and_the_unit_never_fails() {
    let Some(m) = Manager::start_or_skip() else {
        return;
    };
    let svc = install_pre(&m, true);
    let mark = m.log_mark();
    m.start("pre.service");
    // Start 1 runs gwshim (the child fails), 2 fails its ExecStartPre=, 3 runs gwshim, which
    // learns of 2 from NRestarts and waits until 33 s after 1; 4 fails, 5 stays up. ~35 s.
    let st = wait_up(
        &m,
        &svc,
        "pre.service",
        "the service's 4th run to be up",
        90 * SEC,
        |st| svc.is_up(PRE_FAILURES as usize + 1) && st.is_running(),
    );
    let log = m.log_since(mark);
    assert!(
        !log.contains("Start request repeated too quickly"),
        "{}",
        m.context()
    );
    assert!(
        log.contains("1 start of pre.service since gwshim's last start never ran gwshim (NRestarts 0 then, 2 now"),
        "gwshim counted the start it never ran{}",
        m.context()
    );
    assert!(
        log.contains("so pre.service stays under StartLimitBurst=3/30s"),
        "{}",
        m.context()
    );
    assert_eq!(st.n_restarts, PRE_FAILURES + 1, "{st:?}");
    // The first start after the one that never ran gwshim waited out the window.
    let r = svc.start_records();
    assert!(r[2].time - r[0].time >= 30.0, "{r:?}");
    m.stop("pre.service");
}

// ---------------------------------------------------------------------------------------------
// 2. StartLimitIntervalSec=8d, which systemctl show prints as "1w 1d": gwshim paces by it.

#[test]
fn an_8_day_interval_is_read_as_the_units_own_limit() {
    let Some(m) = Manager::start_or_skip() else {
        return;
    };
    let svc = m.stand_in("eight");
    let service = format!(
        "ExecStart={GWSHIM} --backoff 0 -- {}\n{SERVICE}",
        svc.command(u32::MAX, 1)
    );
    m.install_unit(
        "eight.service",
        &unit("StartLimitBurst=3\nStartLimitIntervalSec=8d", &service),
    );
    assert_eq!(
        m.prop("eight.service", "StartLimitIntervalUSec"),
        "1w 1d",
        "{}",
        m.context()
    );
    let mark = m.log_mark();
    m.start("eight.service");
    // After the 3rd fast failure the 4th start may come only 8 days after the 1st.
    m.wait_log(
        mark,
        "so eight.service stays under StartLimitBurst=3/691200s",
        20 * SEC,
    );
    let log = m.log_since(mark);
    assert!(
        !log.contains("unexpected") && !log.contains("assuming"),
        "{}",
        m.context()
    );
    assert_eq!(svc.starts(), 3, "{:?}{}", svc.events(), m.context());
    // The stop ends the 8-day wait at once; nothing failed.
    m.stop("eight.service");
    let st = m.state("eight.service");
    assert_eq!(st.active, "inactive", "{st:?}{}", m.context());
}

// ---------------------------------------------------------------------------------------------
// 3. A run by hand: a unit named user@1000.service stands for a desktop's user manager (the
//    processes of a desktop session live below it). Its main process stays in init.scope, as
//    systemd --user does, and runs gwshim by hand twice, each time with the INVOCATION_ID and
//    MANAGERPID systemd gave the unit: first in the service's own cgroup (not as its main
//    process), then from a terminal's scope under it (app.slice/vte-spawn-1.scope). Neither
//    gwshim may read user@1000.service's limits or pace: each exits at once.

/// The main process of user@1000.service: OUT gets each gwshim's stderr and status.
fn desktop_script(out: &std::path::Path) -> String {
    let o = out.display();
    format!(
        r#"#!/bin/sh
run() {{ {GWSHIM} -v -- /bin/sh -c 'exit 1' 2>>{o}/$1.err; echo $? > {o}/$1.status; }}
# By hand inside the service, not its main process.
run in-service
# Into the layout of a desktop session, on the unified hierarchy and systemd's v1 one.
for line in $(cat /proc/self/cgroup); do
    path=${{line#*:*:}}
    case $line in
        0::*) if [ -d /sys/fs/cgroup/unified ]; then root=/sys/fs/cgroup/unified; else root=/sys/fs/cgroup; fi ;;
        *:name=systemd:*) root=/sys/fs/cgroup/systemd ;;
        *) continue ;;
    esac
    mkdir -p "$root$path/init.scope" "$root$path/app.slice/vte-spawn-1.scope"
    echo $$ > "$root$path/init.scope/cgroup.procs"
    echo "$root$path/app.slice/vte-spawn-1.scope/cgroup.procs" >> {o}/scopes
done
# A terminal in a scope of the session: a shell that moves itself there, then runs gwshim.
sh -c 'for s in $(cat {o}/scopes); do echo $$ > $s; done; cat /proc/self/cgroup > {o}/terminal.cgroup; {GWSHIM} -v -- /bin/sh -c "exit 1" 2>>{o}/in-scope.err; echo $? > {o}/in-scope.status'
echo done > {o}/done
exec sleep 1000
"#
    )
}

#[test]
fn a_run_by_hand_in_a_desktop_session_is_not_paced() {
    let Some(m) = Manager::start_or_skip() else {
        return;
    };
    let out = m.dir().join("desktop");
    fs::create_dir_all(&out).expect("folder");
    let script = out.join("session.sh");
    fs::write(&script, desktop_script(&out)).expect("script");
    // Limits gwshim would pace by if it took itself for this unit's main process: a backoff
    // wait (Restart=on-failure) after its child's fast failure.
    let service = format!(
        "ExecStart=/bin/sh {}\nDelegate=yes\nKillMode=mixed\n{SERVICE}",
        script.display()
    );
    m.install_unit("user@1000.service", &unit(LIMITS, &service));
    m.start("user@1000.service");
    m.wait_until("the session script to finish", 30 * SEC, |_| {
        out.join("done").exists().then_some(())
    });
    let main_pid = m.state("user@1000.service").main_pid;
    let terminal = fs::read_to_string(out.join("terminal.cgroup")).unwrap_or_default();
    assert!(
        terminal.contains("/user@1000.service/app.slice/vte-spawn-1.scope"),
        "the terminal is in its scope: {terminal:?}"
    );
    for case in ["in-service", "in-scope"] {
        let err = fs::read_to_string(out.join(format!("{case}.err"))).unwrap_or_default();
        let status = fs::read_to_string(out.join(format!("{case}.status"))).unwrap_or_default();
        // No limits read, no pacing: the fast failure's 75 at once.
        assert_eq!(status.trim(), "75", "{case}: {err}{}", m.context());
        for never in ["waiting", "pacing user@1000", "assuming", "cannot read"] {
            assert!(!err.contains(never), "{case}: {never:?} in {err}");
        }
        assert!(err.contains("exiting 75"), "{case}: {err}");
    }
    let in_service = fs::read_to_string(out.join("in-service.err")).unwrap_or_default();
    assert!(
        in_service.contains(&format!(
            "not the main process of user@1000.service (MainPID={main_pid})"
        )),
        "{in_service}"
    );
    m.stop("user@1000.service");
}
