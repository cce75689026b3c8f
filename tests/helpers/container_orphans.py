#!/usr/bin/env python3
"""A main child that orphans N grandchildren, then waits for SIGTERM and exits 0.

usage: container_orphans.py N SECONDS READY_FILE

Each grandchild is double-forked (its parent exits at once), so it is re-parented to the
namespace's pid 1 (or a subreaper), sleeps SECONDS and exits: someone must reap it.
READY_FILE gets this process's pid once all grandchildren exist.
"""
import os
import signal
import sys
import time

n, seconds, ready = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
for _ in range(n):
    middle = os.fork()
    if middle == 0:
        if os.fork() == 0:
            time.sleep(seconds)
            os._exit(0)
        os._exit(0)
    os.waitpid(middle, 0)
with open(ready + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(ready + ".tmp", ready)
while True:
    signal.pause()
