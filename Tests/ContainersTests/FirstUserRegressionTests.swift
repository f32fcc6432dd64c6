import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Regressions a first-user run of the security work found.
@Suite(.enabled(if: Harness.available, "needs root and a skiff binary (SKIFF_TEST_BIN)"))
struct FirstUserRegressionTests {
    init() throws { try Harness.setUp() }

    /// systemd-based images ship `/etc/resolv.conf` as a symlink to a file under /run that does not
    /// exist in the image. The container starts anyway: the link's target is created inside the
    /// root and the generated resolv.conf is bound there, as runc does; nothing outside the root
    /// is touched.
    @Test func danglingResolvConfSymlinkInsideTheRoot() async throws {
        let rootfs = try await busyboxRootfs("resolv")
        defer { _ = try? FileManager.default.removeItem(atPath: rootfs) }
        _ = try? FileManager.default.removeItem(atPath: rootfs + "/etc/resolv.conf")
        try FileManager.default.createSymbolicLink(
            atPath: rootfs + "/etc/resolv.conf", withDestinationPath: "../run/systemd/resolve/stub-resolv.conf")
        let before = try await tree("/run/systemd")
        let r = await skiff("run", "--rm", "--rootfs", rootfs, "/bin/sh", "-c", "cat /etc/resolv.conf")
        #expect(r.code == 0, "\(r)")
        let host = (try? String(contentsOfFile: "/etc/resolv.conf", encoding: .utf8)) ?? ""
        #expect(!r.stdout.isEmpty && r.stdout == host, "\(r)")
        #expect(FileManager.default.fileExists(atPath: rootfs + "/run/systemd/resolve/stub-resolv.conf"))
        #expect(try await tree("/run/systemd") == before, "the host's /run/systemd changed")
    }

    /// A workload that calls PTRACE_TRACEME makes its parent, the monitor, its tracer; its signal
    /// stop must not be taken for an exit: the monitor lets it go on, and its own exit code comes
    /// back.
    @Test func workloadThatAsksToBeTracedExitsWithItsOwnCode() async throws {
        let dir = tempDir("traceme")
        defer { _ = try? FileManager.default.removeItem(atPath: dir) }
        let source = """
            #include <signal.h>
            #include <sys/ptrace.h>
            #include <unistd.h>
            int main(void) { ptrace(PTRACE_TRACEME, 0, 0, 0); raise(SIGUSR2); return 7; }
            """
        try source.write(toFile: dir + "/t.c", atomically: false, encoding: .utf8)
        let cc = await runAsync(["/usr/bin/gcc", "-static", "-O2", "-o", dir + "/t", dir + "/t.c"], timeout: 120)
        try #require(cc.code == 0, "\(cc)")
        // The workload is PID 1 of its namespace, which ignores a default-action signal it sends
        // itself: after the stop it carries on and returns 7 (before the fix: 125, no message).
        let r = await skiff("run", "--rm", "-v", "\(dir):/t:ro", "busybox", "/t/t")
        #expect(r.code == 7, "\(r)")
    }

    // Found by a first-user run of session 3's work.

    /// An option `run`/`exec` do not know is refused as one, not taken for an image or container
    /// called `--memroy`.
    @Test func unknownFlagsAreRefusedAsFlags() async {
        for argv in [["run", "--memroy", "1g", "busybox", "true"], ["exec", "--bogus", "c1", "true"]] {
            let r = await skiff(argv)
            #expect(r.code == 125 && r.stderr.contains("unknown flag: " + argv[1]), "\(r)")
            #expect(!r.stderr.contains("no such"), "\(r)")
        }
    }

    /// In its own user namespace the container's root owns its /etc/hosts, hostname and
    /// resolv.conf (they were root-owned on the host, so nobody inside), and a block of five ids
    /// or fewer, which cannot map the tty group, still gets a /dev/pts.
    @Test func userNamespaceRootOwnsItsEtcFilesAndSmallBlocksStart() async {
        guard UserNS.available else {
            print("skipped userNamespaceRootOwnsItsEtcFilesAndSmallBlocksStart: \(UserNS.unavailableReason ?? "")")
            return
        }
        let w = await skiff(
            "run", "--rm", "--userns=auto", "busybox", "sh", "-c",
            "echo 10.1.2.3 extra >> /etc/hosts && tail -n1 /etc/hosts && echo name > /etc/hostname && echo ok")
        #expect(w.code == 0 && w.stdout.contains("10.1.2.3 extra") && w.stdout.contains("ok"), "\(w)")
        let small = await skiff("run", "--rm", "--userns=auto:size=3", "busybox", "sh", "-c", "ls /dev/pts && id -u")
        #expect(small.code == 0 && small.stdout.contains("ptmx"), "\(small)")
        // A user the block cannot map is refused naming the range and the size that would do.
        let outside = await skiff("run", "--rm", "--userns=auto:size=100", "-u", "1000", "busybox", "id")
        #expect(outside.code == 125 && outside.stderr.contains("maps ids 0-99") && outside.stderr.contains("size=1001"), "\(outside)")
    }


    /// A foreground run SIGKILLed in its first milliseconds can leave its container's cgroup
    /// before the container is recorded; `skiff ps` removes such a set once it is a minute old
    /// and empty, and leaves a new one (a start in progress) alone.
    @Test func psRemovesOrphanCgroupsOfNoContainer() async throws {
        // skiff inherits this process's cgroups: its own pids cgroup is ours.
        let line = try String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8).split(separator: "\n")
            .first { $0.contains(":pids:") }
        guard let line, let path = line.split(separator: ":", maxSplits: 2).last,
            FileManager.default.fileExists(atPath: "/sys/fs/cgroup/pids")
        else {
            print("skipped psRemovesOrphanCgroupsOfNoContainer: no v1 pids hierarchy")
            return
        }
        let base = "/sys/fs/cgroup/pids" + (path == "/" ? "" : String(path))
        let hex = { (c: Character) in String(repeating: String(c), count: 64) }
        let old = base + "/skiff-" + hex("e"), fresh = base + "/skiff-" + hex("f")
        for d in [old, fresh] { mkdir(d, 0o755) }
        defer { for d in [old, fresh] { rmdir(d) } }
        var times = [timespec(tv_sec: time(nil) - 600, tv_nsec: 0), timespec(tv_sec: time(nil) - 600, tv_nsec: 0)]
        #expect(utimensat(AT_FDCWD, old, &times, 0) == 0, "cannot age the test cgroup: errno \(errno)")
        let r = await skiff("ps", "-a")
        #expect(r.code == 0, "\(r)")
        #expect(!FileManager.default.fileExists(atPath: old), "an old empty orphan cgroup is removed")
        #expect(FileManager.default.fileExists(atPath: fresh), "a new one (a start in progress) stays")
    }


    /// A foreground run SIGKILLed between making its container directory and recording the
    /// container left a directory nobody could name; `skiff ps` removes such directories once
    /// they are a minute old (younger ones may belong to a start in progress).
    @Test func orphanContainerDirectoriesAreRemovedByPs() async throws {
        let root = try await AllocatorRoot()
        let old = String(repeating: "a", count: 63) + "1"
        let young = String(repeating: "b", count: 63) + "2"
        for id in [old, young] {
            try FileManager.default.createDirectory(
                atPath: root.path + "/containers/\(id)/upper/etc", withIntermediateDirectories: true)
        }
        let runDir = ProcessInfo.processInfo.environment["SKIFF_RUN_DIR"] ?? "/run/skiff"
        try FileManager.default.createDirectory(atPath: runDir + "/\(old)/rootfs", withIntermediateDirectories: true)
        let stale = Date(timeIntervalSinceNow: -120)
        try FileManager.default.setAttributes([.modificationDate: stale], ofItemAtPath: root.path + "/containers/\(old)")
        let ps = await root.run("ps", "-a")
        #expect(ps.code == 0, "\(ps)")
        #expect(!FileManager.default.fileExists(atPath: root.path + "/containers/\(old)"))
        #expect(!FileManager.default.fileExists(atPath: runDir + "/\(old)"))
        #expect(FileManager.default.fileExists(atPath: root.path + "/containers/\(young)"), "a young one stays")
    }

    /// A container left `created` with its cgroup by a run killed during start-up starts again
    /// (the stale cgroup is removed and made afresh) instead of failing on "File exists".
    @Test func aCreatedContainerWithAStaleCgroupStarts() async throws {
        let root = try await AllocatorRoot()
        let name = uniqueName("stalecg")
        let created = await root.run("create", "--name", name, "busybox", "sh", "-c", "echo started")
        try #require(created.code == 0, "\(created)")
        let id = created.out
        // What the killed run leaves: the cgroup in every hierarchy, recorded with the container.
        let probe = await root.run("run", "-d", "--name", name + "-probe", "busybox", "sleep", "30")
        try #require(probe.code == 0, "\(probe)")
        let probeFacts = try await facts(name + "-probe", root: root.path)
        _ = await root.run("rm", "-f", name + "-probe")
        let paths = probeFacts.cgroupPaths.map { ($0 as NSString).deletingLastPathComponent + "/skiff-" + id }
        try #require(!paths.isEmpty)
        for p in paths { try FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: false) }
        let json = String(data: try JSONSerialization.data(withJSONObject: paths), encoding: .utf8) ?? "[]"
        let set = await sh(
            "python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(\"UPDATE containers SET doc=json_set(doc, \\\"$.cgroupPaths\\\", json(?)) WHERE id=?\", (sys.argv[2], sys.argv[3])); c.commit()' \(root.path)/state.db '\(json)' \(id)")
        try #require(set.code == 0, "\(set)")
        let start = await root.run("start", name)
        #expect(start.code == 0, "\(start)")
        let done = await eventually(10) { await root.run("logs", name).stdout.contains("started") }
        let logs = await root.run("logs", name)
        #expect(done, "\(logs)")
        _ = await root.run("rm", "-f", name)
        for p in paths { #expect(!FileManager.default.fileExists(atPath: p), "\(p) left behind") }
    }
}
