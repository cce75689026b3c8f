//! gwshim: a supervisor shim that runs one service as its child. This file only wires the
//! modules together; each one holds one responsibility.

mod child;
mod cli;
mod error;
mod exit;
mod logging;
mod proc;
mod reap;
mod signals;
mod supervisor;

use exit::Outcome;
use log::{error, info};
use std::process::exit as exit_with;

fn main() {
    // First of all: from here on no signal is lost or acted on by default.
    let signals = match signals::Signals::block_all() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("gwshim: error: {e}");
            exit_with(1);
        }
    };
    let config = match cli::parse(
        std::env::args_os().collect(),
        std::env::var_os("GWSHIM_LOG"),
    ) {
        Ok(cli::Parsed::Run(config)) => config,
        Ok(cli::Parsed::Exit { text, status }) => {
            print!("{text}");
            exit_with(status);
        }
        Err(cli::Usage(problem)) => {
            eprintln!("gwshim: {problem} (see 'gwshim --help')");
            exit_with(2);
        }
    };
    logging::init(config.log_level);

    let sigchld = match signals::default_sigchld() {
        Ok(action) => action,
        Err(e) => {
            error!("{e}");
            exit_with(1);
        }
    };
    reap::become_subreaper();
    let setup = child::Setup {
        mask: signals.original_mask,
        sigchld,
        own_group: config.group,
        supervisor_env: config.supervisor_env,
    };
    let pid = match child::spawn(&config.command, &setup) {
        Ok(pid) => pid,
        Err(failure) => {
            error!("{}", failure.message);
            exit_with(failure.status);
        }
    };

    let opts = supervisor::Options {
        rewrites: &config.rewrites,
        own_group: config.group,
        stop_timeout: config.stop_timeout,
    };
    let ended = supervisor::supervise(&signals, pid, &opts).unwrap_or_else(|e| {
        error!("{e}; no longer forwarding signals, waiting for pid {pid}");
        supervisor::Ended {
            end: reap::wait_for(pid),
            stop: None,
        }
    });

    let decision = exit::decide(ended.end, ended.stop, &config.policy);
    let child_status = match ended.end {
        exit::ChildEnd::Exited(n) => format!("exited {n}"),
        exit::ChildEnd::Signaled(s) => format!("was killed by {}", signals::name(s)),
    };
    match decision.outcome {
        Outcome::Exit(n) => {
            info!(
                "child pid {pid} {child_status}; exiting {n} ({})",
                decision.reason
            );
            exit_with(n);
        }
        Outcome::Die(s) => {
            info!(
                "child pid {pid} {child_status}; dying of {} ({})",
                signals::name(s),
                decision.reason
            );
            signals::die_of(s);
        }
    }
}
