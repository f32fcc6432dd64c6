import Foundation

#if canImport(Glibc)
    import Glibc
#endif
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

    /// Runs a tool with `posix_spawnp` and waits for exactly that child. Foundation's `Process`
    /// reaps through a shared SIGCHLD handler, which left gcc children unreaped and hung the
    /// whole test process when other suites spawn processes in parallel.
    static func runTool(_ arguments: [String]) throws {
        let errPath = FileManager.default.temporaryDirectory.appendingPathComponent("skiff-kvm-tool-\(UUID().uuidString)").path
        defer { unlink(errPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawnp(&pid, arguments[0], &actions, nil, &argv, environ)
        guard rc == 0 else {
            throw BuildError(description: "cannot run \(arguments[0]): \(String(cString: strerror(rc)))")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exited = status & 0x7f == 0
        let code = (status >> 8) & 0xff
        guard exited && code == 0 else {
            let message = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
            throw BuildError(description: "\(arguments.joined(separator: " ")) failed (status \(status)): \(message)")
        }
    }

    /// Assembles `guests/<name>.S` with `defines` (`-D` macros) and returns the flat image bytes,
    /// or with `elf` the linked ELF file's bytes.
    static func build(_ name: String, defines: [String: String] = [:], elf wantELF: Bool = false) throws -> [UInt8] {
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
            ] + (wantELF ? ["-N"] : []))  // -N: no page-aligned headers below 1 MiB
        if wantELF { return [UInt8](try Data(contentsOf: URL(fileURLWithPath: elf))) }
        try runTool(["objcopy", "-O", "binary", elf, bin])
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: bin)))
    }
}
