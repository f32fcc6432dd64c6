import CSkiff
import LinuxSys
import OCI
import Store

#if canImport(Glibc)
    import Glibc
#endif

/// The host side of a container in its own user namespace (`--userns=auto`).
///
/// The container's first process is born by `clone3(CLONE_NEWUSER | CLONE_NEWPID | …)`
/// (`Launcher.spawnInit`) and waits, before `execve`, on a gate pipe. Root only inside its
/// namespace, it can no longer do what needs the host's root, so the monitor does it here:
///
/// 1. `prepareChild`, before the gate opens: writes `/proc/PID/uid_map` and `gid_map`, once each
///    (an `execve` before that would drop every capability); moves the child into its v1 cgroups
///    (the host's cgroup files are not the namespace root's); sets `oom_score_adj` and the rlimits
///    (lowering `oom_score_adj` and raising a hard limit need capabilities in the host's namespace).
/// 2. `mountRootfs`, while the child starts: each image layer becomes a detached bind mount
///    idmapped through the child's namespace (`open_tree` + `mount_setattr(MOUNT_ATTR_IDMAP)`),
///    overlaid with the container's upperdir (owned by the container's root, `giveUpper`) and
///    attached on the rootfs mount point in the host's mount namespace, `nodev`. The child's
///    `unshare(CLONE_NEWNS)` then copies it into a mount namespace its user namespace owns, where
///    the kernel locks it (the child cannot remount it to clear `nodev` and open device nodes an
///    image carries: a mount it attached itself would not be locked), and the child binds it onto
///    itself to get a mount `pivot_root` accepts (a locked mount is refused with EINVAL).
/// 3. `detachRootfs`, once the child has exec'd or failed: the host's copy is detached, so no
///    mount of the container is left in the host's mount table (`Engine.removeRunDir` detaches it
///    if a monitor died in between).
enum UserNamespaceHost {
    /// Makes the container's upperdir and workdir its root's (host ids `uidBase:gidBase`), the
    /// upperdir with the mode of the image's root directory (it is the container's `/`).
    /// - Parameter imageRoot: the top-most layer directory, nil for none.
    /// - Throws: `SysError` from chown/chmod naming the directory.
    static func giveUpper(_ upper: String, work: String, to ns: UserNamespaceSettings, imageRoot: String?) throws {
        var mode: mode_t = 0o755
        var st = stat()
        if let imageRoot, stat(imageRoot, &st) == 0 { mode = st.st_mode & 0o7777 }
        for dir in [upper, work] {
            try check(chown(dir, ns.uidBase, ns.gidBase), "chown", "\(dir) to \(ns.uidBase):\(ns.gidBase)")
        }
        try check(chmod(upper, mode), "chmod", upper)
    }

    /// The child execs `/proc/self/exe` (skiff, or its read-only image) as the namespace's root,
    /// a host uid that neither owns the binary nor is in its group, and then opens it to check it
    /// is the read-only image: the binary must be readable and executable by others
    /// (`install -m 0755`).
    /// - Throws: `SkiffError` naming the binary's mode.
    static func requireExecutableByOthers() throws {
        var st = stat()
        guard stat("/proc/self/exe", &st) == 0, st.st_mode & 0o005 != 0o005 else { return }
        throw SkiffError(
            "--userns=auto: the container's first process runs the skiff binary as an unprivileged host uid, but the binary's mode \(String(st.st_mode & 0o7777, radix: 8)) does not let other users read and execute it; chmod o+rx the installed skiff"
        )
    }

    /// Everything the host side does before the child may `execve` (step 1 above).
    /// - Throws: `SysError` naming the file and, for the maps, the line written.
    static func prepareChild(pid: Int32, plan: LaunchPlan, userNamespace ns: LaunchPlan.UserNamespace) throws {
        try writeMap("/proc/\(pid)/uid_map", ns.uidMappings)
        try writeMap("/proc/\(pid)/gid_map", ns.gidMappings)
        Trace.mark("userns: maps written")
        for path in ns.cgroupProcsPaths {
            do { try Files.writeExisting(path, String(pid)) } catch let e as SysError {
                throw SkiffError("cannot move the container into its cgroup: \(e)")
            }
        }
        Trace.mark("userns: joined cgroups")
        try ProcessLimits.setOOMScoreAdj(plan.oomScoreAdj, pid: pid)
        try ProcessLimits.setRlimits(plan.rlimits, pid: pid)
    }

    /// Writes a uid_map or gid_map in one `write`, as the kernel requires (user_namespaces(7)):
    /// one `ID-INSIDE ID-OUTSIDE LENGTH` line per mapping.
    /// - Throws: `SysError` naming the file and the text, e.g. EPERM when it was written before.
    static func writeMap(_ path: String, _ mappings: [Spec.IDMapping]) throws {
        let text = mappings.map { "\($0.containerID) \($0.hostID) \($0.size)\n" }.joined()
        let shown = "\"\(text.dropLast().split(separator: "\n").joined(separator: "\\n"))\""
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        try check(fd, "open", path)
        defer { close(fd) }
        let bytes = Array(text.utf8)
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            throw SysError(
                "write", "\(path) \(shown)",
                hint: "each map can be written once, by a process with CAP_SETUID/CAP_SETGID over the namespace")
        }
        guard n == bytes.count else {
            throw SysError("write", "\(path) \(shown) (short write of \(n) bytes)", errno: EIO)
        }
    }

    /// `SKIFF_OVERLAY_LAYER_PATHS=1` takes the path fallback of `mountRootfs` even where the
    /// kernel takes layer descriptors (for tests).
    static var forceLayerPaths: Bool { getenv("SKIFF_OVERLAY_LAYER_PATHS").map { String(cString: $0) } == "1" }

    /// Builds the idmapped overlay and attaches it at `plan.rootfsMountPoint` (step 2 above).
    /// The child's uid_map and gid_map must be written.
    /// - Throws: `SysError` naming the layer or the overlay call that failed.
    static func mountRootfs(pid: Int32, plan: LaunchPlan) throws {
        let nsPath = "/proc/\(pid)/ns/user"
        let userns = open(nsPath, O_RDONLY | O_CLOEXEC)
        try check(userns, "open", nsPath)
        defer { close(userns) }
        var layers: [Int32] = []
        defer { for fd in layers { close(fd) } }
        for dir in plan.lowerdirs {
            let tree = try MountAPI.cloneTree(dir)
            layers.append(tree)
            try MountAPI.idmap(tree, userNamespaceFD: userns, what: dir)
        }
        Trace.mark("userns: layers idmapped")
        var overlay: Int32 = -1
        if !forceLayerPaths {
            do {
                overlay = try MountAPI.overlay(
                    lower: layers, upperdir: plan.upperdir, workdir: plan.workdir, attributes: MountAPI.noDevices)
            } catch MountAPIError.layersAsDescriptors {}
        }
        if overlay < 0 { overlay = try overlayFromLayerPaths(layers, plan: plan) }
        defer { close(overlay) }
        try MountAPI.attach(overlay, at: plan.rootfsMountPoint)
        Trace.mark("userns: rootfs attached")
    }

    /// Before Linux 6.13 overlayfs takes layers only as paths: the idmapped layers are attached
    /// under the runtime directory (`lower/N`) for as long as the overlay takes to build (it keeps
    /// its own private copies of them) and detached again.
    private static func overlayFromLayerPaths(_ layers: [Int32], plan: LaunchPlan) throws -> Int32 {
        let base = String(
            plan.rootfsMountPoint[..<(plan.rootfsMountPoint.lastIndex(of: "/") ?? plan.rootfsMountPoint.endIndex)])
        let paths = layers.indices.map { "\(base)/lower/\($0)" }
        defer {
            for p in paths {
                MountAPI.detach(p)
                rmdir(p)
            }
            rmdir(base + "/lower")
        }
        for (fd, path) in zip(layers, paths) {
            try StateRoot.mkdirAll(path, mode: 0o700)
            try MountAPI.attach(fd, at: path)
        }
        return try MountAPI.overlay(
            lowerPaths: paths, upperdir: plan.upperdir, workdir: plan.workdir, attributes: MountAPI.noDevices)
    }

    /// Detaches the host's copy of the container's root filesystem (step 3 above).
    static func detachRootfs(_ plan: LaunchPlan) {
        MountAPI.detach(plan.rootfsMountPoint)
    }
}
