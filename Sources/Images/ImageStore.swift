import Logging
import OCI
import Store

#if canImport(Glibc)
    import Glibc
#endif

/// An image resolved for running: its documents and unpacked layers.
public struct ResolvedImage: Sendable {
    /// Image ID (config digest).
    public let id: Digest
    /// `repository:tag` names pointing at it (may be empty).
    public let names: [String]
    /// Digest of the manifest.
    public let manifestDigest: Digest
    /// The image manifest (`manifest.md`): config and layer descriptors.
    public let manifest: ImageManifest
    /// Execution defaults (`config.Env`, `Cmd`, `Entrypoint`, `User`, `WorkingDir`) and rootfs.
    public let configuration: ImageConfiguration
    /// Unpacked layer directories, bottom-most (first in the manifest) first.
    public let layerDirectories: [String]

    /// Layer directories in overlayfs `lowerdir` order: top-most first.
    public var lowerdirs: [String] { layerDirectories.reversed() }
    /// `lowerdir=` value: `lowerdirs` joined with `:` (`Documentation/filesystems/overlayfs.rst`).
    public var lowerdirOption: String { lowerdirs.joined(separator: ":") }
}

/// Owns images: the content store, unpacked layers and the image tables of the state database.
///
/// Mutations (`load`, `remove`) take an exclusive `flock` on `<root>/images.lock`, so two `skiff`
/// processes never unpack or collect the same layer at once. Not thread-safe (like `Database`).
public final class ImageStore {
    /// The state root whose `blobs/` and `layers/` it owns.
    public let root: StateRoot
    /// The state database holding the `images`, `image_layers` and `image_tags` tables.
    public let database: Database
    /// The blob store (manifests, configs, compressed layers).
    public let content: ContentStore
    let unpacker: LayerUnpacker
    let logger: Logger

    /// Prepares `root`'s blob and layer directories and creates the image tables if needed.
    /// - Throws: `StateRootError`, `DatabaseError`.
    public init(root: StateRoot, database: Database, logger: Logger = Logger(label: "skiff.images")) throws {
        self.root = root
        self.database = database
        self.logger = logger
        content = try ContentStore(root: root)
        try StateRoot.mkdirAll(root.layersDir, mode: 0o700)
        unpacker = LayerUnpacker(logger: logger)
        try database.ensureSchema("images", ImageTables.schema)
    }

    /// Takes the image lock; the returned fd releases it when closed.
    func lockImages() throws -> Int32 {
        let path = root.path + "/images.lock"
        let fd = try FS.open(path, O_RDWR | O_CREAT, 0o600)
        while flock(fd, LOCK_EX) != 0 {
            if errno == EINTR { continue }
            let e = errno
            close(fd)
            throw ImageError.system(call: "flock", path: path, errno: e)
        }
        return fd
    }

    /// Every image, one record per tag (untagged images once, with nil names), newest first.
    /// - Throws: `DatabaseError`.
    public func list() throws -> [ImageRecord] { try ImageTables.list(database) }

    /// Finds an image by `name` (tag `latest`), `name:tag`, `sha256:<hex>` or an ID prefix of at
    /// least 4 hex digits (with or without `sha256:`).
    /// - Throws: `ImageError.noSuchImage`, `.ambiguous`, `.layersMissing` (files deleted under it).
    public func resolve(_ reference: String) throws -> ResolvedImage {
        let id = try resolveID(reference)
        let records = try list().filter { $0.id == id }
        guard let record = records.first else { throw ImageError.noSuchImage(reference) }
        // Both blobs were verified when they were stored; run does not hash them again.
        let manifest = try OCIJSON.decode(
            ImageManifest.self, from: try content.readPublished(record.manifestDigest),
            what: "manifest \(record.manifestDigest)")
        let configuration = try OCIJSON.decode(
            ImageConfiguration.self, from: try content.readPublished(id, size: manifest.config.size),
            what: "image config \(id)")
        var dirs: [String] = []
        for layer in manifest.layers {
            let dir = root.layersDir + "/" + layer.digest.hex
            guard let st = try FS.lstat(dir), FS.isDir(st) else {
                throw ImageError.layersMissing(image: reference, path: dir)
            }
            dirs.append(dir)
        }
        return ResolvedImage(
            id: id, names: records.compactMap(\.name), manifestDigest: record.manifestDigest, manifest: manifest,
            configuration: configuration, layerDirectories: dirs)
    }

    /// The image ID a reference names; see `resolve`.
    func resolveID(_ reference: String) throws -> Digest {
        var hex = reference
        if reference.hasPrefix("sha256:") {
            hex = String(reference.dropFirst(7))
        } else if let name = try? ImageName(parsing: reference) {
            let rows = try database.query(
                "SELECT image_id FROM image_tags WHERE repository = ? AND tag = ?",
                [.text(name.repository), .text(name.tag)])
            if let s = rows.first?["image_id"]?.string { return try Digest(parsing: s) }
        }
        guard hex.count >= 4, hex.count <= 64, hex.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
            throw ImageError.noSuchImage(reference)
        }
        let ids = try database.query("SELECT id FROM images WHERE id LIKE ?", [.text("sha256:" + hex + "%")])
            .compactMap { $0["id"]?.string }
        guard ids.count <= 1 else {
            throw ImageError.ambiguous(reference, candidates: ids.map { String($0.dropFirst(7).prefix(12)) })
        }
        guard let s = ids.first else { throw ImageError.noSuchImage(reference) }
        return try Digest(parsing: s)
    }

    /// Removes a name, or an image by ID.
    ///
    /// By `name:tag`, the tag is removed and the image with it when it was the last tag. By ID,
    /// every tag goes with the image; with several tags this needs `force`. An image is only
    /// deleted when `isInUse(id)` returns no container names (not even with `force`). Deleting
    /// an image removes, in this order, its database rows (one transaction) and then every blob
    /// and layer directory no remaining image references; an interruption between the two leaves
    /// only unreferenced files, which the next `remove` collects or a `load` reuses.
    /// - Returns: lines for the user (`Untagged: busybox:latest`, `Deleted: sha256:…`).
    /// - Throws: `ImageError.noSuchImage`, `.inUse` (naming the containers), `.multipleTags`.
    @discardableResult
    public func remove(_ reference: String, force: Bool = false, isInUse: (Digest) -> [String] = { _ in [] }) throws
        -> [String]
    {
        let lock = try lockImages()
        defer { close(lock) }
        let id = try resolveID(reference)
        let tags = try list().filter { $0.id == id }.compactMap(\.name)
        let byName = (try? ImageName(parsing: reference)).map { tags.contains($0.description) } ?? false
        var lines: [String] = []
        var deleteImage = true
        var untag = tags
        if byName, let name = try? ImageName(parsing: reference) {
            untag = [name.description]
            deleteImage = tags.count == 1
        } else if tags.count > 1 && !force {
            throw ImageError.multipleTags(image: id.short, tags: tags)
        }
        if deleteImage {
            let users = isInUse(id)
            guard users.isEmpty else { throw ImageError.inUse(image: tags.first ?? id.short, containers: users) }
        }
        try database.transaction {
            for t in untag {
                let n = try ImageName(parsing: t)
                try database.query(
                    "DELETE FROM image_tags WHERE repository = ? AND tag = ?", [.text(n.repository), .text(n.tag)])
            }
            if deleteImage {
                try database.query("DELETE FROM image_layers WHERE image_id = ?", [.text(id.description)])
                try database.query("DELETE FROM images WHERE id = ?", [.text(id.description)])
            }
        }
        lines += untag.map { "Untagged: " + $0 }
        if deleteImage {
            lines.append("Deleted: \(id)")
            try collectGarbage()
        }
        return lines
    }

    /// Deletes every blob and unpacked layer no image in the database references (and leftover
    /// temporary files). Call with the image lock held.
    func collectGarbage() throws {
        let keep = try ImageTables.referencedDigests(database)
        for name in try FS.listDirectory(content.directory) {
            let isTmp = name.hasPrefix(".tmp-")
            if isTmp || !keep.contains("sha256:" + name) {
                logger.debug("removing unreferenced blob \(name)")
                try FS.removeTree(content.directory + "/" + name)
            }
        }
        let initLayers = try ImageTables.initLayerNames(database)
        for name in try FS.listDirectory(root.layersDir) {
            let hex = String(name.prefix(64))
            // An init layer goes with the last image whose layer chain it was made for.
            let unusedInitLayer = name.contains(".init-") && !initLayers.contains(name)
            if name.contains(".tmp-") || unusedInitLayer || !keep.contains("sha256:" + hex) {
                logger.debug("removing unreferenced layer \(name)")
                try FS.removeTree(root.layersDir + "/" + name)
            }
        }
    }
}
