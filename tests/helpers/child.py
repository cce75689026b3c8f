#!/usr/bin/env python3
"""A test child for gwshim's integration tests (Python 3 standard library only).

Modes:
  record DIR [--exit-on SIG=CODE]... [--die-on SIG]... [--linger SECS] [--orphans N]
         [--spawn-recorder DIR2]
      Blocks every catchable signal and takes them with sigwaitinfo, so each delivery is
      seen once (real-time signals are not merged). Appends the number of every signal it
      gets to DIR/signals, one per line. Writes "PID PPID PGID" to DIR/ready once it is
      ready. --exit-on: exit CODE after recording SIG; --die-on: die of SIG after recording
      it; --linger SECS: before that exit or death, keep recording for SECS, so a duplicate
      delivery still shows in the record. --orphans N: first start N grandchildren that outlive their parent (pids in
      DIR/orphans; they exit once DIR/release exists). --spawn-recorder: also start another
      recorder for DIR2 (same process group). Wayward children: --close-stdio closes fds
      0-2, --setsid starts a new session, --setpgid starts a new process group, --stop-self
      sends itself SIGSTOP once ready.
  info CODE [ARGS...]
      Prints its arguments, cwd, stdin, environment and signal state as KEY=HEX lines
      (values hex-encoded), writes one line to stderr, exits CODE.
  tty DIR
      For a terminal: prints READY, then a tick every 0.1 s until a line can be read from
      stdin; prints "GOT <line>" and exits 0.
"""
import os
import select
import signal
import sys
import time

LIMIT = 60.0  # no helper outlives a test for long, whatever happens


def sig_number(text):
    text = text.upper()
    if text.isdigit():
        return int(text)
    if not text.startswith("SIG"):
        text = "SIG" + text
    if text.startswith("SIGRTMIN+"):
        return signal.SIGRTMIN + int(text[9:])
    return int(getattr(signal, text))


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def start_orphans(directory, count):
    """Starts `count` grandchildren through an intermediate process that exits at once."""
    middle = os.fork()
    if middle == 0:
        pids = []
        for _ in range(count):
            pid = os.fork()
            if pid == 0:
                deadline = time.monotonic() + LIMIT
                release = os.path.join(directory, "release")
                while not os.path.exists(release) and time.monotonic() < deadline:
                    time.sleep(0.02)
                os._exit(0)
            pids.append(pid)
        write_atomic(os.path.join(directory, "orphans"), " ".join(map(str, pids)))
        os._exit(0)
    os.waitpid(middle, 0)


def record(args):
    directory = args[0]
    exit_on, die_on, orphans, spawn, linger = {}, set(), 0, None, 0.0
    wayward = set()
    rest = args[1:]
    while rest:
        if rest[0] in ("--close-stdio", "--setsid", "--setpgid", "--stop-self"):
            wayward.add(rest[0])
            rest = rest[1:]
            continue
        opt, value, rest = rest[0], rest[1], rest[2:]
        if opt == "--exit-on":
            sig, code = value.split("=")
            exit_on[sig_number(sig)] = int(code)
        elif opt == "--die-on":
            die_on.add(sig_number(value))
        elif opt == "--linger":
            linger = float(value)
        elif opt == "--orphans":
            orphans = int(value)
        elif opt == "--spawn-recorder":
            spawn = value
        else:
            sys.exit("child.py: unknown option " + opt)

    catchable = set(signal.valid_signals()) - {signal.SIGKILL, signal.SIGSTOP}
    signal.pthread_sigmask(signal.SIG_BLOCK, catchable)
    waited = catchable - {signal.SIGCHLD}
    if orphans:
        start_orphans(directory, orphans)
    helper = None
    if spawn:
        import subprocess

        helper = subprocess.Popen([sys.executable, os.path.abspath(__file__), "record", spawn])
    if "--close-stdio" in wayward:
        for fd in (0, 1, 2):
            os.close(fd)
    if "--setsid" in wayward:
        try:
            os.setsid()
        except PermissionError:
            # Outside a terminal's foreground gwshim starts it leading a group of its own,
            # and a group leader cannot start a session: it has left gwshim's group anyway.
            pass
    if "--setpgid" in wayward:
        os.setpgid(0, 0)
    write_atomic(os.path.join(directory, "ready"), f"{os.getpid()} {os.getppid()} {os.getpgrp()}")
    if "--stop-self" in wayward:
        os.kill(os.getpid(), signal.SIGSTOP)

    log = os.open(os.path.join(directory, "signals"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    deadline = time.monotonic() + LIMIT
    while time.monotonic() < deadline:
        info = signal.sigtimedwait(waited, 1.0)
        if info is None:
            continue
        sig = info.si_signo
        os.write(log, f"{sig}\n".encode())
        if sig in die_on or sig in exit_on:
            until = time.monotonic() + linger
            while time.monotonic() < until:
                more = signal.sigtimedwait(waited, max(until - time.monotonic(), 0.001))
                if more is not None:
                    os.write(log, f"{more.si_signo}\n".encode())
        if sig in die_on:
            if helper:
                helper.kill()
            signal.signal(sig, signal.SIG_DFL)
            os.kill(os.getpid(), sig)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {sig})
            time.sleep(5)
            sys.exit("child.py: still alive after " + str(sig))
        if sig in exit_on:
            if helper:
                helper.kill()
            sys.exit(exit_on[sig])
    sys.exit("child.py: time limit reached")


def info(args):
    code = int(args[0])
    out = []
    for arg in sys.argv[3:]:
        out.append("arg=" + os.fsencode(arg).hex())
    out.append("cwd=" + os.fsencode(os.getcwd()).hex())
    out.append("stdin=" + sys.stdin.buffer.read().hex())
    for name, value in sorted(os.environb.items()):
        out.append("env." + name.decode("latin-1") + "=" + value.hex())
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("SigIgn", "SigBlk"):
                out.append(key + "=" + value.strip())
    sys.stdout.write("\n".join(out) + "\n")
    sys.stdout.flush()
    sys.stderr.write("child stderr line\n")
    sys.exit(code)


def tty(args):
    directory = args[0]
    write_atomic(os.path.join(directory, "ready"), f"{os.getpid()} {os.getppid()} {os.getpgrp()}")
    print("READY", flush=True)
    deadline = time.monotonic() + LIMIT
    tick = 0
    while time.monotonic() < deadline:
        readable, _, _ = select.select([sys.stdin], [], [], 0.1)
        if readable:
            line = sys.stdin.readline()
            print("GOT " + line.strip(), flush=True)
            sys.exit(0)
        tick += 1
        print(f"tick {tick}", flush=True)
    sys.exit("child.py: time limit reached")


def main():
    modes = {"record": record, "info": info, "tty": tty}
    if len(sys.argv) < 3 or sys.argv[1] not in modes:
        sys.exit(__doc__)
    modes[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
