//! Stale pid and lock files, against the real binary, real files and real processes.

mod common;
mod skip;

use common::TempDir;
use nix::fcntl::{Flock, FlockArg};
use nix::libc;
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const GWSHIM: &str = env!("CARGO_BIN_EXE_gwshim");

/// A fresh, empty folder of its own for each test.
fn scratch(name: &str) -> TempDir {
    TempDir::new(&format!("pidfile-{name}"))
}

struct Run {
    status: Option<i32>,
    log: String,
}

/// Runs gwshim with `args`, its stderr in a file; kills it and fails after 20 s.
fn gwshim(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let log_path = dir.join("gwshim.log");
    let log = File::create(&log_path).expect("log file");
    let mut cmd = Command::new(GWSHIM);
    // No restart pacing: no wait before exiting, no state outside the scratch folder.
    cmd.arg("--no-pacing")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .env_remove("GWSHIM_LOG")
        .env_remove("HERMES_HOME")
        .env_remove("HERMES_S6_SUPERVISED_CHILD");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let mut child = cmd.spawn().expect("spawn gwshim");
    let status = wait_bounded(&mut child, Duration::from_secs(20));
    let took = started.elapsed();
    let log = fs::read_to_string(&log_path).unwrap_or_default();
    assert!(
        status.is_some() || took < Duration::from_secs(20),
        "gwshim hung: {log}"
    );
    Run {
        status: status.expect("gwshim did not finish in time"),
        log,
    }
}

fn wait_bounded(child: &mut Child, limit: Duration) -> Option<Option<i32>> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status.code());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A pid that no process has (a child that has been reaped).
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().expect("spawn true");
    let pid = child.id();
    child.wait().expect("wait true");
    pid
}

fn start_time(pid: u32) -> u64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let rest = &stat[stat.rfind(')').expect("comm") + 1..];
    rest.split_whitespace()
        .nth(19)
        .expect("field 22")
        .parse()
        .expect("number")
}

fn state(pid: u32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .next()?
        .chars()
        .next()
}

/// A process that lives until dropped.
struct Sleeper(Child);

impl Sleeper {
    fn new() -> Sleeper {
        Sleeper(
            Command::new("sleep")
                .arg("30")
                .spawn()
                .expect("spawn sleep"),
        )
    }
    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn json(pid: u32, start: u64, argv: &[&str]) -> String {
    let argv: Vec<String> = argv.iter().map(|a| format!("{a:?}")).collect();
    format!(
        r#"{{"pid": {pid}, "kind": "hermes-gateway", "argv": [{}], "start_time": {start}, "extra": {{"x": 1}}}}"#,
        argv.join(", ")
    )
}

/// Runs `gwshim --pidfile PID -- true` on a pid file holding `content`; returns the run and
/// whether the file survived.
fn judge(name: &str, content: &[u8]) -> (Run, bool) {
    let dir = scratch(name);
    let pid = dir.join("x.pid");
    fs::write(&pid, content).expect("write pid file");
    let run = gwshim(
        &dir,
        &["--pidfile", pid.to_str().expect("utf-8"), "--", "true"],
        &[],
    );
    assert_eq!(run.status, Some(0), "{}", run.log);
    let kept = pid.exists();
    (run, kept)
}

#[test]
fn a_dead_pid_is_removed_json_and_bare() {
    let dead = dead_pid();
    let (run, kept) = judge("dead-bare", format!("{dead}\n").as_bytes());
    assert!(!kept, "{}", run.log);
    assert!(
        run.log
            .contains(&format!("x.pid: pid {dead} does not exist")),
        "{}",
        run.log
    );

    let (run, kept) = judge(
        "dead-json",
        json(dead, 12345, &["/v/bin/hermes", "gateway", "run"]).as_bytes(),
    );
    assert!(!kept, "{}", run.log);
    assert!(run.log.contains("removed stale"), "{}", run.log);
}

#[test]
fn a_real_zombie_is_stale() {
    // The shell forks `sleep 0` and becomes `sleep 30`, which never reaps it.
    let mut parent = Command::new("sh")
        .args(["-c", "sleep 0 & echo $!; exec sleep 30"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn zombie parent");
    let mut line = String::new();
    BufReader::new(parent.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("zombie pid");
    let zombie: u32 = line.trim().parse().expect("pid");
    let deadline = Instant::now() + Duration::from_secs(10);
    while state(zombie) != Some('Z') && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(state(zombie), Some('Z'));
    let (run, kept) = judge("zombie", zombie.to_string().as_bytes());
    let _ = parent.kill();
    let _ = parent.wait();
    assert!(!kept, "{}", run.log);
    assert!(
        run.log.contains(&format!("pid {zombie} is a zombie")),
        "{}",
        run.log
    );
}

#[test]
fn a_reused_pid_is_stale_a_matching_live_owner_is_kept() {
    let live = Sleeper::new();
    let pid = live.pid();
    let start = start_time(pid);
    let (run, kept) = judge("reused", json(pid, start + 1, &["sleep", "30"]).as_bytes());
    assert!(!kept, "{}", run.log);
    assert!(run.log.contains("was reused"), "{}", run.log);

    let (run, kept) = judge(
        "other-command",
        json(pid, start, &["/v/bin/hermes", "gateway", "run"]).as_bytes(),
    );
    assert!(!kept, "{}", run.log);
    assert!(run.log.contains("another command"), "{}", run.log);

    let (run, kept) = judge(
        "live-json",
        json(pid, start, &["/bin/sleep", "30"]).as_bytes(),
    );
    assert!(kept, "{}", run.log);
    assert!(
        run.log.contains("warning: ") && run.log.contains(&format!("pid {pid}")),
        "{}",
        run.log
    );

    let (run, kept) = judge("live-bare", format!(" {pid} ").as_bytes());
    assert!(kept, "{}", run.log);
    assert!(run.log.contains("live owner"), "{}", run.log);
}

#[test]
fn not_a_pid_record_is_stale_a_huge_file_is_left_alone() {
    for (name, content) in [
        ("empty", &b""[..]),
        ("garbage", b"hello world"),
        ("zero", b"0"),
        ("negative", b"-42"),
    ] {
        let (run, kept) = judge(name, content);
        assert!(!kept, "{name}: {}", run.log);
    }
    let own = judge("huge", &vec![b'1'; 1 << 20]);
    assert!(own.1, "{}", own.0.log);
    assert!(own.0.log.contains("over the"), "{}", own.0.log);
}

#[test]
fn gwshims_own_pid_is_stale() {
    // gwshim's pid is unknown before it starts: let a shell exec it after writing its own pid.
    let dir = scratch("own");
    let pid = dir.join("x.pid");
    let script = format!(
        "echo $$ > '{}'; exec '{GWSHIM}' --no-pacing --pidfile '{}' -- true",
        pid.display(),
        pid.display()
    );
    let run = gwshim(
        &dir,
        &["--no-pidfile-cleanup", "--", "sh", "-c", &script],
        &[],
    );
    let inner = fs::read_to_string(dir.join("gwshim.log")).unwrap_or_default();
    assert_eq!(run.status, Some(0), "{inner}");
    assert!(!pid.exists(), "{inner}");
    assert!(inner.contains("is gwshim itself"), "{inner}");
}

#[test]
fn a_held_lock_keeps_both_files() {
    let dir = scratch("held");
    let (pid, lock) = (dir.join("gateway.pid"), dir.join("gateway.lock"));
    fs::write(&pid, dead_pid().to_string()).expect("pid");
    fs::write(&lock, "{}").expect("lock");
    let held = Flock::lock(
        File::open(&lock).expect("open lock"),
        FlockArg::LockExclusiveNonblock,
    )
    .map_err(|(_, e)| e)
    .expect("take the lock");
    let spec = format!("{}:{}", pid.display(), lock.display());
    let started = Instant::now();
    let run = gwshim(&dir, &["--pidfile", &spec, "--", "true"], &[]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the lock probe must not block"
    );
    drop(held);
    assert_eq!(run.status, Some(0), "{}", run.log);
    assert!(pid.exists() && lock.exists(), "{}", run.log);
    assert!(
        run.log.contains(&format!("{} is held", lock.display())),
        "{}",
        run.log
    );
}

#[test]
fn a_free_lock_makes_both_files_stale() {
    let dir = scratch("free");
    let (pid, lock) = (dir.join("gateway.pid"), dir.join("gateway.lock"));
    // Even a live pid: the lock, not the pid, is the truth.
    let live = Sleeper::new();
    fs::write(&pid, live.pid().to_string()).expect("pid");
    fs::write(&lock, "{}").expect("lock");
    let spec = format!("{}:{}", pid.display(), lock.display());
    let run = gwshim(&dir, &["--pidfile", &spec, "--", "true"], &[]);
    assert_eq!(run.status, Some(0), "{}", run.log);
    assert!(!pid.exists() && !lock.exists(), "{}", run.log);
    assert!(
        run.log
            .contains(&format!("nobody holds {}", lock.display())),
        "{}",
        run.log
    );
}

#[test]
fn a_symlink_is_left_alone_and_its_target_untouched() {
    let dir = scratch("symlink");
    let elsewhere = dir.join("precious");
    fs::write(&elsewhere, dead_pid().to_string()).expect("target");
    let link = dir.join("x.pid");
    std::os::unix::fs::symlink(&elsewhere, &link).expect("symlink");
    let lock_link = dir.join("x.lock");
    std::os::unix::fs::symlink(&elsewhere, &lock_link).expect("symlink");
    let spec = format!("{}:{}", link.display(), lock_link.display());
    let run = gwshim(&dir, &["--pidfile", &spec, "--", "true"], &[]);
    assert_eq!(run.status, Some(0), "{}", run.log);
    assert!(fs::symlink_metadata(&link).is_ok() && fs::symlink_metadata(&lock_link).is_ok());
    assert!(elsewhere.exists(), "{}", run.log);
    assert!(run.log.contains("symlink"), "{}", run.log);
}

#[test]
fn a_directory_and_a_fifo_are_left_alone_without_hanging() {
    let dir = scratch("special");
    let sub = dir.join("d.pid");
    fs::create_dir(&sub).expect("dir");
    let fifo = dir.join("f.pid");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    let fifo_lock = dir.join("f.lock");
    nix::unistd::mkfifo(&fifo_lock, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    let started = Instant::now();
    let run = gwshim(
        &dir,
        &[
            "--pidfile",
            sub.to_str().expect("utf-8"),
            "--pidfile",
            &format!("{}:{}", fifo.display(), fifo_lock.display()),
            "--",
            "true",
        ],
        &[],
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(run.status, Some(0), "{}", run.log);
    assert!(sub.is_dir() && fifo.exists() && fifo_lock.exists());
    assert!(
        run.log.contains("a directory") && run.log.contains("a FIFO"),
        "{}",
        run.log
    );
}

#[test]
fn an_unwritable_folder_is_a_warning_not_a_failure() {
    let dir = scratch("readonly");
    let sub = dir.join("ro");
    fs::create_dir(&sub).expect("dir");
    let pid = sub.join("x.pid");
    fs::write(&pid, dead_pid().to_string()).expect("pid");
    fs::set_permissions(&sub, fs::Permissions::from_mode(0o555)).expect("chmod");
    // root ignores directory permissions; then the file is simply removed.
    let run = gwshim(
        &dir,
        &["--pidfile", pid.to_str().expect("utf-8"), "--", "true"],
        &[],
    );
    assert_eq!(run.status, Some(0), "{}", run.log);
    assert!(
        !pid.exists() || run.log.contains("cannot remove stale"),
        "{}",
        run.log
    );
    let missing = gwshim(
        &dir,
        &[
            "--pidfile",
            "/nonexistent/dir/x.pid:/nonexistent/x.lock",
            "--",
            "true",
        ],
        &[],
    );
    assert_eq!(missing.status, Some(0), "{}", missing.log);
    fs::set_permissions(&sub, fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[test]
fn a_sigkilled_child_leaves_no_pid_file_behind() {
    let dir = scratch("sigkill");
    let pid = dir.join("svc.pid");
    let script = format!("echo $$ > '{}'; kill -KILL $$", pid.display());
    let run = gwshim(
        &dir,
        &[
            "--pidfile",
            pid.to_str().expect("utf-8"),
            "--",
            "sh",
            "-c",
            &script,
        ],
        &[],
    );
    assert_eq!(run.status, Some(75), "{}", run.log);
    assert!(!pid.exists(), "{}", run.log);
    assert!(run.log.contains("removed stale"), "{}", run.log);
}

#[test]
fn no_pidfile_cleanup_touches_nothing() {
    let dir = scratch("off");
    let home = dir.join("home");
    fs::create_dir_all(&home).expect("home");
    fs::write(home.join("gateway.pid"), dead_pid().to_string()).expect("pid");
    let bin = fake_gateway(&dir);
    let run = gwshim(
        &dir,
        &[
            "--no-pidfile-cleanup",
            "--",
            bin.to_str().expect("utf-8"),
            "gateway",
            "run",
        ],
        &[
            ("HERMES_HOME", home.to_str().expect("utf-8")),
            ("FAKE_MODE", "exit"),
        ],
    );
    // The seed bug: the leftover makes the gateway lose its pid file "race".
    assert_eq!(run.status, Some(75), "{}", run.log);
    assert!(run.log.contains("PID file race lost"), "{}", run.log);
    assert!(home.join("gateway.pid").exists());
    assert!(!run.log.contains("removed"), "{}", run.log);
}

/// A fake `hermes` that behaves like the gateway with its files: it fails like the real one
/// on a leftover gateway.pid (exit 1) or a held lock (exit 3), writes both, takes the lock,
/// and then exits (FAKE_MODE=exit) or SIGKILLs itself.
fn fake_gateway(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).expect("bin");
    let path = bin.join("hermes");
    fs::write(
        &path,
        r#"#!/usr/bin/env python3
import fcntl, json, os, signal, sys
home = os.environ.get("HERMES_HOME") or os.path.expanduser("~/.hermes")
args = sys.argv[1:]
for flag in ("-p", "--profile"):
    if flag in args:
        home = os.path.join(os.path.expanduser("~/.hermes"), "profiles", args[args.index(flag) + 1])
os.makedirs(home, exist_ok=True)
lock = open(os.path.join(home, "gateway.lock"), "a+")
try:
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
except OSError:
    print("lock held", file=sys.stderr); sys.exit(3)
try:
    fd = os.open(os.path.join(home, "gateway.pid"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
except FileExistsError:
    print("PID file race lost", file=sys.stderr); sys.exit(1)
os.write(fd, json.dumps({"pid": os.getpid(), "argv": sys.argv}).encode()); os.close(fd)
if os.environ.get("FAKE_MODE") == "exit":
    sys.exit(0)
os.kill(os.getpid(), signal.SIGKILL)
"#,
    )
    .expect("write fake hermes");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

#[test]
fn the_gateway_default_cleans_hermes_home() {
    let dir = scratch("gateway");
    let home = dir.join("hermes-home");
    fs::create_dir_all(&home).expect("home");
    fs::write(
        home.join("gateway.pid"),
        json(dead_pid(), 1, &["/v/bin/hermes", "gateway", "run"]),
    )
    .expect("pid");
    fs::write(home.join("gateway.lock"), "{}").expect("lock");
    let bin = fake_gateway(&dir);
    let run = gwshim(
        &dir,
        &["--", bin.to_str().expect("utf-8"), "gateway", "run"],
        &[("HERMES_HOME", home.to_str().expect("utf-8"))],
    );
    // The fake started (no "race lost", no held lock), then was SIGKILLed: its files are gone too.
    assert_eq!(run.status, Some(75), "{}", run.log);
    assert!(
        !home.join("gateway.pid").exists() && !home.join("gateway.lock").exists(),
        "{}",
        run.log
    );
    assert_eq!(run.log.matches("removed stale").count(), 4, "{}", run.log);
}

#[test]
fn the_gateway_default_follows_the_profile() {
    let dir = scratch("profile");
    let user_home = dir.join("user");
    let profile = user_home.join(".hermes/profiles/coder");
    fs::create_dir_all(&profile).expect("profile");
    fs::write(profile.join("gateway.pid"), dead_pid().to_string()).expect("pid");
    // The default home's files belong to another gateway: untouched.
    let default = user_home.join(".hermes");
    fs::write(default.join("gateway.pid"), dead_pid().to_string()).expect("pid");
    let bin = fake_gateway(&dir);
    let run = gwshim(
        &dir,
        &[
            "--",
            bin.to_str().expect("utf-8"),
            "-p",
            "coder",
            "gateway",
            "run",
        ],
        &[
            ("HOME", user_home.to_str().expect("utf-8")),
            ("FAKE_MODE", "exit"),
        ],
    );
    assert_eq!(run.status, Some(0), "{}", run.log);
    assert!(
        run.log.contains(&format!(
            "removed stale {}",
            profile.join("gateway.pid").display()
        )),
        "{}",
        run.log
    );
    assert!(default.join("gateway.pid").exists(), "{}", run.log);
}

#[test]
fn a_fifo_as_active_profile_does_not_hold_up_the_start() {
    let dir = scratch("active-fifo");
    let user_home = dir.join("user");
    fs::create_dir_all(user_home.join(".hermes")).expect("home");
    nix::unistd::mkfifo(
        &user_home.join(".hermes/active_profile"),
        nix::sys::stat::Mode::S_IRWXU,
    )
    .expect("mkfifo");
    fs::write(
        user_home.join(".hermes/gateway.pid"),
        dead_pid().to_string(),
    )
    .expect("pid");
    let bin = fake_gateway(&dir);
    let started = Instant::now();
    let run = gwshim(
        &dir,
        &["--", bin.to_str().expect("utf-8"), "gateway", "run"],
        &[
            ("HOME", user_home.to_str().expect("utf-8")),
            ("FAKE_MODE", "exit"),
        ],
    );
    assert!(started.elapsed() < Duration::from_secs(5), "{}", run.log);
    assert_eq!(run.status, Some(0), "{}", run.log);
}

/// nobody: an existing unprivileged user, so that nothing is created on the machine.
const NOBODY: u32 = 65534;

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn chown_nobody(path: &Path) {
    std::os::unix::fs::lchown(path, Some(NOBODY), Some(NOBODY)).expect("lchown to nobody");
}

/// A folder nobody (uid 65534) owns and may write, in a root-owned scratch folder.
fn nobodys_folder(base: &Path, name: &str) -> PathBuf {
    fs::set_permissions(base, fs::Permissions::from_mode(0o755)).expect("chmod");
    let dir = base.join(name);
    fs::create_dir(&dir).expect("mkdir");
    chown_nobody(&dir);
    dir
}

#[test]
fn a_folder_through_a_root_owned_symlink_is_cleaned() {
    // Like /var/run -> /run: root's symlink in root's folder.
    let dir = scratch("rootlink");
    let real = dir.join("real");
    fs::create_dir(&real).expect("mkdir");
    std::os::unix::fs::symlink(&real, dir.join("run")).expect("symlink");
    fs::write(real.join("gateway.pid"), dead_pid().to_string()).expect("pid");
    let through = dir.join("run/gateway.pid");
    let run = gwshim(
        &dir,
        &["--pidfile", through.to_str().expect("utf-8"), "--", "true"],
        &[],
    );
    assert_eq!(run.status, Some(0), "{}", run.log);
    assert!(!real.join("gateway.pid").exists(), "{}", run.log);
    assert!(run.log.contains("removed stale"), "{}", run.log);
}

#[test]
fn as_root_a_folder_symlink_another_user_could_change_is_left_alone() {
    if !is_root() {
        return skip::skip("needs root: the symlinks belong to another user (nobody)");
    }
    let dir = scratch("userlink");
    let user = nobodys_folder(&dir, "home");
    let precious = dir.join("precious");
    fs::create_dir(&precious).expect("mkdir");
    let (pid, lock) = (precious.join("gateway.pid"), precious.join("gateway.lock"));
    fs::write(&pid, dead_pid().to_string()).expect("pid");
    fs::write(&lock, "{}").expect("lock");
    // nobody's symlink, and root's symlink in nobody's folder (nobody can replace it)
    let theirs = user.join("theirs");
    std::os::unix::fs::symlink(&precious, &theirs).expect("symlink");
    chown_nobody(&theirs);
    let roots = user.join("roots");
    std::os::unix::fs::symlink(&precious, &roots).expect("symlink");
    for link in [&theirs, &roots] {
        let spec = format!(
            "{}:{}",
            link.join("gateway.pid").display(),
            link.join("gateway.lock").display()
        );
        let run = gwshim(&dir, &["--pidfile", &spec, "--", "true"], &[]);
        assert_eq!(run.status, Some(0), "{}", run.log);
        assert!(pid.exists() && lock.exists(), "{}", run.log);
        let warned = format!("{} is a symlink owned by uid", link.display());
        assert!(
            run.log.contains("leaving") && run.log.contains(&warned),
            "{}",
            run.log
        );
    }
}

/// Swaps `a` and `b` (a folder and a symlink) with renameat2(RENAME_EXCHANGE) for ever, as
/// nobody, in a forked process; returns its pid.
fn swapper(a: &Path, b: &Path) -> nix::unistd::Pid {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let a = CString::new(a.as_os_str().as_bytes()).expect("path");
    let b = CString::new(b.as_os_str().as_bytes()).expect("path");
    // SAFETY: the child makes only raw syscalls (setgroups, setresgid, setresuid, renameat2,
    // _exit) on memory allocated before the fork: async-signal-safe, as a fork of a
    // multi-threaded process requires. It is SIGKILLed and reaped by the caller.
    match unsafe { nix::unistd::fork() }.expect("fork") {
        nix::unistd::ForkResult::Parent { child } => child,
        nix::unistd::ForkResult::Child => unsafe {
            let id = NOBODY as libc::c_long;
            if libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()) != 0
                || libc::syscall(libc::SYS_setresgid, id, id, id) != 0
                || libc::syscall(libc::SYS_setresuid, id, id, id) != 0
            {
                libc::_exit(3);
            }
            loop {
                if libc::renameat2(
                    libc::AT_FDCWD,
                    a.as_ptr(),
                    libc::AT_FDCWD,
                    b.as_ptr(),
                    libc::RENAME_EXCHANGE,
                ) != 0
                {
                    libc::_exit(4);
                }
            }
        },
    }
}

/// The race the directory fds close: root cleans `HOME/p/gateway.pid` while nobody, who owns
/// HOME, swaps the folder p with a symlink to another folder holding files of the same
/// names, in a tight loop. Only the intended folder's files may ever be removed.
#[test]
fn a_folder_swapped_for_a_symlink_in_a_tight_loop_never_redirects_the_removal() {
    if !is_root() {
        return skip::skip("needs root: the swapper runs as another user (nobody)");
    }
    const ROUNDS: usize = 2_000;
    let dir = scratch("swaprace");
    let home = nobodys_folder(&dir, "home");
    let other = dir.join("other");
    fs::create_dir(&other).expect("mkdir");
    let stale = dead_pid().to_string();
    let others = [other.join("gateway.pid"), other.join("gateway.lock")];
    for f in &others {
        fs::write(f, &stale).expect("write");
    }
    let (p, alt) = (home.join("p"), home.join("alt"));
    fs::create_dir(&p).expect("mkdir");
    chown_nobody(&p);
    std::os::unix::fs::symlink(&other, &alt).expect("symlink");
    chown_nobody(&alt);
    // The intended folder, wherever the swapper has put it.
    let intended = File::open(&p).expect("open the intended folder");
    let intended = PathBuf::from(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&intended)
    ));
    let pid_path = p.join("gateway.pid");
    let spec = format!(
        "{}:{}",
        pid_path.display(),
        p.join("gateway.lock").display()
    );
    let swapping = swapper(&p, &alt);
    let (done, finished) = std::sync::mpsc::channel();
    let watched = others.clone();
    let content = stale.clone();
    let cleaner = std::thread::spawn(move || {
        let (mut removed, mut as_link, mut as_dir) = (0, 0, 0);
        for round in 0..ROUNDS {
            for name in ["gateway.pid", "gateway.lock"] {
                let f = intended.join(name);
                if !f.exists() {
                    fs::write(&f, &stale).expect("recreate");
                    removed += 1;
                }
            }
            // gwshim cleans before the child starts and again after it ends.
            let status = Command::new(GWSHIM)
                .args(["--no-pacing", "--pidfile", &spec, "--", "true"])
                .env_remove("GWSHIM_LOG")
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("run gwshim");
            assert_eq!(status.code(), Some(0), "gwshim in round {round}");
            match fs::symlink_metadata(pid_path.parent().expect("folder")) {
                Ok(m) if m.file_type().is_symlink() => as_link += 1,
                Ok(_) => as_dir += 1,
                Err(_) => {}
            }
            if let Some(gone) = watched.iter().find(|f| !f.exists()) {
                let _ = done.send(Err(format!("{} removed in round {round}", gone.display())));
                return;
            }
        }
        let _ = done.send(Ok((removed, as_link, as_dir)));
    });
    let outcome = finished.recv_timeout(Duration::from_secs(600));
    let _ = nix::sys::signal::kill(swapping, nix::sys::signal::Signal::SIGKILL);
    let swapper_end = nix::sys::wait::waitpid(swapping, None).expect("reap the swapper");
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("the cleaning hung"),
        Err(_) => panic!("the cleaning thread panicked: {:?}", cleaner.join().err()),
    };
    let _ = cleaner.join();
    assert!(
        matches!(swapper_end, nix::sys::wait::WaitStatus::Signaled(..)),
        "the swapper stopped on its own: {swapper_end:?}"
    );
    let (removed, as_link, as_dir) = outcome.expect("nothing outside the intended folder");
    for f in &others {
        assert_eq!(fs::read_to_string(f).expect("still there"), content);
    }
    // The race was on: both shapes were seen, and the intended folder was cleaned.
    assert!(as_link > 0 && as_dir > 0, "{as_link} {as_dir}");
    assert!(removed > 0, "the intended folder was never cleaned");
    eprintln!(
        "{removed} intended files removed; path seen as a symlink {as_link} times, as a folder {as_dir}"
    );
}
