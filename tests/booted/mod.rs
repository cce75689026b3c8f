//! A booted systemd for gwshim's tests: a Debian container whose pid 1 is systemd, booted with
//! `systemd-nspawn -b`, with hermes-agent 0.19.0, gwshim (the static build) and gwshim's
//! contrib files in it. See docs/booted-systemd.md.
//!
//! ```ignore
//! // in tests/NAME.rs: mod booted; mod skip; use booted::{Container, Scope, Suite};
//! let c = match Container::boot(Suite::Bookworm) {
//!     Ok(c) => c,
//!     Err(why) => return skip::skip(&why),   // not root, no nspawn, no network for the rootfs
//! };
//! c.hermes_install(Scope::System);           // `hermes gateway install --system`, User=hermes
//! c.install_dropin(Scope::System, &[]);      // contrib/hermes/install-dropin.sh --system
//! c.systemctl_ok(Scope::System, &["start", booted::UNIT]);
//! let pid = c.wait_gateway_up(0, Duration::from_secs(60));  // the gateway's pid in the container
//! assert!(c.journal("-u hermes-gateway").contains("gwshim:"));
//! ```
//!
//! The root file system is built once per Debian suite by tests/booted/make-rootfs.sh and cached
//! in `target/booted/rootfs-SUITE-vN` (about a minute each); every boot runs on an overlay of
//! it, so the cache is never written and each container starts clean. gwshim is built with
//! contrib/build-static.sh (cached in target/static) and copied in at every boot, as are
//! install-dropin.sh and its template (`/usr/local/share/gwshim/`).
//!
//! The host needs no systemd: nspawn runs with `--register=no --keep-unit` inside cgroups the
//! harness makes (one per hierarchy), in a private mount namespace that holds the overlay.
//! Everything is driven with `nsenter` into the container's namespaces.
//!
//! One container per Debian suite at a time, machine-wide: `Container::boot` holds a mutex and
//! a flock per suite (`$TMPDIR/gwshim-booted-SUITE.lock`) until the container is dropped, so a
//! Debian 12 and a Debian 13 container may run side by side (the tests mostly wait on systemd's
//! timers, so that halves their time at little cost in CPU). Dropping it powers the
//! container off (SIGTERM to nspawn, bounded), SIGKILLs whatever is left in its cgroups by pid,
//! removes the cgroups deepest first (the overlay mount dies with its namespace) and removes
//! the overlay's writable layer. Every wait is bounded. With GWSHIM_KEEP_TEST_DIR=1, or when the
//! test is failing, the console log and the container's journal are printed.

#![allow(dead_code)] // each test binary uses a different part of the harness

#[path = "../sandbox/mod.rs"]
mod sandbox;

use nix::fcntl::Flock;
use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, geteuid};
pub use sandbox::{UnitState, run_bounded};
use sandbox::{
    cgroup_pids, cgroup_roots, flock_within, kill_cgroups, make_cgroups, remove_cgroups,
    sweep_stale_cgroups, wait_child,
};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");
/// The unit `hermes gateway install` writes.
pub const UNIT: &str = "hermes-gateway.service";
/// The user the system unit runs as (`User=hermes`), uid 1000, home /home/hermes.
pub const USER: &str = "hermes";
pub const UID: u32 = 1000;
/// The gateway's HERMES_HOME, as seen in the container.
pub const HERMES_HOME: &str = "/home/hermes/.hermes";
/// gwshim in the container.
pub const GWSHIM_IN: &str = "/usr/local/bin/gwshim";
/// contrib/hermes/install-dropin.sh and its template in the container.
pub const CONTRIB_IN: &str = "/usr/local/share/gwshim";
/// The version of the recipe in make-rootfs.sh: bump it when the recipe changes, so caches of
/// the old recipe are not used.
const RECIPE: &str = "v1";

/// How long another test process's container may hold the machine-wide lock.
const LOCK_TIMEOUT: Duration = Duration::from_secs(1200);
/// How long building one root file system may take (about a minute here).
const ROOTFS_TIMEOUT: Duration = Duration::from_secs(900);
/// How long the container may take to boot (under a second here).
const BOOT_TIMEOUT: Duration = Duration::from_secs(90);
/// How long one command in the container may take.
const CMD_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the container may take to power off after nspawn got SIGTERM.
const POWEROFF_TIMEOUT: Duration = Duration::from_secs(30);
const CGROUP_PREFIX: &str = "gwshim-booted-";

/// One per suite, in `Suite` order.
static ONE_AT_A_TIME: [Mutex<()>; 2] = [Mutex::new(()), Mutex::new(())];
static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The Debian releases the tests boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suite {
    /// Debian 12, systemd 252.
    Bookworm,
    /// Debian 13, systemd 257.
    Trixie,
}

impl Suite {
    pub fn name(self) -> &'static str {
        match self {
            Suite::Bookworm => "bookworm",
            Suite::Trixie => "trixie",
        }
    }
    /// The systemd major version the suite ships.
    pub fn systemd(self) -> u32 {
        match self {
            Suite::Bookworm => 252,
            Suite::Trixie => 257,
        }
    }
}

/// Which manager a command talks to: the container's system manager, or a user's own manager
/// (`systemctl --user` as that user, with XDG_RUNTIME_DIR=/run/user/UID).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    System,
    User,
}

/// A booted container. See the module documentation.
pub struct Container {
    suite: Suite,
    nspawn: Child,
    /// The container's pid 1, as the host sees it.
    init: i32,
    work: PathBuf,
    console: PathBuf,
    cgroups: Vec<PathBuf>,
    /// Time from nspawn's start to `is-system-running` answering running or degraded.
    pub boot_time: Duration,
    /// When this test had the machine to itself (the lock taken), for the timing line.
    since: Instant,
    _machine_lock: Flock<fs::File>,
    _one_at_a_time: MutexGuard<'static, ()>,
}

impl Container {
    /// Builds (or reuses) the suite's root file system and boots it. Err is the reason to skip:
    /// not root, a missing tool, no cgroup2 for a systemd that needs it, a root file system
    /// that cannot be built (no network). A container that does not come up is a panic.
    pub fn boot(suite: Suite) -> Result<Container, String> {
        let lock = ONE_AT_A_TIME[suite as usize]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        preflight()?;
        let gwshim = static_gwshim()?;
        prepare_rootfs_all();
        let rootfs = rootfs(suite)?;
        let machine_lock = machine_lock(suite);
        sweep_stale_cgroups(CGROUP_PREFIX, |name| {
            let _ = Command::new("rm")
                .args(["-rf", "--one-file-system"])
                .arg(std::env::temp_dir().join(name))
                .status();
        });

        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("{CGROUP_PREFIX}{}-{n}", std::process::id());
        let cgroups = make_cgroups(&name)?;
        let work = std::env::temp_dir().join(&name);
        let _ = fs::remove_dir_all(&work);
        if let Err(e) = fs::create_dir_all(&work) {
            remove_cgroups(&cgroups);
            panic!("cannot make {}: {e}", work.display());
        }
        let console = work.join("console.log");
        let out = fs::File::create(&console).expect("console log");
        let err = out.try_clone().expect("console log");

        let mut cmd = Command::new(format!("{MANIFEST}/tests/booted/boot.sh"));
        cmd.arg(&rootfs).arg(&work).args(&cgroups).arg("--").args([
            "--register=no",
            "--keep-unit",
            "--console=passive",
            "--private-network",
            "--machine",
            &format!("gwshim-booted-{}", suite.name()),
        ]);
        // A pure cgroup2 hierarchy in the container, as on a current Debian host (257 refuses
        // to boot on the legacy one without a taint); nspawn sets it up on a hybrid host too.
        cmd.env("SYSTEMD_NSPAWN_UNIFIED_HIERARCHY", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        // If the test process dies, nspawn gets SIGTERM and powers the container off.
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Some(Signal::SIGTERM)).map_err(std::io::Error::from)
            });
        }
        let started = Instant::now();
        let nspawn = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                remove_cgroups(&cgroups);
                return Err(format!("cannot run boot.sh: {e}"));
            }
        };
        let mut c = Container {
            suite,
            nspawn,
            init: 0,
            work,
            console,
            cgroups,
            boot_time: Duration::ZERO,
            since: Instant::now(),
            _machine_lock: machine_lock,
            _one_at_a_time: lock,
        };
        let deadline = Instant::now() + BOOT_TIMEOUT;
        c.init = loop {
            if let Some(pid) = find_init(&c.cgroups) {
                break pid;
            }
            if let Ok(Some(st)) = c.nspawn.try_wait() {
                panic!("systemd-nspawn exited ({st}) before booting{}", c.context());
            }
            if Instant::now() > deadline {
                panic!(
                    "no pid 1 in the container after {BOOT_TIMEOUT:?}{}",
                    c.context()
                );
            }
            thread::sleep(Duration::from_millis(50));
        };
        let state = c.wait_until("the container to finish booting", BOOT_TIMEOUT, |c| {
            let out = c.sh("systemctl is-system-running").ok()?;
            let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
            matches!(state.as_str(), "running" | "degraded").then_some(state)
        });
        c.boot_time = started.elapsed();
        if state == "degraded" {
            eprintln!(
                "booted {}: degraded: {}",
                suite.name(),
                c.sh_ok("systemctl --failed --no-legend --plain")
            );
        }
        let version = c.systemd_version();
        assert_eq!(
            version,
            suite.systemd(),
            "{} booted systemd {version}",
            suite.name()
        );
        c.copy_in(&gwshim, GWSHIM_IN, 0o755);
        for f in ["install-dropin.sh", "gwshim.conf.in"] {
            let src = Path::new(MANIFEST).join("contrib/hermes").join(f);
            c.copy_in(&src, &format!("{CONTRIB_IN}/{f}"), 0o755);
        }
        eprintln!(
            "booted {} (systemd {version}) in {:.1} s",
            suite.name(),
            c.boot_time.as_secs_f64()
        );
        Ok(c)
    }

    /// A path in the container, as the host can open it (`/proc/INIT/root/PATH`).
    pub fn path(&self, in_container: &str) -> PathBuf {
        PathBuf::from(format!(
            "/proc/{}/root/{}",
            self.init,
            in_container.trim_start_matches('/')
        ))
    }

    /// Reads a file of the container ("" if it cannot be read).
    pub fn read(&self, in_container: &str) -> String {
        fs::read_to_string(self.path(in_container)).unwrap_or_default()
    }

    /// Writes a file in the container (root-owned, mode 0644), making its folder.
    pub fn write(&self, in_container: &str, text: &str) {
        let p = self.path(in_container);
        if let Some(dir) = p.parent() {
            fs::create_dir_all(dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        }
        fs::write(&p, text).unwrap_or_else(|e| panic!("write {in_container}: {e}"));
    }

    fn copy_in(&self, src: &Path, in_container: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        let p = self.path(in_container);
        if let Some(dir) = p.parent() {
            fs::create_dir_all(dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        }
        fs::copy(src, &p).unwrap_or_else(|e| panic!("copy {} in: {e}", src.display()));
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).expect("chmod");
    }

    /// Runs `sh -c SCRIPT` as root in all the container's namespaces (bounded); Err if it could
    /// not be run or timed out.
    pub fn sh(&self, script: &str) -> Result<Output, String> {
        let mut cmd = Command::new("nsenter");
        cmd.args(["-t", &self.init.to_string(), "-a", "--"])
            .args(["/bin/sh", "-c", script])
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            .env("LANG", "C.UTF-8")
            .env("HOME", "/root")
            .env("SYSTEMD_COLORS", "0")
            .env("SYSTEMD_PAGER", "");
        run_bounded(cmd, CMD_TIMEOUT)
    }

    /// `sh`, panicking unless the script succeeds; its stdout.
    pub fn sh_ok(&self, script: &str) -> String {
        let out = self
            .sh(script)
            .unwrap_or_else(|e| panic!("{script}: {e}{}", self.context()));
        let what = format!("in the container: {script}");
        sandbox::stdout_ok(&what, out, || self.context())
    }

    /// `sh -c SCRIPT` as the user `hermes`, with its login's environment for its user manager
    /// (XDG_RUNTIME_DIR, DBUS_SESSION_BUS_ADDRESS).
    pub fn sh_as_user(&self, script: &str) -> Result<Output, String> {
        let wrapped = format!(
            "exec runuser -u {USER} -- env HOME=/home/{USER} USER={USER} LOGNAME={USER} \
             XDG_RUNTIME_DIR=/run/user/{UID} \
             DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/{UID}/bus /bin/sh -c {}",
            shell_quote(script)
        );
        self.sh(&wrapped)
    }

    /// `sh_as_user`, panicking unless the script succeeds; its stdout.
    pub fn sh_as_user_ok(&self, script: &str) -> String {
        let out = self
            .sh_as_user(script)
            .unwrap_or_else(|e| panic!("{script}: {e}{}", self.context()));
        let what = format!("in the container, as {USER}: {script}");
        sandbox::stdout_ok(&what, out, || self.context())
    }

    /// `systemctl [--user] ARGS` (bounded, not checked).
    pub fn systemctl(&self, scope: Scope, args: &[&str]) -> Output {
        let line = format!(
            "systemctl {}--no-pager --no-ask-password {}",
            if scope == Scope::User { "--user " } else { "" },
            args.iter()
                .map(|a| shell_quote(a))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let out = match scope {
            Scope::System => self.sh(&line),
            Scope::User => self.sh_as_user(&line),
        };
        out.unwrap_or_else(|e| panic!("systemctl {args:?}: {e}{}", self.context()))
    }

    /// `systemctl [--user] ARGS`, panicking unless it succeeds; its stdout.
    pub fn systemctl_ok(&self, scope: Scope, args: &[&str]) -> String {
        let what = format!("systemctl ({scope:?}) {}", args.join(" "));
        sandbox::stdout_ok(&what, self.systemctl(scope, args), || self.context())
    }

    /// `systemctl show UNIT -p P...` as a map.
    pub fn show(&self, scope: Scope, unit: &str, props: &[&str]) -> BTreeMap<String, String> {
        let mut args = vec!["show", unit];
        for p in props {
            args.push("-p");
            args.push(p);
        }
        sandbox::show_map(&self.systemctl_ok(scope, &args))
    }

    /// One property of a unit ("" if systemd has no such property).
    pub fn prop(&self, scope: Scope, unit: &str, prop: &str) -> String {
        self.show(scope, unit, &[prop])
            .remove(prop)
            .unwrap_or_default()
    }

    /// ActiveState, SubState, Result, NRestarts and MainPID.
    pub fn state(&self, scope: Scope, unit: &str) -> UnitState {
        UnitState::from_show(&self.show(scope, unit, &UnitState::PROPERTIES))
    }

    /// `journalctl --no-pager -o cat ARGS` in the container (system journal; the user manager's
    /// units log there too).
    pub fn journal(&self, args: &str) -> String {
        self.sh_ok(&format!("journalctl --no-pager -o cat {args}"))
    }

    /// The container's systemd major version.
    pub fn systemd_version(&self) -> u32 {
        self.sh_ok("systemctl --version")
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// Polls `probe` every 100 ms until it gives Some, for at most `timeout`; panics with `what`
    /// and the container's logs when time is up.
    pub fn wait_until<T>(
        &self,
        what: &str,
        timeout: Duration,
        probe: impl FnMut(&Container) -> Option<T>,
    ) -> T {
        self.poll(timeout, Duration::from_millis(100), probe)
            .unwrap_or_else(|| {
                panic!(
                    "timed out after {timeout:?} waiting for {what}{}",
                    self.context()
                )
            })
    }

    /// Polls `probe` every `every` until it gives Some (returned) or `timeout` has passed.
    pub fn poll<T>(
        &self,
        timeout: Duration,
        every: Duration,
        mut probe: impl FnMut(&Container) -> Option<T>,
    ) -> Option<T> {
        sandbox::poll(timeout, every, || probe(self))
    }

    /// Waits (bounded) for a unit state that satisfies `pred`; panics with the last one seen.
    pub fn wait_state(
        &self,
        scope: Scope,
        unit: &str,
        timeout: Duration,
        pred: impl Fn(&UnitState) -> bool,
    ) -> UnitState {
        sandbox::wait_state(
            unit,
            timeout,
            || self.state(scope, unit),
            pred,
            || self.context(),
        )
    }

    // --- hermes ---

    /// `hermes gateway install` as the user `hermes` would run it: `--system` as
    /// `sudo hermes gateway install --system` does (root, SUDO_USER=hermes: a system unit with
    /// User=hermes), then gives the user back its ~/.hermes; the user unit as the user, after
    /// `loginctl enable-linger hermes` (its manager then runs without a login). Returns what
    /// hermes printed.
    pub fn hermes_install(&self, scope: Scope) -> String {
        match scope {
            Scope::System => {
                // Run as root, hermes leaves root-owned files in ~/.hermes: the gateway would
                // die of EACCES on logs/agent.log.
                self.sh_ok(&format!(
                    "SUDO_USER={USER} hermes gateway install --system 2>&1 && \
                     chown -R {USER}:{USER} /home/{USER}"
                ))
            }
            Scope::User => {
                self.enable_linger();
                self.sh_as_user_ok("hermes gateway install 2>&1")
            }
        }
    }

    /// `loginctl enable-linger hermes`, then waits for the user's manager.
    pub fn enable_linger(&self) {
        // As a unit of the container: 257's logind refuses a caller outside the container's
        // cgroups, as nsenter leaves it ("Protocol driver not attached").
        self.sh_ok(&format!(
            "systemd-run --wait --pipe --quiet loginctl enable-linger {USER}"
        ));
        self.wait_until("the user's manager", BOOT_TIMEOUT, |c| {
            let out = c.sh_as_user("systemctl --user is-system-running").ok()?;
            let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
            matches!(s.as_str(), "running" | "degraded").then_some(())
        });
    }

    /// Runs contrib/hermes/install-dropin.sh in the container (`--system` for the system unit;
    /// as the user for the user unit), with gwshim options after `--`. Its output.
    pub fn install_dropin(&self, scope: Scope, gwshim_options: &[&str]) -> String {
        let mut line = format!("{CONTRIB_IN}/install-dropin.sh --gwshim {GWSHIM_IN}");
        if scope == Scope::System {
            line.push_str(" --system");
        }
        if !gwshim_options.is_empty() {
            line.push_str(" --");
            for o in gwshim_options {
                line.push(' ');
                line.push_str(&shell_quote(o));
            }
        }
        line.push_str(" 2>&1");
        match scope {
            Scope::System => self.sh_ok(&line),
            Scope::User => self.sh_as_user_ok(&line),
        }
    }

    /// The folder for drop-ins of `unit` in `scope` (as the container sees it).
    pub fn dropin_dir(&self, scope: Scope, unit: &str) -> String {
        match scope {
            Scope::System => format!("/etc/systemd/system/{unit}.d"),
            Scope::User => format!("/home/{USER}/.config/systemd/user/{unit}.d"),
        }
    }

    /// Writes a drop-in `NAME.conf` for `unit` and reloads the manager.
    pub fn write_dropin(&self, scope: Scope, unit: &str, name: &str, text: &str) {
        let path = format!("{}/{name}.conf", self.dropin_dir(scope, unit));
        self.write(&path, text);
        if scope == Scope::User {
            self.sh_ok(&format!("chown -R {USER}:{USER} /home/{USER}/.config"));
        }
        self.systemctl_ok(scope, &["daemon-reload"]);
    }

    /// The pid (in the container) of a gateway that is up: `gateway.pid` names a live process
    /// that `gateway_state.json` says is running.
    pub fn gateway_up(&self) -> Option<u32> {
        let pid = json_pid(&self.read(&format!("{HERMES_HOME}/gateway.pid")))?;
        let state = self.read(&format!("{HERMES_HOME}/gateway_state.json"));
        let v: serde_json::Value = serde_json::from_str(&state).ok()?;
        let running = v.get("gateway_state").and_then(|s| s.as_str()) == Some("running")
            && v.get("pid").and_then(|p| p.as_u64()) == Some(u64::from(pid));
        (running && self.alive(pid)).then_some(pid)
    }

    /// Waits (bounded) for a gateway that is up and is not `old` (0: any); its pid.
    pub fn wait_gateway_up(&self, old: u32, timeout: Duration) -> u32 {
        self.wait_until("a gateway that is up", timeout, |c| {
            c.gateway_up().filter(|&p| p != old)
        })
    }

    /// Whether a pid of the container is a live process (not a zombie).
    pub fn alive(&self, pid: u32) -> bool {
        sandbox::alive_at(&self.path(&format!("/proc/{pid}/stat")))
    }

    /// Forgets the gateway's own restart history (`gateway-starts.log`): from its 6th start in
    /// 120 s the gateway sleeps 10 s, 20 s, 40 s ... before starting, which is not what these
    /// tests are about.
    pub fn reset_gateway_starts(&self) {
        let _ = fs::remove_file(self.path(&format!("{HERMES_HOME}/gateway-starts.log")));
    }

    /// Processes of the container whose command line contains `needle` (pid, command line).
    pub fn processes(&self, needle: &str) -> Vec<(u32, String)> {
        let mut out = Vec::new();
        let Ok(entries) = fs::read_dir(self.path("/proc")) else {
            return out;
        };
        for e in entries.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let cmd = fs::read(e.path().join("cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) && self.alive(pid) {
                out.push((pid, cmd.trim().to_string()));
            }
        }
        out
    }

    /// Text to append to a failure message: the end of the console and of the journal.
    pub fn context(&self) -> String {
        let mut s = String::new();
        let console = fs::read_to_string(&self.console).unwrap_or_default();
        let tail: Vec<&str> = console.lines().rev().take(15).collect();
        let _ = write!(
            s,
            "\n--- last lines of the console ({}) ---\n{}",
            self.console.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
        if self.init > 0
            && let Ok(out) = self.sh("journalctl --no-pager -n 60 -o short-monotonic")
        {
            let _ = write!(
                s,
                "\n--- last lines of the container's journal ---\n{}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        s
    }

    fn shutdown(&mut self) {
        // 1. nspawn passes SIGTERM on as a power-off request and exits when the container has.
        let _ = kill(Pid::from_raw(self.nspawn.id() as i32), Signal::SIGTERM);
        if wait_child(&mut self.nspawn, POWEROFF_TIMEOUT).is_none() {
            eprintln!(
                "booted: the container did not power off within {POWEROFF_TIMEOUT:?}; killing"
            );
        }
        // 2. Whatever is left in our cgroups: SIGKILL, by pid.
        kill_cgroups(&self.cgroups);
        if wait_child(&mut self.nspawn, Duration::from_secs(1)).is_none() {
            let _ = self.nspawn.kill();
            let _ = wait_child(&mut self.nspawn, Duration::from_secs(5));
        }
        // 3. The cgroups, deepest first; the overlay's mount went with its namespace.
        remove_cgroups(&self.cgroups);
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if thread::panicking() || std::env::var_os("GWSHIM_KEEP_TEST_DIR").is_some() {
            eprintln!("booted {}: {}", self.suite.name(), self.context());
        }
        self.shutdown();
        eprintln!(
            "timing: {} {}: {:.1} s from the lock to the container's cleanup",
            self.suite.name(),
            thread::current().name().unwrap_or("?"),
            self.since.elapsed().as_secs_f64()
        );
        // The writable layer: files of the container's users, device nodes for whiteouts.
        let _ = Command::new("rm")
            .args(["-rf", "--one-file-system"])
            .arg(&self.work)
            .status();
    }
}

/// The pid in a gateway.pid (JSON with "pid", or a bare number as old versions wrote).
pub fn json_pid(text: &str) -> Option<u32> {
    let t = text.trim();
    if let Ok(n) = t.parse() {
        return Some(n);
    }
    let v: serde_json::Value = serde_json::from_str(t).ok()?;
    v.get("pid")?.as_u64().and_then(|p| u32::try_from(p).ok())
}

/// A word for sh, in single quotes.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Why the harness cannot run here, if it cannot.
fn preflight() -> Result<(), String> {
    if !geteuid().is_root() {
        return Err("not root (booting a container needs root)".into());
    }
    for (tool, arg) in [
        ("systemd-nspawn", "--version"),
        ("debootstrap", "--version"),
        ("nsenter", "--version"),
        ("unshare", "--version"),
    ] {
        let mut cmd = Command::new(tool);
        cmd.arg(arg);
        match run_bounded(cmd, Duration::from_secs(10)) {
            Ok(out) if out.status.success() => {}
            Ok(out) => return Err(format!("{tool} does not work: {}", out.status)),
            Err(e) => {
                return Err(format!(
                    "no usable {tool} ({e}): apt-get install systemd-container debootstrap"
                ));
            }
        }
    }
    if cgroup_roots().is_empty() {
        return Err("no cgroup hierarchy for systemd under /sys/fs/cgroup".into());
    }
    Ok(())
}

/// Whether the host has a cgroup2 hierarchy nspawn can give the container (pure v2, or the
/// hybrid layout's /sys/fs/cgroup/unified). systemd 257 does not boot without one.
pub fn host_has_cgroup2() -> bool {
    let base = Path::new("/sys/fs/cgroup");
    base.join("cgroup.controllers").exists() || base.join("unified/cgroup.procs").exists()
}

/// The static gwshim (contrib/build-static.sh, cached in target/static), built once per test
/// process.
pub fn static_gwshim() -> Result<PathBuf, String> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let out = Command::new(format!("{MANIFEST}/contrib/build-static.sh"))
                .env("CARGO_TARGET_DIR", format!("{MANIFEST}/target/static"))
                .stderr(Stdio::inherit())
                .output()
                .map_err(|e| format!("contrib/build-static.sh: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "contrib/build-static.sh failed ({}); the container needs a static gwshim",
                    out.status
                ));
            }
            let stdout = String::from_utf8_lossy(&out.stdout);
            let path = stdout.lines().last().unwrap_or_default();
            let p = Path::new(MANIFEST).join(path);
            p.exists()
                .then_some(p)
                .ok_or_else(|| format!("build-static.sh printed {path:?}, which is not there"))
        })
        .clone()
}

/// Builds the missing root file systems of all suites at once, once per test process: the
/// builds wait mostly on the network, so two in parallel take little longer than one. Suites
/// the host cannot boot are left out; failures are reported by `rootfs` (it tries again).
fn prepare_rootfs_all() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let suites: Vec<Suite> = [Suite::Bookworm, Suite::Trixie]
            .into_iter()
            .filter(|&s| s != Suite::Trixie || host_has_cgroup2())
            .collect();
        let builds: Vec<_> = suites
            .into_iter()
            .map(|s| thread::spawn(move || rootfs(s)))
            .collect();
        for b in builds {
            let _ = b.join();
        }
    });
}

/// The suite's cached root file system, built first if missing. Builds of several test
/// processes take turns (a flock per suite).
pub fn rootfs(suite: Suite) -> Result<PathBuf, String> {
    let dir = Path::new(MANIFEST).join("target/booted");
    let path = dir.join(format!("rootfs-{}-{RECIPE}", suite.name()));
    let complete = |p: &Path| p.join("opt/hermes-venv/bin/hermes").exists();
    if complete(&path) {
        return Ok(path);
    }
    fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    let _lock = flock_within(
        &dir.join(format!("{}.lock", suite.name())),
        ROOTFS_TIMEOUT + Duration::from_secs(60),
    );
    if complete(&path) {
        return Ok(path);
    }
    let t0 = Instant::now();
    let mut cmd = Command::new(format!("{MANIFEST}/tests/booted/make-rootfs.sh"));
    cmd.arg(suite.name()).arg(&path);
    let out = run_bounded(cmd, ROOTFS_TIMEOUT)
        .map_err(|e| format!("building the {} root file system: {e}", suite.name()))?;
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    if !out.status.success() || !complete(&path) {
        return Err(format!(
            "cannot build the {} root file system ({}; debootstrap and pip need the network)",
            suite.name(),
            out.status
        ));
    }
    eprintln!(
        "built {} in {:.0} s",
        path.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(path)
}

/// The machine-wide lock of a suite: waits (bounded) for another test process's container of
/// that suite to go.
fn machine_lock(suite: Suite) -> Flock<fs::File> {
    flock_within(
        &std::env::temp_dir().join(format!("gwshim-booted-{}.lock", suite.name())),
        LOCK_TIMEOUT,
    )
}

/// The container's pid 1: the process in our cgroups that is pid 1 of its own pid namespace
/// and runs systemd.
fn find_init(cgroups: &[PathBuf]) -> Option<i32> {
    cgroup_pids(cgroups).into_iter().find(|&p| {
        let status = fs::read_to_string(format!("/proc/{p}/status")).unwrap_or_default();
        let nspid: Vec<&str> = status
            .lines()
            .find_map(|l| l.strip_prefix("NSpid:"))
            .map(|v| v.split_whitespace().collect())
            .unwrap_or_default();
        let comm = fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
        nspid.len() > 1 && nspid.last() == Some(&"1") && comm.trim() == "systemd"
    })
}
