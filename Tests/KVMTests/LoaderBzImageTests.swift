import KVM
import Testing

/// A synthetic bzImage: setup sectors with a 2.15 setup header (Debian's values unless changed), then
/// a protected-mode part of recognisable bytes.
struct BzImage {
    var setupSects: UInt8 = 3
    var bootFlag: UInt16 = 0xaa55
    var header: UInt32 = 0x5372_6448
    var version: UInt16 = 0x020f
    var loadflags: UInt8 = 0x01
    var xloadflags: UInt16 = 0x7f
    var relocatable = true
    var kernelAlignment: UInt32 = 0x20_0000
    var prefAddress: UInt64 = 0x100_0000
    var initSize: UInt32 = 0x80_0000
    var cmdlineSize: UInt32 = 255
    var initrdAddrMax: UInt32 = 0x7fff_ffff
    var kernelSize = 0x3000

    var setupBytes: Int { (Int(setupSects == 0 ? 4 : setupSects) + 1) * 512 }
    var kernel: [UInt8] { (0..<kernelSize).map { UInt8(truncatingIfNeeded: $0 * 7 + 3) } }

    var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: setupBytes)
        func put<T: FixedWidthInteger>(_ v: T, _ at: Int) {
            withUnsafeBytes(of: v.littleEndian) { out.replaceSubrange(at..<at + $0.count, with: $0) }
        }
        out[0x1ef] = 0xff  // header.S sets the sentinel in the file; a loader must not copy it
        for i in 0x26c..<0x290 { out[i] = 0xee }  // past the header's end: must not be copied either
        put(setupSects, 0x1f1)
        put(UInt16(0xffff), 0x1fa)
        put(bootFlag, 0x1fe)
        put(UInt8(0xeb), 0x200)
        put(UInt8(0x6a), 0x201)  // header ends at 0x202 + 0x6a = 0x26c
        put(header, 0x202)
        put(version, 0x206)
        put(loadflags, 0x211)
        put(UInt32(0x10_0000), 0x214)
        put(initrdAddrMax, 0x22c)
        put(kernelAlignment, 0x230)
        put(UInt8(relocatable ? 1 : 0), 0x234)
        put(UInt8(21), 0x235)
        put(xloadflags, 0x236)
        put(cmdlineSize, 0x238)
        put(prefAddress, 0x258)
        put(initSize, 0x260)
        return out + kernel
    }
}

@Suite struct LoaderBzImageTests {
    @Test func setupHeaderFields() throws {
        let h = try SetupHeader(file: BzImage().bytes, path: "bz")
        #expect(h.setupSectors == 3 && h.kernelOffset == 0x800)
        #expect(h.version == 0x020f && h.xloadflags == 0x7f && h.relocatable && h.minAlignment == 21)
        #expect(h.prefAddress == 0x100_0000 && h.initSize == 0x80_0000 && h.cmdlineSize == 255)
        #expect(h.bytes.count == 0x26c - 0x1f1)
        var zero = BzImage()
        zero.setupSects = 0
        #expect(try SetupHeader(file: zero.bytes, path: "bz").kernelOffset == 5 * 512)  // 0 means 4
    }

    @Test func badHeadersNameTheFailingCheck() throws {
        let m = try GuestMemory(size: 64 << 20)
        func check(_ b: BzImage) -> LoaderError.Check? {
            loaderError { _ = try BzImageLoader.load(b.bytes, path: "vmlinuz", into: m) }?.check
        }
        var b = BzImage()
        b.bootFlag = 0x1234
        #expect(check(b) == .bootFlag(0x1234))
        b = BzImage()
        b.header = 0
        #expect(check(b) == .headerMagic(0))
        b = BzImage()
        b.version = 0x020b
        #expect(check(b) == .protocolVersion(0x020b))
        b = BzImage()
        b.xloadflags = 0x2
        #expect(check(b) == .not64Bit(xloadflags: 2))
        b = BzImage()
        b.kernelSize = 0x100  // ends before startup_64
        #expect(check(b).map { if case .truncated = $0 { true } else { false } } == true)
        let short = loaderError { _ = try BzImageLoader.load(Array(BzImage().bytes[0..<0x240]), path: "v", into: m) }
        #expect(short?.check == .truncated(what: "the setup header", needed: 0x264, actual: 0x240))
        let e = loaderError {
            var v = BzImage()
            v.version = 0x020a
            _ = try KernelLoader.load(v.bytes, path: "old-vmlinuz", into: m)
        }
        #expect(e?.description.hasPrefix("old-vmlinuz: setup header: boot protocol 2.10 is older than 2.12") == true)
    }

    @Test func kernelGoesToPrefAddressWhenRelocatable() throws {
        let m = try GuestMemory(size: 64 << 20)
        let b = BzImage()
        let k = try BzImageLoader.load(b.bytes, path: "vmlinuz", into: m)
        #expect(k.format == .bzImage && k.loadAddress == 0x100_0000 && k.entry == 0x100_0200)
        #expect(k.end == 0x100_0000 + 0x3000 && k.reservedEnd == 0x100_0000 + 0x80_0000)
        #expect(try m.read(at: 0x100_0000, length: b.kernelSize) == b.kernel)
    }

    @Test func fixedKernelGoesTo1MiBAndReservesItsDecompressionArea() throws {
        let m = try GuestMemory(size: 64 << 20)
        var b = BzImage()
        b.relocatable = false
        let k = try BzImageLoader.load(b.bytes, path: "vmlinuz", into: m)
        #expect(k.loadAddress == 0x10_0000 && k.entry == 0x10_0200)
        #expect(k.reservedEnd == 0x100_0000 + 0x80_0000)
        #expect(try m.read(at: 0x10_0000, length: b.kernelSize) == b.kernel)
    }

    @Test func kernelThatDoesNotFitIsRefused() throws {
        let m = try GuestMemory(size: 16 << 20)
        let e = loaderError { _ = try BzImageLoader.load(BzImage().bytes, path: "vmlinuz", into: m) }
        #expect(e?.check == .kernelTooLarge(needed: 0x180_0000, available: 0x100_0000))
        #expect(e?.description.contains("give the VM at least 40 MiB") == true)
    }

    @Test func e820For128MiB512MiBAnd5GiB() throws {
        let low: [E820Entry] = [
            .init(address: 0, size: 0x9_fc00, kind: .ram), .init(address: 0x9_fc00, size: 0x6_0400, kind: .reserved),
        ]
        #expect(
            try E820.map(for: GuestMemory(size: 128 << 20)) == low + [
                .init(address: 1 << 20, size: 127 << 20, kind: .ram)
            ])
        #expect(
            try E820.map(for: GuestMemory(size: 512 << 20)) == low + [
                .init(address: 1 << 20, size: 511 << 20, kind: .ram)
            ])
        let big = try E820.map(for: GuestMemory(size: 5 << 30))
        #expect(
            big == low + [
                .init(address: 1 << 20, size: (3 << 30) - (1 << 20), kind: .ram),
                .init(address: 4 << 30, size: 2 << 30, kind: .ram),
            ])
        #expect(big.reduce(0) { $0 + ($1.kind == .ram ? $1.size : 0) } == (5 << 30) - 0x6_0400)
        #expect(throws: KVMError.self) { try E820.map(for: GuestMemory(size: 1 << 20)) }
        #expect(
            E820Entry(address: 0x1_0000_0000, size: 0x10, kind: .reserved).encoded
                == [0, 0, 0, 0, 1, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0])
    }

    @Test func zeroPageFields() throws {
        let m = try GuestMemory(size: 128 << 20)
        let b = BzImage()
        let initrd = (0..<10000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let boot = try LinuxBoot.load(
            kernel: b.bytes, kernelPath: "vmlinuz", initrd: initrd, commandLine: "console=ttyS0 panic=-1", into: m)
        let z = GuestLayout.zeroPageAddress
        let file = b.bytes
        #expect(try m.read(UInt8.self, at: z + 0x1ef) == 0)  // sentinel not copied
        #expect(try m.read(at: z + 0x1f1, length: 0x10) == Array(file[0x1f1..<0x201]))  // header copied
        #expect(try m.read(UInt16.self, at: z + 0x206) == 0x020f)
        #expect(try m.read(UInt32.self, at: z + 0x260) == 0x80_0000)
        #expect(try m.read(at: z + 0x26c, length: 0x24).allSatisfy { $0 == 0 })  // nothing past the header
        #expect(try m.read(UInt8.self, at: z + 0x210) == 0xff)  // type_of_loader
        #expect(try m.read(UInt8.self, at: z + 0x211) == 0x81)  // LOADED_HIGH | CAN_USE_HEAP
        #expect(try m.read(UInt16.self, at: z + 0x224) == 0xfe00)  // heap_end_ptr
        #expect(try m.read(UInt32.self, at: z + 0x214) == 0x100_0000)  // code32_start = load address
        #expect(try m.read(UInt32.self, at: z + 0x228) == 0x2_0000)  // cmd_line_ptr
        #expect(try m.read(UInt32.self, at: z + 0x0c8) == 0)  // ext_cmd_line_ptr
        #expect(try m.read(at: 0x2_0000, length: 23) == Array("console=ttyS0 panic=-1".utf8) + [0])
        let image = try m.read(UInt32.self, at: z + 0x218)
        #expect(UInt64(image) == boot.initrd?.address)
        #expect(try m.read(UInt32.self, at: z + 0x21c) == 10000)
        #expect(try m.read(UInt32.self, at: z + 0x0c0) == 0 && m.read(UInt32.self, at: z + 0x0c4) == 0)
        #expect(try m.read(at: UInt64(image), length: 10000) == initrd)
        #expect(try m.read(UInt8.self, at: z + 0x1e8) == 3)
        #expect(try m.read(at: z + 0x2d0, length: 60) == boot.e820.flatMap(\.encoded))
        #expect(try m.read(at: z + 0x2d0 + 60, length: 20).allSatisfy { $0 == 0 })
    }

    @Test func elfKernelGetsAMadeUpHeader() throws {
        let m = try GuestMemory(size: 32 << 20)
        _ = try LinuxBoot.load(kernel: ElfImage.simple.bytes, kernelPath: "vmlinux", commandLine: "quiet", into: m)
        let z = GuestLayout.zeroPageAddress
        #expect(try m.read(UInt16.self, at: z + 0x1fe) == 0xaa55)
        #expect(try m.read(UInt32.self, at: z + 0x202) == 0x5372_6448)
        #expect(try m.read(UInt8.self, at: z + 0x210) == 0xff)
        #expect(try m.read(UInt32.self, at: z + 0x228) == 0x2_0000)
        #expect(try m.read(UInt32.self, at: z + 0x238) == 2047)
        #expect(try m.read(UInt32.self, at: z + 0x218) == 0)  // no initrd
        #expect(try m.read(UInt8.self, at: z + 0x1e8) == 3)
    }

    @Test func commandLineLimits() throws {
        let m = try GuestMemory(size: 64 << 20)
        let kernel = BzImage().bytes  // cmdline_size 255
        let ok = String(repeating: "a", count: 255)
        _ = try LinuxBoot.load(kernel: kernel, kernelPath: "vmlinuz", commandLine: ok, into: m)
        #expect(try m.read(UInt8.self, at: GuestLayout.cmdlineAddress + 255) == 0)
        let long = loaderError {
            _ = try LinuxBoot.load(kernel: kernel, kernelPath: "vmlinuz", commandLine: ok + "b", into: m)
        }
        #expect(long?.check == .commandLineTooLong(length: 256, limit: 255))
        #expect(long?.description.hasPrefix("command line: command line of 256 bytes exceeds") == true)
        let nul = loaderError {
            _ = try LinuxBoot.load(kernel: kernel, kernelPath: "vmlinuz", commandLine: "a\0b", into: m)
        }
        #expect(nul?.check == .commandLineHasNUL)
        let elfLong = loaderError {
            _ = try LinuxBoot.load(
                kernel: ElfImage.simple.bytes, kernelPath: "vmlinux", commandLine: String(repeating: "x", count: 2048),
                into: m)
        }
        #expect(elfLong?.check == .commandLineTooLong(length: 2048, limit: 2047))
    }

    @Test func initrdPlacement() throws {
        let m = try GuestMemory(size: 128 << 20)
        let k = try BzImageLoader.load(BzImage().bytes, path: "vmlinuz", into: m)
        // As high as possible, page-aligned, below RAM end, above the kernel's init_size range.
        let a = try InitrdLoader.placement(size: 10000, kernel: k, memory: m, path: "initrd")
        #expect(a == (128 << 20) - 12288)
        #expect(a % 4096 == 0 && a + 10000 <= 128 << 20 && a >= k.reservedEnd)
        // initrd_addr_max below RAM end: the last byte may be at initrd_addr_max, no further.
        var low = BzImage()
        low.initrdAddrMax = 0x37f_ffff
        let kl = try BzImageLoader.load(low.bytes, path: "vmlinuz", into: m)
        let b = try InitrdLoader.placement(size: 0x1000, kernel: kl, memory: m, path: "initrd")
        #expect(b == 0x37f_f000)
        // Just fits between the kernel and RAM end; one byte more does not.
        let room = (128 << 20) - k.reservedEnd
        #expect(try InitrdLoader.placement(size: room, kernel: k, memory: m, path: "initrd") == k.reservedEnd)
        let e = loaderError { _ = try InitrdLoader.placement(size: room + 1, kernel: k, memory: m, path: "initrd.img") }
        #expect(e?.check == .initrdTooLarge(size: room + 1, lowest: k.reservedEnd, highest: 128 << 20))
        #expect(e?.file == "initrd.img")
    }

    @Test func initrdStaysBelow4GiBAndInitrdAddrMaxWithBigMemory() throws {
        let m = try GuestMemory(size: 5 << 30)
        var b = BzImage()
        b.initrdAddrMax = 0xffff_ffff
        let k = try BzImageLoader.load(b.bytes, path: "vmlinuz", into: m)
        #expect(try InitrdLoader.placement(size: 1 << 20, kernel: k, memory: m, path: "i") == (3 << 30) - (1 << 20))
        let k2 = try BzImageLoader.load(BzImage().bytes, path: "vmlinuz", into: m)
        #expect(try InitrdLoader.placement(size: 1 << 20, kernel: k2, memory: m, path: "i") == (2 << 30) - (1 << 20))
    }

    @Test(.enabled(if: KVMSystem.isAvailable, "needs read-write /dev/kvm (root)"))
    func bootCPUState() throws {
        let vm = try VirtualMachine(system: try KVMSystem(), memorySize: 64 << 20)
        let boot = try LinuxBoot.load(kernel: BzImage().bytes, kernelPath: "vmlinuz", commandLine: "", into: vm.memory)
        let vcpu = try vm.createVCPU(id: 0)
        try boot.setUpBootCPU(vcpu)
        let r = try vcpu.registers()
        #expect(r.rip == 0x100_0200 && r.rsi == GuestLayout.zeroPageAddress && r.rflags == 0x2)
        #expect(r.rflags & (1 << 9) == 0)  // IF clear
        let s = try vcpu.specialRegisters()
        #expect(s.cs.selector == 0x10 && s.cs.l == 1 && s.cs.dpl == 0)
        #expect(s.ds.selector == 0x18 && s.es.selector == 0x18 && s.ss.selector == 0x18)
        #expect(s.cr0 & LongMode.cr0PG != 0 && s.cr0 & LongMode.cr0PE != 0 && s.cr4 & LongMode.cr4PAE != 0)
        #expect(s.efer & LongMode.eferLMA != 0 && s.cr3 == GuestLayout.pml4Address)
        #expect(
            try vm.memory.read(UInt64.self, at: GuestLayout.gdtAddress + 0x10) == SegmentDescriptor.kernelCode64.encoded
        )
        #expect(try vm.memory.read(UInt64.self, at: GuestLayout.pdAddress + 8) == 0x20_0083)  // identity map
        #expect(boot.identityMapGigabytes == 1)
    }
}
