import KVM
import Testing

/// The VM's virtio-mmio wiring: fixed windows and GSIs, the kernel command line that announces them,
/// and a virtio-blk request served through the bus as a vCPU's MMIO exits would reach it.
@Suite struct VirtioMMIODevicesTests {
    final class Lines {
        var changes: [(gsi: UInt32, level: Bool)] = []
    }

    func make() throws -> (VirtioMMIODevices, Lines) {
        let lines = Lines()
        let devices = VirtioMMIODevices(memory: try GuestMemory(size: 1 << 20)) { lines.changes.append(($0, $1)) }
        return (devices, lines)
    }

    @Test func devicesGetConsecutiveWindowsAndGSIsFromFirecrackersBase() throws {
        let (devices, _) = try make()
        let a = try TempImage(sectors: 8), b = try TempImage(sectors: 8)
        let first = try devices.add(try VirtioBlock(path: a.path))
        let second = try devices.add(try VirtioBlock(path: b.path, readOnly: true))
        #expect(first.address == 0xd000_0000 && first.gsi == 5)
        #expect(second.address == 0xd000_1000 && second.gsi == 6)
        #expect(devices.slots.count == 2)
        // Each window answers with the virtio magic and its own device; the gap after them is empty.
        let handler = devices.bus.runLoopHandler
        #expect(handler(0xd000_0000, false, []) == [0x76, 0x69, 0x72, 0x74])  // "virt"
        #expect(handler(0xd000_1008, false, []) == [2, 0, 0, 0])  // DeviceID: block
        #expect(handler(0xd000_2000, false, []) == [0xff, 0xff, 0xff, 0xff])
    }

    @Test func commandLineAnnouncesEachDeviceAsFirecrackerDoes() throws {
        let (devices, _) = try make()
        #expect(devices.commandLine == "")
        #expect(devices.commandLine(appendingTo: "console=ttyS0") == "console=ttyS0")
        let a = try TempImage(sectors: 8), b = try TempImage(sectors: 8)
        try devices.add(try VirtioBlock(path: a.path))
        try devices.add(try VirtioBlock(path: b.path))
        #expect(
            devices.commandLine == "virtio_mmio.device=4K@0xd0000000:5 virtio_mmio.device=4K@0xd0001000:6")
        #expect(
            devices.commandLine(appendingTo: "console=ttyS0 reboot=k")
                == "console=ttyS0 reboot=k virtio_mmio.device=4K@0xd0000000:5 virtio_mmio.device=4K@0xd0001000:6")
        #expect(devices.commandLine(appendingTo: "") == devices.commandLine)
    }

    @Test func gsisRunOutAfterPin23() throws {
        let (devices, _) = try make()
        let image = try TempImage(sectors: 1)
        for _ in 0..<VirtioMMIODevices.capacity { try devices.add(try VirtioBlock(path: image.path, readOnly: true)) }
        #expect(devices.slots.last?.gsi == 23)
        #expect(throws: KVMError.self) { try devices.add(try VirtioBlock(path: image.path, readOnly: true)) }
    }

    @Test func aRequestThroughTheBusReachesTheImageAndRaisesTheDevicesGSI() throws {
        let (devices, lines) = try make()
        let other = try TempImage(sectors: 8), image = try TempImage(sectors: 8)
        try devices.add(try VirtioBlock(path: other.path))
        let slot = try devices.add(try VirtioBlock(path: image.path))
        let d = VirtioTestDriver(slot: slot, memory: devices.memory, handler: devices.bus.runLoopHandler)
        try d.start()
        let header: UInt64 = 0x20000, data: UInt64 = 0x21000, status: UInt64 = 0x30000
        let pattern = (0..<512).map { UInt8(truncatingIfNeeded: $0 ^ 0x5a) }
        try d.memory.write(pattern, at: data)
        try d.memory.write(VirtioBlock.typeOut, at: header)
        try d.memory.write(UInt32(0), at: header + 4)
        try d.memory.write(UInt64(3), at: header + 8)
        try d.memory.write(UInt8(0xee), at: status)
        try d.submit([(header, 16, false), (data, 512, false), (status, 1, true)])
        #expect(try d.memory.read(UInt8.self, at: status) == VirtioBlock.statusOK)
        #expect(image.contents(at: 3 * 512, length: 512) == pattern)
        #expect(other.contents(at: 3 * 512, length: 512) == [UInt8](repeating: 3, count: 512))
        // GSI 6 rises with the used buffer and falls when the driver acknowledges it.
        #expect(lines.changes.map(\.gsi) == [6] && lines.changes.map(\.level) == [true])
        d.write(.interruptACK, d.read(.interruptStatus))
        #expect(lines.changes.map(\.gsi) == [6, 6] && lines.changes.map(\.level) == [true, false])
    }

    @Test func aReadOnlyDiskOffersROAndFailsWritesThroughTheBus() throws {
        let (devices, _) = try make()
        let image = try TempImage(sectors: 8)
        let slot = try devices.add(try VirtioBlock(path: image.path, readOnly: true))
        let d = VirtioTestDriver(slot: slot, memory: devices.memory, handler: devices.bus.runLoopHandler)
        d.write(.deviceFeaturesSel, 0)
        #expect(d.read(.deviceFeatures) & UInt32(VirtioBlock.featureReadOnly) != 0)
        try d.start()
        let header: UInt64 = 0x20000, data: UInt64 = 0x21000, status: UInt64 = 0x30000
        try d.memory.write([UInt8](repeating: 0xcc, count: 512), at: data)
        try d.memory.write(VirtioBlock.typeOut, at: header)
        try d.memory.write(UInt64(0), at: header + 8)
        try d.submit([(header, 16, false), (data, 512, false), (status, 1, true)])
        #expect(try d.memory.read(UInt8.self, at: status) == VirtioBlock.statusIOError)
        #expect(image.contents(at: 0, length: 512) == [UInt8](repeating: 0, count: 512))
    }
}
