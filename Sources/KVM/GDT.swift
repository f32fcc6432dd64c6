import CKVM

/// One 8-byte segment descriptor (Intel SDM Vol. 3A §3.4.5 "Segment Descriptors").
///
/// `flags` uses Firecracker's packing (`gdt_entry` in `arch/x86_64/gdt.rs`): bits 0–7 are the access
/// byte (type, S, DPL, P) and bits 12–15 the high nibble (AVL, L, D/B, G). `limit` is 20 bits, in
/// 4 KiB units when G is set.
public struct SegmentDescriptor: Equatable, Sendable {
    /// Access byte and flags nibble, e.g. `0xa09b` for 64-bit ring-0 code.
    public var flags: UInt16
    /// Base address (ignored by the CPU for code and data in 64-bit mode).
    public var base: UInt32
    /// 20-bit limit.
    public var limit: UInt32

    public init(flags: UInt16, base: UInt32 = 0, limit: UInt32 = 0xfffff) {
        self.flags = flags
        self.base = base
        self.limit = limit
    }

    /// 64-bit code, DPL 0 (P, S, type 0xb execute/read accessed; L, G).
    public static let kernelCode64 = SegmentDescriptor(flags: 0xa09b)
    /// Flat data, DPL 0 (P, S, type 0x3 read/write accessed; D/B, G).
    public static let kernelData = SegmentDescriptor(flags: 0xc093)
    /// 64-bit code, DPL 3.
    public static let userCode64 = SegmentDescriptor(flags: 0xa0fb)
    /// Flat data, DPL 3.
    public static let userData = SegmentDescriptor(flags: 0xc0f3)
    /// 64-bit busy TSS (system segment type 0xb), as Firecracker sets it.
    public static let tss = SegmentDescriptor(flags: 0x808b)

    /// The descriptor as the CPU reads it from the GDT.
    public var encoded: UInt64 {
        let b = UInt64(base)
        let l = UInt64(limit)
        let f = UInt64(flags)
        return ((b & 0xff00_0000) << (56 - 24)) | ((f & 0x0000_f0ff) << 40) | ((l & 0x000f_0000) << (48 - 16))
            | ((b & 0x00ff_ffff) << 16) | (l & 0x0000_ffff)
    }

    /// The `struct kvm_segment` for loading this descriptor with `selector` (KVM_SET_SREGS wants the
    /// hidden part of the segment register spelled out; Firecracker `kvm_segment_from_gdt`).
    public func segment(selector: UInt16) -> Segment {
        var s = Segment()
        s.base = UInt64(base)
        s.limit = (flags >> 15) & 1 == 1 ? (limit << 12) | 0xfff : limit
        s.selector = selector
        s.type = UInt8(flags & 0xf)
        s.s = UInt8((flags >> 4) & 1)
        s.dpl = UInt8((flags >> 5) & 3)
        s.present = UInt8((flags >> 7) & 1)
        s.avl = UInt8((flags >> 12) & 1)
        s.l = UInt8((flags >> 13) & 1)
        s.db = UInt8((flags >> 14) & 1)
        s.g = UInt8((flags >> 15) & 1)
        s.unusable = s.present == 0 ? 1 : 0
        return s
    }
}

/// The guest's GDT: the selectors Linux's 64-bit boot protocol names (boot.rst: `__BOOT_CS` 0x10,
/// `__BOOT_DS` 0x18), ring-3 segments for test guests that drop to user mode, and a TSS so that TR is
/// valid on VM entry.
///
/// | selector | descriptor |
/// |---|---|
/// | 0x00, 0x08 | null |
/// | 0x10 | 64-bit code, DPL 0 (`__BOOT_CS`) |
/// | 0x18 | data, DPL 0 (`__BOOT_DS`) |
/// | 0x20 | 64-bit code, DPL 3 (load as 0x23) |
/// | 0x28 | data, DPL 3 (load as 0x2b) |
/// | 0x30 | TSS (16 bytes: slots 6 and 7) |
public enum GDT {
    /// Kernel code selector (`__BOOT_CS`).
    public static let kernelCodeSelector: UInt16 = 0x10
    /// Kernel data selector (`__BOOT_DS`).
    public static let kernelDataSelector: UInt16 = 0x18
    /// User code selector with RPL 3.
    public static let userCodeSelector: UInt16 = 0x23
    /// User data selector with RPL 3.
    public static let userDataSelector: UInt16 = 0x2b
    /// TSS selector (for TR).
    public static let tssSelector: UInt16 = 0x30

    /// The eight 8-byte slots, in order (the upper half of the 16-byte TSS descriptor is zero: base < 4 GiB).
    public static let standard: [UInt64] = [
        0, 0,
        SegmentDescriptor.kernelCode64.encoded, SegmentDescriptor.kernelData.encoded,
        SegmentDescriptor.userCode64.encoded, SegmentDescriptor.userData.encoded,
        SegmentDescriptor.tss.encoded, 0,
    ]

    /// GDTR limit: size in bytes minus one.
    public static var limit: UInt16 { UInt16(standard.count * 8 - 1) }
}
