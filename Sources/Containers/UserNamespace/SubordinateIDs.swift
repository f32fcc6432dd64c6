import LinuxSys

#if canImport(Glibc)
    import Glibc
#endif

/// A block of host ids: `start` … `start + count - 1`.
struct IDRange: Equatable, Sendable {
    var start: UInt32
    var count: UInt32
    /// One past the last id (as a 64-bit number: `start + count` may be 2³²).
    var end: UInt64 { UInt64(start) + UInt64(count) }

    func overlaps(_ other: IDRange) -> Bool {
        UInt64(start) < other.end && UInt64(other.start) < end
    }

    var description: String { "\(start)-\(end - 1)" }
}

/// The subordinate id ranges of the user `skiff` in `/etc/subuid` or `/etc/subgid` (subuid(5):
/// one `NAME:START:COUNT` a line), from which `--userns=auto` takes each container's block.
struct SubordinateIDs {
    /// The user whose ranges Skiff uses (Podman's `--userns=auto` uses `containers`).
    static let user = "skiff"
    /// A line to suggest when there is none: 1000 blocks of 65536 ids from 1 000 000.
    static let exampleLine = "skiff:1000000:65536000"

    /// The file the ranges came from (for messages).
    let file: String
    /// "uid" or "gid".
    let kind: String
    /// The user's ranges in file order, each at least one id, none including id 0.
    let ranges: [IDRange]

    /// Ids the ranges hold in all.
    var total: UInt64 { ranges.reduce(0) { $0 + UInt64($1.count) } }

    /// `/etc/subuid`, or `$SKIFF_SUBUID` (for tests and hosts that keep it elsewhere).
    static var uidFile: String { environment("SKIFF_SUBUID") ?? "/etc/subuid" }
    /// `/etc/subgid`, or `$SKIFF_SUBGID`.
    static var gidFile: String { environment("SKIFF_SUBGID") ?? "/etc/subgid" }

    private static func environment(_ name: String) -> String? {
        guard let v = getenv(name) else { return nil }
        let s = String(cString: v)
        return s.isEmpty ? nil : s
    }

    /// Reads `path` and keeps the lines of `SubordinateIDs.user`.
    /// - Throws: `SkiffError` when the file cannot be read, has a malformed line for the user
    ///   (naming file and line), or has no range for the user (with a line to add).
    static func load(_ path: String, kind: String) throws -> SubordinateIDs {
        let text: String
        do { text = try Files.readString(path) } catch let e as SysError {
            throw SkiffError(
                "--userns=auto needs subordinate \(kind)s for the user \"\(user)\", but \(path) cannot be read (\(SysError.message(e.errno))); create it with a line such as \(exampleLine)"
            )
        }
        let ranges = try parse(text, file: path, kind: kind)
        guard !ranges.isEmpty else {
            throw SkiffError(
                "--userns=auto needs subordinate \(kind)s for the user \"\(user)\", and \(path) has no line for it; add one whose range overlaps no other line, e.g. `echo \(exampleLine) >> \(path)` (and the same in \(kind == "uid" ? gidFile : uidFile))"
            )
        }
        return SubordinateIDs(file: path, kind: kind, ranges: ranges)
    }

    /// The ranges of `user` in the text of a subuid/subgid file. Lines of other users, blank
    /// lines and `#` comments are skipped.
    /// - Throws: `SkiffError` `FILE:LINE: …` for a line of `user` that is not `NAME:START:COUNT`
    ///   with whole numbers, has COUNT 0, goes past uid 4294967294, or includes id 0 (which would
    ///   make the container's root the host's).
    static func parse(_ text: String, file: String, kind: String, user: String = user) throws -> [IDRange] {
        var out: [IDRange] = []
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = String(raw).trimming(" \t\r")
            if line.isEmpty || line.hasPrefix("#") { continue }
            let fields = line.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard fields[0] == user else { continue }
            let at = "\(file):\(n + 1)"
            guard fields.count == 3, let start = UInt32(fields[1]), let count = UInt32(fields[2]) else {
                throw SkiffError("\(at): invalid line \"\(line)\": expected \(user):START:COUNT with whole numbers")
            }
            guard count > 0 else { throw SkiffError("\(at): the range \"\(line)\" has no ids (COUNT is 0)") }
            guard start > 0 else {
                throw SkiffError(
                    "\(at): the range \"\(line)\" includes \(kind) 0, which would make the container's root the host's root; start it above the host's own \(kind)s, e.g. \(exampleLine)"
                )
            }
            // 4294967295 is (uid_t)-1, never a valid id.
            guard UInt64(start) + UInt64(count) <= UInt64(UInt32.max) else {
                throw SkiffError("\(at): the range \"\(line)\" goes past \(kind) 4294967294")
            }
            out.append(IDRange(start: start, count: count))
        }
        return out
    }

    /// The lowest block of `size` ids inside one of `ranges` that overlaps none of `taken`.
    /// A block starts at the start of a range or right after a taken block, so blocks pack from
    /// the bottom and a released one is reused first.
    static func lowestFree(size: UInt32, in ranges: [IDRange], taken: [IDRange]) -> UInt32? {
        let candidates = (ranges.map { UInt64($0.start) } + taken.map(\.end)).sorted()
        for c in candidates {
            guard c + UInt64(size) <= UInt64(UInt32.max) else { continue }
            let block = IDRange(start: UInt32(c), count: size)
            guard ranges.contains(where: { UInt64($0.start) <= c && block.end <= $0.end }) else { continue }
            if !taken.contains(where: { $0.overlaps(block) }) { return block.start }
        }
        return nil
    }

    /// A free block of `size` ids for a new container, given the blocks other containers hold.
    /// - Throws: `SkiffError` when the ranges are too small for `size`, or all taken.
    func allocate(size: UInt32, taken: [IDRange]) throws -> UInt32 {
        if let start = SubordinateIDs.lowestFree(size: size, in: ranges, taken: taken) { return start }
        let largest = ranges.map(\.count).max() ?? 0
        let list = ranges.map(\.description).joined(separator: ", ")
        if largest < size {
            throw SkiffError(
                "--userns=auto:size=\(size) needs \(size) consecutive \(kind)s, but the largest range of \"\(SubordinateIDs.user)\" in \(file) has \(largest) (\(list)); ask for less with size=N or give \(SubordinateIDs.user) a larger range in \(file)"
            )
        }
        let held = taken.reduce(UInt64(0)) { $0 + UInt64($1.count) }
        throw SkiffError(
            "--userns=auto: no free block of \(size) \(kind)s is left in the ranges of \"\(SubordinateIDs.user)\" in \(file) (\(list)); \(taken.count == 1 ? "1 container holds" : "\(taken.count) containers hold") \(held) of them; remove containers (skiff rm) or add a range to \(file)"
        )
    }
}
