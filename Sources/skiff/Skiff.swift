import ArgumentParser
import Containers
import LinuxSys
import Logging
import Store

/// The `skiff` command line: argument parsing and printing only; the work is in the libraries.
struct Skiff: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "skiff",
        abstract: "Run isolated workloads: OCI containers on one Linux host.",
        discussion: """
            Global options, before or after the subcommand: --root DIR (state root, default
            $SKIFF_ROOT or /var/lib/skiff), --log-level LEVEL.

            Examples:
              skiff load images/busybox/out/busybox
              skiff run --rm busybox echo hello
              skiff run -d --name ms --network host model-server
              skiff exec ms python3 -c 'import os; print(os.getpid())'
              skiff logs -f ms
              skiff rm -f ms
            """,
        version: "0.1.0",
        subcommands: [
            Run.self, Create.self, Start.self, Exec.self, PS.self, Logs.self, Stop.self, Kill.self, Remove.self,
            Inspect.self, Update.self, Pause.self, Unpause.self, Stats.self, Info.self, Load.self, ImagesCommand.self,
            RemoveImage.self, Top.self, Reserve.self,
        ])
}

/// Options every subcommand takes.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "State root (default $SKIFF_ROOT or /var/lib/skiff).")
    var root: String?

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: String?

    /// `skiff --root DIR ps` works as runc's and docker's global flags do: options before the
    /// subcommand are taken out and set in the environment the subcommands read
    /// (`SKIFF_ROOT`, `SKIFF_LOG`); after the subcommand they keep working as its own options.
    static func hoistLeading(_ args: [String]) -> [String] {
        var rest = args[...]
        let names = ["--root": "SKIFF_ROOT", "--log-level": "SKIFF_LOG"]
        while let first = rest.first, first.hasPrefix("--") {
            let parts = first.split(separator: "=", maxSplits: 1).map(String.init)
            guard let env = names[parts[0]] else { break }
            rest.removeFirst()
            var value: String
            if parts.count == 2 {
                value = parts[1]
            } else if let v = rest.first {
                value = v
                rest.removeFirst()
            } else {
                break
            }
            if env == "SKIFF_ROOT" && !value.hasPrefix("/") {
                var buf = [CChar](repeating: 0, count: 4096)
                if getcwd(&buf, buf.count) != nil {
                    value = String(decoding: buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self) + "/" + value
                }
            }
            setenv(env, value, 1)
        }
        return Array(rest)
    }

    func validate() throws {
        if let logLevel, Logger.Level(rawValue: logLevel) == nil {
            throw ValidationError("invalid --log-level \"\(logLevel)\": use trace, debug, info, notice, warning, error or critical")
        }
    }

    /// Builds the engine with logging bootstrapped once.
    func engine() -> Engine {
        Logging.bootstrapOnce(level: logLevel)
        return Self.engine(root: root)
    }

    /// An engine on the state root `root` (nil: `$SKIFF_ROOT` or the default), for a thread of
    /// its own once `engine()` has set up logging.
    static func engine(root: String?) -> Engine {
        Engine(root: StateRoot(path: root), logger: Logger(label: "skiff"))
    }
}

enum Logging {
    nonisolated(unsafe) static var done = false
    static func bootstrapOnce(level: String?) {
        guard !done else { return }
        done = true
        let lvl = Logger.Level(rawValue: level ?? Env.get("SKIFF_LOG") ?? "warning") ?? .warning
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = lvl
            return h
        }
    }
}

enum Env {
    static func get(_ name: String) -> String? {
        guard let v = getenv(name) else { return nil }
        return String(cString: v)
    }
}

/// Runs `body`, turning Skiff's errors into a message on stderr and Docker's exit code.
func execute(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let e as ExitCode {
        throw e
    } catch is OutputClosed {
        throw ExitCode(128 + SIGPIPE)
    } catch let e as StartError {
        printError(e.message)
        throw ExitCode(e.exitCode)
    } catch let e as SkiffError {
        printError(e.message)
        throw ExitCode(e.exitCode)
    } catch {
        printError("\(error)")
        throw ExitCode(125)
    }
}

func printError(_ message: String) {
    try? Files.write(fd: 2, Array("skiff: \(message)\n".utf8))
}

#if canImport(Glibc)
    import Glibc
#endif
