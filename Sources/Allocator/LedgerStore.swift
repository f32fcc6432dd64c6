import LinuxSys
import Store

/// The reservation ledger in the state database: table `reservations` (one row per admitted
/// workload) and the host reserve in `allocator_settings`.
///
/// Every admission, resize and release is one `BEGIN IMMEDIATE` transaction (`Database.transaction`),
/// so any number of `skiff` processes admitting at once never over-commit: each sees the
/// others' rows. A row whose holder process is gone (a monitor killed by SIGKILL, a host that
/// rebooted) is void; admission deletes such rows before it counts.
public struct LedgerStore {
    public let db: Database

    /// Creates the tables if needed.
    /// - Throws: `DatabaseError`.
    public init(db: Database) throws {
        self.db = db
        try db.ensureSchema(
            "ledger",
            """
            CREATE TABLE IF NOT EXISTS reservations (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                kind TEXT NOT NULL,
                cpu_ppm INTEGER NOT NULL,
                memory_ppm INTEGER NOT NULL,
                holder_pid INTEGER NOT NULL,
                holder_start INTEGER,
                since REAL NOT NULL
            );
            CREATE TABLE IF NOT EXISTS allocator_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            """)
    }

    /// Whether a holder process still runs (PID and start time match); injectable for tests.
    public typealias Liveness = (_ pid: Int32, _ startTime: UInt64?) -> Bool
    /// The real check: `/proc/PID/stat` exists with the recorded start time and is no zombie.
    public static func processLiveness(_ pid: Int32, _ startTime: UInt64?) -> Bool {
        Processes.isAlive(pid, startTime: startTime)
    }

    /// Every live reservation (void ones are left for the next write to delete).
    public func all(isAlive: Liveness = LedgerStore.processLiveness) throws -> [Reservation] {
        try rows().filter { isAlive($0.holderPID, $0.holderStartTime) }
    }

    /// Admits `reservation` (or resizes the workload's existing one) atomically.
    /// - Parameters:
    ///   - allocatable: the host's allocatable total, for the amounts in a refusal.
    /// - Throws: `AllocatorError.refused` naming the binding resource with numbers; nothing changes then.
    public func admit(
        _ reservation: Reservation, allocatable: Allocatable, isAlive: Liveness = LedgerStore.processLiveness
    ) throws {
        try db.transaction {
            var ledger = Ledger(try pruned(isAlive))
            if let resource = ledger.admit(reservation) {
                let free = ledger.free(excluding: reservation.id)
                throw Self.refusal(reservation, resource: resource, free: free, allocatable: allocatable)
            }
            try db.query("DELETE FROM reservations WHERE id = ?", [.text(reservation.id)])
            guard !reservation.share.isEmpty else { return }
            try db.query(
                """
                INSERT INTO reservations (id, name, kind, cpu_ppm, memory_ppm, holder_pid, holder_start, since)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """,
                [
                    .text(reservation.id), .text(reservation.name), .text(reservation.kind),
                    .integer(Int64(reservation.share.cpuPPM)), .integer(Int64(reservation.share.memoryPPM)),
                    .integer(Int64(reservation.holderPID)),
                    reservation.holderStartTime.map { .integer(Int64(bitPattern: $0)) } ?? .null,
                    .real(reservation.since),
                ])
        }
    }

    /// Hands a reservation to another holder (the detached monitor that now owns the workload).
    public func transfer(_ id: String, toPID pid: Int32, startTime: UInt64?) throws {
        try db.query(
            "UPDATE reservations SET holder_pid = ?, holder_start = ? WHERE id = ?",
            [.integer(Int64(pid)), startTime.map { .integer(Int64(bitPattern: $0)) } ?? .null, .text(id)])
    }

    /// Releases `id`'s reservation, if it has one.
    public func release(_ id: String) throws {
        try db.query("DELETE FROM reservations WHERE id = ?", [.text(id)])
    }

    /// Deletes void rows. Returns how many were released.
    @discardableResult
    public func releaseVoid(isAlive: Liveness = LedgerStore.processLiveness) throws -> Int {
        try db.transaction {
            let before = try rows().count
            return before - (try pruned(isAlive)).count
        }
    }

    // MARK: host capacity

    /// The host capacity every ratio in this state root is a ratio of. What one process sees
    /// depends on its own cpuset, affinity and memory cgroup, so the first admission's view is
    /// stored and used by every command while any reservation is held; with none held, `detected`
    /// replaces it (a host that changed is picked up at the next idle moment).
    public func capacity(detected: HostCapacity, isAlive: Liveness = LedgerStore.processLiveness) throws -> HostCapacity
    {
        try db.transaction {
            var cpus: Double?
            var memory: UInt64?
            for row in try db.query("SELECT key, value FROM allocator_settings WHERE key LIKE 'capacity.%'") {
                if row["key"]?.string == "capacity.cpus" { cpus = row["value"]?.string.flatMap(Double.init) }
                if row["key"]?.string == "capacity.memory" { memory = row["value"]?.string.flatMap { UInt64($0) } }
            }
            if try pruned(isAlive).isEmpty {
                // Written only when it changed: a transaction that writes nothing commits nothing.
                if cpus != detected.cpus || memory != detected.memoryBytes {
                    for (key, value) in [
                        ("capacity.cpus", String(detected.cpus)), ("capacity.memory", String(detected.memoryBytes)),
                    ] {
                        try db.query(
                            "INSERT INTO allocator_settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                            [.text(key), .text(value)])
                    }
                }
                return detected
            }
            guard let cpus, let memory else { return detected }
            return HostCapacity(cpus: cpus, memoryBytes: memory)
        }
    }

    // MARK: host reserve

    /// The reserve set by `skiff reserve`, or nil for the default.
    public func storedReserve() throws -> HostReserve? {
        let rows = try db.query("SELECT key, value FROM allocator_settings")
        var cpus: Double?
        var memory: UInt64?
        for row in rows {
            switch row["key"]?.string {
            case "reserve.cpus": cpus = row["value"]?.string.flatMap(Double.init)
            case "reserve.memory": memory = row["value"]?.string.flatMap { UInt64($0) }
            default: break
            }
        }
        guard let cpus, let memory else { return nil }
        return HostReserve(cpus: cpus, memoryBytes: memory)
    }

    /// The reserve in force for `capacity`: the stored one, or `HostReserve.defaultReserve`.
    public func reserve(for capacity: HostCapacity) throws -> HostReserve {
        try storedReserve() ?? HostReserve.defaultReserve(for: capacity)
    }

    /// Stores a reserve (nil: back to the default). It must leave something to allocate and must
    /// not take from workloads already admitted.
    /// - Throws: `AllocatorError.invalidReserve` saying which number is too large.
    public func setReserve(_ reserve: HostReserve?, capacity: HostCapacity) throws {
        try db.transaction {
            if !(try pruned(Self.processLiveness)).isEmpty {
                throw AllocatorError.invalidReserve(
                    "workloads hold reservations (see skiff top); stop them before changing the host reserve, since their ratios are ratios of what it leaves"
                )
            }
            guard let reserve else {
                try db.query("DELETE FROM allocator_settings WHERE key IN ('reserve.cpus', 'reserve.memory')")
                return
            }
            guard reserve.cpus >= 0, reserve.cpus < capacity.cpus else {
                throw AllocatorError.invalidReserve(
                    "reserve of \(reserve.cpus) CPUs leaves nothing to allocate on a host with \(capacity.cpus) usable CPUs; give less than \(capacity.cpus)"
                )
            }
            guard reserve.memoryBytes < capacity.memoryBytes else {
                throw AllocatorError.invalidReserve(
                    "reserve of \(ByteCount.binary(reserve.memoryBytes)) is not less than the host's \(ByteCount.binary(capacity.memoryBytes)) of memory"
                )
            }
            for (key, value) in [
                ("reserve.cpus", String(reserve.cpus)), ("reserve.memory", String(reserve.memoryBytes)),
            ] {
                try db.query(
                    "INSERT INTO allocator_settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    [.text(key), .text(value)])
            }
        }
    }

    // MARK: internals

    private func rows() throws -> [Reservation] {
        try db.query("SELECT * FROM reservations ORDER BY since").map { row in
            Reservation(
                id: row["id"]?.string ?? "", name: row["name"]?.string ?? "", kind: row["kind"]?.string ?? "",
                share: Share(cpuPPM: row["cpu_ppm"]?.int ?? 0, memoryPPM: row["memory_ppm"]?.int ?? 0),
                holderPID: Int32(row["holder_pid"]?.int ?? 0),
                holderStartTime: row["holder_start"]?.int.map { UInt64(bitPattern: Int64($0)) },
                since: row["since"]?.double ?? 0)
        }
    }

    /// Deletes rows whose holder is gone; returns the rest. Call inside a transaction.
    private func pruned(_ isAlive: Liveness) throws -> [Reservation] {
        var live: [Reservation] = []
        for r in try rows() {
            if isAlive(r.holderPID, r.holderStartTime) {
                live.append(r)
            } else {
                try db.query("DELETE FROM reservations WHERE id = ?", [.text(r.id)])
            }
        }
        return live
    }

    static func refusal(_ r: Reservation, resource: AllocatedResource, free: Share, allocatable: Allocatable)
        -> AllocatorError
    {
        let workload = "\(r.kind) \(r.name)"
        switch resource {
        case .cpu:
            let cpus = { (ppm: Int) in String((Double(ppm) / 1e6 * allocatable.cpus * 100).rounded() / 100) + " CPUs" }
            return .refused(
                workload: workload, resource: .cpu, asked: r.share.cpuRatio, free: free.cpuRatio,
                askedAmount: cpus(r.share.cpuPPM), freeAmount: cpus(free.cpuPPM),
                totalAmount: String((allocatable.cpus * 100).rounded() / 100) + " CPUs")
        case .memory:
            let bytes = { (ppm: Int) in ByteCount.binary(UInt64(Double(ppm) / 1e6 * Double(allocatable.memoryBytes))) }
            return .refused(
                workload: workload, resource: .memory, asked: r.share.memoryRatio, free: free.memoryRatio,
                askedAmount: bytes(r.share.memoryPPM), freeAmount: bytes(free.memoryPPM),
                totalAmount: ByteCount.binary(allocatable.memoryBytes))
        }
    }
}
