import CKVM
import LinuxSys

/// Everything the KVM target throws. `description` says what failed and, where there is one,
/// what to do about it.
public enum KVMError: Error, CustomStringConvertible, Sendable {
    /// `/dev/kvm` could not be opened (missing module, no permission).
    case unavailable(path: String, errno: Int32)
    /// `KVM_GET_API_VERSION` returned something other than 12 (api.rst §4.1: "applications should
    /// refuse to run if KVM_GET_API_VERSION returns a value other than 12").
    case apiVersion(Int32)
    /// A `KVM_CAP_*` this monitor needs is absent (`KVM_CHECK_EXTENSION` returned 0).
    case missingExtension(name: String, capability: Int32)
    /// A system call (ioctl, mmap) failed.
    case system(SysError)
    /// A guest physical access `[address, address + length)` is not inside guest RAM.
    case outOfBounds(address: UInt64, length: Int, memory: String)
    /// A layout does not fit: page tables for more than the supported range, memory too small, …
    case layout(String)
    /// The guest triple-faulted (`KVM_EXIT_SHUTDOWN`): a crash, not a clean stop.
    case tripleFault(VCPUState)
    /// `KVM_EXIT_FAIL_ENTRY`: the CPU refused the vCPU state (`hardware_entry_failure_reason`).
    case failEntry(reason: UInt64, state: VCPUState)
    /// `KVM_EXIT_INTERNAL_ERROR` (suberror: 1 emulation failure, 2 simultaneous exceptions, …).
    case internalError(suberror: UInt32, data: [UInt64], state: VCPUState)
    /// An exit the run loop has no handler for.
    case unhandledExit(String, state: VCPUState)

    public var description: String {
        switch self {
        case .unavailable(let path, let errno):
            return "open \(path): \(SysError.message(errno)); load kvm_intel, kvm_amd or kvm_pvm and run as root "
                + "(or as a member of the group that owns \(path))"
        case .apiVersion(let v):
            return "KVM API version \(v), expected 12; this kernel's KVM is not supported"
        case .missingExtension(let name, let cap):
            return "KVM lacks \(name) (capability \(cap)); a newer host kernel is needed"
        case .system(let e):
            return e.description
        case .outOfBounds(let address, let length, let memory):
            return "guest physical access [0x\(hex(address)), +\(length)) is outside guest RAM (\(memory))"
        case .layout(let message):
            return message
        case .tripleFault(let state):
            return "the guest triple-faulted (KVM_EXIT_SHUTDOWN)\n\(state)"
        case .failEntry(let reason, let state):
            return "KVM_RUN failed to enter the guest: hardware_entry_failure_reason 0x\(hex(reason))\n\(state)"
        case .internalError(let suberror, let data, let state):
            let d = data.map { "0x" + hex($0) }.joined(separator: " ")
            return "KVM internal error, suberror \(suberror) (data: \(d))\n\(state)"
        case .unhandledExit(let what, let state):
            return "unhandled vCPU exit: \(what)\n\(state)"
        }
    }
}

/// Lower-case hexadecimal without prefix.
func hex<T: BinaryInteger>(_ v: T) -> String { String(v, radix: 16) }

/// Throws `KVMError.system` when `rc` is negative; returns `rc` otherwise.
@discardableResult
func kvmCheck(_ rc: Int32, _ call: String, _ subject: String) throws -> Int32 {
    if rc < 0 { throw KVMError.system(SysError(call, subject)) }
    return rc
}
