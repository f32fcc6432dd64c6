import LinuxSys

/// A Linux guest ready to start: kernel, initrd, command line and zero page in guest memory.
///
/// `load` does, in order: the kernel (`KernelLoader`: ELF or bzImage), the command line at
/// `GuestLayout.cmdlineAddress` (NUL-terminated, at most `cmdline_size` bytes), the initrd
/// (`InitrdLoader`), the e820 map (`E820`) and the zero page at `GuestLayout.zeroPageAddress`
/// (`ZeroPage`; with `acpiRSDP`, the address of tables `ACPITables.write` put in memory). `setUpBootCPU` then puts the boot vCPU in 64-bit mode at the kernel's entry.
public struct LinuxBoot: Sendable {
    /// Where the kernel went.
    public let kernel: LoadedKernel
    /// Where the initrd went, if there is one.
    public let initrd: LoadedInitrd?
    /// The command line (without the NUL).
    public let commandLine: String
    /// The e820 map in the zero page.
    public let e820: [E820Entry]

    /// Loads the files at `kernel` and `initrd` (see the type's documentation).
    /// - Throws: `LoaderError` naming the file and the check that failed; `KVMError` from guest memory.
    public static func load(
        kernel: String, initrd: String? = nil, commandLine: String, acpiRSDP: UInt64? = nil, into memory: GuestMemory
    ) throws -> LinuxBoot {
        let k = try KernelLoader.load(path: kernel, into: memory)
        let i: [UInt8]?
        if let initrd {
            do { i = try Files.read(initrd) } catch { throw LoaderError(file: initrd, .unreadable("\(error)")) }
        } else {
            i = nil
        }
        return try finish(
            kernel: k, initrd: i, initrdPath: initrd ?? "", commandLine: commandLine, acpiRSDP: acpiRSDP,
            memory: memory)
    }

    /// The same from bytes (tests, or files already read); `kernelPath`/`initrdPath` name them in errors.
    public static func load(
        kernel: [UInt8], kernelPath: String, initrd: [UInt8]? = nil, initrdPath: String = "initrd",
        commandLine: String, acpiRSDP: UInt64? = nil, into memory: GuestMemory
    ) throws -> LinuxBoot {
        let k = try KernelLoader.load(kernel, path: kernelPath, into: memory)
        return try finish(
            kernel: k, initrd: initrd, initrdPath: initrdPath, commandLine: commandLine, acpiRSDP: acpiRSDP,
            memory: memory)
    }

    static func finish(
        kernel: LoadedKernel, initrd: [UInt8]?, initrdPath: String, commandLine: String, acpiRSDP: UInt64?,
        memory: GuestMemory
    ) throws -> LinuxBoot {
        let line = try ZeroPage.commandLineBytes(commandLine, kernel: kernel)
        let placed = try initrd.map { try InitrdLoader.load($0, path: initrdPath, kernel: kernel, into: memory) }
        let e820 = try E820.map(for: memory)
        try memory.write(line, at: GuestLayout.cmdlineAddress)
        let page = try ZeroPage.build(kernel: kernel, initrd: placed, e820: e820, acpiRSDP: acpiRSDP)
        try memory.write(page, at: GuestLayout.zeroPageAddress)
        return LinuxBoot(kernel: kernel, initrd: placed, commandLine: commandLine, e820: e820)
    }

    /// GiB the boot identity map covers: everything up to the kernel's `reservedEnd` (boot.rst: the
    /// kernel's range, the zero page and the command line must be identity-mapped), at least 1.
    public var identityMapGigabytes: Int {
        let gib: UInt64 = 1 << 30
        return Int(min(max((kernel.reservedEnd + gib - 1) / gib, 1), UInt64(IdentityMap.maxGigabytes)))
    }

    /// Sets the boot vCPU's state for the 64-bit boot protocol (boot.rst "64-bit Boot Protocol";
    /// microvm.md §3.3) through `LongMode.setUp`: GDT with `__BOOT_CS` 0x10 / `__BOOT_DS` 0x18, CS = 0x10,
    /// DS/ES/FS/GS/SS = 0x18, paging on with an identity map of `identityMapGigabytes`, RIP = the
    /// kernel's entry, RSI = the zero page, RSP = `GuestLayout.bootStackPointer`, RFLAGS = 0x2
    /// (interrupts off).
    /// - Throws: `KVMError` from guest memory or the register ioctls.
    public func setUpBootCPU(_ vcpu: VCPU) throws {
        try LongMode.setUp(vcpu, entry: kernel.entry, gigabytes: identityMapGigabytes)
    }
}
