import CSkiff
import Cgroups
import LinuxSys

#if canImport(Glibc)
    import Glibc
#endif

extension Engine {
    /// Sends `signal` to the container's PID 1 (through a pidfd, so a recycled PID is never hit).
    /// - Throws: `SkiffError` when the container is not running.
    public func kill(_ ref: String, signal: Int32) throws {
        let r = try find(ref)
        guard r.status == .running || r.status == .paused, let pid = r.pid,
            let pidfd = Processes.pidfd(pid, startTime: r.pidStartTime)
        else {
            throw SkiffError("cannot kill container \(r.name): it is not running (status \(r.status.rawValue))")
        }
        defer { close(pidfd) }
        try check(sk_pidfd_send_signal(pidfd, signal), "pidfd_send_signal", "container \(r.name) pid \(pid)")
        if r.status == .paused {
            // A frozen process only acts on a signal once thawed; docker kill does the same.
            if let cg = try? Cgroup(paths: r.cgroupPaths) { try? cg.thaw() }
            try store().modify(r.id) { if $0.status == .paused { $0.status = .running } }
        }
    }

    /// Stops a running container: its stop signal (SIGTERM unless the image says otherwise), then
    /// after `timeout` seconds (a negative one: never, as Docker's -1) SIGKILL to every process of
    /// its cgroup. Returns when its monitor has
    /// recorded the exit. Stopping a container that is not running does nothing.
    public func stop(_ ref: String, timeout: Int) throws {
        let r = try find(ref)
        guard r.status == .running || r.status == .paused, let pid = r.pid else { return }
        if r.kind == .vm { return try stopVM(r, pid: pid, timeout: timeout) }
        let sig = try r.settings.stopSignal.map { try Processes.signal(named: $0) } ?? SIGTERM
        if r.status == .paused, let cg = try? Cgroup(paths: r.cgroupPaths) { try? cg.thaw() }
        if let pidfd = Processes.pidfd(pid, startTime: r.pidStartTime) {
            defer { close(pidfd) }
            _ = sk_pidfd_send_signal(pidfd, sig)
            if !Processes.waitExit(pidfd: pidfd, timeout: Self.stopWait(timeout)) {
                if let cg = try? Cgroup(paths: r.cgroupPaths) { try? cg.kill(signal: SIGKILL) }
                _ = sk_pidfd_send_signal(pidfd, SIGKILL)
                _ = Processes.waitExit(pidfd: pidfd, timeout: 10)
            }
        }
        try waitForMonitor(r)
    }

    /// Stops a VM: SIGTERM to its VMM presses Ctrl+Alt+Del in the guest (`VMMachine.run`), which shuts
    /// down or resets (exit 0) if it listens; after `timeout` seconds a second SIGTERM makes the VMM stop
    /// the vCPUs and record exit 143. SIGKILL to its cgroup only if the VMM is still there 10 s later.
    /// A paused VM is thawed first, as a container is: its frozen VMM could not act on the signal.
    func stopVM(_ r: ContainerRecord, pid: Int32, timeout: Int) throws {
        if r.status == .paused, let cg = try? Cgroup(paths: r.cgroupPaths) { try? cg.thaw() }
        if let pidfd = Processes.pidfd(pid, startTime: r.pidStartTime) {
            defer { close(pidfd) }
            // The timeout goes with the signal: the VMM stops the vCPUs itself when it is over
            // (a plain SIGTERM gets SignalWaiter.defaultGrace).
            _ = sk_pidfd_send_signal_value(pidfd, SIGTERM, timeout < 0 ? Int32.max : Int32(clamping: timeout))
            if !Processes.waitExit(pidfd: pidfd, timeout: Self.stopWait(timeout)) {
                _ = sk_pidfd_send_signal(pidfd, SIGTERM)
                if !Processes.waitExit(pidfd: pidfd, timeout: 10) {
                    if let cg = try? Cgroup(paths: r.cgroupPaths) { try? cg.kill(signal: SIGKILL) }
                    _ = sk_pidfd_send_signal(pidfd, SIGKILL)
                    _ = Processes.waitExit(pidfd: pidfd, timeout: 10)
                }
            }
        }
        try waitForMonitor(r)
    }

    /// How long stop waits before it kills, in seconds: `timeout`, or without end when negative.
    static func stopWait(_ timeout: Int) -> Double { timeout < 0 ? .infinity : Double(timeout) }

    /// Removes a container: its state row, upperdir, log, runtime files and cgroup. A running one
    /// is refused unless `force`, which kills every process of it and waits until all are gone.
    public func remove(_ ref: String, force: Bool) throws {
        let r = try find(ref)
        if r.status == .running || r.status == .paused {
            guard force else {
                throw SkiffError(
                    "cannot remove container \(r.name): it is \(r.status.rawValue); stop it first (skiff stop \(r.name)) or use skiff rm -f")
            }
            if let cg = try? Cgroup(paths: r.cgroupPaths) {
                try? cg.thaw()
                try? cg.kill(signal: SIGKILL)
            }
            if let pid = r.pid, let pidfd = Processes.pidfd(pid, startTime: r.pidStartTime) {
                _ = sk_pidfd_send_signal(pidfd, SIGKILL)
                _ = Processes.waitExit(pidfd: pidfd, timeout: 10)
                close(pidfd)
            }
            try waitForMonitor(r)
        }
        let latest = try store().get(id: r.id) ?? r
        killAndRemoveCgroup(latest)
        if let cg = try? Cgroup(paths: latest.cgroupPaths), !((try? cg.pids()) ?? []).isEmpty {
            throw SkiffError("container \(r.name) still has processes in its cgroup; try skiff rm -f \(r.name) again")
        }
        removeFiles(latest)
        releaseReservation(r.id)
        try store().delete(r.id)
    }

    /// Waits (up to 15 s) until the monitor has exited and recorded the exit; reconciles if it died.
    func waitForMonitor(_ r: ContainerRecord) throws {
        if let m = r.monitorPID, m != getpid(), let fd = Processes.pidfd(m, startTime: r.monitorStartTime) {
            _ = Processes.waitExit(pidfd: fd, timeout: 15)
            close(fd)
        }
        if let latest = try store().get(id: r.id) { try reconcile(latest) }
    }
}
