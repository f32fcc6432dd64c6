import Foundation
import Glibc
import OCI
import Store
import Testing

@testable import Images

/// Builds a two-layer image with umoci at `sb.dir/<name>` (ref `latest`): layer 2 deletes a file,
/// replaces another, deletes a directory and recreates it with other content, adds a hardlink and
/// a symlink.
func makeUmociImage(_ sb: Sandbox, name: String = "app") throws -> String {
    let layout = sb.dir + "/" + name
    let bundle = sb.dir + "/bundle-" + name
    try run(["umoci", "init", "--layout", layout])
    try run(["umoci", "new", "--image", layout + ":latest"])
    try run(["umoci", "unpack", "--image", layout + ":latest", bundle])
    try run([
        "sh", "-ec",
        """
        cd \(bundle)/rootfs
        mkdir -p d sub/deep bin etc
        echo keep > keep; echo del > del; echo old > replace
        echo a > d/a; echo b > d/b; echo deep > sub/deep/file
        printf '#!/bin/sh\\n' > bin/tool; chmod 4755 bin/tool; chown 1000:1000 bin/tool
        chmod 0750 sub; mkfifo fifo
        """,
    ])
    try run(["umoci", "repack", "--refresh-bundle", "--image", layout + ":latest", bundle])
    try run([
        "sh", "-ec",
        """
        cd \(bundle)/rootfs
        rm del; echo new-content > replace; chmod 600 replace
        rm -rf d; mkdir d; echo c > d/c
        ln keep hard; ln -s keep sym; ln -s /etc/../keep abs
        """,
    ])
    try run(["umoci", "repack", "--image", layout + ":latest", bundle])
    try run(["umoci", "config", "--image", layout + ":latest", "--config.cmd", "sh"])
    try run(["rm", "-rf", bundle])
    return layout
}

/// A listing of a tree: path, type, mode, owner, size, content hash, link target.
func treeListing(_ root: String) throws -> String {
    try python(
        """
        import os, sys, hashlib, stat
        root = sys.argv[1]
        for dirpath, dirs, files in os.walk(root):
            dirs.sort()
            for n in sorted(dirs + files):
                p = os.path.join(dirpath, n); st = os.lstat(p); rel = os.path.relpath(p, root)
                line = [rel, oct(st.st_mode), str(st.st_uid), str(st.st_gid)]
                if stat.S_ISREG(st.st_mode):
                    line += [str(st.st_size), hashlib.sha256(open(p, "rb").read()).hexdigest()]
                if stat.S_ISLNK(st.st_mode): line.append(os.readlink(p))
                print(" ".join(line))
        """, [root])
}

@Test func importedLayersMatchUmociUnpack() throws {
    guard requireRoot("importedLayersMatchUmociUnpack") else { return }
    let sb = try Sandbox()
    defer { sb.cleanup() }
    let layout = try makeUmociImage(sb)
    let store = try sb.store()
    var lines: [String] = []
    let images = try store.load(path: layout, progress: { lines.append($0) })
    let image = try #require(images.first)
    #expect(image.names == ["app:latest"])
    #expect(image.layerDirectories.count == 2)
    #expect(lines.contains { $0.hasPrefix("Copying blob sha256:") })
    #expect(lines.contains { $0.hasPrefix("Unpacking layer 2/2") })
    #expect(lines.last?.hasPrefix("Unpacking layer 2/2") == true, "\(lines)")
    #expect(image.configuration.config?.Cmd == ["sh"])

    try run(["umoci", "unpack", "--image", layout + ":latest", sb.dir + "/ref"])
    let mnt = sb.dir + "/mnt"
    mkdir(mnt, 0o755)
    try run(["mount", "-t", "overlay", "overlay", "-o", "lowerdir=" + image.lowerdirOption, mnt])
    defer { _ = try? run(["umount", mnt]) }
    let ours = try treeListing(mnt)
    let reference = try treeListing(sb.dir + "/ref/rootfs")
    #expect(ours == reference)
    #expect(ours.contains("replace 0o100600"), "sanity: listing has content")
    #expect(!ours.contains("\nd/a ") && ours.contains("d/c "), "recreated directory hides the old content")
    #expect(!ours.contains("\ndel "))

    // Loading again reuses blobs and layers: nothing to copy or unpack, so no progress at all.
    lines = []
    let again = try store.load(path: layout, progress: { lines.append($0) })
    #expect(lines.isEmpty, "\(lines)")
    #expect(again.first?.id == image.id)
}

@Test func digestMismatchIsRefusedAndLeavesNoBlob() throws {
    guard requireRoot("digestMismatchIsRefusedAndLeavesNoBlob") else { return }
    let sb = try Sandbox()
    defer { sb.cleanup() }
    let layout = try makeUmociImage(sb)
    let store = try sb.store()
    // Corrupt the largest blob (a layer) keeping its size.
    let blobs = try FileManager.default.contentsOfDirectory(atPath: layout + "/blobs/sha256")
    let victim = try #require(
        blobs.max {
            (lstatOrNil(layout + "/blobs/sha256/" + $0)?.st_size ?? 0)
                < (lstatOrNil(layout + "/blobs/sha256/" + $1)?.st_size ?? 0)
        })
    let path = layout + "/blobs/sha256/" + victim
    var bytes = try #require(FileManager.default.contents(atPath: path))
    bytes[bytes.count / 2] ^= 0xff
    try bytes.write(to: URL(fileURLWithPath: path))
    do {
        try store.load(path: layout)
        Issue.record("corrupt blob was accepted")
    } catch let ImageError.digestMismatch(blob, expected, actual) {
        #expect(blob.contains(victim) && expected.hex == victim && actual.hex != victim)
    }
    let stored = try FileManager.default.contentsOfDirectory(atPath: sb.root.blobsDir)
    #expect(!stored.contains(victim))
    #expect(!stored.contains { $0.hasPrefix(".tmp") })
    #expect(try store.list().isEmpty)

    // The content store checks size too.
    let d = Descriptor(mediaType: "x", digest: SHA256Hasher.hash(Array("abc".utf8)), size: 2)
    try "abc".write(toFile: sb.dir + "/abc", atomically: false, encoding: .utf8)
    #expect(throws: ImageError.sizeMismatch(blob: d.digest.description, expected: 2, actual: 3)) {
        try store.content.ingest(path: sb.dir + "/abc", expected: d)
    }
    #expect(!store.content.contains(d.digest))
}

@Test func ociArchiveRefsAndNaming() throws {
    guard requireRoot("ociArchiveRefsAndNaming") else { return }
    let sb = try Sandbox()
    defer { sb.cleanup() }
    let layout = try makeUmociImage(sb, name: "web")
    try run(["umoci", "tag", "--image", layout + ":latest", "v2"])
    try run(["umoci", "tag", "--image", layout + ":latest", "example.com/team/web:v3"])
    try run(["tar", "-C", layout, "-cf", sb.dir + "/web-archive.tar", "."])
    let store = try sb.store()
    do {
        try store.load(path: sb.dir + "/web-archive.tar", ref: "nope")
        Issue.record("missing ref accepted")
    } catch let ImageError.refNotFound(ref, _, available) {
        #expect(ref == "nope" && Set(available) == ["latest", "v2", "example.com/team/web:v3"])
    }
    let one = try store.load(path: sb.dir + "/web-archive.tar", ref: "v2")
    #expect(one.map(\.names) == [["web-archive:v2"]])
    try store.load(path: layout, ref: "example.com/team/web:v3")
    try store.load(path: layout, ref: "latest", tag: "custom/name:1.0")
    let names = Set(try store.list().compactMap(\.name))
    #expect(names == ["web-archive:v2", "example.com/team/web:v3", "custom/name:1.0"])
    #expect(
        try FileManager.default.contentsOfDirectory(atPath: sb.root.path + "/tmp").isEmpty,
        "archive extraction is removed")
    #expect(ImageStore.splitLoadArgument(layout + ":v2") == (layout, "v2"))
    #expect(ImageStore.splitLoadArgument(layout) == (layout, nil))
}

@Test func resolveAndRemove() throws {
    guard requireRoot("resolveAndRemove") else { return }
    let sb = try Sandbox()
    defer { sb.cleanup() }
    let layout = try makeUmociImage(sb)
    let store = try sb.store()
    let image = try #require(try store.load(path: layout).first)
    try store.load(path: layout, tag: "app:v1")
    #expect(try store.resolve("app").id == image.id)
    #expect(try store.resolve("app:v1").id == image.id)
    #expect(try store.resolve(image.id.description).id == image.id)
    #expect(try store.resolve(String(image.id.hex.prefix(4))).id == image.id)
    #expect(try store.resolve("sha256:" + image.id.hex.prefix(6)).id == image.id)
    #expect(Set(try store.resolve("app").names) == ["app:latest", "app:v1"])
    #expect(try store.resolve("app").lowerdirs == image.layerDirectories.reversed())
    #expect(throws: ImageError.noSuchImage("nosuch")) { try store.resolve("nosuch") }
    #expect(throws: ImageError.noSuchImage("app:v9")) { try store.resolve("app:v9") }

    // In use: refused with the container names, nothing removed.
    do {
        try store.remove("app:latest", isInUse: { _ in ["web1"] })  // only untags: allowed
        try store.remove("app:v1", isInUse: { _ in ["web1", "web2"] })
        Issue.record("in-use image removed")
    } catch let ImageError.inUse(_, containers) {
        #expect(containers == ["web1", "web2"])
    }
    #expect(try store.resolve("app:v1").id == image.id)
    #expect(store.content.contains(image.id))

    let lines = try store.remove("app:v1")
    #expect(lines == ["Untagged: app:v1", "Deleted: \(image.id)"])
    #expect(try store.list().isEmpty)
    #expect(try FileManager.default.contentsOfDirectory(atPath: sb.root.blobsDir).isEmpty)
    #expect(try FileManager.default.contentsOfDirectory(atPath: sb.root.layersDir).isEmpty)
    // A later load recreates everything.
    try store.load(path: layout)
    #expect(try store.resolve("app").layerDirectories.count == 2)
}
