import Synchronization

/// The virtio-mmio transport, version 2 ("modern"; virtio spec v1.2 §4.2.2), in one 4 KiB MMIO window:
///
/// | off | register | |
/// |---|---|---|
/// | 0x000 | MagicValue 0x74726976 ("virt") | R |
/// | 0x004 | Version 2 | R |
/// | 0x008 / 0x00c | DeviceID / VendorID | R |
/// | 0x010 / 0x014 | DeviceFeatures / DeviceFeaturesSel (32 bits per sel) | R / W |
/// | 0x020 / 0x024 | DriverFeatures / DriverFeaturesSel | W / W |
/// | 0x030 | QueueSel | W |
/// | 0x034 | QueueNumMax (0: no such queue) | R |
/// | 0x038 | QueueNum | W |
/// | 0x044 | QueueReady | RW |
/// | 0x050 | QueueNotify (the queue index) | W |
/// | 0x060 / 0x064 | InterruptStatus / InterruptACK (bit 0 used buffer, bit 1 config change) | R / W |
/// | 0x070 | Status (writing 0 resets the device) | RW |
/// | 0x080–0x0a4 | QueueDesc, QueueDriver, QueueDevice, low/high halves | W |
/// | 0x0fc | ConfigGeneration | R |
/// | 0x100+ | device config space, any width | RW |
///
/// Registers take only aligned 32-bit accesses (§4.2.2.2: "the driver MUST use only 32 bit wide and
/// aligned reads and writes"); other accesses read 0 and are dropped. The transport enforces the
/// initialisation order of §3.1.1: driver features are taken only between DRIVER and FEATURES_OK,
/// FEATURES_OK is refused (reads back clear) when the driver accepted a feature the device did not offer
/// or did not accept `VIRTIO_F_VERSION_1`, queues are configured only while FEATURES_OK is set and
/// DRIVER_OK is not, and a notify is served only after DRIVER_OK. A broken queue sets DEVICE_NEEDS_RESET
/// and raises a config-change interrupt (§2.1.2); the device is then left alone until a reset.
///
/// `onInterrupt` gets the level of the interrupt line (InterruptStatus ≠ 0) whenever it changes: wire it to
/// `KVM_IRQ_LINE` for the GSI the guest was told about. All entry points take one lock, so vCPU threads
/// and host-side callers (`service(queue:)`) may call concurrently.
public final class VirtioMMIOTransport: MMIODevice {
    /// Register offsets in the MMIO window.
    public enum Register: UInt64 {
        case magicValue = 0x000, version = 0x004, deviceID = 0x008, vendorID = 0x00c
        case deviceFeatures = 0x010, deviceFeaturesSel = 0x014
        case driverFeatures = 0x020, driverFeaturesSel = 0x024
        case queueSel = 0x030, queueNumMax = 0x034, queueNum = 0x038, queueReady = 0x044
        case queueNotify = 0x050, interruptStatus = 0x060, interruptACK = 0x064, status = 0x070
        case queueDescLow = 0x080, queueDescHigh = 0x084, queueDriverLow = 0x090, queueDriverHigh = 0x094
        case queueDeviceLow = 0x0a0, queueDeviceHigh = 0x0a4, configGeneration = 0x0fc
    }

    /// "virt" little-endian.
    public static let magic: UInt32 = 0x7472_6976
    /// Size of the MMIO window (Firecracker's `MMIO_LEN`); register it on an `MMIOBus` with this length.
    public static let windowSize: UInt64 = 0x1000
    /// Offset of the device config space.
    public static let configOffset: UInt64 = 0x100
    /// VendorID: "SKIF" little-endian. Linux's driver does not look at it.
    public static let vendor: UInt32 = 0x4649_4b53

    /// The device behind the transport.
    public let device: any VirtioDevice
    /// Guest RAM the queues live in.
    public let memory: GuestMemory
    /// Called with the new interrupt line level when it changes.
    public var onInterrupt: (Bool) -> Void

    struct State {
        var status: UInt32 = 0
        var deviceFeaturesSel: UInt32 = 0
        var driverFeaturesSel: UInt32 = 0
        var driverFeatures: UInt64 = 0
        var queueSel: UInt32 = 0
        var queues: [Virtqueue]
        var interruptStatus: UInt32 = 0
        var configGeneration: UInt32 = 0
        var lastError: VirtioError?
        var line = false
    }
    let state: Mutex<State>

    /// - Parameters:
    ///   - device: the device type (`VirtioBlock`, …).
    ///   - memory: guest RAM the driver puts its queues and buffers in.
    ///   - onInterrupt: interrupt line level changes (called with the transport's lock held; must not call back).
    public init(device: any VirtioDevice, memory: GuestMemory, onInterrupt: @escaping (Bool) -> Void = { _ in }) {
        self.device = device
        self.memory = memory
        self.onInterrupt = onInterrupt
        let queues = device.queueMaxSizes.enumerated().map { Virtqueue(index: $0.offset, maxSize: $0.element) }
        state = Mutex(State(queues: queues))
    }

    /// Every feature the driver may accept: the device's plus `VIRTIO_F_VERSION_1`.
    public var offeredFeatures: UInt64 { device.deviceFeatures | Virtio.featureVersion1 }

    /// The Status register.
    public var status: UInt32 { state.withLock { $0.status } }
    /// The InterruptStatus register.
    public var interruptStatus: UInt32 { state.withLock { $0.interruptStatus } }
    /// Features the driver accepted (meaningful once FEATURES_OK is set).
    public var driverFeatures: UInt64 { state.withLock { $0.driverFeatures } }
    /// Why DEVICE_NEEDS_RESET was set, if it is.
    public var lastError: VirtioError? { state.withLock { $0.lastError } }
    /// A copy of queue `index`'s state.
    public func queue(_ index: Int) -> Virtqueue? {
        state.withLock { s in s.queues.indices.contains(index) ? s.queues[index] : nil }
    }

    public func read(offset: UInt64, length: Int) -> [UInt8] {
        if offset >= Self.configOffset {
            let config = state.withLock { _ in device.configSpace }
            let start = Int(offset - Self.configOffset)
            return (0..<length).map { start + $0 < config.count ? config[start + $0] : 0 }
        }
        guard length == 4, offset % 4 == 0, let register = Register(rawValue: offset) else {
            return [UInt8](repeating: 0, count: length)
        }
        let v = state.withLock { s in read(register, &s) }
        return withUnsafeBytes(of: v.littleEndian) { Array($0) }
    }

    func read(_ register: Register, _ s: inout State) -> UInt32 {
        switch register {
        case .magicValue: return Self.magic
        case .version: return 2
        case .deviceID: return device.deviceID
        case .vendorID: return Self.vendor
        case .deviceFeatures:
            return s.deviceFeaturesSel < 2
                ? UInt32(truncatingIfNeeded: offeredFeatures >> (32 * s.deviceFeaturesSel)) : 0
        case .queueNumMax:
            return s.queues.indices.contains(Int(s.queueSel)) ? UInt32(s.queues[Int(s.queueSel)].maxSize) : 0
        case .queueReady:
            return s.queues.indices.contains(Int(s.queueSel)) && s.queues[Int(s.queueSel)].ready ? 1 : 0
        case .interruptStatus: return s.interruptStatus
        case .status: return s.status
        case .configGeneration: return s.configGeneration
        default: return 0  // write-only registers
        }
    }

    public func write(offset: UInt64, data: [UInt8]) {
        if offset >= Self.configOffset {
            state.withLock { _ in device.writeConfig(offset: Int(offset - Self.configOffset), data: data) }
            return
        }
        guard data.count == 4, offset % 4 == 0, let register = Register(rawValue: offset) else { return }
        let value = data.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) }
        state.withLock { s in
            write(register, value, &s)
            updateLine(&s)
        }
    }

    func write(_ register: Register, _ value: UInt32, _ s: inout State) {
        switch register {
        case .deviceFeaturesSel: s.deviceFeaturesSel = value
        case .driverFeaturesSel: s.driverFeaturesSel = value
        case .driverFeatures:
            // §3.1.1 step 4: features are written after DRIVER and before FEATURES_OK.
            guard s.status & Virtio.statusDriver != 0, s.status & Virtio.statusFeaturesOK == 0, s.driverFeaturesSel < 2
            else { return }
            let shift = UInt64(32 * s.driverFeaturesSel)
            s.driverFeatures = (s.driverFeatures & ~(0xffff_ffff << shift)) | (UInt64(value) << shift)
        case .queueSel: s.queueSel = value
        case .queueNum:
            guard let q = configurableQueue(s), s.queues[q].accepts(size: UInt16(clamping: value)), value <= 0xffff
            else { return }
            s.queues[q].size = UInt16(value)
        case .queueReady:
            guard let q = configurableQueue(s, evenIfReady: true) else { return }
            s.queues[q].ready = value & 1 != 0
        case .queueDescLow, .queueDescHigh, .queueDriverLow, .queueDriverHigh, .queueDeviceLow, .queueDeviceHigh:
            guard let q = configurableQueue(s) else { return }
            let high = register.rawValue & 4 != 0
            func set(_ a: inout UInt64) {
                a = high ? (a & 0xffff_ffff) | (UInt64(value) << 32) : (a & ~0xffff_ffff) | UInt64(value)
            }
            switch register {
            case .queueDescLow, .queueDescHigh: set(&s.queues[q].descriptorTable)
            case .queueDriverLow, .queueDriverHigh: set(&s.queues[q].availableRing)
            default: set(&s.queues[q].usedRing)
            }
        case .queueNotify:
            serve(queue: Int(value), &s)
        case .interruptACK:
            s.interruptStatus &= ~value
        case .status:
            writeStatus(value, &s)
        default: return  // read-only registers
        }
    }

    /// The selected queue's index when its registers may be written now: FEATURES_OK set, DRIVER_OK not,
    /// and (except for QueueReady itself) the queue not ready (§4.2.2.3).
    func configurableQueue(_ s: State, evenIfReady: Bool = false) -> Int? {
        let q = Int(s.queueSel)
        guard s.queues.indices.contains(q),
            s.status & (Virtio.statusFeaturesOK | Virtio.statusDriverOK | Virtio.statusFailed)
                == Virtio.statusFeaturesOK,
            evenIfReady || !s.queues[q].ready
        else { return nil }
        return q
    }

    func writeStatus(_ value: UInt32, _ s: inout State) {
        if value == 0 {
            resetLocked(&s)
            return
        }
        // The driver only ever adds bits (§2.1.1); a write that clears one is ignored.
        let kept = s.status & ~Virtio.statusNeedsReset
        guard value & kept == kept else { return }
        var new = value & ~Virtio.statusNeedsReset | (s.status & Virtio.statusNeedsReset)
        let added = new & ~s.status
        if added & Virtio.statusFeaturesOK != 0 {
            let accepted =
                new & Virtio.statusDriver != 0 && s.driverFeatures & ~offeredFeatures == 0
                && s.driverFeatures & Virtio.featureVersion1 != 0
            if !accepted { new &= ~Virtio.statusFeaturesOK }
        }
        if added & Virtio.statusDriverOK != 0 {
            guard new & Virtio.statusFeaturesOK != 0 else { return }
            s.status = new
            for q in s.queues.indices where s.queues[q].ready {
                do throws(VirtioError) { try s.queues[q].validate(memory: memory) } catch {
                    needsReset(error, &s)
                    return
                }
            }
            device.activate(features: s.driverFeatures)
            return
        }
        s.status = new
    }

    func resetLocked(_ s: inout State) {
        device.reset()
        s.status = 0
        s.deviceFeaturesSel = 0
        s.driverFeaturesSel = 0
        s.driverFeatures = 0
        s.queueSel = 0
        for q in s.queues.indices { s.queues[q].reset() }
        s.interruptStatus = 0
        s.lastError = nil
    }

    func needsReset(_ error: VirtioError, _ s: inout State) {
        s.lastError = error
        s.status |= Virtio.statusNeedsReset
        s.interruptStatus |= Virtio.interruptConfigChange
    }

    func serve(queue q: Int, _ s: inout State) {
        guard s.status & (Virtio.statusDriverOK | Virtio.statusNeedsReset) == Virtio.statusDriverOK,
            s.queues.indices.contains(q), s.queues[q].ready
        else { return }
        do throws(VirtioError) {
            if try device.process(queue: &s.queues[q], memory: memory), !s.queues[q].interruptSuppressed(memory: memory)
            {
                s.interruptStatus |= Virtio.interruptUsedBuffer
            }
        } catch {
            needsReset(error, &s)
        }
    }

    func updateLine(_ s: inout State) {
        let level = s.interruptStatus != 0
        if level != s.line {
            s.line = level
            onInterrupt(level)
        }
    }

    /// Processes queue `index` as if the driver had notified it: for host-side events such as console
    /// input arriving for buffers the driver already posted. Does nothing before DRIVER_OK.
    public func service(queue index: Int) {
        state.withLock { s in
            serve(queue: index, &s)
            updateLine(&s)
        }
    }

    /// Tells the driver the config space changed (e.g. a resized disk): bumps ConfigGeneration and raises
    /// the config-change interrupt.
    public func configChanged() {
        state.withLock { s in
            s.configGeneration &+= 1
            s.interruptStatus |= Virtio.interruptConfigChange
            updateLine(&s)
        }
    }
}
