//! The command line: `gwshim [OPTIONS] -- COMMAND [ARGS...]`.

use crate::exit::Policy;
use crate::pidfile::Target;
use crate::signals::{self, Rewrites, Set};
use crate::{exit, leftovers, pacing, timespan};
use argh::{ArgsInfo, FlagInfo, FlagInfoKind, FromArgs, Optionality};
use log::LevelFilter;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// Each option is declared here once: its flag, value name, help line, parser and default.
/// Its GWSHIM_* twin follows from the flag (`twin_of`), unless it is in `NO_TWIN`; the usage
/// errors name the flag or the variable the value came from.
#[derive(FromArgs, ArgsInfo)]
#[argh(
    description = "Run COMMAND as a supervised child: forward signals, reap zombies and turn its \
failures into a status that makes systemd restart it.",
    example = "gwshim -- hermes gateway run\n\
gwshim --keep-status 75,78 --restart-status 75 -- ./server --port 8080\n\
gwshim --rewrite-signal HUP:USR1 --stop-timeout 30 -- hermes gateway run\n\
gwshim --transparent -- make test",
    note = "Signals are named HUP, SIGHUP, 1 or RTMIN+2; time spans 30, 0.5, 100ms, 10s, 5min. \
Every option has an environment twin, GWSHIM_ and its name in capitals: GWSHIM_STOP_TIMEOUT=30, \
GWSHIM_TRANSPARENT=1 (switches take 1/0, true/false, yes/no, on/off), GWSHIM_PIDFILE=a,b (lists \
are comma-separated); a flag wins over its variable, and no GWSHIM_* variable reaches the child. \
GWSHIM_LOG=off|error|warn|info|debug|trace sets the log level, as -v (debug), -vv (trace), \
-q (warnings) and -qq (errors) do. Options take --opt VALUE or --opt=VALUE; an empty VALUE is a \
usage error, an empty GWSHIM_* variable counts as unset. Besides the codes below: a status in \
--keep-status is passed on as is; when the child died of a signal gwshim passed on (a stop \
signal, a hangup), gwshim dies of the same signal; --transparent passes every status on, 128+N \
for signal N.",
    error_code(0, "the child exited 0, or ended after a stop signal (--stop-signal)."),
    error_code(1, "gwshim itself could not set up (signals), before COMMAND started."),
    error_code(2, "usage error: a bad option or value, or no COMMAND."),
    error_code(75, "the child failed or was killed unasked (see --restart-status)."),
    error_code(78, "the child exited 78, a fatal configuration error (kept as is)."),
    error_code(126, "COMMAND was found but could not be executed."),
    error_code(127, "COMMAND, or the interpreter its #! line names, was not found."),
    help_triggers("-h", "--help")
)]
struct Args {
    /// child exit statuses passed through unchanged, comma-separated (default 75,78; 0 always
    /// passes; "none" for none), e.g. --keep-status 75,78,3
    #[argh(
        option,
        arg_name = "LIST",
        default = "Statuses(exit::DEFAULT_KEEP.to_vec())",
        from_str_fn(parse_status_list)
    )]
    keep_status: Statuses,

    /// what every other non-zero exit, and a death by a signal nobody asked for, becomes
    /// (default 75, EX_TEMPFAIL), e.g. --restart-status 1
    #[argh(
        option,
        arg_name = "N",
        default = "exit::DEFAULT_RESTART_STATUS",
        from_str_fn(parse_status)
    )]
    restart_status: i32,

    /// rewrite nothing: exit with the child's status, or 128+N when it died of signal N
    #[argh(switch)]
    transparent: bool,

    /// rewrite a signal before forwarding it, FROM:TO; TO "none" drops it; repeatable,
    /// e.g. --rewrite-signal HUP:USR1
    #[argh(option, arg_name = "FROM:TO", from_str_fn(parse_rewrite))]
    rewrite_signal: Vec<(i32, Option<i32>)>,

    /// put the child in its own process group and signal the whole group
    #[argh(switch)]
    group: bool,

    /// the signals that ask the child to stop for good (default TERM,INT,QUIT; "none"): once
    /// one reached it, any exit means a clean stop (0). Others, HUP included, are only passed
    /// on. E.g. --stop-signal TERM,INT,QUIT,HUP
    #[argh(
        option,
        arg_name = "LIST",
        default = "Set::of(&exit::DEFAULT_STOP_SIGNALS)",
        from_str_fn(parse_stop_signals)
    )]
    stop_signal: Set,

    /// after forwarding a stop signal (--stop-signal), SIGKILL the child if it is still
    /// running after SECS (default: never; never after other signals), e.g. --stop-timeout 60
    #[argh(option, arg_name = "SECS", from_str_fn(parse_seconds))]
    stop_timeout: Option<Duration>,

    /// when the child has ended, give its leftover processes SECS between SIGTERM and SIGKILL
    /// (default 5; 0 kills at once), e.g. --grace 10
    #[argh(
        option,
        arg_name = "SECS",
        default = "leftovers::DEFAULT_GRACE",
        from_str_fn(parse_seconds)
    )]
    grace: Duration,

    /// exit as soon as the child has ended, leaving its leftover processes running
    #[argh(switch)]
    leave_orphans: bool,

    /// the child gets SIG when gwshim dies (the child's PR_SET_PDEATHSIG; default none, TERM
    /// for the Hermes gateway), e.g. --pdeathsig TERM
    #[argh(option, arg_name = "SIG", from_str_fn(signals::parse_signal))]
    pdeathsig: Option<i32>,

    /// gwshim gets SIG when its own parent dies (gwshim's PR_SET_PDEATHSIG, tini's -p) and
    /// passes it on as if sent (default none), e.g. --parent-death-signal TERM
    #[argh(option, arg_name = "SIG", from_str_fn(signals::parse_signal))]
    parent_death_signal: Option<i32>,

    /// do not set HERMES_GATEWAY_EXTERNAL_SUPERVISOR=1 for the child
    #[argh(switch)]
    no_supervisor_env: bool,

    /// name of the service's pacing state (default: the systemd unit, else derived from
    /// the command), e.g. --name gateway-work
    #[argh(option, arg_name = "NAME")]
    name: Option<String>,

    /// folder for the pacing state (default a gwshim* entry of $RUNTIME_DIRECTORY or
    /// $STATE_DIRECTORY, else $XDG_RUNTIME_DIR/gwshim, else /run/gwshim, else a private folder
    /// in the temp dir)
    #[argh(option, arg_name = "DIR")]
    state_dir: Option<PathBuf>,

    /// the unit's start limit, BURST/INTERVAL (default: read from systemd, else 5/10s;
    /// 0 or none for no limit), e.g. --start-limit 5/600s
    #[argh(option, arg_name = "BURST/INTERVAL", from_str_fn(parse_start_limit))]
    start_limit: Option<(u32, Duration)>,

    /// the unit's RestartSec= (default: read from systemd, else 100ms), e.g. --restart-sec 5s
    #[argh(option, arg_name = "SPAN", from_str_fn(parse_seconds))]
    restart_sec: Option<Duration>,

    /// backoff for children that fail fast, BASE:CAP doubling from BASE (default 1s:5min;
    /// 0 for none), e.g. --backoff 2s:10min
    #[argh(option, arg_name = "BASE:CAP", from_str_fn(parse_backoff))]
    backoff: Option<(Duration, Duration)>,

    /// a child that lived this long resets the backoff (default 10s), e.g. --min-uptime 30s
    #[argh(option, arg_name = "SPAN", from_str_fn(parse_seconds))]
    min_uptime: Option<Duration>,

    /// never wait before exiting (no restart pacing)
    #[argh(switch)]
    no_pacing: bool,

    /// give the child systemd's NOTIFY_SOCKET as is, instead of relaying its notifications
    /// (READY=1, WATCHDOG=1) from gwshim, the unit's main process
    #[argh(switch)]
    no_notify_relay: bool,

    /// a pid file to clean when stale, before the child starts and after it ends, optionally
    /// with the lock file its owner holds: PATH or PATH:LOCKPATH (repeatable; default for the
    /// Hermes gateway: $HERMES_HOME/gateway.pid:$HERMES_HOME/gateway.lock)
    #[argh(option, arg_name = "PATH[:LOCK]", from_str_fn(parse_pidfile))]
    pidfile: Vec<Target>,

    /// never clean pid or lock files (not even the Hermes gateway's)
    #[argh(switch)]
    no_pidfile_cleanup: bool,

    /// log more: -v debug, -vv trace
    #[argh(switch, short = 'v')]
    verbose: u8,

    /// log less: -q warnings and errors only, -qq errors only
    #[argh(switch, short = 'q')]
    quiet: u8,

    /// print the version and exit
    #[argh(switch, short = 'V')]
    // Acted on as soon as it is seen (`parse`), before any value is parsed.
    #[allow(dead_code)]
    version: bool,

    /// the command to run and its arguments (after --)
    #[argh(positional, greedy, arg_name = "COMMAND")]
    // Only for --help: the command never reaches argh (`parse` keeps it as OsStrings).
    #[allow(dead_code)]
    command: Vec<String>,
}

/// Everything gwshim was asked to do, validated.
#[derive(Debug)]
pub struct Config {
    pub command: Vec<OsString>,
    pub policy: Policy,
    pub rewrites: Rewrites,
    pub group: bool,
    pub stop_timeout: Option<Duration>,
    /// --stop-signal
    pub stop_signals: Set,
    pub supervisor_env: bool,
    pub pidfiles: Pidfiles,
    pub log_level: LevelFilter,
    pub pacing: pacing::Options,
    pub notify_relay: bool,
    /// Time the leftovers get between SIGTERM and SIGKILL.
    pub grace: Duration,
    pub leave_orphans: bool,
    pub pdeathsig: Option<i32>,
    /// --parent-death-signal: gwshim's own parent-death signal.
    pub parent_death_signal: Option<i32>,
}

/// Which pid files gwshim looks after.
#[derive(Debug, PartialEq, Eq)]
pub enum Pidfiles {
    /// --no-pidfile-cleanup
    Off,
    /// --pidfile, given at least once
    These(Vec<Target>),
    /// The Hermes gateway's, if the command is the gateway.
    GatewayDefault,
}

/// The result of parsing: run, or print something and exit.
pub enum Parsed {
    Run(Box<Config>),
    Exit { text: String, status: i32 },
}

/// A usage error: one line naming the problem.
#[derive(Debug, PartialEq, Eq)]
pub struct Usage(pub String);

/// `env` looks up gwshim's environment (each option's GWSHIM_* twin, and GWSHIM_LOG).
pub fn parse(argv: Vec<OsString>, env: &dyn Fn(&str) -> Option<OsString>) -> Result<Parsed, Usage> {
    let rest = argv.get(1..).unwrap_or_default();
    // The command after `--` is kept as raw OsStrings: it need not be UTF-8.
    let (opts, after_dashes) = match rest.iter().position(|a| a == "--") {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let opts: Vec<&str> = opts
        .iter()
        .map(|a| {
            a.to_str().ok_or_else(|| {
                Usage(format!(
                    "option '{}' is not valid UTF-8",
                    a.to_string_lossy()
                ))
            })
        })
        .collect::<Result<_, _>>()?;
    let flags = Args::get_args_info().flags;
    let line = normalize(&opts, flags)?;
    if line.help {
        return Ok(Parsed::Exit {
            text: help(),
            status: 0,
        });
    }
    if line.given.contains(&"--version") {
        return Ok(Parsed::Exit {
            // The target (set by build.rs) tells the static musl build from a cargo build.
            text: format!(
                "gwshim {} ({})\n",
                env!("CARGO_PKG_VERSION"),
                env!("GWSHIM_TARGET")
            ),
            status: 0,
        });
    }
    let command: Vec<OsString> = match after_dashes {
        Some(cmd) => {
            if let Some(word) = line.command.first() {
                return Err(Usage(format!("unexpected '{word}' before --")));
            }
            cmd.to_vec()
        }
        None => line.command.iter().map(OsString::from).collect(),
    };
    if command.is_empty() {
        return Err(Usage(
            "no command given: gwshim [OPTIONS] -- COMMAND [ARGS...]".into(),
        ));
    }
    let twins = twin_words(flags, &line.given, env)?;
    let words: Vec<&str> = line
        .words
        .iter()
        .chain(&twins.words)
        .map(String::as_str)
        .collect();
    // How errors name an option: by the variable its value came from, if it did.
    let name = |flag: &str| {
        if twins.from_env.contains(&flag) {
            twin_of(flag)
        } else {
            flag.to_string()
        }
    };
    // `normalize` has caught every mistake but a bad value, which argh's parsers find.
    let args = Args::from_args(&["gwshim"], &words)
        .map_err(|early| value_error(&early.output, &words, name))?;
    let pidfiles = match (args.no_pidfile_cleanup, args.pidfile.is_empty()) {
        (true, false) => {
            return Err(Usage(format!(
                "{} and {} contradict each other",
                name("--pidfile"),
                name("--no-pidfile-cleanup")
            )));
        }
        (true, true) => Pidfiles::Off,
        (false, true) => Pidfiles::GatewayDefault,
        (false, false) => Pidfiles::These(args.pidfile),
    };
    let log_env = env("GWSHIM_LOG").filter(|v| !is_blank(v));
    let log_level = log_level(args.verbose, args.quiet, log_env)?;
    let pacing = pacing::Options {
        disabled: args.no_pacing,
        name: args.name,
        state_dir: args.state_dir,
        start_limit: args.start_limit,
        restart_sec: args.restart_sec,
        backoff: args.backoff,
        min_uptime: args.min_uptime,
        stop_signals: args.stop_signal,
    };
    Ok(Parsed::Run(Box::new(Config {
        command,
        policy: Policy {
            keep: args.keep_status.0,
            restart_status: args.restart_status,
            transparent: args.transparent,
        },
        rewrites: Rewrites(args.rewrite_signal),
        group: args.group,
        stop_timeout: args.stop_timeout,
        stop_signals: args.stop_signal,
        supervisor_env: !args.no_supervisor_env,
        pidfiles,
        log_level,
        pacing,
        notify_relay: !args.no_notify_relay,
        grace: args.grace,
        leave_orphans: args.leave_orphans,
        pdeathsig: args.pdeathsig,
        parent_death_signal: args.parent_death_signal,
    })))
}

/// `gwshim --help`: argh's text, whose usage line ends "[COMMAND...]" where gwshim needs its
/// `--` before the command.
fn help() -> String {
    let text = match Args::from_args(&["gwshim"], &["--help"]) {
        Err(early) => early.output,
        Ok(_) => String::new(),
    };
    format!("{}\n", text.trim_end()).replacen(" [COMMAND...]", " -- COMMAND [ARGS...]", 1)
}

/// argh's message for a value its parser refused, "Error parsing option '--grace' with value
/// 'soon': REASON", in gwshim's words: "--grace: REASON", or "GWSHIM_GRACE: REASON" when the
/// value came from there. `words` are the options argh was given.
fn value_error(output: &str, words: &[&str], name: impl Fn(&str) -> String) -> Usage {
    for pair in words.windows(2) {
        let prefix = format!(
            "Error parsing option '{}' with value '{}': ",
            pair[0], pair[1]
        );
        if let Some(reason) = output.strip_prefix(&prefix) {
            return Usage(format!("{}: {}", name(pair[0]), reason.trim_end()));
        }
    }
    let line = output.lines().next().unwrap_or("bad usage").trim();
    Usage(line.trim_end_matches('.').to_string())
}

/// The command line's options, in the one spelling argh takes (`normalize`).
#[derive(Debug, Default, PartialEq, Eq)]
struct Line<'a> {
    words: Vec<String>,
    /// The long name of every option and switch given.
    given: Vec<&'a str>,
    /// The first word that is no option, and all after it.
    command: Vec<String>,
    /// -h or --help came before any mistake.
    help: bool,
}

/// Rewrites the options (the words before `--`) into the one spelling argh takes, checking
/// each as it goes, so every mistake is reported in gwshim's words, naming the option:
/// `--opt=value` becomes `--opt value`, `-vq` `--verbose --quiet`. The first word that is
/// not an option starts the command. Pure.
fn normalize<'a>(opts: &[&str], flags: &'a [FlagInfo<'a>]) -> Result<Line<'a>, Usage> {
    let mut line = Line::default();
    let mut words = opts.iter().copied();
    while let Some(word) = words.next() {
        let (found, inline, spelled): (Vec<&FlagInfo>, Option<&str>, String) =
            if let Some(long) = word.strip_prefix("--").filter(|l| !l.is_empty()) {
                let (name, inline) = match long.split_once('=') {
                    Some((name, value)) => (name, Some(value)),
                    None => (long, None),
                };
                let flag = flags
                    .iter()
                    .find(|f| f.long.strip_prefix("--") == Some(name));
                let flag = flag.ok_or_else(|| Usage(format!("unknown option --{name}")))?;
                (vec![flag], inline, format!("--{name}"))
            } else if let Some(shorts) = word.strip_prefix('-').filter(|s| !s.is_empty()) {
                let cluster = shorts
                    .chars()
                    .map(|c| {
                        match c {
                            'h' => flags.iter().find(|f| f.long == "--help"),
                            c => flags.iter().find(|f| f.short == Some(c)),
                        }
                        .ok_or_else(|| match shorts.chars().count() {
                            1 => Usage(format!("unknown option -{c}")),
                            _ => Usage(format!("unknown option -{c} (in {word})")),
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                (cluster, None, word.to_string())
            } else {
                line.command.push(word.to_string());
                line.command.extend(words.map(str::to_string));
                break;
            };
        for flag in found {
            let name = flag.long;
            if name == "--help" {
                return Ok(Line {
                    help: true,
                    ..Line::default()
                });
            }
            match flag.kind {
                FlagInfoKind::Switch => {
                    if inline.is_some() {
                        return Err(Usage(format!("{name} takes no value: {word}")));
                    }
                    line.words.push(name.to_string());
                }
                FlagInfoKind::Option { arg_name } => {
                    let Some(value) = inline.or_else(|| words.next()) else {
                        return Err(Usage(format!("{spelled} needs a value ({arg_name})")));
                    };
                    if value.trim().is_empty() {
                        return Err(Usage(format!(
                            "{name}: empty value; leave the option out for its default"
                        )));
                    }
                    if flag.optionality != Optionality::Repeating && line.given.contains(&name) {
                        return Err(Usage(format!("{name} is given twice")));
                    }
                    line.words.extend([name.to_string(), value.to_string()]);
                }
            }
            line.given.push(name);
        }
    }
    Ok(line)
}

fn log_level(verbose: u8, quiet: u8, env: Option<OsString>) -> Result<LevelFilter, Usage> {
    use LevelFilter::*;
    Ok(match (verbose, quiet) {
        (0, 0) => match env {
            None => Info,
            Some(v) => v
                .to_str()
                .and_then(|s| s.trim().parse().ok())
                .ok_or_else(|| {
                    Usage(format!(
                        "GWSHIM_LOG: unknown level '{}' (off, error, warn, info, debug, trace)",
                        v.to_string_lossy()
                    ))
                })?,
        },
        (v, 0) if v >= 2 => Trace,
        (_, 0) => Debug,
        (0, 1) => Warn,
        (0, _) => Error,
        _ => return Err(Usage("-v and -q contradict each other".into())),
    })
}

/// The options with no GWSHIM_* twin: they steer the command line itself (GWSHIM_LOG stands
/// for -v and -q).
const NO_TWIN: [&str; 4] = ["--help", "--version", "--verbose", "--quiet"];

/// The GWSHIM_* variable that stands for option `long`, if it has one: what gwshim reads
/// (`twin_words`) and what it lists (`options`) are the same.
fn twin(long: &str) -> Option<String> {
    (!NO_TWIN.contains(&long)).then(|| twin_of(long))
}

/// The GWSHIM_* environment twin of a flag: --stop-timeout is GWSHIM_STOP_TIMEOUT.
pub fn twin_of(flag: &str) -> String {
    format!(
        "GWSHIM_{}",
        flag.trim_start_matches('-')
            .to_ascii_uppercase()
            .replace('-', "_")
    )
}

/// One option as declared, for what lists the options (and its tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    /// "--grace"
    pub long: &'static str,
    pub short: Option<char>,
    /// "SECS"; none for a switch.
    pub value: Option<&'static str>,
    /// "GWSHIM_GRACE"; none for the options in `NO_TWIN`.
    pub twin: Option<String>,
}

/// Every option gwshim takes, in the order `--help` lists them.
pub fn options() -> Vec<Declared> {
    Args::get_args_info()
        .flags
        .iter()
        .map(|f| Declared {
            long: f.long,
            // argh's help flag has no short form; `normalize` takes -h for it.
            short: f.short.or((f.long == "--help").then_some('h')),
            value: match f.kind {
                FlagInfoKind::Option { arg_name } => Some(arg_name),
                FlagInfoKind::Switch => None,
            },
            twin: twin(f.long),
        })
        .collect()
}

/// What the GWSHIM_* twins add to the command line.
struct Twins<'a> {
    words: Vec<String>,
    /// The options whose value came from their variable: their errors name it.
    from_env: Vec<&'a str>,
}

/// The words each GWSHIM_* twin stands for, for every option the command line left out (a
/// flag wins over its variable): `--opt VALUE`, once per comma-separated value for a
/// repeatable option; `--switch` for 1, true, yes or on. An empty variable counts as unset:
/// `Environment=GWSHIM_X=` must not change behaviour.
fn twin_words<'a>(
    flags: &'a [FlagInfo<'a>],
    given: &[&str],
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<Twins<'a>, Usage> {
    let mut twins = Twins {
        words: Vec::new(),
        from_env: Vec::new(),
    };
    for flag in flags {
        let Some(var) = twin(flag.long).filter(|_| !given.contains(&flag.long)) else {
            continue;
        };
        let Some(value) = env(&var).filter(|v| !is_blank(v)) else {
            continue;
        };
        let value = value.into_string().map_err(|v| {
            Usage(format!(
                "{var}: '{}' is not valid UTF-8",
                v.to_string_lossy()
            ))
        })?;
        twins.from_env.push(flag.long);
        let long = flag.long.to_string();
        match flag.kind {
            FlagInfoKind::Switch => {
                if parse_switch(&value).map_err(|e| Usage(format!("{var}: {e}")))? {
                    twins.words.push(long);
                }
            }
            FlagInfoKind::Option { .. } if flag.optionality == Optionality::Repeating => {
                for v in value.split(',').map(str::trim).filter(|v| !v.is_empty()) {
                    twins.words.extend([long.clone(), v.to_string()]);
                }
            }
            FlagInfoKind::Option { .. } => twins.words.extend([long, value]),
        }
    }
    Ok(twins)
}

/// 1/0, true/false, yes/no, on/off.
pub fn parse_switch(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err(format!("'{text}' is not 1/0, true/false, yes/no or on/off")),
    }
}

/// One exit status, 0-255.
pub fn parse_status(text: &str) -> Result<i32, String> {
    match text.trim().parse::<u8>() {
        Ok(n) => Ok(n.into()),
        Err(_) => Err(format!("'{text}' is not an exit status (0-255)")),
    }
}

/// A list of exit statuses (one option's value, not a repeatable option).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statuses(pub Vec<i32>);

/// "75,78", "75, 78", "none" or "".
pub fn parse_status_list(text: &str) -> Result<Statuses, String> {
    let text = text.trim();
    if text.is_empty() || text.eq_ignore_ascii_case("none") {
        return Ok(Statuses(Vec::new()));
    }
    text.split(',')
        .map(parse_status)
        .collect::<Result<_, _>>()
        .map(Statuses)
}

/// "HUP:USR1" or "HUP:none".
pub fn parse_rewrite(text: &str) -> Result<(i32, Option<i32>), String> {
    let (from, to) = text
        .split_once(':')
        .ok_or_else(|| format!("'{text}' is not FROM:TO (e.g. HUP:USR1)"))?;
    let from = signals::parse_signal(from)?;
    if [nix::libc::SIGKILL, nix::libc::SIGSTOP, nix::libc::SIGCHLD].contains(&from) {
        return Err(format!("{} cannot be rewritten", signals::name(from)));
    }
    let to = match to.trim() {
        t if t.eq_ignore_ascii_case("none") => None,
        t => Some(signals::parse_signal(t)?),
    };
    Ok((from, to))
}

/// "PATH" or "PATH:LOCKPATH" (split at the first colon).
pub fn parse_pidfile(text: &str) -> Result<Target, String> {
    let (pid, lock) = match text.split_once(':') {
        Some((pid, lock)) => (pid, Some(lock)),
        None => (text, None),
    };
    if pid.is_empty() || lock.is_some_and(str::is_empty) {
        return Err(format!("'{text}' is not PATH or PATH:LOCKPATH"));
    }
    Ok(Target {
        pid: pid.into(),
        lock: lock.map(Into::into),
    })
}

/// A time span: "30" (seconds), "0.5", "100ms", "10s", "5min".
pub fn parse_seconds(text: &str) -> Result<Duration, String> {
    timespan::parse_checked(text).map_err(|e| match e {
        timespan::Refused::TooLarge => format!(
            "'{text}' is too large (at most {} s, about 136 years)",
            timespan::MAX_SECS
        ),
        timespan::Refused::NotASpan => {
            format!("'{text}' is not a time span (e.g. 30, 0.5, 100ms, 10s, 5min)")
        }
    })
}

/// "TERM,INT,QUIT", or "none". SIGKILL and SIGSTOP never reach gwshim and SIGCHLD is its
/// own, so none of them can be one.
pub fn parse_stop_signals(text: &str) -> Result<Set, String> {
    if text.trim().eq_ignore_ascii_case("none") {
        return Ok(Set::default());
    }
    text.split(',')
        .map(|s| {
            let sig = signals::parse_signal(s)?;
            if [nix::libc::SIGKILL, nix::libc::SIGSTOP, nix::libc::SIGCHLD].contains(&sig) {
                Err(format!("{} cannot be a stop signal", signals::name(sig)))
            } else {
                Ok(sig)
            }
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|sigs| Set::of(&sigs))
}

/// Empty or only blanks.
fn is_blank(value: &std::ffi::OsStr) -> bool {
    value.to_str().is_some_and(|v| v.trim().is_empty())
}

/// "5/10s", "5/600", "0" or "none" (no limit).
pub fn parse_start_limit(text: &str) -> Result<(u32, Duration), String> {
    let t = text.trim();
    if t == "0" || t.eq_ignore_ascii_case("none") {
        return Ok((0, Duration::ZERO));
    }
    let (burst, interval) = t
        .split_once('/')
        .ok_or_else(|| format!("'{text}' is not BURST/INTERVAL (e.g. 5/10s)"))?;
    let burst = burst.trim().parse::<u32>().map_err(|_| {
        if burst.trim().bytes().all(|b| b.is_ascii_digit()) {
            format!("'{burst}' starts are too many (at most {})", u32::MAX)
        } else {
            format!("'{burst}' is not a number of starts")
        }
    })?;
    Ok((burst, parse_seconds(interval)?))
}

/// "1s:5min", or "0"/"none" for no backoff.
pub fn parse_backoff(text: &str) -> Result<(Duration, Duration), String> {
    let t = text.trim();
    if t == "0" || t.eq_ignore_ascii_case("none") {
        return Ok((Duration::ZERO, Duration::ZERO));
    }
    let (base, cap) = t
        .split_once(':')
        .ok_or_else(|| format!("'{text}' is not BASE:CAP (e.g. 1s:5min)"))?;
    let (base, cap) = (parse_seconds(base)?, parse_seconds(cap)?);
    if cap < base {
        return Err(format!("cap '{text}' is below the base"));
    }
    Ok((base, cap))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Config, String> {
        let mut argv = vec![OsString::from("gwshim")];
        argv.extend(args.iter().map(OsString::from));
        match parse(argv, &|_| None) {
            Ok(Parsed::Run(c)) => Ok(*c),
            Ok(Parsed::Exit { text, .. }) => Err(format!("exit: {text}")),
            Err(Usage(e)) => Err(e),
        }
    }

    #[test]
    fn parses_values() {
        assert_eq!(parse_status_list("75,78"), Ok(Statuses(vec![75, 78])));
        assert_eq!(parse_status_list(" 1, 2 "), Ok(Statuses(vec![1, 2])));
        assert_eq!(parse_status_list("none"), Ok(Statuses(vec![])));
        assert!(parse_status_list("75,").is_err());
        assert!(parse_status_list("256").is_err());
        assert!(parse_status_list("-1").is_err());
        assert!(parse_status_list("a").is_err());
        assert_eq!(parse_rewrite("HUP:USR1"), Ok((1, Some(10))));
        assert_eq!(parse_rewrite("sigterm:none"), Ok((15, None)));
        assert!(parse_rewrite("HUP").is_err());
        assert!(parse_rewrite("KILL:TERM").is_err());
        assert!(parse_rewrite("HUP:BOGUS").is_err());
        assert_eq!(parse_seconds("0.5"), Ok(Duration::from_millis(500)));
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("nan").is_err());
        assert!(parse_seconds("inf").is_err());
        let s = Duration::from_secs;
        assert_eq!(parse_start_limit("5/10s"), Ok((5, s(10))));
        assert_eq!(parse_start_limit("5/600"), Ok((5, s(600))));
        assert_eq!(parse_start_limit("none"), Ok((0, s(0))));
        assert!(parse_start_limit("5").is_err());
        assert!(parse_start_limit("x/10").is_err());
        assert!(parse_start_limit("5/soon").is_err());
        assert_eq!(parse_backoff("1s:5min"), Ok((s(1), s(300))));
        assert_eq!(parse_backoff("0"), Ok((s(0), s(0))));
        assert!(parse_backoff("5:1").is_err());
        assert!(parse_backoff("1").is_err());
        let t = |pid: &str, lock: Option<&str>| Target {
            pid: pid.into(),
            lock: lock.map(Into::into),
        };
        assert_eq!(parse_pidfile("/run/x.pid"), Ok(t("/run/x.pid", None)));
        assert_eq!(
            parse_pidfile("/h/gateway.pid:/h/gateway.lock"),
            Ok(t("/h/gateway.pid", Some("/h/gateway.lock")))
        );
        assert_eq!(parse_pidfile("a.pid:b:c"), Ok(t("a.pid", Some("b:c"))));
        for bad in ["", ":", "x:", ":y"] {
            assert!(parse_pidfile(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parses_command_lines() {
        let c = run(&["--keep-status", "3", "--", "prog", "--keep-status", ""]).unwrap();
        assert_eq!(c.command, vec!["prog", "--keep-status", ""]);
        assert_eq!(c.policy.keep, vec![3]);
        let c = run(&["prog", "a"]).unwrap();
        assert_eq!(c.command, vec!["prog", "a"]);
        assert!(run(&[]).unwrap_err().contains("no command"));
        assert!(run(&["--"]).unwrap_err().contains("no command"));
        assert!(
            run(&["--bogus", "--", "x"])
                .unwrap_err()
                .contains("--bogus")
        );
        assert!(
            run(&["--restart-status", "x", "--", "x"])
                .unwrap_err()
                .contains("--restart-status")
        );
        assert!(run(&["-v", "-q", "--", "x"]).is_err());
        assert_eq!(
            run(&["-vv", "--", "x"]).unwrap().log_level,
            LevelFilter::Trace
        );
        assert_eq!(
            run(&["--", "x"]).unwrap().pidfiles,
            Pidfiles::GatewayDefault
        );
        assert_eq!(
            run(&["--no-pidfile-cleanup", "--", "x"]).unwrap().pidfiles,
            Pidfiles::Off
        );
        let c = run(&["--pidfile", "a", "--pidfile", "b:c", "--", "x"]).unwrap();
        assert!(matches!(c.pidfiles, Pidfiles::These(ref t) if t.len() == 2));
        assert!(
            run(&["--pidfile", "a", "--no-pidfile-cleanup", "--", "x"])
                .unwrap_err()
                .contains("contradict")
        );
        assert!(
            run(&["--pidfile", ":", "--", "x"])
                .unwrap_err()
                .contains("--pidfile")
        );
    }

    #[test]
    fn parses_container_options() {
        let c = run(&["--", "x"]).unwrap();
        assert_eq!(
            (c.grace, c.leave_orphans, c.pdeathsig),
            (Duration::from_secs(5), false, None)
        );
        let c = run(&[
            "--grace",
            "0.5",
            "--leave-orphans",
            "--pdeathsig",
            "KILL",
            "--",
            "x",
        ])
        .unwrap();
        assert_eq!(
            (c.grace, c.leave_orphans, c.pdeathsig),
            (Duration::from_millis(500), true, Some(9))
        );
        assert_eq!(
            run(&["--grace", "0", "--", "x"]).unwrap().grace,
            Duration::ZERO
        );
        assert_eq!(
            run(&["--pdeathsig", "sigterm", "x"]).unwrap().pdeathsig,
            Some(15)
        );
        // gwshim's own side, apart from the child's
        let c = run(&["--parent-death-signal", "RTMIN+1", "x"]).unwrap();
        assert_eq!(
            (c.parent_death_signal, c.pdeathsig),
            (Some(nix::libc::SIGRTMIN() + 1), None)
        );
        for (args, want) in [
            (&["--grace", "-1", "--", "x"][..], "--grace"),
            (&["--grace", "soon", "--", "x"][..], "--grace"),
            (&["--grace", "--", "x"][..], "--grace"),
            (&["--pdeathsig", "BOGUS", "--", "x"][..], "--pdeathsig"),
            (&["--pdeathsig", "0", "--", "x"][..], "--pdeathsig"),
            (
                &["--parent-death-signal", "BOGUS", "--", "x"][..],
                "--parent-death-signal",
            ),
        ] {
            assert!(run(args).unwrap_err().contains(want), "{args:?}");
        }
    }

    fn run_env(args: &[&str], vars: &[(&str, &str)]) -> Result<Config, String> {
        let mut argv = vec![OsString::from("gwshim")];
        argv.extend(args.iter().map(OsString::from));
        let env = |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        };
        match parse(argv, &env) {
            Ok(Parsed::Run(c)) => Ok(*c),
            Ok(Parsed::Exit { text, .. }) => Err(format!("exit: {text}")),
            Err(Usage(e)) => Err(e),
        }
    }

    #[test]
    fn every_option_has_an_environment_twin() {
        // (flag and value on the command line, the same through the environment)
        let table: &[(&[&str], &str, &str)] = &[
            (&["--keep-status", "3,4"], "GWSHIM_KEEP_STATUS", "3,4"),
            (&["--restart-status", "9"], "GWSHIM_RESTART_STATUS", "9"),
            (&["--transparent"], "GWSHIM_TRANSPARENT", "1"),
            (
                &[
                    "--rewrite-signal",
                    "HUP:USR1",
                    "--rewrite-signal",
                    "TERM:none",
                ],
                "GWSHIM_REWRITE_SIGNAL",
                "HUP:USR1,TERM:none",
            ),
            (&["--group"], "GWSHIM_GROUP", "yes"),
            (
                &["--stop-signal", "TERM,HUP"],
                "GWSHIM_STOP_SIGNAL",
                "TERM,HUP",
            ),
            (&["--stop-timeout", "7"], "GWSHIM_STOP_TIMEOUT", "7"),
            (&["--grace", "10"], "GWSHIM_GRACE", "10"),
            (&["--leave-orphans"], "GWSHIM_LEAVE_ORPHANS", "true"),
            (&["--pdeathsig", "TERM"], "GWSHIM_PDEATHSIG", "TERM"),
            (
                &["--parent-death-signal", "USR2"],
                "GWSHIM_PARENT_DEATH_SIGNAL",
                "USR2",
            ),
            (&["--no-supervisor-env"], "GWSHIM_NO_SUPERVISOR_ENV", "on"),
            (&["--name", "gw"], "GWSHIM_NAME", "gw"),
            (&["--state-dir", "/x"], "GWSHIM_STATE_DIR", "/x"),
            (&["--start-limit", "5/10s"], "GWSHIM_START_LIMIT", "5/10s"),
            (&["--restart-sec", "1s"], "GWSHIM_RESTART_SEC", "1s"),
            (&["--backoff", "1s:2s"], "GWSHIM_BACKOFF", "1s:2s"),
            (&["--min-uptime", "3s"], "GWSHIM_MIN_UPTIME", "3s"),
            (&["--no-pacing"], "GWSHIM_NO_PACING", "1"),
            (&["--no-notify-relay"], "GWSHIM_NO_NOTIFY_RELAY", "1"),
            (
                &["--pidfile", "/a:/b", "--pidfile", "/c"],
                "GWSHIM_PIDFILE",
                "/a:/b,/c",
            ),
            (&["--no-pidfile-cleanup"], "GWSHIM_NO_PIDFILE_CLEANUP", "1"),
            (&["-v"], "GWSHIM_LOG", "debug"),
        ];
        // Every twin the code declares has its row: a new option needs one.
        for twin in options().into_iter().filter_map(|o| o.twin) {
            assert!(table.iter().any(|r| r.1 == twin), "{twin} has no row here");
        }
        let default = format!("{:?}", run(&["--", "x"]).unwrap());
        for &(flags, var, value) in table {
            let by_flag = format!("{:?}", run(&[flags, &["--", "x"]].concat()).unwrap());
            let by_env = format!("{:?}", run_env(&["--", "x"], &[(var, value)]).unwrap());
            assert_eq!(by_flag, by_env, "{var}");
            assert_ne!(by_env, default, "{var} changes something");
        }
        // A flag wins over its variable.
        let c = run_env(
            &["--restart-status", "9", "--", "x"],
            &[("GWSHIM_RESTART_STATUS", "8")],
        )
        .unwrap();
        assert_eq!(c.policy.restart_status, 9);
        // A bad value is a usage error naming the variable.
        for (var, value) in [
            ("GWSHIM_GRACE", "soon"),
            ("GWSHIM_KEEP_STATUS", "75,x"),
            ("GWSHIM_TRANSPARENT", "maybe"),
            ("GWSHIM_REWRITE_SIGNAL", "HUP"),
            ("GWSHIM_LOG", "loud"),
        ] {
            let err = run_env(&["--", "x"], &[(var, value)]).unwrap_err();
            assert!(err.starts_with(var), "{var}: {err}");
        }
        assert_eq!(twin_of("--stop-timeout"), "GWSHIM_STOP_TIMEOUT");
        // An empty variable counts as unset, whatever kind of option it twins.
        for var in [
            "GWSHIM_KEEP_STATUS",
            "GWSHIM_TRANSPARENT",
            "GWSHIM_REWRITE_SIGNAL",
            "GWSHIM_STOP_SIGNAL",
            "GWSHIM_GRACE",
            "GWSHIM_PIDFILE",
            "GWSHIM_NAME",
            "GWSHIM_LOG",
        ] {
            for empty in ["", " "] {
                let c = run_env(&["--", "x"], &[(var, empty)]);
                assert_eq!(format!("{:?}", c.unwrap()), default, "{var}={empty:?}");
            }
        }
    }

    #[test]
    fn the_defaults_help_states_are_the_declared_ones() {
        let default = format!("{:?}", run(&["x"]).unwrap());
        // The options whose default is declared with them (the others' depend on systemd,
        // the command or the environment).
        for (flag, value) in [
            ("--keep-status", "75,78"),
            ("--restart-status", "75"),
            ("--stop-signal", "TERM,INT,QUIT"),
            ("--grace", "5"),
        ] {
            let info = Args::get_args_info();
            let help = info.flags.iter().find(|f| f.long == flag).unwrap();
            assert!(
                help.description.contains(&format!("(default {value}")),
                "{flag}: {}",
                help.description
            );
            let given = format!("{:?}", run(&[flag, value, "x"]).unwrap());
            assert_eq!(given, default, "{flag} {value}");
        }
    }

    #[test]
    fn spellings_of_the_command_line() {
        let level = |args: &[&str]| run(args).map(|c| c.log_level);
        // --opt=value, for every option that takes one
        let c = run(&[
            "--grace=10",
            "--keep-status=3",
            "--stop-signal=HUP",
            "--",
            "x",
        ])
        .unwrap();
        assert_eq!(c.grace, Duration::from_secs(10));
        assert_eq!(c.policy.keep, vec![3]);
        assert_eq!(c.stop_signals, Set::of(&[1]));
        let c = run(&[
            "--rewrite-signal=HUP:USR1",
            "--rewrite-signal",
            "TERM:none",
            "x",
        ])
        .unwrap();
        assert_eq!(c.rewrites, Rewrites(vec![(1, Some(10)), (15, None)]));
        assert_eq!(
            run(&["--name=a=b", "x"]).unwrap().pacing.name.as_deref(),
            Some("a=b")
        );
        // bundled short switches are repeated ones
        assert_eq!(level(&["-vv", "x"]), Ok(LevelFilter::Trace));
        assert_eq!(level(&["-v", "-v", "x"]), Ok(LevelFilter::Trace));
        assert_eq!(level(&["-qq", "x"]), Ok(LevelFilter::Error));
        assert_eq!(level(&["-q", "x"]), Ok(LevelFilter::Warn));
        // -h and --help, wherever they are among the options
        for args in [&["-h"][..], &["--help"], &["-v", "-h"], &["-vh", "x"]] {
            assert!(
                run(args).unwrap_err().starts_with("exit: Usage: gwshim"),
                "{args:?}"
            );
        }
        // the usage line shows the `--` that the command needs
        let help = run(&["--help"]).unwrap_err();
        let usage = help.lines().next().unwrap_or_default();
        assert!(usage.ends_with("] -- COMMAND [ARGS...]"), "{usage}");
        // after the first word that is no option, everything is the command
        let c = run(&["-v", "prog", "--grace=", "-h"]).unwrap();
        assert_eq!(c.command, vec!["prog", "--grace=", "-h"]);
        // each mistake named, in one line
        for (args, want) in [
            (&["--grace=", "x"][..], "--grace: empty value"),
            (&["--grace", "", "x"], "--grace: empty value"),
            (&["--keep-status", "", "x"], "--keep-status: empty value"),
            (&["--keep-status", " ", "x"], "--keep-status: empty value"),
            (&["--rewrite-signal=", "x"], "--rewrite-signal: empty value"),
            (&["--group=1", "x"], "--group takes no value"),
            (&["--bogus", "x"], "unknown option --bogus"),
            (&["--bogus=1", "x"], "unknown option --bogus"),
            (&["-x", "x"], "unknown option -x"),
            (&["-vx", "x"], "unknown option -x (in -vx)"),
            (&["--grace"], "--grace needs a value (SECS)"),
            (
                &["--grace", "1", "--grace=2", "x"],
                "--grace is given twice",
            ),
            (&["-v", "-q", "x"], "-v and -q contradict each other"),
            (&["--stop-timeout", "99999999999999", "x"], "is too large"),
            (
                &["--stop-signal", "KILL", "x"],
                "SIGKILL cannot be a stop signal",
            ),
            (
                &["--stop-signal", "HUP,", "x"],
                "--stop-signal: unknown signal ''",
            ),
            (&["--start-limit", "99999999999/10s", "x"], "too many"),
        ] {
            let err = run(args).unwrap_err();
            assert!(err.contains(want), "{args:?}: {err}");
            assert!(!err.contains('\n'), "{args:?}: {err}");
        }
    }

    #[test]
    fn stop_signals() {
        assert_eq!(run(&["x"]).unwrap().stop_signals, Set::of(&[15, 2, 3]));
        let c = run(&["--stop-signal", "term, SIGHUP,usr2", "x"]).unwrap();
        assert_eq!(c.stop_signals, Set::of(&[15, 1, 12]));
        assert_eq!(
            run(&["--stop-signal", "none", "x"]).unwrap().stop_signals,
            Set::default()
        );
    }
}
