import Cgroups
import LinuxSys

#if canImport(Glibc)
    import Glibc
#endif

/// How a new process enters its workload cgroup, split by what the kernel makes cheap.
///
/// Writing a PID to `cgroup.procs` takes the global `cgroup_threadgroup_rwsem` for writing, and
/// its first writer waits for an RCU grace period (10–16 ms measured here). On cgroup v1 a
/// single-threaded process can instead write `"0"` to `tasks`, moving its only thread, the
/// caller: the kernel skips that lock for it (`cgroup_procs_write_start`, kernel/cgroup/cgroup.c;
/// 0.1 ms measured). cgroup v2 refuses thread moves between domain cgroups, so there the PID goes
/// to `cgroup.procs`.
struct CgroupJoin {
    /// v1 `tasks` files the process writes `"0"` to itself (O_WRONLY|O_CLOEXEC).
    var selfTasks: [Int32] = []
    /// v2 `cgroup.procs` files another process writes the PID to.
    var procs: [Int32] = []

    /// Opens the files of every hierarchy of `cg`.
    /// - Throws: `SkiffError` naming the file that cannot be opened.
    static func open(_ cg: Cgroup) throws -> CgroupJoin {
        var join = CgroupJoin()
        do {
            for dir in cg.directories {
                let path = dir.file(dir.version == .v1 ? "tasks" : "cgroup.procs")
                let fd = Glibc.open(path, O_WRONLY | O_CLOEXEC)
                try check(fd, "open", path, hint: "the container's cgroup must exist and be writable by root")
                if dir.version == .v1 { join.selfTasks.append(fd) } else { join.procs.append(fd) }
            }
        } catch {
            join.close()
            throw error
        }
        return join
    }

    func close() {
        for fd in selfTasks + procs { Glibc.close(fd) }
    }
}
