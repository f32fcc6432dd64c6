import CSkiff

#if canImport(Glibc)
    import Glibc
#endif

/// The new mount API (`open_tree`, `mount_setattr`, `fsopen`/`fsconfig`/`fsmount`, `move_mount`;
/// Linux 5.2, `mount_setattr` 5.12) for what `mount(2)` cannot do: idmapped mounts and overlayfs
/// layers given as descriptors. Every descriptor returned is close-on-exec and owned by the caller.
///
/// Used to build the root filesystem of a container in a user namespace: each image layer is a
/// detached bind mount idmapped through the container's user namespace, so a file that is root's
/// on disk is the container root's (the namespace's host uid) inside, without a chown of the layer
/// (Documentation/filesystems/idmappings.rst, overlayfs.rst "Idmapped layers").
public enum MountAPI {
    /// A detached copy of the mount tree at `path` (`open_tree(OPEN_TREE_CLONE)`): a bind mount of
    /// it that is attached nowhere until `attach`.
    /// - Parameter recursive: copy the mounts below `path` too (`AT_RECURSIVE`, as `rbind`).
    /// - Throws: `SysError` from open_tree naming `path`.
    public static func cloneTree(_ path: String, recursive: Bool = false) throws -> Int32 {
        let fd = sk_open_tree_clone(path, recursive ? 1 : 0)
        try check(fd, "open_tree", path, hint: "Linux 5.2 or newer is needed")
        return fd
    }

    /// Idmaps the detached mount `tree` through the user namespace `userNamespaceFD` (an open
    /// `/proc/PID/ns/user` whose uid_map and gid_map are written): a file owned by id N on disk
    /// appears owned by the host id the namespace maps N to, and ids are stored back the same way.
    /// - Parameter what: the tree's path, for the error.
    /// - Throws: `SysError` from mount_setattr; EINVAL when the filesystem cannot be idmapped or
    ///   the namespace has no mappings yet.
    public static func idmap(_ tree: Int32, userNamespaceFD: Int32, what: String) throws {
        try check(
            sk_mount_setattr_idmap(tree, userNamespaceFD), "mount_setattr MOUNT_ATTR_IDMAP", what,
            hint:
                "Linux 5.12 or newer is needed, and a filesystem that supports idmapped mounts (ext4, xfs, btrfs, tmpfs 6.3)"
        )
    }

    /// An overlayfs mount, detached, of `lower` (descriptors of the layers, top-most first) under
    /// `upperdir` and `workdir` (paths). The layers go in as descriptors (`lowerdir+` with
    /// `FSCONFIG_SET_FD`, Linux 6.13), so a detached idmapped layer needs no path.
    /// - Parameter attributes: `MOUNT_ATTR_*` bits for the mount (e.g. `MountAPI.noDevices`).
    /// - Throws: `MountAPIError.layersAsDescriptors` when the kernel refuses a layer descriptor
    ///   (before 6.13; use `overlay(lowerPaths:…)`), else `SysError` with overlayfs's own message.
    public static func overlay(lower: [Int32], upperdir: String, workdir: String, attributes: UInt64) throws -> Int32 {
        let fs = sk_fsopen("overlay")
        try check(fs, "fsopen", "overlay", hint: "the overlay module must be loaded")
        defer { close(fs) }
        for (i, fd) in lower.enumerated() where sk_fsconfig_fd(fs, "lowerdir+", fd) < 0 {
            let e = errno
            if e == EINVAL && i == 0 { throw MountAPIError.layersAsDescriptors }
            throw SysError("fsconfig lowerdir+", "layer \(i + 1) of \(lower.count)", errno: e, hint: log(fs))
        }
        return try finish(fs, upperdir: upperdir, workdir: workdir, attributes: attributes)
    }

    /// `overlay` for kernels before 6.13: the layers as paths (`lowerdir`, top-most first; the
    /// idmapped layers must be attached there first, see `attach`).
    /// - Throws: `SysError` with overlayfs's own message.
    public static func overlay(lowerPaths: [String], upperdir: String, workdir: String, attributes: UInt64) throws
        -> Int32
    {
        let fs = sk_fsopen("overlay")
        try check(fs, "fsopen", "overlay", hint: "the overlay module must be loaded")
        defer { close(fs) }
        let escaped = lowerPaths.map { p in
            p.replacingAll("\\", with: "\\\\").replacingAll(":", with: "\\:")
        }
        if sk_fsconfig_string(fs, "lowerdir", escaped.joined(separator: ":")) < 0 {
            throw SysError("fsconfig lowerdir", lowerPaths.joined(separator: ":"), hint: log(fs))
        }
        return try finish(fs, upperdir: upperdir, workdir: workdir, attributes: attributes)
    }

    private static func finish(_ fs: Int32, upperdir: String, workdir: String, attributes: UInt64) throws -> Int32 {
        if sk_fsconfig_string(fs, "upperdir", upperdir) < 0 {
            throw SysError("fsconfig upperdir", upperdir, hint: log(fs))
        }
        if sk_fsconfig_string(fs, "workdir", workdir) < 0 {
            throw SysError("fsconfig workdir", workdir, hint: log(fs))
        }
        if sk_fsconfig_create(fs) < 0 {
            throw SysError("fsconfig FSCONFIG_CMD_CREATE", "overlay on \(upperdir)", hint: log(fs))
        }
        let mnt = sk_fsmount(fs, attributes)
        try check(mnt, "fsmount", "overlay on \(upperdir)")
        return mnt
    }

    /// What the filesystem context logged (overlayfs says which layer it did not like), or "".
    private static func log(_ fs: Int32) -> String {
        var buf = [CChar](repeating: 0, count: 1024)
        let n = sk_fs_log(fs, &buf, buf.count)
        return n > 0
            ? "overlayfs: " + String(decoding: buf.prefix(Int(n)).map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
    }

    /// Attaches the detached mount `fd` at `path` in the caller's mount namespace (`move_mount`).
    /// - Throws: `SysError` from move_mount naming `path`.
    public static func attach(_ fd: Int32, at path: String) throws {
        try check(sk_move_mount_to(fd, path), "move_mount", "onto \(path)")
    }

    /// Lazily unmounts whatever is mounted at `path` (`umount2(MNT_DETACH)`); true when something
    /// was. EINVAL (nothing mounted there) and ENOENT are not errors.
    @discardableResult
    public static func detach(_ path: String) -> Bool {
        umount2(path, Int32(MNT_DETACH)) == 0
    }

    /// `MOUNT_ATTR_NODEV`: device nodes on the mount cannot be opened.
    public static let noDevices: UInt64 = SK_MOUNT_ATTR_NODEV_BIT
}

/// The kernel refused a mount-API request in a way that has a fallback.
public enum MountAPIError: Error, CustomStringConvertible {
    /// overlayfs took no layer as a descriptor (`FSCONFIG_SET_FD` for `lowerdir+` needs Linux 6.13).
    case layersAsDescriptors

    public var description: String {
        switch self {
        case .layersAsDescriptors:
            return "overlayfs does not take layers as descriptors (Linux 6.13 or newer is needed)"
        }
    }
}

extension String {
    /// Every occurrence of `target` replaced by `replacement` (Foundation-free).
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty, contains(target) else { return self }
        var out = ""
        var rest = Substring(self)
        while let r = rest.firstRange(of: target) {
            out += rest[..<r.lowerBound]
            out += replacement
            rest = rest[r.upperBound...]
        }
        return out + rest
    }
}
