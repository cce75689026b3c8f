//! The command line: `gwshim [OPTIONS] -- COMMAND [ARGS...]`.

use crate::exit::Policy;
use crate::signals::{self, Rewrites};
use argh::FromArgs;
use log::LevelFilter;
use std::ffi::OsString;
use std::time::Duration;

#[derive(FromArgs, Debug, Default)]
#[argh(
    description = "Run COMMAND as a supervised child: forward signals, reap zombies and turn its \
failures into a status that makes systemd restart it.",
    example = "gwshim -- hermes gateway run\n\
gwshim --keep-status 75,78 --restart-status 75 -- ./server --port 8080\n\
gwshim --rewrite-signal HUP:USR1 --stop-timeout 30 -- hermes gateway run\n\
gwshim --transparent -- make test",
    note = "Options: --keep-status 75,78 (0 always passes); --restart-status 75; --rewrite-signal \
TERM:INT or HUP:none (repeatable; names like HUP, SIGHUP, 1, RTMIN+2); --stop-timeout 30 (seconds, \
decimals allowed; never after SIGUSR1). The log level is -v (debug), -vv (trace), -q (warnings), \
-qq (errors), or GWSHIM_LOG=off|error|warn|info|debug|trace; a flag wins.",
    error_code(2, "usage error: a bad option or value, or no COMMAND."),
    error_code(75, "the child failed or was killed unasked (see --restart-status)."),
    error_code(78, "the child exited 78, a fatal configuration error (kept as is)."),
    error_code(126, "COMMAND was found but could not be executed."),
    error_code(127, "COMMAND was not found."),
    error_code(1, "gwshim itself could not set up (signals), before COMMAND started.")
)]
struct Args {
    /// child exit statuses passed through unchanged, comma-separated (default 75,78; 0 always
    /// passes; "none" for none), e.g. --keep-status 75,78,3
    #[argh(option, arg_name = "LIST")]
    keep_status: Option<String>,

    /// what every other non-zero exit, and a death by a signal nobody asked for, becomes
    /// (default 75, EX_TEMPFAIL), e.g. --restart-status 1
    #[argh(option, arg_name = "N")]
    restart_status: Option<String>,

    /// rewrite nothing: exit with the child's status, or 128+N when it died of signal N
    #[argh(switch)]
    transparent: bool,

    /// rewrite a signal before forwarding it, FROM:TO; TO "none" drops it; repeatable,
    /// e.g. --rewrite-signal HUP:USR1
    #[argh(option, arg_name = "FROM:TO")]
    rewrite_signal: Vec<String>,

    /// put the child in its own process group and signal the whole group
    #[argh(switch)]
    group: bool,

    /// after forwarding a stop signal (TERM, INT, QUIT, HUP), SIGKILL the child if it is still
    /// running after SECS (default: never; never after SIGUSR1), e.g. --stop-timeout 60
    #[argh(option, arg_name = "SECS")]
    stop_timeout: Option<String>,

    /// do not set HERMES_GATEWAY_EXTERNAL_SUPERVISOR=1 for the child
    #[argh(switch)]
    no_supervisor_env: bool,

    /// log more: -v debug, -vv trace
    #[argh(switch, short = 'v')]
    verbose: u8,

    /// log less: -q warnings and errors only, -qq errors only
    #[argh(switch, short = 'q')]
    quiet: u8,

    /// print the version and exit
    #[argh(switch, short = 'V')]
    version: bool,

    /// the command to run and its arguments (after --)
    #[argh(positional, greedy, arg_name = "COMMAND")]
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
    pub supervisor_env: bool,
    pub log_level: LevelFilter,
}

/// The result of parsing: run, or print something and exit.
pub enum Parsed {
    Run(Config),
    Exit { text: String, status: i32 },
}

/// A usage error: one line naming the problem.
#[derive(Debug, PartialEq, Eq)]
pub struct Usage(pub String);

pub fn parse(argv: Vec<OsString>, log_env: Option<OsString>) -> Result<Parsed, Usage> {
    let name = "gwshim";
    let rest = argv.get(1..).unwrap_or_default();
    // The command after `--` is kept as raw OsStrings: it need not be UTF-8.
    let (opts, command) = match rest.iter().position(|a| a == "--") {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let opts: Vec<&str> = opts
        .iter()
        .map(|a| {
            a.to_str()
                .ok_or_else(|| Usage(format!("option {a:?} is not valid UTF-8")))
        })
        .collect::<Result<_, _>>()?;
    let opts = split_short_flags(&opts);
    let args = match Args::from_args(&[name], &opts) {
        Ok(args) => args,
        Err(early) if early.status.is_ok() => {
            return Ok(Parsed::Exit {
                text: early.output,
                status: 0,
            });
        }
        Err(early) => {
            return Err(Usage(
                early
                    .output
                    .lines()
                    .next()
                    .unwrap_or("bad usage")
                    .trim()
                    .to_string(),
            ));
        }
    };
    if args.version {
        return Ok(Parsed::Exit {
            text: format!("gwshim {}\n", env!("CARGO_PKG_VERSION")),
            status: 0,
        });
    }
    let command: Vec<OsString> = match command {
        Some(cmd) => {
            if !args.command.is_empty() {
                return Err(Usage(format!("unexpected '{}' before --", args.command[0])));
            }
            cmd.to_vec()
        }
        None => args.command.iter().map(OsString::from).collect(),
    };
    if command.is_empty() {
        return Err(Usage(
            "no command given: gwshim [OPTIONS] -- COMMAND [ARGS...]".into(),
        ));
    }
    let mut policy = Policy {
        transparent: args.transparent,
        ..Policy::default()
    };
    if let Some(list) = &args.keep_status {
        policy.keep = parse_status_list(list).map_err(|e| Usage(format!("--keep-status: {e}")))?;
    }
    if let Some(n) = &args.restart_status {
        policy.restart_status =
            parse_status(n).map_err(|e| Usage(format!("--restart-status: {e}")))?;
    }
    let rewrites = args
        .rewrite_signal
        .iter()
        .map(|r| parse_rewrite(r).map_err(|e| Usage(format!("--rewrite-signal: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let stop_timeout = args
        .stop_timeout
        .as_deref()
        .map(parse_seconds)
        .transpose()
        .map_err(|e| Usage(format!("--stop-timeout: {e}")))?;
    let log_level = log_level(args.verbose, args.quiet, log_env)?;
    Ok(Parsed::Run(Config {
        command,
        policy,
        rewrites: Rewrites(rewrites),
        group: args.group,
        stop_timeout,
        supervisor_env: !args.no_supervisor_env,
        log_level,
    }))
}

/// argh knows only single short flags: "-vv" becomes "-v", "-v" (and "-qq" "-q", "-q") in
/// the options before the command; option values and the command are left alone.
fn split_short_flags<'a>(opts: &[&'a str]) -> Vec<&'a str> {
    const VALUED: [&str; 4] = [
        "--keep-status",
        "--restart-status",
        "--rewrite-signal",
        "--stop-timeout",
    ];
    let mut out = Vec::with_capacity(opts.len());
    let mut in_options = true;
    for (i, &arg) in opts.iter().enumerate() {
        let is_value = i > 0 && VALUED.contains(&opts[i - 1]);
        if !is_value && !arg.starts_with('-') {
            in_options = false;
        }
        let repeated = arg.strip_prefix('-').filter(|f| {
            f.len() > 1 && (f.bytes().all(|c| c == b'v') || f.bytes().all(|c| c == b'q'))
        });
        match repeated {
            Some(flags) if in_options && !is_value => {
                let one = if flags.starts_with('v') { "-v" } else { "-q" };
                out.extend(std::iter::repeat_n(one, flags.len()));
            }
            _ => out.push(arg),
        }
    }
    out
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
                        "GWSHIM_LOG: unknown level {v:?} (off, error, warn, info, debug, trace)"
                    ))
                })?,
        },
        (v, 0) if v >= 2 => Trace,
        (_, 0) => Debug,
        (0, 1) => Warn,
        (0, _) => Error,
        _ => return Err(Usage("-v and -q together".into())),
    })
}

/// One exit status, 0-255.
pub fn parse_status(text: &str) -> Result<i32, String> {
    match text.trim().parse::<u8>() {
        Ok(n) => Ok(n.into()),
        Err(_) => Err(format!("'{text}' is not an exit status (0-255)")),
    }
}

/// "75,78", "75, 78", "none" or "".
pub fn parse_status_list(text: &str) -> Result<Vec<i32>, String> {
    let text = text.trim();
    if text.is_empty() || text.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    text.split(',').map(parse_status).collect()
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

/// Non-negative seconds, decimals allowed: "30", "0.5".
pub fn parse_seconds(text: &str) -> Result<Duration, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("'{text}' is not a number of seconds"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Config, String> {
        let mut argv = vec![OsString::from("gwshim")];
        argv.extend(args.iter().map(OsString::from));
        match parse(argv, None) {
            Ok(Parsed::Run(c)) => Ok(c),
            Ok(Parsed::Exit { text, .. }) => Err(format!("exit: {text}")),
            Err(Usage(e)) => Err(e),
        }
    }

    #[test]
    fn parses_values() {
        assert_eq!(parse_status_list("75,78"), Ok(vec![75, 78]));
        assert_eq!(parse_status_list(" 1, 2 "), Ok(vec![1, 2]));
        assert_eq!(parse_status_list("none"), Ok(vec![]));
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
    }
}
