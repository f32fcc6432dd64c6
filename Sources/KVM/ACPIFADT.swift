/// The Fixed ACPI Description Table, signature "FACP" (ACPI 6.5 §5.2.9), revision 6: 276 bytes.
///
/// A hardware-reduced platform (§4.1) as Firecracker builds it: no SCI, no PM1/PM2/PM timer/GPE
/// blocks, so every legacy field stays 0. What is set:
///
/// | offset | field | value |
/// |---|---|---|
/// | 109 | IAPC_BOOT_ARCH (§5.2.9.3) | 8042 (bit 1): Linux's i8042 driver probes ports 0x60/0x64 without a `PNP0303` device, so Ctrl+Alt+Del from the host reaches it; VGA Not Present (bit 2), MSI Not Supported (bit 3), PCIe ASPM Controls (bit 4), CMOS RTC Not Present (bit 5) |
/// | 112 | Flags (§5.2.9, fixed feature flags) | PWR_BUTTON (bit 4), SLP_BUTTON (bit 5): no fixed-feature buttons; RESET_REG_SUP (bit 10); HW_REDUCED_ACPI (bit 20) |
/// | 116 | RESET_REG (GAS, §5.2.3.2) | System I/O port 0x64, 8 bits: the i8042's command port |
/// | 128 | RESET_VALUE | 0xfe: "pulse reset line", so ACPI reboot (`reboot=a`, Linux's first choice) reaches `I8042` |
/// | 131 | FADT Minor Version | 5 |
/// | 140 | X_DSDT | the DSDT's address (the 32-bit DSDT field stays 0) |
/// | 244 / 256 | SLEEP_CONTROL_REG / SLEEP_STATUS_REG (GAS) | System I/O `sleepPort`, 8 bits, when set (`ACPIShutdown`) |
/// | 268 | Hypervisor Vendor Identity | "SKIFFKVM" |
///
/// With the sleep registers and `\_S5_` in the DSDT, Linux registers `acpi_power_off`, and
/// `poweroff` writes SLP_TYP 5 | SLP_EN to `sleepPort` (§4.8.3.7, `acpi_hw_extended_sleep`), as
/// cloud-hypervisor's shutdown device at port 0x3c0 receives it.
public struct ACPIFADT: Sendable {
    /// FADT length for revision 6 (Linux's `ACPI_FADT_V6_SIZE`).
    public static let size = 276
    /// Header revision (FADT Major Version) and FADT Minor Version.
    public static let revision: UInt8 = 6, minorVersion: UInt8 = 5
    /// Field offsets.
    public static let iapcBootArchOffset = 109, flagsOffset = 112, resetRegisterOffset = 116
    public static let resetValueOffset = 128, minorVersionOffset = 131, xDSDTOffset = 140
    public static let sleepControlOffset = 244, sleepStatusOffset = 256, hypervisorVendorOffset = 268
    /// IAPC_BOOT_ARCH bits.
    public static let bootArch8042: UInt16 = 1 << 1
    public static let bootArchVGANotPresent: UInt16 = 1 << 2, bootArchMSINotSupported: UInt16 = 1 << 3
    public static let bootArchASPMControls: UInt16 = 1 << 4, bootArchNoCMOSRTC: UInt16 = 1 << 5
    /// Fixed feature flags.
    public static let flagPowerButton: UInt32 = 1 << 4, flagSleepButton: UInt32 = 1 << 5
    public static let flagResetRegister: UInt32 = 1 << 10, flagHardwareReduced: UInt32 = 1 << 20
    /// GAS Address Space ID for System I/O (§5.2.3.2).
    public static let systemIOSpace: UInt8 = 1
    /// The i8042 command port and its reset command, as the ACPI reset register.
    public static let resetPort: UInt16 = 0x64, resetValue: UInt8 = 0xfe
    /// Hypervisor Vendor Identity (8 bytes).
    public static let hypervisorVendor = "SKIFFKVM"

    /// I/O port of the sleep control and status registers, or nil for none (no ACPI power-off).
    public var sleepPort: UInt16?

    public init(sleepPort: UInt16? = ACPIShutdown.port) {
        self.sleepPort = sleepPort
    }

    /// IAPC_BOOT_ARCH value.
    public static let bootArch =
        bootArch8042 | bootArchVGANotPresent | bootArchMSINotSupported | bootArchASPMControls | bootArchNoCMOSRTC
    /// Flags value.
    public static let flags = flagPowerButton | flagSleepButton | flagResetRegister | flagHardwareReduced

    /// The 276 bytes with `dsdtAddress` in X_DSDT.
    public func bytes(dsdtAddress: UInt64) -> [UInt8] {
        var body = [UInt8](repeating: 0, count: Self.size - ACPITables.headerSize)
        func put(_ offset: Int, _ bytes: [UInt8]) {
            let at = offset - ACPITables.headerSize
            body.replaceSubrange(at..<at + bytes.count, with: bytes)
        }
        func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }
        put(Self.iapcBootArchOffset, le(Self.bootArch))
        put(Self.flagsOffset, le(Self.flags))
        put(Self.resetRegisterOffset, Self.ioRegister(Self.resetPort))
        put(Self.resetValueOffset, [Self.resetValue])
        put(Self.minorVersionOffset, [Self.minorVersion])
        put(Self.xDSDTOffset, le(dsdtAddress))
        if let port = sleepPort {
            put(Self.sleepControlOffset, Self.ioRegister(port))
            put(Self.sleepStatusOffset, Self.ioRegister(port))
        }
        put(Self.hypervisorVendorOffset, Array(Self.hypervisorVendor.utf8))
        return ACPITables.table("FACP", revision: Self.revision, body: body)
    }

    /// A Generic Address Structure (§5.2.3.2) for a one-byte System I/O register at `port`: space 1,
    /// bit width 8, bit offset 0, access size 1 (byte), address.
    public static func ioRegister(_ port: UInt16) -> [UInt8] {
        var w = LittleEndianWriter()
        w.u8(systemIOSpace)
        w.u8(8)
        w.u8(0)
        w.u8(1)
        w.u64(UInt64(port))
        return w.bytes
    }
}
