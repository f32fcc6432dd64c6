import CSkiff
import OCI

#if canImport(Glibc)
    import Glibc
#endif

/// `linux.resources.devices` through the v1 `devices` controller
/// (`Documentation/admin-guide/cgroup-v1/devices.rst`): `devices.deny` and `devices.allow` take
/// lines `TYPE MAJOR:MINOR ACCESS` (`a` alone for everything), applied in the list's order, as
/// runc's `devices` cgroup manager does. A rule denies or allows only what its parent allows.
///
/// cgroup v2 has no devices controller; there the kernel asks a `BPF_PROG_TYPE_CGROUP_DEVICE`
/// program attached to the cgroup (cgroup-v2.rst "Device controller"; runc's `devicefilter`),
/// which `attachProgram` builds from the same list (`sk_devices_bpf_attach`).
enum DeviceLimits {
    /// The line one rule becomes: "a" for a rule over all devices with every access, else e.g.
    /// "c 1:3 rwm", "c *:* m", "c 136:* rwm".
    static func line(_ rule: Spec.Resources.DeviceRule) -> String {
        let type = rule.type ?? "a"
        let access = rule.access ?? "rwm"
        if type == "a" && rule.major == nil && rule.minor == nil && access == "rwm" { return "a" }
        let major = rule.major.map(String.init) ?? "*"
        let minor = rule.minor.map(String.init) ?? "*"
        return "\(type) \(major):\(minor) \(access)"
    }

    /// Writes `rules` in order to `dir`'s `devices.deny` / `devices.allow`.
    /// - Throws: `CgroupError.write` naming the file and the rule (EPERM when the parent cgroup
    ///   does not allow what a rule allows; EINVAL for a malformed type or access).
    static func apply(_ rules: [Spec.Resources.DeviceRule], to dir: Cgroup.Directory) throws(CgroupError) {
        for rule in rules {
            try dir.write(rule.allow ? "devices.allow" : "devices.deny", line(rule))
        }
    }

    /// `access` ("rwm" in any combination; nil = all) as BPF_DEVCG_ACC_* bits: m 1, r 2, w 4.
    static func accessMask(_ access: String?) -> Int32 {
        var mask: Int32 = 0
        for c in access ?? "rwm" {
            switch c {
            case "m": mask |= 1
            case "r": mask |= 2
            case "w": mask |= 4
            default: break
            }
        }
        return mask
    }

    /// cgroup v2: loads a device program for `rules` and attaches it to `dir` (replacing one an
    /// earlier call attached).
    /// - Throws: `CgroupError.write` naming the directory, with the kernel's errno (EPERM without
    ///   CAP_SYS_ADMIN, or when an ancestor's program forbids children's).
    static func attachProgram(_ rules: [Spec.Resources.DeviceRule], to dir: Cgroup.Directory) throws(CgroupError) {
        let raw = rules.map { r in
            sk_device_rule(
                allow: r.allow ? 1 : 0, type: CChar(UInt8(ascii: r.type.flatMap(\.unicodeScalars.first) ?? "a")),
                major: r.major ?? -1, minor: r.minor ?? -1, access: accessMask(r.access))
        }
        let fd = open(dir.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw .write(path: dir.path, value: "device program", errno: errno) }
        defer { close(fd) }
        let rc = raw.withUnsafeBufferPointer { sk_devices_bpf_attach(fd, $0.baseAddress, Int32($0.count)) }
        if rc < 0 { throw .write(path: dir.path + " (BPF_CGROUP_DEVICE program)", value: "\(rules.count) device rules", errno: -rc) }
    }
}
