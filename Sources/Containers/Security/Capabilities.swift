import LinuxSys
import OCI

#if canImport(Glibc)
    import Glibc
#endif

/// Capability names and Docker's rules for `--cap-add`, `--cap-drop` and `--privileged`.
public enum Capabilities {
    /// Every capability the kernel defines, by number (`include/uapi/linux/capability.h`, Linux 5.9+:
    /// CAP_CHOWN = 0 … CAP_CHECKPOINT_RESTORE = 40).
    public static let all: [String] = [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
        "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
        "CAP_NET_ADMIN",
        "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
        "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
        "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
        "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND",
        "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
    ]

    /// Docker's default set for a non-privileged container (moby `oci/caps/defaults.go`), in
    /// capability-number order; `/proc/self/status` shows it as `CapEff: 00000000a80425fb`.
    public static let dockerDefault: [String] = [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID",
        "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SYS_CHROOT", "CAP_MKNOD", "CAP_AUDIT_WRITE",
        "CAP_SETFCAP",
    ]

    /// The capability's number, or nil for a name the kernel does not define.
    public static func number(_ name: String) -> Int? { all.firstIndex(of: name) }

    /// The highest capability number the running kernel knows (`/proc/sys/kernel/cap_last_cap`);
    /// names above it are skipped when applied, as runc does.
    public static let lastCap: Int = {
        let text = (try? Files.readString("/proc/sys/kernel/cap_last_cap")) ?? ""
        return Int(text.trimming(" \n\t")) ?? (all.count - 1)
    }()

    /// All capabilities the running kernel has that Skiff itself may hand out (its own bounding
    /// set, `CapBnd` in /proc/self/status; a host or outer container may have dropped some), for
    /// `--privileged` and `--cap-add ALL`.
    public static var allOnThisKernel: [String] {
        let kernel = all.prefix(min(all.count, lastCap + 1))
        guard let mask = ownSet("CapBnd") else { return Array(kernel) }
        return kernel.enumerated().filter { mask & (1 << UInt64($0.offset)) != 0 }.map(\.element)
    }

    /// One capability mask of this process from /proc/self/status (`CapBnd`, `CapPrm`, …).
    static func ownSet(_ field: String) -> UInt64? {
        guard let status = try? Files.readString("/proc/self/status"),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") })
        else { return nil }
        return UInt64(String(line.dropFirst(field.count + 1)).trimming(" \t"), radix: 16)
    }

    /// Normalises a user-given name: case-insensitive, with or without `CAP_`; `ALL` stays `ALL`.
    /// - Throws: `SkiffError` naming the flag and the value when no such capability exists.
    public static func normalize(_ raw: String, flag: String) throws -> String {
        var name = raw.trimming(" \t").uppercased()
        if name == "ALL" { return name }
        if !name.hasPrefix("CAP_") { name = "CAP_" + name }
        guard number(name) != nil else {
            throw SkiffError(
                "invalid \(flag) \"\(raw)\": unknown capability; use a name from capabilities(7) such as NET_ADMIN or CAP_SYS_PTRACE, or ALL"
            )
        }
        return name
    }

    /// The capability list of a container (Docker's `TweakCapabilities`): `--privileged` gives
    /// all; `--cap-add ALL` gives all but the dropped; `--cap-drop ALL` gives only the added;
    /// otherwise the default set minus the dropped plus the added. Order is capability-number order.
    /// - Throws: `SkiffError` for an unknown name.
    public static func resolve(add: [String], drop: [String], privileged: Bool) throws -> [String] {
        if privileged { return allOnThisKernel }
        let adds = try add.map { try normalize($0, flag: "--cap-add") }
        let drops = try drop.map { try normalize($0, flag: "--cap-drop") }
        var set: Set<String>
        if adds.contains("ALL") {
            set = Set(allOnThisKernel).subtracting(drops)
        } else if drops.contains("ALL") {
            set = Set(adds)
        } else {
            set = Set(dockerDefault).subtracting(drops).union(adds)
        }
        return all.filter { set.contains($0) }
    }

    /// The OCI `process.capabilities` Docker writes for `caps`: bounding, effective and
    /// permitted; inheritable and ambient empty (moby since 20.10.14, CVE-2022-24769).
    public static func processCapabilities(_ caps: [String]) -> Spec.Capabilities {
        Spec.Capabilities(bounding: caps, effective: caps, inheritable: [], permitted: caps, ambient: [])
    }

    /// Checks every name of an OCI `process.capabilities` (from a bundle or the store).
    /// - Throws: `SkiffError` naming the set and the unknown name.
    public static func validate(_ c: Spec.Capabilities) throws {
        let sets: [(String, [String]?)] = [
            ("bounding", c.bounding), ("effective", c.effective), ("inheritable", c.inheritable),
            ("permitted", c.permitted), ("ambient", c.ambient),
        ]
        for (set, names) in sets {
            for n in names ?? [] where number(n) == nil {
                throw SkiffError("process.capabilities.\(set): unknown capability \"\(n)\"")
            }
        }
    }
}
