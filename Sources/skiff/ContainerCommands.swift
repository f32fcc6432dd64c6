import ArgumentParser
import Containers
import LinuxSys
import OCI

#if canImport(Glibc)
    import Glibc
#endif

struct PS: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ps", abstract: "List containers.",
        discussion: "Examples:\n  skiff ps\n  skiff ps -a --format json | jq .Names")
    @OptionGroup var global: GlobalOptions
    @Flag(name: [.short, .long], help: "Show all containers (default shows just running).") var all = false
    @Flag(name: [.short, .long], help: "Only display container IDs.") var quiet = false
    @Option(name: .long, help: "Output format: table or json (one JSON object per line).") var format = "table"

    /// One container as `ps --format json` prints it (Docker's keys).
    struct Row: Codable {
        var ID: String
        var Image: String
        var Command: String
        var CreatedAt: String
        var RunningFor: String
        var State: String
        var Status: String
        var Ports: String
        var Names: String
        var ExitCode: Int32?
        var Pid: Int32?
    }

    func run() throws {
        try execute {
            guard format == "table" || format == "json" else { throw SkiffError("unknown --format \"\(format)\": use table or json") }
            let now = Clock.now()
            let records = try global.engine().list().filter { all || $0.status == .running || $0.status == .paused }
            if quiet {
                for r in records { print(r.shortID) }
                return
            }
            let rows = records.reversed().map { r in
                Row(
                    ID: r.shortID, Image: r.image, Command: Self.command(r), CreatedAt: Clock.rfc3339(r.created),
                    RunningFor: Clock.humanDuration(now - r.created) + " ago", State: r.status.rawValue,
                    Status: Self.status(r, now: now), Ports: r.settings.exposedPorts.joined(separator: ", "), Names: r.name,
                    ExitCode: r.exitCode, Pid: r.pid)
            }
            if format == "json" {
                for row in rows { print(try OCIJSON.string(row)) }
                return
            }
            var t = Table(["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"])
            for row in rows {
                t.add([row.ID, truncate(row.Image, 30), "\"" + truncate(row.Command, 20) + "\"", row.RunningFor, row.Status, row.Ports, row.Names])
            }
            print(t.render())
        }
    }

    static func command(_ r: ContainerRecord) -> String {
        (r.spec.process?.args ?? []).joined(separator: " ")
    }

    /// Docker's status column: `Up 3 minutes`, `Exited (0) 2 seconds ago`, `Created`.
    static func status(_ r: ContainerRecord, now: Double) -> String {
        switch r.status {
        case .created: return "Created"
        case .running: return "Up " + Clock.humanDuration(now - (r.startedAt ?? now))
        case .paused: return "Up " + Clock.humanDuration(now - (r.startedAt ?? now)) + " (Paused)"
        case .exited:
            return "Exited (\(r.exitCode ?? 0)) " + Clock.humanDuration(now - (r.finishedAt ?? now)) + " ago"
        }
    }
}

struct Logs: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs",
        abstract: "Fetch the logs of a detached container.",
        discussion: "Examples:\n  skiff logs ms\n  skiff logs -f --tail 10 ms")
    @OptionGroup var global: GlobalOptions
    @Flag(name: [.short, .long], help: "Follow log output.") var follow = false
    @Option(name: .long, help: "Number of lines to show from the end of the logs (all by default).") var tail: String = "all"
    @Flag(name: [.short, .long], help: "Show timestamps.") var timestamps = false
    @Argument(help: "Container (name or ID prefix).") var container: String

    func run() throws {
        try execute {
            var n: Int? = nil
            if tail != "all" {
                guard let v = Int(tail), v >= 0 else { throw SkiffError("invalid --tail \"\(tail)\": give a number of lines or all") }
                n = v
            }
            try global.engine().logs(container, tail: n, follow: follow, timestamps: timestamps)
        }
    }
}

struct Stop: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stop",
        abstract: "Stop running containers: the stop signal (SIGTERM), then SIGKILL after a grace period.",
        discussion: "Example:\n  skiff stop -t 2 ms")
    @OptionGroup var global: GlobalOptions
    @Option(
        name: [.short, .customLong("time")], parsing: .unconditional,
        help: "Seconds to wait before killing; -1 waits as long as it takes.")
    var time = 10
    @Argument(help: "Containers.") var containers: [String]

    func run() throws {
        let time = time
        try eachContainerAtOnce(global, containers) { try $0.stop($1, timeout: time) }
    }
}

struct Kill: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kill",
        abstract: "Send a signal to running containers (default SIGKILL).",
        discussion: "Example:\n  skiff kill -s HUP ms")
    @OptionGroup var global: GlobalOptions
    @Option(name: [.short, .long], help: "Signal name or number.") var signal = "KILL"
    @Argument(help: "Containers.") var containers: [String]

    func run() throws {
        let sig: Int32
        do { sig = try Processes.signal(named: signal) } catch let e as SkiffError {
            printError(e.message)
            throw ExitCode(125)
        }
        try eachContainer(global, containers) { try $0.kill($1, signal: sig) }
    }
}

struct Remove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm", abstract: "Remove containers.",
        discussion: "Examples:\n  skiff rm old_job\n  skiff rm -f ms   # kill it first")
    @OptionGroup var global: GlobalOptions
    @Flag(name: [.short, .long], help: "Kill a running container first.") var force = false
    @Argument(help: "Containers.") var containers: [String]

    func run() throws {
        try eachContainer(global, containers) { try $0.remove($1, force: force) }
    }
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show a container's details as JSON: OCI spec, state, mounts, pid.",
        discussion: "Example:\n  skiff inspect ms | jq '.[0].State'")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Containers.") var containers: [String]

    func run() throws {
        try execute {
            let engine = global.engine()
            var docs: [InspectDocument] = []
            // Print what was found, then fail for what was not (docker's behaviour).
            defer { if !docs.isEmpty, let text = try? OCIJSON.string(docs, pretty: true) { print(text) } }
            try forEach(containers) { docs.append(try engine.inspect($0)) }
        }
    }
}
