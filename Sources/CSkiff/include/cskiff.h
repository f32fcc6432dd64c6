// CSkiff: the thin C shim. Only what Swift cannot import from Glibc:
// variadic calls (syscall, prctl), _GNU_SOURCE symbols (unshare, setns, CLONE_NEW*),
// function-like macros (W*, ioctl numbers) and SCM_RIGHTS cmsg handling.
// Every function returns -1 and leaves errno set on failure, like the call it wraps.
#ifndef CSKIFF_H
#define CSKIFF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <signal.h>
#include <termios.h>
#include <sys/ioctl.h>

#include "skharden.h"
#include "skmount.h"

/* Namespace flags from <sched.h> (_GNU_SOURCE only). Values: linux/sched.h. */
extern const int SK_CLONE_NEWNS;
extern const int SK_CLONE_NEWUTS;
extern const int SK_CLONE_NEWIPC;
extern const int SK_CLONE_NEWNET;
extern const int SK_CLONE_NEWPID;
extern const int SK_CLONE_NEWCGROUP;
extern const int SK_CLONE_NEWUSER;
extern const int SK_CLONE_NEWTIME;

/* open(2) flags and *at(2) flags behind _GNU_SOURCE. */
extern const int SK_O_PATH;
extern const int SK_AT_EMPTY_PATH;

/* openat2(2) resolve flags, linux/openat2.h. */
extern const uint64_t SK_RESOLVE_NO_XDEV;
extern const uint64_t SK_RESOLVE_NO_MAGICLINKS;
extern const uint64_t SK_RESOLVE_NO_SYMLINKS;
extern const uint64_t SK_RESOLVE_BENEATH;
extern const uint64_t SK_RESOLVE_IN_ROOT;

int sk_unshare(int flags);
int sk_setns(int fd, int nstype);
int sk_pivot_root(const char *new_root, const char *put_old);
int sk_pidfd_open(pid_t pid, unsigned int flags);
int sk_pidfd_send_signal(int pidfd, int sig);
/* pidfd_send_signal(2) with a siginfo of code SI_QUEUE carrying `value` (as sigqueue(3) would),
 * so the receiver's sigwaitinfo(2) can tell it from a plain kill. */
int sk_pidfd_send_signal_value(int pidfd, int sig, int value);
/* sigtimedwait(2) on `set` for at most `timeout_ms` (negative: no limit). Returns the signal, 0 on
 * timeout, -1 with errno; `*queued` is 1 and `*value` the value when the sender used SI_QUEUE. */
int sk_sigwait_queued(const sigset_t *set, long timeout_ms, int *queued, int *value);
/// The calling thread's kernel thread ID (gettid(2)).
int sk_gettid(void);
/// tgkill(2): sends `sig` to thread `tid` of thread group `tgid`; -1 with errno (ESRCH when gone).
int sk_tgkill(int tgid, int tid, int sig);
/* Starts a process that shares this one's address space (CLONE_VM, its own copy of no file
 * descriptors: it closes them all) and lives until this thread exits (PR_SET_PDEATHSIG SIGKILL),
 * so that the address space is torn down when the holder dies, after this process has been
 * reaped, instead of inside this process's exit. Call once, right before _exit, from the thread
 * that exits. None is started (-1, EPERM) when this process's children would go to another PID
 * namespace (after setns or unshare of CLONE_NEWPID): the holder would be a host-privileged
 * process inside the container. Returns the holder's PID, or -1 (errno) when none was started. */
int sk_hold_address_space_past_exit(void);
/* ptrace(PTRACE_DETACH, pid, 0, sig): lets a tracee that made its parent its tracer
   (PTRACE_TRACEME) go on untraced, with the signal that stopped it. */
int sk_ptrace_detach(int pid, int sig);
int sk_close_range_cloexec(unsigned int first);
/* Closes every descriptor from 3 up except `keep` (close_range(2)). */
int sk_close_from3_except(int keep);
int sk_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve);
int sk_memfd_create(const char *name, unsigned int flags);
int sk_seal_memfd(int fd);
int sk_execveat_empty(int fd, char *const argv[], char *const envp[]);
int sk_dup3(int oldfd, int newfd, int flags);

/* prctl(2) wrappers. */
int sk_set_pdeathsig(int sig);
int sk_set_child_subreaper(void);
int sk_set_dumpable(int on);
int sk_set_no_new_privs(void);
int sk_set_name(const char *name);

/* wait(2) status macros. */
int sk_wifexited(int status);
int sk_wexitstatus(int status);
int sk_wifsignaled(int status);
int sk_wtermsig(int status);

/* Terminals: TIOCGPTPEER (linux >= 4.13) opens the pty peer of a ptmx master without a path. */
int sk_unlockpt(int master);
int sk_ptmx_peer(int master);
int sk_set_ctty(int fd);
int sk_get_winsize(int fd, unsigned short *rows, unsigned short *cols);
int sk_set_winsize(int fd, unsigned short rows, unsigned short cols);
int sk_make_raw(int fd, struct termios *saved);
int sk_restore_termios(int fd, const struct termios *saved);

/* SCM_RIGHTS over a unix socket: one fd per message. */
int sk_send_fd(int sock, int fd);
int sk_recv_fd(int sock);

/* Bring loopback up in the current network namespace (SIOCSIFFLAGS IFF_UP on "lo"). */
int sk_loopback_up(void);

/* signalfd(2) for the given signals (terminated by 0); also blocks them. */
int sk_signalfd(const int *signals);
/* Reads one signalfd_siginfo; returns the signal number or -1. */
int sk_signalfd_read(int fd);
/* Unblock every signal and reset handled ones to default (child side before execve). */
int sk_reset_signals(void);

/* statfs f_flags for remounts (ST_* / MS_* compatible). */
long sk_statfs_flags(const char *path);

/* lsetxattr(2), fsetxattr(2), lgetxattr(2) (<sys/xattr.h> is not in Swift's Glibc module). */
int sk_lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags);
long sk_lgetxattr(const char *path, const char *name, void *value, size_t size);
int sk_fsetxattr(int fd, const char *name, const void *value, size_t size, int flags);

/* pipe2(2) (glibc: _GNU_SOURCE) and makedev(3). */
int sk_pipe2(int fds[2], int flags);
unsigned long sk_makedev(unsigned int major, unsigned int minor);
unsigned int sk_major(unsigned long dev);
unsigned int sk_minor(unsigned long dev);

/* getrandom(2): fills buf; returns bytes written or -1. */
long sk_getrandom(void *buf, unsigned long len);

/* Starts `path` (argv, envp) as a new process born in the cgroup v2 directory `cgroup_fd`
   (clone3(CLONE_INTO_CGROUP | flags), Linux 5.7, e.g. flags CLONE_NEWPID to make it PID 1 of a new
   PID namespace; no cgroup.procs migration, so no wait for the migration lock's RCU grace period).
   With `cgroup_fd` < 0 the process is born in the caller's cgroups (no CLONE_INTO_CGROUP). The
   child, a copy of the caller, runs only the C code of this function: when `gate_fd` >= 0 it first
   reads one byte from it and exits 125 unless the byte is 'G'; with CLONE_NEWUSER in `flags` it
   then becomes root of its user namespace (setresgid, setgroups to none, setresuid to 0: the
   parent must have written uid_map and gid_map before sending 'G', or execve would drop every
   capability); it places fds[i] at descriptor i for i < nfds, closes the rest and execve()s
   `path`, or, when exec_fd >= 0, execveat()s that descriptor (AT_EMPTY_PATH; e.g. the read-only
   image of skiff, see SelfExe) and ignores `path`.
   Returns the child's pid, or -1 with errno (ENOSYS/EINVAL when clone3 or CLONE_INTO_CGROUP is
   missing: use fork). The child exits 127 if execve fails. */
int sk_spawn_in_cgroup(unsigned long long flags, int cgroup_fd, int exec_fd, int gate_fd, const char *path, char *const argv[], char *const envp[], const int *fds, int nfds);

/* setresgid(0,0,0), setgroups(0, NULL), setresuid(0,0,0): after setns(CLONE_NEWUSER) the caller
   keeps its host ids, which the namespace does not map; this makes it the namespace's root (the
   host ids its uid_map and gid_map give 0). */
int sk_become_ns_root(void);

/* Number of threads of the calling process (from /proc/self/status), -1 on error. */
int sk_thread_count(void);


/* One rule of a container's device list (runtime-spec linux.resources.devices): type 'a', 'c'
   or 'b'; major/minor -1 for any; access a mask of 1 mknod, 2 read, 4 write (BPF_DEVCG_ACC_*). */
struct sk_device_rule {
    int allow;
    char type;
    long long major;
    long long minor;
    int access;
};
/* Loads a BPF_PROG_TYPE_CGROUP_DEVICE program that applies `rules` (later rules override earlier
   ones; nothing matched: deny) and attaches it to the cgroup v2 directory `cgroup_fd`
   (BPF_CGROUP_DEVICE, no flags: a second attach replaces the first): cgroup v2's device control,
   as runc's devicefilter.
   Returns 0 or -errno (EPERM without CAP_SYS_ADMIN/CAP_BPF, EINVAL from the verifier). */
int sk_devices_bpf_attach(int cgroup_fd, const struct sk_device_rule *rules, int count);

#endif

/* execve(2) with a PATH search like execvpe, using `path` (the container's PATH) instead of the
   caller's. Returns only on failure, with errno set to the most telling error: ENOENT when no
   candidate exists, EACCES when one exists but cannot be executed. */
int sk_exec_path(const char *file, char *const argv[], char *const envp[], const char *path);

/* Overwrites this process's argument and environment areas (/proc/self/stat fields 48-51,
   proc_pid_stat(5)) so /proc/PID/cmdline reads `title` and /proc/PID/environ is empty: a forked
   copy of skiff must not show the host's command line or environment to the workload. */
int sk_set_cmdline(const char *title);

/* The minimal PID 1 for `run --init`, in the style of tini: forks, the child execs `file` through
   sk_exec_path (on failure it writes 'X' and errno as 4 bytes to `errfd` and exits 127/126); PID 1 forwards
   every catchable signal to the child, reaps every zombie, and returns the child's wait status once
   the child exits. `errfd` is closed in PID 1 after the fork. Never returns on fork failure: -1. */
int sk_init_run(const char *file, char *const argv[], char *const envp[], const char *path, int errfd);

/* Installs a classic-BPF seccomp filter of `count` instructions (struct sock_filter, native endian)
   for the calling thread: prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER) when `flags` is 0, else
   seccomp(SECCOMP_SET_MODE_FILTER, flags) (SECCOMP_FILTER_FLAG_LOG 2, _SPEC_ALLOW 4). Needs
   no_new_privs or CAP_SYS_ADMIN. Returns 0, or -1 with errno. */
int sk_seccomp_set_filter(const void *insns, unsigned int count, unsigned int flags);

/* prctl(PR_SET_KEEPCAPS, on): keep the permitted capabilities across setuid() away from root. */
int sk_set_keepcaps(int on);
