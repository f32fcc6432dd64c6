#!/usr/bin/env python3
"""Summarises a hyperfine --export-json file as a markdown table.

usage: summary.py [--plain] RESULTS.json
Default (start-up run): the first command is the wrapper alone; the table shows median, mean ± σ,
min, max, median minus the wrapper's median ("net"), and ratios of medians against Skiff (the
first command whose name starts with "skiff"). --plain: no wrapper subtraction, ratios against
the first command.
"""
import json
import statistics
import sys

plain = "--plain" in sys.argv
path = [a for a in sys.argv[1:] if not a.startswith("--")][0]
with open(path) as f:
    results = json.load(f)["results"]

ms = lambda s: s * 1000.0
rows = []
for r in results:
    t = r["times"]
    rows.append({"name": r["command"], "median": ms(statistics.median(t)), "mean": ms(statistics.mean(t)),
                 "sd": ms(statistics.stdev(t)) if len(t) > 1 else 0.0, "min": ms(min(t)), "max": ms(max(t)), "n": len(t)})

if plain:
    base = rows[0]
    print("| command | runs | median ms | mean ± σ ms | min ms | max ms | median / %s |" % base["name"])
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print("| %s | %d | %.2f | %.2f ± %.2f | %.2f | %.2f | %.2f× |" % (
            r["name"], r["n"], r["median"], r["mean"], r["sd"], r["min"], r["max"], r["median"] / base["median"]))
    sys.exit(0)

wrapper = rows[0]
skiff = next(r for r in rows if r["name"].startswith("skiff"))
net_s = skiff["median"] - wrapper["median"]
print("| command | runs | median ms | mean ± σ ms | min ms | max ms | net median ms | skiff/X (median) | skiff/X (net) |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in rows:
    net = r["median"] - wrapper["median"]
    if r is wrapper:
        print("| %s | %d | %.2f | %.2f ± %.2f | %.2f | %.2f | – | – | – |" % (
            r["name"], r["n"], r["median"], r["mean"], r["sd"], r["min"], r["max"]))
        continue
    print("| %s | %d | %.2f | %.2f ± %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |" % (
        r["name"], r["n"], r["median"], r["mean"], r["sd"], r["min"], r["max"], net,
        skiff["median"] / r["median"], net_s / net if net > 0 else float("nan")))
print()
print("skiff/X < 1 means Skiff is faster than X. net = median minus the wrapper-only median.")
