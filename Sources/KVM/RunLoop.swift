import CKVM

/// Why `VCPU.runUntilStop` returned normally.
public enum GuestStop: Sendable, Equatable {
    /// A device asked for a reset (i8042 0xFE on port 0x64; Linux `reboot=k`). Without ACPI this is "stop".
    case reset
    /// The guest executed `hlt` with no in-kernel irqchip to wake it.
    case halt
    /// `KVM_EXIT_SYSTEM_EVENT` (PSCI/ACPI-style shutdown or reset requested through KVM).
    case systemEvent(type: UInt32, flags: UInt64)
    /// `KVM_RUN` returned EINTR (`immediateExit` or a signal); `immediateExit` has been cleared.
    case interrupted
}

extension PortIOBus {
    /// Asks `VCPU.runUntilStop` to return `stop` after the current exit is handled. Wire devices to it
    /// with a weak reference: `I8042 { [weak bus] in bus?.requestStop(.reset) }`.
    public func requestStop(_ stop: GuestStop) { stopRequest = stop }
}

extension VCPU {
    /// Runs the vCPU, handling port I/O through `bus`, until the guest stops. Writes that KVM
    /// coalesces (`VirtualMachine.setCoalescedPIO`) are not applied here; `VMRunner` applies them.
    ///
    /// - MMIO exits go to `mmio(address, isWrite, data)`, which returns the bytes for a read; without
    ///   a handler, reads return 0xff bytes and writes are dropped.
    /// - Returns: the reason for a normal stop (`GuestStop`).
    /// - Throws: `KVMError.tripleFault` on `KVM_EXIT_SHUTDOWN`, `.failEntry`, `.internalError` and
    ///   `.unhandledExit`, each with the vCPU's registers; `.system` if `KVM_RUN` fails.
    public func runUntilStop(
        bus: PortIOBus, mmio: ((UInt64, Bool, [UInt8]) -> [UInt8])? = nil
    ) throws -> GuestStop {
        bus.stopRequest = nil
        while true {
            let exit = try run()
            switch exit {
            case .io(let port, .out, let size, _, let data):
                bus.write(port: port, size: size, data: data)
            case .io(let port, .in, let size, let count, _):
                completeIn(bus.read(port: port, size: size, count: count))
            case .mmio(let address, let isWrite, let length, let data):
                let reply = mmio?(address, isWrite, data) ?? [UInt8](repeating: 0xff, count: length)
                if !isWrite { completeMMIORead(reply) }
            case .hlt:
                return .halt
            case .shutdown:
                throw KVMError.tripleFault(state())
            case .failEntry(let reason, _):
                throw KVMError.failEntry(reason: reason, state: state())
            case .internalError(let suberror, let data):
                throw KVMError.internalError(suberror: suberror, data: data, state: state())
            case .systemEvent(let type, let flags):
                return .systemEvent(type: type, flags: flags)
            case .interrupted:
                immediateExit = false
                return .interrupted
            case .other(let reason):
                throw KVMError.unhandledExit("exit_reason \(reason)", state: state())
            }
            if let stop = bus.stopRequest {
                bus.stopRequest = nil
                return stop
            }
        }
    }
}
