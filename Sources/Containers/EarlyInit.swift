import CSkiff
import Cgroups
import LinuxSys

#if canImport(Glibc)
    import Glibc
#endif

/// The first process of a foreground `skiff run`, started before the container is even recorded.
///
/// A container's first process is a fresh single-threaded `skiff __skiff-init` born in its cgroup
/// (`Launcher.spawnInit`: clone3 with CLONE_INTO_CGROUP, no cgroup.procs migration and so no RCU
/// grace period). Its start-up — execve and the Swift runtime, a few milliseconds — would sit on
/// the critical path if it began after the record, cgroup and plan exist. Started first, from the
/// container ID alone, it runs on another CPU while this process opens the state database,
/// resolves the image and admits the workload; it does nothing until the plan arrives on its
/// pipe, and limits are in place by then (`Engine.prepare` applies them before sending it).
///
/// Whatever fails before the plan is sent (an unknown image, a refused admission), `abort` kills
/// and reaps the process and removes the cgroup, so nothing is left.
public final class EarlyInit {
    let cgroup: Cgroup
    /// stdin, stdout and stderr the process got (ours: closed after it is started).
    let stdio: [Int32]
    /// Read ends of the stdout/stderr pipes when the run is logged; -1 otherwise.
    let outRead: Int32
    let errRead: Int32
    private var pending: Launcher.PendingInit?
    /// The read-only image of skiff the process was started from (owned; -1 when none).
    private var imageFD: Int32 = -1

    /// Starts the process in a new cgroup `skiff-<id>`; nil when the host has no cgroup v2
    /// hierarchy, clone3 into a cgroup fails, or anything else goes wrong (the caller then uses the
    /// fork path, which needs none of this).
    /// - Parameters:
    ///   - logged: the run keeps a log (not `--rm`): stdout and stderr go to pipes the monitor reads.
    ///   - execFD: the read-only image of skiff the process runs from (`SelfExe.protectedImage`), or
    ///     -1 when this process already runs from one. Owned from here on: closed by
    ///     `releaseImage` or `abort`, or at once when nil is returned.
    public static func start(
        id: String, cgroupParent: String?, tty: Bool, interactive: Bool, logged: Bool, execFD: Int32 = -1
    ) -> EarlyInit?
    {
        guard getenv("SKIFF_EARLY_INIT").map({ String(cString: $0) }) != "0" else {
            if execFD >= 0 { close(execFD) }
            return nil
        }
        var handedOver = false
        defer { if !handedOver && execFD >= 0 { close(execFD) } }
        guard let cg = try? Cgroup.create(name: "skiff-" + id, parent: cgroupParent) else { return nil }
        guard let v2 = cg.unified else {
            try? cg.remove()
            return nil
        }
        let dir = open(v2.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dir >= 0 else {
            try? cg.remove()
            return nil
        }
        defer { close(dir) }
        let stdin: Int32 = interactive ? 0 : open("/dev/null", O_RDONLY | O_CLOEXEC)
        var out: [Int32] = [-1, -1]
        var err: [Int32] = [-1, -1]
        if logged && !tty {
            guard pipe2(&out, O_CLOEXEC) == 0, pipe2(&err, O_CLOEXEC) == 0 else {
                for fd in out + err where fd >= 0 { close(fd) }
                try? cg.remove()
                return nil
            }
        }
        let stdio: [Int32] = [stdin, out[1] >= 0 ? out[1] : 1, err[1] >= 0 ? err[1] : 2]
        let pending: Launcher.PendingInit
        do {
            // It joins the v1 hierarchies at once, while we prepare: each v1 migration waits for
            // an RCU grace period (cgroup_threadgroup_rwsem), which then overlaps our work.
            let v1 = cg.directories.filter { $0.version == .v1 }.map { $0.file("tasks") }
            pending = try Launcher.spawnInit(
                cgroupDirFD: dir, stdio: stdio, tty: tty, execFD: execFD, joinV1TasksFiles: v1, release: true)
        } catch {
            for fd in out + err where fd >= 0 { close(fd) }
            if stdin > 2 { close(stdin) }
            try? cg.remove()
            return nil
        }
        Trace.mark("early init spawned")
        for fd in [out[1], err[1]] where fd >= 0 { close(fd) }
        if stdin > 2 { close(stdin) }
        let early = EarlyInit(cgroup: cg, stdio: stdio, outRead: out[0], errRead: err[0])
        early.pending = pending
        early.imageFD = execFD
        handedOver = true
        return early
    }

    private init(cgroup: Cgroup, stdio: [Int32], outRead: Int32, errRead: Int32) {
        self.cgroup = cgroup
        self.stdio = stdio
        self.outRead = outRead
        self.errRead = errRead
    }

    /// The started process, handed to `Launcher.complete` once.
    func take() -> Launcher.PendingInit {
        guard let p = pending else { preconditionFailure("EarlyInit taken twice") }
        pending = nil
        return p
    }

    /// Closes the image descriptor. The image is a detached mount that goes away with its last
    /// reference, and unmounting waits for an RCU grace period: called once the workload runs, so
    /// that wait overlaps it rather than the start (the exec'd workload no longer holds the image).
    func releaseImage() {
        if imageFD >= 0 { close(imageFD) }
        imageFD = -1
    }

    /// Kills and reaps the process (if not yet handed over), closes the pipes, removes the cgroup.
    public func abort() {
        releaseImage()
        pending?.abort()
        pending = nil
        for fd in [outRead, errRead] where fd >= 0 { close(fd) }
        try? cgroup.remove(timeout: .seconds(5))
    }
}
