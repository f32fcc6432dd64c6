/// A stub i8042 keyboard controller at ports 0x60 (data) and 0x64 (status/command): enough for a
/// guest to reset the machine (`reboot=k`) and for Linux's probe to read the controller byte.
///
/// Register at base 0x60 with length 5. Writing command 0xFE ("pulse reset line") to 0x64 calls
/// `onReset`; Firecracker's `devices/legacy/i8042.rs` treats it as "stop the VM" (microvm.md §3.7).
/// Also: 0x20 reads the control byte (CTR), 0x60 writes it with the next data byte, 0xD0/0xD1
/// read/write the output port, 0xAA self-test answers 0x55; the status register reports OBF (bit 0)
/// while a reply waits at 0x60.
public final class I8042: PortIODevice {
    /// Data port offset (0x60) and status/command port offset (0x64) from base 0x60.
    public static let dataOffset: UInt16 = 0, commandOffset: UInt16 = 4
    /// The reset command.
    public static let resetCommand: UInt8 = 0xfe

    /// Called on the reset command (from the vCPU thread).
    public let onReset: () -> Void
    /// Whether the guest has asked for a reset.
    public private(set) var resetRequested = false
    /// Controller configuration byte (CTR). 0x47 would enable keyboard interrupts; 0 keeps everything off.
    public private(set) var controlByte: UInt8 = 0
    var outputPort: UInt8 = 0x01
    var pendingWrite: UInt8? = nil
    var output: UInt8? = nil

    /// - Parameter onReset: what to do when the guest writes 0xFE to port 0x64.
    public init(onReset: @escaping () -> Void = {}) { self.onReset = onReset }

    public func read(offset: UInt16) -> UInt8 {
        switch offset {
        case Self.dataOffset:
            defer { output = nil }
            return output ?? 0
        case Self.commandOffset:
            // Status: OBF (bit 0) when a byte waits; system flag (bit 2) set after self-test.
            return (output != nil ? 0x01 : 0) | 0x04
        default:
            return 0xff
        }
    }

    public func write(offset: UInt16, value: UInt8) {
        switch offset {
        case Self.commandOffset:
            switch value {
            case Self.resetCommand:
                resetRequested = true
                onReset()
            case 0x20: output = controlByte
            case 0x60, 0xd1: pendingWrite = value
            case 0xd0: output = outputPort
            case 0xaa: output = 0x55
            default: break
            }
        case Self.dataOffset:
            switch pendingWrite {
            case 0x60: controlByte = value
            case 0xd1:
                outputPort = value
                // Bit 0 of the output port is the CPU reset line, active low.
                if value & 1 == 0 {
                    resetRequested = true
                    onReset()
                }
            default: break
            }
            pendingWrite = nil
        default:
            break
        }
    }
}
