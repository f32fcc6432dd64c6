import OCI

/// Docker's default seccomp profile, as a table.
///
/// Source: moby/moby `profiles/seccomp/default.json` (generated from `default_linux.go`), the
/// version at commit 00f3d189e420d485e42d15fe494f96d272284e0e: an allow-list with
/// `SCMP_ACT_ERRNO`/EPERM as the default action; namespace, mount, module, clock, reboot, bpf,
/// perf and ptrace calls only with the capability that governs them; `clone` without namespace
/// flags and `clone3` refused with ENOSYS (so libc falls back to `clone`) unless CAP_SYS_ADMIN;
/// `socket` without AF_VSOCK (40); `personality` only with the harmless personas. Calls newer than
/// the newest named here get ENOSYS from the stub `SeccompFilter` puts in front of the filter.
enum DefaultSeccompProfile {
    static let profile = SeccompProfile(
        defaultAction: "SCMP_ACT_ERRNO", defaultErrnoRet: 1, architectures: nil,
        archMap: [
            .init(architecture: "SCMP_ARCH_X86_64", subArchitectures: ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]),
            .init(architecture: "SCMP_ARCH_AARCH64", subArchitectures: ["SCMP_ARCH_ARM"]),
            .init(architecture: "SCMP_ARCH_MIPS64", subArchitectures: ["SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64N32"]),
            .init(architecture: "SCMP_ARCH_MIPS64N32", subArchitectures: ["SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64"]),
            .init(architecture: "SCMP_ARCH_MIPSEL64", subArchitectures: ["SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64N32"]),
            .init(architecture: "SCMP_ARCH_MIPSEL64N32", subArchitectures: ["SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64"]),
            .init(architecture: "SCMP_ARCH_S390X", subArchitectures: ["SCMP_ARCH_S390"]),
            .init(architecture: "SCMP_ARCH_RISCV64", subArchitectures: nil),
        ],
        flags: nil, syscalls: rules)

    private static func arg(_ index: UInt32, _ value: UInt64, _ op: String) -> [Spec.Seccomp.Arg] {
        [Spec.Seccomp.Arg(index: index, value: value, op: op)]
    }
    private static func caps(_ c: String...) -> SeccompProfile.Condition { .init(caps: c) }
    private static func arches(_ a: String...) -> SeccompProfile.Condition { .init(arches: a) }

    private static let rules: [SeccompProfile.Rule] =
        [
            .init(allowed),
            .init(["process_vm_readv", "process_vm_writev", "ptrace"], includes: .init(minKernel: "4.8")),
            .init(["socket"], args: arg(0, 40, "SCMP_CMP_NE")),
        ]
        // personality(2): PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, and the query 0xffffffff.
        + [0, 8, 131072, 131080, 4_294_967_295].map { .init(["personality"], args: arg(0, $0, "SCMP_CMP_EQ")) }
        + [
            .init(["sync_file_range2", "swapcontext"], includes: arches("ppc64le")),
            .init(
                ["arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush", "set_tls"],
                includes: arches("arm", "arm64")),
            .init(["arch_prctl"], includes: arches("amd64", "x32")),
            .init(["modify_ldt"], includes: arches("amd64", "x32", "x86")),
            .init(
                ["s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"], includes: arches("s390", "s390x")),
            .init(["riscv_flush_icache"], includes: arches("riscv64")),
            .init(["open_by_handle_at"], includes: caps("CAP_DAC_READ_SEARCH")),
            .init(
                [
                    "bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
                    "lookup_dcookie",
                    "mount", "mount_setattr", "move_mount", "open_tree", "perf_event_open", "quotactl", "quotactl_fd",
                    "setdomainname", "sethostname", "setns", "syslog", "umount", "umount2", "unshare",
                ], includes: caps("CAP_SYS_ADMIN")),
            // clone(2) without CLONE_NEWNS|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET|NEWCGROUP (mask 0x7E020000).
            .init(
                ["clone"], args: arg(0, 2_114_060_288, "SCMP_CMP_MASKED_EQ"),
                excludes: .init(caps: ["CAP_SYS_ADMIN"], arches: ["s390", "s390x"])),
            .init(
                ["clone"], args: arg(1, 2_114_060_288, "SCMP_CMP_MASKED_EQ"), includes: arches("s390", "s390x"),
                excludes: caps("CAP_SYS_ADMIN")),
            // clone3's flags are behind a pointer seccomp cannot read: ENOSYS makes glibc use clone.
            .init(["clone3"], "SCMP_ACT_ERRNO", errnoRet: 38, excludes: caps("CAP_SYS_ADMIN")),
            .init(["reboot"], includes: caps("CAP_SYS_BOOT")),
            .init(["chroot"], includes: caps("CAP_SYS_CHROOT")),
            .init(["delete_module", "init_module", "finit_module"], includes: caps("CAP_SYS_MODULE")),
            .init(["acct"], includes: caps("CAP_SYS_PACCT")),
            .init(
                ["kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"],
                includes: caps("CAP_SYS_PTRACE")),
            .init(["iopl", "ioperm"], includes: caps("CAP_SYS_RAWIO")),
            .init(["settimeofday", "stime", "clock_settime", "clock_settime64"], includes: caps("CAP_SYS_TIME")),
            .init(["vhangup"], includes: caps("CAP_SYS_TTY_CONFIG")),
            .init(
                ["get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"], includes: caps("CAP_SYS_NICE")),
            .init(["syslog"], includes: caps("CAP_SYSLOG")),
            .init(["bpf"], includes: caps("CAP_BPF")),
            .init(["perf_event_open"], includes: caps("CAP_PERFMON")),
        ]

    /// The unconditional allow-list.
    private static let allowed = [
        "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "capget", "capset", "chdir", "chmod",
        "chown",
        "chown32", "clock_adjtime", "clock_adjtime64", "clock_getres", "clock_getres_time64", "clock_gettime",
        "clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64", "close", "close_range", "connect",
        "copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl",
        "epoll_ctl_old",
        "epoll_pwait", "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "execve", "execveat",
        "exit",
        "exit_group", "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate", "fanotify_mark", "fchdir",
        "fchmod", "fchmodat", "fchown", "fchown32", "fchownat", "fcntl", "fcntl64", "fdatasync", "fgetxattr",
        "flistxattr",
        "flock", "fork", "fremovexattr", "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync",
        "ftruncate", "ftruncate64", "futex", "futex_time64", "futex_waitv", "futimesat", "getcpu", "getcwd", "getdents",
        "getdents64", "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32",
        "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getrandom", "getresgid",
        "getresgid32", "getresuid", "getresuid32", "getrlimit", "get_robust_list", "getrusage", "getsid", "getsockname",
        "getsockopt", "get_thread_area", "gettid", "gettimeofday", "getuid", "getuid32", "getxattr",
        "inotify_add_watch",
        "inotify_init", "inotify_init1", "inotify_rm_watch", "io_cancel", "ioctl", "io_destroy", "io_getevents",
        "io_pgetevents", "io_pgetevents_time64", "ioprio_get", "ioprio_set", "io_setup", "io_submit", "io_uring_enter",
        "io_uring_register", "io_uring_setup", "ipc", "kill", "landlock_add_rule", "landlock_create_ruleset",
        "landlock_restrict_self", "lchown", "lchown32", "lgetxattr", "link", "linkat", "listen", "listxattr",
        "llistxattr",
        "_llseek", "lremovexattr", "lseek", "lsetxattr", "lstat", "lstat64", "madvise", "membarrier", "memfd_create",
        "memfd_secret", "mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap",
        "mmap2",
        "mprotect", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64",
        "mq_timedsend",
        "mq_timedsend_time64", "mq_unlink", "mremap", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock",
        "munlockall", "munmap", "name_to_handle_at", "nanosleep", "newfstatat", "_newselect", "open", "openat",
        "openat2",
        "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free", "pkey_mprotect", "poll",
        "ppoll", "ppoll_time64", "prctl", "pread64", "preadv", "preadv2", "prlimit64", "process_mrelease", "pselect6",
        "pselect6_time64", "pwrite64", "pwritev", "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv",
        "recv", "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr", "rename",
        "renameat", "renameat2", "restart_syscall", "rmdir", "rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask",
        "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64",
        "rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr", "sched_getparam", "sched_get_priority_max",
        "sched_get_priority_min", "sched_getscheduler", "sched_rr_get_interval", "sched_rr_get_interval_time64",
        "sched_setaffinity", "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp",
        "select",
        "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "send", "sendfile", "sendfile64", "sendmmsg",
        "sendmsg", "sendto", "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups",
        "setgroups32", "setitimer", "setpgid", "setpriority", "setregid", "setregid32", "setresgid", "setresgid32",
        "setresuid", "setresuid32", "setreuid", "setreuid32", "setrlimit", "set_robust_list", "setsid", "setsockopt",
        "set_thread_area", "set_tid_address", "setuid", "setuid32", "setxattr", "shmat", "shmctl", "shmdt", "shmget",
        "shutdown", "sigaltstack", "signalfd", "signalfd4", "sigprocmask", "sigreturn", "socketcall", "socketpair",
        "splice", "stat", "stat64", "statfs", "statfs64", "statx", "symlink", "symlinkat", "sync", "sync_file_range",
        "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create", "timer_delete", "timer_getoverrun",
        "timer_gettime",
        "timer_gettime64", "timer_settime", "timer_settime64", "timerfd_create", "timerfd_gettime", "timerfd_gettime64",
        "timerfd_settime", "timerfd_settime64", "times", "tkill", "truncate", "truncate64", "ugetrlimit", "umask",
        "uname",
        "unlink", "unlinkat", "utime", "utimensat", "utimensat_time64", "utimes", "vfork", "vmsplice", "wait4",
        "waitid",
        "waitpid", "write", "writev",
    ]
}
