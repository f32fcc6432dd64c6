import LinuxSys
import OCI

#if canImport(Glibc)
    import Glibc
#endif

/// `--cap-add`, `--cap-drop`, `--privileged` and `--security-opt`, turned into the spec's
/// `process.capabilities`, `process.noNewPrivileges`, `linux.seccomp` and, for `--privileged`,
/// no masked or read-only paths and a writable /sys (Docker's rules).
enum SecurityOptions {
    /// What `--security-opt` values ask for.
    struct Parsed: Equatable {
        var noNewPrivileges = true
        /// nil: the default profile; "unconfined"; or a profile file path.
        var seccomp: String?
    }

    /// Parses `--security-opt` values: `no-new-privileges` (`=true`, `=false`, or Docker's older
    /// `:true`), `seccomp=unconfined`, `seccomp=builtin` (the default profile) and
    /// `seccomp=PROFILE.json`.
    /// - Throws: `SkiffError` naming the value.
    static func parse(_ opts: [String]) throws -> Parsed {
        var p = Parsed()
        for opt in opts {
            let sep = opt.firstIndex(where: { $0 == "=" || $0 == ":" })
            let key = sep.map { String(opt[..<$0]) } ?? opt
            let value = sep.map { String(opt[opt.index(after: $0)...]) }
            switch key {
            case "no-new-privileges":
                switch value?.lowercased() {
                case nil, "true", "1": p.noNewPrivileges = true
                case "false", "0": p.noNewPrivileges = false
                default:
                    throw SkiffError("invalid --security-opt \"\(opt)\": no-new-privileges takes true or false")
                }
            case "seccomp":
                guard let v = value, !v.isEmpty else {
                    throw SkiffError(
                        "invalid --security-opt \"\(opt)\": give seccomp=PROFILE.json, seccomp=unconfined or seccomp=builtin"
                    )
                }
                if v.contains(","), access(v, R_OK) != 0 {
                    throw SkiffError(
                        "invalid --security-opt \"\(opt)\": give each option its own --security-opt (e.g. --security-opt seccomp=unconfined --security-opt no-new-privileges=false)"
                    )
                }
                p.seccomp = v == "builtin" || v == "default" ? nil : v
            case "apparmor", "label", "systempaths":
                throw SkiffError(
                    "--security-opt \"\(opt)\" is not supported by Skiff (no AppArmor or SELinux support; --privileged unmasks the system paths)"
                )
            default:
                throw SkiffError(
                    "invalid --security-opt \"\(opt)\": Skiff knows no-new-privileges[=true|false] and seccomp=PROFILE.json|unconfined|builtin"
                )
            }
        }
        return p
    }

    /// Fills the security fields of `spec` from `req`.
    /// - Throws: `SkiffError` for an unknown capability, option, or an unreadable or invalid profile.
    static func apply(_ req: CreateRequest, to spec: inout Spec) throws {
        let opts = try parse(req.securityOpts)
        let caps = try Capabilities.resolve(add: req.capAdd, drop: req.capDrop, privileged: req.privileged)
        spec.process?.capabilities = Capabilities.processCapabilities(caps)
        spec.process?.noNewPrivileges = opts.noNewPrivileges
        var linux = spec.linux ?? Spec.Linux()
        if req.privileged {
            // Docker: a privileged container runs unconfined, sees all of /proc and may write /sys.
            linux.seccomp = nil
            linux.maskedPaths = []
            linux.readonlyPaths = []
            spec.mounts = spec.mounts?.map { m in
                var m = m
                if m.destination == "/sys" { m.options = (m.options ?? []).filter { $0 != "ro" } + ["rw"] }
                return m
            }
        } else if let profile = opts.seccomp {
            linux.seccomp = profile == "unconfined" ? nil : try SeccompProfile.load(profile).resolve(capabilities: caps)
        } else {
            linux.seccomp = DefaultSeccompProfile.profile.resolve(capabilities: caps)
        }
        spec.linux = linux
    }
}
