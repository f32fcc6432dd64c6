import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `skiff images` and `skiff rmi`, in a state root of their own (removing busybox from the
/// shared root would break the other tests running in parallel).
@Suite(.enabled(if: Harness.available, "needs root and a skiff binary (SKIFF_TEST_BIN)"))
struct ImageCommandTests {
    @Test func imagesListsAndRmiIsRefusedWhileUsed() async throws {
        let root = tempDir("images-root")
        defer { _ = try? FileManager.default.removeItem(atPath: root) }
        let load = await skiff(["load", Harness.busyboxLayout], root: root, timeout: 120)
        try #require(load.code == 0, "\(load)")
        #expect(load.stdout.contains("busybox:latest"), "\(load)")

        // images: the busybox row carries the image ID (the config digest, 12 hex).
        let images = await skiff(["images"], root: root)
        #expect(images.code == 0, "\(images)")
        let row = images.lines.first { $0.hasPrefix("busybox") }?.split(separator: " ", omittingEmptySubsequences: true)
            .map(String.init)
        #expect(row?.count ?? 0 >= 3, "\(images)")
        let shortID = row?[2] ?? ""
        #expect(row?[1] == "latest", "\(images)")
        #expect(shortID.count == 12 && shortID.allSatisfy(\.isHexDigit), "\(images)")

        // An exited container uses it.
        let name = uniqueName("uses")
        let run = await skiff(["run", "--name", name, "busybox", "true"], root: root)
        #expect(run.code == 0, "\(run)")
        let ins = await skiff(["inspect", name], root: root)
        #expect(
            ins.stdout.contains("\"sha256:\(shortID)"),
            "inspect's ImageID matches images' ID: \(ins.stdout.prefix(2000))")

        let refused = await skiff(["rmi", "busybox"], root: root)
        #expect(refused.code != 0, "\(refused)")
        #expect(refused.stderr.contains(name), "the refusal names the container: \(refused)")
        let still = await skiff(["images"], root: root)
        #expect(still.stdout.contains("busybox"), "\(still)")
        let runs = await skiff(["run", "--rm", "busybox", "true"], root: root)
        #expect(runs.code == 0, "image unusable after a refused rmi: \(runs)")

        // Once the container is gone, rmi works and the image is no longer listed or runnable.
        let rm = await skiff(["rm", name], root: root)
        #expect(rm.code == 0, "\(rm)")
        let rmi = await skiff(["rmi", "busybox"], root: root)
        #expect(rmi.code == 0, "\(rmi)")
        let after = await skiff(["images"], root: root)
        #expect(!after.stdout.contains("busybox"), "\(after)")
        let gone = await skiff(["run", "--rm", "busybox", "true"], root: root)
        #expect(gone.code == 125, "\(gone)")
        #expect(gone.stderr.contains("busybox"), "\(gone)")
    }

    /// runc, crun and docker take the state root before the subcommand; skiff documents
    /// `--root DIR` as a global option.
    @Test func rootOptionBeforeTheSubcommand() async throws {
        let root = tempDir("root-opt")
        defer { _ = try? FileManager.default.removeItem(atPath: root) }
        let r = await runAsync([Harness.binary, "--root", root, "ps", "-a"])
        #expect(r.code == 0, "\(r)")
        let after = await runAsync([Harness.binary, "ps", "-a", "--root", root])
        #expect(after.code == 0, "\(after)")
    }
}
