#!/usr/bin/env python3
"""CPUs used by cgroups over a timed window.

usage: cpu-window.py SECONDS NAME=PATH[:PATH...] ...
Reads each workload's CPU time (v1 cpuacct.usage in ns, or v2 cpu.stat usage_usec) from the first of
its cgroup directories that has it, sleeps SECONDS, reads again, and prints "NAME CPUs" per line,
with CPUs = Δ CPU time / Δ wall time (CLOCK_MONOTONIC around the reads).
"""
import os
import sys
import time


def usage_ns(paths):
    for p in paths:
        f = os.path.join(p, "cpuacct.usage")
        if os.path.exists(f):
            return int(open(f).read())
        f = os.path.join(p, "cpu.stat")
        if os.path.exists(f):
            for line in open(f):
                if line.startswith("usage_usec"):
                    return int(line.split()[1]) * 1000
    raise SystemExit(f"no CPU accounting file under {paths}")


seconds = float(sys.argv[1])
work = [(a.split("=", 1)[0], a.split("=", 1)[1].split(":")) for a in sys.argv[2:]]
t0 = time.monotonic()
before = [usage_ns(p) for _, p in work]
time.sleep(seconds)
after = [usage_ns(p) for _, p in work]
t1 = time.monotonic()
for (name, _), b, a in zip(work, before, after):
    print(name, round((a - b) / 1e9 / (t1 - t0), 3))
