import CSkiff
import Cgroups
import LinuxSys
import OCI

#if canImport(Glibc)
    import Glibc
#endif

/// What `skiff exec` runs.
public struct ExecRequest: Sendable {
    public var command: [String]
    public var env: [String] = []
    public var workdir: String?
    public var user: String?
    public var tty = false
    public var interactive = false
    public init(command: [String]) { self.command = command }
}

extension Engine {
    /// Runs a process in a running container: joins every namespace of its PID 1 (`setns` on a
    /// pidfd) and its cgroup, and waits for it. Returns its exit code (Docker's rules).
    /// - Throws: `SkiffError` when the container is not running; `StartError` (126/127) when the
    ///   command cannot be run.
    public func exec(_ ref: String, _ req: ExecRequest) throws -> Int32 {
        let r = try find(ref)
        // A VM's "process" is its VMM on the host: entering its namespaces would run the command
        // on the host, as root. Its guest is reached through its serial console.
        guard r.kind == .container else {
            throw SkiffError(
                "cannot exec in \(r.name): it is a VM, whose processes live in its guest kernel; use its serial console (skiff run --vm in the foreground, or skiff logs)")
        }
        guard r.status == .running, let pid = r.pid,
            let pidfd = Processes.pidfd(pid, startTime: r.pidStartTime)
        else {
            let why = r.status == .paused ? "it is paused (skiff unpause \(r.name))" : "it is not running (status \(r.status.rawValue))"
            throw SkiffError("cannot exec in container \(r.name): \(why)")
        }
        guard let first = req.command.first, !first.isEmpty else { throw SkiffError("no command given to exec") }
        let process = r.spec.process
        var env = process?.env ?? []
        for e in req.env { if let entry = try SpecBuilder.expandEnv(e) { SpecBuilder.set(&env, entry) } }
        if req.tty { SpecBuilder.set(&env, "TERM=xterm") }
        let cwd = req.workdir ?? process?.cwd ?? "/"
        guard cwd.hasPrefix("/") else { throw SkiffError("the working directory \"\(cwd)\" must be an absolute path") }
        let user = req.user ?? r.spec.annotations?["io.skiff.user"]
        // The container's capability sets, no_new_privs and seccomp filter apply to exec'd processes too.
        let security = try ProcessSecurity.from(r.spec, cacheDir: root.path + "/seccomp")

        // Everything host-side is opened before entering the container.
        let cg = try? Cgroup(paths: r.cgroupPaths)
        let join = try cg.map { try CgroupJoin.open($0) } ?? CgroupJoin()
        let stdinFD: Int32 = req.interactive ? 0 : open("/dev/null", O_RDONLY | O_CLOEXEC)
        let sigfd = try Monitor.signalFD()
        closeDatabase()
        try Processes.requireSingleThreaded("exec")
        // Not dumpable: a process inside cannot open /proc/<this>/exe (CVE-2019-5736).
        _ = sk_set_dumpable(0)
        var nsFlags = SK_CLONE_NEWNS | SK_CLONE_NEWUTS | SK_CLONE_NEWIPC | SK_CLONE_NEWPID | SK_CLONE_NEWCGROUP
        if r.settings.network != "host" { nsFlags |= SK_CLONE_NEWNET }
        let inUserNamespace = r.settings.userNamespace != nil
        if inUserNamespace {
            // setns joins the user namespace first; from then on this process is privileged only
            // inside it, so what needs the host's root happens now, inherited by the child.
            nsFlags |= SK_CLONE_NEWUSER
            try ProcessLimits.setRlimits(process?.rlimits ?? [])
            try ProcessLimits.setOOMScoreAdj(ProcessLimits.oomScoreAdj(process?.oomScoreAdj))
        }
        try check(sk_setns(pidfd, nsFlags), "setns", "container \(r.name) (pid \(pid))")
        close(pidfd)

        var master: Int32 = -1
        var slave: Int32 = -1
        if req.tty {
            master = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC)
            try check(master, "open", "/dev/pts/ptmx in container \(r.name)")
            try check(sk_unlockpt(master), "ioctl TIOCSPTLCK", "/dev/pts/ptmx")
            slave = sk_ptmx_peer(master)
            try check(slave, "ioctl TIOCGPTPEER", "/dev/pts/ptmx")
            Monitor.copyWindowSize(to: master)
        }
        var sync: [Int32] = [-1, -1]
        try check(pipe2(&sync, O_CLOEXEC), "pipe2", "exec sync pipe")
        let child = fork()
        if child < 0 { throw SysError("fork", "exec") }
        if child == 0 {
            close(sync[0])
            execChild(
                req.command, env: env, cwd: cwd, user: user, join: join, tty: slave, stdin: stdinFD, sync: sync[1],
                security: security, process: inUserNamespace ? nil : process, userNamespace: inUserNamespace)
        }
        close(sync[1])
        join.close()
        if slave >= 0 { close(slave) }
        let report = (try? Files.read(fd: sync[0], path: "exec sync pipe")) ?? []
        close(sync[0])
        if !report.isEmpty {
            var st: Int32 = 0
            _ = retryEINTR { waitpid(child, &st, 0) }
            throw Launcher.failure(report, command: first, waitStatus: st)
        }
        let output: OutputMode = master >= 0 ? .terminal(master: master, stdin: req.interactive, log: nil) : .inherit
        let status = Monitor.wait(pid: child, signalFD: sigfd, output: output)
        return Processes.exitCode(waitStatus: status)
    }

    /// The exec'd process, already in the container's namespaces. Never returns.
    /// - Parameters:
    ///   - process: the spec's process, whose rlimits and oom_score_adj are applied here (nil when
    ///     the caller has applied them).
    ///   - userNamespace: the container has its own user namespace: become its root first (the
    ///     host ids kept across setns are not mapped in it).
    private func execChild(
        _ args: [String], env: [String], cwd: String, user: String?, join: CgroupJoin, tty: Int32, stdin: Int32, sync: Int32,
        security: ProcessSecurity, process: Spec.Process?, userNamespace: Bool
    ) -> Never {
        func fail(_ e: Error) -> Never {
            let errno_ = (e as? SysError)?.errno ?? 0
            ContainerInit.report(sync, kind: "S", errno: errno_, "\(e)")
            _exit((e as? SkiffError)?.exitCode ?? 126)
        }
        do {
            for fd in join.selfTasks { try Files.write(fd: fd, Array("0".utf8), path: "cgroup tasks") }
            for fd in join.procs { try Files.write(fd: fd, Array("0".utf8), path: "cgroup.procs") }
            if userNamespace {
                try check(sk_become_ns_root(), "setresuid", "0 in the container's user namespace")
            }
            _ = setsid()
            if tty >= 0 {
                for t in Int32(0)...2 { try check(dup2(tty, t), "dup2", "tty") }
                try check(sk_set_ctty(0), "ioctl TIOCSCTTY", "pty")
            } else if stdin != 0 {
                try check(dup2(stdin, 0), "dup2", "stdin")
            }
            // setns(CLONE_NEWNS) made the container's root our root: resolve everything inside it,
            // refusing magic links to host descriptors (CVE-2024-21626).
            let root = try InRoot.open("/")
            let (passwd, group) = ContainerInit.userDatabase(root)
            let u = try ResolvedUser.resolve(user, passwd: passwd, group: group)
            var env = env
            if !env.contains(where: { $0.hasPrefix("HOME=") }) { env.append("HOME=" + u.home) }
            let cwdFD = try ContainerInit.workingDirectory(cwd, root: root, create: false)
            try ContainerInit.enterWorkingDirectory(cwdFD, cwd)
            try setOOMScoreAdjInside(process?.oomScoreAdj, root: root)
            close(root.rootFD)
            // Before the capabilities go: raising a hard limit needs CAP_SYS_RESOURCE.
            try ProcessLimits.setRlimits(process?.rlimits ?? [])
            try security.apply(uid: u.uid, gid: u.gid, groups: u.additionalGids)
            _ = sk_close_range_cloexec(3)
            _ = sk_reset_signals()
            try security.loadLateSeccomp()
            let path = env.last(where: { $0.hasPrefix("PATH=") }).map { String($0.dropFirst(5)) }
            withCStrings(args) { argv in
                withCStrings(env) { envp in
                    sk_exec_path(args[0], argv, envp, path)
                    let e = errno
                    ContainerInit.report(sync, kind: "X", errno: e, args[0])
                    _exit(e == ENOENT ? 127 : 126)
                }
            }
        } catch {
            fail(error)
        }
        _exit(127)
    }

    /// Writes `oom_score_adj` through the container's /proc (the exec'd process is in its PID
    /// namespace), opened inside the root without magic links and checked to be procfs.
    private func setOOMScoreAdjInside(_ v: Int?, root: InRoot) throws {
        guard let v = try ProcessLimits.oomScoreAdj(v) else { return }
        let fd = try root.open("/proc/self/oom_score_adj", flags: O_WRONLY)
        defer { close(fd) }
        guard sk_fstatfs_type(fd) == ProcessLimits.procSuperMagic else {
            throw SkiffError("/proc in the container is not procfs; cannot set oom_score_adj")
        }
        try Files.write(fd: fd, Array(String(v).utf8), path: "/proc/self/oom_score_adj")
    }
}
