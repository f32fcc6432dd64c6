import Foundation
import KVM
import Testing

/// An N-vCPU VM for the `smp` guest: CPUIDPolicy tables, boot MSRs and the MP table, every vCPU started
/// in 64-bit mode at the image with its own stack (RDI = index, RSI = count), COM1 and the i8042 on a
/// shared bus, run by VMRunner.
final class SMPMachine: @unchecked Sendable {
    let vm: VirtualMachine
    let vcpus: [VCPU]
    let bus = PortIOBus()
    let runner: VMRunner
    var serialOutput: [UInt8] = []  // appended under VMRunner's bus lock

    static func stackTop(_ index: Int) -> UInt64 { 0x30_0000 + UInt64(index + 1) * 0x1_0000 }

    init(image: [UInt8], vcpuCount: Int) throws {
        let system = try KVMSystem()
        try system.requireExtensions()
        vm = try VirtualMachine(system: system, memorySize: 64 << 20)
        let policy = try CPUIDPolicy(vcpuCount: vcpuCount)
        let supported = try system.supportedCPUID()
        try MPTable(vcpuCount: vcpuCount).write(to: vm.memory)
        try vm.memory.write(image, at: GuestLayout.kernelAddress)
        var vcpus: [VCPU] = []
        for i in 0..<vcpuCount {
            let vcpu = try vm.createVCPU(id: UInt32(i))
            try vcpu.setCPUID(try policy.entries(forVCPU: i, supported: supported))
            try BootMSRs.apply(to: vcpu)
            try LongMode.setUp(
                vcpu, entry: GuestLayout.kernelAddress, stack: Self.stackTop(i), userAccessible: true,
                rflags: LongMode.rflagsIOPL3)
            var r = try vcpu.registers()
            r.rdi = UInt64(i)
            r.rsi = UInt64(vcpuCount)
            try vcpu.setRegisters(r)
            vcpus.append(vcpu)
        }
        self.vcpus = vcpus
        runner = VMRunner(vcpus: vcpus, bus: bus)
        let serial = Serial8250(output: { [unowned self] in self.serialOutput.append($0) })
        try bus.register(serial, base: 0x3f8, length: 8)
        let keyboard = I8042 { [weak bus] in bus?.requestStop(.reset) }
        try bus.register(keyboard, base: 0x60, length: 5)
    }

    var lines: [String] { String(decoding: serialOutput, as: UTF8.self).split(separator: "\n").map(String.init) }
}

@Suite(.enabled(if: kvmUsable, kvmSkipReason), .serialized)
struct SMPGuestTests {
    @Test(.timeLimit(.minutes(1)), arguments: [2, 4])
    func everyVCPUReportsItsOwnAPICIdThenI8042ResetStopsAll(vcpus n: Int) throws {
        let machine = try SMPMachine(image: try TestGuest.build("smp"), vcpuCount: n)
        let stop = try machine.runner.run()
        print("smp guest on \(n) vCPUs: \(machine.lines)")
        #expect(stop == .reset)
        #expect(machine.runner.joinedThreadCount == n)
        // "cpu I apic A x2apic X user-apic UA user-x2apic UX": A and X from CPUID at CPL 0, UA and UX at CPL 3.
        let fields = machine.lines.map { $0.split(separator: " ").map(String.init) }
        #expect(fields.allSatisfy { $0.count == 10 && $0[0] == "cpu" && $0[2] == "apic" && $0[6] == "user-apic" })
        #expect(
            Set(fields.map { "cpu \($0[1]) apic \($0[3]) x2apic \($0[5])" })
                == Set((0..<n).map { "cpu \($0) apic \($0) x2apic \($0)" }))
        if !KVMSystem.isPVM {
            // Hardware KVM intercepts CPUID at CPL 3 too; kvm_pvm without CPUID faulting does not.
            #expect(fields.allSatisfy { $0.count == 10 && $0[7] == $0[1] && $0[9] == $0[1] })
        }
        #expect(machine.lines.count == n)
    }

    @Test(.timeLimit(.minutes(1)))
    func stopEndsGuestsSpinningAtCPL3() throws {
        let machine = try SMPMachine(
            image: try TestGuest.build("smp", defines: ["SPIN_FOREVER": "1"]), vcpuCount: 2)
        let runner = machine.runner
        // Long enough for both vCPUs to reach the CPL 3 loop even when the whole suite loads the
        // two CPUs (CPL 0 start-up is emulated under kvm_pvm: 200 ms was sometimes too short).
        Thread.detachNewThread {
            usleep(1_000_000)
            runner.stop()
        }
        let started = ContinuousClock.now
        let stop = try runner.run()
        print("stop test: run returned \(stop) after \(ContinuousClock.now - started)")
        #expect(stop == .interrupted)
        #expect(runner.joinedThreadCount == 2)
        #expect(machine.serialOutput.isEmpty)
        // The vCPUs stopped in user mode, inside the spin loop.
        for v in machine.vcpus { #expect(try v.specialRegisters().cs.dpl == 3) }
        #expect(machine.vcpus.allSatisfy { !$0.immediateExit })
    }

    @Test(.timeLimit(.minutes(1)))
    func stopBeforeRunReturnsAtOnce() throws {
        let machine = try SMPMachine(
            image: try TestGuest.build("smp", defines: ["SPIN_FOREVER": "1"]), vcpuCount: 2)
        machine.runner.stop()
        #expect(try machine.runner.run() == .interrupted)
        #expect(throws: KVMError.self) { try machine.runner.run() }
    }
}

/// Things checked against the real /dev/kvm without a guest toolchain.
@Suite(.enabled(if: KVMSystem.isAvailable, "needs read-write /dev/kvm (root)"))
struct SMPKVMTests {
    @Test func bootMSRsReadBack() throws {
        let system = try KVMSystem()
        let vm = try VirtualMachine(system: system, memorySize: 2 << 20)
        let vcpu = try vm.createVCPU(id: 0)
        try vcpu.setCPUID(try CPUIDPolicy(vcpuCount: 1).entries(forVCPU: 0, supported: system.supportedCPUID()))
        try BootMSRs.apply(to: vcpu)
        let indices = BootMSRs.entries.map(\.index).filter { $0 != BootMSRs.tsc }
        let values = try vcpu.msrs(indices)
        for (index, value) in zip(indices, values) {
            let wanted = BootMSRs.entries.first { $0.index == index }?.value
            #expect(value == wanted, "MSR 0x\(String(index, radix: 16))")
        }
        print("IA32_TSC after writing 0: \(try vcpu.msrs([BootMSRs.tsc])[0]) (kvm_pvm: \(KVMSystem.isPVM))")
    }

    @Test func hostCPUIDTableGetsPerVCPUIdentity() throws {
        let system = try KVMSystem()
        let supported = try system.supportedCPUID()
        let policy = try CPUIDPolicy(vcpuCount: 2)
        let vm = try VirtualMachine(system: system, memorySize: 2 << 20)
        for i in 0..<2 {
            let t = try policy.entries(forVCPU: i, supported: supported)
            #expect(t.first { $0.function == 1 }.map { $0.ebx >> 24 } == UInt32(i))
            try vm.createVCPU(id: UInt32(i)).setCPUID(t)
        }
        let leaves = Set(supported.map(\.function)).sorted().map { "0x" + String($0, radix: 16) }
        print("KVM_GET_SUPPORTED_CPUID leaves on this host: \(leaves.joined(separator: " "))")
    }
}
