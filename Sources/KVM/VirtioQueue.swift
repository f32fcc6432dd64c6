/// What went wrong on a virtqueue. Each of these is a driver bug (or a hostile guest): the transport
/// answers it by setting `DEVICE_NEEDS_RESET` in the status register (virtio spec v1.2 §2.1.2) and
/// leaves the device alone until the driver resets it.
public enum VirtioError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The queue's configuration is unusable: size not a power of two or above the maximum, rings misaligned
    /// or outside guest RAM.
    case invalidQueue(index: Int, reason: String)
    /// The available ring's `idx` ran more than the queue size ahead of the buffers the device has taken.
    case availableIndex(queue: Int, available: UInt16, taken: UInt16, size: UInt16)
    /// A descriptor chain is malformed (index past the table, loop, buffer outside guest RAM, readable after
    /// writable, indirect descriptor without `VIRTIO_F_INDIRECT_DESC`).
    case invalidChain(queue: Int, head: UInt16, reason: String)
    /// A ring or buffer access failed against guest memory.
    case memory(queue: Int, String)

    public var description: String {
        switch self {
        case .invalidQueue(let index, let reason):
            return "virtqueue \(index): \(reason)"
        case .availableIndex(let queue, let available, let taken, let size):
            return "virtqueue \(queue): available idx \(available) is more than the queue size \(size) "
                + "ahead of the \(taken) buffers taken; the driver corrupted its ring"
        case .invalidChain(let queue, let head, let reason):
            return "virtqueue \(queue): descriptor chain at head \(head): \(reason)"
        case .memory(let queue, let message):
            return "virtqueue \(queue): \(message)"
        }
    }
}

/// One buffer of a descriptor chain: guest physical `[address, address + length)`.
public struct VirtqDescriptor: Equatable, Sendable {
    /// Guest physical address of the buffer.
    public let address: UInt64
    /// Length in bytes.
    public let length: UInt32
    /// `VIRTQ_DESC_F_WRITE`: the device writes this buffer (otherwise it reads it).
    public let isWriteOnly: Bool

    public init(address: UInt64, length: UInt32, isWriteOnly: Bool) {
        self.address = address
        self.length = length
        self.isWriteOnly = isWriteOnly
    }
}

/// A request taken from the available ring: the head index (returned in the used ring) and its buffers,
/// device-readable ones first, each already checked to lie inside guest RAM.
public struct DescriptorChain: Equatable, Sendable {
    /// Index of the first descriptor; goes back to the driver in the used element's `id`.
    public let head: UInt16
    /// Buffers in chain order.
    public let descriptors: [VirtqDescriptor]

    /// The device-readable buffers (they precede the writable ones).
    public var readable: ArraySlice<VirtqDescriptor> { descriptors.prefix { !$0.isWriteOnly } }
    /// The device-writable buffers.
    public var writable: ArraySlice<VirtqDescriptor> { descriptors.drop { !$0.isWriteOnly } }
    /// Total bytes of the readable buffers.
    public var readableLength: UInt64 { readable.reduce(0) { $0 + UInt64($1.length) } }
    /// Total bytes of the writable buffers.
    public var writableLength: UInt64 { writable.reduce(0) { $0 + UInt64($1.length) } }

    /// The pieces `(address, length)` of `buffers` that cover the byte range `[offset, offset + length)` of
    /// their concatenation; shorter when the buffers end first.
    public static func segments(
        of buffers: some Sequence<VirtqDescriptor>, from offset: UInt64, length: UInt64
    ) -> [(address: UInt64, length: Int)] {
        var result: [(address: UInt64, length: Int)] = []
        var skip = offset
        var left = length
        for d in buffers where left > 0 {
            let len = UInt64(d.length)
            if skip >= len {
                skip -= len
                continue
            }
            let n = min(len - skip, left)
            result.append((d.address + skip, Int(n)))
            left -= n
            skip = 0
        }
        return result
    }
}

/// A split virtqueue (virtio spec v1.2 §2.7) whose three areas lie in guest RAM:
///
/// | area | layout | alignment |
/// |---|---|---|
/// | descriptor table | `size` × {addr u64, len u32, flags u16, next u16} | 16 |
/// | available ring (driver area) | flags u16, idx u16, ring[size] u16, (used_event u16) | 2 |
/// | used ring (device area) | flags u16, idx u16, ring[size] {id u32, len u32}, (avail_event u16) | 4 |
///
/// All fields are little-endian. Every ring and buffer access goes through `GuestMemory`'s bounds checks,
/// and every index the driver supplies is checked against `size`. `VIRTIO_F_EVENT_IDX` and
/// `VIRTIO_F_INDIRECT_DESC` are not offered, so `used_event`/`avail_event` are never read or written and an
/// indirect descriptor is an error.
public struct Virtqueue: Sendable {
    /// `VIRTQ_DESC_F_NEXT`, `VIRTQ_DESC_F_WRITE`, `VIRTQ_DESC_F_INDIRECT`.
    public static let descNext: UInt16 = 1, descWrite: UInt16 = 2, descIndirect: UInt16 = 4
    /// `VIRTQ_AVAIL_F_NO_INTERRUPT`: the driver does not want an interrupt for used buffers.
    public static let availNoInterrupt: UInt16 = 1
    /// Largest split-queue size (spec §2.7: "the maximum Queue Size value is 32768").
    public static let largestSize: UInt16 = 32768

    /// Which queue of its device this is (for error messages).
    public let index: Int
    /// `QueueNumMax`: the largest size the device accepts.
    public let maxSize: UInt16
    /// `QueueNum`: entries in each area (a power of two, at most `maxSize`).
    public var size: UInt16
    /// `QueueReady`.
    public var ready = false
    /// `QueueDesc`: guest physical address of the descriptor table.
    public var descriptorTable: UInt64 = 0
    /// `QueueDriver`: guest physical address of the available ring.
    public var availableRing: UInt64 = 0
    /// `QueueDevice`: guest physical address of the used ring.
    public var usedRing: UInt64 = 0
    /// Free-running count of chains taken from the available ring (`last_avail_idx` in Linux's vhost).
    public private(set) var nextAvailable: UInt16 = 0
    /// Free-running count of elements put in the used ring (the used `idx` the device last published).
    public private(set) var nextUsed: UInt16 = 0

    /// A queue with `size == maxSize`, not ready.
    public init(index: Int, maxSize: UInt16) {
        self.index = index
        self.maxSize = maxSize
        self.size = maxSize
    }

    /// Back to the power-on state (after a device reset or a queue reset).
    public mutating func reset() {
        size = maxSize
        ready = false
        descriptorTable = 0
        availableRing = 0
        usedRing = 0
        nextAvailable = 0
        nextUsed = 0
    }

    /// Whether `n` is a size the driver may choose: a power of two from 1 to `maxSize`.
    public func accepts(size n: UInt16) -> Bool { n > 0 && n <= maxSize && n & (n - 1) == 0 }

    /// Checks the size, the alignment of the three areas and that each lies wholly inside guest RAM.
    /// - Throws: `VirtioError.invalidQueue`.
    public func validate(memory: GuestMemory) throws(VirtioError) {
        guard accepts(size: size) else {
            throw .invalidQueue(index: index, reason: "size \(size) is not a power of two from 1 to \(maxSize)")
        }
        let n = Int(size)
        let areas: [(String, UInt64, Int, UInt64)] = [
            ("descriptor table", descriptorTable, 16 * n, 16),
            ("available ring", availableRing, 4 + 2 * n, 2),
            ("used ring", usedRing, 4 + 8 * n, 4),
        ]
        for (name, address, length, alignment) in areas {
            guard address % alignment == 0 else {
                throw .invalidQueue(
                    index: index, reason: "\(name) at 0x\(hex(address)) is not \(alignment)-byte aligned")
            }
            do { _ = try memory.pointer(at: address, length: length) } catch {
                throw .invalidQueue(
                    index: index, reason: "\(name) [0x\(hex(address)), +\(length)) is outside guest RAM")
            }
        }
    }

    func load<T: FixedWidthInteger>(_: T.Type, _ address: UInt64, _ memory: GuestMemory, _ what: String)
        throws(VirtioError) -> T
    {
        do { return try memory.read(T.self, at: address) } catch {
            throw .memory(queue: index, "\(what) at 0x\(hex(address)) is outside guest RAM")
        }
    }

    func store<T: FixedWidthInteger>(_ value: T, _ address: UInt64, _ memory: GuestMemory, _ what: String)
        throws(VirtioError)
    {
        do { try memory.write(value, at: address) } catch {
            throw .memory(queue: index, "\(what) at 0x\(hex(address)) is outside guest RAM")
        }
    }

    /// Chains the driver has made available and the device has not taken yet.
    /// - Throws: `VirtioError.availableIndex` when the driver's `idx` is more than `size` ahead.
    public func pending(memory: GuestMemory) throws(VirtioError) -> UInt16 {
        let available = try load(UInt16.self, availableRing + 2, memory, "available idx")
        let n = available &- nextAvailable
        guard n <= size else {
            throw .availableIndex(queue: index, available: available, taken: nextAvailable, size: size)
        }
        return n
    }

    /// Takes the next chain from the available ring, or nil when there is none.
    ///
    /// Follows `VIRTQ_DESC_F_NEXT` from the head, at most `size` descriptors (a longer walk is a loop),
    /// checking every index against `size` and every buffer against guest RAM, and that no
    /// device-readable buffer follows a device-writable one (spec §2.7.4.2). The chain is consumed even
    /// when it is invalid.
    /// - Throws: `VirtioError.availableIndex`, `.invalidChain`, `.memory`.
    public mutating func pop(memory: GuestMemory) throws(VirtioError) -> DescriptorChain? {
        guard try pending(memory: memory) > 0 else { return nil }
        let slot = UInt64(nextAvailable % size)
        let head = try load(UInt16.self, availableRing + 4 + 2 * slot, memory, "available ring entry")
        nextAvailable &+= 1
        guard head < size else {
            throw .invalidChain(queue: index, head: head, reason: "head index \(head) is past the queue size \(size)")
        }
        var descriptors: [VirtqDescriptor] = []
        var i = head
        var sawWritable = false
        while true {
            guard descriptors.count < Int(size) else {
                throw .invalidChain(queue: index, head: head, reason: "more than \(size) descriptors: the chain loops")
            }
            let base = descriptorTable + 16 * UInt64(i)
            let address = try load(UInt64.self, base, memory, "descriptor \(i)")
            let length = try load(UInt32.self, base + 8, memory, "descriptor \(i)")
            let flags = try load(UInt16.self, base + 12, memory, "descriptor \(i)")
            let next = try load(UInt16.self, base + 14, memory, "descriptor \(i)")
            guard flags & Self.descIndirect == 0 else {
                throw .invalidChain(
                    queue: index, head: head,
                    reason: "descriptor \(i) is indirect, but VIRTIO_F_INDIRECT_DESC is not offered")
            }
            let writable = flags & Self.descWrite != 0
            guard writable || !sawWritable else {
                throw .invalidChain(
                    queue: index, head: head, reason: "descriptor \(i) is device-readable after a device-writable one")
            }
            sawWritable = sawWritable || writable
            do { _ = try memory.pointer(at: address, length: Int(length)) } catch {
                throw .invalidChain(
                    queue: index, head: head,
                    reason:
                        "descriptor \(i) buffer [0x\(hex(address)), +\(length)) is outside guest RAM (\(memory.layoutDescription))"
                )
            }
            descriptors.append(VirtqDescriptor(address: address, length: length, isWriteOnly: writable))
            guard flags & Self.descNext != 0 else { break }
            guard next < size else {
                throw .invalidChain(
                    queue: index, head: head, reason: "descriptor \(i) links to \(next), past the queue size \(size)")
            }
            i = next
        }
        return DescriptorChain(head: head, descriptors: descriptors)
    }

    /// Puts `{id: head, len: length}` in the used ring and then publishes the new used `idx`.
    /// `length` is the number of bytes the device wrote into the chain's writable buffers.
    /// - Throws: `VirtioError.memory` when the used ring is outside guest RAM.
    public mutating func pushUsed(head: UInt16, length: UInt32, memory: GuestMemory) throws(VirtioError) {
        let slot = UInt64(nextUsed % size)
        let element = usedRing + 4 + 8 * slot
        try store(UInt32(head), element, memory, "used ring element")
        try store(length, element + 4, memory, "used ring element")
        nextUsed &+= 1
        // The element is stored before idx; x86 keeps stores in order (spec §2.7.8.2 wants a write barrier here).
        try store(nextUsed, usedRing + 2, memory, "used idx")
    }

    /// Whether the driver asked for no interrupts (`VIRTQ_AVAIL_F_NO_INTERRUPT` in the available ring's flags).
    public func interruptSuppressed(memory: GuestMemory) -> Bool {
        let flags = (try? load(UInt16.self, availableRing, memory, "available flags")) ?? 0
        return flags & Self.availNoInterrupt != 0
    }
}
