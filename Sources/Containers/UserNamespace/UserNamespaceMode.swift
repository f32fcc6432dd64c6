import LinuxSys

/// `--userns`: whether a container's ids are the host's or an unprivileged block of them.
///
/// `auto` gives the container its own user namespace whose ids 0 … size-1 are a block of host ids
/// taken from the subordinate ranges of the user `skiff` (`/etc/subuid`, `/etc/subgid`), as
/// Podman's `--userns=auto` does with the user `containers`: root in the container is an
/// unprivileged uid on the host.
public enum UserNamespaceMode: Equatable, Sendable {
    /// The host's user namespace (the default): container root is host root.
    case host
    /// An own user namespace mapping ids 0 … `size`-1 to a free block of subordinate ids.
    case auto(size: UInt32)

    /// Ids per container unless `size=` says otherwise: every 16-bit uid, as Podman's default.
    public static let defaultSize: UInt32 = 65536

    /// Parses `--userns` (`host`, `auto`, `auto:size=N`); nil or "" is `host`.
    /// - Throws: `SkiffError` naming the value and what is accepted.
    public static func parse(_ value: String?) throws -> UserNamespaceMode {
        guard let value, !value.isEmpty, value != "host" else { return .host }
        let usage = "use host (the default) or auto[:size=N], e.g. --userns=auto:size=65536"
        let parts = value.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard parts[0] == "auto" else { throw SkiffError("invalid --userns \"\(value)\": \(usage)") }
        guard parts.count == 2 else { return .auto(size: defaultSize) }
        var size = defaultSize
        for option in parts[1].split(separator: ",", omittingEmptySubsequences: false) {
            let kv = option.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2, kv[0] == "size" else {
                throw SkiffError(
                    "invalid --userns \"\(value)\": unknown option \"\(option)\"; the only option of auto is size=N (ids in the container)"
                )
            }
            guard let n = UInt32(kv[1]), n >= 1 else {
                throw SkiffError(
                    "invalid --userns \"\(value)\": size must be a whole number of ids from 1 to \(UInt32.max), e.g. size=65536"
                )
            }
            size = n
        }
        return .auto(size: size)
    }

    /// What `auto` takes its block from: the size and the user's subordinate uid and gid ranges.
    struct IDSource {
        var size: UInt32
        var uids: SubordinateIDs
        var gids: SubordinateIDs
    }

    /// Reads `/etc/subuid` and `/etc/subgid` for `auto`; nil for `host`.
    /// - Throws: `SkiffError` from `SubordinateIDs.load`.
    func idSource() throws -> IDSource? {
        guard case .auto(let size) = self else { return nil }
        let uids = try SubordinateIDs.load(SubordinateIDs.uidFile, kind: "uid")
        let gids = try SubordinateIDs.load(SubordinateIDs.gidFile, kind: "gid")
        return IDSource(size: size, uids: uids, gids: gids)
    }

    /// Refuses what cannot work, or would not be safe, in a user namespace.
    /// - Throws: `SkiffError` naming both flags and why.
    func checkCombination(_ req: CreateRequest) throws {
        guard case .auto = self else { return }
        if req.privileged {
            throw SkiffError(
                "--userns=auto cannot be combined with --privileged: a privileged container gets every capability on the host, which is what a user namespace takes away; drop one of them"
            )
        }
        if req.network == "host" {
            throw SkiffError(
                "--userns=auto cannot be combined with --network host: the container's /sys can only be mounted in a network namespace its user namespace owns; use --network none"
            )
        }
        if req.rootfs != nil {
            throw SkiffError(
                "--userns=auto cannot be combined with --rootfs: the directory is used in place, so the container's root would write it through an idmapped mount as the host's root (setuid files included); load it as an image instead (umoci/skopeo, then skiff load)"
            )
        }
    }
}
