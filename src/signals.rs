//! Signals: all of them are blocked from gwshim's first instruction and read from a signalfd,
//! so none is lost while the child is created and none can kill gwshim by its default action.

use crate::error::{Context, Result};
use nix::libc;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigAction, SigHandler, SigSet, SigmaskHow, Signal, sigaction, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd, siginfo};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// One signal as it reached gwshim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub signo: i32,
    /// Sent by the kernel (si_code SI_KERNEL): for the job-control and terminal signals this
    /// means the terminal sent it to the whole foreground process group.
    pub from_kernel: bool,
    pub sender: u32,
}

impl From<siginfo> for Delivery {
    fn from(info: siginfo) -> Self {
        Delivery {
            signo: info.ssi_signo as i32,
            from_kernel: info.ssi_code == libc::SI_KERNEL,
            sender: info.ssi_pid,
        }
    }
}

pub struct Signals {
    fd: SignalFd,
    /// The mask gwshim was started with, which the child gets back.
    pub original_mask: SigSet,
}

impl Signals {
    /// Blocks every signal that can be blocked and opens a signalfd for them. Call first.
    /// The C library's own signals (32 and 33 for glibc, 32 to 34 for musl) are blocked too,
    /// with the raw syscall (the C library refuses them): gwshim runs no second thread that
    /// would need them, and a `kill -32` must be forwarded, not end gwshim.
    pub fn block_all() -> Result<Signals> {
        let mut original_mask = SigSet::empty();
        sigprocmask(
            SigmaskHow::SIG_SETMASK,
            Some(&SigSet::all()),
            Some(&mut original_mask),
        )
        .context(|| "blocking signals".into())?;
        raw_mask(libc::SIG_BLOCK, ALL).context(|| "blocking signals".into())?;
        // Blocking: with nothing else to wait for, one read is the whole wait.
        let fd = SignalFd::with_flags(&set_of(ALL), SfdFlags::SFD_CLOEXEC)
            .context(|| "creating a signalfd".into())?;
        Ok(Signals { fd, original_mask })
    }

    /// Blocks until a signal arrives (Some) or the deadline passes (None). No timer runs
    /// while there is no deadline.
    pub fn wait(&self, deadline: Option<Instant>) -> Result<Option<Delivery>> {
        loop {
            match self.wait_for(deadline, None)? {
                Event::Signal(d) => return Ok(Some(d)),
                Event::Timeout => return Ok(None),
                Event::Readable => {}
            }
        }
    }

    /// Like `wait`, also waking when `extra` (the notify socket) has data.
    pub fn wait_for(&self, deadline: Option<Instant>, extra: Option<BorrowedFd>) -> Result<Event> {
        if deadline.is_none() && extra.is_none() {
            loop {
                if let Some(d) = self.read_one()? {
                    return Ok(Event::Signal(d));
                }
            }
        }
        loop {
            let timeout = match deadline {
                None => PollTimeout::NONE,
                Some(at) => {
                    let left = at.saturating_duration_since(Instant::now());
                    // Round up so a wake-up never comes a millisecond early and loops.
                    let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128);
                    PollTimeout::try_from(ms as i32).unwrap_or(PollTimeout::MAX)
                }
            };
            let mut fds = [
                PollFd::new(self.fd.as_fd(), PollFlags::POLLIN),
                PollFd::new(extra.unwrap_or(self.fd.as_fd()), PollFlags::POLLIN),
            ];
            let n = if extra.is_some() { 2 } else { 1 };
            match poll(&mut fds[..n], timeout) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e).context(|| "waiting for signals".into()),
            }
            let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
            // Read only what poll said is there: the signalfd blocks.
            if ready(&fds[0]) {
                match self.read_one()? {
                    Some(d) => return Ok(Event::Signal(d)),
                    None => continue,
                }
            }
            if n == 2 && ready(&fds[1]) {
                return Ok(Event::Readable);
            }
            if deadline.is_some_and(|at| Instant::now() >= at) {
                return Ok(Event::Timeout);
            }
        }
    }

    /// One signal from the signalfd (waiting if none is pending); None for one to drop.
    fn read_one(&self) -> Result<Option<Delivery>> {
        match self.fd.read_signal() {
            Ok(Some(info)) => {
                let d = Delivery::from(info);
                // Not logged: the write that raised it failed, and so would the log line,
                // raising another. (getpid only for a SIGPIPE: SIGCHLD floods pass here.)
                let own = d.signo == libc::SIGPIPE && is_own_sigpipe(d, std::process::id());
                Ok((!own).then_some(d))
            }
            Ok(None) | Err(nix::errno::Errno::EINTR) => Ok(None),
            Err(e) => Err(e).context(|| "reading the signalfd".into()),
        }
    }
}

/// A SIGPIPE that gwshim's own write raised (a log line to a stderr pipe nobody reads): the
/// kernel sends it to the writer as if the writer had sent it (SI_USER, its own pid). It is
/// no signal for the child; forwarding it would kill a child with the default action, and
/// its debug line would raise the next one, for ever. A SIGPIPE that another process sent
/// with kill(2) is forwarded as usual. Pure.
pub fn is_own_sigpipe(d: Delivery, own_pid: u32) -> bool {
    d.signo == libc::SIGPIPE && !d.from_kernel && d.sender == own_pid
}

/// What woke the event loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Signal(Delivery),
    /// The extra fd has data.
    Readable,
    Timeout,
}

/// The signals gwshim was started with ignored (bit N-1 for signal N), read before main:
/// Rust's runtime ignores SIGPIPE before main (and Command resets it to the default in every
/// child), so only .init_array still sees what gwshim inherited, e.g. systemd's
/// IgnoreSIGPIPE=yes or nohup's SIGHUP.
static IGNORED_AT_START: AtomicU64 = AtomicU64::new(0);

extern "C" fn record_ignored() {
    let mut ignored = 0u64;
    for sig in 1..=64 {
        if raw_handler(sig) == Some(libc::SIG_IGN) {
            ignored |= 1 << (sig - 1);
        }
    }
    IGNORED_AT_START.store(ignored, Ordering::Relaxed);
}

#[used]
// SAFETY: .init_array holds plain `extern "C" fn()` pointers run once before main;
// record_ignored only calls sigaction(2) and stores an atomic.
#[unsafe(link_section = ".init_array")]
static RECORD_IGNORED: extern "C" fn() = record_ignored;

/// Whether `sig` was ignored when gwshim started.
pub fn ignored_at_start(sig: i32) -> bool {
    (1..=64).contains(&sig) && IGNORED_AT_START.load(Ordering::Relaxed) & (1 << (sig - 1)) != 0
}

/// Signals 1-64 as bits (bit N-1 for signal N), as the kernel's 64-bit signal sets hold them.
pub type Bits = u64;

/// Every signal but SIGKILL and SIGSTOP, which cannot be blocked.
pub const ALL: Bits = !((1 << (libc::SIGKILL - 1)) | (1 << (libc::SIGSTOP - 1)));

/// The C library's own signals, between 31 and SIGRTMIN (glibc 32-33, musl 32-34): its
/// sigaction, sigprocmask and sigaddset refuse them, and glibc's posix_spawn gives them to the
/// child ignored unless told to reset them.
pub fn libc_internal() -> Bits {
    (32..libc::SIGRTMIN()).fold(0, |bits, sig| bits | 1 << (sig - 1))
}

/// A SigSet holding exactly `bits`, internal signals included (sigaddset would drop those).
pub fn set_of(bits: Bits) -> SigSet {
    let mut raw = std::mem::MaybeUninit::<libc::sigset_t>::zeroed();
    let words = raw.as_mut_ptr().cast::<libc::c_ulong>();
    let per_word = libc::c_ulong::BITS as usize;
    for sig in (1..=64).filter(|s| bits & (1 << (s - 1)) != 0) {
        let (word, bit) = ((sig - 1) / per_word, (sig - 1) % per_word);
        // SAFETY: sigset_t is an array of unsigned longs of at least 1024 bits in glibc and
        // musl, the layout the kernel reads; `word` is below 64 / c_ulong::BITS.
        unsafe { *words.add(word) |= 1 << bit };
    }
    // SAFETY: a zeroed sigset_t with bits set is a valid set.
    unsafe { SigSet::from_sigset_t_unchecked(raw.assume_init()) }
}

/// The kernel's `struct sigaction` (x86_64 and aarch64 both have sa_restorer).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[repr(C)]
struct KernelSigaction {
    handler: libc::sighandler_t,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

/// The current handler of `sig` (SIG_DFL, SIG_IGN or a function), read with the raw syscall
/// so the C library's own signals can be read too. Async-signal-safe.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn raw_handler(sig: i32) -> Option<libc::sighandler_t> {
    let mut old = std::mem::MaybeUninit::<KernelSigaction>::zeroed();
    // SAFETY: a null new action only reads the current one into `old` (8: the kernel's
    // sigset size on these architectures).
    let r = unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig,
            std::ptr::null::<KernelSigaction>(),
            old.as_mut_ptr(),
            8,
        )
    };
    // SAFETY: zeroed, then filled by the kernel on success.
    (r == 0).then(|| unsafe { old.assume_init() }.handler)
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn raw_handler(sig: i32) -> Option<libc::sighandler_t> {
    let mut old = std::mem::MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: a null new action only reads the current one into `old`, which is zeroed.
    let r = unsafe { libc::sigaction(sig, std::ptr::null(), old.as_mut_ptr()) };
    // SAFETY: sigaction succeeded and filled `old` (a valid zeroed struct anyway).
    (r == 0).then(|| unsafe { old.assume_init() }.sa_sigaction)
}

/// Gives `sig` its default action, the C library's own signals included.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn raw_default(sig: i32) {
    let default = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // SAFETY: installs SIG_DFL (no handler code runs, so no restorer is needed); the old
    // action is not asked for.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig,
            &default,
            std::ptr::null_mut::<KernelSigaction>(),
            8,
        )
    };
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn raw_default(sig: i32) {
    // SAFETY: installs SIG_DFL, no handler code runs.
    unsafe { libc::signal(sig, libc::SIG_DFL) };
}

/// rt_sigprocmask(how, bits) with the raw syscall, which takes every signal.
fn raw_mask(how: libc::c_int, bits: Bits) -> std::result::Result<(), nix::errno::Errno> {
    let set = set_of(bits);
    // SAFETY: the set outlives the call; the old mask is not asked for; 8 is the kernel's
    // sigset size (64 signals), read from the start of the C library's larger sigset_t.
    let r = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            how,
            set.as_ref() as *const libc::sigset_t,
            std::ptr::null_mut::<libc::sigset_t>(),
            8,
        )
    };
    match r {
        0 => Ok(()),
        _ => Err(nix::errno::Errno::last()),
    }
}

/// Puts SIGCHLD back to its default action, which gwshim needs to see its children's exits,
/// and returns the action it was started with, for the child.
pub fn default_sigchld() -> Result<SigAction> {
    let default = SigAction::new(
        SigHandler::SigDfl,
        nix::sys::signal::SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: installs SIG_DFL, no handler code runs.
    unsafe { sigaction(Signal::SIGCHLD, &default) }.context(|| "resetting SIGCHLD".into())
}

/// Sends `sig` to a process, or to a process group when `group` is true.
pub fn send(pid: i32, sig: i32, group: bool) -> std::io::Result<()> {
    let target = if group { -pid } else { pid };
    // SAFETY: kill(2) takes plain integers and touches no memory of ours. nix's kill() only
    // accepts the standard signals, and real-time ones must be forwarded too.
    match unsafe { libc::kill(target, sig) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// Whether `sig` is pending for gwshim (blocked, not yet read).
pub fn pending(sig: i32) -> bool {
    let mut set = std::mem::MaybeUninit::<libc::sigset_t>::zeroed();
    // SAFETY: sigpending fills the zeroed set; sigismember only reads it.
    unsafe { libc::sigpending(set.as_mut_ptr()) == 0 && libc::sigismember(set.as_ptr(), sig) == 1 }
}

/// --parent-death-signal: the kernel sends `sig` to gwshim when `parent`, which started it,
/// dies; it arrives like any signal (blocked, read from the signalfd) and is passed on. If
/// the parent died before this took effect (gwshim has another parent now), gwshim sends it
/// to itself at once, as the kernel would have.
pub fn on_parent_death(sig: i32, parent: nix::unistd::Pid) {
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes plain integers (nix's wrapper only the standard
    // signals).
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong) } != 0 {
        log::warn!(
            "cannot set gwshim's parent-death signal: {}",
            std::io::Error::last_os_error()
        );
        return;
    }
    if nix::unistd::getppid() != parent {
        log::info!(
            "gwshim's parent pid {parent} died before it started; acting on {}",
            name(sig)
        );
        let _ = send(std::process::id() as i32, sig, false);
    }
}

/// Stops gwshim itself, as a shell expects of a job whose child stopped (Ctrl-Z).
pub fn stop_self() {
    let _ = nix::sys::signal::raise(Signal::SIGSTOP);
}

/// Dies of `sig` (any of 1-64, real-time ones included) with its default action, so the
/// parent sees a signal death. Where the kernel does not let that kill (pid 1 of a
/// namespace, a signal whose default is to be ignored or to stop), exits 128 + sig instead.
pub fn die_of(sig: i32) -> ! {
    if (1..=64).contains(&sig) && sig != libc::SIGKILL && sig != libc::SIGSTOP {
        raw_default(sig);
        let _ = send(std::process::id() as i32, sig, false);
        let _ = raw_mask(libc::SIG_UNBLOCK, 1 << (sig - 1));
    }
    std::process::exit(128 + sig)
}

/// Signals that a terminal sends to its whole foreground process group.
pub fn is_terminal_signal(sig: i32) -> bool {
    [
        libc::SIGINT,
        libc::SIGQUIT,
        libc::SIGTSTP,
        libc::SIGTTIN,
        libc::SIGTTOU,
        libc::SIGWINCH,
        libc::SIGHUP,
        libc::SIGCONT,
    ]
    .contains(&sig)
}

/// Signals after which a shell expects the job to stop.
pub fn is_job_stop(sig: i32) -> bool {
    [libc::SIGTSTP, libc::SIGTTIN, libc::SIGTTOU].contains(&sig)
}

/// `--rewrite-signal FROM:TO` rules; TO None drops the signal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rewrites(pub Vec<(i32, Option<i32>)>);

impl Rewrites {
    pub fn apply(&self, sig: i32) -> Option<i32> {
        match self.0.iter().rev().find(|(from, _)| *from == sig) {
            Some((_, to)) => *to,
            None => Some(sig),
        }
    }
}

/// A set of signal numbers (1-64), e.g. the stop signals or those that reached the child.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Set(u64);

impl Set {
    pub fn of(sigs: &[i32]) -> Set {
        let mut set = Set::default();
        for &sig in sigs {
            set.insert(sig);
        }
        set
    }

    pub fn insert(&mut self, sig: i32) {
        if (1..=64).contains(&sig) {
            self.0 |= 1 << (sig - 1);
        }
    }

    pub fn contains(self, sig: i32) -> bool {
        (1..=64).contains(&sig) && self.0 & (1 << (sig - 1)) != 0
    }
}

/// What to do with one delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Send this signal to the child.
    Forward(i32),
    /// The child already received this signal from the terminal (it shares gwshim's group).
    AlreadyDelivered(i32),
    /// Rewritten to none.
    Dropped,
}

/// Decides how one delivery reaches the child. `shares_group`: the child is in gwshim's
/// process group right now, so what the terminal sent to that group reached it too;
/// `session_leader`: gwshim leads its session, so a hangup (the kernel's SIGHUP and SIGCONT)
/// was sent to gwshim alone. Pure.
pub fn route(d: Delivery, rewrites: &Rewrites, shares_group: bool, session_leader: bool) -> Route {
    let hangup = session_leader && [libc::SIGHUP, libc::SIGCONT].contains(&d.signo);
    if d.from_kernel && shares_group && is_terminal_signal(d.signo) && !hangup {
        return Route::AlreadyDelivered(d.signo);
    }
    match rewrites.apply(d.signo) {
        Some(sig) => Route::Forward(sig),
        None => Route::Dropped,
    }
}

fn rt_min() -> i32 {
    libc::SIGRTMIN()
}

fn rt_max() -> i32 {
    libc::SIGRTMAX()
}

/// Parses HUP, SIGHUP, hup, 1, RTMIN, RTMIN+3, RTMAX-2.
pub fn parse_signal(text: &str) -> std::result::Result<i32, String> {
    let bad = || format!("unknown signal '{text}'");
    let upper = text.trim().to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let sig = if let Ok(n) = name.parse::<i32>() {
        n
    } else if let Some(rest) = name.strip_prefix("RTMIN") {
        rt_min() + parse_offset(rest, '+').ok_or_else(bad)?
    } else if let Some(rest) = name.strip_prefix("RTMAX") {
        rt_max() - parse_offset(rest, '-').ok_or_else(bad)?
    } else {
        format!("SIG{name}").parse::<Signal>().map_err(|_| bad())? as i32
    };
    if sig < 1 || sig > rt_max() || (sig > 31 && sig < rt_min()) {
        return Err(bad());
    }
    Ok(sig)
}

fn parse_offset(rest: &str, sign: char) -> Option<i32> {
    if rest.is_empty() {
        return Some(0);
    }
    let n: i32 = rest.strip_prefix(sign)?.parse().ok()?;
    (0..=rt_max() - rt_min()).contains(&n).then_some(n)
}

/// SIGTERM, SIGRTMIN+3, ...
pub fn name(sig: i32) -> String {
    match Signal::try_from(sig) {
        Ok(s) => s.as_str().to_string(),
        Err(_) if sig >= rt_min() && sig <= rt_max() => format!("SIGRTMIN+{}", sig - rt_min()),
        Err(_) => format!("signal {sig}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_its_own_sigpipe_from_a_sent_one() {
        let d = |signo, from_kernel, sender| Delivery {
            signo,
            from_kernel,
            sender,
        };
        assert!(is_own_sigpipe(d(libc::SIGPIPE, false, 42), 42));
        assert!(
            !is_own_sigpipe(d(libc::SIGPIPE, false, 7), 42),
            "sent by pid 7"
        );
        assert!(!is_own_sigpipe(d(libc::SIGPIPE, true, 42), 42));
        assert!(!is_own_sigpipe(d(libc::SIGUSR1, false, 42), 42));
    }

    #[test]
    fn parses_signal_names() {
        let rt = rt_min();
        let table: &[(&str, Option<i32>)] = &[
            ("HUP", Some(1)),
            ("SIGHUP", Some(1)),
            ("hup", Some(1)),
            ("usr1", Some(10)),
            ("15", Some(15)),
            ("RTMIN", Some(rt)),
            ("RTMIN+3", Some(rt + 3)),
            ("SIGRTMAX", Some(rt_max())),
            ("RTMAX-1", Some(rt_max() - 1)),
            ("", None),
            ("FOO", None),
            ("0", None),
            ("-1", None),
            ("32", None),
            ("65", None),
            ("RTMIN+", None),
            ("RTMIN-1", None),
            ("RTMIN+99", None),
        ];
        for &(text, want) in table {
            assert_eq!(parse_signal(text).ok(), want, "{text:?}");
        }
        assert_eq!(name(10), "SIGUSR1");
        assert_eq!(name(rt + 2), "SIGRTMIN+2");
    }

    #[test]
    fn routes_deliveries() {
        let d = |signo, from_kernel| Delivery {
            signo,
            from_kernel,
            sender: 0,
        };
        let rw = Rewrites(vec![(1, Some(10)), (28, None)]);
        // (delivery, the child shares gwshim's group, gwshim leads its session, route)
        let table: &[(Delivery, bool, bool, Route)] = &[
            (d(15, false), true, false, Route::Forward(15)),
            (d(1, false), true, false, Route::Forward(10)),
            (d(28, false), true, false, Route::Dropped),
            // Ctrl-C: the terminal signalled the whole group, the child included.
            (d(2, true), true, false, Route::AlreadyDelivered(2)),
            (d(20, true), true, false, Route::AlreadyDelivered(20)),
            (d(2, true), true, true, Route::AlreadyDelivered(2)),
            // ... unless the child is not in it (--group, setsid, not in a terminal).
            (d(2, true), false, false, Route::Forward(2)),
            (d(1, true), false, false, Route::Forward(10)),
            // a hangup goes to the session leader alone
            (d(1, true), true, true, Route::Forward(10)),
            (d(18, true), true, true, Route::Forward(18)),
            (d(1, true), true, false, Route::AlreadyDelivered(1)),
            // kernel-sent signals that are not the terminal's are forwarded
            (d(15, true), true, false, Route::Forward(15)),
        ];
        for &(delivery, shares, leader, want) in table {
            assert_eq!(
                route(delivery, &rw, shares, leader),
                want,
                "{delivery:?} shares_group={shares} session_leader={leader}"
            );
        }
    }
}
