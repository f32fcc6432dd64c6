/// Identity-mapping page tables for 4-level paging with 2 MiB pages (Intel SDM Vol. 3A §4.5,
/// Figure 4-9; microvm.md §3.3: PML4[0] → PDPT, PDPT[i] → PD i, PD entries map 2 MiB each).
///
/// `entries(gigabytes:userAccessible:)` returns the 8-byte entries to write at `GuestLayout.pml4Address`,
/// `.pdptAddress` and `.pdAddress` (one 4 KiB page directory per GiB).
public enum IdentityMap {
    /// Present (bit 0).
    public static let present: UInt64 = 1 << 0
    /// Writable (bit 1).
    public static let writable: UInt64 = 1 << 1
    /// User/supervisor (bit 2): CPL 3 may access the range only if every level sets it.
    public static let user: UInt64 = 1 << 2
    /// Page size (bit 7 in a PD entry): the entry maps a 2 MiB page.
    public static let pageSize: UInt64 = 1 << 7

    /// The most the layout holds: page directories from 0xb000 must stay below the command line at 0x20000.
    public static let maxGigabytes = 16

    /// One table: guest physical address and its 512 entries.
    public struct Table: Equatable, Sendable {
        public let address: UInt64
        public let entries: [UInt64]
    }

    /// PML4, PDPT and `gigabytes` page directories mapping `[0, gigabytes GiB)` to itself.
    /// `userAccessible` sets the U/S bit at every level, so ring-3 code can use the whole range
    /// (test guests that run at CPL 3 need it; a Linux boot does not).
    /// - Throws: `KVMError.layout` when `gigabytes` is not in 1…16.
    public static func tables(gigabytes: Int = 1, userAccessible: Bool = false) throws -> [Table] {
        guard (1...maxGigabytes).contains(gigabytes) else {
            throw KVMError.layout("identity map of \(gigabytes) GiB: supported range is 1…\(maxGigabytes) GiB")
        }
        let u = userAccessible ? user : 0
        var pml4 = [UInt64](repeating: 0, count: 512)
        pml4[0] = GuestLayout.pdptAddress | present | writable | u
        var pdpt = [UInt64](repeating: 0, count: 512)
        var tables = [Table(address: GuestLayout.pml4Address, entries: pml4)]
        var directories: [Table] = []
        for g in 0..<gigabytes {
            let pdAddress = GuestLayout.pdAddress + UInt64(g) * 4096
            pdpt[g] = pdAddress | present | writable | u
            let pd = (0..<512).map { i in
                ((UInt64(g) << 30) | (UInt64(i) << 21)) | present | writable | pageSize | u
            }
            directories.append(Table(address: pdAddress, entries: pd))
        }
        tables.append(Table(address: GuestLayout.pdptAddress, entries: pdpt))
        return tables + directories
    }

    /// Writes `tables(...)` into guest memory.
    public static func write(to memory: GuestMemory, gigabytes: Int = 1, userAccessible: Bool = false) throws {
        for t in try tables(gigabytes: gigabytes, userAccessible: userAccessible) {
            for (i, e) in t.entries.enumerated() { try memory.write(e, at: t.address + UInt64(i * 8)) }
        }
    }
}
