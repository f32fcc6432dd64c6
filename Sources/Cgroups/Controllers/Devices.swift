import OCI

/// `linux.resources.devices` through the v1 `devices` controller
/// (`Documentation/admin-guide/cgroup-v1/devices.rst`): `devices.deny` and `devices.allow` take
/// lines `TYPE MAJOR:MINOR ACCESS` (`a` alone for everything), applied in the list's order, as
/// runc's `devices` cgroup manager does. A rule denies or allows only what its parent allows.
///
/// cgroup v2 has no devices controller; there the kernel asks a `BPF_PROG_TYPE_CGROUP_DEVICE`
/// program (runc's `devicefilter`). Skiff does not build one yet: on a host whose `devices`
/// controller is not mounted as v1, the rules are not enforced (README, "Security").
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
}
