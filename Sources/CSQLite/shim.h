#include <sqlite3.h>
/// SQLITE_TRANSIENT is a function-like cast macro Swift cannot import.
static inline sqlite3_destructor_type skiff_sqlite_transient(void) { return SQLITE_TRANSIENT; }
/// Keeps the -wal and -shm files after the last connection closes (SQLITE_FCNTL_PERSIST_WAL),
/// and skips the checkpoint on close (SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE): each short-lived `skiff`
/// process would otherwise checkpoint, fsync and delete them, and the next one recreate them.
static inline void skiff_sqlite_keep_wal(sqlite3 *db) {
    int on = 1;
    sqlite3_file_control(db, "main", SQLITE_FCNTL_PERSIST_WAL, &on);
    sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)0);
}
