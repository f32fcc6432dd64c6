#if canImport(Glibc)
    import Glibc
#endif

extension Cgroup {
    /// Removes workload cgroups nobody owns: directories named `prefix` + 64 hex digits directly
    /// below this process's own cgroup in each hierarchy (where `create(name:)` makes them without
    /// a parent) that hold no process, whose ID `isKnown` does not claim, and that have not
    /// changed for `olderThan` seconds. A foreground `skiff run` killed between making its
    /// container's cgroup and recording the container leaves such a set; its first process lives
    /// in the cgroup from the moment it exists, so a live one is never empty, and the age keeps a
    /// concurrent start's brand-new directory out of reach.
    /// - Returns: the directories removed (best effort; failures are skipped).
    @discardableResult
    public static func removeOrphans(prefix: String, olderThan seconds: Double, isKnown: (String) -> Bool) -> [String] {
        guard let layout = try? CgroupLayout.detect() else { return [] }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var removed: [String] = []
        for hierarchy in layout.hierarchies {
            guard let base = hierarchy.ownDirectory, let dir = opendir(base) else { continue }
            defer { closedir(dir) }
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
                }
                guard name.hasPrefix(prefix) else { continue }
                let id = String(name.dropFirst(prefix.count))
                guard id.count == 64, id.allSatisfy({ $0.isHexDigit && !$0.isUppercase }), !isKnown(id) else { continue }
                let path = CgroupFiles.join(base, name)
                var st = stat()
                guard stat(path, &st) == 0, Double(now.tv_sec - st.st_mtim.tv_sec) > seconds else { continue }
                guard let procs = try? CgroupFiles.read(CgroupFiles.join(path, "cgroup.procs")),
                    procs.allSatisfy(\.isWhitespace)
                else { continue }
                if rmdir(path) == 0 { removed.append(path) }
            }
        }
        return removed
    }
}
