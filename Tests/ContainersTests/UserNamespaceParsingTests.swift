import LinuxSys
import Testing

@testable import Containers

/// `--userns` values, /etc/subuid lines and the choice of a block, without a kernel.
struct UserNamespaceParsingTests {
    @Test func modes() throws {
        #expect(try UserNamespaceMode.parse(nil) == .host)
        #expect(try UserNamespaceMode.parse("") == .host)
        #expect(try UserNamespaceMode.parse("host") == .host)
        #expect(try UserNamespaceMode.parse("auto") == .auto(size: 65536))
        #expect(try UserNamespaceMode.parse("auto:size=1") == .auto(size: 1))
        #expect(try UserNamespaceMode.parse("auto:size=200000") == .auto(size: 200000))
        for (bad, says) in [
            ("bogus", "auto[:size=N]"), ("keep-id", "auto[:size=N]"), ("auto:size=0", "size must"),
            ("auto:size=-1", "size must"), ("auto:size=", "unknown option"),
            ("auto:uidmapping=0:1:1", "unknown option"),
            ("auto:size=4294967296", "size must"),
        ] {
            let e = #expect(throws: SkiffError.self) { try UserNamespaceMode.parse(bad) }
            #expect(
                e?.message.contains("\"\(bad)\"") == true && e?.message.contains(says) == true,
                "\(bad): \(e?.message ?? "")")
        }
    }

    @Test func subuidLinesOfSkiffOnly() throws {
        let text = """
            # comment
            alice:100000:65536

            skiff:1000000:65536000
            1001:200000:10
            skiff:70000000:131072\r
            """
        let r = try SubordinateIDs.parse(text, file: "/etc/subuid", kind: "uid")
        #expect(r == [IDRange(start: 1_000_000, count: 65_536_000), IDRange(start: 70_000_000, count: 131072)])
        #expect(
            try SubordinateIDs.parse("alice:x:y\n", file: "f", kind: "uid").isEmpty, "other users' lines are not ours")
    }

    @Test func badSubuidLinesNameFileAndLine() {
        for (line, says) in [
            ("skiff:10", "expected skiff:START:COUNT"), ("skiff:a:10", "expected skiff:START:COUNT"),
            ("skiff:10:0", "no ids"), ("skiff:0:65536", "includes gid 0"), ("skiff:4294967000:1000", "goes past"),
            ("skiff:1:2:3", "expected skiff:START:COUNT"),
        ] {
            let e = #expect(throws: SkiffError.self) {
                try SubordinateIDs.parse("alice:1:1\n" + line + "\n", file: "/etc/subgid", kind: "gid")
            }
            #expect(e?.message.hasPrefix("/etc/subgid:2: ") == true, "\(line): \(e?.message ?? "")")
            #expect(e?.message.contains(says) == true, "\(line): \(e?.message ?? "")")
        }
    }

    @Test func lowestFreeBlockPacksAndReuses() {
        let ranges = [IDRange(start: 1000, count: 300), IDRange(start: 5000, count: 100)]
        #expect(SubordinateIDs.lowestFree(size: 100, in: ranges, taken: []) == 1000)
        let a = IDRange(start: 1000, count: 100)
        let b = IDRange(start: 1100, count: 100)
        #expect(SubordinateIDs.lowestFree(size: 100, in: ranges, taken: [a]) == 1100)
        #expect(SubordinateIDs.lowestFree(size: 100, in: ranges, taken: [a, b]) == 1200)
        // A freed block is the lowest again.
        #expect(SubordinateIDs.lowestFree(size: 100, in: ranges, taken: [b, IDRange(start: 1200, count: 100)]) == 1000)
        // Too big for the rest of the first range: the second one.
        #expect(SubordinateIDs.lowestFree(size: 100, in: ranges, taken: [IDRange(start: 1050, count: 10)]) == 1060)
        #expect(SubordinateIDs.lowestFree(size: 250, in: ranges, taken: [IDRange(start: 1050, count: 10)]) == nil)
        #expect(SubordinateIDs.lowestFree(size: 100, in: ranges, taken: [IDRange(start: 1000, count: 300)]) == 5000)
        // A block never straddles two ranges, even adjacent ones.
        let adjacent = [IDRange(start: 0x10000, count: 0x10000), IDRange(start: 0x20000, count: 0x10000)]
        #expect(SubordinateIDs.lowestFree(size: 0x18000, in: adjacent, taken: []) == nil)
        // Blocks of other sizes (size=N) are skipped over.
        #expect(SubordinateIDs.lowestFree(size: 10, in: ranges, taken: [IDRange(start: 1000, count: 7)]) == 1007)
    }

    @Test func exhaustedAndTooSmallSayWhich() {
        let ids = SubordinateIDs(file: "/etc/subuid", kind: "uid", ranges: [IDRange(start: 100_000, count: 65536)])
        let small = #expect(throws: SkiffError.self) { try ids.allocate(size: 70000, taken: []) }
        #expect(small?.message.contains("largest range") == true && small?.message.contains("100000-165535") == true)
        let full = #expect(throws: SkiffError.self) {
            try ids.allocate(size: 65536, taken: [IDRange(start: 100_000, count: 65536)])
        }
        #expect(full?.message.contains("no free block of 65536 uids") == true, "\(full?.message ?? "")")
        #expect(full?.message.contains("1 container holds 65536") == true, "\(full?.message ?? "")")
    }

    @Test func mountinfoPathsAreUnescaped() {
        #expect(Mountinfo.unescape("/run/skiff/a\\040b/rootfs") == "/run/skiff/a b/rootfs")
        #expect(Mountinfo.unescape("/plain") == "/plain")
    }
}
