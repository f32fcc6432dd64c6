import Synchronization

/// Which cgroup version a hierarchy speaks.
/// v1: `Documentation/admin-guide/cgroup-v1/cgroups.rst`; v2: `Documentation/admin-guide/cgroup-v2.rst`.
public enum CgroupVersion: String, Codable, Sendable {
    /// cgroup v1: one hierarchy per controller group, `tasks`/`cgroup.procs`, controller files.
    case v1
    /// cgroup v2: the single unified hierarchy with `cgroup.controllers`, `cgroup.subtree_control`.
    case v2
}

/// How a host mounts cgroups (the same three names systemd uses).
public enum CgroupMode: String, Codable, Sendable {
    /// Only the v2 hierarchy carries controllers (most current distributions).
    case unified
    /// v1 hierarchies carry controllers and a v2 hierarchy is mounted too (systemd "hybrid",
    /// usually at `/sys/fs/cgroup/unified`); v2 core files work there but it holds few or no controllers.
    case hybrid
    /// Only v1 hierarchies are mounted (older distributions, many edge boards).
    case legacy
}

/// One mounted cgroup hierarchy and where the calling process sits in it.
public struct CgroupHierarchy: Codable, Sendable, Equatable {
    /// v1 or v2.
    public var version: CgroupVersion
    /// Directory the hierarchy is mounted on, with the detection's `fsRoot` prepended
    /// (e.g. `/sys/fs/cgroup/memory`, `/sys/fs/cgroup/unified`, `/sys/fs/cgroup`).
    public var mountPoint: String
    /// The cgroup that is mounted there (mountinfo field 4); `/` unless only a subtree is mounted,
    /// as inside many containers.
    public var mountRoot: String
    /// Controllers: for v1 the mount options (`cpu`, `cpuacct`, `name=systemd`); for v2 the root
    /// cgroup's `cgroup.controllers` (cgroup-v2.rst "Enabling and Disabling").
    public var controllers: [String]
    /// The hierarchy ID in `/proc/self/cgroup` (0 for v2).
    public var hierarchyID: Int
    /// The calling process's cgroup path from `/proc/self/cgroup`, relative to the hierarchy root.
    public var ownCgroup: String
    /// The directory of the calling process's cgroup under `mountPoint`, or nil when that cgroup
    /// lies outside the mounted subtree (`mountRoot`).
    public var ownDirectory: String?

    /// True when this hierarchy carries `controller` (`"memory"`, `"freezer"`, `"name=systemd"`).
    public func has(_ controller: String) -> Bool { controllers.contains(controller) }

    /// The directory of `cgroupPath` (a path relative to the hierarchy root, as in `/proc/self/cgroup`
    /// and `--cgroup-parent`), or nil when it lies outside the mounted subtree.
    public func directory(of cgroupPath: String) -> String? {
        Cgroups.directory(ofCgroup: cgroupPath, mountPoint: mountPoint, mountRoot: mountRoot)
    }
}

/// The cgroup hierarchies of this host as the calling process sees them.
public struct CgroupLayout: Codable, Sendable, Equatable {
    /// unified, hybrid or legacy.
    public var mode: CgroupMode
    /// Every mounted hierarchy that the calling process is a member of, in `/proc/self/cgroup`
    /// order (v1 hierarchies by descending ID, then v2).
    public var hierarchies: [CgroupHierarchy]

    /// Builds a layout from known parts (tests, or a subset of a detected layout).
    public init(mode: CgroupMode, hierarchies: [CgroupHierarchy]) {
        self.mode = mode
        self.hierarchies = hierarchies
    }

    /// The v2 hierarchy, if mounted.
    public var unified: CgroupHierarchy? { hierarchies.first { $0.version == .v2 } }

    /// The hierarchy that carries `controller`: the v1 hierarchy mounted with it, else the v2
    /// hierarchy when its root lists it in `cgroup.controllers`.
    public func hierarchy(for controller: String) -> CgroupHierarchy? {
        hierarchies.first { $0.version == .v1 && $0.has(controller) }
            ?? hierarchies.first { $0.version == .v2 && $0.has(controller) }
    }

    /// The cgroup mounts of one `mountinfo` text, parsed once per process for the same text (a
    /// start reads the layout several times; parsing costs far more than reading the file).
    private static func cgroupMounts(_ mountinfo: String, path: String) throws(CgroupError) -> [MountinfoEntry] {
        try MountinfoEntry.parse(mountinfo, path: path).filter { $0.fsType == "cgroup" || $0.fsType == "cgroup2" }
    }

    /// Detects the layout from `<procRoot>/self/mountinfo` and `<procRoot>/self/cgroup`, reading
    /// v2 `cgroup.controllers` under `<fsRoot><mountPoint>`. Both parameters exist so tests can
    /// point detection at a fake tree; in production keep the defaults.
    ///
    /// A hierarchy is listed when it is mounted and named in `/proc/self/cgroup`. When it is
    /// mounted more than once, the mount whose root contains the process's cgroup wins (the
    /// longest such root), so bind-mounted subtrees map correctly.
    ///
    /// Throws `CgroupError.procFile` when a file cannot be read, `.malformed` for a line of an
    /// unknown shape, `.notMounted` when no cgroup file system is mounted.
    public static func detect(procRoot: String = "/proc", fsRoot: String = "/") throws(CgroupError)
        -> CgroupLayout
    {
        let mountinfoPath = CgroupFiles.join(procRoot, "self/mountinfo")
        let cgroupPath = CgroupFiles.join(procRoot, "self/cgroup")
        let mountinfo: String
        let procCgroup: String
        do { mountinfo = try CgroupFiles.read(mountinfoPath) } catch {
            throw .procFile(path: mountinfoPath, errno: error.errno ?? 0)
        }
        do { procCgroup = try CgroupFiles.read(cgroupPath) } catch {
            throw .procFile(path: cgroupPath, errno: error.errno ?? 0)
        }
        // A process asks several times on its way to start a workload (host capacity, admission,
        // the workload's cgroup); the answer changes only when one of the two files does.
        let key = DetectKey(procRoot: procRoot, fsRoot: fsRoot, mountinfo: mountinfo, procCgroup: procCgroup)
        if let hit = detected.withLock({ $0?.key == key ? $0?.layout : nil }) { return hit }
        let layout = try detect(
            mountinfo: mountinfo, procCgroup: procCgroup, mountinfoPath: mountinfoPath, cgroupPath: cgroupPath,
            fsRoot: fsRoot)
        detected.withLock { $0 = (key, layout) }
        return layout
    }

    private struct DetectKey: Equatable, Sendable {
        var procRoot, fsRoot, mountinfo, procCgroup: String
    }
    private static let detected = Mutex<(key: DetectKey, layout: CgroupLayout)?>(nil)

    /// A cgroup mount with its v1 controllers, worked out once.
    private struct CgroupMount: Sendable {
        var entry: MountinfoEntry
        var controllers: [String]
        var controllerSet: Set<String>
        var optionSet: Set<String>
    }
    /// The cgroup mounts of the last mountinfo parsed: joining a cgroup changes /proc/self/cgroup
    /// but not the mounts, so a process that asks again after joining parses only the former.
    private static let parsedMounts = Mutex<(mountinfo: String, mounts: [CgroupMount])?>(nil)

    private static func mounts(_ mountinfo: String, path: String) throws(CgroupError) -> [CgroupMount] {
        if let hit = parsedMounts.withLock({ $0?.mountinfo == mountinfo ? $0?.mounts : nil }) { return hit }
        let mounts = try cgroupMounts(mountinfo, path: path).map { entry in
            let controllers = cgroupV1Controllers(superOptions: entry.superOptions)
            return CgroupMount(
                entry: entry, controllers: controllers, controllerSet: Set(controllers),
                optionSet: Set(entry.superOptions))
        }
        parsedMounts.withLock { $0 = (mountinfo, mounts) }
        return mounts
    }

    private static func detect(
        mountinfo: String, procCgroup: String, mountinfoPath: String, cgroupPath: String, fsRoot: String
    ) throws(CgroupError) -> CgroupLayout {
        let mounts = try Self.mounts(mountinfo, path: mountinfoPath)
        guard !mounts.isEmpty else { throw .notMounted(mountinfo: mountinfoPath) }
        let entries = try ProcCgroupEntry.parse(procCgroup, path: cgroupPath)

        var hierarchies: [CgroupHierarchy] = []
        for entry in entries {
            let isV2 = entry.hierarchyID == 0 && entry.controllers.isEmpty
            let wanted = Set(entry.controllers)
            var candidates = mounts.filter { mount in
                if isV2 { return mount.entry.fsType == "cgroup2" }
                return mount.entry.fsType == "cgroup" && mount.controllerSet == wanted
            }
            if candidates.isEmpty && !isV2 {
                // Options this module does not know would spoil the exact match; accept a superset.
                candidates = mounts.filter {
                    $0.entry.fsType == "cgroup" && wanted.isSubset(of: $0.optionSet)
                }
            }
            // A later mount on the same mount point hides an earlier one.
            var visible: [CgroupMount] = []
            for mount in candidates {
                visible.removeAll { $0.entry.mountPoint == mount.entry.mountPoint }
                visible.append(mount)
            }
            guard !visible.isEmpty else { continue }
            let covering = visible.filter {
                Cgroups.directory(ofCgroup: entry.path, mountPoint: $0.entry.mountPoint, mountRoot: $0.entry.root)
                    != nil
            }
            let chosen = covering.max { $0.entry.root.count < $1.entry.root.count } ?? visible[0]
            let mount = chosen.entry
            let mountPoint = CgroupFiles.join(fsRoot, mount.mountPoint)
            let controllers: [String]
            if isV2 {
                let text = (try? CgroupFiles.read(CgroupFiles.join(mountPoint, "cgroup.controllers"))) ?? ""
                controllers = text.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
            } else {
                controllers = chosen.controllers
            }
            hierarchies.append(
                CgroupHierarchy(
                    version: isV2 ? .v2 : .v1, mountPoint: mountPoint, mountRoot: mount.root,
                    controllers: controllers, hierarchyID: entry.hierarchyID, ownCgroup: entry.path,
                    ownDirectory: Cgroups.directory(
                        ofCgroup: entry.path, mountPoint: mountPoint, mountRoot: mount.root)))
        }
        guard !hierarchies.isEmpty else { throw .notMounted(mountinfo: mountinfoPath) }
        let hasV2 = hierarchies.contains { $0.version == .v2 }
        let v1WithControllers = hierarchies.contains { h in
            h.version == .v1 && h.controllers.contains { !$0.hasPrefix("name=") }
        }
        let mode: CgroupMode = !hasV2 ? .legacy : (v1WithControllers ? .hybrid : .unified)
        return CgroupLayout(mode: mode, hierarchies: hierarchies)
    }
}
