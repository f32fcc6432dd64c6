/* Seccomp filter installation and PR_SET_KEEPCAPS: prctl(2) and seccomp(2) are variadic or
   raw syscalls that Swift cannot call. */
#define _GNU_SOURCE
#include "cskiff.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int sk_seccomp_set_filter(const void *insns, unsigned int count, unsigned int flags) {
    if (count == 0 || count > BPF_MAXINSNS) {
        errno = EINVAL;
        return -1;
    }
    struct sock_fprog prog = {.len = (unsigned short)count, .filter = (struct sock_filter *)insns};
    if (flags == 0) return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
}

int sk_set_keepcaps(int on) { return prctl(PR_SET_KEEPCAPS, on ? 1 : 0, 0, 0, 0); }
