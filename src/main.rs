//! gwshim: a supervisor shim that runs one service as its child. This file only wires the
//! modules together; each one holds one responsibility.

use gwshim::exit::Outcome;
use gwshim::hermes;
use gwshim::{
    child, cli, exit, guard, leftovers, logging, notify, pacing, pidfile, reap, signals,
    supervisor, workdir,
};
use log::{error, warn};
use std::process::exit as exit_with;

fn main() {
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
        notify::setup(if gateway { "gateway" } else { "child" }, state_folder)
    } else {
        (None, None)
    };
    let mut env_overrides = Vec::new();
    if let Some(relay) = &relay {
        env_overrides.push(("NOTIFY_SOCKET".into(), Some(relay.path().into())));
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
    let setup = child::Setup {
        mask: signals.original_mask,
        sigchld,
        own_group: config.group,
        supervisor_env: config.supervisor_env,
        env_overrides,
        // hermes's process scans take gwshim's own command line for a gateway's, so a
        // `kill -9` of the pid they list may hit gwshim: the gateway must not live on unsupervised.
        pdeathsig: config.pdeathsig.or(gateway.then_some(nix::libc::SIGTERM)),
    };
    guard::install();
    let started = std::time::Instant::now();
    let pid = match child::spawn(&config.command, &setup) {
        Ok(pid) => {
            guard::watch(pid, config.group);
            workdir::leave(absolute);
            if let Some(n) = &notifier {
                n.status(&format!("{} running, pid {pid}", n.noun));
            }
            pid
        }
        Err(failure) => {
            error!("{}", failure.message);
            drop(relay); // removes its socket; exit() runs no destructors
            exit_with(failure.status);
        }
    };

    let opts = supervisor::Options {
        rewrites: &config.rewrites,
        relay: relay.as_ref(),
        notifier: notifier.as_ref(),
        own_group: config.group,
        stop_timeout: config.stop_timeout,
        stop_signals: config.stop_signals,
    };
    let ended = supervisor::supervise(&signals, pid, &opts).unwrap_or_else(|e| {
        error!("{e}; no longer forwarding signals, waiting for pid {pid}");
        supervisor::Ended {
            end: reap::wait_for(pid),
            stop: None,
            reached: signals::Set::default(),
            restart_requested: false,
        }
    });
    guard::forget();
    let uptime = started.elapsed();
    drop(relay);
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

    let decision = exit::decide(ended.end, ended.stop, ended.reached, &config.policy);
    let what = match decision.outcome {
        Outcome::Exit(n) => format!("exiting {n}"),
        Outcome::Die(s) => format!("dying of {}", signals::name(s)),
    };
    // A planned restart is logged, but no warning: `-q` and `journalctl -p warning` stay quiet.
    let planned = exit::planned_restart(ended.end, decision.outcome, &config.policy);
    let level = if decision.failure && !planned {
        log::Level::Warn
    } else {
        log::Level::Info
    };
    log::log!(
        level,
        "child pid {pid} {}; {what} ({})",
        ended.end,
        decision.reason
    );
    match decision.outcome {
        Outcome::Exit(n) => {
            if let Some(pacer) = &pacer
                && let pacing::WaitEnd::Stopped =
                    pacer.before_exit(n, &ended, uptime, &signals, pid, notifier.as_ref())
            {
                if let Some(n) = &notifier {
                    n.stopping("stopping: asked to during the restart wait");
                }
                exit_with(0);
            }
            exit_with(n);
        }
        Outcome::Die(s) => signals::die_of(s),
    }
}

/// Writes a message before logging is set up. Unlike print! it never panics: a closed
/// stdout or stderr, or a pipe nobody reads (EPIPE; SIGPIPE is blocked), loses the message
/// but not the exit status.
fn say(to: &mut dyn std::io::Write, text: &str) {
    let _ = to.write_all(text.as_bytes()).and_then(|()| to.flush());
}
