//! sd_notify relay. Once gwshim is a unit's main process, systemd (NotifyAccess=main) only
//! accepts READY=1 and WATCHDOG=1 from gwshim. So the child gets a socket of gwshim's own as
//! NOTIFY_SOCKET, and gwshim sends on what arrives there to systemd's socket, from itself.
//!
//! Every process the gateway starts inherits that socket, so the relay speaks only for whom
//! systemd would have listened to without gwshim: the main child (NotifyAccess=main or exec),
//! or any process of the unit (NotifyAccess=all), as the kernel names the sender
//! (SCM_CREDENTIALS). Of what they say it passes what systemd would take, read as systemd reads
//! it (`judge`), keeping from systemd only what would make the child the main process, change
//! who may speak, or turn a restart gwshim is about to pace into a stop.
//! gwshim also speaks for itself (`Notifier`): STATUS= lines for `systemctl status`, and
//! STOPPING=1 when a stop begins.

use log::{debug, warn};
use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, UnixAddr,
    bind, connect, recvmsg, sendmsg, setsockopt, socket, sockopt,
};
use std::cell::Cell;
use std::ffi::OsString;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// systemd reads at most this much of a notification (NOTIFY_BUFFER_MAX) and ignores a longer
/// one whole (252 and 257 alike).
pub const MAX_DATAGRAM: usize = 4096;
/// The kernel passes at most this many fds in one message (SCM_MAX_FD).
const MAX_FDS: usize = 253;
/// A Unix socket path holds at most this many bytes (sun_path, less its NUL).
const MAX_SOCKET_PATH: usize = 107;
/// Datagrams read in one go (see `Relay::pump`).
const PUMP_MAX: usize = 1024;
/// Lines about refused or dropped notifications: at most this many per window.
const LOG_BURST: u32 = 5;
const LOG_WINDOW: Duration = Duration::from_secs(60);

/// Who may speak for the unit: its NotifyAccess= (systemd.service(5)) as far as the relay is
/// concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// `none`: systemd listens to nobody, so the relay passes nothing.
    Nothing,
    /// `main` and `exec`: the main process only. `exec` also admits the control processes
    /// (ExecStartPre= and the like), but those are not gwshim's descendants and talk to
    /// systemd's own socket.
    Main,
    /// `all`: any process of the unit's cgroup.
    All,
}

impl Access {
    /// A value of `systemctl show -p NotifyAccess` or of a NOTIFYACCESS= notification.
    pub fn parse(value: &str) -> Option<Access> {
        match value {
            "none" => Some(Access::Nothing),
            "main" | "exec" => Some(Access::Main),
            "all" => Some(Access::All),
            _ => None,
        }
    }
}

/// Who sent a datagram, from the credentials the kernel attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The main child (also after it was reaped: credentials keep the pid it had).
    Main,
    /// Another process in the unit's cgroup (looked at only under NotifyAccess=all).
    Unit,
    /// Any other process.
    Other,
    /// No credentials, or a pid invisible in gwshim's pid namespace (0).
    Unknown,
}

/// What to do with one datagram. Pure result of `judge`.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Systemd would listen to the sender: relay `bytes` (None: nothing left to say), with the
    /// datagram's fds when `fds` is true, and apply `access` (a NOTIFYACCESS= from the main
    /// child). `held` names the tags kept from systemd.
    Pass {
        bytes: Option<Vec<u8>>,
        fds: bool,
        access: Option<Access>,
        held: Vec<String>,
    },
    /// From a sender systemd listens to, but systemd would ignore all of it.
    Drop(&'static str),
    /// From a sender systemd would not listen to.
    Refuse(&'static str),
}

/// Judges one datagram from `origin` under `access`. Pure.
pub fn judge(origin: Origin, access: Access, datagram: &[u8]) -> Verdict {
    match (origin, access) {
        (Origin::Unknown, _) => Verdict::Refuse("no sender credentials"),
        (_, Access::Nothing) => Verdict::Refuse("NotifyAccess=none"),
        (Origin::Main, _) => filter(datagram, true),
        (Origin::Unit, Access::All) => filter(datagram, false),
        _ => Verdict::Refuse("not the main process"),
    }
}

/// The tags of a datagram as systemd 247 and later read it (strv_split_newlines: words
/// separated by runs of '\n' and '\r', a backslash taking the next byte as it is). None where
/// systemd gives up on the whole datagram: a backslash at the very end. Pure.
pub fn tags(text: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut all = Vec::new();
    let mut word: Option<Vec<u8>> = None;
    let mut escaped = false;
    for &b in text {
        if escaped {
            word.get_or_insert_with(Vec::new).push(b);
            escaped = false;
            continue;
        }
        match b {
            b'\\' => {
                word.get_or_insert_with(Vec::new);
                escaped = true;
            }
            b'\n' | b'\r' => all.extend(word.take()),
            _ => word.get_or_insert_with(Vec::new).push(b),
        }
    }
    if escaped {
        return None;
    }
    all.extend(word);
    Some(all)
}

/// The lines of a datagram with no escapes at all (how systemd before 247 read it): a tag is
/// checked both ways, so no reading of it reaches systemd with what the relay keeps back.
fn raw_lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    text.split(|&b| b == b'\n' || b == b'\r')
        .filter(|l| !l.is_empty())
}

/// Tags the relay keeps from systemd: the main pid stays gwshim's (MAINPID=, MAINPIDFD=, 254+),
/// who may speak is the unit's and the relay's business (NOTIFYACCESS=, 254+), and the child's
/// STOPPING=1 would turn a restart gwshim paces into a stop that TimeoutStopSec= ends (gwshim
/// says STOPPING=1 itself when it stops for good).
fn held(tag: &[u8]) -> bool {
    tag.starts_with(b"MAINPID=")
        || tag.starts_with(b"MAINPIDFD=")
        || tag.starts_with(b"NOTIFYACCESS=")
        || tag == b"STOPPING=1"
}

/// READY=1, RELOADING=1 and STOPPING=1: systemd acts on the last of them only.
fn state_tag(tag: &[u8]) -> bool {
    matches!(tag, b"READY=1" | b"RELOADING=1" | b"STOPPING=1")
}

/// What systemd would take of a datagram from a sender it listens to, less the held tags.
fn filter(datagram: &[u8], main: bool) -> Verdict {
    if datagram.len() > MAX_DATAGRAM {
        return Verdict::Drop("over 4096 bytes, which systemd ignores whole");
    }
    // systemd permits one trailing NUL, and ignores a datagram with any other.
    let text = datagram.strip_suffix(b"\0").unwrap_or(datagram);
    if text.contains(&0) {
        return Verdict::Drop("holds a NUL byte, which systemd ignores whole");
    }
    let Some(tags) = tags(text) else {
        return Verdict::Drop("ends in a lone backslash, which systemd ignores whole");
    };
    if tags.is_empty() {
        return Verdict::Drop("empty");
    }
    let winner_stops = tags.iter().rev().find(|t| state_tag(t)).map(Vec::as_slice)
        == Some(b"STOPPING=1".as_slice());
    let keep = |t: &[u8]| !(held(t) || (winner_stops && state_tag(t)));
    let clean = tags.iter().all(|t| keep(t)) && raw_lines(text).all(|l| !held(l));
    let access = if main {
        tags.iter()
            .rev()
            .find_map(|t| t.strip_prefix(b"NOTIFYACCESS="))
            .and_then(|v| Access::parse(std::str::from_utf8(v).ok()?))
    } else {
        None
    };
    let mut kept_back: Vec<String> = tags
        .iter()
        .filter(|t| !keep(t))
        .map(|t| String::from_utf8_lossy(t).into_owned())
        .collect();
    if clean {
        // As the child wrote it: systemd reads exactly what it would have read.
        return Verdict::Pass {
            bytes: Some(datagram.to_vec()),
            fds: true,
            access,
            held: kept_back,
        };
    }
    // Written anew from the tags, without the held ones and without any tag that needs an
    // escape (it would read differently before and after systemd 247): every reading of the
    // result gives the same tags.
    let mut bytes = Vec::new();
    for t in &tags {
        if !keep(t) {
            continue;
        }
        if t.iter().any(|b| matches!(b, b'\\' | b'\n' | b'\r')) {
            kept_back.push(String::from_utf8_lossy(t).into_owned());
            continue;
        }
        bytes.extend_from_slice(t);
        bytes.push(b'\n');
    }
    // A pidfd sent with MAINPIDFD=1 is for systemd to take as the main process: not relayed.
    let fds = !tags.iter().any(|t| t.starts_with(b"MAINPIDFD="));
    Verdict::Pass {
        bytes: (!bytes.is_empty()).then_some(bytes),
        fds,
        access,
        held: kept_back,
    }
}

/// Whether the cgroup of a sender (its /proc/PID/cgroup) is the unit's own or below it
/// (`own`: gwshim's, the unit's main process). Pure.
pub fn in_cgroup(own: &str, sender: &str) -> bool {
    let path = |text: &str| -> Option<String> {
        let of = |prefix: &str| {
            text.lines().find_map(|l| {
                l.split_once(':')
                    .and_then(|(_, rest)| rest.strip_prefix(prefix))
                    .map(str::to_string)
            })
        };
        of(":").or_else(|| of("name=systemd:"))
    };
    match (path(own), path(sender)) {
        (Some(own), Some(sender)) => {
            sender == own || sender.starts_with(&format!("{}/", own.trim_end_matches('/')))
        }
        _ => false,
    }
}

/// A log budget: at most LOG_BURST lines per LOG_WINDOW, counting the ones left out. Pure.
#[derive(Clone, Copy, Debug, Default)]
pub struct Budget {
    since: Option<Instant>,
    used: u32,
    missed: u64,
}

impl Budget {
    /// Whether a line may be logged at `now`; Some(n): yes, and n were left out before it.
    pub fn take(&mut self, now: Instant) -> Option<u64> {
        if self
            .since
            .is_none_or(|s| now.saturating_duration_since(s) >= LOG_WINDOW)
        {
            (self.since, self.used) = (Some(now), 0);
        }
        if self.used >= LOG_BURST {
            self.missed += 1;
            return None;
        }
        self.used += 1;
        Some(std::mem::take(&mut self.missed))
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
/// the child in status lines; `folder` gives the private folder for the relay's socket;
/// `access` is the unit's NotifyAccess= as `systemctl show` gave it (None: not known, taken as
/// `main`, what hermes's unit and gwshim's drop-in say).
pub fn setup(
    noun: &'static str,
    folder: impl FnOnce() -> Option<PathBuf>,
    access: Option<&str>,
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
    let access = match access {
        None => Access::Main,
        Some(v) => Access::parse(v).unwrap_or_else(|| {
            warn!("unexpected NotifyAccess={v}; relaying for the main process only");
            Access::Main
        }),
    };
    let notifier = Notifier::open(target, noun)
        .inspect_err(|e| warn!("cannot tell systemd what gwshim is doing ({e})"))
        .ok();
    let relay = Relay::open(target, folder().as_deref(), access)
        .inspect_err(|e| warn!("cannot open a notify socket ({e}); the child gets systemd's"))
        .ok();
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

/// Where the relay's socket is bound.
enum Bound {
    Path(PathBuf),
    /// An abstract name (no file): the path would not fit in a socket address.
    Abstract(Vec<u8>),
}

pub struct Relay {
    sock: OwnedFd,
    bound: Bound,
    target: UnixAddr,
    access: Cell<Access>,
    /// gwshim's own /proc/self/cgroup, for NotifyAccess=all.
    cgroup: String,
    /// Lines about other processes' notifications (debug) and the child's dropped ones (warn).
    refused: Cell<Budget>,
    dropped: Cell<Budget>,
}

impl Relay {
    /// Binds a datagram socket at `dir/notify-PID` (dir is private to this user), or, where
    /// there is no such folder or the path is too long for a socket address, at an abstract
    /// name. Stale sockets of gwshims that were killed are removed from `dir` first.
    pub fn open(target: UnixAddr, dir: Option<&Path>, access: Access) -> Result<Relay, String> {
        let sock = datagram_socket()?;
        // Before anyone can send: every datagram then names its sender. Without that the
        // relay cannot tell the gateway from its tools, so it must not relay at all.
        setsockopt(&sock, sockopt::PassCred, &true).map_err(|e| format!("SO_PASSCRED: {e}"))?;
        let pid = std::process::id();
        let path = dir.map(|d| d.join(format!("notify-{pid}")));
        let bound = match path {
            Some(path) if path.as_os_str().len() <= MAX_SOCKET_PATH => {
                if let Some(dir) = path.parent() {
                    sweep(dir);
                }
                let _ = std::fs::remove_file(&path);
                let bound = UnixAddr::new(&path)
                    .map_err(|e| e.to_string())
                    .and_then(|addr| bind(sock.as_raw_fd(), &addr).map_err(|e| e.to_string()));
                match bound {
                    Ok(()) => Bound::Path(path),
                    Err(e) => {
                        debug!(
                            "cannot bind {} ({e}); the notify socket is an abstract one",
                            path.display()
                        );
                        bind_abstract(&sock, pid)?
                    }
                }
            }
            other => {
                if let Some(path) = other {
                    debug!(
                        "{} is too long for a socket address; the notify socket is an abstract one",
                        path.display()
                    );
                }
                bind_abstract(&sock, pid)?
            }
        };
        Ok(Relay {
            sock,
            bound,
            target,
            access: Cell::new(access),
            cgroup: std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default(),
            refused: Cell::new(Budget::default()),
            dropped: Cell::new(Budget::default()),
        })
    }

    /// The child's NOTIFY_SOCKET: the socket's path, or '@' and its abstract name.
    pub fn address(&self) -> OsString {
        match &self.bound {
            Bound::Path(p) => p.clone().into_os_string(),
            Bound::Abstract(name) => {
                let mut v = vec![b'@'];
                v.extend_from_slice(name);
                OsString::from_vec(v)
            }
        }
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }

    /// Relays the datagrams waiting on the socket that systemd would take, `main` being the
    /// main child (alive or reaped); never blocks. At most PUMP_MAX a call (the most the
    /// socket queues, net.unix.max_dgram_qlen is 512 by default), so a process that floods
    /// the socket cannot keep gwshim from its signals.
    pub fn pump(&self, main: nix::unistd::Pid) {
        let mut buf = vec![0u8; MAX_DATAGRAM + 1];
        let mut cmsg = nix::cmsg_space!(
            [std::os::fd::RawFd; MAX_FDS],
            nix::sys::socket::UnixCredentials
        );
        for _ in 0..PUMP_MAX {
            let mut iov = [IoSliceMut::new(&mut buf)];
            let msg = match recvmsg::<()>(
                self.sock.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_CMSG_CLOEXEC | MsgFlags::MSG_TRUNC | MsgFlags::MSG_DONTWAIT,
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
            let origin = self.origin(sender, main.as_raw());
            let from = sender.map_or_else(|| "?".to_string(), |p| p.to_string());
            // A truncated read holds the first bytes only: judged as the oversized whole.
            let verdict = if truncated {
                judge(origin, self.access.get(), &vec![b'A'; MAX_DATAGRAM + 1])
            } else {
                judge(origin, self.access.get(), &buf[..len.min(buf.len())])
            };
            match verdict {
                Verdict::Pass {
                    bytes,
                    fds: keep_fds,
                    access,
                    held,
                } => {
                    if !held.is_empty() {
                        debug!(
                            "notify from pid {from}: not relayed: {} (gwshim stays the main \
                             process and decides when the unit stops)",
                            held.join(", ")
                        );
                    }
                    if let Some(a) = access
                        && a != self.access.get()
                    {
                        debug!("notify from pid {from}: the relay now passes for {a:?}");
                        self.access.set(a);
                    }
                    if let Some(bytes) = bytes {
                        self.send(&bytes, if keep_fds { &fds } else { &[] }, &from);
                    }
                }
                Verdict::Drop(why) => {
                    self.log(
                        &self.dropped,
                        log::Level::Warn,
                        &format!("dropped a notification from pid {from}: {why}"),
                    );
                }
                Verdict::Refuse(why) => {
                    self.log(&self.refused, log::Level::Debug, &format!(
                        "refused a notification from pid {from} ({why}; systemd would not take it)"
                    ));
                }
            }
        }
    }

    /// Who sent a datagram: the main child, another process of the unit (only asked under
    /// NotifyAccess=all), another process, or nobody known.
    fn origin(&self, sender: Option<i32>, main: i32) -> Origin {
        match sender {
            None => Origin::Unknown,
            Some(p) if p <= 0 => Origin::Unknown,
            Some(p) if p == main => Origin::Main,
            Some(p) if self.access.get() == Access::All => {
                match std::fs::read_to_string(format!("/proc/{p}/cgroup")) {
                    Ok(text) if in_cgroup(&self.cgroup, &text) => Origin::Unit,
                    _ => Origin::Other,
                }
            }
            Some(_) => Origin::Other,
        }
    }

    /// One line within `budget`; the count of left-out lines is said with the next one.
    fn log(&self, budget: &Cell<Budget>, level: log::Level, line: &str) {
        let mut b = budget.get();
        let allowed = b.take(Instant::now());
        budget.set(b);
        match allowed {
            Some(0) => log::log!(level, "{line}"),
            Some(n) => log::log!(level, "{line} ({n} more such left out of the log)"),
            None => {}
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
                text.trim_end().replace(['\n', '\r'], " ")
            ),
            Err(e) => warn!("cannot relay a notification from pid {from} to systemd: {e}"),
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Bound::Path(p) = &self.bound {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Binds `sock` to an abstract name of this gwshim's. An abstract socket is reachable from any
/// process in the network namespace, not only this user's: the sender check refuses them.
fn bind_abstract(sock: &OwnedFd, pid: u32) -> Result<Bound, String> {
    let mut last = String::new();
    for attempt in 0..8u32 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name =
            format!("gwshim/notify/{pid}/{:x}", nanos ^ attempt.rotate_left(16)).into_bytes();
        let addr = UnixAddr::new_abstract(&name).map_err(|e| format!("abstract name: {e}"))?;
        match bind(sock.as_raw_fd(), &addr) {
            Ok(()) => return Ok(Bound::Abstract(name)),
            // Taken (by chance, or by someone guessing): another name.
            Err(Errno::EADDRINUSE) => last = "every name tried is taken".into(),
            Err(e) => return Err(format!("bind an abstract socket: {e}")),
        }
    }
    Err(last)
}

/// Removes the sockets of gwshims that no longer run (SIGKILLed: no Drop) from `dir`: a socket
/// nobody is bound to refuses a connection.
fn sweep(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let is_socket = entry.file_type().is_ok_and(|t| {
            use std::os::unix::fs::FileTypeExt;
            t.is_socket()
        });
        if !name.as_bytes().starts_with(b"notify-") || !is_socket {
            continue;
        }
        let path = entry.path();
        let Ok(addr) = UnixAddr::new(&path) else {
            continue;
        };
        let Ok(probe) = datagram_socket() else {
            return;
        };
        if connect(probe.as_raw_fd(), &addr) == Err(Errno::ECONNREFUSED) {
            match std::fs::remove_file(&path) {
                Ok(()) => debug!("removed the stale notify socket {}", path.display()),
                Err(e) => debug!(
                    "cannot remove the stale notify socket {}: {e}",
                    path.display()
                ),
            }
        }
    }
}

/// The relay's promise, for the fuzz target and the unit tests: nothing from a sender systemd
/// would not listen to passes; a READY=1 that systemd would act on is never lost; what passes
/// holds no held tag however it is read, fits systemd's limit, and passes again unchanged.
pub fn promise(origin: Origin, access: Access, datagram: &[u8]) -> Result<(), String> {
    let verdict = judge(origin, access, datagram);
    let admitted = access != Access::Nothing
        && (origin == Origin::Main || (origin == Origin::Unit && access == Access::All));
    if !admitted {
        return match verdict {
            Verdict::Refuse(_) => Ok(()),
            v => Err(format!("{origin:?} under {access:?} got {v:?}")),
        };
    }
    let text = datagram.strip_suffix(b"\0").unwrap_or(datagram);
    let ready_wins = |t: &[u8]| {
        tags(t).is_some_and(|tags| {
            tags.iter().rev().find(|t| state_tag(t)).map(Vec::as_slice) == Some(b"READY=1")
        })
    };
    let systemd_readies = datagram.len() <= MAX_DATAGRAM && !text.contains(&0) && ready_wins(text);
    match verdict {
        Verdict::Pass { bytes: Some(b), .. } => {
            if b.len() > MAX_DATAGRAM {
                return Err(format!("{} bytes relayed", b.len()));
            }
            let all = tags(b.strip_suffix(b"\0").unwrap_or(&b)).ok_or("unreadable relayed")?;
            if all.iter().any(|t| held(t)) || raw_lines(&b).any(held) {
                return Err(format!(
                    "held tag relayed: {:?}",
                    String::from_utf8_lossy(&b)
                ));
            }
            if systemd_readies && !ready_wins(b.strip_suffix(b"\0").unwrap_or(&b)) {
                return Err(format!("READY=1 lost: {:?}", String::from_utf8_lossy(&b)));
            }
            match judge(Origin::Main, Access::Main, &b) {
                Verdict::Pass {
                    bytes: Some(again),
                    held,
                    ..
                } if again == b && held.is_empty() => Ok(()),
                v => Err(format!("relayed bytes judged again: {v:?}")),
            }
        }
        v if systemd_readies => Err(format!("READY=1 lost: {v:?}")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass(s: &[u8]) -> Verdict {
        Verdict::Pass {
            bytes: Some(s.to_vec()),
            fds: true,
            access: None,
            held: vec![],
        }
    }

    fn held_back(s: Option<&[u8]>, held: &[&str]) -> Verdict {
        Verdict::Pass {
            bytes: s.map(<[u8]>::to_vec),
            fds: true,
            access: None,
            held: held.iter().map(|h| h.to_string()).collect(),
        }
    }

    #[test]
    fn judges_the_main_childs_datagrams_as_systemd_reads_them() {
        let table: &[(&[u8], Verdict)] = &[
            (b"READY=1", pass(b"READY=1")),
            (
                b"READY=1\nSTATUS=up and running\n",
                pass(b"READY=1\nSTATUS=up and running\n"),
            ),
            (b"WATCHDOG=1", pass(b"WATCHDOG=1")),
            (b"FDSTORE=1\nFDNAME=sock", pass(b"FDSTORE=1\nFDNAME=sock")),
            // A line systemd cannot use is ignored by it, not the datagram.
            (b"READY\nREADY=1", pass(b"READY\nREADY=1")),
            (b"\xff\xfe\nREADY=1", pass(b"\xff\xfe\nREADY=1")),
            (b"=1\rREADY=1", pass(b"=1\rREADY=1")),
            // One trailing NUL is permitted.
            (b"READY=1\0", pass(b"READY=1\0")),
            (b"MAINPID=42", held_back(None, &["MAINPID=42"])),
            (
                b"READY=1\nMAINPID=42",
                held_back(Some(b"READY=1\n"), &["MAINPID=42"]),
            ),
            (
                b"READY=1\rMAINPID=42",
                held_back(Some(b"READY=1\n"), &["MAINPID=42"]),
            ),
            // A backslash escapes the next byte (systemd 247+): this is MAINPID=42.
            (
                b"READY=1\n\\MAINPID=42",
                held_back(Some(b"READY=1\n"), &["MAINPID=42"]),
            ),
            // Read without escapes (older systemd) the second line would be MAINPID=: kept back
            // with the tag it belongs to.
            (
                b"READY=1\nX=a\\\nMAINPID=42",
                held_back(Some(b"READY=1\n"), &["X=a\nMAINPID=42"]),
            ),
            (
                b"STATUS=x\nMAINPIDFD=1\nNOTIFYACCESS=main",
                Verdict::Pass {
                    bytes: Some(b"STATUS=x\n".to_vec()),
                    fds: false,
                    access: Some(Access::Main),
                    held: vec!["MAINPIDFD=1".into(), "NOTIFYACCESS=main".into()],
                },
            ),
            // The child's STOPPING=1, and what it outweighs, stay with gwshim.
            (
                b"STOPPING=1\nSTATUS=bye",
                held_back(Some(b"STATUS=bye\n"), &["STOPPING=1"]),
            ),
            (
                b"READY=1\nSTOPPING=1",
                held_back(None, &["READY=1", "STOPPING=1"]),
            ),
            (
                b"STOPPING=1\nREADY=1",
                held_back(Some(b"READY=1\n"), &["STOPPING=1"]),
            ),
            (b"STOPPING=yes", pass(b"STOPPING=yes")),
            (b"", Verdict::Drop("empty")),
            (b"\n\r\n", Verdict::Drop("empty")),
            (
                b"READY=1\0STATUS=x",
                Verdict::Drop("holds a NUL byte, which systemd ignores whole"),
            ),
            (
                b"READY=1\nX=\\",
                Verdict::Drop("ends in a lone backslash, which systemd ignores whole"),
            ),
        ];
        for (datagram, want) in table {
            assert_eq!(
                &judge(Origin::Main, Access::Main, datagram),
                want,
                "{:?}",
                String::from_utf8_lossy(datagram)
            );
        }
        let mut big = b"READY=1\nX=".to_vec();
        big.resize(MAX_DATAGRAM, b'a');
        assert_eq!(judge(Origin::Main, Access::Main, &big), pass(&big));
        big.push(b'a');
        assert_eq!(
            judge(Origin::Main, Access::Main, &big),
            Verdict::Drop("over 4096 bytes, which systemd ignores whole")
        );
    }

    #[test]
    fn only_whom_systemd_listens_to_speaks() {
        let table = [
            (Origin::Main, Access::Main, true),
            (Origin::Main, Access::All, true),
            (Origin::Main, Access::Nothing, false),
            (Origin::Unit, Access::Main, false),
            (Origin::Unit, Access::All, true),
            (Origin::Other, Access::Main, false),
            (Origin::Other, Access::All, false),
            (Origin::Unknown, Access::Main, false),
            (Origin::Unknown, Access::All, false),
        ];
        for (origin, access, passes) in table {
            let v = judge(origin, access, b"READY=1");
            assert_eq!(
                matches!(v, Verdict::Pass { .. }),
                passes,
                "{origin:?} {access:?}"
            );
        }
        // Only the main process changes who may speak.
        let v = judge(Origin::Unit, Access::All, b"NOTIFYACCESS=main");
        assert!(matches!(v, Verdict::Pass { access: None, .. }), "{v:?}");
        for (value, want) in [
            ("main", Some(Access::Main)),
            ("exec", Some(Access::Main)),
            ("all", Some(Access::All)),
            ("none", Some(Access::Nothing)),
            ("bogus", None),
        ] {
            assert_eq!(Access::parse(value), want);
        }
    }

    #[test]
    fn reads_tags_as_systemd_does() {
        let t = |s: &[u8]| {
            tags(s).map(|v| {
                v.iter()
                    .map(|t| String::from_utf8_lossy(t).into_owned())
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(t(b"A=1\n\nB=2\r\n"), Some(vec!["A=1".into(), "B=2".into()]));
        assert_eq!(t(b"\\A=1"), Some(vec!["A=1".into()]));
        assert_eq!(t(b"A=\\\\x"), Some(vec!["A=\\x".into()]));
        assert_eq!(t(b"A=1\\\nB=2"), Some(vec!["A=1\nB=2".into()]));
        assert_eq!(t(b"A=1\\"), None);
        assert_eq!(t(b""), Some(vec![]));
    }

    #[test]
    fn knows_the_units_cgroup() {
        let own = "0::/user.slice/user-0.slice/user@0.service/app.slice/gw.service\n";
        let table = [
            (
                "0::/user.slice/user-0.slice/user@0.service/app.slice/gw.service\n",
                true,
            ),
            (
                "0::/user.slice/user-0.slice/user@0.service/app.slice/gw.service/sub\n",
                true,
            ),
            (
                "0::/user.slice/user-0.slice/user@0.service/app.slice/gw.service2\n",
                false,
            ),
            (
                "0::/user.slice/user-0.slice/user@0.service/app.slice\n",
                false,
            ),
            ("", false),
        ];
        for (sender, want) in table {
            assert_eq!(in_cgroup(own, sender), want, "{sender}");
        }
        let v1 = "12:cpu:/x\n1:name=systemd:/system.slice/gw.service\n";
        assert!(in_cgroup(
            v1,
            "3:cpu:/y\n1:name=systemd:/system.slice/gw.service\n"
        ));
        assert!(!in_cgroup(
            v1,
            "1:name=systemd:/system.slice/other.service\n"
        ));
    }

    #[test]
    fn logs_within_a_budget() {
        let mut b = Budget::default();
        let t0 = Instant::now();
        let got: Vec<Option<u64>> = (0..8).map(|_| b.take(t0)).collect();
        assert_eq!(
            got,
            [
                Some(0),
                Some(0),
                Some(0),
                Some(0),
                Some(0),
                None,
                None,
                None
            ]
        );
        // The next window says how many were left out.
        assert_eq!(b.take(t0 + LOG_WINDOW), Some(3));
        assert_eq!(b.take(t0 + LOG_WINDOW), Some(0));
    }

    /// The promise over generated datagrams (the fuzz target, fuzz/fuzz_targets/notify_datagram.rs,
    /// checks the same over libFuzzer's).
    #[test]
    fn keeps_its_promise_over_generated_datagrams() {
        const PIECES: &[&[u8]] = &[
            b"READY=1",
            b"STOPPING=1",
            b"RELOADING=1",
            b"MAINPID=7",
            b"MAINPIDFD=1",
            b"NOTIFYACCESS=all",
            b"STATUS=x",
            b"WATCHDOG=1",
            b"\\",
            b"\n",
            b"\r",
            b"\0",
            b"\xff",
            b"=",
            b"X",
            b"READY",
            b"=1",
        ];
        let origins = [Origin::Main, Origin::Unit, Origin::Other, Origin::Unknown];
        let accesses = [Access::Main, Access::All, Access::Nothing];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..200_000 {
            let n = (next() % 8) as usize;
            let mut d = Vec::new();
            for _ in 0..n {
                d.extend_from_slice(PIECES[(next() % PIECES.len() as u64) as usize]);
            }
            let origin = origins[(next() % 4) as usize];
            let access = accesses[(next() % 3) as usize];
            if let Err(e) = promise(origin, access, &d) {
                panic!(
                    "{e}: {:?} from {origin:?} under {access:?}",
                    String::from_utf8_lossy(&d)
                );
            }
        }
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
