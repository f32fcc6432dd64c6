import CArchive
import OCI

#if canImport(Glibc)
    import Glibc
#endif

/// A libarchive reader over one file: tar in every flavour libarchive knows (ustar, PAX, GNU long
/// names/links, sparse), behind any filter it knows (gzip, zstd, xz, bzip2 or none).
final class ArchiveReader {
    let archive: OpaquePointer
    let path: String

    /// Opens `path` for reading tar entries (`raw == false`) or as one decompressed stream
    /// (`raw == true`, `archive_read_support_format_raw`).
    /// - Throws: `ImageError.archive` naming the path.
    init(path: String, raw: Bool = false) throws {
        guard let a = sk_archive_read_new() else {
            throw ImageError.archive(path: path, message: "archive_read_new failed (out of memory)")
        }
        archive = a
        self.path = path
        sk_archive_read_support_filter_all(a)
        if raw {
            sk_archive_read_support_format_raw(a)
        } else {
            sk_archive_read_support_format_tar(a)
            sk_archive_read_support_format_gnutar(a)
        }
        guard sk_archive_read_open_filename(a, path, 1 << 16) == ARCHIVE_OK else {
            // Fully initialised: deinit frees the archive when this throws.
            throw ImageError.archive(path: path, message: message)
        }
    }

    deinit { sk_archive_read_free(archive) }

    /// libarchive's last error text.
    var message: String {
        sk_archive_error_string(archive).map { String(cString: $0) } ?? "unknown libarchive error"
    }

    /// The next entry's header, or nil at the end of the archive. Warnings are tolerated.
    func next() throws -> OpaquePointer? {
        var entry: OpaquePointer?
        let rc = sk_archive_read_next_header(archive, &entry)
        if rc == ARCHIVE_EOF { return nil }
        guard rc == ARCHIVE_OK || rc == ARCHIVE_WARN, let entry else {
            throw ImageError.archive(path: path, message: message)
        }
        return entry
    }

    /// Calls `body(bytes, offset)` for each data block of the current entry (offsets allow sparse
    /// files).
    func forEachBlock(_ body: (UnsafeRawBufferPointer, Int64) throws -> Void) throws {
        while true {
            var buf: UnsafeRawPointer?
            var size = 0
            var offset: la_int64_t = 0
            let rc = sk_archive_read_data_block(archive, &buf, &size, &offset)
            if rc == ARCHIVE_EOF { return }
            guard rc == ARCHIVE_OK || rc == ARCHIVE_WARN else {
                throw ImageError.archive(path: path, message: message)
            }
            if size > 0, let buf { try body(UnsafeRawBufferPointer(start: buf, count: size), Int64(offset)) }
        }
    }

    /// SHA-256 of the decompressed content of the file at `path` (a layer's DiffID,
    /// image-spec `config.md` `rootfs.diff_ids`).
    static func uncompressedDigest(path: String) throws -> Digest {
        let r = try ArchiveReader(path: path, raw: true)
        let hasher = SHA256Hasher()
        guard try r.next() != nil else { return hasher.finalize() }
        try r.forEachBlock { bytes, _ in hasher.update(bytes) }
        return hasher.finalize()
    }
}
