/// `memory` controller accessors (limits come later).
/// v2: `Documentation/admin-guide/cgroup-v2.rst` "Memory Interface Files";
/// v1: `Documentation/admin-guide/cgroup-v1/memory.rst` section 5.
extension Cgroup {
    /// Memory in use by the cgroup and its descendants, in bytes: v1 `memory.usage_in_bytes` where
    /// a v1 hierarchy carries `memory`, else v2 `memory.current` (present only when the parent
    /// enables `memory` in `cgroup.subtree_control`). Nil when neither exists.
    /// Throws `CgroupError.read` or `.unexpectedValue`.
    public func memoryCurrent() throws(CgroupError) -> UInt64? {
        if let dir = v1("memory") { return try readUInt64(dir.file("memory.usage_in_bytes")) }
        if let dir = unified, CgroupFiles.exists(dir.file("memory.current")) {
            return try readUInt64(dir.file("memory.current"))
        }
        return nil
    }

    func readUInt64(_ path: String) throws(CgroupError) -> UInt64 {
        let text = try CgroupFiles.readLine(path).trimmingWhitespace
        guard let value = UInt64(text) else { throw .unexpectedValue(path: path, value: text) }
        return value
    }
}
