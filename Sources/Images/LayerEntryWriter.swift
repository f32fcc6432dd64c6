import CArchive
import CSkiff
import LinuxSys
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// Applies tar entries one by one under a layer root fd; see `LayerUnpacker` for the rules.
struct UnpackContext {
    let rootfd: Int32
    let archive: String
    let kind: LayerUnpacker.Kind
    let logger: Logger
    /// Directory metadata applied at the end, deepest first (children change a dir's mtime).
    var dirs: [[String]: EntryHeader] = [:]
    /// Paths whited out by this layer (`.wh.NAME`): a directory this layer creates there again must
    /// hide the lower one's contents, so it is made opaque.
    var whitedOut: Set<[String]> = []

    init(rootfd: Int32, archive: String, kind: LayerUnpacker.Kind, logger: Logger) {
        self.rootfd = rootfd
        self.archive = archive
        self.kind = kind
        self.logger = logger
    }

    func bad(_ h: EntryHeader, _ reason: String) -> ImageError {
        .badEntry(archive: archive, entry: h.name, reason: reason)
    }

    /// Applies one entry.
    mutating func apply(entry: OpaquePointer, reader: ArchiveReader) throws {
        let h = EntryHeader(entry)
        guard let last = h.components.last else {
            // The layer root itself ("./" or "/"): only directory metadata may apply to it.
            guard h.type == S_IFDIR else { throw bad(h, "a non-directory entry would replace the layer root") }
            if kind == .layer { dirs[[]] = h }
            return
        }
        guard last != ".." else { throw bad(h, "the final path component is \"..\"") }
        if kind == .layout && h.type != S_IFREG && h.type != S_IFDIR {
            logger.warning("skipping non-regular entry \(h.name) in oci-archive \(archive)")
            return
        }
        let parentfd = try openParent(Array(h.components.dropLast()), h)
        defer { close(parentfd) }

        if kind == .layer && last.hasPrefix(".wh.") {
            try whiteout(h, name: last, parentfd: parentfd, parent: Array(h.components.dropLast()))
            return
        }
        switch h.type {
        case S_IFDIR: try directory(h, name: last, parentfd: parentfd)
        case S_IFREG where h.hardlink != nil: try hardlink(h, name: last, parentfd: parentfd)
        case S_IFREG: try regular(h, name: last, parentfd: parentfd, reader: reader)
        case S_IFLNK: try symlink(h, name: last, parentfd: parentfd)
        case S_IFCHR, S_IFBLK, S_IFIFO: try node(h, name: last, parentfd: parentfd)
        default:
            if h.hardlink != nil { try hardlink(h, name: last, parentfd: parentfd); return }
            throw bad(h, "unsupported entry type \(String(h.type, radix: 8))")
        }
    }

    // MARK: Resolution

    /// Opens the parent directory of an entry (`O_PATH`), resolved in-root, creating missing
    /// directories one component at a time (mode 0755, like Docker's implicit directories).
    func openParent(_ comps: [String], _ h: EntryHeader) throws -> Int32 {
        let flags = UInt64(O_PATH | O_DIRECTORY | O_CLOEXEC)
        let resolve = SK_RESOLVE_IN_ROOT | SK_RESOLVE_NO_MAGICLINKS
        if comps.isEmpty {
            let fd = sk_openat2(rootfd, ".", flags, 0, resolve)
            guard fd >= 0 else { throw FS.fail("openat2", archive + ": layer root") }
            return fd
        }
        let whole = sk_openat2(rootfd, comps.joined(separator: "/"), flags, 0, resolve)
        if whole >= 0 { return whole }
        guard errno == ENOENT else {
            throw bad(h, "cannot open its parent directory in the layer: \(errnoString(errno))")
        }
        var fd = sk_openat2(rootfd, ".", flags, 0, resolve)
        guard fd >= 0 else { throw FS.fail("openat2", archive + ": layer root") }
        for i in 0..<comps.count {
            let next = sk_openat2(rootfd, comps[0...i].joined(separator: "/"), flags, 0, resolve)
            if next >= 0 {
                close(fd)
                fd = next
                continue
            }
            guard errno == ENOENT else {
                let e = errno
                close(fd)
                throw bad(h, "cannot open parent component \(comps[0...i].joined(separator: "/")): \(errnoString(e))")
            }
            // `comps[i]` is missing in `fd` (or is a dangling symlink, which mkdirat refuses).
            if mkdirat(fd, comps[i], 0o755) != 0 {
                let e = errno
                close(fd)
                throw bad(h, "cannot create parent directory \(comps[0...i].joined(separator: "/")): \(errnoString(e))")
            }
            let created = openat(fd, comps[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            close(fd)
            guard created >= 0 else { throw bad(h, "cannot open created directory: \(errnoString(errno))") }
            _ = fchmod(created, 0o755)
            if whitedOut.contains(Array(comps[0...i])) { try setOpaque(fd: created, h) }
            fd = created
        }
        return fd
    }

    /// Makes room for a new non-directory `name`: removes whatever is there (a directory with its
    /// contents), never following a symlink.
    func clear(_ name: String, parentfd: Int32, _ h: EntryHeader) throws {
        try FS.removeTree(parentfd, name, path: archive + ": " + h.name)
    }

    // MARK: Entry types

    mutating func directory(_ h: EntryHeader, name: String, parentfd: Int32) throws {
        if let st = try FS.lstatAt(parentfd, name, path: h.name), FS.isDir(st) {
            // Already there (implicitly created or repeated): only metadata changes.
        } else {
            try clear(name, parentfd: parentfd, h)
            guard mkdirat(parentfd, name, 0o700) == 0 else { throw bad(h, "mkdirat: \(errnoString(errno))") }
        }
        if kind == .layer {
            let fd = openat(parentfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { throw bad(h, "cannot open directory: \(errnoString(errno))") }
            defer { close(fd) }
            guard fchown(fd, h.uid, h.gid) == 0 else { throw bad(h, "fchown: \(errnoString(errno))") }
            try setXattrs(h, fd: fd)
            if whitedOut.contains(h.components) { try setOpaque(fd: fd, h) }
        }
        dirs[h.components] = h
    }

    func regular(_ h: EntryHeader, name: String, parentfd: Int32, reader: ArchiveReader) throws {
        try clear(name, parentfd: parentfd, h)
        let fd = openat(parentfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw bad(h, "cannot create file: \(errnoString(errno))") }
        defer { close(fd) }
        var end: Int64 = 0
        try reader.forEachBlock { bytes, offset in
            guard let base = bytes.baseAddress else { return }
            try FS.pwriteAll(fd, base, bytes.count, at: offset, path: archive + ": " + h.name)
            end = max(end, offset + Int64(bytes.count))
        }
        if h.size > end {  // trailing hole of a sparse file
            guard ftruncate(fd, off_t(h.size)) == 0 else { throw bad(h, "ftruncate: \(errnoString(errno))") }
        }
        if kind == .layer {
            guard fchown(fd, h.uid, h.gid) == 0 else { throw bad(h, "fchown: \(errnoString(errno))") }
        }
        // After fchown, which clears setuid/setgid.
        guard fchmod(fd, h.perm) == 0 else { throw bad(h, "fchmod: \(errnoString(errno))") }
        if kind == .layer { try setXattrs(h, fd: fd) }
        guard futimens(fd, h.times) == 0 else { throw bad(h, "futimens: \(errnoString(errno))") }
    }

    func hardlink(_ h: EntryHeader, name: String, parentfd: Int32) throws {
        guard let target = h.hardlink else { return }
        let comps = EntryHeader.split(target)
        guard !comps.isEmpty else { throw bad(h, "hardlink target \"\(target)\" is the layer root") }
        let tfd = sk_openat2(
            rootfd, comps.joined(separator: "/"), UInt64(O_PATH | O_NOFOLLOW | O_CLOEXEC), 0,
            SK_RESOLVE_IN_ROOT | SK_RESOLVE_NO_MAGICLINKS)
        guard tfd >= 0 else {
            throw bad(
                h,
                "hardlink target \"\(target)\" cannot be opened in the layer (\(errnoString(errno))); a link must follow its target in the tar"
            )
        }
        defer { close(tfd) }
        var st = stat()
        guard fstat(tfd, &st) == 0 else { throw bad(h, "fstat of hardlink target: \(errnoString(errno))") }
        guard !FS.isDir(st) else { throw bad(h, "hardlink target \"\(target)\" is a directory") }
        if let cur = try FS.lstatAt(parentfd, name, path: h.name), cur.st_ino == st.st_ino, cur.st_dev == st.st_dev {
            return  // already this inode
        }
        try clear(name, parentfd: parentfd, h)
        guard linkat(tfd, "", parentfd, name, AT_EMPTY_PATH) == 0 else {
            throw bad(h, "linkat to \"\(target)\": \(errnoString(errno))")
        }
    }

    func symlink(_ h: EntryHeader, name: String, parentfd: Int32) throws {
        guard let target = h.linkTarget else { throw bad(h, "symlink without a target") }
        try clear(name, parentfd: parentfd, h)
        // The target is stored verbatim: it is only dangerous if followed, and nothing here follows it.
        guard symlinkat(target, parentfd, name) == 0 else { throw bad(h, "symlinkat: \(errnoString(errno))") }
        try finishNode(h, name: name, parentfd: parentfd, chmod: false)
    }

    func node(_ h: EntryHeader, name: String, parentfd: Int32) throws {
        try clear(name, parentfd: parentfd, h)
        let dev: dev_t = h.type == S_IFIFO ? 0 : h.rdev
        guard mknodat(parentfd, name, h.type | h.perm, dev) == 0 else { throw bad(h, "mknodat: \(errnoString(errno))") }
        try finishNode(h, name: name, parentfd: parentfd, chmod: true)
    }

    /// Owner, mode, xattrs and times of an entry that has no open fd (symlink, device, fifo).
    func finishNode(_ h: EntryHeader, name: String, parentfd: Int32, chmod: Bool) throws {
        guard fchownat(parentfd, name, h.uid, h.gid, AT_SYMLINK_NOFOLLOW) == 0 else {
            throw bad(h, "fchownat: \(errnoString(errno))")
        }
        if chmod {
            guard fchmodat(parentfd, name, h.perm, AT_SYMLINK_NOFOLLOW) == 0 else {
                throw bad(h, "fchmodat: \(errnoString(errno))")
            }
        }
        if !h.xattrs.isEmpty {
            let path = "/proc/self/fd/\(parentfd)/\(name)"
            for (key, value) in h.xattrs where allowed(key, h) {
                let rc = value.withUnsafeBytes { sk_lsetxattr(path, key, $0.baseAddress, value.count, 0) }
                if rc != 0 { try xattrFailed(h, key) }
            }
        }
        guard utimensat(parentfd, name, h.times, AT_SYMLINK_NOFOLLOW) == 0 else {
            throw bad(h, "utimensat: \(errnoString(errno))")
        }
    }

    /// Sets `trusted.overlay.opaque=y` on an open directory.
    func setOpaque(fd: Int32, _ h: EntryHeader) throws {
        let value: [UInt8] = [UInt8(ascii: "y")]
        let rc = value.withUnsafeBytes { sk_fsetxattr(fd, "trusted.overlay.opaque", $0.baseAddress, 1, 0) }
        guard rc == 0 else {
            throw bad(h, "cannot mark directory opaque (trusted.overlay.opaque): \(errnoString(errno))")
        }
    }

    mutating func whiteout(_ h: EntryHeader, name: String, parentfd: Int32, parent: [String]) throws {
        if name == ".wh..wh..opq" {
            let dirfd = openat(parentfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard dirfd >= 0 else { throw bad(h, "cannot open the opaque directory: \(errnoString(errno))") }
            defer { close(dirfd) }
            try setOpaque(fd: dirfd, h)
            return
        }
        if name.hasPrefix(".wh..wh.") { return }  // other AUFS metadata (.wh..wh.plnk, …): ignored
        let hidden = String(name.dropFirst(4))
        guard hidden != ".." && hidden != "." && !hidden.isEmpty else { throw bad(h, "whiteout of \"\(hidden)\"") }
        // A whiteout only hides lower layers; an entry of this layer with the same name wins, and
        // a directory of this layer there must not show the lower one's contents.
        whitedOut.insert(parent + [hidden])
        if let st = try FS.lstatAt(parentfd, hidden, path: h.name) {
            if FS.isDir(st) {
                let fd = openat(parentfd, hidden, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard fd >= 0 else { throw bad(h, "cannot open directory \(hidden): \(errnoString(errno))") }
                defer { close(fd) }
                try setOpaque(fd: fd, h)
            }
            return
        }
        guard mknodat(parentfd, hidden, S_IFCHR, 0) == 0 else {
            throw bad(h, "mknodat whiteout: \(errnoString(errno))")
        }
    }

    // MARK: Metadata

    /// Xattrs that may be copied from the tar: `trusted.overlay.*` would steer overlayfs (opaque,
    /// redirect, metacopy) and is only ever set from whiteout entries.
    func allowed(_ key: String, _ h: EntryHeader) -> Bool {
        if key.hasPrefix("trusted.overlay.") {
            logger.warning(
                "dropping xattr \(key) of \(h.name) in \(archive): overlay xattrs are not accepted from layers")
            return false
        }
        return true
    }

    func setXattrs(_ h: EntryHeader, fd: Int32) throws {
        for (key, value) in h.xattrs where allowed(key, h) {
            let rc = value.withUnsafeBytes { sk_fsetxattr(fd, key, $0.baseAddress, value.count, 0) }
            if rc != 0 { try xattrFailed(h, key) }
        }
    }

    func xattrFailed(_ h: EntryHeader, _ key: String) throws {
        let e = errno
        if key == "security.capability" || e == ENOTSUP {
            logger.warning("kernel refused xattr \(key) on \(h.name) in \(archive): \(errnoString(e)); skipped")
            return
        }
        throw bad(h, "setxattr \(key): \(errnoString(e))")
    }

    /// Applies directory modes and times, deepest first; a directory that was later replaced by
    /// something else is skipped (the final component is opened with `O_NOFOLLOW|O_DIRECTORY`).
    func finishDirectories() throws {
        for (comps, h) in dirs.sorted(by: { $0.key.count > $1.key.count }) {
            let fd: Int32
            if let last = comps.last {
                let parentfd = sk_openat2(
                    rootfd,
                    comps.dropLast().joined(separator: "/").isEmpty ? "." : comps.dropLast().joined(separator: "/"),
                    UInt64(O_PATH | O_DIRECTORY | O_CLOEXEC), 0, SK_RESOLVE_IN_ROOT | SK_RESOLVE_NO_MAGICLINKS)
                guard parentfd >= 0 else { continue }
                fd = openat(parentfd, last, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                close(parentfd)
            } else {
                fd = dup(rootfd)
            }
            guard fd >= 0 else { continue }
            defer { close(fd) }
            guard fchmod(fd, h.perm) == 0 else { throw bad(h, "fchmod: \(errnoString(errno))") }
            guard futimens(fd, h.times) == 0 else { throw bad(h, "futimens: \(errnoString(errno))") }
        }
    }
}
