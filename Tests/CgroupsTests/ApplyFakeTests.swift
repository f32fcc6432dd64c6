import Glibc
import OCI
import Testing

@testable import Cgroups

/// A full `linux.resources` touching every controller.
func fullResources(swap: Int64 = 64 << 20, pids: Int64 = 20) -> Spec.Resources {
    var r = Spec.Resources()
    r.cpu = .init(shares: 1024, quota: 50_000, period: 100_000, cpus: "0-1", mems: "0")
    r.memory = .init(limit: 64 << 20, reservation: 32 << 20, swap: swap)
    r.pids = .init(limit: pids)
    var io = Spec.Resources.BlockIO()
    io.weight = 500
    io.throttleReadBpsDevice = [.init(major: 8, minor: 0, rate: 1_048_576)]
    io.throttleWriteBpsDevice = [.init(major: 8, minor: 0, rate: 2_097_152)]
    io.throttleReadIOPSDevice = [.init(major: 8, minor: 16, rate: 100)]
    io.throttleWriteIOPSDevice = [.init(major: 8, minor: 0, rate: 200)]
    r.blockIO = io
    r.hugepageLimits = [.init(pageSize: "2MB", limit: 4 << 21)]
    r.unified = ["memory.high": "50331648", "cgroup.max.descendants": "10"]
    return r
}

let v2Files = [
    "cpu.max", "cpu.weight", "cpuset.cpus", "cpuset.mems", "memory.max", "memory.low", "memory.swap.max",
    "memory.high", "pids.max", "io.weight", "io.max", "hugetlb.2MB.max", "cgroup.max.descendants",
]

@Suite struct ApplyOnFakeV2 {
    /// A pure v2 host: skiff runs in /user.slice/session-3.scope (which has processes); the
    /// process-free /skiff.slice is offered every controller by the root.
    func tree(rootControllers: String = "cpuset cpu io memory hugetlb pids") -> FakeTree {
        let tree = FakeTree()
        tree.write("proc/self/mountinfo", unifiedMountinfo)
        tree.write("proc/self/cgroup", "0::/user.slice/session-3.scope\n")
        tree.write("sys/fs/cgroup/cgroup.controllers", rootControllers + "\n")
        tree.write("sys/fs/cgroup/cgroup.subtree_control", rootControllers + "\n")
        for level in ["user.slice", "user.slice/session-3.scope", "skiff.slice"] {
            tree.write("sys/fs/cgroup/\(level)/cgroup.controllers", rootControllers + "\n")
            tree.write("sys/fs/cgroup/\(level)/cgroup.subtree_control", "")
            tree.write("sys/fs/cgroup/\(level)/cgroup.procs", "")
        }
        tree.write("sys/fs/cgroup/user.slice/cgroup.subtree_control", rootControllers + "\n")
        tree.write("sys/fs/cgroup/user.slice/session-3.scope/cgroup.procs", "4242\n")
        return tree
    }

    func workload(_ tree: FakeTree, parent: String?) throws -> Cgroup {
        let layout = try CgroupLayout.detect(procRoot: tree.procRoot, fsRoot: tree.root)
        let cgroup = try Cgroup.create(name: "w1", parent: parent, layout: layout)
        for file in v2Files { tree.write(cgroup.directories[0].path.dropFirst(tree.root.count) + "/" + file, "") }
        return cgroup
    }

    @Test func everyFileGetsTheExactValue() throws {
        let tree = tree()
        let cgroup = try workload(tree, parent: "skiff.slice")
        try cgroup.apply(fullResources())
        let dir = cgroup.directories[0]
        func read(_ file: String) throws -> String { try dir.read(file) }
        #expect(try read("cpu.max") == "50000 100000")
        #expect(try read("cpu.weight") == "100")  // the current curve maps the v1 default to the v2 default
        #expect(try read("cpuset.cpus") == "0-1")
        #expect(try read("cpuset.mems") == "0")
        #expect(try read("memory.max") == "67108864")
        #expect(try read("memory.low") == "33554432")
        #expect(try read("memory.swap.max") == "0")  // swap == limit: no swap (runc#2369)
        #expect(try read("pids.max") == "20")
        #expect(try read("io.weight") == "default 4950")
        // io.max is written one device per write (the fake file keeps the last one).
        #expect(try read("io.max") == "8:16 riops=100")
        #expect(
            IOLimits.ioMaxLines(fullResources().blockIO!) == [
                "8:0 rbps=1048576 wbps=2097152 wiops=200", "8:16 riops=100",
            ])
        #expect(try read("hugetlb.2MB.max") == "8388608")
        #expect(try read("memory.high") == "50331648")
        #expect(try read("cgroup.max.descendants") == "10")
        // Enabled once, in the process-free parent only; the root and skiff's own cgroup untouched.
        #expect(
            try CgroupFiles.readLine(tree.path("sys/fs/cgroup/skiff.slice/cgroup.subtree_control"))
                == "+cpu +cpuset +hugetlb +io +memory +pids")
        #expect(
            try CgroupFiles.readLine(tree.path("sys/fs/cgroup/cgroup.subtree_control"))
                == "cpuset cpu io memory hugetlb pids")
        #expect(
            try CgroupFiles.read(tree.path("sys/fs/cgroup/user.slice/session-3.scope/cgroup.subtree_control")) == "")
    }

    @Test func swapMaxAndPidsEdgeValues() throws {
        let tree = tree()
        let cgroup = try workload(tree, parent: "skiff.slice")
        let dir = cgroup.directories[0]
        var r = Spec.Resources()
        r.memory = .init(limit: 64 << 20, swap: -1)
        r.pids = .init(limit: -1)
        try cgroup.apply(r)
        #expect(try dir.read("memory.swap.max") == "max")
        #expect(try dir.read("pids.max") == "max")
        r.memory = .init(limit: 64 << 20, swap: 96 << 20)
        r.pids = .init(limit: 0)
        try cgroup.apply(r)
        #expect(try dir.read("memory.swap.max") == "33554432")
        #expect(try dir.read("pids.max") == "0")  // 0 is a real limit (runtime-spec #1279)
        // --memory-swap alone: subtract the current memory.max (crun#315).
        r = Spec.Resources()
        r.memory = .init(swap: 128 << 20)
        try cgroup.apply(r)
        #expect(try dir.read("memory.swap.max") == "67108864")
        // Quota -1 with a period; a quota alone.
        r = Spec.Resources()
        r.cpu = .init(quota: -1, period: 250_000)
        try cgroup.apply(r)
        #expect(try dir.read("cpu.max") == "max 250000")
        r.cpu = .init(quota: 20_000)
        try cgroup.apply(r)
        #expect(try dir.read("cpu.max") == "20000")
        // swap below limit, and disableOOMKiller, are refused on v2.
        r = Spec.Resources()
        r.memory = .init(limit: 64 << 20, swap: 32 << 20)
        #expect(throws: CgroupError.self) { try cgroup.apply(r) }
        r.memory = .init(disableOOMKiller: true)
        #expect { try cgroup.apply(r) } throws: { error in
            "\(error)".contains("cgroup v2 has no memory.oom_control")
        }
    }

    @Test func refusesToEnableControllersInACgroupWithProcesses() throws {
        let tree = tree()
        let cgroup = try workload(tree, parent: nil)  // below /user.slice/session-3.scope (pid 4242)
        var r = Spec.Resources()
        r.memory = .init(limit: 64 << 20)
        #expect { try cgroup.apply(r) } throws: { error in
            guard case .invalidResource(_, let reason) = error as? CgroupError else { return false }
            return reason.contains("no internal process") && reason.contains("4242")
        }
        #expect(
            try CgroupFiles.read(tree.path("sys/fs/cgroup/user.slice/session-3.scope/cgroup.subtree_control")) == "")
        #expect(try cgroup.directories[0].read("memory.max") == "")
    }

    @Test func missingControllerIsNamedAndNothingIsWritten() throws {
        let tree = tree(rootControllers: "cpu memory pids")
        let cgroup = try workload(tree, parent: "skiff.slice")
        var r = fullResources()
        r.blockIO = nil
        r.cpu?.cpus = nil
        r.cpu?.mems = nil
        #expect { try cgroup.apply(r) } throws: { error in
            guard case .missingController(let controller, _, _, _) = error as? CgroupError else { return false }
            return controller == "hugetlb" && "\(error)".contains("hugetlb controller")
        }
        #expect(try cgroup.directories[0].read("memory.max") == "")
        #expect(try CgroupFiles.read(tree.path("sys/fs/cgroup/skiff.slice/cgroup.subtree_control")) == "")
        let layout = try CgroupLayout.detect(procRoot: tree.procRoot, fsRoot: tree.root)
        #expect(layout.availableControllers == ["cpu", "memory", "pids"])
    }

    @Test func cpuWeightUsesTheCurrentCurve() {
        #expect(cpuWeight(fromShares: 0) == 0)
        #expect(cpuWeight(fromShares: 2) == 1)
        #expect(cpuWeight(fromShares: 1024) == 100)
        #expect(cpuWeight(fromShares: 262_144) == 10_000)
        #expect(cpuWeight(fromShares: 512) < 100 && cpuWeight(fromShares: 2048) > 100)
        #expect(IOLimits.ioWeight(fromBlkioWeight: 10) == 1)
        #expect(IOLimits.ioWeight(fromBlkioWeight: 1000) == 10_000)
    }
}

@Suite struct ApplyOnFakeV1 {
    @Test func everyFileGetsTheExactValue() throws {
        let tree = FakeTree()
        var dirs: [Cgroup.Directory] = []
        let files: [String: [String]] = [
            "cpu": ["cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us"],
            "cpuset": ["cpuset.cpus", "cpuset.mems"],
            "memory": [
                "memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.soft_limit_in_bytes",
                "memory.oom_control",
            ],
            "pids": ["pids.max"],
            "blkio": [
                "blkio.weight", "blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device",
                "blkio.throttle.read_iops_device", "blkio.throttle.write_iops_device",
            ],
            "hugetlb": ["hugetlb.2MB.limit_in_bytes"],
        ]
        for (controller, names) in files.sorted(by: { $0.key < $1.key }) {
            let mount = tree.path("sys/fs/cgroup/\(controller)")
            for name in names { tree.write("sys/fs/cgroup/\(controller)/w1/\(name)", "") }
            dirs.append(.init(path: mount + "/w1", version: .v1, controllers: [controller], mountPoint: mount))
        }
        tree.write("sys/fs/cgroup/memory/w1/memory.limit_in_bytes", "9223372036854771712\n")
        let cgroup = Cgroup(directories: dirs)
        var r = fullResources(swap: 128 << 20)
        r.memory?.disableOOMKiller = true
        r.unified = nil
        try cgroup.apply(r)
        func read(_ c: String, _ f: String) throws -> String { try cgroup.v1(c)!.read(f) }
        #expect(try read("cpu", "cpu.shares") == "1024")
        #expect(try read("cpu", "cpu.cfs_period_us") == "100000")
        #expect(try read("cpu", "cpu.cfs_quota_us") == "50000")
        #expect(try read("cpuset", "cpuset.cpus") == "0-1")
        #expect(try read("memory", "memory.limit_in_bytes") == "67108864")
        #expect(try read("memory", "memory.memsw.limit_in_bytes") == "134217728")
        #expect(try read("memory", "memory.soft_limit_in_bytes") == "33554432")
        #expect(try read("memory", "memory.oom_control") == "1")
        #expect(try read("pids", "pids.max") == "20")
        #expect(try read("blkio", "blkio.weight") == "500")
        #expect(try read("blkio", "blkio.throttle.read_bps_device") == "8:0 1048576")
        #expect(try read("blkio", "blkio.throttle.write_iops_device") == "8:0 200")
        #expect(try read("hugetlb", "hugetlb.2MB.limit_in_bytes") == "8388608")
        // The unified map is refused on a host without cgroup v2.
        r = Spec.Resources()
        r.unified = ["memory.high": "1G"]
        #expect { try cgroup.apply(r) } throws: { "\($0)".contains("no cgroup v2 hierarchy") }
    }

    @Test func memswOrderFollowsTheKernelRule() throws {
        // Raising 64M/64M → 128M/128M: memsw first, or the kernel refuses limit > memsw.
        let raise = try MemoryLimits.v1Writes(
            .init(limit: 128 << 20, swap: 128 << 20), currentLimit: 64 << 20, hasMemsw: true)
        #expect(raise.map(\.file) == ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"])
        // Lowering 128M/128M → 64M/64M: limit first, or memsw < limit is refused.
        let lower = try MemoryLimits.v1Writes(
            .init(limit: 64 << 20, swap: 64 << 20), currentLimit: 128 << 20, hasMemsw: true)
        #expect(lower.map(\.file) == ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"])
        // Unlimited memory without a swap value also lifts memsw (before the limit).
        let unlimited = try MemoryLimits.v1Writes(.init(limit: -1), currentLimit: 64 << 20, hasMemsw: true)
        #expect(unlimited.map(\.value) == ["-1", "-1"])
        // Without swap accounting a swap limit is an error, "unlimited" is fine.
        #expect(throws: CgroupError.self) {
            try MemoryLimits.v1Writes(.init(limit: 1 << 20, swap: 2 << 20), currentLimit: nil, hasMemsw: false)
        }
        #expect(try MemoryLimits.v1Writes(.init(swap: -1), currentLimit: nil, hasMemsw: false).isEmpty)
    }

    @Test func missingV1ControllerIsNamed() throws {
        let tree = FakeTree()
        let mount = tree.path("sys/fs/cgroup/memory")
        tree.mkdirs("sys/fs/cgroup/memory/w1")
        let cgroup = Cgroup(directories: [
            .init(path: mount + "/w1", version: .v1, controllers: ["memory"], mountPoint: mount)
        ])
        var r = Spec.Resources()
        r.pids = .init(limit: 5)
        #expect { try cgroup.apply(r) } throws: { error in
            guard case .missingController(let controller, _, _, let hint) = error as? CgroupError else { return false }
            return controller == "pids" && hint.contains("mount -t cgroup -o pids")
        }
    }
}

@Suite struct StatsParsing {
    @Test func parsesEveryFormat() throws {
        #expect(
            StatParsing.ioStatBytes("8:0 rbytes=100 wbytes=200 rios=1 wios=2\n8:16 rbytes=1 wbytes=2\n") == (101, 202))
        #expect(StatParsing.blkioBytes("8:0 Read 10\n8:0 Write 20\n8:0 Total 30\n8:16 Read 5\nTotal 35\n") == (15, 20))
        let psi = StatParsing.pressure(
            "some avg10=1.50 avg60=0.00 avg300=0.00 total=9\nfull avg10=0.25 avg60=0 avg300=0 total=1\n")
        #expect(psi.some == 1.5 && psi.full == 0.25)
        #expect(StatParsing.pressure(nil).some == nil)
        #expect(try StatParsing.maxOrNumber("max\n", path: "x") == nil)
        #expect(try StatParsing.maxOrNumber("20\n", path: "x") == 20)
    }

    @Test func fakeV2Snapshot() throws {
        let tree = FakeTree()
        let mount = tree.path("sys/fs/cgroup")
        let files = [
            "cpu.stat":
                "usage_usec 5000\nuser_usec 3000\nsystem_usec 2000\nnr_periods 10\nnr_throttled 4\nthrottled_usec 700\n",
            "memory.current": "4096\n", "memory.max": "max\n", "memory.peak": "8192\n",
            "memory.events": "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n", "pids.current": "3\n", "pids.max": "20\n",
            "io.stat": "8:0 rbytes=10 wbytes=20 rios=1 wios=1\n",
            "cpu.pressure": "some avg10=2.00 avg60=0 avg300=0 total=1\nfull avg10=0 avg60=0 avg300=0 total=0\n",
            "memory.pressure": "some avg10=0.50 avg60=0 avg300=0 total=1\nfull avg10=0.10 avg60=0 avg300=0 total=0\n",
        ]
        for (name, text) in files { tree.write("sys/fs/cgroup/w1/\(name)", text) }
        let cgroup = Cgroup(directories: [
            .init(path: mount + "/w1", version: .v2, controllers: ["cpu", "memory", "pids", "io"], mountPoint: mount)
        ])
        let s = try cgroup.stats()
        var expected = CgroupStats(cpuUsageMicroseconds: 5000)
        expected.cpuThrottledMicroseconds = 700
        expected.cpuThrottledPeriods = 4
        expected.memoryCurrent = 4096
        expected.memoryPeak = 8192
        expected.oomKills = 1
        expected.pidsCurrent = 3
        expected.pidsLimit = 20
        expected.ioReadBytes = 10
        expected.ioWriteBytes = 20
        expected.cpuPressureSomeAvg10 = 2
        expected.memoryPressureSomeAvg10 = 0.5
        expected.memoryPressureFullAvg10 = 0.1
        #expect(s == expected)
    }
}
