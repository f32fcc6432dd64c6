import Allocator
import ArgumentParser
import Containers
import LinuxSys
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Flags shared by `run` and `create` (Docker's names).
struct ContainerOptions: ParsableArguments {
    @Option(name: .long, help: "Assign a name to the container.") var name: String?
    @Flag(name: [.short, .long], help: "Keep STDIN open.") var interactive = false
    @Flag(name: [.short, .long], help: "Allocate a pseudo-TTY.") var tty = false
    @Option(name: [.short, .customLong("env")], help: "Set an environment variable (KEY=VALUE, or KEY to pass the caller's).")
    var env: [String] = []
    @Option(name: .customLong("env-file"), help: "Read environment variables from a file.") var envFile: [String] = []
    @Option(name: [.short, .long], help: "Working directory inside the container.") var workdir: String?
    @Option(name: [.short, .long], help: "Username or UID (format: <name|uid>[:<group|gid>]).") var user: String?
    @Option(name: .long, help: "Container host name.") var hostname: String?
    @Option(name: .long, help: "Overwrite the image's ENTRYPOINT.") var entrypoint: String?
    @Option(name: [.short, .long], help: "Bind mount a host path (HOST:CONTAINER[:ro|rw]); a missing host directory is created.")
    var volume: [String] = []
    @Option(name: .long, help: "Mount a tmpfs (PATH[:options]).") var tmpfs: [String] = []
    @Flag(name: .customLong("read-only"), help: "Mount the container's root filesystem read-only.") var readOnly = false
    @Option(name: .long, help: "Network: none (own namespace, loopback only) or host.") var network = "none"
    @Flag(name: .long, help: "Run a minimal init as PID 1 that forwards signals and reaps zombies.") var `init` = false
    @Option(name: .customLong("cgroup-parent"), help: "Parent cgroup for the container.") var cgroupParent: String?
    @Option(name: .long, help: "Use an unpacked root filesystem directory instead of an image.") var rootfs: String?
    @Option(name: .customLong("cap-add"), help: "Add a Linux capability (NET_ADMIN, CAP_SYS_PTRACE, … or ALL).")
    var capAdd: [String] = []
    @Option(name: .customLong("cap-drop"), help: "Drop a Linux capability (or ALL).") var capDrop: [String] = []
    @Flag(name: .long, help: "Give the container every capability, no seccomp filter and unmasked /proc and /sys.")
    var privileged = false
    @Option(
        name: .customLong("security-opt"),
        help: "Security option: no-new-privileges[=true|false], seccomp=PROFILE.json, seccomp=unconfined.")
    var securityOpt: [String] = []
    @Option(
        name: .long,
        help: """
            User namespace: host (the default) or auto[:size=N]: the container's root is an unprivileged host uid \
            from a free block of N (65536) ids of the user skiff in /etc/subuid and /etc/subgid.
            """)
    var userns: String?
    @OptionGroup(title: "Resource limits") var limits: ResourceOptions
    @Option(name: .long, help: "Set a ulimit: NAME=SOFT[:HARD] (nofile, nproc, core, stack, …; -1 for unlimited).")
    var ulimit: [String] = []
    @Option(
        name: .customLong("oom-score-adj"), parsing: .unconditional, help: "Tune the OOM killer's preference (-1000 to 1000).")
    var oomScoreAdj: Int?
    @Option(
        name: .long,
        help: "Set a namespaced kernel parameter KEY=VALUE: kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*, net.*.")
    var sysctl: [String] = []

    func request(imageAndCommand: [String], autoRemove: Bool) throws -> CreateRequest {
        var req = CreateRequest()
        var rest = imageAndCommand
        if rootfs == nil {
            guard !rest.isEmpty else { throw SkiffError("no image given: skiff run [OPTIONS] IMAGE [COMMAND [ARG...]]") }
            req.image = rest.removeFirst()
        }
        req.rootfs = rootfs
        req.command = rest
        req.name = name
        req.interactive = interactive
        req.tty = tty
        req.env = env
        req.envFiles = envFile
        req.workdir = workdir
        req.user = user
        req.hostname = hostname
        req.entrypoint = entrypoint
        req.volumes = volume
        req.tmpfs = tmpfs
        req.readOnly = readOnly
        req.network = network
        req.initProcess = `init`
        req.autoRemove = autoRemove
        req.cgroupParent = cgroupParent
        req.resources = limits.flags
        req.capAdd = capAdd
        req.capDrop = capDrop
        req.privileged = privileged
        req.securityOpts = securityOpt
        req.ulimits = ulimit
        req.oomScoreAdj = oomScoreAdj
        req.sysctls = sysctl
        req.userns = userns
        return req
    }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Create and run a new container from an image.",
        discussion: """
            Examples:
              skiff run --rm busybox echo hello
              skiff run --rm -it busybox sh
              skiff run -d --name web --network host -e PORT=9000 model-server
              skiff run --rm -v /srv/data:/data:ro -w /data busybox ls
              skiff run --rm --rootfs ./rootfs /bin/sh -c 'echo hi'
              skiff run -d --memory 256m --cpus 0.5 --pids-limit 100 model-server
              skiff run -d --ratio 0.25 model-server      (reserve a quarter of the host)
              skiff run --rm --userns=auto busybox id     (root inside, an unprivileged uid on the host)
              skiff run --vm --kernel vmlinuz --initrd initrd.img --disk root.img --disk seed.img:ro
            """)
    @OptionGroup var global: GlobalOptions
    @OptionGroup var options: ContainerOptions
    @Flag(name: [.short, .long], help: "Run in the background and print the container ID.") var detach = false
    @Flag(name: .customLong("rm"), help: "Remove the container when it exits.") var autoRemove = false
    @Flag(name: .customLong("vm"), help: "Boot a VM on /dev/kvm from --kernel instead of running a container.")
    var vm = false
    @Option(name: .customLong("kernel"), help: "VM kernel: an ELF64 vmlinux or a bzImage (with --vm).") var kernel: String?
    @Option(name: .customLong("initrd"), help: "VM initrd (with --vm).") var initrd: String?
    @Option(name: .customLong("cmdline"), help: "VM kernel command line (with --vm; default: \(VMRequest.defaultCommandLine)).")
    var cmdline: String?
    @Option(
        name: .customLong("disk"),
        help: "VM disk: a raw image file, PATH or PATH:ro, served as virtio-blk (with --vm; repeatable: vda, vdb, …).")
    var disk: [String] = []
    @Argument(parsing: .captureForPassthrough, help: "IMAGE [COMMAND [ARG...]]") var imageAndCommand: [String] = []

    /// The container options given with `--vm`, which a VM cannot honour (Docker's names), in
    /// the order `run --help` lists them; empty when there are none.
    func containerOnlyFlags() -> [String] {
        let o = options
        let l = options.limits
        let given: [(String, Bool)] = [
            ("-e/--env", !o.env.isEmpty), ("--env-file", !o.envFile.isEmpty), ("-w/--workdir", o.workdir != nil),
            ("-u/--user", o.user != nil), ("--hostname", o.hostname != nil), ("--entrypoint", o.entrypoint != nil),
            ("-v/--volume", !o.volume.isEmpty), ("--tmpfs", !o.tmpfs.isEmpty), ("--read-only", o.readOnly),
            ("--network", o.network != "none"), ("--init", o.`init`),
            ("--rootfs", o.rootfs != nil), ("--cap-add", !o.capAdd.isEmpty), ("--cap-drop", !o.capDrop.isEmpty),
            ("--privileged", o.privileged), ("--security-opt", !o.securityOpt.isEmpty),
            ("--cpu-shares", l.cpuShares != nil), ("--cpu-weight", l.cpuWeight != nil),
            ("--cpuset-cpus", l.cpusetCPUs != nil), ("--cpuset-mems", l.cpusetMems != nil),
            ("--memory-reservation", l.memoryReservation != nil), ("--memory-swap", l.memorySwap != nil),
            ("--oom-kill-disable", l.oomKillDisable), ("--pids-limit", l.pidsLimit != nil),
            ("--blkio-weight", l.blkioWeight != nil), ("--device-read-bps", !l.deviceReadBps.isEmpty),
            ("--device-write-bps", !l.deviceWriteBps.isEmpty), ("--device-read-iops", !l.deviceReadIOPS.isEmpty),
            ("--device-write-iops", !l.deviceWriteIOPS.isEmpty), ("--hugetlb", !l.hugetlb.isEmpty),
            ("--ulimit", !o.ulimit.isEmpty), ("--oom-score-adj", o.oomScoreAdj != nil), ("--sysctl", !o.sysctl.isEmpty),
        ]
        return given.filter(\.1).map(\.0)
    }

    /// `--vm`: `--cpus` is the vCPU count, `--memory` the guest RAM (default 128 MiB).
    func vmRequest() throws -> VMRequest {
        guard imageAndCommand.isEmpty else {
            throw SkiffError("skiff run --vm takes no IMAGE or COMMAND (got \(imageAndCommand.joined(separator: " "))); give --kernel PATH")
        }
        return try RunVM.request(
            kernel: kernel, initrd: initrd, cmdline: cmdline, disks: disk, limits: options.limits.flags,
            cgroupParent: options.cgroupParent, name: options.name, autoRemove: autoRemove, interactive: options.interactive)
    }

    func run() throws {
        try helpIfAsked(imageAndCommand, Self.self)
        if vm || kernel != nil || !disk.isEmpty {
            try execute {
                guard vm else { throw SkiffError("--kernel and --disk need --vm") }
                if options.userns != nil {
                    throw SkiffError("--userns applies to containers; a VM's guest has its own kernel and ids")
                }
                if let flag = containerOnlyFlags().first {
                    throw SkiffError(
                        "\(flag) applies to containers, not to a VM (a VM takes --kernel, --initrd, --cmdline, --disk, --cpus, --memory, the ratios, --cgroup-parent, --name, -i, -d, --rm)")
                }
                try RunVM.start(try vmRequest(), engine: global.engine(), detach: detach)
            }
            return
        }
        try execute {
            let request = try options.request(imageAndCommand: imageAndCommand, autoRemove: autoRemove)
            try Self.runContainer(request, engine: global.engine(), detach: detach)
        }
    }

    /// Runs a container: in the foreground (exits with the workload's code) or, with `detach`,
    /// under a monitor (prints the ID). Shared by `Run` and `RunBasic`.
    static func runContainer(_ request: CreateRequest, engine: Engine, detach: Bool) throws {
        try requireTerminal(tty: request.tty, interactive: request.interactive)
        // A container gets a copy of skiff, which must run from the read-only image (see
        // main.swift): in the foreground only the first process, spawned from the image,
        // unless the start falls back to forking this process (runNew calls `protect` then).
        let protect = { try SelfExe.reexecProtected(CommandLine.arguments, scratch: SelfExe.scratchDirectory) }
        if !detach { throw ExitCode(try engine.runNew(request, protect: protect)) }
        try protect()
        let record = try engine.create(request)
        engine.removeOnRefusal = true
        try engine.startDetached(record)
        print(record.id)
    }
}

/// `skiff run [OPTIONS] IMAGE [COMMAND…]` parsed with only the options most container runs use.
/// As with `RunVM`, building the seventy options of `Run` is most of what parsing costs a start
/// (about 1 ms of the 2-3 ms measured); main.swift tries this command first and falls back to
/// `Run` when it does not suffice: an option not listed here or a typo (both end up as the first
/// word of the passthrough, since they come before the image), `--help`, no image, `--vm`. `Run`
/// then gives the same result and messages as always. Not a subcommand of its own.
struct RunBasic: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run")
    @OptionGroup var global: GlobalOptions
    @Option(name: .long) var name: String?
    @Flag(name: [.short, .long]) var interactive = false
    @Flag(name: [.short, .long]) var tty = false
    @Flag(name: [.short, .long]) var detach = false
    @Flag(name: .customLong("rm")) var autoRemove = false
    @Option(name: [.short, .customLong("env")]) var env: [String] = []
    @Option(name: [.short, .long]) var workdir: String?
    @Option(name: [.short, .long]) var user: String?
    @Option(name: .long) var hostname: String?
    @Option(name: .long) var entrypoint: String?
    @Option(name: [.short, .long]) var volume: [String] = []
    @Option(name: .long) var network = "none"
    @Argument(parsing: .captureForPassthrough) var imageAndCommand: [String] = []

    /// Whether `Run` must parse these arguments instead: the passthrough does not start with an
    /// image (an unknown option, `--help`, nothing at all).
    var needsFullParse: Bool {
        guard let first = imageAndCommand.first else { return true }
        return first.hasPrefix("-")
    }

    func run() throws {
        var req = CreateRequest()
        req.image = imageAndCommand.first
        req.command = Array(imageAndCommand.dropFirst())
        req.name = name
        req.interactive = interactive
        req.tty = tty
        req.env = env
        req.workdir = workdir
        req.user = user
        req.hostname = hostname
        req.entrypoint = entrypoint
        req.volumes = volume
        req.network = network
        req.autoRemove = autoRemove
        try execute { try Run.runContainer(req, engine: global.engine(), detach: detach) }
    }
}

/// `skiff run --vm …` parsed with only the options a VM takes. `run` has some seventy options, and
/// building all of them is most of the 2-3 ms that argument parsing costs a start; main.swift tries
/// this command first when `--vm` is given and falls back to `Run` for anything it does not accept
/// (a container option, an IMAGE, `--help`), which then gives the same result and messages as always.
/// Not a subcommand of its own: users only ever type `run`.
struct RunVM: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run")
    @OptionGroup var global: GlobalOptions
    @Flag(name: .customLong("vm")) var vm = false
    @Option(name: .customLong("kernel")) var kernel: String?
    @Option(name: .customLong("initrd")) var initrd: String?
    @Option(name: .customLong("cmdline")) var cmdline: String?
    @Option(name: .customLong("disk")) var disk: [String] = []
    @Option(name: .long) var name: String?
    @Flag(name: [.short, .long]) var interactive = false
    @Flag(name: [.short, .long]) var detach = false
    @Flag(name: .customLong("rm")) var autoRemove = false
    @Option(name: .long, parsing: .unconditional) var cpus: String?
    @Option(name: [.short, .long], parsing: .unconditional) var memory: String?
    @Option(name: .customLong("cpu-ratio")) var cpuRatio: String?
    @Option(name: .customLong("memory-ratio")) var memoryRatio: String?
    @Option(name: .customLong("ratio")) var ratio: String?

    func run() throws {
        var limits = ResourceFlags()
        limits.cpus = cpus
        limits.memory = memory
        limits.cpuRatio = cpuRatio
        limits.memoryRatio = memoryRatio
        limits.ratio = ratio
        try execute {
            let req = try Self.request(
                kernel: kernel, initrd: initrd, cmdline: cmdline, disks: disk, limits: limits, name: name,
                autoRemove: autoRemove, interactive: interactive)
            try Self.start(req, engine: global.engine(), detach: detach)
        }
    }

    /// The request `run --vm` makes of these options (shared with `Run`).
    static func request(
        kernel: String?, initrd: String?, cmdline: String?, disks: [String], limits: ResourceFlags,
        cgroupParent: String? = nil, name: String?, autoRemove: Bool, interactive: Bool
    ) throws -> VMRequest {
        var req = VMRequest()
        req.kernel = kernel
        req.initrd = initrd
        if let cmdline { req.commandLine = cmdline }
        if let cpus = limits.cpus {
            guard let n = Int(cpus), n >= 1 else { throw SkiffError("--cpus \(cpus): with --vm, a whole number of vCPUs (1, 2, …)") }
            req.vcpus = n
        }
        if let memory = limits.memory {
            req.memoryBytes = UInt64(try ResourceFlags.bytes(memory, flag: "--memory", minimum: 1 << 20))
        }
        (req.cpuRatio, req.memoryRatio) = try limits.ratios(vm: true)
        req.cgroupParent = cgroupParent
        req.name = name
        req.autoRemove = autoRemove
        req.disks = disks
        req.interactive = interactive
        return req
    }

    /// Records the VM and runs it: in the foreground (this process is the VMM; exits with the
    /// guest's result) or, with `detach`, under a monitor (prints the ID).
    static func start(_ req: VMRequest, engine: Engine, detach: Bool) throws {
        guard detach else { throw ExitCode(try engine.runVMForeground(req)) }
        let record = try engine.createVM(req)
        engine.removeOnRefusal = true
        try engine.startDetached(record)
        print(record.id)
    }
}

struct Create: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create a container without starting it (start it with skiff start).",
        discussion: "Example:\n  skiff create --name job busybox sh -c 'date'; skiff start job")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var options: ContainerOptions
    @Flag(name: .customLong("rm"), help: "Remove the container when it exits.") var autoRemove = false
    @Argument(parsing: .captureForPassthrough, help: "IMAGE [COMMAND [ARG...]]") var imageAndCommand: [String] = []

    func run() throws {
        try helpIfAsked(imageAndCommand, Self.self)
        try execute {
            let record = try global.engine().create(try options.request(imageAndCommand: imageAndCommand, autoRemove: autoRemove))
            print(record.id)
        }
    }
}

struct Start: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "start",
        abstract: "Start one or more created or exited containers (in the background).",
        discussion: "Example:\n  skiff start ms")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Containers (name or ID prefix).") var containers: [String]

    func run() throws {
        try execute {
            let engine = global.engine()
            try forEach(containers) { ref in
                let r = try engine.find(ref)
                if r.status != .running && r.status != .paused { try engine.startDetached(r) }
                print(ref)
            }
        }
    }
}

struct Exec: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec",
        abstract: "Run a command in a running container.",
        discussion: """
            Examples:
              skiff exec ms python3 -c 'import os; print(os.getpid())'
              skiff exec -it ms sh
              skiff exec -u 1000 -w /tmp -e DEBUG=1 ms env
            """)
    @OptionGroup var global: GlobalOptions
    @Flag(name: [.short, .long], help: "Keep STDIN open.") var interactive = false
    @Flag(name: [.short, .long], help: "Allocate a pseudo-TTY.") var tty = false
    @Option(name: [.short, .customLong("env")], help: "Set an environment variable.") var env: [String] = []
    @Option(name: [.short, .long], help: "Working directory inside the container.") var workdir: String?
    @Option(name: [.short, .long], help: "Username or UID (format: <name|uid>[:<group|gid>]).") var user: String?
    @Argument(parsing: .captureForPassthrough, help: "CONTAINER COMMAND [ARG...]") var containerAndCommand: [String] = []

    func run() throws {
        try helpIfAsked(containerAndCommand, Self.self)
        try execute {
            try requireTerminal(tty: tty, interactive: interactive)
            guard containerAndCommand.count >= 2 else {
                throw SkiffError("usage: skiff exec [OPTIONS] CONTAINER COMMAND [ARG...]")
            }
            var req = ExecRequest(command: Array(containerAndCommand.dropFirst()))
            req.env = env
            req.workdir = workdir
            req.user = user
            req.tty = tty
            req.interactive = interactive
            let code = try global.engine().exec(containerAndCommand[0], req)
            throw ExitCode(code)
        }
    }
}

/// `.captureForPassthrough` takes everything after the options, `--help` included: show the help
/// when it comes first, as `docker run --help` does, and refuse an unknown option there.
/// - Throws: `CleanExit.helpRequest`, or `ValidationError` ("unknown flag", exit 125).
func helpIfAsked(_ passthrough: [String], _ command: ParsableCommand.Type) throws {
    guard let first = passthrough.first else { return }
    if first == "--help" || first == "-h" {
        throw CleanExit.helpRequest(command)
    }
    // The passthrough starts at the first word that is not one of our options: one that still
    // looks like an option is a typo (`--memroy`), not an image or container called that.
    if first.hasPrefix("-") && first != "-" {
        throw ValidationError("unknown flag: \(first) (see skiff \(command._commandName) --help)")
    }
}

/// Docker refuses `-it` when stdin is not a terminal; so do we.
func requireTerminal(tty: Bool, interactive: Bool) throws {
    if tty && interactive && isatty(0) == 0 {
        throw SkiffError("the input device is not a TTY: drop -t (keep -i to pipe input) or run from a terminal")
    }
}

/// Runs `body` for each name, reporting a failure and going on with the rest, as docker does for
/// `stop`, `kill`, `start`, `rm`; fails (exit 1) at the end if any failed.
func forEach(_ names: [String], _ body: (String) throws -> Void) throws {
    var failures: [Error] = []
    for name in names {
        do { try body(name) } catch let e as ExitCode {
            throw e
        } catch {
            printError(failureMessage(error))
            failures.append(error)
        }
    }
    try exitForFailures(failures)
}

/// The text a failed `skiff VERB NAME` prints for `error`.
func failureMessage(_ error: Error) -> String {
    (error as? SkiffError)?.message ?? (error as? StartError)?.message ?? "\(error)"
}

/// Exit 1 when any name failed; 125 when one was an allocator refusal, as `run`'s are (a detached
/// start reports its text).
func exitForFailures(_ failures: [Error]) throws {
    guard !failures.isEmpty else { return }
    let refused = failures.contains { $0 is AllocatorError || failureMessage($0).hasPrefix("cannot admit ") }
    throw ExitCode(refused ? 125 : 1)
}

func eachContainer(_ global: GlobalOptions, _ names: [String], _ action: (Engine, String) throws -> Void) throws {
    try execute {
        let engine = global.engine()
        try forEach(names) { c in
            try action(engine, c)
            print(c)
        }
    }
}

/// `skiff stop NAME...`: `eachContainer`, with the containers handled at once, as docker stop
/// does: each on a thread of its own with its own engine (state database connection), so that
/// N containers that ignore their stop signal take one timeout, not N. Names and errors are
/// printed once all are done, in the order the names were given (docker stop's order).
func eachContainerAtOnce(
    _ global: GlobalOptions, _ names: [String], _ action: @escaping @Sendable (Engine, String) throws -> Void
) throws {
    guard names.count > 1 else { return try eachContainer(global, names, action) }
    try execute {
        _ = global.engine()  // logging is set up once, before the threads
        let root = global.root
        let failures = Mutex<[Int: Error]>([:])
        allAtOnce(
            names.enumerated().map { (i, name) in
                {
                    do { try action(GlobalOptions.engine(root: root), name) } catch { failures.withLock { $0[i] = error } }
                }
            })
        let failed = failures.withLock { $0 }
        for (i, name) in names.enumerated() {
            if let error = failed[i] { printError(failureMessage(error)) } else { print(name) }
        }
        try exitForFailures(failed.sorted { $0.key < $1.key }.map(\.value))
    }
}
