import CSeccomp
import CSkiff
import LinuxSys
import OCI

#if canImport(Glibc)
    import Glibc
#endif

/// A compiled seccomp filter: classic-BPF instructions (`struct sock_filter`, 8 bytes each,
/// native endian) and the `seccomp(2)` filter flags, ready for `load()` in the child.
struct SeccompProgram: Codable, Equatable {
    var instructions: [UInt8]
    var flags: UInt32

    init(instructions: [UInt8], flags: UInt32) {
        self.instructions = instructions
        self.flags = flags
    }

    /// Number of BPF instructions.
    var count: Int { instructions.count / 8 }

    // The plan travels as JSON to a spawned init: the program as one hex string, not an array of
    // thousands of numbers, so decoding it costs microseconds.
    private enum CodingKeys: String, CodingKey { case instructions, flags }

    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        flags = try c.decode(UInt32.self, forKey: .flags)
        let hex = Array(try c.decode(String.self, forKey: .instructions).utf8)
        func nibble(_ ch: UInt8) throws -> UInt8 {
            switch ch {
            case 0x30...0x39: return ch - 0x30
            case 0x61...0x66: return ch - 0x61 + 10
            default: throw DecodingError.dataCorruptedError(forKey: .instructions, in: c, debugDescription: "not hex")
            }
        }
        guard hex.count % 2 == 0 else {
            throw DecodingError.dataCorruptedError(forKey: .instructions, in: c, debugDescription: "odd hex length")
        }
        var bytes = [UInt8]()
        bytes.reserveCapacity(hex.count / 2)
        var i = 0
        while i < hex.count {
            bytes.append(try nibble(hex[i]) << 4 | nibble(hex[i + 1]))
            i += 2
        }
        instructions = bytes
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(flags, forKey: .flags)
        let digits = Array("0123456789abcdef".utf8)
        var hex = [UInt8]()
        hex.reserveCapacity(instructions.count * 2)
        for b in instructions {
            hex.append(digits[Int(b >> 4)])
            hex.append(digits[Int(b & 15)])
        }
        try c.encode(String(decoding: hex, as: UTF8.self), forKey: .instructions)
    }

    /// Installs the filter on the calling thread. Needs no_new_privs or CAP_SYS_ADMIN.
    /// - Throws: `SysError` from seccomp(2) (EACCES without either; EINVAL for a bad program).
    func load() throws {
        let rc = instructions.withUnsafeBytes { sk_seccomp_set_filter($0.baseAddress, UInt32(count), flags) }
        try check(rc, "seccomp", "SECCOMP_SET_MODE_FILTER (\(count) instructions)")
    }
}

/// Turns an OCI `linux.seccomp` into a BPF program through libseccomp, with runc's ENOSYS stub in
/// front (libcontainer/seccomp/patchbpf): for an allow-list (a default action that refuses),
/// a system call numbered above every call the filter names, per architecture, returns ENOSYS
/// instead of the default errno, so libc falls back from calls newer than the profile (clone3,
/// faccessat2, …) as it would on an older kernel.
enum SeccompFilter {
    /// SECCOMP_RET_* action values (linux/seccomp.h; libseccomp's SCMP_ACT_* are the same numbers).
    static func action(_ name: String, errnoRet: UInt32?) -> UInt32? {
        switch name {
        case "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD": return 0x0000_0000
        case "SCMP_ACT_KILL_PROCESS": return 0x8000_0000
        case "SCMP_ACT_TRAP": return 0x0003_0000
        case "SCMP_ACT_ERRNO": return 0x0005_0000 | ((errnoRet ?? UInt32(EPERM)) & 0xffff)
        case "SCMP_ACT_TRACE": return 0x7ff0_0000 | ((errnoRet ?? UInt32(EPERM)) & 0xffff)
        case "SCMP_ACT_LOG": return 0x7ffc_0000
        case "SCMP_ACT_ALLOW": return 0x7fff_0000
        default: return nil
        }
    }

    static func isKnownAction(_ name: String) -> Bool {
        action(name, errnoRet: nil) != nil || name == "SCMP_ACT_NOTIFY"
    }

    /// libseccomp's `enum scmp_compare` for an OCI operator name.
    static func compareOp(_ name: String) -> scmp_compare? {
        switch name {
        case "SCMP_CMP_NE": return SCMP_CMP_NE
        case "SCMP_CMP_LT": return SCMP_CMP_LT
        case "SCMP_CMP_LE": return SCMP_CMP_LE
        case "SCMP_CMP_EQ": return SCMP_CMP_EQ
        case "SCMP_CMP_GE": return SCMP_CMP_GE
        case "SCMP_CMP_GT": return SCMP_CMP_GT
        case "SCMP_CMP_MASKED_EQ": return SCMP_CMP_MASKED_EQ
        default: return nil
        }
    }

    /// SECCOMP_FILTER_FLAG_* values (linux/seccomp.h).
    static func filterFlag(_ name: String) -> UInt32? {
        switch name {
        case "SECCOMP_FILTER_FLAG_TSYNC": return 1
        case "SECCOMP_FILTER_FLAG_LOG": return 2
        case "SECCOMP_FILTER_FLAG_SPEC_ALLOW": return 4
        default: return nil
        }
    }

    /// libseccomp's token for `SCMP_ARCH_X86_64` and friends (`seccomp_arch_resolve_name`), nil if unknown.
    static func archToken(_ name: String) -> UInt32? {
        guard name.hasPrefix("SCMP_ARCH_") else { return nil }
        let token = seccomp_arch_resolve_name(String(name.dropFirst(10)).lowercased())
        return token == 0 ? nil : token
    }

    static let auditArchX86_64: UInt32 = 0xC000_003E
    static let x32SyscallBit: UInt32 = 0x4000_0000

    /// Compiles `spec` for this host.
    /// - Throws: `SkiffError` naming the rule libseccomp refused.
    static func compile(_ spec: Spec.Seccomp) throws -> SeccompProgram {
        guard let defaultAction = action(spec.defaultAction, errnoRet: spec.defaultErrnoRet) else {
            throw SkiffError("seccomp: unknown defaultAction \"\(spec.defaultAction)\"")
        }
        guard let ctx = seccomp_init(defaultAction) else {
            throw SkiffError("seccomp: seccomp_init failed (libseccomp)")
        }
        defer { seccomp_release(ctx) }
        // Skiff sets no_new_privs itself (process.noNewPrivileges) and loads the program itself.
        _ = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0)
        // libseccomp's binary-tree layout (optimize level 2, libseccomp >= 2.5): each syscall is
        // found in O(log n) comparisons instead of a scan of every rule, which also shortens what
        // the kernel does when the program is attached (it evaluates it per syscall number to
        // build its action cache). Older libraries refuse the attribute and keep the linear layout.
        _ = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2)
        var arches: [(name: String, token: UInt32)] = []
        for name in spec.architectures ?? [] {
            guard let token = archToken(name) else { throw SkiffError("seccomp: unknown architecture \"\(name)\"") }
            let rc = seccomp_arch_add(ctx, token)
            guard rc == 0 || rc == -EEXIST else {
                throw SkiffError("seccomp: cannot add architecture \(name): \(SysError.message(-rc))")
            }
            arches.append((name, token))
        }
        var flags: UInt32 = 0
        for f in spec.flags ?? [] {
            guard let v = filterFlag(f) else { throw SkiffError("seccomp: unsupported flag \"\(f)\"") }
            flags |= v
        }
        var named: [String] = []
        for rule in spec.syscalls ?? [] {
            guard let act = action(rule.action, errnoRet: rule.errnoRet) else {
                throw SkiffError("seccomp: unsupported action \"\(rule.action)\" for \(rule.names)")
            }
            var conds: [scmp_arg_cmp] = []
            for a in rule.args ?? [] {
                guard a.index < 6, let op = compareOp(a.op) else {
                    throw SkiffError("seccomp: bad argument condition (index \(a.index), op \(a.op)) for \(rule.names)")
                }
                conds.append(scmp_arg_cmp(arg: a.index, op: op, datum_a: a.value, datum_b: a.valueTwo ?? 0))
            }
            // libseccomp takes one comparison per argument in a rule; more on the same argument
            // become separate rules (either may match), as runc does.
            let sameArgTwice = Set(conds.map(\.arg)).count != conds.count
            let groups = sameArgTwice ? conds.map { [$0] } : [conds]
            for name in rule.names {
                named.append(name)
                if act == defaultAction { continue }
                let nr = seccomp_syscall_resolve_name(name)
                // Unknown to this libseccomp: skipped, as runc and Docker do, so that one profile
                // serves several kernels and libseccomp versions.
                if nr == __NR_SCMP_ERROR { continue }
                for group in groups {
                    let rc = group.withUnsafeBufferPointer {
                        seccomp_rule_add_array(ctx, act, nr, UInt32($0.count), $0.baseAddress)
                    }
                    guard rc == 0 else {
                        throw SkiffError(
                            "seccomp: libseccomp refused the rule for \(name) (\(rule.action)): \(SysError.message(-rc))"
                        )
                    }
                }
            }
        }
        var program = try export(ctx)
        let permissiveDefault = ["SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE"].contains(spec.defaultAction)
        let defaultIsENOSYS = spec.defaultAction == "SCMP_ACT_ERRNO" && spec.defaultErrnoRet == UInt32(ENOSYS)
        if !permissiveDefault && !defaultIsENOSYS {
            let native = seccomp_arch_native()
            if !arches.contains(where: { $0.token == native }) { arches.insert(("native", native), at: 0) }
            program = enosysStub(lastSyscalls: lastSyscalls(named, arches: arches.map(\.token))) + program
        }
        guard program.count / 8 <= 4096 else {
            throw SkiffError("seccomp: the filter has \(program.count / 8) instructions; the kernel takes at most 4096")
        }
        return SeccompProgram(instructions: program, flags: flags)
    }

    /// The BPF program libseccomp generated, read back through a memfd.
    private static func export(_ ctx: scmp_filter_ctx) throws -> [UInt8] {
        let fd = sk_memfd_create("skiff-seccomp", 1)  // MFD_CLOEXEC
        try check(fd, "memfd_create", "seccomp export")
        defer { close(fd) }
        let rc = seccomp_export_bpf(ctx, fd)
        guard rc == 0 else { throw SkiffError("seccomp: seccomp_export_bpf failed: \(SysError.message(-rc))") }
        _ = lseek(fd, 0, SEEK_SET)
        return try Files.read(fd: fd, path: "seccomp export")
    }

    /// Highest syscall number among `names` for each kernel architecture (AUDIT_ARCH_*), with
    /// x32 (x86-64 numbers with bit 30 set) apart from x86-64.
    static func lastSyscalls(_ names: [String], arches: [UInt32]) -> [(audit: UInt32, native: UInt32?, x32: UInt32?)] {
        let x32Token = archToken("SCMP_ARCH_X32")
        var out: [(audit: UInt32, native: UInt32?, x32: UInt32?)] = []
        func highest(_ token: UInt32, bit: UInt32 = 0) -> UInt32? {
            let numbers = names.compactMap { n -> UInt32? in
                let nr = seccomp_syscall_resolve_name_arch(token, n)
                return nr < 0 ? nil : UInt32(nr) | bit
            }
            return numbers.max()
        }
        for token in arches where token != x32Token {
            out.append((token, highest(token), nil))
        }
        if let x32 = x32Token, arches.contains(x32) {
            let top = highest(x32, bit: x32SyscallBit)
            if let i = out.firstIndex(where: { $0.audit == auditArchX86_64 }) {
                out[i].x32 = top
            } else {
                out.append((auditArchX86_64, nil, top))
            }
        }
        return out.filter { $0.native != nil || $0.x32 != nil }
    }

    /// The stub: per architecture, `nr > highest known → ERRNO(ENOSYS)`, else on into the filter.
    static func enosysStub(lastSyscalls: [(audit: UInt32, native: UInt32?, x32: UInt32?)]) -> [UInt8] {
        var asm = BPFAssembler()
        asm.load(offset: 4)  // seccomp_data.arch
        for (i, arch) in lastSyscalls.enumerated() {
            asm.jump(ifEqual: arch.audit, then: "arch\(i)", else: nil)
        }
        asm.jumpAlways("filter")
        for (i, arch) in lastSyscalls.enumerated() {
            asm.label("arch\(i)")
            asm.load(offset: 0)  // seccomp_data.nr
            if arch.audit == auditArchX86_64 {
                asm.jump(ifBitsSet: x32SyscallBit, then: "x32_\(i)", else: nil)
                if let n = arch.native {
                    asm.jump(ifGreater: n, then: "enosys", else: "filter")
                } else {
                    asm.jumpAlways("filter")
                }
                asm.label("x32_\(i)")
                if let n = arch.x32 {
                    asm.jump(ifGreater: n, then: "enosys", else: "filter")
                } else {
                    asm.jumpAlways("filter")
                }
            } else if let n = arch.native {
                asm.jump(ifGreater: n, then: "enosys", else: "filter")
            }
        }
        asm.label("enosys")
        asm.ret(0x0005_0000 | UInt32(ENOSYS))
        asm.label("filter")
        return asm.assemble()
    }
}

/// A few classic-BPF instructions with forward jumps to labels (linux/filter.h encodings).
struct BPFAssembler {
    private enum Target {
        case none
        case label(String)
    }
    private var code: [(op: UInt16, jt: Target, jf: Target, k: UInt32, always: Target)] = []
    private var labels: [String: Int] = [:]

    mutating func label(_ name: String) { labels[name] = code.count }
    /// BPF_LD|BPF_W|BPF_ABS
    mutating func load(offset: UInt32) { code.append((0x20, .none, .none, offset, .none)) }
    /// BPF_RET|BPF_K
    mutating func ret(_ value: UInt32) { code.append((0x06, .none, .none, value, .none)) }
    /// BPF_JMP|BPF_JA
    mutating func jumpAlways(_ to: String) { code.append((0x05, .none, .none, 0, .label(to))) }
    /// BPF_JMP|BPF_JEQ|BPF_K; a nil target falls through.
    mutating func jump(ifEqual k: UInt32, then t: String?, else f: String?) { cond(0x15, k, t, f) }
    /// BPF_JMP|BPF_JGT|BPF_K (unsigned).
    mutating func jump(ifGreater k: UInt32, then t: String?, else f: String?) { cond(0x25, k, t, f) }
    /// BPF_JMP|BPF_JSET|BPF_K.
    mutating func jump(ifBitsSet k: UInt32, then t: String?, else f: String?) { cond(0x45, k, t, f) }

    private mutating func cond(_ op: UInt16, _ k: UInt32, _ t: String?, _ f: String?) {
        code.append((op, t.map { .label($0) } ?? .none, f.map { .label($0) } ?? .none, k, .none))
    }

    /// `struct sock_filter` bytes; jumps are relative to the next instruction, and a label at the
    /// end means the first instruction after this program.
    func assemble() -> [UInt8] {
        var out: [UInt8] = []
        for (pc, insn) in code.enumerated() {
            func offset(_ t: Target) -> UInt32 {
                guard case .label(let name) = t, let at = labels[name] else { return 0 }
                precondition(at > pc, "BPF jumps go forward only")
                return UInt32(at - pc - 1)
            }
            var k = insn.k
            if case .label = insn.always { k = offset(insn.always) }
            let jt = offset(insn.jt)
            let jf = offset(insn.jf)
            precondition(jt <= 255 && jf <= 255, "BPF conditional jump too far")
            withUnsafeBytes(of: insn.op) { out.append(contentsOf: $0) }
            out.append(UInt8(jt))
            out.append(UInt8(jf))
            withUnsafeBytes(of: k) { out.append(contentsOf: $0) }
        }
        return out
    }
}
