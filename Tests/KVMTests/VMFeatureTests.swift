import CKVM
import KVM
import Testing

/// KVM features the monitor builds on, checked against the real /dev/kvm (kvm_pvm here).
@Suite(.enabled(if: KVMSystem.isAvailable, "needs read-write /dev/kvm (root)"))
struct VMFeatureTests {
    @Test func systemReportsAPIAndCPUID() throws {
        let system = try KVMSystem()
        try system.requireExtensions()
        #expect(try system.vcpuMmapSize() >= 4096)
        let cpuid = try system.supportedCPUID()
        #expect(cpuid.contains { $0.function == 0 && $0.eax >= 1 })  // max basic leaf
        #expect(cpuid.contains { $0.function == 1 })
        #expect(system.checkExtension(-1) == 0)  // unknown capability: absent, not an error
    }

    @Test func inKernelIRQChipPITAndIRQLine() throws {
        let system = try KVMSystem()
        let vm = try VirtualMachine(system: system, memorySize: 2 << 20)
        try vm.createIRQChip()
        try vm.createPIT2()
        try vm.setIRQLine(4, level: true)
        try vm.setIRQLine(4, level: false)
        _ = try vm.createVCPU(id: 0)
    }

    @Test func bootMSRsAfterCPUID() throws {
        let system = try KVMSystem()
        let vm = try VirtualMachine(system: system, memorySize: 2 << 20)
        let vcpu = try vm.createVCPU(id: 0)
        try vcpu.setCPUID(try system.supportedCPUID())
        // Firecracker's create_boot_msr_entries subset: SYSENTER_CS/ESP/EIP, STAR, LSTAR, MISC_ENABLE.
        let msrs: [(index: UInt32, value: UInt64)] = [
            (0x174, 0), (0x175, 0), (0x176, 0), (0xc000_0081, 0), (0xc000_0082, 0x1234_5000), (0x1a0, 1),
        ]
        try vcpu.setMSRs(msrs)
        #expect(try vcpu.msrs([0xc000_0082]) == [0x1234_5000])
    }

    @Test func immediateExitReturnsInterrupted() throws {
        let system = try KVMSystem()
        let vm = try VirtualMachine(system: system, memorySize: 2 << 20)
        let vcpu = try vm.createVCPU(id: 0)
        try vm.memory.write([0xf4], at: GuestLayout.kernelAddress)
        try LongMode.setUp(vcpu, entry: GuestLayout.kernelAddress)
        vcpu.immediateExit = true
        #expect(try vcpu.runUntilStop(bus: PortIOBus()) == .interrupted)
        #expect(!vcpu.immediateExit)
        #expect(try vcpu.runUntilStop(bus: PortIOBus()) == .halt)
    }

    @Test func mmioWriteAndReadExitOutsideRAM() throws {
        let system = try KVMSystem()
        let vm = try VirtualMachine(system: system, memorySize: 2 << 20)
        let vcpu = try vm.createVCPU(id: 0)
        // mov dword [0x800000], 0x12345678; mov eax, [0x800000]; hlt — 8 MiB is mapped but has no RAM.
        let code: [UInt8] = [
            0xc7, 0x04, 0x25, 0x00, 0x00, 0x80, 0x00, 0x78, 0x56, 0x34, 0x12,
            0x8b, 0x04, 0x25, 0x00, 0x00, 0x80, 0x00,
            0xf4,
        ]
        try vm.memory.write(code, at: GuestLayout.kernelAddress)
        try LongMode.setUp(vcpu, entry: GuestLayout.kernelAddress)
        var accesses: [(UInt64, Bool, [UInt8])] = []
        let stop = try vcpu.runUntilStop(bus: PortIOBus()) { address, isWrite, data in
            accesses.append((address, isWrite, data))
            return [0xef, 0xbe, 0xad, 0xde]
        }
        #expect(stop == .halt)
        #expect(accesses.count == 2)
        #expect(accesses.first?.0 == 0x80_0000 && accesses.first?.1 == true)
        #expect(accesses.first?.2 == [0x78, 0x56, 0x34, 0x12])
        #expect(accesses.last?.0 == 0x80_0000 && accesses.last?.1 == false)
        #expect(try vcpu.registers().rax == 0xdead_beef)
    }
}
