import Testing

@testable import Allocator

/// SplitMix64: a seeded generator, so a failing sequence can be replayed from its seed.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("Ledger properties (random admit/release/resize sequences)")
struct LedgerPropertyTests {
    /// A random ratio the way users give them: a few decimals, sometimes tiny, sometimes whole.
    static func ratio(_ g: inout SeededGenerator) -> Double? {
        switch Int.random(in: 0..<10, using: &g) {
        case 0: return nil
        case 1: return 1.0
        case 2: return Double(Int.random(in: 1...9, using: &g)) / 1000
        default: return Double(Int.random(in: 1...100, using: &g)) / 100
        }
    }

    @Test(
        "the sum of reservations never exceeds the allocatable total, and every refusal was necessary",
        arguments: 0..<40)
    func invariant(seed: Int) {
        var g = SeededGenerator(state: UInt64(seed) &* 7919 &+ 1)
        var ledger = Ledger()
        let ids = (0..<12).map { "w\($0)" }
        var admitted = 0
        var refused = 0
        for step in 0..<400 {
            let id = ids.randomElement(using: &g)!
            if Int.random(in: 0..<4, using: &g) == 0 {
                ledger.release(id)
            } else {
                let share = Share(cpu: Self.ratio(&g), memory: Self.ratio(&g))
                let before = ledger
                let r = Reservation(
                    id: id, name: id, kind: "container", share: share, holderPID: 1, holderStartTime: nil,
                    since: Double(step))
                if let binding = ledger.admit(r) {
                    refused += 1
                    // Nothing changed, and the named resource really did not fit beside the others.
                    #expect(ledger == before)
                    let others = before.reserved(excluding: id)
                    switch binding {
                    case .cpu: #expect(others.cpuPPM + share.cpuPPM > Share.whole)
                    case .memory:
                        #expect(others.cpuPPM + share.cpuPPM <= Share.whole)
                        #expect(others.memoryPPM + share.memoryPPM > Share.whole)
                    }
                } else {
                    admitted += 1
                    // Admitted: it fits (so a refusal of it would have been unnecessary), and the
                    // workload now holds exactly what it asked.
                    #expect(ledger.reservations.filter { $0.id == id }.map(\.share) == (share.isEmpty ? [] : [share]))
                }
            }
            let sum = ledger.reserved()
            #expect(sum.cpuPPM <= Share.whole, "seed \(seed) step \(step): cpu over-committed")
            #expect(sum.memoryPPM <= Share.whole, "seed \(seed) step \(step): memory over-committed")
            #expect(Set(ledger.reservations.map(\.id)).count == ledger.reservations.count)
        }
        #expect(admitted > 0 && refused > 0, "seed \(seed): the sequence should exercise both outcomes")
    }

    @Test("ten workloads at 0.1 fill the host exactly; an eleventh is refused")
    func exactSums() {
        var ledger = Ledger()
        for i in 0..<10 {
            let r = Reservation(
                id: "w\(i)", name: "w\(i)", kind: "container", share: Share(cpu: 0.1, memory: 0.1), holderPID: 1,
                holderStartTime: nil, since: 0)
            #expect(ledger.admit(r) == nil)
        }
        #expect(ledger.free() == Share.none)
        let extra = Reservation(
            id: "x", name: "x", kind: "container", share: Share(cpu: 0.000001, memory: nil), holderPID: 1,
            holderStartTime: nil, since: 0)
        #expect(ledger.admit(extra) == .cpu)
    }

    @Test("resizing counts only the others: a workload can grow into what it holds plus the free part")
    func resize() {
        var ledger = Ledger()
        let a = Reservation(
            id: "a", name: "a", kind: "vm", share: Share(cpu: 0.5, memory: 0.5), holderPID: 1, holderStartTime: nil,
            since: 0)
        let b = Reservation(
            id: "b", name: "b", kind: "container", share: Share(cpu: 0.3, memory: 0.3), holderPID: 1,
            holderStartTime: nil, since: 0)
        #expect(ledger.admit(a) == nil)
        #expect(ledger.admit(b) == nil)
        var bigger = a
        bigger.share = Share(cpu: 0.7, memory: 0.6)
        #expect(ledger.admit(bigger) == nil)
        bigger.share = Share(cpu: 0.7, memory: 0.71)
        #expect(ledger.admit(bigger) == .memory)
        #expect(ledger.reserved() == Share(cpu: 1.0, memory: 0.9))
    }
}

@Suite("Ratios")
struct RatioTests {
    @Test(
        "0 < R ≤ 1 is accepted; anything else names the flag",
        arguments: ["0", "-0.1", "1.01", "nan", "inf", "abc", "", "0.0000001", "0x0.1", "1e-1", " 0.5"])
    func invalid(text: String) {
        #expect(throws: AllocatorError.invalidRatio(flag: "--ratio", value: text)) {
            try Share.parseRatio(text, flag: "--ratio")
        }
    }

    @Test("valid ratios round up to millionths")
    func valid() throws {
        #expect(try Share.parseRatio("0.25", flag: "--ratio") == 0.25)
        #expect(try Share.parseRatio("1", flag: "--ratio") == 1)
        #expect(Share.ppm(0.3) == 300_000)
        #expect(Share.ppm(0.1) * 10 == Share.whole)
        #expect(Share.ppm(0.0000011) == 2)
    }
}
