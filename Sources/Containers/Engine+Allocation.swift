import Allocator
import Cgroups
import LinuxSys
import OCI

#if canImport(Glibc)
    import Glibc
#endif

/// The host as the allocator sees it at one moment.
public struct HostAllocation: Codable, Sendable {
    public var capacity: HostCapacity
    public var reserve: HostReserve
    public var allocatable: Allocatable
    /// Live reservations, oldest first.
    public var reservations: [Reservation]
    /// Their sum.
    public var reserved: Share { Ledger(reservations).reserved() }
}

extension Engine {
    /// The reservation ledger in the state database.
    public func ledger() throws -> LedgerStore { try LedgerStore(db: db()) }

    /// `HostCapacity.detect()`, once per command: planning and admission see the same host, and a
    /// VMM that has meanwhile joined its own cgroup does not take that cgroup's limit for the host's.
    func detectedCapacity() -> HostCapacity {
        if let capacityCache { return capacityCache }
        let detected = HostCapacity.detect()
        capacityCache = detected
        return detected
    }

    /// Capacity, reserve, allocatable total and live reservations.
    public func hostAllocation() throws -> HostAllocation {
        let ledger = try self.ledger()
        let capacity = try ledger.capacity(detected: detectedCapacity())
        let reserve = try ledger.reserve(for: capacity)
        return HostAllocation(
            capacity: capacity, reserve: reserve, allocatable: Allocatable(capacity: capacity, reserve: reserve),
            reservations: try ledger.all())
    }

    /// The share a record asks for.
    static func share(of r: ContainerRecord) -> Share {
        Share(cpu: r.settings.cpuRatio, memory: r.settings.memoryRatio)
    }

    /// Admits the workload's share with this process (its monitor) as the holder, atomically
    /// against every other `skiff` (see `LedgerStore`). A container's knobs (cpu.max, cpu.weight,
    /// memory.max from `Knobs`) are written into its spec's `linux.resources`.
    /// - Returns: the allocatable total it was admitted against (nil: best-effort, nothing reserved).
    /// - Throws: `AllocatorError.refused` naming the binding resource with numbers.
    @discardableResult
    func admit(_ r: inout ContainerRecord) throws -> Allocatable? {
        let share = Self.share(of: r)
        guard !share.isEmpty else { return nil }
        let ledger = try self.ledger()
        let capacity = try ledger.capacity(detected: detectedCapacity())
        let allocatable = Allocatable(capacity: capacity, reserve: try ledger.reserve(for: capacity))
        if r.kind == .container, share.memoryPPM > 0 {
            try Self.checkContainerMemory(share, allocatable)
        }
        let me = getpid()
        let reservation = Reservation(
            id: r.id, name: r.name, kind: r.kind.rawValue, share: share, holderPID: me,
            holderStartTime: Processes.startTime(me), since: Clock.now())
        try ledger.admit(reservation, allocatable: allocatable)
        Trace.mark("admitted")
        if r.kind == .container {
            var linux = r.spec.linux ?? Spec.Linux()
            linux.resources = Knobs.apply(
                share, allocatable: allocatable, to: linux.resources, sharesForWeight: cpuShares(forWeight:))
            r.spec.linux = linux
        }
        return allocatable
    }

    /// The smallest memory limit a container may get, bytes (Docker's `--memory` minimum).
    static let minimumContainerMemory: Int64 = 6 << 20

    /// Refuses a container memory share below `minimumContainerMemory`.
    static func checkContainerMemory(_ share: Share, _ allocatable: Allocatable) throws {
        let limit = Knobs.memoryLimit(ratio: share.memoryRatio, allocatable: allocatable)
        guard limit >= minimumContainerMemory else {
            throw AllocatorError.tooSmall(
                "memory ratio \(share.memoryRatio) gives \(ByteCount.binary(UInt64(limit))), below the 6 MiB a container needs; give a larger --memory-ratio"
            )
        }
    }

    /// A VM's RAM is fixed at boot: its memory share may not fall below guest RAM plus the parts of
    /// the VMM's overhead that grow with the VM (`VMMOverhead.estimate` without the baseline).
    static func checkVMMemory(_ r: ContainerRecord, _ share: Share, _ allocatable: Allocatable) throws {
        guard let vm = r.settings.vm, share.memoryPPM > 0 else { return }
        let limit = UInt64(Knobs.memoryLimit(ratio: share.memoryRatio, allocatable: allocatable))
        let needed = vm.memoryBytes + VMMOverhead.estimate(baseline: 0, guestBytes: vm.memoryBytes, vcpus: vm.vcpus)
        guard limit >= needed else {
            throw AllocatorError.tooSmall(
                "memory ratio \(share.memoryRatio) gives VM \(r.name) \(ByteCount.binary(limit)), less than its \(ByteCount.binary(vm.memoryBytes)) of guest RAM plus the VMM (\(ByteCount.binary(needed)) at least); a VM's RAM is fixed at boot, so its share can only shrink to that"
            )
        }
    }

    /// Releases the workload's reservation (no-op without one). Never throws: a release that
    /// cannot be written is void anyway once its holder exits.
    func releaseReservation(_ id: String) {
        try? ledger().release(id)
    }

    /// `skiff update --ratio/--cpu-ratio/--memory-ratio`: resizes a workload's share. A running
    /// one is re-admitted against the others and gets the new knobs at once (a VM's cgroup; its
    /// vCPUs and guest RAM stay as booted); a stopped one keeps the ratio for its next start.
    /// - Throws: `AllocatorError.refused` when the new share does not fit (nothing changes), or
    ///   `SkiffError` when the kernel refuses the new limit (the old share and knobs are restored).
    func updateShare(_ r: ContainerRecord, cpu: Double?, memory: Double?) throws {
        var updated = r
        if let cpu { updated.settings.cpuRatio = cpu }
        if let memory { updated.settings.memoryRatio = memory }
        let running = (r.status == .running || r.status == .paused) && !r.cgroupPaths.isEmpty
        if running {
            let holder = try ledger().all().first { $0.id == r.id }
            let pid = holder?.holderPID ?? r.monitorPID ?? getpid()
            let start = holder?.holderStartTime ?? r.monitorStartTime
            let share = Self.share(of: updated)
            let ledger = try self.ledger()
            let capacity = try ledger.capacity(detected: detectedCapacity())
            let allocatable = Allocatable(capacity: capacity, reserve: try ledger.reserve(for: capacity))
            if r.kind == .vm { try Self.checkVMMemory(r, share, allocatable) }
            if r.kind == .container, share.memoryPPM > 0 { try Self.checkContainerMemory(share, allocatable) }
            try ledger.admit(
                Reservation(
                    id: r.id, name: r.name, kind: r.kind.rawValue, share: share, holderPID: pid, holderStartTime: start,
                    since: holder?.since ?? Clock.now()), allocatable: allocatable)
            let resources = Knobs.apply(
                share, allocatable: allocatable, to: r.spec.linux?.resources, sharesForWeight: cpuShares(forWeight:))
            let cg = try Cgroup(paths: r.cgroupPaths)
            do {
                try applyResources(resources, to: cg, name: r.name)
            } catch {
                try? cg.apply(Self.rollback(to: r.spec.linux?.resources, undoing: resources))
                if let holder { try? ledger.admit(holder, allocatable: allocatable) }
                throw error
            }
            updated.spec.linux = updated.spec.linux ?? Spec.Linux()
            updated.spec.linux?.resources = resources
        }
        try store().modify(r.id) { rec in
            rec.settings.cpuRatio = updated.settings.cpuRatio
            rec.settings.memoryRatio = updated.settings.memoryRatio
            rec.spec.linux = updated.spec.linux
        }
    }
}
