import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `skiff run --vm` end to end: the binary is the VMM, with the KVM tests' assembly guests built
/// into ELF64 kernels (gcc -c + ld -N -Ttext=0x100000: one PT_LOAD at 0x100000, entry `_start`).
enum VMGuest {
    static let sourceDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("KVMTests/guests").path

    static let unavailableReason: String? = {
        let reason: String?
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        let tools = ["gcc", "ld"].allSatisfy { t in path.contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(t)") } }
        if geteuid() != 0 {
            reason = "needs root (cgroups, /dev/kvm)"
        } else if access(Harness.binary, X_OK) != 0 {
            reason = "no skiff binary at \(Harness.binary): build it and set SKIFF_TEST_BIN"
        } else if access("/dev/kvm", R_OK | W_OK) != 0 {
            reason = "no read-write /dev/kvm on this host"
        } else if !tools {
            reason = "needs gcc and ld to build the test guests"
        } else {
            reason = nil
        }
        if let reason { print("skipping VMTests: \(reason)") }
        return reason
    }()

    static var available: Bool { unavailableReason == nil }

    /// One directory per test process for the built guests; at the first use the directories of
    /// test processes that are gone are removed (so runs do not pile up copies, and two runs at once
    /// do not delete each other's guests).
    static let directory: String = {
        let base = "/tmp/skiff-tests-vm-guests"
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? [] {
            if let pid = Int32(entry), pid != getpid(), processAlive(pid) { continue }
            try? FileManager.default.removeItem(atPath: base + "/" + entry)
        }
        let d = base + "/\(getpid())"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }()

    /// Builds `guests/<name>.S` into `<directory>/<output>.elf` and returns its path.
    static func build(_ name: String, output: String? = nil, defines: [String: String] = [:]) async throws -> String {
        let out = directory + "/\(output ?? name)-" + UUID().uuidString.prefix(8)
        let d = defines.sorted { $0.key < $1.key }.map { "-D\($0.key)=\($0.value)" }.joined(separator: " ")
        let r = await sh(
            "gcc -c -nostdlib -ffreestanding -I \(sourceDirectory) \(d) \(sourceDirectory)/\(name).S -o \(out).o"
                + " && ld -nostdlib -N --build-id=none -Ttext=0x100000 \(out).o -o \(out).elf 2>/dev/null")
        guard r.code == 0 else { throw TestFailure("building guest \(name) failed: \(r)") }
        return out + ".elf"
    }

    static func hello() async throws -> String { try await build("hello") }
    /// Echoes what arrives on COM1 until 0x04.
    static func echo() async throws -> String { try await build("echo") }
    /// Waits for i8042 keyboard data, prints it, resets.
    static func keyboardWait() async throws -> String { try await build("kbdwait") }
    /// Prints "ready\n", then halts with interrupts off (no exits, no CPU).
    static func announce() async throws -> String { try await build("announce") }
    /// Prints "tick\n" forever.
    static func chatter() async throws -> String { try await build("chatter") }
    static func spinForever() async throws -> String {
        try await build("spin", output: "spin-forever", defines: ["ITERATIONS": "0x7fffffffffffffff"])
    }
}

@Suite(.enabled(if: VMGuest.available, "needs root, /dev/kvm, gcc, ld and a skiff binary"))
struct VMTests {
    static func row(_ name: String) async throws -> [String: Any]? {
        let r = await skiff("ps", "-a", "--format", "json")
        guard r.code == 0 else { throw TestFailure("ps failed: \(r)") }
        return try r.lines.compactMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .first { ($0["Names"] as? String) == name }
    }

    @Test func foregroundHelloPrintsTheLineExitsZeroAndLeavesNoRecord() async throws {
        let kernel = try await VMGuest.hello()
        let name = uniqueName("vm-fg")
        let r = await skiff("run", "--rm", "--name", name, "--vm", "--kernel", kernel)
        #expect(r.code == 0, "\(r)")
        #expect(r.stdout == "hello from the guest\n", "\(r)")
        #expect(try await Self.row(name) == nil, "the record is gone")
    }

    /// The VM's destruction is left to the kernel after the VMM exits (io_uring holds the last
    /// reference; `VirtualMachine.deferReleaseToExit`): it must still happen. The VM's PIT thread,
    /// `kvm-pit/<VMM pid>`, exists from VM creation to `kvm_destroy_vm`; it must be gone soon after
    /// the VMM exited, or VMs would leak.
    @Test func aForegroundVMIsDestroyedAfterItsVMMExits() async throws {
        let kernel = try await VMGuest.hello()
        let r = await sh(
            "SKIFF_ROOT=\(Harness.stateRoot) \(Harness.binary) run --rm --vm --kernel \(kernel) & echo pid=$!; wait $!")
        #expect(r.code == 0 && r.stdout.contains("hello from the guest\n"), "\(r)")
        let pid = try #require(r.lines.first { $0.hasPrefix("pid=") }.flatMap { Int32($0.dropFirst(4)) }, "\(r)")
        func pitThreads() -> Int {
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
            return tasks.filter { entry in
                guard Int32(entry) != nil else { return false }
                let comm = (try? String(contentsOfFile: "/proc/\(entry)/comm", encoding: .utf8)) ?? ""
                return comm == "kvm-pit/\(pid)\n"
            }.count
        }
        var left = pitThreads()
        for _ in 0..<500 where left > 0 {
            usleep(10_000)
            left = pitThreads()
        }
        #expect(left == 0, "kvm-pit/\(pid) still exists 5 s after its VMM exited: the VM was not destroyed")
    }

    @Test func detachedHelloExitsZeroLogsTheLineAndRmCleansUp() async throws {
        let kernel = try await VMGuest.hello()
        let name = uniqueName("vm-d")
        let run = await skiff("run", "-d", "--name", name, "--vm", "--kernel", kernel)
        #expect(run.code == 0, "\(run)")
        let exited = await eventually(20) {
            ((try? await Self.row(name))??["Status"] as? String ?? "").hasPrefix("Exited (0)")
        }
        let row = try await Self.row(name)
        #expect(exited, "\(String(describing: row))")
        #expect(row?["Image"] as? String == kernel)
        let logs = await skiff("logs", name)
        #expect(logs.code == 0 && logs.stdout == "hello from the guest\n", "\(logs)")
        let f = try await facts(name)
        #expect(f.status == "exited")
        let rm = await skiff("rm", name)
        #expect(rm.code == 0, "\(rm)")
        #expect(try await Self.row(name) == nil, "the record is gone")
        let dirs = await sh("find /sys/fs/cgroup -maxdepth 6 -type d -name 'skiff-\(f.id)'")
        #expect(dirs.out.isEmpty, "cgroup left: \(dirs.out)")
    }

    /// The UART's transmit writes are coalesced by KVM while the guest polls (VMMachine): the
    /// last byte of a line printed just before the guest goes quiet has no exit after it, and
    /// must still reach the log (the runner drains the ring every 10 to 100 ms).
    @Test func theLastLineBeforeAGuestGoesQuietReachesTheLog() async throws {
        let kernel = try await VMGuest.announce()
        let name = uniqueName("vm-quiet")
        let run = await skiff("run", "-d", "--name", name, "--vm", "--kernel", kernel)
        #expect(run.code == 0, "\(run)")
        var logs = await skiff("logs", name)
        let complete = await eventually(5) {
            logs = await skiff("logs", name)
            return logs.stdout == "ready\n"
        }
        #expect(complete, "the log holds \(logs.stdout.debugDescription), not the whole line")
        let rm = await skiff("rm", "-f", name)
        #expect(rm.code == 0, "\(rm)")
    }

    /// `--cgroup-parent` puts the VMM's cgroup below the named cgroup in every hierarchy it uses
    /// (made when missing, as for a container), in the foreground and detached. On cgroup v2 the
    /// parent here has a controller enabled for its children, so it may hold no process (the "no
    /// internal processes" rule, cgroup-v2.rst): the VMM must go back to the cgroup it came from,
    /// not to the parent, before its own is removed, or that cgroup stays behind.
    @Test func cgroupParentHoldsTheVMMsCgroupAndNothingStaysBehind() async throws {
        let hello = try await VMGuest.hello()
        let quiet = try await VMGuest.announce()
        let parent = "skiff-test-vmparent-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        let mounts = Self.cgroupMountPoints()
        defer { for m in mounts { rmdir(m.path + "/" + parent) } }
        if let v2 = mounts.first(where: { $0.v2 }),
            let controller = (fileText(v2.path + "/cgroup.subtree_control") ?? "").split(whereSeparator: \.isWhitespace).first
        {
            #expect(mkdir(v2.path + "/" + parent, 0o755) == 0)
            let enabled = await sh("echo +\(controller) > \(v2.path)/\(parent)/cgroup.subtree_control")
            let control = fileText("\(v2.path)/\(parent)/cgroup.subtree_control") ?? ""
            #expect(enabled.code == 0 && control.contains(controller), "\(enabled) \(control)")
        } else {
            print("cgroupParentHoldsTheVMMsCgroupAndNothingStaysBehind: no cgroup v2 controller to enable below the parent here; only the placement is checked")
        }
        let fg = await skiff("run", "--rm", "--vm", "--cgroup-parent", "/" + parent, "--kernel", hello)
        #expect(fg.code == 0 && fg.stdout == "hello from the guest\n", "\(fg)")
        let name = uniqueName("vm-parent")
        let d = await skiff("run", "-d", "--name", name, "--vm", "--cgroup-parent", "/" + parent, "--kernel", quiet)
        #expect(d.code == 0, "\(d)")
        _ = await eventually(5) { await skiff("logs", name).stdout == "ready\n" }
        let facts = try await inspect(name)
        let pid = (facts["State"] as? [String: Any])?["Pid"] as? Int ?? 0
        // v2, and the v1 hierarchies of cpu, memory and pids (a VM has no cpuset or devices cgroup).
        let membership = (fileText("/proc/\(pid)/cgroup") ?? "").split(separator: "\n").filter { line in
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { return false }
            return fields[0] == "0" || fields[1].split(separator: ",").contains { ["cpu", "memory", "pids"].contains($0) }
        }
        #expect(pid > 0 && !membership.isEmpty, "\(facts)")
        for line in membership {
            #expect(line.split(separator: ":", maxSplits: 2).last?.hasPrefix("/\(parent)/skiff-") == true, "\(line)")
        }
        let rm = await skiff("rm", "-f", name)
        #expect(rm.code == 0, "\(rm)")
        for m in mounts {
            let left = (try? FileManager.default.contentsOfDirectory(atPath: m.path + "/" + parent))?.filter {
                $0.hasPrefix("skiff-")
            }
            #expect(left?.isEmpty ?? true, "left below \(m.path)/\(parent): \(left ?? [])")
        }
    }

    /// The cgroup file systems mounted here (`/proc/self/mountinfo`): mount point and whether v2.
    static func cgroupMountPoints() -> [(path: String, v2: Bool)] {
        (fileText("/proc/self/mountinfo") ?? "").split(separator: "\n").compactMap { line in
            let halves = line.components(separatedBy: " - ")
            guard halves.count == 2, let type = halves[1].split(separator: " ").first,
                type == "cgroup" || type == "cgroup2"
            else { return nil }
            let fields = halves[0].split(separator: " ")
            guard fields.count > 4 else { return nil }
            return (String(fields[4]), type == "cgroup2")
        }
    }

    /// A plain SIGTERM (kill, systemd) to a foreground VM presses the power button; a guest that
    /// ignores it is stopped after SignalWaiter.defaultGrace (10 s), 143, and the --rm run leaves
    /// no record. Other signals that would end the VMM stop it at once, with its clean-up: SIGUSR1
    /// gives 138, and a console whose reader went away (`| head`) gives 141. (A second SIGTERM
    /// stops at once; the two GNU timeout sends, to the process and its group, arrive together
    /// and count as one.)
    @Test func signalsStopAForegroundVMAndItCleansUp() async throws {
        let quiet = try await VMGuest.announce()
        let term = uniqueName("vm-term")
        let started = Date()
        let r = await sh(
            "SKIFF_ROOT=\(Harness.stateRoot) \(Harness.binary) run --rm --name \(term) --vm --kernel \(quiet) & pid=$!; sleep 1; kill -TERM $pid; wait $pid; echo rc=$?",
            timeout: 60)
        #expect(r.stdout == "ready\nrc=143\n", "\(r)")
        #expect(Date().timeIntervalSince(started) >= 10, "stopped before the grace period")
        #expect(try await Self.row(term) == nil, "the record is gone")

        let usr1 = uniqueName("vm-usr1")
        let u = await sh(
            "SKIFF_ROOT=\(Harness.stateRoot) timeout --preserve-status -s USR1 1 \(Harness.binary) run --rm --name \(usr1) --vm --kernel \(quiet)",
            timeout: 60)
        #expect(u.code == 138, "\(u)")
        #expect(try await Self.row(usr1) == nil, "the record is gone")

        let chatter = try await VMGuest.chatter()
        let pipe = uniqueName("vm-pipe")
        let p = await runAsync(
            [
                "/bin/bash", "-c",
                "set -o pipefail; SKIFF_ROOT=\(Harness.stateRoot) \(Harness.binary) run --rm --name \(pipe) --vm --kernel \(chatter) | head -n 2",
            ], timeout: 60)
        #expect(p.code == 141 && p.stdout == "tick\ntick\n", "\(p)")
        #expect(try await Self.row(pipe) == nil, "the record is gone")
    }

    @Test func spinningVMRunsUntilRmForce() async throws {
        let kernel = try await VMGuest.spinForever()
        let name = uniqueName("vm-spin")
        let run = await skiff("run", "-d", "--name", name, "--vm", "--kernel", kernel, "--cpus", "2", "--memory", "64m", "--cpu-ratio", "0.1")
        #expect(run.code == 0, "\(run)")
        let f = try await facts(name)
        #expect(f.status == "running")
        #expect(f.pid > 0 && processAlive(f.pid))
        #expect(!f.cgroupPaths.isEmpty)
        // The VMM is its own workload: it sits in the VM's cgroup.
        let cgroup = (try? String(contentsOfFile: "/proc/\(f.pid)/cgroup", encoding: .utf8)) ?? ""
        #expect(cgroup.contains("skiff-\(f.id)"), "\(cgroup)")
        #expect(((try await Self.row(name))?["Status"] as? String ?? "").hasPrefix("Up"))
        let rm = await skiff("rm", "-f", name)
        #expect(rm.code == 0, "\(rm)")
        #expect(await eventually(10) { !processAlive(f.pid) })
        #expect(try await Self.row(name) == nil, "the record is gone")
        for path in f.cgroupPaths { #expect(!FileManager.default.fileExists(atPath: path), "\(path)") }
    }

    /// Also for a paused VM: `stop` thaws it first (as for a container), or the frozen guest
    /// could not see the keys and would be killed (137) after the timeout and two grace periods.
    @Test(arguments: [false, true])
    func stopPressesCtrlAltDelAndAGuestThatListensExitsZeroAtOnce(paused: Bool) async throws {
        let kernel = try await VMGuest.keyboardWait()
        let name = uniqueName("vm-cad")
        let run = await skiff("run", "-d", "--name", name, "--vm", "--kernel", kernel)
        #expect(run.code == 0, "\(run)")
        if paused {
            let pause = await skiff("pause", name)
            #expect(pause.code == 0, "\(pause)")
        }
        let f = try await facts(name)
        #expect(f.status == (paused ? "paused" : "running"))
        let stop = await skiff("stop", "-t", "30", name)
        #expect(stop.code == 0, "\(stop)")
        // Exit 0 is the guest's own reset on Ctrl+Alt+Del; a guest that never saw the keys would
        // have had its vCPUs stopped after the 30 s (143).
        #expect(((try await Self.row(name))?["Status"] as? String ?? "").hasPrefix("Exited (0)"))
        // The guest saw Ctrl, Alt, Delete in scan code set 2 and said so on its console.
        let logs = await skiff("logs", name)
        #expect(logs.stdout == "keys: 14 11 e0 71\n", "\(logs)")
        #expect(!processAlive(f.pid))
        for path in f.cgroupPaths { #expect(!FileManager.default.fileExists(atPath: path), "\(path)") }
        #expect(await skiff("rm", name).code == 0)
    }

    @Test func stopOfAGuestThatIgnoresCtrlAltDelStopsTheVCPUsAfterTheTimeout() async throws {
        let kernel = try await VMGuest.spinForever()
        let name = uniqueName("vm-stop")
        let run = await skiff("run", "-d", "--name", name, "--vm", "--kernel", kernel)
        #expect(run.code == 0, "\(run)")
        let f = try await facts(name)
        let started = Date()
        let stop = await skiff("stop", "-t", "2", name)
        let took = Date().timeIntervalSince(started)
        #expect(stop.code == 0, "\(stop)")
        #expect(took >= 2, "skiff stop -t 2 took \(took) s: the guest did not get its timeout")
        // The VMM stopped its vCPUs itself when the timeout was over and recorded the exit (143);
        // the SIGKILL that stop sends a VMM still there 10 s later would give 137.
        #expect(((try await Self.row(name))?["Status"] as? String ?? "").hasPrefix("Exited (143)"))
        #expect(!processAlive(f.pid))
        for path in f.cgroupPaths { #expect(!FileManager.default.fileExists(atPath: path), "\(path)") }
        #expect(await skiff("rm", name).code == 0)
    }

    @Test func interactiveStdinReachesTheSerialConsole() async throws {
        let kernel = try await VMGuest.echo()
        let r = await skiff("run", "-i", "--rm", "--vm", "--kernel", kernel, stdin: "typed into ttyS0\n\u{04}")
        #expect(r.code == 0, "\(r)")
        #expect(r.stdout == "typed into ttyS0\n", "\(r)")
    }

    @Test func diskFlagsAreCheckedAndAnnouncedOnTheGuestCommandLine() async throws {
        let name = uniqueName("vm-disk")
        let hello = try await VMGuest.hello()
        let missing = await skiff("run", "--name", name, "--vm", "--kernel", hello, "--disk", "/nonexistent/root.img")
        #expect(
            missing.code == 125 && missing.stderr.contains("--disk /nonexistent/root.img: cannot read it"), "\(missing)"
        )
        let directory = await skiff("run", "--name", name, "--vm", "--kernel", hello, "--disk", "/tmp:ro")
        #expect(directory.code == 125 && directory.stderr.contains("not a regular file"), "\(directory)")
        let noVM = await skiff("run", "--name", name, "--disk", "/tmp/x.img")
        #expect(noVM.code == 125 && noVM.stderr.contains("need --vm"), "\(noVM)")
        #expect(try await Self.row(name) == nil, "nothing recorded")

        let image = VMGuest.directory + "/disk-\(UUID().uuidString.prefix(8)).img"
        #expect(FileManager.default.createFile(atPath: image, contents: Data(count: 1 << 20)))
        let run = await skiff(
            "run", "-d", "--name", name, "--vm", "--kernel", hello, "--cmdline", "console=ttyS0",
            "--disk", image, "--disk", image + ":ro")
        #expect(run.code == 0, "\(run)")
        let doc = try await inspect(name)
        #expect(
            doc["Args"] as? [String]
                == ["console=ttyS0 virtio_mmio.device=4K@0xd0000000:5 virtio_mmio.device=4K@0xd0001000:6"],
            "\(doc["Args"] ?? "")")
        #expect(
            await eventually(20) { ((try? await Self.row(name))??["Status"] as? String ?? "").hasPrefix("Exited (0)") })
        #expect(await skiff("logs", name).stdout == "hello from the guest\n")
        #expect(await skiff("rm", name).code == 0)
        try? FileManager.default.removeItem(atPath: image)
    }

    /// `run --vm` is parsed with the VM's options alone when that suffices (main.swift, RunVM) and
    /// by the whole `run` command otherwise: both must behave as `run` always did.
    @Test func vmRunsParseTheSameWithOrWithoutContainerOptions() async throws {
        let hello = try await VMGuest.hello()
        // Only VM options, in Docker's mixed order and `=` forms: the short path.
        let short = await skiff("run", "--rm", "-i", "--vm", "--kernel=\(hello)", "--memory=64m", "--cpus", "1", stdin: "")
        #expect(short.code == 0 && short.stdout == "hello from the guest\n", "\(short)")
        // A container option with --vm: the whole command parses it and refuses it by name.
        for flag in [["--pids-limit", "50"], ["-e", "A=1"], ["--network", "host"], ["--read-only"], ["-v", "/tmp:/t"]] {
            let mixed = await skiff(["run", "--rm", "--vm", "--kernel", hello] + flag)
            #expect(
                mixed.code == 125 && mixed.stderr.contains("applies to containers, not to a VM")
                    && mixed.stdout.isEmpty, "\(flag): \(mixed)")
        }
        // Refusals and usage errors keep their messages.
        let userns = await skiff("run", "--rm", "--vm", "--kernel", hello, "--userns=auto")
        #expect(userns.code == 125 && userns.stderr.contains("--userns applies to containers"), "\(userns)")
        let image = await skiff("run", "--rm", "--vm", "--kernel", hello, "busybox")
        #expect(image.code == 125 && image.stderr.contains("takes no IMAGE or COMMAND"), "\(image)")
        let typo = await skiff("run", "--rm", "--vm", "--kernle", hello)
        #expect(typo.code == 125 && typo.stderr.contains("--kernle"), "\(typo)")
        let help = await skiff("run", "--vm", "--help")
        #expect(help.code == 0 && help.stdout.contains("--pids-limit") && help.stdout.contains("--kernel"), "\(help)")
        // exec would enter the VMM's namespaces, which are the host's: refused.
        let name = uniqueName("vm-noexec")
        let spin = try await VMGuest.spinForever()
        let d = await skiff("run", "-d", "--name", name, "--vm", "--kernel", spin)
        #expect(d.code == 0, "\(d)")
        let exec = await skiff("exec", name, "sh", "-c", "echo ran-on-the-host")
        #expect(exec.code == 125 && exec.stderr.contains("it is a VM") && !exec.stdout.contains("ran-on"), "\(exec)")
        _ = await skiff("rm", "-f", name)
        let badCPUs = await skiff("run", "--rm", "--vm", "--kernel", hello, "--cpus", "0.5")
        #expect(badCPUs.code == 125 && badCPUs.stderr.contains("whole number of vCPUs"), "\(badCPUs)")
    }

    /// A foreground VM's record is stored with its admission, in one transaction: a taken name or
    /// a share that does not fit fails 125 with the reason, and leaves no record, directory or
    /// reservation (in a state root of its own, so other tests' VMs do not count).
    @Test func aRefusedForegroundVMLeavesNothing() async throws {
        let root = "/tmp/skiff-test-vm-refused-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let hello = try await VMGuest.hello()
        let quiet = try await VMGuest.announce()
        let skiffHere = "SKIFF_ROOT=\(root) \(Harness.binary)"
        let held = await sh("\(skiffHere) run -d --name held --vm --cpu-ratio 0.8 --kernel \(quiet)")
        #expect(held.code == 0, "\(held)")
        let taken = await sh("\(skiffHere) run --rm --name held --vm --kernel \(hello)")
        #expect(taken.code == 125 && taken.stderr.contains("already in use"), "\(taken)")
        let refused = await sh("\(skiffHere) run --rm --vm --cpu-ratio 0.5 --kernel \(hello)")
        #expect(refused.code == 125 && refused.stderr.contains("cannot admit"), "\(refused)")
        #expect(!refused.stdout.contains("hello"), "the refused guest ran: \(refused)")
        let ps = await sh("\(skiffHere) ps -a -q")
        #expect(ps.lines.count == 1, "records: \(ps)")
        let dirs = (try? FileManager.default.contentsOfDirectory(atPath: root + "/containers")) ?? []
        #expect(dirs.count == 1, "container directories: \(dirs)")
        // One line per workload holding a share: only the held VM's.
        let top = await sh("\(skiffHere) top --format json")
        #expect(top.lines.count == 1 && top.stdout.contains("\"Name\":\"held\""), "\(top)")
        let rm = await sh("\(skiffHere) rm -f held")
        #expect(rm.code == 0, "\(rm)")
    }

    @Test func badInputFails125WithAClearMessageAndLeavesNothing() async throws {
        let name = uniqueName("vm-bad")
        let noKernel = await skiff("run", "--name", name, "--vm")
        #expect(noKernel.code == 125 && noKernel.stderr.contains("--kernel"), "\(noKernel)")
        let notAKernel = await skiff("run", "--name", name, "--vm", "--kernel", "/etc/hostname")
        #expect(
            notAKernel.code == 125 && notAKernel.stderr.contains("not an ELF64 vmlinux nor a bzImage"), "\(notAKernel)")
        let missing = await skiff("run", "-d", "--name", name, "--vm", "--kernel", "/nonexistent/vmlinux")
        #expect(missing.code == 125 && missing.stderr.contains("cannot read"), "\(missing)")
        let hello = try await VMGuest.hello()
        let small = await skiff("run", "--name", name, "--vm", "--kernel", hello, "--memory", "1m")
        #expect(small.code == 125 && small.stderr.contains("outside guest RAM"), "\(small)")
        #expect(try await Self.row(name) == nil, "the record is gone")
    }
}
