#define _GNU_SOURCE
#include "cskiff.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/openat2.h>
#include <linux/sched.h>
#include <sys/random.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif

const int SK_CLONE_NEWNS = CLONE_NEWNS;
const int SK_CLONE_NEWUTS = CLONE_NEWUTS;
const int SK_CLONE_NEWIPC = CLONE_NEWIPC;
const int SK_CLONE_NEWNET = CLONE_NEWNET;
const int SK_CLONE_NEWPID = CLONE_NEWPID;
const int SK_CLONE_NEWCGROUP = CLONE_NEWCGROUP;
const int SK_CLONE_NEWUSER = CLONE_NEWUSER;
const int SK_CLONE_NEWTIME = CLONE_NEWTIME;

const int SK_O_PATH = O_PATH;
const int SK_AT_EMPTY_PATH = AT_EMPTY_PATH;

const uint64_t SK_RESOLVE_NO_XDEV = RESOLVE_NO_XDEV;
const uint64_t SK_RESOLVE_NO_MAGICLINKS = RESOLVE_NO_MAGICLINKS;
const uint64_t SK_RESOLVE_NO_SYMLINKS = RESOLVE_NO_SYMLINKS;
const uint64_t SK_RESOLVE_BENEATH = RESOLVE_BENEATH;
const uint64_t SK_RESOLVE_IN_ROOT = RESOLVE_IN_ROOT;

int sk_unshare(int flags) { return unshare(flags); }
int sk_setns(int fd, int nstype) { return setns(fd, nstype); }
int sk_pivot_root(const char *n, const char *o) { return (int)syscall(SYS_pivot_root, n, o); }
int sk_pidfd_open(pid_t pid, unsigned int flags) { return (int)syscall(SYS_pidfd_open, pid, flags); }
int sk_gettid(void) { return (int)syscall(SYS_gettid); }

int sk_tgkill(int tgid, int tid, int sig) { return (int)syscall(SYS_tgkill, tgid, tid, sig); }

int sk_pidfd_send_signal(int pidfd, int sig) {
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}
int sk_pidfd_send_signal_value(int pidfd, int sig, int value) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    info.si_signo = sig;
    info.si_code = SI_QUEUE;
    info.si_pid = getpid();
    info.si_uid = getuid();
    info.si_value.sival_int = value;
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, &info, 0);
}

int sk_sigwait_queued(const sigset_t *set, long timeout_ms, int *queued, int *value) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    int sig;
    if (timeout_ms < 0) {
        sig = sigwaitinfo(set, &info);
    } else {
        struct timespec ts = {timeout_ms / 1000, (timeout_ms % 1000) * 1000000L};
        sig = sigtimedwait(set, &info, &ts);
        if (sig < 0 && errno == EAGAIN) return 0;
    }
    if (sig < 0) return -1;
    *queued = info.si_code == SI_QUEUE;
    *value = info.si_code == SI_QUEUE ? info.si_value.sival_int : 0;
    return sig;
}

int sk_close_range_cloexec(unsigned int first) {
    return (int)syscall(SYS_close_range, first, ~0U, CLOSE_RANGE_CLOEXEC);
}
int sk_close_from3_except(int keep) {
    if (keep > 3 && syscall(SYS_close_range, 3U, (unsigned)keep - 1, 0U) < 0) return -1;
    unsigned first = keep >= 3 ? (unsigned)keep + 1 : 3U;
    return (int)syscall(SYS_close_range, first, ~0U, 0U);
}
int sk_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve) {
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = flags;
    how.mode = mode;
    how.resolve = resolve;
    int fd;
    do {
        fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
    } while (fd < 0 && errno == EAGAIN);
    return fd;
}
int sk_memfd_create(const char *name, unsigned int flags) { return memfd_create(name, flags); }
int sk_seal_memfd(int fd) {
    return fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE);
}
int sk_execveat_empty(int fd, char *const argv[], char *const envp[]) {
    return (int)syscall(SYS_execveat, fd, "", argv, envp, AT_EMPTY_PATH);
}
int sk_dup3(int oldfd, int newfd, int flags) { return dup3(oldfd, newfd, flags); }

int sk_set_pdeathsig(int sig) { return prctl(PR_SET_PDEATHSIG, (unsigned long)sig, 0, 0, 0); }
int sk_set_child_subreaper(void) { return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }
int sk_set_dumpable(int on) { return prctl(PR_SET_DUMPABLE, (unsigned long)on, 0, 0, 0); }
int sk_set_no_new_privs(void) { return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); }
int sk_set_name(const char *name) { return prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0); }

int sk_wifexited(int s) { return WIFEXITED(s); }
int sk_wexitstatus(int s) { return WEXITSTATUS(s); }
int sk_wifsignaled(int s) { return WIFSIGNALED(s); }
int sk_wtermsig(int s) { return WTERMSIG(s); }

int sk_unlockpt(int master) {
    int unlock = 0;
    return ioctl(master, TIOCSPTLCK, &unlock);
}
int sk_ptmx_peer(int master) { return ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY); }
int sk_set_ctty(int fd) { return ioctl(fd, TIOCSCTTY, 0); }
int sk_get_winsize(int fd, unsigned short *rows, unsigned short *cols) {
    struct winsize ws;
    if (ioctl(fd, TIOCGWINSZ, &ws) < 0) return -1;
    *rows = ws.ws_row;
    *cols = ws.ws_col;
    return 0;
}
int sk_set_winsize(int fd, unsigned short rows, unsigned short cols) {
    struct winsize ws;
    memset(&ws, 0, sizeof ws);
    ws.ws_row = rows;
    ws.ws_col = cols;
    return ioctl(fd, TIOCSWINSZ, &ws);
}
int sk_make_raw(int fd, struct termios *saved) {
    if (tcgetattr(fd, saved) < 0) return -1;
    struct termios raw = *saved;
    cfmakeraw(&raw);
    return tcsetattr(fd, TCSANOW, &raw);
}
int sk_restore_termios(int fd, const struct termios *saved) { return tcsetattr(fd, TCSANOW, saved); }

int sk_send_fd(int sock, int fd) {
    char byte = 'F';
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof u);
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = u.buf;
    msg.msg_controllen = sizeof u.buf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    ssize_t n;
    do {
        n = sendmsg(sock, &msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n == 1 ? 0 : -1;
}

int sk_recv_fd(int sock) {
    char byte;
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = u.buf;
    msg.msg_controllen = sizeof u.buf;
    ssize_t n;
    do {
        n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
        if (n == 0) errno = EPIPE;
        return -1;
    }
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (!c || c->cmsg_type != SCM_RIGHTS) {
        errno = EPROTO;
        return -1;
    }
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof(int));
    return fd;
}

int sk_loopback_up(void) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    int rc = ioctl(s, SIOCGIFFLAGS, &ifr);
    if (rc == 0) {
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        rc = ioctl(s, SIOCSIFFLAGS, &ifr);
    }
    int saved = errno;
    close(s);
    errno = saved;
    return rc;
}

int sk_signalfd(const int *signals) {
    sigset_t set;
    sigemptyset(&set);
    for (const int *s = signals; *s; s++) sigaddset(&set, *s);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0) return -1;
    return signalfd(-1, &set, SFD_CLOEXEC);
}

int sk_signalfd_read(int fd) {
    struct signalfd_siginfo si;
    ssize_t n;
    do {
        n = read(fd, &si, sizeof si);
    } while (n < 0 && errno == EINTR);
    if (n != sizeof si) return -1;
    return (int)si.ssi_signo;
}

int sk_reset_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    for (int s = 1; s < NSIG; s++) {
        if (s == SIGKILL || s == SIGSTOP) continue;
        sigaction(s, &sa, NULL);  // fails harmlessly for the glibc-reserved RT signals
    }
    sigset_t all;
    sigemptyset(&all);
    return sigprocmask(SIG_SETMASK, &all, NULL);
}

long sk_statfs_flags(const char *path) {
    struct statvfs st;
    if (statvfs(path, &st) < 0) return -1;
    return (long)st.f_flag;
}

int sk_thread_count(void) {
    FILE *f = fopen("/proc/self/status", "re");
    if (!f) return -1;
    char line[256];
    int n = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "Threads:", 8) == 0) {
            n = atoi(line + 8);
            break;
        }
    }
    fclose(f);
    return n;
}

long sk_getrandom(void *buf, unsigned long len) { return (long)getrandom(buf, len, 0); }
int sk_pipe2(int fds[2], int flags) { return pipe2(fds, flags); }
unsigned long sk_makedev(unsigned int major, unsigned int minor) { return (unsigned long)makedev(major, minor); }
int sk_lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags) {
    return lsetxattr(path, name, value, size, flags);
}
long sk_lgetxattr(const char *path, const char *name, void *value, size_t size) {
    return (long)lgetxattr(path, name, value, size);
}
int sk_fsetxattr(int fd, const char *name, const void *value, size_t size, int flags) {
    return fsetxattr(fd, name, value, size, flags);
}
unsigned int sk_major(unsigned long dev) { return major(dev); }
unsigned int sk_minor(unsigned long dev) { return minor(dev); }

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif

int sk_spawn_in_cgroup(unsigned long long flags, int cgroup_fd, int exec_fd, int gate_fd, const char *path, char *const argv[], char *const envp[], const int *fds, int nfds) {
    struct clone_args args;
    memset(&args, 0, sizeof args);
    args.flags = flags;
    if (cgroup_fd >= 0) {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = (uint64_t)cgroup_fd;
    }
    args.exit_signal = SIGCHLD;
    long pid = syscall(SYS_clone3, &args, sizeof args);
    if (pid != 0) return (int)pid;
    /* Child: raw system calls only, then execve (no libc state is relied on). */
    if (gate_fd >= 0) {
        char go = 0;
        long n;
        do {
            n = syscall(SYS_read, gate_fd, &go, 1);
        } while (n < 0 && errno == EINTR);
        if (n != 1 || go != 'G') _exit(125);
    }
    if (flags & CLONE_NEWUSER) {
        if (syscall(SYS_setresgid, 0, 0, 0) < 0 || syscall(SYS_setgroups, 0, NULL) < 0 ||
            syscall(SYS_setresuid, 0, 0, 0) < 0)
            _exit(125);
    }
    /* First move every source above the targets, so placing one cannot clobber another. */
    int moved[16];
    if (nfds > 16) _exit(127);
    for (int i = 0; i < nfds; i++) {
        moved[i] = fds[i] < 0 ? -1 : (int)syscall(SYS_fcntl, fds[i], F_DUPFD, 64);
    }
    if (exec_fd >= 0) exec_fd = (int)syscall(SYS_fcntl, exec_fd, F_DUPFD_CLOEXEC, 64);
    for (int i = 0; i < nfds; i++) {
        if (moved[i] >= 0) syscall(SYS_dup2, moved[i], i);
        else syscall(SYS_close, i);
    }
    if (exec_fd >= 0) {
        /* Everything above the targets closes at execve, the image's descriptor with it (it is
           read before the close; execveat of a close-on-exec descriptor only fails for scripts). */
        syscall(SYS_close_range, (unsigned)nfds, ~0U, CLOSE_RANGE_CLOEXEC);
        syscall(SYS_execveat, exec_fd, "", argv, envp, AT_EMPTY_PATH);
    } else {
        syscall(SYS_close_range, (unsigned)nfds, ~0U, 0U);
        syscall(SYS_execve, path, argv, envp);
    }
    _exit(127);
}

int sk_become_ns_root(void) {
    if (setresgid(0, 0, 0) < 0) return -1;
    if (setgroups(0, NULL) < 0) return -1;
    return setresuid(0, 0, 0);
}

int sk_ptrace_detach(int pid, int sig) {
    return (int)ptrace(PTRACE_DETACH, (pid_t)pid, NULL, (void *)(long)sig);
}

/* ---- cgroup v2 device control: a BPF_PROG_TYPE_CGROUP_DEVICE program (runc's devicefilter) ---- */
#include <linux/bpf.h>

#define SK_INSN(c, d, s, o, i) ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})

int sk_devices_bpf_attach(int cgroup_fd, const struct sk_device_rule *rules, int count) {
    /* r2 = type, r3 = access, r4 = major, r5 = minor (struct bpf_cgroup_dev_ctx); then one block
       per rule, last rule first (a later rule overrides an earlier one, as in the OCI list), each
       ending in "r0 = allow; exit"; nothing matched: deny. */
    int cap = 8 + count * 8;
    struct bpf_insn *p = calloc((size_t)cap, sizeof *p);
    if (!p) return -ENOMEM;
    int n = 0;
    p[n++] = SK_INSN(BPF_LDX | BPF_MEM | BPF_W, 2, 1, 0, 0);
    p[n++] = SK_INSN(BPF_ALU64 | BPF_AND | BPF_K, 2, 0, 0, 0xFFFF);
    p[n++] = SK_INSN(BPF_LDX | BPF_MEM | BPF_W, 3, 1, 0, 0);
    p[n++] = SK_INSN(BPF_ALU64 | BPF_RSH | BPF_K, 3, 0, 0, 16);
    p[n++] = SK_INSN(BPF_LDX | BPF_MEM | BPF_W, 4, 1, 4, 0);
    p[n++] = SK_INSN(BPF_LDX | BPF_MEM | BPF_W, 5, 1, 8, 0);
    for (int i = count - 1; i >= 0; i--) {
        const struct sk_device_rule *r = &rules[i];
        struct bpf_insn block[8];
        int b = 0;
        /* Conditions jump to the block's end (patched below). */
        if (r->type != 'a') block[b++] = SK_INSN(BPF_JMP | BPF_JNE | BPF_K, 2, 0, 0, r->type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR);
        block[b++] = SK_INSN(BPF_ALU64 | BPF_MOV | BPF_X, 1, 3, 0, 0);
        block[b++] = SK_INSN(BPF_ALU64 | BPF_AND | BPF_K, 1, 0, 0, (int)(~(unsigned)r->access & 7u));
        block[b++] = SK_INSN(BPF_JMP | BPF_JNE | BPF_K, 1, 0, 0, 0);
        if (r->major >= 0) block[b++] = SK_INSN(BPF_JMP | BPF_JNE | BPF_K, 4, 0, 0, (int)r->major);
        if (r->minor >= 0) block[b++] = SK_INSN(BPF_JMP | BPF_JNE | BPF_K, 5, 0, 0, (int)r->minor);
        block[b++] = SK_INSN(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, r->allow ? 1 : 0);
        block[b++] = SK_INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
        for (int j = 0; j < b; j++) {
            if ((block[j].code & 0xF0) == BPF_JNE && (block[j].code & 0x07) == BPF_JMP) block[j].off = (short)(b - j - 1);
            p[n++] = block[j];
        }
    }
    p[n++] = SK_INSN(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0);
    p[n++] = SK_INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);

    union bpf_attr load;
    memset(&load, 0, sizeof load);
    load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    load.insns = (uint64_t)(uintptr_t)p;
    load.insn_cnt = (uint32_t)n;
    load.license = (uint64_t)(uintptr_t)"Apache-2.0";
    int prog = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &load, sizeof load);
    int e = errno;
    free(p);
    if (prog < 0) return -e;
    union bpf_attr attach;
    memset(&attach, 0, sizeof attach);
    attach.target_fd = (uint32_t)cgroup_fd;
    attach.attach_bpf_fd = (uint32_t)prog;
    attach.attach_type = BPF_CGROUP_DEVICE;
    attach.attach_flags = 0; /* one program per cgroup: attaching again (skiff update) replaces it */
    int rc = (int)syscall(SYS_bpf, BPF_PROG_ATTACH, &attach, sizeof attach);
    e = errno;
    close(prog);
    return rc < 0 ? -e : 0;
}

/* ---- exit without waiting for the address space's teardown ---- */

/* A raw system call: the holder below runs on the caller's thread pointer (CLONE_VM without
 * CLONE_SETTLS), so it must not touch errno or any other thread-local state of libc. */
static inline long sk_raw_syscall4(long n, long a, long b, long c, long d) {
    long ret;
    register long r10 __asm__("r10") = d;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10) : "rcx", "r11", "memory");
    return ret;
}

static int sk_address_space_holder(void *arg) {
    long parent = (long)arg;
    unsigned long all = ~0UL;
    sk_raw_syscall4(SYS_rt_sigprocmask, SIG_BLOCK, (long)&all, 0, sizeof all);
    sk_raw_syscall4(SYS_close_range, 0, ~0U, 0, 0);
    sk_raw_syscall4(SYS_prctl, PR_SET_NAME, (long)"skiff-exit", 0, 0);
    sk_raw_syscall4(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0);
    if (sk_raw_syscall4(SYS_getppid, 0, 0, 0, 0) == parent)
        for (;;) sk_raw_syscall4(SYS_pause, 0, 0, 0, 0);
    for (;;) sk_raw_syscall4(SYS_exit, 0, 0, 0, 0);
    return 0;
}

static char sk_holder_stack[8192] __attribute__((aligned(64)));

/* Whether this process's children would be created in its own PID namespace. After
 * setns(CLONE_NEWPID) (skiff exec) or unshare(CLONE_NEWPID) they land in a container's: a holder
 * there would be a process inside the container with this process's capabilities, cgroup and
 * (until it dies) memory, which a workload given CAP_SYS_PTRACE could take over. Any doubt (the
 * links cannot be read, e.g. the new namespace has no init yet) counts as "no". */
static int sk_children_share_pid_namespace(void) {
    struct stat own, children;
    if (stat("/proc/self/ns/pid", &own) != 0 || stat("/proc/self/ns/pid_for_children", &children) != 0) return 0;
    return own.st_dev == children.st_dev && own.st_ino == children.st_ino;
}

int sk_hold_address_space_past_exit(void) {
    static int started;
    if (__atomic_exchange_n(&started, 1, __ATOMIC_SEQ_CST)) return -1;
    if (!sk_children_share_pid_namespace()) {
        errno = EPERM;
        return -1;
    }
    return clone(sk_address_space_holder, sk_holder_stack + sizeof sk_holder_stack, CLONE_VM | CLONE_UNTRACED,
                 (void *)(long)getpid());
}
