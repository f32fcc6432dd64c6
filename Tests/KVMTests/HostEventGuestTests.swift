import Foundation
import KVM
import Testing

/// Lets a test hand a non-Sendable device to the thread that plays the host side.
final class Unchecked<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// Host-side events reaching a running guest through `VMRunner.withDevices`: bytes typed on the
/// console (UART receive buffer) and Ctrl+Alt+Del on the i8042, each delivered from another thread
/// while the guest polls at CPL 3.
@Suite(.enabled(if: kvmUsable, kvmSkipReason))
struct HostEventGuestTests {
    @Test(.timeLimit(.minutes(1)))
    func echoGuestSendsBackWhatTheHostTypes() throws {
        let machine = try TestMachine(image: try TestGuest.build("echo"))
        let runner = VMRunner(vcpus: [machine.vcpu], bus: machine.bus)
        let serial = Unchecked(machine.serial!)
        Thread.detachNewThread {
            // Two bursts, the second while the guest may be echoing the first; 0x04 ends the guest.
            usleep(20_000)
            runner.withDevices { serial.value.enqueueInput(Array("hello ".utf8)) }
            usleep(20_000)
            runner.withDevices { serial.value.enqueueInput(Array("serial\n".utf8) + [0x04]) }
        }
        #expect(try runner.run() == .reset)
        #expect(machine.text == "hello serial\n")
        #expect(machine.serial.pendingInputCount == 0)
    }

    @Test(.timeLimit(.minutes(1)))
    func ctrlAltDelReachesAGuestThatWaitsForTheKeyboardAndItResets() throws {
        let machine = try TestMachine(image: try TestGuest.build("kbdwait"))
        let runner = VMRunner(vcpus: [machine.vcpu], bus: machine.bus)
        let keyboard = Unchecked(machine.keyboard!)
        Thread.detachNewThread {
            usleep(20_000)
            runner.withDevices { #expect(keyboard.value.pressCtrlAltDel()) }
        }
        #expect(try runner.run() == .reset)
        #expect(machine.text == "keys: 14 11 e0 71\n")
    }
}
