import KVM
import Testing

/// The UART as a state machine, driven by register reads and writes as a guest driver would.
@Suite struct Serial8250Tests {
    final class Recorder {
        var output: [UInt8] = []
        var levels: [Bool] = []
    }

    func make() -> (Serial8250, Recorder) {
        let r = Recorder()
        let uart = Serial8250(output: { r.output.append($0) }, onInterrupt: { r.levels.append($0) })
        return (uart, r)
    }

    typealias Reg = Serial8250.Register
    func read(_ u: Serial8250, _ reg: Reg) -> UInt8 { u.read(offset: reg.rawValue) }
    func write(_ u: Serial8250, _ reg: Reg, _ v: UInt8) { u.write(offset: reg.rawValue, value: v) }

    @Test func idleTransmitterIsEmptyAndNothingIsPending() {
        let (u, r) = make()
        #expect(read(u, .lineStatus) == 0x60)  // THRE | TEMT
        #expect(read(u, .interruptIdentification) == 0xc1)  // FIFOs on, no interrupt
        #expect(read(u, .modemStatus) == 0xb0)  // DCD | DSR | CTS
        #expect(read(u, .data) == 0)
        #expect(r.levels.isEmpty)
    }

    @Test func transmittedBytesReachTheSinkInOrder() {
        let (u, r) = make()
        for b in "hi\n".utf8 { write(u, .data, b) }
        #expect(r.output == Array("hi\n".utf8))
        #expect(read(u, .lineStatus) == 0x60)
        // IER is 0: THR writes raise no interrupt.
        #expect(read(u, .interruptIdentification) == 0xc1)
        #expect(r.levels.isEmpty)
    }

    /// The monitor lets KVM coalesce THR writes only while the guest polls; it must hear of every
    /// change of IER's THR-empty bit, and of nothing else (VMMachine wires this to
    /// VirtualMachine.setCoalescedPIO).
    @Test func theTransmitInterruptBitIsReportedWhenItChanges() {
        let (u, _) = make()
        var seen: [Bool] = []
        u.onTransmitInterruptEnable = { seen.append($0) }
        write(u, .interruptEnable, Serial8250.ierReceivedData)  // RX only: no change of THRI
        write(u, .interruptEnable, Serial8250.ierReceivedData | Serial8250.ierTHREmpty)
        write(u, .interruptEnable, Serial8250.ierTHREmpty)  // still on
        write(u, .lineControl, 0x83)  // DLAB: IER's port is the divisor's high byte now
        write(u, .interruptEnable, 0)
        write(u, .lineControl, 0x03)
        write(u, .interruptEnable, 0)
        #expect(seen == [true, false])
        #expect(u.divisor >> 8 == 0, "the DLAB write went to the divisor")
    }

    @Test func divisorLatchShadowsDataAndIER() {
        let (u, r) = make()
        write(u, .interruptEnable, 0x01)
        write(u, .lineControl, 0x80 | 0x03)  // DLAB, 8N1
        write(u, .data, 0x01)  // DLL
        write(u, .interruptEnable, 0x00)  // DLM
        #expect(read(u, .data) == 0x01)
        #expect(read(u, .interruptEnable) == 0x00)
        #expect(u.divisor == 1)  // 115200 baud
        #expect(r.output.isEmpty)  // the DLL write was not a THR write
        write(u, .lineControl, 0x03)
        #expect(read(u, .lineControl) == 0x03)
        #expect(read(u, .interruptEnable) == 0x01)  // IER untouched by the DLM write
        write(u, .lineControl, 0x83)
        write(u, .interruptEnable, 0x12)
        #expect(u.divisor == 0x1201)
    }

    @Test func enablingTHREInterruptRaisesItAndReadingIIRClearsIt() {
        let (u, r) = make()
        write(u, .interruptEnable, Serial8250.ierTHREmpty)
        #expect(u.interruptLine)
        #expect(read(u, .interruptIdentification) == 0xc2)
        #expect(read(u, .interruptIdentification) == 0xc1)  // cleared by the read
        #expect(!u.interruptLine)
        // Each THR write empties the THR again: THRE pending once more.
        write(u, .data, UInt8(ascii: "x"))
        #expect(read(u, .interruptIdentification) == 0xc2)
        #expect(r.levels == [true, false, true, false])
    }

    @Test func ierRewriteReassertsTHRELikeLinuxProbesExpect() {
        // serial8250_do_startup's UART_BUG_THRE probe: enable THRI, read IIR, disable, enable, read IIR.
        let (u, _) = make()
        write(u, .interruptEnable, 0x02)
        #expect(read(u, .interruptIdentification) & 0x0f == 0x02)
        write(u, .interruptEnable, 0x00)
        #expect(read(u, .interruptIdentification) & 0x0f == 0x01)
        write(u, .interruptEnable, 0x02)
        #expect(read(u, .interruptIdentification) & 0x0f == 0x02)
        // Masking THRI drops the line while the event stays pending.
        write(u, .data, 0x41)
        write(u, .interruptEnable, 0x00)
        #expect(!u.interruptLine)
    }

    @Test func scratchRegisterEchoes() {
        let (u, _) = make()
        for v: UInt8 in [0x00, 0x55, 0xaa, 0xff] {
            write(u, .scratch, v)
            #expect(read(u, .scratch) == v)
        }
    }

    @Test func inputSetsDataReadyAndReceivedDataOutranksTHRE() {
        let (u, r) = make()
        u.enqueueInput(Array("ab".utf8))
        #expect(read(u, .lineStatus) == 0x61)
        #expect(!u.interruptLine)  // IER 0
        write(u, .interruptEnable, 0x03)
        #expect(read(u, .interruptIdentification) == 0xc4)
        #expect(read(u, .data) == UInt8(ascii: "a"))
        #expect(read(u, .interruptIdentification) == 0xc4)  // still one byte waiting
        #expect(read(u, .data) == UInt8(ascii: "b"))
        #expect(read(u, .lineStatus) == 0x60)
        #expect(read(u, .interruptIdentification) == 0xc2)  // now THRE shows
        #expect(read(u, .interruptIdentification) == 0xc1)
        #expect(r.levels.last == false)
    }

    @Test func receivedDataInterruptFollowsIERAndTheLastByteRead() {
        let (u, r) = make()
        write(u, .interruptEnable, Serial8250.ierReceivedData)
        #expect(!u.interruptLine)  // nothing waits yet
        #expect(read(u, .lineStatus) & Serial8250.lsrDataReady == 0)
        #expect(u.enqueueInput(Array("ok".utf8)) == 2)
        #expect(u.interruptLine)  // typed input raises IRQ 4 at once
        #expect(read(u, .interruptIdentification) == 0xc4)
        #expect(read(u, .interruptIdentification) == 0xc4)  // reading IIR does not clear RDA
        write(u, .interruptEnable, 0)  // Linux masks RX around a console write…
        #expect(!u.interruptLine)
        write(u, .interruptEnable, Serial8250.ierReceivedData)  // …and the line comes back on unmask
        #expect(u.interruptLine)
        #expect(read(u, .data) == UInt8(ascii: "o"))
        #expect(u.interruptLine)
        #expect(read(u, .data) == UInt8(ascii: "k"))
        #expect(!u.interruptLine)
        #expect(read(u, .lineStatus) == 0x60)
        #expect(read(u, .interruptIdentification) == 0xc1)
        #expect(r.levels == [true, false, true, false])
        // An empty RBR reads 0 and changes nothing.
        #expect(read(u, .data) == 0)
        #expect(r.levels.count == 4)
    }

    @Test func receivedDataStaysAboveTHREUntilTheInputIsDrained() {
        let (u, _) = make()
        write(u, .interruptEnable, Serial8250.ierReceivedData | Serial8250.ierTHREmpty)
        u.enqueueInput([0x41])
        write(u, .data, 0x42)  // a THR write makes THRE pending as well
        #expect(read(u, .interruptIdentification) == 0xc4)
        #expect(read(u, .interruptIdentification) == 0xc4)  // THRE is not consumed behind RDA
        #expect(read(u, .data) == 0x41)
        #expect(read(u, .interruptIdentification) == 0xc2)
        #expect(read(u, .interruptIdentification) == 0xc1)
    }

    @Test func inputBeyondTheCapacityIsRefusedNotDropped() {
        let (u, _) = make()
        let big = [UInt8](repeating: 0x61, count: Serial8250.inputCapacity - 1)
        #expect(u.enqueueInput(big) == big.count)
        #expect(u.enqueueInput([0x62, 0x63, 0x64]) == 1)  // room for one more
        #expect(u.pendingInputCount == Serial8250.inputCapacity)
        #expect(u.enqueueInput([0x63]) == 0)
        #expect(read(u, .data) == 0x61)
        #expect(u.enqueueInput([0x63, 0x64]) == 1)  // one byte read, one byte of room
    }

    @Test func guestReadsInputThroughThePortBus() throws {
        let bus = PortIOBus()
        let (u, _) = make()
        try bus.register(u, base: 0x3f8, length: 8)
        u.enqueueInput(Array("hi".utf8))
        #expect(bus.read(port: 0x3fd, size: 1, count: 1) == [0x61])  // LSR: THRE | TEMT | DR
        #expect(bus.read(port: 0x3f8, size: 1, count: 2) == Array("hi".utf8))  // rep insb
        #expect(bus.read(port: 0x3fd, size: 1, count: 1) == [0x60])
    }

    @Test func fifoControlClearsInput() {
        let (u, _) = make()
        u.enqueueInput([1, 2, 3])
        write(u, .interruptIdentification, 0x07)  // FCR: enable, clear RX, clear TX
        #expect(read(u, .lineStatus) & Serial8250.lsrDataReady == 0)
    }

    @Test func loopbackSendsTHRToRBRAndMirrorsModemLines() {
        let (u, r) = make()
        write(u, .modemControl, 0x10 | 0x0f)  // LOOP, OUT2, OUT1, RTS, DTR
        #expect(read(u, .modemStatus) == 0xf0)  // DCD, RI, DSR, CTS
        write(u, .modemControl, 0x10 | 0x0a)  // LOOP, OUT2, RTS
        #expect(read(u, .modemStatus) == 0x90)  // DCD, CTS
        write(u, .data, 0x5a)
        #expect(r.output.isEmpty)
        #expect(read(u, .lineStatus) & Serial8250.lsrDataReady != 0)
        #expect(read(u, .data) == 0x5a)
        write(u, .modemControl, 0x0b)
        #expect(read(u, .modemStatus) == 0xb0)
    }
}
