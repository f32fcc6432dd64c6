import CSkiff
import LinuxSys

#if canImport(Glibc)
    import Glibc
#endif

/// Where the workload's output goes while the monitor waits for it.
enum OutputMode {
    /// The workload writes straight to the caller's stdout/stderr (foreground `--rm`, exec).
    case inherit
    /// Foreground with a terminal: relay the caller's terminal ⇄ pty master, and copy the output
    /// to the log when there is one.
    case terminal(master: Int32, stdin: Bool, log: LogWriter?)
    /// Read the workload's pipes (or pty master as `stdout`) into the log; with `echo`, also copy
    /// them to the caller's stdout/stderr (a foreground container that keeps its log).
    case pipes(stdout: Int32, stderr: Int32?, log: LogWriter, echo: Bool)
}

/// Supervises a running container's PID 1: relays I/O, forwards signals, and returns the wait
/// status when it exits. Single-threaded: one `poll(2)` loop over the I/O descriptors and a
/// signalfd for SIGCHLD and the forwarded signals.
enum Monitor {
    /// Signals a monitor forwards to the workload (Docker's `--sig-proxy`).
    static let forwarded: [Int32] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2]

    /// Creates the signalfd before `fork()` so no SIGCHLD or forwarded signal is lost.
    static func signalFD() throws -> Int32 {
        var sigs = forwarded + [SIGCHLD, SIGWINCH, 0]
        let fd = sk_signalfd(&sigs)
        try check(fd, "signalfd", "monitor signals")
        return fd
    }

    /// Runs until `pid` exits; returns its wait(2) status.
    static func wait(pid: Int32, signalFD: Int32, output: OutputMode) -> Int32 {
        var status: Int32 = 0
        var exited = false
        var saved = termios()
        var rawMode = false
        var fds: [pollfd] = [pollfd(fd: signalFD, events: Int16(POLLIN), revents: 0)]
        var streams: [Int32: String] = [:]
        var writer: LogWriter?
        var master: Int32 = -1
        var echo = false
        switch output {
        case .inherit: break
        case .terminal(let m, let stdin, let log):
            master = m
            writer = log
            echo = true
            fds.append(pollfd(fd: m, events: Int16(POLLIN), revents: 0))
            streams[m] = "stdout"
            if stdin { fds.append(pollfd(fd: 0, events: Int16(POLLIN), revents: 0)) }
            if isatty(0) != 0 {
                rawMode = sk_make_raw(0, &saved) == 0
                copyWindowSize(to: m)
            }
        case .pipes(let out, let err, let log, let e):
            writer = log
            echo = e
            fds.append(pollfd(fd: out, events: Int16(POLLIN), revents: 0))
            streams[out] = "stdout"
            if let err {
                fds.append(pollfd(fd: err, events: Int16(POLLIN), revents: 0))
                streams[err] = "stderr"
            }
        }
        defer { if rawMode { _ = sk_restore_termios(0, &saved) } }
        var buf = [UInt8](repeating: 0, count: 32768)
        // Keep relaying after exit until every output stream reaches EOF (or briefly, for a pty).
        var drainDeadline: Double? = nil
        while true {
            let active = fds.filter { $0.fd >= 0 }
            if exited && (active.count == 1 || (drainDeadline.map { Clock.monotonic() > $0 } ?? false)) { break }
            var pfds = active
            let timeout: Int32 = exited ? 100 : -1
            let n = poll(&pfds, nfds_t(pfds.count), timeout)
            if n < 0 && errno != EINTR { break }
            if n <= 0 { continue }
            for p in pfds where p.revents != 0 {
                if p.fd == signalFD {
                    let sig = sk_signalfd_read(signalFD)
                    if sig == SIGCHLD {
                        while true {
                            var st: Int32 = 0
                            let r = waitpid(-1, &st, WNOHANG)
                            if r <= 0 { break }
                            // A workload that called PTRACE_TRACEME made us its tracer: its stops
                            // come here as "stopped" statuses. Let it go on untraced with its signal.
                            if r == pid && st & 0xff == 0x7f {
                                _ = sk_ptrace_detach(pid, (st >> 8) & 0xff)
                                continue
                            }
                            if r == pid {
                                status = st
                                exited = true
                                drainDeadline = Clock.monotonic() + 2
                            }
                        }
                    } else if sig == SIGWINCH {
                        if master >= 0 { copyWindowSize(to: master) }
                    } else if sig > 0 && !exited {
                        kill(pid, sig)
                    }
                    continue
                }
                let count = buf.withUnsafeMutableBytes { read(p.fd, $0.baseAddress, $0.count) }
                if count <= 0 {
                    if count < 0 && errno == EINTR { continue }
                    // EOF (or EIO from a pty master whose slave side closed): stop polling it.
                    if let i = fds.firstIndex(where: { $0.fd == p.fd }) { fds[i].fd = -1 }
                    continue
                }
                if p.fd == 0 {
                    try? Files.write(fd: master, Array(buf[0..<count]))
                    continue
                }
                let stream = streams[p.fd] ?? "stdout"
                if echo { try? Files.write(fd: stream == "stderr" ? 2 : 1, Array(buf[0..<count])) }
                writer?.append(buf[0..<count], stream: stream)
            }
        }
        writer?.flush()
        return status
    }

    /// Copies the caller's terminal size to the pty (TIOCGWINSZ → TIOCSWINSZ); the kernel then
    /// sends SIGWINCH to the pty's foreground process group.
    static func copyWindowSize(to master: Int32) {
        var rows: UInt16 = 0
        var cols: UInt16 = 0
        if sk_get_winsize(0, &rows, &cols) == 0 { _ = sk_set_winsize(master, rows, cols) }
    }
}
