import Foundation
import Glibc
import OCI
import Testing

@testable import Images

/// Writes an OCI layout at `dir` with one layer made from `tar`, compressed with `compression`
/// (`gzip`, `zstd` or `none`), ref `latest`. `diffID` overrides the config's diff_id.
/// With `nested`, index.json points at an image index listing linux/arm64 (a manifest that is not
/// in the layout) before linux/amd64.
func makeLayout(_ dir: String, tar: String, compression: String, diffID: String? = nil, nested: Bool = false) throws {
    try python(
        """
        import sys, os, json, hashlib, subprocess
        out, tar, comp, override, nested = sys.argv[1:6]
        os.makedirs(out + "/blobs/sha256")
        def put(b):
            h = hashlib.sha256(b).hexdigest()
            open(out + "/blobs/sha256/" + h, "wb").write(b)
            return "sha256:" + h, len(b)
        raw = open(tar, "rb").read()
        if comp == "gzip": data, mt = subprocess.run(["gzip", "-c"], input=raw, capture_output=True).stdout, "application/vnd.oci.image.layer.v1.tar+gzip"
        elif comp == "zstd": data, mt = subprocess.run(["zstd", "-c", "-q"], input=raw, capture_output=True).stdout, "application/vnd.oci.image.layer.v1.tar+zstd"
        else: data, mt = raw, "application/vnd.oci.image.layer.v1.tar"
        ld, ls = put(data)
        diff = override or "sha256:" + hashlib.sha256(raw).hexdigest()
        cfg = {"architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05Z",
               "config": {"Cmd": ["sh"]}, "rootfs": {"type": "layers", "diff_ids": [diff]}}
        cd, cs = put(json.dumps(cfg).encode())
        man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
               "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
               "layers": [{"mediaType": mt, "digest": ld, "size": ls}]}
        md, ms = put(json.dumps(man).encode())
        top = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms}
        if nested == "1":
            other = {"mediaType": top["mediaType"], "digest": "sha256:" + "1" * 64, "size": 10,
                     "platform": {"architecture": "arm64", "os": "linux"}}
            mine = dict(top, platform={"architecture": "amd64", "os": "linux"})
            nd, ns = put(json.dumps({"schemaVersion": 2, "manifests": [other, mine]}).encode())
            top = {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": nd, "size": ns}
        top["annotations"] = {"org.opencontainers.image.ref.name": "latest"}
        idx = {"schemaVersion": 2, "manifests": [top]}
        open(out + "/index.json", "w").write(json.dumps(idx))
        open(out + "/oci-layout", "w").write('{"imageLayoutVersion": "1.0.0"}')
        """, [dir, tar, compression, diffID ?? "", nested ? "1" : "0"])
}

@Test func loadsGzipZstdAndPlainLayers() throws {
    guard requireRoot("loadsGzipZstdAndPlainLayers") else { return }
    let sb = try Sandbox()
    defer { sb.cleanup() }
    let tar = sb.dir + "/l.tar"
    try buildTar(tar, #"data("hello", b"hi"); data("big", bytes(range(256)) * 4096)"#)
    let store = try sb.store()
    for comp in ["gzip", "zstd", "none"] {
        try makeLayout(sb.dir + "/img-" + comp, tar: tar, compression: comp)
        let image = try #require(try store.load(path: sb.dir + "/img-" + comp).first)
        // The config is the same each time, so it is one image (ID = config digest) with three names.
        #expect(image.names.contains("img-\(comp):latest"))
        #expect(image.manifest.layers.first?.mediaType.hasSuffix(comp == "none" ? ".tar" : comp) == true)
        let top = try #require(image.layerDirectories.last)
        #expect(fileText(top + "/hello") == "hi")
        #expect(lstatOrNil(top + "/big")?.st_size == 256 * 4096)
        #expect(try store.list().first { $0.name == "img-\(comp):latest" }?.created == "2024-01-02T03:04:05Z")
    }
    // Only the last manifest's layer is still referenced; the others were collected.
    #expect(try FileManager.default.contentsOfDirectory(atPath: sb.root.layersDir).count == 1)
}

@Test func nestedIndexPicksTheHostPlatform() throws {
    guard requireRoot("nestedIndexPicksTheHostPlatform") else { return }
    #if arch(x86_64)
        let sb = try Sandbox()
        defer { sb.cleanup() }
        let tar = sb.dir + "/l.tar"
        try buildTar(tar, #"data("hello", b"amd64")"#)
        try makeLayout(sb.dir + "/multi", tar: tar, compression: "gzip", nested: true)
        let image = try #require(try sb.store().load(path: sb.dir + "/multi").first)
        #expect(image.names == ["multi:latest"])
        #expect(fileText((image.layerDirectories.last ?? "") + "/hello") == "amd64")
    #else
        print("skipping nestedIndexPicksTheHostPlatform: the fixture's host manifest is linux/amd64")
    #endif
}

@Test func diffIDMismatchIsRefused() throws {
    guard requireRoot("diffIDMismatchIsRefused") else { return }
    let sb = try Sandbox()
    defer { sb.cleanup() }
    let tar = sb.dir + "/l.tar"
    try buildTar(tar, #"data("hello", b"hi")"#)
    let wrong = "sha256:" + String(repeating: "0", count: 64)
    try makeLayout(sb.dir + "/bad", tar: tar, compression: "gzip", diffID: wrong)
    let store = try sb.store()
    do {
        try store.load(path: sb.dir + "/bad")
        Issue.record("layer with a wrong diff_id was accepted")
    } catch let ImageError.diffIDMismatch(_, expected, _) {
        #expect(expected.description == wrong)
    }
    #expect(try store.list().isEmpty)
    #expect(try FileManager.default.contentsOfDirectory(atPath: sb.root.layersDir).isEmpty)
}

@Test func loadsTheBusyboxImage() throws {
    guard requireRoot("loadsTheBusyboxImage") else { return }
    let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    let layout = repo + "/images/busybox/out/busybox"
    guard lstatOrNil(layout + "/index.json") != nil else {
        print("skipping loadsTheBusyboxImage: run images/busybox/build first")
        return
    }
    let sb = try Sandbox()
    defer { sb.cleanup() }
    let store = try sb.store()
    let image = try #require(try store.load(path: layout).first)
    #expect(image.names == ["busybox:latest"])
    #expect(image.configuration.config?.Cmd == ["sh"])
    #expect(image.configuration.config?.Env == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"])
    let top = try #require(image.layerDirectories.last)
    #expect(readLink(top + "/bin/sh") == "busybox")
    #expect((lstatOrNil(top + "/bin/busybox")?.st_mode ?? 0) & 0o111 != 0)
    #expect(fileText(top + "/etc/passwd")?.contains("app:x:1000:1000") == true)
    #expect(lstatOrNil(top + "/tmp")?.st_mode == S_IFDIR | 0o1777)
    #expect(lstatOrNil(top + "/home/app")?.st_uid == 1000)
}
