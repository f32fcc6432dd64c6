/// Starts a vCPU directly in 64-bit mode at CPL 0, with paging on and an identity map, the way
/// Firecracker enters a vmlinux (microvm.md §3.3; boot.rst "64-bit Boot Protocol").
///
/// `setUp` writes the GDT (`GDT.standard`), an empty IDT and the identity-map page tables into guest
/// memory, then sets:
/// - CS = `__BOOT_CS` (0x10), DS/ES/FS/GS/SS = `__BOOT_DS` (0x18), TR = TSS (0x30)
/// - CR3 = PML4 at 0x9000; CR4 = PAE | OSFXSR | OSXMMEXCPT; CR0 = PE | MP | ET | NE | WP | PG;
///   EFER = LME | LMA (Intel SDM Vol. 3A §2.5, §9.8.5)
/// - RIP = `entry`, RSP = `stack`, RSI = the zero page, RFLAGS = 0x2 | `rflags` (interrupts off)
public enum LongMode {
    /// CR0 bits (SDM Vol. 3A §2.5).
    public static let cr0PE: UInt64 = 1 << 0, cr0MP: UInt64 = 1 << 1, cr0ET: UInt64 = 1 << 4
    public static let cr0NE: UInt64 = 1 << 5, cr0WP: UInt64 = 1 << 16, cr0PG: UInt64 = 1 << 31
    /// CR4 bits.
    public static let cr4PAE: UInt64 = 1 << 5, cr4OSFXSR: UInt64 = 1 << 9, cr4OSXMMEXCPT: UInt64 = 1 << 10
    /// EFER bits (MSR 0xc0000080).
    public static let eferLME: UInt64 = 1 << 8, eferLMA: UInt64 = 1 << 10
    /// RFLAGS: bit 1 is always set; IOPL 3 (bits 12–13) lets CPL 3 use `in`/`out`.
    public static let rflagsReserved: UInt64 = 1 << 1, rflagsIOPL3: UInt64 = 3 << 12

    /// Writes the boot structures and sets `vcpu`'s registers (see the type's documentation).
    /// - Parameters:
    ///   - entry: guest physical (= virtual) address of the first instruction.
    ///   - stack: initial RSP.
    ///   - gigabytes: how much of the address space the identity map covers (1…16 GiB).
    ///   - userAccessible: set U/S in the page tables so CPL 3 code can use the map.
    ///   - rflags: extra RFLAGS bits (e.g. `rflagsIOPL3`).
    /// - Throws: `KVMError` from guest memory or the register ioctls.
    public static func setUp(
        _ vcpu: VCPU, entry: UInt64, stack: UInt64 = GuestLayout.bootStackPointer, gigabytes: Int = 1,
        userAccessible: Bool = false, rflags: UInt64 = 0
    ) throws {
        let memory = vcpu.vm.memory
        for (i, d) in GDT.standard.enumerated() { try memory.write(d, at: GuestLayout.gdtAddress + UInt64(i * 8)) }
        try memory.write(UInt64(0), at: GuestLayout.idtAddress)
        try IdentityMap.write(to: memory, gigabytes: gigabytes, userAccessible: userAccessible)

        var s = try vcpu.specialRegisters()
        let code = SegmentDescriptor.kernelCode64.segment(selector: GDT.kernelCodeSelector)
        let data = SegmentDescriptor.kernelData.segment(selector: GDT.kernelDataSelector)
        s.cs = code
        s.ds = data
        s.es = data
        s.fs = data
        s.gs = data
        s.ss = data
        s.tr = SegmentDescriptor.tss.segment(selector: GDT.tssSelector)
        s.gdt.base = GuestLayout.gdtAddress
        s.gdt.limit = GDT.limit
        s.idt.base = GuestLayout.idtAddress
        s.idt.limit = 7
        s.cr3 = GuestLayout.pml4Address
        s.cr4 = cr4PAE | cr4OSFXSR | cr4OSXMMEXCPT
        s.cr0 = cr0PE | cr0MP | cr0ET | cr0NE | cr0WP | cr0PG
        s.efer = eferLME | eferLMA
        try vcpu.setSpecialRegisters(s)

        var r = Registers()
        r.rip = entry
        r.rsp = stack
        r.rbp = stack
        r.rsi = GuestLayout.zeroPageAddress
        r.rflags = rflagsReserved | rflags
        try vcpu.setRegisters(r)
    }
}
