#!/usr/bin/env python3
"""Drives gwshim in a real pseudo-terminal for the integration tests (stdlib only).

  pty_driver.py ctrl-c GWSHIM CHILD_PY DIR
      Runs `GWSHIM -v -- python3 CHILD_PY record DIR --die-on INT --linger 0.3` as the session leader of a
      new pty, types Ctrl-C once the child is ready and prints how gwshim ended:
      "exited N" or "signaled N".
  pty_driver.py ctrl-z GWSHIM CHILD_PY DIR
      Runs an interactive bash in a new pty, starts `GWSHIM -- python3 CHILD_PY tty DIR` as a
      job, types Ctrl-Z, checks that the shell reports it stopped and that child and gwshim are
      stopped, runs `fg`, checks the child ticks again, types a line the child must read, and
      checks gwshim's status and that gwshim (-v) forwarded nothing the terminal or `fg` had
      already delivered to the group. Prints "ok" on success.


The terminal cases of gwshim's signal handling (tests/signals.rs). Each mode runs gwshim as the session leader of a new pty (pty.fork: gwshim's group is the
terminal's foreground group) and prints how gwshim ended: "exited N" or "signaled N".

  pty_driver.py setsid-ctrl-c GWSHIM CHILD_PY DIR
      The child (child.py record, --setsid) moves to a session of its own, then Ctrl-C is
      typed: the terminal signals gwshim only, and gwshim must pass it on.
  pty_driver.py hangup GWSHIM CHILD_PY DIR
      The child shares gwshim's group; the terminal hangs up (its master is closed): the
      kernel sends SIGHUP to gwshim, the session leader, alone, and gwshim must pass it on.
  pty_driver.py group-stty GWSHIM DIR
      gwshim --group runs a shell that calls stty and reads a line from the terminal: its
      group must be the terminal's foreground group, or stty stops it (SIGTTOU).
  pty_driver.py group-ctrl-c GWSHIM DIR
      gwshim --group runs `sleep`; Ctrl-C reaches the child's group (the foreground one).
  pty_driver.py group-ctrl-z GWSHIM CHILD_PY DIR
      An interactive bash runs `gwshim --group -- python3 CHILD_PY tty DIR` as a job; Ctrl-Z
      (which reaches the child's group only) must stop the job as bash sees it, `fg` must
      resume the child with the terminal, which then reads a line. Prints "ok".
Exits non-zero with a message and the terminal transcript on stderr when something is wrong.
Every wait is bounded.
"""
import os
import pty
import select
import shlex
import sys
import time

TIMEOUT = 10.0


class Term:
    def __init__(self, fd):
        self.fd = fd
        self.out = b""
        self.seen = 0  # expect() searches from here

    def pump(self, wait):
        if self.fd is None:  # the master is closed (a hangup): nothing more to read
            time.sleep(wait)
            return False
        readable, _, _ = select.select([self.fd], [], [], wait)
        if readable:
            try:
                data = os.read(self.fd, 4096)
            except OSError:  # EIO: every slave fd is closed
                data = b""
            self.out += data
            return bool(data)
        return True

    def expect(self, text, timeout=TIMEOUT):
        text = text.encode()
        deadline = time.monotonic() + timeout
        while True:
            at = self.out.find(text, self.seen)
            if at >= 0:
                self.seen = at + len(text)
                return
            left = deadline - time.monotonic()
            if left <= 0 or not self.pump(min(left, 0.1)):
                fail(f"did not see {text!r} on the terminal", self)

    def send(self, data):
        os.write(self.fd, data.encode() if isinstance(data, str) else data)

    def drain(self, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self.pump(0.05):
            pass


def fail(message, term=None):
    sys.stderr.write("pty_driver: " + message + "\n")
    if term is not None:
        sys.stderr.write("--- terminal transcript ---\n" + term.out.decode(errors="replace") + "\n---\n")
    sys.exit(1)


def wait_file(path, term):
    deadline = time.monotonic() + TIMEOUT
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            fail("timed out waiting for " + path, term)
        term.pump(0.02)
    with open(path) as f:
        return [int(x) for x in f.read().split()]


def state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def wait_state(pid, want_stopped, term):
    deadline = time.monotonic() + TIMEOUT
    while (state(pid) == "T") != want_stopped:
        if time.monotonic() > deadline:
            fail(f"pid {pid} state {state(pid)}, wanted {'stopped' if want_stopped else 'running'}", term)
        term.pump(0.02)


def ctrl_c(gwshim, child_py, directory):
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(gwshim, [gwshim, "-v", "--", sys.executable, child_py, "record", directory, "--die-on", "INT", "--linger", "0.3"])
    term = Term(fd)
    wait_file(os.path.join(directory, "ready"), term)
    term.send(b"\x03")
    deadline = time.monotonic() + TIMEOUT
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            fail("gwshim did not end after Ctrl-C", term)
        term.pump(0.02)
    term.drain(0.2)
    sys.stderr.write(term.out.decode(errors="replace"))
    if b"forwarding" in term.out:
        fail("gwshim forwarded a signal the terminal had already sent to the child", term)
    if os.WIFSIGNALED(status):
        print(f"signaled {os.WTERMSIG(status)}")
    else:
        print(f"exited {os.WEXITSTATUS(status)}")


def ctrl_z(gwshim, child_py, directory):
    env = dict(os.environ, PS1="PROMPT> ", TERM="dumb")
    pid, fd = pty.fork()
    if pid == 0:
        os.execve("/bin/bash", ["bash", "--norc", "--noprofile", "-i"], env)
    term = Term(fd)
    try:
        term.expect("PROMPT> ")
        command = shlex.join([gwshim, "-v", "--", sys.executable, child_py, "tty", directory])
        term.send(command + "\n")
        term.expect("READY")
        term.expect("tick")
        child, gw, _ = wait_file(os.path.join(directory, "ready"), term)

        term.send(b"\x1a")
        term.expect("Stopped")
        term.expect("PROMPT> ")
        wait_state(child, True, term)
        wait_state(gw, True, term)

        term.send("fg\n")
        wait_state(child, False, term)
        wait_state(gw, False, term)
        term.expect("tick")  # a tick printed after fg: the child works again
        term.expect("tick")

        term.send("hello from the terminal\n")
        term.expect("GOT hello from the terminal")
        term.expect("PROMPT> ")
        term.send("echo status=$?\n")
        term.expect("status=0")
        if b"forwarding" in term.out:
            fail("gwshim (-v) forwarded a signal the terminal or `fg` had already sent", term)
        term.send("exit\n")
        deadline = time.monotonic() + TIMEOUT
        while os.waitpid(pid, os.WNOHANG)[0] == 0:
            if time.monotonic() > deadline:
                fail("bash did not exit", term)
            term.pump(0.02)
    finally:
        try:
            os.kill(pid, 9)
        except OSError:
            pass
    sys.stderr.write(term.out.decode(errors="replace"))
    print("ok")


def finish(pid, term):
    deadline = time.monotonic() + TIMEOUT
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            fail("gwshim did not end", term)
        term.pump(0.02)
    if term.fd is not None:
        term.pump(0.1)
    sys.stderr.write(term.out.decode(errors="replace"))
    if os.WIFSIGNALED(status):
        print(f"signaled {os.WTERMSIG(status)}")
    else:
        print(f"exited {os.WEXITSTATUS(status)}")


def start(argv):
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(argv[0], argv)
    return pid, Term(fd)


def setsid_ctrl_c(gwshim, child_py, directory):
    pid, term = start([gwshim, "-v", "--", sys.executable, child_py, "record", directory,
                       "--setsid", "--exit-on", "INT=0"])
    wait_file(os.path.join(directory, "ready"), term)
    term.send(b"\x03")
    finish(pid, term)


def hangup(gwshim, child_py, directory):
    pid, term = start([gwshim, "-v", "--", sys.executable, child_py, "record", directory,
                       "--exit-on", "HUP=0", "--linger", "0.3"])
    wait_file(os.path.join(directory, "ready"), term)
    os.close(term.fd)
    term.fd = None
    finish(pid, term)


def group_stty(gwshim, directory):
    script = "stty -echo; stty echo; echo STTY-OK; read line; echo GOT $line"
    pid, term = start([gwshim, "--group", "--", "/bin/sh", "-c", script])
    term.expect("STTY-OK")
    term.send(b"hello\n")
    term.expect("GOT hello")
    finish(pid, term)


def group_ctrl_c(gwshim, directory):
    ready = os.path.join(directory, "ready")
    pid, term = start([gwshim, "--group", "--", "/bin/sh", "-c", f"touch {ready}; exec sleep 30"])
    wait_file(ready, term)
    time.sleep(0.2)  # the shell has become sleep
    term.send(b"\x03")
    finish(pid, term)


def group_ctrl_z(gwshim, child_py, directory):
    env = dict(os.environ, PS1="PROMPT> ", TERM="dumb")
    pid, fd = pty.fork()
    if pid == 0:
        os.execve("/bin/bash", ["bash", "--norc", "--noprofile", "-i"], env)
    term = Term(fd)
    try:
        term.expect("PROMPT> ")
        term.send((shlex.join([gwshim, "--group", "--", sys.executable, child_py, "tty", directory]) + "\n").encode())
        term.expect("READY")
        wait_file(os.path.join(directory, "ready"), term)
        with open(os.path.join(directory, "ready")) as f:
            child, gw, _ = [int(x) for x in f.read().split()]
        term.send(b"\x1a")
        term.expect("Stopped")
        wait_state(child, True, term)
        wait_state(gw, True, term)
        term.seen = len(term.out)  # only what comes after fg
        term.send(b"fg\n")
        wait_state(child, False, term)
        wait_state(gw, False, term)
        term.expect("tick")
        term.send(b"hello after fg\n")
        term.expect("GOT hello after fg")
        term.send(b"echo status=$?\n")
        term.expect("status=0")
        term.send(b"exit\n")
        deadline = time.monotonic() + TIMEOUT
        while os.waitpid(pid, os.WNOHANG)[0] == 0:
            if time.monotonic() > deadline:
                fail("bash did not exit", term)
            term.pump(0.02)
    finally:
        try:
            os.kill(pid, 9)
        except OSError:
            pass
    print("ok")


def main():
    modes = {"ctrl-c": (ctrl_c, 3), "ctrl-z": (ctrl_z, 3),
             "setsid-ctrl-c": (setsid_ctrl_c, 3), "hangup": (hangup, 3),
             "group-stty": (group_stty, 2), "group-ctrl-c": (group_ctrl_c, 2),
             "group-ctrl-z": (group_ctrl_z, 3)}
    if len(sys.argv) < 2 or sys.argv[1] not in modes or len(sys.argv) != 2 + modes[sys.argv[1]][1]:
        sys.exit(__doc__)
    modes[sys.argv[1]][0](*sys.argv[2:])


if __name__ == "__main__":
    main()
