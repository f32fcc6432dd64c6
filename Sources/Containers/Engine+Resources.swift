import Cgroups
import LinuxSys
import OCI

#if canImport(Glibc)
    import Glibc
#endif

/// The v1 `cpu.shares` whose v2 `cpu.weight` (runc/crun's current conversion,
/// `Cgroups.cpuWeight(fromShares:)`) is closest to `weight`, so `--cpu-weight` means the same on
/// both cgroup versions. The conversion is monotonic: a binary search over 2…262144.
func cpuShares(forWeight weight: UInt64) -> UInt64 {
    var lo: UInt64 = 2
    var hi: UInt64 = 262_144
    while lo < hi {
        let mid = (lo + hi) / 2
        if cpuWeight(fromShares: mid) < weight { lo = mid + 1 } else { hi = mid }
    }
    // Several shares map to one weight; prefer the one nearest the v1 default ratio (1024 ↔ 100).
    let preferred = weight * 1024 / 100
    var best = lo
    var s = lo
    while s <= 262_144, cpuWeight(fromShares: s) == cpuWeight(fromShares: lo) {
        if s.distance(to: preferred).magnitude < best.distance(to: preferred).magnitude { best = s }
        if s > preferred { break }
        s += 1
    }
    return best
}

extension Engine {
    /// Writes `resources` to a container's cgroup.
    /// - Throws: `SkiffError` naming the controller or file the host refused.
    func applyResources(_ resources: Spec.Resources?, to cg: Cgroup, name: String) throws {
        guard let resources else { return }
        do {
            try cg.apply(resources)
        } catch {
            throw SkiffError("cannot apply the resource limits of container \(name): \(error)")
        }
    }

    /// `skiff update`: changes the limits of a container; a running one gets them at once.
    /// Docker's rule for `--memory-swap` without `--memory`: the current memory limit is kept.
    /// - Returns: the container's new resources.
    /// - Throws: `SkiffError` for invalid values or limits the host cannot enforce; nothing changes then.
    @discardableResult
    public func update(_ ref: String, _ flags: ResourceFlags) throws -> Spec.Resources {
        guard !flags.isEmpty else { throw SkiffError("nothing to update: give at least one resource flag (see skiff update --help)") }
        var r = try find(ref)
        let ratios = try flags.ratios(vm: r.kind == .vm)
        if ratios.cpu != nil || ratios.memory != nil {
            try updateShare(r, cpu: ratios.cpu, memory: ratios.memory)
            r = try store().get(id: r.id) ?? r
            var rest = flags
            (rest.ratio, rest.cpuRatio, rest.memoryRatio) = (nil, nil, nil)
            if rest.isEmpty {
                try? Files.write(containerDir(r.id) + "/config.json", OCIJSON.encode(r.spec, pretty: true))
                return r.spec.linux?.resources ?? Spec.Resources()
            }
        }
        if r.kind == .vm {
            throw SkiffError("skiff update on a VM changes only its share (--ratio, --cpu-ratio, --memory-ratio); its vCPUs and RAM are fixed at boot")
        }
        if (flags.cpus != nil || flags.cpuShares != nil || flags.cpuWeight != nil) && r.settings.cpuRatio != nil {
            throw SkiffError("container \(r.name) has a --cpu-ratio; change its CPU with skiff update --cpu-ratio, not --cpus/--cpu-shares/--cpu-weight")
        }
        if flags.memorySwap != nil && r.settings.memoryRatio != nil {
            throw SkiffError("container \(r.name) has a --memory-ratio; swap limits need an absolute --memory (skiff update --memory M --memory-swap S)")
        }
        if flags.memory != nil && r.settings.memoryRatio != nil {
            throw SkiffError("container \(r.name) has a --memory-ratio; change its memory with skiff update --memory-ratio, not --memory")
        }
        let resources = try flags.resources(merging: r.spec.linux?.resources, cpuSharesForWeight: cpuShares(forWeight:))
        if (r.status == .running || r.status == .paused), !r.cgroupPaths.isEmpty {
            let cg = try Cgroup(paths: r.cgroupPaths)
            do {
                try applyResources(resources, to: cg, name: r.name)
            } catch {
                // Put back what was there, so a refused update changes nothing.
                try? cg.apply(Self.rollback(to: r.spec.linux?.resources, undoing: resources))
                throw error
            }
        }
        try store().modify(r.id) { rec in
            if rec.spec.linux == nil { rec.spec.linux = Spec.Linux() }
            rec.spec.linux?.resources = resources
        }
        if let updated = try store().get(id: r.id) {
            try? Files.write(containerDir(r.id) + "/config.json", OCIJSON.encode(updated.spec, pretty: true))
        }
        return resources
    }

    /// The resources that restore `old` for every knob `new` set: the old value, or the kernel's
    /// default (unlimited, shares 1024) where there was none.
    static func rollback(to old: Spec.Resources?, undoing new: Spec.Resources) -> Spec.Resources {
        var r = old ?? Spec.Resources()
        if let c = new.cpu {
            var cpu = r.cpu ?? Spec.Resources.CPU()
            if c.quota != nil || c.period != nil {
                cpu.quota = cpu.quota ?? -1
                cpu.period = cpu.period ?? ResourceFlags.cpuPeriod
            }
            if c.shares != nil { cpu.shares = cpu.shares ?? 1024 }
            r.cpu = cpu
        }
        if let m = new.memory {
            var mem = r.memory ?? Spec.Resources.Memory()
            if m.limit != nil { mem.limit = mem.limit ?? -1 }
            if m.swap != nil { mem.swap = mem.swap ?? -1 }
            if m.reservation != nil { mem.reservation = mem.reservation ?? -1 }
            r.memory = mem
        }
        if new.pids != nil { r.pids = r.pids ?? Spec.Resources.Pids(limit: -1) }
        return r
    }

    /// `skiff pause`: freezes every process of a running container (cgroup.freeze / v1 freezer).
    public func pause(_ ref: String) throws {
        let r = try find(ref)
        guard r.status == .running else {
            throw SkiffError("cannot pause container \(r.name): it is \(r.status.rawValue), not running")
        }
        let cg = try Cgroup(paths: r.cgroupPaths)
        do { try cg.freeze() } catch { throw SkiffError("cannot pause container \(r.name): \(error)") }
        try store().modify(r.id) { $0.status = .paused }
    }

    /// `skiff unpause`: thaws a paused container.
    public func unpause(_ ref: String) throws {
        let r = try find(ref)
        guard r.status == .paused else {
            throw SkiffError("cannot unpause container \(r.name): it is \(r.status.rawValue), not paused")
        }
        let cg = try Cgroup(paths: r.cgroupPaths)
        do { try cg.thaw() } catch { throw SkiffError("cannot unpause container \(r.name): \(error)") }
        try store().modify(r.id) { $0.status = .running }
    }

    /// A container's cgroup statistics, or nil when it has no cgroup (not running).
    public func stats(_ r: ContainerRecord) throws -> CgroupStats? {
        guard r.status == .running || r.status == .paused, !r.cgroupPaths.isEmpty else { return nil }
        return try Cgroup(paths: r.cgroupPaths).stats()
    }
}
