import Foundation
import KVM
import Testing

/// Guests started on the real `/dev/kvm`: long mode set up from the host, the work done at CPL 3
/// (native under kvm_pvm), output through the Serial8250 model, stop through the i8042 reset.
/// Skipped, with the reason printed by Swift Testing, without a usable /dev/kvm or a toolchain.
let kvmUsable = KVMSystem.isAvailable && TestGuest.toolchainAvailable
let kvmSkipReason: Comment = "needs read-write /dev/kvm (root) and gcc, ld and objcopy to build the test guests"

/// A one-vCPU VM with a guest image at 0x100000, COM1 and the i8042, ready to run.
final class TestMachine {
    let vm: VirtualMachine
    let vcpu: VCPU
    let bus = PortIOBus()
    var serialOutput: [UInt8] = []
    /// COM1 at 0x3f8 and the i8042 at 0x60, for tests that feed them from the host.
    private(set) var serial: Serial8250!
    private(set) var keyboard: I8042!

    init(image: [UInt8], memory: UInt64 = 64 << 20) throws {
        let system = try KVMSystem()
        try system.requireExtensions()
        vm = try VirtualMachine(system: system, memorySize: memory)
        vcpu = try vm.createVCPU(id: 0)
        try vcpu.setCPUID(try system.supportedCPUID())
        try vm.memory.write(image, at: GuestLayout.kernelAddress)
        try LongMode.setUp(
            vcpu, entry: GuestLayout.kernelAddress, userAccessible: true, rflags: LongMode.rflagsIOPL3)
        let serial = Serial8250(output: { [unowned self] in self.serialOutput.append($0) })
        try bus.register(serial, base: 0x3f8, length: 8)
        let keyboard = I8042 { [weak bus] in bus?.requestStop(.reset) }
        try bus.register(keyboard, base: 0x60, length: 5)
        self.serial = serial
        self.keyboard = keyboard
    }

    var text: String { String(decoding: serialOutput, as: UTF8.self) }
}

@Suite(.enabled(if: kvmUsable, kvmSkipReason))
struct GuestTests {
    @Test func helloFromCPL3ThroughTheUARTThenI8042Reset() throws {
        let machine = try TestMachine(image: try TestGuest.build("hello"))
        let stop = try machine.vcpu.runUntilStop(bus: machine.bus)
        #expect(stop == .reset)
        #expect(machine.serialOutput == Array("hello from the guest\n".utf8))
        // The guest stopped in user mode: CS.DPL = 3.
        #expect(try machine.vcpu.specialRegisters().cs.dpl == 3)
    }

    /// With THR writes coalesced (as VMMachine sets COM1 up), every byte still reaches the UART,
    /// in order, and through the ring instead of exits of its own; without, none goes that way.
    @Test func coalescedUARTWritesArriveInOrderWithoutExits() throws {
        for coalesce in [true, false] {
            let machine = try TestMachine(image: try TestGuest.build("hello"))
            #expect(machine.vm.canCoalescePIO)
            try machine.vm.setCoalescedPIO(port: 0x3f8, coalesce)
            let runner = VMRunner(vcpus: [machine.vcpu], bus: machine.bus)
            #expect(try runner.run() == .reset)
            #expect(machine.text == "hello from the guest\n", "coalesce: \(coalesce)")
            #expect(runner.coalescedWritesApplied == (coalesce ? 21 : 0), "coalesce: \(coalesce)")
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func spinAtCPL3RunsNatively() throws {
        let iterations = 200_000_000
        let machine = try TestMachine(image: try TestGuest.build("spin", defines: ["ITERATIONS": "\(iterations)"]))
        let started = ContinuousClock.now
        let stop = try machine.vcpu.runUntilStop(bus: machine.bus)
        let elapsed = ContinuousClock.now - started
        print("spin guest: \(iterations) iterations at CPL 3 in \(elapsed) (KVMSystem.isPVM = \(KVMSystem.isPVM))")
        #expect(stop == .reset)
        #expect(machine.text == "count=\(iterations)\n")
    }
}

/// Hand-assembled guests of a byte or two: no toolchain needed.
@Suite(.enabled(if: KVMSystem.isAvailable, "needs read-write /dev/kvm (root)"))
struct GuestStateTests {
    @Test func tripleFaultIsAnErrorWithTheRegisters() throws {
        // ud2 at CPL 0 with an empty IDT: #UD → #GP → #DF → triple fault.
        let machine = try TestMachine(image: [0x0f, 0x0b])
        #expect {
            _ = try machine.vcpu.runUntilStop(bus: machine.bus)
        } throws: { error in
            guard case KVMError.tripleFault(let state) = error else { return false }
            return state.registers.rip == GuestLayout.kernelAddress
                && "\(error)".contains("rip=0x0000000000100000")
        }
    }

    @Test func hltWithoutIRQChipStops() throws {
        let machine = try TestMachine(image: [0xf4])
        #expect(try machine.vcpu.runUntilStop(bus: machine.bus) == .halt)
        #expect(try machine.vcpu.registers().rip == GuestLayout.kernelAddress + 1)
    }

    @Test func longModeStateReadsBack() throws {
        let machine = try TestMachine(image: [0xf4])
        let s = try machine.vcpu.specialRegisters()
        #expect(s.cr3 == GuestLayout.pml4Address)
        #expect(s.efer & (LongMode.eferLME | LongMode.eferLMA) == LongMode.eferLME | LongMode.eferLMA)
        #expect(s.cr0 & LongMode.cr0PG != 0)
        #expect(s.cs.selector == GDT.kernelCodeSelector && s.cs.l == 1 && s.cs.dpl == 0)
        #expect(s.gdt.base == GuestLayout.gdtAddress && s.gdt.limit == 63)
    }
}
