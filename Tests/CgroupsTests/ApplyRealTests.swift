import Glibc
import OCI
import Testing

@testable import Cgroups

/// Real enforcement through whichever hierarchy carries memory, pids and cpu (v1 on this hybrid
/// machine, v2 where the host is unified and delegates them).
let realLimitsAvailable: Bool = {
    guard realCgroupsAvailable, let layout = try? CgroupLayout.detect() else { return false }
    let available = layout.availableControllers
    return ["memory", "pids", "cpu"].allSatisfy(available.contains)
}()
let limitsSkipReason: Comment = "needs root, writable cgroups and the memory, pids and cpu controllers"

@Suite(.serialized, .enabled(if: realLimitsAvailable, limitsSkipReason))
struct RealLimits {
    func make(_ prefix: String, _ resources: Spec.Resources) throws -> Cgroup {
        let cgroup = try Cgroup.create(name: uniqueName(prefix), layout: CgroupLayout.detect())
        do { try cgroup.apply(resources) } catch {
            try? cgroup.remove()
            throw error
        }
        return cgroup
    }

    func read(_ cgroup: Cgroup, _ controller: String, v1 v1File: String, v2 v2File: String) throws -> String {
        if let dir = cgroup.v1(controller) { return try dir.read(v1File) }
        return try cgroup.unified!.read(v2File)
    }

    @Test func limitsReadBackAndStatsArePlausible() throws {
        var r = Spec.Resources()
        r.memory = .init(limit: 64 << 20)
        r.pids = .init(limit: 20)
        r.cpu = .init(quota: 50_000, period: 100_000)
        let cgroup = try make("limits", r)
        defer {
            try? cgroup.kill()
            try? cgroup.remove()
        }
        #expect(try read(cgroup, "memory", v1: "memory.limit_in_bytes", v2: "memory.max") == "67108864")
        #expect(try read(cgroup, "pids", v1: "pids.max", v2: "pids.max") == "20")
        if let cpu = cgroup.v1("cpu") {
            #expect(try cpu.read("cpu.cfs_quota_us") == "50000")
            #expect(try cpu.read("cpu.cfs_period_us") == "100000")
        } else {
            #expect(try cgroup.unified!.read("cpu.max") == "50000 100000")
        }

        let child = try Child([
            "/bin/sh", "-c", "sleep 0.1; x=$(head -c 4000000 /dev/zero | tr '\\0' a); while :; do :; done",
        ])
        try cgroup.join(pid: child.pid)
        sleepMs(400)
        let first = try cgroup.stats()
        sleepMs(600)
        let second = try cgroup.stats()
        try cgroup.kill()
        _ = child.reap()

        #expect(second.cpuUsageMicroseconds > first.cpuUsageMicroseconds)
        // 50 % of one CPU over 0.6 s is at most ~300 ms; allow slack for period boundaries.
        let spent = second.cpuUsageMicroseconds - first.cpuUsageMicroseconds
        #expect(spent > 150_000 && spent < 450_000, "cpu µs in 600 ms at 0.5 CPU: \(spent)")
        #expect((second.cpuThrottledPeriods ?? 0) > 0)
        #expect((second.memoryCurrent ?? 0) > 0)
        #expect(second.memoryLimit == 64 << 20)
        #expect(second.pidsCurrent == 1)
        #expect(second.pidsLimit == 20)
        #expect(second.oomKills == 0)
    }

    @Test func memoryHogIsKilledByTheOOMKiller() throws {
        var r = Spec.Resources()
        r.memory = .init(limit: 32 << 20, swap: 32 << 20)  // no swap either, where accounted
        var cgroup: Cgroup
        do { cgroup = try make("oom", r) } catch let error as CgroupError {
            guard case .invalidResource = error else { throw error }
            r.memory = .init(limit: 32 << 20)  // no swap accounting here
            cgroup = try make("oom", r)
        }
        defer {
            try? cgroup.kill()
            try? cgroup.remove()
        }
        // `tail` keeps a line that never ends in memory: it grows until the limit.
        let child = try Child(["/bin/sh", "-c", "sleep 0.1; exec tail /dev/zero"])
        try cgroup.join(pid: child.pid)
        let signal = child.reap()
        #expect(signal == SIGKILL)
        let stats = try cgroup.stats()
        #expect((stats.oomKills ?? 0) >= 1)
        #expect((stats.memoryPeak ?? 0) >= 30 << 20)
    }

    @Test func pidsLimitStopsAForkLoop() throws {
        var r = Spec.Resources()
        r.pids = .init(limit: 20)
        let cgroup = try make("pids", r)
        defer {
            try? cgroup.kill()
            try? cgroup.remove()
        }
        // 60 background sleeps; forks beyond 20 tasks fail with EAGAIN, the shell carries on.
        let child = try Child([
            "/bin/sh", "-c",
            "sleep 0.1; i=0; while [ $i -lt 60 ]; do sleep 30 & i=$((i+1)); done 2>/dev/null; sleep 30",
        ])
        try cgroup.join(pid: child.pid)
        var peak: UInt64 = 0
        for _ in 0..<40 {
            sleepMs(50)
            peak = max(peak, try cgroup.stats().pidsCurrent ?? 0)
        }
        #expect(peak == 20)
        #expect(try cgroup.pids().count <= 20)
        try cgroup.kill()
        _ = child.reap()
    }

    @Test func memswCanBeRaisedAndLoweredOnV1() throws {
        let cgroup = try Cgroup.create(name: uniqueName("memsw"), layout: CgroupLayout.detect())
        defer { try? cgroup.remove() }
        guard let memory = cgroup.v1("memory"), memory.has("memory.memsw.limit_in_bytes") else { return }
        var r = Spec.Resources()
        for (limit, swap) in [(64, 64), (128, 128), (32, 256), (64, 64), (-1, -1)] as [(Int64, Int64)] {
            r.memory = .init(limit: limit < 0 ? -1 : limit << 20, swap: swap < 0 ? -1 : swap << 20)
            try cgroup.apply(r)
            if limit > 0 {
                #expect(try memory.read("memory.limit_in_bytes") == String(limit << 20))
                #expect(try memory.read("memory.memsw.limit_in_bytes") == String(swap << 20))
            }
        }
    }

    @Test func hugetlbLimitThroughWhicheverHierarchyHasIt() throws {
        let layout = try CgroupLayout.detect()
        guard layout.availableControllers.contains("hugetlb"),
            access("/sys/kernel/mm/hugepages/hugepages-2048kB", F_OK) == 0
        else { return }
        let cgroup = try Cgroup.create(name: uniqueName("huge"), layout: layout)
        defer { try? cgroup.remove() }
        var r = Spec.Resources()
        r.hugepageLimits = [.init(pageSize: "2MB", limit: 4 << 21)]
        try cgroup.apply(r)
        let value = try read(cgroup, "hugetlb", v1: "hugetlb.2MB.limit_in_bytes", v2: "hugetlb.2MB.max")
        #expect(value == "8388608")
    }
}
