import CKVM
import LinuxSys

/// The in-kernel local APIC of a vCPU (`KVM_GET_LAPIC` / `KVM_SET_LAPIC`, api.rst §4.57–4.58) and
/// the boot-time LINT setup Firecracker (`arch/x86_64/interrupts.rs: set_lint`) and kvmtool
/// (`kvm_cpu__set_lint`) do on every vCPU: LVT LINT0 delivery mode ExtINT, so the 8259 PIC's
/// interrupts reach the CPU through LINT0 (virtual-wire mode, MP spec 1.4 §3.6.2.2), and LVT LINT1
/// delivery mode NMI (microvm.md §3.2 step 8). The mask bits stay as KVM's reset left them:
/// unmasked LINT0 on the BSP (KVM's `kvm_lapic_reset` makes the BSP's LINT0 ExtINT), masked on the
/// APs; Linux's `setup_local_APIC` rewrites both.
///
/// The state is `struct kvm_lapic_state`: the APIC's 1 KiB register page, each 32-bit register at
/// its MMIO offset (Intel SDM vol. 3 §11.4.1, Table 11-1). APs are left in KVM's wait-for-SIPI state
/// (`KVM_MP_STATE_UNINITIALIZED`), so the guest's INIT/SIPI starts them.
public enum LocalAPIC {
    /// Bytes in `struct kvm_lapic_state` (`KVM_APIC_REG_SIZE`).
    public static let stateSize = 1024
    /// Register offsets: APIC ID, LVT LINT0, LVT LINT1.
    public static let idOffset = 0x20, lint0Offset = 0x350, lint1Offset = 0x360
    /// LVT delivery mode field (bits 10:8) and the modes used here (SDM Figure 11-8).
    public static let deliveryModeMask: UInt32 = 0x700
    public static let deliveryModeNMI: UInt32 = 4, deliveryModeExtINT: UInt32 = 7
    /// LVT mask bit (16).
    public static let masked: UInt32 = 1 << 16

    /// `lvt` with its delivery mode replaced by `mode` (Firecracker's `set_apic_delivery_mode`).
    public static func setDeliveryMode(_ lvt: UInt32, _ mode: UInt32) -> UInt32 {
        (lvt & ~deliveryModeMask) | (mode << 8)
    }

    /// The delivery mode of an LVT entry.
    public static func deliveryMode(_ lvt: UInt32) -> UInt32 { (lvt & deliveryModeMask) >> 8 }

    /// The 32-bit register at `offset` of a register page.
    public static func register(_ page: [UInt8], _ offset: Int) -> UInt32 {
        page[offset..<offset + 4].enumerated().reduce(0) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
    }

    /// `page` with the register at `offset` set to `value`.
    public static func setRegister(_ page: inout [UInt8], _ offset: Int, _ value: UInt32) {
        for i in 0..<4 { page[offset + i] = UInt8((value >> (8 * UInt32(i))) & 0xff) }
    }

    /// Sets LINT0 to ExtINT and LINT1 to NMI on `vcpu` (read, modify, write).
    /// - Throws: `KVMError.system` from the ioctls (ENXIO without `VirtualMachine.createIRQChip()`).
    public static func configureLINT(_ vcpu: VCPU) throws {
        var page = try vcpu.localAPIC()
        setRegister(&page, lint0Offset, setDeliveryMode(register(page, lint0Offset), deliveryModeExtINT))
        setRegister(&page, lint1Offset, setDeliveryMode(register(page, lint1Offset), deliveryModeNMI))
        try vcpu.setLocalAPIC(page)
    }
}

/// `struct kvm_mp_state.mp_state` values (api.rst §4.38).
public enum MPState: UInt32, Sendable {
    /// Running or ready to run (the BSP after creation).
    case runnable = 0
    /// An AP waiting for INIT/SIPI.
    case uninitialized = 1
    /// INIT received, waiting for SIPI.
    case initReceived = 2
    /// Halted in `hlt` with the in-kernel LAPIC.
    case halted = 3
    /// SIPI received, about to start.
    case sipiReceived = 4
}

extension VCPU {
    /// `KVM_GET_LAPIC`: the local APIC's 1 KiB register page.
    /// - Throws: `KVMError.system` (ENXIO when the VM has no in-kernel irqchip).
    public func localAPIC() throws -> [UInt8] {
        var state = kvm_lapic_state()
        try kvmCheck(ckvm_ioctl(fd, CKVM_GET_LAPIC, &state), "ioctl KVM_GET_LAPIC", "vCPU \(id)")
        return withUnsafeBytes(of: &state.regs) { Array($0) }
    }

    /// `KVM_SET_LAPIC` with a register page from `localAPIC()` (1024 bytes).
    public func setLocalAPIC(_ page: [UInt8]) throws {
        precondition(page.count == LocalAPIC.stateSize, "a LAPIC register page has 1024 bytes")
        var state = kvm_lapic_state()
        withUnsafeMutableBytes(of: &state.regs) { $0.copyBytes(from: page) }
        try kvmCheck(ckvm_ioctl(fd, CKVM_SET_LAPIC, &state), "ioctl KVM_SET_LAPIC", "vCPU \(id)")
    }

    /// `KVM_GET_MP_STATE` (raw value; `MPState(rawValue:)` names the x86 ones).
    public func mpState() throws -> UInt32 {
        var state = kvm_mp_state()
        try kvmCheck(ckvm_ioctl(fd, CKVM_GET_MP_STATE, &state), "ioctl KVM_GET_MP_STATE", "vCPU \(id)")
        return state.mp_state
    }

    /// `KVM_SET_MP_STATE` (api.rst §4.39): e.g. `KVM_MP_STATE_RUNNABLE` (0) to start an AP without
    /// INIT/SIPI.
    public func setMPState(_ value: UInt32) throws {
        var state = kvm_mp_state()
        state.mp_state = value
        try kvmCheck(ckvm_ioctl(fd, CKVM_SET_MP_STATE, &state), "ioctl KVM_SET_MP_STATE", "vCPU \(id)")
    }
}
