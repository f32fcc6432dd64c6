#include <sqlite3.h>
/// SQLITE_TRANSIENT is a function-like cast macro Swift cannot import.
static inline sqlite3_destructor_type skiff_sqlite_transient(void) { return SQLITE_TRANSIENT; }
/// Keeps the -wal file after the last connection closes (SQLITE_FCNTL_PERSIST_WAL): short-lived
/// `skiff` processes then reuse it instead of creating, fsyncing its directory and deleting it
/// each time. The closing connection still checkpoints, and `journal_size_limit` truncates it.
static inline void skiff_sqlite_persist_wal(sqlite3 *db) {
    int on = 1;
    sqlite3_file_control(db, "main", SQLITE_FCNTL_PERSIST_WAL, &on);
}
