import Glibc

/// What the cgroup's freezer reports.
/// v1 `freezer.state`: `THAWED`, `FREEZING`, `FROZEN` (cgroup-v1/freezer-subsystem.rst);
/// v2 `cgroup.events` `frozen 0|1` (cgroup-v2.rst "Core Interface Files", `cgroup.freeze`).
public enum FreezerState: String, Sendable {
    /// Processes run normally (v1 `THAWED`, v2 `cgroup.freeze` 0).
    case thawed
    /// Freezing was requested and not every task has stopped yet (v1 `FREEZING`; v2
    /// `cgroup.freeze` 1 while `cgroup.events` still says `frozen 0`).
    case freezing
    /// Every task of the subtree is frozen (v1 `FROZEN`, v2 `frozen 1`).
    case frozen
}

/// Which freezer a cgroup uses.
enum FreezerBackend {
    /// v1 `freezer` controller: write `freezer.state`.
    case v1(Cgroup.Directory)
    /// v2 core `cgroup.freeze` (Linux 5.2+).
    case v2(Cgroup.Directory)
}

extension Cgroup {
    /// The v1 freezer controller where a v1 hierarchy carries it (legacy and hybrid hosts: it
    /// is the one other tools read), else the v2 `cgroup.freeze` when the file exists.
    var freezerBackend: FreezerBackend? {
        if let v1 = v1("freezer") { return .v1(v1) }
        if let unified, CgroupFiles.exists(unified.file("cgroup.freeze")) { return .v2(unified) }
        return nil
    }

    /// Freezes every process in the cgroup and its descendants and waits until the kernel
    /// reports the whole subtree frozen (v1 `freezer.state` = `FROZEN`, v2 `cgroup.events`
    /// `frozen 1`). A frozen process stops running but keeps its state; SIGKILL still kills a
    /// v2-frozen process, a v1-frozen one dies when thawed. On timeout the cgroup is thawed again
    /// and `CgroupError.timeout` lists the processes that did not freeze (often in state D).
    /// Throws `.unsupported` when there is neither a v1 freezer nor v2 `cgroup.freeze`.
    public func freeze(timeout: Duration = .seconds(5)) throws(CgroupError) {
        let deadline = Deadline(timeout: timeout)
        switch freezerBackend {
        case .v1(let dir):
            let state = dir.file("freezer.state")
            var attempt = 0
            while true {
                // Writing FROZEN again pushes tasks that were forking or exiting during the
                // previous attempt (runc does the same).
                if attempt % 10 == 0 { try CgroupFiles.write(state, "FROZEN") }
                if try CgroupFiles.readLine(state) == "FROZEN" { return }
                if deadline.expired {
                    try? CgroupFiles.write(state, "THAWED")
                    throw .timeout(
                        operation: "freezing", path: dir.path, milliseconds: deadline.timeoutMilliseconds,
                        remaining: describeProcesses())
                }
                attempt += 1
                CgroupFiles.sleep(milliseconds: min(10, 1 + attempt))
            }
        case .v2(let dir):
            try CgroupFiles.write(dir.file("cgroup.freeze"), "1")
            let done = try Self.waitForEvent(dir, key: "frozen", value: 1, deadline: deadline)
            if !done {
                try? CgroupFiles.write(dir.file("cgroup.freeze"), "0")
                throw .timeout(
                    operation: "freezing", path: dir.path, milliseconds: deadline.timeoutMilliseconds,
                    remaining: describeProcesses())
            }
        case nil:
            throw .unsupported(operation: "freeze", reason: noFreezerReason)
        }
    }

    /// Lets the processes run again (v1 `freezer.state` = `THAWED`, v2 `cgroup.freeze` = 0).
    /// Throws `CgroupError.write` or `.unsupported` when there is no freezer.
    public func thaw() throws(CgroupError) {
        switch freezerBackend {
        case .v1(let dir): try CgroupFiles.write(dir.file("freezer.state"), "THAWED")
        case .v2(let dir): try CgroupFiles.write(dir.file("cgroup.freeze"), "0")
        case nil: throw .unsupported(operation: "thaw", reason: noFreezerReason)
        }
    }

    /// The freezer's current state. v2 reports `freezing` while `cgroup.freeze` is 1 but the
    /// subtree is not yet frozen. Throws `.unsupported` when there is no freezer.
    public func freezerState() throws(CgroupError) -> FreezerState {
        switch freezerBackend {
        case .v1(let dir):
            let path = dir.file("freezer.state")
            let text = try CgroupFiles.readLine(path)
            guard let state = FreezerState(rawValue: text.lowercased()) else {
                throw .unexpectedValue(path: path, value: text)
            }
            return state
        case .v2(let dir):
            if try Self.events(dir)["frozen"] == 1 { return .frozen }
            return try CgroupFiles.readLine(dir.file("cgroup.freeze")) == "1" ? .freezing : .thawed
        case nil:
            throw .unsupported(operation: "read the freezer state", reason: noFreezerReason)
        }
    }

    var noFreezerReason: String {
        "no v1 freezer hierarchy is mounted and the v2 hierarchy has no cgroup.freeze (Linux 5.2+); "
            + "mount the freezer controller or upgrade the kernel"
    }

    /// Waits until `key` in the v2 `cgroup.events` has `value`. Sleeps in `poll(2)` on the open
    /// file: kernfs wakes pollers with POLLPRI when the file changes (cgroup-v2.rst: "a value
    /// change in this interface file generates a file modified event"). Returns false on timeout.
    static func waitForEvent(_ dir: Directory, key: String, value: Int, deadline: Deadline)
        throws(CgroupError) -> Bool
    {
        let path = dir.file("cgroup.events")
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .read(path: path, errno: errno) }
        defer { close(fd) }
        while true {
            let events = try parseKeyedValues(CgroupFiles.readAll(fd: fd, path: path), path: path)
            if events[key] == value { return true }
            if deadline.expired { return false }
            var pfd = pollfd(fd: fd, events: Int16(POLLPRI), revents: 0)
            // Bounded waits guard against a missed notification between read and poll.
            _ = poll(&pfd, 1, Int32(min(deadline.remainingMilliseconds, 100)))
        }
    }

    /// A short human-readable list of what is inside (pids and their commands), for errors.
    func describeProcesses() -> String {
        guard let pids = try? pids(), !pids.isEmpty else { return "" }
        let shown = pids.prefix(8).map { pid -> String in
            let comm = (try? CgroupFiles.readLine("/proc/\(pid)/comm")) ?? "?"
            return "pid \(pid) (\(comm))"
        }
        return shown.joined(separator: ", ") + (pids.count > 8 ? " and \(pids.count - 8) more" : "")
    }
}
