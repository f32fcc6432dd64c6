import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Issue 3's acceptance: limits set on `run` and `update` are enforced by the kernel (tested here
/// through this host's v1 hierarchies), visible in `stats`, and `pause` really stops the workload.
@Suite(.enabled(if: Harness.available, "needs root and a skiff binary (SKIFF_TEST_BIN)"))
struct LimitsTests {
    init() throws { try Harness.setUp() }

    /// Reads a cgroup file of the container in the v1 hierarchy that holds `controller`.
    static func cgroupFile(_ f: ContainerFacts, _ controller: String, _ file: String) -> String? {
        guard let dir = f.cgroupPaths.first(where: { $0.contains("/\(controller)/") }) else { return nil }
        return (try? String(contentsOfFile: dir + "/" + file, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// 100 MB written to a tmpfs is charged to the container's memory: 64m is OOM-killed (exit 137,
    /// OOMKilled true), 256m is not.
    @Test func memoryLimitIsEnforcedAndOOMKillReported() async throws {
        let small = uniqueName("oom64")
        let big = uniqueName("oom256")
        defer { Task { await cleanup(small, big) } }
        let hog = ["dd", "if=/dev/zero", "of=/big/fill", "bs=1M", "count=100"]
        let a = await skiff(["run", "--name", small, "--memory", "64m", "--tmpfs", "/big:size=300m", "busybox"] + hog)
        #expect(a.code == 137, "\(a)")
        let sa = try await inspect(small)["State"] as? [String: Any]
        #expect(sa?["OOMKilled"] as? Bool == true, "\(String(describing: sa))")
        #expect((sa?["ExitCode"] as? NSNumber)?.intValue == 137)
        let b = await skiff(["run", "--name", big, "--memory", "256m", "--tmpfs", "/big:size=300m", "busybox"] + hog)
        #expect(b.code == 0 && b.stderr.contains("100+0 records out"), "\(b)")
        let sb = try await inspect(big)["State"] as? [String: Any]
        #expect(sb?["OOMKilled"] as? Bool == false)
    }

    /// `--pids-limit 20` stops a fork loop at 20 processes; the container's shell survives it and
    /// answers again once the loop's processes are gone.
    @Test func pidsLimitStopsAForkLoop() async throws {
        let name = uniqueName("pids")
        defer { Task { await cleanup(name) } }
        let run = await skiff(
            "run", "-d", "--name", name, "--pids-limit", "20", "busybox", "sh", "-c", "while :; do sleep 1; done")
        try #require(run.code == 0, "\(run)")
        let f = try await facts(name)
        #expect(Self.cgroupFile(f, "pids", "pids.max") == "20")
        // The loop itself runs in the container (exec joins its cgroup) and fails to fork past the limit.
        _ = await skiff("exec", name, "sh", "-c", "for i in $(seq 1 60); do sleep 1000 & done 2>/dev/null; wait")
        // The loop's shell gives up when a fork fails, so the count can fall back by one; the
        // kernel's pids.events "max" counts the forks it refused at the limit.
        let current = Int(Self.cgroupFile(f, "pids", "pids.current") ?? "") ?? -1
        #expect((19...20).contains(current), "pids.current \(current)")
        let refused = (Self.cgroupFile(f, "pids", "pids.events") ?? "").split(separator: " ").last.flatMap { Int($0) } ?? 0
        #expect(refused > 0, "no fork was refused at the limit")
        #expect(processAlive(f.pid), "PID 1 died under the fork loop")
        let stats = await skiff("stats", "--no-stream", "--format", "json", name)
        #expect(stats.code == 0 && stats.stdout.contains("\"PIDsLimit\":20"), "\(stats)")
        // Clear the loop's sleepers from the host; the shell answers again.
        for line in (Self.cgroupFile(f, "pids", "cgroup.procs") ?? "").split(separator: "\n") {
            guard let pid = Int32(line), pid != f.pid else { continue }
            let cmd = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? ""
            if cmd.contains("1000") { kill(pid, SIGKILL) }
        }
        let answered = await eventually(5) { (await skiff("exec", name, "echo", "alive")).out == "alive" }
        #expect(answered, "the container did not answer after the fork loop")
    }

    /// CPU usage measured from the cgroup over 3 s: `--cpus 0.5` gives half a CPU (±15 %), and
    /// `update --cpus 1` raises it.
    @Test func cpuQuotaIsEnforcedAndUpdatable() async throws {
        let name = uniqueName("cpu")
        do { try await cpuQuota(name) } catch {
            await cleanup(name)
            throw error
        }
        await cleanup(name)
    }

    private func cpuQuota(_ name: String) async throws {
        let run = await skiff("run", "-d", "--name", name, "--cpus", "0.5", "busybox", "sh", "-c", "while :; do :; done")
        try #require(run.code == 0, "\(run)")
        let f = try await facts(name)
        #expect(Self.cgroupFile(f, "cpu", "cpu.cfs_quota_us") == "50000")
        func usage() -> Double { Double(Self.cgroupFile(f, "cpuacct", "cpuacct.usage") ?? "0") ?? 0 }
        func share(over seconds: Double) async -> Double {
            let u0 = usage()
            let t0 = Date()
            try? await Task.sleep(for: .seconds(seconds))
            return (usage() - u0) / 1e9 / Date().timeIntervalSince(t0)
        }
        try await Task.sleep(for: .milliseconds(300))
        let half = await share(over: 3)
        #expect(abs(half - 0.5) <= 0.075, "measured \(half) CPUs with --cpus 0.5")
        let up = await skiff("update", "--cpus", "1", name)
        #expect(up.code == 0, "\(up)")
        #expect(Self.cgroupFile(f, "cpu", "cpu.cfs_quota_us") == "100000")
        try await Task.sleep(for: .milliseconds(300))
        let one = await share(over: 3)
        #expect(one > half * 1.4, "update --cpus 1 did not raise usage: \(half) → \(one)")
    }

    /// `pause` stops a counter; `unpause` lets it go on.
    @Test func pauseFreezesAndUnpauseResumes() async throws {
        let name = uniqueName("pause")
        let dir = tempDir("pause")
        defer { Task { await cleanup(name) } }
        let run = await skiff(
            "run", "-d", "--name", name, "-v", "\(dir):/out", "busybox", "sh", "-c",
            "i=0; while :; do i=$((i+1)); echo $i > /out/n.tmp; mv /out/n.tmp /out/n; sleep 0.05; done")
        try #require(run.code == 0, "\(run)")
        func counter() -> Int { Int((try? String(contentsOfFile: dir + "/n", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? -1 }
        _ = await eventually(5) { counter() > 3 }
        let p = await skiff("pause", name)
        #expect(p.code == 0, "\(p)")
        let ps = await skiff("ps", "--format", "json")
        #expect(ps.stdout.contains("\"paused\""), "\(ps.stdout)")
        let frozen = counter()
        try await Task.sleep(for: .milliseconds(600))
        #expect(counter() == frozen, "counter advanced while paused")
        let ex = await skiff("exec", name, "true")
        #expect(ex.code == 125 && ex.stderr.contains("paused"), "\(ex)")
        let u = await skiff("unpause", name)
        #expect(u.code == 0, "\(u)")
        let resumed = await eventually(5) { counter() > frozen }
        #expect(resumed, "counter did not advance after unpause")
    }

    /// A limit the host cannot enforce is an error naming it, and nothing is left behind.
    @Test func badLimitsAreRefusedClearly() async throws {
        let r = await skiff("run", "--rm", "--memory", "lots", "busybox", "true")
        #expect(r.code == 125 && r.stderr.contains("--memory"), "\(r)")
        let s = await skiff("run", "--rm", "--memory-swap", "1g", "busybox", "true")
        #expect(s.code == 125 && s.stderr.contains("--memory"), "\(s)")
        let c = await skiff("run", "--rm", "--cpus", "zero", "busybox", "true")
        #expect(c.code == 125 && c.stderr.contains("--cpus"), "\(c)")
    }

    /// A refused `update` changes nothing (it used to leave the CPU quota half-applied), and
    /// `-1` works as a separate argument, as with docker.
    @Test func refusedUpdateChangesNothing() async throws {
        let name = uniqueName("upd")
        defer { Task { await cleanup(name) } }
        let run = await skiff(
            "run", "-d", "--name", name, "--cpus", "0.5", "--memory", "128m", "--memory-swap", "128m", "--pids-limit", "-1",
            "busybox", "sleep", "1000")
        try #require(run.code == 0, "\(run)")
        let f = try await facts(name)
        let bad = await skiff("update", "--cpus", "1.5", "--memory", "512m", name)
        #expect(bad.code == 1 && bad.stderr.contains("--memory-swap"), "\(bad)")
        #expect(Self.cgroupFile(f, "cpu", "cpu.cfs_quota_us") == "50000")
        #expect(Self.cgroupFile(f, "memory", "memory.limit_in_bytes") == String(128 << 20))
        let quota = ((try await inspect(name)["Spec"] as? [String: Any])?["linux"] as? [String: Any])
            .flatMap { $0["resources"] as? [String: Any] }.flatMap { $0["cpu"] as? [String: Any] }?["quota"] as? NSNumber
        #expect(quota?.intValue == 50_000, "inspect shows \(String(describing: quota))")
        let ok = await skiff("update", "--memory-swap", "-1", "--memory", "256m", name)
        #expect(ok.code == 0, "\(ok)")
        #expect(Self.cgroupFile(f, "memory", "memory.limit_in_bytes") == String(256 << 20))
    }

    /// `kill` of a paused container takes effect (the container is thawed for the signal).
    @Test func killOfAPausedContainerKillsIt() async throws {
        let name = uniqueName("pkill")
        defer { Task { await cleanup(name) } }
        let run = await skiff("run", "-d", "--name", name, "busybox", "sleep", "1000")
        try #require(run.code == 0, "\(run)")
        let f = try await facts(name)
        #expect((await skiff("pause", name)).code == 0)
        #expect((await skiff("kill", name)).code == 0)
        let died = await eventually(5) { !processAlive(f.pid) }
        #expect(died, "a killed paused container kept running")
    }
}
