import Foundation
import KVM
import Testing

/// Debian's `linux-image-cloud-amd64` kernel, fetched once into a cache outside the repo
/// (`/var/cache/skiff-test-kernel`, or `$SKIFF_TEST_KERNEL_CACHE`): `apt-cache depends` names the
/// versioned package, `apt-get download` fetches it, `dpkg -x` unpacks it and `boot/vmlinuz-*` is
/// kept. Nil, with the reason printed, when any step fails (no apt, no network).
enum DebianKernel {
    static let cache = ProcessInfo.processInfo.environment["SKIFF_TEST_KERNEL_CACHE"] ?? "/var/cache/skiff-test-kernel"

    static let path: String? = {
        do {
            return try fetch()
        } catch {
            print("skipping the Debian kernel tests: \(error)")
            return nil
        }
    }()

    struct FetchError: Error, CustomStringConvertible {
        let description: String
    }

    static func cached() -> String? {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: cache)) ?? []
        return names.filter { $0.hasPrefix("vmlinuz-") }.sorted().last.map { "\(cache)/\($0)" }
    }

    static func run(_ arguments: [String], in directory: String) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = arguments
        p.currentDirectoryURL = URL(fileURLWithPath: directory)
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw FetchError(description: "\(arguments.joined(separator: " ")) exited \(p.terminationStatus): \(text)")
        }
        return text
    }

    static func fetch() throws -> String {
        if let k = cached() { return k }
        let fm = FileManager.default
        try fm.createDirectory(atPath: cache, withIntermediateDirectories: true)
        let depends = try run(["apt-cache", "depends", "linux-image-cloud-amd64"], in: cache)
        guard
            let package = depends.split(separator: "\n").lazy.compactMap({ line -> String? in
                let t = line.trimmingCharacters(in: .whitespaces)
                guard t.hasPrefix("Depends: linux-image-") else { return nil }
                return String(t.dropFirst("Depends: ".count))
            }).first
        else { throw FetchError(description: "apt-cache depends linux-image-cloud-amd64 names no kernel: \(depends)") }
        let work = "\(cache)/download-\(UUID().uuidString)"
        try fm.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? fm.removeItem(atPath: work) }
        _ = try run(["apt-get", "download", package], in: work)
        guard let deb = try fm.contentsOfDirectory(atPath: work).first(where: { $0.hasSuffix(".deb") }) else {
            throw FetchError(description: "apt-get download \(package) left no .deb in \(work)")
        }
        _ = try run(["dpkg", "-x", deb, "root"], in: work)
        guard let v = try fm.contentsOfDirectory(atPath: "\(work)/root/boot").first(where: { $0.hasPrefix("vmlinuz-") })
        else { throw FetchError(description: "\(deb) has no boot/vmlinuz-*") }
        // Copy then rename, so a concurrent or interrupted run never sees half a file.
        try fm.copyItem(atPath: "\(work)/root/boot/\(v)", toPath: "\(work)/\(v)")
        try? fm.removeItem(atPath: "\(cache)/\(v)")
        try fm.moveItem(atPath: "\(work)/\(v)", toPath: "\(cache)/\(v)")
        return "\(cache)/\(v)"
    }
}

/// FNV-1a, 64-bit: a checksum to compare the initrd in guest memory with the file.
func fnv1a(_ bytes: some Sequence<UInt8>) -> UInt64 {
    bytes.reduce(0xcbf2_9ce4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
}

/// The bzImage loader against Debian's stock cloud kernel: header fields, where each piece lands and
/// the zero page Linux would read. No boot: kvm_pvm runs CPL 0 too slowly (DESIGN.md).
@Suite(.enabled(if: DebianKernel.path != nil, "Debian's linux-image-cloud-amd64 could not be fetched (see output)"))
struct LoaderDebianKernelTests {
    let path: String
    let file: [UInt8]

    init() throws {
        path = try #require(DebianKernel.path)
        file = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    @Test func setupHeader() throws {
        let h = try SetupHeader(file: file, path: path)
        print(
            "\(path): protocol \(String(h.version, radix: 16)), setup_sects \(h.setupSects), "
                + "xloadflags 0x\(String(h.xloadflags, radix: 16)), pref_address 0x\(String(h.prefAddress, radix: 16)), "
                + "init_size 0x\(String(h.initSize, radix: 16)), cmdline_size \(h.cmdlineSize)")
        #expect(h.bootFlag == 0xaa55)
        #expect(h.header == 0x5372_6448)  // "HdrS"
        #expect(h.version >= 0x020f)
        #expect(h.xloadflags & BootParams.xlfKernel64 != 0)
        #expect(h.relocatable)
        #expect(h.kernelAlignment.nonzeroBitCount == 1 && h.kernelAlignment >= 0x20_0000)
        #expect(h.prefAddress == 0x100_0000)  // LOAD_PHYSICAL_ADDR, 16 MiB
        #expect(h.initSize > UInt32(file.count - h.kernelOffset))  // decompresses to more than the file
        #expect(h.cmdlineSize >= 2047)
        #expect(h.initrdAddrMax >= 0x37ff_ffff)
    }

    @Test func piecesLandWhereTheZeroPageSays() throws {
        let m = try GuestMemory(size: 256 << 20)
        let initrd = (0..<(3 << 20) + 123).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 13) }
        let commandLine = "console=ttyS0 reboot=k panic=-1 nokaslr i8042.noaux rdinit=/init"
        let boot = try LinuxBoot.load(
            kernel: file, kernelPath: path, initrd: initrd, initrdPath: "test-initrd", commandLine: commandLine,
            into: m)
        let h = try #require(boot.kernel.setupHeader)

        // Kernel: the bytes after the setup sectors, at pref_address; entry at +0x200.
        #expect(boot.kernel.loadAddress == h.prefAddress)
        #expect(boot.kernel.entry == h.prefAddress + 0x200)
        let kernelBytes = file[h.kernelOffset...]
        #expect(try m.read(at: boot.kernel.loadAddress, length: kernelBytes.count) == Array(kernelBytes))
        #expect(boot.kernel.reservedEnd == h.prefAddress + UInt64(h.initSize))

        // Zero page.
        let z = GuestLayout.zeroPageAddress
        #expect(try m.read(UInt16.self, at: z + 0x1fe) == 0xaa55)
        #expect(try m.read(UInt32.self, at: z + 0x202) == 0x5372_6448)
        #expect(try m.read(UInt16.self, at: z + 0x206) == h.version)
        #expect(try m.read(UInt16.self, at: z + 0x236) == h.xloadflags)
        #expect(try m.read(UInt32.self, at: z + 0x260) == h.initSize)
        #expect(try m.read(UInt8.self, at: z + 0x1ef) == 0)  // sentinel
        #expect(try m.read(UInt8.self, at: z + 0x210) == 0xff)  // type_of_loader
        #expect(try m.read(UInt8.self, at: z + 0x211) & BootParams.loadedHigh != 0)
        #expect(try m.read(UInt32.self, at: z + 0x214) == UInt32(boot.kernel.loadAddress))

        // cmd_line_ptr → the NUL-terminated command line.
        let cmdPtr =
            UInt64(try m.read(UInt32.self, at: z + 0x228)) | UInt64(try m.read(UInt32.self, at: z + 0xc8)) << 32
        let line = try m.read(at: cmdPtr, length: Int(h.cmdlineSize) + 1)
        #expect(String(decoding: line.prefix(while: { $0 != 0 }), as: UTF8.self) == commandLine)

        // ramdisk_image/ramdisk_size → the initrd, by checksum; page-aligned, above init_size, below the limits.
        let image = UInt64(try m.read(UInt32.self, at: z + 0x218)) | UInt64(try m.read(UInt32.self, at: z + 0xc0)) << 32
        let size = UInt64(try m.read(UInt32.self, at: z + 0x21c)) | UInt64(try m.read(UInt32.self, at: z + 0xc4)) << 32
        #expect(size == UInt64(initrd.count))
        #expect(fnv1a(try m.read(at: image, length: Int(size))) == fnv1a(initrd))
        #expect(image % 4096 == 0 && image >= boot.kernel.reservedEnd)
        #expect(image + size <= 256 << 20 && image + size - 1 <= UInt64(h.initrdAddrMax))

        // e820: RAM below the EBDA, the legacy hole reserved, RAM from 1 MiB to the end.
        #expect(try m.read(UInt8.self, at: z + 0x1e8) == 3)
        var entries: [E820Entry] = []
        for i in 0..<3 {
            let at = z + 0x2d0 + UInt64(i * 20)
            let kind = try #require(E820Entry.Kind(rawValue: try m.read(UInt32.self, at: at + 16)))
            entries.append(
                E820Entry(
                    address: try m.read(UInt64.self, at: at), size: try m.read(UInt64.self, at: at + 8), kind: kind))
        }
        #expect(
            entries == [
                E820Entry(address: 0, size: 0x9_fc00, kind: .ram),
                E820Entry(address: 0x9_fc00, size: 0x10_0000 - 0x9_fc00, kind: .reserved),
                E820Entry(address: 0x10_0000, size: (256 << 20) - 0x10_0000, kind: .ram),
            ])
    }

    @Test func tooLittleMemoryIsRefusedWithTheSizeNeeded() throws {
        let m = try GuestMemory(size: 48 << 20)
        let e = loaderError { _ = try KernelLoader.load(file, path: path, into: m) }
        guard case .kernelTooLarge(let needed, let available)? = e?.check else {
            Issue.record("expected kernelTooLarge, got \(String(describing: e))")
            return
        }
        #expect(available == 48 << 20 && needed > available)
        print("48 MiB guest: \(e.map { "\($0)" } ?? "")")
    }

    @Test func commandLineLongerThanCmdlineSizeIsRefused() throws {
        let m = try GuestMemory(size: 128 << 20)
        let h = try SetupHeader(file: file, path: path)
        let e = loaderError {
            _ = try LinuxBoot.load(
                kernel: file, kernelPath: path, commandLine: String(repeating: "x", count: Int(h.cmdlineSize) + 1),
                into: m)
        }
        #expect(e?.check == .commandLineTooLong(length: Int(h.cmdlineSize) + 1, limit: h.cmdlineSize))
    }
}
