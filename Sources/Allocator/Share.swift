/// A workload's share of the allocatable host, per resource, as a ratio in [0, 1]
/// (R_alloc = R_total × ratio). Held in millionths so sums are exact: ten workloads at 0.1
/// fill the host, no more and no less.
public struct Share: Codable, Sendable, Equatable, Hashable {
    /// Millionths of the allocatable CPUs (0…1_000_000).
    public var cpuPPM: Int
    /// Millionths of the allocatable memory (0…1_000_000).
    public var memoryPPM: Int

    /// One whole host, in millionths.
    public static let whole = 1_000_000
    public static let none = Share(cpuPPM: 0, memoryPPM: 0)

    public init(cpuPPM: Int, memoryPPM: Int) {
        self.cpuPPM = cpuPPM
        self.memoryPPM = memoryPPM
    }

    /// From ratios (nil = nothing reserved for that resource).
    public init(cpu: Double?, memory: Double?) {
        cpuPPM = cpu.map(Share.ppm) ?? 0
        memoryPPM = memory.map(Share.ppm) ?? 0
    }

    public var cpuRatio: Double { Double(cpuPPM) / Double(Share.whole) }
    public var memoryRatio: Double { Double(memoryPPM) / Double(Share.whole) }
    public var isEmpty: Bool { cpuPPM == 0 && memoryPPM == 0 }

    /// A ratio in millionths, rounded up so a reservation never falls short of what was asked.
    public static func ppm(_ ratio: Double) -> Int {
        Int((ratio * Double(whole) - 1e-6).rounded(.up)).clamped(0, whole)
    }

    /// Checks a ratio given on the command line: a number with 0 < R ≤ 1 (at least 0.000001).
    /// - Throws: `AllocatorError.invalidRatio` naming the flag and value.
    public static func parseRatio(_ text: String, flag: String) throws(AllocatorError) -> Double {
        let decimal =
            !text.isEmpty && text.allSatisfy { $0.isASCII && ($0.isNumber || $0 == ".") }
            && text.filter { $0 == "." }.count <= 1
        guard decimal, let r = Double(text), r.isFinite, r > 0, r <= 1 else {
            throw .invalidRatio(flag: flag, value: text)
        }
        // The ledger counts millionths; a smaller ratio would reserve more than was asked.
        guard r >= 1e-6 else { throw .invalidRatio(flag: flag, value: text) }
        return r
    }
}

extension Comparable {
    func clamped(_ lo: Self, _ hi: Self) -> Self { min(max(self, lo), hi) }
}

/// The two resources the allocator divides.
public enum AllocatedResource: String, Codable, Sendable, CaseIterable {
    case cpu, memory
}

/// Errors of the allocator. Each says what was asked, what is free, and what to do.
public enum AllocatorError: Error, CustomStringConvertible, Equatable {
    /// A ratio flag outside 0 < R ≤ 1.
    case invalidRatio(flag: String, value: String)
    /// Admission refused: `resource` is the binding one; ratios and absolute amounts given.
    case refused(
        workload: String, resource: AllocatedResource, asked: Double, free: Double, askedAmount: String,
        freeAmount: String, totalAmount: String)
    /// A request that can never fit (e.g. a VM with more vCPUs than the host can allocate).
    case tooLarge(String)
    /// A share too small to run in (a memory limit below what a container or VM needs).
    case tooSmall(String)
    /// A reserve larger than the host.
    case invalidReserve(String)

    public var description: String {
        switch self {
        case .invalidRatio(let flag, let value):
            return
                "invalid \(flag) \"\(value)\": give a ratio of the host with 0 < R ≤ 1 (at least 0.000001), e.g. 0.25"
        case .refused(let workload, let resource, let asked, let free, let askedAmount, let freeAmount, let totalAmount):
            let flag = resource == .cpu ? "--cpu-ratio" : "--memory-ratio"
            return
                "cannot admit \(workload): \(resource.rawValue) ratio \(fmt(asked)) (\(askedAmount)) exceeds the free "
                + "\(fmt(free)) (\(freeAmount) of \(totalAmount) allocatable); ask for less (\(flag) or --ratio; "
                + "`skiff update \(flag)` for an existing workload) or stop or remove a workload (`skiff top` shows "
                + "what each holds)"
        case .tooLarge(let message), .tooSmall(let message), .invalidReserve(let message):
            return message
        }
    }

    private func fmt(_ r: Double) -> String {
        let v = (r * 10_000).rounded() / 10_000
        return String(v)
    }
}
