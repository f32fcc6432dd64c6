/// The ACPI tables a Skiff guest finds, so a kernel without MP-table parsing (Debian's cloud flavour
/// has `# CONFIG_X86_MPPARSE is not set`) still sees every vCPU and the IOAPIC (microvm.md §3.6).
/// The set is Firecracker's (`src/vmm/src/acpi/`): hardware-reduced ACPI, no SCI, no PM blocks.
///
/// Placement (both ranges lie in the e820-reserved `[0x9fc00, 0x100000)`, `E820.map`):
///
/// | GPA | bytes | table | spec |
/// |---|---|---|---|
/// | 0xe0000 | 36 | RSDP "RSD PTR ", revision 2, XSDT address, no RSDT | ACPI 6.5 §5.2.5.3 |
/// | 0xa0000 | 36 + AML | DSDT: header and a little AML (`ACPIDSDT`) | §5.2.11.1 |
/// | next 16-byte boundary | 276 | FADT "FACP", revision 6, HW_REDUCED_ACPI (`ACPIFADT`) | §5.2.9 |
/// | next | 44 + entries | MADT "APIC" (`ACPIMADT`) | §5.2.12 |
/// | next | 36 + 8 × 2 | XSDT: the FADT's and the MADT's addresses | §5.2.8 |
///
/// The tables sit where Firecracker puts them (`ACPI_MEM_START` = 0xa0000, two pages, right after
/// the EBDA; `RSDP_ADDR` = 0xe0000). Linux finds the RSDP through `boot_params.acpi_rsdp_addr`
/// (`LinuxBoot.load(acpiRSDP:)` writes it) or by scanning 0xe0000–0xfffff on 16-byte boundaries
/// (`acpi_find_root_pointer`). Every table starts with the 36-byte system description header
/// (§5.2.6) and its checksum byte makes the whole table sum to 0 mod 256.
public struct ACPITables: Sendable {
    /// RSDP address (Firecracker's `RSDP_ADDR`, inside the BIOS area Linux scans).
    public static let rsdpAddress: UInt64 = 0xe0000
    /// First byte of the table area (Firecracker's `ACPI_MEM_START`: EBDA start + 1 KiB).
    public static let tablesAddress: UInt64 = 0xa0000
    /// Bytes of the table area (Firecracker's `ACPI_MEM_SIZE`, two pages).
    public static let tablesSize: UInt64 = 0x2000
    /// Size of the ACPI 2.0+ RSDP (§5.2.5.3: "Length" covers the whole extended structure).
    public static let rsdpSize = 36
    /// Size of the system description table header (§5.2.6).
    public static let headerSize = 36
    /// OEMID (6 bytes), OEM Table ID (8 bytes), Creator ID (4 bytes): the MP table's names.
    public static let oemID = "SKIFF", oemTableID = "MICROVM", creatorID = "SKIF"
    /// OEM and creator revisions in every header.
    public static let oemRevision: UInt32 = 1, creatorRevision: UInt32 = 1

    /// vCPUs described in the MADT (APIC ids `0..<vcpuCount`).
    public let vcpuCount: Int
    /// The MADT, FADT and DSDT the tables are made of.
    public let madt: ACPIMADT
    public let fadt: ACPIFADT
    public let dsdt: ACPIDSDT

    /// - Throws: `KVMError.layout` unless `vcpuCount` is in 1…254 (`CPUIDPolicy.maxVCPUs`).
    public init(vcpuCount: Int, fadt: ACPIFADT = ACPIFADT(), dsdt: ACPIDSDT = ACPIDSDT()) throws {
        madt = try ACPIMADT(vcpuCount: vcpuCount)
        self.vcpuCount = vcpuCount
        self.fadt = fadt
        self.dsdt = dsdt
    }

    /// One table and where it goes.
    public struct Placed: Equatable, Sendable {
        /// The four-byte signature ("RSD " for the RSDP's first half of "RSD PTR ").
        public let signature: String
        /// Guest physical address.
        public let address: UInt64
        /// The table's bytes, checksums filled in.
        public let bytes: [UInt8]
    }

    /// Every table with its address, in memory order of the table area, then the RSDP.
    /// - Throws: `KVMError.layout` when the tables outgrow `tablesSize` (cannot happen for 254 vCPUs:
    ///   the MADT is then about 2.1 KiB).
    public func layout() throws -> [Placed] {
        var next = Self.tablesAddress
        func place(_ signature: String, _ bytes: [UInt8]) -> Placed {
            let p = Placed(signature: signature, address: next, bytes: bytes)
            next = (next + UInt64(bytes.count) + 15) & ~15
            return p
        }
        let d = place("DSDT", dsdt.bytes())
        let f = place("FACP", fadt.bytes(dsdtAddress: d.address))
        let m = place("APIC", madt.bytes())
        let x = place("XSDT", Self.xsdt(entries: [f.address, m.address]))
        guard next <= Self.tablesAddress + Self.tablesSize else {
            throw KVMError.layout(
                "ACPI tables need \(next - Self.tablesAddress) bytes; the area at 0x\(hex(Self.tablesAddress)) holds \(Self.tablesSize)"
            )
        }
        let r = Placed(signature: "RSD ", address: Self.rsdpAddress, bytes: Self.rsdp(xsdtAddress: x.address))
        return [d, f, m, x, r]
    }

    /// Writes every table into guest memory and returns the RSDP's address (for `acpi_rsdp_addr`).
    /// - Throws: `KVMError.layout` (see `layout()`), `.outOfBounds` from memory smaller than 1 MiB.
    @discardableResult
    public func write(to memory: GuestMemory) throws -> UInt64 {
        for t in try layout() { try memory.write(t.bytes, at: t.address) }
        return Self.rsdpAddress
    }

    /// The RSDP (§5.2.5.3): "RSD PTR ", checksum of the first 20 bytes (offset 8), OEMID,
    /// revision 2 (offset 15), RsdtAddress 0 (there is no RSDT; Linux takes the XSDT when the
    /// revision is above 1), length 36, XsdtAddress (offset 24), extended checksum of all 36 bytes
    /// (offset 32), 3 reserved bytes.
    public static func rsdp(xsdtAddress: UInt64) -> [UInt8] {
        var w = LittleEndianWriter()
        w.ascii("RSD PTR ", 8)
        w.u8(0)
        w.ascii(oemID, 6)
        w.u8(2)
        w.u32(0)
        w.u32(UInt32(rsdpSize))
        w.u64(xsdtAddress)
        w.u8(0)
        w.zeros(3)
        var b = w.bytes
        b[8] = checksum(b[0..<20])
        b[32] = checksum(b)
        return b
    }

    /// The XSDT (§5.2.8): header, revision 1, then one u64 physical address per table.
    public static func xsdt(entries: [UInt64]) -> [UInt8] {
        var w = LittleEndianWriter()
        for e in entries { w.u64(e) }
        return table("XSDT", revision: 1, body: w.bytes)
    }

    /// A system description table (§5.2.6): `signature`, length (header + `body`),
    /// `revision`, checksum (offset 9), OEMID, OEM Table ID, OEM revision, creator ID and revision,
    /// then `body`.
    public static func table(_ signature: String, revision: UInt8, body: [UInt8]) -> [UInt8] {
        var w = LittleEndianWriter()
        w.ascii(signature, 4)
        w.u32(UInt32(headerSize + body.count))
        w.u8(revision)
        w.u8(0)
        w.ascii(oemID, 6)
        w.ascii(oemTableID, 8)
        w.u32(oemRevision)
        w.ascii(creatorID, 4)
        w.u32(creatorRevision)
        var b = w.bytes + body
        b[9] = checksum(b)
        return b
    }

    /// The byte that makes `bytes` sum to 0 mod 256 when it replaces a zero byte among them.
    public static func checksum(_ bytes: some Sequence<UInt8>) -> UInt8 {
        0 &- bytes.reduce(0, &+)
    }
}

/// Appends little-endian integers and space-padded ASCII to a byte array (firmware table layouts).
struct LittleEndianWriter {
    var bytes: [UInt8] = []

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func zeros(_ n: Int) { bytes += [UInt8](repeating: 0, count: n) }
    /// `s` cut or padded with spaces to `n` bytes (ACPI OEM fields are space-padded).
    mutating func ascii(_ s: String, _ n: Int) {
        let u = Array(s.utf8.prefix(n))
        bytes += u + [UInt8](repeating: 0x20, count: n - u.count)
    }
}
