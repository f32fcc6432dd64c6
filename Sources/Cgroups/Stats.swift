import Glibc

/// A snapshot of a cgroup's usage for `skiff stats`, `inspect` and `top`. Optional fields are nil
/// where this host's hierarchies do not report them.
/// Sources: cgroup-v2.rst "Core Interface Files", "CPU/Memory/PID/IO Interface Files",
/// `Documentation/accounting/psi.rst`; cgroup-v1/cpuacct.rst, memory.rst, pids.rst,
/// blkio-controller.rst, `Documentation/scheduler/sched-bwc.rst`.
public struct CgroupStats: Codable, Sendable, Equatable {
    /// CPU time of all tasks, µs: v2 `cpu.stat` `usage_usec`, v1 `cpuacct.usage` ÷ 1000.
    public var cpuUsageMicroseconds: UInt64
    /// Time throttled by the CPU bandwidth limit, µs: v2 `cpu.stat` `throttled_usec`, v1
    /// `cpu.stat` `throttled_time` (ns) ÷ 1000.
    public var cpuThrottledMicroseconds: UInt64?
    /// Enforcement periods in which the cgroup was throttled (`cpu.stat` `nr_throttled`).
    public var cpuThrottledPeriods: UInt64?
    /// Memory in use, bytes: v2 `memory.current`, v1 `memory.usage_in_bytes`.
    public var memoryCurrent: UInt64?
    /// Memory limit, bytes: v2 `memory.max`, v1 `memory.limit_in_bytes`; nil = unlimited.
    public var memoryLimit: UInt64?
    /// Highest memory use seen, bytes: v2 `memory.peak` (Linux 5.19+), v1 `memory.max_usage_in_bytes`.
    public var memoryPeak: UInt64?
    /// Processes killed by the OOM killer: v2 `memory.events` `oom_kill`, v1 `memory.oom_control`
    /// `oom_kill` (Linux 4.13+).
    public var oomKills: UInt64?
    /// Tasks (threads) in the cgroup: `pids.current`.
    public var pidsCurrent: UInt64?
    /// `pids.max`; nil = "max".
    public var pidsLimit: UInt64?
    /// Bytes read: v2 `io.stat` `rbytes` summed over devices, v1
    /// `blkio.throttle.io_service_bytes_recursive` `Read` summed.
    public var ioReadBytes: UInt64?
    /// Bytes written: v2 `io.stat` `wbytes`, v1 `Write` lines, summed over devices.
    public var ioWriteBytes: UInt64?
    /// `cpu.pressure` "some avg10" (percent of the last 10 s some task stalled), where PSI exists.
    public var cpuPressureSomeAvg10: Double?
    /// `memory.pressure` "some avg10", percent.
    public var memoryPressureSomeAvg10: Double?
    /// `memory.pressure` "full avg10", percent (all non-idle tasks stalled).
    public var memoryPressureFullAvg10: Double?
    /// `io.pressure` "some avg10", percent.
    public var ioPressureSomeAvg10: Double?

    /// A snapshot with every optional field nil.
    public init(cpuUsageMicroseconds: UInt64 = 0) {
        self.cpuUsageMicroseconds = cpuUsageMicroseconds
    }
}

extension Cgroup {
    /// Reads a `CgroupStats` snapshot from this cgroup's hierarchies: for each controller the v1
    /// hierarchy carrying it, else the v2 directory (where the file exists; hybrid hosts read
    /// PSI and `cpu.stat` there). Files a kernel lacks leave their fields nil.
    /// Throws `CgroupError.read` when the cgroup is gone, `.unexpectedValue` for unparsable content.
    /// Only the OOM-kill counter of `stats()` (one file read), for the exit path: v1
    /// `memory.oom_control` `oom_kill`, v2 `memory.events` `oom_kill`; nil where neither exists.
    public func oomKillCount() -> UInt64? {
        if let dir = v1("memory"), let text = try? dir.read("memory.oom_control") {
            return StatParsing.keyed(text)["oom_kill"]
        }
        if let dir = unified, let text = try? dir.read("memory.events") { return StatParsing.keyed(text)["oom_kill"] }
        return nil
    }

    public func stats() throws(CgroupError) -> CgroupStats {
        var stats = CgroupStats(cpuUsageMicroseconds: try cpuUsageMicroseconds() ?? 0)

        // CPU throttling.
        if let dir = v1("cpu"), dir.has("cpu.stat") {
            let stat = try StatParsing.keyed(dir.read("cpu.stat"))
            stats.cpuThrottledMicroseconds = stat["throttled_time"].map { $0 / 1000 }
            stats.cpuThrottledPeriods = stat["nr_throttled"]
        } else if let dir = unified, dir.has("cpu.stat") {
            let stat = try StatParsing.keyed(dir.read("cpu.stat"))
            stats.cpuThrottledMicroseconds = stat["throttled_usec"]
            stats.cpuThrottledPeriods = stat["nr_throttled"]
        }

        // Memory.
        stats.memoryCurrent = try memoryCurrent()
        if let dir = v1("memory") {
            let limit = try readUInt64(dir.file("memory.limit_in_bytes"))
            // "Unlimited" is PAGE_COUNTER_MAX pages, a value near Int64.max rounded to a page.
            stats.memoryLimit = limit >= (UInt64(1) << 62) ? nil : limit
            if dir.has("memory.max_usage_in_bytes") {
                stats.memoryPeak = try readUInt64(dir.file("memory.max_usage_in_bytes"))
            }
            if dir.has("memory.oom_control") {
                stats.oomKills = try StatParsing.keyed(dir.read("memory.oom_control"))["oom_kill"]
            }
        } else if let dir = unified, dir.has("memory.max") {
            stats.memoryLimit = try StatParsing.maxOrNumber(dir.read("memory.max"), path: dir.file("memory.max"))
            if dir.has("memory.peak") { stats.memoryPeak = try readUInt64(dir.file("memory.peak")) }
            if dir.has("memory.events") {
                stats.oomKills = try StatParsing.keyed(dir.read("memory.events"))["oom_kill"]
            }
        }

        // PIDs.
        let pidsDir = v1("pids") ?? unified.flatMap { $0.has("pids.max") ? $0 : nil }
        if let pidsDir {
            stats.pidsCurrent = try readUInt64(pidsDir.file("pids.current"))
            stats.pidsLimit = try StatParsing.maxOrNumber(pidsDir.read("pids.max"), path: pidsDir.file("pids.max"))
        } else {
            stats.pidsCurrent = try pidsCurrent()
        }

        // Block I/O.
        if let dir = v1("blkio") {
            let file =
                dir.has("blkio.throttle.io_service_bytes_recursive")
                ? "blkio.throttle.io_service_bytes_recursive" : "blkio.throttle.io_service_bytes"
            if dir.has(file) {
                let (read, write) = StatParsing.blkioBytes(try dir.read(file))
                stats.ioReadBytes = read
                stats.ioWriteBytes = write
            }
        } else if let dir = unified, dir.has("io.stat") {
            let (read, write) = StatParsing.ioStatBytes(try dir.read("io.stat"))
            stats.ioReadBytes = read
            stats.ioWriteBytes = write
        }

        // Pressure stall information (only in the v2 hierarchy; absent or EOPNOTSUPP without PSI).
        if let dir = unified {
            let cpu = StatParsing.pressure(try? dir.read("cpu.pressure"))
            let memory = StatParsing.pressure(try? dir.read("memory.pressure"))
            let io = StatParsing.pressure(try? dir.read("io.pressure"))
            stats.cpuPressureSomeAvg10 = cpu.some
            stats.memoryPressureSomeAvg10 = memory.some
            stats.memoryPressureFullAvg10 = memory.full
            stats.ioPressureSomeAvg10 = io.some
        }
        return stats
    }
}

/// Parsers for the statistics files' formats (cgroup-v2.rst "Interface Files" conventions:
/// flat keyed, nested keyed; blkio-controller.rst for v1 `io_service_bytes`).
enum StatParsing {
    /// Flat keyed `key value` lines; lines that are not two fields with a number are skipped.
    static func keyed(_ text: String) -> [String: UInt64] {
        var out: [String: UInt64] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2, let value = UInt64(parts[1]) { out[String(parts[0])] = value }
        }
        return out
    }

    /// "max" → nil, else a number.
    static func maxOrNumber(_ text: String, path: String) throws(CgroupError) -> UInt64? {
        let t = text.trimmingWhitespace
        if t == "max" { return nil }
        guard let value = UInt64(t) else { throw .unexpectedValue(path: path, value: t) }
        return value
    }

    /// v2 `io.stat`: "MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N" per device.
    static func ioStatBytes(_ text: String) -> (UInt64, UInt64) {
        var read: UInt64 = 0
        var write: UInt64 = 0
        for line in text.split(separator: "\n") {
            for field in line.split(separator: " ").dropFirst() {
                let kv = field.split(separator: "=", maxSplits: 1)
                guard kv.count == 2, let value = UInt64(kv[1]) else { continue }
                if kv[0] == "rbytes" { read &+= value } else if kv[0] == "wbytes" { write &+= value }
            }
        }
        return (read, write)
    }

    /// v1 `blkio.throttle.io_service_bytes`: "MAJ:MIN Read N" / "MAJ:MIN Write N" / …, "Total N".
    static func blkioBytes(_ text: String) -> (UInt64, UInt64) {
        var read: UInt64 = 0
        var write: UInt64 = 0
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            guard parts.count == 3, let value = UInt64(parts[2]) else { continue }
            if parts[1] == "Read" { read &+= value } else if parts[1] == "Write" { write &+= value }
        }
        return (read, write)
    }

    /// PSI: "some avg10=0.00 avg60=… avg300=… total=…" and "full …" (psi.rst).
    static func pressure(_ text: String?) -> (some: Double?, full: Double?) {
        guard let text else { return (nil, nil) }
        var some: Double?
        var full: Double?
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            guard let kind = parts.first,
                let avg = parts.first(where: { $0.hasPrefix("avg10=") }),
                let value = Double(avg.dropFirst(6))
            else { continue }
            if kind == "some" { some = value } else if kind == "full" { full = value }
        }
        return (some, full)
    }
}
