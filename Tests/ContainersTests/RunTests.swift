import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `skiff run` in the foreground: output, Docker's exit codes, and the flags a user passes.
/// Disabled (reason printed) without root or without a built `skiff` binary.
@Suite(.enabled(if: Harness.available, "needs root and a skiff binary (SKIFF_TEST_BIN)"))
struct RunTests {
    init() throws { try Harness.setUp() }

    @Test func echoPrintsAndExitsZero() async {
        let r = await skiff("run", "--rm", "busybox", "echo", "hello")
        #expect(r.code == 0, "\(r)")
        #expect(r.stdout == "hello\n", "\(r)")
    }

    /// `run` is parsed with its common options alone when that suffices (main.swift, RunBasic) and
    /// by the whole command otherwise; a user sees no difference between the two.
    @Test func commonAndRareOptionsParseTheSame() async {
        let script = "echo $A $B; pwd; id -u; hostname"
        let common = await skiff(
            "run", "--rm", "-e", "A=1", "--env=B=2", "-w", "/tmp", "-u", "1000", "--hostname", "h1", "--network=none",
            "busybox", "sh", "-c", script)
        #expect(common.code == 0 && common.stdout == "1 2\n/tmp\n1000\nh1\n", "\(common)")
        // --read-only and --pids-limit are not in the short list: the whole command parses them.
        let rare = await skiff(
            "run", "--rm", "-e", "A=1", "--env=B=2", "-w", "/tmp", "-u", "1000", "--hostname", "h1", "--read-only",
            "--pids-limit", "50", "busybox", "sh", "-c", script)
        #expect(rare.code == 0 && rare.stdout == common.stdout, "\(rare)")
        // The command after the image keeps its own options, even ones skiff has.
        let passthrough = await skiff("run", "--rm", "busybox", "echo", "x", "-e", "--rm", "-w")
        #expect(passthrough.code == 0 && passthrough.stdout == "x -e --rm -w\n", "\(passthrough)")
        let typo = await skiff("run", "--rm", "--memroy", "64m", "busybox", "true")
        #expect(typo.code == 125 && typo.stderr.contains("unknown flag: --memroy"), "\(typo)")
        let noImage = await skiff("run", "--rm")
        #expect(noImage.code == 125 && noImage.stderr.contains("no image given"), "\(noImage)")
        let help = await skiff("run", "--help")
        #expect(help.code == 0 && help.stdout.contains("--pids-limit"), "\(help)")
        let entrypoint = await skiff("run", "--rm", "--entrypoint", "echo", "busybox", "via", "entrypoint")
        #expect(entrypoint.code == 0 && entrypoint.stdout == "via entrypoint\n", "\(entrypoint)")
    }

    /// The record is written while the container's first process sets up, and that process runs
    /// nothing of the workload until it exists: a name that is taken stops the run with Docker's
    /// message, before the command ran, and leaves no directory or record behind.
    @Test func aTakenNameIsRefusedBeforeTheWorkloadRunsAndLeavesNothing() async throws {
        let root = try await AllocatorRoot()
        let name = uniqueName("taken")
        let first = await root.run("run", "-d", "--name", name, "busybox", "sleep", "30")
        try #require(first.code == 0, "\(first)")
        defer { _ = runSync([Harness.binary, "rm", "-f", name], env: ["SKIFF_ROOT": root.path], stdin: nil, timeout: 60) }
        let containers = root.path + "/containers"
        let before = try FileManager.default.contentsOfDirectory(atPath: containers).sorted()
        let marker = tempDir("taken-marker")
        defer { try? FileManager.default.removeItem(atPath: marker) }
        for rm in [[], ["--rm"]] {
            let r = await root.run(["run"] + rm + ["--name", name, "-v", "\(marker):/m", "busybox", "touch", "/m/ran"])
            #expect(r.code == 125 && r.stderr.contains("already in use"), "\(r)")
        }
        #expect(!FileManager.default.fileExists(atPath: marker + "/ran"), "the workload ran")
        #expect(try FileManager.default.contentsOfDirectory(atPath: containers).sorted() == before)
        let ps = await root.run("ps", "-aq")
        #expect(ps.lines.count == 1, "\(ps)")
        // The same run under a free name does run (so the check above can fail).
        let free = await root.run("run", "--rm", "-v", "\(marker):/m", "busybox", "touch", "/m/ran")
        #expect(free.code == 0 && FileManager.default.fileExists(atPath: marker + "/ran"), "\(free)")
    }

    @Test func workloadExitStatusIsPropagated() async {
        let r = await skiff("run", "--rm", "busybox", "sh", "-c", "exit 3")
        #expect(r.code == 3, "\(r)")
    }

    @Test func missingCommandIs127AndNamed() async {
        let r = await skiff("run", "--rm", "busybox", "nosuchcmd")
        #expect(r.code == 127, "\(r)")
        #expect(r.stderr.contains("nosuchcmd"), "\(r)")
    }

    @Test func nonExecutableIs126() async {
        let r = await skiff("run", "--rm", "busybox", "/etc/passwd")
        #expect(r.code == 126, "\(r)")
        #expect(r.stderr.contains("/etc/passwd"), "\(r)")
    }

    /// A workload killed by SIGKILL exits 137. It must not be PID 1 for this (the kernel ignores
    /// SIGKILL sent to a PID namespace's init from inside; Docker's exit code is then 0 too), so
    /// run it under --init, and kill a plain PID 1 from the host with `skiff kill`.
    @Test func killedBySignalIs128PlusN() async throws {
        let r = await skiff("run", "--rm", "--init", "busybox", "sh", "-c", "kill -9 $$")
        #expect(r.code == 137, "\(r)")

        let name = uniqueName("sig")
        async let fg = skiff("run", "--rm", "--name", name, "busybox", "sleep", "1000")
        let running = await eventually(10) { (try? await facts(name))?.status == "running" }
        #expect(running)
        let k = await skiff("kill", "-s", "KILL", name)
        #expect(k.code == 0, "\(k)")
        let out = await fg
        #expect(out.code == 137, "\(out)")
        await cleanup(name)
    }

    @Test func envAndEnvFile() async throws {
        let dir = tempDir("env")
        defer { _ = try? FileManager.default.removeItem(atPath: dir) }
        try "# a comment\n\nB=two\nC=from file\n".write(toFile: dir + "/env", atomically: true, encoding: .utf8)
        let r = await skiff(
            "run", "--rm", "-e", "A=1", "--env-file", dir + "/env", "-e", "C=flag wins", "busybox", "sh", "-c",
            "echo \"$A|$B|$C\"")
        #expect(r.code == 0, "\(r)")
        #expect(r.out == "1|two|flag wins", "\(r)")
    }

    @Test func workdirIsCreatedAndUsed() async {
        let r = await skiff("run", "--rm", "-w", "/some/new/dir", "busybox", "pwd")
        #expect(r.code == 0, "\(r)")
        #expect(r.out == "/some/new/dir", "\(r)")
    }

    @Test func userByIDAndByName() async {
        let numeric = await skiff("run", "--rm", "-u", "1000:1000", "busybox", "id")
        #expect(numeric.code == 0, "\(numeric)")
        #expect(numeric.out.hasPrefix("uid=1000") && numeric.out.contains("gid=1000"), "\(numeric)")
        let named = await skiff("run", "--rm", "-u", "app", "busybox", "sh", "-c", "id -u; id -g; echo $HOME")
        #expect(named.code == 0, "\(named)")
        #expect(named.lines.prefix(2) == ["1000", "1000"], "\(named)")
        let odd = await skiff("run", "--rm", "-u", "4242:4343", "busybox", "sh", "-c", "id -u; id -g")
        #expect(odd.lines == ["4242", "4343"], "\(odd)")
    }

    @Test func entrypointOverride() async {
        let r = await skiff("run", "--rm", "--entrypoint", "echo", "busybox", "from", "entrypoint")
        #expect(r.code == 0, "\(r)")
        #expect(r.out == "from entrypoint", "\(r)")
    }

    @Test func bindMountReadWriteAndReadOnly() async throws {
        let dir = tempDir("vol")
        defer { _ = try? FileManager.default.removeItem(atPath: dir) }
        try "from host\n".write(toFile: dir + "/in.txt", atomically: true, encoding: .utf8)
        let rw = await skiff(
            "run", "--rm", "-v", dir + ":/data", "busybox", "sh", "-c", "cat /data/in.txt; echo inside > /data/out.txt")
        #expect(rw.code == 0, "\(rw)")
        #expect(rw.out == "from host", "\(rw)")
        #expect((try? String(contentsOfFile: dir + "/out.txt", encoding: .utf8)) == "inside\n")

        let ro = await skiff(
            "run", "--rm", "-v", dir + ":/data:ro", "busybox", "sh", "-c", "cat /data/in.txt; echo x > /data/ro.txt")
        #expect(ro.code != 0, "\(ro)")
        #expect(ro.stdout.contains("from host"), "\(ro)")
        #expect(ro.stderr.contains("Read-only file system"), "\(ro)")
        #expect(access(dir + "/ro.txt", F_OK) != 0, "a write through a :ro volume reached the host")
    }

    @Test func tmpfsMount() async {
        let r = await skiff(
            "run", "--rm", "--tmpfs", "/scratch", "busybox", "sh", "-c",
            "grep ' /scratch ' /proc/mounts; echo ok > /scratch/f && cat /scratch/f")
        #expect(r.code == 0, "\(r)")
        #expect(r.stdout.contains("tmpfs /scratch tmpfs"), "\(r)")
        #expect(r.stdout.contains("ok"), "\(r)")
    }

    @Test func readOnlyRootWithWritableTmpfs() async {
        let r = await skiff(
            "run", "--rm", "--read-only", "--tmpfs", "/tmp", "busybox", "sh", "-c",
            "if touch /newfile; then echo root-writable; fi; touch /tmp/f && echo tmp-ok")
        #expect(r.code == 0, "\(r)")
        #expect(!r.stdout.contains("root-writable"), "\(r)")
        #expect(r.stderr.contains("Read-only file system"), "\(r)")
        #expect(r.stdout.contains("tmp-ok"), "\(r)")
    }

    @Test func initBecomesPID1AndPropagatesStatus() async {
        let r = await skiff("run", "--rm", "--init", "busybox", "sh", "-c", "ps -o pid,comm; exit 7")
        #expect(r.code == 7, "\(r)")
        // PID 1 is the init, not the workload's shell.
        let pid1 = r.lines.first { $0.trimmingCharacters(in: .whitespaces).hasPrefix("1 ") } ?? ""
        #expect(!pid1.isEmpty && !pid1.hasSuffix(" sh"), "\(r)")
        #expect(
            r.lines.contains { $0.hasSuffix(" sh") && !$0.trimmingCharacters(in: .whitespaces).hasPrefix("1 ") }, "\(r)"
        )

        let plain = await skiff("run", "--rm", "busybox", "sh", "-c", "ps -o pid,comm; exit 0")
        let plainPid1 = plain.lines.first { $0.trimmingCharacters(in: .whitespaces).hasPrefix("1 ") } ?? ""
        #expect(plainPid1.hasSuffix(" sh"), "\(plain)")
    }

    /// `--rootfs DIR`: an unpacked busybox root made here from the image layout's layer.
    @Test func rootfsDirectory() async throws {
        let dir = tempDir("rootfs")
        defer { _ = try? FileManager.default.removeItem(atPath: dir) }
        let unpack = await runAsync([
            "/usr/bin/env", "python3", "-c",
            """
            import json, sys, tarfile, os
            lay, dest = sys.argv[1], sys.argv[2]
            blob = lambda d: os.path.join(lay, "blobs", *d.split(":"))
            idx = json.load(open(os.path.join(lay, "index.json")))
            man = json.load(open(blob(idx["manifests"][0]["digest"])))
            for l in man["layers"]:
                with tarfile.open(blob(l["digest"])) as t:
                    t.extractall(dest)
            """, Harness.busyboxLayout, dir + "/rootfs",
        ])
        try #require(unpack.code == 0, "\(unpack)")
        try "only in this rootfs\n".write(toFile: dir + "/rootfs/marker", atomically: true, encoding: .utf8)
        let r = await skiff(
            "run", "--rm", "--rootfs", dir + "/rootfs", "/bin/sh", "-c", "cat /marker; echo $$; hostname")
        #expect(r.code == 0, "\(r)")
        #expect(r.lines.first == "only in this rootfs", "\(r)")
        #expect(r.lines.dropFirst().first == "1", "\(r)")
        // Nothing of the container stays mounted on the host's view of the directory.
        let m = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        #expect(!m.contains(dir), "mount left under \(dir)")
    }

    /// `-t` gives the workload a terminal; checked under a pty made by Python's `pty` module.
    @Test func ttyUnderPty() async {
        let r = await runAsync(
            [
                "/usr/bin/env", "python3", "-c", "import pty, sys; sys.exit(pty.spawn(sys.argv[1:]) >> 8)",
                Harness.binary, "run", "--rm", "-t", "busybox", "tty",
            ],
            env: ["SKIFF_ROOT": Harness.stateRoot], timeout: 30)
        #expect(r.code == 0, "\(r)")
        let out = r.out
        #expect(out == "/dev/console" || out == "/dev/pts/0", "\(r)")
    }

    @Test func interactivePassesStdin() async {
        let r = await skiff("run", "--rm", "-i", "busybox", "cat", stdin: "hi\nthere\n")
        #expect(r.code == 0, "\(r)")
        #expect(r.stdout == "hi\nthere\n", "\(r)")
        // Without -i the workload's stdin is empty.
        let n = await skiff("run", "--rm", "busybox", "cat", stdin: "ignored\n")
        #expect(n.code == 0, "\(n)")
        #expect(n.stdout.isEmpty, "\(n)")
    }
}
