#if canImport(Glibc)
    import Glibc
#endif

/// Small file helpers over Glibc: whole-file reads and writes, links, recursive removal.
public enum Files {
    /// Reads a whole file.
    /// - Throws: `SysError` from `open`/`read` naming `path`.
    public static func read(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        try check(fd, "open", path)
        defer { close(fd) }
        return try read(fd: fd, path: path)
    }

    /// Reads everything from `fd` until EOF.
    ///
    /// Reads straight into uninitialized array storage: a regular file's size (plus one byte, to
    /// see EOF) in one piece, anything else (procfs, cgroupfs, pipes) from 4 KiB up, doubling. No
    /// zero-filled scratch buffer: most reads on the start path are of small procfs and cgroup
    /// files, and a 64 KiB one cost 16 page faults each time.
    /// - Throws: `SysError` naming `path` when a read fails.
    public static func read(fd: Int32, path: String = "fd") throws -> [UInt8] {
        var st = stat()
        var chunk = 4096
        if fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG, st.st_size > 0 {
            chunk = Int(st.st_size) + 1
        }
        var out = [UInt8]()
        while true {
            var n = 0
            let piece = [UInt8](unsafeUninitializedCapacity: chunk) { buf, count in
                n = retryEINTR { Glibc.read(fd, buf.baseAddress, chunk) }
                count = max(n, 0)
            }
            if n < 0 { throw SysError("read", path) }
            if n == 0 { break }
            if out.isEmpty { out = piece } else { out.append(contentsOf: piece) }
            chunk = min(chunk * 2, 1 << 20)
        }
        return out
    }

    /// Reads a whole file as UTF-8 text.
    public static func readString(_ path: String) throws -> String {
        String(decoding: try read(path), as: UTF8.self)
    }

    /// Writes `bytes` to `fd` completely.
    public static func write(fd: Int32, _ bytes: [UInt8], path: String = "fd") throws {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { p in
                retryEINTR { Glibc.write(fd, p.baseAddress.map { $0 + off }, p.count - off) }
            }
            if n < 0 { throw SysError("write", path) }
            off += n
        }
    }

    /// Writes a file atomically: a temp file in the same directory, fsync-free rename over `path`.
    /// - Throws: `SysError` naming the path.
    public static func write(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) throws {
        let tmp = path + ".tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        try check(fd, "open", tmp)
        do {
            try write(fd: fd, bytes, path: tmp)
            close(fd)
            try check(rename(tmp, path), "rename", "\(tmp) to \(path)")
        } catch {
            close(fd)
            unlink(tmp)
            throw error
        }
    }

    /// Writes a string to an existing file (a cgroup or proc file), without truncation semantics.
    public static func writeExisting(_ path: String, _ text: String) throws {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        try check(fd, "open", path)
        defer { close(fd) }
        try write(fd: fd, Array(text.utf8), path: path)
    }

    /// True if `path` exists (without following a final symlink).
    public static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    /// True if `path` is a directory (following symlinks).
    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// Target of a symlink.
    public static func readLink(_ path: String) throws -> String {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink(path, &buf, buf.count - 1)
        if n < 0 { throw SysError("readlink", path) }
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Names in a directory, without `.` and `..`.
    public static func list(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else { throw SysError("opendir", path) }
        defer { closedir(dir) }
        return entries(dir)
    }

    /// Reads the remaining entry names of an open directory stream, without `.` and `..`.
    private static func entries(_ dir: OpaquePointer) -> [String] {
        var names: [String] = []
        while let ent = readdir(dir) {
            let name = withUnsafeBytes(of: ent.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Removes `path` and everything below it, never following symlinks and never crossing into
    /// another mount (a mount point below `path` makes it fail with EBUSY rather than empty the
    /// mounted filesystem). A missing `path` is not an error.
    /// - Throws: `SysError` naming the entry that could not be removed.
    public static func removeTree(_ path: String) throws {
        var st = stat()
        if lstat(path, &st) != 0 {
            if errno == ENOENT { return }
            throw SysError("lstat", path)
        }
        if (st.st_mode & S_IFMT) != S_IFDIR {
            try check(unlink(path), "unlink", path)
            return
        }
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        try check(fd, "open", path)
        try removeContents(dirfd: fd, path: path, device: st.st_dev)
        try check(rmdir(path), "rmdir", path)
    }

    /// Removes everything inside the directory `dirfd` (closes it).
    private static func removeContents(dirfd: Int32, path: String, device: dev_t) throws {
        guard let dir = fdopendir(dirfd) else {
            close(dirfd)
            throw SysError("fdopendir", path)
        }
        defer { closedir(dir) }
        for name in entries(dir) {
            let child = path + "/" + name
            var st = stat()
            if fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 {
                if errno == ENOENT { continue }
                throw SysError("fstatat", child)
            }
            if (st.st_mode & S_IFMT) == S_IFDIR {
                if st.st_dev != device { throw SysError("rmdir", child, errno: EBUSY, hint: "a filesystem is still mounted there") }
                let sub = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                try check(sub, "openat", child)
                try removeContents(dirfd: sub, path: child, device: device)
                try check(unlinkat(dirfd, name, AT_REMOVEDIR), "rmdir", child)
            } else {
                if unlinkat(dirfd, name, 0) != 0 && errno != ENOENT { throw SysError("unlink", child) }
            }
        }
    }
}

extension Files {
    /// Reads what `fd` has now, up to EOF (for following a growing file).
    public static func readAvailable(fd: Int32, path: String) throws -> [UInt8] {
        try read(fd: fd, path: path)
    }
}

extension String {
    /// Drops leading and trailing characters found in `set` (Foundation-free `trimmingCharacters`).
    public func trimming(_ set: String) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s.removeFirst() }
        while let l = s.last, set.contains(l) { s.removeLast() }
        return String(s)
    }
}
