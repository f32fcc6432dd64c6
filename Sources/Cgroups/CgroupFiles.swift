import Glibc

/// Small `Glibc` wrappers for cgroup file system access. Cgroup interface files are tiny and
/// must be read and written with single system calls (a write is one command to the kernel), so
/// these helpers never buffer through `FILE *` and never retry a partial write.
enum CgroupFiles {
    /// Reads a whole file. Throws `CgroupError.read` with the path.
    static func read(_ path: String) throws(CgroupError) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .read(path: path, errno: errno) }
        defer { close(fd) }
        return try readAll(fd: fd, path: path)
    }

    /// Reads from offset 0 of an open file to its end (`pread(2)`, for kernfs files kept open
    /// across `poll(2)` wake-ups).
    static func readAll(fd: Int32, path: String) throws(CgroupError) -> String {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let offset = off_t(bytes.count)
            let n = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, offset) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .read(path: path, errno: errno)
            }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Reads a file and strips the trailing newline.
    static func readLine(_ path: String) throws(CgroupError) -> String {
        let text = try read(path)
        return text.hasSuffix("\n") ? String(text.dropLast()) : text
    }

    /// Writes `value` with one `write(2)`. Throws `CgroupError.write` with path, value and errno.
    /// `O_TRUNC` is ignored by cgroupfs (as in runc's `WriteFile`) and keeps regular files in
    /// fake test trees holding exactly the last value.
    static func write(_ path: String, _ value: String) throws(CgroupError) {
        let fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC)
        guard fd >= 0 else { throw .write(path: path, value: value, errno: errno) }
        defer { close(fd) }
        let bytes = Array(value.utf8)
        while true {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n == bytes.count else {
                throw .write(path: path, value: value, errno: n < 0 ? errno : EIO)
            }
            return
        }
    }

    static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// Names of the subdirectories of `path` (child cgroups), sorted. A missing directory has none.
    static func subdirectories(_ path: String) throws(CgroupError) -> [String] {
        guard let dir = opendir(path) else {
            if errno == ENOENT { return [] }
            throw .read(path: path, errno: errno)
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: &entry.pointee.d_name) {
                String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self))
            }
            if name == "." || name == ".." { continue }
            let type = entry.pointee.d_type
            if type == UInt8(DT_DIR) || (type == UInt8(DT_UNKNOWN) && isDirectory(join(path, name))) {
                names.append(name)
            }
        }
        return names.sorted()
    }

    /// `path` and every cgroup directory below it, deepest first (the order `rmdir(2)` needs).
    static func subtreeDeepestFirst(_ path: String) throws(CgroupError) -> [String] {
        var out: [String] = []
        for child in try subdirectories(path) {
            out += try subtreeDeepestFirst(join(path, child))
        }
        out.append(path)
        return out
    }

    /// Parses `cgroup.procs` content: one pid per line. Pid 0 (a process outside the reader's
    /// pid namespace) is dropped, so callers never `kill(0, …)` their own process group.
    static func parsePids(_ text: String, path: String) throws(CgroupError) -> [pid_t] {
        var pids: [pid_t] = []
        for line in text.split(separator: "\n") {
            guard let pid = pid_t(line) else { throw .unexpectedValue(path: path, value: String(line)) }
            if pid > 0 { pids.append(pid) }
        }
        return pids
    }

    /// Joins path components with exactly one `/` between them.
    static func join(_ base: String, _ rest: String) -> String {
        if rest.isEmpty || rest == "/" { return base }
        let tail = rest.hasPrefix("/") ? String(rest.dropFirst()) : rest
        if base.hasSuffix("/") { return base + tail }
        return base + "/" + tail
    }

    /// Sleeps without touching Swift concurrency (callers may be on the single-threaded
    /// container-creation path).
    static func sleep(milliseconds: Int) {
        var request = timespec(tv_sec: milliseconds / 1000, tv_nsec: (milliseconds % 1000) * 1_000_000)
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
    }
}

/// A deadline on the monotonic clock, for the polling loops.
struct Deadline {
    let start = ContinuousClock.now
    let timeout: Duration

    var expired: Bool { ContinuousClock.now - start >= timeout }
    var remainingMilliseconds: Int {
        let left = timeout - (ContinuousClock.now - start)
        let ms = left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000
        return max(0, Int(ms))
    }
    var timeoutMilliseconds: Int64 {
        timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000
    }
}
