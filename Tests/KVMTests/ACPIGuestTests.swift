import Foundation
import KVM
import Testing

/// The ACPI tables and the local APIC setup against the real /dev/kvm: a guest that finds the
/// tables the way Linux does, the LINT registers read back through KVM, ACPI power-off.
@Suite(.enabled(if: kvmUsable, kvmSkipReason))
struct ACPIGuestTests {
    @Test(arguments: [1, 4, 16])
    func guestWalksRSDPToXSDTToMADTAndCountsEveryVCPU(vcpus: Int) throws {
        let machine = try TestMachine(image: try TestGuest.build("acpi"))
        try ACPITables(vcpuCount: vcpus).write(to: machine.vm.memory)
        let stop = try machine.vcpu.runUntilStop(bus: machine.bus)
        print("acpi guest, tables for \(vcpus) vCPUs: \(machine.text.debugDescription)")
        #expect(stop == .reset)
        #expect(machine.text == "acpi cpus \(vcpus) ioapics 1\n")
    }

    @Test func guestFindsNoRSDPInEmptyMemory() throws {
        let machine = try TestMachine(image: try TestGuest.build("acpi"))
        #expect(try machine.vcpu.runUntilStop(bus: machine.bus) == .reset)
        #expect(machine.text == "acpi error 1\n")
    }

    @Test func guestRejectsABadMADTChecksum() throws {
        let machine = try TestMachine(image: try TestGuest.build("acpi"))
        let tables = try ACPITables(vcpuCount: 2).layout()
        try ACPITables(vcpuCount: 2).write(to: machine.vm.memory)
        let madt = try #require(tables.first { $0.signature == "APIC" })
        try machine.vm.memory.write([madt.bytes[44] &+ 1], at: madt.address + 44)
        #expect(try machine.vcpu.runUntilStop(bus: machine.bus) == .reset)
        #expect(machine.text == "acpi error 6\n")
    }

    @Test func s5WriteToTheSleepControlRegisterPowersOff() throws {
        let machine = try TestMachine(image: try TestGuest.build("acpi", defines: ["POWEROFF": "1"]))
        try ACPITables(vcpuCount: 1).write(to: machine.vm.memory)
        let shutdown = ACPIShutdown { [weak bus = machine.bus] in
            bus?.requestStop(.powerOff)
        }
        try machine.bus.register(shutdown, base: ACPIShutdown.port, length: 1)
        let stop = try machine.vcpu.runUntilStop(bus: machine.bus)
        #expect(stop == .powerOff)
        #expect(shutdown.powerOffRequested)
        #expect(machine.text == "acpi cpus 1 ioapics 1\n")
    }
}

/// The LINT setup on the in-kernel local APICs (no guest needed).
@Suite(.enabled(if: KVMSystem.isAvailable, "needs read-write /dev/kvm (root)"))
struct LocalAPICTests {
    @Test func lint0IsExtINTAndLint1IsNMIOnEveryVCPUAndAPsWaitForSIPI() throws {
        let system = try KVMSystem()
        let vm = try VirtualMachine(system: system, memorySize: 2 << 20)
        try vm.createIRQChip()
        let vcpus = try (0..<4).map { try vm.createVCPU(id: UInt32($0)) }
        let before = try vcpus.map { try $0.localAPIC() }
        for v in vcpus { try LocalAPIC.configureLINT(v) }
        for (i, v) in vcpus.enumerated() {
            let page = try v.localAPIC()
            let lint0 = LocalAPIC.register(page, LocalAPIC.lint0Offset)
            let lint1 = LocalAPIC.register(page, LocalAPIC.lint1Offset)
            print(
                "vCPU \(i): LINT0 0x\(String(LocalAPIC.register(before[i], LocalAPIC.lint0Offset), radix: 16))"
                    + " → 0x\(String(lint0, radix: 16)), LINT1 → 0x\(String(lint1, radix: 16)), mp_state \(try v.mpState())"
            )
            #expect(LocalAPIC.deliveryMode(lint0) == LocalAPIC.deliveryModeExtINT)
            #expect(LocalAPIC.deliveryMode(lint1) == LocalAPIC.deliveryModeNMI)
            // Only the delivery mode changed; the mask bits are KVM's.
            #expect(
                lint0 & ~LocalAPIC.deliveryModeMask == LocalAPIC.register(before[i], LocalAPIC.lint0Offset) & ~LocalAPIC
                    .deliveryModeMask)
            #expect(LocalAPIC.register(page, LocalAPIC.idOffset) >> 24 == UInt32(i))
            // The BSP runs; the APs wait for the guest's INIT/SIPI.
            #expect(MPState(rawValue: try v.mpState()) == (i == 0 ? .runnable : .uninitialized))
        }
    }

    @Test func withoutTheInKernelIRQChipThereIsNoLocalAPIC() throws {
        let vm = try VirtualMachine(system: try KVMSystem(), memorySize: 2 << 20)
        let vcpu = try vm.createVCPU(id: 0)
        #expect(throws: KVMError.self) { try LocalAPIC.configureLINT(vcpu) }
    }

    @Test func deliveryModeArithmetic() {
        #expect(LocalAPIC.setDeliveryMode(0x1_0000, LocalAPIC.deliveryModeExtINT) == 0x1_0700)
        #expect(LocalAPIC.setDeliveryMode(0x1_0700, LocalAPIC.deliveryModeNMI) == 0x1_0400)
        var page = [UInt8](repeating: 0, count: LocalAPIC.stateSize)
        LocalAPIC.setRegister(&page, LocalAPIC.lint1Offset, 0x1234_5678)
        #expect(page[0x360..<0x364] == [0x78, 0x56, 0x34, 0x12])
        #expect(LocalAPIC.register(page, LocalAPIC.lint1Offset) == 0x1234_5678)
    }

    @Test func shutdownDeviceIgnoresEverythingButS5WithSleepEnable() {
        var calls = 0
        let d = ACPIShutdown { calls += 1 }
        d.write(offset: 0, value: 0x80)  // WAK_STS clear, as Linux writes first
        d.write(offset: 0, value: 5 << 2)  // S5 without SLP_EN
        d.write(offset: 0, value: 3 << 2 | 0x20)  // S3
        #expect(calls == 0 && !d.powerOffRequested && d.read(offset: 0) == 0)
        d.write(offset: 0, value: 5 << 2 | 0x20)
        #expect(calls == 1 && d.powerOffRequested)
    }
}
