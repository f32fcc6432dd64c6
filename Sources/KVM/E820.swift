/// One entry of the BIOS e820 memory map as the zero page holds it (`struct boot_e820_entry` in
/// `arch/x86/include/uapi/asm/bootparam.h`: u64 addr, u64 size, u32 type; 20 bytes, packed).
public struct E820Entry: Equatable, Sendable, CustomStringConvertible {
    /// Range types (`arch/x86/include/asm/e820/types.h`, `enum e820_type`).
    public enum Kind: UInt32, Sendable {
        /// E820_TYPE_RAM: usable RAM.
        case ram = 1
        /// E820_TYPE_RESERVED.
        case reserved = 2
        /// E820_TYPE_ACPI: ACPI tables, reclaimable.
        case acpi = 3
        /// E820_TYPE_NVS: ACPI NVS.
        case nvs = 4
        /// E820_TYPE_UNUSABLE.
        case unusable = 5
    }

    /// First guest physical address.
    public var address: UInt64
    /// Length in bytes.
    public var size: UInt64
    /// What the range is.
    public var kind: Kind

    public init(address: UInt64, size: UInt64, kind: Kind) {
        self.address = address
        self.size = size
        self.kind = kind
    }

    /// The 20 bytes of `struct boot_e820_entry`, little-endian.
    public var encoded: [UInt8] {
        withUnsafeBytes(of: address.littleEndian, Array.init) + withUnsafeBytes(of: size.littleEndian, Array.init)
            + withUnsafeBytes(of: kind.rawValue.littleEndian, Array.init)
    }

    /// `[0x100000-0x7ffffff] ram`, the way Linux prints `BIOS-e820:` lines.
    public var description: String {
        "[0x\(hex(address))-0x\(hex(address + size - 1))] \(kind)"
    }
}

/// The e820 map a Skiff guest sees (microvm.md §3.4 item 4, §5 bug 17; Firecracker
/// `arch/x86_64/mod.rs: configure_64bit_boot`):
///
/// | range | type |
/// |---|---|
/// | `[0, 0x9fc00)` | RAM (conventional memory below 640 KiB, less the 1 KiB EBDA) |
/// | `[0x9fc00, 0x100000)` | reserved (EBDA, where the MP table goes; the ACPI tables at 0xa0000 and the RSDP at 0xe0000, `ACPITables`; VGA hole; BIOS ROM) |
/// | `[0x100000, end of RAM below 3 GiB)` | RAM |
/// | `[4 GiB, 4 GiB + rest)` | RAM, when guest memory is larger than 3 GiB |
///
/// One RAM entry per `GuestMemory.Region`, nothing reserved but the legacy hole, and no entry for
/// the 3–4 GiB MMIO hole (Linux treats a gap as MMIO-usable, which is what it is).
public enum E820 {
    /// Start of the extended BIOS data area: 640 KiB − 1 KiB. The decompressor's trampoline sits just
    /// below `min(EBDA, 0x9f000)` (`arch/x86/boot/compressed/pgtable_64.c`), so RAM runs up to here.
    public static let ebdaStart: UInt64 = 0x9_fc00
    /// First byte above the legacy hole (1 MiB).
    public static let highMemoryStart: UInt64 = 0x10_0000

    /// The map for `regions` (lowest first, the first starting at 0, as `GuestMemory.regions`).
    /// - Throws: `KVMError.layout` when the first region does not start at 0 or does not reach past
    ///   1 MiB (there is nowhere to load a kernel).
    public static func map(regions: [GuestMemory.Region]) throws -> [E820Entry] {
        guard let low = regions.first, low.guestAddress == 0, low.size > highMemoryStart else {
            let total = regions.reduce(0) { $0 + $1.size }
            throw KVMError.layout(
                "guest memory of \(total) bytes has no RAM above 1 MiB to load a kernel into; give the VM more memory")
        }
        var map = [
            E820Entry(address: 0, size: ebdaStart, kind: .ram),
            E820Entry(address: ebdaStart, size: highMemoryStart - ebdaStart, kind: .reserved),
            E820Entry(address: highMemoryStart, size: low.size - highMemoryStart, kind: .ram),
        ]
        for r in regions.dropFirst() { map.append(E820Entry(address: r.guestAddress, size: r.size, kind: .ram)) }
        return map
    }

    /// The map for `memory`'s regions.
    public static func map(for memory: GuestMemory) throws -> [E820Entry] { try map(regions: memory.regions) }
}
