/// The machine around a Linux kernel: firmware tables in low memory and vCPUs set up the way
/// Firecracker's `configure_system` and `Vcpu::configure` leave them (microvm.md §3.2 steps 7–8).
///
/// Order for a VMM: `VirtualMachine.createIRQChip()` (and PIT2), `writeFirmwareTables` (its RSDP
/// address goes to `LinuxBoot.load(acpiRSDP:)`), `LinuxBoot.load`, then `createVCPUs`.
public enum LinuxPlatform {
    /// Writes the MP table at 0x9fc00 (kernels with `CONFIG_X86_MPPARSE`) and the ACPI tables
    /// (`ACPITables`; kernels without it, like Debian's cloud flavour) for `vcpuCount` vCPUs, with
    /// `mmioDevices` declared in the DSDT and `ACPIShutdown` as the sleep control register.
    /// Linux prefers the ACPI MADT when both exist. Returns the RSDP's address.
    /// - Throws: `KVMError.layout` for a vCPU count outside 1…254; `.outOfBounds` from memory.
    public static func writeFirmwareTables(
        vcpuCount: Int, mmioDevices: [ACPIDSDT.MMIODevice] = [], to memory: GuestMemory
    ) throws -> UInt64 {
        try MPTable(vcpuCount: vcpuCount).write(to: memory)
        return try ACPITables(vcpuCount: vcpuCount, dsdt: ACPIDSDT(devices: mmioDevices)).write(to: memory)
    }

    /// Creates vCPUs `0..<count` on `vm` (which needs its in-kernel irqchip): for each, CPUID from
    /// `CPUIDPolicy` (APIC id = index), `BootMSRs`, and `LocalAPIC.configureLINT`; vCPU 0 then starts
    /// in 64-bit mode at `boot`'s entry (`LongMode.setUp` with `boot.identityMapGigabytes`). The others
    /// stay in KVM's wait-for-SIPI state until the guest starts them with INIT/SIPI — unless the ELF
    /// carries `ElfKernelLoader.allVCPUsNote`: then every vCPU starts at the entry, rdi = its index.
    ///
    /// `userAccessible` and `rflags` go to `LongMode.setUp`: Skiff's own VMM makes the identity map
    /// user-accessible with IOPL 3 so CPL 3 test guests can use it; Linux replaces both at once.
    /// - Throws: `KVMError` from the ioctls.
    public static func createVCPUs(
        in vm: VirtualMachine, count: Int, boot: LinuxBoot, userAccessible: Bool = true,
        rflags: UInt64 = LongMode.rflagsIOPL3
    ) throws -> [VCPU] {
        let policy = try CPUIDPolicy(vcpuCount: count)
        let supported = try vm.system.supportedCPUID()
        return try (0..<count).map { i in
            let vcpu = try vm.createVCPU(id: UInt32(i))
            try vcpu.setCPUID(try policy.entries(forVCPU: i, supported: supported))
            try BootMSRs.apply(to: vcpu)
            try LocalAPIC.configureLINT(vcpu)
            if i == 0 || boot.kernel.startsAllVCPUs {
                try LongMode.setUp(
                    vcpu, entry: boot.kernel.entry, gigabytes: boot.identityMapGigabytes,
                    userAccessible: userAccessible, rflags: rflags)
            }
            if i > 0 && boot.kernel.startsAllVCPUs {
                var regs = try vcpu.registers()
                regs.rdi = UInt64(i)
                try vcpu.setRegisters(regs)
                // With the in-kernel LAPIC an AP waits for SIPI (KVM_MP_STATE_UNINITIALIZED); make it run.
                try vcpu.setMPState(0)
            }
            return vcpu
        }
    }
}
