/// `linux.resources.unified` (runtime-spec `config-linux.md#unified`): cgroup v2 interface
/// files written verbatim into the workload's v2 directory, e.g. `["memory.high": "1G"]`.
/// The file's prefix before the first "." names the controller, which must be offered (and is
/// then enabled like any other); `cgroup.*` core files need none.
enum UnifiedLimits {
    static func plan(_ map: [String: String], cgroup: Cgroup) throws(CgroupError) -> [(file: String, value: String)] {
        guard cgroup.unified != nil else {
            throw .invalidResource(
                setting: "linux.resources.unified",
                reason: "it sets cgroup v2 files and this host has no cgroup v2 hierarchy; use the v1 fields "
                    + "(memory, cpu, pids, blockIO) instead")
        }
        var writes: [(file: String, value: String)] = []
        for key in map.keys.sorted() {
            guard !key.isEmpty, !key.contains("/"), !key.hasPrefix("."), key.contains(".") else {
                throw .invalidResource(
                    setting: "linux.resources.unified[\"\(key)\"]",
                    reason: "a key is one cgroup v2 interface file name such as memory.high")
            }
            writes.append((key, map[key]!))
        }
        return writes
    }

    /// The controllers the planned files belong to (`cgroup.*` excluded).
    static func controllers(of writes: [(file: String, value: String)]) -> [String] {
        var out: [String] = []
        for (file, _) in writes {
            let prefix = String(file.prefix { $0 != "." })
            if prefix != "cgroup" && !out.contains(prefix) { out.append(prefix) }
        }
        return out
    }
}
