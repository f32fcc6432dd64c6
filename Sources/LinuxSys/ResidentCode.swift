#if canImport(Glibc)
    import Glibc
#endif

/// Giving back the pages of code a long-running process needed only to start.
///
/// A detached VMM is the whole `skiff` binary: argument parsing, the state database, JSON, the
/// kernel loaders and ACPI tables all ran once before the first `KVM_RUN` and stay resident,
/// counted in its RSS. `dropCleanFileMappings` tells the kernel (`madvise(MADV_DONTNEED)`,
/// madvise(2)) that the process no longer needs the pages of its read-only, file-backed,
/// never-written mappings — program text and read-only data of the binary and its libraries. The
/// pages stay in the page cache; what the vCPU loop and the devices run faults back in on first
/// use, so the resident set settles at the code the running VM really uses.
///
/// Only mappings that are safe to drop are touched: not writable, backed by a file, and without a
/// single private (copy-on-write) page — smaps' `Anonymous: 0 kB` — so relocated read-only data
/// (RELRO), which exists only in the process's own copy, is never discarded.
public enum ResidentCode {
    /// One `/proc/self/smaps` mapping.
    struct Mapping {
        var start: UInt
        var end: UInt
        var permissions: String
        var path: String
        var anonymousKiB: Int = -1
    }

    /// Parses `/proc/self/smaps` text.
    static func mappings(_ smaps: String) -> [Mapping] {
        var out: [Mapping] = []
        for line in smaps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if let range = fields.first, range.contains("-"), fields.count >= 5, !range.hasSuffix(":") {
                let ends = range.split(separator: "-").compactMap { UInt($0, radix: 16) }
                guard ends.count == 2 else { continue }
                out.append(
                    Mapping(
                        start: ends[0], end: ends[1], permissions: String(fields[1]),
                        path: fields.count >= 6 ? fields[5...].joined(separator: " ") : ""))
            } else if fields.first == "Anonymous:", fields.count >= 2, !out.isEmpty {
                out[out.count - 1].anonymousKiB = Int(fields[1]) ?? -1
            }
        }
        return out
    }

    /// Whether a mapping may be dropped (see the type's documentation).
    static func droppable(_ m: Mapping) -> Bool {
        m.path.hasPrefix("/") && !m.permissions.contains("w") && m.permissions.hasPrefix("r")
            && m.permissions.hasSuffix("p") && m.anonymousKiB == 0
    }

    /// Calls `dropCleanFileMappings` from a detached thread after `seconds`, so a short-lived process
    /// (a VM that boots and exits at once) does not pay for faulting its code back in.
    public static func dropLater(after seconds: Double) {
        let micros = UInt32(max(0, min(seconds, 3600)) * 1_000_000)
        var thread = pthread_t()
        let box = UnsafeMutablePointer<UInt32>.allocate(capacity: 1)
        box.initialize(to: micros)
        let rc = pthread_create(
            &thread, nil,
            { raw in
                guard let p = raw?.assumingMemoryBound(to: UInt32.self) else { return nil }
                let us = p.pointee
                p.deallocate()
                usleep(us)
                ResidentCode.dropCleanFileMappings()
                return nil
            }, box)
        if rc == 0 { pthread_detach(thread) } else { box.deallocate() }
    }

    /// Drops this process's clean file-backed pages. Returns the bytes of address space advised.
    @discardableResult
    public static func dropCleanFileMappings() -> UInt {
        guard let smaps = try? Files.readString("/proc/self/smaps") else { return 0 }
        var advised: UInt = 0
        for m in mappings(smaps) where droppable(m) {
            let p = UnsafeMutableRawPointer(bitPattern: m.start)
            if madvise(p, Int(m.end - m.start), MADV_DONTNEED) == 0 {
                advised += m.end - m.start
                // No fault-around or read-ahead from now on (VM_RAND_READ): a page the running VM
                // needs comes back alone, not with the 15 neighbours it would otherwise bring.
                _ = madvise(p, Int(m.end - m.start), MADV_RANDOM)
            }
        }
        return advised
    }
}
