#!/usr/bin/env python3
"""Memory of a VMM process: vm-mem.py PID GUEST_MIB [LABEL]

Reads /proc/PID/status (VmRSS, RssAnon, RssFile) and /proc/PID/smaps. The guest memory is the
anonymous mapping (no file) of at least GUEST_MIB MiB; its Rss is the guest pages the VM has
touched. Overhead = VmRSS - guest Rss (the VMM's own memory, code pages included);
anonymous overhead = RssAnon - guest Rss (what the VMM allocated privately). Prints one line
and a JSON object.
"""
import json, re, sys

pid, guest_mib = int(sys.argv[1]), int(sys.argv[2])
label = sys.argv[3] if len(sys.argv) > 3 else str(pid)
status = {}
for line in open(f"/proc/{pid}/status"):
    k, _, v = line.partition(":")
    if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem", "Threads"):
        status[k] = int(v.split()[0])
guest = None
cur = None
for line in open(f"/proc/{pid}/smaps"):
    m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ (\d+)\s*(.*)$", line)
    if m:
        cur = {"range": f"{m[1]}-{m[2]}", "inode": int(m[3]), "name": m[4].strip()}
        continue
    if cur is None: continue
    k, _, v = line.partition(":")
    if k == "Size": cur["size_kb"] = int(v.split()[0])
    elif k == "Rss":
        cur["rss_kb"] = int(v.split()[0])
        if cur["inode"] == 0 and not cur["name"] and cur["size_kb"] >= guest_mib * 1024:
            if guest is None or cur["size_kb"] > guest["size_kb"]:
                guest = dict(cur)
if guest is None: sys.exit(f"vm-mem: no anonymous mapping of {guest_mib} MiB or more in {pid}")
res = {"label": label, "pid": pid, **{(k if k == "Threads" else k + "_kb"): v for k, v in status.items()}, "guest_mapping": guest,
       "overhead_kb": status["VmRSS"] - guest["rss_kb"], "anon_overhead_kb": status["RssAnon"] - guest["rss_kb"]}
mib = lambda kb: f"{kb / 1024:.2f} MiB"
print(f"{label}: VmRSS {mib(status['VmRSS'])} (anon {mib(status['RssAnon'])}, file {mib(status['RssFile'])}), "
      f"guest mapping {mib(guest['size_kb'])} with {mib(guest['rss_kb'])} resident -> "
      f"overhead {mib(res['overhead_kb'])} (anonymous {mib(res['anon_overhead_kb'])}), threads {status['Threads']}")
print(json.dumps(res))
