import ArgumentParser
import Containers
import LinuxSys

#if canImport(Glibc)
    import Glibc
#endif

// A broken pipe is an error to handle where it happens (EPIPE), not a reason to die; the
// container's process gets default dispositions back before execve (sk_reset_signals).
if CommandLine.arguments.count == 2 && CommandLine.arguments[1] == SpawnedInit.argument {
    SpawnedInit.main()  // the container's first process (see Launcher.spawn); never returns
}
signal(SIGPIPE, SIG_IGN)
Trace.mark("main")

// Docker's convention: a usage error is the runtime's failure, exit 125.
do {
    var command = try Skiff.parseAsRoot(GlobalOptions.hoistLeading(Array(CommandLine.arguments.dropFirst())))
    Trace.mark("parsed")
    try command.run()
} catch {
    let code = Skiff.exitCode(for: error)
    if code == .validationFailure {
        let message = Skiff.fullMessage(for: error)
        if !message.isEmpty { printError(message) }
        exit(125)
    }
    Skiff.exit(withError: error)
}
