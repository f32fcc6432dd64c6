import KVM
import Testing

/// virtio-console through the MMIO transport: host input into posted receive buffers, guest output out.
@Suite struct VirtioConsoleTests {
    final class Sink {
        var chunks: [[UInt8]] = []
    }

    func make() throws -> (VirtioTestDriver, VirtioConsole, Sink) {
        let sink = Sink()
        let console = VirtioConsole(queueSize: 8) { sink.chunks.append($0) }
        let d = try VirtioTestDriver(device: console)
        #expect(d.read(.deviceID) == 3)
        try d.start(queues: 2)
        return (d, console, sink)
    }

    @Test func transmittedChainsReachTheSinkInOrder() throws {
        let (d, _, sink) = try make()
        try d.memory.write(Array("hello, ".utf8), at: 0x30000)
        try d.memory.write(Array("world\n".utf8), at: 0x30100)
        try d.submit([(0x30000, 7, false), (0x30100, 6, false)], queue: 1)
        #expect(sink.chunks == [Array("hello, world\n".utf8)])
        #expect(d.usedIdx(1) == 1)
        #expect(try d.used(0, queue: 1).1 == 0)
        #expect(d.read(.interruptStatus) == Virtio.interruptUsedBuffer)
    }

    @Test func inputFillsPostedReceiveBuffers() throws {
        let (d, console, _) = try make()
        try d.submit([(0x40000, 4, true)], queue: 0)
        try d.submit([(0x40100, 16, true)], queue: 0)
        #expect(d.usedIdx(0) == 0)  // nothing to deliver yet
        #expect(d.levels.isEmpty)
        console.enqueueInput(Array("ls -l\n".utf8))
        d.transport.service(queue: 0)
        #expect(d.usedIdx(0) == 2)
        #expect(try d.used(0, queue: 0).1 == 4 && d.used(1, queue: 0).1 == 2)
        #expect(try d.memory.read(at: 0x40000, length: 4) == Array("ls -".utf8))
        #expect(try d.memory.read(at: 0x40100, length: 2) == Array("l\n".utf8))
        #expect(console.pendingInput == 0)
        #expect(d.levels == [true])
    }

    @Test func inputWaitsForTheDriverToPostBuffers() throws {
        let (d, console, _) = try make()
        console.enqueueInput([1, 2, 3])
        d.transport.service(queue: 0)
        #expect(d.usedIdx(0) == 0)
        #expect(console.pendingInput == 3)
        // Posting a buffer notifies receiveq, which delivers what waited.
        try d.submit([(0x40000, 2, true)], queue: 0)
        #expect(try d.memory.read(at: 0x40000, length: 2) == [1, 2])
        #expect(console.pendingInput == 1)
        try d.submit([(0x40100, 8, true)], queue: 0)
        #expect(try d.memory.read(UInt8.self, at: 0x40100) == 3)
        #expect(try d.used(1, queue: 0).1 == 1)
        #expect(console.pendingInput == 0)
    }
}
