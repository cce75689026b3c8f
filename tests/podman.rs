//! gwshim in a real container runtime: podman with runc, the image contrib/Dockerfile builds
//! (the static gwshim of the release archive, hermes-agent 0.19.0 from PyPI, user 10000), the
//! real gateway as its child, and contrib/kubernetes/ through `podman kube play`. Beside it the
//! same scenarios under podman's own init (`--init`, catatonit) and tini, for the table in
//! docs/containers.md (each run prints its row).
//!
//! Everything podman keeps lives in a store private to these tests (target/podman/storage, its
//! run state in /run/gwshim-tests-podman-*, a containers.conf of its own: runc, open-file and
//! process limits under this machine's hard ones, no registry). Cached there, keyed by what they
//! are made from: the Debian base (tests/podman/make-base.sh: debootstrap, as no registry is
//! reachable, tarred in target/podman and `podman import`ed), and the built image (keyed by the
//! Dockerfile, .dockerignore, SHA256SUMS of the release and the base). The release archive comes
//! from tests/common's release_dist, shared with tests/release.rs. Every container, pod, volume
//! and test-only tag is removed by a guard when its test ends; containers left by a test
//! process that died are removed at the next start. Without root or podman the tests skip.

mod common;
#[path = "sandbox/mod.rs"]
mod sandbox;
mod skip;

use common::recompress;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use sandbox::{flock_within, run_bounded};
use serde_json::Value;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");
/// The image's user (contrib/Dockerfile's `USER 10000:10000`) and its HERMES_HOME volume.
const UID: u32 = 10000;
const DATA: &str = "/opt/data";
/// What the gwshim containers run with: a grace that is not the default 5 s.
const GRACE_S: u64 = 3;
/// `podman stop -t`: the runtime's SIGKILL comes this long after its SIGTERM.
const STOP_TIMEOUT_S: u64 = 30;
/// How long the gateway may take to come up (a few seconds here; more on a loaded machine).
const UP_TIMEOUT: Duration = Duration::from_secs(120);
/// How long building the base or the image may take (about 1 and 2 minutes here).
const BUILD_TIMEOUT: Duration = Duration::from_secs(1200);
/// How long one podman command may take.
const CMD_TIMEOUT: Duration = Duration::from_secs(120);
const LABEL: &str = "gwshim-test-pid";

// ---------------------------------------------------------------------------------------------
// The private podman

fn target() -> PathBuf {
    Path::new(MANIFEST).join("target/podman")
}

/// The environment that points podman at the private configuration, written once per process.
fn conf_env() -> &'static [(String, PathBuf)] {
    static ENV: OnceLock<Vec<(String, PathBuf)>> = OnceLock::new();
    ENV.get_or_init(|| {
        let dir = target().join("conf");
        fs::create_dir_all(&dir).expect("target/podman/conf");
        // Run state on /run (cleared at boot, so podman sees a reboot), one per store.
        let key = &sha256_hex(target().to_string_lossy().as_bytes())[..12];
        let run = PathBuf::from(format!("/run/gwshim-tests-podman-{key}"));
        let store = target().join("storage");
        let containers = format!(
            "[containers]\n\
             # this machine's hard limits are below podman's defaults\n\
             default_ulimits = [\"nofile=16384:16384\", \"nproc=16384:16384\"]\n\
             log_driver = \"k8s-file\"\n\
             [engine]\n\
             # crun refuses the hybrid cgroup layout here\n\
             runtime = \"runc\"\n\
             cgroup_manager = \"cgroupfs\"\n\
             events_logger = \"file\"\n\
             events_logfile_path = \"{run}/events.log\"\n\
             tmp_dir = \"{run}/libpod\"\n\
             [network]\n\
             network_config_dir = \"{net}\"\n",
            run = run.display(),
            net = dir.join("networks").display()
        );
        let storage = format!(
            "[storage]\ndriver = \"overlay\"\ngraphroot = \"{}\"\nrunroot = \"{}/storage\"\n",
            store.display(),
            run.display()
        );
        for (name, text) in [
            ("containers.conf", containers.as_str()),
            ("storage.conf", storage.as_str()),
            ("registries.conf", "unqualified-search-registries = []\n"),
        ] {
            fs::write(dir.join(name), text).expect("writing podman's configuration");
        }
        vec![
            ("CONTAINERS_CONF".into(), dir.join("containers.conf")),
            ("CONTAINERS_STORAGE_CONF".into(), dir.join("storage.conf")),
            (
                "CONTAINERS_REGISTRIES_CONF".into(),
                dir.join("registries.conf"),
            ),
        ]
    })
}

fn podman(args: &[&str]) -> Command {
    let mut cmd = Command::new("podman");
    cmd.args(args).stdin(Stdio::null());
    for (k, v) in conf_env() {
        cmd.env(k, v);
    }
    cmd
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs podman (bounded), returns its output whatever the status.
fn pm(args: &[&str]) -> Output {
    run_bounded(podman(args), CMD_TIMEOUT).unwrap_or_else(|e| panic!("podman {args:?}: {e}"))
}

/// Runs podman, asserts it succeeded, returns its stdout trimmed.
fn pm_ok(args: &[&str]) -> String {
    let out = pm(args);
    assert!(
        out.status.success(),
        "podman {args:?}: {}\n{}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout).trim().to_string()
}

fn sha256_hex(data: &[u8]) -> String {
    use std::io::Write;
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(data)
        .expect("sha256sum's stdin");
    let out = child.wait_with_output().expect("sha256sum");
    text(&out.stdout)
        .split_whitespace()
        .next()
        .expect("a sum")
        .to_string()
}

fn sha256_files(files: &[&Path]) -> String {
    let mut all = Vec::new();
    for f in files {
        all.extend(fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display())));
        all.push(0);
    }
    sha256_hex(&all)
}

/// Why podman cannot run here, if it cannot; else removes what test processes that died left
/// in the store (labelled with their pid). Once per process.
fn unavailable() -> Option<String> {
    static WHY: OnceLock<Option<String>> = OnceLock::new();
    WHY.get_or_init(|| {
        if !nix::unistd::geteuid().is_root() {
            return Some("not root: these tests run rootful podman".into());
        }
        for tool in ["podman", "runc", "debootstrap"] {
            let mut cmd = if tool == "podman" {
                podman(&[])
            } else {
                Command::new(tool)
            };
            if cmd
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map_or(true, |s| !s.success())
            {
                return Some(format!("no {tool} (apt-get install {tool})"));
            }
        }
        let out = pm(&[
            "ps",
            "-a",
            "--format",
            &format!("{{{{.ID}}}} {{{{.Labels.{LABEL}}}}}"),
        ]);
        for line in text(&out.stdout).lines() {
            let mut w = line.split_whitespace();
            let (Some(id), Some(pid)) = (w.next(), w.next().and_then(|p| p.parse::<i32>().ok()))
            else {
                continue;
            };
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = pm(&["rm", "-f", "-v", "-t", "0", id]);
            }
        }
        None
    })
    .clone()
}

// ---------------------------------------------------------------------------------------------
// The images

struct Images {
    /// The image contrib/Dockerfile builds, on the local Debian base.
    gateway: String,
    /// The local Debian base (`podman import` of make-base.sh's tarball).
    base: String,
    /// contrib/release.sh's dist folder.
    dist: PathBuf,
}

/// The images, built once (machine-wide flock) and reused while what they are made from is
/// unchanged. Err: why they cannot be had (no network for debootstrap, apt or pip).
fn images() -> Result<&'static Images, String> {
    static IMAGES: OnceLock<Result<Images, String>> = OnceLock::new();
    IMAGES
        .get_or_init(|| {
            fs::create_dir_all(target()).map_err(|e| format!("target/podman: {e}"))?;
            let _lock = flock_within(&target().join("build.lock"), BUILD_TIMEOUT * 2);
            let base = base_image()?;
            let dist = common::release_dist().to_path_buf();
            let gateway = gateway_image(&base, &dist)?;
            Ok(Images {
                gateway,
                base,
                dist,
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}

fn image_exists(tag: &str) -> bool {
    pm(&["image", "exists", tag]).status.success()
}

/// Removes the tags of `repo` other than `keep` (older keys), and dangling layers.
fn prune(repo: &str, keep: &str) {
    let tags = pm_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}", repo]);
    for t in tags.lines().filter(|t| *t != keep) {
        let _ = pm(&["rmi", "-f", t]);
    }
    let _ = pm(&["image", "prune", "-f"]);
}

fn base_image() -> Result<String, String> {
    let script = Path::new(MANIFEST).join("tests/podman/make-base.sh");
    let key = &sha256_files(&[&script])[..12];
    let tag = format!("localhost/gwshim-test-base:bookworm-{key}");
    if image_exists(&tag) {
        return Ok(tag);
    }
    let tar = target().join(format!("base-bookworm-{key}.tar"));
    if !tar.exists() {
        // Tarballs of an older script are of no use any more.
        for e in fs::read_dir(target()).map_err(|e| e.to_string())?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("base-bookworm-") {
                let _ = fs::remove_file(e.path());
            }
        }
        let t0 = Instant::now();
        let mut cmd = Command::new(&script);
        cmd.arg("bookworm").arg(&tar);
        let out = run_bounded(cmd, BUILD_TIMEOUT)?;
        eprint!("{}", text(&out.stderr));
        if !out.status.success() || !tar.exists() {
            return Err(format!(
                "cannot build the Debian base ({}; debootstrap needs the network)",
                out.status
            ));
        }
        eprintln!("podman: base tarball built in {:.0?}", t0.elapsed());
    }
    pm_ok(&["import", &tar.to_string_lossy(), &tag]);
    prune("localhost/gwshim-test-base", &tag);
    Ok(tag)
}

/// Fills `dir` with what the image's build context needs from `dist` (the release archives
/// and SHA256SUMS, under dist/), plus a file .dockerignore must keep out.
fn make_context(dir: &Path, dist: &Path) {
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir.join("dist")).expect("the build context");
    for e in fs::read_dir(dist).expect("dist").flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name == "SHA256SUMS" || name.starts_with("gwshim") {
            fs::copy(e.path(), dir.join("dist").join(&name)).expect("copy into the context");
        }
    }
}

fn gateway_image(base: &str, dist: &Path) -> Result<String, String> {
    let dockerfile = Path::new(MANIFEST).join("contrib/Dockerfile");
    let ignore = Path::new(MANIFEST).join(".dockerignore");
    // The archives' sums (the rest of SHA256SUMS changes with every source file: the sdist).
    let sums =
        fs::read_to_string(dist.join("SHA256SUMS")).map_err(|e| format!("SHA256SUMS: {e}"))?;
    let archives: String = sums
        .lines()
        .filter(|l| l.ends_with("-linux-musl.tar.gz"))
        .collect();
    let key =
        sha256_hex(format!("{}{archives}{base}", sha256_files(&[&dockerfile, &ignore])).as_bytes());
    let tag = format!("localhost/gwshim-test-gateway:{}", &key[..12]);
    if image_exists(&tag) {
        return Ok(tag);
    }
    let context = target().join("context");
    make_context(&context, dist);
    let t0 = Instant::now();
    // --network host: the build's apt-get and pip use this machine's network as it is (no
    // bridge or firewall rules are made for it).
    let cmd = podman(&[
        "build",
        "--network",
        "host",
        "--ignorefile",
        &ignore.to_string_lossy(),
        "-f",
        &dockerfile.to_string_lossy(),
        "--build-arg",
        &format!("BASE={base}"),
        "-t",
        &tag,
        &context.to_string_lossy(),
    ]);
    let out = run_bounded(cmd, BUILD_TIMEOUT)?;
    let _ = fs::remove_dir_all(&context);
    if !out.status.success() {
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        let tail: Vec<&str> = all.lines().rev().take(30).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        // No network for apt or pip is a reason to skip; anything else is a broken Dockerfile.
        assert!(
            all.contains("Could not") || all.contains("Temporary failure"),
            "podman build -f contrib/Dockerfile failed ({}):\n{}",
            out.status,
            tail.join("\n")
        );
        return Err(format!(
            "podman build could not reach apt or PyPI: {}",
            tail.join(" | ")
        ));
    }
    eprintln!("podman: image {tag} built in {:.0?}", t0.elapsed());
    prune("localhost/gwshim-test-gateway", &tag);
    Ok(tag)
}

/// The images, or why the test must skip.
fn setup() -> Option<&'static Images> {
    if let Some(why) = unavailable() {
        skip::skip(&why);
        return None;
    }
    match images() {
        Ok(i) => Some(i),
        Err(why) => {
            skip::skip(&why);
            None
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Guards: what a test makes is removed when it ends

static N: AtomicUsize = AtomicUsize::new(0);

fn unique(tag: &str) -> String {
    format!(
        "gwshim-test-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// A container, removed (with its anonymous volumes) on drop.
struct Ctr(String);

impl Drop for Ctr {
    fn drop(&mut self) {
        let _ = pm(&["rm", "-f", "-v", "-t", "0", &self.0]);
    }
}

/// A tag made for one test, removed on drop.
struct Tag(String);

impl Drop for Tag {
    fn drop(&mut self) {
        let _ = pm(&["rmi", "-f", &self.0]);
    }
}

/// A `podman kube play` of a file: on drop, `kube down` and the volumes it claimed.
struct Kube {
    file: PathBuf,
    volumes: Vec<String>,
}

impl Drop for Kube {
    fn drop(&mut self) {
        let _ = pm(&["kube", "down", &self.file.to_string_lossy()]);
        for v in &self.volumes {
            let _ = pm(&["volume", "rm", "-f", v]);
        }
    }
}

/// A `podman logs -f`, killed on drop.
struct Follow(Child, PathBuf);

impl Follow {
    fn start(name: &str, file: &Path) -> Follow {
        let out = fs::File::create(file).expect("log file");
        let child = podman(&["logs", "-f", name])
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .spawn()
            .expect("podman logs -f");
        Follow(child, file.to_path_buf())
    }
    fn text(&self) -> String {
        fs::read_to_string(&self.1).unwrap_or_default()
    }
}

impl Drop for Follow {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// The container's processes, seen from the host

/// One process of a PID namespace: its pid here and there, state, parent (in the namespace's
/// numbers) and command name.
#[derive(Debug, Clone)]
struct Proc {
    host: i32,
    ns: i32,
    ppid_ns: i32,
    state: char,
    comm: String,
    uid: u32,
}

fn status_field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(str::trim)
}

/// Every process in the PID namespace of host pid `pid1`.
fn ns_procs(pid1: i32) -> Vec<Proc> {
    let Ok(ns) = fs::read_link(format!("/proc/{pid1}/ns/pid")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(host) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if fs::read_link(format!("/proc/{host}/ns/pid")).ok().as_ref() != Some(&ns) {
            continue;
        }
        let Ok(status) = fs::read_to_string(format!("/proc/{host}/status")) else {
            continue;
        };
        let last = |key| {
            status_field(&status, key)
                .and_then(|v| v.split_whitespace().last()?.parse::<i64>().ok())
                .unwrap_or(-1)
        };
        let first = |key| {
            status_field(&status, key)
                .and_then(|v| v.split_whitespace().next()?.parse::<i64>().ok())
                .unwrap_or(-1)
        };
        out.push(Proc {
            host,
            ns: last("NSpid:") as i32,
            ppid_ns: first("PPid:") as i32,
            state: status_field(&status, "State:")
                .and_then(|s| s.chars().next())
                .unwrap_or('?'),
            comm: status_field(&status, "Name:").unwrap_or("").to_string(),
            uid: first("Uid:") as u32,
        });
    }
    // PPid: in /proc/PID/status is in the reader's namespace: map it to the container's.
    let by_host: Vec<(i32, i32)> = out.iter().map(|p| (p.host, p.ns)).collect();
    for p in &mut out {
        p.ppid_ns = by_host
            .iter()
            .find(|(h, _)| *h == p.ppid_ns)
            .map_or(0, |(_, n)| *n);
    }
    out
}

fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if t0.elapsed() > limit {
            return None;
        }
        sleep(Duration::from_millis(100));
    }
}

fn inspect(name: &str, format: &str) -> String {
    pm_ok(&["inspect", name, "--format", format])
}

/// The container's pid 1, as the host sees it, while it runs.
fn pid1(name: &str) -> Option<i32> {
    inspect(name, "{{.State.Pid}}")
        .parse()
        .ok()
        .filter(|&p: &i32| p > 0)
}

fn restarts(name: &str) -> u32 {
    inspect(name, "{{.RestartCount}}").parse().unwrap_or(0)
}

/// The exit statuses of the container's runs so far (podman's `died` events), oldest first.
fn died(name: &str) -> Vec<i32> {
    pm_ok(&[
        "events",
        "--stream=false",
        "--filter",
        &format!("container={name}"),
        "--filter",
        "event=died",
        "--format",
        "{{.ContainerExitCode}}",
    ])
    .lines()
    .filter_map(|l| l.trim().parse().ok())
    .collect()
}

// ---------------------------------------------------------------------------------------------
// HERMES_HOME with a hook that gives the gateway children of its own

/// A gateway hook run at `gateway:startup` (as in tests/hermes.rs): two commands in new
/// sessions that background a process and exit at once, orphaning it: `short` exits after a
/// second while the gateway runs (someone must reap it), `stubborn` records a SIGTERM in
/// orphans/stubborn.got and keeps running (only SIGKILL ends it).
const HOOK_YAML: &str = "name: orphans\ndescription: gwshim test\nevents: [\"gateway:startup\"]\n";
const HOOK_PY: &str = r#"
import os, subprocess

STUBBORN = """
import signal, sys, time
def term(*_):
    open(sys.argv[1], "w").write("TERM")
signal.signal(signal.SIGTERM, term)
while True:
    time.sleep(1)
"""

def spawn(name, script):
    d = os.environ["HERMES_HOME"] + "/orphans"
    os.makedirs(d, exist_ok=True)
    subprocess.Popen(["/bin/sh", "-c", script + " echo $! > %s/%s.tmp && mv %s/%s.tmp %s/%s.pid"
                      % (d, name, d, name, d, name)], start_new_session=True)

def handle(event_type, context):
    d = os.environ["HERMES_HOME"] + "/orphans"
    spawn("short", "sleep 1 &")
    spawn("stubborn", "python3 -c '%s' %s/stubborn.got &" % (STUBBORN, d))
"#;

/// Writes the hook into a HERMES_HOME folder, owned by the image's user.
fn seed_home(dir: &Path) {
    let hook = dir.join("hooks/orphans");
    fs::create_dir_all(&hook).expect("hook dir");
    fs::write(hook.join("HOOK.yaml"), HOOK_YAML).expect("HOOK.yaml");
    fs::write(hook.join("handler.py"), HOOK_PY).expect("handler.py");
    let status = Command::new("chown")
        .args(["-R", &format!("{UID}:{UID}")])
        .arg(dir)
        .status()
        .expect("chown");
    assert!(status.success(), "chown -R {}", dir.display());
}

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_str(&fs::read_to_string(path).ok()?).ok()
}

fn read_pid(path: &Path) -> Option<i32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// A gateway generation that has come up: its pid in the container, and the hook's children.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Up {
    gateway: i32,
    start_time: u64,
    short: i32,
    stubborn: i32,
}

/// Waits for a gateway in `home` that is not `not`: gateway_state.json says running, the hook
/// has started both children (their pid files exist: `forget_generation` removes them).
fn wait_up(home: &Path, not: Option<Up>, what: &str, log: impl Fn() -> String) -> Up {
    let got = wait_for(UP_TIMEOUT, || {
        let st = read_json(&home.join("gateway_state.json"))?;
        if st["gateway_state"] != "running" {
            return None;
        }
        let up = Up {
            gateway: st["pid"].as_i64()? as i32,
            start_time: st["start_time"].as_u64()?,
            short: read_pid(&home.join("orphans/short.pid"))?,
            stubborn: read_pid(&home.join("orphans/stubborn.pid"))?,
        };
        // A restarted container has a new PID namespace: the same pids again, but a new
        // start time (the hook's pid files are removed before each restart).
        let new = not.is_none_or(|n| n.start_time != up.start_time);
        new.then_some(up)
    });
    got.unwrap_or_else(|| {
        panic!(
            "{what}: no new gateway within {UP_TIMEOUT:?}; state {:?}; log:\n{}",
            fs::read_to_string(home.join("gateway_state.json")).ok(),
            log()
        )
    })
}

/// Before a restart: the next generation's hook writes its children's pid files anew.
fn forget_generation(home: &Path) {
    for f in ["short.pid", "stubborn.pid"] {
        let _ = fs::remove_file(home.join("orphans").join(f));
    }
}

// ---------------------------------------------------------------------------------------------
// The scenarios of docs/containers.md's table

#[derive(Clone, Copy, Debug, PartialEq)]
enum Init {
    Gwshim,
    Catatonit,
    Tini,
}

impl Init {
    fn name(self) -> &'static str {
        match self {
            Init::Gwshim => "gwshim (the image's entrypoint)",
            Init::Catatonit => "podman run --init (catatonit)",
            Init::Tini => "tini (static, bind-mounted)",
        }
    }

    /// `podman run` options and the command after the image.
    fn run_args(self) -> (Vec<String>, Vec<&'static str>) {
        match self {
            Init::Gwshim => (vec!["-e".into(), format!("GWSHIM_GRACE={GRACE_S}")], vec![]),
            Init::Catatonit => (
                vec!["--init".into(), "--entrypoint".into(), "hermes".into()],
                vec!["gateway", "run"],
            ),
            Init::Tini => (
                vec![
                    "-v".into(),
                    "/usr/bin/tini-static:/tini:ro".into(),
                    "--entrypoint".into(),
                    r#"["/tini","--"]"#.into(),
                ],
                vec!["hermes", "gateway", "run"],
            ),
        }
    }
}

/// What one scenario measured, for the table.
#[derive(Debug, Default)]
struct Row {
    up_s: f64,
    /// Zombies of pid 1 left once the 50 orphans and the hook's short child exited.
    zombies: usize,
    reaped_s: f64,
    /// The exit statuses podman saw, and the restarts, after USR1, after kill -9 of the gateway.
    usr1_exit: Option<i32>,
    usr1_back_s: f64,
    kill9_exit: Option<i32>,
    restarts: u32,
    /// `podman stop`: how long, the exit status, restarts after it.
    stop_s: f64,
    stop_exit: Option<i32>,
    restarts_after_stop: u32,
    /// Whether the stubborn leftover saw a SIGTERM before it died.
    leftover_got_term: bool,
    /// Whether the gateway was told it has a supervisor (HERMES_GATEWAY_EXTERNAL_SUPERVISOR=1).
    supervised: bool,
    log: String,
}

fn scenario(init: Init, images: &Images) -> Row {
    let home = common::TempDir::new("podman-home");
    fs::set_permissions(home.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    seed_home(home.path());
    let name = unique("run");
    let ctr = Ctr(name.clone());
    let (opts, cmd) = init.run_args();
    let mut args: Vec<String> = vec![
        "run".into(),
        "-d".into(),
        "--name".into(),
        name.clone(),
        "--label".into(),
        format!("{LABEL}={}", std::process::id()),
        "--network".into(),
        "none".into(),
        "--restart".into(),
        "on-failure".into(),
        "-v".into(),
        format!("{}:{DATA}", home.display()),
    ];
    args.extend(opts);
    args.push(images.gateway.clone());
    args.extend(cmd.iter().map(|s| s.to_string()));
    let t0 = Instant::now();
    pm_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let log = || text(&pm(&["logs", &name]).stderr) + &text(&pm(&["logs", &name]).stdout);
    let mut row = Row::default();
    let up = wait_up(home.path(), None, "first start", log);
    row.up_s = t0.elapsed().as_secs_f64();
    let p1 = pid1(&name).expect("the container's pid 1");
    let gw = ns_procs(p1)
        .into_iter()
        .find(|p| p.ns == up.gateway)
        .unwrap_or_else(|| panic!("{init:?}: gateway pid {} not in the container", up.gateway));
    row.supervised = fs::read(format!("/proc/{}/environ", gw.host))
        .unwrap_or_default()
        .split(|&b| b == 0)
        .any(|v| v == b"HERMES_GATEWAY_EXTERNAL_SUPERVISOR=1");

    // 50 orphans of an exec'd shell (it exits at once; its children are pid 1's), and the
    // hook's short child, all exit within about a second: pid 1 must reap them.
    let t1 = Instant::now();
    pm_ok(&[
        "exec",
        &name,
        "sh",
        "-c",
        "for i in $(seq 50); do sleep 1 & done",
    ]);
    let gone = wait_for(Duration::from_secs(20), || {
        let procs = ns_procs(p1);
        let left = procs
            .iter()
            .any(|p| (p.comm == "sleep" && p.state != 'Z') || p.ns == up.short);
        (!left).then_some(())
    });
    assert!(
        gone.is_some(),
        "{init:?}: the sleeps did not end: {:?}",
        ns_procs(p1)
    );
    // Whatever is pid 1's zombie a second after the last exit stays one. (The gateway's own
    // unwaited children, the hook's `sh -c`, are its zombies, not pid 1's.)
    sleep(Duration::from_secs(1));
    row.zombies = ns_procs(p1)
        .iter()
        .filter(|p| p.state == 'Z' && p.ppid_ns == 1)
        .count();
    row.reaped_s = t1.elapsed().as_secs_f64() - 1.0;

    // A planned restart: the runtime's SIGUSR1 reaches the gateway, which drains and exits 75.
    forget_generation(home.path());
    let t2 = Instant::now();
    pm_ok(&["kill", "-s", "USR1", &name]);
    let up2 = wait_up(home.path(), Some(up), "after USR1", log);
    row.usr1_back_s = t2.elapsed().as_secs_f64();
    row.usr1_exit = died(&name).first().copied();

    // A crash: the gateway dies of SIGKILL.
    let p1 = pid1(&name).expect("pid 1 after the restart");
    let gw = ns_procs(p1)
        .into_iter()
        .find(|p| p.ns == up2.gateway)
        .unwrap_or_else(|| panic!("{init:?}: gateway pid {} not in the container", up2.gateway));
    forget_generation(home.path());
    kill(Pid::from_raw(gw.host), Signal::SIGKILL).expect("kill -9 the gateway");
    let up3 = wait_up(home.path(), Some(up2), "after kill -9", log);
    row.kill9_exit = died(&name).get(1).copied();
    row.restarts = restarts(&name);

    // The stop: SIGTERM from podman, its SIGKILL STOP_TIMEOUT_S later.
    let _ = fs::remove_file(home.join("orphans/stubborn.got"));
    let p1 = pid1(&name).expect("pid 1 after the second restart");
    assert!(
        ns_procs(p1).iter().any(|p| p.ns == up3.stubborn),
        "{init:?}: the hook's stubborn child is not running"
    );
    let t3 = Instant::now();
    pm_ok(&["stop", "-t", &STOP_TIMEOUT_S.to_string(), &name]);
    row.stop_s = t3.elapsed().as_secs_f64();
    row.stop_exit = inspect(&name, "{{.State.ExitCode}}").parse().ok();
    sleep(Duration::from_millis(500));
    row.restarts_after_stop = restarts(&name);
    row.leftover_got_term =
        fs::read_to_string(home.join("orphans/stubborn.got")).is_ok_and(|t| t == "TERM");
    row.log = log();
    drop(ctr);
    let line = row_line(init, &row);
    eprintln!(
        "--- {init:?} log ---\n{}\n--- measured ---\n{line}",
        row.log
    );
    row
}

fn row_line(init: Init, r: &Row) -> String {
    let code = |c: Option<i32>| c.map_or("?".into(), |c| c.to_string());
    format!(
        "| {} | up in {:.1} s | 51 orphans: {} zombies, reaped within {:.1} s | USR1: exit {}, back in {:.1} s | kill -9 of the gateway: exit {}, {} restarts | stop: exit {} in {:.1} s, {} restarts after | stubborn leftover: {} | gateway told it is supervised: {} |",
        init.name(),
        r.up_s,
        r.zombies,
        r.reaped_s.max(0.0),
        code(r.usr1_exit),
        r.usr1_back_s,
        code(r.kill9_exit),
        r.restarts,
        code(r.stop_exit),
        r.stop_s,
        r.restarts_after_stop.saturating_sub(r.restarts),
        if r.leftover_got_term {
            "SIGTERM, then SIGKILL"
        } else {
            "SIGKILL only"
        },
        if r.supervised { "yes" } else { "no" }
    )
}

/// gwshim as pid 1 of the built image, the real gateway as user 10000: `podman stop` is
/// forwarded and ends with exit 0 well inside the stop timeout; USR1 and a kill -9 of the
/// gateway end gwshim with 75 and `--restart on-failure` brings the gateway back (two
/// restarts); every orphan is reaped; the leftover gets SIGTERM, then SIGKILL after --grace;
/// `podman logs` holds gwshim's lines and the gateway's output.
#[test]
fn gwshim_as_pid_1_with_the_real_gateway() {
    let Some(images) = setup() else { return };
    let r = scenario(Init::Gwshim, images);
    assert_eq!(r.zombies, 0, "zombies left:\n{}", r.log);
    assert!(r.supervised, "the gateway knows it has a supervisor");
    assert_eq!(r.usr1_exit, Some(75), "USR1: gwshim exits 75\n{}", r.log);
    assert!(
        r.log
            .contains(" exited 75; exiting 75 (status in the keep list)"),
        "{}",
        r.log
    );
    assert_eq!(
        r.kill9_exit,
        Some(75),
        "kill -9: gwshim exits 75\n{}",
        r.log
    );
    assert!(
        r.log.contains("was killed by SIGKILL; exiting 75"),
        "{}",
        r.log
    );
    assert_eq!(r.restarts, 2, "on-failure restarted both:\n{}", r.log);
    assert_eq!(r.stop_exit, Some(0), "podman stop ends clean:\n{}", r.log);
    assert_eq!(r.restarts_after_stop, 2, "a stop is not restarted");
    assert!(
        r.log.contains("stop requested: SIGTERM reached child"),
        "{}",
        r.log
    );
    // The leftover ignores SIGTERM: gwshim waits the grace, then SIGKILLs it; all of that well
    // before podman's own SIGKILL.
    assert!(
        r.leftover_got_term,
        "the leftover got no SIGTERM:\n{}",
        r.log
    );
    assert!(
        r.log.contains(&format!("with SIGTERM, grace {GRACE_S} s"))
            && r.log.contains("needed SIGKILL"),
        "{}",
        r.log
    );
    assert!(
        r.stop_s >= GRACE_S as f64 - 0.5 && r.stop_s < (STOP_TIMEOUT_S / 2) as f64,
        "stop took {:.1} s",
        r.stop_s
    );
    // No pacing outside a systemd unit: each restart came as fast as the gateway starts.
    assert!(
        !r.log.contains("waiting"),
        "gwshim paced in a container:\n{}",
        r.log
    );
    // podman logs: gwshim's own lines and the gateway's output, in one stream.
    assert!(
        r.log.contains("gwshim: started hermes gateway run as pid"),
        "{}",
        r.log
    );
    assert!(r.log.contains("Hermes Gateway Starting"), "{}", r.log);
}

/// The same scenarios under podman's own init (catatonit) and tini, for the table: both reap,
/// pass the exit statuses through, and end with the gateway; what they do at the stop and with
/// leftovers is measured and printed.
#[test]
fn catatonit_and_tini_side_by_side() {
    for (path, package) in [
        ("/usr/libexec/podman/catatonit", "catatonit"),
        ("/usr/bin/tini-static", "tini"),
    ] {
        if !Path::new(path).exists() {
            return skip::skip(&format!("no {path} (apt-get install {package})"));
        }
    }
    let Some(images) = setup() else { return };
    for init in [Init::Catatonit, Init::Tini] {
        let r = scenario(init, images);
        assert_eq!(r.zombies, 0, "{init:?} reaps");
        assert_eq!(r.usr1_exit, Some(75), "{init:?} passes the gateway's 75 on");
        assert_eq!(r.restarts, 2, "{init:?}: on-failure restarted both");
        assert!(
            !r.log.contains("gwshim:"),
            "{init:?}: gwshim must not be in this run"
        );
    }
}

/// gwshim keeps a child's 78 (fatal configuration) as the container's exit status. podman's
/// `on-failure` restarts every non-zero status, 78 too (as docker's does): only a cap stops
/// the loop, here `on-failure:2`.
#[test]
fn exit_78_reaches_the_restart_policy() {
    let Some(images) = setup() else { return };
    let name = unique("78");
    let _ctr = Ctr(name.clone());
    pm_ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "--label",
        &format!("{LABEL}={}", std::process::id()),
        "--network",
        "none",
        "--restart",
        "on-failure:2",
        &images.gateway,
        "sh",
        "-c",
        "exit 78",
    ]);
    let done = wait_for(Duration::from_secs(60), || {
        (inspect(&name, "{{.State.Status}}") == "exited" && died(&name).len() == 3).then_some(())
    });
    let log = text(&pm(&["logs", &name]).stderr);
    assert!(done.is_some(), "three runs, then exited; log:\n{log}");
    assert_eq!(died(&name), [78, 78, 78], "{log}");
    assert_eq!(restarts(&name), 2);
    assert!(
        log.contains("exited 78; exiting 78 (status in the keep list)"),
        "{log}"
    );
}

// ---------------------------------------------------------------------------------------------
// The image itself

/// The image is what contrib/Dockerfile says: the release archive's gwshim (the same bytes),
/// its entrypoint; user 10000; HERMES_HOME on the /opt/data volume; hermes-agent 0.19.0 in a
/// venv on python3.11. A build whose archive does not match SHA256SUMS fails.
#[test]
fn image_holds_the_release_binary_and_checks_its_sum() {
    let Some(images) = setup() else { return };
    let config: Value = serde_json::from_str(&pm_ok(&[
        "image",
        "inspect",
        &images.gateway,
        "--format",
        "{{json .Config}}",
    ]))
    .expect("image config");
    assert_eq!(config["User"], "10000:10000", "{config}");
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/usr/local/bin/gwshim", "--"]),
        "{config}"
    );
    assert_eq!(
        config["Cmd"],
        serde_json::json!(["hermes", "gateway", "run"]),
        "{config}"
    );
    assert!(config["Volumes"].get(DATA).is_some(), "{config}");
    assert!(
        config["Env"]
            .as_array()
            .is_some_and(|e| e.iter().any(|v| v == "HERMES_HOME=/opt/data")),
        "{config}"
    );

    // The binary in the image is the archive's.
    let tmp = common::TempDir::new("podman-archive");
    let arch = std::env::consts::ARCH;
    let archive = fs::read_dir(&images.dist)
        .expect("dist")
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(&format!("-{arch}-linux-musl.tar.gz")))
        })
        .expect("the release archive");
    let st = Command::new("tar")
        .arg("-xzf")
        .arg(&archive)
        .arg("-C")
        .arg(tmp.path())
        .status()
        .expect("tar");
    assert!(st.success());
    let dir = archive
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".tar.gz"))
        .expect("archive name");
    let want = sha256_hex(&fs::read(tmp.join(dir).join("gwshim")).expect("the binary"));
    let run = |entry: &str, args: &[&str]| -> String {
        let mut all = vec![
            "run",
            "--rm",
            "--network",
            "none",
            "--entrypoint",
            entry,
            &images.gateway,
        ];
        all.extend_from_slice(args);
        pm_ok(&all)
    };
    let got = run("sha256sum", &["/usr/local/bin/gwshim"]);
    assert!(got.starts_with(&want), "image: {got}, archive: {want}");
    assert_eq!(run("id", &["-u"]), UID.to_string());
    assert!(run("hermes", &["--version"]).contains("0.19.0"));
    assert!(run("python3", &["--version"]).contains("3.11"));
    assert_eq!(
        run("sh", &["-c", "command -v hermes"]),
        "/opt/hermes/venv/bin/hermes"
    );

    // A tampered archive: its sum no longer matches SHA256SUMS, the build stops there.
    let context = common::TempDir::new("podman-tampered");
    make_context(context.path(), &images.dist);
    let copy = context
        .join("dist")
        .join(archive.file_name().expect("name"));
    recompress(&copy);
    let tag = Tag(format!("localhost/{}", unique("tampered")));
    let ignore = format!("{MANIFEST}/.dockerignore");
    let out = run_bounded(
        podman(&[
            "build",
            "--layers=false",
            "--network",
            "none",
            "--ignorefile",
            &ignore,
            "-f",
            &format!("{MANIFEST}/contrib/Dockerfile"),
            "--build-arg",
            &format!("BASE={}", images.base),
            "--target",
            "gwshim",
            "-t",
            &tag.0,
            context.str(),
        ]),
        BUILD_TIMEOUT,
    )
    .expect("podman build");
    let all = text(&out.stdout) + &text(&out.stderr);
    assert!(!out.status.success(), "a tampered archive built:\n{all}");
    assert!(all.contains(": FAILED"), "sha256sum -c said it:\n{all}");
    assert!(!image_exists(&tag.0));
}

// ---------------------------------------------------------------------------------------------
// Kubernetes: contrib/kubernetes/hermes-gateway.yaml through podman kube play

/// The manifest runs (image replaced by the suite's build) as user 10000 with gwshim as pid 1
/// and the gateway as its child, HERMES_HOME on the claimed volume. Its end is the kubelet's:
/// SIGTERM, terminationGracePeriodSeconds, SIGKILL. podman 4.3's `kube down` stops a pod with
/// timeout 0 (SIGKILL at once), so the test stops the pod first with `podman pod stop -t` and
/// the manifest's terminationGracePeriodSeconds, then runs `kube down`. What the stop of item 1
/// asserts: SIGTERM forwarded, exit 0 well inside the grace period, the leftover gets SIGTERM
/// then SIGKILL after the manifest's --grace.
#[test]
fn kubernetes_manifest_runs_and_stops_on_sigterm() {
    let Some(images) = setup() else { return };
    let src = fs::read_to_string(format!("{MANIFEST}/contrib/kubernetes/hermes-gateway.yaml"))
        .expect("the manifest");
    let field = |key: &str| -> String {
        src.lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("{key} in the manifest"))
    };
    let grace_period: u64 = field("terminationGracePeriodSeconds:")
        .parse()
        .expect("a number");
    let claim = field("claimName:");
    let command = field("command:");
    let grace: u64 = command
        .split("\"--grace\", \"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .and_then(|g| g.parse().ok())
        .expect("--grace N in the container's command");
    assert!(
        grace_period > 60 + grace,
        "the grace period covers a 60 s drain and --grace"
    );
    assert_ne!(grace, 5, "a --grace that is not the default");
    for want in [
        "runAsNonRoot: true",
        "runAsUser: 10000",
        "mountPath: /opt/data",
    ] {
        assert!(src.contains(want), "the manifest has {want}");
    }
    let image_line = src
        .lines()
        .find(|l| l.trim().starts_with("image:"))
        .expect("image:");
    let dir = common::TempDir::new("podman-kube");
    let file = dir.join("hermes-gateway.yaml");
    fs::write(
        &file,
        src.replace(image_line, &format!("          image: {}", images.gateway)),
    )
    .expect("the manifest copy");
    let file_s = file.to_string_lossy().into_owned();

    let kube = Kube {
        file: file.clone(),
        volumes: vec![claim.clone()],
    };
    let _ = pm(&["volume", "rm", "-f", &claim]);
    // Made, not started, so the hook can go into the volume first.
    pm_ok(&[
        "kube",
        "play",
        "--start=false",
        "--network",
        "none",
        &file_s,
    ]);
    let mount = PathBuf::from(pm_ok(&[
        "volume",
        "inspect",
        &claim,
        "--format",
        "{{.Mountpoint}}",
    ]));
    seed_home(&mount);
    let pod = "hermes-gateway-pod-0";
    let ctr = format!("{pod}-gateway");
    pm_ok(&["pod", "start", pod]);
    let follow = Follow::start(&ctr, &dir.join("logs"));
    let up = wait_up(&mount, None, "kube play", || follow.text());
    let p1 = pid1(&ctr).expect("the container's pid 1");
    let procs = ns_procs(p1);
    let init = procs.iter().find(|p| p.ns == 1).expect("pid 1");
    assert_eq!((init.comm.as_str(), init.uid), ("gwshim", UID), "{procs:?}");
    let gateway = procs
        .iter()
        .find(|p| p.ns == up.gateway)
        .expect("the gateway");
    assert_eq!((gateway.ppid_ns, gateway.uid), (1, UID), "{procs:?}");
    assert!(procs.iter().any(|p| p.ns == up.stubborn), "{procs:?}");

    let t0 = Instant::now();
    pm_ok(&["pod", "stop", "-t", &grace_period.to_string(), pod]);
    let took = t0.elapsed();
    let code: Option<i32> = inspect(&ctr, "{{.State.ExitCode}}").parse().ok();
    // The whole log of the stopped container: the `-f` stream may not have delivered gwshim's
    // last lines (the leftovers' SIGKILL, its exit) yet when `pod stop` returns.
    let logs = pm(&["logs", &ctr]);
    let log = text(&logs.stdout) + &text(&logs.stderr);
    drop(follow);
    pm_ok(&["kube", "down", &file_s]);
    eprintln!("--- kube log ---\n{log}\n--- pod stop took {took:.1?}, exit {code:?}");
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains("stop requested: SIGTERM reached child"),
        "{log}"
    );
    assert!(log.contains(&format!("grace {grace} s")), "{log}");
    assert!(log.contains("needed SIGKILL"), "{log}");
    assert_eq!(
        fs::read_to_string(mount.join("orphans/stubborn.got"))
            .ok()
            .as_deref(),
        Some("TERM"),
        "the leftover's SIGTERM"
    );
    assert!(
        took >= Duration::from_secs(grace) && took < Duration::from_secs(grace_period / 2),
        "pod stop took {took:?}"
    );
    assert!(
        pm(&["pod", "exists", pod]).status.code() == Some(1),
        "kube down removed the pod"
    );
    drop(kube);
    assert!(!pm(&["volume", "exists", &claim]).status.success());
}
