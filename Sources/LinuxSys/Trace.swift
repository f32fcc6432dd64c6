#if canImport(Glibc)
    import Glibc
#endif

/// Start-path timeline for profiling: with `SKIFF_TRACE=1`, `mark` prints the milliseconds since
/// the first mark and since the previous one to stderr. Off by default; one `getenv` per process.
public enum Trace {
    nonisolated(unsafe) static var enabled: Bool? = nil
    nonisolated(unsafe) static var start = 0.0
    nonisolated(unsafe) static var last = 0.0

    public static func mark(_ what: String) {
        if enabled == nil {
            let value = getenv("SKIFF_TRACE").map { String(cString: $0) }
            enabled = value != nil
            // A child started by exec continues its parent's timeline: SKIFF_TRACE=<epoch>.
            if let v = value, let epoch = Double(v), epoch > 1 {
                start = epoch
                last = epoch
            }
        }
        guard enabled == true else { return }
        let now = Clock.monotonic()
        if start == 0 {
            start = now
            last = now
        }
        let line = "trace \(getpid()) \(String(format3((now - start) * 1000))) ms (+\(format3((now - last) * 1000))) \(what)\n"
        last = now
        try? Files.write(fd: 2, Array(line.utf8))
    }

    /// The timeline's origin (CLOCK_MONOTONIC seconds), for a child's `SKIFF_TRACE`; nil when off.
    public static var epoch: Double? { enabled == true && start > 0 ? start : nil }

    private static func format3(_ v: Double) -> String {
        let r = (v * 1000).rounded() / 1000
        return String(r)
    }
}
