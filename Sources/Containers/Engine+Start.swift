import Allocator
import CSkiff
import Cgroups
import Images
import LinuxSys
import OCI
import Store

#if canImport(Glibc)
    import Glibc
#endif

extension Engine {
    /// Runs a created (or exited) container in the foreground: this process is its monitor.
    /// Returns the workload's exit code (Docker's: status, 128+N for signal N).
    /// - Throws: `StartError` (with 125/126/127) when it could not start; the container is left
    ///   `created` with the error recorded (or removed with `--rm`).
    /// - Parameter configPending: the bundle's `config.json` is still to be written (`runNew`):
    ///   it is, once the workload runs (or when its start failed), for a container that stays
    ///   after it exits (not `--rm`).
    /// - Parameter insertPending: the record is not in the database yet (`runNew` with an early
    ///   process): it is inserted after the plan is sent and before the process is released;
    ///   the value says whether the user gave the name (see `insert`). A failed insert (a taken
    ///   name) kills the process before anything of the workload ran and leaves nothing behind.
    public func runForeground(
        _ record: ContainerRecord, early: EarlyInit? = nil, configPending: Bool = false, insertPending: Bool? = nil
    ) throws -> Int32 {
        Trace.mark("created")
        var r = record
        var recorded = insertPending == nil
        let sigfd = try Monitor.signalFD()
        // A container that outlives its run keeps a log, as with -d; with --rm the workload
        // writes straight to our stdout/stderr (nothing to relay on the hot path).
        let writer = r.settings.autoRemove ? nil : try LogWriter(path: logPath(r.id))
        var out: [Int32] = [early?.outRead ?? -1, -1]
        var err: [Int32] = [early?.errRead ?? -1, -1]
        let launched: Launched
        do {
            let plan = try prepare(&r, early: early, recorded: recorded)
            var stdio: [Int32] = early?.stdio ?? [r.settings.interactive ? 0 : open("/dev/null", O_RDONLY | O_CLOEXEC), 1, 2]
            if early == nil && writer != nil && !plan.tty {
                try check(pipe2(&out, O_CLOEXEC), "pipe2", "stdout")
                try check(pipe2(&err, O_CLOEXEC), "pipe2", "stderr")
                stdio = [stdio[0], out[1], err[1]]
            }
            Trace.mark("prepared")
            launched = try Launcher.launch(plan, stdio: stdio, early: early) {
                guard let nameGiven = insertPending else { return }
                try self.insert(&r, nameGiven: nameGiven)
                recorded = true
                Trace.mark("recorded")
            }
            Trace.mark("launched")
            early?.releaseImage()
            // A --rm container's bundle would be deleted again at exit: the record holds the
            // spec (`skiff inspect`), so only containers that stay get the file.
            if configPending && !r.settings.autoRemove { try? writeBundleConfig(r) }
            if out[1] >= 0 {
                close(out[1])
                close(err[1])
            }
        } catch {
            if !recorded {
                // Never recorded (a taken name): nothing of it may stay.
                killAndRemoveCgroup(r)
                releaseReservation(r.id)
                removeRunDir(r)
                removeFiles(r)
                early?.abort()
                throw error
            }
            if configPending && !r.settings.autoRemove { try? writeBundleConfig(r) }
            failStart(r, error)
            early?.abort()
            throw error
        }
        try markRunning(&r, launched)
        var output = OutputMode.inherit
        if let master = launched.ttyMaster {
            output = .terminal(master: master, stdin: r.settings.interactive, log: writer)
        } else if let writer, out[0] >= 0 {
            output = .pipes(stdout: out[0], stderr: err[0], log: writer, echo: true)
        }
        let status = Monitor.wait(pid: launched.pid, signalFD: sigfd, output: output)
        Trace.mark("exited")
        defer { Trace.mark("finished") }
        return finish(r, waitStatus: status)
    }

    /// `skiff run` in the foreground from a request: the container's first process is started
    /// (`EarlyInit`) before the image is resolved and the record written, so its start-up overlaps
    /// them; then as `runForeground`. A refused admission removes the container it created.
    ///
    /// Only that process enters the container, so it alone runs from a read-only image of skiff
    /// (CVE-2019-5736, see `SelfExe`): this process need not re-execute itself first, which would
    /// cost a second process start. When the early start is not possible (no cgroup v2, or
    /// `SKIFF_EARLY_INIT=0`), the fork path puts a copy of this process into the container, and
    /// `protect` must make this process itself run from the image (it re-executes and does not
    /// return) before anything is created.
    /// - Throws: what `create` and `runForeground` throw, `SysError` when no read-only image of
    ///   skiff can be made; nothing is left behind then.
    public func runNew(_ request: CreateRequest, protect: () throws -> Void) throws -> Int32 {
        var req = request
        let id = Random.hex(bytes: 32)
        req.id = id
        // A container in its own user namespace starts through Launcher.spawn: its first process
        // must wait for its id maps before execve, and those exist only once the record does.
        let early: EarlyInit?
        if try UserNamespaceMode.parse(req.userns) != .host {
            early = nil
        } else {
            let image = SelfExe.isProtected() ? -1 : try SelfExe.protectedImage(scratch: SelfExe.scratchDirectory)
            early = EarlyInit.start(
                id: id, cgroupParent: req.cgroupParent, tty: req.tty, interactive: req.interactive,
                logged: !req.autoRemove, execFD: image)
        }
        if early == nil { try protect() }
        let record: ContainerRecord
        // With the early process, the record is written while it sets the container up (before
        // it is released to run anything of the workload: Launcher.complete's beforeRelease).
        do {
            record = try create(
                req, writeConfig: false, cgroupPaths: early?.cgroup.directories.map(\.path) ?? [], record: early == nil)
        } catch {
            early?.abort()
            throw error
        }
        removeOnRefusal = true
        return try runForeground(
            record, early: early, configPending: true, insertPending: early == nil ? nil : req.name != nil)
    }

    /// Starts a container or VM detached: forks a monitor (in its own session) that owns the
    /// workload (for a VM, the monitor is the VMM; the fork happens before any vCPU thread exists),
    /// logs its output to `container.log` and records its exit. Returns once the workload has
    /// started, or throws the reason it could not start.
    public func startDetached(_ record: ContainerRecord) throws {
        var ready: [Int32] = [-1, -1]
        try check(pipe2(&ready, O_CLOEXEC), "pipe2", "monitor ready pipe")
        closeDatabase()
        try Processes.requireSingleThreaded("monitor fork")
        let first = fork()
        if first < 0 { throw SysError("fork", "monitor") }
        if first == 0 {
            close(ready[0])
            _ = setsid()
            let second = fork()
            if second != 0 { _exit(second < 0 ? 1 : 0) }
            if record.kind == .vm { vmMonitorMain(record, ready: ready[1]) }
            monitorMain(record, ready: ready[1])
        }
        close(ready[1])
        var st: Int32 = 0
        _ = retryEINTR { waitpid(first, &st, 0) }
        let reply = (try? Files.read(fd: ready[0], path: "monitor ready pipe")) ?? []
        close(ready[0])
        if reply.first == UInt8(ascii: "O") { return }
        if reply.count >= 5 {
            var code: Int32 = 125
            withUnsafeMutableBytes(of: &code) { $0.copyBytes(from: reply[1..<5]) }
            throw StartError(message: String(decoding: reply[5...], as: UTF8.self), exitCode: code)
        }
        throw StartError(message: "the monitor exited before the \(record.kind == .vm ? "VM" : "container") started", exitCode: 125)
    }

    /// Points a detached monitor's stdin, stdout and stderr at /dev/null (its output goes to the log).
    static func detachStdio() {
        let null = open("/dev/null", O_RDWR)
        if null >= 0 {
            for fd in Int32(0)...2 { dup2(null, fd) }
            if null > 2 { close(null) }
        }
    }

    /// The detached monitor process. Never returns.
    private func monitorMain(_ record: ContainerRecord, ready: Int32) -> Never {
        _ = sk_set_name("skiff-monitor")
        Engine.detachStdio()
        var r = record
        func fail(_ error: Error) -> Never {
            failStart(r, error)
            let code = (error as? StartError)?.exitCode ?? (error as? SkiffError)?.exitCode ?? 125
            var msg: [UInt8] = [UInt8(ascii: "E")]
            withUnsafeBytes(of: code) { msg.append(contentsOf: $0) }
            msg.append(contentsOf: "\(error)".utf8)
            try? Files.write(fd: ready, msg)
            _exit(1)
        }
        do {
            let writer = try LogWriter(path: logPath(r.id))
            let sigfd = try Monitor.signalFD()
            let plan = try prepare(&r)
            var out: [Int32] = [-1, -1]
            var err: [Int32] = [-1, -1]
            if !plan.tty {
                try check(pipe2(&out, O_CLOEXEC), "pipe2", "stdout")
                try check(pipe2(&err, O_CLOEXEC), "pipe2", "stderr")
            }
            let launched = try Launcher.launch(plan, stdio: [0, out[1], err[1]])
            if !plan.tty {
                close(out[1])
                close(err[1])
            }
            try markRunning(&r, launched)
            try? Files.write(fd: ready, [UInt8(ascii: "O")])
            close(ready)
            let output: OutputMode =
                launched.ttyMaster.map { .pipes(stdout: $0, stderr: nil, log: writer, echo: false) }
                ?? .pipes(stdout: out[0], stderr: err[0], log: writer, echo: false)
            let status = Monitor.wait(pid: launched.pid, signalFD: sigfd, output: output)
            _ = finish(r, waitStatus: status)
            _exit(0)
        } catch {
            fail(error)
        }
    }

    /// Everything before `fork()`: runtime directory, generated /etc files, cgroup, and the plan.
    /// - Parameter recorded: the record is in the database (else its changes here are inserted
    ///   with it later).
    func prepare(_ r: inout ContainerRecord, early: EarlyInit? = nil, recorded: Bool = true) throws -> LaunchPlan {
        // Admission first: a refused workload leaves nothing (no directory, cgroup or process).
        let shared = try admit(&r) != nil
        let run = runDir(r.id)
        try StateRoot.mkdirAll(run + "/rootfs", mode: 0o755)
        let spec = r.spec
        let hostname = spec.hostname ?? r.shortID
        try Files.write(run + "/hostname", Array((hostname + "\n").utf8))
        var hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        if r.settings.network == "host" {
            hosts = (try? Files.readString("/etc/hosts")) ?? hosts
        } else {
            hosts += "127.0.1.1\t\(hostname)\n"
        }
        try Files.write(run + "/hosts", Array(hosts.utf8))
        let resolv = (try? Files.read("/etc/resolv.conf")) ?? Array("nameserver 127.0.0.53\n".utf8)
        try Files.write(run + "/resolv.conf", resolv)
        // In its own user namespace the container's root is the block's first id: it owns its
        // /etc/hostname, hosts and resolv.conf, as with Docker's userns-remap or Podman.
        if let userns = r.settings.userNamespace,
            let uid = userns.uidMappings.first(where: { $0.containerID == 0 })?.hostID,
            let gid = userns.gidMappings.first(where: { $0.containerID == 0 })?.hostID
        {
            for name in ["hostname", "hosts", "resolv.conf"] {
                try check(chown(run + "/" + name, uid_t(uid), gid_t(gid)), "chown", run + "/" + name)
            }
        }

        Trace.mark("prepare: etc files")
        let cg: Cgroup
        if let early {
            cg = early.cgroup
        } else {
            // A container whose earlier run was killed before it could clean up (SIGKILL during
            // start-up) still has its cgroup: remove what is left of it, then make it afresh.
            if !r.cgroupPaths.isEmpty { killAndRemoveCgroup(r) }
            do {
                cg = try Cgroup.create(name: "skiff-" + r.id, parent: r.settings.cgroupParent)
            } catch {
                throw SkiffError("cannot create the container's cgroup: \(error)")
            }
        }
        Trace.mark("prepare: cgroup created")
        let paths = cg.directories.map(\.path)
        // runNew recorded its early cgroup with the record; a share changed the spec's limits.
        if r.cgroupPaths != paths || shared {
            r.cgroupPaths = paths
            if recorded { try store().update(r) }
        }
        Trace.mark("prepare: recorded")
        // Limits are in place before the first process joins the cgroup.
        try applyResources(spec.linux?.resources, to: cg, name: r.name)
        // SKIFF_SPAWN=1: the child is born in its v2 cgroup (clone3 CLONE_INTO_CGROUP) as a fresh
        // `skiff` that joins the v1 hierarchies itself. It removes the migration's grace-period
        // wait but pays a second process start and the plan's decoding, and measured no faster on
        // average (27.4 ± 1.9 ms against fork's 26.3 ± 5.4 ms, BENCHMARKS.md), so fork + CgroupJoin
        // stays the default.
        // A container in its own user namespace is always spawned (see UserNamespaceHost).
        let userns = r.settings.userNamespace
        var v2DirFD: Int32 = -1
        if let v2 = cg.unified, userns != nil || getenv("SKIFF_SPAWN").map({ String(cString: $0) }) == "1" {
            v2DirFD = open(v2.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        }
        let join = v2DirFD >= 0 || early != nil || userns != nil ? CgroupJoin() : try CgroupJoin.open(cg)

        // CLONE_NEWCGROUP comes later, once the child is in its cgroup (see ContainerInit).
        var flags = SK_CLONE_NEWNS | SK_CLONE_NEWUTS | SK_CLONE_NEWIPC
        let ownNet = r.settings.network != "host"
        if ownNet { flags |= SK_CLONE_NEWNET }
        guard let process = spec.process else { throw SkiffError("container \(r.name) has no process in its spec") }
        let dir = containerDir(r.id)
        var consoleSize: LaunchPlan.Size? = nil
        if r.settings.tty {
            var rows: UInt16 = 0
            var cols: UInt16 = 0
            if sk_get_winsize(0, &rows, &cols) == 0 { consoleSize = LaunchPlan.Size(rows: rows, cols: cols) }
        }
        var lowerdirs = Array(r.settings.layers.reversed())
        // The mount targets the image lacks come from its shared init layer, not from each
        // container's upper directory; without one, the first process creates them there.
        if r.settings.rootfsPath == nil, !lowerdirs.isEmpty,
            let initLayer = try? InitLayer.ensure(layers: lowerdirs, layersDir: root.layersDir)
        {
            lowerdirs.insert(initLayer, at: 0)
        }
        var plan = LaunchPlan(
            id: r.id, rootfsMountPoint: run + "/rootfs", lowerdirs: lowerdirs,
            upperdir: dir + "/upper", workdir: dir + "/work", bindRootfs: r.settings.rootfsPath,
            readonlyRoot: spec.root?.readonly ?? false, unshareFlags: flags, bringUpLoopback: ownNet,
            hostname: hostname, mounts: spec.mounts ?? [], args: process.args, env: process.env ?? [],
            cwd: process.cwd, user: spec.annotations?["io.skiff.user"], tty: r.settings.tty,
            consoleSize: consoleSize, useInit: r.settings.initProcess,
            noNewPrivileges: process.noNewPrivileges ?? false, cgroupProcs: join.procs, cgroupSelfTasks: join.selfTasks)
        if early != nil {
            plan.spawned = true  // and already in its v1 cgroups (EarlyInit)
        } else if let userns {
            try UserNamespaceHost.requireExecutableByOthers()
            plan.spawned = true
            plan.cgroupDirFD = v2DirFD
            // Born in the v2 cgroup (when there is one); the host side moves it into the others.
            let others = cg.directories.filter { v2DirFD < 0 || $0.version == .v1 }
            plan.userNamespace = LaunchPlan.UserNamespace(
                uidMappings: userns.uidMappings, gidMappings: userns.gidMappings,
                cgroupProcsPaths: others.map { $0.file("cgroup.procs") })
        } else if v2DirFD >= 0 {
            plan.spawned = true
            plan.cgroupDirFD = v2DirFD
            plan.v1TasksPaths = cg.directories.filter { $0.version == .v1 }.map { $0.file("tasks") }
        }
        plan.security = try ProcessSecurity.from(spec, cacheDir: root.path + "/seccomp")
        plan.maskedPaths = spec.linux?.maskedPaths ?? []
        plan.readonlyPaths = spec.linux?.readonlyPaths ?? []
        plan.cgroupMounts = Self.cgroupMounts(for: spec)
        try ProcessLimits.fill(&plan, from: spec)
        return plan
    }

    /// What a container sees at /sys/fs/cgroup: this host's hierarchies, each in the directory of
    /// the name its mount point has here (`cpu`, `memory`, `unified`, `systemd`…), or the single v2
    /// hierarchy at /sys/fs/cgroup itself on a cgroup v2 host, as Docker shows them: read-only,
    /// unless /sys is read-write (`--privileged`). None when the container has no /sys mount or
    /// the host's cgroups cannot be read.
    static func cgroupMounts(for spec: Spec) -> [LaunchPlan.CgroupMount] {
        guard let sys = spec.mounts?.first(where: { $0.destination == "/sys" }), let layout = try? CgroupLayout.detect()
        else { return [] }
        let readOnly = sys.options?.contains("ro") ?? false
        if layout.mode == .unified {
            return [LaunchPlan.CgroupMount(name: "", type: "cgroup2", options: "", readOnly: readOnly)]
        }
        var seen = Set<String>()
        return layout.hierarchies.compactMap { h in
            guard let name = h.mountPoint.split(separator: "/").last.map(String.init), seen.insert(name).inserted else {
                return nil
            }
            if h.version == .v2 { return LaunchPlan.CgroupMount(name: name, type: "cgroup2", options: "", readOnly: readOnly) }
            let named = !h.controllers.isEmpty && h.controllers.allSatisfy { $0.hasPrefix("name=") }
            return LaunchPlan.CgroupMount(
                name: name, type: "cgroup", options: ((named ? ["none"] : []) + h.controllers).joined(separator: ","),
                readOnly: readOnly)
        }
    }

    /// Records that the workload runs.
    func markRunning(_ r: inout ContainerRecord, _ l: Launched) throws {
        let me = getpid()
        let meStart = Processes.startTime(me)
        r.status = .running
        r.pid = l.pid
        r.pidStartTime = l.startTime
        r.monitorPID = me
        r.monitorStartTime = meStart
        r.startedAt = Clock.now()
        r.finishedAt = nil
        r.exitCode = nil
        r.oomKilled = false
        r.error = nil
        // In place, without decoding and re-encoding the stored document (ContainerStore.patch).
        try store().patch(
            r.id, status: .running,
            [
                "pid": .integer(Int64(l.pid)), "pidStartTime": .integer(Int64(l.startTime)),
                "monitorPID": .integer(Int64(me)), "monitorStartTime": meStart.map { .integer(Int64($0)) } ?? .absent,
                "startedAt": .real(r.startedAt ?? 0), "finishedAt": .absent, "exitCode": .absent,
                "oomKilled": .bool(false), "error": .absent,
            ])
    }

    /// Records a start that failed before the workload ran, and releases what `prepare` took.
    func failStart(_ r: ContainerRecord, _ error: Error) {
        killAndRemoveCgroup(r)
        releaseReservation(r.id)
        removeRunDir(r)
        // `skiff run` refused by the allocator: the container it just created never ran; remove it
        // so the refusal leaves nothing behind (a `skiff start` keeps its container).
        if removeOnRefusal, error is AllocatorError || error is VMBuildError, r.startedAt == nil {
            removeFiles(r)
            try? store().delete(r.id)
            return
        }
        let code = (error as? StartError)?.exitCode ?? (error as? SkiffError)?.exitCode ?? 125
        if r.settings.autoRemove {
            removeFiles(r)
            try? store().delete(r.id)
            return
        }
        _ = try? store().modify(r.id) { rec in
            // A container that ran before stays exited (its last run's record); a new one, created.
            rec.status = rec.finishedAt == nil ? .created : .exited
            rec.exitCode = code
            rec.error = "\(error)"
            rec.cgroupPaths = []
            rec.pid = nil
        }
    }

    /// Records the exit, removes the cgroup (and the whole container with `--rm`).
    /// Returns Docker's exit code for `waitStatus`.
    func finish(_ r: ContainerRecord, waitStatus: Int32) -> Int32 {
        let code = Processes.exitCode(waitStatus: waitStatus)
        // Docker's OOMKilled: the OOM killer killed a process of the container (PID 1 or another).
        var oomKilled = false
        if let cg = try? Cgroup(paths: r.cgroupPaths) { oomKilled = (cg.oomKillCount() ?? 0) > 0 }
        // The rootfs was mounted only in the container's mount namespace, gone with its last
        // process (in a user namespace, see removeRunDir). Removing the files (and with --rm the
        // upper and work directories) is the kernel's work on another file system than the
        // cgroups': one thread each.
        let files = r.settings.autoRemove ? containerDir(r.id) : nil
        concurrently(
            {
                self.removeRunDir(r)
                if let files { try? Files.removeTree(files) }
            },
            {
                killAndRemoveCgroup(r)
                Trace.mark("finish: cgroup removed")
                releaseReservation(r.id)
            })
        Trace.mark("finish: files removed")
        if r.settings.autoRemove {
            try? store().delete(r.id)
            Trace.mark("finish: record deleted")
            return code
        }
        _ = try? store().modify(r.id) { rec in
            rec.status = .exited
            rec.exitCode = code
            rec.oomKilled = oomKilled
            rec.finishedAt = Clock.now()
            rec.pid = nil
            rec.cgroupPaths = []
        }
        return code
    }

    /// Removes the container's directories (upperdir, workdir, log, runtime files).
    func removeFiles(_ r: ContainerRecord) {
        removeRunDir(r)
        try? Files.removeTree(containerDir(r.id))
    }
}
