#if canImport(Glibc)
    import Glibc
#endif

/// mount(2) flags and filesystem data parsed from runtime-spec mount `options`
/// (config.md#mounts; the names are those of mount(8)).
struct MountOptions {
    var flags: UInt = 0
    /// Flags to apply with a second `MS_REMOUNT | MS_BIND` (bind mounts ignore them on the first call).
    var bindRemountFlags: UInt = 0
    var propagation: UInt = 0
    var isBind = false
    var recursive = false
    var data: [String] = []

    init(_ options: [String]) {
        for o in options {
            switch o {
            case "ro": flags |= UInt(MS_RDONLY)
            case "rw": flags &= ~UInt(MS_RDONLY)
            case "nosuid": flags |= UInt(MS_NOSUID)
            case "suid": flags &= ~UInt(MS_NOSUID)
            case "nodev": flags |= UInt(MS_NODEV)
            case "dev": flags &= ~UInt(MS_NODEV)
            case "noexec": flags |= UInt(MS_NOEXEC)
            case "exec": flags &= ~UInt(MS_NOEXEC)
            case "strictatime": flags |= UInt(MS_STRICTATIME)
            case "relatime": flags |= UInt(MS_RELATIME)
            case "noatime": flags |= UInt(MS_NOATIME)
            case "nodiratime": flags |= UInt(MS_NODIRATIME)
            case "sync": flags |= UInt(MS_SYNCHRONOUS)
            case "bind": isBind = true
            case "rbind":
                isBind = true
                recursive = true
            case "private": propagation = UInt(MS_PRIVATE)
            case "rprivate": propagation = UInt(MS_PRIVATE | MS_REC)
            case "slave": propagation = UInt(MS_SLAVE)
            case "rslave": propagation = UInt(MS_SLAVE | MS_REC)
            case "shared": propagation = UInt(MS_SHARED)
            case "rshared": propagation = UInt(MS_SHARED | MS_REC)
            default: data.append(o)
            }
        }
        if isBind {
            bindRemountFlags = flags
        }
    }

    var dataString: String { data.joined(separator: ",") }
}
