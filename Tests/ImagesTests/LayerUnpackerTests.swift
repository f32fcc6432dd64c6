import Foundation
import Glibc
import OCI
import Testing

@testable import Images

/// Unpacks `tar` as layer `digest`-less into a fresh dir of the sandbox; returns the layer dir.
func unpackLayer(_ sb: Sandbox, _ tar: String, name: String = "layer") throws -> String {
    let dir = sb.root.layersDir + "/" + name
    guard mkdir(dir, 0o700) == 0 else { throw TestFailure("mkdir \(dir)") }
    try LayerUnpacker().unpack(archivePath: tar, into: dir, kind: .layer)
    return dir
}

@Test func unpacksEveryEntryType() throws {
    guard requireRoot("unpacksEveryEntryType") else { return }
    let sb = try Sandbox()
    defer { sb.cleanup() }
    let longDir = String(repeating: "d", count: 60) + "/" + String(repeating: "e", count: 60)
    let longTarget = "/" + String(repeating: "t", count: 150)
    for format in ["PAX", "GNU"] {
        let tar = sb.dir + "/types-\(format).tar"
        try buildTar(
            tar, format: format,
            """
            add("etc", mode=0o750, uid=7, gid=8, mtime=1500000000)
            data("etc/passwd", b"root:x:0:0::/root:/bin/sh\\n", mode=0o644, mtime=1400000000)
            data("bin/su", b"\\x7fELF", mode=0o4755, uid=0, gid=0)
            data("home/app/owned", b"x", mode=0o600, uid=1000, gid=1000)
            add("tmp", mode=0o1777)
            data("\(longDir)/" + "f" * 120, b"long name", mode=0o640)
            add("link", tarfile.SYMTYPE, linkname="\(longTarget)")
            add("hard", tarfile.LNKTYPE, linkname="etc/passwd")
            add("dev/null", tarfile.CHRTYPE, mode=0o666, devmajor=1, devminor=3)
            add("dev/loop0", tarfile.BLKTYPE, mode=0o660, devmajor=7, devminor=0)
            add("fifo", tarfile.FIFOTYPE, mode=0o600)
            \(format == "PAX" ? "add(\"xattrs\", tarfile.REGTYPE, b\"\", pax_headers={\"SCHILY.xattr.user.skiff\": \"yes\"}, mode=0o644)" : "")
            """)
        let l = try unpackLayer(sb, tar, name: "types-\(format)")
        let etc = try #require(lstatOrNil(l + "/etc"))
        #expect(etc.st_mode & 0o7777 == 0o750 && etc.st_uid == 7 && etc.st_gid == 8)
        #expect(etc.st_mtim.tv_sec == 1_500_000_000, "directory mtime is applied after its children")
        #expect(fileText(l + "/etc/passwd") == "root:x:0:0::/root:/bin/sh\n")
        #expect(lstatOrNil(l + "/etc/passwd")?.st_mtim.tv_sec == 1_400_000_000)
        #expect(lstatOrNil(l + "/bin/su")?.st_mode == S_IFREG | 0o4755, "setuid survives chown")
        #expect(lstatOrNil(l + "/bin")?.st_mode == S_IFDIR | 0o755, "implicit parents are 0755")
        let owned = try #require(lstatOrNil(l + "/home/app/owned"))
        #expect(owned.st_uid == 1000 && owned.st_gid == 1000 && owned.st_mode & 0o7777 == 0o600)
        #expect(lstatOrNil(l + "/tmp")?.st_mode == S_IFDIR | 0o1777)
        #expect(fileText(l + "/\(longDir)/" + String(repeating: "f", count: 120)) == "long name")
        #expect(readLink(l + "/link") == longTarget)
        let hard = try #require(lstatOrNil(l + "/hard"))
        #expect(hard.st_ino == lstatOrNil(l + "/etc/passwd")?.st_ino && hard.st_nlink == 2)
        let null = try #require(lstatOrNil(l + "/dev/null"))
        #expect(null.st_mode == S_IFCHR | 0o666 && null.st_rdev == makedev(1, 3))
        #expect(lstatOrNil(l + "/dev/loop0")?.st_mode == S_IFBLK | 0o660)
        #expect(lstatOrNil(l + "/dev/loop0")?.st_rdev == makedev(7, 0))
        #expect(lstatOrNil(l + "/fifo")?.st_mode == S_IFIFO | 0o600)
        if format == "PAX" { #expect(xattr(l + "/xattrs", "user.skiff") == "yes") }
    }
}

@Test func whiteoutsBecomeOverlayWhiteouts() throws {
    guard requireRoot("whiteoutsBecomeOverlayWhiteouts") else { return }
    let sb = try Sandbox()
    defer { sb.cleanup() }
    let tar = sb.dir + "/wh.tar"
    try buildTar(
        tar,
        """
        data("etc/.wh.shadow", b"")
        add("var/cache")
        data("var/cache/.wh..wh..opq", b"")
        data("var/cache/new", b"n")
        data(".wh.gone", b"")
        data("kept", b"k")
        data(".wh.kept", b"")
        data(".wh.redo", b"")
        add("redo")
        data("redo/x", b"x")
        add("evil", pax_headers={"SCHILY.xattr.trusted.overlay.redirect": "/etc"})
        """)
    let l = try unpackLayer(sb, tar)
    for path in ["/etc/shadow", "/gone"] {
        let st = try #require(lstatOrNil(l + path), "whiteout \(path) missing")
        #expect(st.st_mode & S_IFMT == S_IFCHR && st.st_rdev == 0)
    }
    #expect(lstatOrNil(l + "/etc/.wh.shadow") == nil)
    #expect(xattr(l + "/var/cache", "trusted.overlay.opaque") == "y")
    #expect(lstatOrNil(l + "/var/cache/.wh..wh..opq") == nil)
    #expect(fileText(l + "/kept") == "k", "a whiteout does not hide its own layer's file")
    #expect(xattr(l + "/redo", "trusted.overlay.opaque") == "y", "whited-out then recreated dir is opaque")
    #expect(xattr(l + "/evil", "trusted.overlay.redirect") == nil, "overlay xattrs from the tar are dropped")
}

/// Everything under `dir` except `exclude`, as `find` lists it with types and sizes.
func snapshot(_ dir: String, excluding exclude: String) throws -> String {
    try run([
        "find", dir, "-path", exclude + "/*", "-prune", "-o", "-path", exclude, "-o", "-printf", "%p %y %s %m %n\\n",
    ])
}

@Test func entriesCannotEscapeTheLayer() throws {
    guard requireRoot("entriesCannotEscapeTheLayer") else { return }
    let sb = try Sandbox()
    defer { sb.cleanup() }
    let canary = "/tmp/skiff-canary-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    let canaryDir = sb.dir + "/canarydir"
    mkdir(canaryDir, 0o755)
    try "secret".write(toFile: sb.dir + "/outside", atomically: false, encoding: .utf8)
    let cases: [(String, String)] = [
        ("dotdot", #"data("../../../../escape", b"x"); data("a/../../../../escape2", b"x")"#),
        ("absolute", #"data("\#(canary)/x", b"x"); data("/\#(sb.dir.dropFirst())/outside", b"pwned")"#),
        (
            "symlink-root",
            #"add("evil", tarfile.SYMTYPE, linkname="/"); data("evil\#(canary)/x", b"x"); data("evil\#(sb.dir)/outside", b"pwned")"#
        ),
        (
            "symlink-chain",
            #"add("a", tarfile.SYMTYPE, linkname="../../../../.."); add("b", tarfile.SYMTYPE, linkname="a/a/.."); data("b\#(sb.dir)/outside", b"pwned"); data("a/outside", b"p")"#
        ),
        ("symlink-final", #"add("f", tarfile.SYMTYPE, linkname="\#(sb.dir)/outside"); data("f", b"pwned")"#),
        (
            "dir-replaced",
            #"add("d"); data("d/ok", b"1"); add("d", tarfile.SYMTYPE, linkname="/"); data("d\#(canaryDir)/x", b"pwned"); add("d/sub")"#
        ),
        (
            "dotdot-linknames",
            #"add("../../x", tarfile.SYMTYPE, linkname="/"); add("../../x/../y", tarfile.SYMTYPE, linkname="../.."); data("y/z", b"pwned"); add("h", tarfile.LNKTYPE, linkname="../../x/../y/z")"#
        ),
        (
            "hardlink-to-symlink",
            #"add("s", tarfile.SYMTYPE, linkname="\#(sb.dir)/outside"); add("h", tarfile.LNKTYPE, linkname="s"); data("h", b"pwned")"#
        ),
    ]
    let failing: [(String, String)] = [
        ("hardlink-outside", #"add("h", tarfile.LNKTYPE, linkname="../../../../outside")"#),
        ("hardlink-abs", #"add("h", tarfile.LNKTYPE, linkname="\#(sb.dir)/outside")"#),
        (
            "hardlink-via-symlink",
            #"add("e", tarfile.SYMTYPE, linkname="\#(sb.dir)"); add("h", tarfile.LNKTYPE, linkname="e/outside")"#
        ),
        ("hardlink-dir", #"add("d"); add("h", tarfile.LNKTYPE, linkname="d")"#),
        ("root-file", #"data(".", b"x")"#),
        // A symlink to a directory outside: resolved in-root it dangles, so writing through it fails.
        (
            "dir-replaced-dangling",
            #"add("d"); add("d", tarfile.SYMTYPE, linkname="\#(canaryDir)"); data("d/x", b"pwned")"#
        ),
    ]
    for (name, spec) in cases + failing { try buildTar(sb.root.layersDir + "/\(name).tar", spec) }
    let before = try snapshot(sb.dir, excluding: sb.root.layersDir)
    for (name, _) in cases + failing {
        let tar = sb.root.layersDir + "/\(name).tar"
        let dir = sb.root.layersDir + "/" + name
        mkdir(dir, 0o700)
        let shouldFail = failing.contains { $0.0 == name }
        do {
            try LayerUnpacker().unpack(archivePath: tar, into: dir, kind: .layer)
            #expect(!shouldFail, "\(name) should have been refused")
        } catch let e as ImageError {
            #expect(shouldFail, "\(name) failed: \(e)")
            if case .badEntry = e {} else { Issue.record("\(name): unexpected error \(e)") }
        }
        #expect(lstatOrNil(canary) == nil, "\(name) created \(canary)")
        #expect(fileText(sb.dir + "/outside") == "secret", "\(name) changed a file outside the layer")
        #expect(
            try snapshot(sb.dir, excluding: sb.root.layersDir) == before, "\(name) changed the tree outside the layer")
    }
    // The escapes landed inside the layers instead.
    #expect(fileText(sb.root.layersDir + "/symlink-root" + canary + "/x") == "x")
    #expect(fileText(sb.root.layersDir + "/dir-replaced/" + canaryDir + "/x") == "pwned")
    #expect(fileText(sb.root.layersDir + "/dotdot-linknames/z") == "pwned")
    #expect((lstatOrNil(sb.root.layersDir + "/dotdot-linknames/x")?.st_mode ?? 0) & S_IFMT == S_IFLNK)
    #expect(fileText(sb.root.layersDir + "/symlink-final/f") == "pwned")
    #expect(fileText(sb.root.layersDir + "/hardlink-to-symlink/h") == "pwned")
}

@Test func failedLayerUnpackLeavesNothing() throws {
    guard requireRoot("failedLayerUnpackLeavesNothing") else { return }
    let sb = try Sandbox()
    defer { sb.cleanup() }
    let tar = sb.dir + "/bad.tar"
    try buildTar(tar, #"data("a", b"1"); add("h", tarfile.LNKTYPE, linkname="missing")"#)
    let digest = Digest(hex: String(repeating: "ab", count: 32))
    #expect(throws: ImageError.self) {
        try LayerUnpacker().unpackLayer(blobPath: tar, digest: digest, layersDir: sb.root.layersDir)
    }
    #expect(try run(["ls", "-A", sb.root.layersDir]) == "")
}
