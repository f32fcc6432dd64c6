import CSkiff

#if canImport(Glibc)
    import Glibc
#endif

/// Path resolution confined to a root directory (DESIGN rule 3).
///
/// Every lookup goes through `openat2(2)` with `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`: `..`
/// and absolute symlinks are clamped to the root, and `/proc/self/fd`-style magic links are
/// refused, so no path inside an image can name a host file (Documentation: openat2(2)).
public struct InRoot {
    /// An `O_PATH` descriptor of the root directory; owned by the caller.
    public let rootFD: Int32
    /// The root's host path, for error messages only.
    public let rootPath: String

    public init(rootFD: Int32, rootPath: String) {
        self.rootFD = rootFD
        self.rootPath = rootPath
    }

    /// Opens the root directory at `path` (`O_PATH | O_DIRECTORY`).
    public static func open(_ path: String) throws -> InRoot {
        let fd = Glibc.open(path, O_PATH | O_DIRECTORY | O_CLOEXEC)
        try check(fd, "open", path)
        return InRoot(rootFD: fd, rootPath: path)
    }

    static let resolve = SK_RESOLVE_IN_ROOT | SK_RESOLVE_NO_MAGICLINKS

    /// Opens `path` (interpreted inside the root) with `flags`.
    /// - Throws: `SysError` from openat2 naming the in-root path.
    public func open(_ path: String, flags: Int32, mode: mode_t = 0) throws -> Int32 {
        let rel = path.isEmpty ? "." : path
        let fd = sk_openat2(rootFD, rel, UInt64(flags | O_CLOEXEC), UInt64(mode), InRoot.resolve)
        if fd < 0 { throw SysError("openat2", display(path)) }
        return fd
    }

    /// Ensures a mount target exists inside the root and returns an `O_PATH` descriptor of it:
    /// a directory, or an empty regular file when `file` is true (for bind-mounting a file).
    /// Symlinks along the way are followed inside the root only.
    public func mountTarget(_ path: String, file: Bool) throws -> Int32 {
        try mountTarget(path, file: file, hops: 0)
    }

    /// `mountTarget`, following a file target that is a symlink dangling inside the root (systemd
    /// images ship `/etc/resolv.conf -> ../run/systemd/resolve/stub-resolv.conf` with no target):
    /// the link's target is created inside the root, as runc does, at most 8 links deep.
    private func mountTarget(_ path: String, file: Bool, hops: Int) throws -> Int32 {
        if let fd = try? open(path, flags: O_PATH) { return fd }
        guard file else { return try mkdirAll(path) }
        let slash = path.lastIndex(of: "/") ?? path.startIndex
        let parentPath = String(path[..<slash])
        let name = String(path[path.index(after: slash)...])
        let pfd = try mkdirAll(parentPath.isEmpty ? "/" : parentPath)
        defer { close(pfd) }
        let fd = openat(pfd, name, O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0o644)
        if fd < 0 && errno != EEXIST && errno != ELOOP { throw SysError("create", display(path)) }
        if fd >= 0 { close(fd) }
        if let opened = try? open(path, flags: O_PATH) { return opened }
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlinkat(pfd, name, &buf, buf.count - 1)
        guard n > 0, hops < 8 else { return try open(path, flags: O_PATH) }
        let link = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        // Resolved from the root again: an absolute or `..` link cannot leave it.
        let next = link.hasPrefix("/") ? link : (parentPath.isEmpty ? "" : parentPath) + "/" + link
        return try mountTarget(next, file: true, hops: hops + 1)
    }

    /// `mkdir -p` inside the root: creates the missing directories of `path` (mode 0755) one level
    /// at a time, each parent resolved from the root anew, so symlinks on the way are followed
    /// inside the root only and a magic link (`/proc/self/fd/N`) is refused. Returns an
    /// `O_PATH | O_DIRECTORY` descriptor of the directory.
    /// - Throws: `SysError` naming the component that cannot be created or opened (ENOENT for a
    ///   symlink that dangles inside the root, ENOTDIR for a file on the way).
    public func mkdirAll(_ path: String) throws -> Int32 {
        if let fd = try? open(path, flags: O_PATH | O_DIRECTORY) { return fd }
        var prefix = ""
        for c in path.split(separator: "/") {
            prefix += "/" + c
            if (try? open(prefix, flags: O_PATH | O_DIRECTORY)).map({ close($0) }) != nil { continue }
            let parent = try open(String(prefix.dropLast(c.count + 1)), flags: O_PATH | O_DIRECTORY)
            defer { close(parent) }
            if mkdirat(parent, String(c), 0o755) != 0 && errno != EEXIST {
                throw SysError("mkdir", display(prefix))
            }
        }
        return try open(path, flags: O_PATH | O_DIRECTORY)
    }

    /// Reads a small regular file inside the root (`/etc/passwd`), or nil when it is missing, is
    /// not a regular file (a FIFO or device cannot block or feed the runtime), cannot be reached
    /// without leaving the root, or is larger than `limit` bytes.
    public func readRegularFile(_ path: String, limit: Int = 4 << 20) -> [UInt8]? {
        guard let fd = try? open(path, flags: O_RDONLY | O_NONBLOCK | O_NOCTTY) else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, Int(st.st_size) <= limit else { return nil }
        return try? Files.read(fd: fd, path: display(path))
    }

    /// Host-side description of an in-root path for messages.
    public func display(_ path: String) -> String {
        "\(path) (in \(rootPath))"
    }
}

/// `/proc/self/fd/N`: the path through which `mount(2)` acts on a descriptor's file.
public func procFD(_ fd: Int32) -> String { "/proc/self/fd/\(fd)" }
