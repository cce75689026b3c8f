//! gwshim: a supervisor shim that runs one service as its child. This file only wires the
//! modules together; each one holds one responsibility.

use gwshim::exit::{Action, Run};
use gwshim::{
    child, cli, exit, guard, hermes, leftovers, logging, notify, pacing, pidfile, reap, signals,
    supervisor, terminal, workdir,
};
use log::{error, warn};
use std::os::fd::AsRawFd;
use std::process::exit as exit_with;

fn main() {
    // Whoever started gwshim, before anything else: --parent-death-signal checks it is alive.
    let parent = nix::unistd::getppid();
    // First of all: from here on no signal is lost or acted on by default.
    let signals = match signals::Signals::block_all() {
        Ok(s) => s,
        Err(e) => {
            say(&mut std::io::stderr(), &format!("gwshim: error: {e}\n"));
            exit_with(1);
        }
    };
    let mut config = match cli::parse(std::env::args_os().collect(), &|var| std::env::var_os(var)) {
        Ok(cli::Parsed::Run(config)) => config,
        Ok(cli::Parsed::Exit { text, status }) => {
            say(&mut std::io::stdout(), &text);
            exit_with(status);
        }
        Err(cli::Usage(problem)) => {
            say(
                &mut std::io::stderr(),
                &format!("gwshim: {problem} (see 'gwshim --help')\n"),
            );
            exit_with(2);
        }
    };
    logging::init(config.log_level);
    if let Some(sig) = config.parent_death_signal {
        signals::on_parent_death(sig, parent);
    }
    // gwshim leaves its working directory once the child runs: paths first become absolute.
    let mut absolute = true;
    if let Some(dir) = config.pacing.state_dir.as_mut() {
        absolute &= workdir::make_absolute(dir);
    }

    let sigchld = match signals::default_sigchld() {
        Ok(action) => action,
        Err(e) => {
            error!("{e}");
            exit_with(1);
        }
    };
    reap::become_subreaper();
    let pacer = pacing::Pacer::start(&config.pacing, &config.command);
    let gateway = hermes::recognise(&config.command).is_some();
    let state_folder = || pacing::state_folder(config.pacing.state_dir.as_deref());
    let (relay, notifier) = if config.notify_relay {
        notify::setup(
            if gateway { "gateway" } else { "child" },
            state_folder,
            pacer.as_ref().and_then(pacing::Pacer::notify_access),
        )
    } else {
        (None, None)
    };
    // With the relay off gwshim still speaks for itself during a pacing wait, or systemd's
    // timers (watchdog, start and stop timeouts) end it there; it says nothing else then.
    let keeper = match (&notifier, config.notify_relay) {
        (None, false) if pacer.is_some() => notify::Notifier::from_env("child"),
        _ => None,
    };
    // The status to exit with after the pacing wait, if there is one: 0 if a stop ended it.
    let paced = |status: i32, run: &Run, uptime: std::time::Duration, main| match &pacer {
        Some(p) => {
            let keeper = keeper.as_ref().or(notifier.as_ref());
            p.before_exit(
                status,
                run,
                uptime,
                &signals,
                main,
                notifier.as_ref(),
                keeper,
            )
        }
        None => status,
    };
    let mut env_overrides = Vec::new();
    if let Some(relay) = &relay {
        env_overrides.push(("NOTIFY_SOCKET".into(), Some(relay.address())));
    }
    let mut pidfiles = match &config.pidfiles {
        cli::Pidfiles::Off => Vec::new(),
        cli::Pidfiles::These(targets) => targets.clone(),
        cli::Pidfiles::GatewayDefault => hermes::gateway_target(&config.command)
            .into_iter()
            .collect(),
    };
    for target in &mut pidfiles {
        absolute &= workdir::make_absolute(&mut target.pid);
        if let Some(lock) = target.lock.as_mut() {
            absolute &= workdir::make_absolute(lock);
        }
    }
    let own_pid = i64::from(std::process::id());
    pidfile::clean(&pidfiles, own_pid);
    let tty = terminal::controlling();
    let place = terminal::plan(
        config.group,
        tty.as_ref()
            .is_some_and(|t| terminal::foreground(t.as_raw_fd())),
    );
    // Kept open only to hand over (the fd is close-on-exec: the child never has it).
    let tty = tty.filter(|_| place.hand_terminal);
    let hand_terminal = tty.as_ref().map(|t| t.as_raw_fd());
    let setup = child::Setup {
        mask: signals.original_mask,
        sigchld,
        own_group: place.own_group,
        hand_terminal,
        supervisor_env: config.supervisor_env,
        env_overrides,
        // hermes's process scans take gwshim's own command line for a gateway's, so a
        // `kill -9` of the pid they list may hit gwshim: the gateway must not live on unsupervised.
        pdeathsig: config.pdeathsig.or(gateway.then_some(nix::libc::SIGTERM)),
    };
    guard::install();
    // Before the gateway adds its own start to it: whether it will sleep in its restart brake.
    let starts_log = notifier
        .as_ref()
        .and_then(|_| hermes::starts_log_for(&config.command));
    let started = std::time::Instant::now();
    let pid = match child::spawn(&config.command, &setup) {
        Ok(pid) => {
            guard::watch(pid, config.group);
            workdir::leave(absolute);
            if let Some(n) = &notifier {
                n.status(&hermes::status_at_spawn(
                    n.noun,
                    pid.as_raw(),
                    starts_log.as_ref(),
                ));
            }
            pid
        }
        Err(failure) => {
            error!("{}", failure.message);
            drop(relay); // removes its socket; exit() runs no destructors
            // A command that cannot be executed (a venv being rebuilt) is a fast failure
            // like any other: paced, so the unit stays up until the command is back.
            let run = Run::unsignalled(reap::Termination::Exited(failure.status));
            let no_child = nix::unistd::Pid::from_raw(0);
            exit_with(paced(
                failure.status,
                &run,
                std::time::Duration::ZERO,
                no_child,
            ));
        }
    };

    let opts = supervisor::Options {
        rewrites: &config.rewrites,
        relay: relay.as_ref(),
        notifier: notifier.as_ref(),
        own_group: config.group,
        stop_timeout: config.stop_timeout,
        stop_signals: config.stop_signals,
        hand_terminal,
    };
    let run = supervisor::supervise(&signals, pid, &opts).unwrap_or_else(|e| {
        error!("{e}; no longer forwarding signals, waiting for pid {pid}");
        Run::unsignalled(reap::wait_for(pid))
    });
    guard::forget();
    let uptime = started.elapsed();
    // What the child said last may still wait on the socket when its death was read first:
    // it reaches systemd before gwshim decides or says anything more.
    if let Some(relay) = relay {
        relay.pump(pid);
    }
    if !config.leave_orphans {
        let opts = leftovers::Options {
            grace: config.grace,
            group: config.group.then_some(pid.as_raw()),
            stop_signals: config.stop_signals,
        };
        if let Err(e) = leftovers::end_all(&signals, pid, &opts) {
            warn!("cannot end leftover processes: {e}");
        }
    }
    // A child that was SIGKILLed, OOM-killed or crashed left its files: clean them for the
    // next start (after the leftovers, which may hold an inherited lock).
    pidfile::clean(&pidfiles, own_pid);

    let decision = exit::decide(&run, &config.policy);
    log::log!(
        decision.log_level(),
        "child pid {pid} {}; {decision}",
        run.end
    );
    match decision.action {
        Action::Exit(n) => exit_with(paced(n, &run, uptime, pid)),
        Action::Die(s) => signals::die_of(s),
    }
}

/// Writes a message before logging is set up. Unlike print! it never panics: a closed
/// stdout or stderr, or a pipe nobody reads (EPIPE; SIGPIPE is blocked), loses the message
/// but not the exit status.
fn say(to: &mut dyn std::io::Write, text: &str) {
    let _ = to.write_all(text.as_bytes()).and_then(|()| to.flush());
}
