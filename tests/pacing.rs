//! Restart pacing against the real binary, outside systemd (explicit limits).

mod common;

use common::TempDir;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

const GWSHIM: &str = env!("CARGO_BIN_EXE_gwshim");

/// A fresh private state folder, removed when the test ends.
fn state_dir(tag: &str) -> TempDir {
    TempDir::private(&format!("pacing-{tag}"))
}

fn gwshim(dir: &Path, opts: &[&str], script: &str) -> Command {
    let mut cmd = Command::new(GWSHIM);
    cmd.arg("--state-dir")
        .arg(dir)
        .args(opts)
        .args(["--", "sh", "-c", script]);
    cmd.env_remove("INVOCATION_ID").env_remove("GWSHIM_LOG");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

fn run(dir: &Path, opts: &[&str], script: &str) -> (Output, Duration) {
    let start = Instant::now();
    let out = gwshim(dir, opts, script).output().expect("run gwshim");
    (out, start.elapsed())
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Waits for the child to exit, killing it after `limit` so a test never hangs.
fn wait_bounded(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("gwshim did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs gwshim over a shell child that touches `dir/child.up` once its traps are set, sends
/// gwshim `sig` then, and returns how gwshim exited and what it logged.
fn signal_when_up(dir: &Path, opts: &[&str], script: &str, sig: Signal) -> (ExitStatus, String) {
    let mut child = gwshim(dir, opts, script)
        .arg(dir.join("child"))
        .spawn()
        .expect("spawn");
    wait_for_file(&dir.join("child.up"));
    kill(Pid::from_raw(child.id() as i32), sig).expect("kill");
    let status = wait_bounded(&mut child, Duration::from_secs(10));
    let mut text = String::new();
    use std::io::Read;
    let _ = child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut text);
    (status, text)
}

/// Waits (at most 10 s) until `path` exists.
fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn state_file(dir: &Path, name: &str) -> String {
    fs::read_to_string(dir.join(format!("{name}.pacing"))).unwrap_or_default()
}

#[test]
fn waits_so_the_start_limit_is_not_reached() {
    let dir = state_dir("limit");
    let opts = [
        "--name",
        "svc",
        "--start-limit",
        "3/2s",
        "--restart-sec",
        "0",
        "--backoff",
        "0",
    ];
    let first = Instant::now();
    for _ in 0..2 {
        let (out, took) = run(&dir, &opts, "exit 1");
        assert_eq!(out.status.code(), Some(75));
        assert!(
            took < Duration::from_secs(2),
            "no wait needed yet: {}",
            stderr(&out)
        );
    }
    // The third start fills the burst: exiting now would allow a fourth start too early.
    let (out, _) = run(&dir, &opts, "exit 1");
    assert_eq!(out.status.code(), Some(75));
    let err = stderr(&out);
    assert!(err.contains("stays under StartLimitBurst=3/2s"), "{err}");
    // The fourth start may only come 2 s (plus the margin) after the first.
    assert!(first.elapsed() >= Duration::from_millis(2500), "{err}");
    let text = state_file(&dir, "svc");
    assert!(text.starts_with("gwshim-pacing 1\n"), "{text}");
}

#[test]
fn backs_off_fast_failures_and_resets_after_min_uptime() {
    let dir = state_dir("backoff");
    let opts = [
        "--name",
        "b",
        "--start-limit",
        "0",
        "--restart-sec",
        "0",
        "--backoff",
        "0.3s:0.6s",
        "--min-uptime",
        "0.5s",
    ];
    let waits: Vec<String> = (0..3)
        .map(|_| {
            let (out, _) = run(&dir, &opts, "exit 3");
            let err = stderr(&out);
            err.lines()
                .find(|l| l.contains("waiting"))
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert!(
        waits[0].contains("waiting 0.3 s (backoff: 1 fast failure in a row)"),
        "{waits:?}"
    );
    assert!(
        waits[1].contains("waiting 0.6 s (backoff: 2 fast failures"),
        "{waits:?}"
    );
    assert!(
        waits[2].contains("waiting 0.6 s (backoff: 3 fast failures"),
        "{waits:?}"
    ); // capped
    assert!(state_file(&dir, "b").contains("fast-failures 3\n"));
    // A child that lived past --min-uptime resets the count and waits for nothing.
    let (out, _) = run(&dir, &opts, "sleep 0.6; exit 3");
    assert!(!stderr(&out).contains("waiting"), "{}", stderr(&out));
    assert!(state_file(&dir, "b").contains("fast-failures 0\n"));
}

#[test]
fn a_stop_signal_ends_the_wait_cleanly() {
    let dir = state_dir("stopwait");
    let mut child = gwshim(
        &dir,
        &["--name", "s", "--start-limit", "0", "--backoff", "60s:60s"],
        "exit 1",
    )
    .spawn()
    .expect("spawn");
    let mut err = child.stderr.take().expect("stderr");
    // Read until the wait line shows, then stop gwshim.
    let reader = std::thread::spawn(move || {
        use std::io::Read;
        let mut text = String::new();
        let _ = err.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while !state_file(&dir, "s").contains("fast-failures 1") {
        assert!(
            Instant::now() < deadline,
            "gwshim never recorded the failure"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    let stopped = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("kill");
    let status = wait_bounded(&mut child, Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "a stop during the wait exits clean");
    assert!(stopped.elapsed() < Duration::from_secs(5));
    let text = reader.join().expect("reader");
    assert!(
        text.contains("waiting 60 s") && text.contains("SIGTERM during the restart wait"),
        "{text}"
    );
}

#[test]
fn a_planned_restart_skips_the_backoff() {
    let dir = state_dir("planned");
    let opts = ["--name", "p", "--start-limit", "0", "--backoff", "60s:60s"];
    // Two fast failures first, so a backoff would be due.
    plant_fast_failures(&dir, "p", 2);
    let (status, text) = signal_when_up(
        &dir,
        &opts,
        "trap 'exit 75' USR1; touch \"$0.up\"; while :; do sleep 0.05; done",
        Signal::SIGUSR1,
    );
    assert_eq!(status.code(), Some(75));
    assert!(!text.contains("waiting"), "{text}");
    assert!(
        state_file(&dir, "p").contains("fast-failures 2\n"),
        "a planned restart neither counts nor resets"
    );
}

#[test]
fn a_childs_own_75_is_a_planned_restart_too() {
    // The gateway exits 75 after `/restart`, or after a SIGUSR1 that `hermes gateway restart`
    // sent it directly: no signal passed through gwshim, and still no backoff is due.
    let dir = state_dir("own75");
    let opts = ["--name", "q", "--start-limit", "0", "--backoff", "60s:60s"];
    plant_fast_failures(&dir, "q", 2);
    let (out, took) = run(&dir, &opts, "exit 75");
    assert_eq!(out.status.code(), Some(75));
    assert!(!stderr(&out).contains("waiting"), "{}", stderr(&out));
    assert!(took < Duration::from_secs(30), "waited {took:?}");
    assert!(state_file(&dir, "q").contains("fast-failures 2\n"));
    // A crash that gwshim rewrites to 75 is still a fast failure: the 60 s backoff starts
    // (and a stop signal ends the wait at once).
    let mut child = gwshim(&dir, &opts, "exit 1").spawn().expect("spawn");
    let text = read_until_waiting(&mut child);
    assert!(text.contains("waiting"), "{text}");
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("kill");
    let status = wait_bounded(&mut child, Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "stopped during the wait: {status}");
    assert!(state_file(&dir, "q").contains("fast-failures 3\n"));
}

/// Writes the state of service `name` as after `n` fast failures in a row, on this boot.
fn plant_fast_failures(dir: &Path, name: &str, n: u32) {
    let boot = fs::read_to_string("/proc/sys/kernel/random/boot_id").expect("boot id");
    fs::write(
        dir.join(format!("{name}.pacing")),
        format!(
            "gwshim-pacing 1\nboot {}\nfast-failures {n}\nstarts\n",
            boot.trim()
        ),
    )
    .expect("plant state");
}

/// Reads gwshim's stderr until a line says it is waiting (or it ends).
fn read_until_waiting(child: &mut Child) -> String {
    use std::io::{BufRead, BufReader};
    let mut text = String::new();
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    while let Some(Ok(line)) = lines.next() {
        text.push_str(&line);
        text.push('\n');
        if line.contains("waiting") {
            break;
        }
    }
    text
}

#[test]
fn a_requested_stop_never_waits() {
    let dir = state_dir("stop");
    let opts = [
        "--name",
        "r",
        "--start-limit",
        "1/60s",
        "--backoff",
        "60s:60s",
    ];
    let (status, text) = signal_when_up(
        &dir,
        &opts,
        "trap 'exit 1' TERM; touch \"$0.up\"; while :; do sleep 0.05; done",
        Signal::SIGTERM,
    );
    assert!(!text.contains("waiting"), "{text}");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn bad_state_is_no_history_and_gets_rewritten() {
    let dir = state_dir("corrupt");
    let opts = [
        "--name",
        "c",
        "--start-limit",
        "1/60s",
        "--restart-sec",
        "0",
        "--backoff",
        "0",
    ];
    fs::write(dir.join("c.pacing"), "\u{0}garbage\n").expect("plant");
    // A clean exit under Restart=on-failure is not restarted, so nothing waits here.
    let mut child = gwshim(&dir, &opts, "exit 0").spawn().expect("spawn");
    let status = wait_bounded(&mut child, Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
    let mut text = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut text)
        .expect("read");
    assert!(
        text.contains("is corrupt; starting a fresh history"),
        "{text}"
    );
    let state = state_file(&dir, "c");
    assert!(
        state.starts_with("gwshim-pacing 1\n") && state.lines().count() == 4,
        "{state}"
    );

    // A history from another boot is ignored: five recent-looking starts do not count.
    let dir = state_dir("boot");
    fs::write(
        dir.join("o.pacing"),
        "gwshim-pacing 1\nboot another-boot\nfast-failures 9\nstarts 1 2 3 4 5\n",
    )
    .expect("plant");
    let (out, took) = run(
        &dir,
        &[
            "--name",
            "o",
            "--start-limit",
            "5/1h",
            "--restart-sec",
            "0",
            "--backoff",
            "0",
        ],
        "exit 1",
    );
    assert_eq!(out.status.code(), Some(75));
    assert!(
        !stderr(&out).contains("waiting") && took < Duration::from_secs(5),
        "{}",
        stderr(&out)
    );
    assert!(state_file(&dir, "o").contains("fast-failures 1\n"));
}

#[test]
fn services_keep_separate_state_and_writers_never_corrupt_it() {
    let dir = state_dir("shared");
    let opts = |name: &'static str| vec!["--name", name, "--start-limit", "0", "--backoff", "0"];
    let children: Vec<Child> = (0..8)
        .map(|i| {
            gwshim(
                &dir,
                &opts(if i % 2 == 0 { "even" } else { "odd" }),
                "exit 1",
            )
            .spawn()
            .expect("spawn")
        })
        .collect();
    for mut c in children {
        assert_eq!(
            wait_bounded(&mut c, Duration::from_secs(20)).code(),
            Some(75)
        );
    }
    for name in ["even", "odd"] {
        let text = state_file(&dir, name);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{name}: {text}");
        assert_eq!(lines[0], "gwshim-pacing 1");
        assert!(lines[3].starts_with("starts "), "{text}");
    }
    let leftovers: Vec<_> = fs::read_dir(&dir)
        .expect("dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        2,
        "only the two state files: {leftovers:?}"
    );
}

#[test]
fn by_hand_without_options_there_is_no_pacing() {
    let runtime = state_dir("byhand");
    let (out, took) = {
        let start = Instant::now();
        let out = Command::new(GWSHIM)
            .args(["--", "sh", "-c", "exit 1"])
            .env("XDG_RUNTIME_DIR", &runtime)
            .env_remove("INVOCATION_ID")
            .output()
            .expect("run");
        (out, start.elapsed())
    };
    assert_eq!(out.status.code(), Some(75));
    assert!(out.status.signal().is_none());
    assert!(!stderr(&out).contains("waiting") && took < Duration::from_secs(5));
    assert!(!runtime.join("gwshim").exists(), "no state kept by hand");
}

/// A command that cannot be executed is a fast failure like any other (issue 21): gwshim says
/// why, backs off, counts it in its history, and then exits with the shell's status, 127 or 126.
#[test]
fn a_command_that_cannot_be_executed_is_paced_and_keeps_its_status() {
    let dir = state_dir("noexec");
    let opts = [
        "--name",
        "x",
        "--start-limit",
        "0",
        "--restart-sec",
        "0",
        "--backoff",
        "0.3s:0.6s",
    ];
    for (n, (command, status)) in [("/nonexistent/gwshim-venv/bin/hermes", 127), ("/etc", 126)]
        .into_iter()
        .enumerate()
    {
        let mut cmd = Command::new(GWSHIM);
        cmd.arg("--state-dir")
            .arg(&*dir)
            .args(opts)
            .args(["--", command])
            .env_remove("INVOCATION_ID")
            .env_remove("GWSHIM_LOG");
        let out = cmd.output().expect("run gwshim");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(status), "{err}");
        assert!(err.contains(&format!("cannot run {command}")), "{err}");
        let want = match n {
            0 => "waiting 0.3 s (backoff: 1 fast failure in a row)",
            _ => "waiting 0.6 s (backoff: 2 fast failures in a row)",
        };
        assert!(err.contains(want), "{err}");
    }
    assert!(state_file(&dir, "x").contains("fast-failures 2\n"));
}
