/// A 16550A-compatible UART (8250 family) as a level-signalled state machine, for COM1 at 0x3f8 / IRQ 4.
///
/// Register map (offset from the base; DLAB = LCR bit 7), microvm.md §3.8:
///
/// | off | read | write |
/// |---|---|---|
/// | 0 | RBR: pops the input queue (DLL when DLAB) | THR: the byte goes to `output` at once (DLL when DLAB) |
/// | 1 | IER (DLM when DLAB) | IER & 0x0f (DLM when DLAB) |
/// | 2 | IIR: 0xC0 (FIFOs on) \| pending source; reading a THRE source clears it | FCR (bit 1 clears the input queue) |
/// | 3 | LCR | LCR |
/// | 4 | MCR | MCR (bit 4 loopback: THR goes to RBR, MSR mirrors DTR/RTS/OUT1/OUT2) |
/// | 5 | LSR: THRE \| TEMT (0x60), plus DR when input waits | ignored |
/// | 6 | MSR: DCD \| DSR \| CTS (0xB0) | ignored |
/// | 7 | SCR | SCR |
///
/// Interrupt sources, by priority: received data (IIR 0x04) when IER bit 0 is set and input waits;
/// THR empty (IIR 0x02) when IER bit 1 is set and a THRE event is pending. A THRE event is raised by
/// each THR write and by each IER write that enables THRE (the THR is always empty here), which is how
/// a real 16550 behaves and what Linux's `UART_BUG_THRE`/`UART_BUG_TXEN` probes expect (microvm.md §5
/// bug 5: re-evaluate pending interrupts on IER writes). `onInterrupt` is called whenever the level
/// of the interrupt line changes; wire it to `KVM_IRQ_LINE` for IRQ 4.
///
/// Output is handed to `output` from the vCPU thread; the sink must not block (microvm.md §5 bug 6).
public final class Serial8250: PortIODevice {
    /// Register offsets from the base port.
    public enum Register: UInt16 {
        case data = 0, interruptEnable = 1, interruptIdentification = 2, lineControl = 3
        case modemControl = 4, lineStatus = 5, modemStatus = 6, scratch = 7
    }

    /// IER bits.
    public static let ierReceivedData: UInt8 = 0x01, ierTHREmpty: UInt8 = 0x02
    /// IIR values (low nibble) and the FIFO-enabled bits.
    public static let iirNone: UInt8 = 0x01, iirTHREmpty: UInt8 = 0x02, iirReceivedData: UInt8 = 0x04
    public static let iirFIFOEnabled: UInt8 = 0xc0
    /// LSR bits.
    public static let lsrDataReady: UInt8 = 0x01, lsrTHREmpty: UInt8 = 0x20, lsrTransmitterEmpty: UInt8 = 0x40
    /// LCR bit 7: divisor latch access.
    public static let lcrDLAB: UInt8 = 0x80
    /// MCR bit 4: loopback.
    public static let mcrLoop: UInt8 = 0x10
    /// MSR when not in loopback: DCD | DSR | CTS.
    public static let msrDefault: UInt8 = 0xb0

    /// Receives each transmitted byte.
    public let output: (UInt8) -> Void
    /// Called with the new level when the interrupt line changes.
    public var onInterrupt: (Bool) -> Void
    /// Called when the guest turns the THR-empty interrupt (IER bit 1) on (true) or off. While it
    /// is off, nothing the guest waits for follows a THR write, so the VMM may let KVM coalesce
    /// those writes (`VirtualMachine.setCoalescedPIO`); while it is on, each write must reach the
    /// device at once to raise that interrupt.
    public var onTransmitInterruptEnable: ((Bool) -> Void)?

    public private(set) var interruptEnable: UInt8 = 0
    public private(set) var lineControl: UInt8 = 0x03
    public private(set) var modemControl: UInt8 = 0x08
    public private(set) var scratch: UInt8 = 0
    /// Baud-rate divisor (DLM:DLL); 12 = 9600 baud from the 1.8432 MHz clock.
    public private(set) var divisor: UInt16 = 12
    /// Bytes waiting to be read from RBR.
    public private(set) var input: [UInt8] = []
    var inputHead = 0
    var thrEmptyPending = false
    /// Current level of the interrupt line.
    public private(set) var interruptLine = false

    /// - Parameters:
    ///   - output: sink for transmitted bytes (called on the vCPU thread; must not block).
    ///   - onInterrupt: interrupt line level changes.
    public init(output: @escaping (UInt8) -> Void, onInterrupt: @escaping (Bool) -> Void = { _ in }) {
        self.output = output
        self.onInterrupt = onInterrupt
    }

    var dlab: Bool { lineControl & Self.lcrDLAB != 0 }
    var loopback: Bool { modemControl & Self.mcrLoop != 0 }
    var hasInput: Bool { inputHead < input.count }

    /// Most bytes `enqueueInput` keeps waiting for the guest (64 KiB): enough for a paste, bounded
    /// when the guest never reads.
    public static let inputCapacity = 65536

    /// Bytes waiting to be read from RBR.
    public var pendingInputCount: Int { input.count - inputHead }

    /// Queues bytes for the guest to read (the console's stdin), raising the received-data interrupt
    /// when IER bit 0 enables it. Takes at most `inputCapacity - pendingInputCount` bytes.
    /// - Returns: how many bytes of `bytes` were queued, from the start; offer the rest again later.
    @discardableResult
    public func enqueueInput(_ bytes: some Collection<UInt8>) -> Int {
        let n = min(bytes.count, max(0, Self.inputCapacity - pendingInputCount))
        input.append(contentsOf: bytes.prefix(n))
        updateInterrupt()
        return n
    }

    /// The IIR value a read would return now (without the read's side effect).
    public var interruptIdentification: UInt8 {
        if interruptEnable & Self.ierReceivedData != 0 && hasInput { return Self.iirFIFOEnabled | Self.iirReceivedData }
        if interruptEnable & Self.ierTHREmpty != 0 && thrEmptyPending { return Self.iirFIFOEnabled | Self.iirTHREmpty }
        return Self.iirFIFOEnabled | Self.iirNone
    }

    /// LSR now: the transmitter is always empty; DR while input waits.
    public var lineStatus: UInt8 {
        Self.lsrTHREmpty | Self.lsrTransmitterEmpty | (hasInput ? Self.lsrDataReady : 0)
    }

    /// MSR now. In loopback, DTR→DSR, RTS→CTS, OUT1→RI, OUT2→DCD (8250 datasheet).
    public var modemStatus: UInt8 {
        guard loopback else { return Self.msrDefault }
        let m = modemControl
        return ((m & 0x01) << 5) | ((m & 0x02) << 3) | ((m & 0x04) << 4) | ((m & 0x08) << 4)
    }

    public func read(offset: UInt16) -> UInt8 {
        guard let register = Register(rawValue: offset) else { return 0xff }
        switch register {
        case .data:
            if dlab { return UInt8(divisor & 0xff) }
            guard hasInput else { return 0 }
            let b = input[inputHead]
            inputHead += 1
            if inputHead == input.count {
                input.removeAll(keepingCapacity: true)
                inputHead = 0
            }
            updateInterrupt()
            return b
        case .interruptEnable:
            return dlab ? UInt8(divisor >> 8) : interruptEnable
        case .interruptIdentification:
            let iir = interruptIdentification
            if iir & 0x0f == Self.iirTHREmpty {
                thrEmptyPending = false
                updateInterrupt()
            }
            return iir
        case .lineControl: return lineControl
        case .modemControl: return modemControl
        case .lineStatus: return lineStatus
        case .modemStatus: return modemStatus
        case .scratch: return scratch
        }
    }

    public func write(offset: UInt16, value: UInt8) {
        guard let register = Register(rawValue: offset) else { return }
        switch register {
        case .data:
            if dlab {
                divisor = (divisor & 0xff00) | UInt16(value)
                return
            }
            if loopback {
                input.append(value)
            } else {
                output(value)
            }
            thrEmptyPending = true
        case .interruptEnable:
            if dlab {
                divisor = (divisor & 0x00ff) | (UInt16(value) << 8)
                return
            }
            let wasTHRI = interruptEnable & Self.ierTHREmpty != 0
            interruptEnable = value & 0x0f
            let isTHRI = interruptEnable & Self.ierTHREmpty != 0
            if isTHRI { thrEmptyPending = true }
            if isTHRI != wasTHRI { onTransmitInterruptEnable?(isTHRI) }
        case .interruptIdentification:
            if value & 0x02 != 0 {
                input.removeAll()
                inputHead = 0
            }
        case .lineControl: lineControl = value
        case .modemControl: modemControl = value & 0x1f
        case .lineStatus, .modemStatus: return
        case .scratch: scratch = value
        }
        updateInterrupt()
    }

    func updateInterrupt() {
        let level = interruptIdentification & 0x01 == 0
        if level != interruptLine {
            interruptLine = level
            onInterrupt(level)
        }
    }
}
