import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Detached containers: run -d, ps, logs, exec, kill, stop, start, inspect, rm.
@Suite(.enabled(if: Harness.available, "needs root and a skiff binary (SKIFF_TEST_BIN)"))
struct LifecycleTests {
    /// `logs -f` whose reader goes away (`| head`) ends at once with 141, as a process killed
    /// by SIGPIPE does (skiff ignores SIGPIPE and sees EPIPE), instead of following forever.
    @Test func logsFollowEndsWhenItsReaderGoes() async throws {
        let name = uniqueName("logpipe")
        let run = await skiff("run", "-d", "--name", name, "busybox", "sh", "-c", "while :; do echo tick; sleep 0.05; done")
        #expect(run.code == 0, "\(run)")
        defer { Task { await cleanup(name) } }
        let piped = await runAsync(
            ["/bin/bash", "-c", "set -o pipefail; \(Harness.binary) logs -f \(name) | head -n 2"],
            env: ["SKIFF_ROOT": Harness.stateRoot], timeout: 30)
        #expect(piped.code == 141 && piped.lines == ["tick", "tick"], "\(piped)")
        // Also when the container has gone quiet: no write would fail, so logs watches its output.
        let quiet = uniqueName("logquiet")
        let q = await skiff("run", "-d", "--name", quiet, "busybox", "sh", "-c", "echo a; echo b; echo c; sleep 1000")
        #expect(q.code == 0, "\(q)")
        defer { Task { await cleanup(quiet) } }
        _ = await eventually(5) { await skiff("logs", quiet).lines.count == 3 }
        let head = await runAsync(
            ["/bin/bash", "-c", "set -o pipefail; \(Harness.binary) logs -f \(quiet) | head -n 2"],
            env: ["SKIFF_ROOT": Harness.stateRoot], timeout: 30)
        #expect(head.code == 141 && head.lines == ["a", "b"], "\(head)")
    }

    /// `stop -t -1` waits as long as it takes (Docker's -1): the container is still running
    /// while it waits, and the stop returns when something else ends it.
    @Test func stopWithANegativeTimeoutNeverKills() async throws {
        let name = uniqueName("stopwait")
        let run = await skiff("run", "-d", "--name", name, "busybox", "sh", "-c", "trap '' TERM; sleep 1000")
        #expect(run.code == 0, "\(run)")
        defer { Task { await cleanup(name) } }
        async let stop = skiff("stop", "-t", "-1", name, timeout: 60)
        try await Task.sleep(for: .seconds(2))
        #expect(try await facts(name).status == "running", "stop -t -1 killed at once")
        let kill = await skiff("kill", name)
        #expect(kill.code == 0, "\(kill)")
        let stopped = await stop
        #expect(stopped.code == 0 && stopped.lines == [name], "\(stopped)")
    }

    init() throws { try Harness.setUp() }

    /// An RFC 3339 time as `inspect` writes it (nanoseconds, `Z`), to the millisecond.
    static func rfc3339(_ text: String) -> Date? {
        guard let dot = text.firstIndex(of: ".") else { return ISO8601DateFormatter().date(from: text) }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: String(text[..<dot]) + "." + text[text.index(after: dot)...].prefix(3) + "Z")
    }

    static func isFullID(_ s: String) -> Bool {
        s.count == 64 && s.allSatisfy { $0.isHexDigit && !$0.isUppercase }
    }

    /// `ps --format json` rows (one JSON object per line).
    static func psRows(all: Bool = true) async throws -> [[String: Any]] {
        let r = await skiff(all ? ["ps", "-a", "--format", "json"] : ["ps", "--format", "json"])
        guard r.code == 0 else { throw TestFailure("ps failed: \(r)") }
        return try r.lines.map { line in
            guard let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                throw TestFailure("ps --format json line is not an object: \(line)")
            }
            return o
        }
    }

    static func psRow(_ name: String, all: Bool = true) async throws -> [String: Any]? {
        try await psRows(all: all).first { ($0["Names"] as? String) == name }
    }

    @Test func detachedLifecycle() async throws {
        let name = uniqueName("life")
        let run = await skiff(
            "run", "-d", "--name", name, "busybox", "sh", "-c", "echo started; echo to-stderr >&2; sleep 1000")
        #expect(run.code == 0, "\(run)")
        let id = run.out
        #expect(Self.isFullID(id), "run -d prints the 64-hex ID: \(run)")

        // ps (table and json) lists it Up.
        let table = await skiff("ps")
        let line = table.lines.first { $0.hasSuffix(name) } ?? ""
        #expect(line.hasPrefix(String(id.prefix(12))) && line.contains("Up"), "\(table)")
        let row = try await Self.psRow(name, all: false)
        #expect(row?["ID"] as? String == String(id.prefix(12)), "\(String(describing: row))")
        #expect((row?["Status"] as? String)?.hasPrefix("Up") == true, "\(String(describing: row))")
        #expect(row?["State"] as? String == "running")

        // logs, both streams, and --tail.
        let gotLog = await eventually(5) { await skiff("logs", name).stdout.contains("started") }
        #expect(gotLog)
        let logs = await skiff("logs", name)
        #expect(logs.stdout == "started\n", "\(logs)")
        #expect(logs.stderr == "to-stderr\n", "\(logs)")
        _ = await skiff("exec", name, "sh", "-c", "echo second > /proc/1/fd/1; echo third > /proc/1/fd/1")
        let tailOK = await eventually(5) { await skiff("logs", "--tail", "1", name).stdout == "third\n" }
        let tail = await skiff("logs", "--tail", "1", name)
        #expect(tailOK, "logs --tail 1: \(tail)")

        // inspect: spec, pid, state.
        let f = try await facts(name)
        #expect(f.id == id)
        #expect(f.status == "running")
        #expect(f.pid > 1 && processAlive(f.pid), "inspect's pid \(f.pid) is not a live process")
        let doc = try await inspect(name)
        let spec = doc["Spec"] as? [String: Any]
        let args = (spec?["process"] as? [String: Any])?["args"] as? [String]
        #expect(args == ["sh", "-c", "echo started; echo to-stderr >&2; sleep 1000"], "\(String(describing: spec))")
        #expect((doc["State"] as? [String: Any])?["Running"] as? Bool == true)
        #expect((doc["OCIState"] as? [String: Any])?["status"] as? String == "running")
        #expect((doc["Name"] as? String) == name)
        // The recorded cgroups exist and hold the workload.
        let cgs = f.cgroupPaths
        #expect(!cgs.isEmpty)
        for cg in cgs {
            let procs = (try? String(contentsOfFile: cg + "/cgroup.procs", encoding: .utf8)) ?? ""
            #expect(procs.split(separator: "\n").contains(Substring(String(f.pid))), "\(cg) does not hold pid \(f.pid)")
        }

        // exec runs inside the PID namespace and propagates the exit code.
        let pidInside = await skiff("exec", name, "sh", "-c", "echo $$")
        #expect(pidInside.code == 0, "\(pidInside)")
        if let p = Int(pidInside.out) {
            #expect(p < 100 && p != Int(f.pid), "exec'd shell has pid \(p): not in the container's pid namespace")
        } else {
            Issue.record("exec printed no pid: \(pidInside)")
        }
        let host = await skiff("exec", name, "hostname")
        #expect(host.out == String(id.prefix(12)), "\(host)")
        let code = await skiff("exec", name, "sh", "-c", "exit 5")
        #expect(code.code == 5, "\(code)")
        let missing = await skiff("exec", name, "nosuchcmd")
        #expect(missing.code == 127, "\(missing)")
        #expect(missing.stderr.contains("nosuchcmd"), "\(missing)")
        let opts = await skiff(
            "exec", "-e", "X=42", "-w", "/tmp", "-u", "1000:1000", name, "sh", "-c", "echo $X; pwd; id -u; id -g")
        #expect(opts.code == 0, "\(opts)")
        #expect(opts.lines == ["42", "/tmp", "1000", "1000"], "\(opts)")
        let byName = await skiff("exec", "-u", "app", name, "id", "-un")
        #expect(byName.out == "app", "\(byName)")
        let stdin = await skiff("exec", "-i", name, "cat", stdin: "piped\n")
        #expect(stdin.stdout == "piped\n", "\(stdin)")

        // ID prefix selects the container.
        let byPrefix = await skiff("exec", String(id.prefix(10)), "true")
        #expect(byPrefix.code == 0, "\(byPrefix)")

        // rm without -f is refused while running and changes nothing.
        let refused = await skiff("rm", name)
        #expect(refused.code != 0, "\(refused)")
        #expect(refused.stderr.contains(name) && refused.stderr.contains("running"), "\(refused)")
        #expect(processAlive(f.pid))

        // kill -s TERM is delivered (killTermReachesAHandler checks the effect); a PID 1 without
        // a TERM handler ignores it, as the kernel does for every PID namespace's init.
        let term = await skiff("kill", "-s", "TERM", name)
        #expect(term.code == 0, "\(term)")

        let rm = await skiff("rm", "-f", name)
        #expect(rm.code == 0, "\(rm)")
        await expectNoTrace(name: name, id: id, pid: f.pid)
    }

    @Test func killTermReachesAHandler() async throws {
        let name = uniqueName("term")
        let run = await skiff(
            "run", "-d", "--name", name, "busybox", "sh", "-c",
            "trap 'echo got-term; exit 143' TERM; echo ready; while true; do sleep 0.1; done")
        #expect(run.code == 0, "\(run)")
        _ = await eventually(5) { await skiff("logs", name).stdout.contains("ready") }
        let k = await skiff("kill", "-s", "TERM", name)
        #expect(k.code == 0, "\(k)")
        let done = await eventually(10) { (try? await Self.psRow(name))?["State"] as? String == "exited" }
        #expect(done)
        let row = try await Self.psRow(name)
        #expect((row?["Status"] as? String)?.hasPrefix("Exited (143)") == true, "\(String(describing: row))")
        let logs = await skiff("logs", name)
        #expect(logs.stdout.contains("got-term"), "\(logs)")
        // kill on an exited container is an error.
        let again = await skiff("kill", name)
        #expect(again.code != 0, "\(again)")
        await cleanup(name)
    }

    /// `stop A B C` stops them at once, as docker stop does: three containers that ignore
    /// SIGTERM take one timeout (3 s), not three (9 s). A name that does not exist is reported
    /// (exit 1) and the others are still stopped.
    @Test func stopHandlesSeveralContainersAtOnce() async throws {
        let names = (0..<3).map { _ in uniqueName("stopall") }
        for name in names {
            let run = await skiff("run", "-d", "--name", name, "busybox", "sh", "-c", "trap '' TERM; sleep 1000")
            #expect(run.code == 0, "\(run)")
        }
        defer { Task { for name in names { await cleanup(name) } } }
        let stop = await skiff(["stop", "-t", "3"] + names + ["no-such-container-stopall"], timeout: 60)
        #expect(stop.code == 1 && stop.stderr.contains("no-such-container-stopall"), "\(stop)")
        #expect(stop.lines == names, "each stopped name, in the order given: \(stop)")
        // When each was killed (State.FinishedAt): together after the one timeout, where one after
        // the other would put them 3 s apart.
        var finished: [Date] = []
        for name in names {
            let row = try await Self.psRow(name)
            #expect((row?["Status"] as? String)?.hasPrefix("Exited (137)") == true, "\(String(describing: row))")
            let state = try await inspect(name)["State"] as? [String: Any]
            if let text = state?["FinishedAt"] as? String, let at = Self.rfc3339(text) { finished.append(at) }
        }
        #expect(finished.count == names.count)
        if let first = finished.min(), let last = finished.max() {
            #expect(last.timeIntervalSince(first) < 2, "killed \(last.timeIntervalSince(first)) s apart: \(finished)")
        }
    }

    @Test func stopKillsAfterGracePeriodThenStartRunsAgain() async throws {
        let name = uniqueName("stop")
        let run = await skiff("run", "-d", "--name", name, "busybox", "sh", "-c", "trap '' TERM; echo run; sleep 1000")
        #expect(run.code == 0, "\(run)")
        let id = run.out
        let f = try await facts(name)
        let start = Date()
        let stop = await skiff("stop", "-t", "1", name, timeout: 30)
        let took = Date().timeIntervalSince(start)
        #expect(stop.code == 0, "\(stop)")
        #expect(took >= 0.9, "stop -t 1 took \(took) s: it did not wait for the grace period")
        #expect(!processAlive(f.pid), "pid \(f.pid) survived stop")
        let row = try await Self.psRow(name)
        #expect((row?["Status"] as? String)?.hasPrefix("Exited (137)") == true, "\(String(describing: row))")
        let table = await skiff("ps", "-a")
        #expect(table.lines.contains { $0.hasSuffix(name) && $0.contains("Exited (137)") }, "\(table)")
        let notRunning = await skiff("ps")
        #expect(!notRunning.stdout.contains(name), "\(notRunning)")
        let exited = try await inspect(name)
        let st = exited["State"] as? [String: Any]
        #expect(st?["Running"] as? Bool == false)
        #expect((st?["ExitCode"] as? NSNumber)?.intValue == 137)
        // No cgroup survives a stopped container.
        let leftCgroups = await cgroupDirs(id)
        #expect(leftCgroups.isEmpty, "\(leftCgroups)")

        // exec into a stopped container: refused, 125, says why.
        let ex = await skiff("exec", name, "true")
        #expect(ex.code == 125, "\(ex)")
        #expect(ex.stderr.contains("not running"), "\(ex)")

        // start runs it again: a new process, Up, log appended.
        let again = await skiff("start", name)
        #expect(again.code == 0, "\(again)")
        let g = try await facts(name)
        #expect(g.status == "running" && g.pid != f.pid && processAlive(g.pid), "\(g)")
        let logged = await eventually(5) { await skiff("logs", name).lines.filter { $0 == "run" }.count == 2 }
        let logsNow = await skiff("logs", name)
        #expect(logged, "\(logsNow)")
        let rm = await skiff("rm", "-f", name)
        #expect(rm.code == 0, "\(rm)")
        await expectNoTrace(name: name, id: id, pid: g.pid)
    }

    @Test func rmOfExitedContainerCleansUp() async throws {
        let name = uniqueName("exited")
        let run = await skiff("run", "--name", name, "busybox", "sh", "-c", "echo bye; exit 2")
        #expect(run.code == 2, "\(run)")
        let f = try await facts(name)
        #expect(f.status == "exited")
        let row = try await Self.psRow(name)
        #expect((row?["Status"] as? String)?.hasPrefix("Exited (2)") == true, "\(String(describing: row))")
        let rm = await skiff("rm", name)
        #expect(rm.code == 0, "\(rm)")
        await expectNoTrace(name: name, id: f.id, pid: 0)
    }

    @Test func createThenStart() async throws {
        let name = uniqueName("create")
        let c = await skiff("create", "--name", name, "busybox", "sh", "-c", "echo created-and-started; sleep 1000")
        #expect(c.code == 0, "\(c)")
        #expect(Self.isFullID(c.out), "\(c)")
        let row = try await Self.psRow(name)
        #expect(row?["Status"] as? String == "Created", "\(String(describing: row))")
        let s = await skiff("start", name)
        #expect(s.code == 0, "\(s)")
        let started = await eventually(5) { await skiff("logs", name).stdout.contains("created-and-started") }
        #expect(started)
        let f = try await facts(name)
        #expect(f.status == "running")
        _ = await skiff("rm", "-f", name)
        await expectNoTrace(name: name, id: f.id, pid: f.pid)
    }

    @Test func duplicateNameIsRefused() async throws {
        let name = uniqueName("dup")
        let first = await skiff("run", "-d", "--name", name, "busybox", "sleep", "1000")
        #expect(first.code == 0, "\(first)")
        let second = await skiff("run", "-d", "--name", name, "busybox", "sleep", "1000")
        #expect(second.code == 125, "\(second)")
        #expect(second.stderr.contains(name) && second.stderr.contains("in use"), "\(second)")
        let rows = try await Self.psRows().filter { ($0["Names"] as? String) == name }
        #expect(rows.count == 1, "\(rows)")
        await cleanup(name)
    }

    @Test func unknownContainerIsAnError() async {
        let r = await skiff("inspect", "no-such-container-xyz")
        #expect(r.code != 0, "\(r)")
        #expect(r.stderr.contains("no-such-container-xyz"), "\(r)")
        let e = await skiff("exec", "no-such-container-xyz", "true")
        #expect(e.code == 125, "\(e)")
        let l = await skiff("logs", "no-such-container-xyz")
        #expect(l.code != 0, "\(l)")
    }
}
