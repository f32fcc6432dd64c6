import Glibc
import LinuxSys

/// Guest RAM: one anonymous host mapping, seen by the guest as one or two ranges of guest physical
/// addresses (below the 32-bit MMIO hole, and from 4 GiB up; microvm.md §3.1).
///
/// The mapping is `mmap(PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE)`, so only
/// pages the guest or the monitor touch cost host memory (api.rst §4.35 for the memslots built
/// from `regions`). Every access is bounds-checked and must lie inside one region; the mapping is
/// unmapped on deinit.
public final class GuestMemory {
    /// One contiguous range of guest physical addresses backed by `[hostOffset, hostOffset+size)` of the mapping.
    public struct Region: Equatable, Sendable {
        /// First guest physical address.
        public let guestAddress: UInt64
        /// Length in bytes.
        public let size: UInt64
        /// Offset of the first byte in the host mapping.
        public let hostOffset: UInt64

        public init(guestAddress: UInt64, size: UInt64, hostOffset: UInt64) {
            self.guestAddress = guestAddress
            self.size = size
            self.hostOffset = hostOffset
        }
    }

    /// Start of the 32-bit MMIO hole (3 GiB); RAM above it continues at `highRAMStart` (Firecracker's layout).
    public static let mmioHoleStart: UInt64 = 3 << 30
    /// Where RAM resumes above the MMIO hole (4 GiB).
    public static let highRAMStart: UInt64 = 4 << 30

    /// Base of the host mapping.
    public let host: UnsafeMutableRawPointer
    /// Total bytes of guest RAM.
    public let size: UInt64
    /// Guest physical ranges, lowest first.
    public let regions: [Region]

    /// Maps `size` bytes (a multiple of 4 KiB) and lays them out as `[0, min(size, 3 GiB))` plus
    /// `[4 GiB, 4 GiB + rest)`.
    /// - Throws: `KVMError.layout` for a zero or unaligned size, `KVMError.system` when mmap fails.
    public init(size: UInt64) throws {
        guard size > 0, size % 4096 == 0 else {
            throw KVMError.layout("guest memory of \(size) bytes: must be a positive multiple of 4096")
        }
        let p = mmap(nil, Int(size), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        guard let p, p != MAP_FAILED else {
            throw KVMError.system(SysError("mmap", "\(size) bytes of guest memory"))
        }
        host = p
        self.size = size
        let low = min(size, Self.mmioHoleStart)
        var regions = [Region(guestAddress: 0, size: low, hostOffset: 0)]
        if size > low {
            regions.append(Region(guestAddress: Self.highRAMStart, size: size - low, hostOffset: low))
        }
        self.regions = regions
    }

    deinit { munmap(host, Int(size)) }

    /// The host pointer for `[address, address + length)`.
    /// - Throws: `KVMError.outOfBounds` unless the whole range lies inside one region.
    public func pointer(at address: UInt64, length: Int) throws -> UnsafeMutableRawPointer {
        for r in regions where address >= r.guestAddress {
            let offset = address - r.guestAddress
            if offset <= r.size, UInt64(length) <= r.size - offset {
                return host + Int(r.hostOffset + offset)
            }
        }
        throw KVMError.outOfBounds(address: address, length: length, memory: layoutDescription)
    }

    /// Copies `bytes` to guest physical `address`.
    public func write(_ bytes: some Collection<UInt8>, at address: UInt64) throws {
        let p = try pointer(at: address, length: bytes.count)
        UnsafeMutableRawBufferPointer(start: p, count: bytes.count).copyBytes(from: bytes)
    }

    /// Reads `length` bytes at guest physical `address`.
    public func read(at address: UInt64, length: Int) throws -> [UInt8] {
        let p = try pointer(at: address, length: length)
        return Array(UnsafeRawBufferPointer(start: p, count: length))
    }

    /// Stores `value` little-endian (x86 byte order) at `address`.
    public func write<T: FixedWidthInteger>(_ value: T, at address: UInt64) throws {
        let p = try pointer(at: address, length: MemoryLayout<T>.size)
        p.storeBytes(of: value.littleEndian, as: T.self)
    }

    /// Loads a little-endian `T` at `address`.
    public func read<T: FixedWidthInteger>(_: T.Type, at address: UInt64) throws -> T {
        let p = try pointer(at: address, length: MemoryLayout<T>.size)
        return T(littleEndian: p.loadUnaligned(as: T.self))
    }

    /// Zeroes `[address, address + length)`.
    public func zero(at address: UInt64, length: Int) throws {
        memset(try pointer(at: address, length: length), 0, length)
    }

    /// `0x0-0x40000000` style list of the regions, for error messages.
    public var layoutDescription: String {
        regions.map { "0x\(hex($0.guestAddress))-0x\(hex($0.guestAddress + $0.size))" }.joined(separator: ", ")
    }
}
