//! The systemd unit gwshim runs in, if any, and the settings of it that pacing needs.

use crate::timespan;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
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
    /// RestartSteps= (systemd 254+; 0 where unknown): RestartSec grows to RestartMaxDelaySec
    /// over this many restarts.
    pub restart_steps: u32,
    /// RestartMaxDelaySec= (systemd 254+); None: infinity (no growth) or unknown.
    pub restart_max_delay: Option<Duration>,
    /// RestartUSecNext (systemd 257+): the delay systemd will use before the next restart.
    pub restart_next: Option<Duration>,
    /// NRestarts when gwshim started: 0 after a start an operator asked for (systemd resets
    /// it on every start that is not an automatic restart). None: unknown.
    pub n_restarts: Option<u32>,
    /// NotifyAccess= (none, main, exec, all), for the notify relay. None: unknown.
    pub notify_access: Option<String>,
    /// StartLimitIntervalSec=infinity (or past 136 years): systemd allows `burst` starts
    /// until `reset-failed`, whatever anyone waits. `interval` is zero then.
    pub interval_forever: bool,
    /// MainPID= when gwshim asked (None: not asked).
    pub main_pid: Option<u32>,
    /// The unit has an `ExecStartPre=` or `ExecCondition=` whose failure fails the start
    /// (no `-` prefix): a start that uses a slot of the start limit without gwshim running.
    pub pre_can_fail: bool,
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
            restart_steps: 0,
            restart_max_delay: None,
            restart_next: None,
            n_restarts: None,
            notify_access: None,
            interval_forever: false,
            main_pid: None,
            pre_can_fail: false,
        }
    }
}

impl Settings {
    /// Whether systemd itself makes the delay between restarts grow (RestartSteps= and
    /// RestartMaxDelaySec=, systemd 254+), in which case gwshim adds no backoff of its own.
    /// The conditions are systemd's own (service_restart_usec_next in src/core/service.c).
    pub fn systemd_backs_off(&self) -> bool {
        self.restart_steps > 0
            && !self.restart_sec.is_zero()
            && self
                .restart_max_delay
                .is_some_and(|max| max > self.restart_sec)
    }

    /// The delay systemd will wait before the restart that follows this run: RestartUSecNext
    /// where systemd says it (257+), else computed as systemd does from NRestarts:
    /// RestartSec * (max / RestartSec) ^ (n / steps), RestartMaxDelaySec from step `steps` on.
    pub fn next_restart_delay(&self) -> Duration {
        if let Some(next) = self.restart_next {
            return next;
        }
        let (Some(max), Some(n)) = (self.restart_max_delay, self.n_restarts) else {
            return self.restart_sec;
        };
        if !self.systemd_backs_off() || n == 0 {
            return self.restart_sec;
        }
        if n >= self.restart_steps {
            return max;
        }
        let r0 = self.restart_sec.as_secs_f64();
        let ratio = max.as_secs_f64() / r0;
        let next = r0 * ratio.powf(f64::from(n) / f64::from(self.restart_steps));
        Duration::try_from_secs_f64(next)
            .unwrap_or(max)
            .clamp(self.restart_sec, max)
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

/// The unit that holds this process: the service named by the cgroup path (the unified
/// hierarchy's line first, then systemd's v1 one), unescaped. The unit that holds a process
/// is the deepest component with a unit type; only folders without one (a service's own
/// sub-cgroups under `Delegate=`) may lie below it. A `.scope` or `.slice` there is no
/// service: a terminal of a desktop session lives in a scope under `user@UID.service`,
/// which is not its unit.
pub fn unit_from_cgroup(text: &str) -> Option<String> {
    let path_of = |prefix: &str| {
        text.lines().find_map(|l| {
            l.split_once(':')
                .and_then(|(_, rest)| rest.strip_prefix(prefix))
        })
    };
    let path = path_of(":").or_else(|| path_of("name=systemd:"))?;
    const TYPES: [&str; 6] = [".service", ".scope", ".slice", ".socket", ".mount", ".swap"];
    path.rsplit('/')
        .find(|c| TYPES.iter().any(|t| c.ends_with(t)))
        .filter(|c| c.ends_with(".service"))
        // systemd prefixes a cgroup name with '_' when the unit name starts with '_' or '.'
        // or could be taken for a kernel file (cg_escape); cg_unescape drops one.
        .map(|c| c.strip_prefix('_').unwrap_or(c).to_string())
}

/// Whether this process is the unit's main process, the one systemd restarts the unit
/// after: `MainPID=` names it. Anything else in the unit's cgroup (a command the gateway
/// runs, a shell an operator opened inside it) inherited INVOCATION_ID but speaks for no
/// unit. An unknown MainPID (a manager that would not answer) leaves the cgroup's word.
pub fn is_main_process(s: &Settings, own_pid: u32) -> bool {
    s.main_pid.is_none_or(|pid| pid == own_pid)
}

/// Whether `name` is a unit name systemd could have made (unit_name_is_valid): at most 255
/// characters from [A-Za-z0-9:_.\@-], ending in a type suffix. Anything else from a cgroup
/// is not passed to systemctl, which would mangle it and answer about another name.
pub fn is_valid_unit_name(name: &str) -> bool {
    name.len() <= 255
        && name
            .rsplit_once('.')
            .is_some_and(|(stem, suffix)| !stem.is_empty() && !suffix.is_empty())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ":-_.\\@".contains(c))
}

/// The unit gwshim runs in, when systemd started it (INVOCATION_ID is set for unit
/// processes) and the cgroup names a service. `user` is true under a user manager.
pub fn current() -> Option<(String, bool)> {
    std::env::var_os("INVOCATION_ID")?;
    let unit = unit_from_cgroup(&std::fs::read_to_string("/proc/self/cgroup").ok()?)?;
    // systemd sets MANAGERPID only for the processes of a user manager.
    Some((unit, std::env::var_os("MANAGERPID").is_some()))
}

/// Read from every unit: the answer must hold them all.
const REQUIRED: [&str; 10] = [
    "Id",
    "LoadState",
    "Restart",
    "RestartForceExitStatus",
    "RestartPreventExitStatus",
    "StartLimitBurst",
    "StartLimitIntervalUSec",
    "RestartUSec",
    "NRestarts",
    "MainPID",
];
/// Only from systemd 254 (RestartUSecNext: 257); older managers leave them out of the answer.
/// ExecStartPre= and ExecCondition= appear once per command, and not at all when there is none.
const OPTIONAL: [&str; 5] = [
    "RestartSteps",
    "RestartMaxDelayUSec",
    "RestartUSecNext",
    "ExecStartPre",
    "ExecCondition",
];
/// For the notify relay (src/notify.rs): who may speak for the unit.
const RELAY: [&str; 1] = ["NotifyAccess"];

/// The argv of the query: every option before `--`, then the unit as one argument, so a
/// name that starts with '-' is a name, and systemctl answers about exactly one unit.
pub fn query_argv(unit: &str, user: bool) -> Vec<String> {
    let mut argv = vec!["systemctl".to_string()];
    if user {
        argv.push("--user".into());
    }
    argv.extend(["show".into(), "--no-pager".into()]);
    argv.push(format!(
        "--property={}",
        [&REQUIRED[..], &OPTIONAL[..], &RELAY[..]]
            .concat()
            .join(",")
    ));
    argv.extend(["--".into(), unit.into()]);
    argv
}

/// Reads the unit's settings from `systemctl show`, within `timeout`, with this process's
/// rights (a system unit's `User=`: systemctl then asks over D-Bus). The error says why
/// there is no usable answer.
pub fn query(unit: &str, user: bool, timeout: Duration) -> Result<Settings, String> {
    if !is_valid_unit_name(unit) {
        return Err(format!("{unit:?} is not a valid unit name"));
    }
    let argv = query_argv(unit, user);
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run systemctl: {e}"))?;
    let output = match (child.stdout.take(), child.stderr.take()) {
        (Some(out), Some(err)) => read_until(out, err, Instant::now() + timeout),
        _ => Err("no pipe from systemctl".to_string()),
    };
    if output.is_err() {
        let _ = child.kill();
    }
    let status = child.wait().map_err(|e| format!("systemctl: {e}"))?;
    let (text, errors) = output?;
    if !status.success() {
        // Its first error line says why, e.g. "Failed to connect to bus: Permission denied".
        let why = errors.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        let scope = if user { " --user" } else { "" };
        return Err(format!(
            "systemctl{scope} show {unit} failed ({status}): {why}"
        ));
    }
    parse_show(&text, unit)
}

/// Reads systemctl's stdout and stderr to their ends, giving up at `deadline`. It does not
/// touch the signalfd, so signals for the child stay pending meanwhile.
fn read_until(
    out: std::process::ChildStdout,
    err: std::process::ChildStderr,
    deadline: Instant,
) -> Result<(String, String), String> {
    let mut files = [
        File::from(OwnedFd::from(out)),
        File::from(OwnedFd::from(err)),
    ];
    let mut texts = [Vec::new(), Vec::new()];
    let mut open = [true, true];
    let mut buf = [0u8; 4096];
    while open.contains(&true) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("systemctl did not answer in time".into());
        }
        let ms =
            PollTimeout::try_from(left.as_millis().min(60_000) as i32).unwrap_or(PollTimeout::ZERO);
        let ready: Vec<bool> = {
            // An ended pipe is polled for nothing, so the indices stay aligned.
            let mut fds: Vec<PollFd> = files
                .iter()
                .zip(open)
                .map(|(f, o)| {
                    PollFd::new(
                        f.as_fd(),
                        if o {
                            PollFlags::POLLIN
                        } else {
                            PollFlags::empty()
                        },
                    )
                })
                .collect();
            match poll(&mut fds, ms) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(format!("waiting for systemctl: {e}")),
            }
            fds.iter()
                .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
                .collect()
        };
        for i in 0..2 {
            if !ready[i] || !open[i] {
                continue;
            }
            match files[i].read(&mut buf) {
                Ok(0) => open[i] = false,
                Ok(n) if texts[i].len() < 1 << 20 => texts[i].extend_from_slice(&buf[..n]),
                Ok(_) => return Err("systemctl wrote more than 1 MiB".into()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("reading systemctl's output: {e}")),
            }
        }
    }
    let [out, err] = texts;
    let out = String::from_utf8(out).map_err(|_| "systemctl wrote non-UTF-8".to_string())?;
    Ok((out, String::from_utf8_lossy(&err).into_owned()))
}

/// Parses `systemctl show` output (Key=Value lines) about `unit`. Refuses an answer that
/// holds more than one unit's block (blank-line separated), that is about another unit, about
/// a unit systemd has not loaded, or that lacks a property: never a value from elsewhere.
pub fn parse_show(text: &str, unit: &str) -> Result<Settings, String> {
    let blocks = text.split("\n\n").filter(|b| !b.trim().is_empty()).count();
    if blocks != 1 {
        return Err(format!(
            "systemctl show answered with {blocks} units' properties, not one"
        ));
    }
    let mut s = Settings::default();
    let mut seen = Vec::new();
    let (mut id, mut load_state) = (String::new(), String::new());
    for (key, value) in text.lines().filter_map(|l| l.split_once('=')) {
        let bad = || format!("systemctl show: unexpected {key}={value}");
        if matches!(key, "ExecStartPre" | "ExecCondition") {
            // "{ path=/bin/false ; argv[]=/bin/false ; ignore_errors=no ; ... }", one a line.
            s.pre_can_fail |= value.contains("ignore_errors=no");
            continue;
        }
        if seen.contains(&key) {
            return Err(format!("systemctl show: {key} twice"));
        }
        match key {
            "Id" => id = value.to_string(),
            "LoadState" => load_state = value.to_string(),
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
            "StartLimitIntervalUSec" => match span(value).ok_or_else(bad)? {
                Some(d) => s.interval = d,
                None => (s.interval, s.interval_forever) = (Duration::ZERO, true),
            },
            // A delay past 136 years is one nobody waits out: the longest span gwshim keeps.
            "RestartUSec" => s.restart_sec = span(value).ok_or_else(bad)?.unwrap_or(LONGEST),
            "NRestarts" => s.n_restarts = Some(value.parse().map_err(|_| bad())?),
            "MainPID" => s.main_pid = Some(value.parse().map_err(|_| bad())?),
            "RestartSteps" => s.restart_steps = value.parse().map_err(|_| bad())?,
            "RestartMaxDelayUSec" => s.restart_max_delay = span(value).ok_or_else(bad)?,
            "RestartUSecNext" => {
                s.restart_next = Some(span(value).ok_or_else(bad)?.unwrap_or(LONGEST))
            }
            "NotifyAccess" => s.notify_access = Some(value.to_string()),
            _ => continue,
        }
        seen.push(key);
    }
    if let Some(missing) = REQUIRED.iter().find(|p| !seen.contains(p)) {
        return Err(format!("systemctl show: no {missing}"));
    }
    if id != unit {
        return Err(format!("systemctl show answered about {id}, not {unit}"));
    }
    if load_state != "loaded" {
        return Err(format!("systemctl show: {unit} is {load_state}"));
    }
    Ok(s)
}

const LONGEST: Duration = Duration::from_secs(timespan::MAX_SECS);

/// A span as `systemctl show` prints it (format_timespan: "1w 1d", "1y 2w", "1.500ms"):
/// Some(None) for "infinity" and for spans past 136 years (timespan::MAX_SECS), which gwshim
/// takes as never; None for anything else.
fn span(value: &str) -> Option<Option<Duration>> {
    match timespan::parse_checked(value) {
        Ok(d) => Some(Some(d)),
        Err(timespan::Refused::TooLarge) => Some(None),
        Err(timespan::Refused::NotASpan) => (value == "infinity").then_some(None),
    }
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
            // A desktop terminal: a scope under the user manager's service is no service.
            (
                "0::/user.slice/user-1000.slice/user@1000.service/app.slice/app-org.gnome.Terminal.slice/vte-spawn-5e1b.scope\n",
                None,
            ),
            (
                "0::/user.slice/user-1000.slice/user@1000.service/app.slice/app-gnome-firefox-2413.scope\n",
                None,
            ),
            // systemd --user itself, and `systemd-run --user --scope`
            (
                "0::/user.slice/user-1000.slice/user@1000.service/init.scope\n",
                None,
            ),
            (
                "0::/user.slice/user-1000.slice/user@1000.service/app.slice/run-r3f.scope\n",
                None,
            ),
            // the user manager's own service, and a service's sub-cgroups (Delegate=yes)
            (
                "0::/user.slice/user-1000.slice/user@1000.service\n",
                Some("user@1000.service"),
            ),
            (
                "0::/system.slice/hermes-gateway.service/payload/inner\n",
                Some("hermes-gateway.service"),
            ),
            // a slice holding processes (no unit of its own), a socket's ExecStartPre
            ("0::/system.slice/foo.service/../x.slice\n", None),
            ("0::/system.slice/foo.socket\n", None),
            // the v1 hybrid line where the unified one is empty
            (
                "1:name=systemd:/user.slice/user-1000.slice/user@1000.service/app.slice/vte-spawn-1.scope\n",
                None,
            ),
        ];
        for &(text, want) in table {
            assert_eq!(unit_from_cgroup(text).as_deref(), want, "{text:?}");
        }
    }

    /// What systemd 252 answers to `query_argv` for a unit (no 254+ properties).
    const SHOW_252: &str = "Restart=on-failure\nRestartUSec=500ms\nRestartForceExitStatus=75 SIGUSR1\n\
        RestartPreventExitStatus=78\nNRestarts=2\nStartLimitIntervalUSec=30s\nStartLimitBurst=3\n\
        Id=seed.service\nLoadState=loaded\nMainPID=4242\n";

    #[test]
    fn parses_systemctl_show() {
        let s = parse_show(SHOW_252, "seed.service").unwrap();
        assert_eq!(s.restart, Restart::OnFailure);
        assert_eq!(s.notify_access, None);
        let all = parse_show(&format!("{SHOW_252}NotifyAccess=all\n"), "seed.service").unwrap();
        assert_eq!(all.notify_access.as_deref(), Some("all"));
        assert_eq!(s.force_status, vec![75]);
        assert_eq!(s.prevent_status, vec![78]);
        assert_eq!(s.burst, 3);
        assert_eq!(s.interval, Duration::from_secs(30));
        assert_eq!(s.restart_sec, Duration::from_millis(500));
        assert_eq!(s.n_restarts, Some(2));
        assert_eq!(
            (s.restart_steps, s.restart_max_delay, s.restart_next),
            (0, None, None),
            "252 has no RestartSteps"
        );
        let zero = SHOW_252.replace("30s", "0").replace("on-failure", "always");
        assert_eq!(
            parse_show(&zero, "seed.service").unwrap().interval,
            Duration::ZERO
        );
        let v257 =
            format!("{SHOW_252}RestartSteps=3\nRestartMaxDelayUSec=5s\nRestartUSecNext=1.077s\n");
        let s = parse_show(&v257, "seed.service").unwrap();
        assert_eq!(s.restart_steps, 3);
        assert_eq!(s.restart_max_delay, Some(Duration::from_secs(5)));
        assert_eq!(s.restart_next, Some(Duration::from_millis(1077)));
        let infinity = format!("{SHOW_252}RestartSteps=0\nRestartMaxDelayUSec=infinity\n");
        assert_eq!(
            parse_show(&infinity, "seed.service")
                .unwrap()
                .restart_max_delay,
            None
        );
    }

    /// Every span form `systemctl show` prints for the limits (format_timespan; the same on
    /// 252 and 257), with `infinity` and spans past 136 years.
    #[test]
    fn reads_every_span_systemctl_show_prints() {
        let with = |key: &str, value: &str| {
            let text = SHOW_252
                .lines()
                .filter(|l| !l.starts_with(&format!("{key}=")))
                .map(|l| format!("{l}\n"))
                .collect::<String>();
            parse_show(&format!("{text}{key}={value}\n"), "seed.service")
        };
        let secs = Duration::from_secs;
        let day = 86_400;
        // (StartLimitIntervalUSec=, interval, forever)
        let table = [
            ("1w 1d", secs(8 * day), false), // StartLimitIntervalSec=8d
            ("1month", secs(2_629_800), false),
            ("1M", secs(2_629_800), false),
            ("1y 2w", secs(31_557_600 + 14 * day), false),
            ("1y 1month 4d 7h 30min", secs(400 * day), false),
            ("1min 1.500000s", Duration::from_millis(61_500), false),
            ("1.500ms", Duration::from_micros(1_500), false),
            ("500us", Duration::from_micros(500), false),
            ("0", Duration::ZERO, false),
            ("infinity", Duration::ZERO, true),
            ("200y", Duration::ZERO, true),
        ];
        for (value, interval, forever) in table {
            let s = with("StartLimitIntervalUSec", value).unwrap();
            assert_eq!(
                (s.interval, s.interval_forever),
                (interval, forever),
                "{value:?}"
            );
        }
        let long = with("RestartUSec", "infinity").unwrap();
        assert_eq!(long.restart_sec, secs(timespan::MAX_SECS));
        assert_eq!(
            with("RestartUSec", "1w").unwrap().restart_sec,
            secs(7 * day)
        );
        assert_eq!(
            with("RestartUSecNext", "2month").unwrap().restart_next,
            Some(secs(2 * 2_629_800))
        );
        assert_eq!(
            with("StartLimitBurst", "5000").unwrap().burst,
            5000,
            "above the starts gwshim keeps"
        );
        for bad in ["soon", "1 fortnight", "-1", ""] {
            assert!(
                with("StartLimitIntervalUSec", bad).is_err(),
                "{bad:?} is no span"
            );
        }
    }

    #[test]
    fn knows_a_start_that_can_fail_before_gwshim_runs() {
        let pre = |line: &str| parse_show(&format!("{SHOW_252}{line}"), "seed.service");
        let fails = "ExecStartPre={ path=/bin/false ; argv[]=/bin/false ; ignore_errors=no ; \
            start_time=[n/a] ; stop_time=[n/a] ; pid=0 ; code=(null) ; status=0/0 }\n";
        let ignored = fails.replace("ignore_errors=no", "ignore_errors=yes");
        let table = [
            (String::new(), false),
            (fails.to_string(), true),
            (ignored.clone(), false),
            (fails.replace("ExecStartPre", "ExecCondition"), true),
            // two commands: two lines of the same key
            (format!("{ignored}{fails}"), true),
            (format!("{ignored}{ignored}"), false),
        ];
        for (lines, want) in table {
            assert_eq!(pre(&lines).unwrap().pre_can_fail, want, "{lines:?}");
        }
    }

    #[test]
    fn knows_the_main_process() {
        let s = parse_show(SHOW_252, "seed.service").unwrap();
        assert_eq!(s.main_pid, Some(4242));
        // (MainPID, own pid, main)
        let table = [
            (Some(4242), 4242, true),
            (Some(4242), 4243, false), // a command run inside the unit
            (Some(0), 4242, false),    // an ExecStartPre=, or no main process yet
            (None, 4242, true),        // not asked: the cgroup's word
        ];
        for (main_pid, own, want) in table {
            let s = Settings {
                main_pid,
                ..Settings::default()
            };
            assert_eq!(is_main_process(&s, own), want, "{main_pid:?} {own}");
        }
    }

    #[test]
    fn refuses_unusable_answers() {
        let one = |k: &str, v: &str| {
            SHOW_252
                .lines()
                .map(|l| match l.split_once('=') {
                    Some((key, _)) if key == k => format!("{k}={v}\n"),
                    _ => format!("{l}\n"),
                })
                .collect::<String>()
        };
        // What `systemctl show -- UNIT --property=...` printed: the unit, then a block of
        // systemd's defaults for each "--property=..." taken as a unit name.
        let not_found = "Restart=no\nRestartUSec=100ms\nRestartForceExitStatus=\n\
            RestartPreventExitStatus=\nNRestarts=0\nStartLimitIntervalUSec=10s\n\
            StartLimitBurst=5\nId=--property=Restart.service\nLoadState=not-found\n";
        let two = format!("{SHOW_252}\n{not_found}");
        let table: Vec<(String, &str)> = vec![
            (two, "with 2 units' properties"),
            (
                format!("{SHOW_252}\n{not_found}\n{not_found}"),
                "with 3 units'",
            ),
            (String::new(), "with 0 units'"),
            (
                one("Id", "other.service"),
                "about other.service, not seed.service",
            ),
            (one("LoadState", "not-found"), "seed.service is not-found"),
            (one("LoadState", "masked"), "seed.service is masked"),
            (one("Restart", "sometimes"), "unexpected Restart=sometimes"),
            (one("StartLimitBurst", "x"), "unexpected StartLimitBurst=x"),
            (one("NRestarts", ""), "unexpected NRestarts="),
            (SHOW_252.replace("NRestarts=2\n", ""), "no NRestarts"),
            (SHOW_252.replace("MainPID=4242\n", ""), "no MainPID"),
            (one("MainPID", "x"), "unexpected MainPID=x"),
            (SHOW_252.replace("Id=seed.service\n", ""), "no Id"),
            (format!("{SHOW_252}Restart=no\n"), "Restart twice"),
            ("Restart=always\n".into(), "no Id"),
        ];
        for (text, why) in table {
            let err = parse_show(&text, "seed.service").unwrap_err();
            assert!(err.contains(why), "{text:?}: {err:?} should say {why:?}");
        }
    }

    #[test]
    fn asks_systemctl_about_exactly_one_unit() {
        let props = "--property=Id,LoadState,Restart,RestartForceExitStatus,\
            RestartPreventExitStatus,StartLimitBurst,StartLimitIntervalUSec,RestartUSec,\
            NRestarts,MainPID,RestartSteps,RestartMaxDelayUSec,RestartUSecNext,ExecStartPre,\
            ExecCondition,NotifyAccess";
        assert_eq!(
            query_argv("hermes-gateway.service", false),
            [
                "systemctl",
                "show",
                "--no-pager",
                props,
                "--",
                "hermes-gateway.service"
            ]
        );
        assert_eq!(
            query_argv("-odd.service", true),
            [
                "systemctl",
                "--user",
                "show",
                "--no-pager",
                props,
                "--",
                "-odd.service"
            ]
        );
    }

    #[test]
    fn passes_only_valid_unit_names() {
        let table = [
            ("hermes-gateway.service", true),
            ("-odd.service", true),
            ("hermes-gateway@coder.service", true),
            ("a\\x2db.service", true),
            ("_x.service", true),
            ("a b.service", false),
            ("a*.service", false),
            ("a\n.service", false),
            ("-.", false),
            ("noext", false),
            ("", false),
        ];
        for (name, want) in table {
            assert_eq!(is_valid_unit_name(name), want, "{name:?}");
        }
        assert!(!is_valid_unit_name(&format!("{}.service", "a".repeat(250))));
    }

    #[test]
    fn computes_systemds_next_restart_delay() {
        let ms = Duration::from_millis;
        let s = |steps, max: Option<u64>, n: Option<u32>, next: Option<u64>| Settings {
            restart_sec: ms(500),
            restart_steps: steps,
            restart_max_delay: max.map(ms),
            n_restarts: n,
            restart_next: next.map(ms),
            ..Settings::default()
        };
        // (settings, systemd backs off, next delay): RestartSteps=3, RestartMaxDelaySec=5s,
        // RestartSec=500ms gave 500ms, 1.08s, 2.32s, then 5s on systemd 257.
        let table = [
            (s(0, None, Some(4), None), false, ms(500)), // 252: no such keys
            (s(3, None, Some(2), None), false, ms(500)), // RestartMaxDelaySec=infinity
            (s(3, Some(400), Some(2), None), false, ms(500)), // max below RestartSec
            (s(0, Some(5000), Some(2), None), false, ms(500)), // RestartSteps=0
            (s(3, Some(5000), Some(0), None), true, ms(500)),
            (s(3, Some(5000), Some(1), None), true, ms(1077)),
            (s(3, Some(5000), Some(2), None), true, ms(2320)),
            (s(3, Some(5000), Some(3), None), true, ms(5000)),
            (s(3, Some(5000), Some(30), None), true, ms(5000)),
            (s(3, Some(5000), None, None), true, ms(500)), // NRestarts unknown
            (s(3, Some(5000), Some(1), Some(1080)), true, ms(1080)), // 257 says it
        ];
        for (settings, backs_off, next) in table {
            assert_eq!(settings.systemd_backs_off(), backs_off, "{settings:?}");
            let got = settings.next_restart_delay();
            assert!(
                got.abs_diff(next) <= ms(1),
                "{settings:?}: {got:?}, want {next:?}"
            );
        }
        let zero = Settings {
            restart_sec: Duration::ZERO,
            ..s(3, Some(5000), Some(1), None)
        };
        assert!(
            !zero.systemd_backs_off(),
            "RestartSec=0: systemd never grows it"
        );
    }

    #[test]
    fn unescapes_cgroup_names() {
        assert_eq!(
            unit_from_cgroup("0::/system.slice/__x.service\n").as_deref(),
            Some("_x.service")
        );
        assert_eq!(
            unit_from_cgroup("0::/system.slice/_cgroup.x.service\n").as_deref(),
            Some("cgroup.x.service")
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
