// OCI image-spec v1.1 types: descriptor.md, image-index.md, manifest.md, config.md.
// Missing optional fields decode as nil; unknown fields are ignored.

/// Media types used by image-spec v1.1 and Docker's schema 2.
public enum MediaType {
    public static let index = "application/vnd.oci.image.index.v1+json"
    public static let manifest = "application/vnd.oci.image.manifest.v1+json"
    public static let config = "application/vnd.oci.image.config.v1+json"
    public static let layerTar = "application/vnd.oci.image.layer.v1.tar"
    public static let layerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
    public static let layerZstd = "application/vnd.oci.image.layer.v1.tar+zstd"
    public static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
}

/// A content descriptor (`descriptor.md`): media type, digest, size in bytes.
public struct Descriptor: Codable, Sendable, Equatable {
    public var mediaType: String
    public var digest: Digest
    /// Size of the blob in bytes.
    public var size: Int64
    public var annotations: [String: String]?
    public var platform: Platform?

    public init(mediaType: String, digest: Digest, size: Int64, annotations: [String: String]? = nil) {
        self.mediaType = mediaType
        self.digest = digest
        self.size = size
        self.annotations = annotations
    }
}

/// `platform` of an index entry.
public struct Platform: Codable, Sendable, Equatable {
    public var architecture: String
    public var os: String
    public var variant: String?
}

/// `index.json` / image index (`image-index.md`).
public struct ImageIndex: Codable, Sendable {
    public var schemaVersion: Int
    public var mediaType: String?
    public var manifests: [Descriptor]
    public var annotations: [String: String]?
}

/// Image manifest (`manifest.md`).
public struct ImageManifest: Codable, Sendable {
    public var schemaVersion: Int
    public var mediaType: String?
    public var config: Descriptor
    public var layers: [Descriptor]
    public var annotations: [String: String]?
}

/// Image configuration (`config.md`).
public struct ImageConfiguration: Codable, Sendable {
    public var created: String?
    public var author: String?
    public var architecture: String
    public var os: String
    public var config: ImageRuntimeConfig?
    public var rootfs: RootFS
    public var history: [History]?

    public struct RootFS: Codable, Sendable {
        public var type: String
        /// Digests of the uncompressed layer tars, in order.
        public var diff_ids: [Digest]
    }
    public struct History: Codable, Sendable {
        public var created: String?
        public var created_by: String?
        public var empty_layer: Bool?
        public var comment: String?
    }
}

/// The `config` object of an image configuration: execution defaults.
public struct ImageRuntimeConfig: Codable, Sendable {
    public var User: String?
    public var ExposedPorts: [String: EmptyObject]?
    public var Env: [String]?
    public var Entrypoint: [String]?
    public var Cmd: [String]?
    public var Volumes: [String: EmptyObject]?
    public var WorkingDir: String?
    public var Labels: [String: String]?
    public var StopSignal: String?

    public init() {}
}

/// `{}` in JSON (used by ExposedPorts and Volumes).
public struct EmptyObject: Codable, Sendable, Equatable {
    public init() {}
}
