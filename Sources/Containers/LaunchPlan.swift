import OCI

/// Everything the container's first process needs, computed by the monitor before `fork()` so
/// the child only makes system calls and reads files inside the new root.
struct LaunchPlan: Codable {
    /// Terminal size in character cells.
    struct Size: Codable {
        var rows: UInt16
        var cols: UInt16
    }

    var id: String
    /// Host directory the rootfs is mounted on (inside the container's mount namespace only).
    var rootfsMountPoint: String
    /// Overlay lowerdirs, top-most first; empty when `bindRootfs` is set.
    var lowerdirs: [String]
    var upperdir: String
    var workdir: String
    /// `--rootfs DIR`: bind-mounted as the root instead of an overlay.
    var bindRootfs: String?
    var readonlyRoot: Bool
    /// CLONE_NEW* flags for `unshare` in the child (the PID namespace is entered by the monitor).
    var unshareFlags: Int32
    var bringUpLoopback: Bool
    var hostname: String
    var mounts: [Spec.Mount]
    var args: [String]
    var env: [String]
    var cwd: String
    /// `-u` as given (`name`, `uid`, `uid:gid`, `name:group`), resolved in the container's /etc.
    var user: String?
    var tty: Bool
    var consoleSize: Size?
    var useInit: Bool
    /// `linux.maskedPaths` and `linux.readonlyPaths`, applied after `pivot_root`.
    var maskedPaths: [String] = []
    var readonlyPaths: [String] = []
    /// `process.rlimits`, `process.oomScoreAdj` and `linux.sysctl` (see `ProcessLimits`).
    var rlimits: [Spec.RLimit] = []
    var oomScoreAdj: Int?
    var sysctls: [String: String] = [:]
    /// `process.noNewPrivileges`: PR_SET_NO_NEW_PRIVS before execve.
    var noNewPrivileges: Bool
    /// Capability sets, no_new_privs and the compiled seccomp filter (see `ProcessSecurity`).
    var security: ProcessSecurity?
    /// Open `cgroup.procs` files (O_WRONLY) of the workload cgroup, one per hierarchy; the
    /// monitor writes the child's PID to them while the child sets up its root.
    var cgroupProcs: [Int32]
    /// v1 `tasks` files the child writes "0" to before anything else (see `CgroupJoin`).
    var cgroupSelfTasks: [Int32]
    /// Read end of the pipe on which the monitor says the child has joined its cgroups (set by `Launcher`).
    var cgroupGate: Int32 = -1
    /// Write end of the pipe on which the child says it has joined its v1 hierarchies (set by `Launcher`).
    var cgroupJoined: Int32 = -1
    /// Set when the child is a fresh `skiff` started by `Launcher.spawn` (born in its v2 cgroup by
    /// `clone3(CLONE_INTO_CGROUP)`); it then joins the v1 hierarchies itself through these `tasks`
    /// files, and there is no gate.
    var spawned = false
    var v1TasksPaths: [String] = []
    /// The workload's cgroup v2 directory (O_RDONLY|O_DIRECTORY) for `clone3`; monitor side only
    /// (-1: the child is born in the monitor's cgroups and `userNamespace` lists every hierarchy).
    var cgroupDirFD: Int32 = -1
    /// Set for a container in its own user namespace (`--userns=auto`; always `spawned`).
    var userNamespace: UserNamespace?
    /// The cgroup file systems mounted read-only at /sys/fs/cgroup once the process is in its own
    /// cgroup namespace, so each shows the container's cgroup as its root (runtime-spec's `cgroup`
    /// mount, as runc and Docker make it); empty when the container has no /sys.
    var cgroupMounts: [CgroupMount] = []

    /// One cgroup file system for /sys/fs/cgroup (`Engine.cgroupMounts(for:)`).
    struct CgroupMount: Codable, Equatable {
        /// The directory below /sys/fs/cgroup, named as on the host (`cpu`, `memory`, `unified`,
        /// `systemd`); "" for /sys/fs/cgroup itself (the one hierarchy of a cgroup v2 host).
        var name: String
        /// `cgroup` (v1) or `cgroup2`.
        var type: String
        /// v1: the hierarchy's controllers (`cpu,cpuacct`; `none,name=systemd` for a named one).
        var options: String
        /// Read-only unless the container's /sys is read-write (`--privileged`, as Docker does).
        var readOnly: Bool
    }

    /// What the host side does for a child in its own user namespace before it may `execve`
    /// (see `UserNamespaceHost`): the child is root only inside its namespace, so it can no
    /// longer open the host's cgroup files, raise its limits or mount its idmapped root.
    struct UserNamespace: Codable {
        /// `linux.uidMappings` and `linux.gidMappings`, written to /proc/PID/uid_map and gid_map.
        var uidMappings: [Spec.IDMapping]
        var gidMappings: [Spec.IDMapping]
        /// `cgroup.procs` files the host side writes the child's PID to: the v1 hierarchies (the
        /// child is born in the v2 one), or every hierarchy when `cgroupDirFD` is -1.
        var cgroupProcsPaths: [String]
    }
}
