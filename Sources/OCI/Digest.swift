import CCrypto

/// A content digest `algorithm:hex` (image-spec `descriptor.md#digests`). Only sha256 is accepted.
public struct Digest: Hashable, Codable, Sendable, CustomStringConvertible {
    /// Lower-case hex of the sha256, 64 characters.
    public let hex: String

    /// Parses `sha256:<64 lower-case hex>`.
    /// - Throws: `OCIError.invalidDigest` naming the string when it is not that shape.
    public init(parsing s: String) throws {
        let parts = s.split(separator: ":", maxSplits: 1)
        guard parts.count == 2, parts[0] == "sha256", parts[1].count == 64,
            parts[1].allSatisfy({ ("0"..."9").contains($0) || ("a"..."f").contains($0) })
        else { throw OCIError.invalidDigest(s) }
        hex = String(parts[1])
    }

    public init(hex: String) { self.hex = hex }

    public var description: String { "sha256:" + hex }
    /// First 12 hex digits, as `docker images` shows IDs.
    public var short: String { String(hex.prefix(12)) }

    public init(from decoder: Decoder) throws {
        let s = try decoder.singleValueContainer().decode(String.self)
        try self.init(parsing: s)
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// Incremental SHA-256 (OpenSSL libcrypto EVP, loaded on first use), for verifying blobs while they stream.
public final class SHA256Hasher {
    private let ctx: UnsafeMutableRawPointer

    public init() { ctx = sk_sha256_new() }
    deinit { sk_sha256_free(ctx) }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        if bytes.count > 0 { sk_sha256_update(ctx, bytes.baseAddress, bytes.count) }
    }
    public func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    /// Finishes and returns the digest.
    public func finalize() -> Digest {
        var out = [UInt8](repeating: 0, count: 32)
        sk_sha256_final(ctx, &out)
        return Digest(hex: Digest.hexString(out))
    }

    /// SHA-256 of a byte array.
    public static func hash(_ bytes: [UInt8]) -> Digest {
        let h = SHA256Hasher()
        h.update(bytes)
        return h.finalize()
    }
}

extension Digest {
    static let hexDigits = Array("0123456789abcdef".utf8)
    /// Lower-case hex of bytes.
    public static func hexString(_ bytes: [UInt8]) -> String {
        var s = [UInt8]()
        s.reserveCapacity(bytes.count * 2)
        for b in bytes {
            s.append(hexDigits[Int(b >> 4)])
            s.append(hexDigits[Int(b & 0xf)])
        }
        return String(decoding: s, as: UTF8.self)
    }
}

/// Errors about OCI documents.
public enum OCIError: Error, CustomStringConvertible {
    case invalidDigest(String)
    case invalidDocument(what: String, reason: String)

    public var description: String {
        switch self {
        case .invalidDigest(let s):
            return "invalid digest \"\(s)\": expected sha256:<64 lower-case hex digits>"
        case .invalidDocument(let what, let reason):
            return "invalid \(what): \(reason)"
        }
    }
}
