/// Fields of `/proc/<pid>/mountinfo` (`Documentation/filesystems/proc.rst`, section 3.5).
public enum Mountinfo {
    /// Undoes the octal escapes the kernel writes for space, tab, newline and backslash in paths
    /// (`\040`, `\011`, `\012`, `\134`; `fs/proc_namespace.c` `mangle`).
    public static func unescape(_ s: String) -> String {
        guard s.contains("\\") else { return s }
        var out: [UInt8] = []
        let b = Array(s.utf8)
        var i = 0
        while i < b.count {
            if b[i] == UInt8(ascii: "\\"), i + 3 < b.count {
                let digits = b[(i + 1)...(i + 3)]
                if digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "7") }) {
                    let v = digits.reduce(0) { $0 * 8 + Int($1 - UInt8(ascii: "0")) }
                    out.append(UInt8(truncatingIfNeeded: v))
                    i += 4
                    continue
                }
            }
            out.append(b[i])
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Mount points at or below `dir` in `/proc/self/mountinfo` (the caller's mount namespace),
    /// deepest first, so that detaching them in order leaves none.
    public static func mountPoints(under dir: String) -> [String] {
        guard let text = try? Files.readString("/proc/self/mountinfo") else { return [] }
        var found: [String] = []
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", maxSplits: 5)
            guard fields.count > 4 else { continue }
            let point = unescape(String(fields[4]))
            if point == dir || point.hasPrefix(dir + "/") { found.append(point) }
        }
        return found.sorted { $0.count > $1.count }
    }
}
