import LinuxSys

/// A kernel placed in guest memory by `ElfKernelLoader` or `BzImageLoader`.
public struct LoadedKernel: Equatable, Sendable {
    /// The two kernel formats Skiff boots.
    public enum Format: Equatable, Sendable {
        /// ELF64 `vmlinux`.
        case elf
        /// bzImage (`vmlinuz`), Linux boot protocol 2.12+.
        case bzImage
    }

    /// The kernel file, for messages.
    public let path: String
    /// Which loader placed it.
    public let format: Format
    /// Lowest guest physical address written.
    public let loadAddress: UInt64
    /// First guest physical address past the loaded bytes (ELF: including `.bss`).
    public let end: UInt64
    /// Guest physical address of the 64-bit entry (`startup_64`).
    public let entry: UInt64
    /// First address past everything the kernel uses while it boots (`init_size` for a bzImage); the
    /// initrd goes above it and the identity map covers it.
    public let reservedEnd: UInt64
    /// The bzImage's setup header; nil for ELF.
    public let setupHeader: SetupHeader?
    /// The ELF file carries Skiff's all-vCPU entry note (`ElfKernelLoader.allVCPUsNote`): every vCPU
    /// starts at `entry` in 64-bit mode, not only the boot vCPU. Always false for a bzImage.
    public let startsAllVCPUs: Bool

    public init(
        path: String, format: Format, loadAddress: UInt64, end: UInt64, entry: UInt64, reservedEnd: UInt64,
        setupHeader: SetupHeader?, startsAllVCPUs: Bool = false
    ) {
        self.startsAllVCPUs = startsAllVCPUs
        self.path = path
        self.format = format
        self.loadAddress = loadAddress
        self.end = end
        self.entry = entry
        self.reservedEnd = reservedEnd
        self.setupHeader = setupHeader
    }

    /// `cmdline_size`: the longest command line this kernel takes, without the NUL (the header's, or
    /// `COMMAND_LINE_SIZE` − 1 = 2047 for ELF).
    public var commandLineLimit: UInt32 { setupHeader?.cmdlineSize ?? BootParams.defaultCmdlineSize }

    /// `initrd_addr_max`: the highest address the initrd may occupy (the header's, or 0x7fffffff for ELF).
    public var initrdAddressMax: UInt32 { setupHeader?.initrdAddrMax ?? BootParams.defaultInitrdAddrMax64 }
}

/// An initrd placed in guest memory.
public struct LoadedInitrd: Equatable, Sendable {
    /// Guest physical address (page-aligned).
    public let address: UInt64
    /// Size in bytes.
    public let size: UInt64

    public init(address: UInt64, size: UInt64) {
        self.address = address
        self.size = size
    }
}

/// Picks the loader by the file's magic: ELF (`\x7fELF`) or bzImage (0xAA55 + "HdrS").
public enum KernelLoader {
    /// Reads and loads the kernel at `path`.
    /// - Throws: `LoaderError` naming `path` (`.unreadable`, `.unknownFormat`, or a loader's check).
    public static func load(path: String, into memory: GuestMemory) throws -> LoadedKernel {
        let bytes: [UInt8]
        do { bytes = try Files.read(path) } catch { throw LoaderError(file: path, .unreadable("\(error)")) }
        return try load(bytes, path: path, into: memory)
    }

    /// Loads kernel `bytes` (called `path` in errors).
    public static func load(_ bytes: [UInt8], path: String, into memory: GuestMemory) throws -> LoadedKernel {
        if ElfKernelLoader.isELF(bytes) { return try ElfKernelLoader.load(bytes, path: path, into: memory) }
        if BzImageLoader.isBzImage(bytes) { return try BzImageLoader.load(bytes, path: path, into: memory) }
        throw LoaderError(file: path, .unknownFormat)
    }
}

/// Places an initrd the way boot.rst asks and Firecracker does (microvm.md §3.1, §5 bugs 8–9): page
/// aligned, as high as possible below `min(initrd_addr_max + 1, end of RAM below 3 GiB, 4 GiB)` (so
/// the u32 `ramdisk_image` holds it), and wholly above the kernel's `reservedEnd` (clear of the
/// in-place decompression).
public enum InitrdLoader {
    /// Page size the initrd is aligned to.
    public static let alignment: UInt64 = 4096

    /// The address for an initrd of `size` bytes next to `kernel` in `memory`.
    /// - Throws: `LoaderError(.initrdTooLarge)` naming `path` when it does not fit.
    public static func placement(size: UInt64, kernel: LoadedKernel, memory: GuestMemory, path: String) throws
        -> UInt64
    {
        let lowEnd = memory.regions.first.map { $0.guestAddress + $0.size } ?? 0
        let highest = min(UInt64(kernel.initrdAddressMax) + 1, lowEnd, GuestMemory.highRAMStart)
        let lowest = (kernel.reservedEnd + alignment - 1) / alignment * alignment
        guard size <= highest, (highest - size) & ~(alignment - 1) >= lowest else {
            throw LoaderError(file: path, .initrdTooLarge(size: size, lowest: lowest, highest: highest))
        }
        return (highest - size) & ~(alignment - 1)
    }

    /// Copies `bytes` to `placement(...)`.
    public static func load(_ bytes: [UInt8], path: String, kernel: LoadedKernel, into memory: GuestMemory) throws
        -> LoadedInitrd
    {
        let address = try placement(size: UInt64(bytes.count), kernel: kernel, memory: memory, path: path)
        try memory.write(bytes, at: address)
        return LoadedInitrd(address: address, size: UInt64(bytes.count))
    }

    /// Reads `path` and loads it.
    public static func load(path: String, kernel: LoadedKernel, into memory: GuestMemory) throws -> LoadedInitrd {
        let bytes: [UInt8]
        do { bytes = try Files.read(path) } catch { throw LoaderError(file: path, .unreadable("\(error)")) }
        return try load(bytes, path: path, kernel: kernel, into: memory)
    }
}
