import OCI
import Store

#if canImport(Glibc)
    import Glibc
#endif

/// The sha256-addressed blob store: `StateRoot.blobsDir/<hex>` (image-spec `image-layout.md`
/// uses the same layout under `blobs/sha256/`).
///
/// Blobs enter only through `ingest`, which verifies digest and size while streaming and publishes
/// the file with an atomic `rename(2)`, so a blob present under its digest is always complete and
/// correct.
public struct ContentStore: Sendable {
    /// Directory holding the blobs (`<root>/blobs/sha256`).
    public let directory: String

    /// - Throws: `StateRootError` when the directory cannot be created.
    public init(root: StateRoot) throws {
        directory = root.blobsDir
        try StateRoot.mkdirAll(directory, mode: 0o700)
    }

    /// Absolute path of the blob with `digest` (it may not exist).
    public func path(_ digest: Digest) -> String { directory + "/" + digest.hex }

    /// True when the blob is present.
    public func contains(_ digest: Digest) -> Bool {
        (try? FS.lstat(path(digest))).flatMap { $0 }.map { $0.st_mode & S_IFMT == S_IFREG } ?? false
    }

    /// Copies the blob at `source` into the store, verifying it against `expected`.
    /// Returns true when bytes were copied, false when the blob was already present.
    /// - Throws: `ImageError.digestMismatch` / `.sizeMismatch` naming the blob (nothing is left in
    ///   the store), `ImageError.system` for I/O failures.
    @discardableResult
    public func ingest(path source: String, expected: Descriptor) throws -> Bool {
        if contains(expected.digest) { return false }
        let fd = try FS.open(source, O_RDONLY)
        defer { close(fd) }
        try ingest(fd: fd, expected: expected, sourceName: source)
        return true
    }

    /// Streams `fd` (read to end of file) into the store, hashing with SHA-256 as it goes; see
    /// `ingest(path:expected:)`. The temporary file `.tmp-<hex>-<random>` lives in the store
    /// directory and is removed on any failure.
    public func ingest(fd: Int32, expected: Descriptor, sourceName: String) throws {
        let tmp = directory + "/.tmp-" + expected.digest.hex + "-" + FS.randomSuffix()
        let out = try FS.open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        var published = false
        defer {
            close(out)
            if !published { unlink(tmp) }
        }
        let hasher = SHA256Hasher()
        var total: Int64 = 0
        let bufSize = 1 << 20
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: bufSize, alignment: 16)
        defer { buf.deallocate() }
        while true {
            let n = try FS.read(fd, buf, path: sourceName)
            if n == 0 { break }
            total += Int64(n)
            if total > expected.size {
                throw ImageError.sizeMismatch(blob: expected.digest.description, expected: expected.size, actual: total)
            }
            let chunk = UnsafeRawBufferPointer(rebasing: buf[0..<n])
            hasher.update(chunk)
            try FS.writeAll(out, chunk, path: tmp)
        }
        guard total == expected.size else {
            throw ImageError.sizeMismatch(blob: expected.digest.description, expected: expected.size, actual: total)
        }
        let actual = hasher.finalize()
        guard actual == expected.digest else {
            throw ImageError.digestMismatch(
                blob: "\(expected.digest) (from \(sourceName))", expected: expected.digest, actual: actual)
        }
        guard fsync(out) == 0 else { throw FS.fail("fsync", tmp) }
        guard rename(tmp, path(expected.digest)) == 0 else { throw FS.fail("rename", tmp) }
        published = true
    }

    /// The blob's bytes, re-verified against its digest (for manifests, configs and indexes, which
    /// are small).
    /// - Throws: `ImageError.system` (ENOENT when absent), `.digestMismatch` when the file was damaged.
    public func read(_ digest: Digest) throws -> [UInt8] {
        let bytes = try FS.readFile(path(digest))
        let actual = SHA256Hasher.hash(bytes)
        guard actual == digest else {
            throw ImageError.digestMismatch(blob: path(digest), expected: digest, actual: actual)
        }
        return bytes
    }

    /// The blob's bytes as published, without hashing them again: for the start path, which reads
    /// the manifest and config of an image on every `run`. A blob is only published (renamed into
    /// place) after `write` verified its digest and size, under a root-only directory, so this
    /// trusts the store the way containerd's content store does on read; `size`, when the caller
    /// knows it from a descriptor, is still checked, which catches a truncated file.
    /// - Throws: `ImageError.system` (ENOENT when absent), `.sizeMismatch` when `size` differs.
    public func readPublished(_ digest: Digest, size: Int64? = nil) throws -> [UInt8] {
        let bytes = try FS.readFile(path(digest))
        if let size, Int64(bytes.count) != size {
            throw ImageError.sizeMismatch(blob: path(digest), expected: size, actual: Int64(bytes.count))
        }
        return bytes
    }

    /// Deletes the blob; a missing blob is not an error.
    public func remove(_ digest: Digest) throws {
        guard unlink(path(digest)) == 0 || errno == ENOENT else { throw FS.fail("unlink", path(digest)) }
    }
}
