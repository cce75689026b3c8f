"""A Type=notify service for the relay's tests (tests/notify_access.rs), and the processes it
starts. usage: notify_speaker.py DIR MODE; DIR/starts gets "PID NOTIFY_SOCKET" per start.
  gateway          READY=1 (beside lines systemd cannot use) with a STATUS=; then grandchildren
                   say STOPPING=1 (systemd-notify) and ERRNO= (a failing systemctl); then
                   DIR/grandchildren-done; then WATCHDOG=1 every 0.5 s
  grandchild-ready a grandchild says READY=1 (systemd-notify --ready); the service never does
  fdstore          first start: READY=1, DIR/waiting, then once DIR/go exists FDSTORE=1 with
                   /dev/null and exit 75 at once; later starts: READY=1 and stay
  stopping         first 3 starts: READY=1, then STOPPING=1 and exit 1; later: READY=1, stay
  ready            READY=1 and stay"""
import array
import os
import socket
import subprocess
import sys
import time

d, mode = sys.argv[1], sys.argv[2]
with open(os.path.join(d, "starts"), "a") as f:
    f.write("%d %s\n" % (os.getpid(), os.environ.get("NOTIFY_SOCKET", "")))
starts = len(open(os.path.join(d, "starts")).read().splitlines())
addr = os.environ["NOTIFY_SOCKET"]
if addr.startswith("@"):
    addr = "\0" + addr[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)


def grandchild(script):
    # `; :` keeps sh from exec'ing the tool: its parent is then a grandchild of gwshim (as
    # root, systemd-notify sends on behalf of its parent).
    subprocess.run(["sh", "-c", script + "; :"])


def touch(name):
    open(os.path.join(d, name), "w").close()


if mode == "gateway":
    s.sendto(b"X\n\xff\xfe\nREADY=1\nSTATUS=ready beside lines systemd cannot use", addr)
    grandchild("systemd-notify STOPPING=1")
    grandchild("env -u XDG_RUNTIME_DIR -u DBUS_SESSION_BUS_ADDRESS systemctl --user start no-such.service 2>/dev/null")
    touch("grandchildren-done")
    while True:
        s.sendto(b"WATCHDOG=1", addr)
        time.sleep(0.5)
elif mode == "grandchild-ready":
    grandchild("systemd-notify --ready")
    touch("grandchildren-done")
elif mode == "fdstore" and starts == 1:
    s.sendto(b"READY=1", addr)
    touch("waiting")
    while not os.path.exists(os.path.join(d, "go")):
        time.sleep(0.01)
    # Not a pipe: systemd drops a stored fd that reports POLLHUP (its other end closing).
    fd = os.open("/dev/null", os.O_RDONLY)
    s.sendmsg([b"FDSTORE=1\nFDNAME=kept"],
              [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]).tobytes())], 0, addr)
    sys.exit(75)
elif mode == "stopping" and starts <= 3:
    s.sendto(b"READY=1", addr)
    time.sleep(0.2)
    s.sendto(b"STOPPING=1\nSTATUS=stopping", addr)
    time.sleep(0.2)
    sys.exit(1)
else:
    s.sendto(b"READY=1\nSTATUS=up", addr)
time.sleep(3600)
