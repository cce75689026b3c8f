"""A Type=notify service for gwshim's tests: records its start, sends READY=1 after 1 s, then
WATCHDOG=1 every 0.5 s until DIR/stop-pinging exists, then stays up without pinging.
usage: notify_child.py DIR"""
import os
import socket
import sys
import time

d = sys.argv[1]
with open(os.path.join(d, "starts"), "a") as f:
    f.write("%d %s\n" % (os.getpid(), os.environ.get("NOTIFY_SOCKET", "")))
addr = os.environ["NOTIFY_SOCKET"]
if addr.startswith("@"):
    addr = "\0" + addr[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
time.sleep(1)
s.sendto(b"READY=1\nSTATUS=ready", addr)
while not os.path.exists(os.path.join(d, "stop-pinging")):
    s.sendto(b"WATCHDOG=1", addr)
    time.sleep(0.5)
time.sleep(3600)
