import LinuxSys

#if canImport(Glibc)
    import Glibc
#endif

/// The container log, in Docker's `json-file` format: one JSON object per line,
/// `{"log":"text\n","stream":"stdout","time":"<RFC 3339 nanoseconds>"}`.
/// Lines longer than 16 KiB are split, as Docker does.
final class LogWriter {
    let fd: Int32
    private var partial: [String: [UInt8]] = [:]
    static let maxLine = 16 * 1024

    /// Opens (appending, creating with mode 0640) the log at `path`.
    init(path: String) throws {
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        try check(fd, "open", path)
    }
    deinit { close(fd) }

    /// Appends bytes read from `stream` (`stdout` or `stderr`), writing every complete line.
    /// Each byte is looked at once (a VM's console arrives a byte at a time). A line reaching
    /// `maxLine` bytes is written as a record of its own, as Docker splits them, but never inside
    /// a UTF-8 sequence: the bytes of a character it would cut start the next record, so `logs`
    /// shows the character whole.
    func append(_ bytes: ArraySlice<UInt8>, stream: String) {
        var buf = partial.removeValue(forKey: stream) ?? []
        for b in bytes {
            buf.append(b)
            if b == 10 {
                emit(buf[...], stream: stream)
                buf.removeAll(keepingCapacity: true)
            } else if buf.count >= LogWriter.maxLine {
                let cut = Self.characterBoundary(buf)
                emit(buf[..<cut], stream: stream)
                buf.removeFirst(cut)
            }
        }
        partial[stream] = buf
    }

    /// Where `bytes` can be cut without splitting a UTF-8 sequence: before a lead byte at the end
    /// whose character is not complete yet, else at the end (RFC 3629 §3: the lead byte gives the
    /// sequence's length). Invalid bytes are cut anywhere, as they decode to U+FFFD either way.
    static func characterBoundary(_ bytes: [UInt8]) -> Int {
        var i = bytes.count - 1
        while i >= 0 && i >= bytes.count - 4 {
            let b = bytes[i]
            if b & 0xC0 != 0x80 {  // a lead or ASCII byte
                let length = b < 0x80 ? 1 : b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1
                return i + length > bytes.count && i > 0 ? i : bytes.count
            }
            i -= 1
        }
        return bytes.count
    }

    /// Writes out any unterminated line.
    func flush() {
        for (stream, buf) in partial where !buf.isEmpty { emit(buf[...], stream: stream) }
        partial = [:]
    }

    private func emit(_ line: ArraySlice<UInt8>, stream: String) {
        let text = String(decoding: line, as: UTF8.self)
        let record = "{\"log\":\(JSONString.quote(text)),\"stream\":\"\(stream)\",\"time\":\"\(Clock.rfc3339(Clock.now()))\"}\n"
        try? Files.write(fd: fd, Array(record.utf8))
    }
}

/// JSON string quoting (RFC 8259 §7) without Foundation.
enum JSONString {
    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    let h = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}
