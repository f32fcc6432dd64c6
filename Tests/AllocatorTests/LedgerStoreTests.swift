import LinuxSys
import Store
import Testing

@testable import Allocator

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Ledger in the state database")
struct LedgerStoreTests {
    func tempStore() throws -> (LedgerStore, String) {
        let dir = "/tmp/skiff-alloc-test-" + Random.hex(bytes: 6)
        try StateRoot.mkdirAll(dir, mode: 0o700)
        return (try LedgerStore(db: Database(path: dir + "/state.db")), dir)
    }

    let host = Allocatable(cpus: 2, memoryBytes: 8 << 30)

    func reservation(_ id: String, _ cpu: Double?, _ mem: Double?, pid: Int32 = 1) -> Reservation {
        Reservation(
            id: id, name: "n-\(id)", kind: "container", share: Share(cpu: cpu, memory: mem), holderPID: pid,
            holderStartTime: nil, since: 0)
    }

    @Test("admission refuses what does not fit, naming the resource with asked, free and total")
    func refuse() throws {
        let (store, dir) = try tempStore()
        defer { try? Files.removeTree(dir) }
        let alive: LedgerStore.Liveness = { _, _ in true }
        try store.admit(reservation("a", 0.6, 0.2), allocatable: host, isAlive: alive)
        do {
            try store.admit(reservation("b", 0.5, 0.1), allocatable: host, isAlive: alive)
            Issue.record("b must be refused")
        } catch let e as AllocatorError {
            let text = "\(e)"
            #expect(text.contains("container n-b"))
            #expect(text.contains("cpu ratio 0.5 (1.0 CPUs) exceeds the free 0.4 (0.8 CPUs of 2.0 CPUs allocatable)"))
            #expect(text.contains("--cpu-ratio"))
        }
        #expect(try store.all(isAlive: alive).map(\.id) == ["a"])
    }

    @Test("a reservation whose holder died is void: admission and releaseVoid drop it")
    func voidHolders() throws {
        let (store, dir) = try tempStore()
        defer { try? Files.removeTree(dir) }
        var dead: Set<Int32> = []
        let liveness: LedgerStore.Liveness = { pid, _ in !dead.contains(pid) }
        try store.admit(reservation("a", 0.7, nil, pid: 100), allocatable: host, isAlive: liveness)
        try store.admit(reservation("b", 0.3, nil, pid: 200), allocatable: host, isAlive: liveness)
        dead.insert(100)
        #expect(try store.all(isAlive: liveness).map(\.id) == ["b"])
        try store.admit(reservation("c", 0.7, nil, pid: 300), allocatable: host, isAlive: liveness)
        dead.insert(200)
        #expect(try store.releaseVoid(isAlive: liveness) == 1)
        #expect(try store.all(isAlive: liveness).map(\.id) == ["c"])
    }

    @Test("the real liveness check follows processes: this test's own PID holds, a reaped child does not")
    func realLiveness() throws {
        let (store, dir) = try tempStore()
        defer { try? Files.removeTree(dir) }
        let me = getpid()
        var r = reservation("self", 0.5, 0.5, pid: me)
        r.holderStartTime = Processes.startTime(me)
        try store.admit(r, allocatable: host)
        #expect(try store.all().count == 1)
        try store.transfer("self", toPID: 999_999_999 & 0x3FFFFF, startTime: 1)
        #expect(try store.all().isEmpty)
    }

    @Test("while reservations are held every command sees the capacity of the first admission")
    func capacitySnapshot() throws {
        let (store, dir) = try tempStore()
        defer { try? Files.removeTree(dir) }
        var alive = false
        let liveness: LedgerStore.Liveness = { _, _ in alive }
        let first = HostCapacity(cpus: 2, memoryBytes: 8 << 30)
        let narrower = HostCapacity(cpus: 1, memoryBytes: 4 << 30)
        #expect(try store.capacity(detected: first, isAlive: liveness) == first)
        alive = true
        try store.admit(reservation("a", 0.5, 0.5), allocatable: host, isAlive: liveness)
        #expect(try store.capacity(detected: narrower, isAlive: liveness) == first)
        alive = false
        #expect(try store.capacity(detected: narrower, isAlive: liveness) == narrower)
    }

    @Test("the host reserve is stored, validated, and refused while workloads hold shares")
    func reserve() throws {
        let (store, dir) = try tempStore()
        defer { try? Files.removeTree(dir) }
        let cap = HostCapacity(cpus: 2, memoryBytes: 8 << 30)
        #expect(try store.reserve(for: cap) == HostReserve.defaultReserve(for: cap))
        try store.setReserve(HostReserve(cpus: 0.5, memoryBytes: 1 << 30), capacity: cap)
        #expect(try store.reserve(for: cap) == HostReserve(cpus: 0.5, memoryBytes: 1 << 30))
        #expect(throws: AllocatorError.self) {
            try store.setReserve(HostReserve(cpus: 2, memoryBytes: 0), capacity: cap)
        }
        #expect(throws: AllocatorError.self) {
            try store.setReserve(HostReserve(cpus: 0, memoryBytes: 8 << 30), capacity: cap)
        }
        var r = reservation("a", 0.1, nil, pid: getpid())
        r.holderStartTime = Processes.startTime(getpid())
        try store.admit(r, allocatable: host)
        #expect(throws: AllocatorError.self) { try store.setReserve(nil, capacity: cap) }
        #expect(throws: AllocatorError.self) {
            try store.setReserve(HostReserve(cpus: 0, memoryBytes: 0), capacity: cap)
        }
        try store.release("a")
        try store.setReserve(nil, capacity: cap)
        #expect(try store.storedReserve() == nil)
    }
}
