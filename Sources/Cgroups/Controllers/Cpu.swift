/// CPU usage accessors (`cpu.max`/`cpu.weight` limits come later).
/// v2: cgroup-v2.rst "Core Interface Files" (`cpu.stat` `usage_usec` is a core statistic,
/// present even without the `cpu` controller); v1: `cgroup-v1/cpuacct.rst` (`cpuacct.usage`, ns).
extension Cgroup {
    /// CPU time consumed by all tasks of the cgroup and its descendants, in microseconds:
    /// v1 `cpuacct.usage` (nanoseconds, divided by 1000) where a v1 hierarchy carries `cpuacct`,
    /// else v2 `cpu.stat` `usage_usec`. Nil when neither exists.
    /// Throws `CgroupError.read` or `.unexpectedValue`.
    public func cpuUsageMicroseconds() throws(CgroupError) -> UInt64? {
        if let dir = v1("cpuacct") { return try readUInt64(dir.file("cpuacct.usage")) / 1000 }
        if let dir = unified, CgroupFiles.exists(dir.file("cpu.stat")) {
            let path = dir.file("cpu.stat")
            let stat = try Self.parseKeyedValues(CgroupFiles.read(path), path: path)
            guard let usage = stat["usage_usec"], usage >= 0 else {
                throw .unexpectedValue(path: path, value: "no usage_usec")
            }
            return UInt64(usage)
        }
        return nil
    }
}
