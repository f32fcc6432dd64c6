import KVM
import Testing

/// Guest RAM bounds and layout; needs only mmap, not /dev/kvm.
@Suite struct GuestMemoryTests {
    @Test func accessesInsideRAMRoundTripLittleEndian() throws {
        let m = try GuestMemory(size: 2 << 20)
        try m.write(UInt64(0x1122_3344_5566_7788), at: 0x1000)
        #expect(try m.read(at: 0x1000, length: 2) == [0x88, 0x77])
        #expect(try m.read(UInt64.self, at: 0x1000) == 0x1122_3344_5566_7788)
        try m.write([1, 2, 3], at: (2 << 20) - 3)  // the last three bytes
        #expect(try m.read(at: (2 << 20) - 1, length: 1) == [3])
        try m.zero(at: 0x1000, length: 8)
        #expect(try m.read(UInt64.self, at: 0x1000) == 0)
    }

    @Test func accessesPastTheEndThrowOutOfBounds() throws {
        let m = try GuestMemory(size: 2 << 20)
        #expect {
            try m.write([1, 2, 3, 4], at: (2 << 20) - 3)
        } throws: { error in
            guard case KVMError.outOfBounds(let address, let length, _) = error else { return false }
            return address == (2 << 20) - 3 && length == 4
                && "\(error)".contains("[0x1ffffd, +4) is outside guest RAM (0x0-0x200000)")
        }
        #expect(throws: KVMError.self) { try m.read(at: 2 << 20, length: 1) }
        #expect(throws: KVMError.self) { try m.read(UInt32.self, at: UInt64.max - 1) }
        #expect(throws: KVMError.self) { try GuestMemory(size: 4095) }
        #expect(throws: KVMError.self) { try GuestMemory(size: 0) }
    }

    @Test func ramAboveThreeGiBContinuesAtFourGiB() throws {
        // MAP_NORESERVE: 3 GiB + 8 MiB costs only the pages touched here.
        let m = try GuestMemory(size: (3 << 30) + (8 << 20))
        #expect(m.regions.count == 2)
        #expect(m.regions[0] == GuestMemory.Region(guestAddress: 0, size: 3 << 30, hostOffset: 0))
        #expect(m.regions[1] == GuestMemory.Region(guestAddress: 4 << 30, size: 8 << 20, hostOffset: 3 << 30))
        try m.write(UInt8(0xab), at: 4 << 30)
        #expect(try m.read(UInt8.self, at: 4 << 30) == 0xab)
        // The MMIO hole has no RAM, and no access may straddle its start.
        #expect(throws: KVMError.self) { try m.read(at: 3 << 30, length: 1) }
        #expect(throws: KVMError.self) { try m.read(at: (3 << 30) - 2, length: 4) }
        #expect(throws: KVMError.self) { try m.read(at: (4 << 30) + (8 << 20) - 1, length: 2) }
    }
}
