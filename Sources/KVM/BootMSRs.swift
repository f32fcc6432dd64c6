/// The MSRs a vCPU gets at boot: Firecracker's `arch/x86_64/msr.rs: create_boot_msr_entries`, the same
/// list as kvmtool's `kvm_cpu__setup_msrs` plus MTRRdefType (microvm.md §3.2 step 8).
///
/// SYSENTER_CS/ESP/EIP, STAR, LSTAR, CSTAR, KERNEL_GS_BASE, SYSCALL_MASK and TSC are 0;
/// IA32_MISC_ENABLE = fast strings (bit 0); IA32_MTRR_DEF_TYPE = enabled (bit 11) | write-back (6).
/// Indices from the Intel SDM Vol. 4, Table 2-2. Apply after `VCPU.setCPUID`: KVM decides which
/// MSRs exist from the guest CPUID.
public enum BootMSRs {
    public static let sysenterCS: UInt32 = 0x174, sysenterESP: UInt32 = 0x175, sysenterEIP: UInt32 = 0x176
    public static let star: UInt32 = 0xc000_0081, lstar: UInt32 = 0xc000_0082, cstar: UInt32 = 0xc000_0083
    public static let syscallMask: UInt32 = 0xc000_0084, kernelGSBase: UInt32 = 0xc000_0102
    public static let tsc: UInt32 = 0x10, miscEnable: UInt32 = 0x1a0, mtrrDefType: UInt32 = 0x2ff

    /// IA32_MISC_ENABLE bit 0: fast-string operations.
    public static let miscEnableFastString: UInt64 = 1 << 0
    /// IA32_MTRR_DEF_TYPE: MTRRs enabled (bit 11), default type write-back (6).
    public static let mtrrDefTypeWriteBack: UInt64 = (1 << 11) | 6

    /// `(index, value)` pairs in Firecracker's order.
    public static let entries: [(index: UInt32, value: UInt64)] = [
        (sysenterCS, 0), (sysenterESP, 0), (sysenterEIP, 0),
        (star, 0), (cstar, 0), (kernelGSBase, 0), (syscallMask, 0), (lstar, 0),
        (tsc, 0),
        (miscEnable, miscEnableFastString),
        (mtrrDefType, mtrrDefTypeWriteBack),
    ]

    /// `KVM_SET_MSRS` with `entries` on `vcpu`.
    /// - Throws: `KVMError.layout` naming the first MSR KVM refused, `KVMError.system` if the ioctl fails.
    public static func apply(to vcpu: VCPU) throws { try vcpu.setMSRs(entries) }
}
