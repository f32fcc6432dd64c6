import Glibc
import OCI

/// Applying runtime-spec `linux.resources` (`config-linux.md#control-groups`) to a cgroup, on
/// cgroup v2 (`Documentation/admin-guide/cgroup-v2.rst`) and v1/hybrid hosts
/// (`Documentation/admin-guide/cgroup-v1/*.rst`). Each controller's files live in
/// `Controllers/<Name>.swift`; this file decides which hierarchy serves a controller and enables
/// v2 controllers along the way.
extension Cgroup {
    /// Writes `linux.resources` to the controller files of the hierarchy that carries each
    /// controller: the v1 hierarchy mounted with it, else the v2 hierarchy when its root lists it in
    /// `cgroup.controllers`.
    ///
    /// - v2: `cpu.max`, `cpu.weight`, `cpuset.cpus`/`cpuset.mems`, `memory.max`/`memory.low`/
    ///   `memory.swap.max`, `pids.max`, `io.weight`/`io.max`, `hugetlb.<size>.max`, and the
    ///   `unified` map verbatim. Each needed controller is first enabled (`+name` in
    ///   `cgroup.subtree_control`) in every ancestor from the nearest one that already passes it
    ///   down, never in a hierarchy root and never in a cgroup holding processes (cgroup-v2.rst
    ///   "No Internal Process Constraint").
    /// - v1: `cpu.cfs_period_us`/`cpu.cfs_quota_us`/`cpu.shares`, `cpuset.*`,
    ///   `memory.limit_in_bytes`/`memory.soft_limit_in_bytes`/`memory.memsw.limit_in_bytes`/
    ///   `memory.oom_control`, `pids.max`, `blkio.weight`/`blkio.throttle.*`,
    ///   `hugetlb.<size>.limit_in_bytes`.
    ///
    /// Absent fields leave the kernel's current value alone, so the same call serves `create` and
    /// `skiff update`. Every controller is checked before the first write.
    /// Throws `CgroupError.missingController` naming the controller when a requested limit cannot
    /// be enforced on this host (never silently ignored), `.invalidResource` for a value or
    /// setting the host's cgroup version cannot express, `.write` with the file and value the
    /// kernel refused.
    public func apply(_ resources: Spec.Resources) throws(CgroupError) {
        // 1. Which controller serves each requested setting, and where.
        var plan: [(controller: String, setting: String)] = []
        if let cpu = resources.cpu {
            if (cpu.quota ?? 0) != 0 || (cpu.period ?? 0) != 0 { plan.append(("cpu", "cpu quota/period")) }
            if (cpu.shares ?? 0) != 0 { plan.append(("cpu", "cpu shares")) }
            if cpu.cpus != nil || cpu.mems != nil { plan.append(("cpuset", "cpuset cpus/mems")) }
        }
        if let memory = resources.memory,
            memory.limit != nil || memory.reservation != nil
                || memory.swap != nil || memory.disableOOMKiller != nil
        {
            plan.append(("memory", "memory limit"))
        }
        if resources.pids != nil { plan.append(("pids", "pids limit")) }
        if let io = resources.blockIO, IOLimits.hasAny(io) {
            plan.append((hasV1("blkio") ? "blkio" : "io", "block I/O limit"))
        }
        if let pages = resources.hugepageLimits, !pages.isEmpty { plan.append(("hugetlb", "hugepage limit")) }

        var targets: [String: Directory] = [:]
        for (controller, setting) in plan where targets[controller] == nil {
            targets[controller] = try directory(serving: controller, setting: setting)
        }
        var unifiedWrites: [(file: String, value: String)] = []
        if let map = resources.unified, !map.isEmpty {
            unifiedWrites = try UnifiedLimits.plan(map, cgroup: self)
            for controller in UnifiedLimits.controllers(of: unifiedWrites) where targets[controller] == nil {
                guard let unified, unified.controllers.contains(controller) else {
                    throw missingControllerError(controller, setting: "unified \(controller).* setting")
                }
                targets[controller] = unified
            }
        }

        // 2. v2: enable what is needed in the ancestors' cgroup.subtree_control.
        let v2Controllers = targets.filter { $0.value.version == .v2 }.keys.sorted()
        if let unified, !v2Controllers.isEmpty {
            try V2Delegation.enable(v2Controllers, for: unified)
        }

        // 3. Write, controller by controller (cpuset first: v1 tasks need cpus before limits).
        if let cpu = resources.cpu {
            if let dir = targets["cpuset"] { try CpusetLimits.apply(cpu, to: dir) }
            if let dir = targets["cpu"] { try CpuLimits.apply(cpu, to: dir) }
        }
        if let memory = resources.memory, let dir = targets["memory"] { try MemoryLimits.apply(memory, to: dir) }
        if let pids = resources.pids, let dir = targets["pids"] { try PidsLimits.apply(pids, to: dir) }
        if let io = resources.blockIO, let dir = targets["blkio"] ?? targets["io"] { try IOLimits.apply(io, to: dir) }
        if let pages = resources.hugepageLimits, let dir = targets["hugetlb"] {
            try HugetlbLimits.apply(pages, to: dir)
        }
        if let unified {
            for (file, value) in unifiedWrites { try unified.write(file, value) }
        }
        if let rules = resources.devices, !rules.isEmpty {
            // v1's devices controller where it is mounted, else v2's device program.
            // SKIFF_DEVICES_BPF=1 takes the v2 way on a hybrid host too (tests).
            let forceBPF = getenv("SKIFF_DEVICES_BPF").map { String(cString: $0) } == "1"
            if let dir = v1("devices"), !forceBPF {
                try DeviceLimits.apply(rules, to: dir)
            } else if let unified {
                try DeviceLimits.attachProgram(rules, to: unified)
            }
        }
    }

    func hasV1(_ controller: String) -> Bool { v1(controller) != nil }

    /// The directory whose hierarchy carries `controller`: a v1 hierarchy mounted with it, else
    /// the v2 hierarchy when it offers it. Throws `.missingController`.
    func directory(serving controller: String, setting: String) throws(CgroupError) -> Directory {
        if let dir = v1(controller) { return dir }
        let v2Name = controller == "blkio" ? "io" : controller
        if let unified, unified.controllers.contains(v2Name) { return unified }
        throw missingControllerError(v2Name, setting: setting)
    }

    func missingControllerError(_ controller: String, setting: String) -> CgroupError {
        let shown = directories.first { $0.version == .v2 } ?? directories.first
        let path = shown?.cgroupPath ?? "?"
        let hint: String
        if let unified {
            let v1Name = controller == "io" ? "blkio" : controller
            hint =
                "neither a cgroup v1 hierarchy carries \(v1Name) nor does the cgroup v2 hierarchy at "
                + "\(unified.mountPoint) list \(controller) in cgroup.controllers; on a cgroup v2 host enable it "
                + "in \(unified.mountPoint)/cgroup.subtree_control (and every level down to skiff's cgroup) or run "
                + "skiff from a cgroup that delegates it; on a v1/hybrid host mount the \(v1Name) hierarchy"
        } else {
            let v1Name = controller == "io" ? "blkio" : controller
            hint =
                "no cgroup v1 hierarchy carries \(v1Name); mount it (mount -t cgroup -o \(v1Name) cgroup "
                + "/sys/fs/cgroup/\(v1Name)) or boot with cgroup v2 (systemd.unified_cgroup_hierarchy=1)"
        }
        return .missingController(controller: controller, setting: setting, cgroupPath: path, hint: hint)
    }
}

extension Cgroup.Directory {
    /// Writes one interface file of this directory (one `write(2)`).
    func write(_ file: String, _ value: String) throws(CgroupError) {
        try CgroupFiles.write(self.file(file), value)
    }

    /// Reads one interface file, trailing newline stripped.
    func read(_ file: String) throws(CgroupError) -> String {
        try CgroupFiles.readLine(self.file(file))
    }

    func has(_ file: String) -> Bool { CgroupFiles.exists(self.file(file)) }
}

extension CgroupLayout {
    /// Controllers Skiff can enforce on this host, sorted: the v2 root's `cgroup.controllers`
    /// (cgroup-v2.rst "Enabling and Disabling") together with the controllers of every mounted v1
    /// hierarchy (mount options; `name=` hierarchies carry none). For `skiff info` and the
    /// "missing controller" errors.
    public var availableControllers: [String] {
        var all = Set<String>()
        for hierarchy in hierarchies {
            for controller in hierarchy.controllers where !controller.hasPrefix("name=") {
                all.insert(controller)
            }
        }
        return all.sorted()
    }
}

/// cgroup v2 controller delegation: cgroup-v2.rst "Enabling and Disabling" (a controller is
/// usable in a cgroup only when its parent lists it in `cgroup.subtree_control`, which needs the
/// parent's own `cgroup.controllers` to list it) and "No Internal Process Constraint" (a
/// non-root cgroup cannot enable controllers for its children while it holds processes).
enum V2Delegation {
    /// Enables `controllers` for the workload directory `leaf`: walks up from its parent until a
    /// level already lists the controller in `cgroup.subtree_control`, then writes `+name …` into
    /// each level below that one, top down, one write per level.
    ///
    /// Throws `.missingController` when a level neither passes the controller down nor is offered
    /// it, or when only the hierarchy root could enable it (Skiff never writes a root,
    /// DESIGN.md rule 2); `.invalidResource` when a level that must enable it holds processes.
    static func enable(_ controllers: [String], for leaf: Cgroup.Directory) throws(CgroupError) {
        var chain: [String] = []  // the leaf's parent, grandparent, … up to the mount point
        var level = parentPath(leaf.path)
        while level.hasPrefix(leaf.mountPoint) {
            chain.append(level)
            if level == leaf.mountPoint { break }
            level = parentPath(level)
        }
        var toEnable: [String: [String]] = [:]  // level → controllers to add there
        for controller in controllers {
            var pending: [String] = []
            var satisfied = false
            for dir in chain {
                if try words(CgroupFiles.join(dir, "cgroup.subtree_control")).contains(controller) {
                    satisfied = true
                    break
                }
                let offered = try words(CgroupFiles.join(dir, "cgroup.controllers")).contains(controller)
                guard offered, dir != leaf.mountPoint else {
                    let path = cgroupPath(dir, mountPoint: leaf.mountPoint)
                    let where_ =
                        dir == leaf.mountPoint
                        ? "\(dir)/cgroup.subtree_control (the hierarchy root, which skiff never writes)"
                        : "the parent of \(path)"
                    throw .missingController(
                        controller: controller, setting: "\(controller) limits",
                        cgroupPath: cgroupPath(leaf.path, mountPoint: leaf.mountPoint),
                        hint: "cgroup v2 does not pass \(controller) down to \(path); enable it in \(where_) "
                            + "or run skiff from a cgroup that delegates it (systemd Delegate=yes)")
                }
                pending.append(dir)
            }
            if satisfied || !pending.isEmpty {
                for dir in pending { toEnable[dir, default: []].append(controller) }
            }
        }
        for dir in chain.reversed() {
            guard let names = toEnable[dir] else { continue }
            let procs = CgroupFiles.join(dir, "cgroup.procs")
            if let text = try? CgroupFiles.read(procs), let pids = try? CgroupFiles.parsePids(text, path: procs),
                !pids.isEmpty
            {
                throw .invalidResource(
                    setting: names.joined(separator: ", ") + " limits",
                    reason: "cgroup v2 must enable \(names.joined(separator: ", ")) in \(dir)/cgroup.subtree_control, "
                        + "but that cgroup holds processes (pids \(pids.prefix(5).map(String.init).joined(separator: " ")))"
                        + " and the \"no internal process\" rule (cgroup-v2.rst) forbids it; run skiff from a leaf "
                        + "cgroup with --cgroup-parent naming a cgroup without processes (e.g. a systemd slice "
                        + "with Delegate=yes)")
            }
            try CgroupFiles.write(
                CgroupFiles.join(dir, "cgroup.subtree_control"), names.map { "+" + $0 }.joined(separator: " "))
        }
    }

    static func parentPath(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
        return String(path[..<slash])
    }

    static func cgroupPath(_ dir: String, mountPoint: String) -> String {
        let rest = dir.dropFirst(mountPoint.count)
        return rest.isEmpty ? "/" : String(rest)
    }

    /// The space-separated names of a `cgroup.controllers` / `cgroup.subtree_control` file.
    static func words(_ path: String) throws(CgroupError) -> Set<String> {
        Set(try CgroupFiles.read(path).split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))
    }
}
