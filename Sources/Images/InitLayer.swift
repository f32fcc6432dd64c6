import CSkiff
import LinuxSys

#if canImport(Glibc)
    import Glibc
#endif

/// The mount targets a container needs and its image may lack (`/proc`, `/sys`, `/dev`,
/// `/etc/hostname`, `/etc/hosts`, `/etc/resolv.conf`), as one read-only layer shared by every
/// container of the image: Docker's "init layer" (moby `daemon/initlayer`), made once per layer
/// chain instead of once per container.
///
/// Without it the container's first process creates the missing targets in the container's upper
/// directory on every start, and `rm` deletes them again: about a dozen file system metadata
/// operations per container (a few milliseconds on ext4). With it they exist in the merged root
/// already and the upper directory stays empty until the workload writes.
///
/// Only targets the image lacks are created, and only beneath directories the image has as real
/// directories (or lacks): a target whose parent is a symlink or a file in the image is left to
/// the start path, which resolves it inside the root. A directory the layer adds on top of one the
/// image has (`/etc`) copies its mode and owner, so the merged view keeps the image's.
///
/// Layout: `<layersDir>/<top layer hex>.init-<chain key>`, so image garbage collection removes it
/// together with the image's top layer (`ImageStore.collectGarbage` keys on the first 64 hex
/// digits). The chain key is FNV-1a 64 of the layer directories' names: a cache key, not a digest.
public enum InitLayer {
    /// Directories every container mounts something on (runtime-spec defaults).
    static let directories = ["proc", "sys", "dev"]
    /// Files in `/etc` every container bind-mounts its generated copy on.
    static let etcFiles = ["hostname", "hosts", "resolv.conf"]

    /// The init layer for an image, made on first use.
    /// - Parameters:
    ///   - layers: the image's layer directories, top layer first (overlayfs `lowerdir` order),
    ///     each named by its digest hex inside `layersDir`.
    ///   - layersDir: the state root's layer directory.
    /// - Returns: the layer's directory, to put first in `lowerdir`.
    /// - Throws: `SysError` when the layer cannot be written (the caller may go on without it).
    public static func ensure(layers: [String], layersDir: String) throws -> String? {
        guard !layers.isEmpty else { return nil }
        let path = layersDir + "/" + directoryName(layerHexes: layers.map { String($0.split(separator: "/").last ?? "") })
        if Files.isDirectory(path) { return path }
        let tmp = path + ".tmp-\(getpid())"
        try? Files.removeTree(tmp)
        try check(mkdir(tmp, 0o755), "mkdir", tmp)
        do {
            try populate(tmp, layers: layers)
        } catch {
            try? Files.removeTree(tmp)
            throw error
        }
        if rename(tmp, path) != 0 {
            let e = errno
            try? Files.removeTree(tmp)
            // Another start made it at the same moment.
            guard (e == EEXIST || e == ENOTEMPTY) && Files.isDirectory(path) else {
                throw SysError("rename", tmp, errno: e)
            }
        }
        return path
    }

    /// The init layer's directory name for a chain of layer digests (hex, top layer first):
    /// `<top>.init-<FNV-1a 64 of the chain>`.
    static func directoryName(layerHexes: [String]) -> String {
        (layerHexes.first ?? "") + ".init-" + fnv1a(layerHexes.joined(separator: "\n"))
    }

    /// Writes into `dir` the targets the merged `layers` lack.
    static func populate(_ dir: String, layers: [String]) throws {
        for name in directories where lookup([name], layers: layers) == .absent {
            try check(mkdir(dir + "/" + name, 0o755), "mkdir", dir + "/" + name)
        }
        let etc = lookup(["etc"], layers: layers)
        guard etc != .other else { return }  // /etc is a symlink or a file: leave it to the start path
        let missing = etcFiles.filter { lookup(["etc", $0], layers: layers) == .absent }
        guard !missing.isEmpty else { return }
        try check(mkdir(dir + "/etc", 0o755), "mkdir", dir + "/etc")
        if case .directory(let st) = etc {
            // The merged /etc takes its attributes from the top-most layer that has it: this one.
            _ = chmod(dir + "/etc", st.st_mode & 0o7777)
            _ = chown(dir + "/etc", st.st_uid, st.st_gid)
        }
        for name in missing {
            let file = dir + "/etc/" + name
            let fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            try check(fd, "create", file)
            close(fd)
        }
    }

    /// What the overlay of `layers` (top first) shows at `components`.
    enum Kind: Equatable {
        case absent
        case directory(stat)
        case other

        static func == (a: Kind, b: Kind) -> Bool {
            switch (a, b) {
            case (.absent, .absent), (.other, .other), (.directory, .directory): true
            default: false
            }
        }
    }

    /// Resolves a path the way overlayfs merges lower layers (Documentation/filesystems/
    /// overlayfs.rst): at each level the top-most layer with the name decides; a whiteout (a
    /// character device 0:0) hides it, a non-directory hides everything below, and directories
    /// merge with the ones below them unless one is opaque (`trusted.overlay.opaque=y`). Symlinks
    /// are not followed: a symlink on the way counts as `.other`.
    static func lookup(_ components: [String], layers: [String]) -> Kind {
        var dirs = layers
        for (i, name) in components.enumerated() {
            var merged: [String] = []
            var found = Kind.absent
            for parent in dirs {
                let p = parent + "/" + name
                var st = stat()
                guard lstat(p, &st) == 0 else { continue }
                let type = st.st_mode & S_IFMT
                if type == S_IFCHR && st.st_rdev == 0 { break }  // whiteout
                if type != S_IFDIR {
                    if found == .absent { found = .other }
                    break
                }
                if found == .absent { found = .directory(st) }
                merged.append(p)
                if isOpaque(p) { break }
            }
            guard i < components.count - 1, case .directory = found else { return found }
            dirs = merged
        }
        return .absent
    }

    static func isOpaque(_ path: String) -> Bool {
        var value: UInt8 = 0
        return sk_lgetxattr(path, "trusted.overlay.opaque", &value, 1) == 1 && value == UInt8(ascii: "y")
    }

    /// FNV-1a, 64 bits, as 16 hex digits.
    static func fnv1a(_ text: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
