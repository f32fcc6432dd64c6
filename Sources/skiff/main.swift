import ArgumentParser

#if canImport(Glibc)
    import Glibc
#endif

// Docker's convention: a usage error is the runtime's failure, exit 125.
do {
    var command = try Skiff.parseAsRoot()
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
