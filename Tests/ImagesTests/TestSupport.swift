import Foundation
import Glibc
import OCI
import Store
import Testing

@testable import Images

/// Runs a program, returning its stdout; throws with stderr when it exits non-zero.
@discardableResult
func run(_ argv: [String], stdin: String? = nil) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = argv
    let out = Pipe()
    let err = Pipe()
    p.standardOutput = out
    p.standardError = err
    let inPipe = Pipe()
    if stdin != nil { p.standardInput = inPipe }
    try p.run()
    if let stdin {
        inPipe.fileHandleForWriting.write(Data(stdin.utf8))
        try inPipe.fileHandleForWriting.close()
    }
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else {
        throw TestFailure(
            "\(argv.prefix(3).joined(separator: " ")) exited \(p.terminationStatus): \(String(decoding: e, as: UTF8.self))"
        )
    }
    return String(decoding: o, as: UTF8.self)
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// Runs a Python snippet (tarfile building, listing).
@discardableResult
func python(_ code: String, _ args: [String] = []) throws -> String {
    try run(["python3", "-c", code] + args)
}

/// True when running as root; otherwise prints why the test is skipped.
func requireRoot(_ test: String) -> Bool {
    if geteuid() == 0 { return true }
    print("skipping \(test): needs root (mknod, chown, trusted.* xattrs, overlay mounts)")
    return false
}

/// A temporary directory with a state root inside; removed by `cleanup()`.
final class Sandbox {
    let dir: String
    let root: StateRoot
    init() throws {
        var template = Array("/var/tmp/skiff-images-test-XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { throw TestFailure("mkdtemp failed") }
        dir = String(cString: p)
        root = StateRoot(path: dir + "/state", runDir: dir + "/run")
        try root.prepare()
    }
    func store() throws -> ImageStore { try ImageStore(root: root, database: try root.openDatabase()) }
    func cleanup() { _ = try? run(["rm", "-rf", "--one-file-system", dir]) }
}

/// Builds a tar at `path` with Python's tarfile: `spec` is Python code that receives `tf` (an open
/// TarFile) and the helpers `add(name, type, **attrs)` and `data(name, bytes, **attrs)`.
func buildTar(_ path: String, format: String = "PAX", _ spec: String) throws {
    let code = """
        import tarfile, io, sys, time
        tf = tarfile.open(sys.argv[1], "w", format=tarfile.\(format)_FORMAT)
        def add(name, type=tarfile.DIRTYPE, data=None, **kw):
            ti = tarfile.TarInfo(name)
            ti.type = type
            ti.mtime = kw.pop("mtime", 1600000000)
            ti.mode = kw.pop("mode", 0o755)
            for k, v in kw.items(): setattr(ti, k, v)
            if data is not None:
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
            else:
                tf.addfile(ti)
        def data(name, content, **kw): add(name, tarfile.REGTYPE, content, **kw)
        \(spec.replacingOccurrences(of: "\n", with: "\n"))
        tf.close()
        """
    try python(code, [path])
}

func lstatOrNil(_ path: String) -> stat? {
    var st = stat()
    return lstat(path, &st) == 0 ? st : nil
}

func readLink(_ path: String) -> String? {
    var buf = [CChar](repeating: 0, count: 4096)
    let n = readlink(path, &buf, buf.count - 1)
    guard n >= 0 else { return nil }
    return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

func fileText(_ path: String) -> String? {
    guard let d = FileManager.default.contents(atPath: path) else { return nil }
    return String(decoding: d, as: UTF8.self)
}

@_silgen_name("lgetxattr")
func test_lgetxattr(
    _ path: UnsafePointer<CChar>, _ name: UnsafePointer<CChar>, _ value: UnsafeMutableRawPointer?, _ size: Int
) -> Int

/// An xattr value as a String, nil when absent.
func xattr(_ path: String, _ name: String) -> String? {
    var buf = [UInt8](repeating: 0, count: 1024)
    let n = buf.withUnsafeMutableBytes { test_lgetxattr(path, name, $0.baseAddress, $0.count) }
    guard n >= 0 else { return nil }
    return String(decoding: buf[0..<n], as: UTF8.self)
}

/// glibc's `makedev` (a macro Swift does not import): Linux dev_t encoding.
func makedev(_ major: UInt64, _ minor: UInt64) -> dev_t {
    dev_t(((major & 0xffff_f000) << 32) | ((major & 0xfff) << 8) | ((minor & 0xffff_ff00) << 12) | (minor & 0xff))
}
