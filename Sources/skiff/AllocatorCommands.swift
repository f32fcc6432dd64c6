import Allocator
import ArgumentParser
import Containers
import LinuxSys
import OCI

#if canImport(Glibc)
    import Glibc
#endif

/// `1.9`, `0.475`: CPUs with up to three decimals.
func cpuCount(_ v: Double) -> String {
    let r = (v * 1000).rounded() / 1000
    return r == r.rounded() ? String(Int(r)) : String(r)
}

func ratioText(_ v: Double?) -> String { v.map { String(($0 * 10_000).rounded() / 10_000) } ?? "-" }

struct Top: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "top",
        abstract: "What each running workload was given by the allocator, what it used, and where its time went.",
        discussion: """
            Per workload: kind, ratio (of the allocatable host; - is best-effort), allocated CPUs and
            memory, CPUs used over the sampling interval, memory used, and the schedule-time breakdown
            T_schedule = T_ready (create to running) + T_wait (throttled by cpu.max + waiting on a run
            queue) + T_service (CPU time).
            Examples:
              skiff top
              skiff top --interval 5 ms vm1
              skiff top --format json | jq '.UsedCPUs'
            """)
    @OptionGroup var global: GlobalOptions
    @Option(name: .long, help: "Sampling interval for CPU use, seconds.") var interval = 1.0
    @Option(name: .long, help: "Output format: table or json (one object per line).") var format = "table"
    @Argument(help: "Workloads (default: all running).") var workloads: [String] = []

    func run() throws {
        try execute {
            guard format == "table" || format == "json" else {
                throw SkiffError("unknown --format \"\(format)\": use table or json")
            }
            guard interval >= 0, interval <= 3600 else {
                throw SkiffError("invalid --interval \(interval): give 0 to 3600 seconds")
            }
            let engine = global.engine()
            let rows = try engine.top(workloads, interval: interval)
            if format == "json" {
                for row in rows { print(try OCIJSON.string(row)) }
                return
            }
            var t = Table([
                "ID", "NAME", "KIND", "RATIO cpu/mem", "ALLOC CPU", "ALLOC MEM", "USED CPU", "MEM USAGE", "READY",
                "WAIT",
                "SERVICE", "SCHEDULE",
            ])
            for r in rows {
                t.add([
                    r.ID, r.Name, r.Kind, ratioText(r.CPURatio) + " / " + ratioText(r.MemoryRatio),
                    r.AllocatedCPUs.map(cpuCount) ?? "-", r.AllocatedMemoryBytes.map(binarySize) ?? "-",
                    cpuCount(r.UsedCPUs), r.UsedMemoryBytes.map(binarySize) ?? "-", r.ReadySeconds.map(seconds) ?? "-",
                    seconds(r.WaitSeconds), seconds(r.ServiceSeconds), seconds(r.ScheduleSeconds),
                ])
            }
            print(t.render())
        }
    }

    func seconds(_ v: Double) -> String {
        v < 1 ? String(Int((v * 1000).rounded())) + "ms" : String((v * 100).rounded() / 100) + "s"
    }
}

struct Reserve: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reserve",
        abstract: "Show or set the host reserve: CPU and memory the allocator never gives to workloads.",
        discussion: """
            Ratios are ratios of what the reserve leaves (allocatable = usable − reserve). The default
            keeps 5 % of the CPUs (at least 0.1) and 10 % of memory (256 MiB to 2 GiB). It can change
            only while no workload holds a reservation.
            Examples:
              skiff reserve
              skiff reserve --cpus 0.5 --memory 1g
              skiff reserve --default
            """)
    @OptionGroup var global: GlobalOptions
    @Option(name: .long, help: "CPUs to keep for the host (fractional).") var cpus: String?
    @Option(name: .long, help: "Memory to keep for the host (e.g. 512m, 2g).") var memory: String?
    @Flag(name: .customLong("default"), help: "Go back to the default reserve.") var reset = false

    func run() throws {
        try execute {
            let engine = global.engine()
            let ledger = try engine.ledger()
            let capacity = try ledger.capacity(detected: HostCapacity.detect())
            if reset {
                guard cpus == nil && memory == nil else { throw SkiffError("--default takes no --cpus or --memory") }
                try ledger.setReserve(nil, capacity: capacity)
            } else if cpus != nil || memory != nil {
                let current = try ledger.reserve(for: capacity)
                var next = current
                if let cpus {
                    guard let c = Double(cpus), c.isFinite, c >= 0 else {
                        throw SkiffError("invalid --cpus \"\(cpus)\": give a number of CPUs ≥ 0, e.g. 0.5")
                    }
                    next.cpus = c
                }
                if let memory { next.memoryBytes = UInt64(try ResourceFlags.bytes(memory, flag: "--memory")) }
                try ledger.setReserve(next, capacity: capacity)
            }
            let a = try engine.hostAllocation()
            print(
                "Reserve:      \(cpuCount(a.reserve.cpus)) CPUs, \(binarySize(a.reserve.memoryBytes))\(try ledger.storedReserve() == nil ? " (default)" : "")"
            )
            print(
                "Allocatable:  \(cpuCount(a.allocatable.cpus)) of \(cpuCount(a.capacity.cpus)) CPUs, \(binarySize(a.allocatable.memoryBytes)) of \(binarySize(a.capacity.memoryBytes))"
            )
        }
    }
}
