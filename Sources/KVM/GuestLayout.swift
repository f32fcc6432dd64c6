/// Fixed guest physical addresses of the boot structures, in one place (microvm.md §3.1, which
/// follows Firecracker's `arch/x86_64/layout.rs`).
///
/// | GPA | use |
/// |---|---|
/// | 0x0500 | GDT (`GDT.standard`: 8 slots, 64 bytes) |
/// | 0x0540 | IDT (empty: limit 7, so any exception escalates to a triple fault) |
/// | 0x7000 | zero page (`struct boot_params`) |
/// | 0x8ff0 | initial RSP |
/// | 0x9000 / 0xa000 / 0xb000… | PML4 / PDPT / page directories (identity map, 2 MiB pages) |
/// | 0x20000 | kernel command line |
/// | 0x9fc00 | MP table (`MPTable`), in the e820-reserved `[0x9fc00, 1 MiB)` |
/// | 0xa0000 / 0xe0000 | ACPI tables, 8 KiB / RSDP (`ACPITables`), reserved likewise |
/// | 0x100000 | kernel or test-guest image |
/// | 0xd0000000 + 4 KiB × n | virtio-mmio device n (`VirtioMMIODevices`), GSI 5 + n |
/// | 0xfffbc000 / 0xfffbd000 | KVM identity-map page / TSS (3 pages) |
///
/// Firecracker puts its 4-entry GDT at 0x500 and the IDT at 0x520; this GDT has user segments and a
/// 16-byte TSS descriptor as well, so the IDT moves to 0x540.
public enum GuestLayout {
    /// Global descriptor table.
    public static let gdtAddress: UInt64 = 0x500
    /// Interrupt descriptor table (8 zero bytes).
    public static let idtAddress: UInt64 = 0x540
    /// Zero page (`struct boot_params`, 4 KiB; Documentation/arch/x86/zero-page.rst).
    public static let zeroPageAddress: UInt64 = 0x7000
    /// Initial stack pointer for the boot CPU.
    public static let bootStackPointer: UInt64 = 0x8ff0
    /// Top-level page table (CR3).
    public static let pml4Address: UInt64 = 0x9000
    /// Page-directory-pointer table for the first 512 GiB.
    public static let pdptAddress: UInt64 = 0xa000
    /// First page directory; directory `i` (1 GiB each) sits at `pdAddress + i * 4096`.
    public static let pdAddress: UInt64 = 0xb000
    /// Kernel command line (Firecracker limit 2048 bytes including NUL).
    public static let cmdlineAddress: UInt64 = 0x20000
    /// Where the kernel (or a test guest) is loaded.
    public static let kernelAddress: UInt64 = 0x100000
    /// First virtio-mmio window, in the 32-bit MMIO hole (Firecracker's `MMIO_MEM_START`); device n sits
    /// at `virtioMMIOBase + n * VirtioMMIOTransport.windowSize`.
    public static let virtioMMIOBase: UInt64 = 0xd000_0000
    /// GSI of virtio-mmio device 0; device n raises GSI `virtioFirstGSI + n`, up to 23 (the IOAPIC's last
    /// pin). 0–4 are the PIT, keyboard, cascade, COM2 and COM1 (Firecracker's `IRQ_BASE`).
    public static let virtioFirstGSI: UInt32 = 5
    /// `KVM_SET_TSS_ADDR` (three pages; Firecracker's and kvmtool's value).
    public static let tssAddress: UInt64 = 0xfffb_d000
    /// `KVM_SET_IDENTITY_MAP_ADDR` (one page, just below the TSS; KVM's default).
    public static let identityMapAddress: UInt64 = 0xfffb_c000
}
