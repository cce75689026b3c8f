//! The signal core against every way a process can end or be signalled (issue 22), and
//! gwshim's versions of tini's behavioural fixtures (test/reaping, signals, pgroup, sigconf,
//! pdeathsignal) and dumb-init's: the real binary, real children, real signals, a real pty.
//! Every wait is bounded.

mod common;
mod skip;

use common::*;
use nix::libc;
use std::fs;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");

/// A Python child that counts the deliveries of one signal with a Python handler (one line
/// per call in DIR/count) and writes "PID PPID PGID" to DIR/ready.
const COUNTER_PY: &str = r#"
import os, signal, sys, time
d, sig = sys.argv[1], int(sys.argv[2])
def counted(s, f):
    with open(os.path.join(d, "count"), "a") as out:
        out.write("%d\n" % s)
signal.signal(sig, counted)
with open(os.path.join(d, "ready.tmp"), "w") as f:
    f.write("%d %d %d" % (os.getpid(), os.getppid(), os.getpgrp()))
os.rename(os.path.join(d, "ready.tmp"), os.path.join(d, "ready"))
end = time.monotonic() + 60
while time.monotonic() < end:
    time.sleep(0.05)
"#;

/// Every signal 1-64 at its default action in the started process (common's default_signals
/// does 1-31): a test binary started by glibc's posix_spawn (cargo's) has 32 ignored, and
/// gwshim would keep it so. The raw syscall: the C library refuses its own signals.
fn all_default(cmd: &mut Command) {
    default_signals(cmd);
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: u64,
    }
    // SAFETY: rt_sigaction installing SIG_DFL (0), async-signal-safe; the struct is on the
    // stack (the x86_64 and aarch64 layout; elsewhere the call just fails).
    unsafe {
        cmd.pre_exec(|| {
            let dfl = KernelSigaction {
                handler: 0,
                flags: 0,
                restorer: 0,
                mask: 0,
            };
            for sig in 32..=64 {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    sig,
                    &dfl,
                    std::ptr::null_mut::<KernelSigaction>(),
                    8,
                );
            }
            Ok(())
        });
    }
}

/// common::gwshim with every signal at its default.
fn gwshim_cmd(args: &[&str], log: &Path) -> Command {
    let mut cmd = gwshim(args, log);
    all_default(&mut cmd);
    cmd
}

/// The signals whose default action ends a process (no KILL: it cannot be forwarded).
fn deadly() -> Vec<i32> {
    let harmless = [
        libc::SIGKILL,
        libc::SIGSTOP,
        libc::SIGCHLD,
        libc::SIGCONT,
        libc::SIGTSTP,
        libc::SIGTTIN,
        libc::SIGTTOU,
        libc::SIGURG,
        libc::SIGWINCH,
    ];
    (1..=64).filter(|s| !harmless.contains(s)).collect()
}

/// gwshim ARGS -- sleep 30, started, with the child running (its "started" line logged).
fn start_sleeper(dir: &TempDir, args: &[&str]) -> Running {
    let log = dir.join("gwshim.log");
    let mut all = args.to_vec();
    all.extend(["--", "sleep", "30"]);
    let run = Running::start(gwshim_cmd(&all, &log), &log);
    assert!(
        wait_until(|| run.log_text().contains("started")),
        "gwshim never started the child; log:\n{}",
        run.log_text()
    );
    run
}

// ---------------------------------------------------------------------------------------
// 1. Deaths by every signal, real-time ones included.

/// A signal passed on to the child that kills it: gwshim dies of the same signal, for every
/// signal 1-64 (USR1, a restart request, is the planned restart: item 7). nix's WaitStatus
/// could not hold 32-64: gwshim hung after "waitpid failed: EINVAL".
#[test]
fn death_by_every_signal_gwshim_dies_of_it() {
    for sig in deadly() {
        let dir = TempDir::new("death");
        let mut run = start_sleeper(&dir, &[]);
        kill(run.pid, sig);
        let status = run.wait();
        let want = if sig == libc::SIGUSR1 {
            (Some(75), None)
        } else {
            (None, Some(sig))
        };
        assert_eq!(
            (status.code(), status.signal()),
            want,
            "signal {sig}; log:\n{}",
            run.log_text()
        );
    }
}

/// --transparent: 128+N for a death by signal N, every N.
#[test]
fn death_by_every_signal_transparent_is_128_plus_n() {
    for sig in deadly() {
        let dir = TempDir::new("death-transparent");
        let mut run = start_sleeper(&dir, &["--transparent"]);
        kill(run.pid, sig);
        let status = run.wait();
        assert_code(status, 128 + sig, &format!("signal {sig}"), &run.log_text());
    }
}

/// A child that kills itself with a real-time signal (nobody asked): the restart status, and
/// gwshim does not hang.
#[test]
fn a_child_killed_by_a_realtime_signal_it_sent_itself_is_a_restart() {
    for sig in [rtmin(), rtmin() + 2, rtmax()] {
        let dir = TempDir::new("rt-self");
        let log = dir.join("gwshim.log");
        let script = format!("kill -{sig} $$; sleep 5");
        let mut run = Running::start(gwshim_cmd(&["--", "sh", "-c", &script], &log), &log);
        let status = run.wait();
        let text = run.log_text();
        assert_code(status, 75, &format!("signal {sig}"), &text);
        assert!(!text.contains("waitpid failed"), "{text}");
    }
}

/// gwshim ARGS -- sleep 30 as pid 1 of a new PID namespace; returns unshare and gwshim's
/// pid as seen from here.
fn start_pid1(dir: &TempDir, args: &[&str]) -> (Running, i32) {
    let log = dir.join("unshare.log");
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc", GWSHIM])
        .args(args)
        .args(["--", "sleep", "30"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).expect("log"))
        .process_group(0);
    all_default(&mut cmd);
    let run = Running::start(cmd, &log);
    let mut gw = 0;
    assert!(
        wait_until(|| {
            gw = children_of(run.pid).first().copied().unwrap_or(0);
            gw != 0 && run.log_text().contains("started")
        }),
        "gwshim as pid 1 did not start; log:\n{}",
        run.log_text()
    );
    (run, gw)
}

/// As pid 1 gwshim cannot die of its own signal (the kernel drops it): it exits 128+N, what a
/// shell reports for a death by N, for every real-time signal, with and without --transparent.
#[test]
fn death_by_a_realtime_signal_as_pid_1_is_128_plus_n() {
    if let Some(why) = pid_namespaces_unavailable() {
        return skip::skip(&why);
    }
    for sig in 32..=64 {
        for args in [&[][..], &["--transparent"][..]] {
            let dir = TempDir::new("pid1-rt");
            let (mut run, gw) = start_pid1(&dir, args);
            kill(gw, sig);
            let status = run.wait();
            assert_code(
                status,
                128 + sig,
                &format!("pid 1, signal {sig}, {args:?}"),
                &run.log_text(),
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// 2. gwshim's own parent-death signal (tini -p; tini's test/pdeathsignal).

/// Python starts gwshim --parent-death-signal USR2 and is SIGKILLed: gwshim gets SIGUSR2
/// from the kernel and passes it on, once. --pdeathsig alone (the child's side) does not.
#[test]
fn parent_death_signal_reaches_the_child_when_gwshims_parent_is_killed() {
    let py = need_python!();
    for (opt, want) in [
        ("--parent-death-signal", vec![libc::SIGUSR2]),
        ("--pdeathsig", vec![]),
    ] {
        let dir = TempDir::new("parent-death");
        let log = dir.join("gwshim.log");
        let gw_pid = dir.join("gwshim.pid");
        let parent_py = "import subprocess, sys\n\
                         log = open(sys.argv[1] + '/gwshim.log', 'w')\n\
                         p = subprocess.Popen(sys.argv[2:], stderr=log)\n\
                         open(sys.argv[1] + '/gwshim.pid', 'w').write(str(p.pid))\n\
                         p.wait()\n";
        let mut cmd = Command::new(py);
        cmd.args(["-c", parent_py, dir.str(), GWSHIM, "-v", opt, "USR2"])
            .args([
                "--",
                py,
                CHILD_PY,
                "record",
                dir.str(),
                "--exit-on",
                "TERM=0",
            ])
            .stdin(Stdio::null())
            .process_group(0);
        all_default(&mut cmd);
        let mut parent = Running::start(cmd, &log);
        ready(&dir, &parent);
        let gw: i32 = fs::read_to_string(&gw_pid)
            .expect("gwshim's pid")
            .parse()
            .expect("a pid");
        parent.proc.kill().expect("SIGKILL the parent");
        let _ = parent.proc.wait();
        if want.is_empty() {
            std::thread::sleep(Duration::from_millis(300));
        } else {
            record_len(dir.path(), want.len(), &parent);
        }
        settle();
        assert_eq!(
            record(dir.path()),
            want,
            "{opt}; log:\n{}",
            parent.log_text()
        );
        // gwshim is an orphan now: end it (its child gets the TERM).
        kill(gw, libc::SIGTERM);
        assert!(wait_until(|| stat(gw).is_none_or(|s| s.0 == 'Z')));
    }
}

// ---------------------------------------------------------------------------------------
// 3. A signal sent to gwshim's whole process group reaches the child once.

fn count(dir: &Path) -> usize {
    fs::read_to_string(dir.join("count"))
        .unwrap_or_default()
        .lines()
        .count()
}

/// `kill -USR2 -- -PGID` (a shell's `kill %1`, timeout(1)): a child that handles SIGUSR2 in
/// Python counts it once, not once from the sender and once from gwshim.
#[test]
fn a_signal_to_gwshims_process_group_reaches_the_child_once() {
    let py = need_python!();
    let dir = TempDir::new("pgroup");
    let log = dir.join("gwshim.log");
    let usr2 = libc::SIGUSR2.to_string();
    let run = Running::start(
        gwshim_cmd(&["-v", "--", py, "-c", COUNTER_PY, dir.str(), &usr2], &log),
        &log,
    );
    let (child, _, _) = ready(&dir, &run);
    for n in 1..=3 {
        kill(-run.pid, libc::SIGUSR2);
        assert!(
            wait_until(|| count(&dir) >= n),
            "{n}: the child counted {}; log:\n{}",
            count(&dir),
            run.log_text()
        );
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            count(&dir),
            n,
            "exactly once per group signal; log:\n{}",
            run.log_text()
        );
    }
    kill(child, libc::SIGKILL);
}

/// tini's test/pgroup: with --group a signal reaches every process of the child's group
/// (`sh -c 'sleep & sleep'`: both die of it), and gwshim dies of it too.
#[test]
fn group_signal_reaches_every_process_of_the_childs_group() {
    let dir = TempDir::new("tini-pgroup");
    let log = dir.join("gwshim.log");
    let pids = dir.join("pids");
    let script = format!("sleep 30 & echo $! > {}; sleep 30", pids.display());
    let mut run = Running::start(
        gwshim_cmd(
            &["--group", "--leave-orphans", "--", "sh", "-c", &script],
            &log,
        ),
        &log,
    );
    assert!(wait_until(|| fs::metadata(&pids).is_ok_and(|m| m.len() > 0)));
    let background: i32 = fs::read_to_string(&pids).unwrap().trim().parse().unwrap();
    kill(run.pid, libc::SIGUSR2);
    let status = run.wait();
    assert_eq!(
        status.signal(),
        Some(libc::SIGUSR2),
        "log:\n{}",
        run.log_text()
    );
    // --leave-orphans: gwshim ended nothing itself.
    assert!(
        wait_until(|| stat(background).is_none_or(|s| s.0 == 'Z')),
        "the background sleep got it too"
    );
}

// ---------------------------------------------------------------------------------------
// 4. Terminal cases, in a real pty.

fn pty_driver(py: &str, args: &[&str]) -> (ExitStatus, String, String) {
    let out = Command::new(py)
        .arg(PTY_DRIVER)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running pty_driver.py");
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The child moved to a session of its own: Ctrl-C reaches gwshim only, which passes it on
/// (once) and ends as after a stop.
#[test]
fn terminal_ctrl_c_reaches_a_child_in_its_own_session() {
    let py = need_python!();
    let dir = TempDir::new("pty-setsid");
    let (status, out, err) = pty_driver(py, &["setsid-ctrl-c", GWSHIM, CHILD_PY, dir.str()]);
    assert!(status.success(), "{out}\n{err}");
    assert_eq!(out, "exited 0", "{err}");
    assert_eq!(record(dir.path()), vec![libc::SIGINT], "{err}");
}

/// gwshim leads the terminal's session and the terminal hangs up: the kernel sends SIGHUP
/// to gwshim alone, and the child must get it (once) from gwshim.
#[test]
fn terminal_hangup_to_the_session_leader_reaches_the_child() {
    let py = need_python!();
    let dir = TempDir::new("pty-hangup");
    let (status, out, err) = pty_driver(py, &["hangup", GWSHIM, CHILD_PY, dir.str()]);
    assert!(status.success(), "{out}\n{err}");
    assert_eq!(out, "exited 0", "the child exits 0 on SIGHUP: {err}");
    let got = record(dir.path());
    assert_eq!(
        got.iter().filter(|&&s| s == libc::SIGHUP).count(),
        1,
        "SIGHUP once: {got:?}"
    );
}

/// --group in a terminal: the child's group is the terminal's foreground group, so stty and
/// a read from the terminal work instead of stopping it (SIGTTOU, SIGTTIN).
#[test]
fn terminal_with_group_hands_the_terminal_to_the_child() {
    let py = need_python!();
    let dir = TempDir::new("pty-group");
    let (status, out, err) = pty_driver(py, &["group-stty", GWSHIM, dir.str()]);
    assert!(status.success(), "{out}\n{err}");
    assert_eq!(out, "exited 0", "{err}");
}

/// --group in a terminal: Ctrl-C reaches the child's group (the foreground one) and counts
/// as the stop it asks for: gwshim dies of SIGINT, as the child did.
#[test]
fn terminal_with_group_ctrl_c_is_a_stop() {
    let py = need_python!();
    let dir = TempDir::new("pty-group-int");
    let (status, out, err) = pty_driver(py, &["group-ctrl-c", GWSHIM, dir.str()]);
    assert!(status.success(), "{out}\n{err}");
    assert_eq!(out, format!("signaled {}", libc::SIGINT), "{err}");
}

/// --group in a terminal, as a job of an interactive bash: Ctrl-Z reaches the child's group
/// only, and gwshim stops too (bash sees the job stopped); `fg` gives the terminal back to the
/// child's group, which reads a line from it.
#[test]
fn terminal_with_group_ctrl_z_and_fg() {
    let py = need_python!();
    let dir = TempDir::new("pty-group-tstp");
    let (status, out, err) = pty_driver(py, &["group-ctrl-z", GWSHIM, CHILD_PY, dir.str()]);
    assert!(status.success(), "{out}\n{err}");
    assert_eq!(out, "ok", "{err}");
}

// ---------------------------------------------------------------------------------------
// 5. Job control never freezes supervision.

/// gwshim in a session of its own (as under systemd): its process group is orphaned, no
/// shell would continue it. A SIGTSTP is passed on, but gwshim does not stop itself, so the
/// SIGUSR1 after it is forwarded at once.
#[test]
fn sigtstp_in_an_orphaned_group_does_not_stop_gwshim() {
    let py = need_python!();
    let dir = TempDir::new("orphaned-tstp");
    let log = dir.join("gwshim.log");
    let mut cmd = Command::new(GWSHIM);
    cmd.args(["-v", "--", py, CHILD_PY, "record", dir.str()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).expect("log"));
    all_default(&mut cmd);
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let run = Running::start(cmd, &log);
    let (child, _, _) = ready(&dir, &run);
    kill(run.pid, libc::SIGTSTP);
    record_len(dir.path(), 1, &run);
    kill(run.pid, libc::SIGUSR1);
    record_len(dir.path(), 2, &run);
    assert_eq!(record(dir.path()), vec![libc::SIGTSTP, libc::SIGUSR1]);
    assert!(!stopped(run.pid), "log:\n{}", run.log_text());
    assert!(run.log_text().contains("orphaned"), "{}", run.log_text());
    kill(-child, libc::SIGKILL);
}

/// A SIGCONT that comes while gwshim is passing a SIGTSTP on (here: blocked writing its log
/// line to a full stderr pipe) must not be lost: gwshim does not stop itself after it, and
/// the SIGUSR1 after it is forwarded.
#[test]
fn sigcont_right_after_sigtstp_is_not_lost() {
    let py = need_python!();
    let dir = TempDir::new("tstp-cont");
    let (read_end, write_end): (OwnedFd, OwnedFd) = nix::unistd::pipe().expect("pipe");
    let mut cmd = Command::new(GWSHIM);
    cmd.args(["-v", "--", py, CHILD_PY, "record", dir.str()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(write_end.try_clone().expect("dup")))
        .process_group(0);
    all_default(&mut cmd);
    let run = Running::start(cmd, &dir.join("none"));
    let mut reader = fs::File::from(read_end);
    set_nonblocking(reader.as_raw_fd(), true);
    let (child, _, _) = ready(&dir, &run);
    let mut sink = Vec::new();
    let _ = reader.read_to_end(&mut sink);
    // Fill the pipe: gwshim's next log line (forwarding SIGTSTP) blocks.
    let writer = fs::File::from(write_end);
    set_nonblocking(writer.as_raw_fd(), true);
    let chunk = [b'.'; 4096];
    while nix::unistd::write(&writer, &chunk).is_ok() {}
    set_nonblocking(writer.as_raw_fd(), false);
    drop(writer);
    kill(run.pid, libc::SIGTSTP);
    // Blocked in a write, and with the SIGTSTP read: the kernel discards a stop signal still
    // pending when a SIGCONT comes (as for any process), so a SIGCONT sent while gwshim is
    // still stuck in an earlier log line would cancel the SIGTSTP itself.
    assert!(
        wait_until(|| {
            [Some(libc::SYS_write), Some(libc::SYS_writev)].contains(&syscall_of(run.pid))
                && !pending(run.pid, libc::SIGTSTP)
        }),
        "gwshim did not block in its log write after reading SIGTSTP"
    );
    kill(run.pid, libc::SIGCONT);
    // Let gwshim go on: drain its stderr from now on.
    let drained = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 65536];
        let end = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < end {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => all.extend_from_slice(&buf[..n]),
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        String::from_utf8_lossy(&all).into_owned()
    });
    assert!(
        wait_until(|| record(dir.path()).contains(&libc::SIGCONT)),
        "SIGCONT never reached the child: {:?}",
        record(dir.path())
    );
    kill(run.pid, libc::SIGUSR1);
    let ok = wait_until(|| record(dir.path()).contains(&libc::SIGUSR1));
    let state = stat(run.pid).map(|s| s.0);
    kill(-child, libc::SIGKILL);
    kill(-run.pid, libc::SIGKILL);
    let log = drained.join().unwrap_or_default();
    let log = log.trim_start_matches('.');
    assert!(
        ok,
        "SIGUSR1 never reached the child (gwshim {state:?}); log:\n{log}"
    );
    // gwshim forwards SIGTSTP, then SIGCONT, back to back: a child that was not scheduled in
    // between never sees the SIGTSTP (the kernel discards a pending stop signal at a SIGCONT,
    // as it would for the two sent to it directly), so that one may be missing; the rest not.
    let got = record(dir.path());
    let after_stop: Vec<i32> = got
        .iter()
        .copied()
        .skip_while(|&s| s == libc::SIGTSTP)
        .collect();
    assert!(got.len() - after_stop.len() <= 1, "{got:?}; log:\n{log}");
    assert_eq!(
        after_stop,
        vec![libc::SIGCONT, libc::SIGUSR1],
        "log:\n{log}"
    );
}

fn set_nonblocking(fd: i32, on: bool) {
    // SAFETY: fcntl on an fd we hold, plain integers.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        let flags = if on {
            flags | libc::O_NONBLOCK
        } else {
            flags & !libc::O_NONBLOCK
        };
        libc::fcntl(fd, libc::F_SETFL, flags);
    }
}

/// Whether `sig` is pending for `pid`, for the process or its thread (/proc/PID/status).
fn pending(pid: i32, sig: i32) -> bool {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .filter_map(|l| {
            l.strip_prefix("ShdPnd:")
                .or_else(|| l.strip_prefix("SigPnd:"))
        })
        .filter_map(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .any(|mask| mask & (1 << (sig - 1)) != 0)
}

/// The syscall `pid` is blocked in (/proc/PID/syscall), if any.
fn syscall_of(pid: i32) -> Option<i64> {
    fs::read_to_string(format!("/proc/{pid}/syscall"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

// ---------------------------------------------------------------------------------------
// 6. The child's signal dispositions and mask are exactly gwshim's (tini's test/sigconf).

/// Starts gwshim with SIGHUP and RTMIN+6 ignored, SIGUSR2 and RTMIN+7 blocked.
fn with_inherited(cmd: &mut Command) -> (u64, u64) {
    let (ign, blk) = (rtmin() + 6, rtmin() + 7);
    // SAFETY: signal(2) and sigprocmask(2) are async-signal-safe; the set is on the stack.
    unsafe {
        cmd.pre_exec(move || {
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            libc::signal(ign, libc::SIG_IGN);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGUSR2);
            libc::sigaddset(&mut set, blk);
            libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            Ok(())
        });
    }
    let bit = |s: i32| 1u64 << (s - 1);
    (bit(libc::SIGHUP) | bit(ign), bit(libc::SIGUSR2) | bit(blk))
}

/// SigIgn and SigBlk of `bin -- grep Sig /proc/self/status`, as hex numbers.
fn child_masks(bin: &Path, opts: &[&str], inherit: bool) -> (u64, u64, (u64, u64)) {
    let mut cmd = Command::new(bin);
    cmd.args(["-q"])
        .args(opts)
        .args(["--", "grep", "Sig", "/proc/self/status"])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0);
    all_default(&mut cmd);
    let want = if inherit {
        with_inherited(&mut cmd)
    } else {
        (0, 0)
    };
    let out = cmd.output().expect("running gwshim");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}: {text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let get = |key: &str| {
        let hex = text
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in {text}"));
        u64::from_str_radix(hex.trim(), 16).expect("a hex mask")
    };
    (get("SigIgn:"), get("SigBlk:"), want)
}

fn check_masks(bin: &Path) {
    // No option: posix_spawn; --pdeathsig: the fork path.
    for opts in [&[][..], &["--pdeathsig", "TERM"][..]] {
        for inherit in [false, true] {
            let (ign, blk, (want_ign, want_blk)) = child_masks(bin, opts, inherit);
            assert_eq!(
                (ign, blk),
                (want_ign, want_blk),
                "{} {opts:?} inherit={inherit}: SigIgn {ign:016x} SigBlk {blk:016x}",
                bin.display()
            );
        }
    }
}

/// The child starts with exactly the dispositions and mask gwshim was started with: glibc's
/// posix_spawn gave it signals 32 and 33 ignored (SigIgn 0000000180000000).
#[test]
fn the_child_gets_exactly_gwshims_dispositions_and_mask() {
    check_masks(Path::new(GWSHIM));
}

/// The same for the static (musl) build, contrib/build-static.sh's, cached in target/static.
#[test]
fn the_static_builds_child_gets_exactly_gwshims_dispositions_and_mask() {
    if !cfg!(all(target_arch = "x86_64", target_os = "linux")) {
        return skip::skip_always_allowed("the static build is for x86_64 Linux");
    }
    let sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    if !Path::new(&sysroot)
        .join("lib/rustlib/x86_64-unknown-linux-musl/lib")
        .is_dir()
    {
        return skip::skip("no x86_64-unknown-linux-musl Rust target for the static build");
    }
    let out = Command::new(format!("{MANIFEST}/contrib/build-static.sh"))
        .env("CARGO_TARGET_DIR", format!("{MANIFEST}/target/static"))
        .env("GWSHIM_STATIC", "musl")
        .stderr(Stdio::inherit())
        .output()
        .expect("contrib/build-static.sh");
    assert!(out.status.success(), "build-static.sh: {}", out.status);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let path = PathBuf::from(stdout.lines().last().expect("the binary's path"));
    let bin = if path.is_absolute() {
        path
    } else {
        Path::new(MANIFEST).join(path)
    };
    check_masks(&bin);
}

// ---------------------------------------------------------------------------------------
// 7. A restart request the child was not ready for.

/// A stand-in with no SIGUSR1 handler (sleep) is killed by the forwarded SIGUSR1: gwshim
/// exits as the child's own planned restart (exit 75) would, not by dying of SIGUSR1: 75 also
/// with the drop-in's `--restart-status 70` (70 is a failure to systemd), the restart status
/// only where the keep list does not pass 75.
#[test]
fn a_child_killed_by_the_restart_signal_is_a_planned_restart() {
    for (args, want) in [
        (&[][..], 75),
        (&["--restart-status", "70"][..], 75),
        (&["--restart-status", "76", "--keep-status", "78"][..], 76),
    ] {
        let dir = TempDir::new("usr1-death");
        let mut run = start_sleeper(&dir, args);
        kill(run.pid, libc::SIGUSR1);
        let status = run.wait();
        let log = run.log_text();
        assert_code(status, want, &format!("{args:?}"), &log);
        assert!(log.contains("planned restart"), "{log}");
        // Logged at info level, no warning: a planned restart is no failure.
        assert!(!log.contains("warning"), "{log}");
    }
}

// ---------------------------------------------------------------------------------------
// tini's test/reaping and dumb-init's: 100 orphans are all reaped.

#[test]
fn a_hundred_orphans_are_all_reaped() {
    let py = need_python!();
    let dir = TempDir::new("reap100");
    let log = dir.join("gwshim.log");
    let run = Running::start(
        gwshim_cmd(
            &["--", py, CHILD_PY, "record", dir.str(), "--orphans", "100"],
            &log,
        ),
        &log,
    );
    let (child, _, _) = ready(&dir, &run);
    let orphans = dir.join("orphans");
    assert!(wait_until(|| orphans.exists()));
    let pids: Vec<i32> = fs::read_to_string(&orphans)
        .unwrap()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 100);
    assert!(
        pids.iter()
            .all(|&p| stat(p).is_some_and(|s| s.1 == run.pid)),
        "every orphan is adopted by gwshim"
    );
    fs::write(dir.join("release"), "").unwrap();
    assert!(
        wait_until(|| pids.iter().all(|&p| stat(p).is_none())),
        "zombies left: {:?}",
        pids.iter()
            .filter(|&&p| stat(p).is_some())
            .map(|&p| (p, stat(p)))
            .collect::<Vec<_>>()
    );
    kill(child, libc::SIGKILL);
}
