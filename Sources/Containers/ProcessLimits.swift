import CSkiff
import LinuxSys
import OCI

#if canImport(Glibc)
    import Glibc
#endif

/// `--ulimit`, `--oom-score-adj` and `--sysctl`: Docker's flags, the runtime-spec fields they
/// become (`process.rlimits`, `process.oomScoreAdj`, `linux.sysctl`), and how the container's
/// first process (and `skiff exec`) applies them.
enum ProcessLimits {
    /// Docker's `--ulimit` names (go-units `ulimitNameMapping`; `as` is left out there too) and the
    /// Linux resource numbers (`include/uapi/asm-generic/resource.h`).
    static let rlimitNumbers: [String: Int32] = [
        "cpu": 0, "fsize": 1, "data": 2, "stack": 3, "core": 4, "rss": 5, "nproc": 6, "nofile": 7,
        "memlock": 8, "locks": 10, "sigpending": 11, "msgqueue": 12, "nice": 13, "rtprio": 14, "rttime": 15,
    ]

    /// The resource number of a runtime-spec rlimit type (`RLIMIT_NOFILE`), nil when unknown.
    static func resource(ofType type: String) -> Int32? {
        guard type.hasPrefix("RLIMIT_") else { return nil }
        let name = type.dropFirst("RLIMIT_".count).lowercased()
        return name == "as" ? 9 : rlimitNumbers[name]
    }

    /// `NAME=SOFT[:HARD]` → `process.rlimits[]`. A missing HARD equals SOFT; `-1` or `unlimited`
    /// is RLIM_INFINITY.
    /// - Throws: `SkiffError` naming the bad part (Docker's wording).
    static func ulimit(_ arg: String) throws -> Spec.RLimit {
        let parts = arg.split(separator: "=", maxSplits: 1).map(String.init)
        guard parts.count == 2, !parts[1].isEmpty else {
            throw SkiffError("invalid ulimit argument \"\(arg)\": expected NAME=SOFT[:HARD], e.g. nofile=1024:2048")
        }
        let name = parts[0].lowercased()
        guard rlimitNumbers[name] != nil else {
            let names = rlimitNumbers.keys.sorted().joined(separator: ", ")
            throw SkiffError("invalid ulimit type \"\(parts[0])\" in \"\(arg)\": one of \(names)")
        }
        let values = parts[1].split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard values.count <= 2 else {
            throw SkiffError("invalid ulimit argument \"\(arg)\": too many ':' (NAME=SOFT[:HARD])")
        }
        func value(_ s: String) throws -> UInt64 {
            if s == "-1" || s == "unlimited" { return UInt64.max }
            guard let v = UInt64(s) else {
                throw SkiffError("invalid ulimit value \"\(s)\" in \"\(arg)\": a non-negative number, -1 or unlimited")
            }
            return v
        }
        let soft = try value(values[0])
        let hard = values.count == 2 ? try value(values[1]) : soft
        guard soft <= hard else {
            throw SkiffError(
                "ulimit soft limit must be less than or equal to hard limit: \(values[0]) > \(values[1]) in \"\(arg)\"")
        }
        return Spec.RLimit(type: "RLIMIT_" + name.uppercased(), soft: soft, hard: hard)
    }

    /// `--ulimit` flags in order; a later flag for the same name replaces an earlier one.
    static func ulimits(_ args: [String]) throws -> [Spec.RLimit]? {
        var out: [Spec.RLimit] = []
        for a in args {
            let r = try ulimit(a)
            out.removeAll { $0.type == r.type }
            out.append(r)
        }
        return out.isEmpty ? nil : out
    }

    /// `--oom-score-adj`: -1000…1000 (proc(5) `/proc/PID/oom_score_adj`).
    static func oomScoreAdj(_ v: Int?) throws -> Int? {
        guard let v else { return nil }
        guard (-1000...1000).contains(v) else {
            throw SkiffError("invalid --oom-score-adj \(v): the range is [-1000, 1000]")
        }
        return v
    }

    /// `--sysctl KEY=VALUE` flags → `linux.sysctl`, each checked by `checkSysctl`.
    static func sysctls(_ args: [String], privateNetwork: Bool) throws -> [String: String]? {
        var out: [String: String] = [:]
        for a in args {
            let parts = a.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty else {
                throw SkiffError("invalid --sysctl \"\(a)\": expected KEY=VALUE, e.g. net.ipv4.ip_forward=1")
            }
            try checkSysctl(parts[0], privateNetwork: privateNetwork)
            out[parts[0]] = parts[1]
        }
        return out.isEmpty ? nil : out
    }

    /// The path components of a sysctl key below /proc/sys: `net.ipv4.ip_forward` or the slash
    /// form `net/ipv4/conf/eth0.100/rp_filter` (for names that contain dots).
    static func sysctlComponents(_ key: String) -> [String] {
        key.split(separator: key.contains("/") ? "/" : ".", omittingEmptySubsequences: false).map(String.init)
    }

    /// Only namespaced sysctls (Docker's and runc's rule): the IPC ones (`kernel.msg*`,
    /// `kernel.sem`, `kernel.shm*`, `fs.mqueue.*`; the container always has its own IPC
    /// namespace) and `net.*` when the container has its own network namespace. Anything else
    /// would change the host.
    /// - Throws: `SkiffError` saying why the key is refused.
    static func checkSysctl(_ key: String, privateNetwork: Bool) throws {
        let comps = sysctlComponents(key)
        guard comps.count >= 2, !comps.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." || $0.contains("\0") })
        else {
            throw SkiffError("invalid sysctl name \"\(key)\": expected dotted names such as net.ipv4.ip_forward")
        }
        let dotted = comps.joined(separator: ".")
        let ipc =
            dotted.hasPrefix("kernel.msg") || dotted == "kernel.sem" || dotted.hasPrefix("kernel.shm")
            || dotted.hasPrefix("fs.mqueue.")
        if ipc { return }
        if comps[0] == "net" {
            guard privateNetwork else {
                throw SkiffError(
                    "sysctl \(key) cannot be set with --network host: the container shares the host's network namespace, so it would change the host"
                )
            }
            return
        }
        throw SkiffError(
            "sysctl \(key) is not namespaced: only kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.* and (without --network host) net.* can be set for a container"
        )
    }

    /// Copies the spec's values into the launch plan, checking them again: a spec may come from
    /// an older record or be edited, and the namespaces are only final here.
    static func fill(_ plan: inout LaunchPlan, from spec: Spec) throws {
        plan.rlimits = spec.process?.rlimits ?? []
        for l in plan.rlimits where resource(ofType: l.type) == nil {
            throw SkiffError("unknown rlimit type \(l.type) in the container's spec")
        }
        plan.oomScoreAdj = try oomScoreAdj(spec.process?.oomScoreAdj)
        let sysctls = spec.linux?.sysctl ?? [:]
        let privateNetwork = plan.unshareFlags & SK_CLONE_NEWNET != 0
        for key in sysctls.keys { try checkSysctl(key, privateNetwork: privateNetwork) }
        plan.sysctls = sysctls
    }

    // MARK: Child side

    /// PROC_SUPER_MAGIC (`include/uapi/linux/magic.h`).
    static let procSuperMagic = 0x9fa0

    /// Writes each sysctl below `/proc/sys` of `procRoot` (a procfs mount). The calling process must
    /// already be in the container's IPC and network namespaces: the kernel picks the namespace's
    /// table from the writer. Each key is resolved beneath /proc/sys with no symlinks and no
    /// crossing into another mount, and the opened file is checked to be procfs.
    static func writeSysctls(_ sysctls: [String: String], procRoot: String = "/proc") throws {
        guard !sysctls.isEmpty else { return }
        let dir = open(procRoot + "/sys", O_PATH | O_DIRECTORY | O_CLOEXEC)
        try check(dir, "open", procRoot + "/sys")
        defer { close(dir) }
        guard sk_fstatfs_type(dir) == procSuperMagic else {
            throw SkiffError("\(procRoot)/sys is not procfs; cannot set sysctls")
        }
        let resolve = SK_RESOLVE_BENEATH | SK_RESOLVE_NO_SYMLINKS | SK_RESOLVE_NO_MAGICLINKS | SK_RESOLVE_NO_XDEV
        for (key, value) in sysctls.sorted(by: { $0.key < $1.key }) {
            let rel = sysctlComponents(key).joined(separator: "/")
            let fd = sk_openat2(dir, rel, UInt64(O_WRONLY | O_CLOEXEC | O_NOFOLLOW), 0, resolve)
            try check(fd, "open", "/proc/sys/\(rel) (sysctl \(key))", hint: "check the sysctl name")
            defer { close(fd) }
            guard sk_fstatfs_type(fd) == procSuperMagic else { throw SkiffError("sysctl \(key): not a procfs file") }
            try Files.write(fd: fd, Array(value.utf8), path: "sysctl \(key)")
        }
    }

    /// Sets the rlimits on the calling process (before `setuid`, so a hard limit may be raised), or
    /// with `pid` on that process (`prlimit`; the host side does this for a process in its own
    /// user namespace, which could not raise a hard limit itself).
    static func setRlimits(_ limits: [Spec.RLimit], pid: Int32 = 0) throws {
        for l in limits {
            guard let r = resource(ofType: l.type) else { throw SkiffError("unknown rlimit type \(l.type)") }
            try check(
                sk_prlimit(pid, r, l.soft, l.hard), pid == 0 ? "setrlimit" : "prlimit",
                "\(l.type) soft \(l.soft) hard \(l.hard)\(pid == 0 ? "" : " of pid \(pid)")")
        }
    }

    /// Writes `/proc/self/oom_score_adj` through the procfs open at `procFD` (or the path /proc),
    /// or `/proc/PID/oom_score_adj` of `pid`.
    static func setOOMScoreAdj(_ v: Int?, procFD: Int32 = AT_FDCWD, pid: Int32? = nil) throws {
        guard let v else { return }
        let name = pid.map { "\($0)/oom_score_adj" } ?? "self/oom_score_adj"
        let fd = openat(procFD, procFD == AT_FDCWD ? "/proc/" + name : name, O_WRONLY | O_CLOEXEC)
        try check(fd, "open", "/proc/" + name)
        defer { close(fd) }
        do { try Files.write(fd: fd, Array(String(v).utf8), path: "/proc/" + name) } catch let e as SysError {
            throw SysError(
                e.call, e.subject, errno: e.errno,
                hint: v < 0 ? "a negative --oom-score-adj needs CAP_SYS_RESOURCE, which skiff does not have here" : "")
        }
    }
}
