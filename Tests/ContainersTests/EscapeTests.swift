import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Attack tests (issue 6, acceptance 5): images and root filesystems built to reach the host
/// through symlinks, `..`, host descriptors or `/proc/PID/exe`. Each must fail or stay inside the
/// container, and the host paths they aim at (canary directories and files) must be unchanged.
@Suite(.enabled(if: Harness.available, "needs root and a skiff binary (SKIFF_TEST_BIN)"))
struct EscapeTests {
    init() throws { try Harness.setUp() }

    // MARK: Symlinked /dev, /proc, /sys and mount targets

    /// Image directories the runtime mounts on, replaced by symlinks to a host directory
    /// (absolute, and climbing out with `..`). Resolved inside the root, the link dangles: the
    /// start is refused; when the same path also exists inside the root, the mount lands there.
    /// Either way the host directory is untouched (runc CVE-2025-31133/52565 class).
    @Test(arguments: ["/dev", "/proc", "/sys"])
    func symlinkedKernelDirectoryStaysInside(_ dir: String) async throws {
        for (how, existsInside) in [("absolute", false), ("dotdot", false), ("absolute", true)] {
            let rootfs = try await busyboxRootfs("kdir")
            let host = tempDir("host-target")
            defer { _ = try? FileManager.default.removeItem(atPath: rootfs) }
            defer { _ = try? FileManager.default.removeItem(atPath: host) }
            try "keep".write(toFile: host + "/canary", atomically: false, encoding: .utf8)
            let target = how == "absolute" ? host : String(repeating: "../", count: 12) + host.dropFirst()
            _ = try? FileManager.default.removeItem(atPath: rootfs + dir)
            try FileManager.default.createSymbolicLink(atPath: rootfs + dir, withDestinationPath: target)
            if existsInside {
                try FileManager.default.createDirectory(atPath: rootfs + host, withIntermediateDirectories: true)
            }
            let before = try await tree(host)

            let r = await skiff(
                "run", "--rm", "--rootfs", rootfs, "/bin/sh", "-c",
                "echo pwned > \(dir)/owned 2>/dev/null; ls \(dir) | head -3")
            if existsInside {
                #expect(r.code == 0, "\(dir) -> \(target) existing inside: \(r)")
            } else {
                #expect(r.code == 125, "\(dir) -> \(target) dangling inside must be refused: \(r)")
            }
            #expect(try await tree(host) == before, "\(dir) -> \(target) changed the host directory: \(r)")
            #expect(fileText(host + "/canary") == "keep")
        }
    }

    /// A volume whose container path runs through a symlink to a host path: `/data -> /etc` puts
    /// the bind-mount target (a file it must create) in the container's /etc, never the host's;
    /// `/mnt -> <host dir>` (dangling inside) is refused without creating anything on the host.
    @Test func symlinkedVolumeTargetStaysInside() async throws {
        let rootfs = try await busyboxRootfs("voltarget")
        let host = tempDir("host-vol-target")
        let src = tempDir("vol-src")
        defer {
            for d in [rootfs, host, src] { _ = try? FileManager.default.removeItem(atPath: d) }
        }
        try "from-volume".write(toFile: src + "/file", atomically: false, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: rootfs + "/data", withDestinationPath: "/etc")
        try FileManager.default.createSymbolicLink(atPath: rootfs + "/mnt", withDestinationPath: host)
        let name = "skiff-escape-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"

        let r = await skiff(
            "run", "--rm", "--rootfs", rootfs, "-v", "\(src)/file:/data/\(name)", "/bin/cat", "/etc/\(name)")
        #expect(r.code == 0 && r.out == "from-volume", "\(r)")
        #expect(access("/etc/" + name, F_OK) != 0, "the mount target was created in the host's /etc")
        #expect(access(rootfs + "/etc/" + name, F_OK) == 0, "the target belongs inside the root filesystem")

        let before = try await tree(host)
        let d = await skiff("run", "--rm", "--rootfs", rootfs, "-v", "\(src):/mnt/sub/dir", "/bin/true")
        #expect(d.code == 125, "a target through a link dangling inside must be refused: \(d)")
        #expect(try await tree(host) == before, "the host directory changed: \(d)")
    }

    // MARK: Host descriptors (CVE-2024-21626 class)

    /// `-w /proc/self/fd/N` where skiff holds a host directory open as N (here inherited from the
    /// caller): runc 1.1.11 started the workload with that directory as its working directory.
    /// The working directory is resolved inside the root without magic links, for `run` and
    /// `exec`, directly or through a symlink in the image.
    @Test(arguments: UserNS.modes) func workdirThroughHostDescriptorIsRefused(userns: String) async throws {
        let host = tempDir("host-fd")
        let rootfs = try await busyboxRootfs("fdlink")
        defer {
            for d in [host, rootfs] { _ = try? FileManager.default.removeItem(atPath: d) }
        }
        try "keep".write(toFile: host + "/canary", atomically: false, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: rootfs + "/work", withDestinationPath: "/proc/self/fd/7")
        let before = try await tree(host)
        let bin = Harness.binary
        let env = "SKIFF_ROOT=\(Harness.stateRoot)"
        let escape = "pwd; echo pwned > escaped; mkdir made"
        let name = uniqueName("fdexec")
        defer { Task { await cleanup(name) } }
        let flags = UserNS.flags(userns).joined(separator: " ")
        let started = await skiff(["run", "-d", "--name", name] + UserNS.flags(userns) + ["busybox", "sleep", "60"])
        #expect(started.code == 0, "\(started)")

        var cases = [
            ("run -w fd", "\(bin) run --rm \(flags) -w /proc/self/fd/7 busybox sh -c '\(escape)'"),
            ("run -w fd/sub", "\(bin) run --rm \(flags) -w /proc/self/fd/7/sub busybox sh -c '\(escape)'"),
            ("exec -w fd", "\(bin) exec -w /proc/self/fd/7 \(name) sh -c '\(escape)'"),
        ]
        // --rootfs is refused with --userns=auto.
        if userns == "host" {
            cases.append(("run -w link", "\(bin) run --rm --rootfs \(rootfs) -w /work /bin/sh -c '\(escape)'"))
        }
        for (what, cmd) in cases {
            // Descriptor 7 is the host directory, open (without O_CLOEXEC) in skiff.
            let r = await sh("exec 7<\(host); \(env) \(cmd)")
            #expect(r.code != 0, "\(what) ran in the host directory: \(r)")
            #expect(r.stderr.contains("working directory"), "\(what): \(r)")
            #expect(try await tree(host) == before, "\(what) changed the host directory: \(r)")
        }
    }

    // MARK: /proc/PID/exe (CVE-2019-5736)

    /// A container process stops the child of `skiff exec` (a copy of skiff inside the
    /// container) as it appears, opens its exe, kills it, and then reopens the file for writing
    /// through `/proc/self/fd/3`. Against a writable host binary this truncates it (verified
    /// against the unprotected build). Two layers stop it: with the default capabilities the child
    /// is not dumpable and the attacker lacks CAP_SYS_PTRACE, so its exe cannot even be opened;
    /// given CAP_SYS_PTRACE it can, but skiff runs from a read-only image of itself, so the write
    /// fails with EROFS. Either way the binary on the host is unchanged.
    ///
    /// Catching the child is a race (it lives a few milliseconds), so the attack has rounds: the
    /// attacker arms itself for the next PID, the victim copy runs `skiff exec`, and a round the
    /// attacker loses (the child was already exiting when it was stopped) is played again, as a
    /// real attacker would. With CAP_SYS_PTRACE the test goes on until the attacker catches the
    /// child once (it must, or the test proved nothing); without, every round must miss. The two
    /// cases run one after the other so that their attackers do not compete for the CPUs.
    @Test(.serialized, arguments: [false, true])
    func execCannotRewriteTheRuntimeBinary(ptrace: Bool) async throws {
        let dir = tempDir("exe")
        defer { _ = try? FileManager.default.removeItem(atPath: dir) }
        let victim = dir + "/skiff"
        #expect(copyfile(Harness.binary, victim))
        chmod(victim, 0o755)
        let hash = try await sha256(victim)
        try Self.attack.write(toFile: dir + "/attack.sh", atomically: false, encoding: .utf8)
        let name = uniqueName("exe")
        defer { Task { await cleanup(name) } }
        // The monitor runs from the test's own binary, so nothing else keeps the victim busy.
        let caps = ptrace ? ["--cap-add", "SYS_PTRACE"] : []
        let rounds = ptrace ? 8 : 3
        let started = await skiff(
            ["run", "-d", "--name", name, "-v", "\(dir):/atk"] + caps + ["busybox", "sh", "/atk/attack.sh", "\(rounds)"])
        #expect(started.code == 0, "\(started)")
        var log = ""
        var execs: [Output] = []
        for round in 0..<rounds {
            // The attacker writes the round it is armed for (the PID the next process gets).
            let armed = await eventually(20) { fileText(dir + "/ready") == "\(round)\n" }
            #expect(armed, "the attacker never armed itself for round \(round): \(fileText(dir + "/log") ?? "")")
            guard armed else { break }
            // The victim binary runs `skiff exec`; the container catches its child.
            execs.append(await runAsync([victim, "exec", name, "/evil"], env: ["SKIFF_ROOT": Harness.stateRoot], timeout: 30))
            _ = await eventually(10) {
                let l = fileText(dir + "/log") ?? ""
                return l.contains("caught") || l.contains("missed \(round) ")
            }
            log = fileText(dir + "/log") ?? ""
            if log.contains("caught") { break }
        }
        _ = await eventually(10) { (fileText(dir + "/log") ?? "").contains("done") }
        log = fileText(dir + "/log") ?? ""
        let seen = "attacker log:\n\(log)\nexecs: \(execs)"
        #expect(log.contains("done"), "the attacker never finished: \(seen)")
        #expect(!log.contains("WROTE"), "the container rewrote the runtime binary: \(seen)")
        #expect(try await sha256(victim) == hash, "the runtime binary on the host changed: \(seen)")
        if ptrace {
            #expect(log.contains("caught"), "the attacker never opened the child's exe in \(rounds) rounds, so this proved nothing: \(seen)")
            #expect(log.contains("Read-only file system"), "the write must fail because the image is read-only: \(seen)")
        } else {
            #expect(!log.contains("caught"), "the child's exe must stay closed: \(seen)")
            #expect(execs.count == rounds && log.contains("missed \(rounds - 1) "), "every round must be played: \(seen)")
        }
    }

    /// `--init` keeps a copy of skiff as PID 1 for the container's whole life: its exe is closed
    /// to the workload (not dumpable, no CAP_SYS_PTRACE), and even with CAP_SYS_PTRACE it is the
    /// read-only image, so opening it for writing fails with EROFS.
    @Test func initProcessExeIsClosedAndReadOnly() async {
        let closed = await skiff("run", "--rm", "--init", "busybox", "sh", "-c", "readlink /proc/1/exe || echo closed")
        #expect(closed.code == 0 && closed.lines.last == "closed", "\(closed)")
        let ro = await skiff(
            "run", "--rm", "--init", "--cap-add", "SYS_PTRACE", "busybox", "sh", "-c",
            "readlink /proc/1/exe; echo x 2>&1 > /proc/1/exe; echo rc=$?")
        #expect(ro.stdout.contains("Read-only file system") || ro.stderr.contains("Read-only file system"), "\(ro)")
        #expect(ro.lines.last == "rc=1", "\(ro)")
    }

    /// The container side of `execCannotRewriteTheRuntimeBinary` (busybox sh; `$1` rounds). The
    /// next process created in the container's PID namespace gets `ns_last_pid + 1` (read by
    /// `cat`, whose own PID it then is: the sysctl answers only a read at offset 0, and the `read`
    /// builtin reads a byte at a time); only shell builtins run between that and the next process
    /// existing, so it is the child of
    /// `skiff exec`, stopped the moment it appears. While its exe cannot be read (not dumpable,
    /// and no CAP_SYS_PTRACE), it is let run in small steps in case it becomes readable (were it
    /// to exec `/evil`, it would be skiff started again through `#!/proc/self/exe`). A round ends
    /// when the child is gone ("missed ROUND ..."); the first catch ends the attack.
    static let attack = """
        printf '#!/proc/self/exe\\n' > /evil
        chmod 755 /evil
        round=0
        t=
        while [ $round -lt $1 ]; do
          last=$(cat /proc/sys/kernel/ns_last_pid)
          n=$((last + 1))
          echo $round > /atk/ready
          while ! kill -STOP $n 2>/dev/null; do :; done
          i=0
          while [ $i -lt 200 ]; do
            t=$(readlink /proc/$n/exe 2>/dev/null)
            case "$t" in ""|/bin/busybox) ;; *) break;; esac
            kill -CONT $n 2>/dev/null || break
            usleep 2000
            kill -STOP $n 2>/dev/null || break
            i=$((i + 1))
          done
          case "$t" in ""|/bin/busybox) ;; *) break;; esac
          kill -CONT $n 2>/dev/null
          echo "missed $round $n: exe '$t' after $i steps" >> /atk/log
          round=$((round + 1))
        done
        case "$t" in ""|/bin/busybox) echo done >> /atk/log; exit 0;; esac
        exec 3</proc/$n/exe
        echo "caught $n $t in round $round" >> /atk/log
        kill -KILL $n
        i=0
        while [ $i -lt 20 ]; do
          if echo pwned 2>>/atk/log > /proc/self/fd/3; then echo WROTE >> /atk/log; break; fi
          i=$((i + 1))
          sleep 0.1
        done
        echo done >> /atk/log
        """

    // MARK: Layers

    /// An image whose layer climbs out with `..`, absolute names, a symlink to a host directory
    /// and a chain of relative symlinks, loaded and run: every entry lands inside the layer and
    /// the host canary directory is unchanged. A second image whose layer hardlinks a host file is
    /// refused at load. (The unpacker's own cases are in ImagesTests/LayerUnpackerTests.)
    @Test func escapingLayerStaysInside() async throws {
        let host = tempDir("host-layer")
        let dir = tempDir("layout")
        defer {
            for d in [host, dir] { _ = try? FileManager.default.removeItem(atPath: d) }
        }
        try "keep".write(toFile: host + "/canary", atomically: false, encoding: .utf8)
        let before = try await tree(host)
        let h = String(host.dropFirst())
        let name = "escape\(UInt32.random(in: 0...UInt32.max))"
        let spec = """
            data("../../../../../../\(h)/dotdot", b"pwned")
            data("/\(h)/absolute", b"pwned")
            add("evil", tarfile.SYMTYPE, linkname="/\(h)")
            data("evil/through-link", b"pwned")
            add("a", tarfile.SYMTYPE, linkname="../../../../..")
            add("b", tarfile.SYMTYPE, linkname="a/a/..")
            data("b/\(h)/chained", b"pwned")
            data("canary", b"overwritten")
            add("evil/canary", tarfile.SYMTYPE, linkname="/etc/passwd")
            """
        let layout = dir + "/" + name
        let built = await ociLayout(layout, spec)
        #expect(built.code == 0, "\(built)")
        let load = await skiff("load", layout)
        #expect(load.code == 0, "\(load)")
        #expect(try await tree(host) == before, "loading changed the host directory: \(load)")
        let r = await skiff(
            "run", "--rm", name, "/bin/sh", "-c", "cat /\(h)/dotdot /\(h)/absolute /\(h)/through-link /\(h)/chained")
        #expect(r.code == 0 && r.out == "pwnedpwnedpwnedpwned", "the entries belong inside the image: \(r)")
        #expect(try await tree(host) == before, "running changed the host directory: \(r)")
        #expect(fileText(host + "/canary") == "keep")
        _ = await skiff("rmi", name)

        let hard = dir + "/hard" + name
        let hb = await ociLayout(hard, #"add("h", tarfile.LNKTYPE, linkname="../../../../../../\#(h)/canary")"#)
        #expect(hb.code == 0, "\(hb)")
        let refused = await skiff("load", hard)
        #expect(refused.code != 0, "a hardlink to a host file must be refused: \(refused)")
        #expect(fileText(host + "/canary") == "keep")
        #expect(try await tree(host) == before)
    }
}

// MARK: Helpers

/// A fresh copy of the busybox image's root filesystem (its single layer), for `--rootfs`.
func busyboxRootfs(_ what: String) async throws -> String {
    let dir = tempDir("rootfs-\(what)")
    let blobs = Harness.busyboxLayout + "/blobs/sha256"
    let r = await sh("tar -xzf \"$(ls -S \(blobs)/* | head -1)\" -C \(dir)")
    guard r.code == 0 else { throw TestFailure("cannot unpack busybox: \(r)") }
    return dir
}

/// Every entry under `dir` with type, size, mode and link target, sorted: equal before and after
/// means nothing was created, removed or rewritten there.
func tree(_ dir: String) async throws -> String {
    let r = await sh("find \(dir) -printf '%p %y %s %m %l\\n' | sort; sha256sum \(dir)/canary 2>/dev/null")
    guard r.code == 0 || !r.stdout.isEmpty else { throw TestFailure("find \(dir): \(r)") }
    return r.stdout
}

func sha256(_ path: String) async throws -> String {
    let r = await sh("sha256sum \(path)")
    guard r.code == 0 else { throw TestFailure("\(r)") }
    return r.out
}

/// A file's text, nil when it cannot be read.
func fileText(_ path: String) -> String? {
    try? String(contentsOfFile: path, encoding: .utf8)
}

func copyfile(_ from: String, _ to: String) -> Bool {
    (try? FileManager.default.copyItem(atPath: from, toPath: to)) != nil
}

/// An OCI image layout at `dir` (named by its last component when loaded): busybox's layer, then
/// one uncompressed layer written by Python's tarfile from `spec` (`data(name, bytes)`,
/// `add(name, type, linkname=…)`), so entries may carry any name or link a hostile image could.
func ociLayout(_ dir: String, _ spec: String) async -> Output {
    let script = #"""
        import gzip, hashlib, io, json, os, sys, tarfile
        out, base, spec = sys.argv[1], sys.argv[2], sys.argv[3]
        buf = io.BytesIO()
        t = tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT)
        def add(name, type=tarfile.DIRTYPE, linkname="", data=None, mode=0o755):
            i = tarfile.TarInfo(name); i.type = type; i.linkname = linkname; i.mode = mode
            if data is not None:
                i.size = len(data); t.addfile(i, io.BytesIO(data))
            else:
                t.addfile(i)
        def data(name, b): add(name, tarfile.REGTYPE, data=b, mode=0o644)
        exec(spec)
        t.close()
        os.makedirs(out + "/blobs/sha256", exist_ok=True)
        def blob(b):
            d = hashlib.sha256(b).hexdigest()
            open(out + "/blobs/sha256/" + d, "wb").write(b)
            return {"digest": "sha256:" + d, "size": len(b)}
        bb = open(base, "rb").read()
        layers = [dict(blob(bb), mediaType="application/vnd.oci.image.layer.v1.tar+gzip"),
                  dict(blob(buf.getvalue()), mediaType="application/vnd.oci.image.layer.v1.tar")]
        diffs = ["sha256:" + hashlib.sha256(gzip.decompress(bb)).hexdigest(),
                 "sha256:" + hashlib.sha256(buf.getvalue()).hexdigest()]
        config = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                  "rootfs": {"type": "layers", "diff_ids": diffs}}
        c = dict(blob(json.dumps(config).encode()), mediaType="application/vnd.oci.image.config.v1+json")
        m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": c, "layers": layers}
        md = dict(blob(json.dumps(m).encode()), mediaType="application/vnd.oci.image.manifest.v1+json")
        md["annotations"] = {"org.opencontainers.image.ref.name": "latest"}
        json.dump({"schemaVersion": 2, "manifests": [md]}, open(out + "/index.json", "w"))
        open(out + "/oci-layout", "w").write('{"imageLayoutVersion": "1.0.0"}')
        """#
    let base = await sh("ls -S \(Harness.busyboxLayout)/blobs/sha256/* | head -1")
    return await runAsync(["/usr/bin/env", "python3", "-c", script, dir, base.out, spec], timeout: 60)
}
