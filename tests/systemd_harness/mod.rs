//! A real systemd for gwshim's tests: the machine's own `/usr/lib/systemd/systemd --user`,
//! started in a private mount namespace (see /work/shared/notes/systemd.md and docs/testing.md,
//! "Testing under a real systemd").
//!
//! ```ignore
//! // in tests/NAME.rs: mod skip; mod systemd_harness; use systemd_harness::{GWSHIM, Manager};
//! let Some(m) = Manager::start_or_skip() else { return }; // prints "skipped: ..." if it can't
//! let svc = m.stand_in("svc");                             // a recording stand-in service
//! m.install_unit("svc.service", &format!("[Service]\nExecStart={}\n", svc.command(0, 1)));
//! m.start("svc.service");
//! let st = m.wait_state("svc.service", Duration::from_secs(5), |s| s.is_running());
//! assert!(m.log().contains("gwshim:"));
//! ```
//!
//! One manager at a time: `Manager::start_or_skip` holds a process-wide mutex and a machine-wide
//! flock (`$TMPDIR/gwshim-systemd-harness.lock`, so test binaries of several checkouts take turns)
//! until the manager is dropped. A `Manager` must be dropped on the thread that made it: the
//! helper gets SIGTERM when that thread ends (PR_SET_PDEATHSIG).
//!
//! Dropping it stops the manager (SIGTERM, bounded), SIGKILLs whatever is left in its cgroups,
//! removes those cgroups deepest first and removes its temp folder (kept, and its path printed,
//! when the test is failing, or with GWSHIM_KEEP_TEST_DIR=1). Every wait is bounded.

#![allow(dead_code)] // each test binary uses a different part of the harness

#[path = "../sandbox/mod.rs"]
mod sandbox;

use nix::fcntl::Flock;
use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, geteuid};
pub use sandbox::{UnitState, run_bounded};
use sandbox::{
    flock_within, kill_cgroups, make_cgroups, remove_cgroups, sweep_stale_cgroups, wait_child,
};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// The systemd binary the harness runs.
pub const SYSTEMD: &str = "/usr/lib/systemd/systemd";
/// gwshim as built by cargo for this test run.
pub const GWSHIM: &str = env!("CARGO_BIN_EXE_gwshim");
/// The namespace/pty helper (Python 3, stdlib only).
const HELPER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/systemd_harness/systemd-manager.py"
);
/// The stand-in service (POSIX sh).
const STAND_IN: &str = include_str!("stand-in.sh");

/// How long to wait for another test process's manager to finish.
const LOCK_TIMEOUT: Duration = Duration::from_secs(300);
/// How long `systemctl` may take for one call.
const SYSTEMCTL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the manager may take to come up (it takes about 0.1 s here).
const BOOT_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the manager may take to stop its units and exit after SIGTERM. Units stop within
/// DefaultTimeoutStopSec (set below) unless they say otherwise.
const EXIT_TIMEOUT: Duration = Duration::from_secs(20);
/// The manager's defaults for every test unit (a unit may override them): output to the console
/// log, short stop timeouts.
const MANAGER_CONF: &str = "[Manager]\n\
DefaultStandardOutput=tty\n\
DefaultStandardError=inherit\n\
DefaultTimeoutStartSec=20s\n\
DefaultTimeoutStopSec=10s\n";

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
static COUNTER: AtomicUsize = AtomicUsize::new(0);
const CGROUP_PREFIX: &str = "gwshim-test-";

/// A running user manager. See the module documentation.
pub struct Manager {
    helper: Child,
    pid: i32,
    dir: PathBuf,
    runtime: PathBuf,
    log: PathBuf,
    cgroups: Vec<PathBuf>,
    // Last: released only after Drop has cleaned up.
    _machine_lock: Flock<fs::File>,
    _one_at_a_time: MutexGuard<'static, ()>,
}

impl Manager {
    /// Starts a fresh manager, or prints "skipped: REASON" and returns None where the harness
    /// cannot run (not root, no systemd, no unshare/nsenter/python3, unshare or cgroups refused);
    /// under GWSHIM_NO_SKIP=1 (CI) that is a failure instead (tests/skip).
    /// Panics if the manager itself does not come up: that is a failure, not a skip.
    pub fn start_or_skip() -> Option<Manager> {
        match Manager::launch() {
            Ok(m) => Some(m),
            Err(reason) => {
                crate::skip::skip(&reason);
                None
            }
        }
    }

    /// Like `start_or_skip`, but hands back the reason to skip.
    pub fn launch() -> Result<Manager, String> {
        let lock = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        static PREFLIGHT: OnceLock<Result<(), String>> = OnceLock::new();
        PREFLIGHT.get_or_init(preflight).clone()?;
        let machine_lock = machine_lock();
        sweep_stale_cgroups(CGROUP_PREFIX, |_| {});
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("{CGROUP_PREFIX}{}-{n}", std::process::id());
        let cgroups = make_cgroups(&name)?;

        // Short paths: the manager's private socket lives under the runtime folder.
        let dir = std::env::temp_dir().join(format!("gwshim-sd-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let runtime = dir.join("rt");
        let made = (|| -> std::io::Result<(fs::File, fs::File)> {
            fs::create_dir_all(runtime.join("systemd/user"))?;
            fs::set_permissions(&runtime, fs::Permissions::from_mode(0o700))?;
            fs::create_dir_all(dir.join("home"))?;
            fs::write(dir.join("manager.conf"), MANAGER_CONF)?;
            fs::write(dir.join("stand-in.sh"), STAND_IN)?;
            fs::set_permissions(dir.join("stand-in.sh"), fs::Permissions::from_mode(0o755))?;
            Ok((
                fs::File::create(dir.join("helper.out"))?,
                fs::File::create(dir.join("helper.err"))?,
            ))
        })();
        let (helper_out, helper_err) = match made {
            Ok(files) => files,
            Err(e) => {
                remove_cgroups(&cgroups);
                panic!("cannot set up {}: {e}", dir.display());
            }
        };
        let log = dir.join("console.log");
        let pidfile = dir.join("manager.pid");

        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private"])
            .arg(python())
            .arg(HELPER)
            .arg("--log")
            .arg(&log)
            .arg("--pidfile")
            .arg(&pidfile)
            .arg("--conf")
            .arg(dir.join("manager.conf"));
        for cg in &cgroups {
            cmd.arg("--cgroup").arg(cg);
        }
        cmd.args([
            "--",
            SYSTEMD,
            "--user",
            "--log-target=console",
            "--log-color=no",
            "--log-time=yes",
        ]);
        cmd.env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
            )
            .env("HOME", dir.join("home"))
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("LANG", "C.UTF-8")
            .stdin(Stdio::null())
            .stdout(helper_out)
            .stderr(helper_err);
        // If the test process dies, the helper passes SIGTERM on to the manager.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Some(Signal::SIGTERM)).map_err(std::io::Error::from)
            });
        }
        let helper = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                remove_cgroups(&cgroups);
                let _ = fs::remove_dir_all(&dir);
                return Err(format!("cannot run unshare: {e}"));
            }
        };
        let mut m = Manager {
            helper,
            pid: 0,
            dir,
            runtime,
            log,
            cgroups,
            _machine_lock: machine_lock,
            _one_at_a_time: lock,
        };

        // The helper writes the manager's pid once it has forked it.
        let deadline = Instant::now() + BOOT_TIMEOUT;
        loop {
            if let Ok(text) = fs::read_to_string(&pidfile)
                && let Ok(pid) = text.trim().parse()
            {
                m.pid = pid;
                break;
            }
            if let Ok(Some(status)) = m.helper.try_wait() {
                panic!(
                    "the manager helper exited ({status}) before starting systemd{}",
                    m.context()
                );
            }
            if Instant::now() > deadline {
                panic!("no manager pid after {BOOT_TIMEOUT:?}{}", m.context());
            }
            thread::sleep(Duration::from_millis(20));
        }
        m.wait_until("the manager to be running", BOOT_TIMEOUT, |m| {
            if !sandbox::alive_at(Path::new(&format!("/proc/{}/stat", m.pid))) {
                panic!("the manager (pid {}) exited{}", m.pid, m.context());
            }
            let out = m.systemctl(&["is-system-running"]);
            let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
            (state == "running" || state == "degraded").then_some(())
        });
        Ok(m)
    }

    /// Starts systemd-journald as a unit of this manager, with volatile storage on a tmpfs in
    /// the manager's mount namespace (nothing reaches the host's journal), so units can use
    /// StandardOutput=journal. Read it with `journal`.
    pub fn start_journald(&self) {
        let setup = "mkdir -p /run/systemd/journald.conf.d \
            && printf '[Journal]\\nStorage=volatile\\nReadKMsg=no\\n' > /run/systemd/journald.conf.d/harness.conf \
            && mount -t tmpfs -o mode=0755 tmpfs /run/log && mkdir -p /run/log/journal";
        self.in_namespace(setup)
            .unwrap_or_else(|e| panic!("journald setup: {e}{}", self.context()));
        self.install_unit(
            "journald.service",
            "[Service]\nExecStart=/usr/lib/systemd/systemd-journald\n",
        );
        self.start("journald.service");
        self.wait_until(
            "journald's stdout socket",
            10 * Duration::from_secs(1),
            |m| m.in_namespace("test -S /run/systemd/journal/stdout").ok(),
        );
    }

    /// `journalctl ARGS` over the journal of `start_journald` (message text only).
    pub fn journal(&self, args: &str) -> String {
        self.in_namespace(&format!(
            "journalctl -D /run/log/journal --no-pager -o cat {args}"
        ))
        .unwrap_or_else(|e| panic!("journalctl: {e}{}", self.context()))
    }

    /// Runs a shell command in the manager's mount namespace; its stdout, or why it failed.
    pub fn in_namespace(&self, script: &str) -> Result<String, String> {
        let mut cmd = Command::new("nsenter");
        cmd.args(["-t", &self.pid.to_string(), "-m", "--", "sh", "-c", script]);
        let out = run_bounded(cmd, SYSTEMCTL_TIMEOUT)?;
        match out.status.success() {
            true => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
            false => Err(format!(
                "{script}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )),
        }
    }

    /// The manager's pid (its mount namespace is where `systemctl` runs).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// This manager's scratch folder (stand-ins keep their records in sub-folders).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The manager's XDG_RUNTIME_DIR; units live in `systemd/user/` under it.
    pub fn runtime_dir(&self) -> &Path {
        &self.runtime
    }

    /// Runs `systemctl --user ARGS` in the manager's mount namespace (bounded, not checked).
    pub fn systemctl(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new("nsenter");
        cmd.arg("--target")
            .arg(self.pid.to_string())
            .arg("--mount")
            .args(["systemctl", "--user", "--no-pager", "--no-ask-password"])
            .args(args)
            .env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
            )
            .env("XDG_RUNTIME_DIR", &self.runtime)
            .env("HOME", self.dir.join("home"))
            .env("LANG", "C.UTF-8")
            .env("SYSTEMD_COLORS", "0");
        run_bounded(cmd, SYSTEMCTL_TIMEOUT).unwrap_or_else(|e| {
            panic!("systemctl --user {}: {e}{}", args.join(" "), self.context())
        })
    }

    /// Runs `systemctl --user ARGS`, panics unless it succeeds, returns its stdout.
    pub fn systemctl_ok(&self, args: &[&str]) -> String {
        let what = format!("systemctl --user {}", args.join(" "));
        sandbox::stdout_ok(&what, self.systemctl(args), || self.context())
    }

    /// Writes `$XDG_RUNTIME_DIR/systemd/user/NAME` (a unit or `NAME.d/x.conf` drop-in) and
    /// runs `daemon-reload`.
    pub fn install_unit(&self, name: &str, text: &str) {
        let path = self.runtime.join("systemd/user").join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("unit folder");
        }
        fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        self.systemctl_ok(&["daemon-reload"]);
    }

    /// `systemctl --user start UNIT`, checked (waits for the start job, as systemctl does).
    pub fn start(&self, unit: &str) {
        self.systemctl_ok(&["start", unit]);
    }

    /// `systemctl --user stop UNIT`, checked (waits for the stop job).
    pub fn stop(&self, unit: &str) {
        self.systemctl_ok(&["stop", unit]);
    }

    /// `systemctl --user reload UNIT`, checked (waits for ExecReload=).
    pub fn reload(&self, unit: &str) {
        self.systemctl_ok(&["reload", unit]);
    }

    /// `systemctl --user reset-failed UNIT` (also resets the start-rate counter).
    pub fn reset_failed(&self, unit: &str) {
        self.systemctl_ok(&["reset-failed", unit]);
    }

    /// `systemctl --user show UNIT -p P...` as a map.
    pub fn show(&self, unit: &str, props: &[&str]) -> BTreeMap<String, String> {
        let mut args = vec!["show", unit];
        for p in props {
            args.push("-p");
            args.push(p);
        }
        sandbox::show_map(&self.systemctl_ok(&args))
    }

    /// One property of a unit (empty if systemd has no such property).
    pub fn prop(&self, unit: &str, prop: &str) -> String {
        self.show(unit, &[prop]).remove(prop).unwrap_or_default()
    }

    /// ActiveState, SubState, Result, NRestarts, ExecMainStatus, ExecMainCode and MainPID.
    pub fn state(&self, unit: &str) -> UnitState {
        UnitState::from_show(&self.show(unit, &UnitState::PROPERTIES))
    }

    /// Polls `probe` every 100 ms until it gives Some, for at most `timeout`; panics with `what`
    /// and the end of the manager's log when time is up.
    pub fn wait_until<T>(
        &self,
        what: &str,
        timeout: Duration,
        probe: impl FnMut(&Manager) -> Option<T>,
    ) -> T {
        self.wait_until_every(what, timeout, Duration::from_millis(100), probe)
    }

    /// `wait_until` with a chosen polling interval.
    pub fn wait_until_every<T>(
        &self,
        what: &str,
        timeout: Duration,
        every: Duration,
        probe: impl FnMut(&Manager) -> Option<T>,
    ) -> T {
        self.poll(timeout, every, probe).unwrap_or_else(|| {
            panic!(
                "timed out after {timeout:?} waiting for {what}{}",
                self.context()
            )
        })
    }

    /// Polls `probe` every `every` until it gives Some (returned) or `timeout` has passed (None).
    pub fn poll<T>(
        &self,
        timeout: Duration,
        every: Duration,
        mut probe: impl FnMut(&Manager) -> Option<T>,
    ) -> Option<T> {
        sandbox::poll(timeout, every, || probe(self))
    }

    /// Waits (bounded, polling every 100 ms) until the unit's state satisfies `pred`, and returns
    /// that state; panics with the last state seen and the log when time is up.
    pub fn wait_state(
        &self,
        unit: &str,
        timeout: Duration,
        pred: impl Fn(&UnitState) -> bool,
    ) -> UnitState {
        sandbox::wait_state(unit, timeout, || self.state(unit), pred, || self.context())
    }

    /// Waits (bounded) until the log written after `mark` contains `needle` (the log is copied
    /// from the console a moment after the manager writes it); panics when time is up.
    pub fn wait_log(&self, mark: usize, needle: &str, timeout: Duration) {
        let what = format!("{needle:?} in the log");
        self.wait_until(&what, timeout, |m| {
            m.log_since(mark).contains(needle).then_some(())
        });
    }

    /// The manager's console log so far (its own lines, timestamped, and the units' output,
    /// gwshim's "gwshim: ..." lines included), carriage returns removed.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.log).unwrap_or_default()).replace('\r', "")
    }

    /// A position in the log, for `log_since`.
    pub fn log_mark(&self) -> usize {
        fs::metadata(&self.log)
            .map(|m| m.len() as usize)
            .unwrap_or(0)
    }

    /// The log written after `mark`.
    pub fn log_since(&self, mark: usize) -> String {
        let bytes = fs::read(&self.log).unwrap_or_default();
        String::from_utf8_lossy(bytes.get(mark..).unwrap_or_default()).replace('\r', "")
    }

    /// The last `n` lines of the log.
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Text to append to a failure message: the end of the manager's log and the helper's stderr.
    pub fn context(&self) -> String {
        let mut s = String::new();
        let _ = write!(
            s,
            "\n--- last lines of the manager's console log ({}) ---\n{}",
            self.log.display(),
            self.log_tail(40)
        );
        let err = fs::read_to_string(self.dir.join("helper.err")).unwrap_or_default();
        if !err.trim().is_empty() {
            let _ = write!(s, "\n--- helper stderr ---\n{err}");
        }
        s
    }

    /// A stand-in service recording into `dir()/NAME/`. See `StandIn`.
    pub fn stand_in(&self, name: &str) -> StandIn {
        let dir = self.dir.join(name);
        fs::create_dir_all(&dir).expect("stand-in folder");
        StandIn {
            script: self.dir.join("stand-in.sh"),
            dir,
        }
    }

    fn shutdown(&mut self) {
        // 1. Ask the manager to stop its units and exit; the helper exits after it.
        if self.pid > 0 {
            let _ = kill(Pid::from_raw(self.pid), Signal::SIGTERM);
        } else {
            let _ = kill(Pid::from_raw(self.helper.id() as i32), Signal::SIGTERM);
        }
        let clean = wait_child(&mut self.helper, EXIT_TIMEOUT).is_some();
        if !clean {
            eprintln!("systemd harness: the manager did not exit within {EXIT_TIMEOUT:?}; killing");
        }
        // 2. Whatever is left in our cgroups (everything the manager started): SIGKILL, by pid.
        kill_cgroups(&self.cgroups);
        if self.pid > 0 {
            let _ = kill(Pid::from_raw(self.pid), Signal::SIGKILL);
        }
        if wait_child(&mut self.helper, Duration::from_secs(1)).is_none() {
            let _ = self.helper.kill();
            let _ = wait_child(&mut self.helper, Duration::from_secs(5));
        }
        // 3. The cgroups, deepest first.
        remove_cgroups(&self.cgroups);
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        self.shutdown();
        if thread::panicking() || std::env::var_os("GWSHIM_KEEP_TEST_DIR").is_some() {
            eprintln!(
                "systemd harness: kept {} (console.log is the manager's log){}",
                self.dir.display(),
                self.context()
            );
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// A stand-in service: `stand-in.sh DIR FAIL_STARTS FAIL_STATUS [TERM_STATUS]`, run as
/// `/bin/sh`. It counts its starts in DIR/count and appends to DIR/events:
/// `start N PID PPID TIME` on every start; `exit N PID STATUS` and exits STATUS on the first
/// FAIL_STARTS starts; otherwise `up N PID` once its traps are set, then stays up until a signal:
/// `TERM N PID TIME` then exit TERM_STATUS (default 1, as the gateway does on an unexpected
/// SIGTERM), `USR1 ...` then a 0.2 s "drain" and exit 75, `INT ...` then exit 0, `HUP ...` then
/// exit 1.
pub struct StandIn {
    pub script: PathBuf,
    pub dir: PathBuf,
}

/// One `start` record of a stand-in.
#[derive(Clone, Debug, PartialEq)]
pub struct Start {
    pub n: u32,
    pub pid: u32,
    pub ppid: u32,
    /// Seconds since the epoch.
    pub time: f64,
}

impl StandIn {
    /// The command line for ExecStart=: fail FAIL_STARTS times with FAIL_STATUS, then stay up.
    pub fn command(&self, fail_starts: u32, fail_status: i32) -> String {
        format!(
            "/bin/sh {} {} {fail_starts} {fail_status}",
            self.script.display(),
            self.dir.display()
        )
    }

    /// As `command`, exiting TERM_STATUS on SIGTERM.
    pub fn command_term(&self, fail_starts: u32, fail_status: i32, term_status: i32) -> String {
        format!("{} {term_status}", self.command(fail_starts, fail_status))
    }

    /// All event lines so far.
    pub fn events(&self) -> Vec<String> {
        fs::read_to_string(self.dir.join("events"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// How many event lines start with `kind` ("start", "up", "TERM", "USR1", ...).
    pub fn count(&self, kind: &str) -> usize {
        self.events()
            .iter()
            .filter(|l| l.split_whitespace().next() == Some(kind))
            .count()
    }

    /// The number of starts.
    pub fn starts(&self) -> usize {
        self.count("start")
    }

    /// The start records, in order.
    pub fn start_records(&self) -> Vec<Start> {
        self.events()
            .iter()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() == 5 && f[0] == "start").then(|| Start {
                    n: f[1].parse().unwrap_or(0),
                    pid: f[2].parse().unwrap_or(0),
                    ppid: f[3].parse().unwrap_or(0),
                    time: f[4].parse().unwrap_or(0.0),
                })
            })
            .collect()
    }

    /// Seconds between consecutive starts.
    pub fn start_gaps(&self) -> Vec<f64> {
        self.start_records()
            .windows(2)
            .map(|w| w[1].time - w[0].time)
            .collect()
    }

    /// Whether start number `n` has set its traps and is up.
    pub fn is_up(&self, n: usize) -> bool {
        self.events()
            .iter()
            .any(|l| l.split_whitespace().take(2).eq(["up", &n.to_string()]))
    }
}

/// The machine-wide lock: waits (bounded) for another test process's manager to finish.
fn machine_lock() -> Flock<fs::File> {
    flock_within(
        &std::env::temp_dir().join("gwshim-systemd-harness.lock"),
        LOCK_TIMEOUT,
    )
}

/// The Python for the helper: $GWSHIM_TEST_PYTHON, else /usr/bin/python3 if there (a version
/// manager's shim costs a third of a second per start), else python3 from PATH.
pub fn python() -> std::ffi::OsString {
    if let Some(p) = std::env::var_os("GWSHIM_TEST_PYTHON") {
        return p;
    }
    if Path::new("/usr/bin/python3").exists() {
        return "/usr/bin/python3".into();
    }
    "python3".into()
}

/// Why the harness cannot run here, if it cannot.
fn preflight() -> Result<(), String> {
    if !geteuid().is_root() {
        return Err("not root (the systemd harness needs mount namespaces and cgroups)".into());
    }
    if !Path::new(SYSTEMD).exists() {
        return Err(format!("no {SYSTEMD}"));
    }
    for (tool, args) in [
        ("systemctl", &["--version"][..]),
        ("nsenter", &["--version"][..]),
        ("mount", &["--version"][..]),
        ("python3", &["-c", "import pty, select"][..]),
    ] {
        let mut cmd = Command::new(if tool == "python3" {
            python()
        } else {
            tool.into()
        });
        cmd.args(args);
        match run_bounded(cmd, Duration::from_secs(10)) {
            Ok(out) if out.status.success() => {}
            Ok(out) => return Err(format!("{tool} does not work: {}", out.status)),
            Err(e) => return Err(format!("no usable {tool}: {e}")),
        }
    }
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "true"]);
    match run_bounded(cmd, Duration::from_secs(10)) {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "unshare --mount fails: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!("unshare fails: {e}")),
    }
}

impl Manager {
    /// `systemctl --user start --no-block UNIT`, checked: queues the start job and returns at
    /// once (a notify unit that fails before READY=1 would fail a waiting `start`).
    pub fn start_no_block(&self, unit: &str) {
        self.systemctl_ok(&["start", "--no-block", unit]);
    }
}
