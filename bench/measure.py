#!/usr/bin/env python3
"""Run one command and measure its whole process tree.

usage: measure.py OUT.json CMD [ARG...]

This process makes itself a child subreaper (prctl PR_SET_CHILD_SUBREAPER), so
everything the command leaves behind (ssh ControlPersist masters, ProxyJump
helpers) is re-parented here instead of to init. When the command exits, the
leftovers get SIGTERM (then SIGKILL after 10 s) and are reaped, so their CPU
time lands in RUSAGE_CHILDREN too. Writes {"rc", "wall_s", "cpu_s",
"user_s", "sys_s", "maxrss_kib"}: wall time until the command itself exits,
user+system CPU of every process of the tree, and the largest peak RSS of any
one process in it (ru_maxrss is a maximum, not a sum).

The command runs under GNU time, which reports the peak RSS of the command's
own tree: Linux carries a process's RSS high-water mark across exec, so a
child forked straight from this Python process would report at least
Python's ~11 MiB; time's few hundred KiB are all a child of it inherits.
"""
import ctypes
import json
import os
import resource
import signal
import subprocess
import sys
import time

PR_SET_CHILD_SUBREAPER = 36


def children():
    pids = []
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/children") as f:
                pids += [int(p) for p in f.read().split()]
        except OSError:
            pass
    return pids


def reap_leftovers():
    """SIGTERM what is left, reap it all; the largest peak RSS among them."""
    peak = 0
    for pid in children():
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    while True:
        try:
            pid, _, ru = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return peak
        peak = max(peak, ru.ru_maxrss)
        if pid == 0:
            if time.monotonic() > deadline:
                for p in children():
                    os.kill(p, signal.SIGKILL)
                deadline = time.monotonic() + 10
            time.sleep(0.02)


def main():
    out, cmd = sys.argv[1], sys.argv[2:]
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit("measure.py: prctl(PR_SET_CHILD_SUBREAPER) failed")
    rss_file = out + ".rss"
    t0 = time.monotonic()
    rc = subprocess.Popen(["/usr/bin/time", "-q", "-f", "%M", "-o", rss_file, *cmd]).wait()
    wall = time.monotonic() - t0
    peak = reap_leftovers()
    with open(rss_file) as f:
        peak = max(peak, int(f.read().split()[-1]))
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(out, "w") as f:
        json.dump(
            {
                "rc": rc,
                "wall_s": round(wall, 4),
                "cpu_s": round(ru.ru_utime + ru.ru_stime, 4),
                "user_s": round(ru.ru_utime, 4),
                "sys_s": round(ru.ru_stime, 4),
                "maxrss_kib": peak,
            },
            f,
        )


if __name__ == "__main__":
    main()
