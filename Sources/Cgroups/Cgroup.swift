import Glibc

/// A workload's cgroup: one directory in every mounted hierarchy (cgroup-v2.rst "Organizing
/// Processes and Threads"; cgroup-v1/cgroups.rst 2.1). The value is `Codable`, so the container
/// record can store it and a later `skiff rm` in another process can reopen it without detection.
public struct Cgroup: Codable, Sendable, Equatable {
    /// The cgroup's directory in one hierarchy.
    public struct Directory: Codable, Sendable, Equatable {
        /// Absolute directory, e.g. `/sys/fs/cgroup/memory/process_api/…/skiff-abc`.
        public var path: String
        /// The hierarchy's version, which decides the interface file names.
        public var version: CgroupVersion
        /// The hierarchy's controllers (v1 mount options; v2 root `cgroup.controllers`).
        public var controllers: [String]
        /// Where the hierarchy is mounted; `path` is always strictly below it.
        public var mountPoint: String

        /// Creates a record of one directory; `path` must be below `mountPoint`.
        public init(path: String, version: CgroupVersion, controllers: [String], mountPoint: String) {
            self.path = path
            self.version = version
            self.controllers = controllers
            self.mountPoint = mountPoint
        }

        /// The cgroup path relative to the mount (what `/proc/PID/cgroup` shows when the whole
        /// hierarchy is mounted), e.g. `/process_api/…/skiff-abc`.
        public var cgroupPath: String {
            let rest = path.dropFirst(mountPoint.count)
            return rest.hasPrefix("/") ? String(rest) : "/" + rest
        }

        /// `path/file`.
        public func file(_ name: String) -> String { CgroupFiles.join(path, name) }
    }

    /// One directory per hierarchy, in the layout's hierarchy order.
    public var directories: [Directory]

    /// Reopens a cgroup from its recorded directories (e.g. decoded from the container record).
    public init(directories: [Directory]) {
        self.directories = directories
    }

    /// Reopens a cgroup from bare directory paths, matching each to the detected hierarchy whose
    /// mount point contains it (the longest one). Throws `CgroupError.notACgroup` for a path
    /// outside every hierarchy, or a detection error.
    public init(paths: [String], layout: CgroupLayout) throws(CgroupError) {
        var directories: [Directory] = []
        for path in paths {
            let owners = layout.hierarchies.filter { path.hasPrefix($0.mountPoint + "/") }
            guard let owner = owners.max(by: { $0.mountPoint.count < $1.mountPoint.count }) else {
                throw .notACgroup(path: path)
            }
            directories.append(
                Directory(
                    path: path, version: owner.version, controllers: owner.controllers,
                    mountPoint: owner.mountPoint))
        }
        self.directories = directories
    }

    /// Same as `init(paths:layout:)` with a layout detected from `/proc`.
    public init(paths: [String]) throws(CgroupError) {
        try self.init(paths: paths, layout: CgroupLayout.detect())
    }

    /// Creates the directory `<own cgroup>/<name>` in every hierarchy of `layout`, where
    /// `<own cgroup>` is the caller's cgroup there (`/proc/self/cgroup`), or `<parent>/<name>`
    /// when `parent` (`--cgroup-parent`, a cgroup path relative to each hierarchy's root) is given;
    /// missing parents are created. Never creates or writes at a hierarchy root or outside the
    /// chosen subtree. On v1 `cpuset` each new level inherits `cpuset.cpus`/`cpuset.mems` from
    /// its parent when empty (cgroup-v1/cpusets.rst 1.5: tasks cannot attach to an empty cpuset).
    /// No v2 controller is enabled, so the "no internal process" rule (cgroup-v2.rst) is untouched.
    ///
    /// With `include`, only the hierarchies it accepts get a directory (a VM's cgroup leaves out
    /// the controllers Skiff never uses for one).
    ///
    /// On any failure the directories created so far are removed again.
    /// Throws `.invalidName`, `.outsideMount`, `.create` (EEXIST when the name is taken).
    public static func create(
        name: String, parent: String? = nil, layout: CgroupLayout, in include: (CgroupHierarchy) -> Bool = { _ in true }
    ) throws(CgroupError) -> Cgroup {
        let hierarchies = layout.hierarchies.filter(include)
        let leaves = try plannedPaths(name: name, parent: parent, layout: layout, in: include)
        var created: [String] = []  // every directory this call made, in creation order
        var directories: [Directory] = []
        do throws(CgroupError) {
            for (hierarchy, leaf) in zip(hierarchies, leaves) {
                // Create missing levels between the mount point and the leaf, top down.
                let below = leaf.dropFirst(hierarchy.mountPoint.count).split(separator: "/")
                var current = hierarchy.mountPoint
                for (index, component) in below.enumerated() {
                    let parentDir = current
                    current = CgroupFiles.join(current, String(component))
                    let isLeaf = index == below.count - 1
                    if !isLeaf && CgroupFiles.isDirectory(current) { continue }
                    guard mkdir(current, 0o755) == 0 else {
                        let e = errno
                        if !isLeaf && e == EEXIST { continue }  // a concurrent creator won the race
                        throw CgroupError.create(path: current, errno: e)
                    }
                    created.append(current)
                    if hierarchy.version == .v1 && hierarchy.has("cpuset") {
                        try Cpuset.inherit(directory: current, parent: parentDir)
                    }
                }
                directories.append(
                    Directory(
                        path: leaf, version: hierarchy.version, controllers: hierarchy.controllers,
                        mountPoint: hierarchy.mountPoint))
            }
        } catch {
            for dir in created.reversed() { rmdir(dir) }
            throw error
        }
        return Cgroup(directories: directories)
    }

    /// The directories `create(name:parent:layout:)` makes for `name`, one per hierarchy of
    /// `layout` in its order, without touching the file system: a caller can record where a
    /// workload's cgroup will be before another thread has made it.
    /// Throws `.invalidName` or `.outsideMount` as `create` would.
    public static func plannedPaths(
        name: String, parent: String? = nil, layout: CgroupLayout, in include: (CgroupHierarchy) -> Bool = { _ in true }
    ) throws(CgroupError) -> [String] {
        guard !name.isEmpty, name != ".", name != "..", !name.contains("/") else {
            throw .invalidName(
                name, reason: "a cgroup name is one non-empty path component without \"/\"")
        }
        let parentPath: String? = try parent.map { (p: String) throws(CgroupError) -> String in
            try normalizeCgroupPath(p)
        }
        // A file-system path (/sys/fs/cgroup/cpu/x) would be made as a cgroup of that name below
        // each hierarchy's root: the user meant the cgroup, which is named relative to the root.
        if let parentPath {
            // Each mount point and the directory holding it (/sys/fs/cgroup for v1's /sys/fs/cgroup/cpu).
            let mountDirectories = Set(
                layout.hierarchies.flatMap { h in
                    [h.mountPoint, String(h.mountPoint[..<(h.mountPoint.lastIndex(of: "/") ?? h.mountPoint.startIndex)])]
                })
            if let mount = mountDirectories.first(where: { $0.count > 1 && (parentPath == $0 || parentPath.hasPrefix($0 + "/")) }) {
                throw .invalidName(
                    parent ?? parentPath,
                    reason: "--cgroup-parent names a cgroup relative to the hierarchy's root, not a path under \(mount); give e.g. /\(parentPath.split(separator: "/").last ?? "skiff.slice")")
            }
        }
        return try layout.hierarchies.filter(include).map { (hierarchy) throws(CgroupError) -> String in
            let base: String
            if let parentPath {
                guard let dir = hierarchy.directory(of: parentPath) else {
                    throw CgroupError.outsideMount(
                        cgroupPath: parentPath, mountRoot: hierarchy.mountRoot, mountPoint: hierarchy.mountPoint)
                }
                base = dir
            } else {
                guard let dir = hierarchy.ownDirectory else {
                    throw CgroupError.outsideMount(
                        cgroupPath: hierarchy.ownCgroup, mountRoot: hierarchy.mountRoot,
                        mountPoint: hierarchy.mountPoint)
                }
                base = dir
            }
            let leaf = CgroupFiles.join(base, name)
            guard leaf.hasPrefix(hierarchy.mountPoint + "/") else {
                throw CgroupError.invalidName(
                    name, reason: "\(leaf) is not below the hierarchy root \(hierarchy.mountPoint)")
            }
            return leaf
        }
    }

    /// Same as `create(name:parent:layout:)` with a layout detected from `/proc`.
    public static func create(name: String, parent: String? = nil) throws(CgroupError) -> Cgroup {
        try create(name: name, parent: parent, layout: CgroupLayout.detect())
    }

    /// Creates the child cgroup `name` inside this cgroup in every hierarchy (e.g. a leaf for the
    /// init process, so v2 controllers can later be enabled in this one without breaking the
    /// "no internal process" rule, cgroup-v2.rst). v1 `cpuset` children inherit cpus and mems.
    /// Rolls back on failure. Throws `.invalidName` or `.create` (EEXIST when taken).
    public func createChild(name: String) throws(CgroupError) -> Cgroup {
        guard !name.isEmpty, name != ".", name != "..", !name.contains("/") else {
            throw .invalidName(name, reason: "a cgroup name is one non-empty path component without \"/\"")
        }
        var children: [Directory] = []
        do throws(CgroupError) {
            for directory in directories {
                var child = directory
                child.path = CgroupFiles.join(directory.path, name)
                guard mkdir(child.path, 0o755) == 0 else { throw CgroupError.create(path: child.path, errno: errno) }
                children.append(child)
                if directory.version == .v1 && directory.controllers.contains("cpuset") {
                    try Cpuset.inherit(directory: child.path, parent: directory.path)
                }
            }
        } catch {
            for child in children.reversed() { rmdir(child.path) }
            throw error
        }
        return Cgroup(directories: children)
    }

    /// The directory in the v2 hierarchy, if this cgroup has one.
    public var unified: Directory? { directories.first { $0.version == .v2 } }

    /// The directory in the v1 hierarchy carrying `controller`, if any.
    public func v1(_ controller: String) -> Directory? {
        directories.first { $0.version == .v1 && $0.controllers.contains(controller) }
    }
}
