//! Stress and fault tests: gwshim under a signal storm, a zombie flood, every exit status,
//! starved or broken file descriptors, wayward children and its own SIGKILL. Real binary,
//! real processes. Each test is bounded by counts and by the helpers' timeouts, never by an
//! assertion about speed.

mod common;
mod skip;

use common::*;
use gwshim::pacing::History;
use nix::libc;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

const FLOOD_PL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/helpers/flood.pl");

/// gwshim GW_OPTS -- python3 child.py record DIR CHILD_OPTS, started, with the child ready.
fn recorder_with(
    py: &str,
    dir: &TempDir,
    gw_opts: &[&str],
    child_opts: &[&str],
    adjust: impl FnOnce(&mut Command),
) -> (Running, i32) {
    let log = dir.join("gwshim.log");
    let mut args = gw_opts.to_vec();
    args.extend(["--", py, CHILD_PY, "record", dir.str()]);
    args.extend(child_opts);
    let mut cmd = gwshim(&args, &log);
    adjust(&mut cmd);
    let running = Running::start(cmd, &log);
    let (child, _, _) = ready(dir, &running);
    (running, child)
}

/// A small deterministic generator (xorshift64*): the storm is the same on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    }
}

// ---------------------------------------------------------------------------------------
// Signal storm.

/// 10,000 signals of mixed kinds (never TERM, nor the job-stop signals, after which gwshim
/// stops itself, nor USR2, which ends the child afterwards) sent to gwshim in 25 batches
/// over about a second while the child runs. What is asserted, precisely:
///
/// - gwshim survives, and every kind sent reaches the child at least once (SIGCHLD is in the
///   storm too: gwshim reaps on it and never forwards it).
/// - Standard signals coalesce while pending (in gwshim, then in the child), so a kind sent
///   k times arrives between 1 and k times. Real-time signals queue: each kind arrives
///   exactly as many times as it was sent. Nothing arrives that was not sent (no SIGPIPE of
///   gwshim's own, no SIGCHLD).
/// - Order: the kernel hands out pending signals lowest number first, not in sending order,
///   so no order among kinds is asserted. What sending order does fix is causality: the
///   record is append-only, so each kind's first arrival lies at or after the record's
///   length when that kind was first sent. New kinds join the storm batch by batch, so this
///   is checked for every kind at a different point of the record. (Real-time signals of one
///   kind carry nothing gwshim forwards that would tell them apart, so "their order" is
///   their count.)
/// - The exit decision afterwards: the child exits 3 on USR2. With no stop signal in the
///   storm that is a failure (75); with INT and QUIT in it (and HUP, no stop signal), a stop
///   was requested and any exit is 0.
fn signal_storm(with_stop_signals: bool) {
    let py = need_python!();
    let dir = TempDir::new("storm");
    let (mut run, child) =
        recorder_with(py, &dir, &["--no-pacing"], &["--exit-on", "USR2=3"], |_| {});
    let excluded = [
        libc::SIGKILL,
        libc::SIGSTOP,
        libc::SIGTERM,
        libc::SIGTSTP,
        libc::SIGTTIN,
        libc::SIGTTOU,
        libc::SIGUSR2,
    ];
    let stop = [libc::SIGHUP, libc::SIGINT, libc::SIGQUIT];
    let mut kinds: Vec<i32> = (1..=31)
        .filter(|s| !excluded.contains(s))
        .filter(|s| with_stop_signals || !stop.contains(s))
        .collect();
    kinds.extend([rtmin(), rtmin() + 1, rtmin() + 2, rtmin() + 7, rtmax()]);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ u64::from(with_stop_signals));
    for i in (1..kinds.len()).rev() {
        kinds.swap(i, rng.below(i + 1));
    }

    const TOTAL: usize = 10_000;
    const BATCHES: usize = 25;
    let mut sent: BTreeMap<i32, usize> = BTreeMap::new();
    let mut first_sent_at: BTreeMap<i32, usize> = BTreeMap::new();
    let mut refused = 0;
    for b in 0..BATCHES {
        let unlocked = (2 + 2 * b).min(kinds.len());
        let len_before = record(dir.path()).len();
        // The kinds new in this batch first, then a random mix of all unlocked ones.
        let new = kinds[(2 * b).min(unlocked)..unlocked].iter().copied();
        let mixed: Vec<i32> = (0..TOTAL / BATCHES)
            .map(|_| kinds[rng.below(unlocked)])
            .collect();
        for sig in new.chain(mixed).take(TOTAL / BATCHES) {
            // SAFETY: kill(2) with plain integers.
            if unsafe { libc::kill(run.pid, sig) } == 0 {
                *sent.entry(sig).or_default() += 1;
                first_sent_at.entry(sig).or_insert(len_before);
            } else {
                // Only a full real-time queue may refuse a signal.
                let e = std::io::Error::last_os_error();
                assert_eq!(e.raw_os_error(), Some(libc::EAGAIN), "kill: {e}");
                refused += 1;
            }
        }
        sleep(Duration::from_millis(30));
    }
    assert_eq!(sent.values().sum::<usize>() + refused, TOTAL);
    assert_eq!(sent.len(), kinds.len(), "every kind was sent");

    let is_rt = |s: i32| s >= rtmin();
    let expected: Vec<i32> = sent
        .keys()
        .copied()
        .filter(|&s| s != libc::SIGCHLD)
        .collect();
    let complete = |got: &[i32]| {
        expected.iter().all(|&s| {
            let n = got.iter().filter(|&&g| g == s).count();
            if is_rt(s) { n == sent[&s] } else { n >= 1 }
        })
    };
    let arrived = wait_until(|| complete(&record(dir.path())));
    settle();
    let got = record(dir.path());
    let mut counts: BTreeMap<i32, usize> = BTreeMap::new();
    for &s in &got {
        *counts.entry(s).or_default() += 1;
    }
    assert!(
        arrived,
        "not every kind arrived (real-time ones once per sending): sent {sent:?}, got \
         {counts:?}; log:\n{}",
        run.log_text()
    );
    assert!(run.alive(), "gwshim survived the storm");
    assert!(stat(child).is_some_and(|s| s.0 != 'Z'), "the child runs");
    for (&sig, &n) in &counts {
        let want = sent.get(&sig).copied().unwrap_or(0);
        assert!(
            sig != libc::SIGCHLD && want > 0,
            "signal {sig} was never sent"
        );
        if is_rt(sig) {
            assert_eq!(n, want, "real-time signal {sig}: one per sending");
        } else {
            assert!(n <= want, "signal {sig}: got {n}, sent {want}");
        }
    }
    for (&sig, &at) in &first_sent_at {
        if let Some(first) = got.iter().position(|&g| g == sig) {
            assert!(
                first >= at,
                "signal {sig} arrived at record line {first}, before it was first sent \
                 (the record then held {at} lines)"
            );
        }
    }

    kill(run.pid, libc::SIGUSR2);
    let status = run.wait();
    let want = if with_stop_signals { 0 } else { 75 };
    assert_code(status, want, "exit after the storm", &run.log_text());
}

#[test]
fn signal_storm_without_stop_signals() {
    signal_storm(false);
}

#[test]
fn signal_storm_with_stop_signals() {
    signal_storm(true);
}

// ---------------------------------------------------------------------------------------
// Zombie flood.

/// VmRSS and VmHWM (peak) of a process, in kB.
fn memory(pid: i32) -> (u64, u64) {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Zombie children of `pid`.
fn zombie_children(pid: i32) -> usize {
    let Ok(dir) = fs::read_dir("/proc") else {
        return 0;
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&p| stat(p).is_some_and(|(state, ppid, _)| ppid == pid && state == 'Z'))
        .count()
}

/// Polls `cond` for up to `limit`.
fn wait_long(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while !cond() {
        if Instant::now() > end {
            return false;
        }
        sleep(Duration::from_millis(20));
    }
    true
}

#[test]
fn zombie_flood_is_reaped_without_memory_growth() {
    // .ci/run installs perl-base where it is missing (it is Essential in Debian).
    if !Path::new("/usr/bin/perl").exists() {
        return skip::skip("perl is not available");
    }
    let dir = TempDir::new("flood");
    let log = dir.join("gwshim.log");
    const WARMUP: usize = 200;
    const FLOOD: usize = 10_000;
    let (warmup, flood) = (WARMUP.to_string(), FLOOD.to_string());
    // -v: gwshim logs each orphan it reaps, so the count proves gwshim reaped them all.
    let args = [
        "-v",
        "--no-pacing",
        "--",
        "/usr/bin/perl",
        FLOOD_PL,
        dir.str(),
        &warmup,
        &flood,
    ];
    let mut run = Running::start(gwshim(&args, &log), &log);
    let reaped = |run: &Running| run.log_text().matches("reaped orphan pid").count();
    let flooded = |i: usize| {
        let path = dir.join(&format!("flood-{i}"));
        wait_long(Duration::from_secs(30), || path.exists());
        fs::read_to_string(path).unwrap_or_default()
    };

    // A warm-up flood first, so the pages of the reaping path are in before measuring.
    assert_eq!(flooded(0), format!("{WARMUP} 0\n"), "the warm-up flood ran");
    assert!(
        wait_until(|| reaped(&run) == WARMUP && zombie_children(run.pid) == 0),
        "warm-up: reaped {} of {WARMUP}; log:\n{}",
        reaped(&run),
        run.log_text()
    );
    let (rss0, hwm0) = memory(run.pid);

    fs::write(dir.join("go-0"), "").unwrap();
    assert_eq!(flooded(1), format!("{FLOOD} 0\n"), "the flood ran");
    let all_reaped = wait_long(Duration::from_secs(15), || {
        reaped(&run) == WARMUP + FLOOD && zombie_children(run.pid) == 0
    });
    assert!(
        all_reaped,
        "reaped {} of {}, {} zombies left",
        reaped(&run),
        WARMUP + FLOOD,
        zombie_children(run.pid)
    );
    let (rss1, hwm1) = memory(run.pid);
    // A few pages of slack (allocator, a log line's buffer); growth with the count would be
    // far more (10,000 of anything is at least 40 kB per 4-byte item).
    const SLACK_KB: u64 = 64;
    assert!(
        rss1 <= rss0 + SLACK_KB && hwm1 <= hwm0 + SLACK_KB,
        "gwshim's memory grew with the flood: VmRSS {rss0} -> {rss1} kB, VmHWM {hwm0} -> {hwm1} kB"
    );
    assert!(run.alive());

    fs::write(dir.join("go-1"), "").unwrap();
    let status = run.wait();
    assert_code(status, 0, "flood child exits 0", "");
}

// ---------------------------------------------------------------------------------------
// The whole exit table.

/// Runs gwshim to its end (bounded); returns its status and its stderr.
fn run(args: &[&str]) -> (ExitStatus, String) {
    let dir = TempDir::new("run");
    let log = dir.join("gwshim.log");
    let mut running = Running::start(gwshim(args, &log), &log);
    let status = running.wait();
    (status, running.log_text())
}

/// Signals 1-31 whose default action ends a process.
const KILLING: &[i32] = &[
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 24, 25, 26, 27, 29, 30, 31,
];

/// Every exit status 0-255 and every signal death, in normal and --transparent mode,
/// against the README's table: 0 stays 0, the keep list (75, 78) passes, everything else
/// and an unrequested signal death becomes 75; --transparent gives the status or 128+N.
#[test]
fn exit_table_every_status_and_signal_death() {
    let cases: Vec<(bool, String, i32)> = (0..=255)
        .flat_map(|code| {
            let normal = match code {
                0 | 75 | 78 => code,
                _ => 75,
            };
            [
                (false, format!("exit {code}"), normal),
                (true, format!("exit {code}"), code),
            ]
        })
        .chain(KILLING.iter().flat_map(|&sig| {
            let script = format!("ulimit -c 0; kill -{sig} $$");
            [(false, script.clone(), 75), (true, script, 128 + sig)]
        }))
        .collect();
    // Two at a time: each case is a few milliseconds of process creation.
    let halves: Vec<Vec<(bool, String, i32)>> = vec![
        cases.iter().step_by(2).cloned().collect(),
        cases.iter().skip(1).step_by(2).cloned().collect(),
    ];
    std::thread::scope(|s| {
        for half in &halves {
            s.spawn(move || {
                for (transparent, script, want) in half {
                    let mut args = vec!["--no-pacing"];
                    if *transparent {
                        args.push("--transparent");
                    }
                    args.extend(["--", "sh", "-c", script]);
                    let (status, log) = run(&args);
                    assert_code(status, *want, &format!("{args:?}"), &log);
                }
            });
        }
    });
}

// ---------------------------------------------------------------------------------------
// Resource faults.

/// What a fault run must come to: an exit (never a signal such as SIGABRT from a panic),
/// and a log with no panic message.
fn assert_clean_exit(status: ExitStatus, log: &str, what: &str) -> i32 {
    assert_eq!(
        status.signal(),
        None,
        "{what}: killed by a signal; log:\n{log}"
    );
    assert!(!log.contains("panicked"), "{what}: a panic; log:\n{log}");
    status.code().expect("an exit code")
}

/// With RLIMIT_NOFILE too low for its own files, gwshim either runs the child normally or
/// fails with one error line: 1 when it cannot set up its signal handling (before the
/// child), 126 when the child cannot be created. Its optional files (pacing state, pid file
/// cleanup) are warnings.
#[test]
fn a_file_limit_too_low_fails_clearly_or_runs() {
    let mut outcomes = BTreeMap::new();
    for limit in [3u64, 4, 5, 6, 7, 8, 10, 16, 64] {
        let dir = TempDir::new("nofile");
        let log = dir.join("gwshim.log");
        let pid = dir.join("svc.pid");
        fs::write(&pid, "2147483000\n").unwrap();
        let pidfile = format!("{}:{}", pid.display(), dir.join("svc.lock").display());
        let args = [
            "--start-limit",
            "5/10s",
            "--state-dir",
            dir.str(),
            "--name",
            "svc",
            "--pidfile",
            &pidfile,
            "--",
            "sh",
            "-c",
            "exit 3",
        ];
        let mut cmd = gwshim(&args, &log);
        // SAFETY: setrlimit is async-signal-safe and touches only the constant struct.
        unsafe {
            cmd.pre_exec(move || {
                let l = libc::rlimit {
                    rlim_cur: limit,
                    rlim_max: limit,
                };
                libc::setrlimit(libc::RLIMIT_NOFILE, &l);
                Ok(())
            });
        }
        let mut running = Running::start(cmd, &log);
        let status = running.wait();
        let text = running.log_text();
        let what = format!("ulimit -n {limit}");
        if status.code() == Some(127) && text.contains("error while loading shared libraries") {
            // The dynamic loader, before gwshim runs (a static build gets further).
            outcomes.insert(limit, 127);
            continue;
        }
        let code = assert_clean_exit(status, &text, &what);
        let errors: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("gwshim: error:"))
            .collect();
        match code {
            // Ran: exit 3 is a failure, 75.
            75 => assert!(errors.is_empty(), "{what}: {text}"),
            1 => assert!(
                errors.len() == 1 && text.contains("signalfd") && text.contains("Too many open"),
                "{what}: one line naming the signalfd:\n{text}"
            ),
            126 => assert!(
                errors.len() == 1 && text.contains("Too many open"),
                "{what}: one line naming the cause:\n{text}"
            ),
            other => panic!("{what}: unexpected exit {other}; log:\n{text}"),
        }
        outcomes.insert(limit, code);
    }
    // Only 0-2 open: not even the signalfd fits (if the loader got that far).
    assert!([1, 127].contains(&outcomes[&3]), "{outcomes:?}");
    eprintln!("exit status by RLIMIT_NOFILE: {outcomes:?}");
    assert_eq!(outcomes[&64], 75, "{outcomes:?}");
}

/// `/proc/PID/fd` as (fd, target) pairs.
fn fds(pid: i32) -> BTreeSet<(i32, String)> {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| {
                let e = e.ok()?;
                let n = e.file_name().to_str()?.parse().ok()?;
                let target = fs::read_link(e.path()).ok()?;
                Some((n, target.to_string_lossy().into_owned()))
            })
            .collect()
        })
        .unwrap_or_default()
}

fn close_in_child(cmd: &mut Command, close: &'static [i32]) {
    // SAFETY: close(2) is async-signal-safe; the slice is static.
    unsafe {
        cmd.pre_exec(move || {
            for &fd in close {
                libc::close(fd);
            }
            Ok(())
        });
    }
}

/// Started with stdout, stderr or both closed (and -v, so it writes log lines): gwshim still
/// forwards, decides and exits as always, and the child starts with those fds closed too,
/// not with one of gwshim's own files in their place.
#[test]
fn closed_stdout_or_stderr() {
    let py = need_python!();
    const CASES: [&[i32]; 3] = [&[1], &[2], &[1, 2]];
    for close in CASES {
        let dir = TempDir::new("closed");
        let what = format!("fds {close:?} closed");
        let (mut run, child) = recorder_with(
            py,
            &dir,
            &["-v", "--no-pacing"],
            &["--exit-on", "USR2=3"],
            |cmd| close_in_child(cmd, close),
        );
        assert!(stat(child).is_some());
        kill(run.pid, libc::SIGUSR1);
        record_len(dir.path(), 1, &run);
        kill(run.pid, libc::SIGUSR2);
        let status = run.wait();
        let code = assert_clean_exit(status, &run.log_text(), &what);
        assert_eq!(code, 75, "{what}");
        assert_eq!(
            record(dir.path()),
            vec![libc::SIGUSR1, libc::SIGUSR2],
            "{what}: nothing but what was sent"
        );
    }
}

/// The child of gwshim started with `close` closed holds exactly the fds gwshim inherited:
/// the closed ones closed, not the /dev/null that Rust's runtime puts there for gwshim.
#[test]
fn closed_stdio_reaches_the_child_closed() {
    const CASES: [&[i32]; 4] = [&[0], &[1], &[2], &[0, 1, 2]];
    for close in CASES {
        let dir = TempDir::new("closedfd");
        let log = dir.join("gwshim.log");
        let child_pid = dir.join("child");
        let script = format!(
            "echo $$ > {0}.tmp && mv {0}.tmp {0} && exec sleep 30",
            child_pid.display()
        );
        let mut cmd = gwshim(&["-v", "--no-pacing", "--", "sh", "-c", &script], &log);
        close_in_child(&mut cmd, close);
        let run = Running::start(cmd, &log);
        assert!(wait_until(|| child_pid.exists()), "{close:?}");
        let child: i32 = fs::read_to_string(&child_pid)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(wait_until(|| fs::read_link(format!("/proc/{child}/exe"))
            .is_ok_and(|p| p.to_string_lossy().ends_with("/sleep"))));
        let inherited: BTreeSet<_> = fds(run.pid)
            .into_iter()
            .filter(|(n, t)| !t.contains("signalfd") && !t.contains("pidfd") && !close.contains(n))
            .collect();
        assert!(wait_asleep(child), "sleep never went to sleep");
        assert_eq!(fds(child), inherited, "fds {close:?} closed");
    }
}

/// A pipe whose reading end is already closed.
fn broken_pipe() -> OwnedFd {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two-element array.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both fds were just created and are owned here.
    let (reader, writer) = unsafe {
        use std::os::fd::FromRawFd;
        (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
    };
    drop(reader);
    writer
}

fn mask_bit(mask: &str, sig: i32) -> bool {
    u64::from_str_radix(mask, 16).expect("a hex mask") & (1 << (sig - 1)) != 0
}

/// stderr a pipe nobody reads: every log line fails with EPIPE. That must not kill gwshim
/// (it blocks SIGPIPE) and the SIGPIPE its own write raises must not be taken for a signal
/// to forward: the child would die of it. The child starts with SIGPIPE at its inherited
/// disposition (here: the default) and nothing blocked.
#[test]
fn stderr_a_closed_pipe() {
    let py = need_python!();
    let dir = TempDir::new("epipe");
    let sig = dir.join("sig");
    let script = format!(
        "grep -E '^Sig(Ign|Blk)' /proc/self/status > {0}.tmp && mv {0}.tmp {0} && \
         exec {py} {CHILD_PY} record {1} --exit-on USR2=3",
        sig.display(),
        dir.str()
    );
    let log = dir.join("unused.log");
    let mut cmd = gwshim(&["-v", "--no-pacing", "--", "sh", "-c", &script], &log);
    cmd.stderr(Stdio::from(broken_pipe()));
    let mut run = Running::start(cmd, &log);
    ready(&dir, &run);
    let text = fs::read_to_string(&sig).unwrap();
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim().to_string())
            .unwrap()
    };
    assert!(!mask_bit(&field("SigIgn:"), libc::SIGPIPE), "{text}");
    assert_eq!(field("SigBlk:"), "0000000000000000", "{text}");
    // Each forwarded signal is a debug line, i.e. a failed write.
    for _ in 0..3 {
        kill(run.pid, libc::SIGUSR1);
    }
    kill(run.pid, libc::SIGWINCH);
    record_len(dir.path(), 2, &run);
    settle();
    kill(run.pid, libc::SIGUSR2);
    let status = run.wait();
    let code = assert_clean_exit(status, "", "stderr a closed pipe");
    assert_eq!(code, 75);
    let got = record(dir.path());
    assert!(
        !got.contains(&libc::SIGPIPE),
        "gwshim forwarded the SIGPIPE of its own log write: {got:?}"
    );
    assert_eq!(got.last(), Some(&libc::SIGUSR2), "{got:?}");
}

/// Runs gwshim with stdout and stderr pipes whose readers are gone: its own messages (help,
/// usage errors) fail to print, which must not make it panic (print! would).
#[test]
fn messages_to_a_closed_pipe_do_not_panic() {
    for (args, want) in [
        (&["--help"][..], 0),
        (&["--version"], 0),
        (&["--no-such-option", "--", "true"], 2),
        (&["--keep-status", "bad", "--", "true"], 2),
    ] {
        let dir = TempDir::new("msgpipe");
        let log = dir.join("unused.log");
        let mut cmd = gwshim(args, &log);
        cmd.stdout(Stdio::from(broken_pipe()))
            .stderr(Stdio::from(broken_pipe()));
        let mut run = Running::start(cmd, &log);
        let status = run.wait();
        let code = assert_clean_exit(status, "", &format!("{args:?}"));
        assert_eq!(code, want, "{args:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Wayward children.

/// A child that closes its stdio, leaves gwshim's process group (setsid, or setpgid) and
/// stops itself: gwshim keeps waiting (a stop is no exit), still forwards to it, and
/// decides its exit as always.
#[test]
fn wayward_children_are_not_mistaken_for_an_exit() {
    let py = need_python!();
    for how in ["--setsid", "--setpgid"] {
        let dir = TempDir::new("wayward");
        let child_opts = ["--close-stdio", how, "--stop-self", "--exit-on", "TERM=4"];
        let (mut run, child) = recorder_with(py, &dir, &["--no-pacing"], &child_opts, |_| {});
        run.extra_groups.push(child);
        assert!(
            wait_until(|| stopped(child)),
            "{how}: the child did not stop itself"
        );
        let (_, _, pgrp) = stat(child).unwrap();
        assert_eq!(pgrp, child, "{how}: the child leads its own group");
        sleep(Duration::from_millis(300));
        assert!(run.alive(), "{how}: gwshim took a stop for an exit");
        assert!(stopped(child), "{how}: still stopped");
        kill(child, libc::SIGCONT);
        assert!(wait_until(|| !stopped(child)));
        // The child blocks SIGCONT too, so it records it; wait for that before the next
        // signal (pending signals are taken lowest number first).
        record_len(dir.path(), 1, &run);
        kill(run.pid, libc::SIGUSR1);
        record_len(dir.path(), 2, &run);
        assert!(run.alive());
        kill(run.pid, libc::SIGTERM);
        let status = run.wait();
        // A stop signal reached the child, which then exited 4: gwshim exits 0.
        assert_code(status, 0, how, &run.log_text());
        assert_eq!(
            record(dir.path()),
            vec![libc::SIGCONT, libc::SIGUSR1, libc::SIGTERM],
            "{how}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// gwshim's own SIGKILL.

/// With --pdeathsig the child follows gwshim's SIGKILL.
#[test]
fn sigkill_of_gwshim_with_pdeathsig_ends_the_child() {
    let py = need_python!();
    let dir = TempDir::new("pdeath");
    let (mut run, child) = recorder_with(
        py,
        &dir,
        &["--no-pacing", "--pdeathsig", "TERM"],
        &["--exit-on", "TERM=0"],
        |_| {},
    );
    run.extra_groups.push(child);
    kill(run.pid, libc::SIGKILL);
    let status = run.wait();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert!(
        wait_until(|| stat(child).is_none_or(|s| s.0 == 'Z')),
        "the child outlived gwshim"
    );
    assert_eq!(record(dir.path()), vec![libc::SIGTERM]);
}

/// gwshim SIGKILLed at arbitrary moments while it records starts and failures: the pacing
/// state file is always whole (written to a temporary file and renamed), never torn.
#[test]
fn sigkill_never_leaves_a_torn_state_file() {
    let dir = TempDir::new("torn");
    let state = dir.join("svc.pacing");
    let mut completed = 0;
    let mut seen = 0;
    for i in 0..40u64 {
        let log = dir.join("gwshim.log");
        let args = [
            "--start-limit",
            "1000/1h",
            "--restart-sec",
            "0",
            "--backoff",
            "0",
            "--state-dir",
            dir.str(),
            "--name",
            "svc",
            "--",
            "true",
        ];
        let mut running = Running::start(gwshim(&args, &log), &log);
        // Anywhere from at once to after the end: 0-4 ms in steps of 0.1 ms.
        sleep(Duration::from_micros((i * 733) % 4000));
        // SAFETY: kill(2) with plain integers.
        unsafe { libc::kill(running.pid, libc::SIGKILL) };
        let status = running.wait();
        if status.code() == Some(0) {
            completed += 1;
        }
        if let Ok(text) = fs::read_to_string(&state) {
            seen += 1;
            let h = History::parse(&text);
            assert!(h.is_some(), "run {i}: torn state file {text:?}");
        }
    }
    // Not a timing assertion: only that the loop exercised something.
    assert!(
        seen > 0,
        "no run got as far as writing the state ({completed} completed)"
    );
}

// ---------------------------------------------------------------------------------------
// fd audit.

/// With everything that opens files on (notify relay, pacing state, pid and lock file
/// cleanup), the child holds exactly the fds gwshim inherited: no signalfd, no relay socket,
/// no state, pid or lock file.
#[test]
fn fd_audit_with_every_feature_on() {
    let dir = TempDir::new("fdaudit");
    let log = dir.join("gwshim.log");
    let notify = UnixDatagram::bind(dir.join("notify")).unwrap();
    let pid = dir.join("svc.pid");
    let lock = dir.join("svc.lock");
    fs::write(&pid, "2147483000\n").unwrap();
    fs::write(&lock, "").unwrap();
    let child_pid = dir.join("child");
    let script = format!(
        "echo $$ > {0}.tmp && mv {0}.tmp {0} && exec sleep 30",
        child_pid.display()
    );
    let pidfile = format!("{}:{}", pid.display(), lock.display());
    let state = dir.join("state");
    let args = [
        "--start-limit",
        "5/10s",
        "--state-dir",
        state.to_str().unwrap(),
        "--name",
        "svc",
        "--pidfile",
        &pidfile,
        "--",
        "sh",
        "-c",
        &script,
    ];
    let inherited = fs::File::open("/dev/null").unwrap();
    let raw = inherited.as_raw_fd();
    let mut cmd = gwshim(&args, &log);
    cmd.env("NOTIFY_SOCKET", dir.join("notify"));
    // SAFETY: dup2 is async-signal-safe; fd 7 is not close-on-exec, so gwshim inherits it.
    unsafe {
        cmd.pre_exec(move || {
            libc::dup2(raw, 7);
            Ok(())
        });
    }
    let run = Running::start(cmd, &log);
    assert!(
        wait_until(|| child_pid.exists()),
        "log:\n{}",
        run.log_text()
    );
    let child: i32 = fs::read_to_string(&child_pid)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(wait_until(|| fs::read_link(format!("/proc/{child}/exe"))
        .is_ok_and(|p| p.to_string_lossy().ends_with("/sleep"))));
    assert!(
        !pid.exists() && !lock.exists(),
        "the stale files were cleaned"
    );
    let gw = fds(run.pid);
    let own: Vec<&(i32, String)> = gw
        .iter()
        .filter(|(_, t)| t.contains("signalfd") || t.starts_with("socket:") || t.contains("pidfd"))
        .collect();
    let pidfds = own.iter().filter(|(_, t)| t.contains("pidfd")).count();
    // The child's pidfd only where the kernel has pidfds (5.3+).
    assert!(
        own.len() - pidfds == 3 && pidfds <= 1,
        "gwshim holds a signalfd, the relay socket, the socket of its own status lines and at \
         most the child's pidfd: {gw:?}"
    );
    let inherited_set: BTreeSet<_> = gw.iter().filter(|e| !own.contains(e)).cloned().collect();
    assert!(wait_asleep(child), "sleep never went to sleep");
    assert_eq!(fds(child), inherited_set, "exactly what gwshim inherited");
    drop(notify);
}
