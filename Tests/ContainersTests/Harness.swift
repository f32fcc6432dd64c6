import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// End-to-end harness: runs the `skiff` binary as a user would, against a dedicated state root.
///
/// The binary is `$SKIFF_TEST_BIN`, or `<package root>/.build/debug/skiff`. Tests that need it are
/// disabled (with the reason printed once) when it is missing or when not running as root, since
/// containers need real namespaces, overlay mounts and cgroups.
enum Harness {
    /// The package root, from this file's path (`Tests/ContainersTests/Harness.swift`).
    static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// The binary under test.
    static let binary: String = {
        if let v = ProcessInfo.processInfo.environment["SKIFF_TEST_BIN"], !v.isEmpty { return v }
        return packageRoot + "/.build/debug/skiff"
    }()

    /// Why the end-to-end tests cannot run here, or nil when they can.
    static let unavailableReason: String? = {
        let reason: String?
        if geteuid() != 0 {
            reason = "needs root (namespaces, overlay mounts, cgroups)"
        } else if access(binary, X_OK) != 0 {
            reason = "no skiff binary at \(binary): build it and set SKIFF_TEST_BIN"
        } else if access(busyboxLayout + "/index.json", R_OK) != 0 {
            reason = "no busybox test image at \(busyboxLayout): run images/busybox/build"
        } else {
            reason = nil
        }
        if let reason { print("skipping ContainersTests end-to-end tests: \(reason)") }
        return reason
    }()

    /// Condition for `.enabled(if:)`: binary present and running as root.
    static var available: Bool { unavailableReason == nil }

    static let busyboxLayout = packageRoot + "/images/busybox/out/busybox"
    static let modelServerLayout = packageRoot + "/images/model-server/out/model-server"

    /// The model-server image is large and built separately; its test is skipped without it.
    static var modelServerAvailable: Bool {
        guard available else { return false }
        if access(modelServerLayout + "/index.json", R_OK) != 0 {
            print("skipping model-server test: no image at \(modelServerLayout); run images/model-server/build")
            return false
        }
        return true
    }

    /// The state root every test shares (tests use unique container names).
    /// The shared state root of the end-to-end tests (`SKIFF_TEST_ROOT` overrides it, so that two test
    /// runs on one host do not remove each other's containers at set-up).
    static let stateRoot = ProcessInfo.processInfo.environment["SKIFF_TEST_ROOT"] ?? "/tmp/skiff-tests-root"

    /// Loads busybox into the shared root once per test process (Swift's lazy statics are
    /// initialised exactly once, thread-safely).
    private static let busyboxLoad: Result<Void, TestFailure> = {
        mkdir(stateRoot, 0o700)
        // Containers an earlier, interrupted run left behind would compete for the CPUs and
        // skew the tests that measure CPU shares: remove them first.
        let leftovers = runSync([binary, "ps", "-aq"], env: ["SKIFF_ROOT": stateRoot], stdin: nil, timeout: 30)
        let ids = leftovers.lines.filter { !$0.isEmpty }
        if !ids.isEmpty {
            _ = runSync([binary, "rm", "-f"] + ids, env: ["SKIFF_ROOT": stateRoot], stdin: nil, timeout: 120)
        }
        let r = runSync([binary, "load", busyboxLayout], env: ["SKIFF_ROOT": stateRoot], stdin: nil, timeout: 120)
        guard r.code == 0 else { return .failure(TestFailure("skiff load busybox failed: \(r)")) }
        return .success(())
    }()

    private static let modelServerLoad: Result<Void, TestFailure> = {
        mkdir(stateRoot, 0o700)
        let r = runSync([binary, "load", modelServerLayout], env: ["SKIFF_ROOT": stateRoot], stdin: nil, timeout: 300)
        guard r.code == 0 else { return .failure(TestFailure("skiff load model-server failed: \(r)")) }
        return .success(())
    }()

    /// Makes sure busybox is loaded into the shared state root.
    static func setUp() throws { try busyboxLoad.get() }
    /// Makes sure model-server (and busybox) are loaded.
    static func setUpModelServer() throws {
        try busyboxLoad.get()
        try modelServerLoad.get()
    }
}

/// What one command did.
struct Output: CustomStringConvertible {
    var stdout: String
    var stderr: String
    /// Exit status, or 128+N when killed by signal N; -1 when it timed out.
    var code: Int32
    var timedOut: Bool
    var argv: [String]

    var description: String {
        "`\(argv.joined(separator: " "))` → code \(code)\(timedOut ? " (TIMED OUT)" : "")\nstdout: \(stdout)\nstderr: \(stderr)"
    }
    /// stdout without the trailing newline(s).
    var out: String { stdout.trimmingCharacters(in: .whitespacesAndNewlines) }
    var lines: [String] { stdout.split(separator: "\n").map(String.init) }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

private let outputDir: String = {
    let d = "/tmp/skiff-tests-out"
    mkdir(d, 0o700)
    return d
}()

/// Ignore SIGPIPE once: a workload that does not read its stdin must not kill the test process.
private let ignoreSIGPIPE: Void = { signal(SIGPIPE, SIG_IGN) }()

/// Runs `argv` with stdout/stderr captured in files (so a background process that keeps them
/// open cannot hang the test), waiting at most `timeout` seconds; then SIGKILL.
///
/// Uses `posix_spawn` and `waitpid` on the child's own PID rather than Foundation's `Process`,
/// whose shared SIGCHLD reaping left children unreaped under many parallel launches.
func runSync(_ argv: [String], env: [String: String] = [:], stdin: String?, timeout: Double) -> Output {
    _ = ignoreSIGPIPE
    var environment = ProcessInfo.processInfo.environment
    for (k, v) in env { environment[k] = v }
    let tag = UUID().uuidString
    let outPath = outputDir + "/\(tag).out"
    let errPath = outputDir + "/\(tag).err"
    defer {
        unlink(outPath)
        unlink(errPath)
    }
    func failed(_ why: String) -> Output {
        Output(stdout: "", stderr: why, code: -1, timedOut: false, argv: argv)
    }
    var inPipe: [Int32] = [-1, -1]
    if stdin != nil {
        guard pipe(&inPipe) == 0 else { return failed("pipe: \(errno)") }
        for fd in inPipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
    }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    if stdin != nil {
        posix_spawn_file_actions_adddup2(&actions, inPipe[0], 0)
    } else {
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    }
    posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    var attr = posix_spawnattr_t()
    posix_spawnattr_init(&attr)
    defer { posix_spawnattr_destroy(&attr) }
    var none = sigset_t()
    sigemptyset(&none)
    var all = sigset_t()
    sigfillset(&all)
    posix_spawnattr_setsigmask(&attr, &none)
    posix_spawnattr_setsigdefault(&attr, &all)
    posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    var pid: pid_t = 0
    let cArgs = argv.map { strdup($0) } + [nil]
    let cEnv = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
        for p in cArgs { free(p) }
        for p in cEnv { free(p) }
    }
    let rc = posix_spawn(&pid, argv[0], &actions, &attr, cArgs, cEnv)
    if stdin != nil { close(inPipe[0]) }
    guard rc == 0 else {
        if stdin != nil { close(inPipe[1]) }
        return failed("posix_spawn \(argv[0]): \(String(cString: strerror(rc)))")
    }
    if let stdin {
        let bytes = Array(stdin.utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { write(inPipe[1], $0.baseAddress, $0.count) }
            if n <= 0 { break }
            off += n
        }
        close(inPipe[1])
    }
    let deadline = Date().addingTimeInterval(timeout)
    var status: Int32 = 0
    var timedOut = false
    while true {
        let r = waitpid(pid, &status, WNOHANG)
        if r == pid { break }
        if r < 0 && errno != EINTR { return failed("waitpid: \(errno)") }
        if !timedOut && Date() > deadline {
            timedOut = true
            kill(pid, SIGKILL)
        }
        usleep(10_000)
    }
    let o = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
    let e = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
    // WIFEXITED / WTERMSIG by hand (the macros are not imported).
    let sig = status & 0x7f
    let code: Int32 = sig == 0 ? (status >> 8) & 0xff : 128 + sig
    return Output(stdout: o, stderr: e, code: timedOut ? -1 : code, timedOut: timedOut, argv: argv)
}

/// Runs `argv` off the cooperative thread pool (the tests run many commands in parallel).
func runAsync(_ argv: [String], env: [String: String] = [:], stdin: String? = nil, timeout: Double = 60) async -> Output
{
    await withCheckedContinuation { cont in
        Thread.detachNewThread {
            cont.resume(returning: runSync(argv, env: env, stdin: stdin, timeout: timeout))
        }
    }
}

/// `skiff ARGS...` against the shared test state root.
func skiff(_ args: String..., stdin: String? = nil, timeout: Double = 60) async -> Output {
    await skiff(args, stdin: stdin, timeout: timeout)
}

func skiff(_ args: [String], root: String = Harness.stateRoot, stdin: String? = nil, timeout: Double = 60) async
    -> Output
{
    await runAsync([Harness.binary] + args, env: ["SKIFF_ROOT": root], stdin: stdin, timeout: timeout)
}

/// `/bin/sh -c SCRIPT` on the host.
func sh(_ script: String, timeout: Double = 60) async -> Output {
    await runAsync(["/bin/sh", "-c", script], timeout: timeout)
}

/// A container name unique to this test run: `t-<what>-<random hex>`.
func uniqueName(_ what: String) -> String {
    "t-\(what)-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
}

/// `skiff inspect NAME` parsed: the first element of its JSON array.
func inspect(_ name: String, root: String = Harness.stateRoot) async throws -> [String: Any] {
    let r = await skiff(["inspect", name], root: root)
    guard r.code == 0 else { throw TestFailure("inspect failed: \(r)") }
    guard let arr = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]],
        let first = arr.first
    else { throw TestFailure("inspect output is not a JSON array of objects: \(r.stdout)") }
    return first
}

/// `State.Pid`, `Id` and the cgroup paths from inspect.
struct ContainerFacts {
    var id: String
    var pid: Int32
    var status: String
    var cgroupPaths: [String]
}

func facts(_ name: String, root: String = Harness.stateRoot) async throws -> ContainerFacts {
    let doc = try await inspect(name, root: root)
    let state = doc["State"] as? [String: Any] ?? [:]
    return ContainerFacts(
        id: doc["Id"] as? String ?? "", pid: Int32((state["Pid"] as? NSNumber)?.intValue ?? 0),
        status: state["Status"] as? String ?? "", cgroupPaths: doc["CgroupPaths"] as? [String] ?? [])
}

/// True while `pid` exists and is not a zombie.
func processAlive(_ pid: Int32) -> Bool {
    guard pid > 0, let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return false }
    // Field 3, after the ")" that ends the comm.
    guard let close = stat.lastIndex(of: ")") else { return false }
    let rest = stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces)
    return !(rest.hasPrefix("Z") || rest.hasPrefix("X"))
}

/// Polls `cond` every 100 ms for up to `seconds`.
func eventually(_ seconds: Double, _ cond: () async -> Bool) async -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if await cond() { return true }
        try? await Task.sleep(for: .milliseconds(100))
    }
    return await cond()
}

/// Lines of this process's mountinfo mentioning `id` (the rootfs overlay lives only in the
/// container's mount namespace, so there must never be any).
func mountsMentioning(_ id: String) -> [String] {
    let text = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
    return text.split(separator: "\n").map(String.init).filter { $0.contains(id) }
}

/// Cgroup directories named `skiff-<id>` anywhere under /sys/fs/cgroup.
func cgroupDirs(_ id: String) async -> [String] {
    let r = await sh("find /sys/fs/cgroup -name 'skiff-\(id)' 2>/dev/null")
    return r.lines
}

/// Asserts that nothing of container `id` (name `name`, PID 1 `pid`) is left on the host.
func expectNoTrace(name: String, id: String, pid: Int32, sourceLocation: SourceLocation = #_sourceLocation) async {
    #expect(id.count == 64, "no full ID to check", sourceLocation: sourceLocation)
    let gone = await eventually(5) { !processAlive(pid) }
    #expect(gone, "container process \(pid) still alive", sourceLocation: sourceLocation)
    #expect(mountsMentioning(id).isEmpty, "mounts left: \(mountsMentioning(id))", sourceLocation: sourceLocation)
    let cgs = await cgroupDirs(id)
    #expect(cgs.isEmpty, "cgroup directories left: \(cgs)", sourceLocation: sourceLocation)
    let ps = await skiff("ps", "-a", "--format", "json")
    #expect(ps.code == 0, "\(ps)", sourceLocation: sourceLocation)
    #expect(
        !ps.stdout.contains(id.prefix(12)), "ps -a still lists \(name): \(ps.stdout)", sourceLocation: sourceLocation)
    let ins = await skiff("inspect", name)
    #expect(ins.code != 0, "inspect still finds \(name): \(ins)", sourceLocation: sourceLocation)
    let dir = Harness.stateRoot + "/containers/" + id
    #expect(access(dir, F_OK) != 0, "container directory \(dir) left behind", sourceLocation: sourceLocation)
}

/// Removes a container at the end of a test, whatever happened.
func cleanup(_ names: String...) async {
    for n in names { _ = await skiff("rm", "-f", n, timeout: 30) }
}

/// A unique host directory under /tmp, removed by the caller.
func tempDir(_ what: String) -> String {
    var template = Array("/tmp/skiff-test-\(what)-XXXXXX".utf8CString)
    let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    return String(cString: p!)
}
