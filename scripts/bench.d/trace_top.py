#!/usr/bin/env python3
"""Reads an `strace -f -tt -T` log and prints where the wall time goes.

usage: trace_top.py TRACE
Prints: the total span, the slowest individual syscalls (by their <duration>, excluding the ones
that only wait for another process: wait4, waitid, read on a pipe that blocks, poll, epoll_wait),
and the longest gaps in each process between the end of one syscall and the start of its next
(user-space CPU work such as Swift runtime start-up, JSON or SQL).
"""
import re
import sys

LINE = re.compile(r"^(\d+)\s+(\d+):(\d+):(\d+\.\d+)\s+(.*?)(?:\s+<(\d+\.\d+)>)?$")
WAITS = {"wait4", "waitid", "poll", "ppoll", "epoll_wait", "epoll_pwait", "select", "pselect6", "rt_sigtimedwait"}


def secs(h, m, s):
    return int(h) * 3600 + int(m) * 60 + float(s)


events = []  # (pid, start, dur, text)
pending = {}
for raw in open(sys.argv[1], errors="replace"):
    m = LINE.match(raw.rstrip("\n"))
    if not m:
        continue
    pid, t, text, dur = int(m[1]), secs(m[2], m[3], m[4]), m[5], m[6]
    if "<unfinished ...>" in text:
        pending[pid] = (t, text.replace("<unfinished ...>", "").strip())
        continue
    if text.startswith("<..."):
        start, head = pending.pop(pid, (t, text))
        name = head.split("(")[0]
        events.append((pid, start, float(dur) if dur else t - start, head + " … " + text.split("resumed>", 1)[-1].strip()))
        continue
    events.append((pid, t, float(dur) if dur else 0.0, text))

if not events:
    sys.exit("no events in trace")
t0 = min(e[1] for e in events)
t1 = max(e[1] + e[2] for e in events)
print("traced span: %.1f ms, %d syscalls, %d processes" % ((t1 - t0) * 1000, len(events), len({e[0] for e in events})))

def short(s, n=110):
    return s if len(s) <= n else s[: n - 1] + "…"

print("\nslowest syscalls (excluding waits for children):")
busy = [e for e in events if e[3].split("(")[0] not in WAITS and not e[3].startswith("read(") or
        (e[3].startswith("read(") and e[2] < 0.002)]
for pid, start, dur, text in sorted(busy, key=lambda e: -e[2])[:15]:
    print("  %7.2f ms  +%7.2f ms  pid %-7d %s" % (dur * 1000, (start - t0) * 1000, pid, short(text)))

print("\nlongest user-space gaps (end of a syscall to the next one in the same process):")
gaps = []
last = {}
for pid, start, dur, text in sorted(events, key=lambda e: e[1]):
    if pid in last:
        end, prev = last[pid]
        gaps.append((start - end, pid, end, prev, text))
    last[pid] = (start + dur, text)
for gap, pid, end, prev, text in sorted(gaps, key=lambda g: -g[0])[:12]:
    print("  %7.2f ms  +%7.2f ms  pid %-7d after %s\n%39s before %s" % (
        gap * 1000, (end - t0) * 1000, pid, short(prev, 60), "", short(text, 60)))
