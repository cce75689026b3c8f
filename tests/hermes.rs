//! gwshim around the real Hermes gateway: `hermes gateway run` from hermes-agent 0.19.0 (PyPI),
//! with no messaging platform configured, each run with a fresh temporary `HERMES_HOME` (and
//! `HOME`). Facts about the gateway: /work/shared/notes/hermes-gateway.md.
//!
//! The gateway comes from a venv made once and cached under `target/hermes-venv-0.19.0` (a
//! symlink into `target/hermes-venv-0.19.0.d/`, made only once pip has finished, so an
//! interrupted install is never taken for a good one; a lock file makes parallel test processes
//! install once). `GWSHIM_HERMES_VENV=DIR` uses an existing venv instead. If the venv cannot be
//! made (no python3, no network), every test prints `skipped: REASON` and passes, unless
//! `GWSHIM_NO_SKIP=1` (CI) or `GWSHIM_HERMES_REQUIRED=1` (these tests only) makes it a failure.
//!
//! Gateways run one at a time (a mutex), and every process started with a test's HERMES_HOME
//! in its environment is killed, by pid, when the test ends.
//!
//! Run only these: `cargo test --release --test hermes` (as root for the systemd case).

mod common;
mod skip;
mod systemd_harness;

use common::TempDir;
use nix::fcntl::{Flock, FlockArg};
use nix::libc;
use serde_json::Value;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread::sleep;
use std::time::{Duration, Instant};
use systemd_harness::{GWSHIM, Manager};

/// The hermes-agent release these tests run.
const HERMES_VERSION: &str = "0.19.0";
/// How long the gateway may take to come up (it takes a few seconds).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the gateway may take to drain and exit after a signal.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// `python3 -m venv` and `pip install` bounds.
const VENV_TIMEOUT: Duration = Duration::from_secs(120);
const PIP_TIMEOUT: Duration = Duration::from_secs(900);
/// How long to wait for another test process that is installing the venv.
const INSTALL_LOCK_TIMEOUT: Duration = Duration::from_secs(1000);

// ---------------------------------------------------------------------------------------------
// The venv

/// The venv with the gateway (`bin/hermes`, `bin/python`), or why there is none.
fn venv() -> Result<&'static Path, String> {
    static VENV: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    VENV.get_or_init(provision)
        .as_deref()
        .map_err(|e| e.clone())
}

/// The venv and the one-gateway-at-a-time guard, or None after printing why the test skips.
fn setup() -> Option<(&'static Path, MutexGuard<'static, ()>)> {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    match venv() {
        Ok(v) => Some((v, guard)),
        Err(reason) => {
            // GWSHIM_HERMES_REQUIRED=1 (older than GWSHIM_NO_SKIP) still makes this one fail.
            if std::env::var("GWSHIM_HERMES_REQUIRED").is_ok_and(|v| v == "1") {
                panic!(
                    "no hermes-agent {HERMES_VERSION} venv (GWSHIM_HERMES_REQUIRED=1): {reason}"
                );
            }
            skip::skip(&format!("no hermes-agent {HERMES_VERSION} venv: {reason}"));
            None
        }
    }
}

/// The installed hermes-agent version of a venv, if it has a working one.
fn installed_version(venv: &Path) -> Option<String> {
    if !venv.join("bin/hermes").is_file() {
        return None;
    }
    let mut cmd = Command::new(venv.join("bin/python"));
    cmd.args([
        "-c",
        "import importlib.metadata as m; print(m.version('hermes-agent'))",
    ]);
    let out = systemd_harness::run_bounded(cmd, Duration::from_secs(30)).ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn provision() -> Result<PathBuf, String> {
    let started = Instant::now();
    if let Some(dir) = std::env::var_os("GWSHIM_HERMES_VENV").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        return match installed_version(&dir) {
            Some(v) if v == HERMES_VERSION => Ok(dir),
            Some(v) => Err(format!(
                "GWSHIM_HERMES_VENV={} has hermes-agent {v}, not {HERMES_VERSION}",
                dir.display()
            )),
            None => Err(format!(
                "GWSHIM_HERMES_VENV={} has no working hermes",
                dir.display()
            )),
        };
    }
    // target/tmp -> target/
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .ok_or("no target folder")?
        .to_path_buf();
    let name = format!("hermes-venv-{HERMES_VERSION}");
    let link = target.join(&name);
    if installed_version(&link).as_deref() == Some(HERMES_VERSION) {
        return Ok(link);
    }
    fs::create_dir_all(&target).map_err(|e| format!("{}: {e}", target.display()))?;
    let _lock = install_lock(&target.join(format!("{name}.lock")))?;
    if installed_version(&link).as_deref() == Some(HERMES_VERSION) {
        return Ok(link); // another test process made it meanwhile
    }
    // A venv is not relocatable (its scripts name their python by absolute path): build it in
    // its final place under NAME.d/, then point the NAME symlink at it atomically.
    let store = target.join(format!("{name}.d"));
    if let Ok(entries) = fs::read_dir(&store) {
        for e in entries.flatten() {
            let _ = fs::remove_dir_all(e.path()); // unfinished earlier attempts (we hold the lock)
        }
    }
    let stamp = format!("{}-{}", std::process::id(), started.elapsed().as_nanos());
    let dir = store.join(&stamp);
    fs::create_dir_all(&store).map_err(|e| format!("{}: {e}", store.display()))?;
    eprintln!(
        "hermes tests: installing hermes-agent=={HERMES_VERSION} into {} (a few minutes, once)",
        dir.display()
    );
    let python = common::python().ok_or("no python3")?;
    let mut cmd = Command::new(python);
    cmd.args(["-m", "venv"]).arg(&dir);
    check_run(cmd, VENV_TIMEOUT, "python3 -m venv")?;
    let mut cmd = Command::new(dir.join("bin/pip"));
    cmd.args([
        "install",
        "--disable-pip-version-check",
        "--no-input",
        "-q",
        &format!("hermes-agent=={HERMES_VERSION}"),
    ]);
    if let Err(e) = check_run(cmd, PIP_TIMEOUT, "pip install") {
        let _ = fs::remove_dir_all(&dir);
        return Err(e);
    }
    if installed_version(&dir).as_deref() != Some(HERMES_VERSION) {
        let _ = fs::remove_dir_all(&dir);
        return Err("pip install finished but hermes does not run".into());
    }
    let tmp_link = target.join(format!("{name}.new"));
    let _ = fs::remove_file(&tmp_link);
    std::os::unix::fs::symlink(Path::new(&format!("{name}.d")).join(&stamp), &tmp_link)
        .and_then(|()| {
            // A real folder in the way (made by hand): move it aside.
            if link.is_dir() && !link.is_symlink() {
                fs::rename(&link, store.join("by-hand"))?;
            }
            fs::rename(&tmp_link, &link)
        })
        .map_err(|e| format!("{}: {e}", link.display()))?;
    eprintln!(
        "hermes tests: installed hermes-agent {HERMES_VERSION} in {:.0?}",
        started.elapsed()
    );
    Ok(link)
}

fn install_lock(path: &Path) -> Result<Flock<fs::File>, String> {
    let mut file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let deadline = Instant::now() + INSTALL_LOCK_TIMEOUT;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(lock),
            Err((f, _)) => file = f,
        }
        if Instant::now() > deadline {
            return Err(format!("{} still locked", path.display()));
        }
        sleep(Duration::from_millis(500));
    }
}

fn check_run(cmd: Command, timeout: Duration, what: &str) -> Result<(), String> {
    let out = systemd_harness::run_bounded(cmd, timeout).map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = err.lines().rev().take(5).collect();
    Err(format!(
        "{what} failed ({}): {}",
        out.status,
        tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
    ))
}

// ---------------------------------------------------------------------------------------------
// A gateway's home, and gwshim around it

/// A fresh HERMES_HOME (and HOME) for one test. On drop, every process that still has this
/// HERMES_HOME in its environment (the gateway, gwshim, anything they started) gets SIGKILL.
struct Home {
    tmp: TempDir,
    hermes_home: PathBuf,
    venv: PathBuf,
    /// How many gateways have come up in this home so far.
    runs: std::cell::Cell<usize>,
}

impl Home {
    fn new(tag: &str, venv: &Path) -> Home {
        let tmp = TempDir::new(&format!("hermes-{tag}"));
        let hermes_home = tmp.join("hermes");
        fs::create_dir_all(&hermes_home).expect("HERMES_HOME");
        fs::create_dir_all(tmp.join("home")).expect("HOME");
        Home {
            tmp,
            hermes_home,
            venv: venv.to_path_buf(),
            runs: Default::default(),
        }
    }

    fn pid_file(&self) -> PathBuf {
        self.hermes_home.join("gateway.pid")
    }

    fn lock_file(&self) -> PathBuf {
        self.hermes_home.join("gateway.lock")
    }

    /// `gwshim OPTS -- hermes gateway run` (hermes found through PATH), in its own process
    /// group, stdout and stderr (gwshim's lines and the gateway's) to a log file.
    fn gwshim(&self, opts: &[&str], log: &str) -> Gwshim {
        let log = self.tmp.join(log);
        let out = fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(GWSHIM);
        cmd.args(opts)
            .args(["--", "hermes", "gateway", "run"])
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .process_group(0);
        self.env(&mut cmd);
        common::default_signals(&mut cmd);
        let proc = cmd.spawn().expect("starting gwshim");
        Gwshim {
            pid: proc.id() as i32,
            proc,
            log,
        }
    }

    /// The environment of a gateway: this home, the venv first in PATH, nothing that would
    /// make it think it is supervised already.
    fn env(&self, cmd: &mut Command) {
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if k.starts_with("HERMES_")
                || k.starts_with("GWSHIM_")
                || k.starts_with("XDG_")
                || [
                    "INVOCATION_ID",
                    "NOTIFY_SOCKET",
                    "JOURNAL_STREAM",
                    "LISTEN_PID",
                    "LISTEN_FDS",
                    "WATCHDOG_PID",
                    "VIRTUAL_ENV",
                ]
                .contains(&k.as_ref())
            {
                cmd.env_remove(k.as_ref());
            }
        }
        let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into());
        cmd.env(
            "PATH",
            format!("{}:{path}", self.venv.join("bin").display()),
        )
        .env("HERMES_HOME", &self.hermes_home)
        .env("HOME", self.tmp.join("home"));
    }

    /// The gateway's runtime status file, `gateway_state.json`.
    fn state(&self) -> Option<Value> {
        serde_json::from_str(&fs::read_to_string(self.hermes_home.join("gateway_state.json")).ok()?)
            .ok()
    }

    /// The pid `gateway.pid` names, if it is the gateway's JSON record.
    fn recorded_pid(&self) -> Option<i32> {
        let v: Value = serde_json::from_str(&fs::read_to_string(self.pid_file()).ok()?).ok()?;
        v["pid"].as_i64().map(|p| p as i32)
    }

    /// Waits (at most START_TIMEOUT) until gwshim's child is a running gateway: gateway.pid
    /// names a child of gwshim, the gateway says `running` and has finished starting (see
    /// `started_runs`). Returns the gateway's pid.
    fn wait_up(&self, gw: &mut Gwshim) -> i32 {
        let t0 = Instant::now();
        loop {
            if let Some(status) = gw.try_wait() {
                panic!(
                    "gwshim exited ({status:?}) before the gateway came up; log:\n{}",
                    gw.log_text()
                );
            }
            if let Some(pid) = self.recorded_pid()
                && ppid(pid) == Some(gw.pid)
                && let Some(state) = self.state()
                && state["pid"].as_i64() == Some(pid as i64)
                && state["gateway_state"] == "running"
                && started_runs(&self.hermes_home) > self.runs.get()
            {
                self.runs.set(self.runs.get() + 1);
                eprintln!("gateway pid {pid} up after {:.1?}", t0.elapsed());
                return pid;
            }
            if t0.elapsed() > START_TIMEOUT {
                panic!(
                    "the gateway did not come up within {START_TIMEOUT:?}; gateway.pid: {:?}, \
                     state: {:?}; log:\n{}",
                    fs::read_to_string(self.pid_file()).ok(),
                    self.state(),
                    gw.log_text()
                );
            }
            sleep(Duration::from_millis(100));
        }
    }

    /// Whether somebody holds gateway.lock (false when there is none).
    fn lock_held(&self) -> bool {
        let Ok(file) = fs::File::open(self.lock_file()) else {
            return false;
        };
        Flock::lock(file, FlockArg::LockExclusiveNonblock).is_err()
    }

    /// The pids holding a flock on gateway.lock, from /proc/locks.
    fn lock_holders(&self) -> Vec<i32> {
        let Ok(meta) = fs::metadata(self.lock_file()) else {
            return Vec::new();
        };
        let text = fs::read_to_string("/proc/locks").unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                // "1: FLOCK  ADVISORY  WRITE 16859 08:01:1234 0 EOF" (MAJ:MIN:INODE)
                let f: Vec<&str> = l.split_whitespace().collect();
                let (kind, pid, dev_ino) = (f.get(1)?, f.get(4)?, f.get(5)?);
                let ino: u64 = dev_ino.rsplit(':').next()?.parse().ok()?;
                (*kind == "FLOCK" && ino == meta.ino()).then(|| pid.parse().ok())?
            })
            .collect()
    }

    /// Kills, by pid, every process whose environment names this HERMES_HOME.
    fn kill_all(&self) {
        kill_processes_with_env(&format!("HERMES_HOME={}", self.hermes_home.display()));
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// A running gwshim.
struct Gwshim {
    proc: Child,
    pid: i32,
    log: PathBuf,
}

impl Gwshim {
    fn try_wait(&mut self) -> Option<ExitStatus> {
        self.proc.try_wait().ok().flatten()
    }

    /// Waits (at most STOP_TIMEOUT) for gwshim to exit.
    fn wait(&mut self) -> ExitStatus {
        let t0 = Instant::now();
        match common::wait_timeout(&mut self.proc, STOP_TIMEOUT) {
            Some(status) => {
                eprintln!("gwshim exited {status:?} after {:.1?}", t0.elapsed());
                status
            }
            None => panic!(
                "gwshim did not exit within {STOP_TIMEOUT:?}; log:\n{}",
                self.log_text()
            ),
        }
    }

    fn signal(&self, sig: i32) {
        common::kill(self.pid, sig);
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log must hold `needle`.
    fn assert_log(&self, needle: &str) {
        let log = self.log_text();
        assert!(log.contains(needle), "no {needle:?} in the log:\n{log}");
    }
}

impl Drop for Gwshim {
    fn drop(&mut self) {
        // Its process group (the gateway has one of its own outside a terminal: Home's drop
        // ends it by its environment).
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.proc.kill();
        let _ = common::wait_timeout(&mut self.proc, Duration::from_secs(10));
    }
}

/// How many gateways have finished starting in this HERMES_HOME: `gateway_state: running` is
/// written before the end of the start (hooks, channel directory, cron), and a SIGTERM in that
/// window makes 0.19.0 exit 0 instead of 1 ("startup aborted"); the last line of a start is
/// "Gateway housekeeping started", in `logs/gateway.log`.
fn started_runs(hermes_home: &Path) -> usize {
    fs::read_to_string(hermes_home.join("logs/gateway.log"))
        .unwrap_or_default()
        .matches("Gateway housekeeping started")
        .count()
}

/// SIGKILLs, by pid, every process whose environment holds `entry`, until none is left (for
/// two seconds at most).
fn kill_processes_with_env(entry: &str) {
    for _ in 0..20 {
        let pids = processes_with_env(entry);
        if pids.is_empty() {
            return;
        }
        for p in pids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        sleep(Duration::from_millis(100));
    }
}

/// The pids (not our own) whose /proc/PID/environ holds exactly `entry`.
fn processes_with_env(entry: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut pids = Vec::new();
    for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(env) = fs::read(e.path().join("environ")) else {
            continue;
        };
        if env.split(|b| *b == 0).any(|v| v == entry.as_bytes()) {
            pids.push(pid);
        }
    }
    pids
}

/// State, ppid and start time (field 22) from /proc/PID/stat.
fn stat(pid: i32) -> Option<(char, i32, u64)> {
    let f = common::stat_fields(pid)?;
    Some((
        f.first()?.chars().next()?,
        f.get(1)?.parse().ok()?,
        f.get(19)?.parse().ok()?,
    ))
}

fn ppid(pid: i32) -> Option<i32> {
    stat(pid).map(|s| s.1)
}

/// Whether the process exists at all (a zombie counts).
fn exists(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Polls `cond` every 50 ms for at most `limit`.
fn wait_for(limit: Duration, cond: impl FnMut() -> bool) -> bool {
    common::wait_within(limit, Duration::from_millis(50), cond)
}

/// The environment of a process, as KEY=VALUE strings.
fn environ(pid: i32) -> Vec<String> {
    fs::read(format!("/proc/{pid}/environ"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

/// Stops gwshim with SIGTERM and checks it exits 0 after the gateway's 1.
fn stop_clean(gw: &mut Gwshim, gateway: i32) {
    gw.signal(libc::SIGTERM);
    let status = gw.wait();
    assert_eq!(status.code(), Some(0), "log:\n{}", gw.log_text());
    gw.assert_log(&format!("child pid {gateway} exited 1; exiting 0"));
}

// ---------------------------------------------------------------------------------------------
// 1. The gateway comes up under gwshim.

#[test]
fn gateway_comes_up_as_gwshims_child() {
    let Some((venv, _one)) = setup() else { return };
    let home = Home::new("up", venv);
    let mut gw = home.gwshim(&["-v"], "gwshim.log");
    let gateway = home.wait_up(&mut gw);

    // gateway.pid: the gateway's own record of itself, gwshim's child.
    let record: Value =
        serde_json::from_str(&fs::read_to_string(home.pid_file()).unwrap()).unwrap();
    assert_eq!(record["kind"], "hermes-gateway", "{record}");
    let (state, parent, start_time) = stat(gateway).expect("the gateway's /proc/PID/stat");
    assert_eq!(parent, gw.pid, "the gateway is gwshim's child");
    assert_ne!(state, 'Z');
    assert_eq!(record["start_time"].as_u64(), Some(start_time), "{record}");
    let argv: Vec<&str> = record["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        argv.ends_with(&["gateway", "run"]) && argv[0].ends_with("/hermes"),
        "{argv:?}"
    );

    // The lock is held, by the gateway.
    assert!(home.lock_held(), "nobody holds gateway.lock");
    wait_for(Duration::from_secs(5), || home.lock_holders() == [gateway]);
    assert_eq!(
        home.lock_holders(),
        vec![gateway],
        "gateway.lock inode {:?}, /proc/locks:\n{}",
        fs::metadata(home.lock_file()).map(|m| m.ino()),
        fs::read_to_string("/proc/locks").unwrap_or_default()
    );

    // Its environment: marked as supervised, none of gwshim's own variables.
    let env = environ(gateway);
    assert!(
        env.iter()
            .any(|v| v == "HERMES_GATEWAY_EXTERNAL_SUPERVISOR=1"),
        "{env:?}"
    );
    assert!(!env.iter().any(|v| v.starts_with("GWSHIM_")), "{env:?}");
    gw.assert_log(&format!(
        "the command is the Hermes gateway; its HERMES_HOME is {}",
        home.hermes_home.display()
    ));

    stop_clean(&mut gw, gateway);
}

// ---------------------------------------------------------------------------------------------
// 2. SIGTERM: the gateway drains and exits 1 (unexpected SIGTERM); gwshim exits 0.

#[test]
fn sigterm_drains_the_gateway_and_gwshim_exits_0() {
    let Some((venv, _one)) = setup() else { return };
    let home = Home::new("term", venv);
    let mut gw = home.gwshim(&[], "gwshim.log");
    let gateway = home.wait_up(&mut gw);
    stop_clean(&mut gw, gateway);
    gw.assert_log(&format!(
        "stop requested: SIGTERM reached child pid {gateway}"
    ));
    // The gateway saw SIGTERM and shut down through its own handler.
    gw.assert_log("Shutdown context: signal=SIGTERM");
    assert!(!exists(gateway), "the gateway is gone");
    assert!(!home.pid_file().exists(), "gateway.pid is gone");
    assert!(!home.lock_held(), "gateway.lock is free");
}

// ---------------------------------------------------------------------------------------------
// 3. SIGUSR1: the gateway's graceful restart; it exits 75 and so does gwshim.

#[test]
fn sigusr1_restarts_the_gateway_and_gwshim_exits_75() {
    let Some((venv, _one)) = setup() else { return };
    let home = Home::new("usr1", venv);
    let mut gw = home.gwshim(&[], "gwshim.log");
    let gateway = home.wait_up(&mut gw);
    gw.signal(libc::SIGUSR1);
    let status = gw.wait();
    assert_eq!(status.code(), Some(75), "log:\n{}", gw.log_text());
    gw.assert_log(&format!("child pid {gateway} exited 75; exiting 75"));
    assert!(!exists(gateway));
    assert!(!home.pid_file().exists(), "gateway.pid is gone");
    assert!(!home.lock_held());
}

/// A planned restart is no warning: under `-q` gwshim prints nothing of its own, and the line
/// it logs at the default level has no "warning:".
#[test]
fn a_planned_restart_prints_nothing_under_q() {
    let Some((venv, _one)) = setup() else { return };
    let home = Home::new("usr1-quiet", venv);
    for (opts, log) in [(&["-q"][..], "quiet.log"), (&[], "default.log")] {
        let _ = fs::remove_file(home.hermes_home.join("gateway-starts.log"));
        let mut gw = home.gwshim(opts, log);
        let gateway = home.wait_up(&mut gw);
        gw.signal(libc::SIGUSR1);
        assert_eq!(gw.wait().code(), Some(75), "{}", gw.log_text());
        let own: Vec<String> = gw
            .log_text()
            .lines()
            .filter(|l| l.starts_with("gwshim:"))
            .map(String::from)
            .collect();
        if opts == ["-q"] {
            assert!(own.is_empty(), "gwshim -q printed {own:?}");
        } else {
            let line = format!("gwshim: child pid {gateway} exited 75; exiting 75");
            assert!(own.iter().any(|l| l.starts_with(&line)), "{own:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 4. kill -9 of the gateway: gwshim exits 75 and cleans up; the next start is at once.

#[test]
fn sigkill_of_the_gateway_leaves_nothing_that_blocks_the_next_start() {
    let Some((venv, _one)) = setup() else { return };
    let home = Home::new("kill9", venv);
    let mut gw = home.gwshim(&[], "gwshim-1.log");
    let gateway = home.wait_up(&mut gw);
    common::kill(gateway, libc::SIGKILL);
    let status = gw.wait();
    assert_eq!(status.code(), Some(75), "log:\n{}", gw.log_text());
    gw.assert_log("exiting 75");
    // The gateway had no chance to clean up; gwshim did, right after it died.
    gw.assert_log(&format!("removed stale {}", home.pid_file().display()));
    assert!(!home.pid_file().exists(), "gateway.pid left behind");
    assert!(!home.lock_held(), "gateway.lock still held");

    let t0 = Instant::now();
    let mut gw2 = home.gwshim(&[], "gwshim-2.log");
    let gateway2 = home.wait_up(&mut gw2);
    let took = t0.elapsed();
    assert_ne!(gateway2, gateway);
    let log = gw2.log_text();
    for bad in ["already running", "race lost", "removed stale"] {
        assert!(
            !log.contains(bad),
            "{bad:?} in the second run's log:\n{log}"
        );
    }
    assert!(
        took < Duration::from_secs(30),
        "the second start took {took:?}"
    );
    stop_clean(&mut gw2, gateway2);
}

// ---------------------------------------------------------------------------------------------
// 5. Stale pid files planted before the start: the gateway comes up every time.

/// Plants `pid_text` as gateway.pid (and as gateway.lock, unlocked, if `lock`), runs gwshim,
/// checks the gateway comes up and gwshim's log says why the file was stale.
fn stale_case(tag: &str, pid_text: &str, lock: bool, why: &str) {
    let Some((venv, _one)) = setup() else { return };
    let home = Home::new(tag, venv);
    fs::write(home.pid_file(), pid_text).unwrap();
    if lock {
        fs::write(home.lock_file(), pid_text).unwrap();
    }
    let mut gw = home.gwshim(&[], "gwshim.log");
    let gateway = home.wait_up(&mut gw);
    gw.assert_log(&format!(
        "removed stale {}: {why}",
        home.pid_file().display()
    ));
    assert_eq!(home.lock_holders(), vec![gateway]);
    stop_clean(&mut gw, gateway);
}

/// The gateway's record for `pid` as 0.19.0 writes it.
fn record_for(venv: &Path, pid: i32, start_time: u64) -> String {
    serde_json::json!({
        "pid": pid,
        "kind": "hermes-gateway",
        "argv": [venv.join("bin/hermes"), "gateway", "run"],
        "start_time": start_time,
    })
    .to_string()
}

/// A pid that no longer exists (a child that ran and was reaped).
fn dead_pid() -> i32 {
    let mut c = Command::new("true").spawn().unwrap();
    let pid = c.id() as i32;
    c.wait().unwrap();
    pid
}

#[test]
fn stale_pid_file_naming_a_dead_pid() {
    // As a SIGKILL leaves it: both files, the lock unlocked.
    let Ok(venv) = venv() else {
        return stale_case("dead", "", false, "");
    };
    let pid = dead_pid();
    let text = record_for(venv, pid, 12345);
    stale_case("dead", &text, true, "nobody holds");
}

#[test]
fn stale_pid_file_naming_a_reused_pid() {
    let Ok(venv) = venv() else {
        return stale_case("reused", "", false, "");
    };
    // A live process with the recorded pid but another start time; no lock file, so the pid
    // decides. gwshim must leave that process alone.
    let mut other = Command::new("sleep").arg("300").spawn().unwrap();
    let pid = other.id() as i32;
    let (_, _, start) = stat(pid).unwrap();
    let text = record_for(venv, pid, start.saturating_sub(100));
    stale_case(
        "reused",
        &text,
        false,
        &format!("pid {pid} was reused (start time {start}"),
    );
    assert!(
        matches!(other.try_wait(), Ok(None)),
        "the process with the reused pid was not touched"
    );
    let _ = other.kill();
    let _ = other.wait();
}

#[test]
fn stale_pid_file_naming_a_zombie() {
    let Ok(venv) = venv() else {
        return stale_case("zombie", "", false, "");
    };
    // Our own child, exited and not yet waited for: a zombie with the recorded start time.
    let mut z = Command::new("true").spawn().unwrap();
    let pid = z.id() as i32;
    assert!(wait_for(Duration::from_secs(10), || stat(pid)
        .is_some_and(|s| s.0 == 'Z')));
    let (_, _, start) = stat(pid).unwrap();
    let text = record_for(venv, pid, start);
    stale_case("zombie", &text, false, &format!("pid {pid} is a zombie"));
    z.wait().unwrap();
}

#[test]
fn stale_pid_file_in_the_old_bare_integer_format() {
    let pid = dead_pid();
    stale_case(
        "bare",
        &format!("{pid}\n"),
        false,
        &format!("pid {pid} does not exist"),
    );
}

// ---------------------------------------------------------------------------------------------
// 6. Orphans: processes the gateway starts and abandons end up gwshim's, reaped or killed.

/// A gateway hook (HERMES_HOME/hooks/orphans/) run at `gateway:startup`: like tool commands,
/// three commands in new sessions that background a process and exit at once, orphaning it.
const HOOK_YAML: &str = "name: orphans\ndescription: gwshim test\nevents: [\"gateway:startup\"]\n";
const HOOK_PY: &str = r#"
import os, subprocess

def spawn(name, script):
    d = os.environ["HERMES_HOME"] + "/orphans"
    subprocess.Popen(["/bin/sh", "-c", script + " echo $! > %s/%s.tmp && mv %s/%s.tmp %s/%s.pid"
                      % (d, name, d, name, d, name)], start_new_session=True)

def handle(event_type, context):
    # ends on SIGTERM
    spawn("term", "sleep 300 &")
    # ignores SIGTERM: needs SIGKILL after --grace
    spawn("stubborn", "(trap '' TERM; exec sleep 300) &")
    # exits on its own after a second, while the gateway runs: must be reaped, no zombie
    spawn("short", "sleep 1 &")
"#;

#[test]
fn orphans_of_the_gateway_are_reaped_or_ended() {
    let Some((venv, _one)) = setup() else { return };
    let home = Home::new("orphans", venv);
    let hook = home.hermes_home.join("hooks/orphans");
    fs::create_dir_all(&hook).unwrap();
    fs::create_dir_all(home.hermes_home.join("orphans")).unwrap();
    fs::write(hook.join("HOOK.yaml"), HOOK_YAML).unwrap();
    fs::write(hook.join("handler.py"), HOOK_PY).unwrap();

    let mut gw = home.gwshim(&["--grace", "2"], "gwshim.log");
    let gateway = home.wait_up(&mut gw);
    let read_pid = |name: &str| -> i32 {
        let path = home.hermes_home.join(format!("orphans/{name}.pid"));
        let mut pid = None;
        let ok = wait_for(Duration::from_secs(20), || {
            pid = fs::read_to_string(&path)
                .ok()
                .and_then(|t| t.trim().parse().ok());
            pid.is_some()
        });
        assert!(ok, "the hook did not start {name}; log:\n{}", gw.log_text());
        pid.unwrap()
    };
    let (term, stubborn, short) = (read_pid("term"), read_pid("stubborn"), read_pid("short"));
    gw.assert_log("[hooks] Loaded hook 'orphans'");

    // Orphaned at once (their shell exited): gwshim, the subreaper, adopts them.
    for pid in [term, stubborn] {
        assert!(
            wait_for(Duration::from_secs(10), || ppid(pid) == Some(gw.pid)),
            "pid {pid} not adopted by gwshim: {:?}",
            stat(pid)
        );
    }
    // The short one exits while the gateway runs: gwshim reaps it, no zombie stays.
    assert!(
        wait_for(Duration::from_secs(10), || !exists(short)),
        "pid {short} left as {:?}",
        stat(short)
    );
    let zombies: Vec<i32> = common::children_of(gw.pid)
        .into_iter()
        .filter(|p| stat(*p).is_some_and(|s| s.0 == 'Z'))
        .collect();
    assert!(zombies.is_empty(), "zombie children of gwshim: {zombies:?}");
    assert!(exists(gateway));

    // The gateway stops; gwshim ends what it left behind (SIGTERM, then SIGKILL after 2 s).
    stop_clean(&mut gw, gateway);
    gw.assert_log("leftover process");
    gw.assert_log(&format!("pid {stubborn} needed SIGKILL"));
    for pid in [term, stubborn] {
        assert!(!exists(pid), "pid {pid} still there: {:?}", stat(pid));
    }
}

// ---------------------------------------------------------------------------------------------
// 7. Under a real systemd: the unit `hermes gateway install` writes (0.19.0, user variant) plus
//    the contrib drop-in, installed by contrib/hermes/install-dropin.sh.

const UNIT: &str = "hermes-gateway.service";
const INSTALL_DROPIN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/contrib/hermes/install-dropin.sh"
);

/// hermes_cli/gateway.py's user unit for 0.19.0 (no watchdog configured: Type=simple), with its
/// paths filled in. Not its `StandardOutput=journal`/`StandardError=journal`: the harness's
/// manager has no journal, its default sends the output to its log.
fn hermes_unit(venv: &Path, hermes_home: &Path, home: &Path) -> String {
    let py = venv.join("bin/python");
    let py = py.display();
    let bin = venv.join("bin");
    let hh = hermes_home.display();
    format!(
        "[Unit]
Description=Hermes Agent Gateway - Messaging Platform Integration
After=network-online.target
Wants=network-online.target
StartLimitIntervalSec=0

[Service]
Type=simple
ExecStart={py} -m hermes_cli.main gateway run
WorkingDirectory={hh}
Environment=\"PATH={}:/usr/local/bin:/usr/bin:/bin\"
Environment=\"VIRTUAL_ENV={}\"
Environment=\"HERMES_HOME={hh}\"
Environment=\"HOME={}\"
Restart=always
RestartSec=5
RestartForceExitStatus=75
RestartPreventExitStatus=78
KillMode=mixed
KillSignal=SIGTERM
ExecReload=/bin/kill -USR1 $MAINPID
ExecStopPost=-{py} -m gateway.cgroup_cleanup
TimeoutStopSec=60

[Install]
WantedBy=default.target
",
        bin.display(),
        venv.display(),
        home.display()
    )
}

/// Runs the install script in the manager's mount namespace, as `systemctl --user` sees it.
fn install_dropin(m: &Manager, args: &[&str]) -> String {
    let mut cmd = Command::new("nsenter");
    cmd.arg("--target")
        .arg(m.pid().to_string())
        .arg("--mount")
        .arg("/bin/bash")
        .arg(INSTALL_DROPIN)
        .args(args)
        .env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
        )
        .env("XDG_RUNTIME_DIR", m.runtime_dir())
        .env("HOME", m.dir().join("home"))
        .env("LANG", "C.UTF-8");
    let out = systemd_harness::run_bounded(cmd, Duration::from_secs(60)).expect("the script");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "install-dropin.sh {args:?} failed ({}): {text}{}",
        out.status,
        m.context()
    );
    text
}

/// The gateway's pid once gateway.pid names a running gateway whose parent is the unit's
/// main pid (gwshim), and that main pid.
fn wait_gateway_under_unit(m: &Manager, home: &Path, not: Option<i32>, run: usize) -> (i32, u32) {
    let pid_file = home.join("gateway.pid");
    let state_file = home.join("gateway_state.json");
    m.wait_until_every(
        "a gateway under gwshim in the unit",
        START_TIMEOUT + Duration::from_secs(10),
        Duration::from_millis(200),
        |m| {
            let st = m.state(UNIT);
            assert!(!st.is_failed(), "{UNIT} failed: {st:?}{}", m.context());
            let rec: Value = serde_json::from_str(&fs::read_to_string(&pid_file).ok()?).ok()?;
            let pid = rec["pid"].as_i64()? as i32;
            let state: Value = serde_json::from_str(&fs::read_to_string(&state_file).ok()?).ok()?;
            (st.is_running()
                && Some(pid) != not
                && ppid(pid) == Some(st.main_pid as i32)
                && state["pid"].as_i64() == Some(pid as i64)
                && state["gateway_state"] == "running"
                && started_runs(home) >= run)
                .then_some((pid, st.main_pid))
        },
    )
}

#[test]
fn systemd_unit_with_the_dropin_starts_reloads_and_stops() {
    let Some(t) = under_systemd() else { return };
    let (m, venv, hermes_home) = (&t.m, t.venv, &t.hermes_home);
    m.install_unit(UNIT, &hermes_unit(venv, hermes_home, &m.dir().join("home")));
    let original = m.prop(UNIT, "ExecStart");
    let py = venv.join("bin/python").display().to_string();
    assert_eq!(
        argv_of(&original),
        format!("{py} -m hermes_cli.main gateway run"),
        "{original}"
    );

    let dropin = m
        .dir()
        .join("home/.config/systemd/user")
        .join(format!("{UNIT}.d/gwshim.conf"));
    // --dry-run prints the drop-in it would write, and changes nothing.
    let dry = install_dropin(m, &["--gwshim", GWSHIM, "--dry-run"]);
    assert!(
        dry.contains(&format!("# {}", dropin.display()))
            && dry.contains(&format!(
                "' {GWSHIM} -- {py} -m hermes_cli.main gateway run"
            )),
        "{dry}"
    );
    assert!(!dropin.exists(), "--dry-run wrote {}", dropin.display());
    assert_eq!(
        m.prop(UNIT, "ExecStart"),
        original,
        "--dry-run changed the unit"
    );

    // The script wraps the unit's command in gwshim; a second run changes nothing.
    let out = install_dropin(m, &["--gwshim", GWSHIM]);
    let first = fs::read_to_string(&dropin).unwrap_or_else(|e| panic!("{e}: {out}"));
    let wrapped = m.prop(UNIT, "ExecStart");
    assert_eq!(
        argv_of(&wrapped),
        format!("{GWSHIM} -- {py} -m hermes_cli.main gateway run"),
        "{wrapped}\n{first}"
    );
    install_dropin(m, &["--gwshim", GWSHIM]);
    assert_eq!(fs::read_to_string(&dropin).unwrap(), first, "idempotent");
    assert_eq!(m.prop(UNIT, "ExecStart"), wrapped, "not gwshim in gwshim");

    // `hermes gateway install` again (as after `hermes update`): a new python path in the unit.
    // Run again, the script wraps the new command, with the options given after `--`.
    let py3 = venv.join("bin/python3").display().to_string();
    let unit_text = hermes_unit(venv, hermes_home, &m.dir().join("home"))
        .replace(&format!("ExecStart={py} "), &format!("ExecStart={py3} "));
    m.install_unit(UNIT, &unit_text);
    install_dropin(m, &["--gwshim", GWSHIM, "--", "--grace", "3"]);
    let command = format!("{py3} -m hermes_cli.main gateway run");
    assert_eq!(
        argv_of(&m.prop(UNIT, "ExecStart")),
        format!("{GWSHIM} --grace 3 -- {command}")
    );
    // Run again without options: the drop-in's --grace 3 stays.
    install_dropin(m, &["--gwshim", GWSHIM]);
    assert_eq!(
        argv_of(&m.prop(UNIT, "ExecStart")),
        format!("{GWSHIM} --grace 3 -- {command}"),
        "a re-run dropped gwshim's options"
    );
    let props = m.show(
        UNIT,
        &[
            "KillMode",
            "RestartPreventExitStatus",
            "RestartForceExitStatus",
        ],
    );
    assert_eq!(props["KillMode"], "mixed", "{props:?}");
    assert!(
        props["RestartPreventExitStatus"].contains("78"),
        "{props:?}"
    );
    assert!(props["RestartForceExitStatus"].contains("75"), "{props:?}");

    // start: the gateway comes up as gwshim's child, gwshim the unit's main process.
    let mark = m.log_mark();
    m.start(UNIT);
    let (gateway, main) = wait_gateway_under_unit(m, hermes_home, None, 1);
    let env = environ(gateway);
    assert!(
        env.iter()
            .any(|v| v == "HERMES_GATEWAY_EXTERNAL_SUPERVISOR=1"),
        "{env:?}"
    );

    // reload: ExecReload=/bin/kill -USR1 $MAINPID reaches the gateway through gwshim; it exits
    // 75, gwshim exits 75, systemd starts the unit again (RestartSec=5): a new gateway.
    let t0 = Instant::now();
    let _ = m.systemctl(&["reload", UNIT]); // may race the main process's exit; not checked
    let (gateway2, main2) = wait_gateway_under_unit(m, hermes_home, Some(gateway), 2);
    eprintln!("reload: new gateway after {:.1?}", t0.elapsed());
    assert_ne!(main2, main);
    m.wait_log(
        mark,
        &format!("child pid {gateway} exited 75; exiting 75"),
        Duration::from_secs(5),
    );
    let st = m.state(UNIT);
    assert_eq!(st.n_restarts, 1, "{st:?}");
    // gwshim's pacing history is in the folder the drop-in has systemd make for it
    // (RuntimeDirectory=gwshim-%N, preserved), not in a temp dir.
    let history = m
        .runtime_dir()
        .join("gwshim-hermes-gateway")
        .join(format!("{UNIT}.pacing"));
    assert!(history.is_file(), "no {}{}", history.display(), m.context());

    // stop: the gateway exits 1 (an unexpected SIGTERM), gwshim 0: inactive, not failed.
    m.stop(UNIT);
    let st = m.wait_state(UNIT, Duration::from_secs(10), |s| {
        s.active == "inactive" || s.active == "failed"
    });
    assert_eq!(st.active, "inactive", "{st:?}{}", m.context());
    assert_eq!(st.result, "success", "{st:?}");
    m.wait_log(
        mark,
        &format!("child pid {gateway2} exited 1; exiting 0"),
        Duration::from_secs(5),
    );
    assert!(!exists(gateway2));
    assert!(!hermes_home.join("gateway.pid").exists());

    // --remove --dry-run names the file and leaves it; --remove puts the original command back.
    let dry = install_dropin(m, &["--remove", "--dry-run"]);
    assert!(
        dry.contains(&format!("would remove {}", dropin.display())),
        "{dry}"
    );
    assert!(dropin.exists(), "--remove --dry-run removed the drop-in");
    install_dropin(m, &["--remove"]);
    assert!(!dropin.exists());
    assert_eq!(argv_of(&m.prop(UNIT, "ExecStart")), command);
}

/// Kills, by pid, every process whose environment holds this entry, when dropped.
struct KillOnDrop(String);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        kill_processes_with_env(&self.0);
    }
}

/// What a test of the gateway under a real `systemd --user` holds: a manager and a
/// HERMES_HOME in its folder. Fields drop in order: the gateway's processes are killed first,
/// then the manager goes, and the one-gateway guard is released last.
struct UnderSystemd {
    _cleanup: KillOnDrop,
    hermes_home: PathBuf,
    m: Manager,
    venv: &'static Path,
    _one: MutexGuard<'static, ()>,
}

/// The venv and a fresh manager, or None after saying why the test skips.
fn under_systemd() -> Option<UnderSystemd> {
    let (venv, one) = setup()?;
    let m = Manager::start_or_skip()?;
    let hermes_home = m.dir().join("hermes-home");
    fs::create_dir_all(&hermes_home).unwrap();
    Some(UnderSystemd {
        _cleanup: KillOnDrop(format!("HERMES_HOME={}", hermes_home.display())),
        hermes_home,
        m,
        venv,
        _one: one,
    })
}

/// The `argv[]=` part of a `systemctl show -p ExecStart` value.
fn argv_of(exec_start: &str) -> &str {
    let argv = exec_start
        .split_once("argv[]=")
        .and_then(|(_, r)| r.split_once(" ;"))
        .map_or("", |(a, _)| a);
    // The drop-in's `/bin/sh -c SCRIPT GWSHIM ...` (SCRIPT ends `exec "$@"`, which systemctl
    // shows as `exec "$$@"`): what sh runs.
    match argv.strip_prefix("/bin/sh -c ") {
        Some(rest) => rest.split_once("exec \"$$@\" ").map_or(argv, |(_, r)| r),
        None => argv,
    }
}

/// The control: the same unit without the drop-in. `systemctl stop` is an "unexpected" SIGTERM
/// for the gateway, it exits 1, and the unit ends `failed` (the false alarm the drop-in removes).
#[test]
fn systemd_unit_without_gwshim_ends_failed_on_stop() {
    let Some(t) = under_systemd() else { return };
    let (m, venv, hermes_home) = (&t.m, t.venv, &t.hermes_home);
    m.install_unit(UNIT, &hermes_unit(venv, hermes_home, &m.dir().join("home")));
    m.start(UNIT);
    let pid_file = hermes_home.join("gateway.pid");
    let st = m.wait_until_every(
        "the gateway to be up",
        START_TIMEOUT,
        Duration::from_millis(200),
        |m| {
            let st = m.state(UNIT);
            let rec: Value = serde_json::from_str(&fs::read_to_string(&pid_file).ok()?).ok()?;
            (st.is_running()
                && rec["pid"].as_i64() == Some(st.main_pid as i64)
                && started_runs(hermes_home) >= 1)
                .then_some(st)
        },
    );
    m.stop(UNIT);
    let end = m.wait_state(UNIT, Duration::from_secs(10), |s| {
        s.active == "inactive" || s.active == "failed"
    });
    assert_eq!(end.active, "failed", "{end:?}{}", m.context());
    assert_eq!(end.exec_main_status, 1, "{end:?}");
    assert!(!exists(st.main_pid as i32));
}

// ---------------------------------------------------------------------------------------------
// 8. Hermes's own commands while the gateway runs under gwshim: `hermes gateway status`,
//    `stop`, `restart` and `run --replace` (hermes_cli/gateway.py, 0.19.0). They find the
//    gateway through gateway.pid (the gateway, gwshim's child), the unit's MainPID (gwshim) and
//    a scan of command lines that also matches gwshim's own (`gwshim -- hermes gateway run`).
//    What users should run instead, where hermes's outcome is not the one wanted:
//    docs/hermes-commands.md.

/// Runs a hermes command (`hermes ARGS`) with this home's environment, bounded; its exit
/// status and output.
fn hermes_cli(home: &Home, args: &[&str]) -> (Option<i32>, String) {
    let mut cmd = Command::new(home.venv.join("bin/hermes"));
    cmd.args(args);
    home.env(&mut cmd);
    let out = systemd_harness::run_bounded(cmd, STOP_TIMEOUT).expect("hermes");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("hermes {}: {:?}\n{text}", args.join(" "), out.status.code());
    (out.status.code(), text)
}

/// A hermes command that runs a gateway in its own process (`gateway restart` by hand, `gateway
/// run --replace`), in its own process group, output to a log file.
fn hermes_spawn(home: &Home, args: &[&str], log: &str) -> Child {
    let out = fs::File::create(home.tmp.join(log)).expect("log file");
    let mut cmd = Command::new(home.venv.join("bin/hermes"));
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("log file"))
        .stderr(out)
        .process_group(0);
    home.env(&mut cmd);
    common::default_signals(&mut cmd);
    cmd.spawn().expect("hermes")
}

/// Every gateway of a HERMES_HOME: processes with it in their environment whose command line
/// is a hermes `gateway run` or `gateway restart` (which runs the gateway in-process by hand),
/// gwshim itself left out.
fn gateways(hermes_home: &Path) -> Vec<i32> {
    let mut pids = processes_with_env(&format!("HERMES_HOME={}", hermes_home.display()));
    pids.retain(|&p| {
        let comm = fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
        let cmdline = fs::read(format!("/proc/{p}/cmdline"))
            .unwrap_or_default()
            .split(|b| *b == 0)
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect::<Vec<_>>();
        let at = cmdline.iter().position(|w| w == "gateway");
        comm.trim() != "gwshim"
            && stat(p).is_some_and(|s| s.0 != 'Z')
            && at.is_some_and(|i| {
                matches!(
                    cmdline.get(i + 1).map(String::as_str),
                    Some("run" | "restart")
                )
            })
    });
    pids.sort_unstable();
    pids
}

/// A gateway that hermes started itself (outside gwshim) is up: it holds gateway.lock and has
/// finished starting.
fn wait_gateway_of(home: &Home, pid: i32) {
    let up = wait_for(START_TIMEOUT, || {
        home.lock_holders() == [pid] && started_runs(&home.hermes_home) > home.runs.get()
    });
    assert!(
        up,
        "pid {pid} did not come up as the gateway; lock holders {:?}",
        home.lock_holders()
    );
    home.runs.set(home.runs.get() + 1);
}

/// The gateway throttles itself from its 6th start in 120 s; these tests start it often.
fn forget_starts(home: &Home) {
    let _ = fs::remove_file(home.hermes_home.join("gateway-starts.log"));
}

#[test]
fn hermes_commands_by_hand() {
    let Some((venv, _one)) = setup() else { return };
    let home = Home::new("commands", venv);

    // status: lists the gateway (and gwshim, whose command line matches); changes nothing.
    let mut gw = home.gwshim(&[], "gwshim-status.log");
    let gateway = home.wait_up(&mut gw);
    let (code, out) = hermes_cli(&home, &["gateway", "status"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(&format!("Gateway is running (PID: {gateway}")),
        "{out}"
    );
    assert_eq!(gateways(&home.hermes_home), [gateway]);
    assert_eq!(ppid(gateway), Some(gw.pid));
    assert!(gw.try_wait().is_none(), "gwshim still runs");

    // stop: a planned stop of the gateway (SIGTERM with a marker, exit 0); gwshim exits 0.
    let (code, out) = hermes_cli(&home, &["gateway", "stop"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("Stopped gateway"), "{out}");
    assert_eq!(gw.wait().code(), Some(0), "{}", gw.log_text());
    gw.assert_log(&format!("child pid {gateway} exited 0; exiting 0"));
    assert_eq!(gateways(&home.hermes_home), [] as [i32; 0]);

    // restart: stops the gateway as above (gwshim exits 0) and runs the new one in the
    // `hermes gateway restart` process itself, outside gwshim: one gateway, unsupervised.
    forget_starts(&home);
    let mut gw = home.gwshim(&[], "gwshim-restart.log");
    let gateway = home.wait_up(&mut gw);
    let mut restart = hermes_spawn(&home, &["gateway", "restart"], "restart.log");
    assert_eq!(gw.wait().code(), Some(0), "{}", gw.log_text());
    gw.assert_log(&format!("child pid {gateway} exited 0; exiting 0"));
    wait_gateway_of(&home, restart.id() as i32);
    assert_eq!(gateways(&home.hermes_home), [restart.id() as i32]);
    common::kill(restart.id() as i32, libc::SIGINT);
    assert!(common::wait_timeout(&mut restart, STOP_TIMEOUT).is_some());

    // run --replace from another shell: a takeover (SIGTERM with a marker, exit 0); gwshim
    // exits 0 and the new gateway is the shell's.
    forget_starts(&home);
    let mut gw = home.gwshim(&[], "gwshim-replace.log");
    let gateway = home.wait_up(&mut gw);
    let mut replace = hermes_spawn(&home, &["gateway", "run", "--replace"], "replace.log");
    assert_eq!(gw.wait().code(), Some(0), "{}", gw.log_text());
    gw.assert_log(&format!("child pid {gateway} exited 0; exiting 0"));
    wait_gateway_of(&home, replace.id() as i32);
    assert_eq!(gateways(&home.hermes_home), [replace.id() as i32]);
    common::kill(replace.id() as i32, libc::SIGINT);
    assert!(common::wait_timeout(&mut replace, STOP_TIMEOUT).is_some());
}

/// `hermes gateway status` lists gwshim's pid among the gateway's, so a `kill -9` of the listed
/// pids, or of the wrong one, may hit gwshim. The gateway must not live on unsupervised: gwshim
/// gives it PR_SET_PDEATHSIG=SIGTERM by default, so it drains and exits.
#[test]
fn sigkill_of_gwshim_ends_the_gateway() {
    let Some((venv, _one)) = setup() else { return };
    let home = Home::new("gwshim-kill9", venv);
    let mut gw = home.gwshim(&[], "gwshim.log");
    let gateway = home.wait_up(&mut gw);
    gw.signal(libc::SIGKILL);
    gw.wait();
    let gone = wait_for(STOP_TIMEOUT, || {
        !exists(gateway) || stat(gateway).is_some_and(|s| s.0 == 'Z')
    });
    assert!(gone, "the gateway pid {gateway} lives on without gwshim");
    gw.assert_log("Shutdown context: signal=SIGTERM");
    assert_eq!(gateways(&home.hermes_home), [] as [i32; 0]);
}

/// Stands for the `hermes` command in the test manager's mount namespace, on a host: this test
/// machine is a Docker container (`/.dockerenv`), where hermes 0.19.0 reports a "docker
/// (foreground)" gateway and skips its systemd checks; on a host it does not. Only that
/// detection is set (`hermes_constants._container_detected = False`); the rest is hermes.
const HERMES_ON_A_HOST: &str = "import sys, hermes_constants as h; \
h._container_detected = False; sys.argv[0] = 'hermes'; \
from hermes_cli.main import main; sys.exit(main())";

/// The environment hermes runs with in the unit tests (the same for every command, so the unit
/// it generates matches the one installed and it never rewrites it).
fn unit_env(m: &Manager, venv: &Path, hermes_home: &Path, cmd: &mut Command) {
    cmd.env_clear()
        .env(
            "PATH",
            format!(
                "{}:/usr/local/bin:/usr/bin:/bin",
                venv.join("bin").display()
            ),
        )
        .env("HOME", m.dir().join("home"))
        .env("HERMES_HOME", hermes_home)
        .env("XDG_RUNTIME_DIR", m.runtime_dir())
        .env("LANG", "C.UTF-8");
}

/// `hermes ARGS` (or python with `code`) in the manager's mount namespace, bounded.
fn hermes_in(
    m: &Manager,
    venv: &Path,
    hermes_home: &Path,
    code: &str,
    args: &[&str],
) -> (Option<i32>, String) {
    let mut cmd = Command::new("nsenter");
    cmd.args(["-t", &m.pid().to_string(), "-m", "--"])
        .arg(venv.join("bin/python"))
        .args(["-c", code])
        .args(args);
    unit_env(m, venv, hermes_home, &mut cmd);
    let out = systemd_harness::run_bounded(cmd, Duration::from_secs(150)).expect("hermes");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("hermes {}: {:?}\n{text}", args.join(" "), out.status.code());
    (out.status.code(), text)
}

/// The unit's end state: active, gwshim its main process, exactly one gateway, gwshim's child.
fn assert_one_gateway_under_the_unit(m: &Manager, hermes_home: &Path, gateway: i32) {
    let st = m.state(UNIT);
    assert!(st.is_running(), "{st:?}{}", m.context());
    let comm = fs::read_to_string(format!("/proc/{}/comm", st.main_pid)).unwrap_or_default();
    assert_eq!(comm.trim(), "gwshim", "the main pid {}", st.main_pid);
    assert_eq!(gateways(hermes_home), [gateway], "{}", m.context());
    assert_eq!(ppid(gateway), Some(st.main_pid as i32));
}

/// The unit as `hermes gateway install` writes it, from hermes's own generator (`install`
/// itself refuses a HERMES_HOME in /tmp), as if on a host rather than in a container.
fn generated_unit(m: &Manager, venv: &Path, hermes_home: &Path) -> String {
    let gen_code = "import hermes_constants as h; h._container_detected = False; \
        from hermes_cli.gateway import generate_systemd_unit; print(generate_systemd_unit(), end='')";
    let (code, unit_text) = hermes_in(m, venv, hermes_home, gen_code, &[]);
    assert_eq!(code, Some(0), "{unit_text}");
    unit_text
}

/// Installs `unit_text` where hermes looks for it, its output to the test log (no journal
/// here), then the gwshim drop-in.
fn install_generated_unit(m: &Manager, unit_text: &str) {
    let unit_dir = m.dir().join("home/.config/systemd/user");
    fs::create_dir_all(unit_dir.join(format!("{UNIT}.d"))).unwrap();
    fs::write(unit_dir.join(UNIT), unit_text).unwrap();
    fs::write(
        unit_dir.join(format!("{UNIT}.d/harness.conf")),
        "[Service]\nStandardOutput=tty\nStandardError=tty\n",
    )
    .unwrap();
    m.systemctl_ok(&["daemon-reload"]);
    install_dropin(m, &["--gwshim", GWSHIM]);
}

#[test]
fn hermes_commands_under_the_unit() {
    let Some(t) = under_systemd() else { return };
    let (m, venv, hermes_home) = (&t.m, t.venv, &t.hermes_home);
    let unit_text = generated_unit(m, venv, hermes_home);
    install_generated_unit(m, &unit_text);
    assert!(m.prop(UNIT, "ExecStart").contains(GWSHIM));
    let hermes = |args: &[&str]| hermes_in(m, venv, hermes_home, HERMES_ON_A_HOST, args);

    let mark = m.log_mark();
    m.start(UNIT);
    let (gateway, _) = wait_gateway_under_unit(m, hermes_home, None, 1);
    // The drop-in's NotifyAccess=main gives gwshim a notify socket: `systemctl status` says
    // what it does.
    assert_eq!(
        m.prop(UNIT, "StatusText"),
        format!("gateway running, pid {gateway}")
    );

    // status: systemd's view, the unit running; nothing changes.
    let (code, out) = hermes(&["gateway", "status"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("gateway service is running"), "{out}");
    assert!(!out.contains("service is not active"), "{out}");
    assert_one_gateway_under_the_unit(m, hermes_home, gateway);

    // restart: SIGUSR1 to the gateway (gateway.pid), which drains and exits 75; gwshim exits
    // 75; hermes then restarts the unit: one new gateway under a new gwshim.
    let (code, out) = hermes(&["gateway", "restart"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("service restarted"), "{out}");
    let (gateway2, _) = wait_gateway_under_unit(m, hermes_home, Some(gateway), 2);
    m.wait_log(
        mark,
        &format!("child pid {gateway} exited 75; exiting 75"),
        Duration::from_secs(5),
    );
    assert_one_gateway_under_the_unit(m, hermes_home, gateway2);

    // run --replace from another shell: refused while the unit runs; nothing changes.
    let (code, out) = hermes(&["gateway", "run", "--replace"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("already running under systemd"), "{out}");
    assert_one_gateway_under_the_unit(m, hermes_home, gateway2);

    // stop: a planned stop (marker, then `systemctl stop`): the gateway exits 0, gwshim 0, the
    // unit inactive, not failed.
    let (code, out) = hermes(&["gateway", "stop"]);
    assert_eq!(code, Some(0), "{out}");
    let st = m.wait_state(UNIT, Duration::from_secs(10), |s| {
        s.active == "inactive" || s.active == "failed"
    });
    assert_eq!(
        (st.active.as_str(), st.result.as_str()),
        ("inactive", "success"),
        "{st:?}"
    );
    m.wait_log(
        mark,
        &format!("child pid {gateway2} exited 0; exiting 0"),
        Duration::from_secs(5),
    );
    assert_eq!(gateways(hermes_home), [] as [i32; 0]);
}

// ---------------------------------------------------------------------------------------------
// 9. The notify unit: with `gateway.systemd_watchdog_seconds` set, hermes writes Type=notify,
//    NotifyAccess=main and WatchdogSec=; the gateway sends READY=1 once it runs and WATCHDOG=1
//    while its event loop makes progress. Under gwshim they reach systemd through the relay.

/// The watchdog interval: long enough that a loaded test machine does not trip the gateway's own
/// lag check (a quarter of it).
const WATCHDOG_SECS: u64 = 10;

#[test]
fn notify_unit_with_the_watchdog_and_the_real_gateway() {
    let Some(t) = under_systemd() else { return };
    let (m, venv, hermes_home) = (&t.m, t.venv, &t.hermes_home);
    fs::write(
        hermes_home.join("config.yaml"),
        format!("gateway:\n  systemd_watchdog_seconds: {WATCHDOG_SECS}\n"),
    )
    .unwrap();
    let unit_text = generated_unit(m, venv, hermes_home);
    for line in [
        "Type=notify",
        "NotifyAccess=main",
        &format!("WatchdogSec={WATCHDOG_SECS}s"),
    ] {
        assert!(unit_text.contains(line), "{line}: {unit_text}");
    }
    install_generated_unit(m, &unit_text);

    // Active only once the gateway's READY=1 came (with its STATUS=): before, `activating`
    // with the gateway already running under gwshim.
    let mark = m.log_mark();
    m.systemctl_ok(&["start", "--no-block", UNIT]);
    let mut starting_seen = false;
    let gateway = m.wait_until_every(
        "the notify unit to be active",
        START_TIMEOUT,
        Duration::from_millis(100),
        |m| {
            let p = m.show(UNIT, &["ActiveState", "MainPID", "StatusText"]);
            let main: i32 = p["MainPID"].parse().unwrap_or(0);
            let gateway = common::children_of(main).pop();
            match p["ActiveState"].as_str() {
                "activating" if gateway.is_some() => starting_seen = true,
                "active" => return Some((gateway?, p["StatusText"].clone())),
                "failed" => panic!("{p:?}{}", m.context()),
                _ => {}
            }
            None
        },
    );
    let (gateway, status) = gateway;
    assert!(
        starting_seen,
        "never seen activating while the gateway started"
    );
    assert_eq!(
        status, "Hermes Gateway running",
        "the STATUS= sent with READY=1"
    );
    assert!(started_runs(hermes_home) <= 1);

    // Fed: still the same gateway after more than WatchdogSec.
    sleep(Duration::from_secs(WATCHDOG_SECS + 3));
    let st = m.state(UNIT);
    assert!(
        st.is_running() && st.n_restarts == 0,
        "{st:?}{}",
        m.context()
    );
    assert_eq!(common::children_of(st.main_pid as i32), [gateway]);

    // A gateway stopped with SIGSTOP feeds nothing: the watchdog fires (SIGABRT, then SIGCONT,
    // to gwshim, which forwards both), the gateway dies, and systemd starts the unit again.
    // Meanwhile a process given the gateway's NOTIFY_SOCKET (one of its tools, say) sends
    // STOPPING=1 and WATCHDOG=1: not the gateway, so the relay refuses both, as systemd would
    // without gwshim; the unit stays `active` until the watchdog fires.
    let socket = fs::read(format!("/proc/{gateway}/environ"))
        .unwrap()
        .split(|&b| b == 0)
        .find_map(|v| {
            v.strip_prefix(b"NOTIFY_SOCKET=")
                .map(|s| String::from_utf8_lossy(s).into_owned())
        })
        .expect("the gateway's NOTIFY_SOCKET");
    let t0 = Instant::now();
    common::kill(gateway, libc::SIGSTOP);
    let mut intruder = Command::new(systemd_harness::python())
        .args([
            "-c",
            "import os, socket, time\n\
             a = os.environ['NOTIFY_SOCKET']\n\
             a = '\\0' + a[1:] if a.startswith('@') else a\n\
             s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
             while True:\n    s.sendto(b'STOPPING=1\\nWATCHDOG=1', a)\n    time.sleep(0.5)\n",
        ])
        .env("NOTIFY_SOCKET", &socket)
        .spawn()
        .unwrap();
    m.wait_until_every(
        "the watchdog, the unit active until then",
        Duration::from_secs(WATCHDOG_SECS * 3),
        Duration::from_millis(200),
        |m| {
            let state = m.prop(UNIT, "ActiveState");
            let fired = m
                .log_since(mark)
                .contains(&format!("{UNIT}: Watchdog timeout"));
            assert!(fired || state == "active", "{state}{}", m.context());
            fired.then_some(())
        },
    );
    let _ = intruder.kill();
    let _ = intruder.wait();
    m.wait_log(
        mark,
        &format!("child pid {gateway} was killed by SIGABRT"),
        Duration::from_secs(10),
    );
    let (gateway2, _) = wait_gateway_under_unit(m, hermes_home, Some(gateway), 2);
    let st = m.wait_state(UNIT, START_TIMEOUT, |s| s.is_running());
    assert!(st.n_restarts >= 1, "{st:?}");
    eprintln!("watchdog restart took {:.1?}", t0.elapsed());
    assert!(!exists(gateway) || stat(gateway).is_some_and(|s| s.0 == 'Z'));
    assert_one_gateway_under_the_unit(m, hermes_home, gateway2);
    m.stop(UNIT);
}

// ---------------------------------------------------------------------------------------------
// 10. A gwshim that went away (`pip uninstall gwshim`, a venv rebuilt): the drop-in's sh runs
//     the gateway alone, with a warning, and gwshim again once it is back. The journal keeps
//     the tag the unit's lines had without gwshim.

/// The journal's entries (`journalctl -o json`) as (SYSLOG_IDENTIFIER, PRIORITY, MESSAGE).
fn journal_entries(m: &Manager) -> Vec<(String, String, String)> {
    m.journal("-o json")
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|v| {
            let field = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            (
                field("SYSLOG_IDENTIFIER"),
                field("PRIORITY"),
                field("MESSAGE"),
            )
        })
        .collect()
}

/// Waits until the unit is active and a gateway other than `not` is up, under gwshim (the main
/// process, the gateway its child) when `wrapped`, else as the main process itself: the
/// gateway's pid and the main pid.
fn wait_active(m: &Manager, hermes_home: &Path, wrapped: bool, not: Option<i32>) -> (i32, i32) {
    let pid_file = hermes_home.join("gateway.pid");
    m.wait_until_every(
        &format!("the unit active, the gateway up (under gwshim: {wrapped})"),
        START_TIMEOUT + Duration::from_secs(10),
        Duration::from_millis(200),
        |m| {
            let st = m.state(UNIT);
            assert!(!st.is_failed(), "{UNIT} failed: {st:?}{}", m.context());
            let rec: Value = serde_json::from_str(&fs::read_to_string(&pid_file).ok()?).ok()?;
            let gateway = rec["pid"].as_i64()? as i32;
            let main = st.main_pid as i32;
            let comm = fs::read_to_string(format!("/proc/{main}/comm")).unwrap_or_default();
            let shape = if wrapped {
                comm.trim() == "gwshim" && ppid(gateway) == Some(main)
            } else {
                gateway == main
            };
            (st.is_running() && shape && Some(gateway) != not && exists(gateway))
                .then_some((gateway, main))
        },
    )
}

#[test]
fn dropin_without_its_gwshim_runs_the_gateway_alone_and_the_journal_keeps_its_tag() {
    let Some(t) = under_systemd() else { return };
    let t0 = Instant::now();
    let at = |what: &str| eprintln!("{what}: {:.1} s", t0.elapsed().as_secs_f64());
    let (m, venv, hermes_home) = (&t.m, t.venv, &t.hermes_home);
    m.start_journald();
    // The notify unit hermes writes with its watchdog on: the unwrapped gateway's own READY=1
    // must reach systemd (NotifyAccess=main) for the unit to become active at all.
    fs::write(
        hermes_home.join("config.yaml"),
        format!("gateway:\n  systemd_watchdog_seconds: {WATCHDOG_SECS}\n"),
    )
    .unwrap();
    let unit_text = generated_unit(m, venv, hermes_home);
    assert!(unit_text.contains("StandardOutput=journal"), "{unit_text}");
    assert!(unit_text.contains("Type=notify"), "{unit_text}");
    m.install_unit(UNIT, &unit_text);

    // The control: the unit as hermes wrote it, its lines' tag.
    m.start(UNIT);
    let (gateway, main) = wait_active(m, hermes_home, false, None);
    assert_eq!(
        gateway, main,
        "without gwshim the gateway is the main process"
    );
    let tag = m.wait_until("the gateway's lines in the journal", START_TIMEOUT, |m| {
        let tags: Vec<String> = journal_entries(m)
            .into_iter()
            .filter(|(id, _, msg)| !id.is_empty() && !msg.starts_with("gwshim:") && id != "systemd")
            .map(|(id, _, _)| id)
            .collect();
        tags.last().cloned()
    });
    eprintln!("the gateway's lines without gwshim are tagged {tag:?}");
    at("control up");
    m.stop(UNIT);
    m.reset_failed(UNIT);
    let _ = fs::remove_file(hermes_home.join("gateway-starts.log"));

    // Under gwshim, a copy of it that the test removes and puts back.
    let bin = m.dir().join("gwshim-bin");
    fs::create_dir_all(&bin).unwrap();
    let copy = bin.join("gwshim");
    let put_back = || {
        fs::copy(GWSHIM, &copy).unwrap();
        fs::set_permissions(&copy, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    };
    put_back();
    at("control stopped");
    install_dropin(m, &["--gwshim", copy.to_str().unwrap()]);
    m.start(UNIT);
    let (gateway, main) = wait_active(m, hermes_home, true, None);
    assert_eq!(ppid(gateway), Some(main));
    // gwshim's "started" line, and the gateway's own lines, carry the tag of before.
    let entries = m.wait_until("gwshim's lines in the journal", START_TIMEOUT, |m| {
        let e = journal_entries(m);
        e.iter()
            .any(|(_, _, msg)| {
                msg.starts_with(&format!("gwshim: started {}", venv.display()))
                    || msg.starts_with("gwshim: the command is the Hermes gateway")
            })
            .then_some(e)
    });
    let own: Vec<&(String, String, String)> = entries
        .iter()
        .filter(|(_, _, msg)| msg.starts_with("gwshim:"))
        .collect();
    assert!(!own.is_empty());
    for (id, _, msg) in &own {
        assert_eq!(id, &tag, "gwshim's line {msg:?}");
    }
    let tagged = m.journal(&format!("-t {tag}"));
    assert!(
        tagged.contains("gwshim: "),
        "journalctl -t {tag}:\n{tagged}"
    );
    assert!(
        !entries
            .iter()
            .any(|(id, _, _)| id == "gwshim" || id == "sh"),
        "lines tagged gwshim or sh: {entries:?}"
    );
    m.stop(UNIT);
    let _ = fs::remove_file(hermes_home.join("gateway-starts.log"));

    // gwshim gone: the gateway alone is the main process, the unit active (its READY=1 came),
    // a warning in the journal.
    at("under gwshim, stopped");
    fs::remove_file(&copy).unwrap();
    m.start(UNIT);
    let (alone, main) = wait_active(m, hermes_home, false, Some(gateway));
    assert_eq!(alone, main, "the gateway is the main process");
    let warning = format!(
        "gwshim: warning: {} is missing or does not run: starting the gateway without gwshim",
        copy.display()
    );
    let warned = m.wait_until("the warning in the journal", Duration::from_secs(10), |m| {
        journal_entries(m)
            .into_iter()
            .find(|(_, _, msg)| *msg == warning)
    });
    assert_eq!(warned.1, "4", "at warning priority: {warned:?}");
    assert_eq!(warned.0, tag, "with the gateway's tag: {warned:?}");
    // `systemctl reload` (kill -USR1 $MAINPID) reaches it: it restarts (in this notify unit
    // 0.19.0 hands the unit to its replacement with MAINPID=, as it does without the drop-in),
    // and the unit stays up, the new gateway its main process.
    let _ = fs::remove_file(hermes_home.join("gateway-starts.log"));
    let _ = m.systemctl(&["reload", UNIT]);
    let (again, _) = wait_active(m, hermes_home, false, Some(alone));
    assert!(
        wait_for(STOP_TIMEOUT, || !exists(alone)
            || stat(alone).is_some_and(|s| s.0 == 'Z')),
        "the old gateway {alone} lives on"
    );
    at("alone, reloaded");
    put_back();
    let _ = fs::remove_file(hermes_home.join("gateway-starts.log"));
    m.systemctl_ok(&["restart", UNIT]);
    let (wrapped, main) = wait_active(m, hermes_home, true, Some(again));
    assert_eq!(ppid(wrapped), Some(main));
    m.stop(UNIT);
    let st = m.wait_state(UNIT, Duration::from_secs(10), |s| {
        s.active == "inactive" || s.active == "failed"
    });
    assert_eq!(st.active, "inactive", "{st:?}{}", m.context());
}

// ---------------------------------------------------------------------------------------------
// SIGUSR1 during the gateway's own restart brake (issue 22 item 7).

/// From its 6th start within 120 s the gateway sleeps before it starts (counted in
/// `$HERMES_HOME/gateway-starts.log`), with no SIGUSR1 handler yet: a `systemctl reload`
/// then kills it with SIGUSR1. gwshim ends as the planned restart that was asked for (exit
/// 75), not by dying of SIGUSR1, which systemd records as `Failed with result 'signal'`.
#[test]
fn sigusr1_during_the_gateways_restart_brake_is_a_planned_restart() {
    use std::os::unix::process::ExitStatusExt;
    let Some((venv, _one)) = setup() else { return };
    let home = Home::new("usr1-brake", venv);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    fs::write(
        home.hermes_home.join("gateway-starts.log"),
        format!("{now}\n").repeat(5),
    )
    .expect("pre-filling gateway-starts.log");
    let mut gw = home.gwshim(&["--no-pacing"], "gwshim.log");
    let agent_log = home.hermes_home.join("logs/agent.log");
    let braking = wait_for(START_TIMEOUT, || {
        fs::read_to_string(&agent_log).is_ok_and(|t| t.contains("backing off"))
    });
    assert!(braking, "the gateway never braked; log:\n{}", gw.log_text());
    gw.signal(libc::SIGUSR1);
    let status = gw.wait();
    assert_eq!(
        (status.code(), status.signal()),
        (Some(75), None),
        "log:\n{}",
        gw.log_text()
    );
    gw.assert_log("was killed by SIGUSR1; exiting 75 (restart requested");
}

// ---------------------------------------------------------------------------------------------

// 9. One brake, not two: 0.19.0 brakes its own restarts (from its 3rd start in 120 s here:
//    HERMES_GATEWAY_MAX_STARTS=2, which gwshim reads from the same environment; it sleeps 10 s,
//    then 20 s, ...), and gwshim backs off too (--backoff 6:300: 6 s, 12 s, 24 s after 1, 2, 3
//    fast failures). After the same crashes the gateway must be down for the longer of the two,
//    not their sum; its sleep is not uptime (it would reset gwshim's count); the unit's start
//    limit (4 per 60 s) still holds; STATUS= says the gateway is in its own brake.

#[test]
fn the_gateways_own_restart_brake_and_gwshims_backoff_do_not_add_up() {
    let Some(t) = under_systemd() else { return };
    let (m, venv, hermes_home) = (&t.m, t.venv, &t.hermes_home);
    let py = venv.join("bin/python").display().to_string();
    let unit = hermes_unit(venv, hermes_home, &m.dir().join("home"))
        .replace(
            "StartLimitIntervalSec=0",
            "StartLimitBurst=4\nStartLimitIntervalSec=60",
        )
        .replace(
            &format!("ExecStart={py} "),
            &format!("ExecStart={GWSHIM} --backoff 6:300 -- {py} "),
        )
        .replace(
            "RestartSec=5",
            "RestartSec=500ms\nNotifyAccess=main\nEnvironment=HERMES_GATEWAY_MAX_STARTS=2",
        );
    m.install_unit(UNIT, &unit);
    let kill9 = |pid: i32| {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        Instant::now()
    };
    let mark = m.log_mark();
    m.start(UNIT);
    let (g1, _) = wait_gateway_under_unit(m, hermes_home, None, 1);
    let killed1 = kill9(g1);
    // Crash 1: gwshim's 6 s; the gateway's 2nd start has no brake.
    let (g2, _) = wait_gateway_under_unit(m, hermes_home, Some(g1), 2);
    let down1 = killed1.elapsed();
    let killed2 = kill9(g2);
    // Crash 2: gwshim's 12 s; the gateway's 3rd start sleeps 10 s: gwshim waits only 1.5 s
    // (12 s less RestartSec and the gateway's 10 s). STATUS= says so during its sleep.
    let status = m.wait_until_every(
        "STATUS= naming the gateway's own brake",
        Duration::from_secs(30),
        Duration::from_millis(200),
        |m| {
            let s = m.prop(UNIT, "StatusText");
            s.contains("its own restart brake (3 starts in 120 s) holds it until")
                .then_some(s)
        },
    );
    let (g3, _) = wait_gateway_under_unit(m, hermes_home, Some(g2), 3);
    let down2 = killed2.elapsed();
    kill9(g3);
    // Crash 3: the gateway ran about 3 s after its 10 s sleep: 3 fast failures, not a reset.
    m.wait_log(
        mark,
        "(backoff: 3 fast failures in a row; the gateway's own restart brake adds 20 s)",
        Duration::from_secs(30),
    );
    let log = m.log_since(mark);
    eprintln!(
        "down after crash 1: {down1:.1?} (gwshim 6 s, no gateway brake); after crash 2: \
         {down2:.1?} (gwshim 12 s, the gateway's brake 10 s, their sum 22 s); status {status:?}"
    );
    assert!(
        log.contains(
            "waiting 1.5 s (backoff: 2 fast failures in a row; the gateway's own restart brake adds 10 s)"
        ),
        "{}",
        m.context()
    );
    assert!(
        !log.contains("Start request repeated too quickly"),
        "{}",
        m.context()
    );
    // The longer brake is honoured; the sum of both is not reached (the gateway's start
    // takes a few seconds on top of the 12 s).
    assert!(down2 >= Duration::from_secs(12), "{down2:?}");
    assert!(down2 < Duration::from_secs(22), "{down2:?}{}", m.context());
    m.stop(UNIT);
}
