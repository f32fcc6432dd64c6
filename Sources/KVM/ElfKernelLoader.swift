import LinuxSys

/// Loads an ELF64 x86-64 kernel (`vmlinux`) into guest memory for the 64-bit boot protocol.
///
/// Checks, in order (ELF-64 Object File Format; `include/uapi/linux/elf.h`): the 64-byte header is
/// there, `\x7fELF` magic, ELFCLASS64, ELFDATA2LSB, ET_EXEC, EM_X86_64, `e_phentsize` 56, the
/// program headers inside the file, none of them PT_INTERP or PT_DYNAMIC (a dynamically linked
/// user-space program, such as `skiff` itself). Then each PT_LOAD segment: `p_filesz ≤ p_memsz`, file bytes
/// inside the file, `[p_paddr, p_paddr + p_memsz)` at or above `minimumAddress` and inside guest RAM.
/// The file bytes are copied to `p_paddr` and the rest up to `p_memsz` (`.bss`) is zeroed.
///
/// The entry point: Linux's vmlinux sets `e_entry` to the physical `startup_64`
/// (`arch/x86/kernel/vmlinux.lds.S`: `ENTRY(phys_startup_64)`), which linux-loader and Firecracker
/// use as is. An `e_entry` that is instead a virtual address inside a segment's
/// `[p_vaddr, p_vaddr + p_memsz)` is translated to `p_paddr + (e_entry − p_vaddr)`.
public enum ElfKernelLoader {
    /// `\x7fELF`.
    public static let magic: [UInt8] = [0x7f, 0x45, 0x4c, 0x46]
    static let headerSize = 64
    static let programHeaderSize = 56
    static let ptLoad: UInt32 = 1
    /// PT_DYNAMIC and PT_INTERP: only user-space programs have them.
    static let ptDynamic: UInt32 = 2
    static let ptInterp: UInt32 = 3
    static let ptNote: UInt32 = 4

    /// Skiff's all-vCPU entry note: an ELF note (owner `"Skiff"`, type 1, no descriptor) in a
    /// PT_NOTE segment asks the VMM to start every vCPU at `e_entry` in 64-bit mode (rdi = the
    /// vCPU's index, rsi = the zero page, the same stack), instead of only the boot vCPU with the
    /// others waiting for INIT/SIPI. It is for freestanding SMP guests without a real-mode AP
    /// trampoline (kvm_pvm cannot run real mode), like the test guests; Linux never carries it.
    /// Note layout: ELF-64 Object File Format, "Note Sections" (namesz, descsz, type, name, desc,
    /// each 4-byte aligned).
    public static let allVCPUsNote = (owner: "Skiff", type: UInt32(1))

    /// Whether `bytes` start with the ELF magic.
    public static func isELF(_ bytes: [UInt8]) -> Bool { bytes.count >= 4 && Array(bytes[0..<4]) == magic }

    /// Reads `path` and loads it (see the type's documentation).
    /// - Throws: `LoaderError` naming `path` and the failed check.
    public static func load(path: String, into memory: GuestMemory, minimumAddress: UInt64 = GuestLayout.kernelAddress)
        throws -> LoadedKernel
    {
        let bytes: [UInt8]
        do { bytes = try Files.read(path) } catch { throw LoaderError(file: path, .unreadable("\(error)")) }
        return try load(bytes, path: path, into: memory, minimumAddress: minimumAddress)
    }

    /// Loads the ELF file `bytes` (called `path` in errors) into `memory`.
    /// - Parameter minimumAddress: the lowest guest physical address a segment may use (1 MiB: below it
    ///   are the zero page, GDT, page tables and command line of `GuestLayout`).
    /// - Returns: the kernel with `loadAddress` = lowest `p_paddr`, `end` = highest `p_paddr + p_memsz`.
    /// - Throws: `LoaderError` naming `path` and the failed check.
    public static func load(
        _ bytes: [UInt8], path: String, into memory: GuestMemory, minimumAddress: UInt64 = GuestLayout.kernelAddress
    ) throws -> LoadedKernel {
        func fail(_ c: LoaderError.Check) -> LoaderError { LoaderError(file: path, c) }
        let b = LoaderBytes(bytes)
        let size = UInt64(bytes.count)
        guard bytes.count >= headerSize else {
            throw fail(.truncated(what: "the ELF header", needed: UInt64(headerSize), actual: size))
        }
        guard isELF(bytes) else { throw fail(.unknownFormat) }
        guard b.u8(4) == 2 else { throw fail(.elfClass(b.u8(4))) }
        guard b.u8(5) == 1 else { throw fail(.elfByteOrder(b.u8(5))) }
        guard b.u16(16) == 2 else { throw fail(.elfType(b.u16(16))) }
        guard b.u16(18) == 62 else { throw fail(.elfMachine(b.u16(18))) }
        guard b.u16(54) == programHeaderSize else { throw fail(.elfProgramHeaderSize(b.u16(54))) }
        let entry = b.u64(24)
        let phoff = b.u64(32)
        let phnum = UInt64(b.u16(56))
        let (phEnd, overflow) = phoff.addingReportingOverflow(phnum * UInt64(programHeaderSize))
        guard !overflow, phEnd <= size else {
            throw fail(.truncated(what: "\(phnum) program headers at offset \(phoff)", needed: phEnd, actual: size))
        }

        struct Segment {
            let index: Int, offset: UInt64, vaddr: UInt64, paddr: UInt64, filesz: UInt64, memsz: UInt64
        }
        var segments: [Segment] = []
        for i in 0..<Int(phnum) {
            let p = Int(phoff) + i * programHeaderSize
            let type = b.u32(p)
            if type == ptInterp || type == ptDynamic { throw fail(.userSpaceProgram(index: i, type: type)) }
            guard type == ptLoad else { continue }
            let s = Segment(
                index: i, offset: b.u64(p + 8), vaddr: b.u64(p + 16), paddr: b.u64(p + 24), filesz: b.u64(p + 32),
                memsz: b.u64(p + 40))
            let what = "PT_LOAD segment \(i)"
            guard s.filesz <= s.memsz else { throw fail(.segmentFileSizeExceedsMemorySize(index: i)) }
            let (fileEnd, o1) = s.offset.addingReportingOverflow(s.filesz)
            guard !o1, fileEnd <= size else {
                throw fail(
                    .truncated(what: "\(what) (offset \(s.offset), \(s.filesz) bytes)", needed: fileEnd, actual: size))
            }
            guard s.paddr >= minimumAddress else {
                throw fail(.belowKernelArea(what: what, address: s.paddr, minimum: minimumAddress))
            }
            guard s.memsz <= UInt64(Int.max),
                (try? memory.pointer(at: s.paddr, length: Int(s.memsz))) != nil
            else {
                throw fail(
                    .outsideMemory(what: what, address: s.paddr, size: s.memsz, memory: memory.layoutDescription))
            }
            segments.append(s)
        }
        guard !segments.isEmpty else { throw fail(.noLoadableSegment) }
        let startsAllVCPUs = (0..<Int(phnum)).contains { i in
            let p = Int(phoff) + i * programHeaderSize
            return b.u32(p) == ptNote && Self.hasAllVCPUsNote(bytes, offset: b.u64(p + 8), size: b.u64(p + 32))
        }

        let physicalEntry: UInt64
        if segments.contains(where: { entry >= $0.paddr && entry - $0.paddr < $0.memsz }) {
            physicalEntry = entry
        } else if let s = segments.first(where: { entry >= $0.vaddr && entry - $0.vaddr < $0.memsz }) {
            physicalEntry = s.paddr + (entry - s.vaddr)
        } else {
            throw fail(.entryOutsideSegments(entry))
        }

        for s in segments {
            let p = try memory.pointer(at: s.paddr, length: Int(s.memsz))
            bytes.withUnsafeBytes { src in
                guard let base = src.baseAddress, s.filesz > 0 else { return }
                p.copyMemory(from: base + Int(s.offset), byteCount: Int(s.filesz))
            }
            (p + Int(s.filesz)).initializeMemory(as: UInt8.self, repeating: 0, count: Int(s.memsz - s.filesz))
        }
        let low = segments.reduce(UInt64.max) { min($0, $1.paddr) }
        let high = segments.reduce(0) { max($0, $1.paddr + $1.memsz) }
        return LoadedKernel(
            path: path, format: .elf, loadAddress: low, end: high, entry: physicalEntry, reservedEnd: high,
            setupHeader: nil, startsAllVCPUs: startsAllVCPUs)
    }

    /// Whether the notes in `bytes[offset ..< offset + size]` include `allVCPUsNote`. Malformed
    /// notes end the scan (no note, no error: the note only adds behaviour).
    public static func hasAllVCPUsNote(_ bytes: [UInt8], offset: UInt64, size: UInt64) -> Bool {
        let b = LoaderBytes(bytes)
        let (end, overflow) = offset.addingReportingOverflow(size)
        guard !overflow, end <= UInt64(bytes.count) else { return false }
        var p = offset
        func align4(_ v: UInt64) -> UInt64 { (v + 3) & ~3 }
        while p + 12 <= end {
            let namesz = UInt64(b.u32(Int(p)))
            let descsz = UInt64(b.u32(Int(p + 4)))
            let type = b.u32(Int(p + 8))
            let name = p + 12
            guard namesz < 256, descsz < 1 << 20, name + align4(namesz) + align4(descsz) <= end else { return false }
            let owner = String(decoding: bytes[Int(name)..<Int(name + namesz)].prefix { $0 != 0 }, as: UTF8.self)
            if owner == allVCPUsNote.owner && type == allVCPUsNote.type { return true }
            p = name + align4(namesz) + align4(descsz)
        }
        return false
    }
}
