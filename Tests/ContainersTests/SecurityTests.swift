import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Capabilities, no_new_privs and seccomp as a workload sees them (issue 6 acceptance 1–3):
/// `/proc/self/status` and the errno of system calls made by a tiny static C program.
@Suite(.enabled(if: Harness.available, "needs root and a skiff binary (SKIFF_TEST_BIN)"))
struct SecurityTests {
    init() throws { try Harness.setUp() }

    /// Docker's default capability set as /proc/self/status prints it (CAP_CHOWN … CAP_SETFCAP).
    static let dockerDefaultMask = "00000000a80425fb"
    static let zero = "0000000000000000"

    /// The security lines of /proc/self/status in a container run with `flags`.
    func status(_ flags: [String]) async -> (fields: [String: String], out: Output) {
        let r = await skiff(["run", "--rm"] + flags + ["busybox", "cat", "/proc/self/status"])
        var fields: [String: String] = [:]
        for line in r.lines {
            let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if parts.count == 2 { fields[parts[0]] = parts[1] }
        }
        return (fields, r)
    }

    /// A static helper, built once per test process: `sc NAME...` makes each system call with
    /// harmless arguments and prints `NAME ok` or `NAME errno=N`.
    static let helperDir: Result<String, TestFailure> = {
        let dir = tempDir("sc")
        let source = """
            #include <errno.h>
            #include <stdio.h>
            #include <string.h>
            #include <sys/syscall.h>
            #include <unistd.h>
            int main(int argc, char **argv) {
                for (int i = 1; i < argc; i++) {
                    const char *n = argv[i];
                    long r;
                    errno = 0;
                    if (!strcmp(n, "reboot")) r = syscall(SYS_reboot, 0, 0, 0, 0);         /* bad magic: EINVAL if allowed */
                    else if (!strcmp(n, "kexec_load")) r = syscall(SYS_kexec_load, 0, 0, 0, 0);
                    else if (!strcmp(n, "keyctl")) r = syscall(SYS_keyctl, 0, -3, 0);      /* KEYCTL_GET_KEYRING_ID, session */
                    else if (!strcmp(n, "mount")) r = syscall(SYS_mount, "none", "/tmp", "tmpfs", 0, 0);
                    else if (!strcmp(n, "unshare_user")) r = syscall(SYS_unshare, 0x10000000);
                    else if (!strcmp(n, "clone3")) r = syscall(SYS_clone3, 0, 0);          /* EINVAL/EFAULT if allowed */
                    else if (!strcmp(n, "future")) r = syscall(1000);                       /* beyond every known call */
                    else { printf("%s unknown\\n", n); continue; }
                    if (r < 0) printf("%s errno=%d\\n", n, errno); else printf("%s ok\\n", n);
                }
                return 0;
            }
            """
        do {
            try source.write(toFile: dir + "/sc.c", atomically: true, encoding: .utf8)
        } catch {
            return .failure(TestFailure("cannot write sc.c: \(error)"))
        }
        let r = runSync(["/usr/bin/gcc", "-static", "-O2", "-o", dir + "/sc", dir + "/sc.c"], stdin: nil, timeout: 120)
        guard r.code == 0 else { return .failure(TestFailure("gcc -static failed: \(r)")) }
        // Reachable by a container's root that is not the host's (--userns=auto).
        chmod(dir, 0o755)
        return .success(dir)
    }()

    /// Runs the helper in a container with `flags`; returns `NAME → "ok" | "errno=N"`.
    func syscalls(_ flags: [String], _ names: [String]) async throws -> [String: String] {
        let dir = try Self.helperDir.get()
        let r = await skiff(["run", "--rm", "-v", dir + ":/sc:ro"] + flags + ["busybox", "/sc/sc"] + names)
        #expect(r.code == 0, "\(r)")
        var out: [String: String] = [:]
        for line in r.lines {
            let p = line.split(separator: " ", maxSplits: 1).map(String.init)
            if p.count == 2 { out[p[0]] = p[1] }
        }
        return out
    }

    @Test(arguments: UserNS.modes) func defaultRefusesPrivilegedCallsWithEPERM(userns: String) async throws {
        let calls = ["reboot", "kexec_load", "keyctl", "mount", "unshare_user"]
        let got = try await syscalls(UserNS.flags(userns), calls)
        for c in calls { #expect(got[c] == "errno=\(EPERM)", "\(c): \(got)") }
        // clone3 is refused with ENOSYS so libc falls back to clone; a call newer than the
        // profile gets ENOSYS from the stub, not the default EPERM.
        let enosys = try await syscalls(UserNS.flags(userns), ["clone3", "future"])
        #expect(enosys["clone3"] == "errno=\(ENOSYS)", "\(enosys)")
        #expect(enosys["future"] == "errno=\(ENOSYS)", "\(enosys)")
    }

    @Test func busyboxToolsSeeEPERM() async {
        let r = await skiff(
            "run", "--rm", "busybox", "sh", "-c", "unshare -U true; mount -t tmpfs none /mnt; echo done")
        #expect(r.lines.last == "done", "\(r)")
        #expect(r.stderr.contains("unshare(0x10000000): Operation not permitted"), "\(r)")
        #expect(r.stderr.contains("mount") && r.stderr.lowercased().contains("permission denied"), "\(r)")
    }

    @Test(arguments: UserNS.modes) func defaultStatusShowsDockerSetAndNoNewPrivs(userns: String) async {
        let (f, r) = await status(UserNS.flags(userns))
        #expect(f["CapEff"] == Self.dockerDefaultMask, "\(r)")
        #expect(f["CapPrm"] == Self.dockerDefaultMask, "\(r)")
        #expect(f["CapBnd"] == Self.dockerDefaultMask, "\(r)")
        #expect(f["CapInh"] == Self.zero && f["CapAmb"] == Self.zero, "\(r)")
        #expect(f["NoNewPrivs"] == "1", "\(r)")
        #expect(f["Seccomp"] == "2", "\(r)")
    }

    @Test(arguments: UserNS.modes) func capDropAllLeavesEmptySets(userns: String) async {
        let (f, r) = await status(["--cap-drop", "ALL"] + UserNS.flags(userns))
        for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] { #expect(f[set] == Self.zero, "\(set): \(r)") }
    }

    @Test func capAddAndDropChangeTheSet() async {
        // +NET_ADMIN (bit 12), −CHOWN (bit 0); names in any case, with or without CAP_.
        let (f, r) = await status(["--cap-add", "net_admin", "--cap-drop", "CAP_CHOWN"])
        #expect(f["CapEff"] == "00000000a80435fa", "\(r)")
        #expect(f["CapBnd"] == "00000000a80435fa", "\(r)")
        let (only, r2) = await status(["--cap-drop", "all", "--cap-add", "KILL"])
        #expect(only["CapEff"] == "0000000000000020", "\(r2)")
    }

    @Test func privilegedGetsEveryCapabilityAndNoSeccomp() async throws {
        // Every capability skiff itself may hand out: its own bounding set.
        let mine = try String(contentsOfFile: "/proc/self/status", encoding: .utf8).split(separator: "\n")
            .first { $0.hasPrefix("CapBnd:") }.map { $0.dropFirst(7).trimmingCharacters(in: .whitespaces) }
        let (f, r) = await status(["--privileged"])
        #expect(f["CapEff"] == mine && f["CapBnd"] == mine, "\(r)")
        #expect(f["Seccomp"] == "0", "\(r)")
        let sys = await skiff("run", "--rm", "--privileged", "busybox", "sh", "-c", "grep ' /sys ' /proc/mounts")
        #expect(sys.stdout.contains(" rw,"), "privileged /sys is writable: \(sys)")
        // No masked or read-only /proc paths (a default container has /proc/sys read-only).
        let mounts = "grep -c -E ' /proc/(sys|keys|timer_list|sysrq-trigger) ' /proc/mounts"
        let priv = await skiff("run", "--rm", "--privileged", "busybox", "sh", "-c", mounts)
        let plain = await skiff("run", "--rm", "busybox", "sh", "-c", mounts)
        #expect(priv.out == "0", "\(priv)")
        #expect((Int(plain.out) ?? 0) >= 2, "\(plain)")
    }

    @Test(arguments: UserNS.modes) func nonRootUserKeepsBoundingButNoEffective(userns: String) async {
        let (f, r) = await status(["-u", "1000"] + UserNS.flags(userns))
        #expect(f["Uid"]?.hasPrefix("1000") == true, "\(r)")
        #expect(f["CapEff"] == Self.zero && f["CapPrm"] == Self.zero, "\(r)")
        #expect(f["CapBnd"] == Self.dockerDefaultMask, "\(r)")
        #expect(f["Seccomp"] == "2" && f["NoNewPrivs"] == "1", "\(r)")
    }

    @Test func noNewPrivilegesOption() async {
        let (off, r) = await status(["--security-opt", "no-new-privileges=false"])
        #expect(off["NoNewPrivs"] == "0", "\(r)")
        // The filter is still loaded (before setuid, while CAP_SYS_ADMIN is still effective).
        #expect(off["Seccomp"] == "2", "\(r)")
        for v in ["no-new-privileges", "no-new-privileges=true"] {
            let (on, r2) = await status(["--security-opt", v])
            #expect(on["NoNewPrivs"] == "1", "\(v): \(r2)")
        }
    }

    @Test func customProfileDeniesMkdirWithEPERM() async throws {
        let dir = tempDir("prof")
        defer { _ = runSync(["/bin/rm", "-rf", dir], stdin: nil, timeout: 10) }
        let profile = """
            {"defaultAction": "SCMP_ACT_ALLOW",
             "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
            """
        try profile.write(toFile: dir + "/deny-mkdir.json", atomically: true, encoding: .utf8)
        let r = await skiff(
            "run", "--rm", "--security-opt", "seccomp=\(dir)/deny-mkdir.json", "busybox", "sh", "-c",
            "mkdir /tmp/x; echo rc=$?; touch /tmp/y && echo touched")
        #expect(r.stderr.contains("Operation not permitted"), "\(r)")
        #expect(r.lines == ["rc=1", "touched"], "\(r)")
    }

    @Test func unconfinedAllowsWhatDefaultDenies() async throws {
        let got = try await syscalls(["--security-opt", "seccomp=unconfined"], ["keyctl", "clone3"])
        #expect(got["keyctl"] == "ok", "\(got)")
        #expect(got["clone3"] != "errno=\(ENOSYS)", "\(got)")
        let (f, r) = await status(["--security-opt", "seccomp=unconfined"])
        #expect(f["Seccomp"] == "0" && f["CapEff"] == Self.dockerDefaultMask, "\(r)")
    }

    @Test(arguments: UserNS.modes) func execGetsTheContainersSets(userns: String) async throws {
        let name = uniqueName("secexec")
        let run = await skiff(
            ["run", "-d", "--name", name, "--cap-drop", "NET_RAW"] + UserNS.flags(userns) + ["busybox", "sleep", "60"])
        #expect(run.code == 0, "\(run)")
        let r = await skiff("exec", name, "grep", "-E", "^(CapEff|CapBnd|NoNewPrivs|Seccomp):", "/proc/self/status")
        let u = await skiff("exec", name, "unshare", "-U", "true")
        await cleanup(name)
        // The default set without NET_RAW (bit 13).
        #expect(r.lines.contains { $0.hasPrefix("CapEff:") && $0.hasSuffix("00000000a80405fb") }, "\(r)")
        #expect(r.lines.contains { $0.hasPrefix("CapBnd:") && $0.hasSuffix("00000000a80405fb") }, "\(r)")
        #expect(r.lines.contains { $0.hasPrefix("NoNewPrivs:") && $0.hasSuffix("1") }, "\(r)")
        #expect(r.lines.contains { $0.hasPrefix("Seccomp:") && $0.hasSuffix("2") }, "\(r)")
        #expect(u.code != 0 && u.stderr.contains("Operation not permitted"), "\(u)")
    }

    /// `skiff exec` joins the container's PID namespace, so every process it creates lands
    /// there. Only the command may: a helper of skiff's own (such as the process that used to
    /// hold its address space past exit) would be a process inside the container with the host
    /// runtime's capabilities. PID 1 here is `sleep`, which never reaps, so anything skiff left
    /// behind stays visible to `ps` as a zombie.
    @Test(arguments: UserNS.modes) func execLeavesNoProcessOfItsOwnInTheContainer(userns: String) async throws {
        let name = uniqueName("execps")
        let run = await skiff(["run", "-d", "--name", name] + UserNS.flags(userns) + ["busybox", "sleep", "60"])
        #expect(run.code == 0, "\(run)")
        defer { Task { await cleanup(name) } }
        let ok = await skiff("exec", name, "true")
        let failed = await skiff("exec", name, "/no/such/command")
        let tty = await skiff("exec", "-t", name, "true")
        #expect(ok.code == 0 && failed.code == 127 && tty.code == 0, "\(ok)\n\(failed)\n\(tty)")
        let ps = await skiff("exec", name, "ps", "-o", "pid,stat,comm")
        let rows = ps.lines.dropFirst().map { $0.split(separator: " ").map(String.init) }
        #expect(ps.code == 0 && rows.count == 2, "only PID 1 and ps itself: \(ps)")
        #expect(rows.first == ["1", "S", "sleep"], "\(ps)")
        #expect(rows.last?.last == "ps", "\(ps)")
    }

    @Test func badProfilesAndNamesExit125NamingTheValue() async throws {
        let dir = tempDir("badprof")
        defer { _ = runSync(["/bin/rm", "-rf", dir], stdin: nil, timeout: 10) }
        let cases: [(file: String, body: String, says: String)] = [
            ("notjson.json", "{not json", "not valid JSON"),
            ("action.json", #"{"defaultAction": "SCMP_ACT_MAYBE"}"#, "SCMP_ACT_MAYBE"),
            (
                "op.json",
                #"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ALMOST"}]}]}"#,
                "SCMP_CMP_ALMOST"
            ),
            ("arch.json", #"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]}"#, "SCMP_ARCH_Z80"),
        ]
        for c in cases {
            let path = dir + "/" + c.file
            try c.body.write(toFile: path, atomically: true, encoding: .utf8)
            let r = await skiff("run", "--rm", "--security-opt", "seccomp=\(path)", "busybox", "true")
            #expect(r.code == 125, "\(c.file): \(r)")
            #expect(r.stderr.contains(path) && r.stderr.contains(c.says), "\(c.file): \(r)")
        }
        let refused: [(flags: [String], says: String)] = [
            (["--security-opt", "seccomp=\(dir)/none.json"], "\(dir)/none.json"),
            (["--cap-add", "CAP_FLY"], "CAP_FLY"), (["--cap-drop", "teleport"], "teleport"),
            (["--security-opt", "apparmor=x"], "apparmor=x"),
        ]
        for c in refused {
            let r = await skiff(["run", "--rm"] + c.flags + ["busybox", "true"])
            #expect(r.code == 125 && r.stderr.contains(c.says), "\(r)")
        }
    }

    // MARK: device cgroup

    /// Docker's device list: a node the container makes (any major, `m` is allowed) opens only
    /// when it is one of the standard devices; /dev/kvm (10:232) and the host console (4:0) give
    /// EPERM, /dev/null, /dev/zero and a pty work. `--privileged` opens them. The host's
    /// `devices.list` of the container's cgroup shows the list.
    @Test func deviceNodesOutsideDockersListCannotBeOpened() async throws {
        let script = """
            mknod /tmp/kvm c 10 232 && echo made; (exec 6<>/tmp/kvm) 2>/dev/null && echo KVM-OPENED
            mknod /tmp/tty0 c 4 0; (exec 6>/tmp/tty0) 2>/dev/null && echo TTY0-OPENED
            mknod /tmp/null c 1 3; echo x > /tmp/null && echo null-ok; head -c 3 /dev/zero | wc -c
            """
        // The v1 devices controller here; SKIFF_DEVICES_BPF=1 takes cgroup v2's way (a
        // BPF_CGROUP_DEVICE program on the container's unified cgroup) with the same list.
        for env in [[:], ["SKIFF_DEVICES_BPF": "1"]] as [[String: String]] {
            let r = await runAsync(
                [Harness.binary, "run", "--rm", "busybox", "sh", "-c", script],
                env: env.merging(["SKIFF_ROOT": Harness.stateRoot]) { a, _ in a }, timeout: 60)
            #expect(r.code == 0, "\(env) \(r)")
            #expect(r.stdout.contains("made") && r.stdout.contains("null-ok"), "\(env) \(r)")
            #expect(!r.stdout.contains("KVM-OPENED") && !r.stdout.contains("TTY0-OPENED"), "\(env) \(r)")
        }
        let p = await skiff("run", "--rm", "--privileged", "busybox", "sh", "-c", "mknod /tmp/z c 1 5 && head -c 1 /tmp/z | wc -c; mknod /tmp/kvm c 10 232; (exec 6<>/tmp/kvm) && echo KVM-OPENED")
        #expect(p.stdout.contains("KVM-OPENED") || !FileManager.default.fileExists(atPath: "/dev/kvm"), "\(p)")
        // The rules as the kernel holds them, read from the host.
        let name = uniqueName("dev")
        defer { Task { await cleanup(name) } }
        let started = await skiff("run", "-d", "--name", name, "busybox", "sleep", "30")
        #expect(started.code == 0, "\(started)")
        let pid = try #require((try await inspect(name))["State"].flatMap { $0 as? [String: Any] }?["Pid"] as? Int)
        let line = try String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8).split(separator: "\n")
            .first { $0.contains(":devices:") }
        if let line, let path = line.split(separator: ":", maxSplits: 2).last {
            let list = try String(contentsOfFile: "/sys/fs/cgroup/devices" + path + "/devices.list", encoding: .utf8)
            #expect(list.contains("c 1:3 rwm") && list.contains("c 136:* rwm") && !list.contains("a *:*"), "\(list)")
        }
    }

}
