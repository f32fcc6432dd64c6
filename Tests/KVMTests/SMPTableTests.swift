import KVM
import Testing

/// CPUIDPolicy on a synthetic `KVM_GET_SUPPORTED_CPUID` table, and the MP table parsed back from its bytes.
struct SMPCPUIDPolicyTests {
    static func entry(
        _ function: UInt32, index: UInt32 = 0, flags: UInt32 = 0, _ eax: UInt32, _ ebx: UInt32, _ ecx: UInt32,
        _ edx: UInt32
    ) -> CPUIDEntry {
        var e = CPUIDEntry()
        e.function = function
        e.index = index
        e.flags = flags
        e.eax = eax
        e.ebx = ebx
        e.ecx = ecx
        e.edx = edx
        return e
    }

    /// A host table in the shape KVM returns: max basic leaf 0x1f, leaf 1 with the host's APIC id 0x2a
    /// and 0x40 logical processors, three cache levels, the host's 0xB/0x1F, PMU, AMD leaves, KVM leaves.
    static let supported: [CPUIDEntry] = [
        entry(0, 0x1f, 0x756e_6547, 0x6c65_746e, 0x4965_6e69),
        entry(1, 0x000a_0f11, 0x2a40_0800, 0x7ed8_320b, 0x178b_fbff & ~(1 << 28)),
        entry(4, index: 0, flags: 1, 0x1c00_4121, 0x01c0_003f, 0x3f, 0),  // L1d, 7 sharing, 7 cores
        entry(4, index: 1, flags: 1, 0x1c00_4143, 0x01c0_003f, 0x3ff, 0),  // L2
        entry(4, index: 2, flags: 1, 0x1c03_c163, 0x03c0_003f, 0x3fff, 6),  // L3, 15 sharing
        entry(6, 0x77, 2, 9, 0),
        entry(0xa, 0x0730_0805, 0, 0, 0x603),
        entry(0xb, index: 0, flags: 1, 1, 2, 0x100, 0x2a),
        entry(0xb, index: 1, flags: 1, 7, 0x40, 0x201, 0x2a),
        entry(0x1f, index: 0, flags: 1, 1, 2, 0x100, 0x2a),
        entry(0x8000_0008, 0x3030, 0, 0x703f, 0),
        entry(0x8000_001e, 0x2a, 0x115, 0x300, 0),
        entry(0x4000_0000, 0x4000_0001, 0x4b4d_564b, 0x564b_4d56, 0x4d),
        entry(0x4000_0001, 0x0100_7efb, 0, 0, 1),
    ]

    static func find(_ table: [CPUIDEntry], _ function: UInt32, _ index: UInt32 = 0) -> CPUIDEntry? {
        table.first { $0.function == function && $0.index == index }
    }

    @Test func leaf1CarriesAPICIdCountHypervisorAndHTT() throws {
        let policy = try CPUIDPolicy(vcpuCount: 4)
        let t = try policy.entries(forVCPU: 2, supported: Self.supported)
        let leaf1 = try #require(Self.find(t, 1))
        #expect(leaf1.ebx == 0x0204_0800)  // APIC id 2, 4 logical, CLFLUSH 8, brand index 0
        #expect(leaf1.ecx == 0x7ed8_320b | (1 << 31) | (1 << 24))
        #expect(leaf1.edx == 0x178b_fbff | (1 << 28))
        #expect(leaf1.eax == 0x000a_0f11)

        let single = try CPUIDPolicy(vcpuCount: 1).entries(forVCPU: 0, supported: Self.supported)
        let one = try #require(Self.find(single, 1))
        #expect(one.ebx == 0x0001_0800)
        #expect(one.edx & (1 << 28) == 0)
    }

    @Test func topologyLeavesPerVCPU() throws {
        let policy = try CPUIDPolicy(vcpuCount: 4)
        for index in 0..<4 {
            let t = try policy.entries(forVCPU: index, supported: Self.supported)
            for leaf: UInt32 in [0xb, 0x1f] {
                let subleaves = t.filter { $0.function == leaf }.sorted { $0.index < $1.index }
                #expect(subleaves.count == 3)
                #expect(subleaves.map(\.eax) == [0, 2, 0])
                #expect(subleaves.map(\.ebx) == [1, 4, 0])
                #expect(subleaves.map(\.ecx) == [0x100, 0x201, 0x2])
                #expect(subleaves.map(\.edx) == [UInt32](repeating: UInt32(index), count: 3))
                #expect(subleaves.allSatisfy { $0.flags == 1 })
            }
        }
        #expect(try CPUIDPolicy(vcpuCount: 5).coreShift == 3)
        #expect(try CPUIDPolicy(vcpuCount: 1).coreShift == 0)
    }

    @Test func cacheLeafSharesL3AcrossAllVCPUs() throws {
        let t = try CPUIDPolicy(vcpuCount: 4).entries(forVCPU: 0, supported: Self.supported)
        // Cores per package − 1 = 3 in EAX[31:26]; threads sharing − 1 in EAX[25:14]: 0, 0, 3.
        #expect(Self.find(t, 4, 0)?.eax == UInt32(0x0c00_0121))
        #expect(Self.find(t, 4, 1)?.eax == UInt32(0x0c00_0143))
        #expect(Self.find(t, 4, 2)?.eax == UInt32(0x0c00_c163))
        #expect(Self.find(t, 4, 2)?.ebx == 0x03c0_003f)
    }

    @Test func powerPMUAndAMDLeaves() throws {
        let t = try CPUIDPolicy(vcpuCount: 2).entries(forVCPU: 1, supported: Self.supported)
        #expect(Self.find(t, 6)?.eax == 0x75)
        #expect(Self.find(t, 6)?.ecx == 1)
        let pmu = try #require(Self.find(t, 0xa))
        #expect([pmu.eax, pmu.ebx, pmu.ecx, pmu.edx] == [0, 0, 0, 0])
        #expect(Self.find(t, 0x8000_0008)?.ecx == UInt32(0x1001))
        #expect(Self.find(t, 0x8000_001e)?.eax == 1)
        #expect(Self.find(t, 0x8000_001e)?.ebx == 0x1)
        #expect(Self.find(t, 0x8000_001e)?.ecx == 0)
    }

    @Test func hypervisorLeaves() throws {
        let t = try CPUIDPolicy(vcpuCount: 2).entries(forVCPU: 0, supported: Self.supported)
        let signature = try #require(Self.find(t, 0x4000_0000))
        #expect(
            [signature.eax, signature.ebx, signature.ecx, signature.edx] == [
                0x4000_0001, 0x4b4d_564b, 0x564b_4d56, 0x4d,
            ])
        let bytes = [signature.ebx, signature.ecx, signature.edx].flatMap { v in
            (0..<4).map { UInt8((v >> ($0 * 8)) & 0xff) }
        }
        #expect(bytes == Array("KVMKVMKVM".utf8) + [0, 0, 0])
        #expect(Self.find(t, 0x4000_0001)?.eax == 0x0100_7efb)
        #expect(t.filter { $0.function == 0x4000_0000 }.count == 1)

        // A host table without KVM leaves still gets the signature and an empty feature leaf.
        let bare = Self.supported.filter { $0.function < 0x4000_0000 || $0.function >= 0x8000_0000 }
        let u = try CPUIDPolicy(vcpuCount: 1).entries(forVCPU: 0, supported: bare)
        #expect(Self.find(u, 0x4000_0000)?.eax == 0x4000_0001)
        #expect(Self.find(u, 0x4000_0001)?.eax == 0)
    }

    @Test func topologySkippedBelowMaxLeafAndBadCountsRejected() throws {
        var old = Self.supported.filter { $0.function != 0xb && $0.function != 0x1f }
        old[0].eax = 0xa
        let t = try CPUIDPolicy(vcpuCount: 2).entries(forVCPU: 0, supported: old)
        #expect(!t.contains { $0.function == 0xb || $0.function == 0x1f })
        #expect(throws: KVMError.self) { try CPUIDPolicy(vcpuCount: 0) }
        #expect(throws: KVMError.self) { try CPUIDPolicy(vcpuCount: 255) }
        #expect(throws: KVMError.self) { try CPUIDPolicy(vcpuCount: 2).entries(forVCPU: 2, supported: old) }
    }
}

/// Parses an MP table the way Linux's `mpparse.c` reads it.
struct ParsedMPTable {
    var configAddress: UInt32 = 0
    var processors: [(apicID: UInt8, flags: UInt8)] = []
    var buses: [(id: UInt8, type: String)] = []
    var ioAPICs: [(id: UInt8, flags: UInt8, address: UInt32)] = []
    var ioInterrupts: [(type: UInt8, bus: UInt8, irq: UInt8, apic: UInt8, pin: UInt8)] = []
    var localInterrupts: [(type: UInt8, apic: UInt8, lint: UInt8)] = []
    var entryCount = 0
    var localAPIC: UInt32 = 0

    struct Malformed: Error { let why: String }

    init(_ b: [UInt8], at address: UInt64) throws {
        func u16(_ o: Int) -> UInt16 { UInt16(b[o]) | UInt16(b[o + 1]) << 8 }
        func u32(_ o: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(b[o + $1]) << ($1 * 8) } }
        func sum(_ r: Range<Int>) -> UInt8 { b[r].reduce(0, &+) }
        guard Array(b[0..<4]) == Array("_MP_".utf8) else { throw Malformed(why: "no _MP_") }
        guard b[8] == 1, b[9] == 4, sum(0..<16) == 0 else { throw Malformed(why: "floating pointer header/checksum") }
        configAddress = u32(4)
        let c = Int(UInt64(configAddress) - address)
        guard Array(b[c..<c + 4]) == Array("PCMP".utf8) else { throw Malformed(why: "no PCMP") }
        let length = Int(u16(c + 4))
        guard b[c + 6] == 4, c + length == b.count, sum(c..<c + length) == 0 else {
            throw Malformed(why: "config header/length/checksum")
        }
        entryCount = Int(u16(c + 34))
        localAPIC = u32(c + 36)
        var o = c + 44
        for _ in 0..<entryCount {
            switch b[o] {
            case 0:
                processors.append((b[o + 1], b[o + 3]))
                o += 20
            case 1:
                buses.append((b[o + 1], String(decoding: b[o + 2..<o + 8], as: UTF8.self)))
                o += 8
            case 2:
                ioAPICs.append((b[o + 1], b[o + 3], u32(o + 4)))
                o += 8
            case 3:
                ioInterrupts.append((b[o + 1], b[o + 4], b[o + 5], b[o + 6], b[o + 7]))
                o += 8
            case 4:
                localInterrupts.append((b[o + 1], b[o + 6], b[o + 7]))
                o += 8
            default: throw Malformed(why: "entry type \(b[o]) at \(o)")
            }
        }
        guard o == b.count else { throw Malformed(why: "entries end at \(o) of \(b.count)") }
    }
}

struct SMPMPTableTests {
    @Test(arguments: [1, 2, 4])
    func parsesBackWithChecksumsAndEntries(vcpus: Int) throws {
        let table = try MPTable(vcpuCount: vcpus)
        let bytes = table.bytes()
        #expect(bytes.count == table.size)
        #expect(table.size == 16 + 44 + 20 * vcpus + 8 + 8 + 24 * 8 + 16)
        let p = try ParsedMPTable(bytes, at: MPTable.defaultAddress)
        #expect(p.configAddress == 0x9fc10)
        #expect(p.localAPIC == 0xfee0_0000)
        #expect(p.entryCount == vcpus + 2 + 24 + 2)
        #expect(p.processors.map(\.apicID) == (0..<vcpus).map { UInt8($0) })
        #expect(p.processors.map(\.flags) == [3] + [UInt8](repeating: 1, count: vcpus - 1))
        #expect(p.buses.count == 1 && p.buses[0].id == 0 && p.buses[0].type == "ISA   ")
        #expect(p.ioAPICs.count == 1)
        #expect(p.ioAPICs[0].id == UInt8(vcpus) && p.ioAPICs[0].flags == 1 && p.ioAPICs[0].address == 0xfec0_0000)
        #expect(p.ioInterrupts.count == 24)
        for (i, e) in p.ioInterrupts.enumerated() {
            #expect(e.type == 0 && e.bus == 0 && e.irq == UInt8(i) && e.apic == UInt8(vcpus) && e.pin == UInt8(i))
        }
        #expect(p.localInterrupts.count == 2)
        #expect(p.localInterrupts[0].type == 3 && p.localInterrupts[0].apic == 0 && p.localInterrupts[0].lint == 0)
        #expect(p.localInterrupts[1].type == 1 && p.localInterrupts[1].apic == 0xff && p.localInterrupts[1].lint == 1)
    }

    @Test func isaOnlyTableAndOtherAddress() throws {
        let table = try MPTable(vcpuCount: 2, interruptPins: 16)
        let p = try ParsedMPTable(table.bytes(at: 0xf0000), at: 0xf0000)
        #expect(p.configAddress == 0xf0010)
        #expect(p.ioInterrupts.map(\.irq) == (0..<16).map { UInt8($0) })
    }

    @Test func writesIntoGuestMemoryAndRejectsBadShapes() throws {
        let memory = try GuestMemory(size: 2 << 20)
        let table = try MPTable(vcpuCount: 4)
        try table.write(to: memory)
        #expect(try memory.read(at: MPTable.defaultAddress, length: table.size) == table.bytes())
        #expect(throws: KVMError.self) { try MPTable(vcpuCount: 0) }
        #expect(throws: KVMError.self) { try MPTable(vcpuCount: 255) }
        #expect(throws: KVMError.self) { try MPTable(vcpuCount: 2, interruptPins: 25) }
        #expect(throws: KVMError.self) { try table.write(to: memory, at: 0xfff00) }
        // 254 vCPUs still fit below 1 MiB from 0x9fc00.
        try MPTable(vcpuCount: 254).write(to: memory)
    }
}
