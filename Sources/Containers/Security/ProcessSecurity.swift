import CCap
import CSkiff
import LinuxSys
import OCI

#if canImport(Glibc)
    import Glibc
#endif

/// What the container's process gets besides its user: capability sets, no_new_privs and the
/// compiled seccomp filter. Computed by the monitor (or `skiff exec`) from the spec before
/// `fork()`, so the child only makes system calls.
struct ProcessSecurity: Codable {
    /// `process.capabilities`; nil leaves the process's capabilities as they are (OCI).
    var capabilities: Spec.Capabilities?
    var noNewPrivileges: Bool
    /// `linux.seccomp`, compiled; nil means unconfined.
    var seccomp: SeccompProgram?
    /// The kernel's highest capability number (`/proc/sys/kernel/cap_last_cap`), read by the
    /// monitor so the child need not.
    var lastCap = Capabilities.lastCap

    /// From a spec: validates the capability names and compiles the seccomp filter (or takes it
    /// from `cacheDir`, see `SeccompCache`).
    /// - Throws: `SkiffError` naming an unknown capability or a seccomp rule libseccomp refused.
    static func from(_ spec: Spec, cacheDir: String? = nil) throws -> ProcessSecurity {
        let caps = spec.process?.capabilities
        if let caps { try Capabilities.validate(caps) }
        let program = try spec.linux?.seccomp.map { try SeccompCache.program($0, dir: cacheDir) }
        return ProcessSecurity(
            capabilities: caps, noNewPrivileges: spec.process?.noNewPrivileges ?? false, seccomp: program)
    }

    /// Switches to `user` and applies the security settings, in runc's order (finalizeNamespace):
    /// drop the bounding set; load the seccomp filter now if no_new_privs stays off (loading
    /// needs no_new_privs or CAP_SYS_ADMIN, which a dropped set may lack later);
    /// `PR_SET_KEEPCAPS` across `setgroups`/`setgid`/`setuid` so a non-root user keeps the
    /// permitted set; then effective, permitted and inheritable (`capset`), the ambient set and
    /// no_new_privs. The caller calls `loadLateSeccomp()` as the last thing before `execve`.
    /// Runs in the forked child, single-threaded.
    /// - Throws: `SysError` naming the call that failed.
    func apply(uid: UInt32, gid: UInt32, groups: [UInt32]) throws {
        if let caps = capabilities {
            let bounding = Set((caps.bounding ?? []).compactMap(Capabilities.number))
            for n in 0...lastCap where !bounding.contains(n) {
                if cap_drop_bound(cap_value_t(n)) != 0 && errno != EINVAL {
                    throw SysError(
                        "prctl PR_CAPBSET_DROP", Capabilities.all.indices.contains(n) ? Capabilities.all[n] : "\(n)")
                }
            }
        }
        if let seccomp, !noNewPrivileges { try seccomp.load() }
        let keep = capabilities != nil && uid != 0
        if keep { try check(sk_set_keepcaps(1), "prctl", "PR_SET_KEEPCAPS") }
        var gids = groups.map { gid_t($0) }
        try check(setgroups(gids.count, &gids), "setgroups", "\(groups)")
        try check(setgid(gid), "setgid", "\(gid)")
        try check(setuid(uid), "setuid", "\(uid)")
        if let caps = capabilities {
            if keep { try check(sk_set_keepcaps(0), "prctl", "PR_SET_KEEPCAPS") }
            try setSets(caps)
        }
        if noNewPrivileges { try check(sk_set_no_new_privs(), "prctl", "PR_SET_NO_NEW_PRIVS") }
    }

    /// Loads the seccomp filter when no_new_privs is on: as late as possible, so that nothing of
    /// Skiff's own setup runs under the workload's filter.
    func loadLateSeccomp() throws {
        if let seccomp, noNewPrivileges { try seccomp.load() }
    }

    /// capset(2) of effective, permitted and inheritable through libcap, then the ambient set
    /// (each ambient name must be permitted and inheritable, capabilities(7)).
    private func setSets(_ caps: Spec.Capabilities) throws {
        guard let c = cap_init() else { throw SysError("cap_init", "capability state") }
        defer { cap_free(UnsafeMutableRawPointer(c)) }
        func numbers(_ names: [String]?) -> [cap_value_t] {
            (names ?? []).compactMap(Capabilities.number).filter { $0 <= lastCap }.map { cap_value_t($0) }
        }
        for (flag, names) in [
            (CAP_EFFECTIVE, caps.effective), (CAP_PERMITTED, caps.permitted), (CAP_INHERITABLE, caps.inheritable),
        ] {
            var values = numbers(names)
            if values.isEmpty { continue }
            try check(cap_set_flag(c, flag, Int32(values.count), &values, CAP_SET), "cap_set_flag", "\(names ?? [])")
        }
        if cap_set_proc(c) != 0 {
            let e = errno
            let own = Capabilities.ownSet("CapPrm") ?? ~0
            let missing = numbers(caps.permitted).filter { own & (1 << UInt64($0)) == 0 }.map {
                Capabilities.all[Int($0)]
            }
            throw SysError(
                "capset", "permitted \(caps.permitted?.count ?? 0) capabilities", errno: e,
                hint: missing.isEmpty
                    ? "" : "skiff itself lacks \(missing.joined(separator: ", ")), so the container cannot have it")
        }
        _ = cap_reset_ambient()
        for n in numbers(caps.ambient) {
            try check(
                cap_set_ambient(n, CAP_SET), "prctl PR_CAP_AMBIENT_RAISE", Capabilities.all[Int(n)],
                hint: "an ambient capability must also be permitted and inheritable")
        }
    }
}
