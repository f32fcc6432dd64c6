#define _GNU_SOURCE
#include "skmount.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mountdefs.h"

const uint64_t SK_MOUNT_ATTR_RDONLY_BIT = SK_MOUNT_ATTR_RDONLY;
const uint64_t SK_MOUNT_ATTR_NOSUID_BIT = SK_MOUNT_ATTR_NOSUID;
const uint64_t SK_MOUNT_ATTR_NODEV_BIT = SK_MOUNT_ATTR_NODEV;

/* struct mount_attr (linux/mount.h, MOUNT_ATTR_SIZE_VER0). */
struct sk_mount_attr {
    uint64_t attr_set;
    uint64_t attr_clr;
    uint64_t propagation;
    uint64_t userns_fd;
};

int sk_open_tree_clone(const char *path, int recursive) {
    unsigned flags = SK_OPEN_TREE_CLONE | SK_OPEN_TREE_CLOEXEC | (recursive ? SK_AT_RECURSIVE : 0);
    return (int)syscall(SYS_open_tree, AT_FDCWD, path, flags);
}

int sk_mount_setattr_idmap(int fd, int userns_fd) {
    struct sk_mount_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.attr_set = SK_MOUNT_ATTR_IDMAP;
    attr.userns_fd = (uint64_t)userns_fd;
    return (int)syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH, &attr, sizeof attr);
}

int sk_fsopen(const char *fstype) { return (int)syscall(SYS_fsopen, fstype, SK_FSOPEN_CLOEXEC); }

int sk_fsconfig_string(int fs, const char *key, const char *value) {
    return (int)syscall(SYS_fsconfig, fs, SK_FSCONFIG_SET_STRING, key, value, 0);
}

int sk_fsconfig_fd(int fs, const char *key, int fd) {
    return (int)syscall(SYS_fsconfig, fs, SK_FSCONFIG_SET_FD, key, NULL, fd);
}

int sk_fsconfig_create(int fs) { return (int)syscall(SYS_fsconfig, fs, SK_FSCONFIG_CMD_CREATE, NULL, NULL, 0); }

int sk_fsmount(int fs, uint64_t attrs) { return (int)syscall(SYS_fsmount, fs, SK_FSMOUNT_CLOEXEC, attrs); }

int sk_fs_log(int fs, char *buf, size_t size) {
    if (size == 0) return 0;
    size_t len = 0;
    char line[512];
    int saved = errno;
    for (;;) {
        ssize_t n = read(fs, line, sizeof line - 1);
        if (n <= 0) break; /* ENODATA: the log is empty */
        line[n] = 0;
        /* Each message is "e overlay: text", "w ..." or "i ...": keep the text. */
        const char *text = (n > 2 && line[1] == ' ') ? line + 2 : line;
        size_t tlen = strlen(text);
        while (tlen > 0 && text[tlen - 1] == '\n') tlen--;
        if (len > 0 && len + 2 < size) {
            memcpy(buf + len, "; ", 2);
            len += 2;
        }
        if (len + tlen >= size) tlen = size - len - 1;
        memcpy(buf + len, text, tlen);
        len += tlen;
    }
    buf[len] = 0;
    errno = saved;
    return (int)len;
}

int sk_move_mount_to(int fd, const char *to) {
    return (int)syscall(SYS_move_mount, fd, "", AT_FDCWD, to, SK_MOVE_MOUNT_F_EMPTY_PATH);
}
