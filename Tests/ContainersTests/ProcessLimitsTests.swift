import Foundation
import LinuxSys
import OCI
import Testing

@testable import Containers

/// `--ulimit`, `--oom-score-adj` and `--sysctl` parsing: Docker's syntax and refusals.
struct ProcessLimitsParsingTests {
    @Test func ulimitTakesDockersSyntax() throws {
        #expect(
            try ProcessLimits.ulimit("nofile=1024:2048") == Spec.RLimit(type: "RLIMIT_NOFILE", soft: 1024, hard: 2048))
        #expect(try ProcessLimits.ulimit("core=0") == Spec.RLimit(type: "RLIMIT_CORE", soft: 0, hard: 0))
        #expect(try ProcessLimits.ulimit("stack=-1") == Spec.RLimit(type: "RLIMIT_STACK", soft: .max, hard: .max))
        #expect(
            try ProcessLimits.ulimit("nproc=10:unlimited") == Spec.RLimit(type: "RLIMIT_NPROC", soft: 10, hard: .max))
        // A later flag for the same name wins.
        #expect(
            try ProcessLimits.ulimits(["nofile=1", "nofile=2"]) == [
                Spec.RLimit(type: "RLIMIT_NOFILE", soft: 2, hard: 2)
            ])
        for bad in ["nofile", "nofile=", "bogus=1", "as=1", "nofile=2:1", "nofile=1:2:3", "nofile=-5", "nofile=x"] {
            #expect(throws: SkiffError.self, "\(bad)") { try ProcessLimits.ulimit(bad) }
        }
        #expect(ProcessLimits.resource(ofType: "RLIMIT_NOFILE") == 7)
        #expect(ProcessLimits.resource(ofType: "RLIMIT_AS") == 9)
        #expect(ProcessLimits.resource(ofType: "NOFILE") == nil)
    }

    @Test func oomScoreAdjRange() throws {
        #expect(try ProcessLimits.oomScoreAdj(-1000) == -1000)
        #expect(try ProcessLimits.oomScoreAdj(1000) == 1000)
        #expect(try ProcessLimits.oomScoreAdj(nil) == nil)
        #expect(throws: SkiffError.self) { try ProcessLimits.oomScoreAdj(1001) }
        #expect(throws: SkiffError.self) { try ProcessLimits.oomScoreAdj(-1001) }
    }

    @Test func onlyNamespacedSysctls() throws {
        for ok in [
            "kernel.msgmax", "kernel.msgmnb", "kernel.sem", "kernel.shmmax", "kernel.shm_rmid_forced",
            "fs.mqueue.msg_max",
        ] {
            try ProcessLimits.checkSysctl(ok, privateNetwork: false)
        }
        try ProcessLimits.checkSysctl("net.ipv4.ip_forward", privateNetwork: true)
        try ProcessLimits.checkSysctl("net/ipv4/conf/eth0.100/rp_filter", privateNetwork: true)
        #expect(throws: SkiffError.self) { try ProcessLimits.checkSysctl("net.ipv4.ip_forward", privateNetwork: false) }
        for bad in [
            "kernel.pid_max", "kernel.hostname", "vm.overcommit_memory", "fs.file-max", "kernel.semx.y", "net",
            "net..x",
            "net/../kernel/pid_max", "net.ipv4/../../x", "",
        ] {
            #expect(throws: SkiffError.self, "\(bad)") { try ProcessLimits.checkSysctl(bad, privateNetwork: true) }
        }
        #expect(
            ProcessLimits.sysctlComponents("net/ipv4/conf/eth0.100/rp_filter") == [
                "net", "ipv4", "conf", "eth0.100", "rp_filter",
            ])
        #expect(throws: SkiffError.self) { try ProcessLimits.sysctls(["kernel.shmmax"], privateNetwork: true) }
    }
}

/// The limits as the workload sees them, against the real kernel.
@Suite(.enabled(if: Harness.available, "needs root and a skiff binary (SKIFF_TEST_BIN)"))
struct ProcessLimitsTests {
    init() throws { try Harness.setUp() }

    @Test(arguments: UserNS.modes) func ulimitsReachTheWorkload(userns: String) async {
        let r = await skiff(
            ["run", "--rm", "--ulimit", "nofile=512:1024", "--ulimit", "core=0", "--ulimit", "nproc=300:400"]
                + UserNS.flags(userns) + [
                    "busybox", "sh", "-c", "ulimit -n; ulimit -Hn; ulimit -c; grep 'Max processes' /proc/self/limits",
                ])
        #expect(r.code == 0, "\(r)")
        #expect(Array(r.lines.prefix(3)) == ["512", "1024", "0"], "\(r)")
        #expect(
            r.lines.last?.split(separator: " ").filter { !$0.isEmpty }.suffix(3) == ["300", "400", "processes"], "\(r)")
        // --init's PID 1 passes them on to the workload.
        let i = await skiff(
            ["run", "--rm", "--init", "--ulimit", "nofile=256"] + UserNS.flags(userns) + [
                "busybox", "sh", "-c", "ulimit -n; ulimit -Hn",
            ])
        #expect(i.lines == ["256", "256"], "\(i)")
    }

    @Test func badUlimitIsRefused() async {
        let r = await skiff("run", "--rm", "--ulimit", "nofile=10:5", "busybox", "true")
        #expect(r.code == 125 && r.stderr.contains("soft limit"), "\(r)")
        let t = await skiff("run", "--rm", "--ulimit", "files=10", "busybox", "true")
        #expect(t.code == 125 && t.stderr.contains("invalid ulimit type"), "\(t)")
    }

    @Test(arguments: UserNS.modes) func oomScoreAdjForRunAndExec(userns: String) async {
        let name = uniqueName("oom")
        let r = await skiff(
            ["run", "-d", "--name", name, "--oom-score-adj", "700", "--ulimit", "nofile=333"] + UserNS.flags(userns) + [
                "busybox", "sleep", "60",
            ])
        #expect(r.code == 0, "\(r)")
        let pid1 = await skiff("exec", name, "cat", "/proc/1/oom_score_adj")
        let e = await skiff("exec", name, "sh", "-c", "cat /proc/self/oom_score_adj; ulimit -n")
        await cleanup(name)
        #expect(pid1.out == "700", "\(pid1)")
        #expect(e.lines == ["700", "333"], "exec gets the container's settings: \(e)")
        let bad = await skiff("run", "--rm", "--oom-score-adj", "1001", "busybox", "true")
        #expect(bad.code == 125 && bad.stderr.contains("[-1000, 1000]"), "\(bad)")
    }

    @Test(arguments: UserNS.modes) func namespacedSysctlsStayInTheContainer(userns: String) async throws {
        let hostForward = try String(contentsOfFile: "/proc/sys/net/ipv4/ip_forward", encoding: .utf8)
        let hostShm = try String(contentsOfFile: "/proc/sys/kernel/shmmni", encoding: .utf8)
        let want = hostForward.hasPrefix("1") ? "0" : "1"
        let r = await skiff(
            ["run", "--rm", "--sysctl", "net.ipv4.ip_forward=\(want)", "--sysctl", "kernel.shmmni=1234", "--sysctl"]
                + ["fs.mqueue.msg_max=20"] + UserNS.flags(userns) + [
                    "busybox", "cat", "/proc/sys/net/ipv4/ip_forward", "/proc/sys/kernel/shmmni",
                    "/proc/sys/fs/mqueue/msg_max",
                ])
        #expect(r.code == 0, "\(r)")
        #expect(r.lines == [want, "1234", "20"], "\(r)")
        #expect(try String(contentsOfFile: "/proc/sys/net/ipv4/ip_forward", encoding: .utf8) == hostForward)
        #expect(try String(contentsOfFile: "/proc/sys/kernel/shmmni", encoding: .utf8) == hostShm)
    }

    @Test func hostWideSysctlsAreRefused() async throws {
        let hostPidMax = try String(contentsOfFile: "/proc/sys/kernel/pid_max", encoding: .utf8)
        let r = await skiff("run", "--rm", "--sysctl", "kernel.pid_max=4000", "busybox", "true")
        #expect(r.code == 125 && r.stderr.contains("not namespaced"), "\(r)")
        let h = await skiff("run", "--rm", "--network", "host", "--sysctl", "net.ipv4.ip_forward=1", "busybox", "true")
        #expect(h.code == 125 && h.stderr.contains("--network host"), "\(h)")
        let p = await skiff("run", "--rm", "--sysctl", "net.ipv4/../../kernel/pid_max=4000", "busybox", "true")
        #expect(p.code == 125, "\(p)")
        #expect(try String(contentsOfFile: "/proc/sys/kernel/pid_max", encoding: .utf8) == hostPidMax)
    }
}
