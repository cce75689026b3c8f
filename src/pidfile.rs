//! Stale pid and lock files: removed before the child starts and after it ends, so a leftover
//! never makes the next start lose an O_CREAT|O_EXCL "race". Nothing that is not stale is
//! ever removed: the verdict is a pure function over what was observed, and every file is
//! opened without following symlinks, read only if it is a small regular file, and removed
//! only if its name still names the very file (device and inode) that was judged. Each
//! file's folder is resolved once, safely (see safepath), into a directory fd, and every step
//! after that (stat, open, flock, unlink) goes through that fd: a folder on the path swapped
//! for a symlink meanwhile cannot send the removal anywhere else.

use crate::error::{Context, Error, Result};
use crate::proc;
use crate::safepath::{self, Dir};
use log::{debug, info, warn};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, Flock, FlockArg, OFlag, openat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat};
use nix::unistd::{Pid, UnlinkatFlags, unlinkat};
use serde_json::Value;
use std::ffi::OsString;
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Pid files are a few hundred bytes; anything bigger is not one and is not read.
pub const SIZE_CAP: u64 = 64 * 1024;

/// A pid file gwshim looks after, and the lock file whose holder owns it, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub pid: PathBuf,
    pub lock: Option<PathBuf>,
}

/// A file's identity: a path may be re-pointed, (device, inode) may not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl From<&FileStat> for FileId {
    fn from(st: &FileStat) -> Self {
        FileId {
            dev: st.st_dev,
            ino: st.st_ino,
        }
    }
}

/// What a pid file says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    Pid {
        pid: i64,
        start_time: Option<u64>,
        argv: Option<Vec<String>>,
    },
    /// Not a pid record; why.
    Invalid(&'static str),
}

/// What was seen of the recorded pid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Process {
    Missing,
    /// A zombie (Z) or dead (X) process: it owns nothing any more.
    Dead(char),
    Alive {
        start_time: u64,
        /// None when /proc/PID/cmdline could not be read.
        cmdline: Option<Vec<String>>,
    },
    /// It exists, but /proc does not show it (hidepid, no /proc): assume it is the owner.
    Hidden,
}

/// What the lock file says about its owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockState {
    /// Somebody holds it: the owner is alive.
    Held,
    /// A non-blocking exclusive flock succeeded: nobody owns the files.
    Free,
    /// No lock file configured, none on disk, or it cannot be probed: judge by the pid.
    Unknown,
}

/// Why files are stale or not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Why {
    LockFree,
    LockHeld(Option<i64>),
    Unparsable(&'static str),
    BadPid(i64),
    OwnPid(i64),
    NoSuchProcess(i64),
    Dead(i64, char),
    Reused { pid: i64, recorded: u64, now: u64 },
    OtherCommand(i64),
    Alive(i64),
    Hidden(i64),
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::LockFree => write!(f, "nobody holds the lock"),
            Why::LockHeld(Some(pid)) => {
                write!(f, "the lock is held (the pid file names pid {pid})")
            }
            Why::LockHeld(None) => write!(f, "the lock is held"),
            Why::Unparsable(what) => write!(f, "{what}"),
            Why::BadPid(pid) => write!(f, "pid {pid} is not a process id"),
            Why::OwnPid(pid) => write!(f, "pid {pid} is gwshim itself"),
            Why::NoSuchProcess(pid) => write!(f, "pid {pid} does not exist"),
            Why::Dead(pid, 'Z') => write!(f, "pid {pid} is a zombie"),
            Why::Dead(pid, state) => write!(f, "pid {pid} is dead (state {state})"),
            Why::Reused { pid, recorded, now } => write!(
                f,
                "pid {pid} was reused (start time {now}, recorded {recorded})"
            ),
            Why::OtherCommand(pid) => {
                write!(f, "pid {pid} runs another command than the recorded one")
            }
            Why::Alive(pid) => write!(f, "pid {pid} is alive and matches the record"),
            Why::Hidden(pid) => write!(f, "pid {pid} exists but /proc does not show it"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Remove the pid file, and the lock file if it was probed free.
    Stale(Why),
    /// A live owner: leave everything alone.
    Live(Why),
}

/// Parses a pid file: the gateway's JSON record (unknown fields ignored) or a bare integer.
pub fn parse_record(bytes: &[u8]) -> Record {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Record::Invalid("not text");
    };
    let text = text.trim();
    if text.is_empty() {
        return Record::Invalid("empty");
    }
    if let Ok(pid) = text.parse::<i64>() {
        return Record::Pid {
            pid,
            start_time: None,
            argv: None,
        };
    }
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) else {
        return Record::Invalid("not a pid record");
    };
    let Some(pid) = map.get("pid").and_then(Value::as_i64) else {
        return Record::Invalid("no pid in the record");
    };
    // start_time is null where the writer could not read it: then only the pid and argv count.
    let start_time = map.get("start_time").and_then(Value::as_u64);
    let argv = map.get("argv").and_then(Value::as_array).and_then(|a| {
        a.iter()
            .map(|w| w.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
    });
    Record::Pid {
        pid,
        start_time,
        argv,
    }
}

/// The verdict: a pure function over what was observed. `process` is what was seen of the
/// recorded pid (ignored when the record has none).
pub fn verdict(record: &Record, process: &Process, lock: LockState, own_pid: i64) -> Verdict {
    let recorded_pid = match record {
        Record::Pid { pid, .. } => Some(*pid),
        Record::Invalid(_) => None,
    };
    // The lock is the source of truth: its holder is alive by construction.
    match lock {
        LockState::Held => return Verdict::Live(Why::LockHeld(recorded_pid)),
        LockState::Free => return Verdict::Stale(Why::LockFree),
        LockState::Unknown => {}
    }
    let (pid, start_time, argv) = match record {
        Record::Invalid(why) => return Verdict::Stale(Why::Unparsable(why)),
        Record::Pid {
            pid,
            start_time,
            argv,
        } => (*pid, *start_time, argv),
    };
    if pid <= 0 || pid > i64::from(i32::MAX) {
        return Verdict::Stale(Why::BadPid(pid));
    }
    if pid == own_pid {
        return Verdict::Stale(Why::OwnPid(pid));
    }
    match process {
        Process::Missing => Verdict::Stale(Why::NoSuchProcess(pid)),
        Process::Dead(state) => Verdict::Stale(Why::Dead(pid, *state)),
        Process::Hidden => Verdict::Live(Why::Hidden(pid)),
        Process::Alive {
            start_time: now,
            cmdline,
        } => {
            if let Some(recorded) = start_time.filter(|t| t != now) {
                return Verdict::Stale(Why::Reused {
                    pid,
                    recorded,
                    now: *now,
                });
            }
            // Even with a matching start time: after a reboot an early service can get the
            // same pid at the same tick as the one recorded before the power went.
            if let (Some(argv), Some(cmdline)) = (argv, cmdline)
                && !same_command(argv, cmdline)
            {
                return Verdict::Stale(Why::OtherCommand(pid));
            }
            Verdict::Live(Why::Alive(pid))
        }
    }
}

/// Whether a live command line (/proc/PID/cmdline) is the recorded argv. The recorded argv is
/// what the program saw, so it may lack the interpreter (`python3 /v/bin/hermes`), name the
/// module file for `python -m mod`, and lack options the program stripped (`-p NAME`): the
/// program must match, and the recorded arguments must appear in order.
pub fn same_command(recorded: &[String], live: &[String]) -> bool {
    let Some((program, args)) = recorded.split_first() else {
        return true;
    };
    let base = basename(program);
    let program_matches = live.iter().take(2).any(|w| basename(w) == base)
        || live
            .windows(2)
            .any(|w| w[0] == "-m" && is_module_file(program, &w[1]));
    let mut rest = live.iter().skip(1);
    program_matches && args.iter().all(|a| rest.any(|w| w == a))
}

fn basename(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

/// `python -m a.b` sees argv[0] ".../a/b.py" (or ".../a/b/__main__.py").
fn is_module_file(path: &str, module: &str) -> bool {
    let rel = module.replace('.', "/");
    path.ends_with(&format!("/{rel}.py")) || path.ends_with(&format!("/{rel}/__main__.py"))
}

/// The kind of a file as lstat sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Regular,
    Symlink,
    Directory,
    Fifo,
    Socket,
    Device,
}

impl Kind {
    /// From st_mode. Pure.
    pub fn of(mode: u32) -> Kind {
        match SFlag::from_bits_truncate(mode) & SFlag::S_IFMT {
            SFlag::S_IFLNK => Kind::Symlink,
            SFlag::S_IFDIR => Kind::Directory,
            SFlag::S_IFIFO => Kind::Fifo,
            SFlag::S_IFSOCK => Kind::Socket,
            SFlag::S_IFREG => Kind::Regular,
            _ => Kind::Device,
        }
    }
}

fn size(st: &FileStat) -> u64 {
    u64::try_from(st.st_size).unwrap_or(0)
}

/// Why a file is left alone unread, or None if it may be read.
pub fn refusal(kind: Kind, size: u64) -> Option<String> {
    let what = match kind {
        Kind::Regular if size > SIZE_CAP => {
            return Some(format!("it is {size} bytes, over the {SIZE_CAP}-byte cap"));
        }
        Kind::Regular => return None,
        Kind::Symlink => "a symlink (not followed)",
        Kind::Directory => "a directory",
        Kind::Fifo => "a FIFO",
        Kind::Socket => "a socket",
        Kind::Device => "a device",
    };
    Some(format!("it is {what}, not a regular file"))
}

/// What lstat now says of a path that was judged, before removing it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Now {
    Same,
    Gone,
    Replaced,
}

/// Compares the judged file with what the path names now.
pub fn same_file(judged: FileId, now: Option<FileId>) -> Now {
    match now {
        None => Now::Gone,
        Some(now) if now == judged => Now::Same,
        Some(_) => Now::Replaced,
    }
}

/// A pid or lock file as gwshim acts on it: its folder, opened once, and its name there.
pub struct Place {
    pub dir: Dir,
    pub name: OsString,
    /// For messages only.
    pub path: PathBuf,
}

impl Place {
    /// Resolves the folder of `path` safely (safepath). Ok(None): the folder does not exist.
    /// Err: why the path is left alone. `known` is a folder already resolved: a path in the
    /// same folder goes through the same fd, so both files are judged in one folder.
    pub fn resolve(path: &Path, known: Option<&Place>) -> Result<Option<Place>> {
        let name = path
            .file_name()
            .ok_or_else(|| Error::msg("it does not name a file"))?;
        let folder = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let dir = match known {
            Some(k)
                if k.path.parent().unwrap_or(Path::new(""))
                    == path.parent().unwrap_or(Path::new("")) =>
            {
                k.dir.try_clone()?
            }
            _ => match safepath::open_dir(folder)? {
                Some(dir) => dir,
                None => return Ok(None),
            },
        };
        Ok(Some(Place {
            dir,
            name: name.to_owned(),
            path: path.to_owned(),
        }))
    }

    /// lstat of the file, through the folder's fd. Ok(None): there is no such file.
    fn stat(&self) -> Result<Option<FileStat>> {
        match fstatat(
            &self.dir.fd,
            self.name.as_os_str(),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Ok(st) => Ok(Some(st)),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(e).context(|| "cannot stat it".into()),
        }
    }
}

/// A pid or lock file, opened and checked.
pub struct Opened {
    pub file: File,
    pub id: FileId,
}

/// Opens a small regular file for reading, never following a symlink and never blocking (a
/// FIFO swapped in meanwhile). Ok(None): there is no such file. Err: why it is left alone.
pub fn open_checked(place: &Place) -> Result<Option<Opened>> {
    let Some(before) = place.stat()? else {
        return Ok(None);
    };
    // Devices are not even opened: an open can have side effects.
    if let Some(why) = refusal(Kind::of(before.st_mode), size(&before)) {
        return Err(Error::msg(why));
    }
    let flags = OFlag::O_RDONLY
        | OFlag::O_NOFOLLOW
        | OFlag::O_NONBLOCK
        | OFlag::O_NOCTTY
        | OFlag::O_CLOEXEC;
    let fd = match openat(&place.dir.fd, place.name.as_os_str(), flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        Err(Errno::ELOOP) => return Err(Error::msg("it is a symlink (not followed)")),
        Err(e) => return Err(e).context(|| "cannot open it".into()),
    };
    let meta = fstat(&fd).context(|| "cannot fstat it".into())?;
    if let Some(why) = refusal(Kind::of(meta.st_mode), size(&meta)) {
        return Err(Error::msg(why));
    }
    let id = FileId::from(&meta);
    if id != FileId::from(&before) {
        return Err(Error::msg("it was replaced while being opened"));
    }
    Ok(Some(Opened {
        file: File::from(fd),
        id,
    }))
}

/// Reads at most the size cap (the file may grow after fstat).
fn read_capped(file: &File) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    file.take(SIZE_CAP + 1)
        .read_to_end(&mut bytes)
        .context(|| "cannot read it".into())?;
    if bytes.len() as u64 > SIZE_CAP {
        return Err(Error::msg(format!("it grew over the {SIZE_CAP}-byte cap")));
    }
    Ok(bytes)
}

/// The lock file, probed. `Free` holds the lock until dropped, so nobody can take it over
/// while the stale files are removed.
enum Probe {
    Absent,
    Held,
    Free(Flock<File>, FileId),
    Unusable(Error),
}

fn probe_lock(place: &Place) -> Probe {
    let opened = match open_checked(place) {
        Ok(Some(o)) => o,
        Ok(None) => return Probe::Absent,
        Err(why) => return Probe::Unusable(why),
    };
    match Flock::lock(opened.file, FlockArg::LockExclusiveNonblock) {
        Ok(guard) => Probe::Free(guard, opened.id),
        Err((_, Errno::EWOULDBLOCK)) => Probe::Held,
        Err((_, e)) => Probe::Unusable(Error::msg(format!("cannot probe its lock: {e}"))),
    }
}

/// What /proc (and, when /proc shows nothing, getpgid) says of a pid.
fn observe(pid: i64) -> Process {
    let Ok(pid) = i32::try_from(pid) else {
        return Process::Missing;
    };
    if pid <= 0 {
        return Process::Missing;
    }
    match proc::stat(pid) {
        Some(s) if matches!(s.state, 'Z' | 'X' | 'x') => Process::Dead(s.state),
        Some(s) => Process::Alive {
            start_time: s.start_time,
            cmdline: read_cmdline(pid),
        },
        // getpgid asks the kernel, not /proc (which hidepid or a missing mount can blind),
        // and sends nothing to the process.
        None => match nix::unistd::getpgid(Some(Pid::from_raw(pid))) {
            Err(Errno::ESRCH) => Process::Missing,
            _ => Process::Hidden,
        },
    }
}

fn read_cmdline(pid: i32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|&b| b == 0)
            .filter(|w| !w.is_empty())
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect(),
    )
}

/// Removes the file if its name still names the file that was judged; logs what happened.
pub fn remove_judged(place: &Place, judged: FileId, why: &dyn fmt::Display) {
    let path = place.path.display();
    let now = match place.stat() {
        Ok(st) => st.as_ref().map(FileId::from),
        Err(e) => {
            warn!("cannot remove stale {path} ({why}): {e}");
            return;
        }
    };
    match same_file(judged, now) {
        Now::Gone => debug!("{path} is already gone"),
        Now::Replaced => warn!(
            "{path} was replaced after it was judged stale ({why}); leaving the new file alone"
        ),
        // Linux has no unlink-by-fd: a file renamed into this name between the fstatat and
        // the unlinkat would be removed instead, but only ever in this same folder.
        Now::Same => match unlinkat(
            &place.dir.fd,
            place.name.as_os_str(),
            UnlinkatFlags::NoRemoveDir,
        ) {
            Ok(()) => info!("removed stale {path}: {why}"),
            Err(Errno::ENOENT) => debug!("{path} is already gone"),
            Err(e) => warn!("cannot remove stale {path} ({why}): {e}"),
        },
    }
}

/// Looks after every target: removes what is stale, warns about what is left alone. Never
/// fails and never waits: the child starts whatever happens here.
pub fn clean(targets: &[Target], own_pid: i64) {
    for target in targets {
        clean_one(target, own_pid);
    }
}

fn clean_one(target: &Target, own_pid: i64) {
    let pid_path = target.pid.display();
    let (lock_place, probe) = match target.lock.as_deref().map(|l| Place::resolve(l, None)) {
        None | Some(Ok(None)) => (None, Probe::Absent),
        Some(Ok(Some(place))) => {
            let probe = probe_lock(&place);
            (Some(place), probe)
        }
        Some(Err(why)) => (None, Probe::Unusable(why)),
    };
    let lock_state = match &probe {
        Probe::Held => LockState::Held,
        Probe::Free(..) => LockState::Free,
        Probe::Absent => LockState::Unknown,
        Probe::Unusable(why) => {
            if let Some(lock) = &target.lock {
                warn!(
                    "leaving lock file {} alone: {why}; judging {pid_path} by its pid",
                    lock.display()
                );
            }
            LockState::Unknown
        }
    };
    let opened = Place::resolve(&target.pid, lock_place.as_ref()).and_then(|place| match place {
        Some(place) => Ok(open_checked(&place)?.map(|o| (place, o))),
        None => Ok(None),
    });
    let pid_file = match opened {
        Ok(Some((place, opened))) => match read_capped(&opened.file) {
            Ok(bytes) => Some((place, opened.id, bytes)),
            Err(why) => {
                warn!("leaving {pid_path} alone: {why}");
                None
            }
        },
        Ok(None) => {
            debug!("no pid file {pid_path}");
            None
        }
        Err(why) => {
            warn!("leaving {pid_path} alone: {why}");
            None
        }
    };
    if let Some((place, id, bytes)) = &pid_file {
        let record = parse_record(bytes);
        let process = match &record {
            Record::Pid { pid, .. } if lock_state == LockState::Unknown => observe(*pid),
            _ => Process::Missing,
        };
        match verdict(&record, &process, lock_state, own_pid) {
            Verdict::Stale(why) => {
                let why = match (&why, &target.lock) {
                    (Why::LockFree, Some(lock)) => format!("nobody holds {}", lock.display()),
                    _ => why.to_string(),
                };
                remove_judged(place, *id, &why);
            }
            Verdict::Live(why) => {
                let why = match (&why, &target.lock) {
                    (Why::LockHeld(pid), Some(lock)) => {
                        let named = pid
                            .map(|p| format!(", the pid file names pid {p}"))
                            .unwrap_or_default();
                        format!("{} is held{named}", lock.display())
                    }
                    _ => why.to_string(),
                };
                warn!("{pid_path} has a live owner ({why}); leaving it, starting the child anyway")
            }
        }
    }
    // A free lock is stale whatever the pid file held: its owner is gone.
    if let (Probe::Free(guard, id), Some(place)) = (probe, &lock_place) {
        remove_judged(place, id, &"nobody holds it");
        // Unlocked and closed here, before the child starts.
        drop(guard);
    } else if let (LockState::Held, None, Some(lock)) = (lock_state, &pid_file, &target.lock) {
        warn!("{} is held by a live owner; leaving it", lock.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pid(pid: i64, start_time: Option<u64>, argv: Option<&[&str]>) -> Record {
        Record::Pid {
            pid,
            start_time,
            argv: argv.map(|a| a.iter().map(|s| s.to_string()).collect()),
        }
    }

    fn alive(start_time: u64, cmdline: &[&str]) -> Process {
        Process::Alive {
            start_time,
            cmdline: Some(cmdline.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn parses_records() {
        let gw = br#"{"pid": 30875, "kind": "hermes-gateway", "argv": ["/v/bin/hermes", "gateway", "run"], "start_time": 225406, "hermes_home": "/h"}"#;
        let table: &[(&[u8], Record)] = &[
            (
                gw,
                pid(
                    30875,
                    Some(225406),
                    Some(&["/v/bin/hermes", "gateway", "run"]),
                ),
            ),
            (b"4242", pid(4242, None, None)),
            (b"  4242\n", pid(4242, None, None)),
            (b"0", pid(0, None, None)),
            (b"-5", pid(-5, None, None)),
            (br#"{"pid": 7}"#, pid(7, None, None)),
            (
                br#"{"pid": 7, "start_time": null, "argv": "x"}"#,
                pid(7, None, None),
            ),
            (br#"{"pid": 7, "argv": ["a", 1]}"#, pid(7, None, None)),
            (b"", Record::Invalid("empty")),
            (b" \n\t", Record::Invalid("empty")),
            (b"garbage", Record::Invalid("not a pid record")),
            (b"42 43", Record::Invalid("not a pid record")),
            (b"[42]", Record::Invalid("not a pid record")),
            (b"\xff\xfe", Record::Invalid("not text")),
            (br#"{"pid": "42"}"#, Record::Invalid("no pid in the record")),
            (br#"{"pid": 4.5}"#, Record::Invalid("no pid in the record")),
            (br#"{"kind": "x"}"#, Record::Invalid("no pid in the record")),
        ];
        for (bytes, want) in table {
            assert_eq!(
                &parse_record(bytes),
                want,
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn verdict_table() {
        use LockState::*;
        const ME: i64 = 100;
        let gw = ["/v/bin/hermes", "gateway", "run"];
        let gw_live = ["/v/bin/python3", "/v/bin/hermes", "gateway", "run"];
        let json = pid(42, Some(500), Some(&gw));
        let bare = pid(42, None, None);
        let bad = Record::Invalid("empty");
        let table: &[(&Record, Process, LockState, Verdict)] = &[
            // The lock decides, whatever the pid file says.
            (
                &json,
                alive(500, &gw_live),
                Held,
                Verdict::Live(Why::LockHeld(Some(42))),
            ),
            (
                &bad,
                Process::Missing,
                Held,
                Verdict::Live(Why::LockHeld(None)),
            ),
            (
                &json,
                alive(500, &gw_live),
                Free,
                Verdict::Stale(Why::LockFree),
            ),
            (&bad, Process::Missing, Free, Verdict::Stale(Why::LockFree)),
            // No lock: the pid decides.
            (
                &json,
                Process::Missing,
                Unknown,
                Verdict::Stale(Why::NoSuchProcess(42)),
            ),
            (
                &json,
                Process::Dead('Z'),
                Unknown,
                Verdict::Stale(Why::Dead(42, 'Z')),
            ),
            (
                &json,
                Process::Dead('X'),
                Unknown,
                Verdict::Stale(Why::Dead(42, 'X')),
            ),
            (
                &json,
                alive(501, &gw_live),
                Unknown,
                Verdict::Stale(Why::Reused {
                    pid: 42,
                    recorded: 500,
                    now: 501,
                }),
            ),
            (
                &json,
                alive(500, &["sshd"]),
                Unknown,
                Verdict::Stale(Why::OtherCommand(42)),
            ),
            (
                &json,
                alive(500, &gw_live),
                Unknown,
                Verdict::Live(Why::Alive(42)),
            ),
            (
                &json,
                alive(500, &gw),
                Unknown,
                Verdict::Live(Why::Alive(42)),
            ),
            (
                &json,
                Process::Alive {
                    start_time: 500,
                    cmdline: None,
                },
                Unknown,
                Verdict::Live(Why::Alive(42)),
            ),
            (
                &json,
                Process::Hidden,
                Unknown,
                Verdict::Live(Why::Hidden(42)),
            ),
            // A stopped process is alive.
            (
                &bare,
                alive(1, &["sleep", "9"]),
                Unknown,
                Verdict::Live(Why::Alive(42)),
            ),
            (
                &bare,
                Process::Missing,
                Unknown,
                Verdict::Stale(Why::NoSuchProcess(42)),
            ),
            (
                &bare,
                Process::Dead('Z'),
                Unknown,
                Verdict::Stale(Why::Dead(42, 'Z')),
            ),
            // Not a live owner, whatever the process table says.
            (
                &bad,
                alive(1, &[]),
                Unknown,
                Verdict::Stale(Why::Unparsable("empty")),
            ),
            (
                &pid(0, None, None),
                alive(1, &[]),
                Unknown,
                Verdict::Stale(Why::BadPid(0)),
            ),
            (
                &pid(-1, None, None),
                alive(1, &[]),
                Unknown,
                Verdict::Stale(Why::BadPid(-1)),
            ),
            (
                &pid(1 << 40, None, None),
                alive(1, &[]),
                Unknown,
                Verdict::Stale(Why::BadPid(1 << 40)),
            ),
            (
                &pid(ME, None, None),
                alive(1, &[]),
                Unknown,
                Verdict::Stale(Why::OwnPid(ME)),
            ),
        ];
        for (record, process, lock, want) in table {
            assert_eq!(
                &verdict(record, process, *lock, ME),
                want,
                "{record:?} {process:?} {lock:?}"
            );
        }
    }

    #[test]
    fn command_lines() {
        let table: &[(&[&str], &[&str], bool)] = &[
            (
                &["/v/bin/hermes", "gateway", "run"],
                &["/v/bin/hermes", "gateway", "run"],
                true,
            ),
            // a script run by its interpreter (shebang)
            (
                &["/v/bin/hermes", "gateway", "run"],
                &["/v/bin/python3", "/v/bin/hermes", "gateway", "run"],
                true,
            ),
            // python -m: argv[0] is the module's file
            (
                &[
                    "/v/lib/python3.11/site-packages/hermes_cli/main.py",
                    "gateway",
                    "run",
                ],
                &["/v/bin/python", "-m", "hermes_cli.main", "gateway", "run"],
                true,
            ),
            (
                &["/x/pkg/__main__.py", "a"],
                &["python3", "-m", "pkg", "a"],
                true,
            ),
            // -p NAME is stripped by hermes before it records argv
            (
                &["/v/bin/hermes", "gateway", "run"],
                &["/v/bin/hermes", "-p", "coder", "gateway", "run"],
                true,
            ),
            (&[], &["anything"], true),
            (
                &["/v/bin/hermes", "gateway", "run"],
                &["/usr/sbin/sshd", "-D"],
                false,
            ),
            (
                &["/v/bin/hermes", "gateway", "run"],
                &["/v/bin/hermes", "gateway", "status"],
                false,
            ),
            (
                &["/v/bin/hermes", "gateway", "run"],
                &["/v/bin/hermes", "run", "gateway"],
                false,
            ),
            (&["sleep", "30"], &["sleep", "31"], false),
            (&["sleep"], &[], false),
            (
                &["/x/other/main.py", "a"],
                &["python3", "-m", "pkg.main", "a"],
                false,
            ),
        ];
        for (recorded, live, want) in table {
            let r: Vec<String> = recorded.iter().map(|s| s.to_string()).collect();
            let l: Vec<String> = live.iter().map(|s| s.to_string()).collect();
            assert_eq!(same_command(&r, &l), *want, "{recorded:?} vs {live:?}");
        }
    }

    #[test]
    fn refusals() {
        let table: &[(Kind, u64, bool)] = &[
            (Kind::Regular, 0, false),
            (Kind::Regular, SIZE_CAP, false),
            (Kind::Regular, SIZE_CAP + 1, true),
            (Kind::Symlink, 10, true),
            (Kind::Directory, 10, true),
            (Kind::Fifo, 0, true),
            (Kind::Socket, 0, true),
            (Kind::Device, 0, true),
        ];
        for &(kind, size, refused) in table {
            assert_eq!(refusal(kind, size).is_some(), refused, "{kind:?} {size}");
        }
    }

    #[test]
    fn same_file_table() {
        let a = FileId { dev: 1, ino: 10 };
        let table = [
            (Some(a), Now::Same),
            (Some(FileId { dev: 1, ino: 11 }), Now::Replaced),
            (Some(FileId { dev: 2, ino: 10 }), Now::Replaced),
            (None, Now::Gone),
        ];
        for (now, want) in table {
            assert_eq!(same_file(a, now), want, "{now:?}");
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("gwshim-unit-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    /// A folder on the path renamed away and replaced by a symlink after the folder was
    /// resolved: the removal still happens in the resolved folder, nowhere else.
    #[test]
    fn a_folder_swapped_after_resolution_keeps_the_removal_in_place() {
        let dir = scratch("dirswap");
        let (p, moved, other) = (dir.join("p"), dir.join("moved"), dir.join("other"));
        std::fs::create_dir(&p).expect("mkdir");
        std::fs::create_dir(&other).expect("mkdir");
        std::fs::write(p.join("x.pid"), "1").expect("write");
        std::fs::write(other.join("x.pid"), "1").expect("write");
        let place = Place::resolve(&p.join("x.pid"), None)
            .expect("resolves")
            .expect("exists");
        let judged = open_checked(&place).expect("open").expect("exists").id;
        std::fs::rename(&p, &moved).expect("rename");
        std::os::unix::fs::symlink(&other, &p).expect("symlink");
        // The other folder's file of the same name has another inode: not even a candidate.
        remove_judged(&place, judged, &"test");
        assert!(!moved.join("x.pid").exists(), "the judged file is removed");
        assert!(other.join("x.pid").exists(), "nothing elsewhere");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The race "replaced between check and removal", made to happen deterministically: the
    /// file is judged, then swapped, then removal is attempted.
    #[test]
    fn a_file_swapped_in_after_the_verdict_survives() {
        let dir = scratch("swap");
        let path = dir.join("gateway.pid");
        std::fs::write(&path, "999999999").expect("write");
        let place = Place::resolve(&path, None)
            .expect("resolves")
            .expect("exists");
        let judged = open_checked(&place).expect("open").expect("exists").id;
        let new = dir.join("new");
        std::fs::write(&new, "1").expect("write");
        std::fs::rename(&new, &path).expect("rename");
        remove_judged(&place, judged, &"test");
        assert_eq!(std::fs::read_to_string(&path).expect("survived"), "1");
        // The judged file itself is removed.
        let judged = open_checked(&place).expect("open").expect("exists").id;
        remove_judged(&place, judged, &"test");
        assert!(!path.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
