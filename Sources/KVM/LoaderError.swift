/// A kernel, initrd or command line that cannot be loaded: which file, and which check failed.
///
/// `description` reads `vmlinuz-6.1: setup header: boot protocol 2.11 is older than 2.12 …`, and
/// says what to do where there is something to do.
public struct LoaderError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The failing check.
    public enum Check: Equatable, Sendable {
        /// The file could not be read (`open`/`read` failed; the text is the system error).
        case unreadable(String)
        /// Neither an ELF file nor a bzImage (no ELF magic, no 0xAA55/"HdrS").
        case unknownFormat
        /// The file ends before `what`, which needs `needed` bytes; it has `actual`.
        case truncated(what: String, needed: UInt64, actual: UInt64)
        /// ELF `e_ident[EI_CLASS]` is not ELFCLASS64 (2).
        case elfClass(UInt8)
        /// ELF `e_ident[EI_DATA]` is not ELFDATA2LSB (1).
        case elfByteOrder(UInt8)
        /// ELF `e_machine` is not EM_X86_64 (62).
        case elfMachine(UInt16)
        /// ELF `e_type` is not ET_EXEC (2).
        case elfType(UInt16)
        /// ELF `e_phentsize` is not 56 (`sizeof(Elf64_Phdr)`).
        case elfProgramHeaderSize(UInt16)
        /// The ELF file has no PT_LOAD segment.
        case noLoadableSegment
        /// Program header `index` is PT_INTERP (3) or PT_DYNAMIC (2): a dynamically linked
        /// user-space program, which a kernel never is (ELF-64 Object File Format, "Program header").
        case userSpaceProgram(index: Int, type: UInt32)
        /// PT_LOAD segment `index` has `p_filesz` larger than `p_memsz`.
        case segmentFileSizeExceedsMemorySize(index: Int)
        /// Guest range `[address, address + size)` of `what` is outside guest RAM (`memory` lists it).
        case outsideMemory(what: String, address: UInt64, size: UInt64, memory: String)
        /// A PT_LOAD segment starts below `minimum` and would overwrite the boot structures.
        case belowKernelArea(what: String, address: UInt64, minimum: UInt64)
        /// The entry point is in no PT_LOAD segment (neither as a physical nor as a virtual address).
        case entryOutsideSegments(UInt64)
        /// bzImage `boot_flag` at 0x1fe is not 0xAA55.
        case bootFlag(UInt16)
        /// bzImage `header` at 0x202 is not "HdrS".
        case headerMagic(UInt32)
        /// Boot protocol older than 2.12: no `xloadflags`, so no declared 64-bit entry.
        case protocolVersion(UInt16)
        /// `xloadflags` lacks XLF_KERNEL_64: a 32-bit-only kernel.
        case not64Bit(xloadflags: UInt16)
        /// The kernel needs RAM up to `needed` (load address + `init_size` or image) but low RAM ends at `available`.
        case kernelTooLarge(needed: UInt64, available: UInt64)
        /// The command line is `length` bytes; the kernel takes at most `limit` (`cmdline_size`).
        case commandLineTooLong(length: Int, limit: UInt32)
        /// The command line contains a NUL byte.
        case commandLineHasNUL
        /// The initrd of `size` bytes does not fit between the kernel's end and the highest allowed address.
        case initrdTooLarge(size: UInt64, lowest: UInt64, highest: UInt64)
    }

    /// The file (or "command line") the check is about.
    public let file: String
    /// What failed.
    public let check: Check

    public init(file: String, _ check: Check) {
        self.file = file
        self.check = check
    }

    public var description: String {
        "\(file): " + message
    }

    private var message: String {
        switch check {
        case .unreadable(let e):
            return "cannot read: \(e)"
        case .unknownFormat:
            return "not an ELF64 vmlinux nor a bzImage (no ELF magic, no 0xAA55 boot flag with \"HdrS\" header); "
                + "pass a Linux kernel image such as /boot/vmlinuz-*"
        case .truncated(let what, let needed, let actual):
            return "truncated: \(what) needs \(needed) bytes, the file has \(actual)"
        case .elfClass(let c):
            return "ELF class \(c), expected 2 (ELFCLASS64); build a 64-bit kernel"
        case .elfByteOrder(let d):
            return "ELF data encoding \(d), expected 1 (little-endian)"
        case .elfMachine(let m):
            return "ELF machine \(m), expected 62 (EM_X86_64)"
        case .elfType(let t):
            return "ELF type \(t), expected 2 (ET_EXEC); pass vmlinux, not a module or shared object"
        case .elfProgramHeaderSize(let s):
            return "ELF program header entry size \(s), expected 56"
        case .noLoadableSegment:
            return "ELF file has no PT_LOAD segment"
        case .userSpaceProgram(let i, let t):
            return "program header \(i) is \(t == 3 ? "PT_INTERP" : "PT_DYNAMIC"): this is a dynamically linked user-space program, not a kernel; pass vmlinux or a bzImage"
        case .segmentFileSizeExceedsMemorySize(let i):
            return "PT_LOAD segment \(i) has p_filesz > p_memsz"
        case .outsideMemory(let what, let address, let size, let memory):
            return "\(what) at [0x\(hex(address)), +0x\(hex(size))) is outside guest RAM (\(memory)); "
                + "give the VM more memory"
        case .belowKernelArea(let what, let address, let minimum):
            return "\(what) at 0x\(hex(address)) is below 0x\(hex(minimum)), where the boot structures live"
        case .entryOutsideSegments(let e):
            return "entry point 0x\(hex(e)) is not inside any PT_LOAD segment"
        case .bootFlag(let f):
            return "setup header: boot_flag 0x\(hex(f)) at 0x1fe, expected 0xaa55"
        case .headerMagic(let h):
            return "setup header: header 0x\(hex(h)) at 0x202, expected 0x53726448 (\"HdrS\")"
        case .protocolVersion(let v):
            return "setup header: boot protocol \(v >> 8).\(v & 0xff) is older than 2.12, which a 64-bit entry "
                + "needs; use a kernel from Linux 3.8 or later"
        case .not64Bit(let x):
            return "setup header: xloadflags 0x\(hex(x)) lacks XLF_KERNEL_64; this kernel has no 64-bit entry"
        case .kernelTooLarge(let needed, let available):
            return "the kernel needs RAM up to 0x\(hex(needed)) (\(mib(needed)) MiB, load address + init_size) "
                + "but RAM below 3 GiB ends at 0x\(hex(available)); give the VM at least \(mib(needed) + 16) MiB"
        case .commandLineTooLong(let length, let limit):
            return "command line of \(length) bytes exceeds the kernel's cmdline_size of \(limit); Linux would "
                + "silently cut it, so shorten it (pass bulk configuration in the initrd)"
        case .commandLineHasNUL:
            return "command line contains a NUL byte"
        case .initrdTooLarge(let size, let lowest, let highest):
            return "initrd of \(size) bytes does not fit between the kernel's end 0x\(hex(lowest)) and "
                + "0x\(hex(highest)) (initrd_addr_max, RAM end, 4 GiB); give the VM more memory or shrink the initrd"
        }
    }

    private func mib(_ bytes: UInt64) -> UInt64 { (bytes + (1 << 20) - 1) >> 20 }
}

/// Little-endian reads from a kernel file's bytes that return nil past the end.
struct LoaderBytes {
    let bytes: [UInt8]

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var count: Int { bytes.count }

    func read<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T? {
        guard offset >= 0, offset <= bytes.count - MemoryLayout<T>.size else { return nil }
        return bytes.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
    }

    func u8(_ offset: Int) -> UInt8 { read(UInt8.self, at: offset) ?? 0 }
    func u16(_ offset: Int) -> UInt16 { read(UInt16.self, at: offset) ?? 0 }
    func u32(_ offset: Int) -> UInt32 { read(UInt32.self, at: offset) ?? 0 }
    func u64(_ offset: Int) -> UInt64 { read(UInt64.self, at: offset) ?? 0 }
}
