/// The Differentiated System Description Table (ACPI 6.5 §5.2.11.1), revision 2 (64-bit AML
/// integers): the header and a few AML objects (§20, "ACPI Machine Language Specification").
///
/// - `Name (\_S5_, Package () { 5, 0 })` when `softOff` is set (§7.4.2 "\_Sx (System States)"):
///   with the FADT's sleep registers, Linux then powers off through `ACPIShutdown`.
/// - `Scope (\_SB_) { Device (Vnnn) { … } }` with one device per virtio-mmio transport, as
///   Firecracker's `add_virtio_aml` writes them, so a kernel without
///   `CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES` (Debian's) finds them (microvm.md §4.1, §5 bug 16):
///   `_HID "LNRO0005"` (the id `virtio_mmio` matches), `_UID n`, `_CCA 1` (cache-coherent DMA) and
///   `_CRS` = Memory32Fixed (ReadWrite, address, size) + Interrupt (ResourceConsumer, Edge,
///   ActiveHigh, Exclusive) { gsi }.
///
/// COM1 and the i8042 are not declared: Linux's 8250 driver probes the legacy ports itself, and its
/// i8042 driver probes ports 0x60/0x64 when no `PNP0303` device exists but the FADT's IAPC_BOOT_ARCH
/// says an 8042 is present (`ACPIFADT.bootArch8042`).
public struct ACPIDSDT: Sendable {
    /// A virtio-mmio transport to declare.
    public struct MMIODevice: Equatable, Sendable {
        /// Guest physical address of its register window.
        public var address: UInt64
        /// Window size in bytes (4 KiB for virtio-mmio).
        public var size: UInt32
        /// The GSI (IOAPIC pin) it raises.
        public var gsi: UInt32

        public init(address: UInt64, size: UInt32 = 0x1000, gsi: UInt32) {
            self.address = address
            self.size = size
            self.gsi = gsi
        }
    }

    /// DSDT revision: 2 or above makes AML integers 64 bits wide (§5.2.11.1).
    public static let revision: UInt8 = 2
    /// SLP_TYP of S5 that `\_S5_` declares and `ACPIShutdown` expects (cloud-hypervisor's value).
    public static let s5SleepType: UInt8 = 5
    /// Most devices: `Vnnn` names and 8-bit `_UID` byte constants.
    public static let maxDevices = 256

    /// Whether to declare `\_S5_`.
    public var softOff: Bool
    /// virtio-mmio transports, `_UID` = index.
    public var devices: [MMIODevice]

    public init(softOff: Bool = true, devices: [MMIODevice] = []) {
        self.softOff = softOff
        self.devices = devices
    }

    /// The whole table, checksum filled in.
    public func bytes() -> [UInt8] {
        var aml: [UInt8] = []
        if softOff {
            aml += AML.name("_S5_", AML.package([AML.integer(UInt64(Self.s5SleepType)), AML.integer(0)]))
        }
        if !devices.isEmpty {
            let body = devices.prefix(Self.maxDevices).enumerated().flatMap { i, d in Self.device(index: i, d) }
            aml += AML.scope("_SB_", body)
        }
        return ACPITables.table("DSDT", revision: Self.revision, body: aml)
    }

    /// `Device (Vnnn)` for virtio-mmio transport `index` (`nnn` in hex, as Firecracker's names).
    static func device(index: Int, _ d: MMIODevice) -> [UInt8] {
        let digits = String(index, radix: 16, uppercase: true)
        let name = "V" + String(repeating: "0", count: max(0, 3 - digits.count)) + digits
        var resources = AML.memory32Fixed(address: UInt32(truncatingIfNeeded: d.address), size: d.size)
        resources += AML.extendedInterrupt(d.gsi)
        return AML.device(
            name,
            AML.name("_HID", AML.string("LNRO0005")) + AML.name("_UID", AML.integer(UInt64(index)))
                + AML.name("_CCA", AML.integer(1)) + AML.name("_CRS", AML.resourceTemplate(resources)))
    }
}

/// The few AML encodings the DSDT needs (ACPI 6.5 §20.2): names, integers, strings, packages,
/// buffers, scopes, devices and two resource descriptors (§6.4.3).
enum AML {
    static let zeroOp: UInt8 = 0x00, oneOp: UInt8 = 0x01, nameOp: UInt8 = 0x08
    static let bytePrefix: UInt8 = 0x0a, wordPrefix: UInt8 = 0x0b, dWordPrefix: UInt8 = 0x0c
    static let stringPrefix: UInt8 = 0x0d, qWordPrefix: UInt8 = 0x0e
    static let scopeOp: UInt8 = 0x10, bufferOp: UInt8 = 0x11, packageOp: UInt8 = 0x12
    static let extOpPrefix: UInt8 = 0x5b, deviceOp: UInt8 = 0x82

    /// A NameSeg: four characters, `_`-padded (§20.2.2).
    static func nameSeg(_ s: String) -> [UInt8] {
        let u = Array(s.utf8.prefix(4))
        return u + [UInt8](repeating: UInt8(ascii: "_"), count: 4 - u.count)
    }

    /// PkgLength (§20.2.4) for `length` bytes that follow it; the encoding counts its own bytes.
    static func pkgLength(_ length: Int) -> [UInt8] {
        if length + 1 < 0x40 { return [UInt8(length + 1)] }
        for extra in 1...3 {
            let total = length + 1 + extra
            guard total < 1 << (4 + 8 * extra) else { continue }
            var bytes = [UInt8(extra << 6) | UInt8(total & 0x0f)]
            for i in 0..<extra { bytes.append(UInt8((total >> (4 + 8 * i)) & 0xff)) }
            return bytes
        }
        preconditionFailure("AML package of \(length) bytes exceeds PkgLength's 28 bits")
    }

    /// The smallest integer encoding: ZeroOp, OneOp, or a Byte/Word/DWord/QWord constant.
    static func integer(_ v: UInt64) -> [UInt8] {
        switch v {
        case 0: return [zeroOp]
        case 1: return [oneOp]
        case ...0xff: return [bytePrefix, UInt8(v)]
        case ...0xffff: return [wordPrefix] + withUnsafeBytes(of: UInt16(v).littleEndian, Array.init)
        case ...0xffff_ffff: return [dWordPrefix] + withUnsafeBytes(of: UInt32(v).littleEndian, Array.init)
        default: return [qWordPrefix] + withUnsafeBytes(of: v.littleEndian, Array.init)
        }
    }

    /// A String constant: StringPrefix, ASCII, NUL.
    static func string(_ s: String) -> [UInt8] { [stringPrefix] + Array(s.utf8) + [0] }

    /// `Name (name, object)`.
    static func name(_ name: String, _ object: [UInt8]) -> [UInt8] { [nameOp] + nameSeg(name) + object }

    /// `Package () { elements }` (DefPackage: PkgLength, NumElements, elements).
    static func package(_ elements: [[UInt8]]) -> [UInt8] {
        let body = [UInt8(elements.count)] + elements.flatMap { $0 }
        return [packageOp] + pkgLength(body.count) + body
    }

    /// `Scope (\name) { body }`: the name is rooted (`\`).
    static func scope(_ name: String, _ body: [UInt8]) -> [UInt8] {
        let inner = [UInt8(ascii: "\\")] + nameSeg(name) + body
        return [scopeOp] + pkgLength(inner.count) + inner
    }

    /// `Device (name) { body }`.
    static func device(_ name: String, _ body: [UInt8]) -> [UInt8] {
        let inner = nameSeg(name) + body
        return [extOpPrefix, deviceOp] + pkgLength(inner.count) + inner
    }

    /// `ResourceTemplate () { descriptors }`: a Buffer of the descriptors and an End Tag (§6.4.2.9)
    /// whose checksum byte is 0 ("treated as if the checksum operation succeeded").
    static func resourceTemplate(_ descriptors: [UInt8]) -> [UInt8] {
        let data = descriptors + [0x79, 0x00]
        let body = integer(UInt64(data.count)) + data
        return [bufferOp] + pkgLength(body.count) + body
    }

    /// Memory32Fixed (ReadWrite, address, size): large item 0x86, length 9 (§6.4.3.4).
    static func memory32Fixed(address: UInt32, size: UInt32) -> [UInt8] {
        var w = LittleEndianWriter()
        w.u8(0x86)
        w.u16(9)
        w.u8(1)  // read-write
        w.u32(address)
        w.u32(size)
        return w.bytes
    }

    /// Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive) { gsi }: the Extended Interrupt
    /// descriptor, large item 0x89, length 6 for one interrupt (§6.4.3.6). Flags: consumer (bit 0),
    /// edge (bit 1); active-high (bit 2 clear), exclusive (bit 3 clear).
    static func extendedInterrupt(_ gsi: UInt32) -> [UInt8] {
        var w = LittleEndianWriter()
        w.u8(0x89)
        w.u16(6)
        w.u8(0x03)
        w.u8(1)
        w.u32(gsi)
        return w.bytes
    }
}
