import CSkiff

#if canImport(Glibc)
    import Glibc
#endif

/// Keeps the `skiff` binary out of reach through `/proc/PID/exe` (CVE-2019-5736).
///
/// A process that enters a container as a copy of `skiff` (the container's init before it execs,
/// `--init`'s PID 1, the child of `skiff exec`) has the host binary as its `/proc/self/exe`. If it
/// execs a script whose interpreter line is `#!/proc/self/exe`, the kernel starts the host binary
/// again, inside the container and dumpable; a second process in the container can then open
/// `/proc/PID/exe`, wait for it to exit and reopen it for writing, replacing the host's `skiff`.
///
/// The defence is runc's (`libcontainer/exeseal`, runc 1.2): every `skiff` that may enter a
/// container runs from a read-only image of itself, so `/proc/self/exe` never names a writable
/// host file. First choice, an overlayfs with only lower layers, made with `fsopen`/`fsmount` and
/// never attached (no copy, no mount-table event, no path to it; writes fail with EROFS); second
/// choice, a sealed memfd copy (`F_SEAL_WRITE`, costs the binary's size in memory while the
/// process runs, runc#1993). Processes also turn non-dumpable before they join a container
/// (`PR_SET_DUMPABLE 0`), which closes `/proc/PID/exe` to processes without `CAP_SYS_PTRACE`.
public enum SelfExe {
    /// Environment variable set across the re-exec, only to stop a loop if the kernel would not
    /// keep the protection; the check itself always looks at the running binary.
    static let marker = "_SKIFF_EXE_PROTECTED"

    /// The empty directory `protectedImage` uses as the overlay's second lower layer.
    public static let scratchDirectory = "/run/skiff-exe"

    /// True when `/proc/self/exe` cannot be written: a sealed memfd, or a file on a read-only
    /// mount (the overlay image, or a binary installed on a read-only file system).
    public static func isProtected() -> Bool {
        let fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        if sk_seals_write(sk_get_seals(fd)) != 0 { return true }
        let flags = sk_fstatvfs_flags(fd)
        return flags >= 0 && (flags & Int(ST_RDONLY)) != 0
    }

    /// Opens a read-only image of the running binary (overlay first, sealed memfd second).
    /// - Parameter scratch: an empty directory for the overlay's second lower layer; created
    ///   (mode 0700) when missing.
    /// - Returns: a descriptor for `execveat(fd, "", …, AT_EMPTY_PATH)` (O_CLOEXEC).
    /// - Throws: `SysError` when neither image can be made.
    public static func protectedImage(scratch: String) throws -> Int32 {
        let path = try Files.readLink("/proc/self/exe")
        if path.hasPrefix("/"), !path.hasSuffix(" (deleted)"), let slash = path.lastIndex(of: "/") {
            let dir = slash == path.startIndex ? "/" : String(path[..<slash])
            let name = String(path[path.index(after: slash)...])
            if mkdir(scratch, 0o700) == 0 || errno == EEXIST, Files.isDirectory(scratch) {
                let fd = sk_exe_overlay(dir, scratch, name)
                if fd >= 0 { return fd }
            }
        }
        return try sealedCopy()
    }

    /// A sealed memfd copy of the running binary (`F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK |
    /// F_SEAL_SEAL`), the fallback of `protectedImage`.
    /// - Throws: `SysError` when memfd_create or sealing fails.
    public static func sealedCopy() throws -> Int32 {
        let exe = open("/proc/self/exe", O_RDONLY | O_CLOEXEC)
        try check(exe, "open", "/proc/self/exe")
        defer { close(exe) }
        let copy = sk_memfd_copy(exe, "skiff")
        try check(
            copy, "memfd_create", "sealed copy of skiff", hint: "the kernel needs memfd_create and file sealing (3.17)")
        return copy
    }

    /// Re-executes this process from a read-only image of itself unless it already runs from one.
    /// Returns only when protected; the re-exec keeps `arguments` and the environment.
    /// - Throws: `SysError` when no image can be made or `execveat` fails.
    public static func reexecProtected(_ arguments: [String], scratch: String) throws {
        if isProtected() {
            unsetenv(marker)
            return
        }
        if getenv(marker) != nil {
            throw SkiffError(
                "the skiff binary still runs from a writable file after re-executing from a read-only image; refusing to enter a container (CVE-2019-5736)"
            )
        }
        let fd = try protectedImage(scratch: scratch)
        setenv(marker, "1", 1)
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
        argv.append(nil)
        _ = sk_execveat_empty(fd, argv, environ)
        let e = errno
        for p in argv { free(p) }
        close(fd)
        unsetenv(marker)
        throw SysError("execveat", "read-only image of skiff", errno: e)
    }
}
