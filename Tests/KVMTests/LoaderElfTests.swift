import Foundation
import KVM
import Testing

/// A minimal ELF64 file built byte by byte, so each field can be made wrong on purpose.
struct ElfImage {
    struct Segment {
        var type: UInt32 = 1  // PT_LOAD
        var vaddr: UInt64
        var paddr: UInt64
        var bytes: [UInt8]
        var memsz: UInt64
        var offsetOverride: UInt64? = nil
    }
    var elfClass: UInt8 = 2
    var byteOrder: UInt8 = 1
    var type: UInt16 = 2
    var machine: UInt16 = 62
    var phentsize: UInt16 = 56
    var entry: UInt64
    var segments: [Segment]

    var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: 64 + 56 * segments.count)
        func put<T: FixedWidthInteger>(_ v: T, _ at: Int) {
            withUnsafeBytes(of: v.littleEndian) { out.replaceSubrange(at..<at + $0.count, with: $0) }
        }
        out.replaceSubrange(0..<4, with: [0x7f, 0x45, 0x4c, 0x46])
        out[4] = elfClass
        out[5] = byteOrder
        out[6] = 1
        put(type, 16)
        put(machine, 18)
        put(UInt32(1), 20)
        put(entry, 24)
        put(UInt64(64), 32)
        put(UInt16(64), 52)
        put(phentsize, 54)
        put(UInt16(segments.count), 56)
        var data: [UInt8] = []
        for (i, s) in segments.enumerated() {
            let p = 64 + i * 56
            put(s.type, p)
            put(UInt32(7), p + 4)
            put(s.offsetOverride ?? UInt64(out.count + data.count), p + 8)
            put(s.vaddr, p + 16)
            put(s.paddr, p + 24)
            put(UInt64(s.bytes.count), p + 32)
            put(s.memsz, p + 40)
            put(UInt64(0x1000), p + 48)
            data += s.bytes
        }
        return out + data
    }

    /// Text at 1 MiB and data + bss at 2 MiB, physical = virtual.
    static var simple: ElfImage {
        ElfImage(
            entry: 0x10_0000,
            segments: [
                Segment(vaddr: 0x10_0000, paddr: 0x10_0000, bytes: [0xf4, 0xeb, 0xfd], memsz: 3),
                Segment(vaddr: 0x20_0000, paddr: 0x20_0000, bytes: [1, 2, 3, 4, 5, 6, 7, 8], memsz: 0x3000),
            ])
    }
}

func loaderError(_ body: () throws -> Void) -> LoaderError? {
    do {
        try body()
        return nil
    } catch let e as LoaderError {
        return e
    } catch {
        return nil
    }
}

@Suite struct LoaderElfTests {
    @Test func segmentsLandAtPhysicalAddressesWithBssZeroed() throws {
        let m = try GuestMemory(size: 8 << 20)
        try m.write([UInt8](repeating: 0xaa, count: 0x4000), at: 0x20_0000)
        let k = try ElfKernelLoader.load(ElfImage.simple.bytes, path: "vmlinux", into: m)
        #expect(k.format == .elf && k.entry == 0x10_0000 && k.loadAddress == 0x10_0000 && k.end == 0x20_3000)
        #expect(try m.read(at: 0x10_0000, length: 3) == [0xf4, 0xeb, 0xfd])
        #expect(try m.read(at: 0x20_0000, length: 8) == [1, 2, 3, 4, 5, 6, 7, 8])
        #expect(try m.read(at: 0x20_0008, length: 0x3000 - 8).allSatisfy { $0 == 0 })
        #expect(try m.read(UInt8.self, at: 0x20_3000) == 0xaa)  // nothing past p_memsz
    }

    @Test func virtualEntryIsTranslatedToPhysical() throws {
        let m = try GuestMemory(size: 32 << 20)
        let e = ElfImage(
            entry: 0xffff_ffff_8100_0010,
            segments: [.init(vaddr: 0xffff_ffff_8100_0000, paddr: 0x100_0000, bytes: [0x90, 0xf4], memsz: 0x100)])
        let k = try ElfKernelLoader.load(e.bytes, path: "vmlinux", into: m)
        #expect(k.entry == 0x100_0010)
        #expect(try m.read(at: 0x100_0000, length: 2) == [0x90, 0xf4])
    }

    @Test func badFilesNameTheFailingCheck() throws {
        let m = try GuestMemory(size: 8 << 20)
        func check(_ e: ElfImage) -> LoaderError.Check? {
            loaderError { _ = try ElfKernelLoader.load(e.bytes, path: "bad.elf", into: m) }?.check
        }
        var e = ElfImage.simple
        e.elfClass = 1
        #expect(check(e) == .elfClass(1))
        e = .simple
        e.machine = 3
        #expect(check(e) == .elfMachine(3))
        e = .simple
        e.type = 3
        #expect(check(e) == .elfType(3))
        e = .simple
        e.byteOrder = 2
        #expect(check(e) == .elfByteOrder(2))
        e = .simple
        e.segments[1].paddr = 64 << 20
        #expect(
            check(e)
                == .outsideMemory(what: "PT_LOAD segment 1", address: 64 << 20, size: 0x3000, memory: "0x0-0x800000"))
        e = .simple
        e.segments[1].paddr = 0x7f_f000  // starts inside RAM, ends past it
        #expect(check(e).map { if case .outsideMemory = $0 { true } else { false } } == true)
        e = .simple
        e.segments[0].paddr = 0x7000  // over the zero page
        #expect(check(e) == .belowKernelArea(what: "PT_LOAD segment 0", address: 0x7000, minimum: 0x10_0000))
        e = .simple
        e.segments[1].memsz = 4
        #expect(check(e) == .segmentFileSizeExceedsMemorySize(index: 1))
        e = .simple
        e.entry = 0x30_0000
        #expect(check(e) == .entryOutsideSegments(0x30_0000))
        e = .simple
        e.segments[0].type = 4  // PT_NOTE only
        e.segments[1].type = 4
        #expect(check(e) == .noLoadableSegment)
        e = .simple
        e.segments.insert(ElfImage.Segment(type: 3, vaddr: 0, paddr: 0, bytes: Array("/lib64/ld-linux-x86-64.so.2\0".utf8), memsz: 28), at: 0)
        #expect(check(e) == .userSpaceProgram(index: 0, type: 3))
        e = .simple
        e.segments.append(ElfImage.Segment(type: 2, vaddr: 0x20_0000, paddr: 0x20_0000, bytes: [], memsz: 0))
        #expect(check(e) == .userSpaceProgram(index: 2, type: 2))
        e = .simple
        e.segments[1].offsetOverride = 0x10000
        #expect(check(e).map { if case .truncated = $0 { true } else { false } } == true)

        let whole = ElfImage.simple.bytes
        let short = loaderError { _ = try ElfKernelLoader.load(Array(whole[0..<40]), path: "bad.elf", into: m) }
        #expect(short?.check == .truncated(what: "the ELF header", needed: 64, actual: 40))
        let noHeaders = loaderError { _ = try ElfKernelLoader.load(Array(whole[0..<100]), path: "bad.elf", into: m) }
        #expect(noHeaders?.check == .truncated(what: "2 program headers at offset 64", needed: 176, actual: 100))
        #expect(noHeaders?.description.hasPrefix("bad.elf: truncated") == true)
    }

    @Test func unreadableFileIsNamed() throws {
        let m = try GuestMemory(size: 4 << 20)
        let e = loaderError { _ = try KernelLoader.load(path: "/nonexistent/vmlinux", into: m) }
        #expect(e?.file == "/nonexistent/vmlinux")
        #expect(e?.description.contains("No such file") == true)
        let junk = loaderError { _ = try KernelLoader.load([UInt8](repeating: 7, count: 4096), path: "junk", into: m) }
        #expect(junk?.check == .unknownFormat)
    }

    /// An ELF linked by the machine's gcc/ld, with the kernel's split of virtual and physical
    /// addresses (`AT()`), `.data` and a `.bss` that the loader must zero.
    @Test(.enabled(if: TestGuest.toolchainAvailable, "needs gcc and ld"))
    func gccLinkedElf() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("skiff-elf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = """
            .globl _start
            .text
            _start: hlt
                jmp _start
            .data
            marker: .quad 0x1122334455667788
            .bss
            buffer: .skip 8192
            """
        let script = """
            ENTRY(_start)
            SECTIONS {
              . = 0xffffffff81000000;
              .text : AT(0x1000000) { *(.text) }
              . = 0xffffffff81200000;
              .data : AT(0x1200000) { *(.data) }
              .bss : AT(0x1200008) { *(.bss) }
              /DISCARD/ : { *(.note*) *(.comment) }
            }
            """
        try source.write(to: dir.appendingPathComponent("k.S"), atomically: true, encoding: .utf8)
        try script.write(to: dir.appendingPathComponent("k.ld"), atomically: true, encoding: .utf8)
        let elf = dir.appendingPathComponent("k.elf").path
        try TestGuest.runTool([
            "gcc", "-nostdlib", "-static", "-Wl,--build-id=none", "-Wl,-T,\(dir.path)/k.ld", "\(dir.path)/k.S", "-o",
            elf,
        ])
        let m = try GuestMemory(size: 32 << 20)
        try m.write([UInt8](repeating: 0xaa, count: 0x4000), at: 0x120_0000)
        let k = try KernelLoader.load(path: elf, into: m)
        #expect(k.format == .elf)
        #expect(k.entry == 0x100_0000)
        #expect(try m.read(at: 0x100_0000, length: 3) == [0xf4, 0xeb, 0xfd])
        #expect(try m.read(UInt64.self, at: 0x120_0000) == 0x1122_3344_5566_7788)
        #expect(try m.read(at: 0x120_0008, length: 8192).allSatisfy { $0 == 0 })
        #expect(k.end == 0x120_0008 + 8192)
    }
}
