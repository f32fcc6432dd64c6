import CKVM
import Glibc
import LinuxSys

/// A KVM virtual machine (`KVM_CREATE_VM`, type 0) with its guest RAM registered as memslots.
///
/// Creation follows microvm.md §3.2: `KVM_SET_TSS_ADDR` and `KVM_SET_IDENTITY_MAP_ADDR` (which api.rst
/// §4.40 requires before any vCPU exists) at `GuestLayout.tssAddress` / `.identityMapAddress`, then one
/// `KVM_SET_USER_MEMORY_REGION` per `GuestMemory.Region` (slot 0 below 3 GiB, slot 1 from 4 GiB).
/// The VM fd is closed on deinit; vCPUs keep the VM alive.
public final class VirtualMachine {
    /// The system handle this VM was created from.
    public let system: KVMSystem
    /// The VM file descriptor.
    public let fd: Int32
    /// Guest RAM.
    public let memory: GuestMemory

    /// Creates a VM with `memorySize` bytes of RAM (a multiple of 4 KiB).
    /// - Throws: `KVMError.system` naming the ioctl that failed, `KVMError.layout` for a bad size.
    public init(system: KVMSystem, memorySize: UInt64) throws {
        self.system = system
        let fd = ckvm_ioctl_value(system.fd, CKVM_CREATE_VM, 0)
        guard fd >= 0 else { throw KVMError.system(SysError("ioctl KVM_CREATE_VM", system.path)) }
        self.fd = fd
        memory = try GuestMemory(size: memorySize)
        try kvmCheck(
            ckvm_ioctl_value(fd, CKVM_SET_TSS_ADDR, UInt(GuestLayout.tssAddress)), "ioctl KVM_SET_TSS_ADDR",
            "0x" + hex(GuestLayout.tssAddress))
        var identity = GuestLayout.identityMapAddress
        try kvmCheck(
            ckvm_ioctl(fd, CKVM_SET_IDENTITY_MAP_ADDR, &identity), "ioctl KVM_SET_IDENTITY_MAP_ADDR",
            "0x" + hex(identity))
        for (slot, r) in memory.regions.enumerated() {
            var region = kvm_userspace_memory_region(
                slot: UInt32(slot), flags: 0, guest_phys_addr: r.guestAddress, memory_size: r.size,
                userspace_addr: UInt64(UInt(bitPattern: memory.host + Int(r.hostOffset))))
            try kvmCheck(
                ckvm_ioctl(fd, CKVM_SET_USER_MEMORY_REGION, &region), "ioctl KVM_SET_USER_MEMORY_REGION",
                "slot \(slot) at 0x\(hex(r.guestAddress)) (\(r.size) bytes)")
        }
    }

    /// The io_uring instance holding a reference to `fd` (`deferReleaseToExit`), or -1.
    private var releaseRing: Int32 = -1

    deinit {
        close(fd)
        if releaseRing >= 0 { close(releaseRing) }
    }

    /// Lets the kernel destroy this VM in a worker thread after the last descriptor of this
    /// process is gone, instead of in the process's exit (`ckvm_defer_release`): the VM's teardown
    /// (`kvm_destroy_vm`, which waits for several SRCU grace periods: 10-20 ms measured on the
    /// kvm_pvm host, BENCHMARKS.md "VM start-up") then no longer delays whoever waits for the
    /// VMM to exit. Guest RAM is still freed by the exit itself (it is this process's mapping).
    /// Call once, from any thread; the extra reference lives until this object or the process goes.
    /// - Returns: false, with nothing changed, where io_uring is unavailable (old kernel,
    ///   `kernel.io_uring_disabled`, a seccomp filter): the VM is then destroyed at exit as before.
    @discardableResult
    public func deferReleaseToExit() -> Bool {
        guard releaseRing < 0 else { return true }
        let ring = ckvm_defer_release(fd)
        guard ring >= 0 else { return false }
        releaseRing = ring
        return true
    }

    /// Ports whose writes KVM currently coalesces (`setCoalescedPIO`).
    private var coalescedPorts: Set<UInt16> = []

    /// Whether this host's KVM can coalesce port writes (`KVM_CAP_COALESCED_PIO`, Linux 4.21) into
    /// the ring every vCPU maps (`KVM_CAP_COALESCED_MMIO` gives its page offset).
    public var canCoalescePIO: Bool {
        system.checkExtension(KVM_CAP_COALESCED_PIO) > 0 && system.checkExtension(KVM_CAP_COALESCED_MMIO) > 0
    }

    /// Turns coalescing of the guest's writes to `port` (`length` bytes from it) on or off
    /// (`KVM_REGISTER_COALESCED_MMIO` / `KVM_UNREGISTER_COALESCED_MMIO` with `pio = 1`, api.rst 4.116).
    /// While on, such a write does not exit to the VMM: KVM appends it to the ring, and the VMM
    /// applies it before it handles the next exit (`VMRunner`). Only for registers whose writes have
    /// no effect the guest waits for. Idempotent. Call before the vCPUs run or under the runner's
    /// device lock (`VMRunner.withDevices`, a device's write handler).
    /// - Throws: `KVMError.system` naming the ioctl.
    public func setCoalescedPIO(port: UInt16, length: UInt32 = 1, _ on: Bool) throws {
        guard coalescedPorts.contains(port) != on else { return }
        var zone = kvm_coalesced_mmio_zone()
        zone.addr = UInt64(port)
        zone.size = length
        zone.pio = 1
        let request = on ? CKVM_REGISTER_COALESCED_MMIO : CKVM_UNREGISTER_COALESCED_MMIO
        try kvmCheck(
            ckvm_ioctl(fd, request, &zone),
            on ? "ioctl KVM_REGISTER_COALESCED_MMIO" : "ioctl KVM_UNREGISTER_COALESCED_MMIO", "port 0x" + hex(UInt64(port)))
        if on { coalescedPorts.insert(port) } else { coalescedPorts.remove(port) }
    }

    /// `KVM_CREATE_IRQCHIP`: the in-kernel PIC, IOAPIC and local APICs. Call before creating vCPUs.
    public func createIRQChip() throws {
        try kvmCheck(ckvm_ioctl_value(fd, CKVM_CREATE_IRQCHIP, 0), "ioctl KVM_CREATE_IRQCHIP", "vm")
    }

    /// `KVM_CREATE_PIT2` with `KVM_PIT_SPEAKER_DUMMY`, so port 0x61 does not exit (Firecracker's choice).
    /// Needs `createIRQChip()` first.
    public func createPIT2() throws {
        var config = kvm_pit_config()
        config.flags = UInt32(KVM_PIT_SPEAKER_DUMMY)
        try kvmCheck(ckvm_ioctl(fd, CKVM_CREATE_PIT2, &config), "ioctl KVM_CREATE_PIT2", "vm")
    }

    /// `KVM_IRQ_LINE`: sets GSI `irq` to `level` on the in-kernel irqchip.
    public func setIRQLine(_ irq: UInt32, level: Bool) throws {
        var line = kvm_irq_level()
        line.irq = irq
        line.level = level ? 1 : 0
        try kvmCheck(ckvm_ioctl(fd, CKVM_IRQ_LINE, &line), "ioctl KVM_IRQ_LINE", "irq \(irq)")
    }

    /// Creates vCPU `id` (`KVM_CREATE_VCPU`) and maps its `kvm_run`.
    public func createVCPU(id: UInt32) throws -> VCPU { try VCPU(vm: self, id: id) }
}
