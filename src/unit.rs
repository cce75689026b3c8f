//! The systemd unit gwshim runs in, if any, and the settings of it that pacing needs.

use crate::timespan;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use std::io::Read;
use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How systemd would treat an exit: systemd.service(5), Restart= and friends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restart {
    No,
    Always,
    OnSuccess,
    OnFailure,
    /// on-abnormal, on-abort, on-watchdog: never for an exit status.
    OnlyAbnormal,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub restart: Restart,
    pub force_status: Vec<i32>,
    pub prevent_status: Vec<i32>,
    pub burst: u32,
    /// Zero: no start limit.
    pub interval: Duration,
    pub restart_sec: Duration,
}

impl Default for Settings {
    /// What gwshim assumes when it cannot ask: systemd's default start limit, and a unit
    /// that restarts on failure but not on the fatal-config status.
    fn default() -> Self {
        Settings {
            restart: Restart::OnFailure,
            force_status: vec![75],
            prevent_status: vec![78],
            burst: 5,
            interval: Duration::from_secs(10),
            restart_sec: Duration::from_millis(100),
        }
    }
}

/// Whether systemd starts the unit again after gwshim exits with `status`.
pub fn will_restart(status: i32, s: &Settings) -> bool {
    if s.prevent_status.contains(&status) {
        return false;
    }
    if s.force_status.contains(&status) {
        return true;
    }
    match s.restart {
        Restart::Always => true,
        Restart::OnSuccess => status == 0,
        Restart::OnFailure => status != 0,
        Restart::No | Restart::OnlyAbnormal => false,
    }
}

/// The unit that holds this process: the last `.service` in its cgroup path
/// (the unified hierarchy's line first, then systemd's v1 one).
pub fn unit_from_cgroup(text: &str) -> Option<String> {
    let path_of = |prefix: &str| {
        text.lines().find_map(|l| {
            l.split_once(':')
                .and_then(|(_, rest)| rest.strip_prefix(prefix))
        })
    };
    let path = path_of(":").or_else(|| path_of("name=systemd:"))?;
    path.rsplit('/')
        .find(|c| c.ends_with(".service"))
        .map(str::to_string)
}

/// The unit gwshim runs in, when systemd started it (INVOCATION_ID is set for unit
/// processes) and the cgroup names a service. `user` is true under a user manager.
pub fn current() -> Option<(String, bool)> {
    std::env::var_os("INVOCATION_ID")?;
    let unit = unit_from_cgroup(&std::fs::read_to_string("/proc/self/cgroup").ok()?)?;
    // systemd sets MANAGERPID only for the processes of a user manager.
    Some((unit, std::env::var_os("MANAGERPID").is_some()))
}

const PROPERTIES: [&str; 6] = [
    "Restart",
    "RestartForceExitStatus",
    "RestartPreventExitStatus",
    "StartLimitBurst",
    "StartLimitIntervalUSec",
    "RestartUSec",
];

/// Reads the unit's settings from `systemctl show`, within `timeout`.
pub fn query(unit: &str, user: bool, timeout: Duration) -> Result<Settings, String> {
    let mut cmd = Command::new("systemctl");
    if user {
        cmd.arg("--user");
    }
    cmd.args(["show", "--", unit]);
    for p in PROPERTIES {
        cmd.arg(format!("--property={p}"));
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run systemctl: {e}"))?;
    let output = child
        .stdout
        .take()
        .ok_or_else(|| "no pipe from systemctl".to_string())
        .and_then(|out| read_until(out, Instant::now() + timeout));
    if output.is_err() {
        let _ = child.kill();
    }
    let status = child.wait().map_err(|e| format!("systemctl: {e}"))?;
    let text = output?;
    if !status.success() {
        return Err(format!("systemctl show {unit} failed ({status})"));
    }
    parse_show(&text)
}

/// Reads a pipe to its end, giving up at `deadline`. It does not touch the signalfd, so
/// signals for the child stay pending meanwhile.
fn read_until(mut pipe: std::process::ChildStdout, deadline: Instant) -> Result<String, String> {
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms =
            PollTimeout::try_from(left.as_millis().min(60_000) as i32).unwrap_or(PollTimeout::ZERO);
        let ready = {
            let mut fds = [PollFd::new(pipe.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, ms) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(format!("waiting for systemctl: {e}")),
            }
        };
        if ready == 0 && left.is_zero() {
            return Err("systemctl did not answer in time".into());
        }
        if ready == 0 {
            continue;
        }
        match pipe.read(&mut buf) {
            Ok(0) => {
                return String::from_utf8(text).map_err(|_| "systemctl wrote non-UTF-8".into());
            }
            Ok(n) => text.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("reading systemctl's output: {e}")),
        }
    }
}

/// Parses `systemctl show` output (Key=Value lines).
pub fn parse_show(text: &str) -> Result<Settings, String> {
    let mut s = Settings::default();
    let mut seen = 0;
    for (key, value) in text.lines().filter_map(|l| l.split_once('=')) {
        let bad = || format!("systemctl show: unexpected {key}={value}");
        match key {
            "Restart" => {
                s.restart = match value {
                    "no" => Restart::No,
                    "always" => Restart::Always,
                    "on-success" => Restart::OnSuccess,
                    "on-failure" => Restart::OnFailure,
                    "on-abnormal" | "on-abort" | "on-watchdog" => Restart::OnlyAbnormal,
                    _ => return Err(bad()),
                }
            }
            // Lists may also name signals ("75 SIGUSR1"); only statuses matter here.
            "RestartForceExitStatus" => s.force_status = statuses(value),
            "RestartPreventExitStatus" => s.prevent_status = statuses(value),
            "StartLimitBurst" => s.burst = value.parse().map_err(|_| bad())?,
            "StartLimitIntervalUSec" => s.interval = timespan::parse(value).ok_or_else(bad)?,
            "RestartUSec" => s.restart_sec = timespan::parse(value).ok_or_else(bad)?,
            _ => continue,
        }
        seen += 1;
    }
    if seen < PROPERTIES.len() {
        return Err("systemctl show: missing properties".into());
    }
    Ok(s)
}

fn statuses(value: &str) -> Vec<i32> {
    value
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_unit_in_cgroup_files() {
        let table: &[(&str, Option<&str>)] = &[
            (
                "0::/system.slice/hermes-gateway.service\n",
                Some("hermes-gateway.service"),
            ),
            (
                "0::/user.slice/user-1000.slice/user@1000.service/app.slice/hermes-gateway.service\n",
                Some("hermes-gateway.service"),
            ),
            (
                "12:pids:/\n1:name=systemd:/t/app.slice/seed.service\n0::/t/app.slice/seed.service\n",
                Some("seed.service"),
            ),
            (
                "1:name=systemd:/system.slice/foo.service\n",
                Some("foo.service"),
            ),
            ("0::/user.slice/user-0.slice/session-3.scope\n", None),
            ("0::/\n", None),
            ("", None),
        ];
        for &(text, want) in table {
            assert_eq!(unit_from_cgroup(text).as_deref(), want, "{text:?}");
        }
    }

    #[test]
    fn parses_systemctl_show() {
        let text = "Restart=on-failure\nRestartForceExitStatus=75 SIGUSR1\nRestartPreventExitStatus=78\n\
                    StartLimitBurst=5\nStartLimitIntervalUSec=10min\nRestartUSec=100ms\n";
        let s = parse_show(text).unwrap();
        assert_eq!(s.restart, Restart::OnFailure);
        assert_eq!(s.force_status, vec![75]);
        assert_eq!(s.prevent_status, vec![78]);
        assert_eq!(s.burst, 5);
        assert_eq!(s.interval, Duration::from_secs(600));
        assert_eq!(s.restart_sec, Duration::from_millis(100));
        let zero = text.replace("10min", "0").replace("on-failure", "always");
        assert_eq!(parse_show(&zero).unwrap().interval, Duration::ZERO);
        assert!(parse_show("Restart=sometimes\n").is_err());
        assert!(
            parse_show("Restart=always\n").is_err(),
            "missing properties"
        );
    }

    #[test]
    fn knows_when_systemd_restarts() {
        let on_failure = Settings::default();
        let always = Settings {
            restart: Restart::Always,
            force_status: vec![],
            ..Settings::default()
        };
        let no = Settings {
            restart: Restart::No,
            ..Settings::default()
        };
        let table: &[(i32, &Settings, bool)] = &[
            (75, &on_failure, true),
            (1, &on_failure, true),
            (0, &on_failure, false),
            (78, &on_failure, false),
            (0, &always, true),
            (78, &always, false),
            (75, &no, true),
            (1, &no, false),
        ];
        for &(status, settings, want) in table {
            assert_eq!(
                will_restart(status, settings),
                want,
                "{status} {:?}",
                settings.restart
            );
        }
    }
}
