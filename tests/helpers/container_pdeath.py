#!/usr/bin/env python3
"""A main child that records which signal it got.

usage: container_pdeath.py PID_FILE MARKER_FILE

Writes its pid to PID_FILE, then waits; on SIGTERM or SIGINT it writes the signal number to
MARKER_FILE and exits 0.
"""
import os
import signal
import sys

pid_file, marker = sys.argv[1], sys.argv[2]


def got(signo, _frame):
    with open(marker + ".tmp", "w") as f:
        f.write(str(signo))
    os.rename(marker + ".tmp", marker)
    sys.exit(0)


signal.signal(signal.SIGTERM, got)
signal.signal(signal.SIGINT, got)
with open(pid_file + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(pid_file + ".tmp", pid_file)
while True:
    signal.pause()
