//! The panic hook (src/guard.rs): a bug in gwshim never leaves the child running. The hook
//! is exercised in a helper process (this very test binary, re-run), so gwshim needs no
//! test-only way to panic. No libtest harness (`harness = false`): the helper must be one
//! thread, as gwshim is, so that blocking SIGCHLD blocks it for the whole process; libtest
//! would run it on a thread of its own beside a main thread that does not block it.

use gwshim::guard::{self, PANIC_GRACE};
use gwshim::signals::Signals;
use nix::unistd::Pid;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const HELPER_ENV: &str = "GWSHIM_TEST_PANIC_HELPER";
/// "term": the child ends on SIGTERM; "ignore-term": it ignores SIGTERM.
const MODE_ENV: &str = "GWSHIM_TEST_PANIC_MODE";

fn main() {
    if let Some(dir) = std::env::var_os(HELPER_ENV) {
        panic_helper(Path::new(&dir));
    }
    for (name, test) in [
        (
            "panic_hook_ends_the_child",
            panic_hook_ends_the_child as fn(),
        ),
        (
            "panic_hook_kills_a_child_that_ignores_sigterm",
            panic_hook_kills_a_child_that_ignores_sigterm,
        ),
    ] {
        test();
        println!("test {name} ... ok");
    }
}

/// The helper: starts a child, blocks every signal as gwshim does, installs the hook,
/// watches the child and panics.
fn panic_helper(dir: &Path) -> ! {
    let script = match std::env::var(MODE_ENV).as_deref() {
        Ok("ignore-term") => "trap '' TERM; exec sleep 30",
        _ => "exec sleep 30",
    };
    // Not waited for here: the panic hook reaps it.
    #[allow(clippy::zombie_processes)]
    let child = Command::new("sh")
        .args(["-c", script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting the child");
    let pid = child.id() as i32;
    // After the spawn: std's Command would pass the blocked mask on to the child.
    let _signals = Signals::block_all().expect("blocking signals");
    fs::write(dir.join("child"), pid.to_string()).unwrap();
    // Let sh set up its trap before the hook's SIGTERM can arrive.
    std::thread::sleep(Duration::from_millis(200));
    guard::install();
    guard::watch(Pid::from_raw(pid), false);
    panic!("a deliberate panic");
}

/// Runs the helper in `mode`; returns its output, how long it ran, and its child's pid.
fn run_helper(mode: &str) -> (String, Duration, i32) {
    let dir = std::env::temp_dir().join(format!("gwshim-test-panic-{}-{mode}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let started = Instant::now();
    let out = Command::new(std::env::current_exe().unwrap())
        .env(HELPER_ENV, &dir)
        .env(MODE_ENV, mode)
        .stdin(Stdio::null())
        .output()
        .expect("running the helper");
    let took = started.elapsed();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let pid: i32 = fs::read_to_string(dir.join("child"))
        .expect("the helper started a child")
        .parse()
        .unwrap();
    let _ = fs::remove_dir_all(&dir);
    assert!(!out.status.success(), "the helper panicked:\n{text}");
    assert!(text.contains("a deliberate panic"), "{text}");
    // The hook reaped it, so the pid is gone, not a zombie.
    assert!(
        fs::metadata(format!("/proc/{pid}")).is_err(),
        "child pid {pid} outlived the panic:\n{text}"
    );
    (text, took, pid)
}

fn panic_hook_ends_the_child() {
    let (text, took, _) = run_helper("term");
    // SIGTERM ends the child at once, and its SIGCHLD wakes the hook: no waiting out the grace.
    assert!(
        took < PANIC_GRACE - Duration::from_secs(1),
        "the hook waited {took:?} for a child that ended on SIGTERM:\n{text}"
    );
}

fn panic_hook_kills_a_child_that_ignores_sigterm() {
    let (text, took, _) = run_helper("ignore-term");
    assert!(
        took >= PANIC_GRACE,
        "SIGKILL came after {took:?}, before the {PANIC_GRACE:?} grace:\n{text}"
    );
}
