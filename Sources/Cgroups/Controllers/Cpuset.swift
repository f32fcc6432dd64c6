import OCI

/// cgroup v1 `cpuset` (`Documentation/admin-guide/cgroup-v1/cpusets.rst`). Limits come later;
/// for now only what creating a cgroup needs.
enum Cpuset {
    /// A new v1 cpuset starts with empty `cpuset.cpus` and `cpuset.mems`, and tasks cannot be
    /// attached to it until both are set (cpusets.rst 1.5, "ENOSPC"). Copy them from the parent
    /// when empty. (`cgroup.clone_children` would do the same, but it is a knob of the parent
    /// that other users of the hierarchy may rely on, so it is left alone.)
    static func inherit(directory: String, parent: String) throws(CgroupError) {
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let path = CgroupFiles.join(directory, file)
            guard CgroupFiles.exists(path) else { continue }  // fake trees, or a kernel without the file
            let own = try CgroupFiles.readLine(path)
            if !own.trimmingWhitespace.isEmpty { continue }
            let inherited = try CgroupFiles.readLine(CgroupFiles.join(parent, file)).trimmingWhitespace
            if inherited.isEmpty { continue }
            try CgroupFiles.write(path, inherited)
        }
    }
}

extension String {
    var trimmingWhitespace: String {
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\n" || c == "\t" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\n" || c == "\t" { s.removeLast() }
        return String(s)
    }
}

/// Writing `linux.resources.cpu.cpus`/`mems` to `cpuset.cpus`/`cpuset.mems` (list format "0-1,3").
/// v1: cgroup-v1/cpusets.rst; v2: cgroup-v2.rst "Cpuset Interface Files" (the `cpuset`
/// controller must be enabled by the parent, which `Cgroup.apply` does).
enum CpusetLimits {
    static func apply(_ cpu: Spec.Resources.CPU, to dir: Cgroup.Directory) throws(CgroupError) {
        if let cpus = cpu.cpus, !cpus.isEmpty { try dir.write("cpuset.cpus", cpus) }
        if let mems = cpu.mems, !mems.isEmpty { try dir.write("cpuset.mems", mems) }
    }
}
