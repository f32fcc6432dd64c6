import LinuxSys
import OCI
import Testing

/// `ResidentCode.dropCleanFileMappings`: the process keeps running (its code faults back in) and
/// its file-backed resident set shrinks.
@Suite struct ResidentCodeTests {
    static func rssFileKiB() -> Int {
        let status = (try? Files.readString("/proc/self/status")) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("RssFile:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? -1
    }

    @Test func droppingCleanFileMappingsShrinksTheResidentSetAndCodeStillRuns() {
        let before = Self.rssFileKiB()
        let advised = ResidentCode.dropCleanFileMappings()
        let after = Self.rssFileKiB()
        #expect(advised > 0)
        #expect(after < before, "RssFile \(before) kB → \(after) kB")
        // Code and read-only data are still there: hashing, formatting and parsing work.
        #expect(SHA256Hasher.hash(Array("abc".utf8)).description.hasSuffix("f20015ad"))
        #expect(String(12345) == "12345" && Int("678") == 678)
    }
}
