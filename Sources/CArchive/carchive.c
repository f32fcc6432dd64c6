#include "carchive.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

static void *libarchive(void) {
    static void *handle;
    if (!handle) {
        handle = dlopen("libarchive.so.13", RTLD_NOW | RTLD_LOCAL);
        if (!handle) {
            fprintf(stderr, "skiff: cannot load libarchive.so.13 (%s); install it: apt-get install libarchive13\n",
                    dlerror());
            exit(125);
        }
    }
    return handle;
}

static void *symbol(const char *name) {
    void *f = dlsym(libarchive(), name);
    if (!f) {
        fprintf(stderr, "skiff: libarchive.so.13 has no %s; install libarchive13 >= 3.6\n", name);
        exit(125);
    }
    return f;
}

/* One trampoline per call: resolve once, then forward. */
#define FORWARD(ret, name, params, args)                    \
    ret sk_##name params {                                  \
        static ret(*fn) params;                             \
        if (!fn) *(void **)&fn = symbol(#name);             \
        return fn args;                                     \
    }

FORWARD(struct archive *, archive_read_new, (void), ())
FORWARD(int, archive_read_support_filter_all, (struct archive * a), (a))
FORWARD(int, archive_read_support_format_raw, (struct archive * a), (a))
FORWARD(int, archive_read_support_format_tar, (struct archive * a), (a))
FORWARD(int, archive_read_support_format_gnutar, (struct archive * a), (a))
FORWARD(int, archive_read_open_filename, (struct archive * a, const char *path, size_t block), (a, path, block))
FORWARD(int, archive_read_free, (struct archive * a), (a))
FORWARD(const char *, archive_error_string, (struct archive * a), (a))
FORWARD(int, archive_read_next_header, (struct archive * a, struct archive_entry **entry), (a, entry))
FORWARD(int, archive_read_data_block, (struct archive * a, const void **buf, size_t *size, la_int64_t *offset),
        (a, buf, size, offset))
FORWARD(const char *, archive_entry_pathname, (struct archive_entry * e), (e))
FORWARD(__LA_MODE_T, archive_entry_mode, (struct archive_entry * e), (e))
FORWARD(la_int64_t, archive_entry_uid, (struct archive_entry * e), (e))
FORWARD(la_int64_t, archive_entry_gid, (struct archive_entry * e), (e))
FORWARD(la_int64_t, archive_entry_size, (struct archive_entry * e), (e))
FORWARD(time_t, archive_entry_mtime, (struct archive_entry * e), (e))
FORWARD(long, archive_entry_mtime_nsec, (struct archive_entry * e), (e))
FORWARD(int, archive_entry_atime_is_set, (struct archive_entry * e), (e))
FORWARD(time_t, archive_entry_atime, (struct archive_entry * e), (e))
FORWARD(long, archive_entry_atime_nsec, (struct archive_entry * e), (e))
FORWARD(const char *, archive_entry_hardlink, (struct archive_entry * e), (e))
FORWARD(const char *, archive_entry_symlink, (struct archive_entry * e), (e))
FORWARD(dev_t, archive_entry_rdev, (struct archive_entry * e), (e))
FORWARD(int, archive_entry_xattr_reset, (struct archive_entry * e), (e))
FORWARD(int, archive_entry_xattr_next,
        (struct archive_entry * e, const char **name, const void **value, size_t *size), (e, name, value, size))
