import LinuxSys

#if canImport(Glibc)
    import Glibc
#endif

/// One `skiff run --vm --disk PATH[:ro]`: a raw image file the guest sees as a virtio-blk disk
/// (`/dev/vda`, `/dev/vdb`, … in the order given).
public struct VMDisk: Codable, Sendable, Equatable {
    /// Absolute path of the image.
    public var path: String
    /// `:ro`: the guest sees `VIRTIO_BLK_F_RO` and writes fail with an I/O error; the file is opened
    /// read-only.
    public var readOnly: Bool

    public init(path: String, readOnly: Bool = false) {
        self.path = path
        self.readOnly = readOnly
    }

    /// Parses `PATH`, `PATH:ro` or `PATH:rw` (a path may hold other colons) into an absolute path.
    /// - Throws: `SkiffError` for an empty path.
    public static func parse(_ flag: String) throws -> VMDisk {
        var path = Substring(flag)
        var readOnly = false
        if flag.hasSuffix(":ro") || flag.hasSuffix(":rw") {
            readOnly = flag.hasSuffix(":ro")
            path = path.dropLast(3)
        }
        guard !path.isEmpty else { throw SkiffError("--disk \(flag): give a raw image file, PATH or PATH:ro") }
        return VMDisk(path: Engine.absolutePath(String(path)), readOnly: readOnly)
    }

    /// Checks that the image can be served as asked: a regular file of at least one 512-byte sector,
    /// openable read-write (or read-only with `:ro`).
    /// - Throws: `SkiffError` naming the flag's path and what to do.
    public func check(given: String) throws {
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw SkiffError("--disk \(given): cannot read it: \(String(cString: strerror(errno)))")
        }
        guard st.st_mode & S_IFMT == S_IFREG else {
            throw SkiffError("--disk \(given): not a regular file; give a raw disk image file")
        }
        guard st.st_size >= 512 else {
            throw SkiffError("--disk \(given): \(st.st_size) bytes is less than one 512-byte sector")
        }
        let fd = open(path, (readOnly ? O_RDONLY : O_RDWR) | O_CLOEXEC)
        guard fd >= 0 else {
            let reason = String(cString: strerror(errno))
            throw SkiffError(
                readOnly
                    ? "--disk \(given): cannot read it: \(reason)"
                    : "--disk \(given): cannot open it read-write: \(reason); add :ro to attach it read-only")
        }
        close(fd)
    }
}
