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
    func append(_ bytes: ArraySlice<UInt8>, stream: String) {
        var buf = partial[stream, default: []]
        buf.append(contentsOf: bytes)
        var start = 0
        var i = 0
        while i < buf.count {
            if buf[i] == 10 || i - start + 1 >= LogWriter.maxLine {
                emit(buf[start...i], stream: stream)
                start = i + 1
            }
            i += 1
        }
        partial[stream] = Array(buf[start...])
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
