import KVM
import Testing

@Suite struct I8042Tests {
    @Test func resetCommandOnPort64StopsTheRunLoop() {
        var resets = 0
        let kbd = I8042 { resets += 1 }
        #expect(!kbd.resetRequested)
        kbd.write(offset: I8042.commandOffset, value: 0xfe)
        #expect(kbd.resetRequested)
        #expect(resets == 1)
    }

    @Test func resetThroughTheBusAtPort64() throws {
        let bus = PortIOBus()
        var resets = 0
        try bus.register(I8042 { resets += 1 }, base: 0x60, length: 5)
        bus.write(port: 0x60, size: 1, data: [0xfe])  // data port: not a command
        #expect(resets == 0)
        bus.write(port: 0x64, size: 1, data: [0xfe])
        #expect(resets == 1)
    }

    @Test func controlByteReadAndWrite() {
        let kbd = I8042()
        #expect(kbd.read(offset: I8042.commandOffset) & 0x01 == 0)  // OBF clear
        kbd.write(offset: I8042.commandOffset, value: 0x60)
        kbd.write(offset: I8042.dataOffset, value: 0x47)
        kbd.write(offset: I8042.commandOffset, value: 0x20)
        #expect(kbd.read(offset: I8042.commandOffset) & 0x01 == 0x01)  // OBF set
        #expect(kbd.read(offset: I8042.dataOffset) == 0x47)
        #expect(kbd.read(offset: I8042.commandOffset) & 0x01 == 0)
        #expect(!kbd.resetRequested)
    }

    @Test func ctrlAltDelQueuesSetTwoScancodesAndPulsesIRQ1OnlyWhenCTRAllows() {
        var pulses = 0
        let kbd = I8042(onInterrupt: { pulses += 1 })
        #expect(kbd.pressCtrlAltDel())
        #expect(pulses == 0)  // CTR 0: keyboard interrupt disabled
        #expect(kbd.read(offset: I8042.commandOffset) & 0x01 == 0x01)
        var bytes: [UInt8] = []
        while kbd.read(offset: I8042.commandOffset) & 0x01 != 0 { bytes.append(kbd.read(offset: I8042.dataOffset)) }
        #expect(bytes == [0x14, 0x11, 0xe0, 0x71])  // Ctrl, Alt, Delete (E0 71)
        #expect(kbd.read(offset: I8042.dataOffset) == 0)

        // Linux's i8042 driver enables the keyboard interrupt in CTR (bit 0).
        kbd.write(offset: I8042.commandOffset, value: 0x60)
        kbd.write(offset: I8042.dataOffset, value: 0x45)
        #expect(kbd.controlByte == 0x45)
        #expect(kbd.pressCtrlAltDel())
        #expect(pulses == 1)
        // Each read that leaves bytes behind pulses again, so an edge-triggered IRQ 1 is never lost.
        for _ in 0..<4 { _ = kbd.read(offset: I8042.dataOffset) }
        #expect(pulses == 4)
        #expect(!kbd.resetRequested)
    }

    @Test func ctrlAltDelIsRefusedWhenTheBufferIsFull() {
        let kbd = I8042()
        for _ in 0..<4 { #expect(kbd.pressCtrlAltDel()) }  // 16 bytes
        #expect(!kbd.pressCtrlAltDel())
        #expect(kbd.output.count == I8042.bufferSize)
    }

    @Test func keyboardCommandsAreAcknowledged() {
        var pulses = 0
        let kbd = I8042(onInterrupt: { pulses += 1 })
        kbd.write(offset: I8042.dataOffset, value: 0xed)  // set LEDs
        #expect(kbd.read(offset: I8042.dataOffset) == I8042.acknowledge)
        #expect(pulses == 0)
        kbd.write(offset: I8042.commandOffset, value: 0x60)
        kbd.write(offset: I8042.dataOffset, value: 0x01)
        kbd.write(offset: I8042.dataOffset, value: 0xf4)  // enable scanning
        #expect(pulses == 1)
        #expect(kbd.read(offset: I8042.dataOffset) == I8042.acknowledge)
    }

    @Test func outputPortResetLine() {
        var resets = 0
        let kbd = I8042 { resets += 1 }
        kbd.write(offset: I8042.commandOffset, value: 0xd1)
        kbd.write(offset: I8042.dataOffset, value: 0x00)  // bit 0 low: CPU reset
        #expect(resets == 1)
    }
}

@Suite struct PortIOBusTests {
    final class Latch: PortIODevice {
        var writes: [(UInt16, UInt8)] = []
        func read(offset: UInt16) -> UInt8 { UInt8(offset) | 0x10 }
        func write(offset: UInt16, value: UInt8) { writes.append((offset, value)) }
    }

    @Test func unmappedPortsReadAllOnes() {
        let bus = PortIOBus()
        #expect(bus.read(port: 0x2f8, size: 2, count: 1) == [0xff, 0xff])
        bus.write(port: 0x2f8, size: 1, data: [1])  // dropped, no crash
    }

    @Test func overlappingRangesAreRejected() throws {
        let bus = PortIOBus()
        try bus.register(Latch(), base: 0x3f8, length: 8)
        #expect(throws: KVMError.self) { try bus.register(Latch(), base: 0x3ff, length: 1) }
        try bus.register(Latch(), base: 0x400, length: 1)
    }

    @Test func wideAndStringAccessesSplitIntoBytes() throws {
        let bus = PortIOBus()
        let latch = Latch()
        try bus.register(latch, base: 0x100, length: 4)
        #expect(bus.read(port: 0x101, size: 2, count: 1) == [0x11, 0x12])
        bus.write(port: 0x100, size: 1, data: [7, 8, 9])  // rep outsb: same port three times
        #expect(latch.writes.map(\.0) == [0, 0, 0])
        #expect(latch.writes.map(\.1) == [7, 8, 9])
    }
}
