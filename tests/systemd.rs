//! gwshim under a real systemd: the machine's own `systemd --user` in a private mount namespace
//! (harness: tests/systemd_harness/mod.rs). Most cases run the same unit twice: once without gwshim
//! (the control, which shows the failure and so proves the harness can fail) and once with it.
//! No test unit uses systemd's default limits (5 starts per 10 s, RestartSec=100ms): a gwshim
//! that paced by the defaults instead of the unit's own limits must fail here.
//! Each test starts its own manager; the harness runs one manager at a time.
//!
//! Run only these: `cargo test --release --test systemd` (as root; about a minute, most of it the
//! two pacing cases). No case is ignored; where the harness cannot run, each prints
//! `skipped: REASON` (a failure under GWSHIM_NO_SKIP=1, as in CI).

mod skip;
mod systemd_harness;

use std::time::Duration;
use systemd_harness::{GWSHIM, Manager, StandIn, UnitState};

/// gwshim's options for the seed case. gwshim reads the unit's limits (StartLimitBurst=3,
/// StartLimitIntervalSec=30, RestartSec=500ms: none of them systemd's defaults, 5 per 10 s and
/// 100ms, so a gwshim that paced by the defaults fails here) from `systemctl show` itself.
/// Backoff is off: this case is about the start limit.
const PACING_SEED: &[&str] = &["--backoff", "0"];
/// gwshim's options for the hermes 0.19.0 unit shape: none, everything from the unit
/// (StartLimitIntervalSec=0, RestartSec=200ms) and the default backoff.
const PACING_HERMES: &[&str] = &[];

/// How a unit runs its service.
#[derive(Clone, Copy)]
enum Via<'a> {
    /// ExecStart= is the service itself.
    Direct,
    /// ExecStart=gwshim OPTIONS -- service.
    Gwshim(&'a [&'a str]),
}

fn exec_start(via: Via, command: &str) -> String {
    match via {
        Via::Direct => command.to_string(),
        Via::Gwshim([]) => format!("{GWSHIM} -- {command}"),
        Via::Gwshim(opts) => format!("{GWSHIM} {} -- {command}", opts.join(" ")),
    }
}

/// A unit file: `[Unit]` lines, `ExecStart=`, then `[Service]` lines.
fn unit(unit_lines: &str, exec: &str, service_lines: &str) -> String {
    format!("[Unit]\n{unit_lines}\n[Service]\nExecStart={exec}\n{service_lines}\n")
}

const SEC: Duration = Duration::from_secs(1);

/// Every start of the unit starts the service (fails fast when gwshim itself exits early, e.g.
/// on an option it does not know).
fn assert_service_started(m: &Manager, svc: &StandIn, st: &UnitState) {
    assert!(
        st.n_restarts as usize <= svc.starts() + 1,
        "{} unit restarts but {} service starts: gwshim exits before starting it{}",
        st.n_restarts,
        svc.starts(),
        m.context()
    );
}

/// The last started service is the main process (Direct) or gwshim's child (Gwshim).
fn assert_main_pid(via: Via, svc: &StandIn, main_pid: u32) {
    let last = svc.start_records().pop().expect("a start record");
    match via {
        Via::Direct => assert_eq!(last.pid, main_pid, "the service is the main pid: {last:?}"),
        Via::Gwshim(_) => assert_eq!(last.ppid, main_pid, "gwshim is the main pid: {last:?}"),
    }
}

/// gwshim waited at least once, and every wait it logged names `limit` (the unit's own start
/// limit); it never fell back to assumed limits.
fn assert_waits_only_for(log: &str, limit: &str, m: &Manager) {
    let waits: Vec<&str> = log.lines().filter(|l| l.contains("; waiting ")).collect();
    assert!(!waits.is_empty(), "no wait{}", m.context());
    for w in &waits {
        assert!(
            w.ends_with(limit),
            "{w:?} should name {limit:?}{}",
            m.context()
        );
    }
    assert!(!log.contains("assuming"), "{}", m.context());
}

/// Polls `unit` every 200 ms until `up` holds for its state, and returns that state; panics
/// naming `what` after `timeout`, and at once when a start did not start the service or the unit
/// failed.
fn wait_up(
    m: &Manager,
    svc: &StandIn,
    unit: &str,
    what: &str,
    timeout: Duration,
    up: impl Fn(&UnitState) -> bool,
) -> UnitState {
    m.wait_until_every(what, timeout, Duration::from_millis(200), |m| {
        let st = m.state(unit);
        assert_service_started(m, svc, &st);
        assert!(
            !st.is_failed(),
            "{unit} failed after {} starts: {st:?}{}",
            svc.starts(),
            m.context()
        );
        up(&st).then_some(st)
    })
}

// ---------------------------------------------------------------------------------------------
// 1. The seed: fast failures exhaust StartLimitBurst= and the unit ends failed.

const SEED_UNIT: &str = "StartLimitBurst=3\nStartLimitIntervalSec=30";
const SEED_SERVICE: &str = "Restart=on-failure\nRestartSec=500ms\nRestartForceExitStatus=75";
/// The service exits 1 at once on this many starts, then stays up.
const SEED_FAILURES: u32 = 5;
/// gwshim's line when it waits for the seed unit's own start limit.
const SEED_WAIT: &str = "so seed.service stays under StartLimitBurst=3/30s";

/// Limits for the other test units: again none of systemd's defaults.
const LIMITS_4_PER_20: &str = "StartLimitBurst=4\nStartLimitIntervalSec=20";

fn install_seed(m: &Manager, via: Via) -> StandIn {
    let svc = m.stand_in("seed");
    let exec = exec_start(via, &svc.command(SEED_FAILURES, 1));
    m.install_unit("seed.service", &unit(SEED_UNIT, &exec, SEED_SERVICE));
    svc
}

#[test]
fn seed_without_gwshim_hits_the_start_limit() {
    let Some(m) = Manager::start_or_skip() else {
        return;
    };
    let svc = install_seed(&m, Via::Direct);
    let mark = m.log_mark();
    m.start("seed.service");
    let st = m.wait_state("seed.service", 20 * SEC, |s| s.is_failed());
    // Give a wrong restart a chance to show.
    std::thread::sleep(Duration::from_millis(500));
    let st2 = m.state("seed.service");
    assert_eq!(st2.active, "failed", "{st2:?}{}", m.context());
    assert_eq!(svc.starts(), 3, "events: {:?}{}", svc.events(), m.context());
    assert_eq!(st.result, "exit-code", "{st:?}");
    assert_eq!(st.exec_main_status, 1, "{st:?}");
    m.wait_log(
        mark,
        "seed.service: Start request repeated too quickly.",
        5 * SEC,
    );
}

#[test]
fn seed_with_gwshim_never_fails_and_the_6th_start_stays_up() {
    let Some(m) = Manager::start_or_skip() else {
        return;
    };
    let svc = install_seed(&m, Via::Gwshim(PACING_SEED));
    let mark = m.log_mark();
    m.start("seed.service");
    // About 35 s with pacing (the 4th start 33 s after the 1st, the 5th and 6th right after
    // it); at most 90 s.
    let st = wait_up(
        &m,
        &svc,
        "seed.service",
        "the 6th start to be up",
        90 * SEC,
        |st| svc.is_up(SEED_FAILURES as usize + 1) && st.is_running(),
    );
    assert_eq!(
        svc.starts(),
        SEED_FAILURES as usize + 1,
        "{:?}",
        svc.events()
    );
    assert_eq!(st.n_restarts, SEED_FAILURES, "{st:?}");
    let log = m.log_since(mark);
    assert!(
        !log.contains("Start request repeated too quickly"),
        "{}",
        m.context()
    );
    // gwshim paced by the unit's own limit, read from systemd, and by nothing else.
    assert_waits_only_for(&log, SEED_WAIT, &m);
    // A sliding window: the 4th start at least StartLimitIntervalSec=30 s after the 1st.
    let r = svc.start_records();
    assert!(
        r[3].time - r[0].time >= 30.0,
        "the 4th start waits out the window: {r:?}"
    );
    // Still up a moment later, and under gwshim.
    std::thread::sleep(Duration::from_millis(500));
    let st = m.state("seed.service");
    assert!(st.is_running(), "{st:?}{}", m.context());
    assert_main_pid(Via::Gwshim(&[]), &svc, st.main_pid);
    m.stop("seed.service");
}

// ---------------------------------------------------------------------------------------------
// 2. Stop: the service exits 1 on SIGTERM, as the gateway does on an unexpected one.

const STOP_SERVICE: &str = "Restart=on-failure\nRestartSec=300ms\nKillMode=mixed";

/// Starts the unit, waits until the service is up, stops it; returns the end state.
fn run_stop_case(m: &Manager, via: Via) -> (StandIn, UnitState) {
    let svc = m.stand_in("stop");
    let exec = exec_start(via, &svc.command_term(0, 1, 1));
    m.install_unit("stop.service", &unit(LIMITS_4_PER_20, &exec, STOP_SERVICE));
    m.start("stop.service");
    m.wait_until("the service to be up", 10 * SEC, |_| {
        svc.is_up(1).then_some(())
    });
    let running = m.wait_state("stop.service", 10 * SEC, |s| s.is_running());
    assert_main_pid(via, &svc, running.main_pid);
    m.stop("stop.service");
    let st = m.wait_state("stop.service", 10 * SEC, |s| {
        s.active == "inactive" || s.active == "failed"
    });
    // Nothing restarts it afterwards.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(svc.starts(), 1, "{:?}{}", svc.events(), m.context());
    assert_eq!(
        svc.count("TERM"),
        1,
        "SIGTERM seen once: {:?}",
        svc.events()
    );
    (svc, st)
}

#[test]
fn stop_without_gwshim_leaves_the_unit_failed() {
    let Some(m) = Manager::start_or_skip() else {
        return;
    };
    let (_svc, st) = run_stop_case(&m, Via::Direct);
    assert_eq!(st.active, "failed", "{st:?}{}", m.context());
    assert_eq!(st.result, "exit-code", "{st:?}");
    assert_eq!(st.exec_main_status, 1, "{st:?}");
}

#[test]
fn stop_with_gwshim_leaves_the_unit_inactive() {
    let Some(m) = Manager::start_or_skip() else {
        return;
    };
    let (_svc, st) = run_stop_case(&m, Via::Gwshim(&[]));
    assert_eq!(st.active, "inactive", "{st:?}{}", m.context());
    assert_eq!(st.result, "success", "{st:?}");
    // gwshim's own line: the child's real status, and the 0 it exits with after a stop.
    m.wait_log(0, "exited 1; exiting 0", 5 * SEC);
}

// ---------------------------------------------------------------------------------------------
// 3. Reload: ExecReload sends SIGUSR1 to the main pid; the service exits 75 and is restarted.

const RELOAD_SERVICE: &str = "Restart=on-failure\nRestartSec=300ms\nRestartForceExitStatus=75\n\
KillMode=mixed\nExecReload=/bin/kill -USR1 $MAINPID";

fn run_reload_case(m: &Manager, via: Via) -> StandIn {
    let svc = m.stand_in("reload");
    let exec = exec_start(via, &svc.command(0, 1));
    m.install_unit(
        "reload.service",
        &unit(LIMITS_4_PER_20, &exec, RELOAD_SERVICE),
    );
    m.start("reload.service");
    m.wait_until("the service to be up", 10 * SEC, |_| {
        svc.is_up(1).then_some(())
    });
    let first = m.wait_state("reload.service", 10 * SEC, |s| s.is_running());
    // Not checked: if the main process exits before systemd has seen /bin/kill exit, the reload
    // job fails (the stand-in drains 0.2 s, as the gateway drains, so this is rare). What counts
    // is that the signal arrives and the unit restarts the service.
    let reload = m.systemctl(&["reload", "reload.service"]);
    let st = m.wait_state("reload.service", 10 * SEC, |s| {
        s.is_running() && s.n_restarts >= 1 && svc.is_up(2)
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        svc.count("USR1"),
        1,
        "SIGUSR1 seen once: {:?} (systemctl reload: {})",
        svc.events(),
        reload.status
    );
    assert_eq!(svc.starts(), 2, "{:?}{}", svc.events(), m.context());
    assert_eq!(st.n_restarts, 1, "{st:?}");
    assert_ne!(st.main_pid, first.main_pid, "a new main process");
    let st = m.state("reload.service");
    assert!(st.is_running(), "active again: {st:?}{}", m.context());
    assert_main_pid(via, &svc, st.main_pid);
    m.stop("reload.service");
    svc
}

#[test]
fn reload_without_gwshim_restarts_the_service() {
    let Some(m) = Manager::start_or_skip() else {
        return;
    };
    run_reload_case(&m, Via::Direct);
}

#[test]
fn reload_with_gwshim_reaches_the_child_and_restarts_it() {
    let Some(m) = Manager::start_or_skip() else {
        return;
    };
    run_reload_case(&m, Via::Gwshim(&[]));
    m.wait_log(0, "exited 75; exiting 75", 5 * SEC);
}

// ---------------------------------------------------------------------------------------------
// 4. Fatal config: exit 78 with RestartPreventExitStatus=78 must not be restarted.

const FATAL_SERVICE: &str = "Restart=on-failure\nRestartSec=300ms\nRestartForceExitStatus=75\n\
RestartPreventExitStatus=78";

/// Starts a service that exits 78 at once; returns it once the unit has settled (1 s).
fn run_fatal_case(m: &Manager, via: Via) -> StandIn {
    let svc = m.stand_in("fatal");
    let exec = exec_start(via, &svc.command(u32::MAX, 78));
    m.install_unit(
        "fatal.service",
        &unit(LIMITS_4_PER_20, &exec, FATAL_SERVICE),
    );
    m.start("fatal.service");
    m.wait_until("a first start", 10 * SEC, |_| {
        (svc.starts() >= 1).then_some(())
    });
    svc
}

fn assert_fatal_not_restarted(m: &Manager, svc: &StandIn) {
    m.wait_state("fatal.service", 10 * SEC, |s| s.is_failed());
    // Three RestartSec= periods: long enough for any restart to happen.
    std::thread::sleep(SEC);
    let st = m.state("fatal.service");
    assert_eq!(svc.starts(), 1, "{:?}{}", svc.events(), m.context());
    assert_eq!(st.active, "failed", "{st:?}{}", m.context());
    assert_eq!(st.exec_main_status, 78, "{st:?}");
    assert_eq!(st.n_restarts, 0, "{st:?}");
}

#[test]
fn fatal_config_without_gwshim_is_not_restarted() {
    let Some(m) = Manager::start_or_skip() else {
        return;
    };
    let svc = run_fatal_case(&m, Via::Direct);
    assert_fatal_not_restarted(&m, &svc);
}

#[test]
fn fatal_config_with_gwshim_reaches_systemd_unchanged() {
    let Some(m) = Manager::start_or_skip() else {
        return;
    };
    let svc = run_fatal_case(&m, Via::Gwshim(&[]));
    assert_fatal_not_restarted(&m, &svc);
    m.wait_log(0, "exited 78; exiting 78", 5 * SEC);
}

/// The counter-proof: were 78 rewritten (here on purpose, `--keep-status none`), the harness
/// would see the unit restart.
#[test]
fn fatal_config_rewritten_to_75_would_be_restarted() {
    let Some(m) = Manager::start_or_skip() else {
        return;
    };
    let svc = run_fatal_case(&m, Via::Gwshim(&["--keep-status", "none"]));
    // gwshim may pace this restart (backoff): bounded wait.
    m.wait_until("a second start", 15 * SEC, |_| {
        (svc.starts() >= 2).then_some(())
    });
    m.wait_log(0, "exited 78; exiting 75", 5 * SEC);
}

// ---------------------------------------------------------------------------------------------
// 5. The hermes 0.19.0 unit shape: no start limit, Restart=always; a crash loop.

const HERMES_UNIT: &str = "StartLimitIntervalSec=0";
/// RestartSec=5 in the real unit, scaled down.
const HERMES_SERVICE: &str = "Type=simple\nRestart=always\nRestartSec=200ms\n\
RestartForceExitStatus=75\nRestartPreventExitStatus=78\nKillMode=mixed\nKillSignal=SIGTERM\n\
ExecReload=/bin/kill -USR1 $MAINPID\nTimeoutStopSec=10";

fn install_hermes(m: &Manager, via: Via) -> StandIn {
    let svc = m.stand_in("hermes");
    let exec = exec_start(via, &svc.command(u32::MAX, 1));
    m.install_unit("hermes.service", &unit(HERMES_UNIT, &exec, HERMES_SERVICE));
    svc
}

#[test]
fn hermes_unit_without_gwshim_restarts_at_full_speed() {
    let Some(m) = Manager::start_or_skip() else {
        return;
    };
    let svc = install_hermes(&m, Via::Direct);
    m.start("hermes.service");
    // About 0.25 s per start: 8 starts take about 2 s. Bounded at 8 s.
    m.wait_until("8 starts", 8 * SEC, |_| (svc.starts() >= 8).then_some(()));
    let st = m.state("hermes.service");
    m.stop("hermes.service");
    let gaps = svc.start_gaps();
    assert!(!st.is_failed(), "no start limit: {st:?}");
    assert!(gaps.iter().all(|g| *g < 1.0), "no backoff: gaps {gaps:?}");
}

#[test]
fn hermes_unit_with_gwshim_backs_off() {
    let Some(m) = Manager::start_or_skip() else {
        return;
    };
    let svc = install_hermes(&m, Via::Gwshim(PACING_HERMES));
    m.start("hermes.service");
    // Five starts, four gaps; at most 60 s.
    wait_up(&m, &svc, "hermes.service", "five starts", 60 * SEC, |_| {
        svc.starts() >= 5
    });
    let st = m.state("hermes.service");
    m.stop("hermes.service");
    let gaps = svc.start_gaps();
    assert!(!st.is_failed(), "{st:?}");
    // Growing delays: no gap much shorter than the one before, the last one at least twice the
    // first.
    for w in gaps.windows(2) {
        assert!(w[1] >= w[0] * 0.9, "gaps shrink: {gaps:?}{}", m.context());
    }
    assert!(
        gaps[gaps.len() - 1] >= 2.0 * gaps[0],
        "gaps do not grow: {gaps:?}{}",
        m.context()
    );
}

// ---------------------------------------------------------------------------------------------
// 6. Another unit's own limit (4 starts per 20 s): gwshim paces by it, not by the seed's nor by
//    systemd's defaults.

#[test]
fn a_unit_with_4_starts_per_20s_is_paced_by_its_own_limit() {
    let Some(m) = Manager::start_or_skip() else {
        return;
    };
    let svc = m.stand_in("four");
    let exec = exec_start(Via::Gwshim(PACING_SEED), &svc.command(6, 1));
    let service = "Restart=on-failure\nRestartSec=300ms";
    m.install_unit("four.service", &unit(LIMITS_4_PER_20, &exec, service));
    let mark = m.log_mark();
    m.start("four.service");
    // The 5th start 22 s after the 1st, the 6th and 7th right after it: about 24 s.
    wait_up(
        &m,
        &svc,
        "four.service",
        "the 7th start to be up",
        60 * SEC,
        |st| svc.is_up(7) && st.is_running(),
    );
    let log = m.log_since(mark);
    assert_waits_only_for(
        &log,
        "so four.service stays under StartLimitBurst=4/20s",
        &m,
    );
    assert!(
        !log.contains("Start request repeated too quickly"),
        "{}",
        m.context()
    );
    m.stop("four.service");
}

// ---------------------------------------------------------------------------------------------
// 7. A start an operator asks for begins a fresh backoff; automatic restarts continue it.

#[test]
fn an_operators_start_begins_a_fresh_backoff() {
    let Some(m) = Manager::start_or_skip() else {
        return;
    };
    let svc = m.stand_in("fresh");
    // Fails at once, always; the default backoff (1 s doubling) minus RestartSec=300ms.
    let exec = exec_start(Via::Gwshim(&[]), &svc.command(u32::MAX, 1));
    let limits = "StartLimitBurst=20\nStartLimitIntervalSec=40";
    let service = "Restart=on-failure\nRestartSec=300ms";
    m.install_unit("fresh.service", &unit(limits, &exec, service));
    let mark = m.log_mark();
    m.start("fresh.service");
    // Waits of 0.7, 1.7 and 3.7 s, then 7.7 s after the 4th fast failure: stop during it.
    m.wait_log(
        mark,
        "waiting 7.7 s (backoff: 4 fast failures in a row)",
        30 * SEC,
    );
    assert_eq!(svc.starts(), 4, "{:?}{}", svc.events(), m.context());
    m.stop("fresh.service");
    let st = m.state("fresh.service");
    assert_eq!(st.active, "inactive", "{st:?}{}", m.context());
    let mark = m.log_mark();
    m.start("fresh.service");
    m.wait_log(
        mark,
        "waiting 0.7 s (backoff: 1 fast failure in a row)",
        10 * SEC,
    );
    assert!(
        !m.log_since(mark).contains("5 fast failures"),
        "{}",
        m.context()
    );
    // systemd's own restarts after it go on counting.
    m.wait_log(
        mark,
        "waiting 1.7 s (backoff: 2 fast failures in a row)",
        10 * SEC,
    );
    m.stop("fresh.service");
}

// ---------------------------------------------------------------------------------------------
// 8. A unit that runs gwshim as a non-root User= with PrivateTmp=yes (as the system unit of
//    `hermes gateway install --system` runs the gateway). In this harness the manager is root's
//    user manager: the user cannot reach it with `systemctl --user`, so gwshim falls back to
//    assumed limits and must say so. Its pacing history must survive the restarts: under
//    PrivateTmp=yes the temp dir is new at every start, the user cannot write /run/gwshim, so it
//    needs the folder the drop-in has systemd make (contrib/hermes/gwshim.conf.in).

/// The drop-in's lines for gwshim's state folder: the `RuntimeDirectory*=` lines of
/// contrib/hermes/gwshim.conf.in.
fn state_folder_lines() -> String {
    let template = include_str!("../contrib/hermes/gwshim.conf.in");
    let lines: Vec<&str> = template
        .lines()
        .filter(|l| l.starts_with("RuntimeDirectory"))
        .collect();
    assert!(!lines.is_empty(), "no RuntimeDirectory= in the template");
    lines.join("\n")
}

/// Runs a unit as `nobody` with PrivateTmp=yes whose service fails at once, always, until
/// systemd has restarted it `restarts` times; returns the log of those runs. gwshim is copied
/// where `nobody` can run it, out of the private /tmp.
fn run_as_nobody(m: &Manager, name: &str, extra: &str, restarts: u32) -> String {
    let bin = "/run/systemd/gwshim-test/gwshim";
    m.in_namespace(&format!(
        "mkdir -p /run/systemd/gwshim-test && cp {GWSHIM} {bin} && chmod 0755 {bin}"
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    // As /run is on a booted system: others may pass through (the manager's runtime folder is
    // the %t of RuntimeDirectory=), not list or write.
    std::fs::set_permissions(
        m.runtime_dir(),
        std::os::unix::fs::PermissionsExt::from_mode(0o711),
    )
    .expect("chmod the runtime folder");
    let unit_text = unit(
        "StartLimitBurst=30\nStartLimitIntervalSec=40",
        &format!("{bin} --backoff 200ms:1min -- /bin/sh -c 'exit 1'"),
        &format!(
            "User=nobody\nPrivateTmp=yes\nRestart=on-failure\nRestartSec=300ms\n\
             RestartForceExitStatus=75\n{extra}"
        ),
    );
    m.install_unit(name, &unit_text);
    let mark = m.log_mark();
    m.start(name);
    m.wait_until_every("the restarts", 30 * SEC, Duration::from_millis(200), |m| {
        let st = m.state(name);
        assert!(!st.is_failed(), "{st:?}{}", m.context());
        (st.n_restarts >= restarts).then_some(())
    });
    m.stop(name);
    m.log_since(mark)
}

/// gwshim said once per start that it cannot read the unit's limits, which unit and why.
fn assert_fallback_said_once_per_start(log: &str, name: &str, m: &Manager) {
    let starts = log.matches("gwshim: started /bin/sh").count();
    let warning = format!(
        "gwshim: warning: cannot read the limits of {name}: systemctl --user show {name} \
         failed (exit status: 1): Failed to connect to bus: "
    );
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("cannot read")).collect();
    assert!(starts >= 4, "{}", m.context());
    assert_eq!(warnings.len(), starts, "once per start{}", m.context());
    for w in warnings {
        assert!(
            w.starts_with(&warning) && w.ends_with("; assuming systemd's defaults, 5 starts per 10 s, RestartSec=100ms (--start-limit and --restart-sec set them)"),
            "{w:?}{}",
            m.context()
        );
    }
}

#[test]
fn as_a_user_with_private_tmp_the_history_survives_in_the_dropins_folder() {
    let Some(m) = Manager::start_or_skip() else {
        return;
    };
    let log = run_as_nobody(&m, "private.service", &state_folder_lines(), 4);
    assert_fallback_said_once_per_start(&log, "private.service", &m);
    // The backoff went on across the restarts: the history was there at every start.
    for n in 2..=4 {
        assert!(
            log.contains(&format!("(backoff: {n} fast failures in a row)")),
            "{n}{}",
            m.context()
        );
    }
    // In the folder systemd made for gwshim, owned by the unit's user and kept after the stop.
    let file = m
        .runtime_dir()
        .join("gwshim-private/private.service.pacing");
    let meta = std::fs::metadata(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 65534);
}

/// The control: the same unit without the drop-in's folder loses its history at every start.
#[test]
fn as_a_user_with_private_tmp_the_history_is_lost_without_the_dropins_folder() {
    let Some(m) = Manager::start_or_skip() else {
        return;
    };
    let log = run_as_nobody(&m, "lost.service", "", 4);
    assert_fallback_said_once_per_start(&log, "lost.service", &m);
    assert!(!log.contains("fast failures in a row"), "{}", m.context());
}

// ---------------------------------------------------------------------------------------------
// 9. Unit names as the cgroup gives them, odd ones included, reach systemctl intact.

#[test]
fn odd_unit_names_are_asked_about_safely() {
    let Some(m) = Manager::start_or_skip() else {
        return;
    };
    // "_under.service" runs in the cgroup "__under.service" (systemd's cgroup escape).
    for name in ["-odd.service", "odd\\x2dname.service", "_under.service"] {
        // One start per 17 s: the first fast failure already waits for this unit's limit.
        let text = unit(
            "StartLimitBurst=1\nStartLimitIntervalSec=17",
            &format!("{GWSHIM} --backoff 0 -- /bin/sh -c 'exit 1'"),
            "Restart=on-failure\nRestartSec=700ms",
        );
        m.install_unit(name, &text);
        let mark = m.log_mark();
        m.systemctl_ok(&["start", "--", name]);
        m.wait_log(mark, "stays under StartLimitBurst=1/17s", 10 * SEC);
        m.systemctl_ok(&["stop", "--", name]);
        let log = m.log_since(mark);
        assert!(!log.contains("cannot read"), "{name}{}", m.context());
    }
}
