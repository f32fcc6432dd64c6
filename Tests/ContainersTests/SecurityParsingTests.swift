import LinuxSys
import OCI
import Testing

@testable import Containers

/// Capability names, `--security-opt`, and Docker/OCI seccomp profiles: parsing and resolution.
struct CapabilityNameTests {
    @Test func namesNormalise() throws {
        #expect(try Capabilities.normalize("net_admin", flag: "--cap-add") == "CAP_NET_ADMIN")
        #expect(try Capabilities.normalize("CAP_SYS_PTRACE", flag: "--cap-add") == "CAP_SYS_PTRACE")
        #expect(try Capabilities.normalize("cap_chown", flag: "--cap-drop") == "CAP_CHOWN")
        #expect(try Capabilities.normalize("all", flag: "--cap-drop") == "ALL")
        let e = #expect(throws: SkiffError.self) { try Capabilities.normalize("FLY", flag: "--cap-add") }
        #expect(e?.message.contains("--cap-add \"FLY\"") == true)
    }

    @Test func numbersFollowTheKernelHeader() {
        #expect(Capabilities.number("CAP_CHOWN") == 0)
        #expect(Capabilities.number("CAP_SYS_ADMIN") == 21)
        #expect(Capabilities.number("CAP_SETFCAP") == 31)
        #expect(Capabilities.number("CAP_CHECKPOINT_RESTORE") == 40)
        let mask = Capabilities.dockerDefault.compactMap(Capabilities.number).reduce(UInt64(0)) {
            $0 | (1 << UInt64($1))
        }
        #expect(mask == 0xa804_25fb, "Docker's CapEff")
    }

    @Test func dockerRulesForAddAndDrop() throws {
        #expect(try Capabilities.resolve(add: [], drop: [], privileged: false) == Capabilities.dockerDefault)
        #expect(try Capabilities.resolve(add: ["NET_RAW"], drop: ["ALL"], privileged: false) == ["CAP_NET_RAW"])
        let allButChown = try Capabilities.resolve(add: ["ALL"], drop: ["chown"], privileged: false)
        #expect(!allButChown.contains("CAP_CHOWN") && allButChown.contains("CAP_SYS_ADMIN"))
        let tweaked = try Capabilities.resolve(add: ["sys_ptrace"], drop: ["MKNOD"], privileged: false)
        #expect(tweaked.contains("CAP_SYS_PTRACE") && !tweaked.contains("CAP_MKNOD"))
        #expect(try Capabilities.resolve(add: [], drop: ["ALL"], privileged: true) == Capabilities.allOnThisKernel)
        #expect(throws: SkiffError.self) { try Capabilities.resolve(add: [], drop: ["CAP_NOPE"], privileged: false) }
    }

    @Test func ociCapabilitiesAreValidated() {
        let bad = Spec.Capabilities(bounding: ["CAP_CHOWN", "CAP_WHATEVER"])
        let e = #expect(throws: SkiffError.self) { try Capabilities.validate(bad) }
        #expect(e?.message.contains("bounding") == true && e?.message.contains("CAP_WHATEVER") == true)
    }
}

struct SecurityOptTests {
    @Test func forms() throws {
        #expect(try SecurityOptions.parse([]) == .init(noNewPrivileges: true, seccomp: nil))
        #expect(try SecurityOptions.parse(["no-new-privileges=false"]).noNewPrivileges == false)
        #expect(try SecurityOptions.parse(["no-new-privileges:false"]).noNewPrivileges == false)
        #expect(try SecurityOptions.parse(["no-new-privileges=false", "no-new-privileges"]).noNewPrivileges == true)
        #expect(try SecurityOptions.parse(["seccomp=unconfined"]).seccomp == "unconfined")
        #expect(try SecurityOptions.parse(["seccomp=/p.json"]).seccomp == "/p.json")
        #expect(try SecurityOptions.parse(["seccomp=builtin"]).seccomp == nil)
        #expect(throws: SkiffError.self) { try SecurityOptions.parse(["no-new-privileges=maybe"]) }
        #expect(throws: SkiffError.self) { try SecurityOptions.parse(["seccomp="]) }
        #expect(throws: SkiffError.self) { try SecurityOptions.parse(["label=disable"]) }
        // Docker users write comma lists and AppArmor/SELinux options: each gets a message saying what to do.
        do {
            _ = try SecurityOptions.parse(["seccomp=unconfined,no-new-privileges=false"])
            Issue.record("a comma list must be refused")
        } catch let e as SkiffError {
            #expect(e.message.contains("its own --security-opt"), "\(e.message)")
        }
        do {
            _ = try SecurityOptions.parse(["apparmor=unconfined"])
            Issue.record("apparmor must be refused")
        } catch let e as SkiffError {
            #expect(e.message.contains("not supported"), "\(e.message)")
        }
    }
}

struct SeccompProfileTests {
    static let amd64 = SeccompProfile.Host(goArch: "amd64", scmpArch: "SCMP_ARCH_X86_64", kernel: (6, 1))

    func parse(_ json: String) throws -> SeccompProfile {
        try SeccompProfile.parse(Array(json.utf8), path: "/p.json")
    }

    @Test func readsDockerFields() throws {
        let p = try parse(
            """
            {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
             "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
             "syscalls": [
               {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
               {"name": "socket", "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]},
               {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
                "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
               {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13, "comment": "no dirs"}
             ]}
            """)
        let oci = p.resolve(capabilities: Capabilities.dockerDefault, host: Self.amd64)
        #expect(oci.defaultAction == "SCMP_ACT_ERRNO" && oci.defaultErrnoRet == 1)
        #expect(oci.architectures == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"])
        #expect(oci.syscalls?.count == 4)
        #expect(oci.syscalls?[1].names == ["socket"], "name folds into names")
        #expect(oci.syscalls?[1].args == [Spec.Seccomp.Arg(index: 0, value: 40, op: "SCMP_CMP_NE")])
        #expect(oci.syscalls?[3].errnoRet == 13)
        let admin = p.resolve(capabilities: ["CAP_SYS_ADMIN"], host: Self.amd64)
        #expect(admin.syscalls?.count == 3, "excludes caps drops the clone rule")
        // And the program compiles.
        let program = try SeccompFilter.compile(oci)
        #expect(program.count > 10 && program.instructions.count % 8 == 0)
    }

    @Test func rejectsBadProfilesNamingTheFile() {
        let bad: [(String, String)] = [
            ("{", "/p.json"),
            (#"{"syscalls": []}"#, "defaultAction"),
            (#"{"defaultAction": "SCMP_ACT_NOPE"}"#, "SCMP_ACT_NOPE"),
            (#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]}"#, "SCMP_ARCH_VAX"),
            (
                #"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "a", "names": ["b"], "action": "SCMP_ACT_ALLOW"}]}"#,
                "syscalls[0]"
            ),
            (
                #"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_ALLOW"}]}"#,
                "names no system call"
            ),
            (
                #"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}]}"#,
                "index 6"
            ),
            (
                #"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]}"#,
                "NOTIFY"
            ),
            (
                #"{"defaultAction": "SCMP_ACT_ALLOW", "archMap": [{"architecture": "SCMP_ARCH_X86_64"}], "architectures": ["SCMP_ARCH_X86_64"]}"#,
                "archMap"
            ),
            (
                #"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_NOPE"]}}]}"#,
                "CAP_NOPE"
            ),
        ]
        for (json, says) in bad {
            let e = #expect(throws: SkiffError.self) { try parse(json) }
            #expect(
                e?.message.contains("/p.json") == true && e?.message.contains(says) == true,
                "\(json): \(e?.message ?? "")")
        }
    }

    @Test func defaultProfileFollowsCapabilities() throws {
        func allowed(_ caps: [String], host: SeccompProfile.Host = Self.amd64) -> Set<String> {
            let s = DefaultSeccompProfile.profile.resolve(capabilities: caps, host: host)
            return Set((s.syscalls ?? []).filter { $0.action == "SCMP_ACT_ALLOW" && $0.args == nil }.flatMap(\.names))
        }
        let plain = allowed(Capabilities.dockerDefault)
        #expect(plain.contains("read") && plain.contains("arch_prctl") && plain.contains("chroot"))
        for denied in ["mount", "unshare", "reboot", "keyctl", "kexec_load", "bpf", "setns", "perf_event_open"] {
            #expect(!plain.contains(denied), "\(denied)")
        }
        let admin = allowed(Capabilities.dockerDefault + ["CAP_SYS_ADMIN", "CAP_SYS_BOOT"])
        #expect(admin.contains("mount") && admin.contains("unshare") && admin.contains("reboot"))
        // ptrace needs kernel 4.8 without CAP_SYS_PTRACE.
        #expect(plain.contains("ptrace"), "kernel 6.1 ≥ 4.8")
        let old = allowed(
            Capabilities.dockerDefault, host: .init(goArch: "amd64", scmpArch: "SCMP_ARCH_X86_64", kernel: (4, 4)))
        #expect(!old.contains("ptrace"))
        let arm = allowed(
            Capabilities.dockerDefault, host: .init(goArch: "arm64", scmpArch: "SCMP_ARCH_AARCH64", kernel: (6, 1)))
        #expect(!arm.contains("arch_prctl") && arm.contains("cacheflush"))
        let s = DefaultSeccompProfile.profile.resolve(capabilities: Capabilities.dockerDefault, host: Self.amd64)
        #expect(s.architectures == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        #expect(s.syscalls?.contains { $0.names == ["clone3"] && $0.errnoRet == 38 } == true)
    }

    @Test func compiledDefaultStartsWithTheENOSYSStub() throws {
        let s = DefaultSeccompProfile.profile.resolve(capabilities: Capabilities.dockerDefault)
        let program = try SeccompFilter.compile(s)
        let first = Array(program.instructions.prefix(8))
        // BPF_LD|BPF_W|BPF_ABS of seccomp_data.arch (offset 4).
        #expect(first[0] == 0x20 && first[1] == 0 && first[4] == 4)
        #expect(program.count < 4096)
        // An allow-by-default profile gets no stub: its first instruction is libseccomp's.
        let allow = try SeccompFilter.compile(Spec.Seccomp(defaultAction: "SCMP_ACT_ALLOW"))
        #expect(allow.count < 20)
    }
}

struct SeccompProgramCodingTests {
    /// The plan carries the program to a spawned init as JSON: one hex string, read back byte for byte.
    @Test func roundTripsThroughJSON() throws {
        let s = DefaultSeccompProfile.profile.resolve(capabilities: Capabilities.dockerDefault)
        let program = try SeccompFilter.compile(s)
        let json = try OCIJSON.encode(program)
        #expect(json.count < program.instructions.count * 2 + 64)
        let back = try OCIJSON.decode(SeccompProgram.self, from: json, what: "program")
        #expect(back == program)
        #expect(throws: (any Error).self) {
            try OCIJSON.decode(SeccompProgram.self, from: Array(#"{"flags": 0, "instructions": "0g"}"#.utf8), what: "p")
        }
    }
}

struct SeccompCacheTests {
    @Test func storesOnceAndRecompilesOnAMismatch() throws {
        let dir = tempDir("seccomp-cache") + "/seccomp"
        defer { _ = try? Files.removeTree(String(dir.dropLast(8))) }
        let s = DefaultSeccompProfile.profile.resolve(capabilities: Capabilities.dockerDefault)
        let first = try SeccompCache.program(s, dir: dir)
        let files = try Files.list(dir)
        #expect(files.count == 1)
        #expect(try SeccompCache.program(s, dir: dir) == first)
        // Another profile gets another file; a damaged file is recompiled and rewritten.
        let other = Spec.Seccomp(
            defaultAction: "SCMP_ACT_ALLOW", syscalls: [.init(names: ["mkdir"], action: "SCMP_ACT_ERRNO")])
        #expect(try SeccompCache.program(other, dir: dir) != first)
        #expect(try Files.list(dir).count == 2)
        let path = dir + "/" + files[0]
        let good = try Files.read(path)
        var bad = good
        bad[bad.count - 1] ^= 0xff
        try Files.write(path, bad)
        #expect(try SeccompCache.program(s, dir: dir) == first)
        #expect(try Files.read(path) == good)
        try Files.write(path, Array(good.dropLast(3)))
        #expect(try SeccompCache.program(s, dir: dir) == first)
        // The key covers every field.
        var changed = s
        changed.syscalls?[0].errnoRet = 5
        #expect(SeccompCache.cacheKey(changed) != SeccompCache.cacheKey(s))
    }
}

struct BPFAssemblerTests {
    @Test func forwardJumpsAreRelative() {
        var a = BPFAssembler()
        a.load(offset: 0)
        a.jump(ifGreater: 10, then: "no", else: "end")
        a.label("no")
        a.ret(0x0005_0026)
        a.label("end")
        let b = a.assemble()
        #expect(b.count == 24)
        // jgt: code 0x25, jt 0 (next), jf 1 (past the ret), k 10.
        #expect(Array(b[8..<16]) == [0x25, 0x00, 0, 1, 10, 0, 0, 0])
        #expect(Array(b[16..<24]) == [0x06, 0x00, 0, 0, 0x26, 0, 0x05, 0])
    }
}
