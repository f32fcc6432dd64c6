import Glibc

/// A temporary directory holding a fake `/proc/self/{mountinfo,cgroup}` and a fake cgroup file
/// system, so layout detection and directory creation can be tested without root.
final class FakeTree {
    let root: String

    init() {
        var template = Array("/tmp/skiff-cgroups-test-XXXXXX".utf8CString)
        root = template.withUnsafeMutableBufferPointer { buffer in
            guard let made = mkdtemp(buffer.baseAddress!) else { fatalError("mkdtemp failed: \(errno)") }
            return String(cString: made)
        }
    }

    deinit { Self.removeTree(root) }

    var procRoot: String { root + "/proc" }

    func path(_ relative: String) -> String { root + (relative.hasPrefix("/") ? relative : "/" + relative) }

    func write(_ relative: String, _ text: String) {
        let full = path(relative)
        makeDirectories(String(full[..<full.lastIndex(of: "/")!]))
        let fd = open(full, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        precondition(fd >= 0)
        _ = text.utf8CString.withUnsafeBufferPointer { Glibc.write(fd, $0.baseAddress, $0.count - 1) }
        close(fd)
    }

    func mkdirs(_ relative: String) { makeDirectories(path(relative)) }

    func makeDirectories(_ full: String) {
        var current = ""
        for part in full.split(separator: "/") {
            current += "/" + part
            mkdir(current, 0o755)
        }
    }

    /// Every directory under the fake root, relative to it, sorted.
    func allDirectories() -> [String] {
        var out: [String] = []
        func walk(_ dir: String) {
            guard let d = opendir(dir) else { return }
            defer { closedir(d) }
            while let e = readdir(d) {
                let name = withUnsafePointer(to: &e.pointee.d_name) {
                    String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self))
                }
                if name == "." || name == ".." || e.pointee.d_type != UInt8(DT_DIR) { continue }
                let full = dir + "/" + name
                out.append(String(full.dropFirst(root.count)))
                walk(full)
            }
        }
        walk(root)
        return out.sorted()
    }

    static func removeTree(_ dir: String) {
        if let d = opendir(dir) {
            var names: [(String, Bool)] = []
            while let e = readdir(d) {
                let name = withUnsafePointer(to: &e.pointee.d_name) {
                    String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self))
                }
                if name != "." && name != ".." { names.append((name, e.pointee.d_type == UInt8(DT_DIR))) }
            }
            closedir(d)
            for (name, isDir) in names {
                if isDir { removeTree(dir + "/" + name) } else { unlink(dir + "/" + name) }
            }
        }
        rmdir(dir)
    }
}
