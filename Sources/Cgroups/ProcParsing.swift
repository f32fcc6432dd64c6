import LinuxSys

/// One line of `/proc/<pid>/mountinfo` (`Documentation/filesystems/proc.rst`, section 3.5):
/// `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`.
struct MountinfoEntry: Equatable, Sendable {
    /// Field 3, `major:minor` of the file system (one value per cgroup v1 hierarchy).
    var device: String
    /// Field 4, the path inside the file system that is mounted (for cgroups: a cgroup path).
    var root: String
    /// Field 5, the mount point, relative to the process's root.
    var mountPoint: String
    /// The file system type after the ` - ` separator (`cgroup` or `cgroup2` for us).
    var fsType: String
    /// The per-superblock options (for cgroup v1 these name the controllers, e.g. `rw,cpu,cpuacct`).
    var superOptions: [String]

    /// Parses the whole file; lines of other file systems are kept (callers filter).
    static func parse(_ text: String, path: String) throws(CgroupError) -> [MountinfoEntry] {
        var entries: [MountinfoEntry] = []
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            guard fields.count > 6, let dash = fields[6...].firstIndex(of: "-"), dash + 3 < fields.count
            else {
                throw .malformed(path: path, line: String(line))
            }
            let superOptions = fields[dash + 3]
            entries.append(
                MountinfoEntry(
                    device: fields[2], root: unescape(fields[3]), mountPoint: unescape(fields[4]),
                    fsType: fields[dash + 1],
                    superOptions: superOptions.split(separator: ",").map(String.init)))
        }
        return entries
    }

    /// Undoes mountinfo's octal escapes (see `Mountinfo.unescape`).
    static func unescape(_ s: String) -> String { Mountinfo.unescape(s) }
}

/// One line of `/proc/<pid>/cgroup`: `hierarchy-ID:controller-list:cgroup-path`
/// (`Documentation/admin-guide/cgroup-v2.rst`, "Processes"; `cgroup-v1/cgroups.rst` 2.x).
/// The v2 hierarchy is the line `0::/path`.
struct ProcCgroupEntry: Equatable, Sendable {
    var hierarchyID: Int
    /// Controllers bound to the hierarchy, `name=` entries included (`cpu,cpuacct`, `name=systemd`).
    var controllers: [String]
    /// The process's cgroup, relative to the hierarchy's root (or the cgroup namespace's root).
    var path: String

    static func parse(_ text: String, path file: String) throws(CgroupError) -> [ProcCgroupEntry] {
        var entries: [ProcCgroupEntry] = []
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3, let id = Int(parts[0]), parts[2].hasPrefix("/") else {
                throw .malformed(path: file, line: String(line))
            }
            entries.append(
                ProcCgroupEntry(
                    hierarchyID: id, controllers: parts[1].split(separator: ",").map(String.init),
                    path: String(parts[2])))
        }
        return entries
    }
}

/// Cgroup v1 mount options that are not controllers (`kernel/cgroup/cgroup-v1.c`
/// `cgroup1_parse_param`); everything else in a `cgroup` mount's options names a controller.
let cgroupV1NonControllerOptions: Set<String> = [
    "rw", "ro", "none", "all", "noprefix", "xattr", "clone_children", "cpuset_v2_mode",
    "favordynmods",
    "nofavordynmods",
]

/// The controllers a cgroup v1 mount carries, from its super options: `name=` entries are kept,
/// other `key=value` options (`release_agent=`) and the flags above are dropped.
func cgroupV1Controllers(superOptions: [String]) -> [String] {
    superOptions.filter { option in
        if option.hasPrefix("name=") { return true }
        return !option.contains("=") && !cgroupV1NonControllerOptions.contains(option)
    }
}

/// Normalizes a cgroup path: a leading `/`, no empty or `.` components, no trailing `/`.
/// Throws `invalidName` for `..`, which could climb out of the intended subtree.
func normalizeCgroupPath(_ path: String) throws(CgroupError) -> String {
    var parts: [Substring] = []
    for part in path.split(separator: "/", omittingEmptySubsequences: true) {
        if part == "." { continue }
        if part == ".." { throw .invalidName(path, reason: "\"..\" is not allowed in a cgroup path") }
        parts.append(part)
    }
    return "/" + parts.joined(separator: "/")
}

/// Maps a cgroup path onto the directory where it appears, given a mount of the hierarchy whose
/// root (mountinfo field 4) is `mountRoot`. Returns nil when the path lies outside that root.
func directory(ofCgroup cgroupPath: String, mountPoint: String, mountRoot: String) -> String? {
    let root =
        mountRoot == "/" ? "" : (mountRoot.hasSuffix("/") ? String(mountRoot.dropLast()) : mountRoot)
    if root.isEmpty { return CgroupFiles.join(mountPoint, cgroupPath) }
    if cgroupPath == root { return mountPoint }
    guard cgroupPath.hasPrefix(root + "/") else { return nil }
    return CgroupFiles.join(mountPoint, String(cgroupPath.dropFirst(root.count)))
}
