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
        if signal == SIGKILL, let unified, CgroupFiles.exists(unified.file("cgroup.kill")) {
            try CgroupFiles.write(unified.file("cgroup.kill"), "1")
            if try waitEmpty(timeout: .milliseconds(max(1, deadline.remainingMilliseconds))) { return }
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
            var firstError: CgroupError?
            for pid in try pids() {
                guard Glibc.kill(pid, signal) != 0 else { continue }
                let e = errno
                if e == ESRCH { continue }  // exited meanwhile
                firstError =
                    firstError
                    ?? .unsupported(
                        operation: "send signal \(signal) to pid \(pid)", reason: CgroupError.text(e))
            }
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
            if let unified, CgroupFiles.exists(unified.file("cgroup.events")) {
                let slice = Deadline(timeout: .milliseconds(min(deadline.remainingMilliseconds, 100)))
                _ = try Self.waitForEvent(unified, key: "populated", value: 0, deadline: slice)
            } else {
                CgroupFiles.sleep(milliseconds: min(sleep, max(deadline.remainingMilliseconds, 1)))
                sleep = min(sleep * 2, 20)
            }
        }
    }
}
