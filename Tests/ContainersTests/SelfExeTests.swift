import CSkiff
import Foundation
import LinuxSys
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The read-only images of the running binary that `skiff run/start/exec` re-execute from
/// (CVE-2019-5736): same bytes as the binary, and no way to write through them.
@Suite(.enabled(if: geteuid() == 0, "the overlay image needs CAP_SYS_ADMIN"))
struct SelfExeTests {
    /// Bytes of the file behind `fd`, read through a fresh open of /proc/self/fd/N.
    func contents(_ fd: Int32) throws -> [UInt8] {
        try Files.read("/proc/self/fd/\(fd)")
    }

    /// Opening the image for writing the way an attacker would (through the magic link).
    func writeErrno(_ fd: Int32) -> Int32 {
        let w = open("/proc/self/fd/\(fd)", O_WRONLY | O_CLOEXEC)
        if w >= 0 {
            var b: UInt8 = 0
            let n = write(w, &b, 1)
            let e = n < 0 ? errno : 0
            close(w)
            return e
        }
        return errno
    }

    @Test func overlayImageIsTheBinaryAndReadOnly() throws {
        let scratch = "/tmp/skiff-test-exe-lower-\(getpid())"
        defer { rmdir(scratch) }
        let fd = try SelfExe.protectedImage(scratch: scratch)
        defer { close(fd) }
        let exe = try Files.read("/proc/self/exe")
        #expect(try contents(fd) == exe)
        #expect(sk_fstatvfs_flags(fd) & Int(ST_RDONLY) != 0, "the image must be on a read-only mount")
        #expect(writeErrno(fd) == EROFS)
        #expect(try contents(fd) == exe)
        // The test binary itself sits on a writable file system: it is not protected.
        #expect(!SelfExe.isProtected())
    }

    @Test func sealedCopyRefusesWrites() throws {
        let fd = try SelfExe.sealedCopy()
        defer { close(fd) }
        let exe = try Files.read("/proc/self/exe")
        #expect(sk_seals_write(sk_get_seals(fd)) != 0)
        #expect(writeErrno(fd) == EPERM)
        #expect(ftruncate(fd, 0) != 0)
        #expect(try contents(fd) == exe)
    }
}
