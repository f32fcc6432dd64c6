import Foundation
import KVM
import Testing

/// VMRunner's stop paths on the real /dev/kvm with hand-assembled guests (no toolchain needed).
@Suite(.enabled(if: KVMSystem.isAvailable, "needs read-write /dev/kvm (root)"), .serialized)
struct SMPRunnerTests {
    /// `iretq` to CPL 3 needs the toolchain-built prologue; these guests stay at CPL 0 for a few
    /// instructions, which kvm_pvm emulates.
    static let jumpToSelf: [UInt8] = [0xeb, 0xfe]

    @Test(.timeLimit(.minutes(1)))
    func stopAtAnyMomentNeverHangs() throws {
        // Stops land before, during and after thread start-up and KVM_RUN entry: the window where a
        // kick without immediate_exit would be lost (microvm.md §5 bug 15).
        for delay: UInt32 in [0, 0, 50, 100, 200, 500, 1000, 2000, 5000, 20000] {
            let machine = try SMPMachine(image: Self.jumpToSelf, vcpuCount: 2)
            let runner = machine.runner
            Thread.detachNewThread {
                usleep(delay)
                runner.stop()
            }
            #expect(try runner.run() == .interrupted)
            #expect(runner.joinedThreadCount == 2)
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func oneVCPUTripleFaultStopsTheOthersAndThrows() throws {
        let machine = try SMPMachine(image: Self.jumpToSelf, vcpuCount: 2)
        // vCPU 1 executes ud2 with an empty IDT: #UD → #DF → triple fault. vCPU 0 spins.
        let faultAddress = GuestLayout.kernelAddress + 0x1000
        try machine.vm.memory.write([0x0f, 0x0b], at: faultAddress)
        var r = try machine.vcpus[1].registers()
        r.rip = faultAddress
        try machine.vcpus[1].setRegisters(r)
        #expect {
            _ = try machine.runner.run()
        } throws: { error in
            guard case KVMError.tripleFault(let state) = error else { return false }
            return state.id == 1 && state.registers.rip == faultAddress
        }
        #expect(machine.runner.joinedThreadCount == 2)
    }

    @Test(.timeLimit(.minutes(1)))
    func allVCPUsHaltingWithoutIRQChipReturnsHalt() throws {
        let machine = try SMPMachine(image: [0xf4], vcpuCount: 3)
        #expect(try machine.runner.run() == .halt)
        #expect(machine.runner.joinedThreadCount == 3)
    }
}
