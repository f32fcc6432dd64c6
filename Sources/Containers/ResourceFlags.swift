import Allocator
import LinuxSys
import OCI

#if canImport(Glibc)
    import Glibc
#endif

/// Docker's resource flags, as given on `run` and `update`, before they become runtime-spec
/// `linux.resources` (config-linux.md#control-groups). Strings are parsed here so that errors can
/// name the flag and the value.
public struct ResourceFlags: Sendable, Equatable {
    /// `--cpus 1.5`: CPUs worth of time per period (cpu.max = cpus × period).
    public var cpus: String?
    /// `--cpu-shares 512` (v1 cpu.shares; converted to cpu.weight on v2).
    public var cpuShares: String?
    /// `--cpu-weight 100` (v2 cpu.weight 1–10000; converted to shares on v1).
    public var cpuWeight: String?
    public var cpusetCPUs: String?
    public var cpusetMems: String?
    /// `--memory 64m` (b, k, m, g suffixes; binary units as Docker's).
    public var memory: String?
    public var memoryReservation: String?
    /// `--memory-swap`: memory plus swap; -1 for unlimited swap.
    public var memorySwap: String?
    public var oomKillDisable = false
    /// `--pids-limit 20`; -1 or 0 for unlimited (Docker's rule).
    public var pidsLimit: String?
    /// `--blkio-weight 10..1000`.
    public var blkioWeight: String?
    /// `--device-read-bps /dev/sda:1mb` and friends: DEVICE:RATE.
    public var deviceReadBps: [String] = []
    public var deviceWriteBps: [String] = []
    public var deviceReadIOPS: [String] = []
    public var deviceWriteIOPS: [String] = []
    /// `--hugetlb 2MB:64m`: PAGESIZE:LIMIT.
    public var hugetlb: [String] = []
    /// `--cpu-ratio R`, `--memory-ratio R`, `--ratio R` (both): a share of the allocatable host,
    /// 0 < R ≤ 1, admitted by the allocator (see the Allocator module).
    public var cpuRatio: String?
    public var memoryRatio: String?
    public var ratio: String?

    public init() {}

    /// The asked share as ratios (nil for a resource without one).
    /// - Throws: `SkiffError` for a ratio outside 0 < R ≤ 1, or one given beside the flag that sets
    ///   the same knob (`--cpu-ratio` with `--cpus`/`--cpu-shares`/`--cpu-weight`, `--memory-ratio`
    ///   with `--memory`), naming both. For a VM (`vm`), `--cpus` and `--memory` are its vCPUs and
    ///   guest RAM and go with a ratio.
    public func ratios(vm: Bool = false) throws -> (cpu: Double?, memory: Double?) {
        func parse(_ text: String?, _ flag: String) throws -> Double? {
            guard let text else { return nil }
            do { return try Share.parseRatio(text, flag: flag) } catch { throw SkiffError(error.description) }
        }
        if ratio != nil, cpuRatio != nil || memoryRatio != nil {
            throw SkiffError("--ratio sets both --cpu-ratio and --memory-ratio: give --ratio alone, or the two separately")
        }
        let both = try parse(ratio, "--ratio")
        let cpu = try both ?? parse(cpuRatio, "--cpu-ratio")
        let memory = try both ?? parse(memoryRatio, "--memory-ratio")
        let cpuFlag = ratio != nil ? "--ratio" : "--cpu-ratio"
        let memoryFlag = ratio != nil ? "--ratio" : "--memory-ratio"
        if vm { return (cpu, memory) }
        if cpu != nil, let other = [("--cpus", cpus), ("--cpu-shares", cpuShares), ("--cpu-weight", cpuWeight)].first(where: { $0.1 != nil }) {
            throw SkiffError("\(cpuFlag) and \(other.0) both set the CPU limit and weight: give one")
        }
        if memory != nil && memorySwap != nil {
            throw SkiffError("\(memoryFlag) and --memory-swap: swap limits need an absolute --memory; give --memory and --memory-swap instead")
        }
        if memory != nil && self.memory != nil {
            throw SkiffError("\(memoryFlag) and --memory both set memory.max: give one")
        }
        return (cpu, memory)
    }

    /// True when no flag was given.
    public var isEmpty: Bool { self == ResourceFlags() }

    /// The CFS period Skiff uses with `--cpus` (µs), as Docker does.
    public static let cpuPeriod: UInt64 = 100_000

    /// Merges these flags into `base` (the container's current resources, for `update`).
    /// - Parameter cpuSharesForWeight: converts a v2 cpu.weight to v1 shares (the inverse of the
    ///   runc/crun conversion, from the Cgroups module).
    /// - Throws: `SkiffError` naming the flag and value that is invalid.
    public func resources(merging base: Spec.Resources?, cpuSharesForWeight: (UInt64) -> UInt64) throws -> Spec.Resources {
        var r = base ?? Spec.Resources()
        if let v = cpus {
            let online = ResourceFlags.onlineCount("/sys/devices/system/cpu/online")
            guard ResourceFlags.isDecimal(v), let c = Double(v), c >= 0, c <= Double(online) else {
                throw SkiffError(
                    "invalid --cpus \"\(v)\": give a number of CPUs from 0.01 to \(online) (this host has \(online)), or 0 for no limit")
            }
            var cpu = r.cpu ?? Spec.Resources.CPU()
            cpu.period = ResourceFlags.cpuPeriod
            cpu.quota = c == 0 ? -1 : Int64((c * Double(ResourceFlags.cpuPeriod)).rounded())
            if let q = cpu.quota, q > 0, q < 1000 {
                throw SkiffError("invalid --cpus \"\(v)\": the minimum is 0.01 (a 1 ms quota per 100 ms period)")
            }
            r.cpu = cpu
        }
        if let v = cpuShares {
            guard let s = UInt64(v), s >= 2, s <= 262_144 else {
                throw SkiffError("invalid --cpu-shares \"\(v)\": give an integer from 2 to 262144 (1024 is the default)")
            }
            var cpu = r.cpu ?? Spec.Resources.CPU()
            cpu.shares = s
            r.cpu = cpu
        }
        if cpuShares != nil && cpuWeight != nil {
            throw SkiffError("--cpu-shares and --cpu-weight set the same thing (cpu.weight on v2, cpu.shares on v1): give one")
        }
        if let v = cpuWeight {
            guard let w = UInt64(v), w >= 1, w <= 10_000 else {
                throw SkiffError("invalid --cpu-weight \"\(v)\": give an integer from 1 to 10000 (100 is the default)")
            }
            var cpu = r.cpu ?? Spec.Resources.CPU()
            cpu.shares = cpuSharesForWeight(w)
            r.cpu = cpu
        }
        if let v = cpusetCPUs {
            try ResourceFlags.checkList(v, flag: "--cpuset-cpus", within: "/sys/devices/system/cpu/online", what: "CPUs")
            var cpu = r.cpu ?? Spec.Resources.CPU()
            cpu.cpus = v
            r.cpu = cpu
        }
        if let v = cpusetMems {
            try ResourceFlags.checkList(v, flag: "--cpuset-mems", within: "/sys/devices/system/node/online", what: "memory nodes")
            var cpu = r.cpu ?? Spec.Resources.CPU()
            cpu.mems = v
            r.cpu = cpu
        }
        var mem = r.memory ?? Spec.Resources.Memory()
        var memoryTouched = false
        if let v = memory {
            mem.limit = try ResourceFlags.bytes(v, flag: "--memory", minimum: 6 * 1024 * 1024)
            memoryTouched = true
        }
        if let v = memoryReservation {
            mem.reservation = try ResourceFlags.bytes(v, flag: "--memory-reservation")
            memoryTouched = true
        }
        if let v = memorySwap {
            if v == "-1" {
                mem.swap = -1
            } else {
                let swap = try ResourceFlags.bytes(v, flag: "--memory-swap")
                guard let limit = mem.limit, limit > 0 else {
                    throw SkiffError("--memory-swap \(v) needs a memory limit: give --memory too (memory-swap is memory plus swap)")
                }
                guard swap >= limit else {
                    throw SkiffError("invalid --memory-swap \(v): it is memory plus swap, so it must be at least --memory (\(limit) bytes)")
                }
                mem.swap = swap
            }
            memoryTouched = true
        }
        if oomKillDisable {
            mem.disableOOMKiller = true
            memoryTouched = true
        }
        // Docker's consistency rules, checked against what the container already has (update).
        if let limit = mem.limit, limit > 0 {
            if let swap = mem.swap, swap > 0, swap < limit {
                throw SkiffError(
                    "memory limit \(limit) bytes is above the memory+swap limit \(swap): raise --memory-swap too (or -1 for unlimited swap)")
            }
            if let reservation = mem.reservation, reservation > limit {
                throw SkiffError(
                    "--memory-reservation (\(reservation) bytes) must not be above --memory (\(limit) bytes)")
            }
        }
        if memoryTouched { r.memory = mem }
        if let v = pidsLimit {
            guard let n = Int64(v), n >= -1 else {
                throw SkiffError("invalid --pids-limit \"\(v)\": give a positive number, or 0 or -1 for unlimited")
            }
            r.pids = Spec.Resources.Pids(limit: n <= 0 ? -1 : n)
        }
        var io = r.blockIO ?? Spec.Resources.BlockIO()
        var ioTouched = false
        if let v = blkioWeight {
            guard let w = UInt16(v), (10...1000).contains(w) else {
                throw SkiffError("invalid --blkio-weight \"\(v)\": give an integer from 10 to 1000")
            }
            io.weight = w
            ioTouched = true
        }
        func throttles(_ specs: [String], _ flag: String, iops: Bool) throws -> [Spec.Resources.ThrottleDevice]? {
            guard !specs.isEmpty else { return nil }
            ioTouched = true
            return try specs.map { try ResourceFlags.throttle($0, flag: flag, iops: iops) }
        }
        io.throttleReadBpsDevice = try throttles(deviceReadBps, "--device-read-bps", iops: false) ?? io.throttleReadBpsDevice
        io.throttleWriteBpsDevice = try throttles(deviceWriteBps, "--device-write-bps", iops: false) ?? io.throttleWriteBpsDevice
        io.throttleReadIOPSDevice = try throttles(deviceReadIOPS, "--device-read-iops", iops: true) ?? io.throttleReadIOPSDevice
        io.throttleWriteIOPSDevice = try throttles(deviceWriteIOPS, "--device-write-iops", iops: true) ?? io.throttleWriteIOPSDevice
        if ioTouched { r.blockIO = io }
        if !hugetlb.isEmpty {
            var limits = r.hugepageLimits ?? []
            let sizes = ResourceFlags.hugePageSizes()
            for h in hugetlb {
                let parts = h.split(separator: ":", maxSplits: 1).map(String.init)
                guard parts.count == 2 else {
                    throw SkiffError("invalid --hugetlb \"\(h)\": expected PAGESIZE:LIMIT such as 2MB:64m")
                }
                let size = parts[0].uppercased()
                guard let pageBytes = sizes[size] else {
                    throw SkiffError(
                        "invalid --hugetlb \"\(h)\": this host's huge page sizes are \(sizes.keys.sorted().joined(separator: ", "))")
                }
                let limit = try ResourceFlags.bytes(parts[1], flag: "--hugetlb")
                guard limit >= 0, limit % pageBytes == 0 else {
                    throw SkiffError("invalid --hugetlb \"\(h)\": the limit must be a multiple of the page size (\(size))")
                }
                limits.removeAll { $0.pageSize == size }
                limits.append(Spec.Resources.HugepageLimit(pageSize: size, limit: UInt64(limit)))
            }
            r.hugepageLimits = limits
        }
        return r
    }

    /// Parses Docker's sizes: a number with an optional b, k, m or g suffix (binary units),
    /// e.g. 64m = 67108864. "-1" means unlimited.
    /// - Throws: `SkiffError` naming the flag and the value.
    public static func bytes(_ s: String, flag: String, minimum: Int64 = 0) throws -> Int64 {
        if s == "-1" { return -1 }
        var text = s.lowercased()
        // "64mb" and "64mib" mean 64m; a bare "b" suffix means bytes.
        if text.hasSuffix("ib") {
            text.removeLast(2)
        } else if text.hasSuffix("b"), text.count > 1, let before = text.dropLast().last, !before.isNumber {
            text.removeLast()
        }
        var multiplier: Double = 1
        if let last = text.last, !last.isNumber {
            switch last {
            case "b": multiplier = 1
            case "k": multiplier = 1024
            case "m": multiplier = 1024 * 1024
            case "g": multiplier = 1024 * 1024 * 1024
            case "t": multiplier = 1024 * 1024 * 1024 * 1024
            default:
                throw SkiffError("invalid size \"\(s)\" for \(flag): use a number with b, k, m or g (e.g. 64m)")
            }
            text.removeLast()
        }
        guard isDecimal(text), let n = Double(text), n >= 0, n * multiplier < 9.0e18 else {
            throw SkiffError("invalid size \"\(s)\" for \(flag): use a number with b, k, m or g (e.g. 64m)")
        }
        let v = Int64((n * multiplier).rounded())
        if v < minimum {
            throw SkiffError("\(flag) \(s) is too small: the minimum is \(minimum / 1024 / 1024)m")
        }
        return v
    }

    /// `DEVICE:RATE` → a throttle entry; the device's major:minor comes from `stat(2)`.
    static func throttle(_ s: String, flag: String, iops: Bool) throws -> Spec.Resources.ThrottleDevice {
        guard let colon = s.lastIndex(of: ":") else {
            throw SkiffError("invalid \(flag) \"\(s)\": expected DEVICE:RATE such as /dev/sda:1mb")
        }
        let path = String(s[..<colon])
        let rateText = String(s[s.index(after: colon)...])
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw SkiffError("invalid \(flag) \"\(s)\": cannot stat \(path): \(SysError.message(errno))")
        }
        guard (st.st_mode & S_IFMT) == S_IFBLK else {
            throw SkiffError("invalid \(flag) \"\(s)\": \(path) is not a block device")
        }
        let rate: Int64
        if iops {
            guard let n = Int64(rateText), n > 0 else {
                throw SkiffError("invalid \(flag) \"\(s)\": the rate must be a positive number of IO per second")
            }
            rate = n
        } else {
            rate = try bytes(rateText, flag: flag)
            guard rate > 0 else { throw SkiffError("invalid \(flag) \"\(s)\": the rate must be positive") }
        }
        return Spec.Resources.ThrottleDevice(
            major: Int64(major(st.st_rdev)), minor: Int64(minor(st.st_rdev)), rate: UInt64(rate))
    }

    /// Plain decimal digits with at most one point (no sign, exponent or hex, which `Double` takes).
    static func isDecimal(_ s: String) -> Bool {
        !s.isEmpty && s.allSatisfy { $0.isASCII && ($0.isNumber || $0 == ".") } && s.filter { $0 == "." }.count <= 1
    }

    /// Members of a kernel list such as "0-3,5" (cpuset(7) "List format").
    static func members(_ s: String) -> [Int]? {
        var out: [Int] = []
        for part in s.split(separator: ",", omittingEmptySubsequences: false) {
            let ends = part.split(separator: "-", omittingEmptySubsequences: false).map { Int($0) }
            guard (1...2).contains(ends.count), let a = ends.first ?? nil, let b = ends.last ?? nil, a <= b else { return nil }
            out += Array(a...b)
        }
        return out.isEmpty ? nil : out
    }

    /// Number of entries in a sysfs list file such as /sys/devices/system/cpu/online.
    static func onlineCount(_ path: String) -> Int {
        members((try? Files.readString(path))?.trimming("\n ") ?? "")?.count ?? 1
    }

    /// A cpuset list whose members exist on this host (`within`, a sysfs list file).
    static func checkList(_ s: String, flag: String, within path: String, what: String) throws {
        guard let wanted = members(s) else { throw SkiffError("invalid \(flag) \"\(s)\": expected a list such as 0-3,5") }
        let online = (try? Files.readString(path)).map { $0.trimming("\n ") } ?? ""
        if let have = members(online), let missing = wanted.first(where: { !have.contains($0) }) {
            throw SkiffError("invalid \(flag) \"\(s)\": \(what) \(missing) does not exist here; this host has \(online)")
        }
    }

    /// Huge page sizes the kernel offers (/sys/kernel/mm/hugepages/hugepages-<N>kB), by the names
    /// cgroups use ("2MB", "1GB"), in bytes.
    static func hugePageSizes() -> [String: Int64] {
        var out: [String: Int64] = [:]
        for name in (try? Files.list("/sys/kernel/mm/hugepages")) ?? [] {
            guard name.hasPrefix("hugepages-"), name.hasSuffix("kB"), let kb = Int64(name.dropFirst(10).dropLast(2)) else {
                continue
            }
            let label = kb >= 1024 * 1024 ? "\(kb / 1024 / 1024)GB" : kb >= 1024 ? "\(kb / 1024)MB" : "\(kb)KB"
            out[label] = kb * 1024
        }
        return out
    }
}
