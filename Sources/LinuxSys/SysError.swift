#if canImport(Glibc)
    import Glibc
#endif

/// A failed system call: which call, on which path or value, and the errno it returned.
///
/// `description` reads like crun's errors: `mount /run/skiff/ab12/rootfs: Operation not permitted`,
/// followed by `hint` when there is something the user can do.
public struct SysError: Error, CustomStringConvertible, Sendable {
    /// The call that failed (`mount`, `openat2`, `pivot_root`, …).
    public let call: String
    /// The path or value it was called on.
    public let subject: String
    /// errno as returned by the call.
    public let errno: Int32
    /// What the user can do about it; may be empty.
    public let hint: String

    public init(_ call: String, _ subject: String, errno: Int32 = Glibc.errno, hint: String = "") {
        self.call = call
        self.subject = subject
        self.errno = errno
        self.hint = hint
    }

    public var description: String {
        var s = "\(call) \(subject): \(SysError.message(errno))"
        if !hint.isEmpty { s += "; " + hint }
        return s
    }

    /// `strerror(errnum)` as a String.
    public static func message(_ errnum: Int32) -> String { String(cString: strerror(errnum)) }
}

/// Throws `SysError` when `rc` is negative. Returns `rc` otherwise.
@discardableResult
public func check(_ rc: Int32, _ call: String, _ subject: String, hint: String = "") throws -> Int32 {
    if rc < 0 { throw SysError(call, subject, errno: errno, hint: hint) }
    return rc
}

/// Retries `body` while it fails with EINTR.
public func retryEINTR<T: SignedInteger>(_ body: () -> T) -> T {
    while true {
        let rc = body()
        if rc >= 0 || errno != EINTR { return rc }
    }
}

/// A generic user-facing error: a message that already says what failed and what to do.
public struct SkiffError: Error, CustomStringConvertible, Sendable {
    public let message: String
    /// Exit status the CLI should use (125 unless the failure is the workload's own).
    public let exitCode: Int32
    public init(_ message: String, exitCode: Int32 = 125) {
        self.message = message
        self.exitCode = exitCode
    }
    public var description: String { message }
}

import CSkiff

/// `O_PATH` (open(2); glibc hides it behind _GNU_SOURCE).
public let O_PATH: Int32 = SK_O_PATH
/// `AT_EMPTY_PATH` (openat(2), linkat(2)).
public let AT_EMPTY_PATH: Int32 = SK_AT_EMPTY_PATH

/// pipe2(2) with `flags` (O_CLOEXEC); glibc hides it behind _GNU_SOURCE.
public func pipe2(_ fds: UnsafeMutablePointer<Int32>, _ flags: Int32) -> Int32 { sk_pipe2(fds, flags) }

/// makedev(3): a dev_t from major and minor numbers.
public func makedev(_ major: UInt32, _ minor: UInt32) -> UInt { UInt(sk_makedev(major, minor)) }

/// major(3) and minor(3) of a dev_t.
public func major(_ dev: UInt) -> UInt32 { sk_major(dev) }
public func minor(_ dev: UInt) -> UInt32 { sk_minor(dev) }
