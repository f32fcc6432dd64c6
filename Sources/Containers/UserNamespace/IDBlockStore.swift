import LinuxSys
import OCI
import Store

/// A container's own user namespace (`--userns=auto`): container ids 0 … size-1 are host uids
/// `uidBase` … and host gids `gidBase` … (one line in each of uid_map and gid_map).
public struct UserNamespaceSettings: Codable, Sendable, Equatable {
    public var uidBase: UInt32
    public var gidBase: UInt32
    /// Ids mapped (65536 unless `--userns=auto:size=N`).
    public var size: UInt32

    /// `linux.uidMappings` / `linux.gidMappings` of the spec.
    var uidMappings: [Spec.IDMapping] { [Spec.IDMapping(containerID: 0, hostID: uidBase, size: size)] }
    var gidMappings: [Spec.IDMapping] { [Spec.IDMapping(containerID: 0, hostID: gidBase, size: size)] }
}

/// The `userns_blocks` table: which block of subordinate ids each container holds. A row lives
/// exactly as long as its container's row (`ON DELETE CASCADE`), so `skiff rm` releases the block.
struct IDBlockStore {
    let db: Database

    /// Creates the table if needed.
    init(db: Database) throws {
        self.db = db
        try db.ensureSchema(
            "userns_blocks",
            """
            CREATE TABLE IF NOT EXISTS userns_blocks (
                container_id TEXT PRIMARY KEY REFERENCES containers(id) ON DELETE CASCADE,
                uid_base INTEGER NOT NULL,
                gid_base INTEGER NOT NULL,
                size INTEGER NOT NULL
            )
            """)
    }

    /// Every block held, as uid ranges and gid ranges.
    func held() throws -> (uids: [IDRange], gids: [IDRange]) {
        let rows = try db.query("SELECT uid_base, gid_base, size FROM userns_blocks")
        var uids: [IDRange] = []
        var gids: [IDRange] = []
        for row in rows {
            guard let u = row["uid_base"]?.int, let g = row["gid_base"]?.int, let n = row["size"]?.int else { continue }
            uids.append(IDRange(start: UInt32(truncatingIfNeeded: u), count: UInt32(truncatingIfNeeded: n)))
            gids.append(IDRange(start: UInt32(truncatingIfNeeded: g), count: UInt32(truncatingIfNeeded: n)))
        }
        return (uids, gids)
    }

    /// Picks the lowest free uid and gid blocks of `size` ids. Call inside the transaction that
    /// inserts the container, then `record`, so parallel creates cannot pick the same block.
    /// - Throws: `SkiffError` from `SubordinateIDs.allocate`.
    func allocate(size: UInt32, uids: SubordinateIDs, gids: SubordinateIDs) throws -> UserNamespaceSettings {
        let taken = try held()
        let u = try uids.allocate(size: size, taken: taken.uids)
        let g = try gids.allocate(size: size, taken: taken.gids)
        return UserNamespaceSettings(uidBase: u, gidBase: g, size: size)
    }

    /// Records the block of container `id` (whose row must exist).
    func record(_ id: String, _ s: UserNamespaceSettings) throws {
        try db.query(
            "INSERT INTO userns_blocks (container_id, uid_base, gid_base, size) VALUES (?, ?, ?, ?)",
            [.text(id), .integer(Int64(s.uidBase)), .integer(Int64(s.gidBase)), .integer(Int64(s.size))])
    }
}
