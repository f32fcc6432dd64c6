/// `pids` controller accessors (`pids.max` comes later).
/// v2: cgroup-v2.rst "PID Interface Files"; v1: `Documentation/admin-guide/cgroup-v1/pids.rst`.
extension Cgroup {
    /// Number of tasks (threads, not only processes) in the cgroup and its descendants:
    /// `pids.current` of the hierarchy carrying `pids` (v1 first, then v2 when enabled there).
    /// Without a `pids` controller, falls back to counting `pids()` (processes only).
    /// Throws `CgroupError.read` or `.unexpectedValue`.
    public func pidsCurrent() throws(CgroupError) -> UInt64 {
        if let dir = v1("pids") { return try readUInt64(dir.file("pids.current")) }
        if let dir = unified, CgroupFiles.exists(dir.file("pids.current")) {
            return try readUInt64(dir.file("pids.current"))
        }
        return UInt64(try pids().count)
    }
}
