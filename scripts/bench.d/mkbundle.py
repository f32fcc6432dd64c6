#!/usr/bin/env python3
"""Rewrites the config.json of an `umoci unpack`ed busybox bundle for scripts/bench.

usage: mkbundle.py BUNDLE_DIR {plain|limits|hardened}

plain     matches `skiff run --rm --security-opt seccomp=unconfined --cap-add ALL busybox /bin/true`
          (plain `skiff run` before issue 6; Skiff's default now adds Docker's caps and seccomp
          profile, which scripts/bench-security compares with crun running the same): pid, mount, uts, ipc,
          network and cgroup namespaces; /proc, /dev (tmpfs), /dev/pts, /dev/shm, /dev/mqueue,
          /sys (ro); /etc/hostname, /etc/hosts, /etc/resolv.conf bind-mounted from files next to
          the rootfs; every capability kept; no seccomp; Docker's masked/read-only paths; no rlimits;
          no_new_privs set (Skiff sets it too).
limits    plain plus linux.resources: memory 256 MiB, cpu quota 100000/100000 (1 CPU), pids 100 —
          what `skiff run --memory 256m --cpus 1 --pids-limit 100` sets.
hardened  the same namespaces and mounts plus what runc/crun do by default for `runc spec`
          bundles: the three default capabilities (AUDIT_WRITE, KILL, NET_BIND_SERVICE),
          masked and read-only /proc and /sys paths, RLIMIT_NOFILE 1024, and the
          containers-common default seccomp profile (/usr/share/containers/seccomp.json,
          Docker's profile) converted to the runtime-spec form for x86_64 and those capabilities.
"""
import json
import os
import sys

ALL_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
    "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
]
DEFAULT_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
SECCOMP_PROFILE = "/usr/share/containers/seccomp.json"


def host_caps():
    """Every capability in this process's bounding set (what Skiff's container keeps as root)."""
    with open("/proc/self/status") as f:
        bnd = next(int(l.split()[1], 16) for l in f if l.startswith("CapBnd:"))
    return [c for i, c in enumerate(ALL_CAPS) if bnd >> i & 1]


def seccomp_for(caps):
    """Docker/containers-common profile -> runtime-spec linux.seccomp for amd64 and `caps`."""
    with open(SECCOMP_PROFILE) as f:
        prof = json.load(f)
    arches = []
    for a in prof.get("archMap", []):
        if a["architecture"] == "SCMP_ARCH_X86_64":
            arches = [a["architecture"]] + a.get("subArchitectures", [])
    out = {"defaultAction": prof["defaultAction"], "architectures": arches, "syscalls": []}
    if "defaultErrnoRet" in prof:
        out["defaultErrnoRet"] = prof["defaultErrnoRet"]
    for s in prof["syscalls"]:
        inc, exc = s.get("includes") or {}, s.get("excludes") or {}
        if inc.get("arches") and "amd64" not in inc["arches"]:
            continue
        if exc.get("arches") and "amd64" in exc["arches"]:
            continue
        if any(c not in caps for c in inc.get("caps") or []):
            continue
        if any(c in caps for c in exc.get("caps") or []):
            continue
        rule = {"names": s["names"], "action": s["action"]}
        for k in ("args", "errnoRet"):
            if s.get(k):
                rule[k] = s[k]
        out["syscalls"].append(rule)
    return out


def main():
    bundle, variant = sys.argv[1], sys.argv[2]
    assert variant in ("plain", "hardened", "limits"), variant
    path = os.path.join(bundle, "config.json")
    with open(path) as f:
        cfg = json.load(f)
    bundle = os.path.abspath(bundle)
    for name, text in (("hostname", "bench\n"),
                       ("hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\tbench\n")):
        with open(os.path.join(bundle, name), "w") as f:
            f.write(text)
    try:
        with open("/etc/resolv.conf", "rb") as src:
            resolv = src.read()
    except OSError:
        resolv = b"nameserver 127.0.0.53\n"
    with open(os.path.join(bundle, "resolv.conf"), "wb") as f:
        f.write(resolv)

    p = cfg["process"]
    p["args"] = ["/bin/true"]
    p["terminal"] = False
    p["cwd"] = "/"
    p["noNewPrivileges"] = True
    p.pop("apparmorProfile", None)
    p.pop("selinuxLabel", None)
    cfg["hostname"] = "bench"
    cfg["root"] = {"path": "rootfs", "readonly": False}
    cfg["mounts"] = [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
    ] + [
        {"destination": "/etc/" + n, "type": "bind", "source": os.path.join(bundle, n), "options": ["rbind", "rprivate"]}
        for n in ("hostname", "hosts", "resolv.conf")
    ]
    linux = cfg.setdefault("linux", {})
    linux["namespaces"] = [{"type": t} for t in ("pid", "mount", "uts", "ipc", "network", "cgroup")]
    linux.pop("seccomp", None)
    linux.pop("resources", None)
    # Docker's default masked and read-only paths, exactly as Skiff applies them (SpecBuilder.swift).
    linux["maskedPaths"] = [
        "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
        "/sys/devices/virtual/powercap"]
    linux["readonlyPaths"] = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
    if variant in ("plain", "limits"):
        caps = host_caps()
        p.pop("rlimits", None)
    else:
        caps = DEFAULT_CAPS
        p["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]
        linux["seccomp"] = seccomp_for(caps)
    if variant == "limits":
        # The same limits as `skiff run --memory 256m --cpus 1 --pids-limit 100` (LIMITS in scripts/bench).
        linux["resources"] = {
            "memory": {"limit": 256 * 1024 * 1024},
            "cpu": {"quota": 100000, "period": 100000},
            "pids": {"limit": 100},
        }
    p["capabilities"] = {k: list(caps) for k in ("bounding", "effective", "permitted")}
    if variant in ("plain", "limits"):
        p["capabilities"]["inheritable"] = []
        p["capabilities"]["ambient"] = []
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2)


if __name__ == "__main__":
    main()
