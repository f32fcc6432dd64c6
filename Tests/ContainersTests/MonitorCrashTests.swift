import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// DESIGN rule 4: a monitor killed with SIGKILL takes its workload with it, and the next command
/// reconciles the state (exited) so that `rm` works and cleans up.
@Suite(.enabled(if: Harness.available, "needs root and a skiff binary (SKIFF_TEST_BIN)"))
struct MonitorCrashTests {
    init() throws { try Harness.setUp() }

    static func ppid(of pid: Int32) -> Int32? {
        guard let s = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        let line = s.split(separator: "\n").first { $0.hasPrefix("PPid:") }
        return line.flatMap { Int32($0.dropFirst(5).trimmingCharacters(in: .whitespaces)) }
    }

    static func comm(_ pid: Int32) -> String {
        ((try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) ?? "").trimmingCharacters(in: .newlines)
    }

    @Test func killedMonitorTakesTheWorkloadAndStateIsReconciled() async throws {
        let name = uniqueName("crash")
        let run = await skiff("run", "-d", "--name", name, "busybox", "sh", "-c", "sleep 1000 & sleep 1000")
        try #require(run.code == 0, "\(run)")
        let f = try await facts(name)
        try #require(processAlive(f.pid), "inspect's pid \(f.pid) is not alive")
        let monitor = try #require(Self.ppid(of: f.pid))
        #expect(Self.comm(monitor) == "skiff-monitor", "parent of the workload is \(monitor) (\(Self.comm(monitor)))")
        #expect(kill(monitor, SIGKILL) == 0)

        // Without any skiff command: the workload dies with its monitor.
        let died = await eventually(5) { !processAlive(f.pid) }
        #expect(died, "workload pid \(f.pid) survived its monitor")

        // The next ps -a shows it exited.
        let ps = await skiff("ps", "-a", "--format", "json")
        let row = ps.lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .first { ($0["Names"] as? String) == name }
        #expect(row?["State"] as? String == "exited", "\(ps)")
        #expect((row?["Status"] as? String)?.hasPrefix("Exited") == true, "\(ps)")
        // Every process of its cgroup is gone (the background sleep too).
        let leftCgroups = await cgroupDirs(f.id)
        #expect(leftCgroups.isEmpty, "cgroup left after reconcile: \(leftCgroups)")

        let rm = await skiff("rm", name)
        #expect(rm.code == 0, "\(rm)")
        await expectNoTrace(name: name, id: f.id, pid: f.pid)
    }
}
