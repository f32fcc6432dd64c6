import CSkiff

#if canImport(Glibc)
    import Glibc
#endif

/// Wall-clock and monotonic time, and the formats Skiff prints.
public enum Clock {
    /// Seconds since the Unix epoch (CLOCK_REALTIME), with nanosecond precision.
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Seconds on CLOCK_MONOTONIC.
    public static func monotonic() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// RFC 3339 UTC with nanoseconds, as Docker writes times: `2026-11-29T10:50:56.123456789Z`.
    public static func rfc3339(_ t: Double) -> String {
        var secs = time_t(t.rounded(.down))
        var nanos = Int(((t - Double(secs)) * 1e9).rounded())
        if nanos >= 1_000_000_000 {
            secs += 1
            nanos -= 1_000_000_000
        }
        var tm = tm()
        gmtime_r(&secs, &tm)
        func pad(_ v: Int, _ w: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, w - s.count)) + s
        }
        return "\(pad(Int(tm.tm_year) + 1900, 4))-\(pad(Int(tm.tm_mon) + 1, 2))-\(pad(Int(tm.tm_mday), 2))T"
            + "\(pad(Int(tm.tm_hour), 2)):\(pad(Int(tm.tm_min), 2)):\(pad(Int(tm.tm_sec), 2)).\(pad(nanos, 9))Z"
    }

    /// Parses the RFC 3339 times images carry (`2024-01-02T03:04:05Z`, optional fraction and offset).
    /// Returns nil for anything else.
    public static func parseRFC3339(_ s: String) -> Double? {
        let b = Array(s.utf8)
        guard b.count >= 20, b[4] == 45, b[7] == 45, b[10] == 84 || b[10] == 116, b[13] == 58, b[16] == 58 else {
            return nil
        }
        func num(_ r: Range<Int>) -> Int? { Int(String(decoding: b[r], as: UTF8.self)) }
        guard let y = num(0..<4), let mo = num(5..<7), let d = num(8..<10), let h = num(11..<13),
            let mi = num(14..<16), let se = num(17..<19)
        else { return nil }
        var i = 19
        var frac = 0.0
        if i < b.count, b[i] == 46 {
            i += 1
            var scale = 0.1
            while i < b.count, b[i] >= 48, b[i] <= 57 {
                frac += Double(b[i] - 48) * scale
                scale /= 10
                i += 1
            }
        }
        var offset = 0
        if i < b.count, b[i] == 43 || b[i] == 45, i + 6 <= b.count, let oh = num(i + 1..<i + 3), let om = num(i + 4..<i + 6) {
            offset = (oh * 3600 + om * 60) * (b[i] == 43 ? 1 : -1)
        }
        var tm = tm()
        tm.tm_year = Int32(y - 1900)
        tm.tm_mon = Int32(mo - 1)
        tm.tm_mday = Int32(d)
        tm.tm_hour = Int32(h)
        tm.tm_min = Int32(mi)
        tm.tm_sec = Int32(se)
        return Double(timegm(&tm)) + frac - Double(offset)
    }

    /// "3 seconds", "2 minutes", "5 hours", "4 days", "3 weeks", "2 months", "1 year" — Docker's
    /// `units.HumanDuration` wording.
    public static func humanDuration(_ seconds: Double) -> String {
        let s = Int(seconds)
        if s < 1 { return "Less than a second" }
        if s == 1 { return "1 second" }
        if s < 60 { return "\(s) seconds" }
        let m = s / 60
        if m == 1 { return "About a minute" }
        if m < 60 { return "\(m) minutes" }
        let h = m / 60
        if h == 1 { return "About an hour" }
        if h < 48 { return "\(h) hours" }
        if h < 24 * 7 * 2 { return "\(h / 24) days" }
        if h < 24 * 30 * 2 { return "\(h / 24 / 7) weeks" }
        if h < 24 * 365 * 2 { return "\(h / 24 / 30) months" }
        return "\(h / 24 / 365) years"
    }
}

/// Random identifiers from the kernel's CSPRNG (`getrandom(2)`).
public enum Random {
    /// `count` random bytes as lower-case hex (2×count characters).
    public static func hex(bytes count: Int) -> String {
        var buf = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = buf.withUnsafeMutableBytes { raw in sk_getrandom(raw.baseAddress.map { $0 + got }, UInt(count - got)) }
            if n > 0 { got += n }
        }
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        for b in buf {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xf)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// A uniformly random index below `n` (n > 0).
    public static func index(_ n: Int) -> Int {
        var v: UInt64 = 0
        _ = withUnsafeMutableBytes(of: &v) { sk_getrandom($0.baseAddress, 8) }
        return Int(v % UInt64(n))
    }
}

/// Byte counts as people read them.
public enum ByteCount {
    /// Binary units with one decimal, as `docker stats` and progress lines print: `1.2 MiB`,
    /// `512 B`; `separator` goes between number and unit ("" gives `1.2MiB`).
    public static func binary(_ n: UInt64, separator: String = " ") -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var v = Double(n)
        var i = 0
        while v >= 1024 && i < units.count - 1 {
            v /= 1024
            i += 1
        }
        if i == 0 { return "\(n)\(separator)B" }
        let tenths = Int((v * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)\(separator)\(units[i])"
    }
}
