#define _GNU_SOURCE
#include "skharden.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mountdefs.h"

/* overlayfs lowerdir syntax: ':' separates layers, so ':' and '\' in a path are escaped. */
static int append_escaped(char *out, size_t cap, size_t *len, const char *s) {
    for (; *s; s++) {
        if (*s == ':' || *s == '\\') {
            if (*len + 1 >= cap) return -1;
            out[(*len)++] = '\\';
        }
        if (*len + 1 >= cap) return -1;
        out[(*len)++] = *s;
    }
    out[*len] = 0;
    return 0;
}

int sk_exe_overlay(const char *dir, const char *dummy, const char *name) {
    char lower[8192];
    size_t len = 0;
    lower[0] = 0;
    if (append_escaped(lower, sizeof lower, &len, dir) < 0 || len + 2 >= sizeof lower) {
        errno = ENAMETOOLONG;
        return -1;
    }
    lower[len++] = ':';
    lower[len] = 0;
    if (append_escaped(lower, sizeof lower, &len, dummy) < 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int ctx = (int)syscall(SYS_fsopen, "overlay", SK_FSOPEN_CLOEXEC);
    if (ctx < 0) return -1;
    int mnt = -1, fd = -1, saved;
    if (syscall(SYS_fsconfig, ctx, SK_FSCONFIG_SET_STRING, "lowerdir", lower, 0) < 0) goto out;
    (void)syscall(SYS_fsconfig, ctx, SK_FSCONFIG_SET_STRING, "xino", "off", 0);  // no dmesg noise
    if (syscall(SYS_fsconfig, ctx, SK_FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) goto out;
    mnt = (int)syscall(
        SYS_fsmount, ctx, SK_FSMOUNT_CLOEXEC, SK_MOUNT_ATTR_RDONLY | SK_MOUNT_ATTR_NOSUID | SK_MOUNT_ATTR_NODEV);
    if (mnt < 0) goto out;
    fd = openat(mnt, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
out:
    saved = errno;
    if (mnt >= 0) close(mnt);
    close(ctx);
    errno = saved;
    return fd;
}

int sk_memfd_copy(int src, const char *name) {
    struct stat st;
    if (fstat(src, &st) < 0) return -1;
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) return -1;
    off_t off = 0;
    while (off < st.st_size) {
        ssize_t n = sendfile(fd, src, &off, (size_t)(st.st_size - off));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            int saved = n < 0 ? errno : EIO;
            close(fd);
            errno = saved;
            return -1;
        }
    }
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int sk_get_seals(int fd) {
    int s = fcntl(fd, F_GET_SEALS);
    return s < 0 ? 0 : s;
}
int sk_seals_write(int seals) { return (seals & F_SEAL_WRITE) != 0; }

long sk_fstatfs_type(int fd) {
    struct statfs st;
    if (fstatfs(fd, &st) < 0) return -1;
    return (long)st.f_type;
}

long sk_fstatvfs_flags(int fd) {
    struct statvfs st;
    if (fstatvfs(fd, &st) < 0) return -1;
    return (long)st.f_flag;
}

int sk_setrlimit(int resource, uint64_t soft, uint64_t hard) { return sk_prlimit(0, resource, soft, hard); }

int sk_prlimit(int pid, int resource, uint64_t soft, uint64_t hard) {
    struct rlimit rl;
    rl.rlim_cur = soft == UINT64_MAX ? RLIM_INFINITY : (rlim_t)soft;
    rl.rlim_max = hard == UINT64_MAX ? RLIM_INFINITY : (rlim_t)hard;
    return prlimit((pid_t)pid, (__rlimit_resource_t)resource, &rl, NULL);
}
