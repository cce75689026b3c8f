//! The sd_notify relay and LISTEN_PID/WATCHDOG_PID, against the real binary with a test
//! socket standing in for systemd's.

mod common;

use common::TempDir;
use nix::sys::socket::{
    AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockType, UnixAddr, bind, recvmsg,
    setsockopt, socket, sockopt,
};
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const GWSHIM: &str = env!("CARGO_BIN_EXE_gwshim");

/// A fresh private folder, removed when the test ends.
fn temp(tag: &str) -> TempDir {
    TempDir::private(&format!("notify-{tag}"))
}

/// A datagram socket like systemd's: SO_PASSCRED, so each message names its sender.
fn receiver(path: &std::path::Path) -> OwnedFd {
    let sock = socket(
        AddressFamily::Unix,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .expect("socket");
    bind(sock.as_raw_fd(), &UnixAddr::new(path).expect("addr")).expect("bind");
    setsockopt(&sock, sockopt::PassCred, &true).expect("passcred");
    setsockopt(
        &sock,
        sockopt::ReceiveTimeout,
        &nix::sys::time::TimeVal::new(0, 300_000),
    )
    .expect("timeout");
    sock
}

/// Every datagram waiting: (bytes, sender pid, number of fds).
fn drain(sock: &OwnedFd) -> Vec<(Vec<u8>, i32, usize)> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 8192];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 8], nix::sys::socket::UnixCredentials);
    while let Ok(msg) = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut [IoSliceMut::new(&mut buf)],
        Some(&mut cmsg),
        MsgFlags::empty(),
    ) {
        let (mut pid, mut fds) = (0, 0);
        for c in msg.cmsgs().expect("cmsgs") {
            match c {
                ControlMessageOwned::ScmCredentials(cred) => pid = cred.pid(),
                ControlMessageOwned::ScmRights(raw) => fds = raw.len(),
                _ => {}
            }
        }
        let n = msg.bytes;
        got.push((buf[..n].to_vec(), pid, fds));
    }
    got
}

const SENDER: &str = r#"
import array, os, socket, sys
a = os.environ["NOTIFY_SOCKET"]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"READY=1\nSTATUS=up and running", a)
s.sendto(b"MAINPID=1", a)
s.sendto(b"not a notification", a)
s.sendto(b"X=" + b"A" * 5000, a)
r, w = os.pipe()
s.sendmsg([b"FDSTORE=1\nFDNAME=pipe"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [r]).tobytes())], 0, a)
s.sendto(b"WATCHDOG=1", a)
print(os.getpid(), a)
"#;

#[test]
fn relays_notifications_from_gwshim_itself() {
    let dir = temp("relay");
    let target = dir.join("systemd-notify");
    let sock = receiver(&target);
    let gwshim = Command::new(GWSHIM)
        .args(["--state-dir"])
        .arg(dir.join("state"))
        .args(["--", "python3", "-c", SENDER])
        .env("NOTIFY_SOCKET", &target)
        .env_remove("INVOCATION_ID")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run gwshim");
    let gwshim_pid = gwshim.id() as i32;
    let out = gwshim.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let (child_pid, child_saw) = stdout.trim().split_once(' ').expect("pid and socket");
    let child_saw = child_saw.to_string();
    assert_ne!(
        child_saw,
        target.display().to_string(),
        "the child gets gwshim's socket"
    );
    assert!(
        !PathBuf::from(&child_saw).exists(),
        "gwshim removes its socket when done"
    );
    let got = drain(&sock);
    let texts: Vec<String> = got
        .iter()
        .map(|(b, _, _)| String::from_utf8_lossy(b).into_owned())
        .collect();
    // First gwshim's own status line (sent as the child started), then the child's messages.
    assert_eq!(
        texts,
        [
            &format!("STATUS=child running, pid {child_pid}"),
            "READY=1\nSTATUS=up and running",
            // systemd ignores a line it cannot use, not the datagram: passed as it is.
            "not a notification",
            "FDSTORE=1\nFDNAME=pipe",
            "WATCHDOG=1"
        ],
        "{stderr}"
    );
    for (_, pid, _) in &got {
        assert_eq!(*pid, gwshim_pid, "sent by gwshim itself, not by the child");
    }
    assert_eq!(got[3].2, 1, "the fd travels with FDSTORE=1");
    assert!(
        stderr.contains("dropped a notification") && stderr.contains("over 4096 bytes"),
        "{stderr}"
    );
}

#[test]
fn no_notify_relay_passes_systemds_socket() {
    let dir = temp("norelay");
    let target = dir.join("systemd-notify");
    let sock = receiver(&target);
    let out = Command::new(GWSHIM)
        .args([
            "--no-notify-relay",
            "--",
            "sh",
            "-c",
            "echo \"$NOTIFY_SOCKET\"",
        ])
        .env("NOTIFY_SOCKET", &target)
        .output()
        .expect("run gwshim");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        target.display().to_string()
    );
    // gwshim stays out of sd_notify altogether: no status line of its own either.
    assert_eq!(drain(&sock), []);
}

#[test]
fn listen_and_watchdog_pids_name_the_child_when_they_named_gwshim() {
    // `exec` keeps the shell's pid, so $$ is the pid gwshim runs with.
    // fd 3 stands for the socket systemd passes: it must reach the child open.
    let script = format!(
        "exec 3</dev/null; LISTEN_PID=$$ WATCHDOG_PID=$$ LISTEN_FDS=1 exec {GWSHIM} -- \
         sh -c 'test -e /proc/self/fd/3 || exit 9; echo $$ $LISTEN_PID $WATCHDOG_PID $LISTEN_FDS'"
    );
    let out = Command::new("sh")
        .args(["-c", &script])
        .output()
        .expect("run");
    let words: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(String::from)
        .collect();
    assert_eq!(words.len(), 4, "{words:?}");
    assert_eq!(words[1], words[0], "LISTEN_PID is the child's own pid");
    assert_eq!(words[2], words[0], "WATCHDOG_PID is the child's own pid");
    assert_eq!(words[3], "1");
    // Values naming another process pass unchanged.
    let out = Command::new(GWSHIM)
        .args(["--", "sh", "-c", "echo $LISTEN_PID $WATCHDOG_PID"])
        .env("LISTEN_PID", "1")
        .env("WATCHDOG_PID", "123456")
        .output()
        .expect("run");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1 123456");
}

/// The fork + pre_exec start (taken when LISTEN_PID names gwshim) reports a failed exec as the
/// plain start does: 127 not found, 126 not executable.
#[test]
fn exec_failures_on_the_fork_path_keep_their_status() {
    for (command, status) in [("/nonexistent/gwshim-test", 127), ("/etc/passwd", 126)] {
        let script = format!("LISTEN_PID=$$ exec {GWSHIM} -- {command}");
        let out = Command::new("sh")
            .args(["-c", &script])
            .output()
            .expect("run");
        assert_eq!(
            out.status.code(),
            Some(status),
            "{command}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Runs gwshim -v with `script` (python) as its child, NOTIFY_SOCKET on a test socket; returns
/// the gwshim process (stdout piped) and the receiving socket.
fn relay_run(
    dir: &TempDir,
    state: &std::path::Path,
    script: &str,
) -> (std::process::Child, OwnedFd) {
    let target = dir.join("systemd-notify");
    let sock = receiver(&target);
    let child = Command::new(GWSHIM)
        .arg("-v")
        .arg("--state-dir")
        .arg(state)
        .args(["--", "python3", "-c", script])
        .env("NOTIFY_SOCKET", &target)
        .env_remove("INVOCATION_ID")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run gwshim");
    (child, sock)
}

fn texts(got: &[(Vec<u8>, i32, usize)]) -> Vec<String> {
    got.iter()
        .map(|(b, _, _)| String::from_utf8_lossy(b).into_owned())
        .collect()
}

/// A process the child started is not the child: what it sends is refused (one debug line
/// naming its pid), fds closed, as systemd would refuse it under NotifyAccess=main; the
/// child's own still passes.
#[test]
fn the_relay_speaks_only_for_the_child() {
    let dir = temp("others");
    let script = r#"
import os, socket, subprocess, sys
a = os.environ["NOTIFY_SOCKET"]
g = subprocess.run([sys.executable, "-c", r'''
import array, os, socket
a = os.environ["NOTIFY_SOCKET"]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"READY=1\nSTATUS=the grandchild", a)
s.sendto(b"STOPPING=1", a)
r, w = os.pipe()
s.sendmsg([b"FDSTORE=1"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [r]).tobytes())], 0, a)
print(os.getpid())
'''], capture_output=True, text=True).stdout.strip()
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"READY=1\nSTATUS=the child", a)
print(g)
"#;
    let (gwshim, sock) = relay_run(&dir, &dir.join("state"), script);
    let out = gwshim.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let grandchild = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let got = drain(&sock);
    let texts = texts(&got);
    assert_eq!(texts.len(), 2, "{texts:?}\n{stderr}");
    assert!(
        texts[0].starts_with("STATUS=child running, pid "),
        "{texts:?}"
    );
    assert_eq!(texts[1], "READY=1\nSTATUS=the child", "{stderr}");
    let refused = format!("refused a notification from pid {grandchild} (not the main process");
    assert_eq!(stderr.matches(&refused).count(), 3, "{stderr}");
}

/// The child's last datagrams (a status line, an fd for the store) wait on the socket when
/// gwshim reads the child's death first (here: gwshim is stopped while the child sends and
/// exits, so both are pending when it continues, and the signal is read first): they still
/// reach systemd, from the reaped child's pid, before gwshim exits.
#[test]
fn the_childs_last_words_reach_systemd_after_its_death() {
    let dir = temp("last");
    let go = dir.join("go");
    let script = format!(
        r#"
import array, os, socket, sys, time
print(os.getpid(), flush=True)
while not os.path.exists("{}"):
    time.sleep(0.01)
a = os.environ["NOTIFY_SOCKET"]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"STATUS=last words", a)
r, w = os.pipe()
s.sendmsg([b"FDSTORE=1\nFDNAME=last"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [r]).tobytes())], 0, a)
"#,
        go.display()
    );
    let (mut gwshim, sock) = relay_run(&dir, &dir.join("state"), &script);
    let gwshim_pid = gwshim.id() as i32;
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(gwshim.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("child pid");
    let child: i32 = line.trim().parse().expect("pid");
    common::kill(gwshim_pid, nix::libc::SIGSTOP);
    assert!(common::wait_until(|| common::stopped(gwshim_pid)));
    std::fs::write(&go, "").expect("go");
    assert!(
        common::wait_until(|| common::stat(child).is_some_and(|s| s.0 == 'Z')),
        "the child exits"
    );
    common::kill(gwshim_pid, nix::libc::SIGCONT);
    let status = common::wait_timeout(&mut gwshim, Duration::from_secs(10)).expect("gwshim exits");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut gwshim.stderr.take().expect("stderr"), &mut stderr)
        .expect("stderr");
    assert_eq!(status.code(), Some(0), "{stderr}");
    let got = drain(&sock);
    let texts = texts(&got);
    assert_eq!(
        texts[1..],
        ["STATUS=last words", "FDSTORE=1\nFDNAME=last"],
        "{stderr}"
    );
    assert_eq!(got[2].2, 1, "the fd travels along");
}

/// A state folder whose path is too long for a socket address (a long profile name under
/// $XDG_RUNTIME_DIR): the child gets an abstract socket, and its READY=1 still passes.
#[test]
fn a_path_too_long_for_a_socket_still_relays() {
    let dir = temp("long");
    let state = dir.join(&format!("gwshim-hermes-gateway-{}", "p".repeat(90)));
    let script = r#"
import os, socket
a = os.environ["NOTIFY_SOCKET"]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"READY=1", "\0" + a[1:] if a.startswith("@") else a)
print(a)
"#;
    let (gwshim, sock) = relay_run(&dir, &state, script);
    let out = gwshim.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let address = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        address.starts_with("@gwshim/notify/"),
        "{address}\n{stderr}"
    );
    assert_eq!(texts(&drain(&sock))[1..], ["READY=1"], "{stderr}");
    assert!(!stderr.contains("cannot open a notify socket"), "{stderr}");
}

/// The socket of a gwshim that was SIGKILLed (nothing removed it) is removed by the next one;
/// a live relay's socket is left alone.
#[test]
fn a_killed_gwshims_socket_is_swept() {
    let dir = temp("sweep");
    let state = dir.join("state");
    std::fs::create_dir(&state).expect("state");
    std::fs::set_permissions(&state, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .expect("mode");
    let stale = state.join("notify-999999");
    drop(receiver(&stale)); // bound, then closed: the file stays, nobody listens
    let live_path = state.join("notify-888888");
    let live = receiver(&live_path);
    let (gwshim, _sock) = relay_run(&dir, &state, "pass");
    let out = gwshim.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0));
    assert!(!stale.exists(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(live_path.exists());
    drop(live);
}
