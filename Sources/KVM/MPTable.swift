/// An Intel MultiProcessor Specification 1.4 table, so a kernel with `CONFIG_X86_MPPARSE` finds every
/// vCPU and the IOAPIC without ACPI (microvm.md §3.6; Firecracker `arch/x86_64/mptable.rs`).
///
/// Layout from `address` (MP spec 1.4 §4; Linux `arch/x86/include/asm/mpspec_def.h`):
///
/// | offset | bytes | structure |
/// |---|---|---|
/// | 0 | 16 | floating pointer `_MP_`: config table address, length 1 (×16 bytes), revision 4, checksum |
/// | 16 | 44 | config table header `PCMP`: base length, revision 4, checksum, OEM "SKIFF", LAPIC 0xfee00000 |
/// | 60 | 20 × n | processor entries: APIC id i, version 0x14, enabled, BSP flag on vCPU 0 |
/// | | 8 | bus entry: id 0, "ISA   " |
/// | | 8 | IOAPIC entry: id n, version 0x11, enabled, 0xfec00000 |
/// | | 8 × pins | I/O interrupt entries: INT, ISA IRQ i → IOAPIC pin i (identity, KVM's default GSI routing) |
/// | | 16 | local interrupt entries: ExtINT → LINT0 of APIC 0, NMI → LINT1 of all APICs (0xff) |
///
/// Each checksum makes the bytes of its structure sum to 0 mod 256. The default `address`, 0x9fc00,
/// is the last KiB below 640 KiB that Linux scans for `_MP_` (`smp_scan_config`) and the start of
/// the e820-reserved `[0x9fc00, 1 MiB)` (microvm.md §3.1).
public struct MPTable: Sendable {
    /// Where Firecracker and this monitor put the table (`MPTABLE_START`).
    public static let defaultAddress: UInt64 = 0x9fc00
    /// End of the e820-reserved range the table must stay in.
    public static let reservedEnd: UInt64 = 0x10_0000
    /// Local APIC and IOAPIC base addresses (in-kernel irqchip, microvm.md §3.1).
    public static let localAPICAddress: UInt32 = 0xfee0_0000, ioAPICAddress: UInt32 = 0xfec0_0000
    /// Entry types (MP spec Table 4-3) and sizes.
    public static let processorType: UInt8 = 0, busType: UInt8 = 1, ioAPICType: UInt8 = 2
    public static let ioInterruptType: UInt8 = 3, localInterruptType: UInt8 = 4
    /// Interrupt types (MP spec Table 4-10).
    public static let interruptINT: UInt8 = 0, interruptNMI: UInt8 = 1, interruptExtINT: UInt8 = 3
    /// Processor entry flags: enabled (bit 0), bootstrap processor (bit 1).
    public static let cpuEnabled: UInt8 = 1, cpuBootstrap: UInt8 = 2
    /// Local APIC version (integrated APIC) and IOAPIC version, Firecracker's values.
    public static let localAPICVersion: UInt8 = 0x14, ioAPICVersion: UInt8 = 0x11
    /// Floating-pointer and header sizes.
    public static let floatingPointerSize = 16, headerSize = 44, processorSize = 20, entrySize = 8

    /// vCPUs (processor entries, APIC ids 0..<vcpuCount); the IOAPIC's id is `vcpuCount`.
    public let vcpuCount: Int
    /// IOAPIC pins with an I/O interrupt entry: 24 as Firecracker (ISA IRQs 0–15 plus 16–23 for
    /// virtio-mmio devices), or 16 for ISA only.
    public let interruptPins: Int

    /// - Throws: `KVMError.layout` unless `vcpuCount` is in 1…254 and `interruptPins` in 1…24.
    public init(vcpuCount: Int, interruptPins: Int = 24) throws {
        guard (1...CPUIDPolicy.maxVCPUs).contains(vcpuCount) else {
            throw KVMError.layout("MP table for \(vcpuCount) vCPUs: supported range is 1…\(CPUIDPolicy.maxVCPUs)")
        }
        guard (1...24).contains(interruptPins) else {
            throw KVMError.layout("MP table with \(interruptPins) IOAPIC pins: the in-kernel IOAPIC has 1…24")
        }
        self.vcpuCount = vcpuCount
        self.interruptPins = interruptPins
    }

    /// Entries in the config table: processors, bus, IOAPIC, I/O and local interrupts.
    public var entryCount: Int { vcpuCount + 2 + interruptPins + 2 }
    /// Bytes of the config table (header and entries): the header's base table length.
    public var configTableLength: Int {
        Self.headerSize + vcpuCount * Self.processorSize + (2 + interruptPins + 2) * Self.entrySize
    }
    /// Bytes in all, floating pointer included.
    public var size: Int { Self.floatingPointerSize + configTableLength }

    /// The table as placed at `address` (the floating pointer holds the config table's address).
    public func bytes(at address: UInt64 = defaultAddress) -> [UInt8] {
        let ioAPICID = UInt8(vcpuCount)
        var table: [UInt8] = []
        func u16(_ v: UInt16) { table += [UInt8(v & 0xff), UInt8(v >> 8)] }
        func u32(_ v: UInt32) {
            for s in stride(from: 0, to: 32, by: 8) { table.append(UInt8((v >> UInt32(s)) & 0xff)) }
        }
        func ascii(_ s: String, _ n: Int) {
            table += Array(s.utf8.prefix(n)) + [UInt8](repeating: 0x20, count: max(0, n - s.utf8.count))
        }

        ascii("PCMP", 4)
        u16(UInt16(configTableLength))
        table += [4, 0]  // revision 1.4, checksum (below)
        ascii("SKIFF", 8)
        ascii("MICROVM", 12)
        u32(0)  // OEM table pointer
        u16(0)  // OEM table size
        u16(UInt16(entryCount))
        u32(Self.localAPICAddress)
        u16(0)  // extended table length
        table += [0, 0]  // extended checksum, reserved
        for i in 0..<vcpuCount {
            table += [Self.processorType, UInt8(i), Self.localAPICVersion]
            table.append(Self.cpuEnabled | (i == 0 ? Self.cpuBootstrap : 0))
            u32(0x600)  // CPU signature: family 6 (Firecracker's CPU_STEPPING)
            u32(0x201)  // feature flags: APIC (bit 9) | FPU (bit 0)
            table += [UInt8](repeating: 0, count: 8)
        }
        table += [Self.busType, 0]
        ascii("ISA", 6)
        table += [Self.ioAPICType, ioAPICID, Self.ioAPICVersion, 1]
        u32(Self.ioAPICAddress)
        for pin in 0..<interruptPins {
            table += [Self.ioInterruptType, Self.interruptINT, 0, 0, 0, UInt8(pin), ioAPICID, UInt8(pin)]
        }
        table += [Self.localInterruptType, Self.interruptExtINT, 0, 0, 0, 0, 0, 0]
        table += [Self.localInterruptType, Self.interruptNMI, 0, 0, 0, 0, 0xff, 1]
        table[7] = Self.checksum(table)

        let configAddress = UInt32(truncatingIfNeeded: address + UInt64(Self.floatingPointerSize))
        var pointer: [UInt8] = Array("_MP_".utf8)
        pointer += (0..<4).map { UInt8((configAddress >> UInt32($0 * 8)) & 0xff) }
        pointer += [1, 4, 0, 0, 0, 0, 0, 0]  // length 1 paragraph, revision 1.4, checksum, features 1–5
        pointer[10] = Self.checksum(pointer)
        return pointer + table
    }

    /// Writes `bytes(at:)` into guest memory.
    /// - Throws: `KVMError.layout` if the table would leave `[address, 0x100000)`, `.outOfBounds` from memory.
    public func write(to memory: GuestMemory, at address: UInt64 = defaultAddress) throws {
        guard address + UInt64(size) <= Self.reservedEnd else {
            throw KVMError.layout(
                "MP table of \(size) bytes at 0x\(hex(address)) runs past 0x\(hex(Self.reservedEnd)); use fewer vCPUs")
        }
        try memory.write(bytes(at: address), at: address)
    }

    /// The byte that makes `bytes` sum to 0 mod 256 (the checksum byte itself counted as 0).
    static func checksum(_ bytes: [UInt8]) -> UInt8 {
        0 &- bytes.reduce(0, &+)
    }
}
