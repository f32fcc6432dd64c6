/* The new mount API's system call numbers and constants (linux/mount.h, x86-64 and the generic
   table share these numbers), spelled out: including linux/mount.h next to glibc's <sys/mount.h>
   clashes on older glibc. Private to CSkiff's C files. */
#ifndef SK_MOUNTDEFS_H
#define SK_MOUNTDEFS_H

#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_fsopen
#define SYS_fsopen 430
#endif
#ifndef SYS_fsconfig
#define SYS_fsconfig 431
#endif
#ifndef SYS_fsmount
#define SYS_fsmount 432
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif

#define SK_OPEN_TREE_CLONE 1
#define SK_OPEN_TREE_CLOEXEC 02000000 /* O_CLOEXEC */
#define SK_AT_RECURSIVE 0x8000
#define SK_MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#define SK_FSOPEN_CLOEXEC 0x1
#define SK_FSCONFIG_SET_STRING 1
#define SK_FSCONFIG_SET_FD 5
#define SK_FSCONFIG_CMD_CREATE 6
#define SK_FSMOUNT_CLOEXEC 0x1
#define SK_MOUNT_ATTR_RDONLY 0x1
#define SK_MOUNT_ATTR_NOSUID 0x2
#define SK_MOUNT_ATTR_NODEV 0x4
#define SK_MOUNT_ATTR_IDMAP 0x00100000

#endif
