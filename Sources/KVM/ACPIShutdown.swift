import CKVM

/// The hardware-reduced ACPI sleep control and status registers (ACPI 6.5 §4.8.3.7), one byte at
/// I/O port 0x600, so a guest's `poweroff` stops the VM (cloud-hypervisor's shutdown device does
/// the same at 0x3c0). `ACPIFADT.sleepPort` points SLEEP_CONTROL_REG and SLEEP_STATUS_REG here and
/// `ACPIDSDT` declares `\_S5_` with SLP_TYP 5.
///
/// Sleep control (write): SLP_TYPx bits 4:2, SLP_EN bit 5. Linux's `acpi_hw_extended_sleep` first
/// writes WAK_STS (0x80) to the status register to clear it, then SLP_TYP | SLP_EN (0x34 for S5).
/// A write with SLP_EN and SLP_TYP 5 calls `onPowerOff`; any other write is ignored. Sleep status
/// (read): 0, no wake event.
public final class ACPIShutdown: PortIODevice {
    /// The register's I/O port (where QEMU's ICH9 places its ACPI PM block).
    public static let port: UInt16 = 0x600
    /// SLP_EN, and the shift and mask of SLP_TYPx in the sleep control register.
    public static let sleepEnable: UInt8 = 1 << 5, sleepTypeShift: UInt8 = 2, sleepTypeMask: UInt8 = 0x7

    /// Called on an S5 request (from the vCPU thread); wire it to `bus.requestStop(.powerOff)`.
    public let onPowerOff: () -> Void
    /// Whether the guest has asked for S5.
    public private(set) var powerOffRequested = false

    public init(onPowerOff: @escaping () -> Void) {
        self.onPowerOff = onPowerOff
    }

    public func read(offset: UInt16) -> UInt8 { 0 }

    public func write(offset: UInt16, value: UInt8) {
        guard value & Self.sleepEnable != 0,
            (value >> Self.sleepTypeShift) & Self.sleepTypeMask == ACPIDSDT.s5SleepType
        else { return }
        powerOffRequested = true
        onPowerOff()
    }
}

extension GuestStop {
    /// What a VMM requests when `ACPIShutdown` sees S5: the stop KVM itself reports for a guest power-off
    /// (`KVM_EXIT_SYSTEM_EVENT` of type `KVM_SYSTEM_EVENT_SHUTDOWN`, no flags).
    public static let powerOff = GuestStop.systemEvent(type: UInt32(KVM_SYSTEM_EVENT_SHUTDOWN), flags: 0)
}
