import Glibc

/// The `cgroup.procs` file of each of a cgroup's directories, opened `O_WRONLY|O_CLOEXEC`, so a
/// process can be moved in with one `write(2)` per hierarchy (cgroup-v2.rst "Processes",
/// cgroup-v1/cgroups.rst 2.2 "Attaching processes").
///
/// The runtime opens these before it forks. The forked child (single-threaded, before it changes
/// namespaces, so that pids and the cgroup mounts are still the host's) joins by writing `"0"`
/// (meaning "the writer") to each descriptor in `fds`, from C: no Swift runs between fork and
/// exec (DESIGN.md rule 1). The parent may instead call `join(pid:)` with the child's pid.
/// The descriptors are closed when this value is consumed or goes away; the child's copies close
/// at `execve`.
public struct CgroupProcsFiles: ~Copyable {
    /// Open descriptors, one per directory, in `paths` order; hand these to C as `const int *`.
    public let fds: [Int32]
    /// The `cgroup.procs` paths behind `fds`, for error messages.
    public let paths: [String]

    init(fds: [Int32], paths: [String]) {
        self.fds = fds
        self.paths = paths
    }

    /// Moves process `pid` (0: the caller) into the cgroup in every hierarchy. Writes without
    /// allocating. Throws `CgroupError.write` naming the file; ESRCH means the process is gone.
    public func join(pid: pid_t) throws(CgroupError) {
        for (index, fd) in fds.enumerated() {
            let e = Self.write(pid: pid, to: fd)
            if e != 0 { throw .write(path: paths[index], value: String(pid), errno: e) }
        }
    }

    /// Writes the decimal `pid` to `fd` with one `write(2)`; returns 0 or the errno.
    static func write(pid: pid_t, to fd: Int32) -> Int32 {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 12) { buffer in
            var value = Int64(pid)
            var digits = 0
            let negative = value < 0
            if negative { value = -value }
            repeat {
                buffer[11 - digits] = UInt8(ascii: "0") + UInt8(value % 10)
                value /= 10
                digits += 1
            } while value > 0
            if negative {
                buffer[11 - digits] = UInt8(ascii: "-")
                digits += 1
            }
            let start = buffer.baseAddress! + (12 - digits)
            while true {
                let n = Glibc.write(fd, start, digits)
                if n == digits { return 0 }
                if n < 0 && errno == EINTR { continue }
                return n < 0 ? errno : EIO
            }
        }
    }

    /// Closes the descriptors now.
    public consuming func close() {}

    deinit {
        for fd in fds { Glibc.close(fd) }
    }
}

extension Cgroup {
    /// Opens every directory's `cgroup.procs` for writing (`O_WRONLY|O_CLOEXEC`); see
    /// `CgroupProcsFiles`. Throws `CgroupError.write` naming the file that cannot be opened.
    public func procsFiles() throws(CgroupError) -> CgroupProcsFiles {
        var fds: [Int32] = []
        var paths: [String] = []
        for directory in directories {
            let path = directory.file("cgroup.procs")
            let fd = open(path, O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else {
                let e = errno
                for opened in fds { Glibc.close(opened) }
                throw .write(path: path, value: "", errno: e)
            }
            fds.append(fd)
            paths.append(path)
        }
        return CgroupProcsFiles(fds: fds, paths: paths)
    }

    /// Moves process `pid` (0: the caller) into this cgroup in every hierarchy.
    public func join(pid: pid_t) throws(CgroupError) {
        try procsFiles().join(pid: pid)
    }

    /// Every process in this cgroup or its child cgroups: the union over all hierarchies of
    /// `cgroup.procs` (thread-group ids, cgroup-v2.rst "Processes"), sorted. Processes outside
    /// the caller's pid namespace (shown as 0) are left out.
    public func pids() throws(CgroupError) -> [pid_t] {
        var all = Set<pid_t>()
        for directory in directories {
            for dir in try CgroupFiles.subtreeDeepestFirst(directory.path) {
                let path = CgroupFiles.join(dir, "cgroup.procs")
                let text: String
                do { text = try CgroupFiles.read(path) } catch {
                    if error.errno == ENOENT { continue }  // removed while we walked
                    throw error
                }
                all.formUnion(try CgroupFiles.parsePids(text, path: path))
            }
        }
        return all.sorted()
    }

    /// True while any process is in this cgroup or below, in any hierarchy. Uses v2
    /// `cgroup.events` `populated` (cgroup-v2.rst "Core Interface Files") when the v2 directory
    /// exists, and `cgroup.procs` for the v1 directories.
    public var isPopulated: Bool {
        get throws(CgroupError) {
            if let unified, try Self.events(unified)["populated"] == 1 { return true }
            for directory in directories where directory.version == .v1 {
                for dir in try CgroupFiles.subtreeDeepestFirst(directory.path) {
                    let path = CgroupFiles.join(dir, "cgroup.procs")
                    guard let text = try? CgroupFiles.read(path) else { continue }
                    if try !CgroupFiles.parsePids(text, path: path).isEmpty { return true }
                }
            }
            return false
        }
    }

    /// Parses a v2 `cgroup.events` (`populated 0|1`, `frozen 0|1`).
    static func events(_ directory: Directory) throws(CgroupError) -> [String: Int] {
        try parseKeyedValues(
            CgroupFiles.read(directory.file("cgroup.events")), path: directory.file("cgroup.events"))
    }

    /// Parses flat-keyed files (`key value` per line: `cgroup.events`, `cpu.stat`, `memory.stat`).
    static func parseKeyedValues(_ text: String, path: String) throws(CgroupError) -> [String: Int] {
        var out: [String: Int] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            guard parts.count == 2, let value = Int(parts[1]) else {
                throw .unexpectedValue(path: path, value: String(line))
            }
            out[String(parts[0])] = value
        }
        return out
    }
}
