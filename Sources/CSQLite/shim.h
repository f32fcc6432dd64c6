#include <sqlite3.h>
/// SQLITE_TRANSIENT is a function-like cast macro Swift cannot import.
static inline sqlite3_destructor_type skiff_sqlite_transient(void) { return SQLITE_TRANSIENT; }
/// Keeps the -wal file after the last connection closes (SQLITE_FCNTL_PERSIST_WAL): short-lived
/// `skiff` processes then reuse it instead of creating, fsyncing its directory and deleting it
/// each time (see also skiff_sqlite_no_checkpoint_on_close and Database.init).
static inline void skiff_sqlite_persist_wal(sqlite3 *db) {
    int on = 1;
    sqlite3_file_control(db, "main", SQLITE_FCNTL_PERSIST_WAL, &on);
}
/// SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE (sqlite3_db_config is variadic): the last connection to close
/// leaves the WAL as it is instead of checkpointing it (see Database.init).
static inline int skiff_sqlite_no_checkpoint_on_close(sqlite3 *db) {
    return sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)0);
}
