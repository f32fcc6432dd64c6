import CKVM
import Glibc
import LinuxSys

/// A `KVM_GET_SUPPORTED_CPUID` / `KVM_SET_CPUID2` entry (`struct kvm_cpuid_entry2`, api.rst §4.46).
public typealias CPUIDEntry = kvm_cpuid_entry2

/// The `/dev/kvm` system handle: API version check, capabilities, vCPU mmap size, supported CPUID.
///
/// The fd is opened `O_RDWR | O_CLOEXEC` and closed on deinit. Source: api.rst §4.1–4.5.
public final class KVMSystem {
    /// The `/dev/kvm` file descriptor.
    public let fd: Int32
    /// Path it was opened from.
    public let path: String

    /// Capabilities a monitor on this API needs from every host (kvmtool's `kvm_req_ext` subset that
    /// the current code uses). Checked by `requireExtensions()`.
    public static let requiredExtensions: [(name: String, capability: Int32)] = [
        ("KVM_CAP_USER_MEMORY", KVM_CAP_USER_MEMORY),
        ("KVM_CAP_SET_TSS_ADDR", KVM_CAP_SET_TSS_ADDR),
        ("KVM_CAP_EXT_CPUID", KVM_CAP_EXT_CPUID),
    ]

    /// Opens `path` and checks `KVM_GET_API_VERSION == 12`.
    /// - Throws: `KVMError.unavailable` when the open fails, `.apiVersion` on another version.
    public init(path: String = "/dev/kvm") throws {
        let fd = open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw KVMError.unavailable(path: path, errno: errno) }
        self.fd = fd
        self.path = path
        let version = ckvm_ioctl_value(fd, CKVM_GET_API_VERSION, 0)
        guard version == 12 else {
            close(fd)
            throw KVMError.apiVersion(version)
        }
    }

    deinit { close(fd) }

    /// Whether `/dev/kvm` exists and can be opened read-write by this process (no API check).
    public static var isAvailable: Bool { access("/dev/kvm", R_OK | W_OK) == 0 }

    /// Whether the host's KVM is kvm_pvm (software virtualization: guest CPL 3 runs natively, guest
    /// CPL 0 is emulated at about 1.4 M instructions/s, so a stock Linux kernel does not boot in useful time).
    public static var isPVM: Bool { access("/sys/module/kvm_pvm", F_OK) == 0 }

    /// `KVM_CHECK_EXTENSION`: 0 when absent, otherwise a capability-specific positive value.
    public func checkExtension(_ capability: Int32) -> Int32 {
        max(0, ckvm_ioctl_value(fd, CKVM_CHECK_EXTENSION, UInt(bitPattern: Int(capability))))
    }

    /// Throws `KVMError.missingExtension` for the first of `extensions` that is absent.
    public func requireExtensions(_ extensions: [(name: String, capability: Int32)] = requiredExtensions) throws {
        for e in extensions where checkExtension(e.capability) == 0 {
            throw KVMError.missingExtension(name: e.name, capability: e.capability)
        }
    }

    /// `KVM_GET_VCPU_MMAP_SIZE`: bytes to mmap from a vCPU fd for its `struct kvm_run`.
    public func vcpuMmapSize() throws -> Int {
        Int(try kvmCheck(ckvm_ioctl_value(fd, CKVM_GET_VCPU_MMAP_SIZE, 0), "ioctl KVM_GET_VCPU_MMAP_SIZE", path))
    }

    /// `KVM_GET_SUPPORTED_CPUID` with `KVM_MAX_CPUID_ENTRIES` (256) slots, so hosts with more than the
    /// old 80 leaves do not fail with E2BIG (microvm.md §5 bug 3). Edit the result, then pass it to
    /// `VCPU.setCPUID`.
    public func supportedCPUID() throws -> [CPUIDEntry] {
        guard let c = ckvm_cpuid2_alloc(CKVM_MAX_CPUID_ENTRIES) else {
            throw KVMError.system(SysError("calloc", "kvm_cpuid2", errno: ENOMEM))
        }
        defer { free(c) }
        try kvmCheck(ckvm_ioctl(fd, CKVM_GET_SUPPORTED_CPUID, c), "ioctl KVM_GET_SUPPORTED_CPUID", path)
        return (0..<c.pointee.nent).map { ckvm_cpuid2_entry(c, $0).pointee }
    }
}
