import Allocator
import Cgroups
import LinuxSys

#if canImport(Glibc)
    import Glibc
#endif

/// One workload's line in `skiff top`: its share, what that gives it, what it used, and the
/// schedule-time breakdown T_schedule = T_ready + T_wait + T_service
/// (../shared/reference/allocator.md §4).
public struct TopRow: Codable, Sendable {
    public var ID: String
    public var Name: String
    /// `container` or `vm`.
    public var Kind: String
    public var Status: String
    /// Ratios of the allocatable host; nil = best-effort.
    public var CPURatio: Double?
    public var MemoryRatio: Double?
    /// What the share gives: CPUs (cpu.max quota / period) and bytes (memory.max); nil = no reservation.
    public var AllocatedCPUs: Double?
    public var AllocatedMemoryBytes: UInt64?
    /// Measured over the sampling interval: CPUs used (Δ CPU time / wall time).
    public var UsedCPUs: Double
    /// memory.current (v1 memory.usage_in_bytes) and the peak (memory.peak / max_usage_in_bytes).
    public var UsedMemoryBytes: UInt64?
    public var PeakMemoryBytes: UInt64?
    /// T_ready: from create to running, seconds.
    public var ReadySeconds: Double?
    /// T_wait: time throttled by cpu.max (cpu.stat throttled_usec / v1 throttled_time) plus time
    /// runnable but waiting for a CPU (/proc/PID/task/TID/schedstat, field 2, of its live tasks), seconds.
    public var WaitSeconds: Double
    public var ThrottledSeconds: Double
    public var RunqueueWaitSeconds: Double
    /// T_service: CPU time used (cpu.stat usage_usec / v1 cpuacct.usage), seconds.
    public var ServiceSeconds: Double
    /// T_ready + T_wait + T_service, seconds.
    public var ScheduleSeconds: Double
    /// `some avg10` of the cgroup's cpu.pressure where the kernel has it (cgroup v2).
    public var CPUPressureSomeAvg10: Double?
}

extension Engine {
    /// Samples every running workload (or `refs`) twice, `interval` apart, and returns its row.
    /// - Throws: `SkiffError` for an unknown name.
    public func top(_ refs: [String] = [], interval: Double = 1) throws -> [TopRow] {
        let allocation = try hostAllocation()
        var seen = Set<String>()
        let records = try (refs.isEmpty ? list() : refs.map { try find($0) })
            .filter { ($0.status == .running || $0.status == .paused) && seen.insert($0.id).inserted }
        var first: [String: (UInt64, Double)] = [:]
        for r in records {
            if let s = try? stats(r) { first[r.id] = (s.cpuUsageMicroseconds, Clock.monotonic()) }
        }
        if interval > 0 && !records.isEmpty { usleep(UInt32(interval * 1_000_000)) }
        var rows: [TopRow] = []
        for r in records {
            guard let (u0, t0) = first[r.id], let s = try? stats(r) else { continue }
            let wall = Clock.monotonic() - t0
            let used = wall > 0 ? Double(s.cpuUsageMicroseconds &- u0) / 1e6 / wall : 0
            let held = allocation.reservations.first { $0.id == r.id }?.share
            let cpuRatio = held.flatMap { $0.cpuPPM > 0 ? $0.cpuRatio : nil }
            let memoryRatio = held.flatMap { $0.memoryPPM > 0 ? $0.memoryRatio : nil }
            let throttled = Double(s.cpuThrottledMicroseconds ?? 0) / 1e6
            let runqueue = Self.runqueueWait(r.cgroupPaths)
            let service = Double(s.cpuUsageMicroseconds) / 1e6
            let ready = r.startedAt.map { max(0, $0 - r.created) }
            rows.append(
                TopRow(
                    ID: r.shortID, Name: r.name, Kind: r.kind.rawValue, Status: r.status.rawValue,
                    CPURatio: cpuRatio, MemoryRatio: memoryRatio,
                    AllocatedCPUs: cpuRatio.map { ($0 * allocation.allocatable.cpus * 1000).rounded() / 1000 },
                    AllocatedMemoryBytes: memoryRatio.map {
                        UInt64(Knobs.memoryLimit(ratio: $0, allocatable: allocation.allocatable))
                    },
                    UsedCPUs: (used * 1000).rounded() / 1000, UsedMemoryBytes: s.memoryCurrent,
                    PeakMemoryBytes: s.memoryPeak,
                    ReadySeconds: ready, WaitSeconds: throttled + runqueue, ThrottledSeconds: throttled,
                    RunqueueWaitSeconds: runqueue, ServiceSeconds: service,
                    ScheduleSeconds: (ready ?? 0) + throttled + runqueue + service,
                    CPUPressureSomeAvg10: s.cpuPressureSomeAvg10))
        }
        return rows
    }

    /// Σ of schedstat's run-queue wait (ns → s) over every live thread of the cgroup's processes.
    static func runqueueWait(_ cgroupPaths: [String]) -> Double {
        guard let cg = try? Cgroup(paths: cgroupPaths), let pids = try? cg.pids() else { return 0 }
        var ns: UInt64 = 0
        for pid in pids {
            let taskDir = "/proc/\(pid)/task"
            guard let dir = opendir(taskDir) else { continue }
            defer { closedir(dir) }
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) {
                    String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self)
                }
                guard name.first?.isNumber == true,
                    let text = try? Files.readString(taskDir + "/" + name + "/schedstat")
                else { continue }
                let fields = text.split(separator: " ")
                if fields.count >= 2, let wait = UInt64(fields[1]) { ns += wait }
            }
        }
        return Double(ns) / 1e9
    }
}
