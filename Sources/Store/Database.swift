import CSQLite

#if canImport(Glibc)
    import Glibc
#endif

/// An error from SQLite, with the statement or file it concerned.
public struct DatabaseError: Error, CustomStringConvertible {
    /// SQLite's primary result code (`SQLITE_BUSY`, `SQLITE_CONSTRAINT`, …).
    public let code: Int32
    /// SQLite's message, prefixed with what Skiff was doing.
    public let message: String
    public var description: String { message }
    /// True when the error is a UNIQUE or PRIMARY KEY violation.
    public var isConstraint: Bool { code & 0xff == SQLITE_CONSTRAINT }
}

/// One value bound to or read from a statement column.
public enum SQLValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)

    public var int: Int? { if case .integer(let v) = self { return Int(v) }; return nil }
    public var double: Double? {
        switch self {
        case .real(let v): return v
        case .integer(let v): return Double(v)
        default: return nil
        }
    }
    public var string: String? { if case .text(let v) = self { return v }; return nil }
}

/// A row: column name → value.
public typealias Row = [String: SQLValue]

/// A connection to an SQLite database file (the embedded state store).
///
/// Concurrency between processes: the database runs in WAL mode with a 10 s busy timeout, and
/// `transaction` uses `BEGIN IMMEDIATE`, so two `skiff` commands at once serialise their writes
/// instead of failing or corrupting the file (sqlite.org/wal.html, sqlite.org/lang_transaction.html).
/// One connection per process; not shared across threads.
public final class Database {
    private var handle: OpaquePointer?
    /// Schemas `ensureSchema` already ran on this connection.
    private var ensured: Set<String> = []
    /// Path of the database file.
    public let path: String

    /// Opens (creating if needed) the database at `path`.
    /// - Throws: `DatabaseError` naming the path when SQLite cannot open it.
    public init(path: String) throws {
        self.path = path
        var db: OpaquePointer?
        let rc = sqlite3_open_v2(
            path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nil)
        guard rc == SQLITE_OK, let db else {
            let msg = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close(db)
            throw DatabaseError(
                code: rc,
                message: "cannot open state database \(path): \(msg); check that the state root is writable")
        }
        handle = db
        sqlite3_busy_timeout(db, 10_000)
        try execute("PRAGMA journal_mode=WAL")
        skiff_sqlite_persist_wal(db)
        // Each `skiff` command is a short-lived process, so by default every one of them would be
        // the last connection to close and checkpoint the WAL: two fdatasyncs and a truncate, about
        // 1 ms at the end of every command (BENCHMARKS.md). Instead a commit checkpoints once the WAL
        // holds 64 pages (256 KiB), and the next command to open the database rebuilds its index
        // from a WAL that small (sqlite.org/wal.html "Checkpointing", "Persistence of WAL mode").
        // Durability is that of synchronous=NORMAL in WAL mode either way: a commit is atomic and
        // consistent after a crash; the newest commits may be lost to a power cut.
        skiff_sqlite_no_checkpoint_on_close(db)
        try execute("PRAGMA wal_autocheckpoint=64")
        // Truncate the WAL after a checkpoint only above 1 MiB: a file that keeps its blocks is
        // rewritten in place instead of being freed (a discard on this ext4) and grown again.
        try execute("PRAGMA journal_size_limit=1048576")
        try execute("PRAGMA synchronous=NORMAL")
        try execute("PRAGMA foreign_keys=ON")
    }

    deinit { sqlite3_close_v2(handle) }

    /// Runs one or more statements that return no rows.
    /// - Throws: `DatabaseError` with the SQL that failed.
    public func execute(_ sql: String) throws {
        var err: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &err)
        if rc != SQLITE_OK {
            let msg = err.map { String(cString: $0) } ?? "error \(rc)"
            sqlite3_free(err)
            throw DatabaseError(code: rc, message: "state database \(path): \(msg) (in: \(sql.prefix(80)))")
        }
    }

    /// Runs `sql` (`CREATE TABLE IF NOT EXISTS …` statements) the first time this connection is
    /// asked for `name`, and not again: stores are made for every use, and parsing the same DDL
    /// each time is pure overhead on the start path.
    /// - Throws: `DatabaseError` with the SQL that failed (and runs it again next time).
    public func ensureSchema(_ name: String, _ sql: String) throws {
        guard !ensured.contains(name) else { return }
        try execute(sql)
        ensured.insert(name)
    }

    /// Runs one statement with positional `?` parameters and returns every row.
    /// - Throws: `DatabaseError` with SQLite's message and the statement.
    @discardableResult
    public func query(_ sql: String, _ params: [SQLValue] = []) throws -> [Row] {
        var stmt: OpaquePointer?
        var rc = sqlite3_prepare_v2(handle, sql, -1, &stmt, nil)
        guard rc == SQLITE_OK else { throw error(rc, sql) }
        defer { sqlite3_finalize(stmt) }
        for (i, p) in params.enumerated() {
            let idx = Int32(i + 1)
            switch p {
            case .null: rc = sqlite3_bind_null(stmt, idx)
            case .integer(let v): rc = sqlite3_bind_int64(stmt, idx, v)
            case .real(let v): rc = sqlite3_bind_double(stmt, idx, v)
            case .text(let v): rc = sqlite3_bind_text(stmt, idx, v, -1, skiff_sqlite_transient())
            }
            guard rc == SQLITE_OK else { throw error(rc, sql) }
        }
        var rows: [Row] = []
        while true {
            rc = sqlite3_step(stmt)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw error(rc, sql) }
            var row: Row = [:]
            for c in 0..<sqlite3_column_count(stmt) {
                let name = String(cString: sqlite3_column_name(stmt, c))
                switch sqlite3_column_type(stmt, c) {
                case SQLITE_INTEGER: row[name] = .integer(sqlite3_column_int64(stmt, c))
                case SQLITE_FLOAT: row[name] = .real(sqlite3_column_double(stmt, c))
                case SQLITE_TEXT: row[name] = .text(String(cString: sqlite3_column_text(stmt, c)))
                default: row[name] = .null
                }
            }
            rows.append(row)
        }
        return rows
    }

    /// Number of rows changed by the last INSERT, UPDATE or DELETE.
    public var changes: Int { Int(sqlite3_changes(handle)) }

    /// Runs `body` inside `BEGIN IMMEDIATE … COMMIT`; rolls back when it throws.
    /// The write lock is taken at BEGIN, so a read-check-write inside `body` is atomic across processes.
    /// Inside another transaction `body` runs in a savepoint of it instead (sqlite.org/lang_savepoint.html):
    /// its changes commit with the outer transaction, and only they are undone when it throws.
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        if sqlite3_get_autocommit(handle) == 0 {
            try execute("SAVEPOINT nested")
            do {
                let result = try body()
                try execute("RELEASE nested")
                return result
            } catch {
                try? execute("ROLLBACK TO nested")
                try? execute("RELEASE nested")
                throw error
            }
        }
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    private func error(_ rc: Int32, _ sql: String) -> DatabaseError {
        let msg = String(cString: sqlite3_errmsg(handle))
        return DatabaseError(code: rc, message: "state database \(path): \(msg) (in: \(sql.prefix(80)))")
    }
}
