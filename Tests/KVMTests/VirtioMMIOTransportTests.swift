import Glibc
import KVM
import Testing

/// Plays Linux's `virtio_mmio` driver against a transport: register accesses are 32-bit, queues live in a
/// `GuestMemory` the test owns (queue 0: descriptor table 0x10000, available ring 0x11000, used ring 0x12000;
/// queue n: the same 0x4000·n higher).
final class VirtioTestDriver {
    typealias Reg = VirtioMMIOTransport.Register
    static let descAddress: UInt64 = 0x10000, availAddress: UInt64 = 0x11000, usedAddress: UInt64 = 0x12000

    let memory: GuestMemory
    let transport: VirtioMMIOTransport
    var levels: [Bool] = []
    /// Per queue: size, next free descriptor, the driver's available idx.
    var queueSizes: [UInt32: UInt16] = [:]
    var nextDescriptors: [UInt32: UInt16] = [:]
    var availIdxs: [UInt32: UInt16] = [:]

    /// Queue 0's state, which most tests use.
    var queueSize: UInt16 { queueSizes[0] ?? 0 }
    var nextDescriptor: UInt16 {
        get { nextDescriptors[0] ?? 0 }
        set { nextDescriptors[0] = newValue }
    }
    var availIdx: UInt16 {
        get { availIdxs[0] ?? 0 }
        set { availIdxs[0] = newValue }
    }

    /// Where queue `q`'s areas lie: 0x4000 apart, starting with queue 0 at the addresses above.
    static func areas(_ q: UInt32) -> (desc: UInt64, avail: UInt64, used: UInt64) {
        let base = descAddress + 0x4000 * UInt64(q)
        return (base, base + 0x1000, base + 0x2000)
    }

    /// Register accesses by offset in the window: straight to the transport, or through a bus.
    let readRegister: (UInt64) -> [UInt8]
    let writeRegister: (UInt64, [UInt8]) -> Void

    init(device: any VirtioDevice, memorySize: UInt64 = 1 << 20) throws {
        let memory = try GuestMemory(size: memorySize)
        self.memory = memory
        let transport = VirtioMMIOTransport(device: device, memory: memory)
        self.transport = transport
        readRegister = { transport.read(offset: $0, length: 4) }
        writeRegister = { transport.write(offset: $0, data: $1) }
        transport.onInterrupt = { [unowned self] in self.levels.append($0) }
    }

    /// Drives the transport of `slot` the way a vCPU does: through `handler` (`MMIOBus.runLoopHandler`)
    /// at the slot's guest physical address. Interrupts go wherever the slot's owner wired them.
    init(slot: VirtioMMIODevices.Slot, memory: GuestMemory, handler: @escaping (UInt64, Bool, [UInt8]) -> [UInt8]) {
        self.memory = memory
        transport = slot.transport
        readRegister = { handler(slot.address + $0, false, []) }
        writeRegister = { _ = handler(slot.address + $0, true, $1) }
    }

    func read(_ r: Reg) -> UInt32 {
        let b = readRegister(r.rawValue)
        return UInt32(b[0]) | UInt32(b[1]) << 8 | UInt32(b[2]) << 16 | UInt32(b[3]) << 24
    }

    func write(_ r: Reg, _ v: UInt32) {
        writeRegister(r.rawValue, withUnsafeBytes(of: v.littleEndian) { Array($0) })
    }

    func addStatus(_ bits: UInt32) { write(.status, read(.status) | bits) }

    /// `virtio_dev_probe` up to `virtio_features_ok`: reset, ACKNOWLEDGE, DRIVER, read the 64 feature bits,
    /// write back `accepted` (nil: everything offered), FEATURES_OK, read it back.
    /// - Returns: whether the device kept FEATURES_OK.
    @discardableResult
    func negotiate(accepting accepted: ((UInt64) -> UInt64)? = nil) -> Bool {
        write(.status, 0)
        addStatus(Virtio.statusAcknowledge)
        addStatus(Virtio.statusDriver)
        write(.deviceFeaturesSel, 1)
        var offered = UInt64(read(.deviceFeatures)) << 32
        write(.deviceFeaturesSel, 0)
        offered |= UInt64(read(.deviceFeatures))
        let features = accepted?(offered) ?? offered
        write(.driverFeaturesSel, 1)
        write(.driverFeatures, UInt32(truncatingIfNeeded: features >> 32))
        write(.driverFeaturesSel, 0)
        write(.driverFeatures, UInt32(truncatingIfNeeded: features))
        addStatus(Virtio.statusFeaturesOK)
        return read(.status) & Virtio.statusFeaturesOK != 0
    }

    /// `vm_setup_vq` for queue `index` with `size` entries (nil: QueueNumMax), then QueueReady.
    func setUpQueue(_ index: UInt32 = 0, size: UInt16? = nil) throws {
        write(.queueSel, index)
        #expect(read(.queueReady) == 0)
        let max = read(.queueNumMax)
        #expect(max > 0)
        let n = size ?? UInt16(max)
        queueSizes[index] = n
        nextDescriptors[index] = 0
        availIdxs[index] = 0
        write(.queueNum, UInt32(n))
        let a = Self.areas(index)
        for (lo, hi, address) in [
            (Reg.queueDescLow, Reg.queueDescHigh, a.desc),
            (.queueDriverLow, .queueDriverHigh, a.avail), (.queueDeviceLow, .queueDeviceHigh, a.used),
        ] {
            write(lo, UInt32(truncatingIfNeeded: address))
            write(hi, UInt32(truncatingIfNeeded: address >> 32))
        }
        try memory.zero(at: a.desc, length: 0x3000)
        write(.queueReady, 1)
        #expect(read(.queueReady) == 1)
    }

    /// The whole probe: negotiate, `queues` queues, DRIVER_OK.
    func start(queues: UInt32 = 1) throws {
        #expect(negotiate())
        for q in 0..<queues { try setUpQueue(q) }
        addStatus(Virtio.statusDriverOK)
        #expect(read(.status) == 0x0f)
    }

    /// Writes a chain of `buffers` (address, length, device-writable) into free descriptors of `queue`, makes
    /// it available and, when `notify`, writes QueueNotify. Returns the head index.
    @discardableResult
    func submit(_ buffers: [(UInt64, UInt32, Bool)], queue: UInt32 = 0, notify: Bool = true) throws -> UInt16 {
        let size = queueSizes[queue] ?? 0
        let a = Self.areas(queue)
        let head = nextDescriptors[queue] ?? 0
        for (i, (address, length, writable)) in buffers.enumerated() {
            let d = (head + UInt16(i)) % size
            let base = a.desc + 16 * UInt64(d)
            try memory.write(address, at: base)
            try memory.write(length, at: base + 8)
            let last = i == buffers.count - 1
            try memory.write((writable ? Virtqueue.descWrite : 0) | (last ? 0 : Virtqueue.descNext), at: base + 12)
            try memory.write(last ? UInt16(0) : (d + 1) % size, at: base + 14)
        }
        nextDescriptors[queue] = (head + UInt16(buffers.count)) % size
        let idx = availIdxs[queue] ?? 0
        try memory.write(head, at: a.avail + 4 + 2 * UInt64(idx % size))
        availIdxs[queue] = idx &+ 1
        try memory.write(idx &+ 1, at: a.avail + 2)
        if notify { write(.queueNotify, queue) }
        return head
    }

    /// The used ring's idx of `queue`.
    func usedIdx(_ queue: UInt32) -> UInt16 {
        (try? memory.read(UInt16.self, at: Self.areas(queue).used + 2)) ?? 0xdead
    }

    var usedIdx: UInt16 { usedIdx(0) }

    /// Used element `i` of `queue`: (id, len).
    func used(_ i: UInt16, queue: UInt32 = 0) throws -> (UInt32, UInt32) {
        let e = Self.areas(queue).used + 4 + 8 * UInt64(i % (queueSizes[queue] ?? 1))
        return (try memory.read(UInt32.self, at: e), try memory.read(UInt32.self, at: e + 4))
    }
}

/// A device with two queues that echoes nothing: it gives every chain back with len 0.
final class NullDevice: VirtioDevice {
    var activated: UInt64?
    var resets = 0
    var deviceID: UInt32 { 42 }
    var deviceFeatures: UInt64 { 1 << 3 }
    var queueMaxSizes: [UInt16] { [16, 8] }
    var configSpace: [UInt8] { [1, 2, 3, 4, 5, 6, 7, 8, 9] }
    func activate(features: UInt64) { activated = features }
    func reset() { resets += 1 }
    func process(queue: inout Virtqueue, memory: GuestMemory) throws(VirtioError) -> Bool {
        var any = false
        while let c = try queue.pop(memory: memory) {
            try queue.pushUsed(head: c.head, length: 0, memory: memory)
            any = true
        }
        return any
    }
}

/// virtio-mmio v2 registers as Linux's driver sees them, without a guest.
@Suite struct VirtioMMIOTransportTests {
    @Test func identifiesAsVirtioMMIOVersion2() throws {
        let d = try VirtioTestDriver(device: NullDevice())
        #expect(d.read(.magicValue) == 0x7472_6976)
        #expect(d.read(.version) == 2)
        #expect(d.read(.deviceID) == 42)
        #expect(d.read(.vendorID) == VirtioMMIOTransport.vendor)
        #expect(d.read(.status) == 0)
        #expect(d.read(.configGeneration) == 0)
    }

    @Test func featuresAreReadThirtyTwoBitsPerSelector() throws {
        let d = try VirtioTestDriver(device: NullDevice())
        d.write(.deviceFeaturesSel, 0)
        #expect(d.read(.deviceFeatures) == 1 << 3)
        d.write(.deviceFeaturesSel, 1)
        #expect(d.read(.deviceFeatures) == 1)  // VIRTIO_F_VERSION_1 is bit 32
        d.write(.deviceFeaturesSel, 2)
        #expect(d.read(.deviceFeatures) == 0)
    }

    @Test func linuxProbeSequenceActivatesTheDeviceWithTheAcceptedFeatures() throws {
        let dev = NullDevice()
        let d = try VirtioTestDriver(device: dev)
        try d.start()
        #expect(dev.activated == Virtio.featureVersion1 | 1 << 3)
        #expect(d.transport.driverFeatures == Virtio.featureVersion1 | 1 << 3)
    }

    @Test func featuresOKIsRefusedForAnUnofferedFeature() throws {
        let d = try VirtioTestDriver(device: NullDevice())
        #expect(!d.negotiate { $0 | 1 << 28 })  // VIRTIO_F_INDIRECT_DESC is not offered
        #expect(d.read(.status) == Virtio.statusAcknowledge | Virtio.statusDriver)
        // DRIVER_OK without FEATURES_OK is refused too.
        d.addStatus(Virtio.statusDriverOK)
        #expect(d.read(.status) & Virtio.statusDriverOK == 0)
    }

    @Test func featuresOKIsRefusedWithoutVersion1() throws {
        let d = try VirtioTestDriver(device: NullDevice())
        #expect(!d.negotiate { $0 & ~Virtio.featureVersion1 })
    }

    @Test func queueNumAboveQueueNumMaxOrNotAPowerOfTwoIsRefused() throws {
        let d = try VirtioTestDriver(device: NullDevice())
        #expect(d.negotiate())
        d.write(.queueSel, 1)
        #expect(d.read(.queueNumMax) == 8)
        d.write(.queueNum, 4)
        #expect(d.transport.queue(1)?.size == 4)
        d.write(.queueNum, 16)
        #expect(d.transport.queue(1)?.size == 4)
        d.write(.queueNum, 6)
        #expect(d.transport.queue(1)?.size == 4)
        d.write(.queueNum, 0)
        #expect(d.transport.queue(1)?.size == 4)
        d.write(.queueSel, 2)
        #expect(d.read(.queueNumMax) == 0)  // no such queue: Linux's setup_vq gives up with ENOENT
    }

    @Test func queuesCannotBeConfiguredBeforeFeaturesOK() throws {
        let d = try VirtioTestDriver(device: NullDevice())
        d.write(.status, Virtio.statusAcknowledge | Virtio.statusDriver)
        d.write(.queueSel, 0)
        d.write(.queueNum, 4)
        d.write(.queueDescLow, 0x1000)
        d.write(.queueReady, 1)
        let q = try #require(d.transport.queue(0))
        #expect(q.size == 16 && q.descriptorTable == 0 && !q.ready)
    }

    @Test func writingZeroToStatusResetsQueuesFeaturesAndInterrupts() throws {
        let dev = NullDevice()
        let d = try VirtioTestDriver(device: dev)
        try d.start()
        try d.submit([(0x20000, 16, false)])
        #expect(d.read(.interruptStatus) == 1)
        #expect(d.levels == [true])
        d.write(.status, 0)
        #expect(d.read(.status) == 0)
        #expect(d.read(.interruptStatus) == 0)
        #expect(d.levels == [true, false])
        #expect(d.transport.driverFeatures == 0)
        #expect(dev.resets == 2)  // the probe's own reset, then this one
        let q = try #require(d.transport.queue(0))
        #expect(!q.ready && q.size == 16 && q.descriptorTable == 0 && q.availableRing == 0 && q.usedRing == 0)
        #expect(q.nextAvailable == 0 && q.nextUsed == 0)
        d.write(.queueSel, 0)
        #expect(d.read(.queueReady) == 0)
        // And the device comes back through the same probe.
        try d.start()
    }

    @Test func statusBitsCannotBeClearedExceptByReset() throws {
        let d = try VirtioTestDriver(device: NullDevice())
        try d.start()
        d.write(.status, Virtio.statusAcknowledge)
        #expect(d.read(.status) == 0x0f)
    }

    @Test func interruptACKClearsTheBitsWrittenAndLowersTheLine() throws {
        let d = try VirtioTestDriver(device: NullDevice())
        try d.start()
        try d.submit([(0x20000, 16, false)])
        #expect(d.usedIdx == 1)
        #expect(d.read(.interruptStatus) == Virtio.interruptUsedBuffer)
        d.write(.interruptACK, Virtio.interruptConfigChange)
        #expect(d.read(.interruptStatus) == Virtio.interruptUsedBuffer)
        d.write(.interruptACK, Virtio.interruptUsedBuffer)
        #expect(d.read(.interruptStatus) == 0)
        #expect(d.levels == [true, false])
    }

    @Test func notifyBeforeDriverOKIsIgnored() throws {
        let d = try VirtioTestDriver(device: NullDevice())
        #expect(d.negotiate())
        try d.setUpQueue()
        try d.submit([(0x20000, 16, false)])
        #expect(d.usedIdx == 0)
        // After DRIVER_OK the next notify serves what is pending.
        d.addStatus(Virtio.statusDriverOK)
        d.write(.queueNotify, 0)
        #expect(d.usedIdx == 1)
    }

    @Test func noInterruptFlagSuppressesTheUsedBufferInterrupt() throws {
        let d = try VirtioTestDriver(device: NullDevice())
        try d.start()
        try d.memory.write(Virtqueue.availNoInterrupt, at: VirtioTestDriver.availAddress)
        try d.submit([(0x20000, 16, false)])
        #expect(d.usedIdx == 1)
        #expect(d.read(.interruptStatus) == 0)
        #expect(d.levels.isEmpty)
    }

    @Test func configSpaceIsReadAtAnyWidthAndPaddedWithZeros() throws {
        let d = try VirtioTestDriver(device: NullDevice())
        #expect(d.transport.read(offset: 0x100, length: 1) == [1])
        #expect(d.transport.read(offset: 0x102, length: 2) == [3, 4])
        #expect(d.transport.read(offset: 0x104, length: 8) == [5, 6, 7, 8, 9, 0, 0, 0])
    }

    @Test func registersIgnoreAccessesThatAreNotAligned32Bit() throws {
        let d = try VirtioTestDriver(device: NullDevice())
        #expect(d.transport.read(offset: 0, length: 1) == [0])
        #expect(d.transport.read(offset: 2, length: 4) == [0, 0, 0, 0])
        d.transport.write(offset: 0x70, data: [1])
        #expect(d.read(.status) == 0)
    }

    @Test func brokenQueueAtDriverOKSetsNeedsReset() throws {
        let d = try VirtioTestDriver(device: NullDevice(), memorySize: 0x10000)  // the rings lie past RAM
        #expect(d.negotiate())
        d.write(.queueSel, 0)
        d.write(.queueDescLow, 0x10000)
        d.write(.queueReady, 1)
        d.addStatus(Virtio.statusDriverOK)
        #expect(d.read(.status) & Virtio.statusNeedsReset != 0)
        #expect(d.read(.interruptStatus) == Virtio.interruptConfigChange)
        #expect(d.levels == [true])
        #expect(d.transport.lastError?.description.contains("outside guest RAM") == true)
    }

    @Test func configChangedBumpsTheGenerationAndInterrupts() throws {
        let d = try VirtioTestDriver(device: NullDevice())
        d.transport.configChanged()
        #expect(d.read(.configGeneration) == 1)
        #expect(d.read(.interruptStatus) == Virtio.interruptConfigChange)
        #expect(d.levels == [true])
    }
}

/// Guest physical dispatch of MMIO exits.
@Suite struct MMIOBusTests {
    final class Recorder: MMIODevice {
        var writes: [(UInt64, [UInt8])] = []
        func read(offset: UInt64, length: Int) -> [UInt8] {
            (0..<length).map { UInt8(truncatingIfNeeded: offset) &+ UInt8($0) }
        }
        func write(offset: UInt64, data: [UInt8]) { writes.append((offset, data)) }
    }

    @Test func dispatchesByRangeWithOffsets() throws {
        let bus = MMIOBus()
        let a = Recorder(), b = Recorder()
        try bus.register(a, base: 0xd000_0000, length: 0x1000)
        try bus.register(b, base: 0xd000_1000, length: 0x1000)
        #expect(bus.read(address: 0xd000_1010, length: 2) == [0x10, 0x11])
        bus.write(address: 0xd000_0070, data: [7, 0, 0, 0])
        #expect(a.writes.count == 1 && a.writes[0].0 == 0x70 && a.writes[0].1 == [7, 0, 0, 0])
        #expect(b.writes.isEmpty)
        #expect(bus.read(address: 0xd000_2000, length: 4) == [0xff, 0xff, 0xff, 0xff])
        // An access straddling the end of a window reaches nobody.
        #expect(bus.read(address: 0xd000_1ffe, length: 4) == [0xff, 0xff, 0xff, 0xff])
        #expect(bus.runLoopHandler(0xd000_0004, false, []) == [4, 5, 6, 7])
    }

    @Test func overlappingOrEmptyRangesAreRefused() throws {
        let bus = MMIOBus()
        try bus.register(Recorder(), base: 0xd000_0000, length: 0x1000)
        #expect(throws: KVMError.self) { try bus.register(Recorder(), base: 0xd000_0fff, length: 0x1000) }
        #expect(throws: KVMError.self) { try bus.register(Recorder(), base: 0xcfff_f001, length: 0x1000) }
        #expect(throws: KVMError.self) { try bus.register(Recorder(), base: 0xe000_0000, length: 0) }
        #expect(throws: KVMError.self) { try bus.register(Recorder(), base: UInt64.max, length: 2) }
        try bus.register(Recorder(), base: 0xd000_1000, length: 0x1000)
    }
}
