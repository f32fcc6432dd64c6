import OCI

/// `pids` controller accessors and `pids.max`.
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

/// Writing `linux.resources.pids.limit` to `pids.max` (same file on v1 and v2).
/// runtime-spec `config-linux.md#pids` as clarified by runtime-spec PR #1279 (runc #4949, 1.4.0;
/// oci-runtimes.md §5 bug 6): -1 (any negative) → "max"; 0 is a real limit of 0 tasks, not
/// "unset"; an absent `pids` object leaves `pids.max` alone.
enum PidsLimits {
    static func value(_ limit: Int64) -> String { limit < 0 ? "max" : String(limit) }

    static func apply(_ pids: Spec.Resources.Pids, to dir: Cgroup.Directory) throws(CgroupError) {
        try dir.write("pids.max", value(pids.limit))
    }
}
