import Foundation
import Testing

@testable import Containers

/// The json-file log splits a line at 16 KiB as Docker does; a cut never falls inside a UTF-8
/// character, or `skiff logs` would show U+FFFD in its place.
struct LogFileTests {
    @Test func aCutIsNeverInsideACharacter() {
        let euro: [UInt8] = [0xE2, 0x82, 0xAC]
        #expect(LogWriter.characterBoundary(Array("abc".utf8)) == 3)
        #expect(LogWriter.characterBoundary([0x61] + euro) == 4, "a complete character ends the record")
        #expect(LogWriter.characterBoundary([0x61] + euro.prefix(2)) == 1, "an incomplete one starts the next")
        #expect(LogWriter.characterBoundary([0x61, 0xF0, 0x9F, 0x98]) == 1, "four-byte sequence, three bytes in")
        #expect(LogWriter.characterBoundary([0x61, 0x80, 0x80, 0x80, 0x80]) == 5, "invalid bytes: cut anywhere")
    }

    @Test func longLinesOfMultiByteCharactersComeBackWhole() throws {
        let dir = "/tmp/skiff-logfile-test-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/container.log"
        let text = String(repeating: "€", count: 12_000) + "\n" + String(repeating: "é", count: 9_000)
        let writer = try LogWriter(path: path)
        for byte in Array(text.utf8) { writer.append([byte][...], stream: "stdout") }
        writer.flush()
        let records = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        #expect(records.count >= 4, "split at 16 KiB: \(records.count) records")
        var joined = ""
        for record in records {
            let object = try JSONSerialization.jsonObject(with: Data(record.utf8)) as? [String: Any]
            let log = try #require(object?["log"] as? String)
            #expect(log.utf8.count <= LogWriter.maxLine)
            joined += log
        }
        #expect(!joined.contains("\u{FFFD}"))
        #expect(joined == text)
    }
}
