import LinuxSys

/// A user resolved against the container's `/etc/passwd` and `/etc/group` (passwd(5), group(5)).
struct ResolvedUser {
    var uid: UInt32
    var gid: UInt32
    var additionalGids: [UInt32]
    var home: String

    /// Resolves `spec` (`name`, `uid`, `uid:gid`, `name:group`, `uid:group`) with the files read
    /// from the current root (call after `pivot_root`). Docker's rules: a numeric uid need not
    /// exist; a name must; the primary gid comes from passwd unless given; supplementary groups
    /// are those listing the user by name.
    /// - Throws: `SkiffError` naming the user or group that does not exist.
    static func resolve(_ spec: String?, passwd: String, group: String) throws -> ResolvedUser {
        let users = passwd.split(separator: "\n").map { $0.split(separator: ":", omittingEmptySubsequences: false) }
            .filter { $0.count >= 7 }
        let groups = group.split(separator: "\n").map { $0.split(separator: ":", omittingEmptySubsequences: false) }
            .filter { $0.count >= 4 }
        let parts = (spec ?? "").split(separator: ":", maxSplits: 1).map(String.init)
        let userPart = parts.first ?? ""
        var result = ResolvedUser(uid: 0, gid: 0, additionalGids: [], home: "/")
        var userName: String?
        if userPart.isEmpty {
            userName = users.first(where: { $0[2] == "0" }).map { String($0[0]) } ?? "root"
            if let u = users.first(where: { $0[2] == "0" }) { result.home = String(u[5]) } else { result.home = "/root" }
        } else if let uid = UInt32(userPart) {
            result.uid = uid
            if let u = users.first(where: { $0[2] == Substring(userPart) }) {
                result.gid = UInt32(u[3]) ?? 0
                result.home = String(u[5])
                userName = String(u[0])
            }
        } else {
            guard let u = users.first(where: { $0[0] == Substring(userPart) }) else {
                throw SkiffError("unable to find user \(userPart): no matching entries in the container's /etc/passwd; use a numeric uid[:gid]", exitCode: 126)
            }
            result.uid = UInt32(u[2]) ?? 0
            result.gid = UInt32(u[3]) ?? 0
            result.home = String(u[5])
            userName = userPart
        }
        if parts.count == 2 {
            let g = parts[1]
            if let gid = UInt32(g) {
                result.gid = gid
            } else if let grp = groups.first(where: { $0[0] == Substring(g) }), let gid = UInt32(grp[2]) {
                result.gid = gid
            } else {
                throw SkiffError(
                    "unable to find group \(g): no matching entries in the container's /etc/group; use a numeric gid", exitCode: 126)
            }
        }
        if let userName {
            for grp in groups {
                let members = grp[3].split(separator: ",")
                if members.contains(Substring(userName)), let gid = UInt32(grp[2]), gid != result.gid {
                    result.additionalGids.append(gid)
                }
            }
        }
        return result
    }
}
