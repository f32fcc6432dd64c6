import CKVM

/// Turns the host's `KVM_GET_SUPPORTED_CPUID` table into one vCPU's `KVM_SET_CPUID2` table for a VM
/// of `vcpuCount` vCPUs, each a one-thread core in one package (microvm.md §3.2 step 8, §5 bugs 1, 2, 4;
/// Firecracker `docs/cpu_templates/cpuid-normalization.md`, kvmtool `x86/cpuid.c`).
///
/// For vCPU `index` (its APIC id and x2APIC id are `index`):
/// - leaf 1: EBX[31:24] = APIC id, EBX[23:16] = `vcpuCount`, EBX[15:8] = 8 (CLFLUSH line 64 bytes);
///   ECX[31] hypervisor present and ECX[24] TSC_DEADLINE set; EDX[28] HTT set iff `vcpuCount > 1`.
/// - leaf 4 (each cache subleaf): EAX[31:26] = `vcpuCount - 1` cores per package; EAX[25:14] = threads
///   sharing the cache − 1: 0 for L1/L2, `vcpuCount - 1` for L3 (cloud-hypervisor PR #2043).
/// - leaves 0xB and 0x1F (when the max basic leaf reaches them): subleaf 0 SMT level (shift 0, 1
///   thread, type 1), subleaf 1 core level (shift `ceil(log2(vcpuCount))`, `vcpuCount` threads, type 2),
///   subleaf 2 invalid (type 0); EDX = x2APIC id in every subleaf.
/// - leaf 6: ECX[3] (energy-performance bias) and EAX[1] (turbo) cleared; leaf 0xA (PMU) zeroed.
/// - AMD leaves, when present: 0x80000008 ECX[7:0] = `vcpuCount - 1` (NC), ECX[15:12] = core-id bits;
///   0x8000001E EAX = extended APIC id, EBX = core id (1 thread per core), ECX = node 0.
/// - 0x40000000 = "KVMKVMKVM\0\0\0" with EAX = highest hypervisor leaf (at least 0x40000001);
///   0x40000001 keeps KVM's feature bits as supported (zero if the host lists none), so Linux uses
///   kvmclock (microvm.md §5 bug 13).
public struct CPUIDPolicy: Sendable {
    /// vCPUs in the VM.
    public let vcpuCount: Int

    /// Most vCPUs: APIC ids are 8 bits in leaf 1 and the MP table, and the IOAPIC takes id `vcpuCount`.
    public static let maxVCPUs = 254

    /// Leaf numbers this policy writes.
    public static let hypervisorSignatureLeaf: UInt32 = 0x4000_0000, hypervisorFeaturesLeaf: UInt32 = 0x4000_0001
    /// "KVMKVMKVM\0\0\0" as EBX, ECX, EDX.
    public static let kvmSignature: (ebx: UInt32, ecx: UInt32, edx: UInt32) = (0x4b4d_564b, 0x564b_4d56, 0x4d)

    /// `KVM_CPUID_FLAG_SIGNIFCANT_INDEX` (the spelling is the kernel's): the entry depends on ECX.
    static let significantIndex: UInt32 = 1

    /// - Throws: `KVMError.layout` unless `vcpuCount` is in 1…254.
    public init(vcpuCount: Int) throws {
        guard (1...Self.maxVCPUs).contains(vcpuCount) else {
            throw KVMError.layout("\(vcpuCount) vCPUs: supported range is 1…\(Self.maxVCPUs)")
        }
        self.vcpuCount = vcpuCount
    }

    /// Bits needed to number `vcpuCount` cores: the core level's x2APIC id shift.
    public var coreShift: UInt32 {
        var shift: UInt32 = 0
        while (1 << shift) < vcpuCount { shift += 1 }
        return shift
    }

    /// The table for vCPU `index` (0-based; also its APIC id), derived from `supported`.
    /// - Throws: `KVMError.layout` if `index` is not below `vcpuCount`.
    public func entries(forVCPU index: Int, supported: [CPUIDEntry]) throws -> [CPUIDEntry] {
        guard index >= 0, index < vcpuCount else {
            throw KVMError.layout("vCPU index \(index) outside 0..<\(vcpuCount)")
        }
        let apic = UInt32(index)
        let count = UInt32(vcpuCount)
        let maxBasic = supported.first { $0.function == 0 }?.eax ?? 0
        var out: [CPUIDEntry] = []
        for var e in supported {
            switch e.function {
            case 1:
                e.ebx = (e.ebx & 0xff) | (apic << 24) | (count << 16) | (8 << 8)
                e.ecx |= (1 << 31) | (1 << 24)
                if count > 1 { e.edx |= 1 << 28 } else { e.edx &= ~(1 << 28) }
            case 4:
                let level = (e.eax >> 5) & 7
                let sharing: UInt32 = level >= 3 ? count - 1 : 0
                e.eax = (e.eax & 0x3fff) | (min(sharing, 0xfff) << 14) | (min(count - 1, 63) << 26)
            case 6:
                e.eax &= ~(1 << 1)
                e.ecx &= ~(1 << 3)
            case 0xa:
                e.eax = 0
                e.ebx = 0
                e.ecx = 0
                e.edx = 0
            case 0xb, 0x1f:
                continue  // replaced below
            case 0x8000_0008:
                e.ecx = (e.ecx & ~0xf0ff) | (coreShift << 12) | (count - 1)
            case 0x8000_001e:
                e.eax = apic
                e.ebx = (e.ebx & ~0xffff) | apic  // ThreadsPerCore − 1 = 0, ComputeUnitId = core id
                e.ecx = e.ecx & ~0x7ff  // node 0, one node per package
            case Self.hypervisorSignatureLeaf, Self.hypervisorFeaturesLeaf:
                continue  // replaced below
            default:
                break
            }
            out.append(e)
        }
        for leaf: UInt32 in [0xb, 0x1f]
        where maxBasic >= leaf && (leaf == 0xb || supported.contains { $0.function == leaf }) {
            out.append(topology(leaf: leaf, subleaf: 0, shift: 0, threads: 1, type: 1, apic: apic))
            out.append(topology(leaf: leaf, subleaf: 1, shift: coreShift, threads: count, type: 2, apic: apic))
            out.append(topology(leaf: leaf, subleaf: 2, shift: 0, threads: 0, type: 0, apic: apic))
        }
        let hypervisorLeaves = supported.filter { $0.function & 0xffff_ff00 == Self.hypervisorSignatureLeaf }
        let maxHypervisor = max(hypervisorLeaves.map(\.function).max() ?? 0, Self.hypervisorFeaturesLeaf)
        var signature = CPUIDEntry()
        signature.function = Self.hypervisorSignatureLeaf
        signature.eax = maxHypervisor
        (signature.ebx, signature.ecx, signature.edx) = Self.kvmSignature
        out.append(signature)
        var features = supported.first { $0.function == Self.hypervisorFeaturesLeaf } ?? CPUIDEntry()
        features.function = Self.hypervisorFeaturesLeaf
        out.append(features)
        return out
    }

    func topology(leaf: UInt32, subleaf: UInt32, shift: UInt32, threads: UInt32, type: UInt32, apic: UInt32)
        -> CPUIDEntry
    {
        var e = CPUIDEntry()
        e.function = leaf
        e.index = subleaf
        e.flags = Self.significantIndex
        e.eax = shift
        e.ebx = threads
        e.ecx = (type << 8) | subleaf
        e.edx = apic
        return e
    }
}
