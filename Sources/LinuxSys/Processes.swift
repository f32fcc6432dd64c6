import CSkiff

#if canImport(Glibc)
    import Glibc
#endif

/// Process identity and liveness from procfs (`proc_pid_stat(5)`).
public enum Processes {
    /// Ends this short-lived command process with `code` without making its caller wait for
    /// clean-up that changes nothing it can observe: stdio is flushed (`fflush(NULL)`), then
    /// `_exit(2)` skips the atexit handlers and C++ static destructors (the Swift runtime frees its
    /// metadata caches page by page, about 0.6 ms on this host), and a holder process
    /// (`sk_hold_address_space_past_exit`) keeps the address space so that unmapping it (guest RAM
    /// and KVM's MMU notifier for a VM, about 0.4 ms) happens after the caller has been told of the
    /// exit. Everything with an effect (database commits, cgroups, files, termios) is done before
    /// this is called; file descriptors are closed by the kernel at `_exit` as usual.
    /// Call only from the main thread, as the last thing the process does.
    public static func exitNow(_ code: Int32) -> Never {
        fflush(nil)
        _ = sk_hold_address_space_past_exit()
        _exit(code)
    }

    /// Start time of `pid` in clock ticks since boot (`/proc/PID/stat` field 22), or nil when the
    /// process does not exist. Together with the PID it identifies a process across PID reuse.
    public static func startTime(_ pid: Int32) -> UInt64? {
        guard let bytes = try? Files.read("/proc/\(pid)/stat") else { return nil }
        // Field 2 (comm) may contain spaces and parentheses: parse after the last ')'.
        guard let close = bytes.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        let rest = String(decoding: bytes[(close + 1)...], as: UTF8.self).split(separator: " ")
        // rest[0] is field 3 (state); field 22 is rest[19].
        guard rest.count > 19 else { return nil }
        return UInt64(rest[19])
    }

    /// State letter of `pid` (`R`, `S`, `D`, `Z`, `T`, …; field 3), or nil.
    public static func state(_ pid: Int32) -> Character? {
        guard let bytes = try? Files.read("/proc/\(pid)/stat"),
            let close = bytes.lastIndex(of: UInt8(ascii: ")")), close + 2 < bytes.count
        else { return nil }
        return Character(UnicodeScalar(bytes[close + 2]))
    }

    /// True when `pid` exists, is not a zombie, and (if given) started at `startTime`.
    public static func isAlive(_ pid: Int32, startTime: UInt64?) -> Bool {
        guard pid > 0, let st = self.startTime(pid) else { return false }
        if let startTime, st != startTime { return false }
        return state(pid) != "Z"
    }

    /// Opens a pidfd for `pid` and checks that it is still the process that started at `startTime`.
    /// - Returns: the pidfd (O_CLOEXEC), or nil when that process is gone.
    public static func pidfd(_ pid: Int32, startTime: UInt64?) -> Int32? {
        let fd = sk_pidfd_open(pid, 0)
        if fd < 0 { return nil }
        // The pidfd pins the process; check identity after opening so no reuse can slip in between.
        if let startTime, self.startTime(pid) != startTime {
            close(fd)
            return nil
        }
        return fd
    }

    /// Waits until `pidfd` becomes readable (the process exited) or `timeout` seconds pass.
    /// - Returns: true if the process exited.
    public static func waitExit(pidfd: Int32, timeout: Double) -> Bool {
        var pfd = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
        let deadline = Clock.monotonic() + timeout
        while true {
            let left = deadline - Clock.monotonic()
            if left <= 0 { return false }
            let rc = poll(&pfd, 1, Int32(min(left * 1000, 1_000_000)))
            if rc > 0 { return true }
            if rc < 0 && errno != EINTR { return false }
        }
    }

    /// Parses a signal given as a number, `TERM`, or `SIGTERM` (case-insensitive).
    /// - Throws: `SkiffError` naming the value when it is not a signal.
    public static func signal(named s: String) throws -> Int32 {
        if let n = Int32(s), n > 0, n < 65 { return n }
        var name = s.uppercased()
        if name.hasPrefix("SIG") { name.removeFirst(3) }
        let table: [String: Int32] = [
            "HUP": SIGHUP, "INT": SIGINT, "QUIT": SIGQUIT, "ILL": SIGILL, "TRAP": SIGTRAP, "ABRT": SIGABRT,
            "IOT": SIGABRT, "BUS": SIGBUS, "FPE": SIGFPE, "KILL": SIGKILL, "USR1": SIGUSR1, "SEGV": SIGSEGV,
            "USR2": SIGUSR2, "PIPE": SIGPIPE, "ALRM": SIGALRM, "TERM": SIGTERM, "STKFLT": SIGSTKFLT,
            "CHLD": SIGCHLD, "CONT": SIGCONT, "STOP": SIGSTOP, "TSTP": SIGTSTP, "TTIN": SIGTTIN,
            "TTOU": SIGTTOU, "URG": SIGURG, "XCPU": SIGXCPU, "XFSZ": SIGXFSZ, "VTALRM": SIGVTALRM,
            "PROF": SIGPROF, "WINCH": SIGWINCH, "IO": SIGIO, "POLL": SIGIO, "PWR": SIGPWR, "SYS": SIGSYS,
        ]
        if let n = table[name] { return n }
        throw SkiffError("invalid signal \"\(s)\": give a number (9) or a name (KILL, SIGTERM)")
    }

    /// Docker's exit code for a wait(2) status: the exit status, or 128+N when killed by signal N.
    public static func exitCode(waitStatus: Int32) -> Int32 {
        if sk_wifexited(waitStatus) != 0 { return sk_wexitstatus(waitStatus) }
        if sk_wifsignaled(waitStatus) != 0 { return 128 + sk_wtermsig(waitStatus) }
        return 125
    }

    /// Fails loudly unless the calling process has exactly one thread (DESIGN rule 1: no fork of a
    /// multi-threaded process into container setup).
    public static func requireSingleThreaded(_ what: String) throws {
        let n = sk_thread_count()
        if n != 1 {
            throw SkiffError("internal error: \(what) needs a single-threaded process but it has \(n) threads")
        }
    }
}
