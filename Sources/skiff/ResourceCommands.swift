import ArgumentParser
import Cgroups
import Containers
import LinuxSys
import OCI

#if canImport(Glibc)
    import Glibc
#endif

/// Docker's resource flags, shared by `run`, `create` and `update`.
struct ResourceOptions: ParsableArguments {
    @Option(name: .long, parsing: .unconditional, help: "Number of CPUs (cpu.max quota over a 100 ms period), e.g. 0.5.")
    var cpus: String?
    @Option(name: [.short, .customLong("cpu-shares")], help: "CPU shares, relative weight (v1 cpu.shares; converted on v2).")
    var cpuShares: String?
    @Option(name: .customLong("cpu-weight"), help: "CPU weight 1-10000 (v2 cpu.weight; converted on v1).") var cpuWeight: String?
    @Option(name: .customLong("cpuset-cpus"), help: "CPUs in which to allow execution (0-3, 0,1).") var cpusetCPUs: String?
    @Option(name: .customLong("cpuset-mems"), help: "Memory nodes in which to allow execution.") var cpusetMems: String?
    @Option(name: [.short, .long], parsing: .unconditional, help: "Memory limit (e.g. 64m, 1g).") var memory: String?
    @Option(
        name: .customLong("memory-reservation"), parsing: .unconditional,
        help: "Memory soft limit (v2 memory.low, v1 memory.soft_limit_in_bytes).")
    var memoryReservation: String?
    @Option(name: .customLong("memory-swap"), parsing: .unconditional, help: "Memory plus swap limit; -1 for unlimited swap.")
    var memorySwap: String?
    @Flag(name: .customLong("oom-kill-disable"), help: "Disable the OOM killer (cgroup v1 only).") var oomKillDisable = false
    @Option(name: .customLong("pids-limit"), parsing: .unconditional, help: "Maximum number of processes (-1 for unlimited).")
    var pidsLimit: String?
    @Option(name: .customLong("blkio-weight"), help: "Block IO weight 10-1000.") var blkioWeight: String?
    @Option(name: .customLong("device-read-bps"), help: "Limit read rate from a device (DEVICE:RATE, e.g. /dev/vda:1mb).")
    var deviceReadBps: [String] = []
    @Option(name: .customLong("device-write-bps"), help: "Limit write rate to a device (DEVICE:RATE).") var deviceWriteBps: [String] = []
    @Option(name: .customLong("device-read-iops"), help: "Limit read IO per second from a device (DEVICE:N).")
    var deviceReadIOPS: [String] = []
    @Option(name: .customLong("device-write-iops"), help: "Limit write IO per second to a device (DEVICE:N).")
    var deviceWriteIOPS: [String] = []
    @Option(name: .long, help: "Huge page limit (PAGESIZE:LIMIT, e.g. 2MB:64m).") var hugetlb: [String] = []
    @Option(
        name: .customLong("cpu-ratio"),
        help: "Reserve this share of the host's allocatable CPUs, 0 < R <= 1 (cpu.max and cpu.weight follow; see skiff top).")
    var cpuRatio: String?
    @Option(
        name: .customLong("memory-ratio"),
        help: "Reserve this share of the host's allocatable memory, 0 < R <= 1 (memory.max follows).")
    var memoryRatio: String?
    @Option(name: .customLong("ratio"), help: "Both --cpu-ratio and --memory-ratio.") var ratio: String?

    var flags: ResourceFlags {
        var f = ResourceFlags()
        f.cpus = cpus
        f.cpuShares = cpuShares
        f.cpuWeight = cpuWeight
        f.cpusetCPUs = cpusetCPUs
        f.cpusetMems = cpusetMems
        f.memory = memory
        f.memoryReservation = memoryReservation
        f.memorySwap = memorySwap
        f.oomKillDisable = oomKillDisable
        f.pidsLimit = pidsLimit
        f.blkioWeight = blkioWeight
        f.deviceReadBps = deviceReadBps
        f.deviceWriteBps = deviceWriteBps
        f.deviceReadIOPS = deviceReadIOPS
        f.deviceWriteIOPS = deviceWriteIOPS
        f.hugetlb = hugetlb
        f.cpuRatio = cpuRatio
        f.memoryRatio = memoryRatio
        f.ratio = ratio
        return f
    }
}

struct Update: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "update", abstract: "Change the resource limits of containers (at once when running).",
        discussion: """
            Examples:
              skiff update --cpus 1 spinner
              skiff update --memory 256m --memory-swap 512m ms
              skiff update --ratio 0.5 ms          (resize a reserved share; a VM's cgroup share)
            """)
    @OptionGroup var global: GlobalOptions
    @OptionGroup var resources: ResourceOptions
    @Argument(help: "Containers.") var containers: [String]

    func run() throws {
        try eachContainer(global, containers) { try $0.update($1, resources.flags) }
    }
}

struct Pause: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pause", abstract: "Freeze every process of running containers.",
        discussion: "Example:\n  skiff pause ms; skiff unpause ms")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Containers.") var containers: [String]

    func run() throws {
        try eachContainer(global, containers) { try $0.pause($1) }
    }
}

struct Unpause: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unpause", abstract: "Thaw paused containers.", discussion: "Example:\n  skiff unpause ms")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Containers.") var containers: [String]

    func run() throws {
        try eachContainer(global, containers) { try $0.unpause($1) }
    }
}
