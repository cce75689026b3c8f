//! Recognising the Hermes gateway command and finding its HERMES_HOME as the child will see
//! it, so its gateway.pid and gateway.lock are looked after with no --pidfile.
//!
//! Mirrors hermes-agent 0.19.0: `hermes_cli.main._apply_profile_override`,
//! `hermes_constants.get_default_hermes_root` and `hermes_cli.profiles.get_profile_dir`.

use crate::pidfile::Target;
use log::{debug, warn};
use std::ffi::OsString;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What gwshim needs from a gateway command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gateway {
    /// `-p NAME`, `--profile NAME` or `--profile=NAME`, normalised (lower case).
    pub profile: Option<String>,
}

/// Options of hermes's top-level parser that take a value, skipped when looking for -p.
const VALUE_FLAGS: &[&str] = &[
    "-z",
    "--oneshot",
    "-m",
    "--model",
    "--provider",
    "-t",
    "--toolsets",
    "-r",
    "--resume",
    "-s",
    "--skills",
    "--usage-file",
];

/// `hermes ... gateway run` or `python* -m hermes_cli.main ... gateway run` (a bare trailing
/// `gateway` means `run` too), with any profile selector.
pub fn recognise(command: &[OsString]) -> Option<Gateway> {
    let words: Vec<String> = command
        .iter()
        .map(|w| w.to_string_lossy().into_owned())
        .collect();
    let start = (0..words.len()).find_map(|i| {
        let base = basename(&words[i]);
        if base == "hermes" {
            Some(i + 1)
        } else if base.starts_with("python")
            && words.get(i + 1).is_some_and(|w| w == "-m")
            && words.get(i + 2).is_some_and(|w| w == "hermes_cli.main")
        {
            Some(i + 3)
        } else {
            None
        }
    })?;
    let args = words.get(start..)?;
    let (profile, rest) = split_profile(args);
    let at = rest.iter().position(|w| *w == "gateway")?;
    match rest.get(at + 1) {
        None => {}
        Some(w) if *w == "run" => {}
        Some(_) => return None,
    }
    Some(Gateway { profile })
}

/// The profile selector (as hermes reads it: the first one, before any `--`) and the words
/// left once every selector is dropped.
fn split_profile(args: &[String]) -> (Option<String>, Vec<&str>) {
    let mut profile = None;
    let mut rest = Vec::new();
    let mut i = 0;
    let mut stop = false;
    while i < args.len() {
        let arg = args[i].as_str();
        stop |= arg == "--";
        if !stop && (arg == "-p" || arg == "--profile") && i + 1 < args.len() {
            // hermes ignores a two-word value that cannot be a profile (pytest's -p no:x).
            if profile.is_none() && valid_profile(&args[i + 1]) {
                profile = Some(args[i + 1].clone());
            }
            i += 2;
            continue;
        }
        if let Some(name) = arg.strip_prefix("--profile=").filter(|_| !stop) {
            profile.get_or_insert_with(|| name.trim().to_lowercase());
            i += 1;
            continue;
        }
        rest.push(arg);
        if !stop && VALUE_FLAGS.contains(&arg) && i + 1 < args.len() {
            rest.push(args[i + 1].as_str());
            i += 2;
            continue;
        }
        i += 1;
    }
    (profile, rest)
}

fn valid_profile(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

fn basename(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

/// The environment that decides HERMES_HOME.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Env {
    /// HERMES_HOME, if set and not blank.
    pub hermes_home: Option<PathBuf>,
    /// The user's home directory.
    pub home: PathBuf,
    /// HERMES_S6_SUPERVISED_CHILD is set: the sticky active profile is not followed.
    pub s6_child: bool,
}

impl Env {
    fn native(&self) -> PathBuf {
        self.home.join(".hermes")
    }

    /// The root that holds profiles/ and active_profile.
    pub fn root(&self) -> PathBuf {
        let native = self.native();
        // hermes compares resolved paths; a lexical comparison differs only through symlinks.
        match &self.hermes_home {
            None => native,
            Some(h) if h.starts_with(&native) => native,
            Some(h) => match (h.parent(), h.parent().and_then(Path::parent)) {
                (Some(p), Some(root)) if p.file_name().is_some_and(|n| n == "profiles") => {
                    root.into()
                }
                _ => h.clone(),
            },
        }
    }

    /// Whether the child will read the sticky `active_profile` file (with no -p).
    pub fn reads_active_profile(&self, gateway: &Gateway) -> bool {
        gateway.profile.is_none() && !self.s6_child && !self.names_a_profile()
    }

    fn names_a_profile(&self) -> bool {
        self.hermes_home
            .as_deref()
            .and_then(Path::parent)
            .and_then(Path::file_name)
            .is_some_and(|n| n == "profiles")
    }
}

/// HERMES_HOME as the gateway will use it. `active_profile` is the content of the root's
/// active_profile file, read only when `reads_active_profile` says so.
pub fn home(gateway: &Gateway, env: &Env, active_profile: Option<&str>) -> PathBuf {
    let sticky = active_profile
        .map(str::trim)
        .filter(|n| !n.is_empty() && *n != "default" && env.reads_active_profile(gateway))
        .map(str::to_lowercase);
    match gateway.profile.clone().or(sticky) {
        Some(name) if name == "default" => env.root(),
        Some(name) => env.root().join("profiles").join(name),
        None => env.hermes_home.clone().unwrap_or_else(|| env.native()),
    }
}

pub fn target(home: &Path) -> Target {
    Target {
        pid: home.join("gateway.pid"),
        lock: Some(home.join("gateway.lock")),
    }
}

/// The gateway's pid and lock files, if the command is the gateway. Reads gwshim's own
/// environment, which the child inherits.
pub fn gateway_target(command: &[OsString]) -> Option<Target> {
    Some(target(&gateway_home(command)?))
}

/// The gateway's HERMES_HOME, if the command is the gateway, from gwshim's own environment.
pub fn gateway_home(command: &[OsString]) -> Option<PathBuf> {
    let gateway = recognise(command)?;
    let user_home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            let user = nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()?;
            Some(user.dir)
        });
    let Some(user_home) = user_home else {
        warn!(
            "the command is the Hermes gateway but there is no home directory; not looking after its pid file"
        );
        return None;
    };
    let env = Env {
        hermes_home: std::env::var_os("HERMES_HOME")
            .map(|h| OsString::from(h.to_string_lossy().trim()))
            .filter(|h| !h.is_empty())
            .map(PathBuf::from),
        home: user_home,
        s6_child: std::env::var_os("HERMES_S6_SUPERVISED_CHILD").is_some_and(|v| !v.is_empty()),
    };
    let active = if env.reads_active_profile(&gateway) {
        read_small(&env.root().join("active_profile"))
    } else {
        None
    };
    let home = home(&gateway, &env, active.as_deref());
    debug!(
        "the command is the Hermes gateway; its HERMES_HOME is {}",
        home.display()
    );
    Some(home)
}

/// hermes-agent 0.19.0's respawn-storm breaker (`hermes_cli/gateway.py` calling
/// `gateway/status.py`'s `record_start_and_check_storm`): at every start, before it starts
/// anything, the gateway appends the wall-clock time to `$HERMES_HOME/gateway-starts.log`;
/// when more than `max_starts` starts, its own included, lie within `window` of it, it
/// sleeps min(`cap`, 5 s x 2^min(count - max_starts, 6)) first: 10 s at the 6th start in
/// 120 s, then 20, 40, 80, 160, 300 s.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StormBrake {
    /// 0 or less: no brake.
    pub max_starts: i64,
    /// Seconds.
    pub window: f64,
    /// Seconds.
    pub cap: f64,
}

impl Default for StormBrake {
    /// hermes's defaults (`gateway.respawn_storm` in its DEFAULT_CONFIG).
    fn default() -> Self {
        StormBrake {
            max_starts: 5,
            window: 120.0,
            cap: 300.0,
        }
    }
}

/// What the brake does at one start.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Storm {
    /// Starts within the window, this one included.
    pub count: usize,
    pub sleep: Duration,
}

impl StormBrake {
    /// The brake as the gateway will apply it: its defaults, overridden as hermes does by
    /// HERMES_GATEWAY_MAX_STARTS and HERMES_GATEWAY_START_WINDOW_S, which it inherits from
    /// gwshim. (`gateway.respawn_storm` in its config.yaml is not read.)
    pub fn from_env(env: &dyn Fn(&str) -> Option<OsString>) -> StormBrake {
        let mut b = StormBrake::default();
        let var = |name| env(name).map(|v| v.to_string_lossy().trim().to_string());
        if let Some(n) = var("HERMES_GATEWAY_MAX_STARTS").and_then(|v| v.parse().ok()) {
            b.max_starts = n;
        }
        if let Some(w) = var("HERMES_GATEWAY_START_WINDOW_S").and_then(|v| v.parse().ok()) {
            b.window = w;
        }
        b
    }

    /// What the gateway does at a start at `at` (seconds since the epoch), with `log` the
    /// times already in its starts log. None: no sleep. The comparisons are hermes's own, so
    /// garbage in the log (nan, inf, times in the future) counts as it counts there.
    pub fn check(&self, log: &[f64], at: f64) -> Option<Storm> {
        if self.max_starts <= 0 {
            return None;
        }
        let count = log.iter().filter(|&&ts| at - ts <= self.window).count() + 1;
        let over = u32::try_from(count as i64 - self.max_starts).ok()?;
        if over == 0 {
            return None;
        }
        let secs = (5.0 * f64::from(1u32 << over.min(6))).min(self.cap);
        let sleep = Duration::try_from_secs_f64(secs).unwrap_or(Duration::ZERO);
        (!sleep.is_zero()).then_some(Storm { count, sleep })
    }
}

/// The gateway's starts log as read once, with the wall clock then: plain data for pacing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StartsLog {
    /// Seconds since the epoch, in the file's order.
    pub starts: Vec<f64>,
    /// When it was read, seconds since the epoch.
    pub now: f64,
    pub brake: StormBrake,
}

impl StartsLog {
    /// The gateway's sleep at a start `after` from now (its own entry not yet in the log).
    pub fn storm_after(&self, after: Duration) -> Option<Storm> {
        self.brake
            .check(&self.starts, self.now + after.as_secs_f64())
    }

    pub fn sleep_after(&self, after: Duration) -> Duration {
        self.storm_after(after).map_or(Duration::ZERO, |s| s.sleep)
    }

    /// The times from now at which a start would see one entry fewer in its window: where
    /// `sleep_after` may drop.
    pub fn steps(&self) -> Vec<Duration> {
        self.starts
            .iter()
            .filter_map(|ts| Duration::try_from_secs_f64(ts + self.brake.window - self.now).ok())
            // The entry still counts at exactly `window` (hermes compares with <=).
            .map(|d| d + Duration::from_millis(1))
            .collect()
    }

    /// What the gateway slept at the start it logged first at or after `since` (just before
    /// gwshim spawned it: the same clock, 50 ms of slack for its steps), judged against the
    /// entries before it. A gateway killed in its sleep just before this start logged earlier.
    pub fn slept_since(&self, since: f64) -> Duration {
        let Some(i) = self.starts.iter().position(|&ts| ts >= since - 0.05) else {
            return Duration::ZERO;
        };
        self.brake
            .check(&self.starts[..i], self.starts[i])
            .map_or(Duration::ZERO, |s| s.sleep)
    }
}

/// The start times in a starts log's text, as hermes reads them: one float a line, blank
/// and unreadable lines skipped. None when the text cannot be read as hermes reads it (its
/// breaker then gives up: no sleep).
pub fn parse_starts_log(bytes: &[u8]) -> Option<Vec<f64>> {
    let text = std::str::from_utf8(bytes).ok()?;
    Some(
        text.lines()
            .filter_map(|l| l.trim().parse::<f64>().ok())
            .collect(),
    )
}

/// The most of the starts log gwshim reads: its end, where the newest starts are (hermes keeps
/// 40 lines, about a kilobyte; the file is the agent's to write).
const STARTS_LOG_LIMIT: u64 = 64 * 1024;

/// Reads `$HERMES_HOME/gateway-starts.log` now: its last 64 KiB, not through a FIFO or a
/// device. A missing file is an empty log; a file hermes could not read either (not UTF-8)
/// means no brake, as for hermes.
pub fn read_starts_log(home: &Path, brake: StormBrake) -> StartsLog {
    use std::io::{Seek, SeekFrom};
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let path = home.join("gateway-starts.log");
    let read = || -> std::io::Result<Option<Vec<u8>>> {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
            .open(&path)?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Ok(None);
        }
        let skip = meta.len().saturating_sub(STARTS_LOG_LIMIT);
        file.seek(SeekFrom::Start(skip))?;
        let mut bytes = Vec::new();
        file.take(STARTS_LOG_LIMIT).read_to_end(&mut bytes)?;
        if skip > 0 {
            // The first line is cut: drop it.
            let cut = bytes
                .iter()
                .position(|&b| b == b'\n')
                .map_or(bytes.len(), |i| i + 1);
            bytes.drain(..cut);
        }
        Ok(Some(bytes))
    };
    let (starts, brake) = match read() {
        Ok(Some(bytes)) => match parse_starts_log(&bytes) {
            Some(starts) => (starts, brake),
            None => (
                Vec::new(),
                StormBrake {
                    max_starts: 0,
                    ..brake
                },
            ),
        },
        Ok(None) => (
            Vec::new(),
            StormBrake {
                max_starts: 0,
                ..brake
            },
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Vec::new(), brake),
        Err(e) => {
            debug!("cannot read {}: {e}", path.display());
            (Vec::new(), brake)
        }
    };
    StartsLog { starts, now, brake }
}

/// The gateway's starts log now, if the command is the gateway, with the brake it will apply.
pub fn starts_log_for(command: &[OsString]) -> Option<StartsLog> {
    let home = gateway_home(command)?;
    Some(read_starts_log(
        &home,
        StormBrake::from_env(&|v| std::env::var_os(v)),
    ))
}

/// STATUS= once the child runs: `running_status` for the log read before it started.
pub fn status_at_spawn(noun: &str, pid: i32, log: Option<&StartsLog>) -> String {
    match log {
        Some(l) => running_status(
            noun,
            pid,
            l.storm_after(Duration::ZERO),
            l.brake.window,
            l.now,
        ),
        None => running_status(noun, pid, None, 0.0, 0.0),
    }
}

/// "15:04:05 UTC" for a time in seconds since the epoch.
fn utc_clock(epoch: f64) -> String {
    let secs = epoch.max(0.0) as u64 % 86_400;
    format!(
        "{:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// The STATUS= line once the gateway runs: what is known of its own restart brake, which makes
/// it sleep before it starts anything (so "running" alone would say more than is known).
pub fn running_status(noun: &str, pid: i32, storm: Option<Storm>, window: f64, now: f64) -> String {
    match storm {
        None => format!("{noun} running, pid {pid}"),
        // Still true once the sleep is over, when nobody updates it.
        Some(s) => format!(
            "{noun} running, pid {pid}; its own restart brake ({} starts in {} s) holds it until {}",
            s.count,
            window,
            utc_clock(now + s.sleep.as_secs_f64())
        ),
    }
}

/// A short regular text file, or None (absent, unreadable, not UTF-8, not a regular file).
/// O_NONBLOCK: a FIFO put there must not hold up the start.
fn read_small(path: &Path) -> Option<String> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    file.take(256).read_to_string(&mut text).ok()?;
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    #[test]
    fn recognises_the_gateway() {
        let gw = |p: Option<&str>| {
            Some(Gateway {
                profile: p.map(String::from),
            })
        };
        let table: &[(&[&str], Option<Gateway>)] = &[
            (&["hermes", "gateway", "run"], gw(None)),
            (&["/v/bin/hermes", "gateway", "run", "--replace"], gw(None)),
            (&["hermes", "gateway"], gw(None)),
            (
                &[
                    "/usr/bin/python3",
                    "-m",
                    "hermes_cli.main",
                    "gateway",
                    "run",
                ],
                gw(None),
            ),
            (
                &[
                    "python",
                    "-m",
                    "hermes_cli.main",
                    "-p",
                    "coder",
                    "gateway",
                    "run",
                ],
                gw(Some("coder")),
            ),
            (
                &["hermes", "-p", "coder", "gateway", "run"],
                gw(Some("coder")),
            ),
            (
                &["hermes", "--profile", "coder", "gateway", "run"],
                gw(Some("coder")),
            ),
            (
                &["hermes", "--profile=Coder", "gateway", "run"],
                gw(Some("coder")),
            ),
            (&["hermes", "gateway", "run", "-p", "ops"], gw(Some("ops"))),
            // a profile literally named gateway
            (
                &["hermes", "-p", "gateway", "gateway", "run"],
                gw(Some("gateway")),
            ),
            (&["env", "X=1", "/v/bin/hermes", "gateway", "run"], gw(None)),
            // hermes ignores a -p value that cannot be a profile name
            (&["hermes", "-p", "No:X", "gateway", "run"], gw(None)),
            (&["hermes", "gateway", "status"], None),
            (&["hermes", "chat"], None),
            (&["hermes", "run", "gateway", "x"], None),
            (&["hermes-gateway-helper", "gateway", "run"], None),
            (&["python3", "-m", "tui_gateway", "gateway", "run"], None),
            (&["sleep", "gateway", "run"], None),
            (&[], None),
        ];
        for (words, want) in table {
            assert_eq!(&recognise(&cmd(words)), want, "{words:?}");
        }
    }

    #[test]
    fn brakes_as_hermes_does() {
        let b = StormBrake::default();
        let at = 1_000.0;
        // starts this many seconds before `at` already in the log
        let ago = |a: &[f64]| a.iter().map(|x| at - x).collect::<Vec<f64>>();
        let secs = Duration::from_secs;
        let storm = |count, s| {
            Some(Storm {
                count,
                sleep: secs(s),
            })
        };
        let table: Vec<(Vec<f64>, Option<Storm>)> = vec![
            (vec![], None),
            (ago(&[1.0, 2.0, 3.0, 4.0]), None), // the 5th start: no sleep
            (ago(&[1.0, 2.0, 3.0, 4.0, 5.0]), storm(6, 10)),
            (ago(&[1.0, 2.0, 3.0, 4.0, 120.0]), storm(6, 10)), // exactly 120 s: counts
            (ago(&[1.0, 2.0, 3.0, 4.0, 120.5]), None),
            (ago(&[1.0; 6]), storm(7, 20)),
            (ago(&[1.0; 9]), storm(10, 160)),
            (ago(&[1.0; 10]), storm(11, 300)), // 320 s, capped
            (ago(&[1.0; 39]), storm(40, 300)),
            // garbage counts as it counts for hermes: the future and inf are "recent", nan not
            (ago(&[-50.0, -60.0, 1.0, 2.0, 3.0]), storm(6, 10)),
            (
                vec![
                    f64::INFINITY,
                    f64::NAN,
                    f64::NEG_INFINITY,
                    999.0,
                    998.0,
                    997.0,
                    996.0,
                ],
                storm(6, 10),
            ),
        ];
        for (log, want) in table {
            assert_eq!(b.check(&log, at), want, "{log:?}");
        }
        let off = StormBrake { max_starts: 0, ..b };
        assert_eq!(off.check(&ago(&[1.0; 20]), at), None);
        let three = StormBrake {
            max_starts: 3,
            window: 10.0,
            ..b
        };
        assert_eq!(three.check(&ago(&[1.0, 2.0, 3.0]), at), storm(4, 10));
        assert_eq!(three.check(&ago(&[1.0, 2.0, 11.0]), at), None);
    }

    #[test]
    fn reads_the_brake_from_the_environment_as_hermes_does() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        let d = StormBrake::default();
        type Vars = &'static [(&'static str, &'static str)];
        let table: &[(Vars, i64, f64)] = &[
            (&[], 5, 120.0),
            (&[("HERMES_GATEWAY_MAX_STARTS", "3")], 3, 120.0),
            (&[("HERMES_GATEWAY_MAX_STARTS", "0")], 0, 120.0),
            (&[("HERMES_GATEWAY_MAX_STARTS", "-2")], -2, 120.0),
            (&[("HERMES_GATEWAY_MAX_STARTS", "x")], 5, 120.0),
            (&[("HERMES_GATEWAY_START_WINDOW_S", "30.5")], 5, 30.5),
            (&[("HERMES_GATEWAY_START_WINDOW_S", "soon")], 5, 120.0),
        ];
        for &(vars, max_starts, window) in table {
            let b = StormBrake::from_env(&env(vars));
            assert_eq!(
                (b.max_starts, b.window, b.cap),
                (max_starts, window, d.cap),
                "{vars:?}"
            );
        }
    }

    #[test]
    fn parses_a_starts_log_it_does_not_trust() {
        let table: &[(&[u8], Option<Vec<f64>>)] = &[
            (b"", Some(vec![])),
            (
                b"1764650000.123\n1764650001.5\n",
                Some(vec![1764650000.123, 1764650001.5]),
            ),
            (b"  17.5  \n\n\r\nabc\n18\n", Some(vec![17.5, 18.0])),
            (b"1e3\nnan\n", Some(vec![1000.0, f64::NAN])),
            (b"12\n\xff\xfe\n13\n", None), // hermes's read_text fails: no brake at all
        ];
        for (bytes, want) in table {
            let got = parse_starts_log(bytes);
            // nan != nan: compare as text
            assert_eq!(format!("{got:?}"), format!("{want:?}"), "{bytes:?}");
        }
    }

    #[test]
    fn knows_what_the_gateway_slept_at_this_start() {
        let log = |starts: &[f64]| StartsLog {
            starts: starts.to_vec(),
            now: 2_000.0,
            brake: StormBrake::default(),
        };
        let secs = Duration::from_secs;
        // gwshim spawned it at 1000: its entry is the first at or after 999.95
        let table: &[(&[f64], Duration)] = &[
            (&[], secs(0)),
            (&[990.0, 991.0, 992.0, 993.0, 994.0, 1000.4], secs(10)),
            (&[990.0, 991.0, 992.0, 993.0, 1000.4], secs(0)),
            (&[990.0, 991.0, 992.0, 993.0, 994.0], secs(0)), // not logged: it never got there
            (
                &[990.0, 991.0, 992.0, 993.0, 994.0, 999.97, 1010.0],
                secs(10),
            ),
            // a start before gwshim's (999.5, killed in its sleep) is not this one: 7 starts
            // in the window at 1010
            (
                &[990.0, 991.0, 992.0, 993.0, 994.0, 999.5, 1010.0],
                secs(20),
            ),
        ];
        for &(starts, want) in table {
            assert_eq!(log(starts).slept_since(1000.0), want, "{starts:?}");
        }
        let l = log(&[1_990.0, 1_991.0, 1_992.0, 1_993.0, 1_994.0]);
        assert_eq!(l.sleep_after(Duration::ZERO), secs(10));
        assert_eq!(l.sleep_after(secs(110)), secs(10));
        assert_eq!(l.sleep_after(secs(111)), secs(0)); // 1990 + 120 < 2111
        assert_eq!(l.steps()[0], Duration::from_millis(110_001));
    }

    #[test]
    fn says_when_the_gateway_sleeps_in_its_own_brake() {
        let storm = Storm {
            count: 6,
            sleep: Duration::from_secs(10),
        };
        // 1764651100 is 04:51:40 UTC
        assert_eq!(
            running_status("gateway", 42, Some(storm), 120.0, 1_764_651_100.0),
            "gateway running, pid 42; its own restart brake (6 starts in 120 s) holds it until 04:51:50 UTC"
        );
        assert_eq!(
            running_status("gateway", 42, None, 120.0, 1_764_651_100.0),
            "gateway running, pid 42"
        );
    }

    #[test]
    fn reads_a_starts_log_the_agent_may_have_written() {
        let dir = std::env::temp_dir().join(format!("gwshim-unit-{}-starts", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("gateway-starts.log");
        let b = StormBrake::default();
        // missing: an empty log, the brake on
        let l = read_starts_log(&dir, b);
        assert_eq!((l.starts.len(), l.brake), (0, b));
        // the newest lines of a huge file, the cut first line dropped
        let mut big = "1.5\n".repeat(40_000);
        big.push_str("123456.25\n");
        std::fs::write(&file, &big).unwrap();
        let l = read_starts_log(&dir, b);
        assert_eq!(l.starts.last(), Some(&123456.25));
        assert!(
            l.starts.len() < 17_000 && l.starts[..l.starts.len() - 1].iter().all(|&t| t == 1.5)
        );
        // not UTF-8: hermes gives up its brake, so does gwshim's model of it
        std::fs::write(&file, b"1\n\xff\n").unwrap();
        assert_eq!(read_starts_log(&dir, b).brake.max_starts, 0);
        // a FIFO: no hang, no brake
        std::fs::remove_file(&file).unwrap();
        nix::unistd::mkfifo(&file, nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert_eq!(read_starts_log(&dir, b).starts.len(), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn finds_hermes_home() {
        let env = |hh: Option<&str>, s6: bool| Env {
            hermes_home: hh.map(PathBuf::from),
            home: PathBuf::from("/home/u"),
            s6_child: s6,
        };
        let gw = |p: Option<&str>| Gateway {
            profile: p.map(String::from),
        };
        let table: &[(Gateway, Env, Option<&str>, &str)] = &[
            (gw(None), env(None, false), None, "/home/u/.hermes"),
            (gw(None), env(Some("/h"), false), None, "/h"),
            (
                gw(Some("coder")),
                env(None, false),
                None,
                "/home/u/.hermes/profiles/coder",
            ),
            (
                gw(Some("default")),
                env(None, false),
                None,
                "/home/u/.hermes",
            ),
            // HERMES_HOME under ~/.hermes: profiles hang off ~/.hermes
            (
                gw(Some("coder")),
                env(Some("/home/u/.hermes/profiles/ops"), false),
                None,
                "/home/u/.hermes/profiles/coder",
            ),
            // a custom root (Docker): profiles hang off it
            (
                gw(Some("coder")),
                env(Some("/opt/data"), false),
                None,
                "/opt/data/profiles/coder",
            ),
            (
                gw(Some("coder")),
                env(Some("/opt/data/profiles/ops"), false),
                None,
                "/opt/data/profiles/coder",
            ),
            // the sticky active profile, when no -p
            (
                gw(None),
                env(None, false),
                Some("ops\n"),
                "/home/u/.hermes/profiles/ops",
            ),
            (
                gw(None),
                env(Some("/opt/data"), false),
                Some("ops"),
                "/opt/data/profiles/ops",
            ),
            (
                gw(None),
                env(None, false),
                Some("default"),
                "/home/u/.hermes",
            ),
            (gw(None), env(None, false), Some(" "), "/home/u/.hermes"),
            (
                gw(Some("coder")),
                env(None, false),
                Some("ops"),
                "/home/u/.hermes/profiles/coder",
            ),
            // ... not when HERMES_HOME already names a profile, nor for an s6 child
            (
                gw(None),
                env(Some("/opt/data/profiles/x"), false),
                Some("ops"),
                "/opt/data/profiles/x",
            ),
            (gw(None), env(None, true), Some("ops"), "/home/u/.hermes"),
        ];
        for (g, e, active, want) in table {
            assert_eq!(
                home(g, e, *active),
                PathBuf::from(want),
                "{g:?} {e:?} {active:?}"
            );
        }
    }
}
