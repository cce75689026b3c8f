//! Restart pacing: before gwshim exits in a way that makes systemd start the unit again, it
//! waits so that the next start stays within the unit's start limit (BURST starts per
//! INTERVAL), and backs off exponentially when the child keeps failing fast.
//!
//! The start history lives in a small state file that outlives the unit's restarts.

use crate::exit::Run;
use crate::logging::count;
use crate::reap::Termination;
use crate::signals::{self, Signals};
use crate::unit::Settings;
use crate::{reap, timespan};
use log::{debug, info, warn};
use nix::unistd::Pid;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Exponential backoff for children that fail fast.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
    /// A child that lived at least this long resets the backoff.
    pub min_uptime: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(300),
            min_uptime: Duration::from_secs(10),
        }
    }
}

/// Kept in the state file. Times are CLOCK_MONOTONIC milliseconds, valid for one boot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    pub boot_id: String,
    /// Start times, oldest first.
    pub starts: Vec<u64>,
    /// Children in a row that lived less than `min_uptime`.
    pub fast_failures: u32,
    /// NRestarts at gwshim's last start, when systemd said it: the starts after it that gwshim
    /// never ran (a failed ExecStartPre=) show in the next NRestarts.
    pub n_restarts: Option<u32>,
}

/// At most this many start times are kept.
const MAX_STARTS: usize = 1024;
const HEADER: &str = "gwshim-pacing 1";

impl History {
    pub fn parse(text: &str) -> Option<History> {
        let mut lines = text.lines();
        (lines.next()? == HEADER).then_some(())?;
        let boot_id = lines.next()?.strip_prefix("boot ")?.to_string();
        // One word, as the kernel's boot id is (a trailing '\r' would not survive a render).
        (!boot_id.contains(|c: char| c.is_whitespace() || c.is_control())).then_some(())?;
        let fast_failures = lines.next()?.strip_prefix("fast-failures ")?.parse().ok()?;
        let starts: Vec<u64> = lines
            .next()?
            .strip_prefix("starts")?
            .split_whitespace()
            .map(|t| t.parse().ok())
            .collect::<Option<_>>()?;
        let sorted = starts.windows(2).all(|w| w[0] <= w[1]);
        // A later line, written since gwshim reads NRestarts against it; older files lack it.
        let n_restarts = match lines.next() {
            None => None,
            Some(l) => Some(l.strip_prefix("n-restarts ")?.parse().ok()?),
        };
        (lines.next().is_none() && sorted && starts.len() <= MAX_STARTS && !boot_id.is_empty())
            .then_some(History {
                boot_id,
                starts,
                fast_failures,
                n_restarts,
            })
    }

    pub fn render(&self) -> String {
        let starts: String = self.starts.iter().map(|t| format!(" {t}")).collect();
        let n_restarts = self
            .n_restarts
            .map_or(String::new(), |n| format!("n-restarts {n}\n"));
        format!(
            "{HEADER}\nboot {}\nfast-failures {}\nstarts{starts}\n{n_restarts}",
            self.boot_id, self.fast_failures
        )
    }

    /// Adds a start at `now`, forgetting what no start limit can need any more.
    pub fn record_start(&mut self, now: u64, keep_for: Duration) {
        let horizon = now.saturating_sub(millis(keep_for));
        self.starts.retain(|&t| t >= horizon && t <= now);
        self.starts.push(now);
        let excess = self.starts.len().saturating_sub(MAX_STARTS);
        self.starts.drain(..excess);
    }
}

/// Slack added to the interval, against clock skew between systemd's timer and ours.
pub fn margin(interval: Duration) -> Duration {
    (interval / 10).clamp(Duration::from_millis(500), Duration::from_secs(5))
}

/// How long to wait before exiting so that the start systemd makes next (its restart delay
/// after the exit) keeps at most `burst` starts in any window of `interval` (plus a margin).
/// A sliding window is stricter than systemd's fixed one, so it satisfies it wherever that
/// window begins.
pub fn rate_wait(starts: &[u64], now: u64, s: &Settings) -> Duration {
    let (burst, interval) = paced_limit(s);
    if interval.is_zero() || burst == 0 || starts.len() < burst {
        return Duration::ZERO;
    }
    let window = interval.saturating_add(margin(interval));
    let oldest_in_window = starts[starts.len() - burst];
    let earliest_next = oldest_in_window.saturating_add(millis(window));
    let next_if_now = now.saturating_add(millis(s.next_restart_delay()));
    // Start times from a state file another writer garbled may lie in the future: never
    // wait longer than a whole window.
    Duration::from_millis(earliest_next.saturating_sub(next_if_now)).min(window)
}

/// The limit gwshim keeps to, stricter than the unit's where it must be:
/// - one slot fewer when a start can fail before gwshim runs (`ExecStartPre=`,
///   `ExecCondition=`): such a start right after gwshim's exit, and systemd's restart after
///   it, come with no gwshim to pace them, so the last slot stays free for them;
/// - a `StartLimitBurst=` above the starts gwshim keeps (MAX_STARTS): BURST/k starts per
///   INTERVAL/k, with k = ceil(BURST / MAX_STARTS). Any INTERVAL is covered by k such windows,
///   so it holds at most BURST starts.
pub fn paced_limit(s: &Settings) -> (usize, Duration) {
    let mut burst = s.burst as usize;
    if s.pre_can_fail && burst >= 2 {
        burst -= 1;
    }
    if burst <= MAX_STARTS {
        return (burst, s.interval);
    }
    let k = burst.div_ceil(MAX_STARTS);
    (burst / k, s.interval / k as u32)
}

/// The starts since gwshim's last run that never ran gwshim, from systemd's NRestarts then
/// (`before`) and now: each automatic restart adds one. Pure.
/// - now 0: a start an operator asked for, a fresh count;
/// - more than before: the restarts between are starts gwshim missed;
/// - not more (a fresh count began unseen): every start of the new count but this one.
pub fn missed_starts(before: Option<u32>, now: Option<u32>) -> u32 {
    match (before, now) {
        (_, Some(0)) | (None, _) | (_, None) => 0,
        (Some(b), Some(n)) if n > b => n - b - 1,
        (Some(_), Some(n)) => n,
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The delay before the next start after `fast_failures` fast failures in a row.
pub fn backoff_delay(fast_failures: u32, b: &Backoff) -> Duration {
    match fast_failures {
        0 => Duration::ZERO,
        n => b.base.saturating_mul(1 << (n - 1).min(30)).min(b.cap),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    StartLimit,
    Backoff,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub wait: Duration,
    pub cause: Option<Cause>,
    pub fast_failures: u32,
    /// The Hermes gateway's own sleep at the next start (its restart brake), counted in the
    /// backoff.
    pub brake: Duration,
}

/// A restart someone asked for: SIGUSR1 reached the child, or the child itself exited 75 and
/// gwshim passes that on (the gateway's planned restart after `/restart`, `/update`, or a
/// SIGUSR1 that `hermes gateway restart` sent it directly). A crash rewritten to 75 is not. Pure.
pub fn is_planned_restart(run: &Run, status: i32) -> bool {
    const PLANNED: i32 = 75;
    run.restart_requested() || (status == PLANNED && run.end == Termination::Exited(PLANNED))
}

/// What to do before an exit that systemd will answer with a new start. `planned` is a
/// restart the user asked for (SIGUSR1): it waits only for the start limit. `gateway` is the
/// Hermes gateway's starts log, where the child is the gateway: it sleeps at its next start by
/// its own rule, and that sleep counts toward gwshim's backoff, so the gateway is down for the
/// longer of the two brakes, not their sum. The start limit is never shortened. Pure.
pub fn plan(
    h: &History,
    now: u64,
    uptime: Duration,
    planned: bool,
    s: &Settings,
    b: &Backoff,
    gateway: Option<&crate::hermes::StartsLog>,
) -> Plan {
    let fast_failures = match (uptime >= b.min_uptime, planned) {
        (true, _) => 0,
        (false, true) => h.fast_failures,
        (false, false) => h.fast_failures.saturating_add(1),
    };
    // systemd's own growing delay (RestartSteps=) is a backoff already: none on top of it.
    let backoff = if planned || s.systemd_backs_off() {
        Duration::ZERO
    } else {
        backoff_delay(fast_failures, b).saturating_sub(s.next_restart_delay())
    };
    let rate = rate_wait(&h.starts, now, s);
    let delay = s.next_restart_delay();
    let backoff = match gateway {
        Some(g) if backoff > rate => shortest_wait(g, rate, backoff, delay),
        _ => backoff,
    };
    let (wait, cause) = match (rate, backoff) {
        (r, b) if r.is_zero() && b.is_zero() => (Duration::ZERO, None),
        (r, b) if r >= b => (r, Some(Cause::StartLimit)),
        (_, b) => (b, Some(Cause::Backoff)),
    };
    let brake = gateway.map_or(Duration::ZERO, |g| {
        g.sleep_after(wait.saturating_add(delay))
    });
    Plan {
        wait,
        cause,
        fast_failures,
        brake,
    }
}

/// The shortest wait in [min, max] after which the gateway stays down at least as long as
/// gwshim's backoff asks (`max` plus systemd's `delay`), counting the gateway's own sleep at
/// its next start. That sleep only shrinks as the wait grows (older starts leave its window),
/// so the answer is the start of a step or the point in a step where the sum reaches the goal.
fn shortest_wait(
    g: &crate::hermes::StartsLog,
    min: Duration,
    max: Duration,
    delay: Duration,
) -> Duration {
    let goal = max.saturating_add(delay);
    let down = |w: Duration| {
        w.saturating_add(delay)
            .saturating_add(g.sleep_after(w.saturating_add(delay)))
    };
    let mut starts: Vec<Duration> = g
        .steps()
        .into_iter()
        .filter_map(|t| t.checked_sub(delay))
        .chain([min])
        .filter(|&w| w >= min && w <= max)
        .collect();
    let within: Vec<Duration> = starts
        .iter()
        .map(|&w| goal.saturating_sub(delay.saturating_add(g.sleep_after(w.saturating_add(delay)))))
        .collect();
    starts.extend(within);
    starts.push(max);
    starts.retain(|&w| w >= min && w <= max);
    starts.sort();
    starts.into_iter().find(|&w| down(w) >= goal).unwrap_or(max)
}

/// The fast failures in a row that count for this start. A start an operator asked for
/// (`systemctl start`, `restart`, after `reset-failed`: systemd then sets NRestarts to 0)
/// begins a fresh backoff; only systemd's automatic restarts go on counting. When NRestarts
/// is unknown, the count goes on.
pub fn fast_failures_at_start(stored: u32, s: &Settings) -> u32 {
    match s.n_restarts {
        Some(0) => 0,
        _ => stored,
    }
}

/// The wall clock in seconds since the epoch: what the gateway's starts log is in.
pub fn wall_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// CLOCK_MONOTONIC in milliseconds: what systemd's start limit is counted in.
pub fn now_ms() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1000 + t.tv_nsec() as u64 / 1_000_000)
        .unwrap_or(0)
}

pub fn boot_id() -> String {
    fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// A state file name for the service: the unit or --name, else the command's base name and
/// a hash of the whole command, so two services never share a file.
pub fn service_name(
    name: Option<&str>,
    unit: Option<&str>,
    command: &[std::ffi::OsString],
) -> String {
    let raw = match name.or(unit) {
        Some(n) => n.to_string(),
        None => {
            let base = command
                .first()
                .and_then(|c| Path::new(c).file_name())
                .map(|b| b.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mut hash: u64 = 0xcbf29ce484222325; // FNV-1a
            for byte in command
                .iter()
                .flat_map(|a| a.as_encoded_bytes().iter().chain(&[0]))
            {
                hash = (hash ^ u64::from(*byte)).wrapping_mul(0x100000001b3);
            }
            format!("{base}-{hash:016x}")
        }
    };
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._@-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The state file of one service.
pub struct Store {
    path: PathBuf,
}

impl Store {
    pub fn open(state_dir: Option<&Path>, name: &str) -> Option<Store> {
        let dir = state_folder(state_dir)?;
        Some(Store {
            path: dir.join(format!("{name}.pacing")),
        })
    }

    /// The history for this boot; a missing, unreadable or corrupt file is no history.
    pub fn load(&self, boot_id: &str) -> History {
        let fresh = History {
            boot_id: boot_id.to_string(),
            ..History::default()
        };
        let text = match read_small(&self.path) {
            Ok(Some(text)) => text,
            Ok(None) => return fresh,
            Err(e) => {
                warn!(
                    "cannot read {}: {e}; starting a fresh history",
                    self.path.display()
                );
                return fresh;
            }
        };
        match History::parse(&text) {
            Some(h) if h.boot_id == boot_id => h,
            Some(_) => fresh,
            None => {
                warn!(
                    "{} is corrupt; starting a fresh history",
                    self.path.display()
                );
                fresh
            }
        }
    }

    /// Writes atomically (a temporary file renamed over the old one), so a concurrent writer
    /// or a SIGKILL never leaves a torn file.
    pub fn save(&self, h: &History) {
        let tmp = self
            .path
            .with_extension(format!("tmp{}", std::process::id()));
        // One left by an earlier gwshim with this pid, SIGKILLed between create and rename:
        // the folder is private and the pid now ours, so it is stale.
        let _ = fs::remove_file(&tmp);
        let result = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&tmp)
            .and_then(|mut f| f.write_all(h.render().as_bytes()))
            .and_then(|()| fs::rename(&tmp, &self.path));
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            warn!("cannot write {}: {e}", self.path.display());
        }
    }
}

/// Where gwshim may keep its state, in order: --state-dir alone if given; else a folder systemd
/// made for gwshim (an entry of $RUNTIME_DIRECTORY, then of $STATE_DIRECTORY, whose name
/// starts with "gwshim": the drop-in's `RuntimeDirectory=gwshim-%N` with
/// `RuntimeDirectoryPreserve=yes`; a unit's other runtime folders are emptied at every
/// restart), then $XDG_RUNTIME_DIR/gwshim, /run/gwshim, and a per-user folder in the temp dir
/// (new at every start under PrivateTmp=yes).
pub fn folder_candidates(
    state_dir: Option<&Path>,
    env: &dyn Fn(&str) -> Option<std::ffi::OsString>,
    uid: u32,
    temp: &Path,
) -> Vec<PathBuf> {
    if let Some(dir) = state_dir {
        return vec![dir.to_path_buf()];
    }
    let made_for_gwshim = ["RUNTIME_DIRECTORY", "STATE_DIRECTORY"]
        .into_iter()
        .filter_map(env)
        .flat_map(|list| std::env::split_paths(&list).collect::<Vec<_>>())
        .filter(|d| {
            d.is_absolute()
                && d.file_name()
                    .is_some_and(|n| n.as_encoded_bytes().starts_with(b"gwshim"))
        });
    made_for_gwshim
        .chain(env("XDG_RUNTIME_DIR").map(|d| Path::new(&d).join("gwshim")))
        .chain([
            PathBuf::from("/run/gwshim"),
            temp.join(format!("gwshim-{uid}")),
        ])
        .collect()
}

/// The first usable folder of `folder_candidates`.
pub fn state_folder(state_dir: Option<&Path>) -> Option<PathBuf> {
    let uid = nix::unistd::getuid().as_raw();
    let candidates = folder_candidates(
        state_dir,
        &|var| std::env::var_os(var),
        uid,
        &std::env::temp_dir(),
    );
    for dir in &candidates {
        match private_dir(dir, uid) {
            // Absolute: gwshim leaves its working directory once the child runs.
            Ok(()) => return Some(std::path::absolute(dir).unwrap_or_else(|_| dir.clone())),
            Err(e) => debug!("state folder {}: {e}", dir.display()),
        }
    }
    let tried: Vec<String> = candidates.iter().map(|d| d.display().to_string()).collect();
    warn!("no usable private state folder ({})", tried.join(", "));
    None
}

/// Creates `dir` (0700) if needed and checks it is a real folder owned by this user.
fn private_dir(dir: &Path, uid: u32) -> std::io::Result<()> {
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    let meta = fs::symlink_metadata(dir)?;
    if !meta.is_dir() {
        return Err(std::io::Error::other("not a folder"));
    }
    if meta.uid() != uid || meta.mode() & 0o022 != 0 {
        return Err(std::io::Error::other("not a private folder of this user"));
    }
    if nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).is_err() {
        return Err(std::io::Error::other("not writable"));
    }
    Ok(())
}

/// Reads a state file of at most 64 KiB, never through a symlink. None: no file.
fn read_small(path: &Path) -> std::io::Result<Option<String>> {
    use std::io::Read;
    let file = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)
    {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        other => other?,
    };
    let mut text = String::new();
    file.take(64 * 1024).read_to_string(&mut text)?;
    Ok(Some(text))
}

/// How much longer than a wait systemd is asked to hold its timers: gwshim exits a few
/// milliseconds after the wait ends; the rest is slack for a loaded machine.
const HOLD_SLACK: Duration = Duration::from_secs(5);

/// Whether systemd runs a watchdog on gwshim itself: WATCHDOG_USEC set, and WATCHDOG_PID
/// naming gwshim or absent (sd_watchdog_enabled()'s rule). Pure.
pub fn watchdog_on_self(
    usec: Option<&std::ffi::OsStr>,
    pid: Option<&std::ffi::OsStr>,
    own_pid: u32,
) -> bool {
    let number = |v: &std::ffi::OsStr| v.to_str().and_then(|t| t.parse::<u64>().ok());
    let armed = usec.and_then(number).is_some_and(|u| u > 0);
    let mine = pid.is_none_or(|p| number(p) == Some(u64::from(own_pid)));
    armed && mine
}

/// The one message gwshim sends systemd as a wait of `wait` begins, so that none of the
/// unit's timers ends gwshim while it waits with no child, and none needs a wake-up:
/// `EXTEND_TIMEOUT_USEC=` pushes back whatever runs (TimeoutStartSec= before READY=1,
/// TimeoutStopSec=, TimeoutAbortSec= after a watchdog abort, and the watchdog's own timer;
/// systemd only ever extends, never shortens, and ignores it where no timer runs); with a
/// watchdog on gwshim, `WATCHDOG_USEC=` sizes it to the wait and `WATCHDOG=1` starts it
/// afresh. Both hold only for this run of the unit: systemd drops the override at the next
/// start (service_start()), so the child's own watchdog is back at its configured value. Pure.
pub fn hold_message(wait: Duration, watchdog: bool) -> String {
    let usec = wait.saturating_add(HOLD_SLACK).as_micros();
    let mut m = format!("EXTEND_TIMEOUT_USEC={usec}");
    if watchdog {
        m.push_str(&format!("\nWATCHDOG_USEC={usec}\nWATCHDOG=1"));
    }
    m
}

/// Waits `wait`, reaping orphans; a stop signal ends the wait at once and is returned.
pub fn wait(
    signals: &Signals,
    wait: Duration,
    main: Pid,
    stop: crate::signals::Set,
) -> Option<i32> {
    let deadline = timespan::deadline(wait);
    loop {
        match signals.wait(deadline) {
            Ok(None) => return None,
            Ok(Some(d)) if d.signo == nix::libc::SIGCHLD => {
                reap::reap_ended(main);
            }
            Ok(Some(d)) if stop.contains(d.signo) => {
                info!(
                    "{} during the restart wait: stopping now",
                    signals::name(d.signo)
                );
                return Some(d.signo);
            }
            Ok(Some(d)) => info!(
                "{} during the restart wait: no child to forward it to; ignored",
                signals::name(d.signo)
            ),
            Err(e) => {
                warn!("{e}; ending the restart wait");
                return None;
            }
        }
    }
}

/// "waiting 11.2 s so unit hermes-gateway.service stays under StartLimitBurst=5/600s".
pub fn describe(p: &Plan, s: &Settings, service: &str) -> String {
    match p.cause {
        Some(Cause::StartLimit) => format!(
            "waiting {} so {service} stays under StartLimitBurst={}/{}s",
            timespan::show(p.wait),
            s.burst,
            s.interval.as_secs_f64()
        ),
        _ => format!(
            "waiting {} (backoff: {} in a row{})",
            timespan::show(p.wait),
            count(p.fast_failures as usize, "fast failure", "fast failures"),
            if p.brake.is_zero() {
                String::new()
            } else {
                format!(
                    "; the gateway's own restart brake adds {}",
                    timespan::show(p.brake)
                )
            }
        ),
    }
}

/// The STATUS= line for `systemctl status` during a wait: "gateway failed 5 times fast; next
/// start in 16 s". The next start comes systemd's restart delay after gwshim exits.
pub fn status_line(p: &Plan, s: &Settings, noun: &str, planned: bool) -> String {
    let next = timespan::show(p.wait.saturating_add(s.next_restart_delay()));
    if p.cause == Some(Cause::StartLimit) {
        let what = if planned {
            "restarting as asked"
        } else {
            "failed"
        };
        return format!(
            "{noun} {what}; next start in {next} (StartLimitBurst={}/{}s)",
            s.burst,
            s.interval.as_secs_f64()
        );
    }
    let brake = if p.brake.is_zero() {
        String::new()
    } else {
        format!(", then its own restart brake: {}", timespan::show(p.brake))
    };
    format!(
        "{noun} failed {} fast; next start in {next}{brake}",
        count(p.fast_failures as usize, "time", "times")
    )
}

/// What the command line says about pacing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Options {
    pub disabled: bool,
    pub name: Option<String>,
    pub state_dir: Option<PathBuf>,
    /// --start-limit BURST/INTERVAL; INTERVAL zero means no limit.
    pub start_limit: Option<(u32, Duration)>,
    pub restart_sec: Option<Duration>,
    pub backoff: Option<(Duration, Duration)>,
    pub min_uptime: Option<Duration>,
    /// A stop signal ends a restart wait (--stop-signal).
    pub stop_signals: crate::signals::Set,
}

/// Pacing for one run of gwshim: set up before the child starts, consulted before exit.
pub struct Pacer {
    settings: Settings,
    backoff: Backoff,
    store: Option<Store>,
    service: String,
    boot_id: String,
    stop_signals: crate::signals::Set,
    /// The Hermes gateway's HERMES_HOME and restart brake, when the child is the gateway.
    gateway: Option<(PathBuf, crate::hermes::StormBrake)>,
    /// The wall clock at the start, seconds since the epoch (the gateway's log is in it).
    started_wall: f64,
    /// systemd runs a watchdog on gwshim (WATCHDOG_USEC for gwshim's pid).
    watchdog: bool,
}

impl Pacer {
    /// Works out the limits and records this start. None when pacing is off: asked so, or
    /// outside a systemd unit with no pacing option given (nobody would restart gwshim).
    pub fn start(opts: &Options, command: &[std::ffi::OsString]) -> Option<Pacer> {
        let explicit =
            opts.start_limit.is_some() || opts.restart_sec.is_some() || opts.backoff.is_some();
        let mut unit = crate::unit::current();
        if opts.disabled || (unit.is_none() && !explicit) {
            return None;
        }
        let assumed = opts.start_limit.is_none() || opts.restart_sec.is_none();
        // Asked even when both limits are given: NRestarts tells an operator's start apart.
        let mut settings = match &unit {
            Some((name, user)) => match crate::unit::query(name, *user, Duration::from_secs(2)) {
                Ok(s) => s,
                Err(e) if assumed => {
                    warn!(
                        "cannot read the limits of {name}: {e}; assuming systemd's defaults, 5 starts per 10 s, RestartSec=100ms (--start-limit and --restart-sec set them)"
                    );
                    Settings::default()
                }
                Err(e) => {
                    debug!("cannot read the settings of {name}: {e}");
                    Settings::default()
                }
            },
            None => Settings::default(),
        };
        if let Some((name, _)) = &unit
            && !crate::unit::is_main_process(&settings, std::process::id())
        {
            // Run by hand inside the unit (its INVOCATION_ID inherited): systemd restarts the
            // unit after its main process, not after this one.
            info!(
                "not the main process of {name} (MainPID={}): not pacing for it",
                settings.main_pid.unwrap_or(0)
            );
            unit = None;
            settings = Settings::default();
            if !explicit {
                return None;
            }
        }
        if settings.interval_forever
            && let Some((name, _)) = &unit
        {
            warn!(
                "{name} has StartLimitIntervalSec=infinity: systemd fails it after {} starts until reset-failed, whatever gwshim waits; pacing only backs off",
                settings.burst
            );
        }
        if let Some((burst, interval)) = opts.start_limit {
            (settings.burst, settings.interval) = (burst, interval);
        }
        if let Some(r) = opts.restart_sec {
            settings.restart_sec = r;
            settings.restart_next = None;
        }
        let mut backoff = Backoff::default();
        if let Some((base, cap)) = opts.backoff {
            (backoff.base, backoff.cap) = (base, cap);
        }
        if let Some(m) = opts.min_uptime {
            backoff.min_uptime = m;
        }
        let service = service_name(
            opts.name.as_deref(),
            unit.as_ref().map(|(u, _)| u.as_str()),
            command,
        );
        let store = Store::open(opts.state_dir.as_deref(), &service);
        let boot_id = boot_id();
        if let Some(store) = &store {
            let mut history = store.load(&boot_id);
            history.fast_failures = fast_failures_at_start(history.fast_failures, &settings);
            let keep_for = settings.interval.saturating_add(margin(settings.interval));
            let now = now_ms();
            let missed = missed_starts(history.n_restarts, settings.n_restarts);
            if missed > 0 {
                info!(
                    "{} of {service} since gwshim's last start never ran gwshim (NRestarts {} then, {} now: a failed ExecStartPre= or ExecCondition=?); counted toward its start limit",
                    count(missed as usize, "start", "starts"),
                    history.n_restarts.unwrap_or(0),
                    settings.n_restarts.unwrap_or(0)
                );
            }
            // When they were is unknown; now, the latest they can have been, is the safe side.
            for _ in 0..missed.min(MAX_STARTS as u32) {
                history.record_start(now, keep_for);
            }
            history.record_start(now, keep_for);
            history.n_restarts = settings.n_restarts;
            store.save(&history);
            debug!(
                "pacing {service}: start limit {}/{} (0: none), RestartSec {}; {}",
                settings.burst,
                timespan::show(settings.interval),
                timespan::show(settings.restart_sec),
                count(history.starts.len(), "recent start", "recent starts")
            );
        }
        let gateway = crate::hermes::gateway_home(command).map(|home| {
            (
                home,
                crate::hermes::StormBrake::from_env(&|v| std::env::var_os(v)),
            )
        });
        Some(Pacer {
            settings,
            backoff,
            store,
            service,
            boot_id,
            stop_signals: opts.stop_signals,
            gateway,
            started_wall: wall_now(),
            watchdog: watchdog_on_self(
                std::env::var_os("WATCHDOG_USEC").as_deref(),
                std::env::var_os("WATCHDOG_PID").as_deref(),
                std::process::id(),
            ),
        })
    }

    /// Before exiting with `status`: waits as the plan says, if systemd will start the unit
    /// again. Never after a requested stop. Returns the status to exit with: `status`, or 0
    /// when a stop signal ended the wait. `notifier` gets the STATUS= line, `keeper` the
    /// message that holds systemd's timers off during the wait (`hold_message`): the same
    /// notifier, or with the relay off gwshim's own one for that message alone.
    #[allow(clippy::too_many_arguments)]
    pub fn before_exit(
        &self,
        status: i32,
        run: &Run,
        uptime: Duration,
        signals: &Signals,
        main: Pid,
        notifier: Option<&crate::notify::Notifier>,
        keeper: Option<&crate::notify::Notifier>,
    ) -> i32 {
        if run.stop.is_some() || !crate::unit::will_restart(status, &self.settings) {
            return status;
        }
        let planned = is_planned_restart(run, status);
        let mut history = match &self.store {
            Some(store) => store.load(&self.boot_id),
            None => History::default(),
        };
        // The gateway's own brake: its sleep at this start was no uptime, and its sleep at
        // the next one counts toward the backoff.
        let log = self
            .gateway
            .as_ref()
            .map(|(home, brake)| crate::hermes::read_starts_log(home, *brake));
        let slept = log
            .as_ref()
            .map_or(Duration::ZERO, |l| l.slept_since(self.started_wall));
        let p = plan(
            &history,
            now_ms(),
            uptime.saturating_sub(slept),
            planned,
            &self.settings,
            &self.backoff,
            log.as_ref(),
        );
        if !p.brake.is_zero() {
            info!(
                "the gateway will sleep {} at its next start (its own restart brake){}",
                timespan::show(p.brake),
                if slept.is_zero() {
                    String::new()
                } else {
                    format!("; it slept {} at this one", timespan::show(slept))
                }
            );
        }
        history.fast_failures = p.fast_failures;
        if let Some(store) = &self.store {
            store.save(&history);
        }
        if p.wait.is_zero() {
            return status;
        }
        let how = if planned {
            "restarted as asked"
        } else {
            "failed"
        };
        info!(
            "child {how} after {}; {}",
            timespan::show(uptime),
            describe(&p, &self.settings, &self.service)
        );
        if let Some(n) = notifier {
            n.status(&status_line(&p, &self.settings, n.noun, planned));
        }
        // One message for the whole wait, so the wait itself needs no wake-up. Without a
        // socket (systemd gave none: no notify type, no watchdog) no timer of systemd's can
        // end gwshim while it waits with no child.
        if let Some(k) = keeper {
            k.tell(&hold_message(p.wait, self.watchdog));
        }
        if wait(signals, p.wait, main, self.stop_signals).is_none() {
            return status;
        }
        if let Some(n) = notifier {
            n.stopping("stopping: asked to during the restart wait");
        }
        0
    }

    /// The unit's NotifyAccess= as systemd answered (for the notify relay).
    pub fn notify_access(&self) -> Option<&str> {
        self.settings.notify_access.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unit::Restart;

    #[test]
    fn knows_a_planned_restart() {
        let run = |end, usr1: bool| Run {
            end,
            stop: None,
            reached: signals::Set::of(if usr1 { &[nix::libc::SIGUSR1][..] } else { &[] }),
        };
        // (how the child ended, SIGUSR1 reached it, gwshim's status) -> planned
        let table = [
            (Termination::Exited(75), false, 75, true),
            (Termination::Exited(75), true, 75, true),
            (Termination::Exited(1), true, 75, true),
            (Termination::Exited(1), false, 75, false),
            (Termination::Signaled(9), false, 75, false),
            (Termination::Exited(75), false, 70, false),
            (Termination::Exited(3), false, 3, false),
        ];
        for (end, usr1, status, want) in table {
            assert_eq!(
                is_planned_restart(&run(end, usr1), status),
                want,
                "{end:?} {usr1} {status}"
            );
        }
    }

    fn settings(burst: u32, interval_s: u64, restart_ms: u64) -> Settings {
        Settings {
            restart: Restart::OnFailure,
            force_status: vec![75],
            prevent_status: vec![78],
            burst,
            interval: Duration::from_secs(interval_s),
            restart_sec: Duration::from_millis(restart_ms),
            ..Settings::default()
        }
    }

    #[test]
    fn knows_a_watchdog_on_gwshim_itself() {
        let os = |s: &'static str| Some(std::ffi::OsStr::new(s));
        // (WATCHDOG_USEC, WATCHDOG_PID, gwshim's pid) -> on
        let table = [
            (os("3000000"), os("42"), 42, true),
            (os("3000000"), None, 42, true),
            (os("3000000"), os("43"), 42, false), // the variables were meant for another
            (os("0"), os("42"), 42, false),
            (os("x"), os("42"), 42, false),
            (os("3000000"), os("x"), 42, false),
            (None, os("42"), 42, false),
            (None, None, 42, false),
        ];
        for (usec, pid, own, want) in table {
            assert_eq!(watchdog_on_self(usec, pid, own), want, "{usec:?} {pid:?}");
        }
    }

    #[test]
    fn one_message_holds_the_timers_for_the_wait() {
        let table = [
            (
                Duration::from_secs(32),
                false,
                "EXTEND_TIMEOUT_USEC=37000000",
            ),
            (
                Duration::from_millis(1500),
                true,
                "EXTEND_TIMEOUT_USEC=6500000\nWATCHDOG_USEC=6500000\nWATCHDOG=1",
            ),
            // the longest wait (a start-limit window) stays a plain number
            (
                Duration::from_secs(crate::timespan::MAX_SECS),
                false,
                "EXTEND_TIMEOUT_USEC=4294967300000000",
            ),
        ];
        for (wait, watchdog, want) in table {
            assert_eq!(hold_message(wait, watchdog), want, "{wait:?} {watchdog}");
        }
    }

    #[test]
    fn waits_for_the_start_limit() {
        let s = settings(5, 10, 100); // margin 1 s
        let ms = Duration::from_millis;
        let table: &[(&[u64], u64, Duration)] = &[
            (&[], 0, ms(0)),
            (&[1000], 1100, ms(0)),
            (&[0, 100, 200, 300], 400, ms(0)),
            // 5 starts in the window: the next must come 11 s after the first
            (&[0, 100, 200, 300, 400], 500, ms(11_000 - 600)),
            (&[0, 100, 200, 300, 400, 20_000], 20_100, ms(0)),
            (
                &[5_000, 6_000, 7_000, 8_000, 9_000],
                9_500,
                ms(16_000 - 9_600),
            ),
            // long past: no wait
            (&[0, 1, 2, 3, 4], 50_000, ms(0)),
            // a garbled state file (found by fuzzing): no overflow, never over one window
            (&[u64::MAX; 5], 5, ms(11_000)),
            (&[u64::MAX; 5], u64::MAX, ms(0)),
        ];
        for &(starts, now, want) in table {
            assert_eq!(rate_wait(starts, now, &s), want, "{starts:?} now={now}");
        }
        // StartLimitIntervalSec=0: no limit at all.
        assert_eq!(
            rate_wait(&[0, 1, 2, 3, 4, 5], 6, &settings(5, 0, 0)),
            Duration::ZERO
        );
    }

    #[test]
    fn keeps_one_slot_free_and_splits_a_burst_too_large_to_keep() {
        let with = |burst, interval_s, pre_can_fail| Settings {
            burst,
            interval: Duration::from_secs(interval_s),
            pre_can_fail,
            ..Settings::default()
        };
        let secs = Duration::from_secs;
        // (burst, interval, a start can fail before gwshim) -> (burst, interval) paced for
        let table = [
            (3, 30, false, 3, secs(30)),
            (3, 30, true, 2, secs(30)), // the last slot for a failed ExecStartPre=
            (1, 30, true, 1, secs(30)), // nothing to spare
            (0, 30, true, 0, secs(30)),
            (1024, 600, false, 1024, secs(600)),
            (1025, 600, false, 512, secs(300)), // k = 2
            (5000, 86_400, false, 1000, Duration::from_millis(17_280_000)), // k = 5
            (
                u32::MAX,
                86_400,
                false,
                1023,
                Duration::from_nanos(20_599_365),
            ),
        ];
        for (burst, interval, pre, want_burst, want_interval) in table {
            let (b, i) = paced_limit(&with(burst, interval, pre));
            assert_eq!(
                (b, i),
                (want_burst, want_interval),
                "{burst}/{interval}s {pre}"
            );
            // Never more than the unit's burst in any of its intervals.
            let k = interval_count(secs(interval), i);
            assert!(
                b <= MAX_STARTS && b * k <= burst as usize,
                "{burst} {b} {k}"
            );
        }
        // StartLimitBurst=3000 per 10 min (k = 3: 1000 per 200 s, margin 5 s): the 1001st start in
        // 200 s waits; a gwshim that kept 1024 starts against 3000 never would.
        let s = with(3000, 600, false);
        let starts: Vec<u64> = (0..1000).map(|i| i * 10).collect();
        let wait = rate_wait(&starts, 10_000, &s);
        assert_eq!(wait, Duration::from_millis(200_000 + 5_000 - 10_100));
        assert_eq!(rate_wait(&starts[..999], 10_000, &s), Duration::ZERO);
    }

    /// How many windows of `part` cover `whole`.
    fn interval_count(whole: Duration, part: Duration) -> usize {
        if part.is_zero() {
            return 1;
        }
        whole.as_nanos().div_ceil(part.as_nanos()) as usize
    }

    #[test]
    fn counts_starts_that_never_ran_gwshim() {
        // (NRestarts at gwshim's last start, NRestarts now) -> starts missed
        let table = [
            (Some(0), Some(1), 0),
            (Some(1), Some(2), 0),
            (Some(1), Some(3), 1), // one ExecStartPre= failed between
            (Some(2), Some(6), 3),
            (Some(4), Some(0), 0), // an operator's start: a fresh count
            (Some(4), Some(2), 2), // a fresh count began unseen: its first 2 starts missed
            (Some(4), Some(4), 4),
            (None, Some(3), 0), // an older state file
            (Some(1), None, 0), // systemd not asked
            (Some(0), Some(u32::MAX), u32::MAX - 1),
        ];
        for (before, now, want) in table {
            assert_eq!(missed_starts(before, now), want, "{before:?} {now:?}");
        }
    }

    #[test]
    fn the_gateways_own_brake_counts_toward_the_backoff() {
        use crate::hermes::{StartsLog, StormBrake};
        let ms = Duration::from_millis;
        let now_wall = 1_000_000.0;
        // The gateway's starts log: starts this many seconds ago.
        let log = |ago: &[f64]| StartsLog {
            starts: ago.iter().map(|a| now_wall - a).collect(),
            now: now_wall,
            brake: StormBrake::default(),
        };
        let s = settings(0, 0, 500); // no start limit; RestartSec=500ms
        let b = Backoff::default();
        let h = |fast_failures| History {
            boot_id: "b".into(),
            starts: vec![0],
            fast_failures,
            ..History::default()
        };
        let five = [10.0, 9.0, 8.0, 7.0, 6.0];
        let eight = [20.0, 18.0, 16.0, 14.0, 12.0, 10.0, 8.0, 6.0];
        // (fast failures before, gateway's log, wait, its sleep at the next start)
        let table: Vec<(u32, Option<StartsLog>, Duration, Duration)> = vec![
            // not the gateway: gwshim's backoff, 16 s minus RestartSec
            (4, None, ms(15_500), ms(0)),
            // its 6th start in 120 s sleeps 10 s: gwshim waits 16 - 0.5 - 10 s
            (4, Some(log(&five)), ms(5_500), ms(10_000)),
            // its 9th sleeps 80 s, longer than gwshim's 4 s: gwshim adds nothing
            (2, Some(log(&eight)), ms(0), ms(80_000)),
            // a quiet log: no sleep, gwshim's backoff alone
            (4, Some(log(&[500.0])), ms(15_500), ms(0)),
            // the oldest start leaves its window 10 s from now: still a 10 s sleep at 5.5 s
            (
                4,
                Some(log(&[110.0, 9.0, 8.0, 7.0, 6.0])),
                ms(5_500),
                ms(10_000),
            ),
            // ... 3 s from now: past it no sleep, so gwshim's full backoff
            (
                4,
                Some(log(&[117.0, 9.0, 8.0, 7.0, 6.0])),
                ms(15_500),
                ms(0),
            ),
            // a log hermes could not read: no brake
            (
                4,
                Some(StartsLog {
                    brake: StormBrake {
                        max_starts: 0,
                        ..StormBrake::default()
                    },
                    ..log(&five)
                }),
                ms(15_500),
                ms(0),
            ),
        ];
        for (before, gateway, wait, brake) in table {
            let p = plan(&h(before), 1000, ms(100), false, &s, &b, gateway.as_ref());
            assert_eq!((p.wait, p.brake), (wait, brake), "{before} {gateway:?}");
            // Down for the longer of the two brakes alone, never their sum.
            let alone_gwshim = backoff_delay(before + 1, &b);
            let alone_gateway =
                ms(500) + gateway.as_ref().map_or(ms(0), |g| g.sleep_after(ms(500)));
            let down = p.wait + ms(500) + p.brake;
            assert!(
                down <= alone_gwshim.max(alone_gateway) + ms(1),
                "{before} {gateway:?}: down {down:?}"
            );
            assert!(down >= alone_gwshim.min(down), "{down:?}");
        }
        // The start limit is never shortened: 3 per 30 s, the 4th 33 s after the first.
        let limited = settings(3, 30, 500);
        let starts = History {
            starts: vec![0, 100, 200],
            ..h(4)
        };
        let p = plan(
            &starts,
            1000,
            ms(100),
            false,
            &limited,
            &b,
            Some(&log(&five)),
        );
        assert_eq!(
            (p.wait, p.cause),
            (ms(33_000 - 1_500), Some(Cause::StartLimit))
        );
        // A planned restart waits for nothing but the limit; the sleep is still told.
        let p = plan(&h(4), 1000, ms(100), true, &s, &b, Some(&log(&five)));
        assert_eq!((p.wait, p.brake), (ms(0), ms(10_000)));
    }

    #[test]
    fn backs_off_exponentially() {
        let b = Backoff::default();
        let table = [
            (0, 0),
            (1, 1),
            (2, 2),
            (3, 4),
            (9, 256),
            (10, 300),
            (40, 300),
            (u32::MAX, 300),
        ];
        for (n, secs) in table {
            assert_eq!(backoff_delay(n, &b), Duration::from_secs(secs), "{n}");
        }
    }

    #[test]
    fn plans_waits() {
        let s = settings(5, 0, 100);
        let b = Backoff::default();
        let h = |fast_failures| History {
            boot_id: "b".into(),
            starts: vec![0],
            fast_failures,
            ..History::default()
        };
        let secs = Duration::from_secs;
        // (history failures, uptime, planned) -> (wait, failures after)
        let table = [
            (0, secs(1), false, Duration::from_millis(900), 1),
            (2, secs(1), false, Duration::from_millis(3900), 3),
            (5, secs(60), false, Duration::ZERO, 0),
            (3, secs(1), true, Duration::ZERO, 3),
            (3, secs(60), true, Duration::ZERO, 0),
        ];
        for (failures, uptime, planned, wait, after) in table {
            let p = plan(&h(failures), 1000, uptime, planned, &s, &b, None);
            assert_eq!(
                (p.wait, p.fast_failures),
                (wait, after),
                "{failures} {uptime:?} {planned}"
            );
        }
        // The start limit wins when it asks for longer.
        let limited = settings(1, 60, 100);
        let p = plan(&h(0), 1000, secs(1), false, &limited, &b, None);
        assert_eq!(p.cause, Some(Cause::StartLimit));
        assert_eq!(p.wait, Duration::from_millis(60_000 + 5_000 - 1_100));
    }

    #[test]
    fn adds_no_backoff_to_systemds_growing_delay() {
        let ms = Duration::from_millis;
        let h = |fast_failures| History {
            boot_id: "b".into(),
            starts: vec![0],
            fast_failures,
            ..History::default()
        };
        // RestartSec=500ms; RestartSteps/RestartMaxDelaySec as systemd 252/254/257 report them.
        let unit = |steps, max: Option<u64>, n, next: Option<u64>| Settings {
            restart_steps: steps,
            restart_max_delay: max.map(ms),
            n_restarts: Some(n),
            restart_next: next.map(ms),
            ..settings(3, 0, 500)
        };
        let b = Backoff::default();
        // (unit, fast failures before, wait, cause)
        let table = [
            // 252 (no such keys): gwshim's backoff, 4 s minus RestartSec
            (unit(0, None, 3, None), 2, ms(3500), Some(Cause::Backoff)),
            // 254+ with RestartMaxDelaySec=infinity: systemd's delay does not grow
            (unit(3, None, 3, None), 2, ms(3500), Some(Cause::Backoff)),
            // a growing delay, computed from NRestarts (254-256) or read (257): no backoff
            (unit(3, Some(5000), 3, None), 2, ms(0), None),
            (unit(3, Some(5000), 1, Some(1077)), 9, ms(0), None),
        ];
        for (s, before, wait, cause) in table {
            let p = plan(
                &h(before),
                1000,
                Duration::from_secs(1),
                false,
                &s,
                &b,
                None,
            );
            assert_eq!((p.wait, p.cause), (wait, cause), "{s:?}");
            assert_eq!(p.fast_failures, before + 1, "still counted");
        }
        // The start limit still holds, against systemd's next delay: 3 starts per 30 s; the
        // 4th would come 5 s (RestartMaxDelaySec) after an exit at 1 s, so wait 33 - 6 s.
        let limited = Settings {
            interval: Duration::from_secs(30),
            ..unit(3, Some(5000), 3, None)
        };
        let starts = History {
            starts: vec![0, 100, 200],
            ..h(2)
        };
        let p = plan(
            &starts,
            1000,
            Duration::from_secs(1),
            false,
            &limited,
            &b,
            None,
        );
        assert_eq!(
            (p.wait, p.cause),
            (ms(33_000 - 6_000), Some(Cause::StartLimit))
        );
    }

    #[test]
    fn an_operators_start_begins_a_fresh_backoff() {
        let with = |n| Settings {
            n_restarts: n,
            ..Settings::default()
        };
        // (fast failures stored, NRestarts at this start, fast failures that count)
        let table = [
            (4, Some(0), 0), // systemctl start/restart, reset-failed: fresh
            (4, Some(4), 4), // systemd's automatic restart: goes on
            (4, Some(1), 4),
            (4, None, 4), // systemd could not be asked: goes on
            (0, Some(0), 0),
        ];
        for (stored, n, want) in table {
            assert_eq!(
                fast_failures_at_start(stored, &with(n)),
                want,
                "{stored} {n:?}"
            );
        }
    }

    #[test]
    fn picks_state_folders_in_order() {
        let env_of = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        let tmp = Path::new("/tmp");
        let defaults = ["/run/gwshim", "/tmp/gwshim-1000"];
        type Vars = &'static [(&'static str, &'static str)];
        let table: &[(Vars, &[&str])] = &[
            (&[], &defaults),
            (
                &[("XDG_RUNTIME_DIR", "/run/user/1000")],
                &["/run/user/1000/gwshim", "/run/gwshim", "/tmp/gwshim-1000"],
            ),
            // the drop-in's RuntimeDirectory=gwshim-%N first
            (
                &[
                    ("RUNTIME_DIRECTORY", "/run/gwshim-hermes-gateway"),
                    ("XDG_RUNTIME_DIR", "/run/user/1000"),
                ],
                &[
                    "/run/gwshim-hermes-gateway",
                    "/run/user/1000/gwshim",
                    "/run/gwshim",
                    "/tmp/gwshim-1000",
                ],
            ),
            // the unit's own folders (emptied at restarts) are not gwshim's; relative skipped
            (
                &[
                    ("RUNTIME_DIRECTORY", "/run/hermes:/run/gwshim-x:gwshim-rel"),
                    ("STATE_DIRECTORY", "/var/lib/hermes:/var/lib/gwshim-x"),
                ],
                &[
                    "/run/gwshim-x",
                    "/var/lib/gwshim-x",
                    "/run/gwshim",
                    "/tmp/gwshim-1000",
                ],
            ),
        ];
        for &(vars, want) in table {
            let got = folder_candidates(None, &env_of(vars), 1000, tmp);
            let want: Vec<PathBuf> = want.iter().map(PathBuf::from).collect();
            assert_eq!(got, want, "{vars:?}");
        }
        let given = Path::new("/srv/state");
        assert_eq!(
            folder_candidates(
                Some(given),
                &env_of(&[("RUNTIME_DIRECTORY", "/run/gwshim-x")]),
                0,
                tmp
            ),
            vec![given.to_path_buf()],
            "--state-dir alone"
        );
    }

    #[test]
    fn state_file_round_trips_and_rejects_garbage() {
        let h = History {
            boot_id: "abc".into(),
            starts: vec![1, 5, 9],
            fast_failures: 2,
            n_restarts: None,
        };
        assert_eq!(History::parse(&h.render()), Some(h.clone()));
        let counted = History {
            n_restarts: Some(7),
            ..h.clone()
        };
        assert!(counted.render().ends_with("starts 1 5 9\nn-restarts 7\n"));
        assert_eq!(History::parse(&counted.render()), Some(counted));
        // A file from before the n-restarts line.
        assert_eq!(
            History::parse("gwshim-pacing 1\nboot abc\nfast-failures 2\nstarts 1 5 9\n"),
            Some(h.clone())
        );
        let empty = History {
            boot_id: "abc".into(),
            ..History::default()
        };
        assert_eq!(History::parse(&empty.render()), Some(empty));
        for bad in [
            "",
            "garbage",
            "gwshim-pacing 1\nboot abc\nfast-failures x\nstarts 1\n",
            "gwshim-pacing 1\nboot abc\nfast-failures 0\nstarts 5 1\n",
            "gwshim-pacing 1\nboot abc\nfast-failures 0\nstarts 1\nextra\n",
            "gwshim-pacing 2\nboot abc\nfast-failures 0\nstarts 1\n",
            // found by fuzzing: a boot id that would not render back to itself
            "gwshim-pacing 1\nboot c\r\r\nfast-failures 3\nstarts 999\n",
            "gwshim-pacing 1\nboot a b\nfast-failures 0\nstarts\n",
            "gwshim-pacing 1\nboot a\nfast-failures 0\nstarts\nn-restarts x\n",
            "gwshim-pacing 1\nboot a\nfast-failures 0\nstarts\nnrestarts 1\n",
            "gwshim-pacing 1\nboot a\nfast-failures 0\nstarts\nn-restarts 1\nmore\n",
        ] {
            assert_eq!(History::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn saves_over_a_temporary_file_left_by_a_killed_writer() {
        let dir = std::env::temp_dir().join(format!("gwshim-unit-{}-tmp", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let store = Store {
            path: dir.join("svc.pacing"),
        };
        let stale = dir.join(format!("svc.tmp{}", std::process::id()));
        fs::write(&stale, "gwshim-pacing 1\nboot x\nfast-f").unwrap();
        let h = History {
            boot_id: "b".into(),
            starts: vec![7],
            fast_failures: 1,
            ..History::default()
        };
        store.save(&h);
        assert_eq!(store.load("b"), h);
        assert!(!stale.exists());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn records_starts_within_the_horizon() {
        let mut h = History::default();
        for t in [0, 1_000, 50_000] {
            h.record_start(t, Duration::from_secs(20));
        }
        assert_eq!(h.starts, vec![50_000]);
        let mut h = History::default();
        for t in 0..2000 {
            h.record_start(t, Duration::from_secs(3600));
        }
        assert_eq!(h.starts.len(), MAX_STARTS);
        assert_eq!(h.starts.last(), Some(&1999));
    }

    #[test]
    fn names_services_apart() {
        let cmd = |words: &[&str]| {
            words
                .iter()
                .map(std::ffi::OsString::from)
                .collect::<Vec<_>>()
        };
        let a = service_name(None, None, &cmd(&["/usr/bin/hermes", "gateway", "run"]));
        let b = service_name(
            None,
            None,
            &cmd(&["/usr/bin/hermes", "-p", "x", "gateway", "run"]),
        );
        assert!(a.starts_with("hermes-") && a != b);
        assert_eq!(
            service_name(None, Some("hermes-gateway.service"), &[]),
            "hermes-gateway.service"
        );
        assert_eq!(
            service_name(Some("a/../b c"), Some("u.service"), &[]),
            "a_.._b_c"
        );
    }

    #[test]
    fn status_lines_say_when_the_next_start_comes() {
        let s = settings(5, 600, 5000);
        let plan = |secs: u64, cause, fast_failures| Plan {
            wait: Duration::from_secs(secs),
            cause: Some(cause),
            fast_failures,
            ..Plan::default()
        };
        let table = [
            (
                plan(11, Cause::Backoff, 5),
                false,
                "gateway failed 5 times fast; next start in 16 s",
            ),
            (
                plan(0, Cause::Backoff, 1),
                false,
                "gateway failed 1 time fast; next start in 5 s",
            ),
            (
                plan(60, Cause::StartLimit, 2),
                false,
                "gateway failed; next start in 65 s (StartLimitBurst=5/600s)",
            ),
            (
                plan(60, Cause::StartLimit, 0),
                true,
                "gateway restarting as asked; next start in 65 s (StartLimitBurst=5/600s)",
            ),
        ];
        for (p, planned, want) in table {
            assert_eq!(status_line(&p, &s, "gateway", planned), want);
        }
        // With RestartSteps= systemd's next delay is not RestartSec: the line says systemd's.
        let growing = Settings {
            restart_next: Some(Duration::from_secs(20)),
            ..s.clone()
        };
        assert_eq!(
            status_line(&plan(11, Cause::Backoff, 5), &growing, "gateway", false),
            "gateway failed 5 times fast; next start in 31 s"
        );
        // The gateway's own brake at its next start, counted in the backoff.
        let braked = Plan {
            brake: Duration::from_secs(10),
            ..plan(1, Cause::Backoff, 5)
        };
        assert_eq!(
            status_line(&braked, &s, "gateway", false),
            "gateway failed 5 times fast; next start in 6 s, then its own restart brake: 10 s"
        );
        assert_eq!(
            describe(&braked, &s, "u.service"),
            "waiting 1 s (backoff: 5 fast failures in a row; the gateway's own restart brake adds 10 s)"
        );
    }
}
