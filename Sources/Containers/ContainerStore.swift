import LinuxSys
import OCI
import Store

/// The `containers` table: one JSON document per container, with `id`, `name` and `status`
/// as columns so lookups and uniqueness are enforced by SQLite.
public struct ContainerStore {
    public let db: Database

    /// Creates the table if needed.
    /// - Throws: `DatabaseError`.
    public init(db: Database) throws {
        self.db = db
        try db.ensureSchema(
            "containers",
            """
            CREATE TABLE IF NOT EXISTS containers (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                status TEXT NOT NULL,
                image_id TEXT NOT NULL,
                created REAL NOT NULL,
                doc TEXT NOT NULL
            )
            """)
    }

    /// Inserts a new container.
    /// - Throws: `NameInUse` when the name is taken, naming the container that has it.
    public func insert(_ r: ContainerRecord) throws {
        let doc = try OCIJSON.string(r)
        Trace.mark("insert: encoded")
        do {
            try db.query(
                "INSERT INTO containers (id, name, status, image_id, created, doc) VALUES (?, ?, ?, ?, ?, ?)",
                [.text(r.id), .text(r.name), .text(r.status.rawValue), .text(r.imageID), .real(r.created),
                 .text(doc)])
        } catch let e as DatabaseError where e.isConstraint {
            let other = (try? get(name: r.name))?.shortID ?? "another container"
            throw NameInUse(name: r.name, holder: other)
        }
    }

    /// Writes back a changed record.
    public func update(_ r: ContainerRecord) throws {
        try db.query(
            "UPDATE containers SET status = ?, doc = ? WHERE id = ?",
            [.text(r.status.rawValue), .text(try OCIJSON.string(r)), .text(r.id)])
    }

    /// Reads, changes and writes one record in a single transaction. Returns the new record,
    /// or nil when it no longer exists.
    @discardableResult
    public func modify(_ id: String, _ change: (inout ContainerRecord) throws -> Void) throws -> ContainerRecord? {
        try db.transaction {
            guard var r = try get(id: id) else { return nil }
            try change(&r)
            try update(r)
            return r
        }
    }

    /// A top-level field of a record's document, as `patch` writes it.
    public enum Field: Sendable, Equatable {
        /// Removed from the document: an optional that is nil (the encoder leaves those out).
        case absent
        case integer(Int64)
        case real(Double)
        case text(String)
        case bool(Bool)
        /// A JSON document (object, array) put in as it is.
        case json(String)
    }

    /// Sets or removes top-level fields of one record and its `status` column in a single
    /// UPDATE, with SQLite's `json_set`/`json_remove` (sqlite.org/json1.html) instead of decoding
    /// and re-encoding the whole document as `modify` does: on the start path the spec, with its
    /// seccomp profile, makes that round trip about 2 ms of CPU. Keys are `ContainerRecord`'s
    /// property names (its synthesized coding keys; `ContainerStorePatchTests` checks them), or a
    /// dotted path into it (`spec.linux`) whose parent exists.
    /// - Returns: false when no record has that ID.
    /// - Throws: `DatabaseError`.
    @discardableResult
    public func patch(_ id: String, status: ContainerStatus, _ fields: KeyValuePairs<String, Field>) throws -> Bool {
        var doc = "json_set(doc, '$.status', ?"
        var params: [SQLValue] = [.text(status.rawValue), .text(status.rawValue)]
        var removed: [String] = []
        for (key, value) in fields {
            switch value {
            case .absent: removed.append(key); continue
            case .integer(let v): params.append(.integer(v)); doc += ", ?, ?"
            case .real(let v): params.append(.real(v)); doc += ", ?, ?"
            case .text(let v): params.append(.text(v)); doc += ", ?, ?"
            case .bool(let v): params.append(.text(v ? "true" : "false")); doc += ", ?, json(?)"
            case .json(let v): params.append(.text(v)); doc += ", ?, json(?)"
            }
            params.insert(.text("$." + key), at: params.count - 1)
        }
        doc += ")"
        if !removed.isEmpty {
            doc = "json_remove(" + doc + String(repeating: ", ?", count: removed.count) + ")"
            params += removed.map { .text("$." + $0) }
        }
        params.append(.text(id))
        try db.query("UPDATE containers SET status = ?, doc = \(doc) WHERE id = ?", params)
        return db.changes > 0
    }

    public func delete(_ id: String) throws {
        try db.query("DELETE FROM containers WHERE id = ?", [.text(id)])
    }

    public func get(id: String) throws -> ContainerRecord? {
        try db.query("SELECT doc FROM containers WHERE id = ?", [.text(id)]).first.map(decode)
    }

    public func get(name: String) throws -> ContainerRecord? {
        try db.query("SELECT doc FROM containers WHERE name = ?", [.text(name)]).first.map(decode)
    }

    /// Every container, oldest first.
    public func all() throws -> [ContainerRecord] {
        try db.query("SELECT doc FROM containers ORDER BY created").map(decode)
    }

    /// Names of containers using an image ID.
    public func names(usingImage imageID: String) throws -> [String] {
        try db.query("SELECT name FROM containers WHERE image_id = ?", [.text(imageID)]).compactMap { $0["name"]?.string }
    }

    /// Finds a container by full ID, unique ID prefix, or name (Docker's rules: exact name or
    /// full ID first, then a prefix).
    /// - Throws: `SkiffError` "no such container" or "ambiguous", naming the reference.
    public func find(_ ref: String) throws -> ContainerRecord {
        if let r = try get(name: ref) { return r }
        let hex = ref.allSatisfy { ("0"..."9").contains($0) || ("a"..."f").contains($0) }
        if hex && !ref.isEmpty {
            let rows = try db.query(
                "SELECT doc FROM containers WHERE substr(id, 1, ?) = ?", [.integer(Int64(ref.count)), .text(ref)])
            if rows.count == 1 { return try decode(rows[0]) }
            if rows.count > 1 {
                throw SkiffError("container ID prefix \"\(ref)\" is ambiguous (\(rows.count) containers); give more digits or the name")
            }
        }
        throw SkiffError("no such container: \(ref); see `skiff ps -a`")
    }

    private func decode(_ row: Row) throws -> ContainerRecord {
        try OCIJSON.decode(ContainerRecord.self, from: Array((row["doc"]?.string ?? "").utf8), what: "container record")
    }
}

/// A container name is already taken (the `name` column is UNIQUE).
public struct NameInUse: Error, CustomStringConvertible {
    public let name: String
    /// Short ID of the container holding the name.
    public let holder: String
    public var description: String {
        "the container name \"\(name)\" is already in use by container \(holder); remove it (skiff rm \(name)) or choose another --name"
    }
}
