/// The VM's virtio-mmio devices: each gets a `VirtioMMIOTransport` in the next 4 KiB window from
/// `GuestLayout.virtioMMIOBase` on an `MMIOBus`, and the next GSI from `GuestLayout.virtioFirstGSI`.
///
/// Linux learns about them from the kernel command line, one `virtio_mmio.device=4K@0xADDR:GSI` per
/// device (`drivers/virtio/virtio_mmio.c`, which needs `CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES`; Firecracker
/// and QEMU microvm pass the same), or from ACPI (`LNRO0005` devices in the DSDT) built from `slots`.
///
/// Interrupts: each transport's line level goes to `interrupt(gsi, level)`; wire it to `KVM_IRQ_LINE`
/// (`VirtualMachine.setIRQLine`). The IOAPIC pins of ISA IRQs are edge-triggered: the line rises when
/// InterruptStatus becomes non-zero and falls when the driver acknowledges everything, so Linux's
/// `vm_interrupt` (read status, ack, run the used ring) sees every buffer.
///
/// Add every device before the vCPUs start (the bus is not locked).
public final class VirtioMMIODevices {
    /// One device's place on the bus.
    public struct Slot {
        /// Guest physical address of its 4 KiB window.
        public let address: UInt64
        /// The GSI (IOAPIC pin) it raises.
        public let gsi: UInt32
        /// Its transport.
        public let transport: VirtioMMIOTransport

        /// `virtio_mmio.device=4K@0xd0000000:5`.
        public var commandLineParameter: String { "virtio_mmio.device=4K@0x\(hex(address)):\(gsi)" }
    }

    /// Last GSI a device may use (IOAPIC pin 23).
    public static let lastGSI: UInt32 = 23
    /// How many devices fit: GSIs `virtioFirstGSI…lastGSI`.
    public static let capacity = Int(lastGSI - GuestLayout.virtioFirstGSI) + 1

    /// Guest RAM the devices' queues live in.
    public let memory: GuestMemory
    /// The bus the transports are registered on.
    public let bus: MMIOBus
    let interrupt: (UInt32, Bool) -> Void
    /// The devices, in the order added.
    public private(set) var slots: [Slot] = []

    /// - Parameters:
    ///   - memory: guest RAM.
    ///   - bus: where the windows go (a fresh bus by default).
    ///   - interrupt: `(gsi, level)` whenever a device's interrupt line changes (called with that
    ///     transport's lock held; must not call back into it).
    public init(memory: GuestMemory, bus: MMIOBus = MMIOBus(), interrupt: @escaping (UInt32, Bool) -> Void) {
        self.memory = memory
        self.bus = bus
        self.interrupt = interrupt
    }

    /// The kernel command-line parameter of device `index` (`virtio_mmio.device=4K@0xADDR:GSI`),
    /// the same as its `Slot`'s once added; for a command line known before the devices exist.
    public static func commandLineParameter(ofDevice index: Int) -> String {
        let (address, gsi) = placement(index)
        return "virtio_mmio.device=4K@0x\(hex(address)):\(gsi)"
    }

    /// Where device `index` goes: its window's address and its GSI.
    public static func placement(_ index: Int) -> (address: UInt64, gsi: UInt32) {
        (
            GuestLayout.virtioMMIOBase + UInt64(index) * VirtioMMIOTransport.windowSize,
            GuestLayout.virtioFirstGSI + UInt32(index)
        )
    }

    /// Puts `device` behind a transport in the next window.
    /// - Throws: `KVMError.layout` when all `capacity` GSIs are taken or the window overlaps a device
    ///   registered on `bus` by other code.
    @discardableResult
    public func add(_ device: any VirtioDevice) throws -> Slot {
        guard slots.count < Self.capacity else {
            throw KVMError.layout(
                "a VM takes at most \(Self.capacity) virtio-mmio devices (GSI \(GuestLayout.virtioFirstGSI)…\(Self.lastGSI))"
            )
        }
        let (address, gsi) = Self.placement(slots.count)
        let raise = interrupt
        let transport = VirtioMMIOTransport(device: device, memory: memory) { level in raise(gsi, level) }
        try bus.register(transport, base: address, length: VirtioMMIOTransport.windowSize)
        let slot = Slot(address: address, gsi: gsi, transport: transport)
        slots.append(slot)
        return slot
    }

    /// The devices' kernel command-line parameters, space-separated ("" with no devices).
    public var commandLine: String { slots.map(\.commandLineParameter).joined(separator: " ") }

    /// `base` with the devices' parameters appended (a space between them when both are non-empty).
    public func commandLine(appendingTo base: String) -> String {
        [base, commandLine].filter { !$0.isEmpty }.joined(separator: " ")
    }
}
