/// The Multiple APIC Description Table, signature "APIC" (ACPI 6.5 §5.2.12), for the in-kernel
/// irqchip: one local APIC per vCPU, the IOAPIC, interrupt source overrides and the LINT1 NMI.
///
/// | offset | bytes | field |
/// |---|---|---|
/// | 0 | 36 | header, revision 6 |
/// | 36 | 4 | Local Interrupt Controller Address: 0xfee00000 |
/// | 40 | 4 | Flags: PCAT_COMPAT (bit 0): the in-kernel irqchip has the dual 8259 PICs |
/// | 44 | 8 × n | Processor Local APIC (type 0, §5.2.12.2): UID i, APIC id i, flags Enabled (bit 0) |
/// | | 12 | I/O APIC (type 1, §5.2.12.3): id `vcpuCount` (as in `MPTable`), 0xfec00000, GSI base 0 |
/// | | 10 × k | Interrupt Source Override (type 2, §5.2.12.5): bus 0 (ISA), source IRQ, GSI, MPS INTI flags |
/// | | 6 | Local APIC NMI (type 4, §5.2.12.7): UID 0xff (all processors), flags 0, LINT 1 |
///
/// Overrides: KVM's default GSI routing sends ISA IRQ n to IOAPIC pin n (the PIT on pin 0), and
/// Linux fills identity entries for every ISA IRQ without an override (`mp_config_acpi_legacy_irqs`),
/// so no override is needed. Firecracker writes none; the default here is cloud-hypervisor's one
/// identity override for COM1 (IRQ 4 → GSI 4, flags 0 = conforms to the ISA bus: edge, active
/// high). An IRQ 0 → GSI 2 override, as on PC hardware and in QEMU (which re-routes GSI 0 to pin 2),
/// would send the timer to a pin KVM's PIT never raises ("IO-APIC + timer doesn't work!", microvm.md §5).
public struct ACPIMADT: Sendable {
    /// One Interrupt Source Override structure (§5.2.12.5).
    public struct InterruptSourceOverride: Equatable, Sendable {
        /// ISA IRQ.
        public var source: UInt8
        /// Global system interrupt it is wired to.
        public var gsi: UInt32
        /// MPS INTI flags (§5.2.12.5): polarity bits 1:0, trigger mode bits 3:2; 0 = bus default.
        public var flags: UInt16

        public init(source: UInt8, gsi: UInt32, flags: UInt16 = 0) {
            self.source = source
            self.gsi = gsi
            self.flags = flags
        }
    }

    /// MADT revision (ACPI 6.5).
    public static let revision: UInt8 = 6
    /// Structure types and lengths.
    public static let localAPICType: UInt8 = 0, ioAPICType: UInt8 = 1, overrideType: UInt8 = 2
    public static let localAPICNMIType: UInt8 = 4
    public static let localAPICLength = 8, ioAPICLength = 12, overrideLength = 10, localAPICNMILength = 6
    /// MADT flags bit 0, PCAT_COMPAT; Local APIC flags bit 0, Enabled.
    public static let pcatCompat: UInt32 = 1, enabled: UInt32 = 1
    /// Processor UID meaning "all processors" in a Local APIC NMI structure.
    public static let allProcessors: UInt8 = 0xff
    /// cloud-hypervisor's override: COM1's IRQ 4 to GSI 4, bus default flags.
    public static let defaultOverrides = [InterruptSourceOverride(source: 4, gsi: 4)]

    /// Processor Local APIC structures: APIC ids and processor UIDs `0..<vcpuCount`.
    public let vcpuCount: Int
    /// Interrupt Source Override structures.
    public let overrides: [InterruptSourceOverride]

    /// - Throws: `KVMError.layout` unless `vcpuCount` is in 1…254 (8-bit APIC ids, and the IOAPIC
    ///   takes id `vcpuCount`).
    public init(vcpuCount: Int, overrides: [InterruptSourceOverride] = defaultOverrides) throws {
        guard (1...CPUIDPolicy.maxVCPUs).contains(vcpuCount) else {
            throw KVMError.layout("MADT for \(vcpuCount) vCPUs: supported range is 1…\(CPUIDPolicy.maxVCPUs)")
        }
        self.vcpuCount = vcpuCount
        self.overrides = overrides
    }

    /// The IOAPIC's id: `vcpuCount`, the first id after the local APICs (as `MPTable`).
    public var ioAPICID: UInt8 { UInt8(vcpuCount) }

    /// The whole table, checksum filled in.
    public func bytes() -> [UInt8] {
        var w = LittleEndianWriter()
        w.u32(MPTable.localAPICAddress)
        w.u32(Self.pcatCompat)
        for i in 0..<vcpuCount {
            w.u8(Self.localAPICType)
            w.u8(UInt8(Self.localAPICLength))
            w.u8(UInt8(i))  // ACPI processor UID
            w.u8(UInt8(i))  // APIC id
            w.u32(Self.enabled)
        }
        w.u8(Self.ioAPICType)
        w.u8(UInt8(Self.ioAPICLength))
        w.u8(ioAPICID)
        w.u8(0)
        w.u32(MPTable.ioAPICAddress)
        w.u32(0)  // GSI base
        for o in overrides {
            w.u8(Self.overrideType)
            w.u8(UInt8(Self.overrideLength))
            w.u8(0)  // bus: ISA
            w.u8(o.source)
            w.u32(o.gsi)
            w.u16(o.flags)
        }
        w.u8(Self.localAPICNMIType)
        w.u8(UInt8(Self.localAPICNMILength))
        w.u8(Self.allProcessors)
        w.u16(0)  // flags: conforms to the bus
        w.u8(1)  // LINT1
        return ACPITables.table("APIC", revision: Self.revision, body: w.bytes)
    }
}
