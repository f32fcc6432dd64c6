import CKVM
import Glibc
import LinuxSys

/// General-purpose registers (`struct kvm_regs`, api.rst §4.11).
public typealias Registers = kvm_regs
/// Segment, control and descriptor-table registers (`struct kvm_sregs`, api.rst §4.13).
public typealias SpecialRegisters = kvm_sregs
/// One segment register as KVM sees it (`struct kvm_segment`).
public typealias Segment = kvm_segment

/// A virtual CPU: its fd, its mapped `struct kvm_run`, register access and `KVM_RUN`.
///
/// Use a vCPU from one thread: api.rst §3 says vCPU ioctls should come from the thread that created
/// the vCPU (`immediateExit` is the exception, meant to be set from elsewhere before a signal).
/// The fd and mapping are released on deinit. Source: api.rst §4.7, §4.10–4.13.
public final class VCPU {
    /// The VM this vCPU belongs to (kept alive by it).
    public let vm: VirtualMachine
    /// vCPU id (its initial APIC id).
    public let id: UInt32
    /// The vCPU file descriptor.
    public let fd: Int32
    let kvmRun: UnsafeMutablePointer<kvm_run>
    let runSize: Int

    init(vm: VirtualMachine, id: UInt32) throws {
        self.vm = vm
        self.id = id
        let fd = ckvm_ioctl_value(vm.fd, CKVM_CREATE_VCPU, UInt(id))
        guard fd >= 0 else { throw KVMError.system(SysError("ioctl KVM_CREATE_VCPU", "vCPU \(id)")) }
        do {
            runSize = try vm.system.vcpuMmapSize()
        } catch {
            close(fd)
            throw error
        }
        let p = mmap(nil, runSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
        guard let p, p != MAP_FAILED else {
            let e = SysError("mmap", "kvm_run of vCPU \(id)")
            close(fd)
            throw KVMError.system(e)
        }
        self.fd = fd
        kvmRun = p.assumingMemoryBound(to: kvm_run.self)
    }

    deinit {
        munmap(kvmRun, runSize)
        close(fd)
    }

    /// The VM's coalesced MMIO/PIO ring (`struct kvm_coalesced_mmio_ring`), mapped with this vCPU's
    /// `kvm_run` at the page offset `KVM_CHECK_EXTENSION(KVM_CAP_COALESCED_MMIO)` returns (api.rst
    /// 4.116), or nil where KVM has none. The same page for every vCPU of the VM.
    public var coalescedRing: UnsafeMutablePointer<kvm_coalesced_mmio_ring>? {
        let page = Int(vm.system.checkExtension(KVM_CAP_COALESCED_MMIO))
        let size = Int(sysconf(Int32(_SC_PAGESIZE)))
        guard page > 0, (page + 1) * size <= runSize else { return nil }
        return (UnsafeMutableRawPointer(kvmRun) + page * size).assumingMemoryBound(to: kvm_coalesced_mmio_ring.self)
    }

    /// `KVM_GET_REGS`.
    public func registers() throws -> Registers {
        var r = Registers()
        try kvmCheck(ckvm_ioctl(fd, CKVM_GET_REGS, &r), "ioctl KVM_GET_REGS", "vCPU \(id)")
        return r
    }

    /// `KVM_SET_REGS`.
    public func setRegisters(_ regs: Registers) throws {
        var r = regs
        try kvmCheck(ckvm_ioctl(fd, CKVM_SET_REGS, &r), "ioctl KVM_SET_REGS", "vCPU \(id)")
    }

    /// `KVM_GET_SREGS`.
    public func specialRegisters() throws -> SpecialRegisters {
        var s = SpecialRegisters()
        try kvmCheck(ckvm_ioctl(fd, CKVM_GET_SREGS, &s), "ioctl KVM_GET_SREGS", "vCPU \(id)")
        return s
    }

    /// `KVM_SET_SREGS`.
    public func setSpecialRegisters(_ sregs: SpecialRegisters) throws {
        var s = sregs
        try kvmCheck(ckvm_ioctl(fd, CKVM_SET_SREGS, &s), "ioctl KVM_SET_SREGS", "vCPU \(id)")
    }

    /// `KVM_SET_CPUID2` with `entries` (start from `KVMSystem.supportedCPUID()`; microvm.md §5 bug 4).
    /// Call before `setMSRs`: KVM decides which MSRs exist from the guest CPUID.
    public func setCPUID(_ entries: [CPUIDEntry]) throws {
        guard let c = ckvm_cpuid2_alloc(UInt32(entries.count)) else {
            throw KVMError.system(SysError("calloc", "kvm_cpuid2", errno: ENOMEM))
        }
        defer { free(c) }
        for (i, e) in entries.enumerated() { ckvm_cpuid2_entry(c, UInt32(i)).pointee = e }
        try kvmCheck(ckvm_ioctl(fd, CKVM_SET_CPUID2, c), "ioctl KVM_SET_CPUID2", "vCPU \(id), \(entries.count) entries")
    }

    /// `KVM_SET_MSRS` with `(index, value)` pairs.
    /// - Throws: `KVMError.system` if the ioctl fails, `KVMError.layout` naming the first MSR KVM refused
    ///   (the ioctl returns how many it set, stopping at the first it does not support).
    public func setMSRs(_ msrs: [(index: UInt32, value: UInt64)]) throws {
        guard let m = ckvm_msrs_alloc(UInt32(msrs.count)) else {
            throw KVMError.system(SysError("calloc", "kvm_msrs", errno: ENOMEM))
        }
        defer { free(m) }
        for (i, e) in msrs.enumerated() {
            ckvm_msrs_entry(m, UInt32(i)).pointee.index = e.index
            ckvm_msrs_entry(m, UInt32(i)).pointee.data = e.value
        }
        let n = try kvmCheck(ckvm_ioctl(fd, CKVM_SET_MSRS, m), "ioctl KVM_SET_MSRS", "vCPU \(id)")
        if Int(n) < msrs.count {
            throw KVMError.layout(
                "KVM_SET_MSRS set \(n) of \(msrs.count) MSRs; MSR 0x\(hex(msrs[Int(n)].index)) is not supported")
        }
    }

    /// `KVM_GET_MSRS` for `indices`, in the same order.
    public func msrs(_ indices: [UInt32]) throws -> [UInt64] {
        guard let m = ckvm_msrs_alloc(UInt32(indices.count)) else {
            throw KVMError.system(SysError("calloc", "kvm_msrs", errno: ENOMEM))
        }
        defer { free(m) }
        for (i, index) in indices.enumerated() { ckvm_msrs_entry(m, UInt32(i)).pointee.index = index }
        let n = try kvmCheck(ckvm_ioctl(fd, CKVM_GET_MSRS, m), "ioctl KVM_GET_MSRS", "vCPU \(id)")
        if Int(n) < indices.count {
            throw KVMError.layout(
                "KVM_GET_MSRS read \(n) of \(indices.count) MSRs; MSR 0x\(hex(indices[Int(n)])) is not supported")
        }
        return (0..<UInt32(indices.count)).map { ckvm_msrs_entry(m, $0).pointee.data }
    }

    /// `kvm_run->immediate_exit`: when set, the next `KVM_RUN` returns EINTR at once (the race-free
    /// way to stop a vCPU with a signal; microvm.md §5 bug 15).
    public var immediateExit: Bool {
        get { kvmRun.pointee.immediate_exit != 0 }
        set { kvmRun.pointee.immediate_exit = newValue ? 1 : 0 }
    }

    /// Registers and special registers now, for error reports. Never throws; fields read as zero
    /// if the ioctls fail.
    public func state() -> VCPUState {
        VCPUState(
            id: id, registers: (try? registers()) ?? Registers(),
            special: (try? specialRegisters()) ?? SpecialRegisters())
    }

    /// One `KVM_RUN`: enters the guest and returns why it came back.
    ///
    /// An `.io` exit of direction `.in` or an `.mmio` read must be answered with `completeIn(_:)` /
    /// `completeMMIORead(_:)` before the next `run()`, which is when KVM hands the data to the guest.
    /// - Throws: `KVMError.system` when the ioctl fails with anything but EINTR (`.interrupted`).
    public func run() throws -> VCPUExit {
        if ckvm_ioctl_value(fd, CKVM_RUN, 0) < 0 {
            if errno == EINTR || errno == EAGAIN { return .interrupted }
            throw KVMError.system(SysError("ioctl KVM_RUN", "vCPU \(id)"))
        }
        return VCPUExit(run: kvmRun)
    }

    /// Writes the data of an `.io` exit of direction `.in` (`size * count` bytes; shorter is zero-padded).
    public func completeIn(_ bytes: [UInt8]) {
        let n = Int(ckvm_run_io_size(kvmRun)) * Int(ckvm_run_io_count(kvmRun))
        let p = UnsafeMutableRawPointer(kvmRun) + Int(ckvm_run_io_data_offset(kvmRun))
        for i in 0..<n { p.storeBytes(of: i < bytes.count ? bytes[i] : 0, toByteOffset: i, as: UInt8.self) }
    }

    /// Writes the data of an `.mmio` read exit (up to `len` bytes).
    public func completeMMIORead(_ bytes: [UInt8]) {
        let n = min(Int(ckvm_run_mmio_len(kvmRun)), 8)
        guard let p = ckvm_run_mmio_data(kvmRun) else { return }
        for i in 0..<n { p[i] = i < bytes.count ? bytes[i] : 0 }
    }
}
