#!/usr/bin/env python3
"""Run the machine's own `systemd --user` for gwshim's tests (Python 3 stdlib only).

tests/systemd_harness/mod.rs starts it as

    unshare --mount --propagation private python3 systemd-manager.py --log FILE --pidfile FILE \
        [--conf FILE] [--cgroup DIR]... -- /usr/lib/systemd/systemd --user ...

so this process already runs in a private mount namespace. It then:
  1. mounts a tmpfs on /run/systemd and creates /run/systemd/system/ (without it sd_booted()
     says no: the manager exits and systemctl reports "offline"); copies --conf to
     /run/systemd/user.conf.d/harness.conf (the manager's defaults for the test units);
  2. opens a pty and bind-mounts its slave over /dev/console: the manager logs there (and the
     units' output goes there too), and it must be a tty;
  3. forks the manager: the child writes its pid to every DIR/cgroup.procs (folders the caller
     made) and execs the command;
  4. writes the manager's pid to --pidfile, then copies everything read from the pty master to
     --log until the manager has exited, reaps it and exits with its status (128+N if killed).
If this process gets SIGTERM (also sent when the test process dies: the caller sets
PR_SET_PDEATHSIG) it passes SIGTERM on to the manager and goes on copying until the manager is gone.
Setup errors go to stderr, exit status 3.
"""
import os
import pty
import select
import signal
import subprocess
import sys


def die(msg):
    sys.stderr.write("systemd-manager.py: %s\n" % msg)
    sys.stderr.flush()
    os._exit(3)


def run(*cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        die("%s failed: %s" % (" ".join(cmd), r.stdout.decode(errors="replace").strip()))


def main(argv):
    opts = {"--log": None, "--pidfile": None, "--conf": None}
    cgroups = []
    i = 1
    while i < len(argv) and argv[i] != "--":
        if argv[i] in opts and i + 1 < len(argv):
            opts[argv[i]] = argv[i + 1]
        elif argv[i] == "--cgroup" and i + 1 < len(argv):
            cgroups.append(argv[i + 1])
        else:
            die("bad argument %r" % argv[i])
        i += 2
    command = argv[i + 1:]
    if opts["--log"] is None or opts["--pidfile"] is None or not command:
        die("usage: --log FILE --pidfile FILE [--conf FILE] [--cgroup DIR]... -- COMMAND...")

    run("mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", "/run/systemd")
    os.makedirs("/run/systemd/system")
    if opts["--conf"]:
        os.makedirs("/run/systemd/user.conf.d")
        with open(opts["--conf"], "rb") as src, \
                open("/run/systemd/user.conf.d/harness.conf", "wb") as dst:
            dst.write(src.read())

    master, slave = pty.openpty()
    run("mount", "--bind", os.ttyname(slave), "/dev/console")
    out = os.open(opts["--log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    manager = os.fork()
    if manager == 0:
        try:
            for cg in cgroups:
                with open(os.path.join(cg, "cgroup.procs"), "w") as f:
                    f.write("%d\n" % os.getpid())
            os.close(master)
            os.close(slave)
            os.close(out)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.execv(command[0], command)
        except BaseException as e:  # noqa: B902 - anything: report and leave the child
            sys.stderr.write("systemd-manager.py: cannot start %s: %s\n" % (command[0], e))
            sys.stderr.flush()
            os._exit(3)

    def forward(signum, _frame):
        try:
            os.kill(manager, signal.SIGTERM)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, forward)
    tmp = opts["--pidfile"] + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % manager)
    os.rename(tmp, opts["--pidfile"])

    # The slave stays open here, so reading the master never hits EOF while the manager
    # reopens /dev/console; stop when the manager has exited.
    status = None
    while True:
        try:
            ready = select.select([master], [], [], 0.1)[0]
        except InterruptedError:
            ready = []
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:
                data = b""
            if data:
                os.write(out, data)
                continue
        if status is None:
            pid, st = os.waitpid(manager, os.WNOHANG)
            if pid == manager:
                status = st
        if status is not None and not ready:
            break
    if os.WIFSIGNALED(status):
        os._exit(128 + os.WTERMSIG(status))
    os._exit(os.WEXITSTATUS(status))


if __name__ == "__main__":
    main(sys.argv)
