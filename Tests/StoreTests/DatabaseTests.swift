import Foundation
import Store
import Testing

/// The state database's transactions, on a real SQLite file in a temporary directory.
@Suite struct DatabaseTests {
    func withDatabase(_ body: (Database) throws -> Void) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("skiff-db-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let db = try Database(path: dir.appendingPathComponent("state.db").path)
        try db.execute("CREATE TABLE t (k TEXT PRIMARY KEY)")
        try body(db)
    }

    func keys(_ db: Database) throws -> [String] {
        try db.query("SELECT k FROM t ORDER BY k").compactMap { $0["k"]?.string }
    }

    struct Refused: Error {}

    /// A transaction inside another (a ledger admission inside the foreground VM's record-and-admit)
    /// is part of it: what the inner one wrote commits with the outer one, and an inner one that
    /// fails undoes only its own writes.
    @Test func anInnerTransactionIsPartOfTheOuterOne() throws {
        try withDatabase { db in
            try db.transaction {
                try db.query("INSERT INTO t VALUES ('outer')")
                try db.transaction { try db.query("INSERT INTO t VALUES ('inner')") }
                #expect(throws: Refused.self) {
                    try db.transaction {
                        try db.query("INSERT INTO t VALUES ('refused')")
                        throw Refused()
                    }
                }
            }
            #expect(try keys(db) == ["inner", "outer"])
        }
    }

    @Test func anOuterTransactionThatFailsUndoesItsInnerOnes() throws {
        try withDatabase { db in
            #expect(throws: Refused.self) {
                try db.transaction {
                    try db.query("INSERT INTO t VALUES ('outer')")
                    try db.transaction { try db.query("INSERT INTO t VALUES ('inner')") }
                    throw Refused()
                }
            }
            #expect(try keys(db).isEmpty)
            // The connection is usable again.
            try db.transaction { try db.query("INSERT INTO t VALUES ('after')") }
            #expect(try keys(db) == ["after"])
        }
    }
}
