/// A byte-wide device on the x86 I/O port space. `offset` is relative to the base it was registered at.
public protocol PortIODevice: AnyObject {
    /// The guest reads one byte at `offset`.
    func read(offset: UInt16) -> UInt8
    /// The guest writes `value` at `offset`.
    func write(offset: UInt16, value: UInt8)
}

/// Routes `KVM_EXIT_IO` exits to devices by port range.
///
/// Wider or string accesses (`size * count` bytes) are split into byte accesses at consecutive
/// offsets for `size` and repeated `count` times at the same port, as `rep outsb` does. Reads of
/// ports with no device return 0xff (an empty ISA bus); writes to them are dropped.
public final class PortIOBus {
    struct Mapping {
        let base: UInt16
        let length: UInt16
        let device: any PortIODevice
    }
    var mappings: [Mapping] = []
    /// Set by `requestStop(_:)`; read and cleared by `VCPU.runUntilStop`.
    var stopRequest: GuestStop?

    public init() {}

    /// Registers `device` at ports `[base, base + length)`.
    /// - Throws: `KVMError.layout` if the range overlaps a registered one.
    public func register(_ device: any PortIODevice, base: UInt16, length: UInt16) throws {
        let end = Int(base) + Int(length)
        for m in mappings where Int(base) < Int(m.base) + Int(m.length) && Int(m.base) < end {
            throw KVMError.layout("I/O ports 0x\(hex(base))+\(length) overlap a device at 0x\(hex(m.base))+\(m.length)")
        }
        mappings.append(Mapping(base: base, length: length, device: device))
    }

    func find(_ port: UInt16) -> (any PortIODevice, UInt16)? {
        for m in mappings where port >= m.base && Int(port) < Int(m.base) + Int(m.length) {
            return (m.device, port - m.base)
        }
        return nil
    }

    /// Writes `data` (`size * count` bytes) to `port`.
    public func write(port: UInt16, size: Int, data: [UInt8]) {
        for (i, b) in data.enumerated() {
            let p = port &+ UInt16(i % max(size, 1))
            if let (d, offset) = find(p) { d.write(offset: offset, value: b) }
        }
    }

    /// Reads `size * count` bytes from `port`.
    public func read(port: UInt16, size: Int, count: Int) -> [UInt8] {
        (0..<(size * count)).map { i in
            let p = port &+ UInt16(i % max(size, 1))
            guard let (d, offset) = find(p) else { return 0xff }
            return d.read(offset: offset)
        }
    }
}
