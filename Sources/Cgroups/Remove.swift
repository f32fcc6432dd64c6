import Glibc

extension Cgroup {
    /// Removes the cgroup in every hierarchy: `rmdir(2)` of each directory and its child
    /// cgroups, deepest first (cgroup-v2.rst "Removing"; cgroup-v1/cgroups.rst 2.3). A cgroup
    /// holding processes cannot be removed (EBUSY); while they are exiting this retries until
    /// `timeout`. A directory that is already gone (ENOENT) counts as removed, so `remove()` can
    /// run again after a crash. Every hierarchy is attempted; the first failure is thrown as
    /// `CgroupError.remove`, naming the directory and what is still inside it.
    public func remove(timeout: Duration = .seconds(2)) throws(CgroupError) {
        let deadline = Deadline(timeout: timeout)
        var firstError: CgroupError?
        for directory in directories {
            guard directory.path.hasPrefix(directory.mountPoint + "/") else {
                firstError = firstError ?? .notACgroup(path: directory.path)  // never rmdir a hierarchy root
                continue
            }
            do {
                for dir in try CgroupFiles.subtreeDeepestFirst(directory.path) {
                    try Self.removeDirectory(dir, deadline: deadline)
                }
            } catch {
                firstError = firstError ?? error
            }
        }
        if let firstError { throw firstError }
    }

    static func removeDirectory(_ dir: String, deadline: Deadline) throws(CgroupError) {
        var sleep = 1
        while true {
            if rmdir(dir) == 0 { return }
            let e = errno
            if e == ENOENT { return }
            if e == EINTR { continue }
            guard e == EBUSY, !deadline.expired else {
                throw .remove(path: dir, errno: e, remaining: describeContents(dir))
            }
            CgroupFiles.sleep(milliseconds: sleep)
            sleep = min(sleep * 2, 20)
        }
    }

    /// What keeps a directory busy: its pids with their commands, and child cgroups.
    static func describeContents(_ dir: String) -> String {
        var parts: [String] = []
        let procs = CgroupFiles.join(dir, "cgroup.procs")
        if let text = try? CgroupFiles.read(procs),
            let pids = try? CgroupFiles.parsePids(text, path: procs), !pids.isEmpty
        {
            let shown = pids.prefix(8).map { pid in
                "pid \(pid) (\((try? CgroupFiles.readLine("/proc/\(pid)/comm")) ?? "?"))"
            }
            parts.append(
                shown.joined(separator: ", ") + (pids.count > 8 ? " and \(pids.count - 8) more" : ""))
        }
        if let children = try? CgroupFiles.subdirectories(dir), !children.isEmpty {
            parts.append("child cgroups " + children.joined(separator: ", "))
        }
        return parts.joined(separator: "; ")
    }
}
