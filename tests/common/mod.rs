//! Helpers shared by the integration tests: temporary directories, starting the real gwshim
//! binary with the Python test child, bounded waits, signals and /proc.

#![allow(dead_code)]

use nix::libc;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// The bound on every wait for a process or a file.
pub const TIMEOUT: Duration = Duration::from_secs(10);

pub const GWSHIM: &str = env!("CARGO_BIN_EXE_gwshim");
pub const CHILD_PY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/helpers/child.py");
pub const PTY_DRIVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/helpers/pty_driver.py");

/// The real python3 interpreter (resolved once: wrappers like pyenv's shims are slow) when
/// it can run with the modules the helpers need, else None (the caller prints why it skips).
pub fn python() -> Option<&'static str> {
    static PYTHON: OnceLock<Option<String>> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let out = Command::new("python3")
                .args(["-c", "import signal, pty, sys; print(sys.executable)"])
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .output()
                .ok()?;
            let path = String::from_utf8(out.stdout).ok()?.trim().to_string();
            (out.status.success() && !path.is_empty()).then_some(path)
        })
        .as_deref()
}

/// Returns from the test (skipping it) when python3 is missing. Needs `mod skip;` beside
/// `mod common;`.
#[macro_export]
macro_rules! need_python {
    () => {
        match common::python() {
            Some(p) => p,
            None => {
                return $crate::skip::skip("python3 (with the pty module) is not available");
            }
        }
    };
}

/// A fresh directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "gwshim-test-{}-{tag}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("creating a temporary directory");
        TempDir(dir)
    }

    /// Like `new`, but mode 0700 (a state folder gwshim insists is private).
    pub fn private(tag: &str) -> TempDir {
        let dir = TempDir::new(tag);
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700))
            .expect("chmod 0700 a temporary directory");
        dir
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub fn str(&self) -> &str {
        self.0.to_str().expect("UTF-8 temp dir")
    }
}

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<std::ffi::OsStr> for TempDir {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.0.as_os_str()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Gives every signal its default action in the started process, so the tests do not
/// depend on what the test runner was started with (a shell's `cmd &` ignores SIGINT and
/// SIGQUIT, `nohup` SIGHUP). Tests of inherited dispositions add theirs after this.
pub fn default_signals(cmd: &mut Command) {
    // SAFETY: signal(2) is async-signal-safe; the closure allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            for sig in 1..=31 {
                if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                    libc::signal(sig, libc::SIG_DFL);
                }
            }
            Ok(())
        });
    }
}

/// A gwshim command: in its own process group (so tests can signal "the job" like a shell
/// does), no core dumps, stdin and stdout /dev/null, stderr to `log`.
pub fn gwshim(args: &[&str], log: &Path) -> Command {
    let mut cmd = Command::new(GWSHIM);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(log).expect("creating the log file"))
        .process_group(0);
    default_signals(&mut cmd);
    // SAFETY: setrlimit is async-signal-safe and touches only the constant struct.
    unsafe {
        cmd.pre_exec(|| {
            let none = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &none);
            Ok(())
        });
    }
    cmd
}

/// A running gwshim whose process group (and the child's own group, if any) is SIGKILLed
/// when dropped, so no failed test leaves processes behind.
pub struct Running {
    pub proc: Child,
    pub pid: i32,
    pub log: PathBuf,
    pub extra_groups: Vec<i32>,
}

impl Running {
    pub fn start(mut cmd: Command, log: &Path) -> Running {
        let proc = cmd.spawn().expect("starting gwshim");
        let pid = proc.id() as i32;
        Running {
            proc,
            pid,
            log: log.to_path_buf(),
            extra_groups: Vec::new(),
        }
    }

    /// Waits (bounded) for gwshim to end; panics with its log if it does not.
    pub fn wait(&mut self) -> ExitStatus {
        match wait_timeout(&mut self.proc, TIMEOUT) {
            Some(status) => status,
            None => panic!(
                "gwshim did not end within {TIMEOUT:?}; log:\n{}",
                self.log_text()
            ),
        }
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.proc.try_wait(), Ok(None))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Outside a terminal's foreground the child leads a group of its own: end it too.
        let children = fs::read_to_string(format!("/proc/{0}/task/{0}/children", self.pid));
        let own: Vec<i32> = children
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        for g in self.extra_groups.iter().chain(&own).chain([&self.pid]) {
            // SAFETY: kill(2) with plain integers.
            unsafe { libc::kill(-g, libc::SIGKILL) };
        }
        let _ = self.proc.kill();
        let _ = wait_timeout(&mut self.proc, TIMEOUT);
    }
}

pub fn wait_timeout(proc: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let end = Instant::now() + limit;
    loop {
        if let Ok(Some(status)) = proc.try_wait() {
            return Some(status);
        }
        if Instant::now() > end {
            return None;
        }
        sleep(Duration::from_millis(5));
    }
}

/// Polls `cond` until it holds or TIMEOUT passes; returns whether it held.
pub fn wait_until(cond: impl FnMut() -> bool) -> bool {
    wait_within(TIMEOUT, Duration::from_millis(5), cond)
}

/// Polls `cond` every `step` until it holds or `limit` passes; returns whether it held.
pub fn wait_within(limit: Duration, step: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        sleep(step);
    }
}

/// The child's "PID PPID PGID" from DIR/ready, waiting for it.
pub fn ready(dir: &TempDir, run: &Running) -> (i32, i32, i32) {
    let path = dir.join("ready");
    assert!(
        wait_until(|| path.exists()),
        "the child never got ready; gwshim log:\n{}",
        run.log_text()
    );
    let text = fs::read_to_string(&path).expect("reading the ready file");
    let v: Vec<i32> = text
        .split_whitespace()
        .map(|w| w.parse().expect("a pid"))
        .collect();
    (v[0], v[1], v[2])
}

/// The signals the recorder got, in order.
pub fn record(dir: &Path) -> Vec<i32> {
    fs::read_to_string(dir.join("signals"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.parse().expect("a signal number"))
        .collect()
}

/// Waits until the record holds at least `n` signals; returns the record.
pub fn record_len(dir: &Path, n: usize, run: &Running) -> Vec<i32> {
    let ok = wait_until(|| record(dir).len() >= n);
    let got = record(dir);
    assert!(
        ok,
        "expected {n} signals in the record, got {got:?}; gwshim log:\n{}",
        run.log_text()
    );
    got
}

/// A short pause for duplicates to show up before a record is compared exactly.
pub fn settle() {
    sleep(Duration::from_millis(150));
}

pub fn kill(pid: i32, sig: i32) {
    // SAFETY: kill(2) with plain integers.
    let r = unsafe { libc::kill(pid, sig) };
    assert_eq!(
        r,
        0,
        "kill({pid}, {sig}): {}",
        std::io::Error::last_os_error()
    );
}

/// The fields of /proc/PID/stat after the command name: field N of proc(5) is `[N - 3]`.
pub fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// State (field 3), ppid and pgrp from /proc/PID/stat.
pub fn stat(pid: i32) -> Option<(char, i32, i32)> {
    let f = stat_fields(pid)?;
    Some((
        f.first()?.chars().next()?,
        f.get(1)?.parse().ok()?,
        f.get(2)?.parse().ok()?,
    ))
}

/// The pids whose parent is `parent`.
pub fn children_of(parent: i32) -> Vec<i32> {
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&p| stat(p).is_some_and(|s| s.1 == parent))
        .collect()
}

pub fn stopped(pid: i32) -> bool {
    stat(pid).is_some_and(|s| s.0 == 'T')
}

pub fn rtmin() -> i32 {
    libc::SIGRTMIN()
}

pub fn rtmax() -> i32 {
    libc::SIGRTMAX()
}

pub fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Waits until `pid` is blocked in nanosleep (as /proc/PID/syscall says): a `sleep` whose
/// loader and locale code have finished opening and closing files, so its fds are settled.
pub fn wait_asleep(pid: i32) -> bool {
    wait_until(|| {
        fs::read_to_string(format!("/proc/{pid}/syscall"))
            .ok()
            .and_then(|t| t.split_whitespace().next()?.parse::<i64>().ok())
            .is_some_and(|n| n == libc::SYS_clock_nanosleep || n == libc::SYS_nanosleep)
    })
}

/// Asserts gwshim exited with `code` (not by a signal).
pub fn assert_code(status: ExitStatus, code: i32, what: &str, log: &str) {
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        (status.code(), status.signal()),
        (Some(code), None),
        "{what}: wanted exit {code}, got {status:?}; gwshim log:\n{log}"
    );
}

/// contrib/release.sh's dist folder (target/tmp/release-dist), built unless it was built from
/// the same sources: a key over every tracked or new file's content and the toolchain, kept in
/// `.source-key`. tests/release.rs, container.rs and podman.rs share it: one build serves all.
pub fn release_dist() -> &'static Path {
    static DIST: OnceLock<PathBuf> = OnceLock::new();
    DIST.get_or_init(|| {
        let manifest = env!("CARGO_MANIFEST_DIR");
        let dist = Path::new(env!("CARGO_TARGET_TMPDIR")).join("release-dist");
        let stamp = dist.join(".source-key");
        // Two test processes at once (two cargo runs) take turns: release.sh rewrites dist.
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dist.with_extension("lock"))
            .expect("the release-dist lock file");
        let _lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| e)
            .expect("locking release-dist");
        let key = Command::new("sh")
            .args([
                "-c",
                "{ git ls-files -co --exclude-standard -z | xargs -0 sha256sum; rustc -V; } \
                 | sha256sum",
            ])
            .current_dir(manifest)
            .stdin(Stdio::null())
            .output()
            .expect("sh");
        let key = (key.status.success() && !key.stdout.is_empty())
            .then(|| String::from_utf8_lossy(&key.stdout).into_owned());
        if key.is_some() && fs::read_to_string(&stamp).ok() == key {
            eprintln!("release: {} is up to date", dist.display());
            return dist;
        }
        let started = Instant::now();
        let out = Command::new(format!("{manifest}/contrib/release.sh"))
            .env("GWSHIM_DIST", &dist)
            .stdin(Stdio::null())
            .output()
            .expect("contrib/release.sh");
        assert!(
            out.status.success(),
            "contrib/release.sh: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("release: built in {:.0?}", started.elapsed());
        if let Some(key) = key {
            fs::write(&stamp, key).expect("writing the source key");
        }
        dist
    })
}

/// None when PID namespaces can be used here, else why not.
pub fn pid_namespaces_unavailable() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("not root: unshare --pid needs it".into());
    }
    match Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => None,
        Ok(s) => Some(format!("unshare --pid --fork --mount-proc true: {s}")),
        Err(e) => Some(format!("no unshare: {e}")),
    }
}

/// Changes an archive without breaking it: the same tar, compressed again at another level. It
/// still unpacks to the same files, so only the SHA256SUMS check can tell.
pub fn recompress(archive: &Path) {
    let tmp = archive.with_extension("new");
    let status = Command::new("sh")
        .args([
            "-c",
            "gzip -dc \"$1\" | gzip -1 >\"$2\" && mv \"$2\" \"$1\"",
            "sh",
        ])
        .arg(archive)
        .arg(&tmp)
        .status()
        .expect("sh");
    assert!(status.success(), "recompressing {}", archive.display());
}
