/// A plain-text table with left-aligned columns separated by three spaces, as `docker ps` prints.
struct Table {
    let headers: [String]
    var rows: [[String]] = []

    init(_ headers: [String]) { self.headers = headers }

    mutating func add(_ row: [String]) { rows.append(row) }

    func render() -> String {
        var widths = headers.map(\.count)
        for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
        func line(_ cells: [String]) -> String {
            var s = ""
            for (i, c) in cells.enumerated() {
                if i == cells.count - 1 { s += c } else { s += c + String(repeating: " ", count: widths[i] - c.count + 3) }
            }
            return s
        }
        return ([line(headers)] + rows.map(line)).joined(separator: "\n")
    }
}

/// Byte sizes as Docker prints them (decimal units: 4.26MB, 1.2GB).
func humanSize(_ bytes: Int64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"]
    var v = Double(bytes)
    var i = 0
    while v >= 1000 && i < units.count - 1 {
        v /= 1000
        i += 1
    }
    if i == 0 { return "\(bytes)B" }
    let rounded = (v * 100).rounded() / 100
    var s = String(rounded)
    if s.hasSuffix(".0") { s.removeLast(2) }
    return s + units[i]
}

/// Truncates with an ellipsis to `n` characters.
func truncate(_ s: String, _ n: Int) -> String {
    s.count <= n ? s : String(s.prefix(n - 1)) + "…"
}
