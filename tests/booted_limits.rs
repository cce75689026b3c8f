//! The unit's limits where gwshim cannot see them all, on a booted Debian 13 (systemd 257 as
//! pid 1, tests/booted/mod.rs): a start whose `ExecStartPre=` failed uses a slot of the start
//! limit though gwshim never ran, and the forms `systemctl show` prints for long spans. The same
//! cases run on systemd 252 under the user manager in tests/systemd_limits.rs.
//!
//! Run only these: `cargo test --release --test booted_limits` (as root; about 40 s once the
//! root file systems are cached).

mod booted;
mod skip;

use booted::{Container, GWSHIM_IN, Scope, Suite};
use std::time::Duration;

const UNIT: &str = "pre.service";
/// The ExecStartPre= command: fails on its 2nd run only.
const PRE: &str = "/bin/sh -c 'n=$(($(cat /run/pre.n 2>/dev/null || echo 0) + 1)); \
echo $n > /run/pre.n; [ $n -ne 2 ]'";
/// The service: fails at once on its first 3 runs, then stays up.
const SERVICE: &str = "n=$(($(cat /run/svc.n 2>/dev/null || echo 0) + 1)); echo $n > /run/svc.n\n\
[ $n -gt 3 ] || exit 1\nexec sleep 1000\n";

fn boot() -> Option<Container> {
    if !booted::host_has_cgroup2() {
        skip::skip_always_allowed(
            "systemd 257 needs the unified cgroup hierarchy (cgroup2), which this host does not mount",
        );
        return None;
    }
    match Container::boot(Suite::Trixie) {
        Ok(c) => Some(c),
        Err(why) => {
            skip::skip(&why);
            None
        }
    }
}

/// Installs pre.service (3 starts per 30 s, RestartSec=500ms), with gwshim or without.
fn install(c: &Container, gwshim: bool) {
    c.write("/run/svc.sh", SERVICE);
    let exec = if gwshim {
        format!("{GWSHIM_IN} --backoff 0 -- /bin/sh /run/svc.sh")
    } else {
        "/bin/sh /run/svc.sh".to_string()
    };
    c.write(
        &format!("/etc/systemd/system/{UNIT}"),
        &format!(
            "[Unit]\nStartLimitBurst=3\nStartLimitIntervalSec=30\n[Service]\nExecStartPre={PRE}\n\
             ExecStart={exec}\nRestart=on-failure\nRestartSec=500ms\nRestartForceExitStatus=75\n"
        ),
    );
    c.systemctl_ok(Scope::System, &["daemon-reload"]);
}

fn runs(c: &Container) -> u32 {
    c.read("/run/svc.n").trim().parse().unwrap_or(0)
}

#[test]
fn a_failed_exec_start_pre_on_systemd_257() {
    let Some(c) = boot() else { return };
    assert_eq!(c.systemd_version(), 257);

    // What 257's systemctl show prints, as gwshim reads it.
    c.write(
        "/etc/systemd/system/eight.service",
        "[Unit]\nStartLimitIntervalSec=8d\n[Service]\nExecStart=/bin/true\n",
    );
    install(&c, false);
    assert_eq!(
        c.prop(Scope::System, "eight.service", "StartLimitIntervalUSec"),
        "1w 1d"
    );
    let pre = c.prop(Scope::System, UNIT, "ExecStartPre");
    assert!(pre.contains("ignore_errors=no"), "{pre}");

    // The control: starts 1 and 3 run the service, 2 fails its ExecStartPre=, 4 is refused.
    c.systemctl_ok(Scope::System, &["start", "--no-block", UNIT]);
    c.wait_state(Scope::System, UNIT, Duration::from_secs(20), |s| {
        s.is_failed()
    });
    assert_eq!(runs(&c), 2, "{}", c.context());
    let j = c.journal(&format!("-u {UNIT}"));
    assert!(j.contains("Start request repeated too quickly"), "{j}");

    // Under gwshim: the start it never ran is counted, the unit never fails. ~35 s.
    c.sh_ok("rm -f /run/pre.n /run/svc.n");
    c.systemctl_ok(Scope::System, &["reset-failed", UNIT]);
    install(&c, true);
    let cursor = c.sh_ok("journalctl -n 0 --show-cursor -q | sed -n 's/^-- cursor: //p'");
    c.systemctl_ok(Scope::System, &["start", "--no-block", UNIT]);
    c.wait_until(
        "the service's 4th run to be up",
        Duration::from_secs(90),
        |c| {
            let st = c.state(Scope::System, UNIT);
            assert!(
                !st.is_failed(),
                "{st:?} after {} runs{}",
                runs(c),
                c.context()
            );
            (runs(c) == 4 && st.is_running()).then_some(())
        },
    );
    let j = c.journal(&format!("-u {UNIT} --after-cursor='{}'", cursor.trim()));
    assert!(!j.contains("Start request repeated too quickly"), "{j}");
    assert!(
        j.contains("1 start of pre.service since gwshim's last start never ran gwshim (NRestarts 0 then, 2 now"),
        "{j}"
    );
    c.systemctl_ok(Scope::System, &["stop", UNIT]);
}
