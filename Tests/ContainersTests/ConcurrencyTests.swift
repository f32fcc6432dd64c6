import Foundation
import Testing

/// Several `skiff` processes at once share one state database: every command succeeds and the
/// state stays consistent.
@Suite(.enabled(if: Harness.available, "needs root and a skiff binary (SKIFF_TEST_BIN)"))
struct ConcurrencyTests {
    init() throws { try Harness.setUp() }

    @Test func parallelRunsAndPsStayConsistent() async throws {
        let names = (0..<4).map { uniqueName("par\($0)") }
        let results = await withTaskGroup(of: (String, Output).self) { group in
            for n in names {
                group.addTask { (n, await skiff("run", "-d", "--name", n, "busybox", "sleep", "1000")) }
            }
            for i in 0..<4 { group.addTask { ("ps\(i)", await skiff("ps", "-a")) } }
            var all: [String: Output] = [:]
            for await (k, v) in group { all[k] = v }
            return all
        }
        for (k, r) in results {
            #expect(r.code == 0, "\(k): \(r)")
        }
        let ids = names.map { results[$0]?.out ?? "" }
        for id in ids { #expect(id.count == 64, "\(ids)") }
        #expect(Set(ids).count == 4)

        let ps = await skiff("ps", "--format", "json")
        for n in names { #expect(ps.stdout.contains("\"Names\":\"\(n)\""), "\(n) not listed: \(ps)") }
        var pids: [Int32] = []
        for n in names {
            let f = try await facts(n)
            #expect(f.status == "running" && processAlive(f.pid), "\(n): \(f)")
            pids.append(f.pid)
        }
        #expect(Set(pids).count == 4)

        // Remove them all at once.
        let removed = await withTaskGroup(of: Output.self) { group in
            for n in names { group.addTask { await skiff("rm", "-f", n) } }
            var all: [Output] = []
            for await r in group { all.append(r) }
            return all
        }
        for r in removed { #expect(r.code == 0, "\(r)") }
        for (i, n) in names.enumerated() { await expectNoTrace(name: n, id: ids[i], pid: pids[i]) }
    }
}

@Suite(.enabled(if: Harness.available, "needs root and a skiff binary (SKIFF_TEST_BIN)"))
struct GeneratedNameTests {
    init() throws { try Harness.setUp() }

    /// Containers without --name get generated names; parallel runs must never fail because two
    /// of them drew the same one (Docker retries on a conflict). Probabilistic: 16 parallel
    /// creates from a space of a few hundred names.
    @Test func parallelUnnamedCreatesAllSucceed() async {
        let results = await withTaskGroup(of: Output.self) { group in
            for _ in 0..<16 { group.addTask { await skiff("create", "busybox", "true") } }
            var all: [Output] = []
            for await r in group { all.append(r) }
            return all
        }
        for r in results {
            #expect(r.code == 0, "\(r)")
            if r.code == 0 { _ = await skiff("rm", r.out) }
        }
    }
}
