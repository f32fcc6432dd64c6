import Foundation
import Glibc
import Testing

@testable import Images

/// The shared init layer: it holds exactly the mount targets the merged image lacks, follows
/// overlayfs's rules for whiteouts, opaque directories and non-directories, and never adds
/// anything beneath an image's symlink.
struct InitLayerTests {
    /// Makes layer directories under `sb.dir/layers` (named like digests) from shell commands,
    /// listed bottom first; returns them top first, as `lowerdir` lists them.
    func layers(_ sb: Sandbox, _ scripts: [String]) throws -> [String] {
        var dirs: [String] = []
        for (i, script) in scripts.enumerated() {
            let dir = sb.dir + "/layers/" + String(repeating: String(i), count: 64)
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try run(["sh", "-ec", "cd \(dir)\n" + script])
            dirs.append(dir)
        }
        return dirs.reversed()
    }

    func contents(_ dir: String) throws -> [String] {
        let out = try run(["sh", "-c", "cd \(dir) && find . -mindepth 1 | sort"])
        return out.split(separator: "\n").map { String($0.dropFirst(2)) }
    }

    @Test func holdsOnlyWhatTheImageLacks() throws {
        guard requireRoot("holdsOnlyWhatTheImageLacks") else { return }
        let sb = try Sandbox()
        defer { sb.cleanup() }
        // /proc exists; /etc exists (mode 0750, group 7) with hosts; the rest is missing.
        let l = try layers(sb, ["mkdir proc etc; chmod 0750 etc; chgrp 7 etc; echo x > etc/hosts"])
        let dir = try #require(try InitLayer.ensure(layers: l, layersDir: sb.dir + "/layers"))
        #expect(try contents(dir) == ["dev", "etc", "etc/hostname", "etc/resolv.conf", "sys"])
        var st = stat()
        #expect(lstat(dir + "/etc", &st) == 0 && st.st_mode & 0o7777 == 0o750 && st.st_gid == 7)
        #expect(dir.hasPrefix(l[0] + ".init-"), "garbage collection keys on the top layer's name")
        // Made once: a second call returns the same directory untouched.
        #expect(try InitLayer.ensure(layers: l, layersDir: sb.dir + "/layers") == dir)
    }

    @Test func followsWhiteoutsOpaqueDirectoriesAndFiles() throws {
        guard requireRoot("followsWhiteoutsOpaqueDirectoriesAndFiles") else { return }
        let sb = try Sandbox()
        defer { sb.cleanup() }
        let l = try layers(
            sb,
            [
                "mkdir -p proc sys dev etc; touch etc/hosts etc/hostname etc/resolv.conf",
                // Upper layer: /proc whited out, /sys replaced by a file, /etc opaque with hosts only.
                """
                mknod proc c 0 0; touch sys; mkdir etc; touch etc/hosts
                python3 -c 'import os; os.setxattr("etc", "trusted.overlay.opaque", b"y")'
                """,
            ])
        #expect(InitLayer.lookup(["proc"], layers: l) == .absent)
        #expect(InitLayer.lookup(["sys"], layers: l) == .other)
        #expect(InitLayer.lookup(["dev"], layers: l) == .directory(stat()))
        #expect(InitLayer.lookup(["etc", "hosts"], layers: l) == .other)
        #expect(InitLayer.lookup(["etc", "hostname"], layers: l) == .absent, "hidden by the opaque /etc")
        let dir = try #require(try InitLayer.ensure(layers: l, layersDir: sb.dir + "/layers"))
        // /sys is a file in the image: left alone (the start path refuses or resolves it).
        #expect(try contents(dir) == ["etc", "etc/hostname", "etc/resolv.conf", "proc"])
    }

    @Test func addsNothingBeneathASymlink() throws {
        guard requireRoot("addsNothingBeneathASymlink") else { return }
        let sb = try Sandbox()
        defer { sb.cleanup() }
        let l = try layers(sb, ["mkdir proc sys dev; ln -s /host/etc etc"])
        let dir = try #require(try InitLayer.ensure(layers: l, layersDir: sb.dir + "/layers"))
        #expect(try contents(dir).isEmpty)
        #expect(InitLayer.lookup(["etc", "hosts"], layers: l) == .other)
    }
}

/// An image's init layer goes with the image: garbage collection keeps the one made for a current
/// image's layer chain and removes one whose chain no image has any more, even when an image
/// still uses its top layer (two images sharing a top layer have one init layer each).
@Test func initLayersGoWithTheirImage() throws {
    guard requireRoot("initLayersGoWithTheirImage") else { return }
    let sb = try Sandbox()
    defer { sb.cleanup() }
    let store = try sb.store()
    let image = try #require(try store.load(path: try makeUmociImage(sb)).first)
    let lowerdirs = try store.resolve(image.id.description).lowerdirs
    let mine = try #require(try InitLayer.ensure(layers: lowerdirs, layersDir: sb.root.layersDir))
    // The same top layer over another chain: an init layer no image has.
    let other = sb.root.layersDir + "/" + InitLayer.directoryName(layerHexes: [image.layerDirectories.last!.split(separator: "/").last.map(String.init)!, "feed"])
    try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: false)
    let lock = try store.lockImages()
    try store.collectGarbage()
    close(lock)
    #expect(FileManager.default.fileExists(atPath: mine), "the image's own init layer is kept")
    #expect(!FileManager.default.fileExists(atPath: other), "an init layer of no image is removed")
    try store.remove(image.id.description, force: true)
    #expect(!FileManager.default.fileExists(atPath: mine), "rmi removes the image's init layer")
}
