import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Bugs a first user found; each test fails on the code before its fix.
@Suite(.enabled(if: Harness.available, "needs root and a skiff binary (SKIFF_TEST_BIN)"))
struct RegressionTests {
    init() throws { try Harness.setUp() }

    /// `load` of a file that is not an archive: a clear error (it used to crash with a double
    /// free) and no temporary directory left in the state root.
    @Test func loadingANonArchiveIsAnErrorNotACrash() async throws {
        let root = tempDir("badload")
        let file = root + "/not-a-tar"
        try "hello\n".write(toFile: file, atomically: true, encoding: .utf8)
        let r = await skiff(["load", file], root: root + "/state")
        #expect(r.code == 125, "\(r)")
        #expect(r.stderr.contains(file), "the error names the file: \(r.stderr)")
        let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: root + "/state/tmp")) ?? []
        #expect(leftovers.isEmpty, "left behind: \(leftovers)")
    }

    /// `run -d --init` returns once the workload runs (it used to wait for its exit), and the init
    /// holds no host descriptor (it used to keep the state database open).
    @Test func detachedInitReturnsAndHoldsNoHostFiles() async throws {
        let name = uniqueName("dinit")
        defer { Task { await cleanup(name) } }
        let run = await skiff("run", "-d", "--init", "--name", name, "busybox", "sleep", "1000", timeout: 30)
        try #require(run.code == 0 && !run.timedOut, "\(run)")
        let ps = await skiff("ps", "--format", "json")
        #expect(ps.stdout.contains("\"\(name)\""), "not running after run -d returned: \(ps.stdout)")
        let fds = await skiff("exec", name, "ls", "/proc/1/fd")
        #expect(fds.code == 0, "\(fds)")
        #expect(fds.lines.sorted() == ["0", "1", "2"], "init's descriptors: \(fds.lines)")
        let cmdline = await skiff("exec", name, "cat", "/proc/1/cmdline")
        #expect(!cmdline.stdout.contains("--name"), "init shows skiff's command line: \(cmdline.stdout)")
    }

    /// The spec's `noNewPrivileges` reaches the workload and exec'd processes.
    @Test func noNewPrivilegesIsSet() async throws {
        let r = await skiff("run", "--rm", "busybox", "grep", "NoNewPrivs", "/proc/self/status")
        #expect(r.out.hasSuffix("1"), "\(r)")
    }

    /// `--help` after `run`, `create` and `exec` shows help (it used to be taken as an image name).
    @Test func helpAfterPassthroughCommands() async throws {
        for cmd in ["run", "create", "exec"] {
            let r = await skiff(cmd, "--help")
            #expect(r.code == 0 && r.stdout.contains("OVERVIEW"), "\(cmd) --help: \(r)")
        }
    }

    /// `stop A B` with A unknown still stops B, and exits 1.
    @Test func stopGoesOnAfterAnUnknownName() async throws {
        let name = uniqueName("stopall")
        defer { Task { await cleanup(name) } }
        let run = await skiff("run", "-d", "--name", name, "busybox", "sleep", "1000")
        try #require(run.code == 0, "\(run)")
        let stop = await skiff("stop", "-t", "1", "no-such-container-\(name)", name)
        #expect(stop.code == 1, "\(stop)")
        #expect(stop.stderr.contains("no such container"), "\(stop)")
        let f = try await inspect(name)
        let state = f["State"] as? [String: Any]
        #expect(state?["Status"] as? String == "exited", "\(String(describing: state))")
    }

    /// A `--rm` container whose monitor was SIGKILLed is removed by the next command (it used to
    /// stay in `ps -a` forever).
    @Test func autoRemoveContainerOfADeadMonitorIsRemoved() async throws {
        let name = uniqueName("rmdead")
        let run = await skiff("run", "-d", "--rm", "--name", name, "busybox", "sleep", "1000")
        try #require(run.code == 0, "\(run)")
        let id = run.out
        let f = try await facts(name)
        let monitor = try #require(MonitorCrashTests.ppid(of: f.pid))
        #expect(kill(monitor, SIGKILL) == 0)
        _ = await eventually(5) { !processAlive(f.pid) }
        let ps = await skiff("ps", "-a")
        #expect(!ps.stdout.contains(name), "still listed: \(ps.stdout)")
        await expectNoTrace(name: name, id: id, pid: f.pid)
    }

    /// `-it` needs a terminal on stdin, as with docker.
    @Test func interactiveTTYNeedsATerminal() async throws {
        let r = await skiff("run", "--rm", "-it", "busybox", "true", stdin: "")
        #expect(r.code == 125, "\(r)")
        #expect(r.stderr.contains("not a TTY"), "\(r)")
    }

    /// Host-wide kernel knobs are out of reach: /proc/sys is read-only (a container could rewrite
    /// the host's core_pattern before) and /proc/keys and /proc/timer_list read empty.
    @Test(arguments: UserNS.modes) func kernelPathsAreReadOnlyOrMasked(userns: String) async throws {
        let before = try String(contentsOfFile: "/proc/sys/kernel/core_pattern", encoding: .utf8)
        let r = await skiff(
            ["run", "--rm"] + UserNS.flags(userns) + [
                "busybox", "sh", "-c",
                "echo '|/tmp/evil' > /proc/sys/kernel/core_pattern; echo write=$?; wc -c < /proc/keys; wc -c < /proc/timer_list",
            ])
        #expect(r.lines.first == "write=1", "\(r)")
        #expect(Array(r.lines.dropFirst()).map { $0.trimmingCharacters(in: .whitespaces) } == ["0", "0"], "\(r)")
        let after = try String(contentsOfFile: "/proc/sys/kernel/core_pattern", encoding: .utf8)
        #expect(before == after, "host core_pattern changed to \(after)")
    }

    /// The first process is in the container's cgroup in every hierarchy (v2 from birth through
    /// clone3 CLONE_INTO_CGROUP, v1 by its own move), and its cgroup namespace is rooted there.
    @Test(arguments: UserNS.modes) func workloadIsInItsCgroupEverywhere(userns: String) async throws {
        let name = uniqueName("cgall")
        defer { Task { await cleanup(name) } }
        let run = await skiff(["run", "-d", "--name", name] + UserNS.flags(userns) + ["busybox", "sleep", "1000"])
        try #require(run.code == 0, "\(run)")
        let f = try await facts(name)
        let lines = try String(contentsOfFile: "/proc/\(f.pid)/cgroup", encoding: .utf8).split(separator: "\n")
        #expect(!lines.isEmpty)
        for line in lines {
            #expect(line.hasSuffix("/skiff-\(f.id)"), "not in its cgroup: \(line)")
        }
        let inside = await skiff("exec", name, "cat", "/proc/self/cgroup")
        #expect(inside.lines.allSatisfy { $0.hasSuffix(":/") }, "cgroup namespace not rooted at the container: \(inside.stdout)")
    }
}
