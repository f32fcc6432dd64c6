import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// What a workload sees inside: its own PID, UTS, network and mount namespaces, a minimal /dev,
/// a read-only /sys and the generated /etc files.
@Suite(.enabled(if: Harness.available, "needs root and a skiff binary (SKIFF_TEST_BIN)"))
struct IsolationTests {
    init() throws { try Harness.setUp() }

    @Test func workloadIsPID1() async {
        let r = await skiff("run", "--rm", "busybox", "ps", "-o", "pid,comm")
        #expect(r.code == 0, "\(r)")
        let rows = r.lines.dropFirst().map { $0.split(separator: " ").map(String.init) }
        #expect(rows.count == 1, "only the workload is visible: \(r)")
        #expect(rows.first == ["1", "ps"], "\(r)")
    }

    @Test func defaultHostnameIsShortID() async throws {
        let name = uniqueName("host")
        let r = await skiff("run", "--name", name, "busybox", "sh", "-c", "hostname; cat /etc/hostname; echo $HOSTNAME")
        #expect(r.code == 0, "\(r)")
        let id = (try? await facts(name).id) ?? "(inspect failed)"
        await cleanup(name)
        #expect(r.lines == [String(id.prefix(12)), String(id.prefix(12)), String(id.prefix(12))], "\(r)")
    }

    @Test func hostnameFlag() async {
        let r = await skiff(
            "run", "--rm", "--hostname", "x", "busybox", "sh", "-c", "hostname; cat /etc/hostname; grep -c x /etc/hosts"
        )
        #expect(r.code == 0, "\(r)")
        #expect(r.lines.prefix(2) == ["x", "x"], "\(r)")
    }

    @Test func networkNoneHasOnlyLoopbackUp() async {
        let r = await skiff("run", "--rm", "--network", "none", "busybox", "ip", "-o", "link")
        #expect(r.code == 0, "\(r)")
        #expect(r.lines.count == 1, "only lo: \(r)")
        #expect(r.stdout.contains("lo:") && r.stdout.contains(",UP"), "\(r)")
        // The default is none too.
        let d = await skiff("run", "--rm", "busybox", "ip", "-o", "link")
        #expect(d.lines.count == 1, "\(d)")
        // And loopback works.
        let ping = await skiff("run", "--rm", "busybox", "ping", "-c", "1", "-W", "2", "127.0.0.1")
        #expect(ping.code == 0, "\(ping)")
    }

    @Test func networkHostSeesHostInterfaces() async throws {
        let host = try FileManager.default.contentsOfDirectory(atPath: "/sys/class/net").sorted()
        let r = await skiff("run", "--rm", "--network", "host", "busybox", "ls", "/sys/class/net")
        #expect(r.code == 0, "\(r)")
        let inside = r.stdout.split(whereSeparator: { $0 == "\n" || $0 == " " }).map(String.init).sorted()
        #expect(inside == host, "\(r)")
        #expect(host.count > 1, "host has only lo; the check is weak")
    }

    /// The host's root is not reachable through /proc/1/root (PID 1 is the workload) and a file
    /// that exists only on the host is invisible.
    @Test func hostRootIsUnreachable() async throws {
        let marker = "skiff-test-marker-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        _ = FileManager.default.createFile(atPath: "/tmp/" + marker, contents: Data("host\n".utf8))
        _ = FileManager.default.createFile(atPath: "/" + marker, contents: Data("host\n".utf8))
        defer {
            unlink("/tmp/" + marker)
            unlink("/" + marker)
        }
        let r = await skiff(
            "run", "--rm", "busybox", "sh", "-c",
            "ls -a /proc/1/root/; echo ---; ls /tmp/\(marker) /\(marker) /proc/1/root/\(marker) /proc/1/root/tmp/\(marker) 2>&1; echo ---; readlink /proc/1/root"
        )
        let parts = r.stdout.components(separatedBy: "---\n")
        try #require(parts.count == 3, "\(r)")
        let listed = parts[0].split(separator: "\n").map(String.init)
        #expect(listed.contains("bin") && listed.contains("etc"), "\(r)")
        #expect(!listed.contains(marker), "host / is visible: \(r)")
        #expect(!parts[0].contains("work"), "host / is visible: \(r)")
        #expect(parts[1].components(separatedBy: "No such file").count - 1 == 4, "marker visible inside: \(r)")
        #expect(parts[2].trimmingCharacters(in: .whitespacesAndNewlines) == "/", "\(r)")
    }

    @Test(arguments: UserNS.modes) func devHasTheStandardNodes(userns: String) async {
        let r = await skiff(
            ["run", "--rm"] + UserNS.flags(userns) + [
                "busybox", "sh", "-c",
                "ls -a /dev; echo ---; stat -c '%F %t,%T' /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty",
            ])
        #expect(r.code == 0, "\(r)")
        let parts = r.stdout.components(separatedBy: "---\n")
        let listed = Set(parts[0].split(separator: "\n").map(String.init))
        for n in [
            "null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts", "shm", "mqueue", "fd", "stdin", "stdout",
            "stderr",
        ] {
            #expect(listed.contains(n), "/dev/\(n) missing: \(r)")
        }
        let stats = parts.count > 1 ? parts[1].split(separator: "\n").map(String.init) : []
        #expect(stats.first == "character special file 1,3", "/dev/null is not char 1,3: \(r)")
        #expect(stats == ["1,3", "1,5", "1,7", "1,8", "1,9", "5,0"].map { "character special file " + $0 }, "\(r)")
        // Host devices are not there.
        #expect(!listed.contains("sda") && !listed.contains("kmsg") && !listed.contains("mem"), "\(r)")
        // /dev/null works.
        let w = await skiff(
            ["run", "--rm"] + UserNS.flags(userns) + [
                "busybox", "sh", "-c", "echo x > /dev/null && head -c 4 /dev/zero | od -An -tx1",
            ])
        #expect(w.code == 0, "\(w)")
        #expect(w.out == "00 00 00 00", "\(w)")
    }

    @Test(arguments: UserNS.modes) func sysIsReadOnly(userns: String) async {
        let r = await skiff(
            ["run", "--rm"] + UserNS.flags(userns) + [
                "busybox", "sh", "-c", "grep ' /sys ' /proc/mounts; touch /sys/skiff-escape; echo rc=$?",
            ])
        #expect(r.stdout.contains("sysfs /sys sysfs ro"), "\(r)")
        #expect(r.stdout.contains("rc=1"), "\(r)")
        #expect(r.stderr.contains("Read-only file system"), "\(r)")
    }

    /// /sys/fs/cgroup shows the container's own cgroup, read-only, as under Docker: the limits
    /// it was given (v2 `memory.max`/`cpu.max`, or v1 `memory/memory.limit_in_bytes` and
    /// `cpu/cpu.cfs_quota_us` on a v1 or hybrid host), only its own processes, and no way to
    /// change either. `skiff exec` sees the same.
    @Test(arguments: UserNS.modes) func sysFsCgroupShowsTheContainersOwnCgroupReadOnly(userns: String) async throws {
        let script = """
            cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes
            cat /sys/fs/cgroup/cpu.max 2>/dev/null || cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us
            cat /sys/fs/cgroup/cgroup.procs 2>/dev/null || cat /sys/fs/cgroup/pids/cgroup.procs
            echo 1 > /sys/fs/cgroup/memory.max 2>/dev/null || echo 1 > /sys/fs/cgroup/memory/memory.limit_in_bytes
            echo write=$?
            """
        let r = await skiff(
            ["run", "--rm", "--memory", "64m", "--cpus", "0.5"] + UserNS.flags(userns) + ["busybox", "sh", "-c", script])
        #expect(r.code == 0, "\(r)")
        #expect(r.lines.count == 5, "\(r)")
        guard r.lines.count == 5 else { return }
        #expect(r.lines[0] == "67108864", "memory limit: \(r)")
        #expect(r.lines[1] == "50000 100000" || r.lines[1] == "50000", "cpu quota: \(r)")
        // The cgroup's processes, as PIDs of the container: sh (1) and cat.
        #expect(r.lines[2] == "1", "\(r)")
        #expect(r.lines[4] == "write=1" && r.stderr.contains("Read-only file system"), "\(r)")

        let name = uniqueName("cgfs")
        let run = await skiff(["run", "-d", "--name", name, "--memory", "32m"] + UserNS.flags(userns) + ["busybox", "sleep", "60"])
        #expect(run.code == 0, "\(run)")
        defer { Task { await cleanup(name) } }
        let exec = await skiff(
            "exec", name, "sh", "-c",
            "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes")
        #expect(exec.code == 0 && exec.lines == ["33554432"], "\(exec)")

        // --privileged (refused with --userns=auto): read-write, as /sys is (Docker's rule).
        guard userns == "host" else { return }
        let privileged = await skiff(
            "run", "--rm", "--privileged", "busybox", "sh", "-c",
            "grep -E ' /sys/fs/cgroup(/memory)? ' /proc/self/mountinfo | grep -E ' - cgroup2? '")
        #expect(privileged.code == 0 && privileged.lines.count == 1 && privileged.stdout.contains(" rw,"), "\(privileged)")
    }

    @Test func etcFilesExist() async {
        let r = await skiff(
            "run", "--rm", "busybox", "sh", "-c",
            "cat /etc/hostname /etc/hosts /etc/resolv.conf >/dev/null && grep -c localhost /etc/hosts")
        #expect(r.code == 0, "\(r)")
        #expect((Int(r.out) ?? 0) >= 1, "\(r)")
    }

    /// The container's writes land in its own upperdir, never in the image: a second container
    /// from the same image does not see them.
    @Test func writesDoNotLeakIntoTheImage() async {
        let marker = "leak-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        let a = await skiff("run", "--rm", "busybox", "sh", "-c", "echo x > /\(marker) && rm /bin/ls && echo written")
        #expect(a.out == "written", "\(a)")
        let b = await skiff(
            "run", "--rm", "busybox", "sh", "-c", "ls /\(marker) 2>/dev/null; test -e /bin/ls && echo ls-present")
        #expect(b.out == "ls-present", "\(b)")
    }
}
