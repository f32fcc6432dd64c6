#if canImport(Glibc)
    import Glibc
#endif

/// Where Skiff keeps persistent state and runtime files.
///
/// Layout (all paths absolute):
/// - `root/state.db`: the SQLite state database (containers, images);
/// - `root/blobs/sha256/<hex>`: the content store;
/// - `root/layers/sha256/<hex>`: unpacked layers, one per layer digest;
/// - `root/containers/<id>/`: upperdir, workdir, `config.json`, `container.log`;
/// - `runDir/<id>/`: runtime files (rootfs mount point, generated `/etc` files), on tmpfs `/run`.
public struct StateRoot: Sendable {
    /// Default state root, as Docker's `/var/lib/docker`.
    public static let defaultPath = "/var/lib/skiff"
    /// Default runtime directory.
    public static let defaultRunDir = "/run/skiff"

    public let path: String
    public let runDir: String

    /// - Parameters:
    ///   - path: state root; `nil` means `$SKIFF_ROOT` or `/var/lib/skiff`.
    ///   - runDir: runtime directory; `nil` means `$SKIFF_RUN_DIR` or `/run/skiff`.
    public init(path: String? = nil, runDir: String? = nil) {
        let env = { (name: String) -> String? in
            guard let v = getenv(name) else { return nil }
            let s = String(cString: v)
            return s.isEmpty ? nil : s
        }
        self.path = StateRoot.absolute(path ?? env("SKIFF_ROOT") ?? StateRoot.defaultPath)
        self.runDir = StateRoot.absolute(runDir ?? env("SKIFF_RUN_DIR") ?? StateRoot.defaultRunDir)
    }

    public var databasePath: String { path + "/state.db" }
    public var blobsDir: String { path + "/blobs/sha256" }
    public var layersDir: String { path + "/layers/sha256" }
    public var containersDir: String { path + "/containers" }

    /// Creates the root's directories (mode 0700 for the root, like Docker's).
    /// - Throws: `StateRootError` naming the directory that could not be created.
    public func prepare() throws {
        for (dir, mode) in [
            (path, 0o700), (path + "/blobs", 0o700), (blobsDir, 0o700), (path + "/layers", 0o700),
            (layersDir, 0o700), (containersDir, 0o700), (runDir, 0o711),
        ] {
            try StateRoot.mkdirAll(dir, mode: mode_t(mode))
        }
    }

    /// Opens the state database, creating the root first.
    public func openDatabase() throws -> Database {
        try prepare()
        return try Database(path: databasePath)
    }

    /// `mkdir -p` with a mode for the directories it creates.
    public static func mkdirAll(_ path: String, mode: mode_t = 0o755) throws {
        // Usually the directory exists (every command prepares the state root): one mkdir says
        // so, instead of one per path component.
        if mkdir(path, mode) == 0 || errno == EEXIST { return }
        var built = path.hasPrefix("/") ? "" : "."
        for comp in path.split(separator: "/") {
            built += "/" + comp
            if mkdir(built, mode) != 0 && errno != EEXIST {
                let e = errno
                throw StateRootError(
                    message: "cannot create directory \(built): \(String(cString: strerror(e))); check permissions (Skiff must run as root)")
            }
        }
    }

    private static func absolute(_ p: String) -> String {
        if p.hasPrefix("/") { return p }
        var buf = [CChar](repeating: 0, count: 4096)
        guard getcwd(&buf, buf.count) != nil else { return p }
        let cwd = String(decoding: buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return cwd + "/" + p
    }
}

/// A state-root directory could not be prepared.
public struct StateRootError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
