import LinuxSys
import OCI

/// The one mapping from a share to kernel knobs, for both workload kinds (the VMM process's
/// cgroup gets the same knobs as a container with that share, so a VM's host footprint stays
/// inside it).
///
/// - `cpu.max` = ratio × allocatable CPUs × period (cgroup-v2.rst "cpu.max"; v1
///   `cpu.cfs_quota_us`/`cpu.cfs_period_us`), period 100 000 µs, quota at least 1 000 µs
///   (the kernel's minimum, Documentation/scheduler/sched-bwc.rst);
/// - `cpu.weight` = ratio × 10 000, at least 1 (proportional to the ratio; v1 `cpu.shares`
///   through the runtimes' weight↔shares conversion, which `sharesForWeight` supplies);
/// - `memory.max` = ratio × allocatable memory, rounded down to a 4 KiB page (v1
///   `memory.limit_in_bytes`).
public enum Knobs {
    /// CFS period, µs.
    public static let period: UInt64 = 100_000
    /// Smallest CFS quota the kernel accepts, µs.
    public static let minimumQuota: Int64 = 1_000

    /// `cpu.max` quota in µs per `period` for a CPU ratio.
    public static func cpuQuota(ratio: Double, allocatable: Allocatable) -> Int64 {
        max(minimumQuota, Int64((ratio * allocatable.cpus * Double(period)).rounded()))
    }

    /// `cpu.weight` (1…10 000) for a CPU ratio.
    public static func cpuWeight(ratio: Double) -> UInt64 {
        UInt64((ratio * 10_000).rounded()).clamped(1, 10_000)
    }

    /// `memory.max` in bytes for a memory ratio (page-aligned down, at least one page).
    public static func memoryLimit(ratio: Double, allocatable: Allocatable) -> Int64 {
        let bytes = UInt64((ratio * Double(allocatable.memoryBytes)).rounded(.down))
        return Int64(max(4096, bytes & ~4095))
    }

    /// Writes the share's knobs into `resources` (other fields kept).
    /// - Parameter sharesForWeight: v1 `cpu.shares` for a v2 weight (the conversion `--cpu-weight` uses).
    public static func apply(
        _ share: Share, allocatable: Allocatable, to resources: Spec.Resources?,
        sharesForWeight: (UInt64) -> UInt64
    ) -> Spec.Resources {
        var r = resources ?? Spec.Resources()
        if share.cpuPPM > 0 {
            var cpu = r.cpu ?? Spec.Resources.CPU()
            cpu.quota = cpuQuota(ratio: share.cpuRatio, allocatable: allocatable)
            cpu.period = period
            cpu.shares = sharesForWeight(cpuWeight(ratio: share.cpuRatio))
            r.cpu = cpu
        }
        if share.memoryPPM > 0 {
            var mem = r.memory ?? Spec.Resources.Memory()
            mem.limit = memoryLimit(ratio: share.memoryRatio, allocatable: allocatable)
            r.memory = mem
        }
        return r
    }
}

/// How a VM is sized from its share, and the share its explicit size occupies.
///
/// The share is the VM's whole host footprint: guest RAM plus the VMM's own overhead
/// (../shared/reference/allocator.md §2, lesson 9: reserve guest RAM + VMM overhead in the
/// cgroup that enforces it).
public struct VMSizing: Sendable, Equatable {
    /// vCPU count.
    public var vcpus: Int
    /// Guest RAM, bytes (a multiple of 2 MiB).
    public var guestMemoryBytes: UInt64
    /// The share it holds.
    public var share: Share
    /// The VMM overhead the memory share includes, bytes.
    public var overheadBytes: UInt64

    /// Sizes a VM.
    /// - Parameters:
    ///   - cpuRatio, memoryRatio: the asked ratios (nil: from `vcpus` / `memoryBytes`, or none).
    ///   - vcpus, memoryBytes: explicit `--cpus` / `--memory` (guest RAM), nil when not given;
    ///     n vCPUs occupy n / allocatable CPUs (at most the whole share; n above `usableCPUs` is
    ///     refused), guest RAM plus overhead its share of the allocatable memory — also for the
    ///     default RAM size: a VM's memory is never best-effort.
    ///   - overhead: the VMM overhead for a given guest RAM and vCPU count, bytes (`VMMOverhead`).
    /// - Throws: `AllocatorError.tooLarge` when the explicit size exceeds the allocatable host,
    ///   or the memory share cannot hold the VMM's overhead plus 16 MiB of guest RAM.
    public static func size(
        cpuRatio: Double?, memoryRatio: Double?, vcpus explicitCPUs: Int?, memoryBytes explicitMemory: UInt64?,
        defaultVCPUs: Int, defaultMemoryBytes: UInt64, usableCPUs: Double, allocatable: Allocatable,
        overhead: (_ guestBytes: UInt64, _ vcpus: Int) -> UInt64
    ) throws(AllocatorError) -> VMSizing {
        var share = Share.none
        let vcpus: Int
        if let n = explicitCPUs {
            vcpus = n
            if let cpuRatio {
                share.cpuPPM = Share.ppm(cpuRatio)
            } else {
                // n vCPUs want n CPUs of the allocatable total; more than it has is the whole share.
                guard Double(n) <= usableCPUs else {
                    throw .tooLarge(
                        "a VM with \(n) vCPUs would hold more than the host's \(Int(usableCPUs)) usable CPUs; use at most \(Int(usableCPUs)) --cpus, or give --cpu-ratio to run them in a smaller share"
                    )
                }
                share.cpuPPM = Share.ppm(min(1, Double(n) / max(allocatable.cpus, 1e-9)))
            }
        } else if let cpuRatio {
            vcpus = max(1, Int((cpuRatio * allocatable.cpus - 1e-9).rounded(.up)))
            share.cpuPPM = Share.ppm(cpuRatio)
        } else {
            vcpus = defaultVCPUs
        }
        var guest: UInt64
        var ovh: UInt64
        if let bytes = explicitMemory {
            guest = bytes
            ovh = overhead(guest, vcpus)
            if let memoryRatio {
                share.memoryPPM = Share.ppm(memoryRatio)
            } else {
                let ratio = Double(guest + ovh) / max(Double(allocatable.memoryBytes), 1)
                guard ratio <= 1 else {
                    throw .tooLarge(
                        "a VM with \(ByteCount.binary(guest)) of RAM needs \(ByteCount.binary(guest + ovh)) with the VMM's overhead, more than the \(ByteCount.binary(allocatable.memoryBytes)) allocatable; use less --memory"
                    )
                }
                share.memoryPPM = Share.ppm(ratio)
            }
        } else if let memoryRatio {
            let total = UInt64(Knobs.memoryLimit(ratio: memoryRatio, allocatable: allocatable))
            // Guest RAM is what the share leaves after the overhead, which itself grows with guest RAM:
            // two rounds settle it (the per-byte term is tiny), then round down to 2 MiB.
            ovh = overhead(total, vcpus)
            guest = total > ovh ? total - ovh : 0
            ovh = overhead(guest, vcpus)
            guest = total > ovh ? (total - ovh) & ~((2 << 20) - 1) : 0
            guard guest >= 16 << 20 else {
                throw .tooLarge(
                    "--memory-ratio \(memoryRatio) gives \(ByteCount.binary(total)), which leaves less than 16 MiB of guest RAM after the VMM's \(ByteCount.binary(ovh)) overhead; give a larger ratio"
                )
            }
            share.memoryPPM = Share.ppm(memoryRatio)
        } else {
            // A VM's RAM is never best-effort: the default size is reserved like an explicit one.
            guest = defaultMemoryBytes
            ovh = overhead(guest, vcpus)
            share.memoryPPM = Share.ppm(min(1, Double(guest + ovh) / max(Double(allocatable.memoryBytes), 1)))
        }
        return VMSizing(vcpus: vcpus, guestMemoryBytes: guest, share: share, overheadBytes: ovh)
    }
}
