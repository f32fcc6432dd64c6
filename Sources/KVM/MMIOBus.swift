/// A device in guest physical address space that is not RAM: accesses reach the monitor as
/// `KVM_EXIT_MMIO` exits (api.rst §5, `kvm_run.mmio`). `offset` is relative to the base it was
/// registered at; `length` is the access width in bytes (1, 2, 4 or 8).
public protocol MMIODevice: AnyObject {
    /// The guest reads `length` bytes at `offset`; returns them little-endian (shorter is zero-padded).
    func read(offset: UInt64, length: Int) -> [UInt8]
    /// The guest writes `data` (little-endian, 1 to 8 bytes) at `offset`.
    func write(offset: UInt64, data: [UInt8])
}

/// Routes `KVM_EXIT_MMIO` exits to devices by guest physical range.
///
/// Register every device before the vCPUs start: lookups are not locked, so the table must not change
/// while vCPU threads read it (each device serialises its own state). Reads of addresses with no
/// device return 0xff bytes (as on a bus with nothing behind it); writes to them are dropped.
public final class MMIOBus {
    struct Mapping {
        let base: UInt64
        let length: UInt64
        let device: any MMIODevice
    }
    var mappings: [Mapping] = []

    public init() {}

    /// Registers `device` at guest physical `[base, base + length)`.
    /// - Throws: `KVMError.layout` for an empty or wrapping range, or one that overlaps a registered device.
    public func register(_ device: any MMIODevice, base: UInt64, length: UInt64) throws {
        let (end, overflow) = base.addingReportingOverflow(length)
        guard length > 0, !overflow else {
            throw KVMError.layout("MMIO range 0x\(hex(base))+0x\(hex(length)) is empty or wraps past 2^64")
        }
        for m in mappings where base < m.base + m.length && m.base < end {
            throw KVMError.layout(
                "MMIO range 0x\(hex(base))+0x\(hex(length)) overlaps a device at 0x\(hex(m.base))+0x\(hex(m.length))")
        }
        mappings.append(Mapping(base: base, length: length, device: device))
    }

    /// The device whose range holds the whole access `[address, address + length)`, and the offset into it.
    func find(_ address: UInt64, _ length: Int) -> (any MMIODevice, UInt64)? {
        for m in mappings where address >= m.base && address - m.base < m.length {
            let offset = address - m.base
            guard UInt64(length) <= m.length - offset else { return nil }
            return (m.device, offset)
        }
        return nil
    }

    /// Reads `length` bytes at guest physical `address`.
    public func read(address: UInt64, length: Int) -> [UInt8] {
        guard let (device, offset) = find(address, length) else { return [UInt8](repeating: 0xff, count: length) }
        var bytes = device.read(offset: offset, length: length)
        if bytes.count < length { bytes += [UInt8](repeating: 0, count: length - bytes.count) }
        return Array(bytes.prefix(length))
    }

    /// Writes `data` at guest physical `address`.
    public func write(address: UInt64, data: [UInt8]) {
        guard let (device, offset) = find(address, data.count) else { return }
        device.write(offset: offset, data: data)
    }

    /// A handler for `VCPU.runUntilStop(bus:mmio:)`.
    ///
    /// That closure is not told the width of a read, so reads are made 4 bytes wide: every virtio-mmio
    /// register is 32-bit and Linux's `vm_get` reads config space with 1-, 2- or 4-byte accesses (a
    /// 64-bit field as two 32-bit reads), and `completeMMIORead` keeps only the bytes the guest asked for.
    public var runLoopHandler: (UInt64, Bool, [UInt8]) -> [UInt8] {
        { [self] address, isWrite, data in
            if isWrite {
                write(address: address, data: data)
                return []
            }
            return read(address: address, length: 4)
        }
    }
}
