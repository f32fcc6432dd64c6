import OCI

/// Everything that can go wrong in the image store, each case saying what failed, on which path or
/// value, and what to do about it.
public enum ImageError: Error, CustomStringConvertible, Equatable {
    /// A system call failed: `call` on `path` with `errno`.
    case system(call: String, path: String, errno: Int32)
    /// A blob's content does not hash to the digest its descriptor names.
    case digestMismatch(blob: String, expected: Digest, actual: Digest)
    /// A blob's byte count differs from the descriptor's `size`.
    case sizeMismatch(blob: String, expected: Int64, actual: Int64)
    /// A layer's uncompressed content does not match the config's `rootfs.diff_ids` entry.
    case diffIDMismatch(layer: Digest, expected: Digest, actual: Digest)
    /// libarchive could not read an archive (tar, oci-archive, compressed layer).
    case archive(path: String, message: String)
    /// A tar entry was refused by the layer unpacker (unsafe or impossible to apply).
    case badEntry(archive: String, entry: String, reason: String)
    /// The path given to `load` is not a usable OCI image layout or oci-archive.
    case invalidLayout(path: String, reason: String)
    /// The requested ref is not in the layout's `index.json`.
    case refNotFound(ref: String, path: String, available: [String])
    /// No manifest matched the host platform in an image index.
    case noMatchingPlatform(wanted: String, available: [String])
    /// A name such as `busybox:latest` or an ID prefix that names no image.
    case noSuchImage(String)
    /// An ID prefix that matches several images.
    case ambiguous(String, candidates: [String])
    /// An image name or tag that is not valid.
    case invalidReference(String, reason: String)
    /// The image is used by containers and cannot be removed.
    case inUse(image: String, containers: [String])
    /// An ID names an image with several tags and `force` was not given.
    case multipleTags(image: String, tags: [String])
    /// The image's unpacked layers are missing from the state root.
    case layersMissing(image: String, path: String)

    public var description: String {
        switch self {
        case .system(let call, let path, let e):
            return "\(call) \(path): \(errnoString(e))"
        case .digestMismatch(let blob, let expected, let actual):
            return
                "blob \(blob) is corrupt: expected digest \(expected), got \(actual); the image source is damaged or was modified, re-create or re-download it"
        case .sizeMismatch(let blob, let expected, let actual):
            return
                "blob \(blob) is corrupt: descriptor says \(expected) bytes, content has \(actual)\(actual > expected ? " or more" : ""); re-create or re-download the image"
        case .diffIDMismatch(let layer, let expected, let actual):
            return
                "layer \(layer) does not match the image config: rootfs.diff_ids says \(expected), the uncompressed layer hashes to \(actual); the image is inconsistent, rebuild it"
        case .archive(let path, let message):
            return "cannot read archive \(path): \(message)"
        case .badEntry(let archive, let entry, let reason):
            return "refusing tar entry \"\(entry)\" in \(archive): \(reason)"
        case .invalidLayout(let path, let reason):
            return "\(path) is not an OCI image layout or oci-archive: \(reason)"
        case .refNotFound(let ref, let path, let available):
            let list =
                available.isEmpty
                ? "none (the index has no org.opencontainers.image.ref.name annotations)"
                : available.joined(separator: ", ")
            return "no image with ref \"\(ref)\" in \(path); available refs: \(list)"
        case .noMatchingPlatform(let wanted, let available):
            return
                "no manifest for platform \(wanted) in the image index; available: \(available.joined(separator: ", "))"
        case .noSuchImage(let s):
            return "no such image: \(s); see `skiff images`"
        case .ambiguous(let s, let candidates):
            return
                "image reference \(s) is ambiguous: it matches \(candidates.joined(separator: ", ")); give more digits of the ID or a name:tag"
        case .invalidReference(let s, let reason):
            return "invalid image reference \"\(s)\": \(reason)"
        case .inUse(let image, let containers):
            return "image \(image) is used by container(s) \(containers.joined(separator: ", ")); `skiff rm` them first"
        case .multipleTags(let image, let tags):
            return
                "image \(image) has several tags (\(tags.joined(separator: ", "))); remove them by name or pass --force to remove all"
        case .layersMissing(let image, let path):
            return "image \(image) is incomplete: \(path) is missing; load the image again with `skiff load`"
        }
    }
}

/// `strerror(e)` as a String.
func errnoString(_ e: Int32) -> String {
    guard let s = strerror(e) else { return "errno \(e)" }
    return String(cString: s)
}

#if canImport(Glibc)
    import Glibc
#endif
