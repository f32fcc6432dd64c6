import LinuxSys

/// The VMM's own host memory beside guest RAM, which a VM's memory share must hold.
///
/// Measured, not guessed: the baseline is this process's resident set (`VmRSS` of
/// /proc/self/status) read in the VMM before guest memory is mapped: the skiff binary's pages,
/// libraries, heap, the state database. What grows after that is bounded per part and added:
/// - each vCPU: its thread stack as touched (≤ 256 KiB measured), `kvm_run` (one page) and the
///   in-kernel vCPU state charged to the cgroup (KVM allocates with GFP_KERNEL_ACCOUNT): 1 MiB;
/// - page tables that map guest RAM in the host and KVM's shadow/EPT tables: 8 bytes per 4 KiB
///   page each, rounded up to 1/256 of guest RAM;
/// - device buffers, serial/log buffers and the kernel/initrd file pages read at boot: 4 MiB.
/// `scripts/bench-vm` and the allocator tests compare this with `memory.max_usage_in_bytes` /
/// `memory.peak` of a VM that touched all its RAM.
public enum VMMOverhead {
    public static let perVCPU: UInt64 = 1 << 20
    public static let fixed: UInt64 = 4 << 20

    /// Resident set of this process, bytes (0 if unreadable).
    public static func residentBytes() -> UInt64 {
        guard let status = try? Files.readString("/proc/self/status"),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return 0 }
        return (line.split(separator: " ").compactMap { UInt64($0) }.first ?? 0) * 1024
    }

    /// Overhead for a VM with `guestBytes` of RAM and `vcpus` vCPUs, given the measured baseline.
    public static func estimate(baseline: UInt64, guestBytes: UInt64, vcpus: Int) -> UInt64 {
        let tables = (guestBytes / 256 + 4095) & ~4095
        return baseline + UInt64(vcpus) * perVCPU + tables + fixed
    }
}
