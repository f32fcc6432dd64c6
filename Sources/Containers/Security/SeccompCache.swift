import CSeccomp
import LinuxSys
import OCI

#if canImport(Glibc)
    import Glibc
#endif

/// Compiled seccomp programs kept under the state root (`<root>/seccomp/<hash>`, mode 0600), so
/// that a start pays libseccomp's compilation (about 9 ms for Docker's profile on three
/// architectures, measured in BENCHMARKS.md) once per profile, not per container.
///
/// A file holds the key (every field of the `linux.seccomp`, libseccomp's version and the native
/// architecture), the filter flags, a checksum and the program; it is used only when the key
/// matches byte for byte and the checksum holds, so a hash collision, a libseccomp upgrade or a
/// damaged file recompiles. The directory is root's, like the rest of
/// the state root.
enum SeccompCache {
    /// The program for `spec`: from `dir` when cached there, else compiled (and stored when `dir`
    /// is writable; a cache that cannot be written only costs the compilation).
    /// - Throws: what `SeccompFilter.compile` throws.
    static func program(_ spec: Spec.Seccomp, dir: String?) throws -> SeccompProgram {
        guard let dir else { return try SeccompFilter.compile(spec) }
        let key = Array(cacheKey(spec).utf8)
        let path = dir + "/" + hex(fnv1a(key))
        if let bytes = try? Files.read(path), let hit = decode(bytes, key: key) { return hit }
        let program = try SeccompFilter.compile(spec)
        if mkdir(dir, 0o700) == 0 || errno == EEXIST {
            var file = le(UInt32(key.count)) + key + le(program.flags)
            file += le(UInt32(truncatingIfNeeded: fnv1a(program.instructions))) + program.instructions
            try? Files.write(path, file, mode: 0o600)
        }
        return program
    }

    /// Every field that changes the program, in a fixed order.
    static func cacheKey(_ s: Spec.Seccomp) -> String {
        var k = "skiff-seccomp-2 optimize=2\n"
        if let v = seccomp_version()?.pointee { k += "libseccomp \(v.major).\(v.minor).\(v.micro)\n" }
        k += "native \(seccomp_arch_native())\n"
        k += "default \(s.defaultAction) \(s.defaultErrnoRet.map(String.init) ?? "-")\n"
        k += "arches \((s.architectures ?? []).joined(separator: ","))\n"
        k += "flags \((s.flags ?? []).joined(separator: ","))\n"
        for r in s.syscalls ?? [] {
            k += "rule \(r.action) \(r.errnoRet.map(String.init) ?? "-") \(r.names.joined(separator: ","))"
            for a in r.args ?? [] { k += " [\(a.index) \(a.op) \(a.value) \(a.valueTwo.map(String.init) ?? "-")]" }
            k += "\n"
        }
        return k
    }

    private static func decode(_ bytes: [UInt8], key: [UInt8]) -> SeccompProgram? {
        guard bytes.count >= 12 + key.count else { return nil }
        let n = Int(u32(bytes, 0))
        guard n == key.count, bytes[4..<(4 + n)].elementsEqual(key) else { return nil }
        let body = Array(bytes[(12 + n)...])
        guard !body.isEmpty, body.count % 8 == 0, u32(bytes, 8 + n) == UInt32(truncatingIfNeeded: fnv1a(body)) else {
            return nil
        }
        return SeccompProgram(instructions: body, flags: u32(bytes, 4 + n))
    }

    private static func fnv1a(_ bytes: [UInt8]) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }
    private static func hex(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }
    private static func le(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    private static func u32(_ b: [UInt8], _ at: Int) -> UInt32 {
        UInt32(b[at]) | UInt32(b[at + 1]) << 8 | UInt32(b[at + 2]) << 16 | UInt32(b[at + 3]) << 24
    }
}
