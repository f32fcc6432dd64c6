import Foundation
import KVM

/// Builds the assembly guests under `Tests/KVMTests/guests/` with the machine's gcc/ld/objcopy into a
/// flat binary linked at `GuestLayout.kernelAddress`, in a fresh temporary directory.
enum TestGuest {
    static let sourceDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("guests")

    /// Whether the toolchain is there (`gcc`, `ld`, `objcopy` on PATH).
    static var toolchainAvailable: Bool {
        ["gcc", "ld", "objcopy"].allSatisfy { tool in
            (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").contains {
                FileManager.default.isExecutableFile(atPath: "\($0)/\(tool)")
            }
        }
    }

    struct BuildError: Error, CustomStringConvertible {
        let description: String
    }

    static func runTool(_ arguments: [String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = arguments
        let err = Pipe()
        p.standardError = err
        try p.run()
        let message = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw BuildError(
                description: "\(arguments.joined(separator: " ")) exited \(p.terminationStatus): "
                    + String(decoding: message, as: UTF8.self))
        }
    }

    /// Assembles `guests/<name>.S` with `defines` (`-D` macros) and returns the flat image bytes.
    static func build(_ name: String, defines: [String: String] = [:]) throws -> [UInt8] {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("skiff-kvm-guest-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let object = dir.appendingPathComponent("\(name).o").path
        let elf = dir.appendingPathComponent("\(name).elf").path
        let bin = dir.appendingPathComponent("\(name).bin").path
        let source = sourceDirectory.appendingPathComponent("\(name).S").path
        try runTool(
            ["gcc", "-c", "-nostdlib", "-ffreestanding", "-I", sourceDirectory.path]
                + defines.sorted(by: { $0.key < $1.key }).map { "-D\($0.key)=\($0.value)" } + [source, "-o", object])
        try runTool(
            [
                "ld", "-nostdlib", "--build-id=none", "-Ttext=0x\(String(GuestLayout.kernelAddress, radix: 16))",
                object, "-o", elf,
            ])
        try runTool(["objcopy", "-O", "binary", elf, bin])
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: bin)))
    }
}
