import OCI
import Testing

@testable import Allocator

@Suite("Share → knobs and VM sizing")
struct KnobsTests {
    let host = Allocatable(cpus: 1.9, memoryBytes: 22 << 30)

    @Test("cpu.max, cpu.weight and memory.max follow the ratio")
    func containerKnobs() {
        let r = Knobs.apply(
            Share(cpu: 0.25, memory: 0.01), allocatable: host, to: nil, sharesForWeight: { $0 * 1024 / 100 })
        #expect(r.cpu?.quota == 47_500)  // 0.25 × 1.9 CPUs × 100 000 µs
        #expect(r.cpu?.period == 100_000)
        #expect(r.cpu?.shares == 2500 * 1024 / 100)
        let limit = UInt64(r.memory?.limit ?? 0)
        #expect(limit % 4096 == 0)
        #expect(limit <= (22 << 30) / 100 && limit > (22 << 30) / 100 - 4096)
    }

    @Test("a share without memory leaves the memory knobs alone; quota never below 1 ms")
    func partial() {
        var existing = Spec.Resources()
        existing.memory = Spec.Resources.Memory()
        existing.memory?.limit = 123 << 20
        let r = Knobs.apply(Share(cpu: 0.000001, memory: nil), allocatable: host, to: existing, sharesForWeight: { $0 })
        #expect(r.memory?.limit == 123 << 20)
        #expect(r.cpu?.quota == Knobs.minimumQuota)
        #expect(r.cpu?.shares == 1)
    }

    let overhead: (UInt64, Int) -> UInt64 = { VMMOverhead.estimate(baseline: 12 << 20, guestBytes: $0, vcpus: $1) }

    @Test("a VM's vCPUs are max(1, ceil(ratio × CPUs)); its guest RAM is the share minus the overhead")
    func vmFromRatio() throws {
        let s = try VMSizing.size(
            cpuRatio: 0.75, memoryRatio: 0.01, vcpus: nil, memoryBytes: nil, defaultVCPUs: 1,
            defaultMemoryBytes: 128 << 20, usableCPUs: 2, allocatable: host, overhead: overhead)
        #expect(s.vcpus == 2)  // ceil(0.75 × 1.9) = ceil(1.425)
        let share = UInt64(Knobs.memoryLimit(ratio: 0.01, allocatable: host))
        #expect(s.guestMemoryBytes + s.overheadBytes <= share)
        #expect(s.guestMemoryBytes % (2 << 20) == 0)
        #expect(share - (s.guestMemoryBytes + s.overheadBytes) < 2 << 20 + (1 << 20))
        #expect(s.share == Share(cpu: 0.75, memory: 0.01))
        let small = try VMSizing.size(
            cpuRatio: 0.1, memoryRatio: nil, vcpus: nil, memoryBytes: nil, defaultVCPUs: 1,
            defaultMemoryBytes: 128 << 20, usableCPUs: 2, allocatable: host, overhead: overhead)
        #expect(small.vcpus == 1)
        #expect(small.share.memoryPPM == Share.ppm(Double((128 << 20) + small.overheadBytes) / Double(22 << 30)))
    }

    @Test("explicit --cpus/--memory become the ratio they occupy; too large is refused with numbers")
    func vmExplicit() throws {
        let s = try VMSizing.size(
            cpuRatio: nil, memoryRatio: nil, vcpus: 1, memoryBytes: 256 << 20, defaultVCPUs: 1,
            defaultMemoryBytes: 128 << 20, usableCPUs: 2, allocatable: host, overhead: overhead)
        #expect(s.share.cpuPPM == Share.ppm(1 / 1.9))
        let whole = try VMSizing.size(
            cpuRatio: nil, memoryRatio: nil, vcpus: 2, memoryBytes: nil, defaultVCPUs: 1,
            defaultMemoryBytes: 128 << 20, usableCPUs: 2, allocatable: host, overhead: overhead)
        #expect(whole.share.cpuPPM == Share.whole, "2 vCPUs on 1.9 allocatable CPUs hold all of it")
        let expected = Double((256 << 20) + s.overheadBytes) / Double(22 << 30)
        #expect(s.share.memoryPPM == Share.ppm(expected))
        #expect(throws: AllocatorError.self) {
            try VMSizing.size(
                cpuRatio: nil, memoryRatio: nil, vcpus: 3, memoryBytes: nil, defaultVCPUs: 1,
                defaultMemoryBytes: 128 << 20, usableCPUs: 2, allocatable: host, overhead: overhead)
        }
        do {
            _ = try VMSizing.size(
                cpuRatio: nil, memoryRatio: 0.0001, vcpus: nil, memoryBytes: nil, defaultVCPUs: 1,
                defaultMemoryBytes: 128 << 20, usableCPUs: 2, allocatable: host, overhead: overhead)
            Issue.record("a share too small for the overhead must be refused")
        } catch {
            #expect("\(error)".contains("16 MiB"))
        }
    }

    @Test("the default reserve keeps CPU and memory back within bounds")
    func defaultReserve() {
        let r = HostReserve.defaultReserve(for: HostCapacity(cpus: 2, memoryBytes: 24 << 30))
        #expect(r.cpus == 0.1)
        #expect(r.memoryBytes == 2 << 30)
        let small = HostReserve.defaultReserve(for: HostCapacity(cpus: 64, memoryBytes: 1 << 30))
        #expect(small.cpus == 3.2)
        #expect(small.memoryBytes == 256 << 20)
        #expect(Allocatable(capacity: HostCapacity(cpus: 2, memoryBytes: 24 << 30), reserve: r).cpus == 1.9)
    }
}
