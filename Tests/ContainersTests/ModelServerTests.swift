import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Acceptance: the model-server image serves predictions from a detached container, exec works
/// inside it, its request log is kept, and `rm -f` leaves nothing behind. Skipped (with the reason
/// printed) when images/model-server/out/model-server has not been built.
@Suite(.enabled(if: Harness.modelServerAvailable, "needs root, a skiff binary and the model-server image"))
struct ModelServerTests {
    init() throws { try Harness.setUpModelServer() }

    /// A TCP port nobody listens on right now.
    static func freePort() async throws -> Int {
        let r = await runAsync([
            "/usr/bin/env", "python3", "-c",
            "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])",
        ])
        guard r.code == 0, let p = Int(r.out) else { throw TestFailure("no free port: \(r)") }
        return p
    }

    static func curl(_ args: String...) async -> Output {
        await runAsync(["/usr/bin/env", "curl", "-sS", "--max-time", "5"] + args, timeout: 10)
    }

    @Test func servesPredictions() async throws {
        let name = uniqueName("ms")
        let port = try await Self.freePort()
        let run = await skiff(
            "run", "-d", "--name", name, "--network", "host", "-e", "PORT=\(port)", "model-server", timeout: 120)
        try #require(run.code == 0, "\(run)")
        let id = run.out
        let f = try await facts(name)

        let base = "http://127.0.0.1:\(port)"
        let healthy = await eventually(60) { await Self.curl("-f", base + "/healthz").code == 0 }
        let logsSoFar = await skiff("logs", name)
        #expect(healthy, "no /healthz within 60 s; logs: \(logsSoFar)")
        if healthy {
            let pred = await Self.curl(
                "-f", "-X", "POST", "-H", "Content-Type: application/json",
                "-d", #"{"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}"#, base + "/v1/predict")
            #expect(pred.code == 0, "\(pred)")
            let doc = try? JSONSerialization.jsonObject(with: Data(pred.stdout.utf8)) as? [String: Any]
            let preds = doc?["predictions"] as? [[String: Any]] ?? []
            #expect(preds.count == 2, "\(pred)")
            #expect(preds.first?["class"] as? String == "setosa", "\(pred)")
            #expect(preds.last?["class"] as? String == "virginica", "\(pred)")
            let bad = await Self.curl(
                "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "-d", "{}", base + "/v1/predict")
            #expect(bad.out == "400", "\(bad)")
        }

        // exec: a process inside the container's PID namespace, as the image's user.
        let ex = await skiff("exec", name, "python3", "-c", "import os; print(os.getpid(), os.getuid())")
        #expect(ex.code == 0, "\(ex)")
        let fields = ex.out.split(separator: " ").compactMap { Int($0) }
        #expect(fields.count == 2 && fields[0] < 100, "exec'd python's pid is not a container pid: \(ex)")
        #expect(fields.count == 2 && fields[1] != 0, "exec runs as the image's User (model), not root: \(ex)")
        let top = await skiff(
            "exec", name, "python3", "-c", "print(open('/proc/1/cmdline').read().replace('\\0', ' '))")
        #expect(top.out.contains("/app/server.py"), "PID 1 is the server: \(top)")

        // The request log reaches `skiff logs`.
        if healthy {
            let logged = await eventually(5) { await skiff("logs", name).stdout.contains("/v1/predict") }
            let logs = await skiff("logs", name)
            #expect(logged, "no request log line: \(logs)")
            #expect(logs.stdout.contains("/healthz"), "\(logs)")
        }

        let rm = await skiff("rm", "-f", name, timeout: 60)
        #expect(rm.code == 0, "\(rm)")
        await expectNoTrace(name: name, id: id, pid: f.pid)
        let down = await Self.curl(base + "/healthz")
        #expect(down.code != 0, "server still answers after rm -f: \(down)")
    }
}
