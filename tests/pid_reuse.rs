//! A leftover whose pid is reused between gwshim's judgement and its signal never gets the
//! signal: gwshim signals through a pidfd taken while the start time still matched.
//!
//! The reuse is forced, not hoped for. gwshim runs in a private PID namespace (not as its
//! pid 1, so that a process can live there that is not gwshim's descendant). The test traces
//! gwshim's system calls (ptrace) and holds it at the entry of the call that signals the
//! leftover (kill, tgkill or pidfd_send_signal): the latest moment before the act, after
//! every check gwshim makes. There the leftover is killed and reaped by its own parent, and
//! `ns_last_pid` makes the next process of the namespace, a stranger, take its pid. Then
//! gwshim goes on. Production code has no hook for this: the tracer stops it from outside.

mod common;
mod skip;

use common::TempDir;

use nix::libc;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const GWSHIM: &str = env!("CARGO_BIN_EXE_gwshim");

fn scratch(name: &str) -> TempDir {
    TempDir::new(&format!("pid-reuse-{name}"))
}

fn wait_until(what: &str, limit: Duration, ok: impl FnMut() -> bool) {
    assert!(
        common::wait_within(limit, Duration::from_millis(10), ok),
        "timed out waiting for {what}"
    );
}

fn read_number(file: &Path) -> Option<i32> {
    fs::read_to_string(file).ok()?.trim().parse().ok()
}

fn wait_number(file: &Path) -> i32 {
    let mut n = None;
    wait_until(&file.display().to_string(), Duration::from_secs(20), || {
        n = read_number(file);
        n.is_some()
    });
    n.expect("a number")
}

fn state(pid: i32) -> Option<char> {
    common::stat(pid).map(|s| s.0)
}

/// Field 22 of /proc/PID/stat: with the pid, it names one process for good.
fn start_time(pid: i32) -> Option<u64> {
    common::stat_fields(pid)?.get(19)?.parse().ok()
}

fn first_child(pid: i32) -> Option<i32> {
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The host pid of the process that has pid `inner` in the PID namespace of `member`.
fn host_pid(member: i32, inner: i32) -> Option<i32> {
    let ns = fs::read_link(format!("/proc/{member}/ns/pid")).ok()?;
    fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let p: i32 = e.file_name().to_str()?.parse().ok()?;
        if fs::read_link(format!("/proc/{p}/ns/pid")).ok()? != ns {
            return None;
        }
        let status = fs::read_to_string(format!("/proc/{p}/status")).ok()?;
        let nspid = status.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
        (nspid.split_whitespace().last()?.parse::<i32>().ok()? == inner).then_some(p)
    })
}

/// The host pid a pidfd of `pid` names (its fdinfo), if `fd` is a pidfd.
fn pidfd_target(pid: i32, fd: u64) -> Option<i32> {
    let info = fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("Pid:"))?
        .trim()
        .parse()
        .ok()
}

fn pidfds_work() -> bool {
    // SAFETY: pidfd_open on our own pid; the fd, if any, is closed at once.
    unsafe {
        let fd = libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0);
        if fd >= 0 {
            libc::close(fd as i32);
        }
        fd >= 0
    }
}

/// struct ptrace_syscall_info (linux/ptrace.h), the entry variant, with room to spare.
#[repr(C)]
#[derive(Default)]
struct SyscallInfo {
    op: u8,
    _pad: [u8; 3],
    arch: u32,
    ip: u64,
    sp: u64,
    nr: u64,
    args: [u64; 6],
    _more: [u64; 4],
}

const PTRACE_GET_SYSCALL_INFO: libc::c_uint = 0x420e;
const PTRACE_SYSCALL_INFO_ENTRY: u8 = 1;

/// ptrace(2) on plain integers and, for GET_SYSCALL_INFO, a buffer of ours.
fn ptrace(req: libc::c_uint, pid: i32, addr: usize, data: usize) -> i64 {
    // SAFETY: the requests used here read into `data` only for GET_SYSCALL_INFO, whose size
    // (`addr`) is that of the buffer passed; the others take plain integers.
    unsafe { libc::ptrace(req, pid, addr, data) as i64 }
}

fn syscall_entry(pid: i32) -> Option<SyscallInfo> {
    let mut info = SyscallInfo::default();
    let size = std::mem::size_of::<SyscallInfo>();
    let r = ptrace(
        PTRACE_GET_SYSCALL_INFO,
        pid,
        size,
        &mut info as *mut SyscallInfo as usize,
    );
    (r > 0 && info.op == PTRACE_SYSCALL_INFO_ENTRY).then_some(info)
}

/// The namespace's first process, killed (and with it the whole namespace) when dropped.
struct Namespace {
    unshare: Child,
    init: i32,
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.init), Signal::SIGKILL);
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
    }
}

#[test]
fn a_leftover_whose_pid_is_reused_before_the_kill_never_gets_the_signal() {
    if !nix::unistd::geteuid().is_root() {
        return skip::skip("needs root: a PID namespace, ns_last_pid and ptrace");
    }
    if !pidfds_work() {
        return skip::skip_always_allowed("this kernel has no pidfds (Linux < 5.3)");
    }
    let dir = scratch("reuse");
    let go = dir.join("go");
    nix::unistd::mkfifo(&go, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    let d = dir.display();
    // The holder ignores SIGTERM, so it is still there to reap the leftover, its child.
    let holder = dir.join("holder.sh");
    fs::write(
        &holder,
        format!("trap '' TERM\nsleep 1000000 &\necho $! > {d}/leftover\nwait\necho > {d}/reaped\n"),
    )
    .expect("holder script");
    let child = dir.join("child.sh");
    fs::write(
        &child,
        format!("sh {} &\nread x < {d}/go\nexit 0\n", holder.display()),
    )
    .expect("child script");
    let init = format!(
        "\"$0\" --no-pacing --grace 30 -- sh {} 2> {d}/gwshim.log; \
         echo $? > {d}/status; exec sleep 1000000",
        child.display()
    );
    let unshare = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "sh", "-c", &init, GWSHIM])
        .stdin(Stdio::null())
        .spawn();
    let unshare = match unshare {
        Ok(c) => c,
        Err(e) => return skip::skip(&format!("no unshare: {e}")),
    };
    let upid = unshare.id() as i32;
    let mut ns = Namespace { unshare, init: 0 };
    wait_until("the namespace's init", Duration::from_secs(20), || {
        first_child(upid).is_some()
    });
    ns.init = first_child(upid).expect("init");
    let leftover_ns = wait_number(&dir.join("leftover"));
    let mut gwshim = None;
    wait_until("gwshim", Duration::from_secs(20), || {
        gwshim = first_child(ns.init);
        gwshim.is_some()
    });
    let gwshim = gwshim.expect("gwshim");
    let leftover = host_pid(ns.init, leftover_ns).expect("the leftover's host pid");

    if ptrace(
        libc::PTRACE_SEIZE,
        gwshim,
        0,
        libc::PTRACE_O_TRACESYSGOOD as usize,
    ) != 0
    {
        let e = std::io::Error::last_os_error();
        return skip::skip(&format!("cannot trace gwshim: {e}"));
    }
    assert_eq!(ptrace(libc::PTRACE_INTERRUPT, gwshim, 0, 0), 0);
    let gw = Pid::from_raw(gwshim);
    waitpid(gw, Some(WaitPidFlag::__WALL)).expect("the interrupt stop");
    // The main child exits: gwshim reaps it, judges the leftovers and signals them.
    fs::write(&go, "go\n").expect("release the main child");

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut inject = 0;
    let held = loop {
        assert!(
            Instant::now() < deadline,
            "gwshim never signalled the leftover"
        );
        assert_eq!(ptrace(libc::PTRACE_SYSCALL, gwshim, 0, inject), 0);
        inject = 0;
        match waitpid(gw, Some(WaitPidFlag::__WALL)).expect("waitpid gwshim") {
            WaitStatus::PtraceSyscall(_) => {}
            WaitStatus::Stopped(_, sig) => {
                inject = sig as usize;
                continue;
            }
            WaitStatus::PtraceEvent(..) => continue,
            other => panic!("gwshim ended before signalling the leftover: {other:?}"),
        }
        let Some(call) = syscall_entry(gwshim) else {
            continue;
        };
        let nr = call.nr as i64;
        let aims_at_leftover = if nr == libc::SYS_kill || nr == libc::SYS_tgkill {
            call.args[0] as i32 == leftover_ns
        } else if nr == libc::SYS_pidfd_send_signal {
            pidfd_target(gwshim, call.args[0]) == Some(leftover)
        } else {
            false
        };
        if aims_at_leftover {
            break nr;
        }
    };

    // gwshim is held at the entry of the signalling call. The leftover dies, its parent
    // reaps it, and a stranger (a child of nsenter: not gwshim's descendant) takes its pid.
    kill(Pid::from_raw(leftover), Signal::SIGKILL).expect("kill the leftover");
    wait_until(
        "the holder to reap the leftover",
        Duration::from_secs(20),
        || dir.join("reaped").exists(),
    );
    let stranger = format!(
        "echo {} > /proc/sys/kernel/ns_last_pid; sleep 1000000 & echo $! > {d}/stranger",
        leftover_ns - 1
    );
    let entered = Command::new("nsenter")
        .args(["--target", &ns.init.to_string(), "--pid", "--", "sh", "-c"])
        .arg(&stranger)
        .status()
        .expect("nsenter");
    assert!(entered.success(), "nsenter: {entered}");
    let stranger_ns = wait_number(&dir.join("stranger"));
    assert_eq!(stranger_ns, leftover_ns, "the pid was not reused");
    let stranger = host_pid(ns.init, stranger_ns).expect("the stranger's host pid");
    let stranger_start = start_time(stranger).expect("the stranger's start time");

    assert_eq!(ptrace(libc::PTRACE_DETACH, gwshim, 0, 0), 0);
    let status = wait_number(&dir.join("status"));
    let log = fs::read_to_string(dir.join("gwshim.log")).unwrap_or_default();
    eprintln!("--- gwshim log (held at syscall {held}) ---\n{log}---");
    assert_eq!(status, 0, "{log}");
    assert!(log.contains("leftover processes"), "{log}");
    // Still alive, and still the same process: the signal meant for the leftover missed it.
    assert!(
        state(stranger).is_some_and(|s| s != 'Z') && start_time(stranger) == Some(stranger_start),
        "the stranger that took the leftover's pid got gwshim's signal"
    );
    drop(ns);
}

/// A seccomp filter that makes pidfd_open fail with ENOSYS, as on a kernel before 5.3.
fn without_pidfds(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let filter = [
        // the system call number: offset 0 of struct seccomp_data
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
        libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: libc::SYS_pidfd_open as u32,
        },
        stmt(
            libc::BPF_RET | libc::BPF_K,
            libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
        ),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
    ];
    // SAFETY: prctl is async-signal-safe; the program it reads was built before the fork and
    // lives in the closure.
    unsafe {
        cmd.pre_exec(move || {
            let prog = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr() as *mut libc::sock_filter,
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER,
                    &prog as *const libc::sock_fprog,
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[test]
fn without_pidfds_leftovers_and_the_child_are_still_signalled_and_it_says_so_once() {
    let dir = scratch("nopidfd");
    let log = dir.join("gwshim.log");
    let leftover = dir.join("leftover");
    // The leftover reports the SIGTERM it gets; the child waits for gwshim's forwarded TERM.
    // Each writes its file once its trap is set.
    let script = format!(
        "trap 'exit 3' TERM; \
         sh -c 'trap \"echo term > {0}.term; exit 0\" TERM; echo $$ > {0}; \
         while :; do sleep 0.1; done' & \
         sleep 1000 & echo $$ > {0}.child; wait",
        leftover.display()
    );
    let mut cmd = Command::new(GWSHIM);
    cmd.args([
        "--no-pacing",
        "-v",
        "--grace",
        "20",
        "--",
        "sh",
        "-c",
        &script,
    ])
    .stdin(Stdio::null())
    .stderr(fs::File::create(&log).expect("log"));
    without_pidfds(&mut cmd);
    let mut gwshim = cmd.spawn().expect("spawn gwshim");
    let leftover_pid = wait_number(&leftover);
    wait_number(&dir.join("leftover.child"));
    kill(Pid::from_raw(gwshim.id() as i32), Signal::SIGTERM).expect("stop gwshim");
    let mut status = None;
    wait_until("gwshim to exit", Duration::from_secs(30), || {
        status = gwshim.try_wait().expect("try_wait");
        status.is_some()
    });
    let text = fs::read_to_string(&log).unwrap_or_default();
    eprintln!("--- gwshim log ---\n{text}---");
    // The child got the forwarded SIGTERM (trap: exit 3, a stop request, so gwshim exits 0).
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{text}");
    assert!(text.contains("exited 3"), "{text}");
    // The leftover got SIGTERM by pid, after the start time check.
    assert!(
        dir.join("leftover.term").exists() && state(leftover_pid).is_none_or(|s| s == 'Z'),
        "{text}"
    );
    assert!(!text.contains("needed SIGKILL"), "{text}");
    assert_eq!(text.matches("no pidfds here").count(), 1, "{text}");
}
