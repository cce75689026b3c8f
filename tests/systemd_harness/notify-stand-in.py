#!/usr/bin/python3
# A notify stand-in service for the systemd harness:
#   notify-stand-in.py DIR FAIL_STARTS SHAPE
# Counts its starts in DIR/count and appends events to DIR/events, as stand-in.sh does:
#   start N PID PPID TIME   on every start (TIME: seconds since the epoch)
#   exit N PID 1            on the first FAIL_STARTS starts, then exits 1, after what SHAPE says:
#     ready-watchdog   READY=1, then WATCHDOG=1 three times 0.3 s apart (a watchdog unit that
#                      was up, then crashed)
#     before-ready     0.3 s of start-up, no READY=1 (a start-up failure)
#     watchdog         WATCHDOG=1 three times 0.3 s apart, no READY=1 (Type=exec/simple)
#   up N PID                otherwise: READY=1, then WATCHDOG=1 every 0.5 s until SIGTERM
#                           (then "TERM N PID TIME" and exit 0); SIGSTOP it to hang it.
# Every notification goes from this process itself, so NotifyAccess=main accepts it when it is
# the unit's main process (the control) and gwshim's relay passes it on when it is gwshim's child.
import os
import signal
import socket
import sys
import time

d, fail_starts, shape = sys.argv[1], int(sys.argv[2]), sys.argv[3]


def event(line):
    with open(os.path.join(d, "events"), "a") as f:
        f.write(line + "\n")


def notify(message):
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    if path.startswith("@"):
        path = "\0" + path[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(message.encode(), path)


try:
    with open(os.path.join(d, "count")) as f:
        n = int(f.read()) + 1
except (OSError, ValueError):
    n = 1
with open(os.path.join(d, "count"), "w") as f:
    f.write(f"{n}\n")
pid = os.getpid()
event(f"start {n} {pid} {os.getppid()} {time.time():.6f}")

if n <= fail_starts:
    if shape == "ready-watchdog":
        notify("READY=1")
    if shape in ("ready-watchdog", "watchdog"):
        for _ in range(3):
            time.sleep(0.3)
            notify("WATCHDOG=1")
    else:
        time.sleep(0.3)
    event(f"exit {n} {pid} 1")
    sys.exit(1)


def on_term(_signo, _frame):
    event(f"TERM {n} {pid} {time.time():.6f}")
    sys.exit(0)


signal.signal(signal.SIGTERM, on_term)
notify("READY=1")
event(f"up {n} {pid}")
while True:
    notify("WATCHDOG=1")
    time.sleep(0.5)
