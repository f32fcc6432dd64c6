import CKVM

/// Direction of a port I/O exit (`KVM_EXIT_IO_IN` / `KVM_EXIT_IO_OUT`).
public enum IODirection: Sendable, Equatable {
    /// The guest executed `in`/`ins`: the monitor supplies the data with `VCPU.completeIn`.
    case `in`
    /// The guest executed `out`/`outs`: the data is in the exit.
    case out
}

/// Why `KVM_RUN` returned (`kvm_run->exit_reason`, api.rst §5 "The kvm_run structure").
public enum VCPUExit: Sendable, Equatable {
    /// `KVM_EXIT_IO`: port access of `size` bytes (1, 2 or 4) repeated `count` times (string I/O).
    /// `data` holds `size * count` bytes for `.out` and is empty for `.in`.
    case io(port: UInt16, direction: IODirection, size: Int, count: Int, data: [UInt8])
    /// `KVM_EXIT_MMIO`: an access of `length` bytes at a guest physical address with no RAM behind it.
    /// `data` holds the written bytes for a write and is empty for a read.
    case mmio(address: UInt64, isWrite: Bool, length: Int, data: [UInt8])
    /// `KVM_EXIT_HLT`: the guest halted (only without the in-kernel irqchip).
    case hlt
    /// `KVM_EXIT_SHUTDOWN`: a triple fault (treat as a crash or reset, not a clean exit).
    case shutdown
    /// `KVM_EXIT_FAIL_ENTRY`: the CPU refused the guest state.
    case failEntry(hardwareReason: UInt64, cpu: UInt32)
    /// `KVM_EXIT_INTERNAL_ERROR`: KVM could not go on (suberror 1 = emulation failure).
    case internalError(suberror: UInt32, data: [UInt64])
    /// `KVM_EXIT_SYSTEM_EVENT`: `type` is `KVM_SYSTEM_EVENT_SHUTDOWN` (1), `_RESET` (2), `_CRASH` (3), …
    case systemEvent(type: UInt32, flags: UInt64)
    /// `KVM_RUN` returned EINTR (a signal, or `immediateExit` was set).
    case interrupted
    /// Any other `exit_reason`.
    case other(reason: UInt32)

    init(run: UnsafeMutablePointer<kvm_run>) {
        let reason = Int32(bitPattern: run.pointee.exit_reason)
        switch reason {
        case KVM_EXIT_IO:
            let size = Int(ckvm_run_io_size(run))
            let count = Int(ckvm_run_io_count(run))
            let port = ckvm_run_io_port(run)
            if Int32(ckvm_run_io_direction(run)) == KVM_EXIT_IO_OUT {
                let p = UnsafeRawPointer(run) + Int(ckvm_run_io_data_offset(run))
                self = .io(
                    port: port, direction: .out, size: size, count: count,
                    data: Array(UnsafeRawBufferPointer(start: p, count: size * count)))
            } else {
                self = .io(port: port, direction: .in, size: size, count: count, data: [])
            }
        case KVM_EXIT_MMIO:
            let length = Int(min(ckvm_run_mmio_len(run), 8))
            let isWrite = ckvm_run_mmio_is_write(run) != 0
            var data: [UInt8] = []
            if isWrite, let p = ckvm_run_mmio_data(run) { data = Array(UnsafeBufferPointer(start: p, count: length)) }
            self = .mmio(address: ckvm_run_mmio_phys_addr(run), isWrite: isWrite, length: length, data: data)
        case KVM_EXIT_HLT:
            self = .hlt
        case KVM_EXIT_SHUTDOWN:
            self = .shutdown
        case KVM_EXIT_FAIL_ENTRY:
            self = .failEntry(hardwareReason: ckvm_run_fail_entry_reason(run), cpu: ckvm_run_fail_entry_cpu(run))
        case KVM_EXIT_INTERNAL_ERROR:
            let n = min(ckvm_run_internal_ndata(run), 16)
            self = .internalError(
                suberror: ckvm_run_internal_suberror(run), data: (0..<n).map { ckvm_run_internal_data(run, $0) })
        case KVM_EXIT_SYSTEM_EVENT:
            self = .systemEvent(type: ckvm_run_system_event_type(run), flags: ckvm_run_system_event_flags(run))
        default:
            self = .other(reason: UInt32(bitPattern: reason))
        }
    }
}

/// A vCPU's registers at one moment, printed in error reports (triple fault, failed entry).
public struct VCPUState: Sendable, CustomStringConvertible {
    /// vCPU id.
    public let id: UInt32
    /// General-purpose registers.
    public let registers: Registers
    /// Segment and control registers.
    public let special: SpecialRegisters

    public var description: String {
        let r = registers
        let s = special
        func x(_ v: UInt64) -> String {
            let h = String(v, radix: 16)
            return "0x" + String(repeating: "0", count: max(0, 16 - h.count)) + h
        }
        return """
            vCPU \(id): rip=\(x(r.rip)) rsp=\(x(r.rsp)) rflags=\(x(r.rflags)) cpl=\(s.ss.dpl)
              rax=\(x(r.rax)) rbx=\(x(r.rbx)) rcx=\(x(r.rcx)) rdx=\(x(r.rdx))
              rsi=\(x(r.rsi)) rdi=\(x(r.rdi)) rbp=\(x(r.rbp))
              cs=\(x(UInt64(s.cs.selector))) ss=\(x(UInt64(s.ss.selector))) cr0=\(x(s.cr0)) cr2=\(x(s.cr2)) cr3=\(x(s.cr3)) cr4=\(x(s.cr4)) efer=\(x(s.efer))
            """
    }
}
