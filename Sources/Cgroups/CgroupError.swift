import Glibc

/// Everything the `Cgroups` module throws. Each case carries the path it acted on and, where a
/// system call failed, its `errno`; `description` is written to be shown to the user as is and
/// ends with what to do about it.
public enum CgroupError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A `/proc` file (`self/mountinfo`, `self/cgroup`) could not be read.
    case procFile(path: String, errno: Int32)
    /// A line of `/proc/self/mountinfo` or `/proc/self/cgroup` does not have the layout of
    /// `Documentation/filesystems/proc.rst` ("3.5 /proc/<pid>/mountinfo") or
    /// `Documentation/admin-guide/cgroup-v2.rst` ("Processes": `hierarchy-ID:controllers:path`).
    case malformed(path: String, line: String)
    /// Neither a `cgroup` nor a `cgroup2` file system is mounted where the calling process can see it.
    case notMounted(mountinfo: String)
    /// The cgroup path (`/proc/self/cgroup` or `--cgroup-parent`) lies outside the part of the
    /// hierarchy that is mounted (mountinfo field 4, the mount's root).
    case outsideMount(cgroupPath: String, mountRoot: String, mountPoint: String)
    /// A cgroup name or parent path that would leave the intended subtree (`/`, `.`, `..`, empty).
    case invalidName(String, reason: String)
    /// `mkdir(2)` of a cgroup directory failed.
    case create(path: String, errno: Int32)
    /// `open(2)` or `read(2)` of a cgroup interface file failed.
    case read(path: String, errno: Int32)
    /// `open(2)` or `write(2)` of a cgroup interface file failed.
    case write(path: String, value: String, errno: Int32)
    /// A cgroup interface file held a value this module cannot parse.
    case unexpectedValue(path: String, value: String)
    /// `rmdir(2)` of a cgroup directory failed; `remaining` says what is still inside.
    case remove(path: String, errno: Int32, remaining: String)
    /// An operation that waits on the kernel (freeze, kill, emptying) did not finish in time.
    case timeout(operation: String, path: String, milliseconds: Int64, remaining: String)
    /// The cgroup has no hierarchy that offers what was asked (e.g. no freezer at all).
    case unsupported(operation: String, reason: String)
    /// A recorded cgroup directory is not inside any mounted cgroup hierarchy.
    case notACgroup(path: String)
    /// A requested limit needs a controller this host does not offer to the cgroup: no v1
    /// hierarchy carries it and the v2 hierarchy does not list it in `cgroup.controllers`
    /// (cgroup-v2.rst "Enabling and Disabling"). `setting` names the limit (`memory limit`),
    /// `cgroupPath` the directory, `hint` what to do.
    case missingController(controller: String, setting: String, cgroupPath: String, hint: String)
    /// A limit the host's cgroup version cannot express (e.g. `disableOOMKiller` on v2,
    /// `unified` on v1), or an invalid value; `reason` says why and what to do.
    case invalidResource(setting: String, reason: String)

    /// One line for the user: what failed, on which path, the system's reason, what to do.
    public var description: String {
        switch self {
        case .procFile(let path, let e):
            return "cannot read \(path): \(Self.text(e)); is /proc mounted?"
        case .malformed(let path, let line):
            return
                "cannot parse \(path) line \"\(line)\"; this kernel's format is not understood, please report it"
        case .notMounted(let mountinfo):
            return
                "no cgroup or cgroup2 file system is listed in \(mountinfo); mount one (mount -t cgroup2 none /sys/fs/cgroup)"
        case .outsideMount(let cgroupPath, let mountRoot, let mountPoint):
            return
                "cgroup \(cgroupPath) is outside the part \(mountRoot) of the hierarchy mounted at \(mountPoint); "
                + "pass a --cgroup-parent below \(mountRoot) or mount the whole hierarchy"
        case .invalidName(let name, let reason):
            return "invalid cgroup name \"\(name)\": \(reason)"
        case .create(let path, let e):
            return "cannot create cgroup \(path): \(Self.text(e)); " + Self.hint(forCreate: e)
        case .read(let path, let e):
            return "cannot read \(path): \(Self.text(e))"
                + (e == ENOENT ? "; the cgroup or its controller is gone" : "")
        case .write(let path, let value, let e):
            return "cannot write \"\(value)\" to \(path): \(Self.text(e)); " + Self.hint(forWrite: e, path: path)
        case .unexpectedValue(let path, let value):
            return
                "unexpected value \"\(value)\" in \(path); this kernel's format is not understood, please report it"
        case .remove(let path, let e, let remaining):
            return "cannot remove cgroup \(path): \(Self.text(e))"
                + (remaining.isEmpty ? "" : "; still inside: \(remaining)")
                + (e == EBUSY ? "; stop those processes (skiff kill) and retry" : "")
        case .timeout(let operation, let path, let ms, let remaining):
            return "\(operation) of cgroup \(path) did not finish within \(ms) ms"
                + (remaining.isEmpty ? "" : "; still inside: \(remaining)")
                + "; retry, or look for processes stuck in uninterruptible sleep (state D in /proc/PID/stat)"
        case .unsupported(let operation, let reason):
            return "cannot \(operation): \(reason)"
        case .notACgroup(let path):
            return
                "\(path) is not inside a mounted cgroup hierarchy; was the cgroup file system remounted?"
        case .missingController(let controller, let setting, let cgroupPath, let hint):
            return "\(setting) needs the \(controller) controller, which this host does not offer to "
                + "cgroup \(cgroupPath): \(hint)"
        case .invalidResource(let setting, let reason):
            return "cannot apply \(setting): \(reason)"
        }
    }

    /// The `errno` of the failed call, when there was one.
    public var errno: Int32? {
        switch self {
        case .procFile(_, let e), .create(_, let e), .read(_, let e), .write(_, _, let e),
            .remove(_, let e, _):
            return e
        default:
            return nil
        }
    }

    static func text(_ e: Int32) -> String {
        guard let s = strerror(e) else { return "errno \(e)" }
        return String(cString: s)
    }

    static func hint(forCreate e: Int32) -> String {
        switch e {
        case EACCES, EPERM, EROFS:
            return "run skiff as root or pass --cgroup-parent naming a cgroup delegated to you"
        case EEXIST:
            return "a cgroup of that name exists already; remove it (skiff rm) or pick another name"
        case ENOENT:
            return "the parent cgroup does not exist; check --cgroup-parent"
        case ENOTDIR:
            return "a part of --cgroup-parent is a cgroup file, not a cgroup; name a cgroup (a directory)"
        case EINVAL, ENAMETOOLONG:
            return "the kernel refuses that name; use letters, digits, '-', '_' and '.'"
        case ENOSPC, EAGAIN:
            return
                "the hierarchy's cgroup.max.descendants or cgroup.max.depth is reached; remove unused cgroups"
        default:
            return "check that the cgroup file system is mounted read-write"
        }
    }

    static func hint(forWrite e: Int32, path: String = "") -> String {
        switch e {
        case ESRCH:
            return "the process exited before it could be moved"
        case EBUSY where path.hasSuffix("memory.limit_in_bytes") || path.hasSuffix("memory.memsw.limit_in_bytes")
            || path.hasSuffix("memory.max"):
            return "the container uses more memory than the new limit; free some in it or choose a higher limit"
        case ERANGE where path.hasSuffix("cpuset.cpus") || path.hasSuffix("cpuset.mems"),
            EINVAL where path.hasSuffix("cpuset.cpus") || path.hasSuffix("cpuset.mems"):
            return "the CPUs or memory nodes must exist on this host and be allowed to skiff's cgroup"
        case EBUSY:
            return
                "the cgroup has processes and child cgroups with controllers (cgroup-v2.rst \"no internal process\" rule)"
        case EOPNOTSUPP:
            return "the kernel does not support this file or value"
        case EACCES, EPERM, EROFS:
            return "run skiff as root or pass --cgroup-parent naming a cgroup delegated to you"
        case ENOENT:
            return "the cgroup or its controller is gone"
        default:
            return "see the kernel's cgroup documentation for this file"
        }
    }
}
