//! The release artifacts of `contrib/release.sh`, as users get them: the x86_64 wheel installed
//! with pip into a fresh venv, the aarch64 binary under qemu-user, the .deb installed with dpkg
//! and purged, the checksums and archives (the man page against the code: tests/docs.rs).
//!
//! release.sh runs once per test binary, into target/tmp/release-dist, and not at all when the
//! sources have not changed since its last run there (a key over every file git knows).
//!
//! And a Hermes user's first hour with them: every shell block of the README's Install and
//! Use-with-Hermes sections that can run here, run as written on a booted Debian 12
//! (tests/booted/mod.rs) from a copy of dist/, then the drop-in's promises on the system unit in
//! the same container: see `readme_first_hour_on_a_booted_debian`.

mod booted;
mod common;
mod skip;

use common::{TempDir, kill, wait_timeout, wait_within};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");
const VERSION: &str = env!("CARGO_PKG_VERSION");
const ARCHS: [&str; 2] = ["x86_64", "aarch64"];

fn sh(script: &str) -> Output {
    Command::new("sh")
        .args(["-c", script])
        .current_dir(MANIFEST)
        .stdin(Stdio::null())
        .output()
        .expect("sh")
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

/// Runs a command, asserts it succeeded, returns its stdout.
fn run_ok(cmd: &mut Command, what: &str) -> String {
    let out = cmd.stdin(Stdio::null()).output().expect(what);
    assert!(
        out.status.success(),
        "{what}: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The dist folder, built by contrib/release.sh unless it was built from the same sources.
fn dist() -> &'static Path {
    common::release_dist()
}

/// The one file in dist whose name starts with `prefix` and ends with `suffix`.
fn artifact(prefix: &str, suffix: &str) -> PathBuf {
    let found: Vec<PathBuf> = fs::read_dir(dist())
        .expect("dist")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with(prefix) && name.ends_with(suffix)
        })
        .collect();
    assert_eq!(found.len(), 1, "one {prefix}*{suffix} in dist: {found:?}");
    found.into_iter().next().unwrap_or_default()
}

fn wheel(arch: &str) -> PathBuf {
    artifact(
        &format!("gwshim-{VERSION}-py3-none-manylinux2014_{arch}.manylinux_2_17_{arch}."),
        &format!(".musllinux_1_1_{arch}.whl"),
    )
}

fn archive(arch: &str) -> PathBuf {
    artifact(&format!("gwshim-{VERSION}-{arch}-linux-musl"), ".tar.gz")
}

/// Unpacks `arch`'s archive into `dir` and returns the folder it holds.
fn unpack(arch: &str, dir: &Path) -> PathBuf {
    run_ok(
        Command::new("tar")
            .arg("-xzf")
            .arg(archive(arch))
            .arg("-C")
            .arg(dir),
        "tar -x",
    );
    dir.join(format!("gwshim-{VERSION}-{arch}-linux-musl"))
}

/// A shell child that records a SIGTERM in `got` and exits 0 on it, after saying it is ready.
fn term_child(dir: &TempDir) -> (String, PathBuf, PathBuf) {
    let ready = dir.join("ready");
    let got = dir.join("got-term");
    let script = format!(
        // The trap ends the sleep itself: under qemu-user gwshim cannot be a subreaper.
        "trap 'kill $!; echo TERM > {got}; exit 0' TERM; sleep 60 & echo $$ > {ready}; wait",
        got = got.display(),
        ready = ready.display()
    );
    (script, ready, got)
}

/// Starts `cmd` (a gwshim running term_child's script), SIGTERMs it once the child is ready
/// and asserts the child got it and gwshim exited 0.
fn assert_forwards_term(mut cmd: Command, ready: &Path, got: &Path, what: &str) {
    let log_path = ready.with_file_name("gwshim.log");
    let log_file = fs::File::create(&log_path).expect("log file");
    let mut proc = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .expect(what);
    let limit = Duration::from_secs(30); // qemu-user starts slowly on a loaded machine
    let up = wait_within(limit, Duration::from_millis(20), || {
        fs::read_to_string(ready).is_ok_and(|s| s.ends_with('\n'))
    });
    if !up {
        let _ = proc.kill();
        let _ = proc.wait();
        panic!("{what}: the child did not start within {limit:?}");
    }
    kill(proc.id() as i32, nix::libc::SIGTERM);
    let status = wait_timeout(&mut proc, limit).unwrap_or_else(|| {
        let _ = proc.kill();
        let _ = proc.wait();
        panic!("{what}: did not end within {limit:?} of SIGTERM")
    });
    let log = fs::read_to_string(&log_path).unwrap_or_default();
    assert_eq!(
        fs::read_to_string(got).ok().as_deref(),
        Some("TERM\n"),
        "{what}: the child did not get SIGTERM; log:\n{log}"
    );
    assert_eq!(status.code(), Some(0), "{what}: {status}; log:\n{log}");
}

/// A unit as `hermes gateway install` writes it, for the installer's dry run.
const UNIT: &str = "[Unit]\nDescription=Hermes gateway\n\n[Service]\nType=simple\n\
ExecStart=/srv/hermes/venv/bin/python -m hermes_cli.main gateway run\nRestart=always\n\
RestartSec=5\nKillMode=mixed\n";

/// Runs `installer --dry-run --unit-file UNIT` with no gwshim in PATH and returns its output.
fn dry_run(installer: &Path, dir: &TempDir) -> String {
    let unit = dir.join("hermes-gateway.service");
    fs::write(&unit, UNIT).expect("unit file");
    let home = dir.join("home");
    fs::create_dir_all(&home).expect("home");
    run_ok(
        Command::new(installer)
            .args(["--dry-run", "--unit-file"])
            .arg(&unit)
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", &home)
            .env_remove("XDG_CONFIG_HOME"),
        "installer --dry-run --unit-file",
    )
}

/// Makes a venv in `dir`, pip-installs `package` into it (`pip_opts` first; cargo builds in
/// `cargo_target` if given) and returns the venv's gwshim.
fn install_into_fresh_venv(
    python: &str,
    dir: &TempDir,
    package: &Path,
    pip_opts: &[&str],
    cargo_target: Option<&Path>,
) -> PathBuf {
    let venv = dir.join("venv");
    run_ok(
        Command::new(python).args(["-m", "venv"]).arg(&venv),
        "python3 -m venv",
    );
    let mut pip = Command::new(venv.join("bin/pip"));
    pip.args(["install", "-q", "--disable-pip-version-check"])
        .args(pip_opts)
        .arg(package);
    if let Some(cache) = cargo_target {
        pip.env("CARGO_TARGET_DIR", cache);
    }
    run_ok(&mut pip, &format!("pip install {}", package.display()));
    venv.join("bin/gwshim")
}

fn assert_exit_1_becomes_75(gwshim: &Path) {
    let status = Command::new(gwshim)
        .args(["--", "sh", "-c", "exit 1"])
        .stderr(Stdio::null())
        .status()
        .expect("gwshim");
    assert_eq!(status.code(), Some(75), "child exits 1: {status}");
}

#[test]
fn wheel_installs_into_a_fresh_venv_and_runs() {
    let Some(python) = common::python() else {
        return skip::skip("python3 is not available");
    };
    let dir = TempDir::new("release-wheel");
    let gwshim = install_into_fresh_venv(python, &dir, &wheel("x86_64"), &["--no-index"], None);
    let version = run_ok(Command::new(&gwshim).arg("--version"), "gwshim --version");
    assert_eq!(
        version,
        format!("gwshim {VERSION} (x86_64-unknown-linux-musl)\n")
    );
    assert_exit_1_becomes_75(&gwshim);
    let (script, ready, got) = term_child(&dir);
    let mut cmd = Command::new(&gwshim);
    cmd.args(["--", "sh", "-c", &script]);
    assert_forwards_term(cmd, &ready, &got, "the wheel's gwshim");

    // The installer, from the venv: the gwshim beside it, by absolute path, and its template.
    let out = dry_run(&gwshim.with_file_name("gwshim-install-dropin"), &dir);
    // (After the `/bin/sh -c '...'` that runs the command alone while gwshim is missing.)
    let exec = format!(
        "' {} -- /srv/hermes/venv/bin/python -m hermes_cli.main gateway run",
        gwshim.display()
    );
    let lines: Vec<&str> = out.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("ExecStart=/bin/sh -c '") && l.ends_with(&exec));
    assert!(at.is_some(), "no line {exec:?} in the dry run:\n{out}");
    assert!(
        at.is_some_and(|i| i > 0 && lines[i - 1] == "ExecStart="),
        "ExecStart= is not cleared first:\n{out}"
    );
    for line in ["[Service]", "KillMode=mixed", "RestartPreventExitStatus=78"] {
        assert!(lines.contains(&line), "no {line} in the dry run:\n{out}");
    }
    assert!(
        !dir.join("home/.config/systemd").exists(),
        "a dry run wrote a file"
    );
}

#[test]
fn aarch64_binary_under_qemu_user() {
    let Some(qemu) = which("qemu-aarch64-static") else {
        return skip::skip("no qemu-aarch64-static (Debian's qemu-user-static)");
    };
    let dir = TempDir::new("release-qemu");
    let bin = unpack("aarch64", dir.path()).join("gwshim");
    let kind = run_ok(Command::new("file").arg("-b").arg(&bin), "file");
    assert!(
        kind.contains("ARM aarch64") && kind.contains("static-pie linked"),
        "not a static-pie aarch64 binary: {kind}"
    );
    let gwshim = |args: &[&str]| {
        let mut cmd = Command::new(&qemu);
        cmd.arg(&bin).args(args);
        cmd
    };
    let version = run_ok(&mut gwshim(&["--version"]), "qemu gwshim --version");
    assert_eq!(
        version,
        format!("gwshim {VERSION} (aarch64-unknown-linux-musl)\n")
    );
    // The exit table, including settings that differ from the defaults.
    let cases: [(&[&str], &str, i32); 8] = [
        (&[], "exit 0", 0),
        (&[], "exit 1", 75),
        (&[], "exit 3", 75),
        (&[], "exit 75", 75),
        (&[], "exit 78", 78),
        (&[], "kill -KILL $$", 75),
        (&["--keep-status", "3"], "exit 3", 3),
        (&["--transparent"], "exit 1", 1),
    ];
    for (opts, script, want) in cases {
        let mut args = opts.to_vec();
        args.extend(["--", "sh", "-c", script]);
        let status = gwshim(&args)
            .stderr(Stdio::null())
            .status()
            .expect("qemu-aarch64-static");
        assert_eq!(status.code(), Some(want), "{args:?}: {status}");
    }
    let (script, ready, got) = term_child(&dir);
    assert_forwards_term(
        gwshim(&["--", "sh", "-c", &script]),
        &ready,
        &got,
        "aarch64 gwshim under qemu",
    );
}

fn which(name: &str) -> Option<String> {
    let out = sh(&format!("command -v {name}"));
    let path = text(&out.stdout).trim().to_string();
    (out.status.success() && !path.is_empty()).then_some(path)
}

#[test]
fn checksums_and_archives() {
    let out = Command::new("sha256sum")
        .args(["-c", "--strict", "SHA256SUMS"])
        .current_dir(dist())
        .output()
        .expect("sha256sum");
    assert!(
        out.status.success(),
        "sha256sum -c: {}",
        text(&out.stdout) + &text(&out.stderr)
    );
    // Every artifact is listed.
    let sums = fs::read_to_string(dist().join("SHA256SUMS")).expect("SHA256SUMS");
    let listed: Vec<&str> = sums
        .lines()
        .filter_map(|l| l.split_once("  ").map(|(_, f)| f))
        .collect();
    let mut present: Vec<String> = fs::read_dir(dist())
        .expect("dist")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("gwshim"))
        .collect();
    present.sort();
    assert_eq!(listed, present, "SHA256SUMS against the files in dist");
    for want in [
        format!("gwshim-{VERSION}.tar.gz"),
        format!("gwshim_{VERSION}-1_amd64.deb"),
        format!("gwshim_{VERSION}-1_arm64.deb"),
    ] {
        assert!(present.contains(&want), "no {want} in dist: {present:?}");
    }
    let dir = TempDir::new("release-archives");
    for arch in ARCHS {
        let _ = wheel(arch);
        let listing = run_ok(Command::new("tar").arg("-tzf").arg(archive(arch)), "tar -t");
        let top = format!("gwshim-{VERSION}-{arch}-linux-musl/");
        let mut files: Vec<&str> = listing.lines().collect();
        files.sort();
        let want: Vec<String> = [
            "",
            "LICENSE",
            "README.md",
            "gwshim",
            "gwshim.1",
            "gwshim.conf.in",
            "install-dropin.sh",
        ]
        .iter()
        .map(|f| format!("{top}{f}"))
        .collect();
        assert_eq!(files, want, "{arch} archive");
        // What the binaries are: every_shipped_binary_is_the_same_static_pie.
        if arch == "x86_64" {
            let folder = unpack(arch, dir.path());
            let version = run_ok(
                Command::new(folder.join("gwshim")).arg("--version"),
                "--version",
            );
            assert_eq!(
                version,
                format!("gwshim {VERSION} (x86_64-unknown-linux-musl)\n")
            );
        }
    }
}

/// The package's files, from `dpkg-deb -c`, without the leading '.'.
fn deb_files(deb: &Path) -> Vec<String> {
    run_ok(Command::new("dpkg-deb").arg("-c").arg(deb), "dpkg-deb -c")
        .lines()
        .filter(|l| !l.starts_with('d'))
        .filter_map(|l| l.split_whitespace().last())
        .map(|p| p.trim_start_matches('.').to_string())
        .collect()
}

/// Runs dpkg, waiting out another process's hold on dpkg's lock (bounded).
fn dpkg(args: &[&str]) -> Output {
    let start = Instant::now();
    loop {
        let out = Command::new("dpkg")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("dpkg");
        let locked = text(&out.stderr).contains("lock");
        if out.status.success() || !locked || start.elapsed() > Duration::from_secs(300) {
            return out;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// Purges the package when dropped, so a failed test leaves nothing installed.
struct Installed;
impl Drop for Installed {
    fn drop(&mut self) {
        let _ = dpkg(&["--purge", "gwshim"]);
    }
}

#[test]
fn deb_contents_install_man_and_purge() {
    let deb = artifact(&format!("gwshim_{VERSION}-1_"), "_amd64.deb");
    let files = deb_files(&deb);
    for want in [
        "/usr/bin/gwshim",
        "/usr/bin/gwshim-install-dropin",
        "/usr/share/gwshim/gwshim.conf.in",
        "/usr/share/man/man1/gwshim.1.gz",
        "/usr/share/man/man1/gwshim-install-dropin.1.gz",
        "/usr/share/doc/gwshim/README.md",
        "/usr/share/doc/gwshim/copyright",
        "/usr/share/doc/gwshim/changelog.Debian.gz",
        "/usr/share/doc/gwshim/examples/gwshim-example.service",
        "/usr/share/doc/gwshim/examples/gwshim.conf.in",
        "/usr/share/lintian/overrides/gwshim",
    ] {
        assert!(files.iter().any(|f| f == want), "no {want} in {files:?}");
    }
    let depends = run_ok(
        Command::new("dpkg-deb")
            .args(["-f"])
            .arg(&deb)
            .arg("Depends"),
        "dpkg-deb -f",
    );
    assert_eq!(depends.trim(), "", "Depends: {depends}");
    let arm = artifact(&format!("gwshim_{VERSION}-1_"), "_arm64.deb");
    assert_eq!(
        deb_files(&arm),
        files,
        "the arm64 package holds the same files"
    );

    if !nix::unistd::geteuid().is_root() {
        return skip::skip("not root: dpkg -i needs it");
    }
    if dpkg(&["-s", "gwshim"]).status.success() {
        return skip::skip("a gwshim package is already installed here; not replacing it");
    }
    if let Some(f) = files.iter().find(|f| Path::new(f).exists()) {
        return skip::skip(&format!("{f} exists: installing would overwrite it"));
    }
    let out = dpkg(&["-i", deb.to_str().expect("path")]);
    let installed = Installed;
    assert!(out.status.success(), "dpkg -i: {}", text(&out.stderr));
    let version = run_ok(Command::new("/usr/bin/gwshim").arg("--version"), "gwshim");
    assert_eq!(
        version,
        format!("gwshim {VERSION} (x86_64-unknown-linux-musl)\n")
    );
    let page = run_ok(
        Command::new("man")
            .arg("gwshim")
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "200"),
        "man gwshim",
    );
    assert!(
        page.contains("gwshim - run a service as a supervised child") && page.contains("--grace"),
        "man gwshim:\n{page}"
    );
    // The installed installer finds its template in /usr/share/gwshim and uses /usr/bin/gwshim.
    let dir = TempDir::new("release-deb");
    let out = dry_run(Path::new("/usr/bin/gwshim-install-dropin"), &dir);
    assert!(
        out.contains("' /usr/bin/gwshim -- /srv/hermes/venv/bin/python"),
        "{out}"
    );

    drop(installed);
    assert!(
        !dpkg(&["-s", "gwshim"]).status.success(),
        "still installed after the purge"
    );
    let left: Vec<&String> = files.iter().filter(|f| Path::new(f).exists()).collect();
    assert!(left.is_empty(), "left behind by the purge: {left:?}");
    for folder in ["/usr/share/doc/gwshim", "/usr/share/gwshim"] {
        assert!(!Path::new(folder).exists(), "{folder} left behind");
    }
}

#[test]
fn debs_are_lintian_clean() {
    let Some(lintian) = which("lintian") else {
        return skip::skip("no lintian (Debian's lintian package)");
    };
    for arch in ["amd64", "arm64"] {
        let deb = artifact(&format!("gwshim_{VERSION}-1_"), &format!("_{arch}.deb"));
        let out = Command::new(&lintian)
            .arg(&deb)
            .stdin(Stdio::null())
            .output()
            .expect("lintian");
        let report = text(&out.stdout);
        assert!(
            out.status.success() && report.trim().is_empty(),
            "lintian {arch}: {}\n{report}{}",
            out.status,
            text(&out.stderr)
        );
    }
}

#[test]
fn version_names_the_target() {
    let version = run_ok(Command::new(common::GWSHIM).arg("--version"), "--version");
    let arch = std::env::consts::ARCH;
    let env = if cfg!(target_env = "musl") {
        "musl"
    } else {
        "gnu"
    };
    assert_eq!(
        version,
        format!("gwshim {VERSION} ({arch}-unknown-linux-{env})\n")
    );
}

/// Runs contrib/static-pie-ld on `line` with a fake rust-lld that records its arguments.
/// Returns the exit status, stderr, and the arguments rust-lld got (None: it did not run).
fn static_pie_ld(line: &[&str], with_lld: bool) -> (Option<i32>, String, Option<Vec<String>>) {
    let dir = TempDir::new("release-static-pie-ld");
    let got = dir.join("lld-args");
    if with_lld {
        let lld = dir.join("rust-lld");
        let script = format!("#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}'\n", got.display());
        fs::write(&lld, script).expect("fake rust-lld");
        run_ok(Command::new("chmod").arg("+x").arg(&lld), "chmod");
    }
    let out = Command::new(format!("{MANIFEST}/contrib/static-pie-ld"))
        .args(line)
        .env("PATH", format!("{}:/usr/bin:/bin", dir.path().display()))
        .stdin(Stdio::null())
        .output()
        .expect("contrib/static-pie-ld");
    let args = fs::read_to_string(&got)
        .ok()
        .map(|s| s.lines().map(str::to_string).collect());
    (out.status.code(), text(&out.stderr), args)
}

/// The shape of rustc's link line for a static, non-PIE musl executable with an ld-style
/// linker (the aarch64 one, from `cargo rustc -- --print link-args`), shortened.
const NON_PIE_LINE: [&str; 15] = [
    "/rs/self-contained/crt1.o",
    "/rs/self-contained/crti.o",
    "/rs/self-contained/crtbegin.o",
    "/t/gwshim.rcgu.o",
    "-Bstatic",
    "-lc",
    "-o",
    "/t/a dir/gwshim",
    "--gc-sections",
    "-static",
    "-z",
    "now",
    "--strip-all",
    "/rs/self-contained/crtend.o",
    "/rs/self-contained/crtn.o",
];

#[test]
fn static_pie_ld_makes_rustcs_line_a_static_pie_one() {
    let (status, err, args) = static_pie_ld(&NON_PIE_LINE, true);
    assert_eq!(status, Some(0), "{err}");
    let want = [
        "-flavor",
        "gnu",
        "/rs/self-contained/rcrt1.o",
        "/rs/self-contained/crti.o",
        "/rs/self-contained/crtbeginS.o",
        "/t/gwshim.rcgu.o",
        "-Bstatic",
        "-lc",
        "-o",
        "/t/a dir/gwshim",
        "--gc-sections",
        "-static",
        "-pie",
        "--no-dynamic-linker",
        "-z",
        "text",
        "-z",
        "now",
        "--strip-all",
        "/rs/self-contained/crtendS.o",
        "/rs/self-contained/crtn.o",
    ];
    assert_eq!(args.unwrap_or_default(), want);

    // A line rustc already made static-pie (as it does for x86_64) is passed on unchanged.
    let pie: Vec<&str> = want[2..].to_vec();
    let (status, err, args) = static_pie_ld(&pie, true);
    assert_eq!(status, Some(0), "{err}");
    assert_eq!(args.unwrap_or_default(), want);
}

#[test]
fn static_pie_ld_refuses_a_line_it_does_not_expect() {
    let without = |drop: &str| -> Vec<&str> {
        NON_PIE_LINE
            .iter()
            .copied()
            .filter(|a| !a.ends_with(drop))
            .collect()
    };
    let twice: Vec<&str> = [NON_PIE_LINE[0]]
        .iter()
        .chain(NON_PIE_LINE.iter())
        .copied()
        .collect();
    let cases: [(&str, Vec<&str>, &str); 6] = [
        ("no -static", without("-static"), "found 1, 1, 1, 0 times"),
        ("no crt1.o", without("/crt1.o"), "found 0, 1, 1, 1 times"),
        (
            "no crtend.o",
            without("/crtend.o"),
            "found 1, 1, 0, 1 times",
        ),
        ("crt1.o twice", twice, "found 2, 1, 1, 1 times"),
        ("an argument file", vec!["@/t/linker-args"], "in a file"),
        ("nothing", vec![], "found 0, 0, 0, 0 times"),
    ];
    for (what, line, says) in cases {
        let (status, err, args) = static_pie_ld(&line, true);
        assert_eq!(status, Some(1), "{what}: {err}");
        assert!(
            err.starts_with("static-pie-ld: ") && err.contains(says) && err.lines().count() == 1,
            "{what}: {err}"
        );
        assert_eq!(args, None, "{what}: rust-lld ran");
    }
    let (status, err, _) = static_pie_ld(&NON_PIE_LINE, false);
    assert_eq!(status, Some(1), "{err}");
    assert!(err.contains("no rust-lld on PATH"), "{err}");
}

/// The gwshim binary of every artifact for `arch`: archive, wheel and .deb.
fn shipped_binaries(arch: &str, dir: &Path, python: &str) -> Vec<(String, PathBuf)> {
    let archive_bin = unpack(arch, dir).join("gwshim");
    let wheel_dir = dir.join("wheel");
    run_ok(
        Command::new(python)
            .args(["-m", "zipfile", "-e"])
            .arg(wheel(arch))
            .arg(&wheel_dir),
        "python3 -m zipfile -e",
    );
    let wheel_bin = wheel_dir.join(format!("gwshim-{VERSION}.data/scripts/gwshim"));
    let deb_arch = if arch == "x86_64" { "amd64" } else { "arm64" };
    let deb = artifact(&format!("gwshim_{VERSION}-1_"), &format!("_{deb_arch}.deb"));
    let deb_dir = dir.join("deb");
    run_ok(
        Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&deb_dir),
        "dpkg-deb -x",
    );
    vec![
        ("archive".into(), archive_bin),
        ("wheel".into(), wheel_bin),
        ("deb".into(), deb_dir.join("usr/bin/gwshim")),
    ]
}

#[test]
fn every_shipped_binary_is_the_same_static_pie() {
    let Some(python) = common::python() else {
        return skip::skip("python3 is not available (it unpacks the wheels)");
    };
    for (arch, machine) in [("x86_64", "x86-64"), ("aarch64", "ARM aarch64")] {
        let dir = TempDir::new("release-pie");
        let bins = shipped_binaries(arch, dir.path(), python);
        let first = fs::read(&bins[0].1).expect("the archive's gwshim");
        for (from, bin) in &bins {
            let kind = run_ok(Command::new("file").arg("-b").arg(bin), "file");
            assert!(
                kind.contains("static-pie linked") && kind.contains(machine),
                "{arch} {from}: not a static PIE for {machine}: {kind}"
            );
            let bytes = fs::read(bin).unwrap_or_default();
            assert!(
                bytes == first,
                "{arch}: the {from}'s gwshim differs from the archive's"
            );
        }
    }
}

#[test]
fn sdist_builds_with_cargo_in_a_fresh_venv() {
    let Some(python) = common::python() else {
        return skip::skip("python3 is not available");
    };
    let sdist = artifact(&format!("gwshim-{VERSION}.tar"), ".gz");
    let listing = run_ok(Command::new("tar").arg("-tzf").arg(&sdist), "tar -t");
    let top = format!("gwshim-{VERSION}/");
    for want in ["Cargo.toml", "Cargo.lock", "pyproject.toml", "src/main.rs"] {
        assert!(
            listing.lines().any(|l| l == format!("{top}{want}")),
            "no {want} in the sdist"
        );
    }
    assert!(
        !listing.contains(".cargo/config.toml"),
        "the sdist carries .cargo/config.toml (pyproject.toml says why it must not)"
    );
    // What a user without a wheel for their machine gets: pip builds it (maturin from PyPI,
    // cargo), into a fresh venv. Cargo's cache under target/ keeps the dependencies built.
    let dir = TempDir::new("release-sdist");
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sdist-build");
    let gwshim = install_into_fresh_venv(python, &dir, &sdist, &[], Some(&cache));
    let version = run_ok(Command::new(&gwshim).arg("--version"), "gwshim --version");
    assert!(
        version.starts_with(&format!(
            "gwshim {VERSION} ({}-unknown-linux-",
            std::env::consts::ARCH
        )),
        "{version}"
    );
    assert_exit_1_becomes_75(&gwshim);
}

// ---------------------------------------------------------------------------------------------
// The README, run as written on a booted Debian 12, from dist/.

/// The README's blocks that run on the build machine, not where the artifacts were copied
/// (the test builds dist/ itself, and the container has no source tree and no Rust): their
/// first words.
const BUILD_MACHINE_BLOCKS: [&str; 2] = [
    "contrib/release.sh",
    "sudo install -m 755 \"$(contrib/build-static.sh",
];

/// The indented (4 spaces) code blocks of the README section `## TITLE`, in order.
fn readme_blocks(readme: &str, title: &str) -> Vec<String> {
    let head = format!("\n## {title}\n");
    let start = readme
        .find(&head)
        .unwrap_or_else(|| panic!("no section {title}"))
        + head.len();
    let section = readme[start..].split("\n## ").next().unwrap_or_default();
    let mut blocks = Vec::new();
    let mut cur = String::new();
    for line in section.lines() {
        match line.strip_prefix("    ") {
            Some(code) => {
                cur.push_str(code);
                cur.push('\n');
            }
            None if line.trim().is_empty() && !cur.is_empty() => {
                blocks.push(std::mem::take(&mut cur))
            }
            None => {}
        }
    }
    if !cur.is_empty() {
        blocks.push(cur);
    }
    blocks
}

/// Whether journal line `line` is `sample` with other numbers in it (pids, statuses' digits
/// stay): the sample's text between its digit runs, in order, digits where it has digits.
fn matches_sample(sample: &str, line: &str) -> bool {
    let (mut s, mut l) = (sample.as_bytes(), line.as_bytes());
    while let Some(&c) = s.first() {
        if c.is_ascii_digit() {
            let sd = s.iter().take_while(|b| b.is_ascii_digit()).count();
            let ld = l.iter().take_while(|b| b.is_ascii_digit()).count();
            if ld == 0 {
                return false;
            }
            s = &s[sd..];
            l = &l[ld..];
        } else {
            if l.first() != Some(&c) {
                return false;
            }
            s = &s[1..];
            l = &l[1..];
        }
    }
    l.is_empty()
}

#[test]
fn journal_samples_match_with_other_numbers() {
    let sample = "gwshim: warning: child pid 4243 was killed by SIGKILL; exiting 70 (x)";
    assert!(matches_sample(
        sample,
        "gwshim: warning: child pid 17 was killed by SIGKILL; exiting 70 (x)"
    ));
    assert!(!matches_sample(
        sample,
        "gwshim: child pid 17 was killed by SIGKILL; exiting 70 (x)"
    ));
    assert!(!matches_sample(
        sample,
        "gwshim: warning: child pid was killed by SIGKILL; exiting 70 (x)"
    ));
    assert!(!matches_sample(
        sample,
        "gwshim: warning: child pid 17 was killed by SIGKILL; exiting 70 (x) and more"
    ));
}

/// The journal lines of the user unit `hermes-gateway.service`, message text only.
fn user_unit_journal(c: &booted::Container, args: &str) -> String {
    c.journal(&format!("_SYSTEMD_USER_UNIT={} {args}", booted::UNIT))
}

#[test]
fn readme_first_hour_on_a_booted_debian() {
    use booted::{Container, HERMES_HOME, Scope, Suite, UNIT, USER};
    let up = Duration::from_secs(60);
    let c = match Container::boot(Suite::Bookworm) {
        Ok(c) => c,
        Err(why) => return skip::skip(&why),
    };
    let t0 = Instant::now();
    // A machine the README has not touched: none of the harness's gwshim files; the user may use
    // sudo; the gateway's venv is the user's, as hermes' installer makes it.
    c.sh_ok(&format!(
        "rm -rf /usr/local/bin/gwshim {dir} && \
         echo '{USER} ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/{USER} && \
         chown -R {USER}:{USER} /opt/hermes-venv && mkdir -p /home/{USER}/dist",
        dir = booted::CONTRIB_IN
    ));
    for e in fs::read_dir(dist()).expect("dist").flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("gwshim") || name == "SHA256SUMS" {
            fs::copy(e.path(), c.path(&format!("/home/{USER}/dist/{name}"))).expect("copy");
        }
    }
    c.sh_ok(&format!("chown -R {USER}:{USER} /home/{USER}/dist"));
    let said = c.hermes_install(Scope::User);
    eprintln!("hermes gateway install:\n{said}");
    c.systemctl_ok(Scope::User, &["stop", UNIT]);
    c.reset_gateway_starts();

    // Every block of Install, then of Use with Hermes, as the user, where the copies are.
    let readme = fs::read_to_string(format!("{MANIFEST}/README.md")).expect("README.md");
    let mut skipped = Vec::new();
    for section in ["Install", "Use with Hermes"] {
        let mut script = String::from("set -ex\n");
        for block in readme_blocks(&readme, section) {
            match BUILD_MACHINE_BLOCKS.iter().find(|b| block.starts_with(**b)) {
                Some(b) => skipped.push(*b),
                None => script.push_str(&block),
            }
        }
        let file = format!("/home/{USER}/readme-{}.sh", section.replace(' ', "-"));
        c.write(&file, &script);
        let out = c.sh_as_user(&format!("cd /home/{USER}/dist && bash {file} 2>&1"));
        let out = out.unwrap_or_else(|e| panic!("{section}: {e}{}", c.context()));
        let said = text(&out.stdout);
        assert!(
            out.status.success(),
            "the README's {section} blocks failed:\n{script}\n{said}{}",
            c.context()
        );
        eprintln!("README {section}:\n{said}");
    }
    assert_eq!(skipped, BUILD_MACHINE_BLOCKS, "the blocks left out");
    eprintln!("README blocks ran: {:.1} s", t0.elapsed().as_secs_f64());

    // The end of it: the unit runs the archive's gwshim, the gateway its child.
    let exec = c.prop(Scope::User, UNIT, "ExecStart");
    assert!(exec.contains(" /usr/local/bin/gwshim -- "), "{exec}");
    let gateway = c.wait_gateway_up(0, up);
    let main = c.state(Scope::User, UNIT).main_pid;
    let comm = c.read(&format!("/proc/{main}/comm"));
    assert_eq!(comm.trim(), "gwshim", "the main process of {UNIT}");
    let stat = c.read(&format!("/proc/{gateway}/stat"));
    let ppid = stat
        .rsplit(')')
        .next()
        .and_then(|r| r.split_whitespace().nth(1));
    assert_eq!(
        ppid,
        Some(main.to_string().as_str()),
        "the gateway's parent"
    );

    // docs/hermes.md's journal samples: a reload, a kill -9, a stop, against the real lines.
    c.reset_gateway_starts();
    c.systemctl_ok(Scope::User, &["reload", UNIT]);
    let second = c.wait_gateway_up(gateway, up);
    c.reset_gateway_starts();
    c.sh_ok(&format!("kill -KILL {second}"));
    let third = c.wait_gateway_up(second, Duration::from_secs(90));
    c.systemctl_ok(Scope::User, &["stop", UNIT]);
    assert_eq!(c.state(Scope::User, UNIT).active, "inactive");
    let journal = user_unit_journal(&c, "");
    let docs = fs::read_to_string(format!("{MANIFEST}/docs/hermes.md")).expect("docs/hermes.md");
    let samples = docs
        .split("\n## What changes in the journal\n")
        .nth(1)
        .expect("the journal section")
        .lines()
        .filter_map(|l| l.strip_prefix("    gwshim: "))
        .map(|l| format!("gwshim: {}", l.replace("/home/me/.hermes", HERMES_HOME)))
        .collect::<Vec<_>>();
    assert_eq!(samples.len(), 6, "{samples:?}");
    for sample in &samples {
        assert!(
            journal.lines().any(|l| matches_sample(sample, l)),
            "docs/hermes.md's {sample:?} is not in the journal:\n{journal}"
        );
    }
    // The planned restart is no warning; the kill -9 is one. Every line keeps the gateway's tag.
    let warnings = user_unit_journal(&c, "-p warning");
    assert!(!warnings.contains("exited 75; exiting 75"), "{warnings}");
    assert!(
        warnings.contains(&format!(
            "child pid {second} was killed by SIGKILL; exiting 70"
        )),
        "{warnings}"
    );
    let tagged = user_unit_journal(&c, "-t python");
    for line in [
        "gwshim: started",
        "Hermes Gateway Starting",
        &format!("child pid {third} exited 1; exiting 0"),
    ] {
        assert!(
            tagged.contains(line),
            "journalctl -t python lacks {line:?}:\n{tagged}"
        );
    }
    c.systemctl_ok(Scope::User, &["disable", "--now", UNIT]);
    eprintln!("user unit done: {:.1} s", t0.elapsed().as_secs_f64());

    // The system unit, `hermes gateway install --system`, in the same container. Its tag
    // without gwshim first: the one the drop-in keeps.
    c.hermes_install(Scope::System);
    c.systemctl_ok(Scope::System, &["stop", UNIT]);
    c.systemctl_ok(Scope::System, &["reset-failed", UNIT]);
    c.reset_gateway_starts();
    c.systemctl_ok(Scope::System, &["start", UNIT]);
    c.wait_gateway_up(0, up);
    let tags = || -> Vec<String> {
        let json = c.sh_ok(&format!(
            "journalctl -u {UNIT} -o json --output-fields=SYSLOG_IDENTIFIER,MESSAGE"
        ));
        let mut ids: Vec<String> = json
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| {
                v["MESSAGE"]
                    .as_str()
                    .is_some_and(|m| !m.starts_with("gwshim:"))
            })
            .filter_map(|v| v["SYSLOG_IDENTIFIER"].as_str().map(String::from))
            .filter(|id| id != "systemd")
            .collect();
        ids.sort();
        ids.dedup();
        ids
    };
    let ids = c.wait_until("the gateway's lines in the journal", up, |_| {
        Some(tags()).filter(|t| !t.is_empty())
    });
    assert_eq!(
        ids,
        ["python"],
        "the tags of the unit's lines without gwshim"
    );
    c.systemctl(Scope::System, &["stop", UNIT]);
    c.systemctl_ok(Scope::System, &["reset-failed", UNIT]);

    // The installer's messages: root without --system, --system as the user.
    let one_line = |out: Output, want: &str| {
        let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(1), "{said}");
        assert_eq!(said.lines().count(), 1, "one line: {said}");
        assert!(said.contains(want), "{want:?} in {said:?}");
    };
    let installer = "/usr/bin/gwshim-install-dropin"; // the .deb's, from the README
    one_line(
        c.sh(&format!("{installer} 2>&1")).expect("installer"),
        &format!(
            "{UNIT} is a system unit here (/etc/systemd/system/{UNIT}), not a user unit: add --system"
        ),
    );
    one_line(
        c.sh_as_user(&format!("{installer} --system 2>&1"))
            .expect("installer"),
        "--system changes /etc/systemd/system/hermes-gateway.service.d, which needs root: run it with sudo",
    );
    // `systemctl edit`'s override.conf with an ExecStart=: named, nothing written.
    let dir = c.dropin_dir(Scope::System, UNIT);
    c.write(
        &format!("{dir}/override.conf"),
        "[Service]\nExecStart=\nExecStart=/bin/true\n",
    );
    c.systemctl_ok(Scope::System, &["daemon-reload"]);
    one_line(
        c.sh(&format!(
            "{installer} --system --gwshim /usr/local/bin/gwshim 2>&1"
        ))
        .expect("installer"),
        &format!("{dir}/override.conf sets ExecStart= and systemd reads it after gwshim.conf"),
    );
    assert!(
        c.read(&format!("{dir}/gwshim.conf")).is_empty(),
        "wrote gwshim.conf"
    );
    c.sh_ok(&format!(
        "rm {dir}/override.conf && systemctl daemon-reload"
    ));

    // Installed with the archive's gwshim; a re-run of the .deb's installer (whose own gwshim is
    // /usr/bin/gwshim) keeps it.
    c.sh_ok(&format!(
        "{installer} --system --gwshim /usr/local/bin/gwshim"
    ));
    let said = c.sh_ok(&format!("{installer} --system"));
    assert!(
        said.contains("/usr/local/bin/gwshim (the drop-in's gwshim, kept"),
        "{said}"
    );
    let exec = c.prop(Scope::System, UNIT, "ExecStart");
    assert!(exec.contains(" /usr/local/bin/gwshim -- "), "{exec}");

    // gwshim gone: the gateway starts alone, as User=hermes, the main process; a warning.
    c.sh_ok("mv /usr/local/bin/gwshim /usr/local/bin/gwshim.away");
    c.reset_gateway_starts();
    c.systemctl_ok(Scope::System, &["start", UNIT]);
    let alone = c.wait_gateway_up(0, up);
    assert_eq!(
        c.state(Scope::System, UNIT).main_pid,
        alone,
        "the gateway is the main process"
    );
    let warnings = c.journal(&format!("-u {UNIT} -p warning -t python"));
    assert!(
        warnings.contains("gwshim: warning: /usr/local/bin/gwshim is missing or does not run: starting the gateway without gwshim"),
        "{warnings}"
    );
    // Back: the next start runs under it.
    c.sh_ok("mv /usr/local/bin/gwshim.away /usr/local/bin/gwshim");
    c.reset_gateway_starts();
    c.systemctl_ok(Scope::System, &["restart", UNIT]);
    let wrapped = c.wait_gateway_up(alone, up);
    let main = c.state(Scope::System, UNIT).main_pid;
    assert_ne!(main, wrapped);
    assert_eq!(c.read(&format!("/proc/{main}/comm")).trim(), "gwshim");
    c.systemctl_ok(Scope::System, &["stop", UNIT]);
    assert_eq!(c.state(Scope::System, UNIT).active, "inactive");
    eprintln!(
        "timing: the README's first hour on Debian 12: {:.1} s after the boot",
        t0.elapsed().as_secs_f64()
    );
}
