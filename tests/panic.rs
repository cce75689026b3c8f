//! The panic hook (src/guard.rs): a bug in gwshim never leaves the child running. The hook
//! is exercised in a helper process (this very test binary, re-run on one ignored test), so
//! gwshim needs no test-only way to panic.

use gwshim::guard;
use nix::unistd::Pid;
use std::fs;
use std::process::{Command, Stdio};

const HELPER_ENV: &str = "GWSHIM_TEST_PANIC_HELPER";

/// Run only as the helper: starts a child that ignores nothing, installs the hook, watches
/// the child and panics.
#[test]
#[ignore = "a helper for panic_hook_ends_the_child"]
fn panic_helper() {
    let Some(dir) = std::env::var_os(HELPER_ENV) else {
        return;
    };
    // Not waited for here: the panic hook reaps it.
    #[allow(clippy::zombie_processes)]
    let child = Command::new("sleep")
        .arg("30")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting sleep");
    let pid = child.id() as i32;
    fs::write(std::path::Path::new(&dir).join("child"), pid.to_string()).unwrap();
    guard::install();
    guard::watch(Pid::from_raw(pid), false);
    panic!("a deliberate panic");
}

#[test]
fn panic_hook_ends_the_child() {
    let dir = std::env::temp_dir().join(format!("gwshim-test-panic-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "panic_helper",
            "--test-threads",
            "1",
        ])
        .env(HELPER_ENV, &dir)
        .stdin(Stdio::null())
        .output()
        .expect("running the helper");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let pid: i32 = fs::read_to_string(dir.join("child"))
        .expect("the helper started a child")
        .parse()
        .unwrap();
    let _ = fs::remove_dir_all(&dir);
    assert!(!out.status.success(), "the helper panicked:\n{text}");
    assert!(text.contains("a deliberate panic"), "{text}");
    // The hook reaped it (SIGTERM ends sleep at once), so the pid is gone, not a zombie.
    assert!(
        fs::metadata(format!("/proc/{pid}")).is_err(),
        "child pid {pid} outlived the panic:\n{text}"
    );
}
