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

// Commands that put a copy of skiff into a container run from a read-only image of the binary,
// so /proc/PID/exe can never reach the host's file (CVE-2019-5736; see SelfExe). `run` decides in
// `Run`: a foreground container run spawns only its first process from the image, `-d` and the
// fork path re-execute there, and `run --vm` never does (the VMM enters no container).
let leadingArguments = GlobalOptions.hoistLeading(Array(CommandLine.arguments.dropFirst()))
if let verb = leadingArguments.first, ["start", "exec"].contains(verb) {
    do { try SelfExe.reexecProtected(CommandLine.arguments, scratch: SelfExe.scratchDirectory) } catch {
        printError("skiff: cannot protect its own binary before entering a container: \(error)")
        exit(125)
    }
    Trace.mark("protected exe")
}

// Docker's convention: a usage error is the runtime's failure, exit 125.
do {
    let hoisted = leadingArguments
    var command: ParsableCommand
    // `run` is parsed as a command of its own first: the same options, without walking the whole
    // command tree (about 20 % fewer instructions on the start path). Anything it does not accept
    // (help, errors, completion requests) goes through the full parse, which words the message.
    // `run --vm` first tries the VM's own options alone (RunVM, fewer to build).
    let rest = Array(hoisted.dropFirst())
    if hoisted.first == "run", rest.contains("--vm"), let vm = try? RunVM.parse(rest), vm.vm {
        command = vm
    } else if hoisted.first == "run", !rest.contains("--vm"), let basic = try? RunBasic.parse(rest),
        !basic.needsFullParse
    {
        // The options most container runs use, alone (RunBasic); anything else goes to Run.
        command = basic
    } else if hoisted.first == "run", let run = try? Run.parse(rest) {
        command = run
    } else {
        command = try Skiff.parseAsRoot(hoisted)
    }
    Trace.mark("parsed")
    try command.run()
    Processes.exitNow(0)
} catch {
    // A command's own exit status (its messages are printed already).
    if let exit = error as? ExitCode { Processes.exitNow(exit.rawValue) }
    let code = Skiff.exitCode(for: error)
    if code == .validationFailure {
        let message = Skiff.fullMessage(for: error)
        if !message.isEmpty { printError(message) }
        exit(125)
    }
    Skiff.exit(withError: error)
}
