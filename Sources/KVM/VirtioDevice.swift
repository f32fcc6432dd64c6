/// A virtio device behind a transport (`VirtioMMIOTransport`): the device type's own features, its config
/// space and what it does with buffers. The transport owns feature negotiation, the queues' registers and
/// the interrupt; the device only sees negotiated features and ready queues.
///
/// Calls come from whichever thread drives the transport, one at a time (the transport holds its lock).
public protocol VirtioDevice: AnyObject {
    /// `VIRTIO_ID_*` (spec v1.2 §5): 2 block, 3 console, …
    var deviceID: UInt32 { get }
    /// Device-type feature bits offered (bits 0–23; the transport adds `VIRTIO_F_VERSION_1`).
    var deviceFeatures: UInt64 { get }
    /// `QueueNumMax` of each queue; the count is the number of queues.
    var queueMaxSizes: [UInt16] { get }
    /// The device configuration space as the driver reads it at offset 0x100 of the MMIO window.
    var configSpace: [UInt8] { get }
    /// The driver wrote `data` at `offset` of the config space. Most devices ignore it.
    func writeConfig(offset: Int, data: [UInt8])
    /// The driver set `DRIVER_OK` having accepted `features`.
    func activate(features: UInt64)
    /// Handles what the driver made available on `queue` (after a `QueueNotify` or a host-side event).
    /// - Returns: whether used buffers were added (the transport then interrupts the driver).
    /// - Throws: `VirtioError` for a broken ring or chain; the transport sets `DEVICE_NEEDS_RESET`.
    func process(queue: inout Virtqueue, memory: GuestMemory) throws(VirtioError) -> Bool
    /// Back to the power-on state: the driver wrote 0 to Status.
    func reset()
}

extension VirtioDevice {
    public func writeConfig(offset: Int, data: [UInt8]) {}
    public func activate(features: UInt64) {}
    public func reset() {}
}

/// Constants from the virtio spec v1.2 shared by every transport and device.
public enum Virtio {
    /// Device status bits (§2.1).
    public static let statusAcknowledge: UInt32 = 1, statusDriver: UInt32 = 2, statusDriverOK: UInt32 = 4
    public static let statusFeaturesOK: UInt32 = 8, statusNeedsReset: UInt32 = 0x40, statusFailed: UInt32 = 0x80
    /// `VIRTIO_F_VERSION_1` (bit 32): the modern interface; required by the v2 MMIO transport.
    public static let featureVersion1: UInt64 = 1 << 32
    /// InterruptStatus bits (§4.2.2): a used buffer was added; the configuration changed.
    public static let interruptUsedBuffer: UInt32 = 1, interruptConfigChange: UInt32 = 2
    /// `VIRTIO_ID_BLOCK`, `VIRTIO_ID_CONSOLE`.
    public static let idBlock: UInt32 = 2, idConsole: UInt32 = 3
}
