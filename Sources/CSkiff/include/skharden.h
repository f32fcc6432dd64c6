// CSkiff, hardening calls: the read-only image of the runtime binary (CVE-2019-5736), rlimits,
// and the checks that tell procfs and sealed files apart. Same conventions as cskiff.h: -1 and
// errno on failure.
#ifndef SKHARDEN_H
#define SKHARDEN_H

#include <stdint.h>

/* An O_PATH descriptor of `dir`/`name` seen through a new overlayfs that has only lower layers
   (`dir` on top of the empty `dummy` directory), created with fsopen(2)/fsmount(2) and never
   attached to any mount tree: the file cannot be written through it (the superblock is read-only
   and there is no upper layer to copy up into), and no path reaches the mount. runc's exeseal
   does the same (Linux 5.2 for the mount API; needs CAP_SYS_ADMIN). */
int sk_exe_overlay(const char *dir, const char *dummy, const char *name);

/* A sealed memfd copy of the file open at `fd` (F_SEAL_SEAL|SHRINK|GROW|WRITE; MFD_CLOEXEC):
   runc's and crun's fallback when overlayfs is not available. Costs the file's size in memory. */
int sk_memfd_copy(int fd, const char *name);

/* fcntl(F_GET_SEALS); 0 for files that cannot be sealed. */
int sk_get_seals(int fd);
/* 1 when the seals include F_SEAL_WRITE. */
int sk_seals_write(int seals);

/* fstatfs(2) f_type of `fd` (PROC_SUPER_MAGIC 0x9fa0, SYSFS_MAGIC 0x62656572, …), -1 on error. */
long sk_fstatfs_type(int fd);
/* fstatvfs(2) f_flag of `fd` (ST_RDONLY = 1), -1 on error. */
long sk_fstatvfs_flags(int fd);

/* setrlimit(2) for resource number `resource` (RLIMIT_NOFILE = 7, …); UINT64_MAX is
   RLIM_INFINITY. */
int sk_setrlimit(int resource, uint64_t soft, uint64_t hard);
/* prlimit(2) of process `pid` (0: the caller), same arguments. Raising a hard limit needs
   CAP_SYS_RESOURCE in the initial user namespace, so for a process in its own user namespace the
   host side sets its limits this way. */
int sk_prlimit(int pid, int resource, uint64_t soft, uint64_t hard);

#endif
