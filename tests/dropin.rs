//! contrib/hermes/install-dropin.sh where no systemd manager answers (an image build, a chroot,
//! root with no user session): it reads the unit from the standard unit folders or from
//! `--unit-file`, keeps gwshim's options and path on a re-run, refuses a later drop-in that sets
//! ExecStart=, writes comments that match the options, tags the journal as the unit did, says in
//! one line what is wrong, and its `--help` lists every option it takes under the name it was
//! called by. The script under a real manager: tests/hermes.rs; on a booted Debian:
//! tests/release.rs.
//!
//! Each test has its own HOME and an empty XDG_RUNTIME_DIR, so `systemctl --user` finds no
//! manager whatever runs on the machine.

mod common;

use common::TempDir;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/contrib/hermes/install-dropin.sh"
);
const GWSHIM: &str = env!("CARGO_BIN_EXE_gwshim");
const UNIT: &str = "hermes-gateway.service";
const COMMAND: &str = "/opt/hermes/venv/bin/python -m hermes_cli.main gateway run";

/// A home with no systemd manager: `systemctl --user` cannot connect.
struct Home {
    dir: TempDir,
}

impl Home {
    fn new(tag: &str) -> Home {
        let dir = TempDir::new(&format!("dropin-{tag}"));
        fs::create_dir_all(dir.join("rt")).unwrap();
        Home { dir }
    }

    fn user_units(&self) -> PathBuf {
        self.dir.join("home/.config/systemd/user")
    }

    /// Writes a unit (as `hermes gateway install` does) into ~/.config/systemd/user.
    fn install_unit(&self, name: &str, exec_start: &str) {
        fs::create_dir_all(self.user_units()).unwrap();
        fs::write(self.user_units().join(name), unit_text(exec_start)).unwrap();
    }

    fn dropin(&self) -> PathBuf {
        self.user_units().join(format!("{UNIT}.d/gwshim.conf"))
    }

    fn run(&self, args: &[&str]) -> Output {
        let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
        self.run_with(Command::new("bash").arg(SCRIPT), args, &path)
    }

    /// Runs `cmd ARGS` (the script, however called) with this home and PATH `path`.
    fn run_with(&self, cmd: &mut Command, args: &[&str], path: &std::ffi::OsStr) -> Output {
        cmd.args(args)
            .env_clear()
            .env("PATH", path)
            .env("HOME", self.dir.join("home"))
            .env("XDG_RUNTIME_DIR", self.dir.join("rt"))
            .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
            .env("LANG", "C.UTF-8")
            .output()
            .expect("bash install-dropin.sh")
    }

    /// Runs the script and asserts it succeeded; returns stdout and stderr.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let text = text(&out);
        assert!(
            out.status.success(),
            "install-dropin.sh {args:?}: {}\n{text}",
            out.status
        );
        text
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn unit_text(exec_start: &str) -> String {
    format!(
        "[Unit]\nDescription=Hermes Agent Gateway\n\n[Service]\nType=simple\nExecStart={exec_start}\n\
         Restart=always\nKillMode=mixed\nTimeoutStopSec=60\n\n[Install]\nWantedBy=default.target\n"
    )
}

/// The last `ExecStart=` line that is not empty, without the `/bin/sh -c '...'` in front that
/// runs the command alone while gwshim is missing: `GWSHIM [OPTIONS] -- COMMAND`.
fn exec_start(dropin_text: &str) -> &str {
    let line = dropin_text
        .lines()
        .filter_map(|l| l.strip_prefix("ExecStart="))
        .rfind(|l| !l.is_empty())
        .unwrap_or("");
    line.strip_prefix("/bin/sh -c '")
        .and_then(|rest| rest.split_once("' "))
        .map_or(line, |(_, after)| after)
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn dry_run_without_a_manager_reads_the_unit_and_its_dropins_from_the_unit_folders() {
    let h = Home::new("dry");
    h.install_unit(UNIT, "/old/python -m hermes_cli.main gateway run");
    // A drop-in of the user's own that replaces the command: the one systemd would run.
    let own = h.user_units().join(format!("{UNIT}.d"));
    fs::create_dir_all(&own).unwrap();
    fs::write(
        own.join("10-venv.conf"),
        format!("[Service]\nExecStart=\nExecStart={COMMAND}\n"),
    )
    .unwrap();
    let before = files_under(&h.dir);
    let out = h.ok(&["--gwshim", GWSHIM, "--dry-run"]);
    assert!(!out.contains("bus"), "a message about the bus: {out}");
    assert!(
        out.contains(&format!("# {}", h.dropin().display())),
        "names the file it would write: {out}"
    );
    assert_eq!(exec_start(&out), format!("{GWSHIM} -- {COMMAND}"), "{out}");
    assert_eq!(files_under(&h.dir), before, "--dry-run changed files");
}

#[test]
fn a_missing_unit_without_a_manager_is_a_clear_error() {
    let h = Home::new("missing");
    let out = h.run(&["--gwshim", GWSHIM, "--dry-run"]);
    let text = text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!("{UNIT} is not installed"))
            && text.contains("hermes gateway install")
            && !text.contains("bus"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1, "one line: {text}");
}

#[test]
fn unit_file_names_the_unit_and_gives_its_command() {
    let h = Home::new("unitfile");
    let elsewhere = h.dir.join("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    let file = elsewhere.join("hermes-gateway-coder.service");
    fs::write(&file, unit_text(&format!("{COMMAND} -p coder"))).unwrap();
    let out = h.ok(&[
        "--gwshim",
        GWSHIM,
        "--unit-file",
        file.to_str().unwrap(),
        "--dry-run",
    ]);
    let dropin = h
        .user_units()
        .join("hermes-gateway-coder.service.d/gwshim.conf");
    assert!(out.contains(&format!("# {}", dropin.display())), "{out}");
    assert!(
        out.contains("# hermes-gateway-coder.service under gwshim"),
        "{out}"
    );
    assert_eq!(
        exec_start(&out),
        format!("{GWSHIM} -- {COMMAND} -p coder"),
        "{out}"
    );
    // --unit wins over the file's name.
    let out = h.ok(&[
        "--gwshim",
        GWSHIM,
        "--unit-file",
        file.to_str().unwrap(),
        "--unit",
        "other",
        "--dry-run",
    ]);
    assert!(out.contains("other.service.d/gwshim.conf"), "{out}");
    let out = h.run(&[
        "--gwshim",
        GWSHIM,
        "--unit-file",
        "/nonexistent.service",
        "--dry-run",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

#[test]
fn a_rerun_keeps_gwshims_options_unless_given_new_ones() {
    let h = Home::new("keep");
    h.install_unit(UNIT, COMMAND);
    let out = h.ok(&["--gwshim", GWSHIM, "--", "--grace", "3"]);
    assert!(
        out.contains("not reloaded"),
        "says it could not reload: {out}"
    );
    let read = || fs::read_to_string(h.dropin()).expect("the drop-in");
    assert_eq!(
        exec_start(&read()),
        format!("{GWSHIM} --grace 3 -- {COMMAND}")
    );

    // Again without options (as after `hermes update`, with a new command): --grace 3 stays.
    let new_command = "/opt/hermes/venv/bin/python3 -m hermes_cli.main gateway run";
    h.install_unit(UNIT, new_command);
    h.ok(&["--gwshim", GWSHIM]);
    assert_eq!(
        exec_start(&read()),
        format!("{GWSHIM} --grace 3 -- {new_command}")
    );
    assert!(read().contains("within --grace (3 s)"), "{}", read());

    // New options replace them; a bare `--` clears them.
    h.ok(&[
        "--gwshim",
        GWSHIM,
        "--",
        "--grace",
        "7",
        "--name",
        "my gateway",
    ]);
    assert_eq!(
        exec_start(&read()),
        format!("{GWSHIM} --grace 7 --name \"my gateway\" -- {new_command}")
    );
    h.ok(&["--gwshim", GWSHIM]);
    assert_eq!(
        exec_start(&read()),
        format!("{GWSHIM} --grace 7 --name \"my gateway\" -- {new_command}"),
        "quoted options are kept as written"
    );
    h.ok(&["--gwshim", GWSHIM, "--"]);
    assert_eq!(exec_start(&read()), format!("{GWSHIM} -- {new_command}"));

    // A unit wrapped by hand: its gwshim options are kept, gwshim is not wrapped in gwshim.
    h.ok(&["--remove"]);
    assert!(!h.dropin().exists());
    h.install_unit(
        UNIT,
        &format!("/usr/local/bin/gwshim --grace 3 -- {COMMAND}"),
    );
    let out = h.ok(&["--gwshim", GWSHIM, "--dry-run"]);
    assert_eq!(
        exec_start(&out),
        format!("{GWSHIM} --grace 3 -- {COMMAND}"),
        "{out}"
    );
}

#[test]
fn a_gwshim_conf_the_script_did_not_write_is_neither_replaced_nor_removed() {
    let h = Home::new("foreign");
    h.install_unit(UNIT, COMMAND);
    let foreign = "[Service]\nEnvironment=FOO=1\nTimeoutStopSec=300\n";
    fs::create_dir_all(h.dropin().parent().unwrap()).unwrap();
    fs::write(h.dropin(), foreign).unwrap();
    for args in [
        &["--gwshim", GWSHIM][..],
        &["--gwshim", GWSHIM, "--dry-run"],
        &["--remove"],
        &["--remove", "--dry-run"],
    ] {
        let out = h.run(args);
        let text = text(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {text}");
        assert_eq!(text.lines().count(), 1, "{args:?}: one line: {text}");
        assert!(
            text.contains(&format!(
                "{} was not written by this script",
                h.dropin().display()
            )),
            "{args:?}: {text}"
        );
        assert_eq!(fs::read_to_string(h.dropin()).unwrap(), foreign, "{args:?}");
    }
    // Its own drop-in, edited by hand below the first line, is still its own to rewrite.
    fs::remove_file(h.dropin()).unwrap();
    h.ok(&["--gwshim", GWSHIM]);
    let mut mine = fs::read_to_string(h.dropin()).unwrap();
    mine.push_str("TimeoutStopSec=300\n");
    fs::write(h.dropin(), mine).unwrap();
    h.ok(&["--gwshim", GWSHIM]);
    assert!(
        !fs::read_to_string(h.dropin())
            .unwrap()
            .contains("TimeoutStopSec=300")
    );
}

#[test]
fn remove_with_nothing_installed_and_a_missing_gwshim_say_so_in_one_line() {
    let h = Home::new("nothing");
    h.install_unit(UNIT, COMMAND);
    let before = files_under(&h.dir);
    let out = h.ok(&["--remove"]);
    assert_eq!(
        out,
        format!("no {}: nothing to remove\n", h.dropin().display())
    );
    assert_eq!(files_under(&h.dir), before, "--remove changed files");
    let missing = h.dir.join("nonexistent/gwshim");
    for gwshim in [missing.to_str().unwrap(), "nonexistent/gwshim", "/tmp"] {
        let out = h.run(&["--gwshim", gwshim, "--dry-run"]);
        let text = text(&out);
        assert_eq!(out.status.code(), Some(1), "{gwshim}: {text}");
        assert_eq!(
            text,
            format!("install-dropin.sh: {gwshim} is not an executable file\n"),
            "{gwshim}"
        );
    }
}

#[test]
fn the_dropins_comments_follow_the_options_written() {
    let h = Home::new("comments");
    h.install_unit(UNIT, COMMAND);
    let default = h.ok(&["--gwshim", GWSHIM, "--dry-run"]);
    for line in [
        "# sd_notify is relayed",
        "# The gateway sees HERMES_GATEWAY_EXTERNAL_SUPERVISOR=1",
        "# gwshim passes 75 (restart now) and 78 (fatal config) through, any other failure becomes 70;",
        "\nEnvironment=GWSHIM_RESTART_STATUS=70\nRestartForceExitStatus=75 70\n",
        "\nSuccessExitStatus=75\n",
        "# gwshim exits 0 after `systemctl stop`",
        "within --grace (5 s)",
        "\nNotifyAccess=main\n",
    ] {
        assert!(default.contains(line), "{line:?} in\n{default}");
    }
    let custom = h.ok(&[
        "--gwshim",
        GWSHIM,
        "--dry-run",
        "--",
        "--grace=12",
        "--keep-status",
        "75,78,2",
        "--restart-status",
        "76",
        "--no-supervisor-env",
        "--no-notify-relay",
    ]);
    for line in [
        "# --no-notify-relay:",
        "# --no-supervisor-env: gwshim does not set HERMES_GATEWAY_EXTERNAL_SUPERVISOR=1",
        "# gwshim passes 75, 78, 2 through, any other failure becomes 76;",
        "# --restart-status 76: a crash exits 76.\nRestartForceExitStatus=75 76\n",
        "within --grace (12 s)",
    ] {
        assert!(custom.contains(line), "{line:?} in\n{custom}");
    }
    // Without the relay the gateway talks to systemd itself: NotifyAccess= stays the unit's.
    assert!(
        custom.contains("# --no-notify-relay: NotifyAccess= stays as the unit has it."),
        "{custom}"
    );
    for stale in [
        "sd_notify is relayed",
        "The gateway sees",
        "(5 s)",
        "GWSHIM_RESTART_STATUS",
        "NotifyAccess=main\n",
    ] {
        assert!(!custom.contains(stale), "{stale:?} in\n{custom}");
    }
    let other = h.ok(&[
        "--gwshim",
        GWSHIM,
        "--dry-run",
        "--",
        "--transparent",
        "--leave-orphans",
    ]);
    for line in ["# --transparent:", "# --leave-orphans:", "may end failed"] {
        assert!(other.contains(line), "{line:?} in\n{other}");
    }
    assert!(!other.contains("--grace ("), "{other}");
    // No line of the template is left with a placeholder (`@NAME@`; the sh's "$$@" is none).
    for out in [&default, &custom, &other] {
        let parts: Vec<&str> = out.split('@').collect();
        let inner = &parts[1..parts.len().saturating_sub(1).max(1)];
        let unfilled = inner
            .iter()
            .any(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_uppercase() || c == '_'));
        assert!(!unfilled, "an unfilled placeholder:\n{out}");
    }
}

#[test]
fn help_lists_every_option_the_script_takes() {
    let h = Home::new("help");
    let help = h.ok(&["--help"]);
    let script = fs::read_to_string(SCRIPT).unwrap();
    // The options are the patterns of the argument loop's `case`: `    --name) ...`.
    let arguments = script
        .split_once("while [ $# -gt 0 ]; do")
        .and_then(|(_, rest)| rest.split_once("\ndone\n"))
        .expect("the script's argument loop")
        .0;
    let mut options = Vec::new();
    for line in arguments.lines() {
        let line = line.trim_start();
        let Some((patterns, _)) = line.split_once(") ") else {
            continue;
        };
        if !patterns.starts_with('-') || patterns.contains(' ') {
            continue;
        }
        for p in patterns.split('|') {
            let name = p.trim_end_matches("=*");
            if name.len() > 1 && name != "--" {
                options.push(name.to_string());
            }
        }
    }
    for expected in [
        "--user",
        "--system",
        "--unit",
        "--unit-file",
        "--gwshim",
        "--dry-run",
        "--remove",
        "--help",
    ] {
        assert!(options.iter().any(|o| o == expected), "found {options:?}");
    }
    // Each has a line of its own in the list: `  --name ARG   what it does` (or `-h, --help`).
    for o in &options {
        let listed = help.lines().any(|l| {
            l.split_whitespace()
                .take(2)
                .any(|w| w.trim_end_matches(',') == o)
        });
        assert!(listed, "--help does not list {o}:\n{help}");
    }
    // And the synopsis names them too.
    let synopsis: String = help.lines().take(5).collect();
    for o in options
        .iter()
        .filter(|o| o.starts_with("--") && *o != "--help")
    {
        assert!(
            synopsis.contains(o.as_str()),
            "the synopsis lacks {o}: {synopsis}"
        );
    }
}

/// A copy of gwshim named gwshim in `dir`, as an install puts it.
fn gwshim_copy(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    fs::create_dir_all(dir).unwrap();
    let copy = dir.join("gwshim");
    fs::copy(GWSHIM, &copy).unwrap();
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o755)).unwrap();
    copy
}

/// The gwshim the drop-in runs (`GWSHIM` of `GWSHIM [OPTIONS] -- COMMAND`).
fn dropin_gwshim(text: &str) -> &str {
    exec_start(text).split(' ').next().unwrap_or("")
}

#[test]
fn a_rerun_keeps_the_gwshim_the_dropin_runs() {
    let h = Home::new("keep-gwshim");
    h.install_unit(UNIT, COMMAND);
    let first = gwshim_copy(&h.dir.join("opt/first"));
    let first = first.to_str().unwrap();
    // No gwshim in this PATH, none beside the script.
    let bare: &std::ffi::OsStr = "/usr/bin:/bin".as_ref();
    let rerun = |args: &[&str], path: &std::ffi::OsStr| {
        h.run_with(Command::new("bash").arg(SCRIPT), args, path)
    };
    h.ok(&["--gwshim", first, "--", "--grace", "3"]);
    let read = || fs::read_to_string(h.dropin()).expect("the drop-in");

    // Again without --gwshim (after `hermes update`, a new command): the same gwshim.
    let new_command = "/opt/hermes/venv/bin/python3 -m hermes_cli.main gateway run";
    h.install_unit(UNIT, new_command);
    let out = rerun(&[], bare);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        exec_start(&read()),
        format!("{first} --grace 3 -- {new_command}")
    );
    assert!(
        text(&out).contains("kept"),
        "says it kept it: {}",
        text(&out)
    );

    // --gwshim still says otherwise.
    let second = gwshim_copy(&h.dir.join("opt/second"));
    h.ok(&["--gwshim", second.to_str().unwrap()]);
    assert_eq!(dropin_gwshim(&read()), second.to_str().unwrap());

    // The kept one gone: the one in PATH; none in PATH either: one line naming the kept one.
    fs::remove_file(&second).unwrap();
    let before = read();
    let out = rerun(&[], bare);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(text(&out).lines().count(), 1, "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "the drop-in's gwshim {} is gone",
            second.display()
        )),
        "{}",
        text(&out)
    );
    assert_eq!(read(), before, "changed the drop-in");
    let in_path = format!("{}:/usr/bin:/bin", h.dir.join("opt/first").display());
    let out = rerun(&[], in_path.as_ref());
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(dropin_gwshim(&read()), first);
}

#[test]
fn a_later_dropin_that_sets_exec_start_is_named_and_nothing_is_written() {
    let h = Home::new("override");
    h.install_unit(UNIT, COMMAND);
    let dir = h.user_units().join(format!("{UNIT}.d"));
    fs::create_dir_all(&dir).unwrap();
    // What `systemctl --user edit hermes-gateway` leaves: override.conf sorts after gwshim.conf.
    let own = dir.join("override.conf");
    fs::write(
        &own,
        format!("[Service]\nTimeoutStopSec=90\nExecStart=\nExecStart={COMMAND} --verbose\n"),
    )
    .unwrap();
    for args in [
        &["--gwshim", GWSHIM][..],
        &["--gwshim", GWSHIM, "--dry-run"],
    ] {
        let out = h.run(args);
        let said = text(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {said}");
        assert_eq!(said.lines().count(), 1, "{args:?}: one line: {said}");
        assert!(
            said.contains(&format!("{} sets ExecStart=", own.display()))
                && said.contains("after gwshim.conf"),
            "{args:?}: {said}"
        );
        assert!(!h.dropin().exists(), "{args:?}: wrote the drop-in");
        // docs/hermes.md quotes it, for a HOME of /home/me.
        let docs = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/hermes.md"))
            .unwrap()
            .replace("/home/me", h.dir.join("home").to_str().unwrap());
        assert!(
            docs.contains(said.trim_end()),
            "docs/hermes.md lacks {said}"
        );
    }
    // Renamed as the message says, it is read before gwshim.conf: its command is wrapped.
    fs::rename(&own, dir.join("10-override.conf")).unwrap();
    h.ok(&["--gwshim", GWSHIM]);
    assert_eq!(
        exec_start(&fs::read_to_string(h.dropin()).unwrap()),
        format!("{GWSHIM} -- {COMMAND} --verbose")
    );
    // A later drop-in of other settings is no problem.
    fs::write(dir.join("override.conf"), "[Service]\nTimeoutStopSec=90\n").unwrap();
    h.ok(&["--gwshim", GWSHIM]);
}

#[test]
fn the_journal_tag_is_the_units_program_unless_the_unit_sets_one() {
    let h = Home::new("tag");
    h.install_unit(
        UNIT,
        "\"/opt/my venv/bin/python3\" -m hermes_cli.main gateway run",
    );
    let out = h.ok(&["--gwshim", GWSHIM, "--dry-run"]);
    assert!(out.contains("\nSyslogIdentifier=python3\n"), "{out}");
    let dir = h.user_units().join(format!("{UNIT}.d"));
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("10-log.conf"),
        "[Service]\nSyslogIdentifier=hermes\nRuntimeDirectory=hermes-rt\n",
    )
    .unwrap();
    let out = h.ok(&["--gwshim", GWSHIM, "--dry-run"]);
    assert!(!out.contains("\nSyslogIdentifier="), "{out}");
    assert!(out.contains("unit's own SyslogIdentifier=hermes"), "{out}");
    // RuntimeDirectoryPreserve= keeps the unit's own runtime folder too: the comment says so.
    assert!(
        out.contains("every RuntimeDirectory= of the unit: its own (hermes-rt)"),
        "{out}"
    );
}

#[test]
fn help_names_the_script_as_it_was_called() {
    let h = Home::new("help-name");
    let bin = h.dir.join("venv/bin");
    fs::create_dir_all(&bin).unwrap();
    let installed = bin.join("gwshim-install-dropin");
    std::os::unix::fs::symlink(SCRIPT, &installed).unwrap();
    let synopsis = |out: Output| {
        assert!(out.status.success(), "{}", text(&out));
        let help = text(&out);
        help.lines()
            .find(|l| l.contains("[--user | --system]"))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    // By its path: that path.
    let path = "/usr/bin:/bin".as_ref();
    let by_path = synopsis(h.run_with(&mut Command::new(&installed), &["--help"], path));
    assert!(
        by_path.starts_with(&format!("{} [--user", installed.display())),
        "{by_path}"
    );
    // Found in PATH: its name, as the wheel's and the .deb's users type it.
    let in_path = format!("{}:/usr/bin:/bin", bin.display());
    let by_name = synopsis(h.run_with(
        Command::new("bash").args(["-c", "gwshim-install-dropin \"$@\"", "sh"]),
        &["--help"],
        in_path.as_ref(),
    ));
    assert!(
        by_name.starts_with("gwshim-install-dropin [--user"),
        "{by_name}"
    );
    assert!(!by_name.contains("contrib/hermes"), "{by_name}");
}

#[test]
fn system_as_a_normal_user_says_it_needs_root_in_one_line() {
    let h = Home::new("system-user");
    let mut cmd = if nix::unistd::geteuid().is_root() {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "bash",
            SCRIPT,
        ]);
        c
    } else {
        let mut c = Command::new("bash");
        c.arg(SCRIPT);
        c
    };
    let path = "/usr/bin:/bin".as_ref();
    let out = h.run_with(&mut cmd, &["--system", "--gwshim", GWSHIM], path);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert_eq!(
        said,
        format!(
            "install-dropin.sh: --system changes /etc/systemd/system/{UNIT}.d, which needs root: run it with sudo\n"
        )
    );
    // A dry run reads only: it goes on (to say that no system unit is installed here).
    let out = h.run_with(
        &mut cmd,
        &["--system", "--gwshim", GWSHIM, "--dry-run"],
        path,
    );
    assert!(!text(&out).contains("needs root"), "{}", text(&out));
}

/// `--remove` leaves no folder of gwshim's behind: the drop-in's preserved
/// `RuntimeDirectory=gwshim-%N` (pacing history, notify sockets) goes with it once no gwshim of
/// the unit runs (here no manager answers, so none does); `--dry-run` only says so.
#[test]
fn remove_takes_gwshims_runtime_folder_too() {
    let h = Home::new("remove-folder");
    h.install_unit(UNIT, COMMAND);
    h.ok(&["--gwshim", GWSHIM]);
    let folder = h.dir.join("rt/gwshim-hermes-gateway");
    fs::create_dir_all(&folder).unwrap();
    fs::write(folder.join("hermes-gateway.pacing"), "").unwrap();
    let out = h.ok(&["--remove", "--dry-run"]);
    assert!(
        out.contains(&format!("would remove {}", folder.display())),
        "{out}"
    );
    assert!(folder.exists());
    let out = h.ok(&["--remove"]);
    assert!(!h.dropin().exists(), "{out}");
    assert!(!folder.exists(), "{out}");
    // A folder left by an earlier --remove (the unit still ran then) goes on the next one.
    fs::create_dir_all(&folder).unwrap();
    let out = h.ok(&["--remove"]);
    assert!(out.contains("nothing to remove"), "{out}");
    assert!(!folder.exists(), "{out}");
}
