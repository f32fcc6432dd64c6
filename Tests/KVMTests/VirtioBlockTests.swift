import Glibc
import KVM
import Testing

/// A raw image in /tmp, removed on deinit.
final class TempImage {
    let path: String
    init(sectors: Int, fill: (Int) -> UInt8 = { UInt8(truncatingIfNeeded: $0 / 512) }) throws {
        path = "/tmp/skiff-virtio-blk-\(getpid())-\(UInt64.random(in: 0...UInt64.max)).img"
        let bytes = (0..<(sectors * 512)).map(fill)
        let fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
        try #require(fd >= 0)
        defer { close(fd) }
        try #require(bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == bytes.count)
    }
    deinit { unlink(path) }

    func contents(at offset: Int, length: Int) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        defer { close(fd) }
        var b = [UInt8](repeating: 0, count: length)
        let n = b.withUnsafeMutableBytes { pread(fd, $0.baseAddress, length, off_t(offset)) }
        return Array(b.prefix(max(n, 0)))
    }
}

/// virtio-blk driven through the MMIO transport exactly as Linux's virtio_blk would, checked in guest
/// memory and in the image file on disk.
@Suite struct VirtioBlockTests {
    static let header: UInt64 = 0x20000, data: UInt64 = 0x21000, status: UInt64 = 0x30000

    func make(sectors: Int = 8, readOnly: Bool = false) throws -> (VirtioTestDriver, TempImage, VirtioBlock) {
        let image = try TempImage(sectors: sectors)
        let blk = try VirtioBlock(path: image.path, readOnly: readOnly, serial: "skiff-disk-0")
        let d = try VirtioTestDriver(device: blk)
        try d.start()
        return (d, image, blk)
    }

    /// Writes the request header and poisons the status byte, then submits header + `data` + status.
    @discardableResult
    func request(
        _ d: VirtioTestDriver, type: UInt32, sector: UInt64, data: [(UInt64, UInt32, Bool)] = [], notify: Bool = true
    ) throws -> UInt16 {
        try d.memory.write(type, at: Self.header)
        try d.memory.write(UInt32(0), at: Self.header + 4)
        try d.memory.write(sector, at: Self.header + 8)
        try d.memory.write(UInt8(0xee), at: Self.status)
        return try d.submit([(Self.header, 16, false)] + data + [(Self.status, 1, true)], notify: notify)
    }

    func status(_ d: VirtioTestDriver) throws -> UInt8 { try d.memory.read(UInt8.self, at: Self.status) }

    @Test func configSpaceAndFeaturesDescribeTheImage() throws {
        let image = try TempImage(sectors: 2048)
        let blk = try VirtioBlock(path: image.path)
        let d = try VirtioTestDriver(device: blk)
        #expect(d.read(.deviceID) == 2)
        // capacity (le64 at 0x100) in 512-byte sectors, read as Linux does: two 32-bit halves.
        #expect(d.transport.read(offset: 0x100, length: 4) == [0x00, 0x08, 0, 0])
        #expect(d.transport.read(offset: 0x104, length: 4) == [0, 0, 0, 0])
        #expect(d.transport.read(offset: 0x10c, length: 4) == [254, 0, 0, 0])  // seg_max
        d.write(.deviceFeaturesSel, 0)
        let low = d.read(.deviceFeatures)
        #expect(low & 1 << 9 != 0)  // FLUSH
        #expect(low & 1 << 2 != 0)  // SEG_MAX
        #expect(low & 1 << 5 == 0)  // not RO
        #expect(low & (1 << 28 | 1 << 29) == 0)  // no INDIRECT_DESC, no EVENT_IDX
    }

    @Test func writtenSectorsReachTheFileAndReadBack() throws {
        let (d, image, _) = try make()
        let pattern = (0..<1024).map { UInt8(truncatingIfNeeded: $0 * 7 + 3) }
        try d.memory.write(pattern, at: Self.data)
        let head = try request(d, type: VirtioBlock.typeOut, sector: 2, data: [(Self.data, 1024, false)])
        #expect(try status(d) == VirtioBlock.statusOK)
        #expect(d.usedIdx == 1)
        let (id, len) = try d.used(0)
        #expect(id == UInt32(head) && len == 1)  // only the status byte was written
        #expect(d.read(.interruptStatus) & Virtio.interruptUsedBuffer != 0)
        #expect(d.levels == [true])
        #expect(image.contents(at: 1024, length: 1024) == pattern)
        #expect(image.contents(at: 512, length: 512) == [UInt8](repeating: 1, count: 512))  // sector 1 untouched
        d.write(.interruptACK, Virtio.interruptUsedBuffer)
        #expect(d.levels == [true, false])

        // Read sectors 1–3 back into two buffers: 512 bytes, then 1024.
        try d.memory.zero(at: 0x24000, length: 0x1000)
        try request(d, type: VirtioBlock.typeIn, sector: 1, data: [(0x24000, 512, true), (0x24800, 1024, true)])
        #expect(try status(d) == VirtioBlock.statusOK)
        #expect(d.usedIdx == 2)
        #expect(try d.used(1).1 == 1024 + 512 + 1)
        #expect(try d.memory.read(at: 0x24000, length: 512) == [UInt8](repeating: 1, count: 512))
        #expect(try d.memory.read(at: 0x24800, length: 1024) == pattern)
        #expect(d.levels == [true, false, true])
    }

    @Test func getIDReturnsTheSerial() throws {
        let (d, _, _) = try make()
        try d.memory.write([UInt8](repeating: 0xaa, count: 20), at: Self.data)
        try request(d, type: VirtioBlock.typeGetID, sector: 0, data: [(Self.data, 20, true)])
        #expect(try status(d) == VirtioBlock.statusOK)
        #expect(
            try d.memory.read(at: Self.data, length: 20) == Array("skiff-disk-0".utf8) + [UInt8](repeating: 0, count: 8)
        )
        #expect(try d.used(0).1 == 21)
    }

    @Test func flushSucceeds() throws {
        let (d, _, _) = try make()
        try request(d, type: VirtioBlock.typeFlush, sector: 0)
        #expect(try status(d) == VirtioBlock.statusOK)
        #expect(try d.used(0).1 == 1)
    }

    @Test func unknownRequestTypeIsUnsupported() throws {
        let (d, _, _) = try make()
        try request(d, type: 11, sector: 0)  // VIRTIO_BLK_T_WRITE_ZEROES, not offered
        #expect(try status(d) == VirtioBlock.statusUnsupported)
    }

    @Test func sectorsPastTheEndFailWithIOErrAndTheFileDoesNotGrow() throws {
        let (d, image, _) = try make(sectors: 8)
        try d.memory.write([UInt8](repeating: 0x55, count: 1024), at: Self.data)
        try request(d, type: VirtioBlock.typeOut, sector: 7, data: [(Self.data, 1024, false)])  // straddles the end
        #expect(try status(d) == VirtioBlock.statusIOError)
        try request(d, type: VirtioBlock.typeIn, sector: 8, data: [(Self.data, 512, true)])
        #expect(try status(d) == VirtioBlock.statusIOError)
        #expect(try d.used(1).1 == 1)
        try request(d, type: VirtioBlock.typeIn, sector: UInt64.max, data: [(Self.data, 512, true)])  // overflow
        #expect(try status(d) == VirtioBlock.statusIOError)
        try request(d, type: VirtioBlock.typeIn, sector: 0, data: [(Self.data, 100, true)])  // not whole sectors
        #expect(try status(d) == VirtioBlock.statusIOError)
        #expect(d.usedIdx == 4)
        #expect(image.contents(at: 7 * 512, length: 1024).count == 512)
        #expect(image.contents(at: 7 * 512, length: 512) == [UInt8](repeating: 7, count: 512))
    }

    @Test func readOnlyDiskRefusesWritesAndOffersRO() throws {
        let (d, image, _) = try make(readOnly: true)
        d.write(.deviceFeaturesSel, 0)
        #expect(d.read(.deviceFeatures) & 1 << 5 != 0)
        try d.memory.write([UInt8](repeating: 0x55, count: 512), at: Self.data)
        try request(d, type: VirtioBlock.typeOut, sector: 0, data: [(Self.data, 512, false)])
        #expect(try status(d) == VirtioBlock.statusIOError)
        #expect(image.contents(at: 0, length: 512) == [UInt8](repeating: 0, count: 512))
        try request(d, type: VirtioBlock.typeIn, sector: 3, data: [(Self.data, 512, true)])
        #expect(try status(d) == VirtioBlock.statusOK)
        #expect(try d.memory.read(at: Self.data, length: 512) == [UInt8](repeating: 3, count: 512))
    }

    @Test func severalRequestsInOneNotifyAreAllServedInOrder() throws {
        let (d, _, _) = try make()
        for s in 0..<4 {
            let hdr = Self.header + UInt64(s) * 0x100
            try d.memory.write(VirtioBlock.typeIn, at: hdr)
            try d.memory.write(UInt64(s), at: hdr + 8)
            try d.submit(
                [(hdr, 16, false), (0x40000 + UInt64(s) * 0x200, 512, true), (Self.status + UInt64(s), 1, true)],
                notify: s == 3)
        }
        #expect(d.usedIdx == 4)
        for s in 0..<4 {
            #expect(try d.used(UInt16(s)) == (UInt32(s * 3), 513))
            #expect(
                try d.memory.read(at: 0x40000 + UInt64(s) * 0x200, length: 512)
                    == [UInt8](repeating: UInt8(s), count: 512))
            #expect(try d.memory.read(UInt8.self, at: Self.status + UInt64(s)) == 0)
        }
    }

    @Test func headerSplitAcrossDescriptorsIsAccepted() throws {
        let (d, _, _) = try make()
        try d.memory.write(VirtioBlock.typeIn, at: Self.header)
        try d.memory.write(UInt64(5), at: 0x20800)
        try d.submit([(Self.header, 8, false), (0x20800, 8, false), (Self.data, 512, true), (Self.status, 1, true)])
        #expect(try status(d) == VirtioBlock.statusOK)
        #expect(try d.memory.read(at: Self.data, length: 512) == [UInt8](repeating: 5, count: 512))
    }

    @Test func bufferOutsideGuestMemorySetsNeedsResetWithoutTouchingTheFile() throws {
        let (d, image, _) = try make()
        try request(d, type: VirtioBlock.typeOut, sector: 0, data: [(0xffff_f000, 512, false)])
        #expect(d.read(.status) & Virtio.statusNeedsReset != 0)
        #expect(d.read(.interruptStatus) & Virtio.interruptConfigChange != 0)
        #expect(d.transport.lastError?.description.contains("outside guest RAM") == true)
        #expect(d.usedIdx == 0)
        #expect(image.contents(at: 0, length: 512) == [UInt8](repeating: 0, count: 512))
        // Further notifies are ignored until the driver resets the device.
        try request(d, type: VirtioBlock.typeFlush, sector: 0)
        #expect(d.usedIdx == 0)
        d.nextDescriptor = 0
        d.availIdx = 0
        try d.start()
        #expect(d.read(.status) == 0x0f)
        try request(d, type: VirtioBlock.typeFlush, sector: 0)
        #expect(d.usedIdx == 1)
        #expect(try status(d) == VirtioBlock.statusOK)
    }

    @Test func descriptorLoopSetsNeedsReset() throws {
        let (d, _, _) = try make()
        try request(d, type: VirtioBlock.typeFlush, sector: 0, notify: false)
        // Give the status descriptor (index 1) NEXT pointing at itself.
        try d.memory.write(Virtqueue.descWrite | Virtqueue.descNext, at: VirtioTestDriver.descAddress + 16 + 12)
        try d.memory.write(UInt16(1), at: VirtioTestDriver.descAddress + 16 + 14)
        d.write(.queueNotify, 0)
        #expect(d.read(.status) & Virtio.statusNeedsReset != 0)
        #expect(d.transport.lastError?.description.contains("loops") == true)
    }

    @Test func availableIndexRunningAheadSetsNeedsReset() throws {
        let (d, _, _) = try make()
        try d.memory.write(UInt16(300), at: VirtioTestDriver.availAddress + 2)  // queue size is 256
        d.write(.queueNotify, 0)
        #expect(d.read(.status) & Virtio.statusNeedsReset != 0)
    }

    @Test func chainWithoutStatusByteIsReturnedUntouched() throws {
        let (d, _, _) = try make()
        try d.memory.write(VirtioBlock.typeFlush, at: Self.header)
        try d.submit([(Self.header, 16, false)])
        #expect(d.usedIdx == 1)
        #expect(try d.used(0).1 == 0)
        #expect(d.read(.status) == 0x0f)
    }

    @Test func missingImageFailsWithThePath() {
        #expect {
            _ = try VirtioBlock(path: "/nonexistent/disk.img")
        } throws: { e in
            "\(e)".contains("/nonexistent/disk.img")
        }
    }
}
