//! gwshim in a container: as pid 1 of a PID namespace (`unshare --pid --fork --mount-proc`),
//! ending leftover processes, --pdeathsig, and the static binary. Real binary, real processes,
//! bounded waits. Tests that need root or unshare skip through tests/skip (`skipped: REASON`).
//! Also `contrib/Dockerfile`'s gwshim stage (the release archive, checked), run without Docker.

mod common;
mod skip;

use common::{pid_namespaces_unavailable, recompress};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

const GWSHIM: &str = env!("CARGO_BIN_EXE_gwshim");
const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");

fn helper(name: &str) -> String {
    format!("{MANIFEST}/tests/helpers/{name}")
}

/// A fresh scratch directory for one test (in target/tmp), removed when dropped.
struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn scratch(test: &str) -> Scratch {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "container-{test}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("scratch dir");
    Scratch(dir)
}

use skip::skip;

fn wait_until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        sleep(Duration::from_millis(20));
    }
}

fn wait_exit(child: &mut Child, limit: Duration) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("process {} still running after {limit:?}", child.id());
        }
        sleep(Duration::from_millis(20));
    }
}

fn read_pid(file: &Path) -> Option<i32> {
    fs::read_to_string(file).ok()?.trim().parse().ok()
}

fn wait_pid_file(file: &Path) -> i32 {
    wait_until(
        &format!("{}", file.display()),
        Duration::from_secs(10),
        || file.exists(),
    );
    read_pid(file).expect("a pid in the file")
}

/// Field 3 of /proc/PID/stat, None once the pid is gone.
fn state(pid: i32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

fn alive(pid: i32) -> bool {
    state(pid).is_some_and(|s| s != 'Z')
}

/// Kills a process the test is done with (best effort).
fn cleanup(pid: i32) {
    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
}

/// A process (gwshim, or unshare running it) with stderr to a file.
struct Run {
    child: Child,
    log: PathBuf,
}

impl Run {
    fn start(program: &str, args: &[&str], dir: &Path) -> Run {
        let log = dir.join("gwshim.log");
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stderr(fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn");
        Run { child, log }
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait(&mut self, limit: Duration) -> ExitStatus {
        let status = wait_exit(&mut self.child, limit);
        eprintln!("--- gwshim log ---\n{}--- {status}", self.log());
        status
    }

    fn wait_log(&self, text: &str) {
        wait_until(
            &format!("{text:?} in the log"),
            Duration::from_secs(10),
            || self.log().contains(text),
        );
    }
}

/// gwshim as pid 1: `unshare --pid --fork --mount-proc BIN ARGS`; returns the run and
/// gwshim's pid as seen from here.
fn start_pid1(bin: &str, args: &[&str], dir: &Path) -> (Run, i32) {
    let mut all = vec!["--pid", "--fork", "--mount-proc", bin];
    all.extend_from_slice(args);
    let run = Run::start("unshare", &all, dir);
    let unshare = run.child.id();
    let children = format!("/proc/{unshare}/task/{unshare}/children");
    let mut host_pid = None;
    wait_until("gwshim under unshare", Duration::from_secs(10), || {
        host_pid = fs::read_to_string(&children)
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok());
        host_pid.is_some()
    });
    (run, host_pid.expect("gwshim's pid"))
}

/// The processes in the PID namespace of `pid` (host pids), with their states.
fn namespace_members(pid: i32) -> Vec<(i32, char)> {
    let Ok(ns) = fs::read_link(format!("/proc/{pid}/ns/pid")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(p) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if fs::read_link(format!("/proc/{p}/ns/pid")).ok().as_ref() == Some(&ns)
            && let Some(s) = state(p)
        {
            out.push((p, s));
        }
    }
    out
}

/// The pid 1 scenario, for any gwshim binary: 20 orphans are all reaped, no zombie stays in
/// the namespace, and SIGTERM from outside ends gwshim and its child cleanly (exit 0).
fn pid1_reaps_orphans_and_stops_clean(bin: &str, test: &str) {
    let dir = scratch(test);
    let ready = dir.join("ready");
    let ready_s = ready.to_string_lossy().into_owned();
    let orphans = helper("container_orphans.py");
    let (mut run, gwshim) = start_pid1(
        bin,
        &["--", "python3", &orphans, "20", "0.3", &ready_s],
        &dir,
    );
    wait_pid_file(&ready);
    // The 20 grandchildren exit after 0.3 s; pid 1 must reap them all.
    wait_until(
        "the namespace to hold only gwshim and its child, no zombie",
        Duration::from_secs(10),
        || namespace_members(gwshim).len() == 2,
    );
    let members = namespace_members(gwshim);
    assert!(
        members.iter().all(|&(_, s)| s != 'Z'),
        "zombies in the namespace: {members:?}"
    );
    kill(Pid::from_raw(gwshim), Signal::SIGTERM).expect("SIGTERM gwshim");
    let status = run.wait(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "SIGTERM must end clean");
    assert!(run.log().contains("stop requested: SIGTERM"));
}

#[test]
fn pid1_in_a_pid_namespace() {
    if let Some(why) = pid_namespaces_unavailable() {
        return skip(&why);
    }
    pid1_reaps_orphans_and_stops_clean(GWSHIM, "pid1");
}

#[test]
fn pid1_exit_table() {
    if let Some(why) = pid_namespaces_unavailable() {
        return skip(&why);
    }
    for (script, want) in [
        ("exit 0", 0),
        ("exit 1", 75),
        ("exit 78", 78),
        ("exit 75", 75),
    ] {
        let dir = scratch("pid1-exit");
        let args = [
            "--pid",
            "--fork",
            "--mount-proc",
            GWSHIM,
            "--",
            "sh",
            "-c",
            script,
        ];
        let mut run = Run::start("unshare", &args, &dir);
        assert_eq!(
            run.wait(Duration::from_secs(10)).code(),
            Some(want),
            "{script}"
        );
    }
    // The child dies of the SIGTERM gwshim forwarded: elsewhere gwshim dies of it too; pid 1
    // cannot (the kernel ignores it), so it exits 128 + 15, what a shell would report.
    let dir = scratch("pid1-exit");
    let (mut run, gwshim) = start_pid1(GWSHIM, &["--", "sleep", "60"], &dir);
    run.wait_log("started");
    kill(Pid::from_raw(gwshim), Signal::SIGTERM).expect("SIGTERM gwshim");
    assert_eq!(run.wait(Duration::from_secs(10)).code(), Some(143));
}

#[test]
fn pid1_ends_leftovers_before_exiting() {
    if let Some(why) = pid_namespaces_unavailable() {
        return skip(&why);
    }
    let dir = scratch("pid1-leftovers");
    let pid_file = dir.join("leftover");
    let (mut run, gwshim) = start_pid1(
        GWSHIM,
        &[
            "--grace",
            "0.5",
            "--",
            "python3",
            &helper("container_leftover.py"),
            "ignore",
            &pid_file.to_string_lossy(),
            "0",
        ],
        &dir,
    );
    let started = Instant::now();
    assert_eq!(run.wait(Duration::from_secs(10)).code(), Some(0));
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert!(run.log().contains("needed SIGKILL"), "{}", run.log());
    // gwshim (and with it the namespace) is gone only after the leftover was reaped.
    assert!(
        run.log().contains("leftover processes ended"),
        "{}",
        run.log()
    );
    assert!(namespace_members(gwshim).is_empty());
}

/// As pid 1 of a PID namespace that kept the host's /proc (`unshare --pid` without
/// --mount-proc), /proc's pid 1 and its descendants are the host's, not gwshim's: gwshim must
/// not pick leftovers from there. It says so and leaves its leftover to the kernel, which
/// kills the namespace when its pid 1 exits.
#[test]
fn pid1_with_the_hosts_proc_leaves_leftovers_alone() {
    if let Some(why) = pid_namespaces_unavailable() {
        return skip(&why);
    }
    let dir = scratch("pid1-host-proc");
    let pid_file = dir.join("leftover");
    let mut run = Run::start(
        "unshare",
        &[
            "--pid",
            "--fork",
            GWSHIM,
            "--",
            "python3",
            &helper("container_leftover.py"),
            "ignore",
            &pid_file.to_string_lossy(),
            "0",
        ],
        &dir,
    );
    assert_eq!(run.wait(Duration::from_secs(10)).code(), Some(0));
    assert!(
        run.log()
            .contains("cannot end leftover processes: /proc does not show gwshim's PID namespace"),
        "{}",
        run.log()
    );
    assert!(!run.log().contains("ending 1 leftover"), "{}", run.log());
}

/// Runs `gwshim ARGS -- container_leftover.py MODE PIDFILE STATUS` on the host (gwshim is a
/// subreaper); returns the run, the leftover's pid, how long gwshim took, and the folder that
/// holds the run's log (removed when dropped).
fn run_leftover(
    opts: &[&str],
    mode: &str,
    status: i32,
    test: &str,
) -> (Run, i32, Duration, Scratch) {
    let dir = scratch(test);
    let pid_file = dir.join("leftover");
    let pid_s = pid_file.to_string_lossy().into_owned();
    let status_s = status.to_string();
    let helper = helper("container_leftover.py");
    let mut args: Vec<&str> = opts.to_vec();
    args.extend_from_slice(&["--", "python3", &helper, mode, &pid_s, &status_s]);
    let started = Instant::now();
    let mut run = Run::start(GWSHIM, &args, &dir);
    let leftover = wait_pid_file(&pid_file);
    run.wait(Duration::from_secs(20));
    (run, leftover, started.elapsed(), dir)
}

#[test]
fn leftover_ignoring_sigterm_gets_sigkill_after_the_grace() {
    // A process of the test itself, outside gwshim's tree: it must survive.
    let mut sibling = Command::new("sleep").arg("30").spawn().expect("sleep");
    let (run, leftover, took, _dir) = run_leftover(&["--grace", "1"], "ignore", 1, "ignore");
    let sibling_alive = sibling.try_wait().expect("try_wait").is_none();
    let _ = sibling.kill();
    let _ = sibling.wait();
    cleanup(leftover);
    assert!(
        sibling_alive,
        "a process outside gwshim's tree was signalled"
    );
    assert!(!alive(leftover), "leftover {leftover} still alive");
    assert!(state(leftover).is_none(), "leftover {leftover} not reaped");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "took {took:?}"
    );
    let log = run.log();
    // Plain words, singular for one.
    assert!(
        log.contains(&format!(
            "ending 1 leftover process (pid {leftover}) with SIGTERM, grace 1 s"
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!("pid {leftover} needed SIGKILL")),
        "{log}"
    );
    assert!(!log.contains("pids"), "{log}");
    // the exit decision is the child's: exit 1 becomes 75
    assert!(log.contains("exiting 75"), "{log}");
}

#[test]
fn leftover_obeying_sigterm_ends_at_once() {
    let (run, leftover, took, _dir) = run_leftover(&[], "obey", 0, "obey");
    cleanup(leftover);
    assert!(
        state(leftover).is_none(),
        "leftover {leftover} not ended and reaped"
    );
    assert!(
        took < Duration::from_secs(3),
        "took {took:?} with the default grace 5 s"
    );
    assert!(!run.log().contains("needed SIGKILL"), "{}", run.log());
}

#[test]
fn grace_zero_kills_at_once() {
    let (run, leftover, took, _dir) = run_leftover(&["--grace", "0"], "ignore", 0, "grace0");
    cleanup(leftover);
    assert!(state(leftover).is_none());
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert!(
        run.log().contains("with SIGKILL (grace 0)"),
        "{}",
        run.log()
    );
}

#[test]
fn leave_orphans_keeps_them() {
    let (run, leftover, took, _dir) = run_leftover(&["--leave-orphans"], "ignore", 0, "leave");
    let survived = alive(leftover);
    cleanup(leftover);
    assert!(
        survived,
        "leftover {leftover} was ended despite --leave-orphans"
    );
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert!(!run.log().contains("leftover processes"), "{}", run.log());
}

#[test]
fn a_second_sigterm_during_the_grace_kills_now() {
    let dir = scratch("second-term");
    let pid_file = dir.join("leftover");
    let helper = helper("container_leftover.py");
    let mut run = Run::start(
        GWSHIM,
        &[
            "--grace",
            "30",
            "--",
            "python3",
            &helper,
            "ignore",
            &pid_file.to_string_lossy(),
            "0",
        ],
        &dir,
    );
    let leftover = wait_pid_file(&pid_file);
    run.wait_log("grace 30 s");
    let started = Instant::now();
    kill(Pid::from_raw(run.child.id() as i32), Signal::SIGTERM).expect("SIGTERM gwshim");
    let status = run.wait(Duration::from_secs(10));
    cleanup(leftover);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(status.code(), Some(0));
    assert!(state(leftover).is_none());
    assert!(
        run.log().contains("during the grace: SIGKILL now"),
        "{}",
        run.log()
    );
}

#[test]
fn pdeathsig_reaches_the_child_when_gwshim_is_killed() {
    let dir = scratch("pdeathsig");
    let (pid_file, marker) = (dir.join("child"), dir.join("marker"));
    let mut run = Run::start(
        GWSHIM,
        &[
            "--pdeathsig",
            "TERM",
            "--",
            "python3",
            &helper("container_pdeath.py"),
            &pid_file.to_string_lossy(),
            &marker.to_string_lossy(),
        ],
        &dir,
    );
    let child = wait_pid_file(&pid_file);
    run.child.kill().expect("SIGKILL gwshim");
    let _ = run.child.wait();
    wait_until("the child's SIGTERM marker", Duration::from_secs(5), || {
        marker.exists()
    });
    cleanup(child);
    assert_eq!(fs::read_to_string(&marker).unwrap_or_default(), "15");
}

/// None when this machine can build a static binary, else why not.
fn static_toolchain_missing() -> Option<String> {
    let Some(sysroot) = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    else {
        return Some("no rustc".into());
    };
    let musl = Path::new(&sysroot).join("lib/rustlib/x86_64-unknown-linux-musl/lib");
    let libc_a = Command::new("cc")
        .arg("-print-file-name=libc.a")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    if musl.is_dir() || Path::new(&libc_a).is_absolute() {
        None
    } else {
        Some("neither the x86_64-unknown-linux-musl Rust target nor glibc's libc.a".into())
    }
}

/// Why `contrib/build-static.sh --small` cannot run here (nightly, rust-src, musl), if it cannot.
fn small_toolchain_missing() -> Option<String> {
    // The toolchain build-static.sh --small uses.
    let nightly = std::env::var("GWSHIM_NIGHTLY").unwrap_or_else(|_| "nightly".into());
    let sysroot = Command::new("rustup")
        .args(["run", &nightly, "rustc", "--print", "sysroot"])
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let Some(sysroot) = sysroot else {
        return Some(format!(
            "no {nightly} toolchain (rustup toolchain install {nightly})"
        ));
    };
    let rustlib = sysroot.join("lib/rustlib");
    if !rustlib.join("src/rust/library/std").is_dir() {
        return Some(
            "no rust-src for nightly (rustup component add rust-src --toolchain nightly)".into(),
        );
    }
    if !rustlib.join("x86_64-unknown-linux-musl/lib").is_dir() {
        return Some(format!(
            "no musl target for {nightly} (rustup target add x86_64-unknown-linux-musl --toolchain {nightly})"
        ));
    }
    None
}

/// Runs contrib/build-static.sh with `args` and returns the binary it built.
fn build_static(args: &[&str]) -> PathBuf {
    // A target dir of its own (cached in target/static), so this never waits for the lock of
    // the cargo that runs the tests.
    let out = Command::new(format!("{MANIFEST}/contrib/build-static.sh"))
        .args(args)
        .env("CARGO_TARGET_DIR", format!("{MANIFEST}/target/static"))
        .stderr(Stdio::inherit())
        .output()
        .expect("contrib/build-static.sh");
    assert!(
        out.status.success(),
        "build-static.sh {args:?}: {}",
        out.status
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let path = stdout.lines().last().expect("the path").to_string();
    let bin = if Path::new(&path).is_absolute() {
        PathBuf::from(path)
    } else {
        Path::new(MANIFEST).join(path)
    };
    eprintln!(
        "static gwshim: {} ({} bytes)",
        bin.display(),
        fs::metadata(&bin).map(|m| m.len()).unwrap_or(0)
    );
    bin
}

/// The static binary has no interpreter, reaps and stops clean as pid 1, and runs in a root
/// holding nothing but itself.
fn check_static(bin: &Path, name: &str) {
    if let Err(e) = Command::new("file").arg("--version").output() {
        return skip(&format!("no file(1) to tell a static binary: {e}"));
    }
    assert_static(bin);
    if let Some(why) = pid_namespaces_unavailable() {
        return skip(&format!("the static binary's pid 1 test: {why}"));
    }
    let bin_s = bin.to_string_lossy().into_owned();
    pid1_reaps_orphans_and_stops_clean(&bin_s, &format!("{name}-pid1"));
    // As in FROM scratch: a root holding nothing but the binary (and /proc).
    let root = scratch(&format!("{name}-root"));
    fs::create_dir_all(root.join("proc")).expect("proc dir");
    fs::copy(bin, root.join("gwshim")).expect("copy the binary");
    let root_arg = format!("--root={}", root.display());
    let status = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", &root_arg])
        .args(["/gwshim", "--", "/gwshim", "--version"])
        .status()
        .expect("unshare");
    assert_eq!(status.code(), Some(0), "the static gwshim in an empty root");
}

#[test]
fn static_binary() {
    if !cfg!(all(target_arch = "x86_64", target_os = "linux")) {
        // No setting makes another machine x86_64.
        return skip::skip_always_allowed("the static build is for x86_64 Linux");
    }
    if let Some(why) = static_toolchain_missing() {
        return skip(&why);
    }
    check_static(&build_static(&[]), "static");
}

#[test]
fn static_binary_small() {
    if !cfg!(all(target_arch = "x86_64", target_os = "linux")) {
        return skip::skip_always_allowed("the static build is for x86_64 Linux");
    }
    if let Some(why) = small_toolchain_missing() {
        // Nightly with rust-src comes from rustup's servers on the day; .ci/run tries to add
        // them, but a CI without them (or with a broken nightly) must still pass.
        return skip::skip_always_allowed(&format!("build-static.sh --small: {why}"));
    }
    let bin = build_static(&["--small"]);
    check_static(&bin, "small");
    // The rebuilt std keeps panic hooks (only backtraces are gone): an exit status still maps.
    let out = Command::new(&bin)
        .args(["--", "sh", "-c", "exit 3"])
        .output()
        .expect("running the small build");
    assert_eq!(out.status.code(), Some(75), "the small build maps 3 to 75");
}

/// One instruction of a Dockerfile: its keyword (upper case) and the rest of the line.
fn dockerfile_instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        // Comment lines are dropped, also inside a continued instruction (as docker does).
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                let (keyword, rest) = current.split_once(' ').unwrap_or((&current, ""));
                out.push((keyword.to_uppercase(), rest.trim().to_string()));
                current.clear();
            }
        }
    }
    out
}

/// `file -b PATH` says a static binary (or the reason it does not).
fn assert_static(bin: &Path) {
    let out = Command::new("file")
        .arg("-b")
        .arg(bin)
        .output()
        .expect("file(1)");
    let what = String::from_utf8_lossy(&out.stdout);
    assert!(
        (what.contains("statically linked") || what.contains("static-pie linked"))
            && !what.contains("interpreter"),
        "{} is not static: {what}",
        bin.display()
    );
}

/// contrib/Dockerfile's gwshim stage, without a container runtime: an empty folder receives
/// exactly what its COPY lines name (dist/ is the release's, from contrib/release.sh; each
/// source let through by .dockerignore), its RUN commands run there with /bin/sh -c, and what
/// the image copies out of the stage is the archive's static gwshim. Then again with the archive
/// recompressed (same files, another sum): the RUN fails on its SHA256SUMS check. (tests/podman.rs builds and
/// runs the whole file with podman.)
#[test]
fn dockerfile_gwshim_stage_checks_the_release_archive() {
    if !cfg!(all(target_arch = "x86_64", target_os = "linux")) {
        return skip::skip_always_allowed("the release archive tested here is x86_64's");
    }
    if Command::new("file").arg("--version").output().is_err() {
        return skip::skip("no file(1) to tell a static binary (apt-get install file)");
    }
    let dockerfile =
        fs::read_to_string(format!("{MANIFEST}/contrib/Dockerfile")).expect("Dockerfile");
    let instructions = dockerfile_instructions(&dockerfile);
    let froms: Vec<usize> = instructions
        .iter()
        .enumerate()
        .filter(|(_, (k, _))| k == "FROM")
        .map(|(i, _)| i)
        .collect();
    let stage_at = *froms
        .iter()
        .find(|&&i| instructions[i].1.ends_with(" AS gwshim"))
        .expect("a stage named gwshim: FROM IMAGE AS gwshim");
    let end = froms
        .iter()
        .copied()
        .find(|&i| i > stage_at)
        .expect("the image after the gwshim stage");
    let stage = &instructions[stage_at + 1..end];

    let ignore = fs::read_to_string(format!("{MANIFEST}/.dockerignore")).expect(".dockerignore");
    let ignore: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(
        ignore.first(),
        Some(&"*"),
        ".dockerignore starts by leaving everything out"
    );
    let dist = common::release_dist();

    // Runs the stage in a fresh folder; `tamper` flips a byte of every archive copied in.
    let run_stage = |tamper: bool| -> (Scratch, Option<String>, Vec<bool>) {
        let context = scratch(if tamper {
            "dockerfile-tampered"
        } else {
            "dockerfile"
        });
        let mut workdir = None;
        let mut results = Vec::new();
        for (keyword, rest) in stage {
            match keyword.as_str() {
                "WORKDIR" => workdir = Some(rest.clone()),
                "COPY" => {
                    assert!(workdir.is_some(), "COPY after WORKDIR");
                    assert!(
                        !rest.starts_with("--"),
                        "a plain COPY from the context: {rest}"
                    );
                    let words: Vec<&str> = rest.split_whitespace().collect();
                    let (dest, sources) = words.split_last().expect("COPY SRC... DEST");
                    assert_eq!(*dest, "./", "into WORKDIR: {rest}");
                    for src in sources {
                        assert!(
                            ignore.contains(&format!("!{src}").as_str()),
                            ".dockerignore lets {src} into the build context"
                        );
                        let name = src
                            .strip_prefix("dist/")
                            .unwrap_or_else(|| panic!("the stage copies from dist/: {src}"));
                        let (pre, post) = name.split_once('*').unwrap_or((name, ""));
                        let mut found = 0;
                        for e in fs::read_dir(dist).expect("dist").flatten() {
                            let f = e.file_name().to_string_lossy().into_owned();
                            let hit = if name.contains('*') {
                                f.len() >= pre.len() + post.len()
                                    && f.starts_with(pre)
                                    && f.ends_with(post)
                            } else {
                                f == name
                            };
                            if hit {
                                let to = context.join(&f);
                                fs::copy(e.path(), &to).expect("copy into the folder");
                                if tamper && f.ends_with(".tar.gz") {
                                    recompress(&to);
                                }
                                found += 1;
                            }
                        }
                        assert!(found > 0, "dist/ holds {src}");
                    }
                }
                "RUN" => {
                    eprintln!("RUN {rest}");
                    let status = Command::new("/bin/sh")
                        .args(["-c", rest])
                        .current_dir(&*context)
                        .status()
                        .expect("/bin/sh");
                    results.push(status.success());
                    if !status.success() {
                        break;
                    }
                }
                other => panic!(
                    "the gwshim stage has an instruction this test does not know: {other} {rest}"
                ),
            }
        }
        (context, workdir, results)
    };

    let (context, workdir, results) = run_stage(false);
    let workdir = workdir.expect("the stage has a WORKDIR");
    assert!(!results.is_empty(), "the stage runs something");
    assert!(
        results.iter().all(|&ok| ok),
        "every RUN succeeds: {results:?}"
    );
    // What the image takes from this stage: it exists, is static and runs.
    let mut copied = 0;
    for (keyword, rest) in &instructions[end..] {
        let Some(rest) = rest.strip_prefix("--from=gwshim ") else {
            continue;
        };
        assert_eq!(keyword, "COPY");
        let src = rest
            .split_whitespace()
            .next()
            .expect("COPY --from=gwshim SRC DEST");
        let rel = src
            .strip_prefix(&format!("{workdir}/")[..])
            .unwrap_or_else(|| panic!("the image copies {src}, outside {workdir}"));
        let path = context.join(rel);
        assert!(path.is_file(), "the stage made {src}");
        assert_static(&path);
        let out = Command::new(&path)
            .arg("--version")
            .output()
            .expect("running it");
        assert!(out.status.success(), "{src} --version: {}", out.status);
        copied += 1;
    }
    assert!(
        copied > 0,
        "the image copies the binary from the gwshim stage"
    );

    let (_tampered, _, results) = run_stage(true);
    assert_eq!(results, [false], "the sum check fails the stage's RUN");
}
