/// An image name `repository:tag` as Docker spells it (`busybox:latest`,
/// `localhost:5000/team/app:v1`).
public struct ImageName: Hashable, Sendable, CustomStringConvertible {
    /// Repository: lower-case letters, digits, `._-/` and a `host:port/` prefix.
    public let repository: String
    /// Tag: up to 128 of `[A-Za-z0-9_.-]`, not starting with `.` or `-`.
    public let tag: String

    public var description: String { repository + ":" + tag }

    /// Parses `name[:tag]`; the tag defaults to `latest`. The tag is what follows the last `:`
    /// when no `/` follows it (so a registry port is not mistaken for a tag).
    /// - Throws: `ImageError.invalidReference` saying which part is wrong.
    public init(parsing s: String) throws {
        var repo = s
        var tag = "latest"
        if let colon = s.lastIndex(of: ":"), !s[s.index(after: colon)...].contains("/") {
            repo = String(s[..<colon])
            tag = String(s[s.index(after: colon)...])
        }
        try self.init(repository: repo, tag: tag, original: s)
    }

    /// Validates and stores `repository` and `tag`.
    /// - Throws: `ImageError.invalidReference`.
    public init(repository: String, tag: String) throws {
        try self.init(repository: repository, tag: tag, original: repository + ":" + tag)
    }

    private init(repository: String, tag: String, original: String) throws {
        let repoOK =
            !repository.isEmpty && repository.count <= 255
            && repository.unicodeScalars.allSatisfy { c in
                ("a"..."z").contains(c) || ("0"..."9").contains(c) || "._-/:".unicodeScalars.contains(c)
            }
            && !repository.hasPrefix("/") && !repository.hasSuffix("/") && !repository.hasPrefix("-")
        guard repoOK else {
            throw ImageError.invalidReference(
                original,
                reason:
                    "repository \"\(repository)\" must be lower-case letters, digits and ._-/ (e.g. busybox or team/app)"
            )
        }
        let tagOK =
            !tag.isEmpty && tag.count <= 128 && !tag.hasPrefix(".") && !tag.hasPrefix("-")
            && tag.unicodeScalars.allSatisfy { c in
                ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c)
                    || "_.-".unicodeScalars.contains(c)
            }
        guard tagOK else {
            throw ImageError.invalidReference(
                original, reason: "tag \"\(tag)\" must be 1-128 of A-Z a-z 0-9 _ . - and not start with . or -")
        }
        self.repository = repository
        self.tag = tag
    }
}
