import Cgroups
import LinuxSys

/// What the host offers Skiff's workloads before the host reserve is taken off.
///
/// CPUs are those Skiff may run on (its affinity mask, which the kernel intersects with its
/// cpuset); memory is `MemTotal` from /proc/meminfo, or the limit of Skiff's own memory cgroup
/// when that is lower (cgroup-v2.rst `memory.max`; v1 `memory.limit_in_bytes`).
public struct HostCapacity: Codable, Sendable, Equatable {
    /// Usable CPUs (count; a cpuset of 0-3,6 is 5).
    public var cpus: Double
    /// Usable memory, bytes.
    public var memoryBytes: UInt64

    public init(cpus: Double, memoryBytes: UInt64) {
        self.cpus = cpus
        self.memoryBytes = memoryBytes
    }

    /// Reads the host: `Cpus_allowed_list` of /proc/self/status, /proc/meminfo and this
    /// process's memory cgroup.
    public static func detect() -> HostCapacity {
        HostCapacity(cpus: Double(usableCPUs()), memoryBytes: usableMemory())
    }

    /// CPUs this process may run on (`Cpus_allowed_list` in /proc/self/status); 1 if unreadable.
    public static func usableCPUs() -> Int {
        guard let status = try? Files.readString("/proc/self/status"),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed_list:") })
        else { return 1 }
        let list = String(line.dropFirst("Cpus_allowed_list:".count)).trimming(" \t")
        let n = list.split(separator: ",").reduce(0) { n, part in
            let ends = part.split(separator: "-").compactMap { Int($0) }
            return n + (ends.count == 2 ? ends[1] - ends[0] + 1 : 1)
        }
        return max(n, 1)
    }

    /// Memory Skiff's workloads can have, bytes: MemTotal, or the limit of Skiff's own memory
    /// cgroup (memory.max / v1 memory.limit_in_bytes) when that is lower; 0 if unreadable.
    public static func usableMemory() -> UInt64 {
        guard let info = try? Files.readString("/proc/meminfo"),
            let line = info.split(separator: "\n").first(where: { $0.hasPrefix("MemTotal:") })
        else { return 0 }
        let total = (line.split(separator: " ").compactMap { UInt64($0) }.first ?? 0) * 1024
        guard let layout = try? CgroupLayout.detect(),
            let dir = layout.hierarchy(for: "memory")?.ownDirectory
        else { return total }
        for file in ["memory.max", "memory.limit_in_bytes"] {
            if let text = try? Files.readString(dir + "/" + file), let limit = UInt64(text.trimming("\n ")) {
                return min(total, limit)
            }
        }
        return total
    }
}

/// CPU and memory kept back for the host (kernel, daemons, Skiff itself); workloads share the rest.
public struct HostReserve: Codable, Sendable, Equatable {
    /// CPUs (fractional).
    public var cpus: Double
    /// Bytes.
    public var memoryBytes: UInt64

    public init(cpus: Double, memoryBytes: UInt64) {
        self.cpus = cpus
        self.memoryBytes = memoryBytes
    }

    /// The reserve used until `skiff reserve` sets one: 5 % of the CPUs but at least 0.1 CPU, so
    /// the capped workloads can never take every cycle; 10 % of memory, at least 256 MiB and at most
    /// 2 GiB (Kubernetes' system-reserved and eviction threshold in one number, see
    /// ../shared/reference/allocator.md §1.1).
    public static func defaultReserve(for capacity: HostCapacity) -> HostReserve {
        let cpus = min(max(0.1, capacity.cpus * 0.05), capacity.cpus)
        let tenth = capacity.memoryBytes / 10
        let memory = min(max(tenth, 256 << 20), 2 << 30)
        return HostReserve(cpus: (cpus * 100).rounded() / 100, memoryBytes: min(memory, capacity.memoryBytes))
    }
}

/// Capacity minus reserve: what ratios are ratios of (`R_total` in R_alloc = R_total × ratio).
public struct Allocatable: Codable, Sendable, Equatable {
    /// CPUs; never negative.
    public var cpus: Double
    /// Bytes; never negative.
    public var memoryBytes: UInt64

    public init(cpus: Double, memoryBytes: UInt64) {
        self.cpus = cpus
        self.memoryBytes = memoryBytes
    }

    public init(capacity: HostCapacity, reserve: HostReserve) {
        cpus = max(0, capacity.cpus - reserve.cpus)
        memoryBytes = capacity.memoryBytes > reserve.memoryBytes ? capacity.memoryBytes - reserve.memoryBytes : 0
    }
}
