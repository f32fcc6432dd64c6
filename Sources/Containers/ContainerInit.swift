import CSkiff
import LinuxSys
import OCI

#if canImport(Glibc)
    import Glibc
#endif

/// The container's first process, between `fork()` and `execve()`.
///
/// Runs in a freshly forked, single-threaded copy of the monitor, already inside the new PID
/// namespace as PID 1 (the monitor called `unshare(CLONE_NEWPID)` before forking). It never
/// returns: it execs the workload or reports the failure over `syncFD` and exits.
///
/// Failure report on `syncFD`: one byte kind (`S` setup failed, `X` exec failed), errno as 4
/// native-endian bytes, then a UTF-8 message. A successful `execve` closes `syncFD` (O_CLOEXEC),
/// which the monitor reads as EOF.
enum ContainerInit {
    static func run(_ plan: LaunchPlan, syncFD: Int32, ttySocket: Int32, stdio: [Int32]) -> Never {
        do {
            try setup(plan, syncFD: syncFD, ttySocket: ttySocket, stdio: stdio)
        } catch let e as SysError {
            report(syncFD, kind: "S", errno: e.errno, e.description)
            _exit(125)
        } catch let e as SkiffError {
            report(syncFD, kind: "S", errno: 0, e.message)
            _exit(e.exitCode)
        } catch {
            report(syncFD, kind: "S", errno: 0, "\(error)")
            _exit(125)
        }
        // setup() only returns by exec failure, already reported.
        _exit(127)
    }

    static func report(_ fd: Int32, kind: Character, errno e: Int32, _ message: String) {
        var msg: [UInt8] = [UInt8(ascii: kind.unicodeScalars.first ?? "S")]
        withUnsafeBytes(of: e) { msg.append(contentsOf: $0) }
        msg.append(contentsOf: message.utf8)
        try? Files.write(fd: fd, msg)
    }

    private static func setup(_ plan: LaunchPlan, syncFD: Int32, ttySocket: Int32, stdio: [Int32]) throws {
        umask(0o022)
        _ = setsid()
        // Not dumpable while a copy of skiff: nothing in the container may open /proc/PID/exe or
        // /proc/PID/fd of this process (CVE-2019-5736); execve of the workload resets it.
        _ = sk_set_dumpable(0)
        // Through the host's /proc, before anything of the container's is mounted (in a user
        // namespace the host side has set it, and the rlimits: see UserNamespaceHost).
        let inUserNamespace = plan.userNamespace != nil
        if !inUserNamespace { try ProcessLimits.setOOMScoreAdj(plan.oomScoreAdj) }
        if plan.spawned {
            // Born in the v2 cgroup; into the v1 hierarchies by a self-move (see CgroupJoin).
            for path in plan.v1TasksPaths { try Files.writeExisting(path, "0") }
        } else {
            for fd in plan.cgroupProcs { close(fd) }
            // Into the v1 hierarchies at once, without the global migration lock (see CgroupJoin);
            // the monitor moves us into the v2 one meanwhile.
            for fd in plan.cgroupSelfTasks {
                try Files.write(fd: fd, Array("0".utf8), path: "cgroup tasks")
                close(fd)
            }
            try Files.write(fd: plan.cgroupJoined, [UInt8(ascii: "J")], path: "cgroup joined pipe")
            close(plan.cgroupJoined)
        }
        try check(sk_unshare(plan.unshareFlags), "unshare", "namespaces")
        Trace.mark("child: unshared")
        // The kernel picks the IPC and network namespace's sysctl table from the writer.
        try ProcessLimits.writeSysctls(plan.sysctls)
        // Our copy of the host's mounts: receive host mount events, never send ours back.
        try check(mount(nil, "/", nil, UInt(MS_REC | MS_SLAVE), nil), "mount", "/ (make rslave)")
        if plan.bringUpLoopback {
            try check(sk_loopback_up(), "ioctl SIOCSIFFLAGS", "lo")
        }
        try check(sethostname(plan.hostname, plan.hostname.utf8.count), "sethostname", plan.hostname)

        Trace.mark("child: hostname set")
        try mountRootfs(plan)
        Trace.mark("child: rootfs mounted")
        let root = try InRoot.open(plan.rootfsMountPoint)
        for m in plan.mounts {
            try apply(m, in: root)
        }
        if plan.mounts.contains(where: { $0.destination == "/dev" && $0.type == "tmpfs" }) {
            try populateDev(root, bindHostNodes: inUserNamespace)
        }
        Trace.mark("child: mounts done")
        var ttySlave: Int32 = -1
        if plan.tty {
            ttySlave = try openConsole(root, plan: plan, socket: ttySocket)
        }
        close(root.rootFD)

        try check(chdir(plan.rootfsMountPoint), "chdir", plan.rootfsMountPoint)
        try check(sk_pivot_root(".", "."), "pivot_root", plan.rootfsMountPoint)
        try check(umount2(".", Int32(MNT_DETACH)), "umount2", "old root")
        try check(chdir("/"), "chdir", "/")
        Trace.mark("child: pivoted")
        let newRoot = try InRoot.open("/")
        try protectKernelPaths(plan, root: newRoot)
        // Docker creates the working directory, even on a read-only root: before the remount.
        let cwdFD = try workingDirectory(plan.cwd, root: newRoot, create: true)
        if plan.readonlyRoot {
            // Keeping nosuid/nodev/noexec: in a user namespace the kernel locks them on the root.
            let keep = UInt(max(0, sk_statfs_flags("/"))) & UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC)
            try check(
                mount(nil, "/", nil, UInt(MS_BIND | MS_REMOUNT | MS_RDONLY) | keep, nil), "mount", "/ (read-only)")
        }

        Trace.mark("child: paths protected")
        let (passwd, group) = userDatabase(newRoot)
        close(newRoot.rootFD)
        let user = try ResolvedUser.resolve(plan.user, passwd: passwd, group: group)
        var env = plan.env
        if !env.contains(where: { $0.hasPrefix("HOME=") }) { env.append("HOME=" + user.home) }

        try enterWorkingDirectory(cwdFD, plan.cwd)

        if plan.tty {
            for target in Int32(0)...2 { try check(dup2(ttySlave, target), "dup2", "tty") }
            if ttySlave > 2 { close(ttySlave) }
            try check(sk_set_ctty(0), "ioctl TIOCSCTTY", "/dev/console")
        } else {
            for (target, fd) in stdio.enumerated() where fd != Int32(target) {
                try check(dup2(fd, Int32(target)), "dup2", "stdio \(target)")
            }
        }

        // The monitor moves us into the workload cgroup while we set up (a v1 cgroup migration
        // waits for an RCU grace period, ~10 ms); wait for it, then make that cgroup our
        // cgroup namespace root, before anything of the workload runs.
        Trace.mark("child ready")
        // Forked: the cgroup gate above. Spawned early (EarlyInit): the release gate, opened once
        // the container is recorded (Launcher.complete's beforeRelease).
        if plan.cgroupGate >= 0 {
            var go: UInt8 = 0
            guard retryEINTR({ read(plan.cgroupGate, &go, 1) }) == 1, go == UInt8(ascii: "G") else { _exit(125) }
            close(plan.cgroupGate)
        }
        try check(sk_unshare(SK_CLONE_NEWCGROUP), "unshare", "CLONE_NEWCGROUP")
        mountCgroups(plan.cgroupMounts)
        Trace.mark("child released")
        if !inUserNamespace { try ProcessLimits.setRlimits(plan.rlimits) }

        // The user, the capability sets and no_new_privs (and seccomp when no_new_privs is off).
        let security =
            plan.security ?? ProcessSecurity(capabilities: nil, noNewPrivileges: plan.noNewPrivileges, seccomp: nil)
        do {
            try security.apply(uid: user.uid, gid: user.gid, groups: user.additionalGids)
        } catch let e as SysError where e.errno == EINVAL && plan.userNamespace != nil {
            // In a user namespace an id outside its map cannot be taken (setuid/setgid: EINVAL).
            let size = plan.userNamespace?.uidMappings.first?.size ?? 0
            let largest = ([user.uid, user.gid] + user.additionalGids).max() ?? 0
            let groups = user.additionalGids.isEmpty ? "" : " (groups \(user.additionalGids.map(String.init).joined(separator: ",")))"
            throw SkiffError(
                "user \(user.uid):\(user.gid)\(groups) is outside the container's user namespace, which maps ids 0-\(Int(size) - 1); use --userns=auto:size=\(Int(largest) + 1) or more (\(e))"
            )
        }
        Trace.mark("child: user and capabilities set")
        // Credential changes clear the parent-death signal; set it again for the workload.
        _ = sk_set_pdeathsig(SIGKILL)
        _ = sk_close_range_cloexec(3)
        _ = sk_reset_signals()

        let path = env.last(where: { $0.hasPrefix("PATH=") }).map { String($0.dropFirst(5)) }
        let file = plan.args[0]
        // The seccomp filter last, just before execve (runc's order with no_new_privs).
        try security.loadLateSeccomp()
        Trace.mark("child: seccomp loaded")
        withCStrings(plan.args) { argv in
            withCStrings(env) { envp in
                if plan.useInit {
                    // PID 1 never execs: close, not just mark, every host descriptor (the state
                    // database, the monitor's pipes), keeping only the report pipe.
                    _ = sk_close_from3_except(syncFD)
                    _ = sk_set_name("skiff-init")
                    _ = sk_set_cmdline("skiff-init")
                    // PID 1 stays a copy of skiff: keep /proc/1/exe closed to the workload.
                    _ = sk_set_dumpable(0)
                    let status = sk_init_run(file, argv, envp, path, syncFD)
                    _exit(status < 0 ? 125 : Processes.exitCode(waitStatus: status))
                }
                sk_exec_path(file, argv, envp, path)
                let e = errno
                report(syncFD, kind: "X", errno: e, file)
                _exit(e == ENOENT ? 127 : 126)
            }
        }
    }

    /// Mounts the overlay (or the `--rootfs` bind) on the rootfs mount point. In a user namespace
    /// the host side has mounted the idmapped overlay there (`UserNamespaceHost`); our copy of it
    /// is locked, which `pivot_root` refuses (EINVAL), so it is bound onto itself: the new mount
    /// is ours, and keeps the locked flags (nodev).
    private static func mountRootfs(_ plan: LaunchPlan) throws {
        if plan.userNamespace != nil {
            try check(
                mount(plan.rootfsMountPoint, plan.rootfsMountPoint, nil, UInt(MS_BIND | MS_REC), nil), "mount",
                "bind \(plan.rootfsMountPoint) onto itself",
                hint: "the runtime directory must be searchable by the container's root (mode 0711 or wider)")
            return
        }
        if let dir = plan.bindRootfs {
            try check(mount(dir, plan.rootfsMountPoint, nil, UInt(MS_BIND | MS_REC), nil), "mount", "rootfs \(dir)")
            return
        }
        let data = "lowerdir=\(plan.lowerdirs.joined(separator: ":")),upperdir=\(plan.upperdir),workdir=\(plan.workdir)"
        try check(
            mount("overlay", plan.rootfsMountPoint, "overlay", 0, data), "mount", "overlay on \(plan.rootfsMountPoint)",
            hint: "check that the overlay module is loaded and the state root is not itself on overlayfs")
    }

    /// Mounts one spec mount onto its destination, resolved inside the root.
    private static func apply(_ m: Spec.Mount, in root: InRoot) throws {
        let opts = MountOptions(m.options ?? [])
        let isBind = opts.isBind || m.type == "bind"
        var sourceIsFile = false
        if isBind, let src = m.source {
            var st = stat()
            guard stat(src, &st) == 0 else { throw SysError("stat", "bind source \(src)", hint: "the host path must exist") }
            sourceIsFile = (st.st_mode & S_IFMT) != S_IFDIR
        }
        let target = try root.mountTarget(m.destination, file: sourceIsFile)
        defer { close(target) }
        let where_ = procFD(target)
        if isBind {
            let src = m.source ?? ""
            let flags = UInt(MS_BIND) | (opts.recursive ? UInt(MS_REC) : 0)
            try check(mount(src, where_, nil, flags, nil), "mount", "bind \(src) on \(m.destination)")
            if opts.bindRemountFlags != 0 {
                // A bind mount ignores flags on creation; remount keeping the source's locked flags.
                let fd = try root.open(m.destination, flags: O_PATH)
                defer { close(fd) }
                let keep = UInt(max(0, sk_statfs_flags(procFD(fd)))) & UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC)
                try check(
                    mount(nil, procFD(fd), nil, UInt(MS_BIND | MS_REMOUNT) | opts.bindRemountFlags | keep, nil),
                    "mount", "remount \(m.destination) \(m.options ?? [])")
            }
        } else {
            let type = m.type ?? "none"
            try check(
                mount(m.source ?? type, where_, type, opts.flags, opts.dataString.isEmpty ? nil : opts.dataString),
                "mount", "\(type) on \(m.destination) with options \(m.options ?? [])",
                hint: "check the mount options (for --tmpfs: PATH[:size=64m,mode=1777,...])")
        }
        if opts.propagation != 0 {
            let fd = try root.open(m.destination, flags: O_PATH)
            defer { close(fd) }
            try check(mount(nil, procFD(fd), nil, opts.propagation, nil), "mount", "propagation of \(m.destination)")
        }
    }

    /// The device nodes and links every container gets in its `/dev` tmpfs (runtime-spec
    /// config-linux.md#default-devices, plus Docker's `/dev/fd` links).
    /// - Parameter bindHostNodes: bind the host's nodes onto empty files instead of `mknod` (in a
    ///   user namespace `mknod` is refused, and nodes on a tmpfs it mounted would not open), as
    ///   runc does for rootless containers; each host node is checked to be the device it names.
    private static func populateDev(_ root: InRoot, bindHostNodes: Bool) throws {
        let dev = try root.open("/dev", flags: O_PATH | O_DIRECTORY)
        defer { close(dev) }
        let nodes: [(String, UInt32, UInt32)] = [
            ("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0),
        ]
        for (name, major, minor) in nodes {
            if bindHostNodes {
                try bindHostNode(name, major: major, minor: minor, into: dev)
                continue
            }
            if mknodat(dev, name, S_IFCHR | 0o666, makedev(major, minor)) != 0 && errno != EEXIST {
                throw SysError("mknod", "/dev/\(name)")
            }
            _ = fchmodat(dev, name, 0o666, 0)
        }
        let links = [
            ("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"), ("ptmx", "pts/ptmx"), ("core", "/proc/kcore"),
        ]
        for (name, target) in links {
            if symlinkat(target, dev, name) != 0 && errno != EEXIST { throw SysError("symlink", "/dev/\(name)") }
        }
    }

    /// Binds the host's `/dev/NAME` (still reachable: this runs before `pivot_root`) onto an empty
    /// file `NAME` in the container's /dev.
    private static func bindHostNode(_ name: String, major: UInt32, minor: UInt32, into dev: Int32) throws {
        let host = open("/dev/" + name, O_PATH | O_NOFOLLOW | O_CLOEXEC)
        try check(host, "open", "/dev/\(name) (host)")
        defer { close(host) }
        try requireCharDevice(host, major: major, minor: minor, path: "/dev/\(name) (host)")
        let file = openat(dev, name, O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0o666)
        try check(file, "create", "/dev/\(name)")
        close(file)
        let target = openat(dev, name, O_PATH | O_NOFOLLOW | O_CLOEXEC)
        try check(target, "open", "/dev/\(name)")
        defer { close(target) }
        try check(mount(procFD(host), procFD(target), nil, UInt(MS_BIND), nil), "mount", "bind host /dev/\(name)")
    }

    /// Opens a pty from the container's own devpts instance, hands the master to the monitor over
    /// `socket` (SCM_RIGHTS), binds the slave on `/dev/console`, and returns the slave.
    private static func openConsole(_ root: InRoot, plan: LaunchPlan, socket: Int32) throws -> Int32 {
        let master = try root.open("/dev/pts/ptmx", flags: O_RDWR | O_NOCTTY)
        try requireCharDevice(master, major: 5, path: "/dev/pts/ptmx")
        try check(sk_unlockpt(master), "ioctl TIOCSPTLCK", "/dev/pts/ptmx")
        let slave = sk_ptmx_peer(master)
        try check(slave, "ioctl TIOCGPTPEER", "/dev/pts/ptmx")
        if let size = plan.consoleSize { _ = sk_set_winsize(slave, size.rows, size.cols) }
        let console = try root.mountTarget("/dev/console", file: true)
        defer { close(console) }
        try check(mount(procFD(slave), procFD(console), nil, UInt(MS_BIND), nil), "mount", "pty on /dev/console")
        try check(sk_send_fd(socket, master), "sendmsg", "pty master")
        close(master)
        close(socket)
        return slave
    }
}

/// Calls `body` with a NULL-terminated C array of the strings (argv/envp shape).
func withCStrings<R>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> R) -> R {
    var ptrs: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    ptrs.append(nil)
    defer { for p in ptrs { free(p) } }
    return body(ptrs)
}

/// The entry point of `skiff __skiff-init`, the container's first process when `Launcher.spawn`
/// started it: a fresh, single-threaded `skiff` with the plan on descriptor 3 (JSON), the report
/// pipe on 4 and the pty hand-off socket on 5.
public enum SpawnedInit {
    /// argv[1] that selects this entry point; not a user command.
    public static let argument = "__skiff-init"
    /// Environment variable with the v1 `tasks` files to join at start, one per line.
    static let joinEnvironment = "SKIFF_INIT_JOIN"

    public static func main() -> Never {
        Trace.mark("init: exec'd")
        _ = sk_set_pdeathsig(SIGKILL)
        let syncFD: Int32 = 4
        // Whoever spawned us executed a read-only image of skiff (SelfExe); never enter a
        // container as the host's writable binary, whatever went wrong (CVE-2019-5736).
        guard SelfExe.isProtected() else {
            ContainerInit.report(
                syncFD, kind: "S", errno: 0,
                "internal error: the container's first process does not run from a read-only image of skiff")
            _exit(125)
        }
        // Into the v1 hierarchies now, while the parent prepares (each move waits for an RCU
        // grace period); a failure is reported at once and the parent's start fails with it.
        if let list = getenv(joinEnvironment) {
            for path in String(cString: list).split(separator: "\n") {
                do { try Files.writeExisting(String(path), "0") } catch {
                    ContainerInit.report(syncFD, kind: "S", errno: 0, "cannot join cgroup \(path): \(error)")
                    _exit(125)
                }
            }
            unsetenv(joinEnvironment)
            Trace.mark("init: joined v1 cgroups")
        }
        // The parent is usually still preparing: spend the wait decoding a sample plan, so the
        // decoder's first-use costs (type metadata, conformance lookups: about a millisecond in a
        // fresh process) are paid before the real plan arrives rather than after.
        var ready = pollfd(fd: 3, events: Int16(POLLIN), revents: 0)
        if poll(&ready, 1, 0) == 0 { _ = warmUp() }
        guard let bytes = try? Files.read(fd: 3, path: "plan"),
            let plan = try? OCIJSON.decode(LaunchPlan.self, from: bytes, what: "launch plan")
        else {
            ContainerInit.report(syncFD, kind: "S", errno: 0, "internal error: cannot read the launch plan")
            _exit(125)
        }
        close(3)
        Trace.mark("init: plan decoded")
        ContainerInit.run(plan, syncFD: syncFD, ttySocket: plan.tty ? 5 : -1, stdio: [0, 1, 2])
    }

    /// Decodes `warmUpPlan`; true when it decoded (a test keeps the sample in step with
    /// `LaunchPlan`, or the warm-up would stop early and warm less).
    @discardableResult
    static func warmUp() -> Bool {
        (try? OCIJSON.decode(LaunchPlan.self, from: Array(warmUpPlan.utf8), what: "sample plan")) != nil
    }

    /// A plan with every kind of field a real one has (mounts, capabilities, seccomp, limits).
    static let warmUpPlan = #"""
        {"args":["true"],"bringUpLoopback":true,"cgroupDirFD":-1,"cgroupGate":-1,"cgroupJoined":-1,
        "cgroupProcs":[],"cgroupSelfTasks":[],"cwd":"/","env":["PATH=/bin"],"hostname":"h","id":"x",
        "lowerdirs":["/l"],"maskedPaths":["/proc/kcore"],"mounts":[{"destination":"/proc",
        "options":["nosuid"],"source":"proc","type":"proc"}],"noNewPrivileges":true,
        "readonlyPaths":["/proc/sys"],"readonlyRoot":false,"rlimits":[{"type":"RLIMIT_NOFILE","hard":1,"soft":1}],
        "rootfsMountPoint":"/r","security":{"capabilities":{"ambient":[],"bounding":["CAP_CHOWN"],
        "effective":["CAP_CHOWN"],"inheritable":[],"permitted":["CAP_CHOWN"]},"lastCap":40,
        "noNewPrivileges":true,"seccomp":{"flags":0,"instructions":"0600000000000000"}},
        "spawned":true,"sysctls":{"net.ipv4.ip_forward":"0"},"tty":false,"consoleSize":{"rows":1,"cols":1},
        "unshareFlags":0,"upperdir":"/u","useInit":false,"user":"0","oomScoreAdj":0,"v1TasksPaths":["/t"],"workdir":"/w",
        "userNamespace":{"uidMappings":[{"containerID":0,"hostID":1,"size":1}],"gidMappings":[{"containerID":0,
        "hostID":1,"size":1}],"cgroupProcsPaths":["/c"]},"cgroupMounts":[{"name":"cpu","type":"cgroup","options":"cpu","readOnly":true}]}
        """#
}
