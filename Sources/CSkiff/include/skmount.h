// CSkiff, the new mount API (Linux 5.2; mount_setattr 5.12) as raw system calls, for the idmapped
// root filesystem of a container in a user namespace. Same conventions as cskiff.h: -1 and errno
// on failure; every descriptor returned is close-on-exec.
#ifndef SKMOUNT_H
#define SKMOUNT_H

#include <stddef.h>
#include <stdint.h>

/* mount_setattr(2) attribute bits (linux/mount.h MOUNT_ATTR_*). */
extern const uint64_t SK_MOUNT_ATTR_RDONLY_BIT;
extern const uint64_t SK_MOUNT_ATTR_NOSUID_BIT;
extern const uint64_t SK_MOUNT_ATTR_NODEV_BIT;

/* open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC [| AT_RECURSIVE]): a detached copy
   of the mount at `path` (a bind mount not attached anywhere yet). */
int sk_open_tree_clone(const char *path, int recursive);

/* mount_setattr(fd, "", AT_EMPTY_PATH, {MOUNT_ATTR_IDMAP, userns_fd}): makes the detached mount
   `fd` show and store ids through the mappings of the user namespace `userns_fd` (Linux 5.12; the
   filesystem must support idmapped mounts, FS_ALLOW_IDMAP). */
int sk_mount_setattr_idmap(int fd, int userns_fd);

/* fsopen(fstype, FSOPEN_CLOEXEC): a filesystem context. */
int sk_fsopen(const char *fstype);
/* fsconfig(fs, FSCONFIG_SET_STRING, key, value, 0). */
int sk_fsconfig_string(int fs, const char *key, const char *value);
/* fsconfig(fs, FSCONFIG_SET_FD, key, NULL, fd): overlayfs takes layers as descriptors
   (lowerdir+, upperdir, workdir) since Linux 6.13. */
int sk_fsconfig_fd(int fs, const char *key, int fd);
/* fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0): creates the superblock. */
int sk_fsconfig_create(int fs);
/* fsmount(fs, FSMOUNT_CLOEXEC, attrs): a detached mount of the context's superblock. */
int sk_fsmount(int fs, uint64_t attrs);
/* Reads the context's message log (what the filesystem said about a failed fsconfig) into `buf`
   as "line; line"; returns its length (0 when there is none). */
int sk_fs_log(int fs, char *buf, size_t size);

/* move_mount(fd, "", AT_FDCWD, to, MOVE_MOUNT_F_EMPTY_PATH): attaches the detached mount `fd` at
   the path `to` in the caller's mount namespace. */
int sk_move_mount_to(int fd, const char *to);

#endif
