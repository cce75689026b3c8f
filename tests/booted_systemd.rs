//! gwshim and the Hermes gateway as users run them: a booted Debian container (systemd as pid 1,
//! tests/booted/mod.rs), hermes-agent 0.19.0, the unit `hermes gateway install [--system]`
//! writes, and gwshim's drop-in from `contrib/hermes/install-dropin.sh`. Every case runs on
//! Debian 12 (systemd 252) and Debian 13 (systemd 257): `NAME::debian12`, `NAME::debian13`.
//! Each case with gwshim has its control (the same unit, no drop-in) where the control shows
//! the failure. See docs/booted-systemd.md.
//!
//! Run only these: `cargo test --release --test booted_systemd` (as root; the first run builds
//! the two root file systems, about 4-6 minutes, cached in target/booted/).

mod booted;
mod skip;

use booted::{Container, HERMES_HOME, Scope, Suite, UNIT};
use std::time::{Duration, Instant};

/// How long a gateway may take to come back: the unit's RestartSec, gwshim's pacing wait (up
/// to the start-limit interval plus its margin) and the gateway's start-up.
const BACK_TIMEOUT: Duration = Duration::from_secs(150);
/// How long a start may take to give a gateway that is up (about a second here).
const UP_TIMEOUT: Duration = Duration::from_secs(60);
/// The start limits of the units from April 2026, when the gateway's unit failed for good.
const SEED_LIMITS: &str = "[Unit]\nStartLimitBurst=5\nStartLimitIntervalSec=60\n\
[Service]\nRestart=on-failure\nRestartSec=2\n";
/// How many times the seed case kills the gateway.
const SEED_KILLS: u32 = 8;
/// A unit counting the times it was started, for OnFailure=.
const ALERT_UNIT: &str = "gw-alert.service";
const ALERT_COUNT: &str = "/run/gw-alert.count";

/// Boots `suite`, or says why not (a skip; see tests/skip). systemd 257 cannot boot where the
/// host has no cgroup2 hierarchy at all: that host cannot run it, so that skip is always allowed.
fn boot(suite: Suite) -> Option<Container> {
    if suite == Suite::Trixie && !booted::host_has_cgroup2() {
        skip::skip_always_allowed(
            "systemd 257 needs the unified cgroup hierarchy (cgroup2), which this host does not mount",
        );
        return None;
    }
    match Container::boot(suite) {
        Ok(c) => Some(c),
        Err(why) => {
            skip::skip(&why);
            None
        }
    }
}

/// A container with the gateway's unit installed by hermes in `scope`, stopped, its failures
/// and the gateway's own restart ledger forgotten; with gwshim's drop-in when `gwshim`
/// (`gwshim_options` after its `--`).
fn installed(
    suite: Suite,
    scope: Scope,
    gwshim: bool,
    gwshim_options: &[&str],
) -> Option<Container> {
    let c = boot(suite)?;
    let t0 = Instant::now();
    let said = c.hermes_install(scope);
    eprintln!("hermes gateway install ({scope:?}):\n{said}");
    // hermes starts the unit it installed; the tests start it themselves.
    c.systemctl_ok(scope, &["stop", UNIT]);
    c.systemctl_ok(scope, &["reset-failed", UNIT]);
    c.reset_gateway_starts();
    if scope == Scope::System {
        assert_eq!(
            c.prop(scope, UNIT, "User"),
            booted::USER,
            "User= of the system unit"
        );
    }
    if gwshim {
        let said = c.install_dropin(scope, gwshim_options);
        eprintln!("install-dropin.sh: {said}");
        assert!(
            c.prop(scope, UNIT, "ExecStart").contains(booted::GWSHIM_IN),
            "the drop-in runs gwshim"
        );
    }
    eprintln!("installed in {:.1} s", t0.elapsed().as_secs_f64());
    Some(c)
}

/// What became of the unit after its gateway was killed.
enum After {
    /// A new gateway is up (its pid).
    Back(u32),
    /// The unit ended `failed` for good (not the passing failed step of an auto-restart).
    Failed(booted::UnitState),
}

/// Waits (bounded) until a gateway other than `old` is up, or the unit is `failed` for good.
fn after_kill(c: &Container, scope: Scope, old: u32) -> After {
    let found = c.poll(BACK_TIMEOUT, Duration::from_millis(200), |c| {
        let st = c.state(scope, UNIT);
        if st.active == "failed" && st.sub == "failed" {
            return Some(After::Failed(st));
        }
        c.gateway_up().filter(|&p| p != old).map(After::Back)
    });
    found.unwrap_or_else(|| {
        panic!(
            "no new gateway and no failed unit {BACK_TIMEOUT:?} after killing pid {old}: {:?}{}",
            c.state(scope, UNIT),
            c.context()
        )
    })
}

/// SIGKILLs the gateway `times` times, starting with `pid`, each time as soon as a new one is up
/// (its restart ledger cleared first, as in `seed`); panics if the unit fails. The last pid.
fn kill_until_back(c: &Container, scope: Scope, mut pid: u32, times: u32) -> u32 {
    for k in 1..=times {
        c.reset_gateway_starts();
        c.sh_ok(&format!("kill -KILL {pid}"));
        match after_kill(c, scope, pid) {
            After::Back(new) => pid = new,
            After::Failed(st) => panic!("the unit failed after kill {k}: {st:?}{}", c.context()),
        }
    }
    pid
}

/// `journalctl` for the gateway's unit in `scope`, with more ARGS.
fn unit_journal(c: &Container, scope: Scope, args: &str) -> String {
    match scope {
        Scope::System => c.journal(&format!("-u {UNIT} {args}")),
        // `--user-unit` as root matches root's own user units only.
        Scope::User => c.journal(&format!(
            "_SYSTEMD_USER_UNIT={UNIT} + USER_UNIT={UNIT} {args}"
        )),
    }
}

/// The seed, end to end: the seed-era limits by a drop-in, the gateway SIGKILLed as soon as it
/// is up, 8 times. Under gwshim the unit never ends `failed` and the gateway comes back every
/// time; without it (`gwshim` false) the unit is `failed` at the 5th kill.
///
/// The gateway's own ledger of its starts is cleared before each kill: from its 6th start in
/// 120 s it would sleep 10 s, 20 s, 40 s ... before starting, which is not what this is about.
/// gwshim's backoff for fast failures is capped at 5 s here (default 5 min, which would make 8
/// fast kills take 5 minutes; tests/pacing.rs tests it): the start limit is the seed.
fn seed(suite: Suite, scope: Scope, gwshim: bool) {
    let opts: &[&str] = &["--backoff", "1s:5s"];
    let Some(c) = installed(suite, scope, gwshim, opts) else {
        return;
    };
    c.write_dropin(scope, UNIT, "seed", SEED_LIMITS);
    let limits = c.show(
        scope,
        UNIT,
        &[
            "StartLimitBurst",
            "StartLimitIntervalUSec",
            "Restart",
            "RestartUSec",
        ],
    );
    assert_eq!(limits["StartLimitBurst"], "5", "{limits:?}");
    assert_eq!(limits["StartLimitIntervalUSec"], "1min", "{limits:?}");
    assert_eq!(limits["Restart"], "on-failure", "{limits:?}");

    let t0 = Instant::now();
    c.systemctl_ok(scope, &["start", UNIT]);
    let mut pid = c.wait_gateway_up(0, UP_TIMEOUT);
    for k in 1..=SEED_KILLS {
        c.reset_gateway_starts();
        c.sh_ok(&format!("kill -KILL {pid}"));
        match after_kill(&c, scope, pid) {
            After::Back(new) => {
                eprintln!(
                    "kill {k}: gateway {pid} -> {new} at {:.1} s",
                    t0.elapsed().as_secs_f64()
                );
                pid = new;
                assert!(
                    gwshim || k < 5,
                    "without gwshim the unit should be failed at the 5th kill, but gateway {new} is up"
                );
            }
            After::Failed(st) => {
                assert!(
                    !gwshim,
                    "under gwshim the unit failed after kill {k}: {st:?}{}",
                    c.context()
                );
                assert_eq!(k, 5, "the control failed at kill {k}, not the 5th: {st:?}");
                let j = unit_journal(&c, scope, "");
                assert!(
                    j.contains("Start request repeated too quickly"),
                    "the control failed, but not on the start limit:\n{j}"
                );
                eprintln!(
                    "control: failed at kill {k}, {:.1} s",
                    t0.elapsed().as_secs_f64()
                );
                return;
            }
        }
    }
    assert!(gwshim, "the control never failed");
    let st = c.wait_state(scope, UNIT, UP_TIMEOUT, |s| s.is_running());
    // gwshim waited for the unit's own limit, not systemd's default (5 per 10 s).
    let j = unit_journal(&c, scope, "");
    assert!(
        j.contains("stays under StartLimitBurst=5/60s"),
        "no wait for the unit's limit in the journal:\n{j}"
    );
    eprintln!(
        "gwshim: {SEED_KILLS} kills, the gateway back every time, {st:?}, {:.1} s",
        t0.elapsed().as_secs_f64()
    );
}

/// A system unit run as `User=hermes`, with limits that differ from systemd's defaults (3
/// starts per 30 s, RestartSec=500ms), `PrivateTmp=yes` when `private_tmp`: gwshim reads the
/// unit's limits with the user's rights, keeps its pacing history across the unit's restarts,
/// and waits so the 4th fast start stays within the limit (its wait line names 3/30s).
fn user_limits(suite: Suite, private_tmp: bool) {
    let Some(c) = installed(suite, Scope::System, true, &[]) else {
        return;
    };
    let mut limits = "[Unit]\nStartLimitBurst=3\nStartLimitIntervalSec=30\n\
        [Service]\nRestart=on-failure\nRestartSec=500ms\n"
        .to_string();
    if private_tmp {
        limits.push_str("PrivateTmp=yes\n");
    }
    c.write_dropin(Scope::System, UNIT, "limits", &limits);
    let t0 = Instant::now();
    c.systemctl_ok(Scope::System, &["start", UNIT]);
    let pid = c.wait_gateway_up(0, UP_TIMEOUT);
    kill_until_back(&c, Scope::System, pid, 3);
    let j = unit_journal(&c, Scope::System, "");
    assert!(
        j.contains("stays under StartLimitBurst=3/30s"),
        "no wait for the unit's own limit (PrivateTmp={private_tmp}):\n{j}"
    );
    // The 4th start waited for the window: it came at least 30 s after the first.
    assert!(
        t0.elapsed() >= Duration::from_secs(30),
        "4 starts within {:?}",
        t0.elapsed()
    );
    c.wait_state(Scope::System, UNIT, UP_TIMEOUT, |s| s.is_running());
}

/// A system unit run as `User=hermes` whose user cannot reach the manager (`/run/dbus`
/// inaccessible, as hardened units have it): gwshim cannot read the unit's limits, says so once
/// per start at warning priority, naming the unit, and falls back to systemd's defaults.
fn user_query_refused(suite: Suite) {
    let Some(c) = installed(suite, Scope::System, true, &[]) else {
        return;
    };
    c.write_dropin(
        Scope::System,
        UNIT,
        "nobus",
        "[Unit]\nStartLimitBurst=20\nStartLimitIntervalSec=30\n\
         [Service]\nRestart=on-failure\nRestartSec=500ms\nInaccessiblePaths=/run/dbus\n",
    );
    c.systemctl_ok(Scope::System, &["start", UNIT]);
    let pid = c.wait_gateway_up(0, UP_TIMEOUT);
    kill_until_back(&c, Scope::System, pid, 2);
    let warnings = unit_journal(&c, Scope::System, "-p warning");
    let said = warnings
        .lines()
        .filter(|l| {
            l.contains(&format!(
                "gwshim: warning: cannot read the limits of {UNIT}"
            ))
        })
        .count();
    assert_eq!(said, 3, "one warning per start (3 starts):\n{warnings}");
    assert!(
        warnings.contains("assuming systemd's defaults, 5 starts per 10 s"),
        "{warnings}"
    );
}

/// `systemctl reload` (a new gateway pid, the unit active), `systemctl stop` (inactive, nothing
/// of the gateway left), then stale pid files cleaned and the next `systemctl start` up at once;
/// `journalctl -p warning` shows gwshim's warnings and not its other lines.
fn reload_stop_start(suite: Suite) {
    let Some(c) = installed(suite, Scope::System, true, &[]) else {
        return;
    };
    // A state folder the unit's user cannot use: gwshim warns (and runs without pacing state).
    c.sh_ok("mkdir -m 0700 -p /var/lib/gw-root-only");
    c.write_dropin(
        Scope::System,
        UNIT,
        "state",
        "[Service]\nEnvironment=GWSHIM_STATE_DIR=/var/lib/gw-root-only/x\n",
    );
    c.systemctl_ok(Scope::System, &["start", UNIT]);
    let first = c.wait_gateway_up(0, UP_TIMEOUT);
    let main = c.state(Scope::System, UNIT).main_pid;
    assert_ne!(main, first, "gwshim, not the gateway, is the main pid");

    c.systemctl_ok(Scope::System, &["reload", UNIT]);
    let second = c.wait_gateway_up(first, BACK_TIMEOUT);
    let st = c.wait_state(Scope::System, UNIT, UP_TIMEOUT, |s| s.is_running());
    assert!(!c.alive(first), "the old gateway {first} is gone");
    eprintln!("reload: gateway {first} -> {second}, {st:?}");

    let cgroup = format!("/sys/fs/cgroup/system.slice/{UNIT}/cgroup.procs");
    assert!(
        !c.read(&cgroup).trim().is_empty(),
        "no processes in {cgroup} while the unit runs"
    );
    c.systemctl_ok(Scope::System, &["stop", UNIT]);
    let st = c.state(Scope::System, UNIT);
    assert_eq!(st.active, "inactive", "after stop: {st:?}");
    let left = c.processes("gateway run");
    assert!(left.is_empty(), "left after stop: {left:?}");
    let procs = c.read(&cgroup);
    assert!(
        procs.trim().is_empty(),
        "processes left in the unit's cgroup: {procs}"
    );

    // A gateway.pid naming a pid nobody has, and an unheld gateway.lock: what SIGKILL leaves.
    let dead = 4_000_000u32 - 1;
    let stale = format!(
        "{{\"pid\": {dead}, \"kind\": \"hermes-gateway\", \"argv\": [\"hermes\", \"gateway\", \"run\"], \"start_time\": 1}}"
    );
    c.write(&format!("{HERMES_HOME}/gateway.pid"), &stale);
    c.write(&format!("{HERMES_HOME}/gateway.lock"), &stale);
    c.sh_ok(&format!(
        "chown hermes:hermes {HERMES_HOME}/gateway.pid {HERMES_HOME}/gateway.lock"
    ));
    let t0 = Instant::now();
    c.systemctl_ok(Scope::System, &["start", UNIT]);
    let third = c.wait_gateway_up(second, UP_TIMEOUT);
    let took = t0.elapsed();
    assert!(
        took < Duration::from_secs(20),
        "the start after a stop took {took:?}: gwshim should not wait before a start"
    );
    let j = unit_journal(&c, Scope::System, "");
    assert!(
        j.contains(&format!("removed stale {HERMES_HOME}/gateway.pid")),
        "gwshim did not clean the stale pid file:\n{j}"
    );
    eprintln!(
        "start after stop: gateway {third} up in {:.1} s",
        took.as_secs_f64()
    );

    let warnings = unit_journal(&c, Scope::System, "-p warning");
    assert!(
        warnings.contains("gwshim: warning:") && warnings.contains("/var/lib/gw-root-only"),
        "gwshim's warning is not in journalctl -p warning:\n{warnings}"
    );
    assert!(
        !warnings.contains("removed stale"),
        "an info line of gwshim came out at warning priority:\n{warnings}"
    );
}

/// What fires OnFailure= for the gateway's unit: a planned restart (`systemctl reload`: the
/// gateway exits 75), a crash (SIGKILL of the gateway), a stop. With gwshim's drop-in a planned
/// restart is never a failure and a stop neither; a crash is one where systemd says so for an
/// automatic restart (from 254; on 252 only a unit that ends failed fires OnFailure=). The
/// control (no drop-in): on 257 the planned restart fires it (hermes-agent #104251), as does the
/// crash; on 252 neither.
fn on_failure(suite: Suite, gwshim: bool) {
    let Some(c) = installed(suite, Scope::System, gwshim, &[]) else {
        return;
    };
    c.write(
        &format!("/etc/systemd/system/{ALERT_UNIT}"),
        &format!("[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo fired >> {ALERT_COUNT}'\n"),
    );
    c.write_dropin(
        Scope::System,
        UNIT,
        "alert",
        &format!("[Unit]\nOnFailure={ALERT_UNIT}\n[Service]\nRestartSec=500ms\n"),
    );
    let fired = |c: &Container| c.read(ALERT_COUNT).lines().count();
    // OnFailure= units are started asynchronously: give one time to run before counting.
    let settle = |c: &Container| {
        std::thread::sleep(Duration::from_secs(2));
        fired(c)
    };
    let newer = suite.systemd() >= 254;
    let planned_fires = !gwshim && newer;

    c.systemctl_ok(Scope::System, &["start", UNIT]);
    let first = c.wait_gateway_up(0, UP_TIMEOUT);

    c.systemctl_ok(Scope::System, &["reload", UNIT]);
    let second = c.wait_gateway_up(first, BACK_TIMEOUT);
    let n = settle(&c);
    assert_eq!(
        n,
        usize::from(planned_fires),
        "OnFailure= after a planned restart (systemd {}, gwshim: {gwshim}){}",
        suite.systemd(),
        c.context()
    );
    c.reset_gateway_starts();
    c.sh_ok(&format!("kill -KILL {second}"));
    let third = c.wait_gateway_up(second, BACK_TIMEOUT);
    let n = settle(&c) - usize::from(planned_fires);
    assert_eq!(
        n,
        usize::from(newer),
        "OnFailure= after a crash (systemd {}): a crash is a failure where systemd reports one \
         for an automatic restart{}",
        suite.systemd(),
        c.context()
    );
    eprintln!("crash: gateway {second} -> {third}, OnFailure= fired {n} times");
    if !gwshim {
        // Without gwshim the gateway exits 1 on the SIGTERM of a stop once it is fully up (the
        // unit then ends failed and fires OnFailure=), 0 while still starting: not asserted.
        return;
    }

    c.systemctl_ok(Scope::System, &["stop", UNIT]);
    let after_stop = settle(&c);
    assert_eq!(after_stop, n, "OnFailure= after a stop");
    assert_eq!(c.state(Scope::System, UNIT).active, "inactive");
}

/// RestartSteps=/RestartMaxDelaySec= (systemd 254+): systemd grows the restart delay itself, and
/// gwshim reads it and does not stack its own backoff on top: its waits are for the start limit
/// only. On 252 the keys are unknown and ignored.
fn restart_steps(suite: Suite) {
    let Some(c) = installed(suite, Scope::System, true, &[]) else {
        return;
    };
    c.write_dropin(
        Scope::System,
        UNIT,
        "steps",
        "[Unit]\nStartLimitBurst=20\nStartLimitIntervalSec=60\n\
         [Service]\nRestart=on-failure\nRestartSec=500ms\nRestartSteps=3\nRestartMaxDelaySec=4s\n",
    );
    if suite.systemd() < 254 {
        assert_eq!(
            c.prop(Scope::System, UNIT, "RestartSteps"),
            "",
            "252 has no RestartSteps="
        );
    } else {
        assert_eq!(c.prop(Scope::System, UNIT, "RestartSteps"), "3");
    }
    c.systemctl_ok(Scope::System, &["start", UNIT]);
    let pid = c.wait_gateway_up(0, UP_TIMEOUT);
    kill_until_back(&c, Scope::System, pid, 4);
    let j = unit_journal(&c, Scope::System, "");
    if suite.systemd() >= 254 {
        assert!(
            !j.contains("(backoff:"),
            "gwshim backed off on top of systemd's RestartSteps=:\n{j}"
        );
    } else {
        assert!(
            j.contains("(backoff:"),
            "on 252 gwshim's own backoff should have worked:\n{j}"
        );
    }
}

/// The unit hermes writes when its watchdog is on (`gateway: systemd_watchdog_seconds: N` in
/// config.yaml, then `hermes gateway install --system`): `Type=notify`, `NotifyAccess=main`,
/// `WatchdogSec=Ns`. The watchdog's interval here.
const WATCHDOG_SECONDS: u32 = 4;
/// How many times the watchdog case kills the gateway: enough for gwshim's waits (its backoff
/// capped at 8 s, and the start limit's, up to a minute) to outgrow the unit's WatchdogSec= and
/// TimeoutStopSec=.
const WATCHDOG_KILLS: u32 = 10;

/// The seed's `kill -9` rounds with hermes' notify/watchdog unit, the seed-era limits and a
/// short `TimeoutStopSec=5s` (hermes writes 60 s, which outlasts most waits). Under gwshim the
/// unit never ends `failed`, no "Watchdog timeout" or other timer of systemd's fires on gwshim
/// while it waits, and the journal at `-p warning` holds nothing of gwshim's doing but its own
/// line for each crash; the control (no drop-in) is `failed` at the 5th kill.
fn seed_watchdog(suite: Suite, gwshim: bool) {
    let Some(c) = boot(suite) else {
        return;
    };
    c.write(
        &format!("{HERMES_HOME}/config.yaml"),
        &format!("gateway:\n  systemd_watchdog_seconds: {WATCHDOG_SECONDS}\n"),
    );
    // As `hermes_install` does, but the start hermes makes at the end fails here (a notify
    // unit's start waits for READY=1, and the start dies first of what root left in ~/.hermes,
    // given back to the user just after), so hermes exits 1.
    let user = booted::USER;
    let said = c.sh_ok(&format!(
        "SUDO_USER={user} hermes gateway install --system 2>&1; chown -R {user}:{user} /home/{user}"
    ));
    eprintln!("hermes gateway install --system:\n{said}");
    c.systemctl_ok(Scope::System, &["stop", UNIT]);
    c.systemctl_ok(Scope::System, &["reset-failed", UNIT]);
    c.reset_gateway_starts();
    let written = c.show(
        Scope::System,
        UNIT,
        &["Type", "NotifyAccess", "WatchdogUSec"],
    );
    assert_eq!(written["Type"], "notify", "{written:?}");
    assert_eq!(written["NotifyAccess"], "main", "{written:?}");
    assert_eq!(
        written["WatchdogUSec"],
        format!("{WATCHDOG_SECONDS}s"),
        "{written:?}"
    );
    if gwshim {
        eprintln!(
            "{}",
            c.install_dropin(Scope::System, &["--backoff", "1s:8s"])
        );
    }
    c.write_dropin(
        Scope::System,
        UNIT,
        "seed",
        &format!("{SEED_LIMITS}TimeoutStopSec=5s\n"),
    );
    // The start hermes made at its install failed: only what comes after counts.
    let earlier = unit_journal(&c, Scope::System, "-p warning")
        .lines()
        .count();
    let t0 = Instant::now();
    c.systemctl_ok(Scope::System, &["start", UNIT]);
    let mut pid = c.wait_gateway_up(0, UP_TIMEOUT);
    for k in 1..=WATCHDOG_KILLS {
        // Killed after its READY=1, as the gateway that was up and then crashed: its state
        // file says running a moment before.
        c.wait_state(Scope::System, UNIT, UP_TIMEOUT, |s| s.is_running());
        c.reset_gateway_starts();
        c.sh_ok(&format!("kill -KILL {pid}"));
        match after_kill(&c, Scope::System, pid) {
            After::Back(new) => {
                eprintln!(
                    "kill {k}: gateway {pid} -> {new} at {:.1} s",
                    t0.elapsed().as_secs_f64()
                );
                assert!(gwshim || k < 5, "the control is up after kill {k}");
                pid = new;
            }
            After::Failed(st) => {
                assert!(!gwshim, "failed after kill {k}: {st:?}{}", c.context());
                assert_eq!(k, 5, "the control failed at kill {k}: {st:?}");
                let j = unit_journal(&c, Scope::System, "");
                assert!(j.contains("Start request repeated too quickly"), "{j}");
                return;
            }
        }
    }
    assert!(gwshim, "the control never failed");
    c.wait_state(Scope::System, UNIT, UP_TIMEOUT, |s| s.is_running());
    let j = unit_journal(&c, Scope::System, "");
    for fired in [
        "Watchdog timeout",
        "timed out",
        "Killing process",
        "SIGABRT",
    ] {
        assert!(!j.contains(fired), "{fired:?} in the journal:\n{j}");
    }
    // gwshim waited longer than WatchdogSec= and TimeoutStopSec=, for the unit's own limit.
    assert!(j.contains("stays under StartLimitBurst=5/60s"), "{j}");
    // Each crash gives gwshim's line for it and systemd's for the failed run (the drop-in's
    // restart status is a failure: a crash stays one); nothing else.
    let warnings = unit_journal(&c, Scope::System, "-p warning");
    for line in warnings.lines().skip(earlier) {
        assert!(
            (line.starts_with("gwshim: warning: child pid ")
                && line.contains(" was killed by SIGKILL; exiting "))
                || line == format!("{UNIT}: Failed with result 'exit-code'."),
            "a warning of gwshim's doing: {line:?}\n{warnings}"
        );
    }
    eprintln!(
        "gwshim: {WATCHDOG_KILLS} kills of the notify/watchdog unit in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
}

/// The timers gwshim holds off during a wait, on both versions, with the harness' notify
/// stand-in (tests/systemd_harness/notify-stand-in.py), two units at once, each failing 3 times
/// fast, then staying up; limits of 2 starts per 8 s, so gwshim (`--backoff 0`) waits about 8 s,
/// longer than each unit's 2 s timer: `Type=notify` with `TimeoutStartSec=2s` that fails before
/// READY=1, and `Type=exec` with `WatchdogSec=2s` and the relay off (`--no-notify-relay`,
/// `NotifyAccess=all`: the child feeds the watchdog itself). Neither unit fails, and no timer of
/// systemd's fires.
fn timers_hold(suite: Suite) {
    let Some(c) = boot(suite) else {
        return;
    };
    let script = "/usr/local/share/gwshim-test/notify-stand-in.py";
    c.write(script, include_str!("systemd_harness/notify-stand-in.py"));
    let units = [
        (
            "st.service",
            "before-ready",
            "Type=notify\nTimeoutStartSec=2s",
            "",
        ),
        (
            "ex.service",
            "watchdog",
            "Type=exec\nNotifyAccess=all\nWatchdogSec=2s",
            "--no-notify-relay ",
        ),
    ];
    for (name, shape, lines, opts) in units {
        c.sh_ok(&format!("mkdir -p /run/{name}"));
        c.write(
            &format!("/etc/systemd/system/{name}"),
            &format!(
                "[Unit]\nStartLimitBurst=2\nStartLimitIntervalSec=8\n[Service]\n\
                 ExecStart={} {opts}--backoff 0 -- /usr/bin/python3 {script} /run/{name} 3 {shape}\n\
                 Restart=on-failure\nRestartSec=500ms\nTimeoutStopSec=5s\n{lines}\n",
                booted::GWSHIM_IN
            ),
        );
    }
    c.systemctl_ok(Scope::System, &["daemon-reload"]);
    for (name, ..) in units {
        c.systemctl_ok(Scope::System, &["start", "--no-block", name]);
    }
    for (name, ..) in units {
        // The 4th start is the one that stays up: about 10 s.
        c.wait_until(&format!("{name} up"), Duration::from_secs(40), |c| {
            let st = c.state(Scope::System, name);
            assert!(!st.is_failed(), "{name}: {st:?}{}", c.context());
            let up = c.read(&format!("/run/{name}/events")).contains("up 4 ");
            (up && st.is_running()).then_some(())
        });
        let j = c.journal(&format!("-u {name}"));
        for fired in ["Watchdog timeout", "timed out", "Killing process"] {
            assert!(!j.contains(fired), "{name}: {fired:?}:\n{j}");
        }
        assert!(
            j.contains(&format!("so {name} stays under StartLimitBurst=2/8s")),
            "{name}: no wait:\n{j}"
        );
    }
}

/// One case on both versions: `CASE::debian12` and `CASE::debian13`. Named so, the two run side
/// by side (cargo runs tests in name order, and one container per version may run at a time).
macro_rules! case {
    ($name:ident, $run:expr) => {
        mod $name {
            use super::*;

            #[test]
            fn debian12() {
                let run: fn(Suite) = $run;
                run(Suite::Bookworm);
            }
            #[test]
            fn debian13() {
                let run: fn(Suite) = $run;
                run(Suite::Trixie);
            }
        }
    };
}

case!(seed_system_unit_under_gwshim, |s| seed(
    s,
    Scope::System,
    true
));
case!(seed_system_unit_control, |s| seed(s, Scope::System, false));
case!(seed_user_unit_under_gwshim, |s| seed(s, Scope::User, true));
case!(seed_user_unit_control, |s| seed(s, Scope::User, false));
case!(reload_stop_start_and_journal_warnings, reload_stop_start);
case!(system_unit_as_user_keeps_its_own_limits, |s| user_limits(
    s, false
));
case!(system_unit_as_user_with_private_tmp_keeps_its_pacing, |s| {
    user_limits(s, true)
});
case!(
    system_unit_as_user_that_cannot_ask_falls_back_and_says_so,
    user_query_refused
);
case!(on_failure_planned_restart_crash_stop, |s| on_failure(
    s, true
));
case!(on_failure_control, |s| on_failure(s, false));
case!(restart_steps_are_not_stacked_with_backoff, restart_steps);
case!(seed_watchdog_unit_under_gwshim, |s| seed_watchdog(s, true));
case!(seed_watchdog_unit_control, |s| seed_watchdog(s, false));
case!(timers_hold_off_gwshim_while_it_waits, timers_hold);
