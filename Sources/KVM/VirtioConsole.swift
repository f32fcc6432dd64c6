import Synchronization

/// virtio-console (`VIRTIO_ID_CONSOLE` 3; virtio spec v1.2 §5.3) with one port and no features
/// (no `VIRTIO_CONSOLE_F_SIZE`, `_MULTIPORT` or `_EMERG_WRITE`): the guest's `/dev/hvc0`.
///
/// Queue 0 (receiveq) carries host input to the guest: `enqueueInput(_:)` buffers bytes and the monitor
/// then calls `VirtioMMIOTransport.service(queue: 0)`; each device-writable chain the driver posted takes
/// as many bytes as fit. Input waits (unbounded) while the driver has posted no buffers and is kept across a
/// device reset. Queue 1 (transmitq) carries guest output: each chain's readable bytes go to `output` in
/// order, and the chain is returned with len 0. `output` runs on the vCPU thread and must not block
/// (microvm.md §5 bug 6); this is the bulk console, the 8250 is for early boot.
public final class VirtioConsole: VirtioDevice {
    /// Receives each transmitted chunk.
    public let output: ([UInt8]) -> Void
    /// Host input not yet delivered.
    let input = Mutex<[UInt8]>([])
    /// Size of each queue.
    public let queueSize: UInt16

    /// - Parameters:
    ///   - queueSize: `QueueNumMax` of both queues (a power of two).
    ///   - output: sink for the guest's output (called on the vCPU thread; must not block).
    public init(queueSize: UInt16 = 64, output: @escaping ([UInt8]) -> Void) {
        self.queueSize = queueSize
        self.output = output
    }

    public var deviceID: UInt32 { Virtio.idConsole }
    public var deviceFeatures: UInt64 { 0 }
    public var queueMaxSizes: [UInt16] { [queueSize, queueSize] }
    /// cols, rows, max_nr_ports, emerg_wr: meaningful only with features not offered, so zero.
    public var configSpace: [UInt8] { [UInt8](repeating: 0, count: 12) }

    /// Queues bytes for the guest; call `service(queue: 0)` on the transport afterwards. Any thread.
    public func enqueueInput(_ bytes: some Sequence<UInt8>) {
        input.withLock { $0.append(contentsOf: bytes) }
    }

    /// Bytes waiting for receive buffers.
    public var pendingInput: Int { input.withLock { $0.count } }

    public func process(queue: inout Virtqueue, memory: GuestMemory) throws(VirtioError) -> Bool {
        queue.index == 0 ? try receive(&queue, memory) : try transmit(&queue, memory)
    }

    func receive(_ queue: inout Virtqueue, _ memory: GuestMemory) throws(VirtioError) -> Bool {
        var used = false
        let pending = input.withLock { p in
            defer { p.removeAll() }
            return p
        }
        var taken = 0
        defer {
            let rest = pending[taken...]
            input.withLock { $0.insert(contentsOf: rest, at: 0) }
        }
        while taken < pending.count, try queue.pending(memory: memory) > 0, let chain = try queue.pop(memory: memory) {
            var written = 0
            for s in DescriptorChain.segments(
                of: chain.writable, from: 0, length: UInt64(pending.count - taken))
            {
                try? memory.write(pending[(taken + written)..<(taken + written + s.length)], at: s.address)
                written += s.length
            }
            taken += written
            try queue.pushUsed(head: chain.head, length: UInt32(written), memory: memory)
            used = true
        }
        return used
    }

    func transmit(_ queue: inout Virtqueue, _ memory: GuestMemory) throws(VirtioError) -> Bool {
        var used = false
        while let chain = try queue.pop(memory: memory) {
            var bytes: [UInt8] = []
            for d in chain.readable { bytes += (try? memory.read(at: d.address, length: Int(d.length))) ?? [] }
            if !bytes.isEmpty { output(bytes) }
            try queue.pushUsed(head: chain.head, length: 0, memory: memory)
            used = true
        }
        return used
    }
}
