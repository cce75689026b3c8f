//! The event loop: forward signals to the child and reap until the child ends.
//! It blocks in one place (Signals::wait) and wakes only for a signal or the stop timeout.

use crate::error::Result;
use crate::exit::Run;
use crate::notify::{Notifier, Relay};
use crate::pidfd::{self, PidFd};
use crate::reap::Termination;
use crate::signals::{self, Delivery, Event, Route, Set, Signals};
use crate::{proc, reap, terminal, timespan};
use log::{debug, info, trace, warn};
use nix::libc;
use nix::unistd::Pid;
use std::time::{Duration, Instant};

pub struct Options<'a> {
    pub rewrites: &'a signals::Rewrites,
    pub relay: Option<&'a Relay>,
    /// gwshim's own STATUS=/STOPPING=1 to systemd, when it gave gwshim a socket.
    pub notifier: Option<&'a Notifier>,
    pub own_group: bool,
    pub stop_timeout: Option<Duration>,
    /// The signals that ask the child to stop for good (--stop-signal).
    pub stop_signals: Set,
    /// The terminal, when its foreground was handed to the child's group (--group in a
    /// terminal): Ctrl-C and Ctrl-Z then reach the child's group only.
    pub hand_terminal: Option<std::os::fd::RawFd>,
}

struct State {
    stop: Option<i32>,
    reached: Set,
    kill_at: Option<Instant>,
    /// gwshim stopped itself for job control (Ctrl-Z) and has not seen SIGCONT since.
    job_stopped: bool,
    /// gwshim leads its session: a terminal's hangup is sent to it alone.
    session_leader: bool,
    /// gwshim forwarded a job-stop signal (with the terminal handed over): the child's stop
    /// that follows is gwshim's own doing, already acted on.
    forwarded_job_stop: bool,
}

pub fn supervise(signals: &Signals, child: Pid, opts: &Options) -> Result<Run> {
    let target = Target::new(child, opts.own_group);
    let mut state = State {
        stop: None,
        reached: Set::default(),
        kill_at: None,
        job_stopped: false,
        session_leader: terminal::session_leader(),
        forwarded_job_stop: false,
    };
    loop {
        let delivery = match signals.wait_for(state.kill_at, opts.relay.map(Relay::fd))? {
            Event::Signal(d) => d,
            Event::Readable => {
                opts.relay.inspect(|r| r.pump(child));
                continue;
            }
            Event::Timeout => {
                warn!(
                    "child pid {child} still running {} after the stop signal; sending SIGKILL",
                    timespan::show(opts.stop_timeout.unwrap_or_default())
                );
                target.send(libc::SIGKILL);
                state.kill_at = None;
                continue;
            }
        };
        trace!(
            "{} from pid {}{}",
            signals::name(delivery.signo),
            delivery.sender,
            if delivery.from_kernel {
                " (the kernel)"
            } else {
                ""
            }
        );
        if delivery.signo == libc::SIGCHLD {
            let reaped = reap::reap(child, opts.hand_terminal.is_some());
            if let Some(end) = reaped.end {
                terminal_stop(end, child, opts, &mut state);
                return Ok(Run {
                    end,
                    stop: state.stop,
                    reached: state.reached,
                });
            }
            // The terminal stopped the child's group (Ctrl-Z with --group): the shell waits
            // for gwshim, its job, to stop too.
            if let Some(sig) = reaped.stopped
                && signals::is_job_stop(sig)
                && !std::mem::take(&mut state.forwarded_job_stop)
                && !state.job_stopped
            {
                debug!("child pid {child} stopped by {}", signals::name(sig));
                stop_as_job(&mut state);
            }
            continue;
        }
        handle(delivery, &target, opts, &mut state);
    }
}

fn handle(d: Delivery, target: &Target, opts: &Options, state: &mut State) {
    let child = target.pid;
    if signals::ignored_at_start(d.signo) {
        // As for any process started so (nohup's SIGHUP): the child ignores it too, and it
        // must not count as a stop request.
        debug!(
            "{} was ignored when gwshim started; dropped",
            signals::name(d.signo)
        );
        return;
    }
    if d.signo == libc::SIGCONT && std::mem::take(&mut state.job_stopped) {
        // `fg` gave the terminal back to gwshim's group: the child's group had it.
        if let Some(tty) = opts.hand_terminal
            && terminal::foreground(tty)
            && let Err(e) = terminal::give(tty, child.as_raw())
        {
            debug!("cannot hand the terminal back to child pid {child}'s group: {e}");
        }
        // `fg` continues the whole process group; forward only if the child missed it.
        if terminal::shares_group(child.as_raw())
            && proc::stat(child.as_raw()).is_some_and(|s| s.state != 'T')
        {
            debug!("SIGCONT already resumed child pid {child} with its group");
            return;
        }
    }
    // Only a terminal's signals need the /proc read: did they reach the child too?
    let shares = d.from_kernel
        && signals::is_terminal_signal(d.signo)
        && terminal::shares_group(child.as_raw());
    let sig = match signals::route(d, opts.rewrites, shares, state.session_leader) {
        Route::Forward(sig) => {
            debug!(
                "forwarding {} (from pid {}) to pid {child} as {}",
                signals::name(d.signo),
                d.sender,
                signals::name(sig)
            );
            target.send(sig);
            sig
        }
        Route::AlreadyDelivered(sig) => {
            debug!(
                "{} came from the terminal to the child's group too",
                signals::name(sig)
            );
            sig
        }
        Route::Dropped => {
            debug!("dropping {} (rewritten to none)", signals::name(d.signo));
            return;
        }
    };
    state.reached.insert(sig);
    if sig == crate::exit::RESTART_SIGNAL
        && let Some(n) = opts.notifier
    {
        n.status(&format!(
            "restart asked: SIGUSR1 sent to {} pid {child}",
            n.noun
        ));
    }
    if opts.stop_signals.contains(sig) {
        if state.stop.is_none() {
            info!(
                "stop requested: {} reached child pid {child}",
                signals::name(sig)
            );
            // Also for a stop systemd did not start (`kill` of the main pid, hermes's own
            // scans): the unit shows `deactivating` while the child drains.
            if let Some(n) = opts.notifier {
                n.stopping(&format!(
                    "stopping: {} sent to {} pid {child}",
                    signals::name(sig),
                    n.noun
                ));
            }
        }
        state.stop = Some(sig);
        if state.kill_at.is_none() {
            state.kill_at = opts.stop_timeout.and_then(crate::timespan::deadline);
        }
    }
    if signals::is_job_stop(sig) {
        state.forwarded_job_stop = opts.hand_terminal.is_some();
        stop_as_job(state);
    }
}

/// Stops gwshim as a job whose child stopped, unless nobody could continue it: a shell
/// continues its jobs, but an orphaned process group (under systemd, after setsid) has no
/// shell, and the kernel discards these stops for the child there. A SIGCONT already
/// pending (sent right after the stop) would be discarded by the stop: then gwshim stays.
fn stop_as_job(state: &mut State) {
    if terminal::own_group_orphaned() {
        debug!("not stopping: gwshim's process group is orphaned, nothing would continue it");
        return;
    }
    if signals::pending(libc::SIGCONT) {
        debug!("not stopping: SIGCONT came already");
        return;
    }
    state.job_stopped = true;
    signals::stop_self();
}

/// With the terminal handed to the child's group, Ctrl-C reaches the child only: a death
/// by the terminal's SIGINT or SIGQUIT (a stop signal) counts as the stop it asked for.
fn terminal_stop(end: Termination, child: Pid, opts: &Options, state: &mut State) {
    if let Termination::Signaled(sig) = end
        && opts.hand_terminal.is_some()
        && state.stop.is_none()
        && [libc::SIGINT, libc::SIGQUIT].contains(&sig)
        && opts.stop_signals.contains(sig)
    {
        info!(
            "stop requested: child pid {child} died of {} from the terminal it held",
            signals::name(sig)
        );
        state.stop = Some(sig);
        state.reached.insert(sig);
    }
}

/// The main child, as signals reach it: through a pidfd taken while it is unreaped (so it is
/// the child for sure), by pid where the kernel has no pidfds. Its process group (--group) is
/// signalled by number: the number cannot be reused while the child, its leader, is unreaped,
/// and gwshim reaps it only after the last signal it forwards.
struct Target {
    pid: Pid,
    group: bool,
    fd: Option<PidFd>,
}

impl Target {
    fn new(pid: Pid, group: bool) -> Target {
        // With --group the whole group is signalled, which no pidfd can do.
        let fd = if group {
            None
        } else {
            pidfd::open(pid.as_raw()).unwrap_or_else(|e| {
                debug!("no pidfd for child pid {pid} ({e}); signalling it by pid");
                None
            })
        };
        Target { pid, group, fd }
    }

    fn send(&self, sig: i32) {
        let sent = match &self.fd {
            Some(fd) => fd.send(sig),
            None => signals::send(self.pid.as_raw(), sig, self.group),
        };
        // ESRCH: the child is gone and not yet reaped; its SIGCHLD is on the way.
        if let Err(e) = sent
            && e.raw_os_error() != Some(libc::ESRCH)
        {
            warn!(
                "cannot send {} to pid {}: {e}",
                signals::name(sig),
                self.pid
            );
        }
    }
}
