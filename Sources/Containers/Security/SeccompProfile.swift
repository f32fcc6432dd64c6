import LinuxSys
import OCI

#if canImport(Glibc)
    import Glibc
#endif

/// A seccomp profile in Docker's JSON format (moby `profiles/seccomp`), a superset of the OCI
/// `linux.seccomp` object: it adds `archMap` (architectures chosen by the host's), `name` as well
/// as `names`, and per-rule `includes`/`excludes` conditions on capabilities, architectures and
/// kernel version. `resolve` turns it into the OCI object for one container, as dockerd does
/// before handing the spec to the runtime. An OCI `linux.seccomp` JSON reads as a profile too.
public struct SeccompProfile: Codable, Sendable, Equatable {
    public var defaultAction: String
    public var defaultErrnoRet: UInt32?
    public var architectures: [String]?
    public var archMap: [ArchMap]?
    public var flags: [String]?
    public var syscalls: [Rule]?

    /// One `archMap` entry: the sub-architectures a host of `architecture` also runs.
    public struct ArchMap: Codable, Sendable, Equatable {
        public var architecture: String
        public var subArchitectures: [String]?
    }

    /// One `syscalls[]` entry.
    public struct Rule: Codable, Sendable, Equatable {
        public var name: String?
        public var names: [String]?
        public var action: String
        public var errnoRet: UInt32?
        public var args: [Spec.Seccomp.Arg]?
        public var comment: String?
        public var includes: Condition?
        public var excludes: Condition?
        public init(
            _ names: [String], _ action: String = "SCMP_ACT_ALLOW", errnoRet: UInt32? = nil,
            args: [Spec.Seccomp.Arg]? = nil,
            includes: Condition? = nil, excludes: Condition? = nil
        ) {
            self.names = names
            self.action = action
            self.errnoRet = errnoRet
            self.args = args
            self.includes = includes
            self.excludes = excludes
        }
    }

    /// `includes` (all must hold) or `excludes` (any excludes): container capabilities, Go-style
    /// architecture names (`amd64`, `arm64`, `x86`, `s390x`, …) and a minimum kernel (`"4.8"`).
    public struct Condition: Codable, Sendable, Equatable {
        public var caps: [String]?
        public var arches: [String]?
        public var minKernel: String?
        public init(caps: [String]? = nil, arches: [String]? = nil, minKernel: String? = nil) {
            self.caps = caps
            self.arches = arches
            self.minKernel = minKernel
        }
    }

    /// The host as a profile sees it: architecture (Go's name and libseccomp's) and kernel release.
    public struct Host: Sendable {
        public var goArch: String
        public var scmpArch: String
        /// (major, minor) of `uname -r`.
        public var kernel: (Int, Int)
        public init(goArch: String, scmpArch: String, kernel: (Int, Int)) {
            self.goArch = goArch
            self.scmpArch = scmpArch
            self.kernel = kernel
        }

        /// This machine, from uname(2).
        public static let current: Host = {
            var u = utsname()
            uname(&u)
            func field<T>(_ v: inout T) -> String {
                withUnsafeBytes(of: &v) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            }
            let machine = field(&u.machine)
            let release = field(&u.release)
            let numbers = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
            let kernel = (numbers.first ?? 0, numbers.count > 1 ? numbers[1] : 0)
            let arches: [String: (String, String)] = [
                "x86_64": ("amd64", "SCMP_ARCH_X86_64"), "aarch64": ("arm64", "SCMP_ARCH_AARCH64"),
                "riscv64": ("riscv64", "SCMP_ARCH_RISCV64"), "s390x": ("s390x", "SCMP_ARCH_S390X"),
                "ppc64le": ("ppc64le", "SCMP_ARCH_PPC64LE"), "armv7l": ("arm", "SCMP_ARCH_ARM"),
                "i686": ("386", "SCMP_ARCH_X86"),
            ]
            let (go, scmp) = arches[machine] ?? (machine, "SCMP_ARCH_" + machine.uppercased())
            return Host(goArch: go, scmpArch: scmp, kernel: kernel)
        }()
    }

    /// Parses a profile file's bytes; `path` names it in errors.
    /// - Throws: `SkiffError` naming the file and what is wrong with it.
    public static func parse(_ bytes: [UInt8], path: String) throws -> SeccompProfile {
        let profile: SeccompProfile
        do {
            profile = try OCIJSON.decode(SeccompProfile.self, from: bytes, what: "seccomp profile \(path)")
        } catch OCIError.invalidDocument(_, let reason) {
            throw SkiffError("invalid seccomp profile \(path): \(reason)")
        } catch {
            throw SkiffError("invalid seccomp profile \(path): \(error)")
        }
        try profile.validate(path: path)
        return profile
    }

    /// Reads and parses a profile file.
    /// - Throws: `SkiffError` when the file cannot be read or is not a valid profile.
    public static func load(_ path: String) throws -> SeccompProfile {
        let bytes: [UInt8]
        do { bytes = try Files.read(path) } catch {
            throw SkiffError("cannot read seccomp profile \(path): \(error)")
        }
        return try parse(bytes, path: path)
    }

    /// Checks actions, operators, argument indexes, architectures and rule shapes.
    /// - Throws: `SkiffError` naming `path` and the offending rule.
    func validate(path: String) throws {
        func fail(_ what: String) -> SkiffError { SkiffError("invalid seccomp profile \(path): \(what)") }
        if let a = architectures, !a.isEmpty, let m = archMap, !m.isEmpty {
            throw fail("both \"architectures\" and \"archMap\" are given; use one")
        }
        for arch in (architectures ?? []) + (archMap ?? []).flatMap({ [$0.architecture] + ($0.subArchitectures ?? []) })
        {
            guard SeccompFilter.archToken(arch) != nil else { throw fail("unknown architecture \"\(arch)\"") }
        }
        guard SeccompFilter.isKnownAction(defaultAction) else {
            throw fail("unknown defaultAction \"\(defaultAction)\"")
        }
        for flag in flags ?? [] where SeccompFilter.filterFlag(flag) == nil {
            throw fail("unknown flag \"\(flag)\"")
        }
        for (i, rule) in (syscalls ?? []).enumerated() {
            let label = "syscalls[\(i)]"
            if rule.name != nil && rule.names != nil { throw fail("\(label) has both \"name\" and \"names\"; use one") }
            if (rule.name ?? "").isEmpty && (rule.names ?? []).isEmpty { throw fail("\(label) names no system call") }
            guard SeccompFilter.isKnownAction(rule.action) else {
                throw fail("\(label): unknown action \"\(rule.action)\"")
            }
            if rule.action == "SCMP_ACT_NOTIFY" { throw fail("\(label): SCMP_ACT_NOTIFY is not supported") }
            for arg in rule.args ?? [] {
                guard arg.index < 6 else { throw fail("\(label): argument index \(arg.index) is not 0-5") }
                guard SeccompFilter.compareOp(arg.op) != nil else {
                    throw fail("\(label): unknown operator \"\(arg.op)\"")
                }
            }
            for cap in (rule.includes?.caps ?? []) + (rule.excludes?.caps ?? []) where Capabilities.number(cap) == nil {
                throw fail("\(label): unknown capability \"\(cap)\" in includes/excludes")
            }
        }
    }

    /// The OCI `linux.seccomp` for a container with capabilities `caps` on `host`: architectures
    /// from `archMap` (the host's entry), rules whose `includes` all hold and whose `excludes`
    /// none do, `name` folded into `names` (moby `profiles/seccomp/seccomp_linux.go` semantics).
    public func resolve(capabilities caps: [String], host: Host = .current) -> Spec.Seccomp {
        var arches = architectures ?? []
        if arches.isEmpty, let map = archMap?.first(where: { $0.architecture == host.scmpArch }) {
            arches = [map.architecture] + (map.subArchitectures ?? [])
        }
        let capSet = Set(caps)
        func kernelAtLeast(_ v: String) -> Bool {
            let n = v.split(separator: ".").compactMap { Int($0) }
            return (host.kernel.0, host.kernel.1) >= (n.first ?? 0, n.count > 1 ? n[1] : 0)
        }
        var out: [Spec.Seccomp.Syscall] = []
        for rule in syscalls ?? [] {
            if let inc = rule.includes {
                if let a = inc.arches, !a.isEmpty, !a.contains(host.goArch) { continue }
                if let c = inc.caps, !c.allSatisfy(capSet.contains) { continue }
                if let k = inc.minKernel, !kernelAtLeast(k) { continue }
            }
            if let exc = rule.excludes {
                if let a = exc.arches, a.contains(host.goArch) { continue }
                if let c = exc.caps, c.contains(where: capSet.contains) { continue }
                if let k = exc.minKernel, kernelAtLeast(k) { continue }
            }
            let names = rule.names ?? rule.name.map { [$0] } ?? []
            out.append(
                Spec.Seccomp.Syscall(names: names, action: rule.action, errnoRet: rule.errnoRet, args: rule.args))
        }
        var s = Spec.Seccomp(
            defaultAction: defaultAction, defaultErrnoRet: defaultErrnoRet,
            architectures: arches.isEmpty ? nil : arches,
            syscalls: out)
        s.flags = flags
        return s
    }
}
