import KVM
import Testing

/// The split virtqueue on its own: every index and address the driver supplies is checked.
@Suite struct VirtioQueueTests {
    static let desc: UInt64 = 0x1000, avail: UInt64 = 0x2000, used: UInt64 = 0x3000

    func make(size: UInt16 = 8) throws -> (Virtqueue, GuestMemory) {
        let memory = try GuestMemory(size: 0x10000)
        var q = Virtqueue(index: 0, maxSize: 16)
        q.size = size
        q.descriptorTable = Self.desc
        q.availableRing = Self.avail
        q.usedRing = Self.used
        q.ready = true
        return (q, memory)
    }

    func descriptor(
        _ m: GuestMemory, _ i: UInt16, _ address: UInt64, _ length: UInt32, _ flags: UInt16, next: UInt16 = 0
    )
        throws
    {
        let base = Self.desc + 16 * UInt64(i)
        try m.write(address, at: base)
        try m.write(length, at: base + 8)
        try m.write(flags, at: base + 12)
        try m.write(next, at: base + 14)
    }

    func offer(_ m: GuestMemory, heads: [UInt16]) throws {
        for (i, h) in heads.enumerated() { try m.write(h, at: Self.avail + 4 + 2 * UInt64(i)) }
        try m.write(UInt16(heads.count), at: Self.avail + 2)
    }

    @Test func popFollowsNextAndSplitsReadableFromWritable() throws {
        var (q, m) = try make()
        try descriptor(m, 3, 0x8000, 16, Virtqueue.descNext, next: 5)
        try descriptor(m, 5, 0x9000, 512, Virtqueue.descNext | Virtqueue.descWrite, next: 1)
        try descriptor(m, 1, 0xa000, 1, Virtqueue.descWrite)
        try offer(m, heads: [3])
        #expect(try q.pending(memory: m) == 1)
        let c = try #require(try q.pop(memory: m))
        #expect(c.head == 3)
        #expect(c.readable.map(\.address) == [0x8000])
        #expect(c.writable.map(\.address) == [0x9000, 0xa000])
        #expect(c.readableLength == 16 && c.writableLength == 513)
        #expect(try q.pop(memory: m) == nil)
        try q.pushUsed(head: 3, length: 513, memory: m)
        #expect(try m.read(UInt16.self, at: Self.used + 2) == 1)
        #expect(try m.read(UInt32.self, at: Self.used + 4) == 3)
        #expect(try m.read(UInt32.self, at: Self.used + 8) == 513)
    }

    @Test func segmentsCoverAByteRangeAcrossBuffers() {
        let buffers = [
            VirtqDescriptor(address: 0x100, length: 10, isWriteOnly: false),
            VirtqDescriptor(address: 0x200, length: 10, isWriteOnly: false),
        ]
        let s = DescriptorChain.segments(of: buffers, from: 8, length: 5)
        #expect(s.map(\.address) == [0x108, 0x200] && s.map(\.length) == [2, 3])
        #expect(DescriptorChain.segments(of: buffers, from: 15, length: 100).map(\.length) == [5])
    }

    @Test func ringIndicesWrapAt65536() throws {
        var (q, m) = try make(size: 4)
        try descriptor(m, 0, 0x8000, 1, 0)
        // Take 65537 chains, always the same head, to wrap both free-running counters.
        for n in 1...65537 {
            try m.write(UInt16(0), at: Self.avail + 4 + 2 * UInt64((n - 1) % 4))
            try m.write(UInt16(truncatingIfNeeded: n), at: Self.avail + 2)
            let c = try #require(try q.pop(memory: m))
            try q.pushUsed(head: c.head, length: 0, memory: m)
        }
        #expect(q.nextAvailable == 1 && q.nextUsed == 1)
        #expect(try m.read(UInt16.self, at: Self.used + 2) == 1)
    }

    @Test func headPastTheQueueSizeIsRejected() throws {
        var (q, m) = try make()
        try offer(m, heads: [8])
        #expect(throws: VirtioError.self) { try q.pop(memory: m) }
        #expect(q.nextAvailable == 1)  // consumed, so the device does not spin on it
    }

    @Test func nextPastTheQueueSizeIsRejected() throws {
        var (q, m) = try make()
        try descriptor(m, 0, 0x8000, 16, Virtqueue.descNext, next: 9)
        try offer(m, heads: [0])
        #expect(throws: VirtioError.self) { try q.pop(memory: m) }
    }

    @Test func readableAfterWritableIsRejected() throws {
        var (q, m) = try make()
        try descriptor(m, 0, 0x8000, 1, Virtqueue.descWrite | Virtqueue.descNext, next: 1)
        try descriptor(m, 1, 0x9000, 16, 0)
        try offer(m, heads: [0])
        #expect(throws: VirtioError.self) { try q.pop(memory: m) }
    }

    @Test func indirectDescriptorIsRejected() throws {
        var (q, m) = try make()
        try descriptor(m, 0, 0x8000, 32, Virtqueue.descIndirect)
        try offer(m, heads: [0])
        #expect(throws: VirtioError.self) { try q.pop(memory: m) }
    }

    @Test func bufferWrappingPastTheEndOfMemoryIsRejected() throws {
        var (q, m) = try make()
        try descriptor(m, 0, UInt64.max - 4, 16, 0)
        try offer(m, heads: [0])
        #expect(throws: VirtioError.self) { try q.pop(memory: m) }
    }

    @Test func validateChecksSizeAlignmentAndPlacement() throws {
        var (q, m) = try make()
        try q.validate(memory: m)
        q.usedRing = Self.used + 2
        #expect(throws: VirtioError.self) { try q.validate(memory: m) }
        q.usedRing = 0x10000 - 8  // ring runs past RAM
        #expect(throws: VirtioError.self) { try q.validate(memory: m) }
        q.usedRing = Self.used
        q.size = 12
        #expect(throws: VirtioError.self) { try q.validate(memory: m) }
    }
}
