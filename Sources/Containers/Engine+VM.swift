import Allocator
import CSkiff
import Cgroups
import KVM
import LinuxSys
import OCI
import Store
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// What `skiff run --vm` asks for.
public struct VMRequest: Sendable {
    public var kernel: String?
    public var initrd: String?
    /// The kernel command line; Linux's console on COM1 and `reboot=k` so a reboot reaches the i8042.
    public var commandLine = VMRequest.defaultCommandLine
    /// `--cpus` (vCPUs) and `--memory` (guest RAM, bytes) as given; nil takes them from the ratio,
    /// or the defaults (1 vCPU, 128 MiB) without one.
    public var vcpus: Int?
    public var memoryBytes: UInt64?
    /// `--cpu-ratio`/`--memory-ratio`/`--ratio`: the VM's share of the host (guest RAM + VMM overhead).
    public var cpuRatio: Double?
    public var memoryRatio: Double?
    public static let defaultVCPUs = 1
    public static let defaultMemoryBytes: UInt64 = 128 << 20
    public var name: String?
    public var autoRemove = false
    /// `--cgroup-parent`: the cgroup (relative to each hierarchy's root) that the VMM's own cgroup
    /// is made in, instead of the one `skiff` runs in; as for a container.
    public var cgroupParent: String?
    /// `--disk PATH[:ro]` flags as given, in order.
    public var disks: [String] = []
    /// `-i`: feed stdin to the serial console even when it is not a terminal (a terminal always is).
    public var interactive = false
    public static let defaultCommandLine = "console=ttyS0 reboot=k panic=-1"
    public init() {}
}

extension Engine {
    // MARK: create

    /// Records a VM (kind `vm`, image shown as the kernel path) after checking that the kernel
    /// loads into the requested memory. Nothing runs yet.
    /// - Throws: `SkiffError` (125) for a missing or unreadable kernel, a host without /dev/kvm,
    ///   or the loader's error; nothing is left behind.
    public func createVM(_ req: VMRequest) throws -> ContainerRecord {
        let plan = try planVM(req)
        // A dry run of the devices and the loader into untouched (MAP_NORESERVE) memory: a file that
        // is no kernel, a kernel that does not fit, or a command line that the disks make too long is
        // refused before anything is recorded.
        do {
            let scratch = try GuestMemory(size: plan.settings.memoryBytes)
            let devices = try VMMachine.devices(plan.settings, memory: scratch, interrupt: { _, _ in })
            _ = try LinuxBoot.load(
                kernel: plan.settings.kernel, initrd: plan.settings.initrd,
                commandLine: devices.commandLine(appendingTo: req.commandLine), into: scratch)
        } catch {
            throw SkiffError("\(error)")
        }
        Trace.mark("vm: kernel checked")
        return try recordVM(req, plan, id: Random.hex(bytes: 32))
    }

    /// What `createVM` checks and sizes before anything exists.
    struct VMPlan {
        var settings: VMSettings
        var sizing: VMSizing
        /// The command line the guest gets: the user's and one parameter per virtio-mmio device.
        var guestCommandLine: String
    }

    /// Checks the files and flags of a VM request and sizes it with the allocator.
    /// - Throws: `SkiffError` (125) naming the flag or file; nothing is made.
    func planVM(_ req: VMRequest) throws -> VMPlan {
        guard let given = req.kernel, !given.isEmpty else {
            throw SkiffError("skiff run --vm needs --kernel PATH (an ELF64 vmlinux or a bzImage)")
        }
        let kernel = Self.absolutePath(given)
        guard access(kernel, R_OK) == 0 else {
            throw SkiffError("--kernel \(given): cannot read it: \(String(cString: strerror(errno)))")
        }
        let initrd = req.initrd.map(Self.absolutePath)
        if let initrd, access(initrd, R_OK) != 0 {
            throw SkiffError("--initrd \(req.initrd ?? initrd): cannot read it: \(String(cString: strerror(errno)))")
        }
        // The allocator sizes it: explicit --cpus/--memory occupy the ratio they are of the host; a
        // ratio gives the vCPUs and the guest RAM its memory share leaves after the VMM's overhead.
        let sizing: VMSizing
        do {
            let allocation = try hostAllocation()
            let baseline = VMMOverhead.residentBytes()
            sizing = try VMSizing.size(
                cpuRatio: req.cpuRatio, memoryRatio: req.memoryRatio, vcpus: req.vcpus, memoryBytes: req.memoryBytes,
                defaultVCPUs: VMRequest.defaultVCPUs, defaultMemoryBytes: VMRequest.defaultMemoryBytes,
                usableCPUs: allocation.capacity.cpus, allocatable: allocation.allocatable,
                overhead: { VMMOverhead.estimate(baseline: baseline, guestBytes: $0, vcpus: $1) })
        } catch let e as AllocatorError {
            throw SkiffError(e.description)
        }
        Trace.mark("vm: sized")
        guard (1...CPUIDPolicy.maxVCPUs).contains(sizing.vcpus) else {
            throw SkiffError("--cpus \(sizing.vcpus): a VM has 1…\(CPUIDPolicy.maxVCPUs) vCPUs")
        }
        var disks: [VMDisk] = []
        for flag in req.disks {
            let disk = try VMDisk.parse(flag)
            try disk.check(given: flag)
            disks.append(disk)
        }
        guard disks.count <= VirtioMMIODevices.capacity else {
            throw SkiffError(
                "--disk given \(disks.count) times: a VM takes at most \(VirtioMMIODevices.capacity) disks")
        }
        guard access("/dev/kvm", F_OK) == 0 else { throw SkiffError("this host has no /dev/kvm: VMs need KVM") }
        let vmSettings = VMSettings(
            kernel: kernel, initrd: initrd, commandLine: req.commandLine, vcpus: sizing.vcpus,
            memoryBytes: sizing.guestMemoryBytes, disks: disks)
        let devices = (0..<disks.count).map(VirtioMMIODevices.commandLineParameter(ofDevice:)).joined(separator: " ")
        let guestCommandLine = [req.commandLine, devices].filter { !$0.isEmpty }.joined(separator: " ")
        return VMPlan(settings: vmSettings, sizing: sizing, guestCommandLine: guestCommandLine)
    }

    /// Records the VM of `plan` as `created` under `id`.
    /// - Throws: `SkiffError` for a taken or invalid name; nothing is left behind.
    func recordVM(_ req: VMRequest, _ plan: VMPlan, id: String) throws -> ContainerRecord {
        var record = try vmRecord(req, plan, id: id)
        do {
            try insert(&record, nameGiven: req.name != nil)
        } catch {
            try? Files.removeTree(containerDir(id))
            throw error
        }
        return record
    }

    /// The record of the VM of `plan` under `id`, status `created`, with its directory made but
    /// not stored yet (`recordVM` stores it; a foreground run, with its admission).
    /// - Throws: `SkiffError` for an invalid name or a directory that cannot be made.
    func vmRecord(_ req: VMRequest, _ plan: VMPlan, id: String) throws -> ContainerRecord {
        let (vmSettings, sizing, guestCommandLine) = (plan.settings, plan.sizing, plan.guestCommandLine)
        let kernel = vmSettings.kernel
        var settings = RunSettings()
        settings.autoRemove = req.autoRemove
        settings.interactive = req.interactive
        settings.cgroupParent = req.cgroupParent
        settings.vm = vmSettings
        if sizing.share.cpuPPM > 0 { settings.cpuRatio = sizing.share.cpuRatio }
        if sizing.share.memoryPPM > 0 { settings.memoryRatio = sizing.share.memoryRatio }
        var spec = Spec()
        // inspect shows the command line the guest gets, with the virtio-mmio devices.
        spec.process = Spec.Process(args: [kernel] + (guestCommandLine.isEmpty ? [] : [guestCommandLine]))
        spec.annotations = ["io.skiff.kind": WorkloadKind.vm.rawValue]
        let name = try req.name ?? uniqueName()
        try validateName(name)
        let record = ContainerRecord(
            id: id, name: name, image: kernel, imageID: "", spec: spec, settings: settings, status: .created,
            created: Clock.now())
        try StateRoot.mkdirAll(containerDir(id), mode: 0o755)
        return record
    }

    static func absolutePath(_ p: String) -> String {
        if p.hasPrefix("/") { return p }
        var buf = [CChar](repeating: 0, count: 4096)
        guard getcwd(&buf, buf.count) != nil else { return p }
        return String(decoding: buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self) + "/" + p
    }

    // MARK: foreground

    /// `skiff run --vm` in the foreground: records the VM (as `createVM`, but without the loader's
    /// dry run) and runs it; this process is its VMM; the result is that of
    /// `runVMForeground(_:setup:sink:)`. The VM's cgroup and machine are made (`VMSetup`) while the
    /// VM is recorded and admitted, and a kernel that does not load removes the record again
    /// (`VMBuildError`), so bad input still leaves nothing behind.
    public func runVMForeground(_ req: VMRequest) throws -> Int32 {
        let id = Random.hex(bytes: 32)
        let sink = SerialSink(log: nil)
        // One layout for the cgroup the setup thread makes and for the paths the record names
        // before it exists (the setup thread moves this process into the v2 cgroup meanwhile).
        let layout: CgroupLayout
        do { layout = try CgroupLayout.detect() } catch { throw SkiffError("cannot create the VM's cgroup: \(error)") }
        let start = { (settings: VMSettings) in
            VMSetup(name: "skiff-" + id, parent: req.cgroupParent, layout: layout, settings: settings, output: { sink.write($0) })
        }
        // Without a ratio the VM's size is what was asked (or the default): its machine can be
        // built while the allocator checks that size, and is rebuilt in the rare case it differs.
        let guess = Self.settingsWithoutAllocator(req)
        var setup = guess.map(start)
        let plan: VMPlan
        do {
            plan = try planVM(req)
        } catch {
            if let setup { discard(setup) }
            throw error
        }
        if setup == nil || plan.settings != guess {
            if let setup { discard(setup) }
            setup = start(plan.settings)
        }
        guard let setup else { preconditionFailure("VM setup not started") }
        var record: ContainerRecord
        do {
            record = try vmRecord(req, plan, id: id)
            record.cgroupPaths = try Cgroup.plannedPaths(
                name: "skiff-" + id, parent: req.cgroupParent, layout: layout, in: Self.isVMHierarchy)
        } catch {
            discard(setup)
            try? Files.removeTree(containerDir(id))
            throw error
        }
        removeOnRefusal = true
        return try runVMForeground(record, setup: setup, sink: sink, store: .withAdmission(nameGiven: req.name != nil))
    }

    /// Whether a VM's cgroup gets a directory in `hierarchy`: v2, and the v1 hierarchies of the
    /// controllers Skiff uses for a VM: `cpu`/`cpuacct` and `memory` (its share's limits and the
    /// stats), `pids` and `blkio` (stats), `freezer` (pause). Not `cpuset` (a VM has no
    /// --cpuset-cpus; a cpuset directory costs 0.2 ms to make here, and its cpus and mems must be
    /// copied in), `devices` (the VMM is no container) or the named ones (`name=systemd`):
    /// Firecracker's jailer likewise makes only the cgroups it writes to.
    static func isVMHierarchy(_ hierarchy: CgroupHierarchy) -> Bool {
        hierarchy.version == .v2
            || hierarchy.controllers.contains { ["cpu", "cpuacct", "memory", "pids", "blkio", "freezer"].contains($0) }
    }

    /// How `runVMM` finds the VM's record: stored already (`createVM`, `skiff start`), or to be
    /// stored by it with its admission, in one transaction (a foreground `run --vm`).
    enum VMRecordStorage {
        case stored
        case withAdmission(nameGiven: Bool)
    }

    /// The settings `planVM` gives a request that names no ratio (its sizes or the defaults), or
    /// nil when that cannot be known without the allocator (a ratio) or the flags are invalid
    /// (`planVM` reports those).
    static func settingsWithoutAllocator(_ req: VMRequest) -> VMSettings? {
        guard req.cpuRatio == nil, req.memoryRatio == nil, let given = req.kernel, !given.isEmpty,
            let disks = try? req.disks.map(VMDisk.parse)
        else { return nil }
        return VMSettings(
            kernel: absolutePath(given), initrd: req.initrd.map(absolutePath), commandLine: req.commandLine,
            vcpus: req.vcpus ?? VMRequest.defaultVCPUs, memoryBytes: req.memoryBytes ?? VMRequest.defaultMemoryBytes,
            disks: disks)
    }

    /// Stops using a setup that will not run: waits for its thread, leaves and removes its cgroup.
    func discard(_ setup: VMSetup) {
        guard let cg = setup.abandon() else { return }
        leaveCgroup(paths: cg.directories.map(\.path), origins: setup.origins)
        try? cg.remove(timeout: .seconds(5))
    }

    /// Runs a recorded VM in the foreground: this process is its VMM, the serial console goes to
    /// stdout (and to the log unless `--rm`). When stdin is a terminal (put in raw mode, restored on
    /// return) or `-i` was given, what is typed or piped goes to the console's receive buffer. Returns
    /// 0 when the guest resets, powers off or halts; 125 with the error (and guest registers) on
    /// stderr when it triple-faults or KVM fails; 128+N when signal N stopped it (`VMMachine.run`).
    /// - Parameter setup: its cgroup and machine, already being made (nil: made here).
    /// - Throws: `SkiffError` when the VM could not be set up (the record is left `created` with
    ///   the error, or removed with `--rm` or when its kernel does not load).
    func runVMForeground(
        _ record: ContainerRecord, setup: VMSetup?, sink: SerialSink, store storage: VMRecordStorage = .stored
    ) throws -> Int32 {
        var r = record
        let writer = r.settings.autoRemove ? nil : try LogWriter(path: logPath(r.id))
        sink.log = writer
        let output: (UInt8) -> Void = { sink.write($0) }
        let terminal = isatty(0) != 0
        var saved = termios()
        let rawMode = terminal && sk_make_raw(0, &saved) == 0
        defer { if rawMode { _ = sk_restore_termios(0, &saved) } }
        let input: Int32? = terminal || r.settings.interactive ? 0 : nil
        let outcome = try runVMM(&r, output: output, input: input, setup: setup, storage: storage, ready: {})
        writer?.flush()
        if let error = outcome.error { try? Files.write(fd: 2, Array("skiff: \(error)\n".utf8)) }
        return outcome.code
    }

    // MARK: detached

    func vmMonitorMain(_ record: ContainerRecord, ready: Int32) -> Never {
        _ = sk_set_name("skiff-vmm")
        Engine.detachStdio()
        var r = record
        do {
            let writer = try LogWriter(path: logPath(r.id))
            let outcome = try runVMM(
                &r, output: { writer.append([$0][...], stream: "stdout") },
                ready: {
                    try? Files.write(fd: ready, [UInt8(ascii: "O")])
                    close(ready)
                })
            writer.flush()
            _ = outcome
            _exit(0)
        } catch {
            let code = (error as? StartError)?.exitCode ?? (error as? SkiffError)?.exitCode ?? 125
            var msg: [UInt8] = [UInt8(ascii: "E")]
            withUnsafeBytes(of: code) { msg.append(contentsOf: $0) }
            msg.append(contentsOf: "\(error)".utf8)
            try? Files.write(fd: ready, msg)
            _exit(1)
        }
    }

    // MARK: the VMM

    struct VMOutcome {
        var code: Int32
        var error: String?
    }

    /// Sets up and runs the VM in this process: joins the workload cgroup, creates the VM, records
    /// it running (pid = this process), calls `ready`, runs the vCPUs (with `input`, if given, feeding
    /// the serial console), records the exit.
    /// - Throws: only set-up errors, after `failStart` has recorded them.
    func runVMM(
        _ r: inout ContainerRecord, output: @escaping (UInt8) -> Void, input: Int32? = nil, setup early: VMSetup? = nil,
        storage: VMRecordStorage = .stored, ready: () -> Void
    ) throws -> VMOutcome {
        guard let settings = r.settings.vm else {
            early?.abandon()
            throw SkiffError("\(r.name) is not a VM")
        }
        // A VM whose earlier run was killed before it could clean up still has its cgroup.
        if early == nil && !r.cgroupPaths.isEmpty { killAndRemoveCgroup(r) }
        // The cgroup and the machine are made on a second thread (VMSetup) while this one admits
        // the VM and records its limits: they do not depend on each other, and a refusal undoes both.
        let setup = early ?? VMSetup(name: "skiff-" + r.id, parent: r.settings.cgroupParent, settings: settings, output: output)
        let cg: Cgroup
        let machine: VMMachine
        var stored = true
        do {
            let allocatable: Allocatable?
            if case .withAdmission(let nameGiven) = storage {
                // The record (with the cgroup's paths, planned by runVMForeground, and the
                // limits) and the reservation in one transaction, while the cgroup is being made.
                stored = false
                allocatable = try recordAndAdmitVM(&r, nameGiven: nameGiven)
                stored = true
            } else {
                allocatable = try admit(&r)
                if let allocatable { r.spec.linux = Self.vmLinux(r, knobsFor: allocatable, cpuShares: cpuShares(forWeight:)) }
            }
            do {
                cg = try setup.cgroup()
            } catch {
                throw SkiffError("cannot create the VM's cgroup: \(error)")
            }
            // The VMM's cgroup gets the knobs a container with this share would: its whole host
            // footprint (vCPU threads, guest RAM, the VMM itself) stays inside the share.
            if allocatable != nil, let resources = r.spec.linux?.resources {
                try applyResources(resources, to: cg, name: r.name)
            }
            if case .stored = storage {
                r.cgroupPaths = cg.directories.map(\.path)
                // The cgroup and the limits, written into the stored record in place (ContainerStore.patch).
                let linux: ContainerStore.Field = try r.spec.linux.map { .json(try OCIJSON.string($0)) } ?? .absent
                try store().patch(
                    r.id, status: r.status, ["cgroupPaths": .json(try OCIJSON.string(r.cgroupPaths)), "spec.linux": linux])
            }
            Trace.mark("vmm: limits recorded")
            machine = try setup.machine()
            Trace.mark("vmm: machine created")
            // The vCPU threads are started from this thread and inherit its cgroups: it joins the
            // v1 hierarchies now, by a `tasks` self-move (this thread only, without the global
            // migration lock's RCU grace period; see CgroupJoin). The setup thread moved the whole
            // process into the v2 one already (v2 has no per-thread membership between domain cgroups).
            // The only other thread now is the setup thread, which joined the same cgroups and may
            // still be exiting (it is detached; see VMSetup.finished).
            for dir in cg.directories where dir.version == .v1 {
                try Self.writeCgroupFile(dir.file("tasks"), "0")
            }
            Trace.mark("vmm: joined")
        } catch {
            if let made = setup.abandon(), r.cgroupPaths.isEmpty { r.cgroupPaths = made.directories.map(\.path) }
            leaveCgroup(paths: r.cgroupPaths, origins: setup.origins)
            if stored {
                failStart(r, error)
            } else {
                // Refused or the name is taken: nothing was stored; nothing stays.
                killAndRemoveCgroup(r)
                removeFiles(r)
            }
            throw SkiffError("\(error)")
        }
        // The VMM is both the workload and its monitor. The record says so from a second thread
        // while the guest already starts (the state database is not used by this one meanwhile);
        // `ready` follows the record, and the exit is recorded only after both.
        let me = getpid()
        let launched = Launched(pid: me, startTime: Processes.startTime(me) ?? 0, ttyMaster: nil)
        let record = RecordBox(r)
        let outcome = withoutActuallyEscaping(ready) { ready in
            let recorder = startThread {
                try? self.markRunning(&record.value, launched)
                ready()
                Trace.mark("vmm: recorded running")
                // The VM's destruction happens after this process exits (see the method).
                machine.vm.deferReleaseToExit()
            }
            // Start-up code (CLI, database, JSON, loaders) is not needed while the guest runs; a
            // second in, once the vCPU loop and devices have faulted in what they use, give it back.
            ResidentCode.dropLater(after: 1)
            if recorder == nil {
                try? markRunning(&record.value, launched)
                ready()
                machine.vm.deferReleaseToExit()
            }
            let outcome = machine.run(input: input)
            if let recorder { pthread_join(recorder, nil) }
            return outcome
        }
        r = record.value
        finishVM(r, outcome, origins: setup.origins)
        return outcome
    }

    /// `r`'s `linux` section with the cgroup knobs its share gets of `allocatable` (`Knobs`).
    static func vmLinux(_ r: ContainerRecord, knobsFor allocatable: Allocatable, cpuShares: (UInt64) -> UInt64)
        -> Spec.Linux
    {
        var linux = r.spec.linux ?? Spec.Linux()
        linux.resources = Knobs.apply(
            share(of: r), allocatable: allocatable, to: linux.resources, sharesForWeight: cpuShares)
        return linux
    }

    /// Stores a foreground VM's record and admits its share (this process holds the reservation)
    /// in one transaction: the record goes in with its limits, and a refusal or a taken name
    /// leaves neither (`LedgerStore.admit`, `insert`).
    /// - Returns: the allocatable total it was admitted against (nil: no share, nothing reserved).
    /// - Throws: `AllocatorError.refused`, `SkiffError` for a taken name, `DatabaseError`.
    func recordAndAdmitVM(_ r: inout ContainerRecord, nameGiven: Bool) throws -> Allocatable? {
        try db().transaction {
            let share = Self.share(of: r)
            var admitted: (LedgerStore, Allocatable)?
            if !share.isEmpty {
                let ledger = try self.ledger()
                let capacity = try ledger.capacity(detected: detectedCapacity())
                let allocatable = Allocatable(capacity: capacity, reserve: try ledger.reserve(for: capacity))
                r.spec.linux = Self.vmLinux(r, knobsFor: allocatable, cpuShares: cpuShares(forWeight:))
                admitted = (ledger, allocatable)
            }
            try insert(&r, nameGiven: nameGiven)
            guard let (ledger, allocatable) = admitted else { return nil }
            let me = getpid()
            try ledger.admit(
                Reservation(
                    id: r.id, name: r.name, kind: r.kind.rawValue, share: share, holderPID: me,
                    holderStartTime: Processes.startTime(me), since: Clock.now()),
                allocatable: allocatable)
            return allocatable
        }
    }

    static func writeCgroupFile(_ path: String, _ value: String) throws {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        try check(fd, "open", path)
        defer { close(fd) }
        let bytes = Array(value.utf8)
        try check(Int32(write(fd, bytes, bytes.count)), "write", path)
    }

    /// Moves this process out of its workload cgroup directories `paths`, so that they can be
    /// removed: back to the cgroup it came from in each hierarchy (`origins[i]` for `paths[i]`, as
    /// `VMSetup.origins` lists them), or to the directory's parent where that is not known. Under
    /// `--cgroup-parent` the parent may be a cgroup v2 directory with controllers enabled below it,
    /// which holds no process (the "no internal processes" rule, cgroup-v2.rst): the origin is
    /// where the process may go back to.
    /// - Returns: whether every move succeeded.
    @discardableResult
    func leaveCgroup(paths: [String], origins: [String?] = []) -> Bool {
        var ok = true
        for (i, path) in paths.enumerated() {
            guard let slash = path.lastIndex(of: "/") else { continue }
            let parent = String(path[..<slash])
            let origin = origins.count == paths.count ? origins[i] : nil
            let back = origin.flatMap { try? Self.writeCgroupFile($0 + "/cgroup.procs", "\(getpid())") }
            if back == nil && (try? Self.writeCgroupFile(parent + "/cgroup.procs", "\(getpid())")) == nil { ok = false }
        }
        return ok
    }

    /// Records the VM's exit and releases its cgroup (and the whole record with `--rm`).
    func finishVM(_ r: ContainerRecord, _ outcome: VMOutcome, origins: [String?]) {
        Trace.mark("vmm: guest stopped")
        defer { Trace.mark("vmm: finished") }
        // The cgroup (this process leaves it, then it is removed) and the state (reservation,
        // record, files) do not depend on each other: they overlap, about 0.5 ms each.
        concurrently(
            { [self] in
                if leaveCgroup(paths: r.cgroupPaths, origins: origins) {
                    killAndRemoveCgroup(r)
                } else if let cg = try? Cgroup(paths: r.cgroupPaths) {
                    try? cg.remove(timeout: .zero)
                }
            },
            {
                try? Files.removeTree(runDir(r.id))
                if r.settings.autoRemove { removeFiles(r) }
                // The reservation and the record in one transaction (one commit).
                _ = try? db().transaction {
                    releaseReservation(r.id)
                    if r.settings.autoRemove {
                        try? store().delete(r.id)
                        return
                    }
                    // In place, without decoding and re-encoding the record (ContainerStore.patch).
                    _ = try? store().patch(
                        r.id, status: .exited,
                        [
                            "exitCode": .integer(Int64(outcome.code)), "finishedAt": .real(Clock.now()),
                            "pid": .absent, "cgroupPaths": .json("[]"),
                            "error": outcome.error.map { .text($0) } ?? .absent,
                        ])
                }
            })
    }
}

/// The VM's cgroup and machine, made on a thread of their own while the VMM's main thread admits
/// the VM and records it (`Engine.runVMM`). The thread creates the cgroup `name`, moves itself into
/// it (v1: its `tasks`, this thread only; v2: `cgroup.procs`, the whole process) so that what the
/// machine allocates (KVM's structures, the pages the loader writes) is charged to the VM, then
/// builds the `VMMachine`. `cgroup()` waits for the first step, `machine()` for the thread's end;
/// `abandon()` waits for the end and drops the machine (its VM is destroyed with it).
final class VMSetup: @unchecked Sendable {
    private var made: Result<Cgroup, Error>?
    private var built: Result<VMMachine, Error>?
    private let cgroupReady = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)
    /// Posted by the thread when it is done with this object. The thread is detached: waiting for
    /// its exit (glibc releasing its stack page by page) took 0.4 ms longer than this.
    private let finished = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)
    /// Whether the thread runs and has not been waited for.
    private var running = false
    /// The cgroup directories this process was in before it joined the VM's, one per directory
    /// of the VM's cgroup in its order (nil where not known); where `Engine.leaveCgroup` returns
    /// it. Set before `cgroupReady` is posted; read after `cgroup()` or `abandon()`.
    private(set) var origins: [String?] = []
    /// Whether the caller has waited for `cgroupReady` (read and written by the caller only).
    private var cgroupSeen = false

    /// Blocks the VMM's stop signals in the calling thread first (`VMMachine.blockStopSignals`):
    /// every thread of the VMM must inherit that mask, and this may be the first one started.
    /// - Parameter layout: the cgroup layout to create in (nil: detected on the thread).
    init(
        name: String, parent: String?, layout: CgroupLayout? = nil, settings: VMSettings,
        output: @escaping (UInt8) -> Void
    ) {
        VMMachine.blockStopSignals()
        sem_init(cgroupReady, 0, 0)
        sem_init(finished, 0, 0)
        let work = { [self] in
            let cg = Result { () throws -> Cgroup in
                let layout = try layout ?? CgroupLayout.detect()
                origins = layout.hierarchies.filter(Engine.isVMHierarchy).map(\.ownDirectory)
                return try Cgroup.create(name: name, parent: parent, layout: layout, in: Engine.isVMHierarchy)
            }
            made = cg
            sem_post(cgroupReady)
            Trace.mark("setup: cgroup created")
            guard case .success(let cg) = cg else { return }
            built = Result {
                for dir in cg.directories {
                    try Engine.writeCgroupFile(dir.file(dir.version == .v1 ? "tasks" : "cgroup.procs"), "0")
                }
                Trace.mark("setup: joined")
                do {
                    return try VMMachine(settings: settings, output: output)
                } catch {
                    throw VMBuildError(underlying: error)
                }
            }
        }
        if let thread = startThread({
            work()
            sem_post(self.finished)
        }) {
            pthread_detach(thread)
            running = true
        } else {
            work()
        }
    }

    deinit {
        sem_destroy(cgroupReady)
        cgroupReady.deallocate()
        sem_destroy(finished)
        finished.deallocate()
    }

    private func end() {
        guard running else { return }
        while sem_wait(finished) != 0 {}  // EINTR: again
        running = false
    }

    /// The VM's cgroup, once created. - Throws: `CgroupError` from `Cgroup.create`.
    func cgroup() throws -> Cgroup {
        if !cgroupSeen {
            while sem_wait(cgroupReady) != 0 {}  // posted once, after `made` is set (EINTR: again)
            cgroupSeen = true
        }
        guard let made else { throw SkiffError("internal error: the VM's cgroup was not attempted") }
        return try made.get()
    }

    /// The machine, once the thread is done. - Throws: what joining or `VMMachine.init` threw.
    func machine() throws -> VMMachine {
        end()
        guard let built else { throw SkiffError("internal error: the VM's cgroup failed, so no machine was built") }
        return try built.get()
    }

    /// Waits for the thread and drops the machine; returns the cgroup if it was created (for removal).
    @discardableResult
    func abandon() -> Cgroup? {
        end()
        cgroupSeen = true
        built = nil
        return try? made?.get()
    }
}

/// The machine of a VM could not be built (not a kernel, too big for its memory, a disk that
/// cannot be opened, KVM refused): the VM never ran, so `skiff run` removes its record again, as
/// it does after an allocator refusal (`Engine.failStart`).
struct VMBuildError: Error, CustomStringConvertible {
    let underlying: Error
    var description: String { "\(underlying)" }
}

/// Where a foreground VM's serial output goes: stdout and, unless `--rm`, the log (set once the
/// record and its directory exist, before the guest can print).
final class SerialSink: @unchecked Sendable {
    var log: LogWriter?
    /// Whether stdout's reader has gone (EPIPE), so the VM was asked to stop.
    private var readerGone = false
    init(log: LogWriter?) { self.log = log }
    /// Writes a console byte to stdout and the log. When stdout's reader has gone (`| head`),
    /// stops the VM as a container's process would die of SIGPIPE: a process-directed SIGPIPE,
    /// which the VMM's signal thread takes (`SignalWaiter`; exit 141).
    func write(_ byte: UInt8) {
        var b = byte
        if Glibc.write(1, &b, 1) < 0 && errno == EPIPE && !readerGone {
            readerGone = true
            kill(getpid(), SIGPIPE)
        }
        log?.append([byte][...], stream: "stdout")
    }
}

/// A record shared with the thread that writes it (joined before it is read again).
private final class RecordBox: @unchecked Sendable {
    var value: ContainerRecord
    init(_ value: ContainerRecord) { self.value = value }
}
