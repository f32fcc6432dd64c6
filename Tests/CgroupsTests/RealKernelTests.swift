import Glibc
import Testing

@testable import Cgroups

/// Whether the real-kernel tests can run: root and a writable /sys/fs/cgroup. The reason is
/// printed by Swift Testing when they are skipped.
let realCgroupsAvailable: Bool = {
    getuid() == 0 && access("/sys/fs/cgroup", W_OK) == 0 && (try? CgroupLayout.detect()) != nil
}()
let skipReason: Comment = "needs root and a writable /sys/fs/cgroup (real cgroup hierarchies)"

/// A child process started with posix_spawn (safe in this multi-threaded test process).
struct Child {
    let pid: pid_t

    init(_ argv: [String]) throws {
        var cargs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for p in cargs { free(p) } }
        // The test runner blocks some signals; give the child an empty mask and default handlers.
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attr, &empty)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], nil, &attr, &cargs, environ)
        guard rc == 0 else { throw CgroupError.unsupported(operation: "posix_spawn \(argv[0])", reason: "errno \(rc)") }
        self.pid = pid
    }

    /// Reaps the child; returns the signal that killed it, or 0 when it exited.
    func reap() -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return (status & 0x7f) != 0 && (status & 0x7f) != 0x7f ? status & 0x7f : 0
    }

    /// Field 3 (state) and fields 14+15 (utime+stime, clock ticks) of /proc/PID/stat.
    func stat() -> (state: Character, cpuTicks: Int)? {
        guard let text = try? CgroupFiles.read("/proc/\(pid)/stat"), let close = text.lastIndex(of: ")") else {
            return nil
        }
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let state = fields[0].first, let u = Int(fields[11]), let s = Int(fields[12]) else {
            return nil
        }
        return (state, u + s)
    }

    /// The process's /proc/PID/cgroup lines.
    func cgroups() -> [String] {
        ((try? CgroupFiles.read("/proc/\(pid)/cgroup")) ?? "").split(separator: "\n").map(String.init)
    }
}

func uniqueName(_ prefix: String) -> String {
    "skiff-test-\(prefix)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
}

func sleepMs(_ ms: Int) { CgroupFiles.sleep(milliseconds: ms) }

@Suite(.serialized, .enabled(if: realCgroupsAvailable, skipReason))
struct RealKernel {
    @Test func fullLifecycleInEveryHierarchy() throws {
        let layout = try CgroupLayout.detect()
        let cgroup = try Cgroup.create(name: uniqueName("life"), layout: layout)
        defer {
            try? cgroup.kill()
            try? cgroup.remove()
        }
        #expect(cgroup.directories.count == layout.hierarchies.count)
        for (directory, hierarchy) in zip(cgroup.directories, layout.hierarchies) {
            #expect(FileManagerless.exists(directory.path))
            // Directly below the test process's own cgroup, never the root itself.
            #expect(directory.path.hasPrefix((hierarchy.ownDirectory ?? "?") + "/"))
            #expect(directory.path != hierarchy.mountPoint)
        }
        if let cpuset = cgroup.v1("cpuset") {
            #expect(try CgroupFiles.readLine(cpuset.file("cpuset.cpus")) != "")
            #expect(try CgroupFiles.readLine(cpuset.file("cpuset.mems")) != "")
        }

        // A busy loop, so freezing is visible as CPU time that stops growing.
        let child = try Child(["/bin/sh", "-c", "while :; do :; done"])
        var reaped = false
        defer {
            if !reaped {
                Glibc.kill(child.pid, SIGKILL)
                _ = child.reap()
            }
        }
        let files = try cgroup.procsFiles()
        #expect(files.fds.count == cgroup.directories.count)
        try files.join(pid: child.pid)
        files.close()

        // The kernel shows the process in our cgroup in every hierarchy.
        let lines = child.cgroups()
        for directory in cgroup.directories {
            #expect(lines.contains { $0.hasSuffix(":" + directory.cgroupPath) }, "\(directory.path) not in \(lines)")
        }
        #expect(try cgroup.pids() == [child.pid])
        #expect(try cgroup.isPopulated)
        #expect(try cgroup.pidsCurrent() >= 1)
        if layout.hierarchy(for: "memory") != nil { #expect(try cgroup.memoryCurrent() != nil) }
        sleepMs(100)
        #expect(try (cgroup.cpuUsageMicroseconds() ?? 0) > 0)

        try cgroup.freeze()
        #expect(try cgroup.freezerState() == .frozen)
        if let freezer = cgroup.v1("freezer") {
            #expect(try CgroupFiles.readLine(freezer.file("freezer.state")) == "FROZEN")
            #expect(child.stat()?.state == "D")  // v1 frozen tasks sleep uninterruptibly
        }
        let frozenTicks = child.stat()?.cpuTicks ?? -1
        sleepMs(300)
        #expect(child.stat()?.cpuTicks == frozenTicks, "a frozen process must not use CPU")

        try cgroup.thaw()
        #expect(try cgroup.freezerState() == .thawed)
        sleepMs(300)
        #expect((child.stat()?.cpuTicks ?? 0) > frozenTicks, "a thawed process runs again")

        try cgroup.kill(signal: SIGKILL)
        #expect(try cgroup.pids().isEmpty)
        #expect(try !cgroup.isPopulated)
        #expect(child.reap() == SIGKILL)
        reaped = true
        #expect(Glibc.kill(child.pid, 0) != 0 && errno == ESRCH)

        try cgroup.remove()
        for directory in cgroup.directories { #expect(!FileManagerless.exists(directory.path)) }
    }

    /// Through the v1 freezer (full hybrid layout) and through v2 `cgroup.freeze` (unified only).
    @Test(arguments: [false, true]) func otherSignalsAreDeliveredThroughTheFreezer(v2Only: Bool) throws {
        var layout = try CgroupLayout.detect()
        if v2Only { layout.hierarchies.removeAll { $0.version == .v1 } }
        try #require(!layout.hierarchies.isEmpty)
        let cgroup = try Cgroup.create(name: uniqueName("term"), layout: layout)
        defer {
            try? cgroup.kill()
            try? cgroup.remove()
        }
        let child = try Child(["/bin/sleep", "30"])
        try cgroup.join(pid: child.pid)
        try cgroup.kill(signal: SIGTERM)
        #expect(child.reap() == SIGTERM)
        #expect(try cgroup.waitEmpty(timeout: .seconds(2)))
        // After delivery the freezer is thawed again.
        #expect(try cgroup.freezerState() == .thawed)
        try cgroup.remove()
    }

    @Test func removeFailsWhileProcessesLiveAndSaysWhich() throws {
        let cgroup = try Cgroup.create(name: uniqueName("busy"))
        defer {
            try? cgroup.kill()
            try? cgroup.remove()
        }
        let child = try Child(["/bin/sleep", "30"])
        try cgroup.join(pid: child.pid)
        do {
            try cgroup.remove(timeout: .milliseconds(50))
            Issue.record("remove succeeded with a live process inside")
        } catch {
            guard case .remove(_, let e, let remaining) = error else { throw error }
            #expect(e == EBUSY)
            #expect(remaining.contains("pid \(child.pid) (sleep)"))
            #expect(error.description.contains("skiff kill"))
        }
        try cgroup.kill()
        #expect(child.reap() == SIGKILL)
        try cgroup.remove()
        for directory in cgroup.directories { #expect(!FileManagerless.exists(directory.path)) }
    }

    /// The v1 path on its own (as on legacy hosts): SIGKILL through freeze, signal, thaw, with a
    /// process tree and a child cgroup, then remove the tree deepest first.
    @Test func v1OnlyKillLoopAndNestedRemove() throws {
        var layout = try CgroupLayout.detect()
        layout.hierarchies.removeAll { $0.version == .v2 }
        try #require(layout.hierarchy(for: "freezer") != nil, "no v1 freezer on this host")
        let cgroup = try Cgroup.create(name: uniqueName("v1"), layout: layout)
        defer {
            try? cgroup.kill()
            try? cgroup.remove()
        }
        // The shell forks only after it has been moved (join happens after posix_spawn returns).
        let child = try Child(["/bin/sh", "-c", "/bin/sleep 0.3; /bin/sleep 30 & /bin/sleep 30 & wait"])
        try cgroup.join(pid: child.pid)
        let nested = try cgroup.createChild(name: "inner")
        let grandchild = try Child(["/bin/sleep", "30"])
        try nested.join(pid: grandchild.pid)
        // Wait for the shell to start both sleeps (up to 5 s: the suite loads both CPUs).
        for _ in 0..<500 where try cgroup.pids().count < 4 { sleepMs(10) }
        let pids = try cgroup.pids()
        #expect(pids.count == 4, "\(pids)")
        #expect(try cgroup.pids().contains(grandchild.pid))

        try cgroup.kill(signal: SIGKILL)
        #expect(try cgroup.pids().isEmpty)
        #expect(child.reap() == SIGKILL)
        #expect(grandchild.reap() == SIGKILL)
        try cgroup.remove()
        for directory in cgroup.directories + nested.directories {
            #expect(!FileManagerless.exists(directory.path))
        }
    }

    /// v2 core files against the real unified hierarchy alone.
    @Test func v2StructureOnTheUnifiedHierarchy() throws {
        var layout = try CgroupLayout.detect()
        layout.hierarchies.removeAll { $0.version == .v1 }
        try #require(!layout.hierarchies.isEmpty, "no cgroup2 hierarchy mounted")
        let cgroup = try Cgroup.create(name: uniqueName("v2"), layout: layout)
        defer {
            try? cgroup.kill()
            try? cgroup.remove()
        }
        let dir = try #require(cgroup.unified)
        for file in ["cgroup.procs", "cgroup.events", "cgroup.freeze", "cgroup.kill", "cpu.stat"] {
            #expect(FileManagerless.exists(dir.file(file)), "\(file) missing")
        }
        // Nothing was enabled for the children.
        #expect(try CgroupFiles.readLine(dir.file("cgroup.subtree_control")) == "")
        #expect(try Cgroup.events(dir) == ["populated": 0, "frozen": 0])

        let child = try Child(["/bin/sh", "-c", "while :; do :; done"])
        let files = try cgroup.procsFiles()
        try files.join(pid: child.pid)
        #expect(try CgroupFiles.read(dir.file("cgroup.procs")) == "\(child.pid)\n")
        #expect(try Cgroup.events(dir)["populated"] == 1)

        try cgroup.freeze()
        #expect(try Cgroup.events(dir)["frozen"] == 1)
        #expect(try cgroup.freezerState() == .frozen)
        let ticks = child.stat()?.cpuTicks ?? -1
        sleepMs(300)
        #expect(child.stat()?.cpuTicks == ticks, "a frozen process must not use CPU")
        try cgroup.thaw()
        #expect(try Cgroup.events(dir)["frozen"] == 0)

        try cgroup.kill()  // cgroup.kill
        #expect(try Cgroup.events(dir)["populated"] == 0)
        #expect(child.reap() == SIGKILL)
        try cgroup.remove()
        #expect(!FileManagerless.exists(dir.path))
    }

    @Test func reopenInAnotherProcessStyle() throws {
        let created = try Cgroup.create(name: uniqueName("reopen"))
        defer { try? created.remove() }
        let reopened = try Cgroup(paths: created.directories.map(\.path))
        #expect(reopened == created)
        let child = try Child(["/bin/sleep", "30"])
        try created.join(pid: child.pid)
        #expect(try reopened.pids() == [child.pid])
        try reopened.kill()
        #expect(child.reap() == SIGKILL)
        try reopened.remove()
        for directory in created.directories { #expect(!FileManagerless.exists(directory.path)) }
        // `skiff rm` run twice: a gone cgroup is empty, kill and remove are no-ops.
        #expect(try reopened.pids().isEmpty)
        try reopened.kill()
        try reopened.remove()
    }

    /// A workload that forks without pause is killed completely, with and without cgroup.kill.
    @Test(arguments: [false, true]) func forkingWorkloadIsKilledCompletely(v1Only: Bool) throws {
        var layout = try CgroupLayout.detect()
        if v1Only { layout.hierarchies.removeAll { $0.version == .v2 } }
        try #require(!layout.hierarchies.isEmpty)
        let cgroup = try Cgroup.create(name: uniqueName("forks"), layout: layout)
        defer {
            try? cgroup.kill()
            try? cgroup.remove()
        }
        let child = try Child(["/bin/sh", "-c", "/bin/sleep 0.2; while :; do /bin/sleep 2 & done"])
        try cgroup.join(pid: child.pid)
        sleepMs(500)
        let before = try cgroup.pids().count
        #expect(before > 5, "the workload should have forked by now")
        try cgroup.kill()
        #expect(try cgroup.pids().isEmpty)
        #expect(child.reap() == SIGKILL)
        try cgroup.remove()
    }
}
