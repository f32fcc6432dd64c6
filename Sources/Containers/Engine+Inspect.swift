import LinuxSys
import OCI

#if canImport(Glibc)
    import Glibc
#endif

/// `skiff inspect` output: Docker's top-level shape, with the OCI spec under `Spec`.
public struct InspectDocument: Codable, Sendable {
    public struct StateInfo: Codable, Sendable {
        public var Status: String
        public var Running: Bool
        public var Paused: Bool
        public var Pid: Int32
        public var ExitCode: Int32
        public var OOMKilled: Bool
        public var Error: String
        public var StartedAt: String
        public var FinishedAt: String
    }
    public struct MountInfo: Codable, Sendable {
        public var MountType: String
        public var Source: String
        public var Destination: String
        public var RW: Bool
        enum CodingKeys: String, CodingKey {
            case MountType = "Type"
            case Source, Destination, RW
        }
    }
    public var Id: String
    public var Name: String
    public var Created: String
    public var Image: String
    public var ImageID: String
    public var Path: String
    public var Args: [String]
    public var State: StateInfo
    public var Mounts: [MountInfo]
    public var ExposedPorts: [String]
    public var Network: String
    /// `container` or `vm`.
    public var Kind: String
    public var LogPath: String
    public var Bundle: String
    public var CgroupPaths: [String]
    /// The share of the host the workload asked for (ratios of the allocatable total; absent:
    /// best-effort), as `--cpu-ratio`/`--memory-ratio` or a VM's explicit size gave it.
    public struct AllocationInfo: Codable, Sendable {
        public var CPURatio: Double?
        public var MemoryRatio: Double?
    }
    public var Allocation: AllocationInfo
    /// A VM's boot settings: vCPUs, guest RAM (bytes), kernel, initrd, command line, disks; nil for a container.
    public var VM: VMSettings?
    /// The OCI runtime spec (`config.json`).
    public var Spec: OCI.Spec
    /// The runtime-spec state (`runtime.md#state`).
    public var OCIState: OCI.State
}

extension Engine {
    /// The inspect document of a container.
    public func inspect(_ ref: String) throws -> InspectDocument {
        let r = try find(ref)
        let args = r.spec.process?.args ?? []
        let zeroTime = "0001-01-01T00:00:00Z"
        let state = InspectDocument.StateInfo(
            Status: r.status.rawValue, Running: r.status == .running || r.status == .paused, Paused: r.status == .paused,
            Pid: r.pid ?? 0, ExitCode: r.exitCode ?? 0, OOMKilled: r.oomKilled, Error: r.error ?? "",
            StartedAt: r.startedAt.map(Clock.rfc3339) ?? zeroTime, FinishedAt: r.finishedAt.map(Clock.rfc3339) ?? zeroTime)
        let mounts = (r.spec.mounts ?? []).filter { m in
            m.type == "bind" && !(m.source ?? "").hasPrefix(runDir(r.id)) || m.type == "tmpfs" && !m.destination.hasPrefix("/dev")
        }.map { m in
            InspectDocument.MountInfo(
                MountType: m.type ?? "bind", Source: m.source ?? "", Destination: m.destination,
                RW: !(m.options ?? []).contains("ro"))
        }
        let ociStatus: String
        switch r.status {
        case .created: ociStatus = "created"
        case .running, .paused: ociStatus = "running"
        case .exited: ociStatus = "stopped"
        }
        return InspectDocument(
            Id: r.id, Name: r.name, Created: Clock.rfc3339(r.created), Image: r.image, ImageID: r.imageID,
            Path: args.first ?? "", Args: Array(args.dropFirst()), State: state, Mounts: mounts,
            ExposedPorts: r.settings.exposedPorts, Network: r.settings.network, Kind: r.kind.rawValue, LogPath: logPath(r.id),
            Bundle: containerDir(r.id), CgroupPaths: r.cgroupPaths,
            Allocation: .init(CPURatio: r.settings.cpuRatio, MemoryRatio: r.settings.memoryRatio), VM: r.settings.vm,
            Spec: r.spec,
            OCIState: OCI.State(id: r.id, status: ociStatus, pid: r.pid, bundle: containerDir(r.id)))
    }
}

/// One line of `container.log`.
public struct LogEntry: Codable, Sendable {
    public var log: String
    /// `stdout` or `stderr`.
    public var stream: String
    public var time: String
}

/// The reader of stdout or stderr went away (EPIPE: `skiff logs -f NAME | head`). The command
/// ends as a process killed by SIGPIPE would, with status 141 and no message.
public struct OutputClosed: Error {
    public init() {}
}

extension Engine {
    /// Writes a container's log to stdout/stderr (each line to the stream it came from).
    /// - Parameters:
    ///   - tail: only the last N lines; nil for all.
    ///   - follow: keep printing new lines until the container stops.
    ///   - timestamps: prefix each line with its RFC 3339 time.
    /// - Throws: `OutputClosed` when stdout's or stderr's reader has gone; `SkiffError` for an
    ///   unknown container.
    public func logs(_ ref: String, tail: Int?, follow: Bool, timestamps: Bool) throws {
        let r = try find(ref)
        let path = logPath(r.id)
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            // Never started, or run with --rm in the foreground: no log was kept.
            if errno == ENOENT { return }
            throw SysError("open", path)
        }
        defer { close(fd) }
        var pending = [UInt8]()
        var first = true
        func emit(_ line: ArraySlice<UInt8>) throws {
            guard let e = try? OCIJSON.decode(LogEntry.self, from: Array(line), what: "log line") else { return }
            let text = (timestamps ? e.time + " " : "") + e.log
            do {
                try Files.write(fd: e.stream == "stderr" ? 2 : 1, Array(text.utf8))
            } catch let error as SysError where error.errno == EPIPE {
                throw OutputClosed()
            } catch {}
        }
        while true {
            let chunk = try Files.readAvailable(fd: fd, path: path)
            pending += chunk
            var lines: [ArraySlice<UInt8>] = []
            var start = 0
            for (i, b) in pending.enumerated() where b == 10 {
                lines.append(pending[start..<i])
                start = i + 1
            }
            pending = Array(pending[start...])
            if first, let tail { lines = Array(lines.suffix(tail)) }
            first = false
            for l in lines { try emit(l) }
            guard follow else { return }
            if chunk.isEmpty {
                let now = try store().get(id: r.id).flatMap { try reconcile($0) }
                if now == nil || !(now?.status == .running || now?.status == .paused) {
                    // One last read for what was written just before the exit.
                    let rest = try Files.readAvailable(fd: fd, path: path)
                    pending += rest
                    for l in pending.split(separator: 10) { try emit(l) }
                    return
                }
                // A reader that went away while the container is quiet: no write would see EPIPE.
                if Self.readerGone(fd: 1) || Self.readerGone(fd: 2) { throw OutputClosed() }
                usleep(100_000)
            }
        }
    }

    /// Whether `fd` is a pipe or socket whose reading end is closed: poll(2) reports POLLERR
    /// (pipe) or POLLHUP (socket) on it without being asked. A terminal or file never does.
    static func readerGone(fd: Int32) -> Bool {
        var p = pollfd(fd: fd, events: 0, revents: 0)
        return poll(&p, 1, 0) == 1 && p.revents & Int16(POLLERR | POLLHUP) != 0
    }
}
