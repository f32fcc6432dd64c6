import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A container whose setup fails inside (unknown user, unusable working directory) must give the
/// user a message and Docker's code, and `--rm` must leave nothing behind.
@Suite(.enabled(if: Harness.available, "needs root and a skiff binary (SKIFF_TEST_BIN)"))
struct StartFailureTests {
    init() throws { try Harness.setUp() }

    static func leftovers(_ name: String) async -> [String] {
        await skiff("ps", "-a").lines.filter { $0.hasSuffix(" " + name) }
    }

    @Test func unknownUserIsReportedAndRmCleansUp() async {
        let name = uniqueName("nouser")
        let r = await skiff("run", "--rm", "--name", name, "-u", "nosuchuser", "busybox", "true")
        #expect(r.code != 141, "skiff was killed by SIGPIPE: \(r)")
        #expect(r.code == 125 || r.code == 126, "\(r)")
        #expect(r.stderr.contains("nosuchuser"), "no message naming the user: \(r)")
        let left = await Self.leftovers(name)
        #expect(left.isEmpty, "--rm container left behind: \(left)")
        await cleanup(name)
    }

    /// Docker creates a missing working directory even with --read-only; at the least the
    /// failure must be reported.
    @Test func workdirOnReadOnlyRoot() async {
        let name = uniqueName("rowd")
        let r = await skiff("run", "--rm", "--name", name, "--read-only", "-w", "/newdir", "busybox", "pwd")
        #expect(r.code != 141, "skiff was killed by SIGPIPE: \(r)")
        #expect((r.code == 0 && r.out == "/newdir") || (r.code == 125 && r.stderr.contains("/newdir")), "\(r)")
        let left = await Self.leftovers(name)
        #expect(left.isEmpty, "--rm container left behind: \(left)")
        await cleanup(name)
    }

    /// Detached: the failure comes back to `run -d` and no monitor, cgroup or running state stays.
    @Test func detachedUnknownUser() async throws {
        let name = uniqueName("dnouser")
        let r = await skiff("run", "-d", "--name", name, "-u", "nosuchuser", "busybox", "sleep", "100")
        #expect(r.code == 125 || r.code == 126, "\(r)")
        #expect(r.stderr.contains("nosuchuser"), "\(r)")
        if let f = try? await facts(name) {
            #expect(f.status != "running", "\(f)")
            let cgs = await cgroupDirs(f.id)
            #expect(cgs.isEmpty, "cgroup left after a failed start: \(cgs)")
        }
        await cleanup(name)
    }

    /// The foreground `skiff run` is the monitor: SIGKILL it and the workload dies, the next
    /// `ps -a` shows the container exited, and `rm` cleans up.
    @Test func killedForegroundMonitor() async throws {
        let name = uniqueName("fgkill")
        async let fg = skiff("run", "--name", name, "busybox", "sleep", "1000")
        let up = await eventually(30) { (try? await facts(name))?.status == "running" }
        try #require(up)
        let f = try await facts(name)
        let monitor = try #require(MonitorCrashTests.ppid(of: f.pid))
        #expect(kill(monitor, SIGKILL) == 0)
        let out = await fg
        #expect(out.code == 137, "\(out)")
        let died = await eventually(5) { !processAlive(f.pid) }
        #expect(died, "workload survived its foreground monitor")
        let g = try await facts(name)
        #expect(g.status == "exited", "\(g)")
        let rm = await skiff("rm", name)
        #expect(rm.code == 0, "\(rm)")
        await expectNoTrace(name: name, id: f.id, pid: f.pid)
    }

    /// `--init`'s PID 1 must not show the host's skiff command line (host paths, flags) to the
    /// workload.
    @Test func initDoesNotExposeHostCommandLine() async {
        let r = await skiff("run", "--rm", "--init", "busybox", "sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline; echo")
        #expect(r.code == 0, "\(r)")
        #expect(
            !r.stdout.contains(Harness.binary) && !r.stdout.contains("--init"),
            "host argv visible as PID 1's cmdline: \(r)")
    }
}
