#if canImport(Glibc)
    import Glibc
#endif

// Linux symbols that Swift's Glibc module does not import (they sit behind _GNU_SOURCE or in
// headers the module map leaves out). Values: include/uapi/asm-generic/fcntl.h and
// include/uapi/linux/fcntl.h, identical on x86_64 and aarch64.

/// `O_PATH` (open a location without opening the file).
let O_PATH: Int32 = 0o10000000
/// `AT_EMPTY_PATH` (operate on the dirfd itself).
let AT_EMPTY_PATH: Int32 = 0x1000

// <sys/xattr.h> (glibc). These have plain C ABIs; declared here until the C shim exports them.
@_silgen_name("lsetxattr")
func c_lsetxattr(
    _ path: UnsafePointer<CChar>, _ name: UnsafePointer<CChar>, _ value: UnsafeRawPointer?, _ size: Int, _ flags: Int32
) -> Int32
@_silgen_name("fsetxattr")
func c_fsetxattr(_ fd: Int32, _ name: UnsafePointer<CChar>, _ value: UnsafeRawPointer?, _ size: Int, _ flags: Int32)
    -> Int32
