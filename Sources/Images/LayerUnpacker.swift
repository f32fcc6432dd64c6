import CArchive
import CSkiff
import Logging
import OCI

#if canImport(Glibc)
    import Glibc
#endif

/// Unpacks OCI layer tars into directories, one per layer digest, for use as overlayfs lowerdirs.
///
/// Every entry is written by hand relative to a directory fd of the layer root (no
/// `archive_write_disk`): its parent is resolved with `openat2(RESOLVE_IN_ROOT |
/// RESOLVE_NO_MAGICLINKS)`, missing parents are created one component at a time, and the final
/// component is acted on relative to that parent fd without ever following a symlink there. So no
/// entry, whatever its name, link target or position in the tar, can create or change anything
/// outside the layer directory (DESIGN.md rule 3).
///
/// Whiteouts (image-spec `layer.md`) become overlayfs whiteouts (`Documentation/filesystems/
/// overlayfs.rst`): `.wh.NAME` → character device 0/0 named NAME; `.wh..wh..opq` → xattr
/// `trusted.overlay.opaque=y` on the directory. `trusted.overlay.*` xattrs carried in the tar are
/// dropped, since they would steer overlayfs.
public struct LayerUnpacker: Sendable {
    /// What the tar is: an image layer (owners, devices, xattrs, whiteouts applied) or an
    /// oci-archive (only regular files and directories, owned by the caller).
    public enum Kind: Sendable { case layer, layout }

    let logger: Logger

    /// - Parameter logger: receives warnings about skipped xattrs and entries.
    public init(logger: Logger = Logger(label: "skiff.images.unpack")) { self.logger = logger }

    /// Unpacks the layer blob at `blobPath` into `layersDir/<digest hex>` unless that directory
    /// already exists; returns its path. Works in `<hex>.tmp-<random>` and renames at the end; a
    /// failure removes the temporary directory.
    /// - Throws: `ImageError.archive` for unreadable tars, `.badEntry` for refused entries,
    ///   `.system` for failed calls.
    @discardableResult
    public func unpackLayer(blobPath: String, digest: Digest, layersDir: String) throws -> String {
        let final = layersDir + "/" + digest.hex
        if let st = try FS.lstat(final), FS.isDir(st) { return final }
        let tmpName = digest.hex + ".tmp-" + FS.randomSuffix()
        let tmp = layersDir + "/" + tmpName
        guard mkdir(tmp, 0o700) == 0 else { throw FS.fail("mkdir", tmp) }
        do {
            try unpack(archivePath: blobPath, into: tmp, kind: .layer)
            if rename(tmp, final) != 0 {
                let e = errno
                // Another process finished the same layer first: keep theirs.
                guard e == EEXIST || e == ENOTEMPTY else {
                    throw ImageError.system(call: "rename", path: tmp, errno: e)
                }
                try FS.removeTree(tmp)
            }
        } catch {
            try? FS.removeTree(tmp)
            throw error
        }
        return final
    }

    /// Unpacks every entry of the tar at `archivePath` into the existing directory `dir`.
    /// - Throws: see `unpackLayer`.
    public func unpack(archivePath: String, into dir: String, kind: Kind) throws {
        let rootfd = try FS.open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW)
        defer { close(rootfd) }
        let reader = try ArchiveReader(path: archivePath)
        var ctx = UnpackContext(rootfd: rootfd, archive: archivePath, kind: kind, logger: logger)
        guard fchmod(rootfd, 0o755) == 0 else { throw FS.fail("fchmod", dir) }
        while let entry = try reader.next() {
            try ctx.apply(entry: entry, reader: reader)
        }
        try ctx.finishDirectories()
    }
}

/// Metadata of one tar entry, copied out of libarchive.
struct EntryHeader {
    var name: String
    var components: [String]
    var type: mode_t
    var perm: mode_t
    var uid: uid_t
    var gid: gid_t
    var size: Int64
    var times: [timespec]
    var linkTarget: String?
    var hardlink: String?
    var rdev: dev_t
    var xattrs: [(String, [UInt8])]

    init(_ e: OpaquePointer) {
        let raw = sk_archive_entry_pathname(e).map { String(cString: $0) } ?? ""
        name = raw
        components = EntryHeader.split(raw)
        let mode = sk_archive_entry_mode(e)
        type = mode & S_IFMT
        perm = mode & 0o7777
        uid = uid_t(truncatingIfNeeded: sk_archive_entry_uid(e))
        gid = gid_t(truncatingIfNeeded: sk_archive_entry_gid(e))
        size = sk_archive_entry_size(e)
        let mtime = timespec(tv_sec: sk_archive_entry_mtime(e), tv_nsec: sk_archive_entry_mtime_nsec(e))
        let atime =
            sk_archive_entry_atime_is_set(e) != 0
            ? timespec(tv_sec: sk_archive_entry_atime(e), tv_nsec: sk_archive_entry_atime_nsec(e)) : mtime
        times = [atime, mtime]
        hardlink = sk_archive_entry_hardlink(e).map { String(cString: $0) }
        linkTarget = sk_archive_entry_symlink(e).map { String(cString: $0) }
        rdev = sk_archive_entry_rdev(e)
        xattrs = []
        if sk_archive_entry_xattr_reset(e) > 0 {
            var n: UnsafePointer<CChar>?
            var v: UnsafeRawPointer?
            var len = 0
            while sk_archive_entry_xattr_next(e, &n, &v, &len) == ARCHIVE_OK {
                guard let n else { continue }
                let bytes = v.map { Array(UnsafeRawBufferPointer(start: $0, count: len)) } ?? []
                xattrs.append((String(cString: n), bytes))
            }
        }
    }

    /// Path components with empty and `.` removed (leading `/` and `./` thus stripped); `..` kept,
    /// to be resolved in-root by the kernel.
    static func split(_ name: String) -> [String] {
        name.split(separator: "/", omittingEmptySubsequences: true).map(String.init).filter { $0 != "." }
    }
}
