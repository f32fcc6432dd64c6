import CSkiff
import LinuxSys
import OCI

#if canImport(Glibc)
    import Glibc
#endif

/// A container's first process, started and past `execve`.
struct Launched {
    /// Host PID of the container's PID 1.
    var pid: Int32
    /// `/proc/PID/stat` start time, to recognise the process later.
    var startTime: UInt64
    /// pty master when the container has a terminal.
    var ttyMaster: Int32?
}

/// The workload could not be started. `exitCode` follows Docker: 127 command not found,
/// 126 cannot be invoked, 125 Skiff's own setup failed.
public struct StartError: Error, CustomStringConvertible {
    public let message: String
    public let exitCode: Int32
    public var description: String { message }
}

/// Forks the container's first process and waits until it has exec'd the workload.
enum Launcher {
    /// Starts `plan` as PID 1 of a new PID namespace.
    ///
    /// The calling process (the monitor) must be single-threaded; it enters the new PID
    /// namespace for its children with `unshare(CLONE_NEWPID)`, so it may launch only once.
    /// - Parameter stdio: descriptors for the child's 0, 1, 2 (ignored with a tty).
    /// - Throws: `StartError` with Docker's exit code when setup or exec fails; the child has
    ///   been reaped by then, and its namespaces (and mounts) are gone with it.
    static func launch(
        _ plan: LaunchPlan, stdio: [Int32], early: EarlyInit? = nil, beforeRelease: () throws -> Void = {}
    ) throws -> Launched {
        if let early { return try complete(early.take(), plan: plan, beforeRelease: beforeRelease) }
        if plan.spawned { return try spawn(plan, stdio: stdio) }
        try Processes.requireSingleThreaded("container start")
        var sync: [Int32] = [-1, -1]
        try check(pipe2(&sync, O_CLOEXEC), "pipe2", "sync pipe")
        var sock: [Int32] = [-1, -1]
        if plan.tty {
            try check(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &sock), "socketpair", "pty handoff")
        }
        var gate: [Int32] = [-1, -1]
        try check(pipe2(&gate, O_CLOEXEC), "pipe2", "cgroup gate")
        var joined: [Int32] = [-1, -1]
        try check(pipe2(&joined, O_CLOEXEC), "pipe2", "cgroup joined")
        var plan = plan
        plan.cgroupGate = gate[0]
        plan.cgroupJoined = joined[1]
        try check(sk_unshare(SK_CLONE_NEWPID), "unshare", "CLONE_NEWPID", hint: "the kernel must support PID namespaces")
        let pid = fork()
        if pid < 0 { throw SysError("fork", "container init") }
        if pid == 0 {
            close(sync[0])
            close(gate[1])
            close(joined[0])
            if plan.tty { close(sock[0]) }
            _ = sk_set_pdeathsig(SIGKILL)
            ContainerInit.run(plan, syncFD: sync[1], ttySocket: sock[1], stdio: stdio)
        }
        close(sync[1])
        close(gate[0])
        close(joined[1])
        for fd in plan.cgroupSelfTasks { close(fd) }
        // The child moves itself into the v1 hierarchies first (those writes and ours below take
        // cgroup_mutex, which ours holds through its RCU grace period); then we move it into v2
        // while it mounts its root. EOF instead of "J" means it failed: its report follows.
        var j: UInt8 = 0
        _ = retryEINTR { read(joined[0], &j, 1) }
        close(joined[0])
        // Join the child to its cgroups while it mounts its root; it waits for "G" before exec.
        var joinError: SysError? = nil
        for fd in plan.cgroupProcs {
            if joinError == nil {
                do { try Files.write(fd: fd, Array(String(pid).utf8), path: "cgroup.procs") } catch let e as SysError {
                    joinError = e
                } catch {}
            }
            close(fd)
        }
        if let joinError {
            close(gate[1])
            kill(pid, SIGKILL)
            var status: Int32 = 0
            _ = retryEINTR { waitpid(pid, &status, 0) }
            close(sync[0])
            throw StartError(message: "cannot move the container into its cgroup: \(joinError)", exitCode: 125)
        }
        Trace.mark("joined cgroups")
        var go = UInt8(ascii: "G")
        _ = write(gate[1], &go, 1)
        close(gate[1])
        var master: Int32? = nil
        if plan.tty {
            close(sock[1])
            let fd = sk_recv_fd(sock[0])
            close(sock[0])
            if fd >= 0 { master = fd }
        }
        let report = (try? Files.read(fd: sync[0], path: "sync pipe")) ?? []
        close(sync[0])
        if !report.isEmpty {
            var status: Int32 = 0
            _ = retryEINTR { waitpid(pid, &status, 0) }
            if let master { close(master) }
            throw failure(report, command: plan.args[0], waitStatus: status)
        }
        guard let start = Processes.startTime(pid) else {
            var status: Int32 = 0
            _ = retryEINTR { waitpid(pid, &status, 0) }
            throw StartError(message: "the container's process exited before it could be recorded", exitCode: 125)
        }
        return Launched(pid: pid, startTime: start, ttyMaster: master)
    }

    /// Starts the container's first process as a fresh `skiff __skiff-init`, born as PID 1 of a new
    /// PID namespace inside its cgroup v2 directory (`sk_spawn_in_cgroup`: clone3 with
    /// CLONE_INTO_CGROUP | CLONE_NEWPID, then execve of /proc/self/exe). No cgroup.procs migration
    /// happens, so nothing waits for the migration lock's RCU grace period. The plan travels as
    /// JSON on descriptor 3; the child reports on 4 and hands a pty master back on 5, as the
    /// forked child does.
    /// A container in its own user namespace (`plan.userNamespace`) is started the same way, with
    /// CLONE_NEWUSER too, and waits before its `execve` until `UserNamespaceHost` has written its
    /// id maps.
    static func spawn(_ plan: LaunchPlan, stdio: [Int32]) throws -> Launched {
        defer { if plan.cgroupDirFD >= 0 { close(plan.cgroupDirFD) } }
        let pending = try spawnInit(
            cgroupDirFD: plan.cgroupDirFD, stdio: stdio, tty: plan.tty, userNamespace: plan.userNamespace != nil)
        return try complete(pending, plan: plan)
    }

    /// A `skiff __skiff-init` started and waiting for its plan on descriptor 3.
    struct PendingInit {
        var pid: Int32
        /// Write end of the plan pipe.
        var planFD: Int32
        /// Read end of the report pipe.
        var syncFD: Int32
        /// Our end of the pty hand-off socket, or -1.
        var socketFD: Int32
        /// Write end of the gate the process waits on before `execve` (in a user namespace), or -1.
        var gateFD: Int32 = -1
        /// Write end of the release gate: the process sets the container up, then waits on it
        /// before anything of the workload runs (`spawnInit(release:)`), or -1.
        var releaseFD: Int32 = -1

        /// Kills and reaps the process and closes our ends (a start that failed before the plan).
        func abort() {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            _ = retryEINTR { waitpid(pid, &status, 0) }
            for fd in [planFD, syncFD, socketFD, gateFD, releaseFD] where fd >= 0 { close(fd) }
        }
    }

    /// The first half of `spawn`: the process exists, in its cgroup and PID namespace, and its
    /// start-up (exec, the Swift runtime) runs while the caller prepares the plan.
    /// - Parameters:
    ///   - cgroupDirFD: the cgroup v2 directory to be born in, or -1 for the caller's cgroups.
    ///   - execFD: a read-only image of skiff to execute (`SelfExe.protectedImage`), or -1 to
    ///     execute `/proc/self/exe` (then this process must itself run from such an image).
    ///   - joinV1TasksFiles: v1 `tasks` files the process writes itself into as soon as it starts
    ///     (`SpawnedInit.joinEnvironment`), before it waits for the plan.
    ///   - userNamespace: also create a user namespace (CLONE_NEWUSER, which then owns the PID
    ///     namespace); the process waits before `execve` until `gateFD` gets "G".
    ///   - release: the process gets a release gate as fd `releaseGateNumber`: once the plan has set
    ///     the container up it waits there for "G" (`complete`'s `beforeRelease` runs meanwhile).
    /// - Throws: `SysError` when clone3 fails (a kernel before 5.7, or no cgroup v2 directory).
    static func spawnInit(
        cgroupDirFD: Int32, stdio: [Int32], tty: Bool, execFD: Int32 = -1, joinV1TasksFiles: [String] = [],
        userNamespace: Bool = false, release: Bool = false
    ) throws -> PendingInit {
        var sync: [Int32] = [-1, -1]
        try check(pipe2(&sync, O_CLOEXEC), "pipe2", "sync pipe")
        var planPipe: [Int32] = [-1, -1]
        try check(pipe2(&planPipe, O_CLOEXEC), "pipe2", "plan pipe")
        var sock: [Int32] = [-1, -1]
        if tty {
            try check(
                socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &sock), "socketpair",
                "pty handoff")
        }
        var gate: [Int32] = [-1, -1]
        if userNamespace { try check(pipe2(&gate, O_CLOEXEC), "pipe2", "exec gate") }
        var releaseGate: [Int32] = [-1, -1]
        if release { try check(pipe2(&releaseGate, O_CLOEXEC), "pipe2", "release gate") }
        let fds: [Int32] = [stdio[0], stdio[1], stdio[2], planPipe[0], sync[1], tty ? sock[1] : -1, releaseGate[0]]
        var env: [String] = []
        if let epoch = Trace.epoch { env.append("SKIFF_TRACE=\(epoch)") }
        if !joinV1TasksFiles.isEmpty {
            env.append(SpawnedInit.joinEnvironment + "=" + joinV1TasksFiles.joined(separator: "\n"))
        }
        let flags = UInt64(SK_CLONE_NEWPID) | (userNamespace ? UInt64(SK_CLONE_NEWUSER) : 0)
        let pid = withCStrings(["skiff", SpawnedInit.argument]) { argv in
            withCStrings(env) { envp in
                fds.withUnsafeBufferPointer { f in
                    sk_spawn_in_cgroup(
                        flags, cgroupDirFD, execFD, gate[0], "/proc/self/exe", argv, envp, f.baseAddress,
                        Int32(f.count))
                }
            }
        }
        let spawnErrno = errno
        close(sync[1])
        close(planPipe[0])
        if tty { close(sock[1]) }
        if gate[0] >= 0 { close(gate[0]) }
        if releaseGate[0] >= 0 { close(releaseGate[0]) }
        guard pid > 0 else {
            for fd in [sync[0], planPipe[1], sock[0], gate[1], releaseGate[1]] where fd >= 0 { close(fd) }
            let into = cgroupDirFD >= 0 ? "CLONE_INTO_CGROUP|" : ""
            let what = into + "CLONE_NEWPID" + (userNamespace ? "|CLONE_NEWUSER" : "")
            throw SysError(
                "clone3", what, errno: spawnErrno,
                hint: userNamespace
                    ? "user namespaces must be enabled (user.max_user_namespaces > 0)"
                    : "Linux 5.7 or newer is needed; without SKIFF_SPAWN=1 skiff forks and migrates instead")
        }
        return PendingInit(
            pid: pid, planFD: planPipe[1], syncFD: sync[0], socketFD: tty ? sock[0] : -1, gateFD: gate[1],
            releaseFD: releaseGate[1])
    }

    /// The release gate's descriptor number in a spawned process (after stdio, plan, sync, pty).
    static let releaseGateNumber: Int32 = 6

    /// The second half: sends `plan` and waits until the process has exec'd the workload.
    /// - Throws: `StartError` with Docker's exit code; the process has been reaped then.
    /// With a release gate, `beforeRelease` runs once the plan is sent, while the process sets the
    /// container up; if it throws, the process is killed before any of the workload ran.
    static func complete(_ pending: PendingInit, plan: LaunchPlan, beforeRelease: () throws -> Void = {}) throws
        -> Launched
    {
        var pending = pending
        var plan = plan
        if pending.releaseFD >= 0 { plan.cgroupGate = releaseGateNumber }
        let pid = pending.pid
        if let ns = plan.userNamespace {
            // Everything only the host's root can do, then the gate; the root filesystem is built
            // while the process execs and starts (it mounts nothing before it has the plan).
            do {
                try UserNamespaceHost.prepareChild(pid: pid, plan: plan, userNamespace: ns)
                var go = UInt8(ascii: "G")
                _ = write(pending.gateFD, &go, 1)
                close(pending.gateFD)
                pending.gateFD = -1
                try UserNamespaceHost.mountRootfs(pid: pid, plan: plan)
            } catch {
                pending.abort()
                UserNamespaceHost.detachRootfs(plan)
                throw StartError(message: "cannot set up the container's user namespace: \(error)", exitCode: 125)
            }
        }
        // The child has its own copy of the root filesystem once it reports (exec or failure).
        defer { if plan.userNamespace != nil { UserNamespaceHost.detachRootfs(plan) } }
        let bytes = (try? OCIJSON.encode(plan)) ?? []
        try? Files.write(fd: pending.planFD, bytes, path: "plan pipe")
        close(pending.planFD)
        pending.planFD = -1
        if pending.releaseFD >= 0 {
            do {
                try beforeRelease()
            } catch {
                pending.abort()
                throw error
            }
            var go = UInt8(ascii: "G")
            _ = write(pending.releaseFD, &go, 1)
            close(pending.releaseFD)
            pending.releaseFD = -1
        }
        var master: Int32? = nil
        if pending.socketFD >= 0 {
            let fd = sk_recv_fd(pending.socketFD)
            close(pending.socketFD)
            if fd >= 0 { master = fd }
        }
        let report = (try? Files.read(fd: pending.syncFD, path: "sync pipe")) ?? []
        close(pending.syncFD)
        var status: Int32 = 0
        if !report.isEmpty {
            _ = retryEINTR { waitpid(pid, &status, 0) }
            if let master { close(master) }
            throw failure(report, command: plan.args[0], waitStatus: status)
        }
        guard let start = Processes.startTime(pid) else {
            _ = retryEINTR { waitpid(pid, &status, 0) }
            throw StartError(message: "the container's process exited before it could be recorded", exitCode: 125)
        }
        return Launched(pid: pid, startTime: start, ttyMaster: master)
    }

    /// Decodes the child's failure report (see `ContainerInit`).
    static func failure(_ report: [UInt8], command: String, waitStatus: Int32) -> StartError {
        let kind = report[0]
        var e: Int32 = 0
        if report.count >= 5 { withUnsafeMutableBytes(of: &e) { $0.copyBytes(from: report[1..<5]) } }
        let text = report.count > 5 ? String(decoding: report[5...], as: UTF8.self) : command
        if kind == UInt8(ascii: "X") {
            let file = text.isEmpty ? command : text
            switch e {
            case ENOENT:
                let what = file.contains("/") ? "no such file or directory" : "executable file not found in $PATH"
                return StartError(message: "exec \"\(file)\": \(what)", exitCode: 127)
            case EACCES:
                return StartError(message: "exec \"\(file)\": permission denied", exitCode: 126)
            default:
                return StartError(message: "exec \"\(file)\": \(SysError.message(e))", exitCode: 126)
            }
        }
        let code = Processes.exitCode(waitStatus: waitStatus)
        return StartError(message: "container setup failed: \(text)", exitCode: code == 126 ? 126 : 125)
    }
}
