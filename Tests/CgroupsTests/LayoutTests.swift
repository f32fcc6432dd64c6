import Glibc
import Testing

@testable import Cgroups

/// Mountinfo of a pure v2 host (systemd "unified").
let unifiedMountinfo = """
    22 28 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:13 - proc proc rw
    24 30 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot

    """

/// Mountinfo of this development machine (hybrid: v1 controllers, v2 at /sys/fs/cgroup/unified).
let hybridMountinfo = """
    31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
    32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
    33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
    34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
    35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
    36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
    37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
    38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
    39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
    40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
    41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw

    """

let hybridProcCgroup = """
    9:name=systemd:/
    8:pids:/
    7:blkio:/
    6:freezer:/
    5:devices:/
    4:memory:/process_api/6abb
    3:cpuset:/
    2:cpuacct:/
    1:cpu:/
    0::/

    """

/// A v1-only container view: every hierarchy is a bind mount of the subtree /docker/abc.
let legacyMountinfo = #"""
    900 800 0:50 / / rw - overlay overlay rw
    901 900 0:51 / /sys/fs/cgroup rw - tmpfs tmpfs rw
    902 901 0:29 /docker/abc /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
    903 901 0:32 /docker/abc /sys/fs/cgroup/memory ro,nosuid master:7 - cgroup cgroup rw,memory
    904 901 0:37 /docker/abc /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,release_agent=/x,name=systemd
    905 901 0:34 /docker/abc /sys/fs/cgroup/free\040zer rw - cgroup cgroup rw,freezer

    """#

let legacyProcCgroup = """
    5:freezer:/elsewhere
    4:memory:/docker/abc/sub
    3:cpu,cpuacct:/docker/abc
    1:name=systemd:/docker/abc/init.scope
    0::/

    """

@Suite struct LayoutDetection {
    @Test func unifiedHost() throws {
        let tree = FakeTree()
        tree.write("proc/self/mountinfo", unifiedMountinfo)
        tree.write("proc/self/cgroup", "0::/user.slice/session-3.scope\n")
        tree.write("sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n")
        let layout = try CgroupLayout.detect(procRoot: tree.procRoot, fsRoot: tree.root)
        #expect(layout.mode == .unified)
        #expect(layout.hierarchies.count == 1)
        let v2 = try #require(layout.unified)
        #expect(v2.mountPoint == tree.path("sys/fs/cgroup"))
        #expect(v2.controllers == ["cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc"])
        #expect(v2.ownCgroup == "/user.slice/session-3.scope")
        #expect(v2.ownDirectory == tree.path("sys/fs/cgroup/user.slice/session-3.scope"))
        #expect(layout.hierarchy(for: "memory")?.version == .v2)
    }

    /// A fake tree of a hybrid host like this machine (v2 holds only hugetlb) and its layout.
    static func hybridHost() throws -> (tree: FakeTree, layout: CgroupLayout) {
        let tree = FakeTree()
        tree.write("proc/self/mountinfo", hybridMountinfo)
        tree.write("proc/self/cgroup", hybridProcCgroup)
        tree.write("sys/fs/cgroup/unified/cgroup.controllers", "hugetlb\n")
        return (tree, try CgroupLayout.detect(procRoot: tree.procRoot, fsRoot: tree.root))
    }

    @Test func hybridHostLikeThisMachine() throws {
        let (tree, layout) = try Self.hybridHost()
        #expect(layout.mode == .hybrid)
        #expect(layout.hierarchies.count == 10)
        #expect(layout.hierarchies.filter { $0.version == .v1 }.count == 9)
        #expect(layout.unified?.mountPoint == tree.path("sys/fs/cgroup/unified"))
        #expect(layout.unified?.controllers == ["hugetlb"])
        let memory = try #require(layout.hierarchy(for: "memory"))
        #expect(memory.version == .v1)
        #expect(memory.hierarchyID == 4)
        #expect(memory.ownDirectory == tree.path("sys/fs/cgroup/memory/process_api/6abb"))
        let systemd = try #require(layout.hierarchy(for: "name=systemd"))
        #expect(systemd.mountPoint == tree.path("sys/fs/cgroup/systemd"))
        #expect(systemd.ownDirectory == tree.path("sys/fs/cgroup/systemd"))
        // hugetlb sits in v2 here, so it is found there.
        #expect(layout.hierarchy(for: "hugetlb")?.version == .v2)
    }

    @Test func legacyHostWithSubtreeMounts() throws {
        let tree = FakeTree()
        tree.write("proc/self/mountinfo", legacyMountinfo)
        tree.write("proc/self/cgroup", legacyProcCgroup)
        let layout = try CgroupLayout.detect(procRoot: tree.procRoot, fsRoot: tree.root)
        #expect(layout.mode == .legacy)
        #expect(layout.unified == nil)  // 0::/ is listed but no cgroup2 is mounted
        #expect(layout.hierarchies.map(\.hierarchyID) == [5, 4, 3, 1])
        let cpu = try #require(layout.hierarchy(for: "cpuacct"))
        #expect(cpu.controllers == ["cpu", "cpuacct"])
        #expect(cpu.mountPoint == tree.path("sys/fs/cgroup/cpu,cpuacct"))
        #expect(cpu.ownDirectory == tree.path("sys/fs/cgroup/cpu,cpuacct"))
        // The mount root /docker/abc is stripped from the cgroup path.
        #expect(layout.hierarchy(for: "memory")?.ownDirectory == tree.path("sys/fs/cgroup/memory/sub"))
        let systemd = try #require(layout.hierarchy(for: "name=systemd"))
        #expect(systemd.controllers == ["name=systemd"])
        #expect(systemd.ownDirectory == tree.path("sys/fs/cgroup/systemd/init.scope"))
        // Escaped space in the mount point; the own cgroup lies outside the mounted subtree.
        let freezer = try #require(layout.hierarchy(for: "freezer"))
        #expect(freezer.mountPoint == tree.path("sys/fs/cgroup/free zer"))
        #expect(freezer.ownDirectory == nil)
    }

    @Test func prefersTheMountThatContainsTheOwnCgroup() throws {
        let tree = FakeTree()
        tree.write(
            "proc/self/mountinfo",
            """
            40 31 0:37 /other /a rw - cgroup cgroup rw,memory
            41 31 0:37 /docker /b rw - cgroup cgroup rw,memory
            42 31 0:37 /docker/x /c rw - cgroup cgroup rw,memory

            """)
        tree.write("proc/self/cgroup", "4:memory:/docker/x/y\n")
        let layout = try CgroupLayout.detect(procRoot: tree.procRoot, fsRoot: tree.root)
        #expect(layout.hierarchies.count == 1)
        #expect(layout.hierarchies[0].mountPoint == tree.path("c"))
        #expect(layout.hierarchies[0].ownDirectory == tree.path("c/y"))
    }

    /// `--cgroup-parent` is a cgroup path (relative to each hierarchy's root); a file-system path
    /// below the cgroup mounts is refused instead of being made as a cgroup of that name.
    @Test func aParentUnderTheMountPointsIsRefused() throws {
        let (tree, layout) = try Self.hybridHost()
        for parent in [tree.path("sys/fs/cgroup/cpu/app"), tree.path("sys/fs/cgroup/app"), tree.path("sys/fs/cgroup")] {
            #expect(throws: CgroupError.self, "\(parent)") {
                try Cgroup.plannedPaths(name: "skiff-1", parent: parent, layout: layout)
            }
        }
        let paths = try Cgroup.plannedPaths(name: "skiff-1", parent: "/skiff.slice", layout: layout)
        #expect(paths.count == layout.hierarchies.count)
        #expect(paths.allSatisfy { $0.hasSuffix("/skiff.slice/skiff-1") }, "\(paths)")
        #expect(
            CgroupError.create(path: "/sys/fs/cgroup/cpu/tasks/skiff-1", errno: ENOTDIR).description.contains(
                "is a cgroup file, not a cgroup"))
    }

    @Test func errorsNameTheFile() throws {
        let tree = FakeTree()
        #expect(throws: CgroupError.procFile(path: tree.procRoot + "/self/mountinfo", errno: ENOENT)) {
            try CgroupLayout.detect(procRoot: tree.procRoot, fsRoot: tree.root)
        }
        tree.write("proc/self/mountinfo", "22 28 0:21 / /proc rw - proc proc rw\n")
        tree.write("proc/self/cgroup", "0::/\n")
        #expect(throws: CgroupError.notMounted(mountinfo: tree.procRoot + "/self/mountinfo")) {
            try CgroupLayout.detect(procRoot: tree.procRoot, fsRoot: tree.root)
        }
        tree.write("proc/self/mountinfo", "garbage\n")
        #expect(throws: CgroupError.malformed(path: tree.procRoot + "/self/mountinfo", line: "garbage")) {
            try CgroupLayout.detect(procRoot: tree.procRoot, fsRoot: tree.root)
        }
        let message = CgroupError.create(path: "/sys/fs/cgroup/memory/x", errno: EACCES).description
        #expect(
            message
                == "cannot create cgroup /sys/fs/cgroup/memory/x: Permission denied; run skiff as root or pass --cgroup-parent naming a cgroup delegated to you"
        )
    }

    @Test func parsing() throws {
        #expect(MountinfoEntry.unescape(#"/a\040b\011c\134d"#) == "/a b\tc\\d")
        #expect(
            cgroupV1Controllers(superOptions: ["rw", "xattr", "release_agent=/bin/x", "name=systemd", "cpu", "cpuacct"])
                == ["name=systemd", "cpu", "cpuacct"])
        #expect(try normalizeCgroupPath("a//b/./c/") == "/a/b/c")
        #expect(try normalizeCgroupPath("/") == "/")
        #expect(throws: CgroupError.self) { try normalizeCgroupPath("/a/../b") }
        #expect(directory(ofCgroup: "/a/b", mountPoint: "/m", mountRoot: "/") == "/m/a/b")
        #expect(directory(ofCgroup: "/a/b", mountPoint: "/m", mountRoot: "/a") == "/m/b")
        #expect(directory(ofCgroup: "/a", mountPoint: "/m", mountRoot: "/a") == "/m")
        #expect(directory(ofCgroup: "/ab", mountPoint: "/m", mountRoot: "/a") == nil)
        #expect(try CgroupFiles.parsePids("12\n0\n7\n", path: "x") == [12, 7])
    }
}
