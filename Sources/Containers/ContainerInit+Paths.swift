import CSkiff
import LinuxSys
import OCI

#if canImport(Glibc)
    import Glibc
#endif

/// Path handling of the container's setup after `pivot_root` (DESIGN rule 3): every path is
/// resolved inside the new root with `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`, opened, checked,
/// and then used through its descriptor, never resolved again as a string.
extension ContainerInit {
    /// Makes `readonlyPaths` read-only bind mounts of themselves and hides `maskedPaths`
    /// (runtime-spec config-linux.md#masked-paths): a directory under an empty read-only tmpfs,
    /// anything else under /dev/null — after checking that /dev/null really is the null device
    /// (runc `verifyDevNull`, CVE-2025-31133). Paths the kernel does not have are skipped.
    static func protectKernelPaths(_ plan: LaunchPlan, root: InRoot) throws {
        for p in plan.readonlyPaths {
            guard let fd = try openIfPresent(p, root: root) else { continue }
            defer { close(fd) }
            try check(
                mount(procFD(fd), procFD(fd), nil, UInt(MS_BIND | MS_REC), nil), "mount", "bind \(p) (read-only path)")
            // The remount acts on the new bind mount, which the path now leads to.
            let bound = try root.open(p, flags: O_PATH | O_NOFOLLOW)
            defer { close(bound) }
            try check(
                mount(
                    nil, procFD(bound), nil,
                    UInt(MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC | MS_NOSUID | MS_NODEV | MS_NOEXEC), nil),
                "mount", "remount \(p) read-only")
        }
        guard !plan.maskedPaths.isEmpty else { return }
        let null = try root.open("/dev/null", flags: O_PATH | O_NOFOLLOW)
        defer { close(null) }
        try requireCharDevice(null, major: 1, minor: 3, path: "/dev/null")
        for p in plan.maskedPaths {
            guard let fd = try openIfPresent(p, root: root) else { continue }
            defer { close(fd) }
            var st = stat()
            try check(fstat(fd, &st), "fstat", p)
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                try check(
                    mount("tmpfs", procFD(fd), "tmpfs", UInt(MS_RDONLY), "size=0k"), "mount", "tmpfs mask on \(p)")
            case S_IFLNK:
                continue  // a mount cannot sit on a symlink; nothing of the kernel's is one here
            default:
                try check(mount(procFD(null), procFD(fd), nil, UInt(MS_BIND), nil), "mount", "/dev/null mask on \(p)")
            }
        }
    }

    /// Mounts `mounts` at /sys/fs/cgroup (`LaunchPlan.cgroupMounts`; read-only but for a
    /// `--privileged` container); called in the container's cgroup namespace, so each
    /// hierarchy's root is the container's own cgroup and the workload reads its limits (`memory.max`, `cpu.max`; v1 `memory.limit_in_bytes`…) as
    /// it would under Docker. The target must be sysfs's own /sys/fs/cgroup, resolved inside the
    /// root (DESIGN rule 3). Several hierarchies (a v1 or hybrid host) go below a tmpfs, one
    /// directory each, which is made read-only after. Best effort, as the file system is
    /// information, not isolation: a hierarchy the kernel refuses (a v1 one in a user namespace on
    /// some kernels) is left out, and no /sys (or no cgroup directory in it) leaves nothing.
    static func mountCgroups(_ mounts: [LaunchPlan.CgroupMount]) {
        guard !mounts.isEmpty, let root = try? InRoot.open("/") else { return }
        defer { close(root.rootFD) }
        guard let target = try? root.open("/sys/fs/cgroup", flags: O_PATH | O_NOFOLLOW | O_DIRECTORY) else { return }
        defer { close(target) }
        guard sk_fstatfs_type(target) == sysfsMagic else { return }
        let flags = UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RELATIME)
        let readOnly = mounts.contains { $0.readOnly } ? UInt(MS_RDONLY) : 0
        if mounts.count == 1, let only = mounts.first, only.name.isEmpty {
            _ = mount("cgroup", procFD(target), only.type, flags | readOnly, nil)
            return
        }
        guard mount("tmpfs", procFD(target), "tmpfs", flags, "mode=755") == 0,
            let tmpfs = try? root.open("/sys/fs/cgroup", flags: O_RDONLY | O_NOFOLLOW | O_DIRECTORY)
        else { return }
        defer { close(tmpfs) }
        for m in mounts where !m.name.isEmpty && !m.name.contains("/") {
            guard mkdirat(tmpfs, m.name, 0o755) == 0 else { continue }
            let dir = openat(tmpfs, m.name, O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC)
            guard dir >= 0 else { continue }
            if mount("cgroup", procFD(dir), m.type, flags | readOnly, m.options.isEmpty ? nil : m.options) != 0 {
                _ = unlinkat(tmpfs, m.name, AT_REMOVEDIR)
            }
            close(dir)
        }
        _ = mount(nil, procFD(tmpfs), nil, UInt(MS_BIND | MS_REMOUNT) | readOnly | flags, nil)
    }

    /// `f_type` of sysfs (`SYSFS_MAGIC`, include/uapi/linux/magic.h).
    static let sysfsMagic: Int = 0x6265_6572

    /// `O_PATH | O_NOFOLLOW` descriptor of `path` inside the root, nil when it does not exist.
    static func openIfPresent(_ path: String, root: InRoot) throws -> Int32? {
        do { return try root.open(path, flags: O_PATH | O_NOFOLLOW) } catch let e as SysError where e.errno == ENOENT {
            return nil
        }
    }

    /// Checks that `fd` is a character device `major:minor` (any minor when nil).
    /// - Throws: `SkiffError` when something else sits at `path` (an image or a process may have
    ///   put a symlink, a file or another device there).
    static func requireCharDevice(_ fd: Int32, major maj: UInt32, minor min: UInt32? = nil, path: String) throws {
        var st = stat()
        try check(fstat(fd, &st), "fstat", path)
        let dev = UInt(st.st_rdev)
        guard (st.st_mode & S_IFMT) == S_IFCHR, major(dev) == maj, min.map({ minor(dev) == $0 }) ?? true else {
            let want = min.map { "\(maj):\($0)" } ?? "\(maj):*"
            throw SkiffError(
                "\(path) in the container is not the expected character device \(want); refusing to use it")
        }
    }

    /// Opens the working directory inside the root (`-w`, image WorkingDir), creating it when
    /// `create` (Docker creates it for `run`, not for `exec`). A path that leaves the root through
    /// a magic link (`/proc/self/fd/N`, the CVE-2024-21626 class) is refused.
    /// - Returns: an `O_PATH | O_DIRECTORY` descriptor for `enterWorkingDirectory`.
    static func workingDirectory(_ cwd: String, root: InRoot, create: Bool) throws -> Int32 {
        do {
            return create ? try root.mkdirAll(cwd) : try root.open(cwd, flags: O_PATH | O_DIRECTORY)
        } catch let e as SysError {
            let why =
                e.errno == ELOOP || e.errno == EXDEV
                ? "it leads out of the container (a /proc/*/fd or /proc/*/root link)"
                : SysError.message(e.errno)
            throw SkiffError(
                "cannot use working directory \(cwd): \(why); check -w/--workdir or the image's WorkingDir")
        }
    }

    /// `fchdir` to the directory opened by `workingDirectory`, then checks that the kernel sees the
    /// new working directory under the root (runc's CVE-2024-21626 check: `getcwd` reports a
    /// directory outside the root as "(unreachable)…" or fails).
    static func enterWorkingDirectory(_ fd: Int32, _ cwd: String) throws {
        defer { close(fd) }
        try check(fchdir(fd), "chdir", "working directory \(cwd)", hint: "check -w/--workdir")
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buf, buf.count) != nil else {
            throw SkiffError("working directory \(cwd) is outside the container (getcwd: \(SysError.message(errno)))")
        }
        let now = String(decoding: buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard now.hasPrefix("/") else {
            throw SkiffError("working directory \(cwd) is outside the container (\(now))")
        }
    }

    /// `/etc/passwd` and `/etc/group` of the container, read inside the root as regular files
    /// only; empty when missing.
    static func userDatabase(_ root: InRoot) -> (passwd: String, group: String) {
        let passwd = root.readRegularFile("/etc/passwd").map { String(decoding: $0, as: UTF8.self) } ?? ""
        let group = root.readRegularFile("/etc/group").map { String(decoding: $0, as: UTF8.self) } ?? ""
        return (passwd, group)
    }
}
