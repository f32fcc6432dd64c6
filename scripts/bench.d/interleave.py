#!/usr/bin/env python3
"""Cross-check for scripts/bench: runs the same commands round-robin (A B C … A B C …) so that
background load on a shared host hits every command alike; hyperfine runs each command's
samples back to back, where a burst of load can land on one command only.

usage: interleave.py ROUNDS OUT.json NAME CMD [NAME CMD ...]
CMD is split like a shell word list (as `hyperfine -N` does) and run without a shell; it must
exit 0. Prints a markdown table: median, mean, min per command, median minus the first
command's median (the wrapper), and Skiff's median over each command's.
"""
import json
import shlex
import statistics
import subprocess
import sys
import time

rounds, out = int(sys.argv[1]), sys.argv[2]
pairs = list(zip(sys.argv[3::2], sys.argv[4::2]))
times = {name: [] for name, _ in pairs}
for rnd in range(rounds + 1):  # round 0 is a warmup
    order = pairs if rnd % 2 == 0 else pairs[::-1]  # alternate direction: no fixed predecessor
    for name, cmd in order:
        t = time.perf_counter()
        rc = subprocess.run(shlex.split(cmd), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL).returncode
        dt = time.perf_counter() - t
        if rc != 0:
            sys.exit("interleave: %r exited %d" % (cmd, rc))
        if rnd > 0:
            times[name].append(dt * 1000)
with open(out, "w") as f:
    json.dump({"rounds": rounds, "times_ms": times}, f, indent=1)
med = {n: statistics.median(t) for n, t in times.items()}
wrapper = pairs[0][0]
skiff = next(n for n, _ in pairs if n.startswith("skiff"))
print("| command (interleaved, %d rounds) | median ms | mean ms | min ms | net median ms | skiff/X (median) |" % rounds)
print("|---|---:|---:|---:|---:|---:|")
for n, _ in pairs:
    t = times[n]
    print("| %s | %.2f | %.2f | %.2f | %s | %s |" % (
        n, med[n], statistics.mean(t), min(t),
        "–" if n == wrapper else "%.2f" % (med[n] - med[wrapper]),
        "–" if n == wrapper else "%.2f" % (med[skiff] / med[n])))
