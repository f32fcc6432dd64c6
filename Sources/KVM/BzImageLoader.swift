import LinuxSys

/// The fields of a bzImage's setup header (`struct setup_header`, file offset 0x1f1) a loader reads,
/// plus the header's raw bytes for copying into the zero page. Offsets: `BootParams`.
public struct SetupHeader: Equatable, Sendable {
    /// `setup_sects` as stored (0 means 4; see `setupSectors`).
    public let setupSects: UInt8
    /// `boot_flag` (0xAA55).
    public let bootFlag: UInt16
    /// `header` ("HdrS" = 0x53726448).
    public let header: UInt32
    /// `version`, e.g. 0x020f.
    public let version: UInt16
    /// `loadflags`.
    public let loadflags: UInt8
    /// `code32_start`.
    public let code32Start: UInt32
    /// `initrd_addr_max`: highest address the initrd may occupy.
    public let initrdAddrMax: UInt32
    /// `kernel_alignment`.
    public let kernelAlignment: UInt32
    /// `relocatable_kernel` ≠ 0.
    public let relocatable: Bool
    /// `min_alignment` (log2).
    public let minAlignment: UInt8
    /// `xloadflags`.
    public let xloadflags: UInt16
    /// `cmdline_size`: longest command line, without the NUL.
    public let cmdlineSize: UInt32
    /// `pref_address`.
    public let prefAddress: UInt64
    /// `init_size` in bytes.
    public let initSize: UInt32
    /// File bytes `[0x1f1, 0x202 + byte[0x201])`: what a loader copies into the zero page (never
    /// beyond, so `sentinel` and the rest stay zero).
    public let bytes: [UInt8]

    /// Real-mode setup sectors (`setup_sects`, 0 meaning 4).
    public var setupSectors: Int { setupSects == 0 ? BootParams.defaultSetupSects : Int(setupSects) }
    /// File offset of the protected-mode kernel: `(setup_sectors + 1) * 512`.
    public var kernelOffset: Int { (setupSectors + 1) * BootParams.sectorSize }

    /// Parses and checks the header of `file` (named `path` in errors): long enough, `boot_flag`,
    /// "HdrS", protocol ≥ 2.12, XLF_KERNEL_64.
    /// - Throws: `LoaderError` with `.truncated`, `.bootFlag`, `.headerMagic`, `.protocolVersion`, `.not64Bit`.
    public init(file: [UInt8], path: String) throws {
        let b = LoaderBytes(file)
        let size = UInt64(file.count)
        // Up to init_size (0x260, u32) is what a 2.10+ header holds and what this loader reads.
        let needed = BootParams.initSize + 4
        guard file.count >= needed else {
            throw LoaderError(file: path, .truncated(what: "the setup header", needed: UInt64(needed), actual: size))
        }
        bootFlag = b.u16(BootParams.bootFlag)
        guard bootFlag == BootParams.bootFlagMagic else { throw LoaderError(file: path, .bootFlag(bootFlag)) }
        header = b.u32(BootParams.header)
        guard header == BootParams.headerMagic else { throw LoaderError(file: path, .headerMagic(header)) }
        version = b.u16(BootParams.version)
        guard version >= BootParams.minimumVersion else { throw LoaderError(file: path, .protocolVersion(version)) }
        xloadflags = b.u16(BootParams.xloadflags)
        guard xloadflags & BootParams.xlfKernel64 != 0 else {
            throw LoaderError(file: path, .not64Bit(xloadflags: xloadflags))
        }
        setupSects = b.u8(BootParams.setupSects)
        loadflags = b.u8(BootParams.loadflags)
        code32Start = b.u32(BootParams.code32Start)
        initrdAddrMax = b.u32(BootParams.initrdAddrMax)
        kernelAlignment = b.u32(BootParams.kernelAlignment)
        relocatable = b.u8(BootParams.relocatableKernel) != 0
        minAlignment = b.u8(BootParams.minAlignment)
        cmdlineSize = b.u32(BootParams.cmdlineSize)
        prefAddress = b.u64(BootParams.prefAddress)
        initSize = b.u32(BootParams.initSize)
        let end = min(BootParams.jump + 2 + Int(b.u8(BootParams.jump + 1)), BootParams.setupHeaderLimit, file.count)
        bytes = Array(file[BootParams.setupHeader..<max(end, BootParams.setupHeader)])
    }
}

/// Loads a bzImage for the Linux 64-bit boot protocol (Documentation/arch/x86/boot.rst "Loading The
/// Rest of The Kernel", "64-bit Boot Protocol"; microvm.md §2 "Debian stock bzImage specifics").
///
/// The protected-mode kernel (file bytes from `(setup_sects + 1) * 512` on) is copied to the load
/// address, and the entry (`startup_64`) is load address + 0x200. The load address is
/// `pref_address` when the kernel is relocatable, `pref_address` is a multiple of `kernel_alignment`
/// and the kernel fits there; otherwise 1 MiB (`GuestLayout.kernelAddress`, where Firecracker puts
/// every bzImage). Either way the decompressor works in `[max(aligned load address, pref_address),
/// + init_size)` (`arch/x86/boot/compressed/head_64.S`), so that range must be RAM; it becomes the
/// kernel's `reservedEnd`, above which the initrd goes.
public enum BzImageLoader {
    /// Whether `bytes` look like a bzImage (0xAA55 at 0x1fe and "HdrS" at 0x202).
    public static func isBzImage(_ bytes: [UInt8]) -> Bool {
        let b = LoaderBytes(bytes)
        return b.u16(BootParams.bootFlag) == BootParams.bootFlagMagic
            && b.u32(BootParams.header) == BootParams.headerMagic
    }

    /// Reads `path` and loads it (see the type's documentation).
    /// - Throws: `LoaderError` naming `path` and the failed check.
    public static func load(path: String, into memory: GuestMemory) throws -> LoadedKernel {
        let bytes: [UInt8]
        do { bytes = try Files.read(path) } catch { throw LoaderError(file: path, .unreadable("\(error)")) }
        return try load(bytes, path: path, into: memory)
    }

    /// Loads the bzImage `bytes` (called `path` in errors) into `memory`.
    /// - Throws: `LoaderError`: the header checks of `SetupHeader.init`, `.truncated` when the file ends
    ///   within the setup sectors or before `startup_64`, `.kernelTooLarge` when the image or
    ///   `init_size` does not fit in RAM below 3 GiB.
    public static func load(_ bytes: [UInt8], path: String, into memory: GuestMemory) throws -> LoadedKernel {
        let header = try SetupHeader(file: bytes, path: path)
        let offset = header.kernelOffset
        let kernelSize = UInt64(max(bytes.count - offset, 0))
        guard kernelSize > BootParams.startup64Offset else {
            throw LoaderError(
                file: path,
                .truncated(
                    what: "\(header.setupSectors) setup sectors and a protected-mode kernel with startup_64 at +0x200",
                    needed: UInt64(offset) + BootParams.startup64Offset + 1, actual: UInt64(bytes.count)))
        }
        let lowEnd = memory.regions.first.map { $0.guestAddress + $0.size } ?? 0
        let align = UInt64(max(header.kernelAlignment, 1))
        let usesPreferred =
            header.relocatable && header.prefAddress >= GuestLayout.kernelAddress && header.prefAddress % align == 0
            && reservedEnd(load: header.prefAddress, kernelSize: kernelSize, header: header) <= lowEnd
        let load = usesPreferred ? header.prefAddress : GuestLayout.kernelAddress
        let reserved = reservedEnd(load: load, kernelSize: kernelSize, header: header)
        guard reserved <= lowEnd else {
            throw LoaderError(file: path, .kernelTooLarge(needed: reserved, available: lowEnd))
        }
        try memory.write(bytes[offset...], at: load)
        return LoadedKernel(
            path: path, format: .bzImage, loadAddress: load, end: load + kernelSize,
            entry: load + BootParams.startup64Offset, reservedEnd: reserved, setupHeader: header)
    }

    /// First byte above everything the kernel uses while it boots: the image itself, and `init_size`
    /// bytes from where it decompresses, `max(load aligned up to kernel_alignment, pref_address)` for a
    /// relocatable kernel (head_64.S clamps to LOAD_PHYSICAL_ADDR = pref_address) or `pref_address`
    /// for a fixed one.
    static func reservedEnd(load: UInt64, kernelSize: UInt64, header: SetupHeader) -> UInt64 {
        let align = UInt64(max(header.kernelAlignment, 1))
        let aligned = (load + align - 1) / align * align
        let target = header.relocatable ? max(aligned, header.prefAddress) : max(header.prefAddress, load)
        return max(load + kernelSize, target + UInt64(header.initSize))
    }
}
