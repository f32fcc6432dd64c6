import LinuxSys
import OCI
import Store

#if canImport(Glibc)
    import Glibc
#endif

/// Turns a `CreateRequest` and an image config into the OCI runtime spec, with Docker's rules for
/// merging Entrypoint/Cmd, Env, WorkingDir and User.
enum SpecBuilder {
    static let defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// - Parameters:
    ///   - runDir: the container's runtime directory (`/run/skiff/<id>`), holding `rootfs/` and the
    ///     generated `hostname`, `hosts` and `resolv.conf`.
    /// - Throws: `SkiffError` naming the flag or value that is wrong.
    static func build(_ req: CreateRequest, image: ImageRuntimeConfig?, id: String, runDir: String) throws -> Spec {
        let config = image ?? ImageRuntimeConfig()
        var args: [String]
        if let ep = req.entrypoint {
            args = ep.isEmpty ? [] : [ep]
            args += req.command
        } else {
            args = (config.Entrypoint ?? []) + (req.command.isEmpty ? (config.Cmd ?? []) : req.command)
        }
        guard let first = args.first, !first.isEmpty else {
            throw SkiffError("no command specified: the image has no Entrypoint or Cmd; give one after the image name")
        }

        let hostname = req.hostname ?? String(id.prefix(12))
        var env = config.Env ?? []
        if !env.contains(where: { $0.hasPrefix("PATH=") }) { env.insert(defaultPath, at: 0) }
        set(&env, "HOSTNAME=" + hostname)
        if req.tty { set(&env, "TERM=xterm") }
        for path in req.envFiles {
            for entry in try readEnvFile(path) { set(&env, entry) }
        }
        for e in req.env {
            guard let entry = try expandEnv(e) else { continue }
            set(&env, entry)
        }

        let cwd = req.workdir ?? ((config.WorkingDir ?? "").isEmpty ? "/" : config.WorkingDir ?? "/")
        guard cwd.hasPrefix("/") else {
            throw SkiffError("the working directory \"\(cwd)\" is invalid: it needs to be an absolute path")
        }

        var spec = Spec()
        var process = Spec.Process(args: args, env: env, cwd: cwd)
        process.terminal = req.tty
        process.noNewPrivileges = true
        process.rlimits = try ProcessLimits.ulimits(req.ulimits)
        process.oomScoreAdj = try ProcessLimits.oomScoreAdj(req.oomScoreAdj)
        spec.process = process
        spec.root = Spec.Root(path: runDir + "/rootfs", readonly: req.readOnly)
        spec.hostname = hostname
        spec.mounts = defaultMounts(runDir: runDir) + (try volumeMounts(req.volumes)) + (try tmpfsMounts(req.tmpfs))
        var linux = Spec.Linux()
        var resources = Spec.Resources()
        if !req.resources.isEmpty {
            resources = try req.resources.resources(merging: nil, cpuSharesForWeight: cpuShares(forWeight:))
        }
        resources.devices = req.privileged ? privilegedDevices : defaultDevices
        linux.resources = resources
        linux.sysctl = try ProcessLimits.sysctls(req.sysctls, privateNetwork: req.network != "host")
        linux.maskedPaths = defaultMaskedPaths
        linux.readonlyPaths = defaultReadonlyPaths
        var ns = ["pid", "mount", "uts", "ipc", "cgroup"].map { Spec.Namespace(type: $0) }
        if req.network == "none" { ns.append(Spec.Namespace(type: "network")) }
        // The id maps are added when the container is recorded (`Engine.insert`).
        if try UserNamespaceMode.parse(req.userns) != .host { ns.append(Spec.Namespace(type: "user")) }
        linux.namespaces = ns
        spec.linux = linux
        try SecurityOptions.apply(req, to: &spec)
        var annotations: [String: String] = [:]
        if let user = req.user ?? config.User, !user.isEmpty { annotations["io.skiff.user"] = user }
        spec.annotations = annotations.isEmpty ? nil : annotations
        return spec
    }

    /// The device cgroup list of a container (moby `oci/defaults.go` with runc's allowed
    /// devices, `libcontainer/specconv`): deny everything, allow creating any character or block
    /// node (`m`; opening one still needs a rule), and allow using /dev/null (1:3), zero (1:5),
    /// full (1:7), random (1:8), urandom (1:9), tty (5:0), console (5:1), ptmx (5:2), the pty
    /// slaves (136:*) and /dev/net/tun (10:200). Anything else an image ships or `mknod` makes
    /// (a host disk, /dev/kvm, /dev/mem) cannot be opened.
    static let defaultDevices: [Spec.Resources.DeviceRule] = {
        typealias Rule = Spec.Resources.DeviceRule
        var rules = [Rule(allow: false, access: "rwm"), Rule(allow: true, type: "c", access: "m"),
                     Rule(allow: true, type: "b", access: "m")]
        let usable: [(Int64, Int64?)] = [(1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 1), (5, 2), (136, nil), (10, 200)]
        rules += usable.map { Rule(allow: true, type: "c", major: $0.0, minor: $0.1, access: "rwm") }
        return rules
    }()
    /// `--privileged`: every device (Docker's privileged containers).
    static let privilegedDevices = [Spec.Resources.DeviceRule(allow: true, access: "rwm")]

    /// Docker's default `linux.maskedPaths` (moby `oci/defaults.go`): kernel interfaces that leak
    /// host information or can harm it, hidden behind /dev/null (files) or an empty read-only tmpfs.
    static let defaultMaskedPaths = [
        "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
        "/sys/devices/virtual/powercap",
    ]
    /// Docker's default `linux.readonlyPaths`: /proc/sys and friends are host-wide knobs.
    static let defaultReadonlyPaths = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

    /// runc's and Docker's default mounts: /proc, /dev (tmpfs), /dev/pts (a new devpts instance),
    /// /dev/shm, /dev/mqueue, /sys (read-only), then the generated /etc files.
    static func defaultMounts(runDir: String) -> [Spec.Mount] {
        [
            Spec.Mount(destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"]),
            Spec.Mount(
                destination: "/dev", type: "tmpfs", source: "tmpfs",
                options: ["nosuid", "strictatime", "mode=755", "size=65536k"]),
            Spec.Mount(
                destination: "/dev/pts", type: "devpts", source: "devpts",
                options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]),
            Spec.Mount(
                destination: "/dev/shm", type: "tmpfs", source: "shm",
                options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
            Spec.Mount(destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"]),
            Spec.Mount(destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"]),
        ]
            + ["hostname", "hosts", "resolv.conf"].map {
                Spec.Mount(destination: "/etc/" + $0, type: "bind", source: runDir + "/" + $0, options: ["rbind", "rprivate"])
            }
    }

    /// `-v HOST:CTR[:ro|rw]` → bind mounts. Host paths must be absolute (named volumes are not
    /// supported); a missing host directory is created, as Docker does.
    static func volumeMounts(_ specs: [String]) throws -> [Spec.Mount] {
        try specs.map { v in
            let parts = v.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 2 || parts.count == 3 else {
                throw SkiffError(
                    "invalid volume \"\(v)\": expected HOST:CONTAINER[:ro|rw] (anonymous and named volumes are not supported)")
            }
            let (host, ctr) = (parts[0], parts[1])
            guard host.hasPrefix("/") else {
                throw SkiffError("invalid volume \"\(v)\": the host path \"\(host)\" must be absolute (named volumes are not supported)")
            }
            guard ctr.hasPrefix("/"), ctr != "/" else {
                throw SkiffError("invalid volume \"\(v)\": the container path \"\(ctr)\" must be absolute and not /")
            }
            var options = ["rbind", "rprivate"]
            if parts.count == 3 {
                switch parts[2] {
                case "ro": options.append("ro")
                case "rw": break
                default: throw SkiffError("invalid volume \"\(v)\": mode \"\(parts[2])\" is not ro or rw")
                }
            }
            if !Files.exists(host) {
                do { try StateRoot.mkdirAll(host) } catch {
                    throw SkiffError("invalid volume \"\(v)\": cannot create host directory \(host): \(error)")
                }
            }
            return Spec.Mount(destination: ctr, type: "bind", source: host, options: options)
        }
    }

    /// `--tmpfs PATH[:opts]` → tmpfs mounts with Docker's defaults (noexec, nosuid, nodev) unless overridden.
    static func tmpfsMounts(_ specs: [String]) throws -> [Spec.Mount] {
        try specs.map { t in
            let parts = t.split(separator: ":", maxSplits: 1).map(String.init)
            guard let path = parts.first, path.hasPrefix("/"), path != "/" else {
                throw SkiffError("invalid --tmpfs \"\(t)\": expected an absolute path other than /, then :options")
            }
            var options = ["nosuid", "nodev", "noexec"]
            if parts.count == 2 {
                for o in parts[1].split(separator: ",").map(String.init) {
                    switch o {
                    case "exec": options.removeAll { $0 == "noexec" }
                    case "suid": options.removeAll { $0 == "nosuid" }
                    case "dev": options.removeAll { $0 == "nodev" }
                    default: options.append(o)
                    }
                }
            }
            return Spec.Mount(destination: path, type: "tmpfs", source: "tmpfs", options: options)
        }
    }

    /// Replaces or appends `KEY=VALUE` in an environment list.
    static func set(_ env: inout [String], _ entry: String) {
        let key = entry.split(separator: "=", maxSplits: 1).first.map(String.init) ?? entry
        if let i = env.firstIndex(where: { $0 == key || $0.hasPrefix(key + "=") }) {
            env[i] = entry
        } else {
            env.append(entry)
        }
    }

    /// `KEY=VALUE` stays; `KEY` takes the caller's value, or is dropped when unset (Docker's rule).
    static func expandEnv(_ e: String) throws -> String? {
        guard !e.isEmpty, !e.hasPrefix("=") else { throw SkiffError("invalid environment variable \"\(e)\": expected KEY=VALUE or KEY") }
        if e.contains("=") { return e }
        guard let v = getenv(e) else { return nil }
        return e + "=" + String(cString: v)
    }

    /// Reads a Docker env file: one `KEY=VALUE` or `KEY` per line; `#` comments and blank lines skipped.
    static func readEnvFile(_ path: String) throws -> [String] {
        let text: String
        do { text = try Files.readString(path) } catch {
            throw SkiffError("cannot read --env-file \(path): \(error)")
        }
        var out: [String] = []
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.drop(while: { $0 == " " || $0 == "\t" })
            if line.isEmpty || line.hasPrefix("#") { continue }
            do {
                if let e = try expandEnv(String(line)) { out.append(e) }
            } catch {
                throw SkiffError("\(path):\(n + 1): invalid line \"\(line)\": expected KEY=VALUE or KEY")
            }
        }
        return out
    }
}
