import OCI
import Store

/// One image as `skiff images` lists it: a row per tag (an untagged image has one row with
/// `repository == nil`).
public struct ImageRecord: Sendable, Equatable {
    /// Repository, e.g. `busybox`; nil for an untagged image.
    public var repository: String?
    /// Tag, e.g. `latest`; nil for an untagged image.
    public var tag: String?
    /// Image ID: the digest of the image configuration, as Docker's.
    public var id: Digest
    /// Digest of the image manifest it was loaded from.
    public var manifestDigest: Digest
    /// Bytes: compressed layers plus config, as stored.
    public var size: Int64
    /// The config's `created` (RFC 3339), when present.
    public var created: String?
    /// When it was loaded: seconds since the Unix epoch.
    public var loadedAt: Int64

    /// `repository:tag`, or nil when untagged.
    public var name: String? { repository.flatMap { r in tag.map { r + ":" + $0 } } }
}

/// The image tables in the state database.
///
/// - `images(id, manifest_digest, size, created, loaded_at)`: one row per image (config digest);
/// - `image_layers(image_id, position, digest, diff_id)`: the manifest's layers, bottom first;
/// - `image_tags(repository, tag, image_id)`: names; a name points at one image, re-loading moves it.
enum ImageTables {
    static let schema = """
        CREATE TABLE IF NOT EXISTS images (
            id TEXT PRIMARY KEY,
            manifest_digest TEXT NOT NULL,
            size INTEGER NOT NULL,
            created TEXT,
            loaded_at INTEGER NOT NULL
        );
        CREATE TABLE IF NOT EXISTS image_layers (
            image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            digest TEXT NOT NULL,
            diff_id TEXT NOT NULL,
            PRIMARY KEY (image_id, position)
        );
        CREATE INDEX IF NOT EXISTS image_layers_digest ON image_layers(digest);
        CREATE TABLE IF NOT EXISTS image_tags (
            repository TEXT NOT NULL,
            tag TEXT NOT NULL,
            image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
            PRIMARY KEY (repository, tag)
        );
        """

    /// Inserts or replaces the image and its layers, and points `names` at it. Runs inside the
    /// caller's transaction.
    static func record(
        _ db: Database, id: Digest, manifest: Digest, size: Int64, created: String?, loadedAt: Int64,
        layers: [(Digest, Digest)], names: [ImageName]
    ) throws {
        try db.query(
            """
            INSERT INTO images (id, manifest_digest, size, created, loaded_at) VALUES (?, ?, ?, ?, ?)
            ON CONFLICT(id) DO UPDATE SET manifest_digest = excluded.manifest_digest, size = excluded.size,
                created = excluded.created, loaded_at = excluded.loaded_at
            """,
            [
                .text(id.description), .text(manifest.description), .integer(size), created.map { .text($0) } ?? .null,
                .integer(loadedAt),
            ])
        try db.query("DELETE FROM image_layers WHERE image_id = ?", [.text(id.description)])
        for (i, (digest, diffID)) in layers.enumerated() {
            try db.query(
                "INSERT INTO image_layers (image_id, position, digest, diff_id) VALUES (?, ?, ?, ?)",
                [.text(id.description), .integer(Int64(i)), .text(digest.description), .text(diffID.description)])
        }
        for n in names {
            try db.query(
                "INSERT OR REPLACE INTO image_tags (repository, tag, image_id) VALUES (?, ?, ?)",
                [.text(n.repository), .text(n.tag), .text(id.description)])
        }
    }

    /// Every image, one row per tag, newest load first.
    static func list(_ db: Database) throws -> [ImageRecord] {
        let rows = try db.query(
            """
            SELECT i.id, i.manifest_digest, i.size, i.created, i.loaded_at, t.repository, t.tag
            FROM images i LEFT JOIN image_tags t ON t.image_id = i.id
            ORDER BY i.loaded_at DESC, t.repository, t.tag
            """)
        return try rows.map { r in
            ImageRecord(
                repository: r["repository"]?.string, tag: r["tag"]?.string,
                id: try Digest(parsing: r["id"]?.string ?? ""),
                manifestDigest: try Digest(parsing: r["manifest_digest"]?.string ?? ""),
                size: Int64(r["size"]?.int ?? 0), created: r["created"]?.string,
                loadedAt: Int64(r["loaded_at"]?.int ?? 0))
        }
    }

    /// `(layer digest, diff_id)` pairs of an image, bottom first.
    static func layers(_ db: Database, image: Digest) throws -> [(Digest, Digest)] {
        try db.query(
            "SELECT digest, diff_id FROM image_layers WHERE image_id = ? ORDER BY position", [.text(image.description)]
        ).map { (try Digest(parsing: $0["digest"]?.string ?? ""), try Digest(parsing: $0["diff_id"]?.string ?? "")) }
    }

    /// A previously verified diff_id for a layer digest, if any image recorded one.
    static func knownDiffID(_ db: Database, layer: Digest) throws -> Digest? {
        try db.query("SELECT diff_id FROM image_layers WHERE digest = ? LIMIT 1", [.text(layer.description)])
            .first.flatMap { $0["diff_id"]?.string }.flatMap { try? Digest(parsing: $0) }
    }

    /// Every digest (manifest, config, layer) still referenced by some image.
    /// The init layer directory names (`InitLayer.directoryName`) of every image's layer chain.
    static func initLayerNames(_ db: Database) throws -> Set<String> {
        var chains: [String: [(Int64, String)]] = [:]
        for r in try db.query("SELECT image_id, position, digest FROM image_layers") {
            guard let id = r["image_id"]?.string, let digest = r["digest"]?.string else { continue }
            let position: Int64
            if case .integer(let p)? = r["position"] { position = p } else { position = 0 }
            chains[id, default: []].append((position, String(digest.dropFirst("sha256:".count))))
        }
        return Set(chains.values.map { layers in
            InitLayer.directoryName(layerHexes: layers.sorted { $0.0 > $1.0 }.map(\.1))
        })
    }

    static func referencedDigests(_ db: Database) throws -> Set<String> {
        var out = Set<String>()
        for r in try db.query("SELECT id, manifest_digest FROM images") {
            if let v = r["id"]?.string { out.insert(v) }
            if let v = r["manifest_digest"]?.string { out.insert(v) }
        }
        for r in try db.query("SELECT DISTINCT digest FROM image_layers") {
            if let v = r["digest"]?.string { out.insert(v) }
        }
        return out
    }
}
