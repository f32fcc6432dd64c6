import CSkiff
import Glibc

extension Cgroup {
    /// Sends `signal` to every process in the cgroup and its descendants.
    ///
    /// - SIGKILL with a v2 directory that has `cgroup.kill` (Linux 5.14+, cgroup-v2.rst "Core
    ///   Interface Files"): writes `1`, which the kernel applies atomically to the subtree, even to
    ///   processes forked meanwhile. On hybrid hosts this works too, because every process is in
    ///   the v2 hierarchy as well; the v1 directories are then checked and any survivor (moved out
    ///   of the v2 cgroup only) is killed by the loop below.
    /// - Otherwise: freeze (so nothing forks between listing and signalling), send `signal` to
    ///   every pid from `pids()`, thaw. For SIGKILL this repeats until no process remains or
    ///   `timeout` passes. Without any freezer the pids are signalled unfrozen, repeatedly.
    ///
    /// For SIGKILL, returns once the cgroup is empty (processes have exited; they may still be
    /// zombies waiting for their parent to reap them). For other signals, returns after one
    /// delivery. Throws `CgroupError.timeout` naming what is left, or I/O errors.
    public func kill(signal: Int32 = SIGKILL, timeout: Duration = .seconds(10)) throws(CgroupError) {
        let deadline = Deadline(timeout: timeout)
        // Nothing inside (or the cgroup is gone already): nothing can fork either.
        if try pids().isEmpty { return }
        if signal == SIGKILL, let unified, CgroupFiles.exists(unified.file("cgroup.kill")) {
            try CgroupFiles.write(unified.file("cgroup.kill"), "1")
            _ = try Self.waitForEvent(unified, key: "populated", value: 0, deadline: deadline)
            if try pids().isEmpty { return }
        }
        let canFreeze = freezerBackend != nil
        var round = 0
        while true {
            if canFreeze {
                // A cgroup that does not freeze in time is signalled anyway: SIGKILL must not
                // depend on the freezer.
                do {
                    try freeze(timeout: .milliseconds(max(1, min(deadline.remainingMilliseconds, 1000))))
                } catch {
                    if case .timeout = error {} else { throw error }
                }
            }
            let firstError = try signalMembers(signal)
            if canFreeze { try thaw() }
            if let firstError { throw firstError }
            if signal != SIGKILL { return }
            round += 1
            let wait = min(deadline.remainingMilliseconds, 50 * round)
            if try waitEmpty(timeout: .milliseconds(wait)) { return }
            if deadline.expired {
                throw .timeout(
                    operation: "killing the processes", path: directories.first?.path ?? "",
                    milliseconds: deadline.timeoutMilliseconds, remaining: describeProcesses())
            }
        }
    }

    /// Signals every listed member through a pidfd (`pidfd_open(2)`, `pidfd_send_signal(2)`),
    /// keeping only pidfds whose pid is still listed after opening them: a pid that was recycled
    /// for an unrelated process after the first listing is then never signalled. Falls back to
    /// `kill(2)` on kernels without pidfds (before 5.3). Returns the first failure, if any.
    func signalMembers(_ signal: Int32) throws(CgroupError) -> CgroupError? {
        var pidfds: [(pid: pid_t, fd: Int32)] = []
        defer { for entry in pidfds where entry.fd >= 0 { close(entry.fd) } }
        for pid in try pids() {
            let fd = sk_pidfd_open(pid, 0)
            if fd < 0 && errno == ESRCH { continue }  // exited meanwhile
            pidfds.append((pid, fd))  // fd -1: no pidfd support, use kill(2)
        }
        let stillListed = Set(try pids())
        var firstError: CgroupError?
        for (pid, fd) in pidfds where stillListed.contains(pid) {
            let rc = fd >= 0 ? sk_pidfd_send_signal(fd, signal) : Glibc.kill(pid, signal)
            guard rc != 0 else { continue }
            let e = errno
            if e == ESRCH { continue }
            firstError =
                firstError
                ?? .unsupported(operation: "send signal \(signal) to pid \(pid)", reason: CgroupError.text(e))
        }
        return firstError
    }

    /// Waits until no process is left in the cgroup or below, in any hierarchy. Sleeps in
    /// `poll(2)` on the v2 `cgroup.events` when there is a v2 directory (woken when `populated`
    /// changes), otherwise polls `cgroup.procs` with growing sleeps (1…20 ms).
    /// Returns true when empty, false when `timeout` passed first; throws on I/O errors.
    @discardableResult
    public func waitEmpty(timeout: Duration) throws(CgroupError) -> Bool {
        let deadline = Deadline(timeout: timeout)
        var sleep = 1
        while true {
            if try pids().isEmpty { return true }
            if deadline.expired { return false }
            // Sleep in poll(2) only while the v2 directory is populated: a process that left the
            // v2 cgroup but not a v1 one would otherwise make this spin.
            if let unified, (try? Self.events(unified)["populated"]) == 1 {
                let slice = Deadline(timeout: .milliseconds(min(deadline.remainingMilliseconds, 100)))
                _ = try Self.waitForEvent(unified, key: "populated", value: 0, deadline: slice)
            } else {
                CgroupFiles.sleep(milliseconds: min(sleep, max(deadline.remainingMilliseconds, 1)))
                sleep = min(sleep * 2, 20)
            }
        }
    }
}
