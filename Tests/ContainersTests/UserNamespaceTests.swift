import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Whether `--userns=auto` can be tested here, and the `--userns` modes that tests of the default
/// container's security run in (issue 6 acceptance 4).
enum UserNS {
    /// Why not, or nil: the kernel must allow user namespaces and the user `skiff` must have
    /// subordinate ids (scripts/subids adds them; scripts/test runs it).
    static let unavailableReason: String? = {
        let reason: String?
        let maxNS = (try? String(contentsOfFile: "/proc/sys/user/max_user_namespaces", encoding: .utf8)) ?? "0"
        let env = ProcessInfo.processInfo.environment
        let files = [env["SKIFF_SUBUID"] ?? "/etc/subuid", env["SKIFF_SUBGID"] ?? "/etc/subgid"]
        let missing = files.filter { f in
            !((try? String(contentsOfFile: f, encoding: .utf8)) ?? "").split(separator: "\n").contains {
                $0.hasPrefix("skiff:")
            }
        }
        if let h = Harness.unavailableReason {
            reason = h
        } else if (Int(maxNS.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0) == 0 {
            reason = "user namespaces are disabled (user.max_user_namespaces is 0)"
        } else if !missing.isEmpty {
            reason = "no line for the user skiff in \(missing.joined(separator: " and ")): run scripts/subids"
        } else {
            reason = nil
        }
        if let reason { print("skipping --userns=auto tests: \(reason)") }
        return reason
    }()

    static var available: Bool { unavailableReason == nil }

    /// `host` always; `auto` too where it can run.
    static let modes: [String] = available ? ["host", "auto"] : ["host"]

    /// The `run` flags of a mode.
    static func flags(_ mode: String) -> [String] { mode == "host" ? [] : ["--userns=" + mode] }
}

/// The id maps of a container from `skiff inspect` (`linux.uidMappings` / `gidMappings`).
struct IDMaps: Equatable {
    var uidBase: Int
    var gidBase: Int
    var size: Int

    static func of(_ name: String, root: String = Harness.stateRoot) async throws -> IDMaps {
        let doc = try await inspect(name, root: root)
        let linux = (doc["Spec"] as? [String: Any])?["linux"] as? [String: Any] ?? [:]
        func first(_ key: String) -> [String: Any]? { (linux[key] as? [[String: Any]])?.first }
        guard let u = first("uidMappings"), let g = first("gidMappings"),
            let ub = (u["hostID"] as? NSNumber)?.intValue, let gb = (g["hostID"] as? NSNumber)?.intValue,
            let n = (u["size"] as? NSNumber)?.intValue, (u["containerID"] as? NSNumber)?.intValue == 0
        else { throw TestFailure("inspect \(name) has no uid/gid mappings: \(linux)") }
        let namespaces = (linux["namespaces"] as? [[String: Any]] ?? []).compactMap { $0["type"] as? String }
        guard namespaces.contains("user") else { throw TestFailure("no user namespace in \(namespaces)") }
        return IDMaps(uidBase: ub, gidBase: gb, size: n)
    }

    /// The uid range as a half-open interval.
    var uids: Range<Int> { uidBase..<(uidBase + size) }
}

/// `/proc/PID/uid_map` (or gid_map) as its numbers: `0 base size`.
func idMap(_ pid: Int32, _ file: String) -> [Int] {
    let text = (try? String(contentsOfFile: "/proc/\(pid)/\(file)", encoding: .utf8)) ?? ""
    return text.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { Int($0) }
}

/// Owner uid and gid of a host file.
func owner(_ path: String) -> (uid: Int, gid: Int)? {
    var st = stat()
    guard lstat(path, &st) == 0 else { return nil }
    return (Int(st.st_uid), Int(st.st_gid))
}

/// A state root and subordinate id files of a test's own, so the blocks handed out are known: the
/// user skiff has `blocks` blocks of 65536 ids from `start`.
struct PrivateRoot {
    let root: String
    let subids: String
    let start: Int

    static func make(_ what: String, start: Int, blocks: Int) async throws -> PrivateRoot {
        let root = tempDir("uns-root-\(what)")
        let subids = root + ".subids"
        try "skiff:\(start):\(blocks * 65536)\n".write(toFile: subids, atomically: true, encoding: .utf8)
        let r = PrivateRoot(root: root, subids: subids, start: start)
        let load = await r.skiff(["load", Harness.busyboxLayout])
        guard load.code == 0 else { throw TestFailure("load busybox into \(root): \(load)") }
        return r
    }

    /// Runs `body` with a fresh root and removes the root afterwards, also when `body` throws (its
    /// containers would otherwise outlive the test: nothing else ever looks at this root).
    static func with(
        _ what: String, start: Int, blocks: Int, _ body: (PrivateRoot) async throws -> Void
    ) async throws {
        let p = try await make(what, start: start, blocks: blocks)
        do { try await body(p) } catch {
            await p.remove()
            throw error
        }
        await p.remove()
    }

    /// `skiff ARGS...` against this root and these id files.
    func skiff(_ args: [String], env: [String: String] = [:], timeout: Double = 60) async -> Output {
        var e = ["SKIFF_ROOT": root, "SKIFF_SUBUID": subids, "SKIFF_SUBGID": subids]
        for (k, v) in env { e[k] = v }
        return await runAsync([Harness.binary] + args, env: e, timeout: timeout)
    }

    /// Removes every container of the root, then the root.
    func remove() async {
        let ids = await skiff(["ps", "-aq"]).lines
        if !ids.isEmpty { _ = await skiff(["rm", "-f"] + ids, timeout: 120) }
        _ = runSync(["/bin/rm", "-rf", root, subids], stdin: nil, timeout: 60)
    }
}

/// `--userns=auto` (issue 6 acceptance 4): root in the container is an unprivileged block of host
/// ids taken from /etc/subuid and /etc/subgid, seen through `/proc/PID/uid_map`, the owner of what
/// it writes, and what it may not write.
@Suite(.enabled(if: UserNS.available, "needs root, user namespaces and subordinate ids for skiff"))
struct UserNamespaceTests {
    init() throws { try Harness.setUp() }

    /// PID 1's maps are `0 base size`; a file root makes in a volume is the base's on the host;
    /// a host-root file in a read-write volume cannot be written (EACCES); `id` says root.
    @Test func rootIsAnUnprivilegedHostUID() async throws {
        let name = uniqueName("uns-root")
        let vol = tempDir("uns-vol")
        defer { _ = runSync(["/bin/rm", "-rf", vol], stdin: nil, timeout: 10) }
        chmod(vol, 0o777)
        try "host\n".write(toFile: vol + "/host-root", atomically: false, encoding: .utf8)
        chmod(vol + "/host-root", 0o644)
        let run = await skiff(
            "run", "-d", "--name", name, "--userns=auto", "-v", vol + ":/vol", "busybox", "sh", "-c",
            "touch /vol/by-root; { echo pwned >> /vol/host-root; } 2>/vol/err; echo $? > /vol/rc; sleep 600")
        try #require(run.code == 0, "\(run)")
        defer { Task { await cleanup(name) } }
        let maps = try await IDMaps.of(name)
        let f = try await facts(name)
        #expect(maps.size == 65536 && maps.uidBase >= 1 && maps.gidBase >= 1, "\(maps)")
        #expect(idMap(f.pid, "uid_map") == [0, maps.uidBase, 65536], "uid_map of \(f.pid)")
        #expect(idMap(f.pid, "gid_map") == [0, maps.gidBase, 65536], "gid_map of \(f.pid)")
        let done = await eventually(10) { access(vol + "/rc", F_OK) == 0 }
        #expect(done, "the container did not write to its volume")
        let made = try #require(owner(vol + "/by-root"))
        #expect(made.uid == maps.uidBase && made.gid == maps.gidBase, "owner of /vol/by-root: \(made), maps \(maps)")
        #expect(fileText(vol + "/host-root") == "host\n", "container root wrote a host-root file")
        #expect(fileText(vol + "/err")?.contains("Permission denied") == true, "\(fileText(vol + "/err") ?? "")")
        #expect(fileText(vol + "/rc")?.trimmingCharacters(in: .whitespacesAndNewlines) != "0")
        let id = await skiff("exec", name, "id")
        #expect(id.out == "uid=0(root) gid=0(root)", "\(id)")
        // On the host the workload runs as the base uid.
        let status = (try? String(contentsOfFile: "/proc/\(f.pid)/status", encoding: .utf8)) ?? ""
        #expect(status.contains("Uid:\t\(maps.uidBase)\t"), "\(status)")
        await cleanup(name)
    }

    /// Root writes everywhere in its own root filesystem: root-owned image files and directories,
    /// new files in root-owned directories, chown of image files; on the host the upperdir holds
    /// them as the block's ids.
    @Test func rootOwnsItsRootFilesystem() async throws {
        let name = uniqueName("uns-rootfs")
        let r = await skiff(
            "run", "--name", name, "--userns=auto", "busybox", "sh", "-c",
            """
            id; stat -c '%u:%g' /etc/passwd /bin; touch /etc/x && mkdir -p /var/lib/apt/lists/partial && \
            echo pkg > /var/lib/apt/lists/partial/p && cp /bin/busybox /usr/bin/tool && \
            chown 1:1 /bin/busybox && chown 2:2 /etc/passwd && chmod 600 /etc/group && \
            stat -c '%u:%g' /bin/busybox /etc/passwd /etc/x && echo done
            """)
        defer { Task { await cleanup(name) } }
        #expect(r.code == 0, "\(r)")
        #expect(r.lines == ["uid=0(root) gid=0(root)", "0:0", "0:0", "1:1", "2:2", "0:0", "done"], "\(r)")
        let maps = try await IDMaps.of(name)
        let upper = Harness.stateRoot + "/containers/" + (try await facts(name)).id + "/upper"
        let expected: [(String, Int)] = [
            ("/etc/x", 0), ("/bin/busybox", 1), ("/etc/passwd", 2), ("/var/lib/apt/lists/partial/p", 0),
        ]
        for (path, id) in expected {
            let o = owner(upper + path)
            #expect(
                o?.uid == maps.uidBase + id && o?.gid == maps.gidBase + id,
                "\(path) on the host: \(String(describing: o))")
        }
        #expect(owner(upper)?.uid == maps.uidBase, "the upperdir (the container's /) belongs to its root")
        await cleanup(name)
    }

    /// `skiff exec` joins the user namespace: root inside, the block's ids outside; `-u` users map
    /// into the block; `-t` works for run and exec.
    @Test func execJoinsTheUserNamespace() async throws {
        let name = uniqueName("uns-exec")
        let run = await skiff("run", "-d", "--name", name, "--userns=auto", "busybox", "sleep", "600")
        try #require(run.code == 0, "\(run)")
        defer { Task { await cleanup(name) } }
        let maps = try await IDMaps.of(name)
        let e = await skiff(
            "exec", name, "sh", "-c",
            "id; cat /proc/self/uid_map; touch /tmp/by-exec; grep -E '^CapEff' /proc/self/status")
        #expect(e.code == 0, "\(e)")
        #expect(e.lines.first == "uid=0(root) gid=0(root)", "\(e)")
        #expect(
            e.lines.dropFirst().first?.split(separator: " ").map(String.init) == ["0", "\(maps.uidBase)", "65536"],
            "\(e)")
        #expect(e.lines.last?.hasSuffix("00000000a80425fb") == true, "exec keeps the default set: \(e)")
        let u = await skiff("exec", "-u", "1000:1000", name, "sh", "-c", "id -u; touch /tmp/by-user")
        #expect(u.out == "1000", "\(u)")
        let upper = Harness.stateRoot + "/containers/" + (try await facts(name)).id + "/upper"
        #expect(owner(upper + "/tmp/by-exec")?.uid == maps.uidBase)
        #expect(owner(upper + "/tmp/by-user")?.uid == maps.uidBase + 1000)
        let bin = Harness.binary
        let tty = await sh(
            "SKIFF_ROOT=\(Harness.stateRoot) script -qec '\(bin) exec -t \(name) sh -c \"tty; id -u\"' /dev/null")
        #expect(tty.stdout.contains("/dev/pts/") && tty.stdout.contains("0"), "\(tty)")
        let runT = await sh(
            "SKIFF_ROOT=\(Harness.stateRoot) script -qec '\(bin) run --rm -t --userns=auto busybox sh -c \"tty; cat /proc/self/uid_map\"' /dev/null"
        )
        #expect(runT.stdout.contains("/dev/pts/0"), "\(runT)")
        #expect(!runT.stdout.contains("4294967295"), "run -t is in its own user namespace: \(runT)")
        await cleanup(name)
    }

    /// Blocks pack from the bottom of the ranges, never overlap, and go back on `rm` for the next
    /// container; when none is left the refusal says so and leaves nothing.
    @Test func blocksPackReleaseAndReuse() async throws {
        try await PrivateRoot.with("reuse", start: 300_000_000, blocks: 2) { p in
            for n in ["ua", "ub"] {
                let r = await p.skiff(["run", "-d", "--name", n, "--userns=auto", "busybox", "sleep", "600"])
                try #require(r.code == 0, "\(r)")
            }
            let a = try await IDMaps.of("ua", root: p.root)
            let b = try await IDMaps.of("ub", root: p.root)
            #expect(a.uidBase == p.start && b.uidBase == p.start + 65536, "\(a) \(b)")
            #expect(a.gidBase == p.start && b.gidBase == p.start + 65536, "\(a) \(b)")
            let full = await p.skiff(["run", "-d", "--name", "uc", "--userns=auto:size=1", "busybox", "true"])
            #expect(full.code == 125 && full.stderr.contains("no free block of 1 uids"), "\(full)")
            #expect(full.stderr.contains(p.subids), "\(full)")
            #expect(await p.skiff(["ps", "-aq"]).lines.count == 2, "a refused run leaves no record")
            let rm = await p.skiff(["rm", "-f", "ua"])
            #expect(rm.code == 0, "\(rm)")
            // A created container holds its block too, until it is removed.
            let c = await p.skiff(["create", "--name", "uc", "--userns=auto", "busybox", "true"])
            #expect(c.code == 0, "\(c)")
            #expect(try await IDMaps.of("uc", root: p.root).uidBase == p.start, "ua's block is reused")
            _ = await p.skiff(["rm", "uc"])
            let d = await p.skiff(["run", "--rm", "--userns=auto:size=1000", "busybox", "cat", "/proc/self/uid_map"])
            #expect(d.out.split(separator: " ").map(String.init) == ["0", "\(p.start)", "1000"], "\(d)")
        }
    }

    /// Parallel `run -d --userns=auto` never get overlapping blocks (the block is chosen in the
    /// transaction that records the container).
    @Test func concurrentRunsGetDistinctBlocks() async throws {
        try await PrivateRoot.with("parallel", start: 310_000_000, blocks: 4) { p in
            let results = await withTaskGroup(of: Output.self) { group in
                for i in 0..<4 {
                    group.addTask {
                        await p.skiff(
                            ["run", "-d", "--name", "p\(i)", "--userns=auto", "busybox", "sleep", "600"], timeout: 120)
                    }
                }
                var out: [Output] = []
                for await r in group { out.append(r) }
                return out
            }
            for r in results { #expect(r.code == 0, "\(r)") }
            var ranges: [Range<Int>] = []
            for i in 0..<4 {
                let m = try await IDMaps.of("p\(i)", root: p.root)
                let pid = try await facts("p\(i)", root: p.root).pid
                #expect(idMap(pid, "uid_map") == [0, m.uidBase, 65536])
                ranges.append(m.uids)
            }
            for i in 0..<4 {
                for j in (i + 1)..<4 {
                    #expect(!ranges[i].overlaps(ranges[j]), "\(ranges[i]) and \(ranges[j]) overlap")
                }
            }
            #expect(Set(ranges.map(\.lowerBound)) == Set((0..<4).map { p.start + $0 * 65536 }), "\(ranges)")
        }
    }

    /// Bad `--userns` values, missing or wrong subordinate id files and refused combinations exit
    /// 125 naming the file, the user, the line or the flags; none leaves a container behind.
    @Test func badInputIsRefusedPrecisely() async throws {
        try await PrivateRoot.with("bad", start: 320_000_000, blocks: 1) { p in
            let other = p.root + ".other"
            try "alice:100000:65536\n".write(toFile: other, atomically: true, encoding: .utf8)
            let bad = p.root + ".bad"
            try "alice:100000:65536\nskiff:lots:65536\n".write(toFile: bad, atomically: true, encoding: .utf8)
            let zero = p.root + ".zero"
            try "skiff:0:65536\n".write(toFile: zero, atomically: true, encoding: .utf8)
            defer { for f in [other, bad, zero] { unlink(f) } }
            let cases: [(flags: [String], env: [String: String], says: [String])] = [
                (["--userns=bogus"], [:], ["--userns \"bogus\"", "auto[:size=N]"]),
                (["--userns=auto:size=0"], [:], ["size must be"]),
                (["--userns=auto:uidmapping=0:1:1"], [:], ["unknown option"]),
                (["--userns=auto", "--privileged"], [:], ["--userns=auto cannot be combined with --privileged"]),
                (["--userns=auto", "--network", "host"], [:], ["cannot be combined with --network host"]),
                (["--userns=auto", "--rootfs", p.root], [:], ["cannot be combined with --rootfs"]),
                (["--userns=auto"], ["SKIFF_SUBUID": other], [other, "user \"skiff\"", "skiff:1000000:65536000"]),
                (["--userns=auto"], ["SKIFF_SUBGID": p.root + ".missing"], [p.root + ".missing", "cannot be read"]),
                (["--userns=auto"], ["SKIFF_SUBUID": bad], ["\(bad):2", "skiff:lots:65536", "START:COUNT"]),
                (["--userns=auto"], ["SKIFF_SUBUID": zero], ["\(zero):1", "includes uid 0"]),
                (["--userns=auto:size=70000"], [:], ["70000", "largest range", "65536", p.subids]),
            ]
            for c in cases {
                let r = await p.skiff(["run", "--rm"] + c.flags + ["busybox", "true"], env: c.env)
                #expect(r.code == 125, "\(c.flags) \(c.env): \(r)")
                for s in c.says { #expect(r.stderr.contains(s), "\(c.flags) \(c.env) should say \(s): \(r)") }
            }
            let create = await p.skiff(["create", "--userns=nope", "busybox", "true"])
            #expect(create.code == 125 && create.stderr.contains("\"nope\""), "\(create)")
            #expect(await p.skiff(["ps", "-aq"]).lines.isEmpty, "a refused run left a container")
            let dirs = (try? FileManager.default.contentsOfDirectory(atPath: p.root + "/containers")) ?? []
            #expect(dirs.isEmpty, "container directories left: \(dirs)")
            // The one block is still free.
            let ok = await p.skiff(["run", "--rm", "--userns=auto", "busybox", "true"])
            #expect(ok.code == 0, "\(ok)")
        }
    }

    /// A start that fails after its root filesystem was mounted on the host (in the container or in
    /// the host-side set-up) leaves no mount, cgroup or process, and `--rm` no record or block.
    @Test func failedStartsLeaveNothing() async throws {
        try await PrivateRoot.with("fail", start: 330_000_000, blocks: 1) { p in
            // Fails in the container, after the overlay is attached on the host.
            let r = await p.skiff(["run", "--rm", "--userns=auto", "--tmpfs", "/x:size=bogus", "busybox", "true"])
            #expect(r.code == 125 && r.stderr.contains("tmpfs"), "\(r)")
            #expect(mountsMentioning(p.root).isEmpty, "mounts left: \(mountsMentioning(p.root))")
            #expect(await p.skiff(["ps", "-aq"]).lines.isEmpty)
            // Fails on the host side after the gate opened: the workdir is gone.
            let c = await p.skiff(["create", "--name", "broken", "--userns=auto", "busybox", "sleep", "600"])
            try #require(c.code == 0, "\(c)")
            let id = try await facts("broken", root: p.root).id
            _ = runSync(["/bin/rm", "-rf", p.root + "/containers/" + id + "/work"], stdin: nil, timeout: 10)
            let s = await p.skiff(["start", "broken"])
            #expect(s.code != 0 && s.stderr.contains("workdir"), "\(s)")
            #expect(mountsMentioning(id).isEmpty, "mounts left: \(mountsMentioning(id))")
            #expect(await cgroupDirs(id).isEmpty, "cgroups left")
            #expect(access("/run/skiff/" + id, F_OK) != 0, "runtime directory left")
            let after = try await facts("broken", root: p.root)
            #expect(after.status == "created" && after.pid == 0, "\(after)")
            let rm = await p.skiff(["rm", "broken"])
            #expect(rm.code == 0, "\(rm)")
            // Its block came back: the root's only one.
            let again = await p.skiff(["run", "--rm", "--userns=auto", "busybox", "cat", "/proc/self/uid_map"])
            #expect(again.out.split(separator: " ").first.map(String.init) == "0", "\(again)")
            #expect(again.out.contains("\(p.start)"), "\(again)")
        }
    }

    /// The host's copy of the root filesystem exists only while the container starts; if the
    /// monitor dies with one left (simulated with a mount at the same place), the next command
    /// that reconciles the container detaches it.
    @Test func leftoverRootfsMountIsDetachedWhenTheMonitorDied() async throws {
        let name = uniqueName("uns-crash")
        let run = await skiff("run", "-d", "--name", name, "--userns=auto", "busybox", "sleep", "1000")
        try #require(run.code == 0, "\(run)")
        defer { Task { await cleanup(name) } }
        let f = try await facts(name)
        #expect(mountsMentioning(f.id).isEmpty, "the host's copy is detached once the container runs")
        let point = "/run/skiff/\(f.id)/rootfs"
        let m = await sh("mount -t tmpfs skiff-leftover-\(f.id.prefix(12)) \(point)")
        try #require(m.code == 0, "\(m)")
        let monitor = try #require(MonitorCrashTests.ppid(of: f.pid))
        #expect(kill(monitor, SIGKILL) == 0)
        _ = await eventually(5) { !processAlive(f.pid) }
        let ps = await skiff("ps", "-a")
        #expect(ps.code == 0, "\(ps)")
        #expect(mountsMentioning(f.id).isEmpty, "mounts left: \(mountsMentioning(f.id))")
        #expect(access("/run/skiff/" + f.id, F_OK) != 0, "runtime directory left")
        let rm = await skiff("rm", name)
        #expect(rm.code == 0, "\(rm)")
        await expectNoTrace(name: name, id: f.id, pid: f.pid)
    }

    /// `--read-only` keeps the root's locked `nodev` (a remount without it would be refused).
    @Test func readOnlyRootInAUserNamespace() async {
        let r = await skiff(
            "run", "--rm", "--userns=auto", "--read-only", "busybox", "sh", "-c",
            "touch /x; echo rc=$?; grep ' / / ' /proc/self/mountinfo | cut -d' ' -f6")
        #expect(r.lines.first == "rc=1" && r.stderr.contains("Read-only file system"), "\(r)")
        let options = r.lines.last?.split(separator: ",").map(String.init) ?? []
        #expect(options.contains("ro") && options.contains("nodev"), "\(r)")
    }

    /// The first process runs skiff as the namespace's root, an unprivileged host uid: a binary
    /// only its owner and group may read and execute is refused with the reason, before anything
    /// starts.
    @Test func binaryOthersCannotExecuteIsRefused() async throws {
        let dir = tempDir("uns-bin")
        defer { _ = runSync(["/bin/rm", "-rf", dir], stdin: nil, timeout: 10) }
        chmod(dir, 0o755)
        // Copied by another process: a descriptor open for writing here could leak into a
        // parallel test's child and make the exec fail with ETXTBSY.
        let cp = await sh("cp \(Harness.binary) \(dir)/skiff && chmod 750 \(dir)/skiff")
        try #require(cp.code == 0, "\(cp)")
        let r = await runAsync(
            [dir + "/skiff", "run", "--rm", "--userns=auto", "busybox", "true"], env: ["SKIFF_ROOT": Harness.stateRoot])
        #expect(r.code == 125 && r.stderr.contains("mode 750") && r.stderr.contains("chmod o+rx"), "\(r)")
    }

    /// Before Linux 6.13 overlayfs takes layers only as paths: the fallback attaches the idmapped
    /// layers under the runtime directory just long enough (forced here).
    @Test func layerPathFallbackBuildsTheSameRoot() async {
        let r = await runAsync(
            [
                Harness.binary, "run", "--rm", "--userns=auto", "busybox", "sh", "-c",
                "stat -c '%u:%g' /bin/busybox; touch /etc/y && echo ok",
            ], env: ["SKIFF_ROOT": Harness.stateRoot, "SKIFF_OVERLAY_LAYER_PATHS": "1"])
        #expect(r.lines == ["0:0", "ok"], "\(r)")
        let left = mountsMentioning("/lower/")
        #expect(left.isEmpty, "layer mounts left: \(left)")
    }

    /// An image's device node stays closed in a user namespace: the root filesystem is `nodev`,
    /// and locked so, even with CAP_SYS_ADMIN and no seccomp filter. (In the host's user namespace
    /// the same node opens; the test would see a missing nodev.)
    @Test func imageDeviceNodesStayClosed() async throws {
        let dir = tempDir("uns-dev")
        defer { _ = runSync(["/bin/rm", "-rf", dir], stdin: nil, timeout: 10) }
        let name = "unsdev\(UInt32.random(in: 0...UInt32.max))"
        let spec = """
            add("nodes")
            i = tarfile.TarInfo("nodes/null"); i.type = tarfile.CHRTYPE; i.devmajor = 1; i.devminor = 3; i.mode = 0o666
            t.addfile(i)
            """
        let built = await ociLayout(dir + "/" + name, spec)
        try #require(built.code == 0, "\(built)")
        let load = await skiff("load", dir + "/" + name)
        try #require(load.code == 0, "\(load)")
        defer { Task { _ = await skiff("rmi", name) } }
        let host = await skiff("run", "--rm", name, "sh", "-c", "echo x > /nodes/null && echo opened")
        #expect(host.out == "opened", "\(host)")
        let r = await skiff(
            "run", "--rm", "--userns=auto", "--cap-add", "SYS_ADMIN", "--security-opt", "seccomp=unconfined", name,
            "sh",
            "-c",
            """
            echo x > /nodes/null; echo open=$?; mount -o remount,bind,dev /; echo bind=$?; \
            mount -o remount,dev /; echo sb=$?; echo x > /nodes/null; echo open=$?
            """)
        #expect(r.lines == ["open=1", "bind=1", "sb=1", "open=1"], "\(r)")
        #expect(r.stderr.contains("Permission denied"), "\(r)")
    }
}
