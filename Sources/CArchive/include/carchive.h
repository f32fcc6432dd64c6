// CArchive: libarchive, loaded on first use.
//
// Only `skiff load` reads tar archives, but linking libarchive pulls ten more shared libraries
// (libxml2, ICU, nettle, lzma, zstd, …) into every `skiff` start and slows each symbol lookup.
// These `sk_archive_*` functions have the signatures of the libarchive calls they forward to
// (archive.h, archive_entry.h); the first call dlopen()s libarchive.so.13. If it cannot be
// loaded they print what to install and exit 125.
#ifndef CARCHIVE_H
#define CARCHIVE_H

#include <archive.h>
#include <archive_entry.h>

struct archive *sk_archive_read_new(void);
int sk_archive_read_support_filter_all(struct archive *a);
int sk_archive_read_support_format_raw(struct archive *a);
int sk_archive_read_support_format_tar(struct archive *a);
int sk_archive_read_support_format_gnutar(struct archive *a);
int sk_archive_read_open_filename(struct archive *a, const char *path, size_t block);
int sk_archive_read_free(struct archive *a);
const char *sk_archive_error_string(struct archive *a);
int sk_archive_read_next_header(struct archive *a, struct archive_entry **entry);
int sk_archive_read_data_block(struct archive *a, const void **buf, size_t *size, la_int64_t *offset);

const char *sk_archive_entry_pathname(struct archive_entry *e);
__LA_MODE_T sk_archive_entry_mode(struct archive_entry *e);
la_int64_t sk_archive_entry_uid(struct archive_entry *e);
la_int64_t sk_archive_entry_gid(struct archive_entry *e);
la_int64_t sk_archive_entry_size(struct archive_entry *e);
time_t sk_archive_entry_mtime(struct archive_entry *e);
long sk_archive_entry_mtime_nsec(struct archive_entry *e);
int sk_archive_entry_atime_is_set(struct archive_entry *e);
time_t sk_archive_entry_atime(struct archive_entry *e);
long sk_archive_entry_atime_nsec(struct archive_entry *e);
const char *sk_archive_entry_hardlink(struct archive_entry *e);
const char *sk_archive_entry_symlink(struct archive_entry *e);
dev_t sk_archive_entry_rdev(struct archive_entry *e);
int sk_archive_entry_xattr_reset(struct archive_entry *e);
int sk_archive_entry_xattr_next(struct archive_entry *e, const char **name, const void **value, size_t *size);

#endif
