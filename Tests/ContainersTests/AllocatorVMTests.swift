import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Issue 5's acceptance for VMs: one ratio gives a VM its vCPUs, guest RAM and the cgroup knobs a
/// container with that share gets, and the VMM's whole host footprint stays inside the share.
@Suite(.enabled(if: VMGuest.available && Harness.available, "needs root, /dev/kvm, gcc, ld and a skiff binary"))
struct AllocatorVMTests {
    init() throws { try Harness.setUp() }

    /// The spin guest with Skiff's all-vCPU entry note: every vCPU loops at CPL 3 (native speed
    /// under kvm_pvm), so the VM wants as much CPU as it has vCPUs.
    static func spinAllVCPUs() async throws -> String {
        try await VMGuest.build(
            "spin", output: "spin-all", defines: ["ITERATIONS": "0x7fffffffffffffff", "ALL_VCPUS": "1"])
    }

    /// A container at 0.25 and a VM at 0.75 of the CPUs, both saturating (busy loops; every vCPU
    /// spinning), get measured CPU time in a 1:3 split within ±5 % over 10 s; the VM got
    /// max(1, ceil(0.75 × CPUs)) vCPUs and its VMM cgroup the container's cpu.max for that share.
    @Test func containerAndVMShareTheCPUsOneToThree() async throws {
        let root = try await AllocatorRoot()
        defer { Task { await root.removeAll() } }
        let kernel = try await Self.spinAllVCPUs()
        let cpus = number(try await root.allocation()["AllocatableCPUs"])
        let c = uniqueName("c25")
        let v = uniqueName("v75")
        let a = await root.run(
            "run", "-d", "--name", c, "--cpu-ratio", "0.25", "busybox", "sh", "-c",
            "for i in 1 2 3 4; do (while :; do :; done) & done; wait")
        let b = await root.run("run", "-d", "--vm", "--name", v, "--cpu-ratio", "0.75", "--kernel", kernel)
        try #require(a.code == 0 && b.code == 0, "\(a)\n\(b)")
        let fc = try await facts(c, root: root.path)
        let fv = try await facts(v, root: root.path)
        #expect(LimitsTests.cgroupFile(fv, "cpu", "cpu.cfs_quota_us") == String(Int((0.75 * cpus * 100_000).rounded())))
        let vcpus = max(1, Int((0.75 * cpus).rounded(.up)))
        let threads = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(fv.pid)/task")) ?? []
        #expect(threads.count > vcpus, "the VMM has \(threads.count) threads for \(vcpus) vCPUs")
        func usage(_ f: ContainerFacts) -> Double {
            Double(LimitsTests.cgroupFile(f, "cpuacct", "cpuacct.usage") ?? "") ?? .nan
        }
        try await Task.sleep(for: .seconds(1))
        let (c0, v0) = (usage(fc), usage(fv))
        try await Task.sleep(for: .seconds(10))
        let (c1, v1) = (usage(fc), usage(fv))
        let split = (v1 - v0) / (c1 - c0)
        #expect(
            abs(split - 3) / 3 <= 0.05,
            "CPU time 1:\(split) (container \((c1 - c0) / 1e9) s, VM \((v1 - v0) / 1e9) s in 10 s)")
        await root.removeAll()
    }

    /// `--memory-ratio 0.01`: the VMM's cgroup gets memory.limit_in_bytes = 1 % of the allocatable
    /// memory; the guest, which writes to every page of its RAM, stays running (no OOM kill, the
    /// limit was never hit), and the cgroup's peak — guest RAM plus the VMM's own overhead — stays
    /// under the share while holding at least the guest RAM it touched.
    @Test func vmMemoryShareHoldsGuestRAMAndTheVMM() async throws {
        let root = try await AllocatorRoot()
        defer { Task { await root.removeAll() } }
        let kernel = try await VMGuest.build("touch", output: "touch-spin", defines: ["SPIN_AFTER": "1"])
        let share = number(try await root.allocation()["AllocatableMemoryBytes"]) * 0.01
        let name = uniqueName("vmmem")
        let run = await root.run("run", "-d", "--vm", "--name", name, "--memory-ratio", "0.01", "--kernel", kernel)
        try #require(run.code == 0, "\(run)")
        var touchedMiB = 0.0
        let done = await eventually(60) {
            let logs = await root.run("logs", name)
            guard let line = logs.lines.first(where: { $0.hasPrefix("touched=") }) else { return false }
            touchedMiB = Double(line.dropFirst("touched=".count)) ?? 0
            return true
        }
        let logs = await root.run("logs", name)
        try #require(done, "the guest never reported: \(logs)")
        let f = try await facts(name, root: root.path)
        let limit = Double(LimitsTests.cgroupFile(f, "memory", "memory.limit_in_bytes") ?? "") ?? 0
        let peak = Double(LimitsTests.cgroupFile(f, "memory", "memory.max_usage_in_bytes") ?? "") ?? .nan
        let failcnt = LimitsTests.cgroupFile(f, "memory", "memory.failcnt")
        #expect(abs(limit - share) <= 4096, "limit \(limit) vs share \(share)")
        #expect(
            touchedMiB * 1_048_576 >= share * 0.5,
            "the guest touched only \(touchedMiB) MiB of a \(share / 1_048_576) MiB share")
        #expect(
            peak >= touchedMiB * 1_048_576,
            "peak \(peak) below the \(touchedMiB) MiB the guest touched: guest RAM is not charged")
        #expect(peak <= limit, "peak \(peak) over the share \(limit)")
        #expect(
            failcnt == "0", "the VM's cgroup hit its limit \(failcnt ?? "?") times: the overhead estimate is too small")
        #expect(f.status == "running" && processAlive(f.pid))
        let top = await root.run("top", "--interval", "0", "--format", "json", name)
        let row = try JSONSerialization.jsonObject(with: Data(top.out.utf8)) as? [String: Any]
        #expect(row?["Kind"] as? String == "vm" && number(row?["MemoryRatio"]) == 0.01, "\(top)")
        print(
            "VM memory share \(Int(share / 1_048_576)) MiB: guest touched \(Int(touchedMiB)) MiB, cgroup peak \(Int(peak / 1_048_576)) MiB"
        )
        await root.removeAll()
    }

    /// Explicit `--cpus`/`--memory` occupy the ratio they are of the host: 1 of N CPUs holds 1/N, so
    /// a second such VM fits only while the first's share leaves room; more vCPUs than the host has
    /// is refused with what to do.
    @Test func explicitVMSizeHoldsTheRatioItOccupies() async throws {
        let root = try await AllocatorRoot()
        defer { Task { await root.removeAll() } }
        let kernel = try await VMGuest.spinForever()
        let alloc = try await root.allocation()
        let total = number(alloc["TotalCPUs"])
        let first = uniqueName("vm1")
        let a = await root.run(
            "run", "-d", "--vm", "--name", first, "--cpus", "1", "--memory", "64m", "--kernel", kernel)
        try #require(a.code == 0, "\(a)")
        let after = try await root.allocation()
        // One vCPU holds one of the allocatable CPUs (ratio 1 / allocatable).
        #expect(abs(number(after["AllocatedCPUs"]) - 1) < 0.01, "\(after)")
        _ = total
        #expect(number(after["AllocatedMemoryBytes"]) > 64 * 1_048_576, "guest RAM plus overhead: \(after)")
        let whole = await root.run(
            "run", "-d", "--vm", "--name", uniqueName("vmall"), "--cpus", String(Int(total)), "--kernel", kernel)
        #expect(whole.code == 125 && whole.stderr.contains("cannot admit vm"), "\(whole)")
        let tooMany = await root.run("run", "--rm", "--vm", "--cpus", String(Int(total) + 1), "--kernel", kernel)
        #expect(tooMany.code == 125 && tooMany.stderr.contains("usable CPUs"), "\(tooMany)")
        let ps = await root.run("ps", "-a", "-q")
        #expect(ps.lines.count == 1, "refused VMs left records: \(ps)")
        // Its RAM is fixed at boot: the memory share cannot shrink below guest RAM plus the VMM.
        let shrink = await root.run("update", "--memory-ratio", "0.000001", first)
        #expect(shrink.code != 0 && shrink.stderr.contains("fixed at boot"), "\(shrink)")
        let f = try await facts(first, root: root.path)
        #expect(f.status == "running" && processAlive(f.pid))
        await root.removeAll()
    }
}
