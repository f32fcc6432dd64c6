import Glibc
import OCI

/// CPU usage accessors (limits: `CpuLimits` below).
/// v2: cgroup-v2.rst "Core Interface Files" (`cpu.stat` `usage_usec` is a core statistic,
/// present even without the `cpu` controller); v1: `cgroup-v1/cpuacct.rst` (`cpuacct.usage`, ns).
extension Cgroup {
    /// CPU time consumed by all tasks of the cgroup and its descendants, in microseconds:
    /// v1 `cpuacct.usage` (nanoseconds, divided by 1000) where a v1 hierarchy carries `cpuacct`,
    /// else v2 `cpu.stat` `usage_usec`. Nil when neither exists.
    /// Throws `CgroupError.read` or `.unexpectedValue`.
    public func cpuUsageMicroseconds() throws(CgroupError) -> UInt64? {
        if let dir = v1("cpuacct") { return try readUInt64(dir.file("cpuacct.usage")) / 1000 }
        if let dir = unified, CgroupFiles.exists(dir.file("cpu.stat")) {
            let path = dir.file("cpu.stat")
            let stat = try Self.parseKeyedValues(CgroupFiles.read(path), path: path)
            guard let usage = stat["usage_usec"], usage >= 0 else {
                throw .unexpectedValue(path: path, value: "no usage_usec")
            }
            return UInt64(usage)
        }
        return nil
    }
}

/// runc/crun's current cgroup v1 `cpu.shares` → v2 `cpu.weight` mapping: a quadratic in
/// log2(shares) that sends the ends and the defaults onto each other (2 → 1, 1024 → 100,
/// 262144 → 10000): `weight = ⌈10^((l² + 125·l)/612 − 7/34)⌉` with `l = log2(shares)`.
/// Source: opencontainers/cgroups `utils.go` `ConvertCPUSharesToCgroupV2Value` (runc 1.3.2+,
/// runc PR #4785, kubernetes#131216) and crun `src/libcrun/cgroup-utils.c` (crun issue #1721,
/// documented in `crun.1.md` "CGROUP v2"); it replaced the linear `1 + (shares−2)·9999/262142`,
/// which mapped the v1 default 1024 to 39 instead of the v2 default 100.
/// Input: shares (0 = unset, returns 0; ≤2 → 1; ≥262144 → 10000). Output: weight 1…10000.
public func cpuWeight(fromShares shares: UInt64) -> UInt64 {
    if shares == 0 { return 0 }
    if shares <= 2 { return 1 }
    if shares >= 262_144 { return 10_000 }
    let l = log2(Double(shares))
    let exponent = (l * l + 125 * l) / 612.0 - 7.0 / 34.0
    return UInt64(ceil(pow(10, exponent)))
}

/// Writing `linux.resources.cpu` quota, period and shares.
/// v2: cgroup-v2.rst "CPU Interface Files" (`cpu.max` "$MAX $PERIOD" in µs, `cpu.weight` 1–10000);
/// v1: `Documentation/scheduler/sched-bwc.rst` (`cpu.cfs_quota_us`, `cpu.cfs_period_us`, µs) and
/// `sched-design-CFS.rst` (`cpu.shares`).
enum CpuLimits {
    static func apply(_ cpu: Spec.Resources.CPU, to dir: Cgroup.Directory) throws(CgroupError) {
        switch dir.version {
        case .v2:
            if let max = cpuMax(quota: cpu.quota, period: cpu.period) { try dir.write("cpu.max", max) }
            if let shares = cpu.shares, shares != 0 {
                try dir.write("cpu.weight", String(cpuWeight(fromShares: shares)))
            }
        case .v1:
            if let shares = cpu.shares, shares != 0 { try dir.write("cpu.shares", String(shares)) }
            try applyV1Bandwidth(quota: cpu.quota ?? 0, period: cpu.period ?? 0, dir: dir)
        }
    }

    /// The v2 `cpu.max` value: "QUOTA PERIOD", "max PERIOD" for a -1/absent quota with a period,
    /// "QUOTA" alone (period unchanged) without one. 0 means unset in both fields (as in runc).
    static func cpuMax(quota: Int64?, period: UInt64?) -> String? {
        let q = quota ?? 0
        let p = period ?? 0
        if q == 0 && p == 0 { return nil }
        let max = q > 0 ? String(q) : "max"
        return p != 0 ? "\(max) \(p)" : max
    }

    /// v1 bandwidth: the period first, then the quota. The kernel checks quota/period against the
    /// parent's and the children's limits at every write, so a shorter period can be refused
    /// (EINVAL) until the quota is lowered; then the quota goes first and the period is retried
    /// (runc `fs/cpu.go` does the same).
    static func applyV1Bandwidth(quota: Int64, period: UInt64, dir: Cgroup.Directory) throws(CgroupError) {
        var periodPending = false
        if period != 0 {
            do { try dir.write("cpu.cfs_period_us", String(period)) } catch {
                guard error.errno == EINVAL, quota != 0 else { throw error }
                periodPending = true
            }
        }
        if quota != 0 {
            try dir.write("cpu.cfs_quota_us", String(quota < 0 ? -1 : quota))
            if periodPending { try dir.write("cpu.cfs_period_us", String(period)) }
        }
    }
}
