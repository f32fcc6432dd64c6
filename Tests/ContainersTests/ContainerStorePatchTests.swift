import LinuxSys
import OCI
import Store
import Testing

@testable import Containers

/// `ContainerStore.patch` edits the stored JSON in SQLite; what it writes must decode to the record
/// that `modify` would have produced (the keys are ContainerRecord's property names).
struct ContainerStorePatchTests {
    func tempStore() throws -> (ContainerStore, String) {
        let dir = "/tmp/skiff-patch-test-" + Random.hex(bytes: 6)
        try StateRoot.mkdirAll(dir, mode: 0o700)
        return (try ContainerStore(db: Database(path: dir + "/state.db")), dir)
    }

    func sample(_ id: String) -> ContainerRecord {
        var r = ContainerRecord(
            id: id, name: "n" + id.prefix(6), image: "busybox", imageID: "sha256:" + id,
            spec: Spec(), settings: RunSettings(), status: .exited, created: 1)
        r.exitCode = 3
        r.finishedAt = 5.5
        r.error = "an earlier start failed"
        r.oomKilled = true
        r.cgroupPaths = ["/sys/fs/cgroup/x"]
        return r
    }

    @Test func patchSetsAndRemovesFieldsAsModifyWould() throws {
        let (store, dir) = try tempStore()
        defer { try? Files.removeTree(dir) }
        let id = Random.hex(bytes: 32)
        try store.insert(sample(id))
        let found = try store.patch(
            id, status: .running,
            [
                "pid": .integer(4242), "pidStartTime": .integer(987_654_321_012), "monitorPID": .integer(7),
                "monitorStartTime": .absent, "startedAt": .real(1_764_445_763.125), "finishedAt": .absent,
                "exitCode": .absent, "oomKilled": .bool(false), "error": .absent,
            ])
        #expect(found)
        let r = try #require(try store.get(id: id))
        #expect(r.status == .running)
        #expect(r.pid == 4242 && r.pidStartTime == 987_654_321_012 && r.monitorPID == 7)
        #expect(r.monitorStartTime == nil && r.finishedAt == nil && r.exitCode == nil && r.error == nil)
        #expect(r.startedAt == 1_764_445_763.125)
        #expect(r.oomKilled == false)
        // Untouched fields stay, and the status column (ps filters on it) follows the document.
        #expect(r.cgroupPaths == ["/sys/fs/cgroup/x"] && r.image == "busybox")
        let column = try store.db.query("SELECT status FROM containers WHERE id = ?", [.text(id)]).first?["status"]
        #expect(column == .text("running"))
    }

    @Test func patchPutsJSONDocumentsAtDottedPaths() throws {
        let (store, dir) = try tempStore()
        defer { try? Files.removeTree(dir) }
        let id = Random.hex(bytes: 32)
        try store.insert(sample(id))
        var linux = Spec.Linux()
        var resources = Spec.Resources()
        var memory = Spec.Resources.Memory()
        memory.limit = 64 << 20
        resources.memory = memory
        linux.resources = resources
        try store.patch(
            id, status: .created,
            ["cgroupPaths": .json(try OCIJSON.string(["/a", "/b"])), "spec.linux": .json(try OCIJSON.string(linux))])
        let r = try #require(try store.get(id: id))
        #expect(r.cgroupPaths == ["/a", "/b"])
        #expect(r.spec.linux?.resources?.memory?.limit == 64 << 20)
        #expect(r.status == .created && r.exitCode == 3, "the rest is unchanged")
    }

    @Test func patchOfAMissingRecordReportsIt() throws {
        let (store, dir) = try tempStore()
        defer { try? Files.removeTree(dir) }
        #expect(try store.patch(Random.hex(bytes: 32), status: .running, ["pid": .integer(1)]) == false)
    }
}
