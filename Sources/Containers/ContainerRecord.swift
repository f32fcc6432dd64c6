import LinuxSys
import OCI
import Store

/// Lifecycle status of a container, as `skiff ps` shows it (runtime-spec `runtime.md#state`
/// statuses plus Docker's `exited`).
public enum ContainerStatus: String, Codable, Sendable {
    /// Created, never started (or its start failed before the workload ran).
    case created
    /// The workload runs; `pid` and `monitorPID` are set.
    case running
    /// The workload's cgroup is frozen.
    case paused
    /// The workload exited; `exitCode` is set.
    case exited
}

/// How a container was asked to run: what `skiff run` was given beyond the OCI spec.
public struct RunSettings: Codable, Sendable {
    public var autoRemove = false
    public var tty = false
    public var interactive = false
    /// `none` (own network namespace with loopback) or `host`.
    public var network = "none"
    public var initProcess = false
    /// Absolute lowerdir paths, bottom-most first; empty with `rootfsPath`.
    public var layers: [String] = []
    /// `--rootfs DIR`: bind-mounted instead of an overlay of image layers.
    public var rootfsPath: String?
    /// `--cgroup-parent`, relative to each hierarchy's root.
    public var cgroupParent: String?
    /// Exposed ports from the image, for display (`8080/tcp`).
    public var exposedPorts: [String] = []
    /// Stop signal from the image config (`SIGTERM` by default).
    public var stopSignal: String?
    /// Set for a VM (`skiff run --vm`): what the monitor boots. Nil for a container.
    public var vm: VMSettings?
    /// The share of the allocatable host the workload asked for (`--cpu-ratio`, `--memory-ratio`,
    /// `--ratio`; for a VM also what its explicit `--cpus`/`--memory` occupy), 0 < R ≤ 1; nil is
    /// best-effort for that resource (no reservation).
    public var cpuRatio: Double?
    public var memoryRatio: Double?
    /// `--userns=auto`: the block of host ids the container's user namespace maps (held in the
    /// `userns_blocks` table while the record exists); nil shares the host's ids.
    public var userNamespace: UserNamespaceSettings?
    public init() {}
}

/// What a workload record describes.
public enum WorkloadKind: String, Codable, Sendable {
    case container, vm
}

/// A VM's boot settings (`skiff run --vm`).
public struct VMSettings: Codable, Sendable, Equatable {
    /// Absolute path of the kernel (ELF64 vmlinux or bzImage).
    public var kernel: String
    /// Absolute path of the initrd, if any.
    public var initrd: String?
    public var commandLine: String
    public var vcpus: Int
    /// Guest RAM in bytes.
    public var memoryBytes: UInt64
    /// `--disk`: raw images served as virtio-blk devices, in order (vda, vdb, …).
    public var disks: [VMDisk]
    public init(
        kernel: String, initrd: String?, commandLine: String, vcpus: Int, memoryBytes: UInt64, disks: [VMDisk] = []
    ) {
        self.kernel = kernel
        self.initrd = initrd
        self.commandLine = commandLine
        self.vcpus = vcpus
        self.memoryBytes = memoryBytes
        self.disks = disks
    }

    enum CodingKeys: String, CodingKey { case kernel, initrd, commandLine, vcpus, memoryBytes, disks }

    /// Records written before `disks` existed decode with no disks.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        kernel = try c.decode(String.self, forKey: .kernel)
        initrd = try c.decodeIfPresent(String.self, forKey: .initrd)
        commandLine = try c.decode(String.self, forKey: .commandLine)
        vcpus = try c.decode(Int.self, forKey: .vcpus)
        memoryBytes = try c.decode(UInt64.self, forKey: .memoryBytes)
        disks = try c.decodeIfPresent([VMDisk].self, forKey: .disks) ?? []
    }
}

/// One row of the `containers` table: everything Skiff knows about a container.
public struct ContainerRecord: Codable, Sendable {
    /// 64 lower-case hex digits.
    public var id: String
    public var name: String
    /// The image reference the user gave (`busybox`, `model-server:latest`) or `--rootfs DIR`.
    public var image: String
    /// Image ID (`sha256:…`), empty for `--rootfs`.
    public var imageID: String
    /// The OCI runtime spec (`config.json`) the container runs with.
    public var spec: Spec
    public var settings: RunSettings
    public var status: ContainerStatus
    /// Seconds since the epoch.
    public var created: Double
    public var startedAt: Double?
    public var finishedAt: Double?
    /// Host PID of the container's first process while running.
    public var pid: Int32?
    /// `/proc/PID/stat` start time (clock ticks) of `pid`, so a recycled PID is never mistaken for it.
    public var pidStartTime: UInt64?
    public var monitorPID: Int32?
    public var monitorStartTime: UInt64?
    public var exitCode: Int32?
    public var oomKilled = false
    /// Workload cgroup directories, one per hierarchy, while they exist.
    public var cgroupPaths: [String] = []
    /// A message from the last failed start, shown by `inspect`.
    public var error: String?

    /// `vm` for a VM started by `skiff run --vm`, else `container`.
    public var kind: WorkloadKind { settings.vm == nil ? .container : .vm }

    /// First 12 hex digits, as `ps` prints IDs.
    public var shortID: String { String(id.prefix(12)) }
}
