/// Builds the zero page (`struct boot_params`, 4 KiB) for the 64-bit boot protocol. Offsets:
/// `BootParams`; what goes where: boot.rst "Details of Header Fields" and microvm.md §3.4.
///
/// - bzImage: the setup header is copied from the file (only `[0x1f1, 0x202 + byte[0x201])`, so
///   `sentinel` stays 0); ELF: a header is made up with `boot_flag`, "HdrS", `kernel_alignment` and
///   `cmdline_size`, as Firecracker does for vmlinux.
/// - `type_of_loader` = 0xff; `loadflags` |= LOADED_HIGH | CAN_USE_HEAP with `heap_end_ptr` = 0xfe00;
///   `code32_start` = the load address.
/// - `cmd_line_ptr`/`ext_cmd_line_ptr` = `commandLineAddress` split in 32-bit halves.
/// - `ramdisk_image`/`ramdisk_size` and their `ext_` halves for the initrd (0 without one).
/// - `e820_entries` at 0x1e8 and the table at 0x2d0.
/// - `acpi_rsdp_addr` at 0x070 when `acpiRSDP` is given (`ACPITables.rsdpAddress`); 0 lets Linux scan.
public enum ZeroPage {
    /// The 4096 bytes for `kernel`.
    /// - Throws: `KVMError.layout` when `e820` has more than 128 entries.
    public static func build(
        kernel: LoadedKernel, commandLineAddress: UInt64 = GuestLayout.cmdlineAddress, initrd: LoadedInitrd?,
        e820: [E820Entry], acpiRSDP: UInt64? = nil
    ) throws -> [UInt8] {
        var page = [UInt8](repeating: 0, count: BootParams.size)
        func put<T: FixedWidthInteger>(_ value: T, _ offset: Int) {
            withUnsafeBytes(of: value.littleEndian) { page.replaceSubrange(offset..<offset + $0.count, with: $0) }
        }
        if let h = kernel.setupHeader {
            page.replaceSubrange(BootParams.setupHeader..<BootParams.setupHeader + h.bytes.count, with: h.bytes)
        } else {
            put(BootParams.bootFlagMagic, BootParams.bootFlag)
            put(BootParams.headerMagic, BootParams.header)
            put(BootParams.elfKernelAlignment, BootParams.kernelAlignment)
            put(BootParams.defaultCmdlineSize, BootParams.cmdlineSize)
            put(BootParams.defaultInitrdAddrMax64, BootParams.initrdAddrMax)
        }
        put(BootParams.loaderUndefined, BootParams.typeOfLoader)
        put(page[BootParams.loadflags] | BootParams.loadedHigh | BootParams.canUseHeap, BootParams.loadflags)
        put(BootParams.heapEnd, BootParams.heapEndPtr)
        put(UInt32(truncatingIfNeeded: kernel.loadAddress), BootParams.code32Start)
        put(UInt32(truncatingIfNeeded: commandLineAddress), BootParams.cmdLinePtr)
        put(UInt32(truncatingIfNeeded: commandLineAddress >> 32), BootParams.extCmdLinePtr)
        if let initrd {
            put(UInt32(truncatingIfNeeded: initrd.address), BootParams.ramdiskImage)
            put(UInt32(truncatingIfNeeded: initrd.address >> 32), BootParams.extRamdiskImage)
            put(UInt32(truncatingIfNeeded: initrd.size), BootParams.ramdiskSize)
            put(UInt32(truncatingIfNeeded: initrd.size >> 32), BootParams.extRamdiskSize)
        }
        guard e820.count <= BootParams.e820MaxEntries else {
            throw KVMError.layout(
                "e820 map of \(e820.count) entries; the zero page holds \(BootParams.e820MaxEntries)")
        }
        if let acpiRSDP { put(acpiRSDP, BootParams.acpiRSDPAddr) }
        put(UInt8(e820.count), BootParams.e820Entries)
        for (i, e) in e820.enumerated() {
            let at = BootParams.e820Table + i * BootParams.e820EntrySize
            page.replaceSubrange(at..<at + BootParams.e820EntrySize, with: e.encoded)
        }
        return page
    }

    /// The command line as written to guest memory: its UTF-8 bytes and a NUL.
    /// - Throws: `LoaderError` naming "command line": `.commandLineHasNUL`, or `.commandLineTooLong`
    ///   when it is longer than `kernel.commandLineLimit` (`cmdline_size`; Linux would cut it silently,
    ///   microvm.md §5 bug 10).
    public static func commandLineBytes(_ commandLine: String, kernel: LoadedKernel) throws -> [UInt8] {
        let bytes = Array(commandLine.utf8)
        guard !bytes.contains(0) else { throw LoaderError(file: "command line", .commandLineHasNUL) }
        guard bytes.count <= Int(kernel.commandLineLimit) else {
            throw LoaderError(
                file: "command line", .commandLineTooLong(length: bytes.count, limit: kernel.commandLineLimit))
        }
        return bytes + [0]
    }
}
