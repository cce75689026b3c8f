//! Recognising the Hermes gateway command and finding its HERMES_HOME as the child will see
//! it, so its gateway.pid and gateway.lock are looked after with no --pidfile.
//!
//! Mirrors hermes-agent 0.19.0: `hermes_cli.main._apply_profile_override`,
//! `hermes_constants.get_default_hermes_root` and `hermes_cli.profiles.get_profile_dir`.

use crate::pidfile::Target;
use log::{debug, warn};
use std::ffi::OsString;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// What gwshim needs from a gateway command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gateway {
    /// `-p NAME`, `--profile NAME` or `--profile=NAME`, normalised (lower case).
    pub profile: Option<String>,
}

/// Options of hermes's top-level parser that take a value, skipped when looking for -p.
const VALUE_FLAGS: &[&str] = &[
    "-z",
    "--oneshot",
    "-m",
    "--model",
    "--provider",
    "-t",
    "--toolsets",
    "-r",
    "--resume",
    "-s",
    "--skills",
    "--usage-file",
];

/// `hermes ... gateway run` or `python* -m hermes_cli.main ... gateway run` (a bare trailing
/// `gateway` means `run` too), with any profile selector.
pub fn recognise(command: &[OsString]) -> Option<Gateway> {
    let words: Vec<String> = command
        .iter()
        .map(|w| w.to_string_lossy().into_owned())
        .collect();
    let start = (0..words.len()).find_map(|i| {
        let base = basename(&words[i]);
        if base == "hermes" {
            Some(i + 1)
        } else if base.starts_with("python")
            && words.get(i + 1).is_some_and(|w| w == "-m")
            && words.get(i + 2).is_some_and(|w| w == "hermes_cli.main")
        {
            Some(i + 3)
        } else {
            None
        }
    })?;
    let args = words.get(start..)?;
    let (profile, rest) = split_profile(args);
    let at = rest.iter().position(|w| *w == "gateway")?;
    match rest.get(at + 1) {
        None => {}
        Some(w) if *w == "run" => {}
        Some(_) => return None,
    }
    Some(Gateway { profile })
}

/// The profile selector (as hermes reads it: the first one, before any `--`) and the words
/// left once every selector is dropped.
fn split_profile(args: &[String]) -> (Option<String>, Vec<&str>) {
    let mut profile = None;
    let mut rest = Vec::new();
    let mut i = 0;
    let mut stop = false;
    while i < args.len() {
        let arg = args[i].as_str();
        stop |= arg == "--";
        if !stop && (arg == "-p" || arg == "--profile") && i + 1 < args.len() {
            // hermes ignores a two-word value that cannot be a profile (pytest's -p no:x).
            if profile.is_none() && valid_profile(&args[i + 1]) {
                profile = Some(args[i + 1].clone());
            }
            i += 2;
            continue;
        }
        if let Some(name) = arg.strip_prefix("--profile=").filter(|_| !stop) {
            profile.get_or_insert_with(|| name.trim().to_lowercase());
            i += 1;
            continue;
        }
        rest.push(arg);
        if !stop && VALUE_FLAGS.contains(&arg) && i + 1 < args.len() {
            rest.push(args[i + 1].as_str());
            i += 2;
            continue;
        }
        i += 1;
    }
    (profile, rest)
}

fn valid_profile(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

fn basename(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

/// The environment that decides HERMES_HOME.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Env {
    /// HERMES_HOME, if set and not blank.
    pub hermes_home: Option<PathBuf>,
    /// The user's home directory.
    pub home: PathBuf,
    /// HERMES_S6_SUPERVISED_CHILD is set: the sticky active profile is not followed.
    pub s6_child: bool,
}

impl Env {
    fn native(&self) -> PathBuf {
        self.home.join(".hermes")
    }

    /// The root that holds profiles/ and active_profile.
    pub fn root(&self) -> PathBuf {
        let native = self.native();
        // hermes compares resolved paths; a lexical comparison differs only through symlinks.
        match &self.hermes_home {
            None => native,
            Some(h) if h.starts_with(&native) => native,
            Some(h) => match (h.parent(), h.parent().and_then(Path::parent)) {
                (Some(p), Some(root)) if p.file_name().is_some_and(|n| n == "profiles") => {
                    root.into()
                }
                _ => h.clone(),
            },
        }
    }

    /// Whether the child will read the sticky `active_profile` file (with no -p).
    pub fn reads_active_profile(&self, gateway: &Gateway) -> bool {
        gateway.profile.is_none() && !self.s6_child && !self.names_a_profile()
    }

    fn names_a_profile(&self) -> bool {
        self.hermes_home
            .as_deref()
            .and_then(Path::parent)
            .and_then(Path::file_name)
            .is_some_and(|n| n == "profiles")
    }
}

/// HERMES_HOME as the gateway will use it. `active_profile` is the content of the root's
/// active_profile file, read only when `reads_active_profile` says so.
pub fn home(gateway: &Gateway, env: &Env, active_profile: Option<&str>) -> PathBuf {
    let sticky = active_profile
        .map(str::trim)
        .filter(|n| !n.is_empty() && *n != "default" && env.reads_active_profile(gateway))
        .map(str::to_lowercase);
    match gateway.profile.clone().or(sticky) {
        Some(name) if name == "default" => env.root(),
        Some(name) => env.root().join("profiles").join(name),
        None => env.hermes_home.clone().unwrap_or_else(|| env.native()),
    }
}

pub fn target(home: &Path) -> Target {
    Target {
        pid: home.join("gateway.pid"),
        lock: Some(home.join("gateway.lock")),
    }
}

/// The gateway's pid and lock files, if the command is the gateway. Reads gwshim's own
/// environment, which the child inherits.
pub fn gateway_target(command: &[OsString]) -> Option<Target> {
    let gateway = recognise(command)?;
    let user_home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            let user = nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()?;
            Some(user.dir)
        });
    let Some(user_home) = user_home else {
        warn!(
            "the command is the Hermes gateway but there is no home directory; not looking after its pid file"
        );
        return None;
    };
    let env = Env {
        hermes_home: std::env::var_os("HERMES_HOME")
            .map(|h| OsString::from(h.to_string_lossy().trim()))
            .filter(|h| !h.is_empty())
            .map(PathBuf::from),
        home: user_home,
        s6_child: std::env::var_os("HERMES_S6_SUPERVISED_CHILD").is_some_and(|v| !v.is_empty()),
    };
    let active = if env.reads_active_profile(&gateway) {
        read_small(&env.root().join("active_profile"))
    } else {
        None
    };
    let home = home(&gateway, &env, active.as_deref());
    debug!(
        "the command is the Hermes gateway; its HERMES_HOME is {}",
        home.display()
    );
    Some(target(&home))
}

/// A short regular text file, or None (absent, unreadable, not UTF-8, not a regular file).
/// O_NONBLOCK: a FIFO put there must not hold up the start.
fn read_small(path: &Path) -> Option<String> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    file.take(256).read_to_string(&mut text).ok()?;
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    #[test]
    fn recognises_the_gateway() {
        let gw = |p: Option<&str>| {
            Some(Gateway {
                profile: p.map(String::from),
            })
        };
        let table: &[(&[&str], Option<Gateway>)] = &[
            (&["hermes", "gateway", "run"], gw(None)),
            (&["/v/bin/hermes", "gateway", "run", "--replace"], gw(None)),
            (&["hermes", "gateway"], gw(None)),
            (
                &[
                    "/usr/bin/python3",
                    "-m",
                    "hermes_cli.main",
                    "gateway",
                    "run",
                ],
                gw(None),
            ),
            (
                &[
                    "python",
                    "-m",
                    "hermes_cli.main",
                    "-p",
                    "coder",
                    "gateway",
                    "run",
                ],
                gw(Some("coder")),
            ),
            (
                &["hermes", "-p", "coder", "gateway", "run"],
                gw(Some("coder")),
            ),
            (
                &["hermes", "--profile", "coder", "gateway", "run"],
                gw(Some("coder")),
            ),
            (
                &["hermes", "--profile=Coder", "gateway", "run"],
                gw(Some("coder")),
            ),
            (&["hermes", "gateway", "run", "-p", "ops"], gw(Some("ops"))),
            // a profile literally named gateway
            (
                &["hermes", "-p", "gateway", "gateway", "run"],
                gw(Some("gateway")),
            ),
            (&["env", "X=1", "/v/bin/hermes", "gateway", "run"], gw(None)),
            // hermes ignores a -p value that cannot be a profile name
            (&["hermes", "-p", "No:X", "gateway", "run"], gw(None)),
            (&["hermes", "gateway", "status"], None),
            (&["hermes", "chat"], None),
            (&["hermes", "run", "gateway", "x"], None),
            (&["hermes-gateway-helper", "gateway", "run"], None),
            (&["python3", "-m", "tui_gateway", "gateway", "run"], None),
            (&["sleep", "gateway", "run"], None),
            (&[], None),
        ];
        for (words, want) in table {
            assert_eq!(&recognise(&cmd(words)), want, "{words:?}");
        }
    }

    #[test]
    fn finds_hermes_home() {
        let env = |hh: Option<&str>, s6: bool| Env {
            hermes_home: hh.map(PathBuf::from),
            home: PathBuf::from("/home/u"),
            s6_child: s6,
        };
        let gw = |p: Option<&str>| Gateway {
            profile: p.map(String::from),
        };
        let table: &[(Gateway, Env, Option<&str>, &str)] = &[
            (gw(None), env(None, false), None, "/home/u/.hermes"),
            (gw(None), env(Some("/h"), false), None, "/h"),
            (
                gw(Some("coder")),
                env(None, false),
                None,
                "/home/u/.hermes/profiles/coder",
            ),
            (
                gw(Some("default")),
                env(None, false),
                None,
                "/home/u/.hermes",
            ),
            // HERMES_HOME under ~/.hermes: profiles hang off ~/.hermes
            (
                gw(Some("coder")),
                env(Some("/home/u/.hermes/profiles/ops"), false),
                None,
                "/home/u/.hermes/profiles/coder",
            ),
            // a custom root (Docker): profiles hang off it
            (
                gw(Some("coder")),
                env(Some("/opt/data"), false),
                None,
                "/opt/data/profiles/coder",
            ),
            (
                gw(Some("coder")),
                env(Some("/opt/data/profiles/ops"), false),
                None,
                "/opt/data/profiles/coder",
            ),
            // the sticky active profile, when no -p
            (
                gw(None),
                env(None, false),
                Some("ops\n"),
                "/home/u/.hermes/profiles/ops",
            ),
            (
                gw(None),
                env(Some("/opt/data"), false),
                Some("ops"),
                "/opt/data/profiles/ops",
            ),
            (
                gw(None),
                env(None, false),
                Some("default"),
                "/home/u/.hermes",
            ),
            (gw(None), env(None, false), Some(" "), "/home/u/.hermes"),
            (
                gw(Some("coder")),
                env(None, false),
                Some("ops"),
                "/home/u/.hermes/profiles/coder",
            ),
            // ... not when HERMES_HOME already names a profile, nor for an s6 child
            (
                gw(None),
                env(Some("/opt/data/profiles/x"), false),
                Some("ops"),
                "/opt/data/profiles/x",
            ),
            (gw(None), env(None, true), Some("ops"), "/home/u/.hermes"),
        ];
        for (g, e, active, want) in table {
            assert_eq!(
                home(g, e, *active),
                PathBuf::from(want),
                "{g:?} {e:?} {active:?}"
            );
        }
    }
}
