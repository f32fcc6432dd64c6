import OCI
import Store

#if canImport(Glibc)
    import Glibc
#endif

/// One image found in a layout's `index.json`: its ref annotation and its descriptor.
struct LayoutEntry {
    var ref: String?
    var descriptor: Descriptor
}

/// The annotation naming an image in a layout (image-spec `annotations.md`).
let refNameAnnotation = "org.opencontainers.image.ref.name"

extension ImageStore {
    /// Splits the CLI's `PATH[:REF]`: when `argument` exists on disk it is the path; otherwise the
    /// part after the last `:` is the ref.
    public static func splitLoadArgument(_ argument: String) -> (path: String, ref: String?) {
        if (try? FS.lstat(argument)).flatMap({ $0 }) != nil { return (argument, nil) }
        guard let colon = argument.lastIndex(of: ":"), colon != argument.startIndex else { return (argument, nil) }
        let ref = String(argument[argument.index(after: colon)...])
        return (String(argument[..<colon]), ref.isEmpty ? nil : ref)
    }

    /// Imports images from an OCI image layout directory (`oci-layout`, `index.json`,
    /// `blobs/sha256/…`, image-spec `image-layout.md`) or an oci-archive (a tar of one).
    ///
    /// Every manifest in `index.json` with an `org.opencontainers.image.ref.name` annotation is an
    /// image; `ref` selects one (all are loaded when nil). A ref containing `:` or `/` is the full
    /// `name:tag`; otherwise it is the tag and the repository is the layout directory's name (or
    /// the archive's, without `.tar`). `tag` overrides the name. Nested indexes are followed,
    /// choosing the host platform (linux/amd64 on x86-64). Every blob is verified (digest and
    /// size), and each layer's uncompressed digest against the config's `rootfs.diff_ids`; layers
    /// are unpacked once per digest. Re-loading a name moves it to the new image.
    ///
    /// - Parameter progress: lines such as `Copying blob sha256:abcd… 1.2 MiB`.
    /// - Returns: the loaded images.
    /// - Throws: `ImageError.invalidLayout`, `.refNotFound` (listing the refs), `.digestMismatch`,
    ///   `.sizeMismatch`, `.diffIDMismatch`, `.badEntry`, `.noMatchingPlatform`, `.invalidReference`.
    @discardableResult
    public func load(path: String, ref: String? = nil, tag: String? = nil, progress: (String) -> Void = { _ in })
        throws -> [ResolvedImage]
    {
        let lock = try lockImages()
        defer { close(lock) }
        guard let st = try FS.lstat(path) else {
            throw ImageError.invalidLayout(path: path, reason: "no such file or directory")
        }
        var trimmed = path
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        var base = FS.split(trimmed).1
        var layout = trimmed
        var tmpDir: String?
        defer { if let tmpDir { try? FS.removeTree(tmpDir) } }
        if !FS.isDir(st) {
            for suffix in [".tar.gz", ".tgz", ".tar"] where base.hasSuffix(suffix) {
                base = String(base.dropLast(suffix.count))
                break
            }
            let dir = root.path + "/tmp/load-" + FS.randomSuffix()
            try StateRoot.mkdirAll(root.path + "/tmp", mode: 0o700)
            guard mkdir(dir, 0o700) == 0 else { throw FS.fail("mkdir", dir) }
            tmpDir = dir
            progress("Extracting \(path)")
            try unpacker.unpack(archivePath: path, into: dir, kind: .layout)
            layout = dir
        }
        guard (try FS.lstat(layout + "/oci-layout")) != nil else {
            throw ImageError.invalidLayout(path: path, reason: "missing oci-layout file")
        }
        let index = try OCIJSON.decode(
            ImageIndex.self, from: try FS.readFile(layout + "/index.json"), what: "\(path)/index.json")
        let entries = try select(index: index, ref: ref, path: path)
        if tag != nil && entries.count > 1 {
            throw ImageError.invalidReference(
                tag ?? "", reason: "\(path) holds \(entries.count) images; choose one with PATH:REF")
        }
        var loaded: [ResolvedImage] = []
        for entry in entries {
            let name: ImageName
            if let tag {
                name = try ImageName(parsing: tag)
            } else if let r = entry.ref, r.contains(":") || r.contains("/") {
                name = try ImageName(parsing: r)
            } else {
                name = try ImageName(repository: base.lowercased(), tag: entry.ref ?? "latest")
            }
            loaded.append(try importImage(entry.descriptor, layout: layout, name: name, progress: progress))
        }
        // Blobs and layers of a manifest replaced by this load (same config) are now unreferenced.
        try collectGarbage()
        return loaded
    }

    /// The index.json entries to load, by `ref`.
    func select(index: ImageIndex, ref: String?, path: String) throws -> [LayoutEntry] {
        let all = index.manifests.map { LayoutEntry(ref: $0.annotations?[refNameAnnotation], descriptor: $0) }
        let named = all.filter { $0.ref != nil }
        if let ref {
            let hits = named.filter { $0.ref == ref }
            guard !hits.isEmpty else {
                throw ImageError.refNotFound(ref: ref, path: path, available: named.compactMap(\.ref))
            }
            return [try pickPlatform(hits.map(\.descriptor), ref: ref)]
        }
        if named.isEmpty {
            guard !all.isEmpty else {
                throw ImageError.invalidLayout(path: path, reason: "index.json lists no manifests")
            }
            return [try pickPlatform(all.map(\.descriptor), ref: nil)]
        }
        // One image per distinct ref (several platforms of one ref collapse to the host's).
        var seen: [String] = []
        for e in named where !seen.contains(e.ref ?? "") { seen.append(e.ref ?? "") }
        return try seen.map { r in try pickPlatform(named.filter { $0.ref == r }.map(\.descriptor), ref: r) }
    }

    /// Chooses the host platform among descriptors (those without `platform` match anything).
    func pickPlatform(_ ds: [Descriptor], ref: String?) throws -> LayoutEntry {
        if ds.count == 1, let d = ds.first { return LayoutEntry(ref: ref, descriptor: d) }
        let want = ImageStore.hostPlatform
        if let d = ds.first(where: {
            $0.platform.map { $0.os == want.os && $0.architecture == want.architecture } ?? false
        })
            ?? ds.first(where: { $0.platform == nil })
        {
            return LayoutEntry(ref: ref, descriptor: d)
        }
        throw ImageError.noMatchingPlatform(
            wanted: "\(want.os)/\(want.architecture)",
            available: ds.map { d in d.platform.map { "\($0.os)/\($0.architecture)" } ?? "unspecified" })
    }

    /// The host's OCI platform (`linux/amd64`, `linux/arm64`).
    static var hostPlatform: (os: String, architecture: String) {
        #if arch(x86_64)
            return ("linux", "amd64")
        #elseif arch(arm64)
            return ("linux", "arm64")
        #else
            return ("linux", "unknown")
        #endif
    }

    /// Reads a small blob from the layout into memory, verifying digest and size.
    func readLayoutBlob(_ d: Descriptor, layout: String) throws -> [UInt8] {
        guard d.size >= 0 && d.size <= 16 << 20 else {
            throw ImageError.invalidLayout(path: layout, reason: "\(d.mediaType) \(d.digest) claims \(d.size) bytes")
        }
        let bytes = try FS.readFile(layout + "/blobs/sha256/" + d.digest.hex)
        guard Int64(bytes.count) == d.size else {
            throw ImageError.sizeMismatch(blob: d.digest.description, expected: d.size, actual: Int64(bytes.count))
        }
        let actual = SHA256Hasher.hash(bytes)
        guard actual == d.digest else {
            throw ImageError.digestMismatch(blob: d.digest.description, expected: d.digest, actual: actual)
        }
        return bytes
    }

    /// Follows nested indexes down to one manifest descriptor.
    func manifestDescriptor(_ d: Descriptor, layout: String, depth: Int = 0) throws -> Descriptor {
        guard d.mediaType == MediaType.index || d.mediaType == MediaType.dockerManifestList else { return d }
        guard depth < 8 else {
            throw ImageError.invalidLayout(path: layout, reason: "image indexes nested deeper than 8")
        }
        let nested = try OCIJSON.decode(
            ImageIndex.self, from: try readLayoutBlob(d, layout: layout), what: "image index \(d.digest)")
        return try manifestDescriptor(
            pickPlatform(nested.manifests, ref: nil).descriptor, layout: layout, depth: depth + 1)
    }

    /// Copies one blob with a progress line.
    func copyBlob(_ d: Descriptor, layout: String, progress: (String) -> Void) throws {
        if content.contains(d.digest) { return }
        progress("Copying blob \(d.digest.description.prefix(19))… \(FS.humanSize(d.size))")
        try content.ingest(path: layout + "/blobs/sha256/" + d.digest.hex, expected: d)
    }

    /// Imports one image (manifest descriptor from index.json) and records it under `name`.
    func importImage(_ top: Descriptor, layout: String, name: ImageName, progress: (String) -> Void) throws
        -> ResolvedImage
    {
        let md = try manifestDescriptor(top, layout: layout)
        _ = try readLayoutBlob(md, layout: layout)
        try copyBlob(md, layout: layout, progress: progress)
        let manifest = try OCIJSON.decode(
            ImageManifest.self, from: try content.read(md.digest), what: "manifest \(md.digest)")
        try copyBlob(manifest.config, layout: layout, progress: progress)
        let config = try OCIJSON.decode(
            ImageConfiguration.self, from: try content.read(manifest.config.digest),
            what: "image config \(manifest.config.digest)")
        guard config.rootfs.diff_ids.count == manifest.layers.count else {
            throw ImageError.invalidLayout(
                path: layout,
                reason:
                    "manifest \(md.digest) has \(manifest.layers.count) layers but its config lists \(config.rootfs.diff_ids.count) diff_ids"
            )
        }
        for layer in manifest.layers { try copyBlob(layer, layout: layout, progress: progress) }
        var pairs: [(Digest, Digest)] = []
        for (i, layer) in manifest.layers.enumerated() {
            let expected = config.rootfs.diff_ids[i]
            if try ImageTables.knownDiffID(database, layer: layer.digest) != expected {
                let actual = try ArchiveReader.uncompressedDigest(path: content.path(layer.digest))
                guard actual == expected else {
                    throw ImageError.diffIDMismatch(layer: layer.digest, expected: expected, actual: actual)
                }
            }
            if (try FS.lstat(root.layersDir + "/" + layer.digest.hex)) == nil {
                progress(
                    "Unpacking layer \(i + 1)/\(manifest.layers.count) \(layer.digest.description.prefix(19))… \(FS.humanSize(layer.size))"
                )
                try unpacker.unpackLayer(
                    blobPath: content.path(layer.digest), digest: layer.digest, layersDir: root.layersDir)
            }
            pairs.append((layer.digest, expected))
        }
        let size = manifest.config.size + manifest.layers.reduce(0) { $0 + $1.size }
        let now = Int64(time(nil))
        let id = manifest.config.digest
        try database.transaction {
            try ImageTables.record(
                database, id: id, manifest: md.digest, size: size, created: config.created, loadedAt: now,
                layers: pairs, names: [name])
        }
        return try resolve(id.description)
    }
}
