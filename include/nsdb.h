/* nsdb: the network core's storage, one API over SQLite and PostgreSQL. Licence: MIT.
 *
 * URL (storage.url):
 *   "sqlite:///var/lib/sigfox-ns/ns.db", "/path/ns.db" or "file.db"   SQLite (default)
 *   "sqlite::memory:"                                                  SQLite in memory
 *   "postgresql://user:pw@host:port/db", "postgres://..."              PostgreSQL (libpq)
 *
 * SQL is written once for both: placeholders `$1`, `$2`, ... (rewritten to SQLite's `?1`,
 * `?2` at prepare time), types BIGINT / INTEGER / DOUBLE PRECISION / TEXT, booleans as
 * 0/1 integers, times as DOUBLE PRECISION seconds since 1970, upserts with
 * `INSERT ... ON CONFLICT ... DO NOTHING|DO UPDATE ... RETURNING` (SQLite >= 3.35,
 * PostgreSQL >= 9.5). Values reach the database ONLY as bound parameters: never build SQL
 * from input strings. Each distinct SQL text is prepared once per connection and cached
 * (PQprepare / sqlite3_prepare_v3 PERSISTENT), so pass the same constant strings.
 *
 * Migrations (src/ns/nsdb_migrations.c): an ordered list of {version, name, sqlite, pg}.
 * nsdb_open() applies every migration whose version is above the database's, all pending
 * ones in one transaction, recording each in table ns_schema (version, name, applied_s).
 * Several processes opening one PostgreSQL database at once are serialised by an advisory
 * lock, so exactly one of them migrates.
 *   To add a migration: append an entry at the END of nsdb_migrations[] with the next
 *   version number; `pg` may be NULL when the same SQL works on both. Never edit or
 *   reorder an entry that has been released: write a new one (ALTER TABLE ...). Tables of
 *   the integrations are prefixed app_ (callbacks: app_callback_queue, ...), the core's ns_.
 *
 * Errors: every function returns >= 0 or a negative NSDB_ERR_*; nsdb_errmsg() has the
 * database's text of the last failure. NSDB_ERR_RETRY (deadlock, serialization failure,
 * SQLite busy past the timeout) means: roll back and run the transaction again.
 * NSDB_ERR_CONNECT means the server went away; the next nsdb_begin() reconnects.
 *
 * Threads: one nsdb_t per thread (open one connection per thread that needs one).
 */
#ifndef SIGFOX_NSDB_H
#define SIGFOX_NSDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum nsdb_error {
    NSDB_OK = 0,
    NSDB_ERR_ARG = -1,     /* NULL argument, bad URL, too many parameters */
    NSDB_ERR_CONNECT = -2, /* cannot open / connection lost */
    NSDB_ERR_SQL = -3,     /* the statement failed (constraint, syntax, ...) */
    NSDB_ERR_NOMEM = -4,
    NSDB_ERR_RETRY = -5,  /* deadlock / serialization failure / busy: retry the transaction */
    NSDB_ERR_SCHEMA = -6, /* the database's schema is newer than this program knows */
};
const char *nsdb_strerror(int code);

typedef enum {
    NSDB_SQLITE = 0,
    NSDB_POSTGRES = 1,
} nsdb_kind_t;

typedef enum {
    NSDB_T_NULL = 0,
    NSDB_T_INT,
    NSDB_T_REAL,
    NSDB_T_TEXT,
} nsdb_type_t;

/* One bound parameter. Text is copied by the database call, so it may be a temporary. */
typedef struct {
    nsdb_type_t type;
    int64_t i;
    double d;
    const char *s;
} nsdb_val_t;

#define NSDB_NULLV ((nsdb_val_t){.type = NSDB_T_NULL})
#define NSDB_INT(v) ((nsdb_val_t){.type = NSDB_T_INT, .i = (int64_t)(v)})
#define NSDB_REAL(v) ((nsdb_val_t){.type = NSDB_T_REAL, .d = (double)(v)})
/* Text; a NULL pointer binds SQL NULL. */
static inline nsdb_val_t nsdb_text_val(const char *s)
{
    return (nsdb_val_t){.type = s ? NSDB_T_TEXT : NSDB_T_NULL, .s = s};
}
#define NSDB_TEXT(v) nsdb_text_val(v)

#define NSDB_MAX_PARAMS 32

/* A migration step (see the file comment). */
typedef struct {
    int version;
    const char *name;
    const char *sqlite; /* SQL for SQLite (several statements allowed) */
    const char *pg;     /* SQL for PostgreSQL; NULL: the same as sqlite */
} nsdb_migration_t;

extern const nsdb_migration_t nsdb_migrations[];
extern const size_t nsdb_nmigrations;

typedef struct nsdb nsdb_t;
typedef struct nsdb_rows nsdb_rows_t;

/* Opens (creating a SQLite file if needed) and migrates. busy_timeout_ms: how long a
 * SQLite writer waits for another (0: 5000). Returns NULL with the reason in err. */
nsdb_t *nsdb_open(const char *url, int busy_timeout_ms, char *err, size_t err_len);
/* Rolls back an open transaction and closes. NULL-safe. */
void nsdb_close(nsdb_t *db);
/* The last error's text ("" when none). Valid until the next call on db. */
const char *nsdb_errmsg(const nsdb_t *db);
/* Highest applied migration version, or a negative code. */
int nsdb_schema_version(nsdb_t *db);
/* The URL with any password replaced by "***", for logs (into out). Returns out. */
char *nsdb_url_redacted(const char *url, char *out, size_t out_len);

/* Transactions (SQLite: BEGIN IMMEDIATE, so the write lock is taken at once). begin
 * reconnects first when the connection was lost. Return 0 or NSDB_ERR_*. */
int nsdb_begin(nsdb_t *db);
int nsdb_commit(nsdb_t *db);
/* Never fails from the caller's point of view (errors are logged at debug level). */
void nsdb_rollback(nsdb_t *db);

/* Runs one statement with n bound parameters. Returns the number of rows changed (>= 0)
 * or NSDB_ERR_*. Rows a statement returns (RETURNING) are discarded: use nsdb_query. */
int nsdb_exec(nsdb_t *db, const char *sql, const nsdb_val_t *params, size_t n);
/* Runs one statement and keeps its rows in *out (freed by nsdb_rows_free). Returns the
 * row count (>= 0; *out is set even for 0 rows) or NSDB_ERR_* (*out NULL). */
int nsdb_query(nsdb_t *db, const char *sql, const nsdb_val_t *params, size_t n,
               nsdb_rows_t **out);

/* Result access; row < count, col < columns, else NULL / 0. Text is valid until free. */
size_t nsdb_rows_count(const nsdb_rows_t *r);
size_t nsdb_rows_columns(const nsdb_rows_t *r);
bool nsdb_rows_isnull(const nsdb_rows_t *r, size_t row, size_t col);
const char *nsdb_rows_text(const nsdb_rows_t *r, size_t row, size_t col); /* NULL if null */
int64_t nsdb_rows_int(const nsdb_rows_t *r, size_t row, size_t col);      /* 0 if null */
double nsdb_rows_real(const nsdb_rows_t *r, size_t row, size_t col);      /* 0 if null */
void nsdb_rows_free(nsdb_rows_t *r);

/* Convenience: the first column of the first row as an integer into *v. Returns 1 (a
 * non-null value), 0 (no row or null) or NSDB_ERR_*. */
int nsdb_query_int(nsdb_t *db, const char *sql, const nsdb_val_t *params, size_t n,
                   int64_t *v);

#endif
