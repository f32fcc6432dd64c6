import CSkiff
import LinuxSys
import OCI

#if canImport(Glibc)
    import Glibc
#endif

/// Small fd-based helpers over Glibc used by the content store and the unpacker. Every function
/// throws `ImageError.system` naming the call and the path.
enum FS {
    /// Throws `ImageError.system` for `call` on `path` with the current errno.
    static func fail(_ call: String, _ path: String) -> ImageError {
        .system(call: call, path: path, errno: errno)
    }

    /// `open(2)` with `O_CLOEXEC`, retrying on EINTR.
    static func open(_ path: String, _ flags: Int32, _ mode: mode_t = 0) throws -> Int32 {
        while true {
            let fd = Glibc.open(path, flags | O_CLOEXEC, mode)
            if fd >= 0 { return fd }
            if errno != EINTR { throw fail("open", path) }
        }
    }

    /// Reads up to `count` bytes into `buf`, retrying on EINTR; returns 0 at end of file.
    static func read(_ fd: Int32, _ buf: UnsafeMutableRawBufferPointer, path: String) throws -> Int {
        while true {
            let n = Glibc.read(fd, buf.baseAddress, buf.count)
            if n >= 0 { return n }
            if errno != EINTR { throw fail("read", path) }
        }
    }

    /// Writes all of `bytes` at the current offset.
    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        var off = 0
        while off < bytes.count {
            guard let base = bytes.baseAddress else { return }
            let n = Glibc.write(fd, base + off, bytes.count - off)
            if n < 0 {
                if errno == EINTR { continue }
                throw fail("write", path)
            }
            off += n
        }
    }

    /// Writes all of `bytes` at `offset` (for sparse tar entries).
    static func pwriteAll(_ fd: Int32, _ base: UnsafeRawPointer, _ count: Int, at offset: Int64, path: String) throws {
        var done = 0
        while done < count {
            let n = Glibc.pwrite(fd, base + done, count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw fail("pwrite", path)
            }
            done += n
        }
    }

    /// Whole file as bytes.
    static func readFile(_ path: String) throws -> [UInt8] {
        let fd = try open(path, O_RDONLY)
        defer { close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = try buf.withUnsafeMutableBytes { try read(fd, $0, path: path) }
            if n == 0 { return out }
            out.append(contentsOf: buf[0..<n])
        }
    }

    /// `lstat(2)`; nil when the path does not exist.
    static func lstat(_ path: String) throws -> stat? {
        var st = stat()
        if Glibc.lstat(path, &st) == 0 { return st }
        if errno == ENOENT || errno == ENOTDIR { return nil }
        throw fail("lstat", path)
    }

    /// `fstatat(dirfd, name, AT_SYMLINK_NOFOLLOW)`; nil when absent.
    static func lstatAt(_ dirfd: Int32, _ name: String, path: String) throws -> stat? {
        var st = stat()
        if fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 { return st }
        if errno == ENOENT { return nil }
        throw fail("fstatat", path)
    }

    static func isDir(_ st: stat) -> Bool { st.st_mode & S_IFMT == S_IFDIR }

    /// Removes `name` in `dirfd` and, for a directory, everything below it, without following any
    /// symlink (each level is opened with `O_NOFOLLOW|O_DIRECTORY` relative to its parent fd).
    /// A missing `name` is not an error.
    static func removeTree(_ dirfd: Int32, _ name: String, path: String) throws {
        guard let st = try lstatAt(dirfd, name, path: path) else { return }
        if !isDir(st) {
            guard unlinkat(dirfd, name, 0) == 0 || errno == ENOENT else { throw fail("unlinkat", path) }
            return
        }
        let fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw fail("openat", path) }
        guard let dir = fdopendir(fd) else {
            close(fd)
            throw fail("fdopendir", path)
        }
        defer { closedir(dir) }
        let names = entries(dir)
        for child in names { try removeTree(fd, child, path: path + "/" + child) }
        guard unlinkat(dirfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT else { throw fail("rmdir", path) }
    }

    /// Names in an open directory stream, without `.` and `..`.
    static func entries(_ dir: OpaquePointer) -> [String] {
        var names: [String] = []
        while let ent = readdir(dir) {
            var nameBuf = ent.pointee.d_name
            let name = withUnsafeBytes(of: &nameBuf) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Names in the directory at `path`, without `.` and `..`.
    static func listDirectory(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else { throw fail("opendir", path) }
        defer { closedir(dir) }
        return entries(dir)
    }

    /// Removes an absolute path recursively (no symlink is followed below `path`'s parent).
    static func removeTree(_ path: String) throws {
        let (parent, name) = split(path)
        let pfd = try open(parent, O_PATH | O_DIRECTORY)
        defer { close(pfd) }
        try removeTree(pfd, name, path: path)
    }

    /// Splits `/a/b/c` into (`/a/b`, `c`).
    static func split(_ path: String) -> (String, String) {
        var p = path
        while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
        guard let slash = p.lastIndex(of: "/") else { return (".", p) }
        let parent = String(p[..<slash])
        return (parent.isEmpty ? "/" : parent, String(p[p.index(after: slash)...]))
    }

    /// 16 random hex digits from getrandom(2), for temporary names.
    static func randomSuffix() -> String {
        var g = SystemRandomNumberGenerator()  // getrandom(2)
        let v = g.next()
        return Digest.hexString((0..<8).map { UInt8(truncatingIfNeeded: v >> ($0 * 8)) })
    }

    /// "1.2 MiB"-style size for progress lines.
    static func humanSize(_ n: Int64) -> String { ByteCount.binary(UInt64(max(0, n))) }
}
