import Foundation
import KVM
import Synchronization
import Testing

/// A newc ("070701") cpio archive, the initramfs format (Documentation/driver-api/early-userspace/
/// buffer-format.rst): per entry a 110-byte ASCII header of 13 eight-digit hex fields, the name
/// with its NUL padded to 4 bytes, the data padded to 4 bytes; "TRAILER!!!" last.
enum Initramfs {
    struct Entry {
        var name: String
        var mode: UInt32
        var data: [UInt8] = []
        var rdevMajor: UInt32 = 0
        var rdevMinor: UInt32 = 0

        static func directory(_ name: String) -> Entry { Entry(name: name, mode: 0o040755) }
        static func file(_ name: String, _ data: [UInt8], mode: UInt32 = 0o100755) -> Entry {
            Entry(name: name, mode: mode, data: data)
        }
        static func symlink(_ name: String, to target: String) -> Entry {
            Entry(name: name, mode: 0o120777, data: Array(target.utf8))
        }
        static func characterDevice(_ name: String, major: UInt32, minor: UInt32) -> Entry {
            Entry(name: name, mode: 0o020600, rdevMajor: major, rdevMinor: minor)
        }
    }

    static func newc(_ entries: [Entry]) -> [UInt8] {
        var out: [UInt8] = []
        func pad() { while out.count % 4 != 0 { out.append(0) } }
        let all = entries + [Entry(name: "TRAILER!!!", mode: 0)]
        for (i, e) in all.enumerated() {
            let fields: [UInt32] = [
                UInt32(i + 1), e.mode, 0, 0, e.mode & 0o040000 != 0 ? 2 : 1, 0, UInt32(e.data.count), 0, 0,
                e.rdevMajor, e.rdevMinor, UInt32(e.name.utf8.count + 1), 0,
            ]
            out += Array("070701".utf8)
            for f in fields {
                let h = String(f, radix: 16, uppercase: true)
                out += Array((String(repeating: "0", count: 8 - h.count) + h).utf8)
            }
            out += Array(e.name.utf8) + [0]
            pad()
            out += e.data
            pad()
        }
        return out
    }
}

/// Boots Debian's `linux-image-cloud-amd64` (no `CONFIG_X86_MPPARSE`: it finds the vCPUs through the
/// ACPI MADT only) with a busybox initramfs whose `/init` prints a marker with the CPU count Linux
/// brought up and reboots (`reboot=k` → i8042 reset), on 2 vCPUs, with the same set-up as
/// `skiff run --vm` (`LinuxPlatform`). Needs hardware virtualization: under kvm_pvm guest CPL 0 is
/// emulated and a stock kernel does not boot in useful time (DESIGN.md), so it is skipped there.
@Suite(
    .enabled(if: KVMSystem.isAvailable, "needs read-write /dev/kvm (root)"),
    .enabled(
        if: !KVMSystem.isPVM,
        "skipped: this host's /dev/kvm is kvm_pvm (guest CPL 0 is emulated), where a stock Linux kernel does not boot in useful time; runs on KVM with VMX/SVM"
    ))
struct LinuxBootTests {
    static let marker = "SKIFF-LINUX-BOOT-OK"
    static let busybox = "/bin/busybox"  // busybox-static (scripts/install-deps)

    /// The initramfs whose `/init` prints the marker and then runs `busybox <stop> -f`.
    static func initramfs(stop: String) throws -> [UInt8] {
        let script = """
            #!/bin/busybox sh
            /bin/busybox mkdir -p /proc
            /bin/busybox mount -t proc proc /proc
            echo "\(marker) cpus=$(/bin/busybox grep -c ^processor /proc/cpuinfo)"
            /bin/busybox \(stop) -f

            """
        return Initramfs.newc([
            .directory("bin"), .directory("dev"), .directory("proc"),
            .characterDevice("dev/console", major: 5, minor: 1),
            .file("bin/busybox", [UInt8](try Data(contentsOf: URL(fileURLWithPath: busybox)))),
            .symlink("bin/sh", to: "busybox"),
            .file("init", Array(script.utf8)),
        ])
    }

    /// `reboot -f` with `reboot=k` ends in the i8042 reset; `poweroff -f` in ACPI S5 (`ACPIShutdown`).
    static let stops: [(command: String, expected: GuestStop)] = [
        ("reboot", .reset), ("poweroff", .powerOff),
    ]

    @Test(.timeLimit(.minutes(3)), arguments: stops)
    func debianKernelBootsBusyboxInitramfsAndSeesEveryVCPUThroughACPI(stop: String, expected: GuestStop) throws {
        guard let kernel = DebianKernel.path else {
            print("skipping the Linux boot test: no Debian kernel (see the message above)")
            return
        }
        guard FileManager.default.isExecutableFile(atPath: Self.busybox) else {
            print("skipping the Linux boot test: no static busybox at \(Self.busybox) (apt-get install busybox-static)")
            return
        }
        let vcpuCount = 2
        let system = try KVMSystem()
        try system.requireExtensions()
        let vm = try VirtualMachine(system: system, memorySize: 256 << 20)
        try vm.createIRQChip()
        try vm.createPIT2()
        let rsdp = try LinuxPlatform.writeFirmwareTables(vcpuCount: vcpuCount, to: vm.memory)
        let boot = try LinuxBoot.load(
            kernel: [UInt8](try Data(contentsOf: URL(fileURLWithPath: kernel))), kernelPath: kernel,
            initrd: try Self.initramfs(stop: stop), commandLine: "console=ttyS0 reboot=k panic=-1", acpiRSDP: rsdp,
            into: vm.memory)
        let vcpus = try LinuxPlatform.createVCPUs(in: vm, count: vcpuCount, boot: boot)
        let bus = PortIOBus()
        let output = Mutex<[UInt8]>([])
        try bus.register(
            Serial8250(
                output: { b in output.withLock { $0.append(b) } },
                onInterrupt: { level in try? vm.setIRQLine(4, level: level) }),
            base: 0x3f8, length: 8)
        try bus.register(I8042 { [weak bus] in bus?.requestStop(.reset) }, base: 0x60, length: 5)
        try bus.register(
            ACPIShutdown { [weak bus] in
                bus?.requestStop(.powerOff)
            }, base: ACPIShutdown.port, length: 1)
        let runner = VMRunner(vcpus: vcpus, bus: bus)
        let watchdog = Thread {
            for _ in 0..<1200 {
                usleep(100_000)
                if Thread.current.isCancelled { return }
            }
            runner.stop()
        }
        watchdog.start()
        defer { watchdog.cancel() }
        let started = ContinuousClock.now
        let result = try runner.run()
        let text = output.withLock { String(decoding: $0, as: UTF8.self) }
        print("Linux boot (\(stop) -f): \(result) after \(ContinuousClock.now - started); console:\n\(text)")
        #expect(result == expected)
        #expect(text.contains("\(Self.marker) cpus=\(vcpuCount)"))
    }
}

@Suite struct InitramfsTests {
    @Test func newcHeadersArePaddedAndEndWithTheTrailer() {
        let archive = Initramfs.newc([.file("init", Array("x".utf8))])
        #expect(archive.count % 4 == 0)
        #expect(String(decoding: archive.prefix(6), as: UTF8.self) == "070701")
        // filesize field (7th) of the first header is 1; namesize (12th) is 5 ("init" + NUL).
        #expect(String(decoding: archive[6 + 6 * 8..<6 + 7 * 8], as: UTF8.self) == "00000001")
        #expect(String(decoding: archive[6 + 11 * 8..<6 + 12 * 8], as: UTF8.self) == "00000005")
        #expect(String(decoding: archive, as: UTF8.self).contains("TRAILER!!!"))
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/bin/busybox"), "needs busybox for its cpio"))
    func busyboxCpioUnpacksTheInitramfs() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("skiff-initramfs-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let archive = Initramfs.newc([
            .directory("bin"), .file("bin/tool", Array("#!/bin/sh\n".utf8)), .symlink("bin/sh", to: "tool"),
            .file("init", Array("hello".utf8), mode: 0o100644),
        ])
        try Data(archive).write(to: dir.appendingPathComponent("a.cpio"))
        try TestGuest.runTool([
            "sh", "-c", "cd '\(dir.path)' && mkdir root && cd root && /bin/busybox cpio -id < ../a.cpio",
        ])
        let root = dir.appendingPathComponent("root").path
        #expect(try String(contentsOfFile: root + "/init", encoding: .utf8) == "hello")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: root + "/bin/sh") == "tool")
        #expect(FileManager.default.isExecutableFile(atPath: root + "/bin/tool"))
    }
}
