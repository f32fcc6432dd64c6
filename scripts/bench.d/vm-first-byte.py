#!/usr/bin/env python3
"""Time to first byte on stdout, and to exit, of a command (a VM whose serial port is stdout).

usage: vm-first-byte.py [--runs N] [--warmup N] [--json FILE] -- CMD ARGS...

Each run: t0 just before fork/exec (subprocess.Popen, no shell), t1 when the first byte arrives on
the pipe, t2 when the command has exited (output drained). Prints mean/median/min/max of both in
milliseconds; a run that does not exit 0 or prints nothing is an error.
"""
import json, os, statistics, subprocess, sys, time

def main():
    args = sys.argv[1:]
    runs, warmup, out = 30, 3, None
    while args and args[0] != "--":
        if args[0] == "--runs": runs = int(args[1]); args = args[2:]
        elif args[0] == "--warmup": warmup = int(args[1]); args = args[2:]
        elif args[0] == "--json": out = args[1]; args = args[2:]
        else: sys.exit(f"vm-first-byte: unknown argument {args[0]}")
    cmd = args[1:]
    if not cmd: sys.exit(__doc__)
    first, total = [], []
    for i in range(warmup + runs):
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        b = os.read(p.stdout.fileno(), 1)
        t1 = time.perf_counter()
        rest = p.stdout.read()
        rc = p.wait()
        t2 = time.perf_counter()
        if rc != 0 or not b:
            sys.exit(f"vm-first-byte: run {i}: exit {rc}, output {(b + rest)!r}: {' '.join(cmd)}")
        if i >= warmup:
            first.append((t1 - t0) * 1000); total.append((t2 - t0) * 1000)
    def s(v): return {"mean": statistics.mean(v), "median": statistics.median(v), "min": min(v),
                      "max": max(v), "stddev": statistics.stdev(v) if len(v) > 1 else 0.0}
    res = {"command": " ".join(cmd), "runs": runs, "first_byte_ms": s(first), "exit_ms": s(total)}
    if out:
        with open(out, "w") as f: json.dump(res, f, indent=2)
    fb, ex = res["first_byte_ms"], res["exit_ms"]
    print(f"first byte: median {fb['median']:.1f} ms (mean {fb['mean']:.1f} ± {fb['stddev']:.1f}, "
          f"min {fb['min']:.1f}, max {fb['max']:.1f}); exit: median {ex['median']:.1f} ms "
          f"(mean {ex['mean']:.1f} ± {ex['stddev']:.1f}) over {runs} runs: {res['command']}")

main()
