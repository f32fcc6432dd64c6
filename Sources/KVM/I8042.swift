/// A stub i8042 keyboard controller at ports 0x60 (data) and 0x64 (status/command): enough for a
/// guest to reset the machine (`reboot=k`), for Linux's probe to read the controller byte, and for
/// the host to press Ctrl+Alt+Del (Firecracker's `SendCtrlAltDel`).
///
/// Register at base 0x60 with length 5. Writing command 0xFE ("pulse reset line") to 0x64 calls
/// `onReset`; Firecracker's `devices/legacy/i8042.rs` treats it as "stop the VM" (microvm.md §3.7).
/// Also: 0x20 reads the control byte (CTR), 0x60 writes it with the next data byte, 0xD0/0xD1
/// read/write the output port, 0xAA self-test answers 0x55; any other byte written to 0x60 is a
/// command to the keyboard, which acknowledges it with 0xFA. Replies and key scancodes wait in a
/// 16-byte output buffer; the status register reports OBF (bit 0) while it holds a byte.
///
/// Keyboard interrupts (IRQ 1) are pulses through `onInterrupt`, sent only while CTR bit 0 (keyboard
/// interrupt enable) is set: one per injected key or keyboard reply, and again after each read of 0x60
/// that leaves bytes behind, as Firecracker does.
public final class I8042: PortIODevice {
    /// Data port offset (0x60) and status/command port offset (0x64) from base 0x60.
    public static let dataOffset: UInt16 = 0, commandOffset: UInt16 = 4
    /// The reset command.
    public static let resetCommand: UInt8 = 0xfe
    /// CTR bit 0: the controller raises IRQ 1 when keyboard data arrives.
    public static let ctrKeyboardInterrupt: UInt8 = 0x01
    /// The keyboard's acknowledgement of a command byte.
    public static let acknowledge: UInt8 = 0xfa
    /// Ctrl, Alt and Delete pressed, in scan code set 2 (no controller translation: CTR bit 6 is clear):
    /// Ctrl 0x14, Alt 0x11, Delete 0xE0 0x71. The same bytes Firecracker sends.
    public static let ctrlAltDelScancodes: [UInt8] = [0x14, 0x11, 0xe0, 0x71]
    /// Size of the output buffer in bytes (Firecracker's `BUF_SIZE`).
    public static let bufferSize = 16

    /// Called on the reset command (from the vCPU thread).
    public let onReset: () -> Void
    /// Pulses IRQ 1; wire it to `KVM_IRQ_LINE` 1 then 0.
    public var onInterrupt: () -> Void
    /// Whether the guest has asked for a reset.
    public private(set) var resetRequested = false
    /// Controller configuration byte (CTR). 0x47 would enable keyboard interrupts; 0 keeps everything off.
    public private(set) var controlByte: UInt8 = 0
    var outputPort: UInt8 = 0x01
    var pendingWrite: UInt8? = nil
    /// Bytes waiting at port 0x60, oldest first.
    public private(set) var output: [UInt8] = []

    /// - Parameters:
    ///   - onReset: what to do when the guest writes 0xFE to port 0x64.
    ///   - onInterrupt: pulses IRQ 1.
    public init(onReset: @escaping () -> Void = {}, onInterrupt: @escaping () -> Void = {}) {
        self.onReset = onReset
        self.onInterrupt = onInterrupt
    }

    /// Presses Ctrl+Alt+Del: queues `ctrlAltDelScancodes` and raises IRQ 1 (when CTR allows). Linux's
    /// atkbd turns it into `ctrl_alt_del()`: an immediate reboot, or SIGINT to init once init has turned
    /// that off (busybox's `::ctrlaltdel:` action, systemd's `ctrl-alt-del.target`).
    /// - Returns: false, queuing nothing, when the output buffer has no room for all four bytes.
    @discardableResult
    public func pressCtrlAltDel() -> Bool {
        guard Self.bufferSize - output.count >= Self.ctrlAltDelScancodes.count else { return false }
        output += Self.ctrlAltDelScancodes
        interrupt()
        return true
    }

    func interrupt() {
        if controlByte & Self.ctrKeyboardInterrupt != 0 { onInterrupt() }
    }

    /// Replaces whatever waits at 0x60 with the reply to a controller command.
    func reply(_ byte: UInt8) { output = [byte] }

    public func read(offset: UInt16) -> UInt8 {
        switch offset {
        case Self.dataOffset:
            guard !output.isEmpty else { return 0 }
            let b = output.removeFirst()
            if !output.isEmpty { interrupt() }
            return b
        case Self.commandOffset:
            // Status: OBF (bit 0) when a byte waits; system flag (bit 2) set after self-test.
            return (output.isEmpty ? 0 : 0x01) | 0x04
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
            case 0x20: reply(controlByte)
            case 0x60, 0xd1: pendingWrite = value
            case 0xd0: reply(outputPort)
            case 0xaa: reply(0x55)
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
            default:
                // A command for the keyboard itself (LEDs, scan code set, …): acknowledged, not acted on.
                reply(Self.acknowledge)
                interrupt()
            }
            pendingWrite = nil
        default:
            break
        }
    }
}
