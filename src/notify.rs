//! sd_notify relay. Once gwshim is a unit's main process, systemd (NotifyAccess=main) only
//! accepts READY=1 and WATCHDOG=1 from gwshim. So the child gets a socket of gwshim's own as
//! NOTIFY_SOCKET, and gwshim sends on what arrives there to systemd's socket, from itself.
//! gwshim also speaks for itself (`Notifier`): STATUS= lines for `systemctl status`, and
//! STOPPING=1 when a stop begins.

use log::{debug, warn};
use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, UnixAddr,
    bind, recvmsg, sendmsg, setsockopt, socket, sockopt,
};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// systemd reads at most this much of a notification (NOTIFY_BUFFER_MAX).
pub const MAX_DATAGRAM: usize = 4096;
/// The kernel passes at most this many fds in one message (SCM_MAX_FD).
const MAX_FDS: usize = 253;

pub struct Relay {
    sock: OwnedFd,
    path: PathBuf,
    target: UnixAddr,
}

/// What to send on for one datagram. Pure.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Relay these bytes (the datagram itself, less any MAINPID= line).
    Relay(Vec<u8>),
    /// Nothing left to send (it only held MAINPID=).
    Nothing,
    Drop(&'static str),
}

pub fn judge(datagram: &[u8]) -> Verdict {
    if datagram.is_empty() {
        return Verdict::Drop("empty");
    }
    if datagram.len() > MAX_DATAGRAM {
        return Verdict::Drop("oversized");
    }
    let Ok(text) = std::str::from_utf8(datagram) else {
        return Verdict::Drop("not UTF-8");
    };
    if text.contains('\0') {
        return Verdict::Drop("holds a NUL byte");
    }
    let lines: Vec<&str> = text.split('\n').filter(|l| !l.is_empty()).collect();
    if lines.iter().any(|l| !l.contains('=') || l.starts_with('=')) {
        return Verdict::Drop("a line is not VARIABLE=value");
    }
    if !lines.iter().any(|l| l.starts_with("MAINPID=")) {
        return Verdict::Relay(datagram.to_vec());
    }
    // The main pid stays gwshim's: systemd must keep signalling gwshim, not the child.
    let kept: Vec<&str> = lines
        .into_iter()
        .filter(|l| !l.starts_with("MAINPID="))
        .collect();
    if kept.is_empty() {
        Verdict::Nothing
    } else {
        Verdict::Relay((kept.join("\n") + "\n").into_bytes())
    }
}

/// systemd's NOTIFY_SOCKET: a path, or an abstract name written with a leading '@'.
pub fn parse_target(value: &std::ffi::OsStr) -> Option<UnixAddr> {
    let bytes = value.as_bytes();
    match bytes.first()? {
        b'@' => UnixAddr::new_abstract(&bytes[1..]).ok(),
        b'/' => UnixAddr::new(Path::new(value)).ok(),
        _ => None,
    }
}

/// The relay and gwshim's own notifier, when systemd gave gwshim a NOTIFY_SOCKET. `noun` names
/// the child in status lines; `folder` gives the private folder for the relay's socket.
pub fn setup(
    noun: &'static str,
    folder: impl FnOnce() -> Option<PathBuf>,
) -> (Option<Relay>, Option<Notifier>) {
    let Some(value) = std::env::var_os("NOTIFY_SOCKET") else {
        return (None, None);
    };
    let Some(target) = parse_target(&value) else {
        warn!(
            "NOTIFY_SOCKET='{}' is not a socket address; passed on as is",
            value.to_string_lossy()
        );
        return (None, None);
    };
    let notifier = Notifier::open(target, noun)
        .inspect_err(|e| warn!("cannot tell systemd what gwshim is doing ({e})"))
        .ok();
    let relay = folder().and_then(|dir| {
        Relay::open(target, &dir)
            .inspect_err(|e| warn!("cannot open a notify socket ({e}); the child gets systemd's"))
            .ok()
    });
    (relay, notifier)
}

/// gwshim's own messages to systemd: one datagram per event, never blocking.
pub struct Notifier {
    sock: OwnedFd,
    target: UnixAddr,
    /// What the child is called in status lines: "gateway" or "child".
    pub noun: &'static str,
}

impl Notifier {
    pub fn open(target: UnixAddr, noun: &'static str) -> Result<Notifier, String> {
        let sock = datagram_socket()?;
        Ok(Notifier { sock, target, noun })
    }

    /// `STATUS=text`, shown by `systemctl status` (one line: newlines become spaces).
    pub fn status(&self, text: &str) {
        self.send(&status_message(text, false));
    }

    /// `STOPPING=1` with a status line: the unit shows `deactivating` at once.
    pub fn stopping(&self, text: &str) {
        self.send(&status_message(text, true));
    }

    fn send(&self, message: &str) {
        match sendmsg::<UnixAddr>(
            self.sock.as_raw_fd(),
            &[IoSlice::new(message.as_bytes())],
            &[],
            MsgFlags::MSG_NOSIGNAL,
            Some(&self.target),
        ) {
            Ok(_) => debug!("told systemd: {}", message.replace('\n', " ")),
            Err(e) => warn!(
                "cannot notify systemd ({e}): {}",
                message.replace('\n', " ")
            ),
        }
    }

    /// gwshim's own notifier alone, from systemd's NOTIFY_SOCKET, for when the relay is off
    /// (`--no-notify-relay`): gwshim still speaks for itself during a pacing wait. None when
    /// systemd gave no socket, or it cannot be used.
    pub fn from_env(noun: &'static str) -> Option<Notifier> {
        let target = parse_target(&std::env::var_os("NOTIFY_SOCKET")?)?;
        Notifier::open(target, noun)
            .inspect_err(|e| warn!("cannot tell systemd what gwshim is doing ({e})"))
            .ok()
    }

    /// Sends one message of gwshim's own, as made by the caller (e.g. pacing's keep-alive).
    pub fn tell(&self, message: &str) {
        self.send(message);
    }
}

/// A unix datagram socket that never blocks gwshim and is not inherited by the child.
fn datagram_socket() -> Result<OwnedFd, String> {
    socket(
        AddressFamily::Unix,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(|e| format!("socket: {e}"))
}

/// The datagram for a status line. Pure.
pub fn status_message(text: &str, stopping: bool) -> String {
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if stopping {
        format!("STOPPING=1\nSTATUS={line}")
    } else {
        format!("STATUS={line}")
    }
}

impl Relay {
    /// Binds a datagram socket at `dir/notify-PID` (dir is private to this user).
    pub fn open(target: UnixAddr, dir: &Path) -> Result<Relay, String> {
        let path = dir.join(format!("notify-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let sock = datagram_socket()?;
        let addr = UnixAddr::new(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        bind(sock.as_raw_fd(), &addr).map_err(|e| format!("bind {}: {e}", path.display()))?;
        // Learn who sent each datagram, for the logs.
        let _ = setsockopt(&sock, sockopt::PassCred, &true);
        Ok(Relay { sock, path, target })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }

    /// Relays every datagram waiting on the socket; never blocks.
    pub fn pump(&self) {
        let mut buf = vec![0u8; MAX_DATAGRAM + 1];
        let mut cmsg = nix::cmsg_space!(
            [std::os::fd::RawFd; MAX_FDS],
            nix::sys::socket::UnixCredentials
        );
        loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            let msg = match recvmsg::<()>(
                self.sock.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_CMSG_CLOEXEC | MsgFlags::MSG_TRUNC,
            ) {
                Ok(m) => m,
                Err(Errno::EAGAIN) => return,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    warn!("notify socket: {e}");
                    return;
                }
            };
            let (len, truncated) = (msg.bytes, msg.flags.contains(MsgFlags::MSG_TRUNC));
            let mut fds: Vec<OwnedFd> = Vec::new();
            let mut sender = None;
            if let Ok(cmsgs) = msg.cmsgs() {
                for c in cmsgs {
                    match c {
                        // SAFETY: the kernel just installed these fds in gwshim for this
                        // message; nothing else owns them, and OwnedFd closes them after.
                        ControlMessageOwned::ScmRights(raw) => fds.extend(
                            raw.into_iter()
                                .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                        ),
                        ControlMessageOwned::ScmCredentials(c) => sender = Some(c.pid()),
                        _ => {}
                    }
                }
            }
            let from = sender.map_or_else(|| "?".to_string(), |p| p.to_string());
            let verdict = if truncated {
                Verdict::Drop("oversized")
            } else {
                judge(&buf[..len.min(buf.len())])
            };
            match verdict {
                Verdict::Relay(bytes) => self.send(&bytes, &fds, &from),
                Verdict::Nothing => debug!(
                    "notify from pid {from}: MAINPID= not relayed, gwshim stays the main pid"
                ),
                Verdict::Drop(why) => warn!("dropped a notification from pid {from}: {why}"),
            }
        }
    }

    fn send(&self, bytes: &[u8], fds: &[OwnedFd], from: &str) {
        let raw: Vec<i32> = fds.iter().map(|f| f.as_raw_fd()).collect();
        let rights = [ControlMessage::ScmRights(&raw)];
        let cmsgs: &[ControlMessage] = if raw.is_empty() { &[] } else { &rights };
        let text = String::from_utf8_lossy(bytes);
        match sendmsg(
            self.sock.as_raw_fd(),
            &[IoSlice::new(bytes)],
            cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            Some(&self.target),
        ) {
            Ok(_) => debug!(
                "relayed from pid {from}: {}",
                text.trim_end().replace('\n', " ")
            ),
            Err(e) => warn!("cannot relay a notification from pid {from} to systemd: {e}"),
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judges_datagrams() {
        let relay = |s: &str| Verdict::Relay(s.as_bytes().to_vec());
        let table: &[(&[u8], Verdict)] = &[
            (b"READY=1", relay("READY=1")),
            (
                b"READY=1\nSTATUS=up and running\n",
                relay("READY=1\nSTATUS=up and running\n"),
            ),
            (b"WATCHDOG=1", relay("WATCHDOG=1")),
            (b"FDSTORE=1\nFDNAME=sock", relay("FDSTORE=1\nFDNAME=sock")),
            (b"MAINPID=42", Verdict::Nothing),
            (b"READY=1\nMAINPID=42", relay("READY=1\n")),
            (b"", Verdict::Drop("empty")),
            (b"READY", Verdict::Drop("a line is not VARIABLE=value")),
            (b"=1", Verdict::Drop("a line is not VARIABLE=value")),
            (b"READY=1\0", Verdict::Drop("holds a NUL byte")),
            (b"\xff\xfe", Verdict::Drop("not UTF-8")),
        ];
        for (datagram, want) in table {
            assert_eq!(
                &judge(datagram),
                want,
                "{:?}",
                String::from_utf8_lossy(datagram)
            );
        }
        assert_eq!(
            judge(&vec![b'A'; MAX_DATAGRAM + 1]),
            Verdict::Drop("oversized")
        );
    }

    #[test]
    fn status_messages_are_one_line() {
        let table = [
            (
                "gateway running, pid 4242",
                false,
                "STATUS=gateway running, pid 4242",
            ),
            ("a\nb\tc", false, "STATUS=a b c"),
            ("stopping", true, "STOPPING=1\nSTATUS=stopping"),
        ];
        for (text, stopping, want) in table {
            assert_eq!(status_message(text, stopping), want);
        }
    }

    #[test]
    fn parses_notify_socket_addresses() {
        assert!(parse_target("/run/systemd/notify".as_ref()).is_some());
        assert!(parse_target("@/org/freedesktop/systemd1/notify/123".as_ref()).is_some());
        assert!(parse_target("relative".as_ref()).is_none());
        assert!(parse_target("".as_ref()).is_none());
    }
}
