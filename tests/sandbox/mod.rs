//! What the two systemd harnesses (tests/systemd_harness: a `systemd --user` in a mount
//! namespace; tests/booted: a booted container) share: a cgroup of their own for what they
//! start, cleaned up by pid, bounded child waits and commands, and machine-wide flocks.
//! Included by each harness with `#[path = "../sandbox/mod.rs"] mod sandbox;`.

#![allow(dead_code)]

use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The hierarchies a cgroup is needed in: /sys/fs/cgroup itself on a pure v2 host, else
/// name=systemd's and the unified one.
pub fn cgroup_roots() -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    if base.join("cgroup.controllers").exists() {
        return vec![base.to_path_buf()];
    }
    ["systemd", "unified"]
        .iter()
        .map(|h| base.join(h))
        .filter(|p| p.join("cgroup.procs").exists())
        .collect()
}

/// A cgroup `name` in every hierarchy, or none at all.
pub fn make_cgroups(name: &str) -> Result<Vec<PathBuf>, String> {
    let roots = cgroup_roots();
    if roots.is_empty() {
        return Err("no name=systemd or unified cgroup hierarchy under /sys/fs/cgroup".into());
    }
    let mut made = Vec::new();
    for root in roots {
        let dir = root.join(name);
        if let Err(e) = fs::create_dir(&dir) {
            remove_cgroups(&made);
            return Err(format!("cannot create cgroup {}: {e}", dir.display()));
        }
        made.push(dir);
    }
    Ok(made)
}

/// Every folder of a cgroup tree, deepest first.
fn cgroup_tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                out.extend(cgroup_tree(&e.path()));
            }
        }
    }
    if dir.is_dir() {
        out.push(dir.to_path_buf());
    }
    out
}

/// Every process in the cgroup trees.
pub fn cgroup_pids(dirs: &[PathBuf]) -> Vec<i32> {
    let mut pids = Vec::new();
    for root in dirs {
        for d in cgroup_tree(root) {
            let text = fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
            pids.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
        }
    }
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// SIGKILLs every process in the cgroup trees, by pid, until they are empty (bounded).
pub fn kill_cgroups(dirs: &[PathBuf]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pids = cgroup_pids(dirs);
        if pids.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            eprintln!("sandbox: pids {pids:?} survive SIGKILL in {dirs:?}");
            return;
        }
        for p in pids {
            if p > 1 && p as u32 != std::process::id() {
                let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
            }
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Removes the cgroup trees, deepest folders first (bounded retries: a killed process may take
/// a moment to leave).
pub fn remove_cgroups(dirs: &[PathBuf]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    for root in dirs {
        loop {
            let mut all = true;
            for d in cgroup_tree(root) {
                if fs::remove_dir(&d).is_err() && d.exists() {
                    all = false;
                }
            }
            if all || Instant::now() > deadline {
                if !all {
                    eprintln!("sandbox: could not remove cgroup {}", root.display());
                }
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Cgroups of an earlier test process that died without cleaning up (`PREFIX-PID-N` whose PID
/// is gone): kills what is left in them, removes them, then hands their name to `also`.
pub fn sweep_stale_cgroups(prefix: &str, also: impl Fn(&str)) {
    for root in cgroup_roots() {
        let Ok(entries) = fs::read_dir(&root) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(rest) = name.strip_prefix(prefix) else {
                continue;
            };
            let Some(Ok(pid)) = rest.split('-').next().map(str::parse::<u32>) else {
                continue;
            };
            if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
                let dirs = [e.path()];
                kill_cgroups(&dirs);
                remove_cgroups(&dirs);
                also(&name);
            }
        }
    }
}

/// An exclusive flock on `path`, waiting for it at most `timeout` (then a panic: another test
/// process is stuck).
pub fn flock_within(path: &Path, timeout: Duration) -> Flock<fs::File> {
    let mut file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let deadline = Instant::now() + timeout;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return lock,
            Err((f, _)) => file = f,
        }
        if Instant::now() > deadline {
            panic!("{} still locked after {timeout:?}", path.display());
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Waits for a child of ours, at most `timeout`.
pub fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Some(s),
            Ok(None) => {}
            Err(_) => return None,
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Runs a command with its output captured, killing it (by pid) after `timeout`.
pub fn run_bounded(mut cmd: Command, timeout: Duration) -> Result<Output, String> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| e.to_string())?;
    let mut out = child.stdout.take().ok_or("no stdout pipe")?;
    let mut err = child.stderr.take().ok_or("no stderr pipe")?;
    let out_reader = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_reader = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let status = match wait_child(&mut child, timeout) {
        Some(s) => s,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("still running after {timeout:?}; killed"));
        }
    };
    Ok(Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    })
}

/// A checked command's stdout; panics with `what`, the exit status, both outputs and `ctx()`
/// unless it succeeded.
pub fn stdout_ok(what: &str, out: Output, ctx: impl FnOnce() -> String) -> String {
    if !out.status.success() {
        panic!(
            "{what} failed ({}):\n{}{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            ctx()
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether the process of a /proc/PID/stat exists and is not a zombie.
pub fn alive_at(stat_path: &Path) -> bool {
    match fs::read_to_string(stat_path) {
        // The state follows the command name in parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// Polls `probe` every `every` until it gives Some (returned) or `timeout` has passed (None).
pub fn poll<T>(
    timeout: Duration,
    every: Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return Some(v);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        thread::sleep(every.min(deadline - now));
    }
}

/// Waits (bounded, polling `state` every 100 ms) until `unit`'s state satisfies `pred`, and
/// returns that state; panics with the last state seen and `ctx()` when time is up.
pub fn wait_state(
    unit: &str,
    timeout: Duration,
    mut state: impl FnMut() -> UnitState,
    pred: impl Fn(&UnitState) -> bool,
    ctx: impl FnOnce() -> String,
) -> UnitState {
    let mut last = UnitState::default();
    let found = poll(timeout, Duration::from_millis(100), || {
        last = state();
        pred(&last).then(|| last.clone())
    });
    found.unwrap_or_else(|| {
        panic!(
            "timed out after {timeout:?} waiting for a state of {unit}; last seen: {last:?}{}",
            ctx()
        )
    })
}

/// The `KEY=VALUE` lines of `systemctl show` as a map.
pub fn show_map(stdout: &str) -> BTreeMap<String, String> {
    stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The properties of a unit the tests look at, from `systemctl show`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnitState {
    pub active: String,
    pub sub: String,
    pub result: String,
    pub n_restarts: u32,
    pub exec_main_status: i32,
    pub exec_main_code: String,
    pub main_pid: u32,
}

impl UnitState {
    /// What to ask `systemctl show` for.
    pub const PROPERTIES: [&str; 7] = [
        "ActiveState",
        "SubState",
        "Result",
        "NRestarts",
        "ExecMainStatus",
        "ExecMainCode",
        "MainPID",
    ];

    /// From the answer (`show_map`); a missing property counts as "".
    pub fn from_show(p: &BTreeMap<String, String>) -> UnitState {
        let get = |k: &str| p.get(k).cloned().unwrap_or_default();
        UnitState {
            active: get("ActiveState"),
            sub: get("SubState"),
            result: get("Result"),
            n_restarts: get("NRestarts").parse().unwrap_or(0),
            exec_main_status: get("ExecMainStatus").parse().unwrap_or(-1),
            exec_main_code: get("ExecMainCode"),
            main_pid: get("MainPID").parse().unwrap_or(0),
        }
    }

    pub fn is_running(&self) -> bool {
        self.active == "active" && self.sub == "running"
    }

    pub fn is_failed(&self) -> bool {
        self.active == "failed"
    }
}
