import Foundation
import KVM
import Testing

/// Reads the ACPI tables back the way a guest's ACPI code would: little-endian fields at the spec's
/// offsets, every checksum, every pointer followed.
struct ACPIImage {
    let tables: [ACPITables.Placed]

    func at(_ address: UInt64) -> ACPITables.Placed? { tables.first { $0.address == address } }
    func named(_ signature: String) -> ACPITables.Placed? { tables.first { $0.signature == signature } }
}

func le(_ b: [UInt8], _ offset: Int, _ n: Int) -> UInt64 {
    (0..<n).reduce(0) { $0 | UInt64(b[offset + $1]) << (8 * UInt64($1)) }
}

func ascii(_ b: [UInt8], _ offset: Int, _ n: Int) -> String {
    String(decoding: b[offset..<offset + n], as: UTF8.self)
}

func byteSum(_ b: some Sequence<UInt8>) -> UInt8 { b.reduce(0, &+) }

/// MADT interrupt controller structures: (type, bytes including type and length).
func madtEntries(_ madt: [UInt8]) -> [(type: UInt8, bytes: [UInt8])] {
    var out: [(UInt8, [UInt8])] = []
    var i = 44
    while i + 2 <= madt.count {
        let n = Int(madt[i + 1])
        guard n >= 2, i + n <= madt.count else { break }
        out.append((madt[i], Array(madt[i..<i + n])))
        i += n
    }
    return out
}

@Suite struct ACPITablesTests {
    @Test(arguments: [1, 2, 4, 64, 254])
    func everyTableChecksumsToZeroAndFitsItsArea(vcpus: Int) throws {
        let tables = try ACPITables(vcpuCount: vcpus).layout()
        #expect(tables.map(\.signature) == ["DSDT", "FACP", "APIC", "XSDT", "RSD "])
        for t in tables where t.signature != "RSD " {
            #expect(byteSum(t.bytes) == 0, "\(t.signature)")
            #expect(ascii(t.bytes, 0, 4) == t.signature)
            #expect(le(t.bytes, 4, 4) == UInt64(t.bytes.count), "\(t.signature) length field")
            #expect(ascii(t.bytes, 10, 6) == "SKIFF ")
            #expect(t.address >= ACPITables.tablesAddress)
            #expect(t.address + UInt64(t.bytes.count) <= ACPITables.tablesAddress + ACPITables.tablesSize)
            #expect(t.address % 16 == 0)
        }
        // Tables do not overlap.
        let sorted = tables.sorted { $0.address < $1.address }
        for (a, b) in zip(sorted, sorted.dropFirst()) { #expect(a.address + UInt64(a.bytes.count) <= b.address) }
        let rsdp = try #require(tables.last)
        #expect(rsdp.address == 0xe0000 && rsdp.bytes.count == 36)
        #expect(byteSum(rsdp.bytes[0..<20]) == 0)  // ACPI 1.0 checksum
        #expect(byteSum(rsdp.bytes) == 0)  // extended checksum
    }

    @Test func rsdpLeadsToXSDTWhichListsFADTAndMADTAndFADTLeadsToDSDT() throws {
        let image = ACPIImage(tables: try ACPITables(vcpuCount: 2).layout())
        let rsdp = try #require(image.named("RSD ")).bytes
        #expect(ascii(rsdp, 0, 8) == "RSD PTR ")
        #expect(rsdp[15] == 2)  // revision: ACPI 2.0+, XSDT valid
        #expect(le(rsdp, 16, 4) == 0)  // no RSDT
        #expect(le(rsdp, 20, 4) == 36)
        let xsdt = try #require(image.at(le(rsdp, 24, 8)))
        #expect(xsdt.signature == "XSDT" && xsdt.bytes.count == 36 + 16)
        let listed = (0..<2).compactMap { image.at(le(xsdt.bytes, 36 + 8 * $0, 8))?.signature }
        #expect(listed == ["FACP", "APIC"])
        let fadt = try #require(image.named("FACP")).bytes
        #expect(image.at(le(fadt, 140, 8))?.signature == "DSDT")  // X_DSDT
        #expect(le(fadt, 40, 4) == 0)  // 32-bit DSDT unused
    }

    @Test(arguments: [1, 3, 8])
    func madtHasOneEnabledLocalAPICPerVCPUTheIOAPICAndLINT1NMI(vcpus: Int) throws {
        let madt = try ACPIMADT(vcpuCount: vcpus).bytes()
        #expect(byteSum(madt) == 0)
        #expect(le(madt, 36, 4) == 0xfee0_0000)
        #expect(le(madt, 40, 4) & 1 == 1)  // PCAT_COMPAT
        let entries = madtEntries(madt)
        #expect(entries.reduce(44) { $0 + $1.bytes.count } == madt.count)  // walks to the exact end
        let lapics = entries.filter { $0.type == 0 }
        #expect(lapics.count == vcpus)
        #expect(lapics.map { [$0.bytes[2], $0.bytes[3]] } == (0..<vcpus).map { [UInt8($0), UInt8($0)] })
        #expect(lapics.allSatisfy { $0.bytes.count == 8 && le($0.bytes, 4, 4) == 1 })
        let ioapics = entries.filter { $0.type == 1 }
        #expect(ioapics.count == 1)
        let io = try #require(ioapics.first).bytes
        #expect(io.count == 12 && io[2] == UInt8(vcpus) && le(io, 4, 4) == 0xfec0_0000 && le(io, 8, 4) == 0)
        let overrides = entries.filter { $0.type == 2 }
        #expect(overrides.map(\.bytes) == [[2, 10, 0, 4, 4, 0, 0, 0, 0, 0]])
        #expect(entries.filter { $0.type == 4 }.map(\.bytes) == [[4, 6, 0xff, 0, 0, 1]])
    }

    @Test func madtRefusesCountsOutsideEightBitAPICIds() {
        #expect(throws: KVMError.self) { try ACPIMADT(vcpuCount: 0) }
        #expect(throws: KVMError.self) { try ACPIMADT(vcpuCount: 255) }
        #expect(throws: KVMError.self) { try ACPITables(vcpuCount: 255) }
    }

    @Test func fadtIsHardwareReducedWithI8042ResetAndSleepRegisters() {
        let fadt = ACPIFADT().bytes(dsdtAddress: 0xa0000)
        #expect(fadt.count == 276 && le(fadt, 4, 4) == 276)
        #expect(fadt[8] == 6 && fadt[131] == 5)  // FADT 6.5
        #expect(byteSum(fadt) == 0)
        let flags = le(fadt, 112, 4)
        #expect(flags & (1 << 20) != 0)  // HW_REDUCED_ACPI
        #expect(flags & (1 << 10) != 0)  // RESET_REG_SUP
        #expect(flags & (1 << 4 | 1 << 5) == 1 << 4 | 1 << 5)  // no fixed power/sleep buttons
        #expect(le(fadt, 109, 2) == 0x3e)  // 8042 present; no VGA, no MSI, ASPM, no CMOS RTC
        #expect(Array(fadt[116..<128]) == [1, 8, 0, 1, 0x64, 0, 0, 0, 0, 0, 0, 0])  // RESET_REG: I/O 0x64
        #expect(fadt[128] == 0xfe)
        #expect(Array(fadt[244..<256]) == [1, 8, 0, 1, 0x00, 0x06, 0, 0, 0, 0, 0, 0])  // SLEEP_CONTROL: 0x600
        #expect(Array(fadt[256..<268]) == Array(fadt[244..<256]))
        #expect(ascii(fadt, 268, 8) == "SKIFFKVM")
        // Every legacy PM block is absent.
        #expect(fadt[46..<108].allSatisfy { $0 == 0 })
        #expect(fadt[148..<244].allSatisfy { $0 == 0 })
        let noSleep = ACPIFADT(sleepPort: nil).bytes(dsdtAddress: 0xa0000)
        #expect(noSleep[244..<268].allSatisfy { $0 == 0 })
    }

    @Test func dsdtDeclaresS5AsAPackageOfSleepTypes() {
        let dsdt = ACPIDSDT().bytes()
        #expect(byteSum(dsdt) == 0 && dsdt[8] == 2)
        // Name (_S5_, Package (0x02) { 0x05, Zero }): NameOp, "_S5_", PackageOp, PkgLength 5,
        // NumElements 2, BytePrefix 5, ZeroOp.
        #expect(Array(dsdt[36...]) == [0x08, 0x5f, 0x53, 0x35, 0x5f, 0x12, 0x05, 0x02, 0x0a, 0x05, 0x00])
        #expect(ACPIDSDT(softOff: false).bytes().count == 36)
    }

    @Test func dsdtVirtioDeviceEncoding() {
        let dsdt = ACPIDSDT(softOff: false, devices: [ACPIDSDT.MMIODevice(address: 0xd000_0000, gsi: 5)]).bytes()
        let aml = Array(dsdt[36...])
        // Scope (\_SB_) with a two-byte PkgLength (the body is over 63 bytes), then Device (V000).
        #expect(aml[0] == 0x10 && aml[1] >> 6 == 1)
        let scopeLength = Int(aml[1] & 0x0f) | Int(aml[2]) << 4
        #expect(scopeLength == aml.count - 1)
        #expect(Array(aml[3..<8]) == Array("\\_SB_".utf8))
        #expect(Array(aml[8..<10]) == [0x5b, 0x82])
        let text = String(decoding: aml, as: UTF8.self)
        #expect(text.contains("V000") && text.contains("_HID\u{0D}LNRO0005\u{00}") && text.contains("_CCA\u{01}"))
        // _CRS: Memory32Fixed (ReadWrite, 0xD0000000, 0x1000), Interrupt (Consumer, Edge, High) {5}, End.
        let crs: [UInt8] = [
            0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0xd0, 0x00, 0x10, 0x00, 0x00,
            0x89, 0x06, 0x00, 0x03, 0x01, 0x05, 0x00, 0x00, 0x00, 0x79, 0x00,
        ]
        #expect(aml.count >= crs.count && Array(aml.suffix(crs.count)) == crs)
    }

    @Test func zeroPageCarriesTheRSDPAddress() throws {
        let memory = try GuestMemory(size: 64 << 20)
        let rsdp = try ACPITables(vcpuCount: 2).write(to: memory)
        _ = try LinuxBoot.load(
            kernel: ElfImage.simple.bytes, kernelPath: "vmlinux", commandLine: "console=ttyS0", acpiRSDP: rsdp,
            into: memory)
        #expect(try memory.read(UInt64.self, at: GuestLayout.zeroPageAddress + 0x070) == 0xe0000)
        #expect(try memory.read(at: 0xe0000, length: 8) == Array("RSD PTR ".utf8))
        let withoutACPI = try GuestMemory(size: 64 << 20)
        _ = try LinuxBoot.load(
            kernel: ElfImage.simple.bytes, kernelPath: "vmlinux", commandLine: "", into: withoutACPI)
        #expect(try withoutACPI.read(UInt64.self, at: GuestLayout.zeroPageAddress + 0x070) == 0)
        // Both table ranges sit inside a reserved e820 entry.
        let e820 = try E820.map(for: memory)
        for (start, end) in [
            (ACPITables.tablesAddress, ACPITables.tablesAddress + ACPITables.tablesSize),
            (ACPITables.rsdpAddress, ACPITables.rsdpAddress + 36),
        ] {
            #expect(e820.contains { $0.kind == .reserved && $0.address <= start && end <= $0.address + $0.size })
        }
    }
}

/// The tables through ACPICA's own disassembler (`iasl -d`, Debian's acpica-tools), which parses
/// them as Linux's ACPICA does and complains about bad lengths, checksums and AML.
@Suite(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/iasl"), "needs iasl (acpica-tools)"))
struct ACPIDisassemblyTests {
    static func disassemble(_ t: ACPITables.Placed) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("skiff-acpi-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let name = t.signature.trimmingCharacters(in: .whitespaces).lowercased()
        try Data(t.bytes).write(to: dir.appendingPathComponent("\(name).dat"))
        try TestGuest.runTool([
            "sh", "-c", "cd '\(dir.path)' && iasl -d \(name).dat >log 2>&1 || { cat log >&2; exit 1; }",
        ])
        return try String(contentsOf: dir.appendingPathComponent("\(name).dsl"), encoding: .utf8)
    }

    @Test func iaslReadsEveryTable() throws {
        let devices = [
            ACPIDSDT.MMIODevice(address: 0xd000_0000, gsi: 5), ACPIDSDT.MMIODevice(address: 0xd000_1000, gsi: 6),
        ]
        let tables = try ACPITables(vcpuCount: 3, dsdt: ACPIDSDT(devices: devices)).layout()
        var text: [String: String] = [:]
        for t in tables where t.signature != "RSD " { text[t.signature] = try Self.disassemble(t) }
        let madt = try #require(text["APIC"])
        #expect(madt.components(separatedBy: "Subtable Type : 00 [Processor Local APIC]").count - 1 == 3)
        #expect(madt.contains("Subtable Type : 01 [I/O APIC]"))
        #expect(!madt.lowercased().contains("invalid") && !madt.contains("Incorrect"))
        let fadt = try #require(text["FACP"])
        #expect(fadt.contains("Hardware Reduced (V5) : 1"))
        #expect(fadt.contains("8042 Present on ports 60/64 (V2) : 1"))
        #expect(!fadt.contains("Incorrect"))
        let dsdt = try #require(text["DSDT"])
        #expect(dsdt.contains("Name (_S5, Package"))
        #expect(dsdt.contains("Name (_HID, \"LNRO0005\")"))
        #expect(dsdt.contains("Memory32Fixed (ReadWrite,") && dsdt.contains("0xD0001000"))
        #expect(dsdt.contains("Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive, ,, )"))
    }
}
