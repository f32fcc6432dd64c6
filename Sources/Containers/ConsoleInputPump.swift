import KVM
import LinuxSys

#if canImport(Glibc)
    import Glibc
#endif

/// A thread that copies bytes from `fd` (the VMM's stdin) into the UART's receive buffer, under the
/// runner's device lock, until EOF, a read error or `finish()`.
///
/// When the guest does not read and the receive buffer is full (`Serial8250.inputCapacity`), the pump
/// waits and offers the rest again every 10 ms, so input is held back, never dropped.
final class ConsoleInputPump: @unchecked Sendable {
    let fd: Int32
    let runner: VMRunner
    let serial: Serial8250
    /// `finish()` writes a byte here to wake the thread.
    var wake: [Int32] = [-1, -1]
    var thread = pthread_t()
    var started = false

    init(fd: Int32, runner: VMRunner, serial: Serial8250) {
        self.fd = fd
        self.runner = runner
        self.serial = serial
    }

    /// Starts the thread; does nothing (no input) if the wake pipe or the thread cannot be created.
    func start() {
        guard pipe2(&wake, O_CLOEXEC) == 0 else { return }
        guard let thread = startThread({ self.pump() }) else {
            closeWake()
            return
        }
        self.thread = thread
        started = true
    }

    /// Stops the thread and waits for it.
    func finish() {
        guard started else { return }
        var b: UInt8 = 1
        _ = write(wake[1], &b, 1)
        pthread_join(thread, nil)
        started = false
        closeWake()
    }

    func closeWake() {
        for fd in wake where fd >= 0 { close(fd) }
        wake = [-1, -1]
    }

    /// Waits for `fd`: true when it is readable (or at EOF), false when interrupted or `timeout` ms
    /// passed, nil once `finish()` was called or poll failed.
    func waitReadable(timeout: Int32 = -1) -> Bool? {
        var fds = [
            pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: wake[0], events: Int16(POLLIN), revents: 0),
        ]
        let n = poll(&fds, 2, timeout)
        if n < 0 { return errno == EINTR ? false : nil }
        if fds[1].revents != 0 { return nil }
        return fds[0].revents != 0
    }

    func pump() {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            guard let readable = waitReadable() else { return }
            guard readable else { continue }
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
            // EOF, or an error such as EIO from a terminal that went away: no more input.
            guard n > 0 else { return }
            var rest = buffer[0..<n]
            while !rest.isEmpty {
                var taken = 0
                runner.withDevices { [serial] in taken = serial.enqueueInput(rest) }
                rest = rest.dropFirst(taken)
                // The guest is not reading: wait for room (or the end) before offering the rest.
                if !rest.isEmpty {
                    var none = [pollfd(fd: wake[0], events: Int16(POLLIN), revents: 0)]
                    if poll(&none, 1, 10) > 0 { return }
                }
            }
        }
    }
}
