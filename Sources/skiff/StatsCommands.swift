import Allocator
import ArgumentParser
import Cgroups
import Containers
import LinuxSys
import OCI

#if canImport(Glibc)
    import Glibc
#endif

/// Binary sizes as `docker stats` prints them: 12.5MiB, 1.2GiB.
func binarySize(_ bytes: UInt64) -> String { ByteCount.binary(bytes, separator: "") }

func percent(_ v: Double) -> String { String((v * 100).rounded() / 100) + "%" }

struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats", abstract: "Live resource usage of running containers, from their cgroups.",
        discussion: """
            CPU % is measured over one second between two reads of the cgroup's CPU time.
            Examples:
              skiff stats --no-stream
              skiff stats --no-stream --format json ms | jq .MemUsageBytes
            """)
    @OptionGroup var global: GlobalOptions
    @Flag(name: .customLong("no-stream"), help: "Print one sample and exit.") var noStream = false
    @Option(name: .long, help: "Output format: table or json (one object per line).") var format = "table"
    @Argument(help: "Containers (default: all running).") var containers: [String] = []

    /// One container's line, with raw numbers for scripts (`--format json`).
    struct Row: Codable {
        var ID: String
        var Name: String
        var CPUPerc: Double
        var CPUUsageMicroseconds: UInt64
        var CPUThrottledMicroseconds: UInt64?
        var MemUsageBytes: UInt64
        var MemLimitBytes: UInt64
        var MemPeakBytes: UInt64?
        var MemPerc: Double
        var OOMKills: UInt64?
        var PIDs: UInt64?
        var PIDsLimit: UInt64?
        var BlockReadBytes: UInt64?
        var BlockWriteBytes: UInt64?
        var CPUPressureSomeAvg10: Double?
        var MemoryPressureSomeAvg10: Double?
        var MemoryPressureFullAvg10: Double?
        var IOPressureSomeAvg10: Double?
    }

    func run() throws {
        try execute {
            guard format == "table" || format == "json" else { throw SkiffError("unknown --format \"\(format)\": use table or json") }
            let engine = global.engine()
            let hostMemory = HostCapacity.usableMemory()
            repeat {
                var seen = Set<String>()
                let records = try (containers.isEmpty
                    ? engine.list().filter { $0.status == .running || $0.status == .paused }
                    : containers.map { try engine.find($0) }).filter { seen.insert($0.id).inserted }
                if noStream, let stopped = records.first(where: { $0.status != .running && $0.status != .paused }) {
                    throw SkiffError("container \(stopped.name) is not running (status \(stopped.status.rawValue)); stats need a running container")
                }
                var first: [String: (CgroupStats, Double)] = [:]
                for r in records { if let s = try? engine.stats(r) { first[r.id] = (s, Clock.monotonic()) } }
                usleep(1_000_000)
                var rows: [Row] = []
                for r in records {
                    // A container that stopped between the two reads just drops out of the table.
                    guard let (s0, t0) = first[r.id], let s = try? engine.stats(r) else { continue }
                    let elapsed = (Clock.monotonic() - t0) * 1_000_000
                    let cpu = elapsed > 0 ? Double(s.cpuUsageMicroseconds &- s0.cpuUsageMicroseconds) / elapsed * 100 : 0
                    let limit = s.memoryLimit.map { min($0, hostMemory) } ?? hostMemory
                    let used = s.memoryCurrent ?? 0
                    rows.append(
                        Row(
                            ID: r.shortID, Name: r.name, CPUPerc: (cpu * 100).rounded() / 100,
                            CPUUsageMicroseconds: s.cpuUsageMicroseconds, CPUThrottledMicroseconds: s.cpuThrottledMicroseconds,
                            MemUsageBytes: used, MemLimitBytes: limit, MemPeakBytes: s.memoryPeak,
                            MemPerc: limit > 0 ? (Double(used) / Double(limit) * 10_000).rounded() / 100 : 0,
                            OOMKills: s.oomKills, PIDs: s.pidsCurrent, PIDsLimit: s.pidsLimit,
                            BlockReadBytes: s.ioReadBytes, BlockWriteBytes: s.ioWriteBytes,
                            CPUPressureSomeAvg10: s.cpuPressureSomeAvg10, MemoryPressureSomeAvg10: s.memoryPressureSomeAvg10,
                            MemoryPressureFullAvg10: s.memoryPressureFullAvg10, IOPressureSomeAvg10: s.ioPressureSomeAvg10))
                }
                if format == "json" {
                    for row in rows { print(try OCIJSON.string(row)) }
                } else {
                    if !noStream && isatty(1) != 0 { print("\u{1B}[2J\u{1B}[H", terminator: "") }
                    var t = Table(["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "PIDS", "BLOCK I/O", "THROTTLED", "PSI cpu/mem"])
                    for row in rows {
                        let psi = [row.CPUPressureSomeAvg10, row.MemoryPressureSomeAvg10].map { $0.map { String($0) } ?? "-" }
                        t.add([
                            row.ID, row.Name, percent(row.CPUPerc),
                            binarySize(row.MemUsageBytes) + " / " + binarySize(row.MemLimitBytes), percent(row.MemPerc),
                            row.PIDs.map(String.init) ?? "-",
                            (row.BlockReadBytes.map { humanSize(Int64($0)) } ?? "-") + " / "
                                + (row.BlockWriteBytes.map { humanSize(Int64($0)) } ?? "-"),
                            row.CPUThrottledMicroseconds.map { String(Double($0 / 1000) / 1000) + "s" } ?? "-",
                            psi.joined(separator: " / "),
                        ])
                    }
                    print(t.render())
                }
                fflush(nil)
            } while !noStream
        }
    }
}

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info", abstract: "Host facts: cgroup mode and controllers, usable CPUs and memory, state.",
        discussion: "Examples:\n  skiff info\n  skiff info --format json | jq .Cgroup.Mode")
    @OptionGroup var global: GlobalOptions
    @Option(name: .long, help: "Output format: text or json.") var format = "text"

    struct Document: Codable {
        struct CgroupInfo: Codable {
            var Mode: String
            var Controllers: [String]
            var Hierarchies: [String]
        }
        var Kernel: String
        var CPUs: Int
        var MemoryBytes: UInt64
        var Cgroup: CgroupInfo
        /// Per resource: usable total, host reserve, allocatable, reserved by workloads, free.
        struct AllocationInfo: Codable {
            var TotalCPUs: Double
            var ReservedForHostCPUs: Double
            var AllocatableCPUs: Double
            var AllocatedCPUs: Double
            var FreeCPUs: Double
            var TotalMemoryBytes: UInt64
            var ReservedForHostMemoryBytes: UInt64
            var AllocatableMemoryBytes: UInt64
            var AllocatedMemoryBytes: UInt64
            var FreeMemoryBytes: UInt64
            var Reservations: Int
        }
        var Allocation: AllocationInfo
        var StateRoot: String
        var Containers: Int
        var Running: Int
        var Images: Int
    }

    func run() throws {
        try execute {
            guard format == "text" || format == "json" else { throw SkiffError("unknown --format \"\(format)\": use text or json") }
            let engine = global.engine()
            let layout = try CgroupLayout.detect()
            var u = utsname()
            uname(&u)
            let release = withUnsafeBytes(of: u.release) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            let records = try engine.list()
            let a = try engine.hostAllocation()
            let cpuUsed = (a.reserved.cpuRatio * a.allocatable.cpus * 1000).rounded() / 1000
            let memUsed = UInt64(a.reserved.memoryRatio * Double(a.allocatable.memoryBytes))
            let allocation = Document.AllocationInfo(
                TotalCPUs: a.capacity.cpus, ReservedForHostCPUs: a.reserve.cpus, AllocatableCPUs: a.allocatable.cpus,
                AllocatedCPUs: cpuUsed, FreeCPUs: max(0, ((a.allocatable.cpus - cpuUsed) * 1000).rounded() / 1000),
                TotalMemoryBytes: a.capacity.memoryBytes, ReservedForHostMemoryBytes: a.reserve.memoryBytes,
                AllocatableMemoryBytes: a.allocatable.memoryBytes, AllocatedMemoryBytes: memUsed,
                FreeMemoryBytes: a.allocatable.memoryBytes > memUsed ? a.allocatable.memoryBytes - memUsed : 0,
                Reservations: a.reservations.count)
            let doc = Document(
                Kernel: release, CPUs: HostCapacity.usableCPUs(), MemoryBytes: HostCapacity.usableMemory(),
                Cgroup: .init(
                    Mode: layout.mode.rawValue, Controllers: layout.availableControllers.sorted(),
                    Hierarchies: layout.hierarchies.map { h in
                        "\(h.mountPoint) (\(h.version.rawValue)\(h.controllers.isEmpty ? "" : ": " + h.controllers.joined(separator: ",")))"
                    }),
                Allocation: allocation, StateRoot: engine.root.path, Containers: records.count,
                Running: records.filter { $0.status == .running || $0.status == .paused }.count,
                Images: try engine.images().list().count)
            if format == "json" {
                print(try OCIJSON.string(doc, pretty: true))
                return
            }
            print("Kernel:        \(doc.Kernel)")
            print("CPUs:          \(doc.CPUs) usable")
            print("Memory:        \(binarySize(doc.MemoryBytes))")
            print("Cgroups:       \(doc.Cgroup.Mode); controllers: \(doc.Cgroup.Controllers.joined(separator: ", "))")
            for h in doc.Cgroup.Hierarchies { print("  \(h)") }
            var t = Table(["RESOURCE", "TOTAL", "HOST RESERVE", "ALLOCATABLE", "ALLOCATED", "FREE"])
            t.add([
                "cpu", cpuCount(allocation.TotalCPUs), cpuCount(allocation.ReservedForHostCPUs), cpuCount(allocation.AllocatableCPUs),
                cpuCount(allocation.AllocatedCPUs), cpuCount(allocation.FreeCPUs),
            ])
            t.add([
                "memory", binarySize(allocation.TotalMemoryBytes), binarySize(allocation.ReservedForHostMemoryBytes),
                binarySize(allocation.AllocatableMemoryBytes), binarySize(allocation.AllocatedMemoryBytes),
                binarySize(allocation.FreeMemoryBytes),
            ])
            print("Allocation:    \(allocation.Reservations) workload(s) hold reservations (skiff top shows them)")
            for line in t.render().split(separator: "\n") { print("  " + line) }
            print("State root:    \(doc.StateRoot)")
            print("Containers:    \(doc.Containers) (\(doc.Running) running)")
            print("Images:        \(doc.Images)")
        }
    }
}
