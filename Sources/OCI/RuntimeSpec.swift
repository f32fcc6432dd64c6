// OCI runtime-spec v1.2 types: config.md, config-linux.md, runtime.md (state).
// Only the fields Skiff sets or reads; unknown fields in an input config are ignored.

/// The runtime-spec version Skiff writes into `config.json`.
public let ociVersion = "1.2.0"

/// `config.json` of a bundle (runtime-spec `config.md`).
public struct Spec: Codable, Sendable {
    public var ociVersion: String = OCI.ociVersion
    public var process: Process?
    public var root: Root?
    public var hostname: String?
    public var mounts: [Mount]?
    public var annotations: [String: String]?
    public var linux: Linux?

    public init() {}

    /// `process` (`config.md#process`).
    public struct Process: Codable, Sendable {
        public var terminal: Bool?
        public var consoleSize: ConsoleSize?
        public var user: User
        public var args: [String]
        public var env: [String]?
        public var cwd: String
        public var noNewPrivileges: Bool?
        public var capabilities: Capabilities?
        public var rlimits: [RLimit]?
        /// `/proc/PID/oom_score_adj` for the process, -1000…1000.
        public var oomScoreAdj: Int?

        public init(user: User = User(), args: [String], env: [String]? = nil, cwd: String = "/") {
            self.user = user
            self.args = args
            self.env = env
            self.cwd = cwd
        }
    }

    /// `process.consoleSize`, in character cells.
    public struct ConsoleSize: Codable, Sendable {
        public var height: UInt16
        public var width: UInt16
    }

    /// `process.user` (`config.md#posix-platform-user`).
    public struct User: Codable, Sendable, Equatable {
        public var uid: UInt32 = 0
        public var gid: UInt32 = 0
        public var additionalGids: [UInt32]?
        public var umask: UInt32?
        public init(uid: UInt32 = 0, gid: UInt32 = 0, additionalGids: [UInt32]? = nil) {
            self.uid = uid
            self.gid = gid
            self.additionalGids = additionalGids
        }
    }

    /// `process.rlimits[]`: `type` is `RLIMIT_NOFILE` and the like (getrlimit(2)); `soft` and
    /// `hard` in the resource's unit, UInt64.max for RLIM_INFINITY.
    public struct RLimit: Codable, Sendable, Equatable {
        public var type: String
        public var soft: UInt64
        public var hard: UInt64
        public init(type: String, soft: UInt64, hard: UInt64) {
            self.type = type
            self.soft = soft
            self.hard = hard
        }
    }

    /// `root`: path of the rootfs (relative to the bundle or absolute) and whether it is read-only.
    public struct Root: Codable, Sendable {
        public var path: String
        public var readonly: Bool?
        public init(path: String, readonly: Bool? = nil) {
            self.path = path
            self.readonly = readonly
        }
    }

    /// One entry of `mounts` (`config.md#mounts`).
    public struct Mount: Codable, Sendable, Equatable {
        public var destination: String
        public var type: String?
        public var source: String?
        public var options: [String]?
        public init(destination: String, type: String? = nil, source: String? = nil, options: [String]? = nil) {
            self.destination = destination
            self.type = type
            self.source = source
            self.options = options
        }
    }

    /// `linux` (`config-linux.md`).
    public struct Linux: Codable, Sendable {
        public var namespaces: [Namespace]?
        /// `linux.uidMappings` and `linux.gidMappings`: the user namespace's id maps (with a `user`
        /// entry in `namespaces`), written to /proc/PID/uid_map and gid_map.
        public var uidMappings: [IDMapping]?
        public var gidMappings: [IDMapping]?
        public var cgroupsPath: String?
        public var resources: Resources?
        public var maskedPaths: [String]?
        public var readonlyPaths: [String]?
        public var sysctl: [String: String]?
        public var seccomp: Seccomp?
        public init() {}
    }

    /// One line of a user namespace's id map (`config-linux.md#user-namespace-mappings`): ids
    /// `containerID` … `containerID + size - 1` inside are `hostID` … on the host.
    public struct IDMapping: Codable, Sendable, Equatable {
        public var containerID: UInt32
        public var hostID: UInt32
        public var size: UInt32
        public init(containerID: UInt32, hostID: UInt32, size: UInt32) {
            self.containerID = containerID
            self.hostID = hostID
            self.size = size
        }
    }

    /// `linux.namespaces[]`: `type` is pid, network, mount, ipc, uts, user, cgroup or time;
    /// `path` joins an existing namespace instead of creating one.
    public struct Namespace: Codable, Sendable, Equatable {
        public var type: String
        public var path: String?
        public init(type: String, path: String? = nil) {
            self.type = type
            self.path = path
        }
    }

    /// `linux.resources` (runtime-spec `config-linux.md#control-groups`). Absent fields leave the
    /// kernel's value alone; see each field for units.
    public struct Resources: Codable, Sendable, Equatable {
        public var memory: Memory?
        public var cpu: CPU?
        public var pids: Pids?
        public var blockIO: BlockIO?
        public var hugepageLimits: [HugepageLimit]?
        /// cgroup v2 files written verbatim (`config-linux.md#unified`), e.g. `["memory.high": "1G"]`.
        public var unified: [String: String]?
        /// `linux.resources.devices`: the device cgroup's allow/deny list, applied in order
        /// (`config-linux.md#allowed-device-list`).
        public var devices: [DeviceRule]?
        public init() {}

        /// One entry of `linux.resources.devices`: `allow` or deny `access` ("r", "w", "m" in any
        /// combination) to devices of `type` ("a" all, "c" character, "b" block; nil = all) with
        /// `major`/`minor` (nil = any).
        public struct DeviceRule: Codable, Sendable, Equatable {
            public var allow: Bool
            public var type: String?
            public var major: Int64?
            public var minor: Int64?
            public var access: String?
            public init(allow: Bool, type: String? = nil, major: Int64? = nil, minor: Int64? = nil, access: String? = nil) {
                self.allow = allow
                self.type = type
                self.major = major
                self.minor = minor
                self.access = access
            }
        }

        /// `linux.resources.memory`. Bytes; -1 means unlimited.
        public struct Memory: Codable, Sendable, Equatable {
            /// memory.max / v1 memory.limit_in_bytes.
            public var limit: Int64?
            /// memory.low / v1 memory.soft_limit_in_bytes.
            public var reservation: Int64?
            /// Memory plus swap (Docker's `--memory-swap`): v2 memory.swap.max = swap − limit;
            /// v1 memory.memsw.limit_in_bytes.
            public var swap: Int64?
            /// v1 memory.oom_control = 1 (v2 has no equivalent).
            public var disableOOMKiller: Bool?
            public init(limit: Int64? = nil, reservation: Int64? = nil, swap: Int64? = nil, disableOOMKiller: Bool? = nil) {
                self.limit = limit
                self.reservation = reservation
                self.swap = swap
                self.disableOOMKiller = disableOOMKiller
            }
        }
        /// `linux.resources.cpu`.
        public struct CPU: Codable, Sendable, Equatable {
            /// v1 cpu.shares (2–262144); on v2 converted to cpu.weight.
            public var shares: UInt64?
            /// µs per `period`; -1 means no limit (cpu.max "max").
            public var quota: Int64?
            /// µs (1000–1000000).
            public var period: UInt64?
            /// cpuset.cpus list, e.g. "0-1,3".
            public var cpus: String?
            /// cpuset.mems list.
            public var mems: String?
            public init(shares: UInt64? = nil, quota: Int64? = nil, period: UInt64? = nil, cpus: String? = nil, mems: String? = nil) {
                self.shares = shares
                self.quota = quota
                self.period = period
                self.cpus = cpus
                self.mems = mems
            }
        }
        /// `linux.resources.pids`: pids.max; -1 means "max", 0 is a real limit (runtime-spec PR #1279).
        public struct Pids: Codable, Sendable, Equatable {
            public var limit: Int64
            public init(limit: Int64) { self.limit = limit }
        }
        /// `linux.resources.blockIO`.
        public struct BlockIO: Codable, Sendable, Equatable {
            /// 10–1000: v1 blkio.weight; v2 io.bfq.weight or io.weight (converted).
            public var weight: UInt16?
            public var throttleReadBpsDevice: [ThrottleDevice]?
            public var throttleWriteBpsDevice: [ThrottleDevice]?
            public var throttleReadIOPSDevice: [ThrottleDevice]?
            public var throttleWriteIOPSDevice: [ThrottleDevice]?
            public init() {}
        }
        /// One device's throttle: `rate` bytes/s or IO/s.
        public struct ThrottleDevice: Codable, Sendable, Equatable {
            public var major: Int64
            public var minor: Int64
            public var rate: UInt64
            public init(major: Int64, minor: Int64, rate: UInt64) {
                self.major = major
                self.minor = minor
                self.rate = rate
            }
        }
        /// `linux.resources.hugepageLimits[]`: `pageSize` like "2MB", `limit` in bytes.
        public struct HugepageLimit: Codable, Sendable, Equatable {
            public var pageSize: String
            public var limit: UInt64
            public init(pageSize: String, limit: UInt64) {
                self.pageSize = pageSize
                self.limit = limit
            }
        }
    }
}

/// Container state as `runtime.md#state` defines it.
public struct State: Codable, Sendable {
    public var ociVersion: String = OCI.ociVersion
    public var id: String
    /// creating, created, running or stopped.
    public var status: String
    public var pid: Int32?
    public var bundle: String
    public var annotations: [String: String]?

    public init(id: String, status: String, pid: Int32?, bundle: String) {
        self.id = id
        self.status = status
        self.pid = pid
        self.bundle = bundle
    }
}
