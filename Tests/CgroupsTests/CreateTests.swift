import FoundationEssentials
import Glibc
import Testing

@testable import Cgroups

@Suite struct CreateOnFakeTrees {
    func unifiedTree() -> FakeTree {
        let tree = FakeTree()
        tree.write("proc/self/mountinfo", unifiedMountinfo)
        tree.write("proc/self/cgroup", "0::/user.slice/session-3.scope\n")
        tree.write("sys/fs/cgroup/cgroup.controllers", "cpu memory pids\n")
        tree.mkdirs("sys/fs/cgroup/user.slice/session-3.scope")
        tree.mkdirs("sys/fs/cgroup/system.slice/sibling.service")
        return tree
    }

    @Test func createsExactlyOneDirectoryBelowTheOwnCgroup() throws {
        let tree = unifiedTree()
        let before = tree.allDirectories()
        let layout = try CgroupLayout.detect(procRoot: tree.procRoot, fsRoot: tree.root)
        let cgroup = try Cgroup.create(name: "skiff-abc", layout: layout)
        let added = Set(tree.allDirectories()).subtracting(before)
        #expect(added == ["/sys/fs/cgroup/user.slice/session-3.scope/skiff-abc"])
        #expect(cgroup.directories.count == 1)
        #expect(cgroup.directories[0].path == tree.path("sys/fs/cgroup/user.slice/session-3.scope/skiff-abc"))
        #expect(cgroup.directories[0].cgroupPath == "/user.slice/session-3.scope/skiff-abc")
        #expect(cgroup.directories[0].version == .v2)
        // No interface file was written anywhere: the root holds only what the test put there.
        #expect(!FileManagerless.exists(tree.path("sys/fs/cgroup/cgroup.subtree_control")))

        try cgroup.remove()
        #expect(tree.allDirectories() == before)
        try cgroup.remove()  // already gone is fine
    }

    @Test func parentIsRelativeToTheHierarchyRootAndIsCreated() throws {
        let tree = unifiedTree()
        let before = tree.allDirectories()
        let layout = try CgroupLayout.detect(procRoot: tree.procRoot, fsRoot: tree.root)
        let cgroup = try Cgroup.create(name: "c1", parent: "skiff.slice/", layout: layout)
        let added = Set(tree.allDirectories()).subtracting(before)
        #expect(added == ["/sys/fs/cgroup/skiff.slice", "/sys/fs/cgroup/skiff.slice/c1"])
        #expect(cgroup.directories[0].cgroupPath == "/skiff.slice/c1")
        // remove() takes only the workload's cgroup, not the parent it made on the way.
        try cgroup.remove()
        #expect(Set(tree.allDirectories()).subtracting(before) == ["/sys/fs/cgroup/skiff.slice"])
    }

    @Test func rejectsNamesThatLeaveTheSubtree() throws {
        let tree = unifiedTree()
        let before = tree.allDirectories()
        let layout = try CgroupLayout.detect(procRoot: tree.procRoot, fsRoot: tree.root)
        for name in ["", ".", "..", "a/b", "/x"] {
            #expect(throws: CgroupError.self) { try Cgroup.create(name: name, layout: layout) }
        }
        #expect(throws: CgroupError.self) { try Cgroup.create(name: "x", parent: "/a/../../etc", layout: layout) }
        #expect(tree.allDirectories() == before)
    }

    @Test func failureInOneHierarchyRollsBackTheOthers() throws {
        let tree = FakeTree()
        tree.write("proc/self/mountinfo", hybridMountinfo)
        tree.write("proc/self/cgroup", hybridProcCgroup)
        for name in ["cpu", "cpuacct", "cpuset", "devices", "freezer", "blkio", "pids", "systemd", "unified"] {
            tree.mkdirs("sys/fs/cgroup/\(name)")
        }
        tree.mkdirs("sys/fs/cgroup/memory/process_api/6abb")
        let layout = try CgroupLayout.detect(procRoot: tree.procRoot, fsRoot: tree.root)

        let cgroup = try Cgroup.create(name: "w1", layout: layout)
        #expect(cgroup.directories.count == 10)
        #expect(cgroup.v1("memory")?.path == tree.path("sys/fs/cgroup/memory/process_api/6abb/w1"))
        #expect(cgroup.v1("name=systemd")?.path == tree.path("sys/fs/cgroup/systemd/w1"))
        #expect(cgroup.unified?.path == tree.path("sys/fs/cgroup/unified/w1"))
        for directory in cgroup.directories {
            #expect(directory.path.hasPrefix(directory.mountPoint + "/"))
        }

        // The name is taken in the memory hierarchy only (5th in order): creation fails with
        // EEXIST there and the four directories made before it are removed again.
        let before = tree.allDirectories()
        tree.mkdirs("sys/fs/cgroup/memory/process_api/6abb/w2")
        #expect(throws: CgroupError.create(path: tree.path("sys/fs/cgroup/memory/process_api/6abb/w2"), errno: EEXIST))
        {
            try Cgroup.create(name: "w2", layout: layout)
        }
        #expect(Set(tree.allDirectories()).subtracting(before) == ["/sys/fs/cgroup/memory/process_api/6abb/w2"])
        try cgroup.remove()
    }

    @Test func reopensFromPathsAndFromItsRecord() throws {
        let tree = FakeTree()
        tree.write("proc/self/mountinfo", hybridMountinfo)
        tree.write("proc/self/cgroup", hybridProcCgroup)
        for name in ["cpu", "cpuacct", "cpuset", "devices", "freezer", "blkio", "pids", "systemd", "unified"] {
            tree.mkdirs("sys/fs/cgroup/\(name)")
        }
        tree.mkdirs("sys/fs/cgroup/memory/process_api/6abb")
        let layout = try CgroupLayout.detect(procRoot: tree.procRoot, fsRoot: tree.root)
        let cgroup = try Cgroup.create(name: "w1", layout: layout)

        let reopened = try Cgroup(paths: cgroup.directories.map(\.path), layout: layout)
        #expect(reopened == cgroup)
        let record = try JSONEncoder().encode(cgroup)
        #expect(try JSONDecoder().decode(Cgroup.self, from: record) == cgroup)
        #expect(throws: CgroupError.notACgroup(path: "/etc/w1")) { try Cgroup(paths: ["/etc/w1"], layout: layout) }
        try reopened.remove()
        #expect(!tree.allDirectories().contains { $0.hasSuffix("/w1") })
    }

    @Test func legacySubtreeMountsMapParentThroughTheMountRoot() throws {
        let tree = FakeTree()
        tree.write("proc/self/mountinfo", legacyMountinfo)
        tree.write("proc/self/cgroup", legacyProcCgroup)
        for name in ["cpu,cpuacct", "memory", "systemd", "free zer"] { tree.mkdirs("sys/fs/cgroup/\(name)") }
        let layout = try CgroupLayout.detect(procRoot: tree.procRoot, fsRoot: tree.root)
        // The freezer's own cgroup is not mounted: without a parent there is nowhere to go.
        #expect(
            throws: CgroupError.outsideMount(
                cgroupPath: "/elsewhere", mountRoot: "/docker/abc", mountPoint: tree.path("sys/fs/cgroup/free zer"))
        ) {
            try Cgroup.create(name: "w", layout: layout)
        }
        #expect(throws: CgroupError.self) { try Cgroup.create(name: "w", parent: "/other", layout: layout) }
        let cgroup = try Cgroup.create(name: "w", parent: "/docker/abc/skiff", layout: layout)
        #expect(
            cgroup.directories.map(\.path) == [
                tree.path("sys/fs/cgroup/free zer/skiff/w"), tree.path("sys/fs/cgroup/memory/skiff/w"),
                tree.path("sys/fs/cgroup/cpu,cpuacct/skiff/w"), tree.path("sys/fs/cgroup/systemd/skiff/w"),
            ])
        try cgroup.remove()
    }
}

enum FileManagerless {
    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }
}
