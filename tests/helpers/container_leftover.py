#!/usr/bin/env python3
"""A main child that leaves one background process behind and exits.

usage: container_leftover.py ignore|obey PID_FILE STATUS

The background process ignores SIGTERM (ignore) or dies of it (obey), writes its pid to
PID_FILE once that is set up, and sleeps for a minute. The main child then exits STATUS.
"""
import os
import signal
import sys
import time

mode, pid_file, status = sys.argv[1], sys.argv[2], int(sys.argv[3])
r, w = os.pipe()
if os.fork() == 0:
    os.close(r)
    signal.signal(signal.SIGTERM, signal.SIG_IGN if mode == "ignore" else signal.SIG_DFL)
    with open(pid_file + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(pid_file + ".tmp", pid_file)
    os.close(w)
    time.sleep(60)
    os._exit(0)
os.close(w)
os.read(r, 1)  # EOF once the background process is set up
sys.exit(status)
