/// What `skiff run` / `skiff create` asks for: Docker's flags, before they meet the image config.
public struct CreateRequest: Sendable {
    /// The container ID to use (64 hex digits); nil draws one. `runNew` sets it to start the first
    /// process before the record exists (`EarlyInit`).
    public var id: String?
    /// Image reference (`busybox`, `name:tag`, ID prefix); nil with `rootfs`.
    public var image: String?
    /// `--rootfs DIR`: an unpacked root filesystem instead of an image.
    public var rootfs: String?
    public var name: String?
    /// COMMAND [ARG...] after the image; empty means the image's Cmd.
    public var command: [String] = []
    /// `--entrypoint`; "" clears the image's entrypoint.
    public var entrypoint: String?
    /// `-e KEY=VALUE` or `-e KEY` (taken from the caller's environment when set there).
    public var env: [String] = []
    /// `--env-file` paths, read in order before `-e`.
    public var envFiles: [String] = []
    public var workdir: String?
    /// `-u name|uid[:gid]`.
    public var user: String?
    public var hostname: String?
    /// `-v HOST:CTR[:ro|rw]`.
    public var volumes: [String] = []
    /// `--tmpfs PATH[:options]`.
    public var tmpfs: [String] = []
    public var readOnly = false
    /// `none` or `host`.
    public var network = "none"
    public var initProcess = false
    public var autoRemove = false
    public var tty = false
    public var interactive = false
    public var cgroupParent: String?
    /// `--ulimit NAME=SOFT[:HARD]` (become `process.rlimits`).
    public var ulimits: [String] = []
    /// `--oom-score-adj` (-1000…1000).
    public var oomScoreAdj: Int?
    /// `--sysctl KEY=VALUE`, namespaced keys only (become `linux.sysctl`).
    public var sysctls: [String] = []
    /// `--memory`, `--cpus`, `--pids-limit`, … (become `linux.resources`).
    public var resources = ResourceFlags()
    /// `--cap-add`, `--cap-drop`: capability names (with or without `CAP_`, any case) or `ALL`.
    public var capAdd: [String] = []
    public var capDrop: [String] = []
    /// `--privileged`: every capability, no seccomp filter, no masked or read-only kernel paths.
    public var privileged = false
    /// `--security-opt`: `no-new-privileges[=true|false]`, `seccomp=PROFILE.json|unconfined`.
    public var securityOpts: [String] = []
    /// `--userns`: `host` (or nil) or `auto[:size=N]` (see `UserNamespaceMode`).
    public var userns: String?

    public init() {}
}
