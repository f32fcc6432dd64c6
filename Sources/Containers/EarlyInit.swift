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

    /// Starts the process in a new cgroup `skiff-<id>`; nil when the host has no cgroup v2
    /// hierarchy, clone3 into a cgroup fails, or anything else goes wrong (the caller then uses the
    /// fork path, which needs none of this).
    /// - Parameters:
    ///   - logged: the run keeps a log (not `--rm`): stdout and stderr go to pipes the monitor reads.
    public static func start(id: String, cgroupParent: String?, tty: Bool, interactive: Bool, logged: Bool)
        -> EarlyInit?
    {
        if getenv("SKIFF_EARLY_INIT").map({ String(cString: $0) }) == "0" { return nil }
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
            pending = try Launcher.spawnInit(cgroupDirFD: dir, stdio: stdio, tty: tty)
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

    /// Kills and reaps the process (if not yet handed over), closes the pipes, removes the cgroup.
    public func abort() {
        pending?.abort()
        pending = nil
        for fd in [outRead, errRead] where fd >= 0 { close(fd) }
        try? cgroup.remove(timeout: .seconds(5))
    }
}
