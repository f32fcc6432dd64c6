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
        public var rlimits: [RLimit]?

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

    /// `process.rlimits[]`.
    public struct RLimit: Codable, Sendable {
        public var type: String
        public var soft: UInt64
        public var hard: UInt64
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
        public var cgroupsPath: String?
        public var resources: Resources?
        public var maskedPaths: [String]?
        public var readonlyPaths: [String]?
        public var sysctl: [String: String]?
        public init() {}
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

    /// `linux.resources` (`config-linux.md#control-groups`); filled in by the cgroups work.
    public struct Resources: Codable, Sendable {
        public var memory: Memory?
        public var cpu: CPU?
        public var pids: Pids?
        public init() {}

        public struct Memory: Codable, Sendable {
            /// Bytes; -1 for unlimited.
            public var limit: Int64?
            public var reservation: Int64?
            public var swap: Int64?
        }
        public struct CPU: Codable, Sendable {
            public var shares: UInt64?
            /// µs per `period`.
            public var quota: Int64?
            /// µs.
            public var period: UInt64?
            public var cpus: String?
            public var mems: String?
        }
        public struct Pids: Codable, Sendable {
            public var limit: Int64
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
