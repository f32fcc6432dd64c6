import Allocator
import Cgroups
import Images
import LinuxSys
import Logging
import OCI
import Store

#if canImport(Glibc)
    import Glibc
#endif

/// The container engine: creates, starts, supervises, execs into and removes containers.
/// One `Engine` per `skiff` process; it opens the state database lazily and closes it before
/// forking a monitor (an SQLite connection must never cross `fork()`).
public final class Engine {
    public let root: StateRoot
    let logger: Logger
    private var database: Database?
    private var imageStore: ImageStore?
    /// Set by `skiff run`: when the allocator refuses the first start, the container it created
    /// is removed again (inherited by a forked monitor).
    public var removeOnRefusal = false
    /// The host capacity this command detected first (`detectedCapacity()`).
    var capacityCache: HostCapacity?

    /// - Parameter root: state root and runtime directory.
    public init(root: StateRoot, logger: Logger) {
        self.root = root
        self.logger = logger
    }

    /// The state database, opened on first use (creating the state root).
    public func db() throws -> Database {
        if let database { return database }
        let d = try root.openDatabase()
        database = d
        return d
    }

    /// The container table.
    public func store() throws -> ContainerStore { try ContainerStore(db: db()) }

    /// The image store over the same database.
    public func images() throws -> ImageStore {
        if let imageStore { return imageStore }
        let s = try ImageStore(root: root, database: db(), logger: logger)
        imageStore = s
        return s
    }

    /// Drops the database connection (before `fork()`); the next use reopens it.
    func closeDatabase() {
        imageStore = nil
        database = nil
    }

    /// Per-container persistent directory: upperdir, workdir, log.
    public func containerDir(_ id: String) -> String { root.containersDir + "/" + id }
    /// Per-container runtime directory: rootfs mount point, generated /etc files.
    public func runDir(_ id: String) -> String { root.runDir + "/" + id }
    public func logPath(_ id: String) -> String { containerDir(id) + "/container.log" }

    // MARK: create

    /// Creates a container: resolves the image, builds the OCI spec, makes its directories and
    /// records it with status `created`. Nothing runs yet.
    /// - Throws: `SkiffError` for bad flags, unknown images or a taken name; on any error nothing
    ///   is left behind.
    public func create(_ req: CreateRequest) throws -> ContainerRecord {
        try create(req, writeConfig: true)
    }

    /// `create`, leaving the bundle's `config.json` to the caller when `writeConfig` is false
    /// (`runNew` writes it while the workload starts, off the start's critical path), and
    /// recording `cgroupPaths` (the cgroup `EarlyInit` already made) with the new record.
    /// With `record: false` nothing is inserted: the caller inserts the record itself (`insert`),
    /// and on failure removes the directories made here (`removeFiles`).
    func create(_ req: CreateRequest, writeConfig: Bool, cgroupPaths: [String] = [], record insertNow: Bool = true)
        throws -> ContainerRecord
    {
        let id = req.id ?? Random.hex(bytes: 32)
        var settings = RunSettings()
        settings.autoRemove = req.autoRemove
        settings.tty = req.tty
        settings.interactive = req.interactive
        guard req.network == "none" || req.network == "host" else {
            throw SkiffError("unsupported --network \"\(req.network)\": use none (own network namespace with loopback) or host")
        }
        settings.network = req.network
        settings.initProcess = req.initProcess
        settings.cgroupParent = req.cgroupParent
        (settings.cpuRatio, settings.memoryRatio) = try req.resources.ratios()
        let userns = try UserNamespaceMode.parse(req.userns)
        try userns.checkCombination(req)
        // Read before anything is made: a missing or wrong /etc/subuid leaves nothing behind.
        let idSource = try userns.idSource()
        var imageConfig: ImageRuntimeConfig?
        var imageRef: String
        var imageID = ""
        if let dir = req.rootfs {
            guard Files.isDirectory(dir) else {
                throw SkiffError("--rootfs \(dir): not a directory; give the path of an unpacked root filesystem")
            }
            let abs = absolute(dir)
            settings.rootfsPath = abs
            imageRef = "--rootfs " + abs
        } else {
            guard let ref = req.image else { throw SkiffError("no image given: skiff run [OPTIONS] IMAGE [COMMAND...]") }
            Trace.mark("create: begin")
            _ = try images()
            Trace.mark("create: db open")
            let image = try images().resolve(ref)
            Trace.mark("create: image resolved")
            imageConfig = image.configuration.config
            settings.layers = image.layerDirectories
            imageRef = ref
            imageID = image.id.description
            settings.exposedPorts = (imageConfig?.ExposedPorts ?? [:]).keys.sorted()
            settings.stopSignal = imageConfig?.StopSignal
        }
        let spec = try SpecBuilder.build(req, image: imageConfig, id: id, runDir: runDir(id))
        Trace.mark("create: spec built")
        let name = try req.name ?? uniqueName()
        try validateName(name)
        var record = ContainerRecord(
            id: id, name: name, image: imageRef, imageID: imageID, spec: spec, settings: settings,
            status: .created, created: Clock.now())
        record.cgroupPaths = cgroupPaths
        let dir = containerDir(id)
        var inserted = false
        do {
            try StateRoot.mkdirAll(dir + "/upper", mode: 0o755)
            try StateRoot.mkdirAll(dir + "/work", mode: 0o700)
            Trace.mark("create: dirs")
            if insertNow {
                try insert(&record, nameGiven: req.name != nil, ids: idSource)
                inserted = true
            }
            if let ns = record.settings.userNamespace {
                try UserNamespaceHost.giveUpper(
                    dir + "/upper", work: dir + "/work", to: ns, imageRoot: settings.layers.last)
            }
            // After the insert: the id maps of a user namespace are chosen there.
            if writeConfig { try writeBundleConfig(record) }
            Trace.mark("create: config.json")
        } catch {
            if inserted { try? store().delete(id) }
            try? Files.removeTree(dir)
            throw error
        }
        return record
    }

    /// Writes the container's OCI runtime spec as `config.json` in its directory (the bundle view
    /// of the container, for people and tools; Skiff itself reads the spec from its record).
    /// - Throws: `SysError` naming the file.
    func writeBundleConfig(_ r: ContainerRecord) throws {
        try Files.write(containerDir(r.id) + "/config.json", OCIJSON.encode(r.spec, pretty: true))
    }

    /// Inserts a new record. A generated name can race with a parallel create: then another one
    /// is drawn (up to 10 times); a name the user gave is reported as taken. With `ids` the
    /// container gets the lowest free block of subordinate ids in the same transaction, so
    /// parallel creates never share one.
    func insert(_ record: inout ContainerRecord, nameGiven: Bool, ids: UserNamespaceMode.IDSource? = nil) throws {
        var attempts = 0
        while true {
            do {
                if let ids {
                    let s = try store()
                    let blocks = try IDBlockStore(db: s.db)
                    try s.db.transaction {
                        let block = try blocks.allocate(size: ids.size, uids: ids.uids, gids: ids.gids)
                        var r = record
                        r.settings.userNamespace = block
                        r.spec.linux?.uidMappings = block.uidMappings
                        r.spec.linux?.gidMappings = block.gidMappings
                        // devpts' gid=5 (tty) must be a mapped group: a block of 5 ids or fewer
                        // leaves it out, as runc and Podman do.
                        if ids.size <= 5, let mounts = r.spec.mounts {
                            r.spec.mounts = mounts.map { m in
                                guard m.type == "devpts" else { return m }
                                var m = m
                                m.options = m.options?.filter { $0 != "gid=5" }
                                return m
                            }
                        }
                        try s.insert(r)
                        try blocks.record(r.id, block)
                        record = r
                    }
                } else {
                    try store().insert(record)
                }
                return
            } catch let e as NameInUse {
                attempts += 1
                guard !nameGiven, attempts < 10 else { throw SkiffError(e.description) }
                record.name = try uniqueName()
            }
        }
    }

    /// Docker's name rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
    func validateName(_ name: String) throws {
        let ok = name.unicodeScalars.enumerated().allSatisfy { i, c in
            let alnum = ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c)
            return alnum || (i > 0 && (c == "_" || c == "." || c == "-"))
        }
        guard ok, name.count >= 2, name.count <= 128 else {
            throw SkiffError("invalid container name \"\(name)\": use 2-128 characters [a-zA-Z0-9][a-zA-Z0-9_.-]")
        }
    }

    func uniqueName() throws -> String {
        let s = try store()
        for _ in 0..<20 {
            let n = Names.random()
            if try s.get(name: n) == nil { return n }
        }
        return "skiff_" + Random.hex(bytes: 4)
    }

    private func absolute(_ p: String) -> String {
        if p.hasPrefix("/") { return p }
        var buf = [CChar](repeating: 0, count: 4096)
        guard getcwd(&buf, buf.count) != nil else { return p }
        return String(decoding: buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self) + "/" + p
    }

    // MARK: lookup and reconcile

    /// Finds a container by name, full ID or unique ID prefix, after reconciling its state.
    public func find(_ ref: String) throws -> ContainerRecord {
        let r = try store().find(ref)
        guard let current = try reconcile(r) else { throw SkiffError("no such container: \(ref); see `skiff ps -a`") }
        return current
    }

    /// All containers, reconciled, oldest first. Also removes empty `skiff-<id>` cgroups of no
    /// container in this state root that are older than a minute (`Cgroup.removeOrphans`: what a
    /// foreground run killed in its first milliseconds leaves).
    public func list() throws -> [ContainerRecord] {
        let records = try store().all()
        let known = Set(records.map(\.id))
        Cgroup.removeOrphans(prefix: "skiff-", olderThan: 60) { known.contains($0) }
        removeOrphanDirectories(olderThan: 60) { known.contains($0) }
        return try records.compactMap { try reconcile($0) }
    }

    /// Removes container directories (`<root>/containers/<id>`) that no record claims and that are
    /// older than `seconds`, with their runtime directories: a foreground `run` killed between
    /// making them and recording its container (the record is written while its first process
    /// sets up) leaves them, and `skiff rm` cannot name them. The age keeps a start in progress
    /// out of reach; mounts left under the runtime directory (a user-namespace root file system)
    /// are detached first, and removal never crosses into another file system.
    func removeOrphanDirectories(olderThan seconds: Double, isKnown: (String) -> Bool) {
        guard let names = try? Files.list(root.containersDir) else { return }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        for id in names where id.count == 64 && id.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) && !isKnown(id) {
            var st = stat()
            guard stat(containerDir(id), &st) == 0, Double(now.tv_sec - st.st_mtim.tv_sec) > seconds else { continue }
            for point in Mountinfo.mountPoints(under: runDir(id)).reversed() { MountAPI.detach(point) }
            try? Files.removeTree(runDir(id))
            try? Files.removeTree(containerDir(id))
        }
    }

    /// A container recorded as running whose monitor is gone (killed, crashed, host rebooted) is
    /// marked exited and its leftovers (processes, cgroup) are cleaned up (DESIGN rule 4); one
    /// started with `--rm` is removed, and nil returned.
    @discardableResult
    func reconcile(_ r: ContainerRecord) throws -> ContainerRecord? {
        guard r.status == .running || r.status == .paused else { return r }
        if let m = r.monitorPID, Processes.isAlive(m, startTime: r.monitorStartTime) { return r }
        // The monitor is dead; its PID 1 had PR_SET_PDEATHSIG(SIGKILL), but make sure. A VMM (or a
        // monitor) the OOM killer took shows in its cgroup's OOM-kill count: Docker's OOMKilled.
        let oomKilled = ((try? Cgroup(paths: r.cgroupPaths))?.oomKillCount() ?? 0) > 0
        killAndRemoveCgroup(r)
        releaseReservation(r.id)
        removeRunDir(r)
        if r.settings.autoRemove {
            // Its --rm would have removed it; do what the monitor could not.
            removeFiles(r)
            try store().delete(r.id)
            return nil
        }
        let updated = try store().modify(r.id) { rec in
            guard rec.status == .running || rec.status == .paused else { return }
            rec.status = .exited
            if rec.exitCode == nil { rec.exitCode = 137 }
            if oomKilled { rec.oomKilled = true }
            rec.finishedAt = Clock.now()
            rec.pid = nil
            rec.error =
                oomKilled
                ? "the \(rec.kind == .vm ? "VM's monitor (its VMM)" : "container's monitor") was killed by the OOM killer of its memory cgroup"
                : "the \(rec.kind == .vm ? "VM's monitor (its VMM)" : "container's monitor") process exited unexpectedly; the workload was killed"
            rec.cgroupPaths = []
        }
        return updated ?? r
    }

    /// Removes the container's runtime directory. A container in its own user namespace had its
    /// root filesystem mounted there on the host while it started (`UserNamespaceHost`); if its
    /// monitor died before detaching it, that mount is detached first.
    func removeRunDir(_ r: ContainerRecord) {
        let dir = runDir(r.id)
        if r.settings.userNamespace != nil {
            for point in Mountinfo.mountPoints(under: dir) { MountAPI.detach(point) }
        }
        try? Files.removeTree(dir)
    }

    /// Kills every process left in the container's cgroup and removes the cgroup directories.
    func killAndRemoveCgroup(_ r: ContainerRecord) {
        guard !r.cgroupPaths.isEmpty, let cg = try? Cgroup(paths: r.cgroupPaths) else { return }
        // After PID 1 of a PID namespace is reaped every other process of it is gone too, so the
        // usual case is an empty cgroup: remove it straight away, kill only what is left.
        if (try? cg.remove(timeout: .zero)) != nil { return }
        try? cg.kill(signal: SIGKILL)
        _ = try? cg.waitEmpty(timeout: .seconds(10))
        try? cg.remove()
    }
}

/// Docker-style random names: `adjective_surname`.
enum Names {
    static let adjectives = [
        "brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid", "merry", "nifty", "proud",
        "quiet", "rapid", "sharp", "swift", "tender", "vivid", "witty", "zealous", "bold", "clever", "daring", "epic",
    ]
    static let surnames = [
        "lovelace", "hopper", "turing", "ritchie", "thompson", "torvalds", "knuth", "dijkstra", "hamilton", "liskov",
        "shannon", "noether", "curie", "tesla", "kepler", "euler", "gauss", "babbage", "cerf", "kahn", "perlman",
    ]
    static func random() -> String {
        adjectives[Random.index(adjectives.count)] + "_" + surnames[Random.index(surnames.count)]
    }
}
