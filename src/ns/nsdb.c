/* nsdb: one storage API over SQLite and PostgreSQL (see include/nsdb.h). Licence: MIT. */
#include "nsdb.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "errbuf.h"
#include "log.h"

#define DEFAULT_BUSY_MS 5000
#define MIGRATION_LOCK_KEY 0x5f6e7364 /* pg_advisory_xact_lock key for migrations */
#define SQL_MAX_BYTES 65536

typedef struct {
    char *sql;
    uint64_t hash;
    sqlite3_stmt *stmt; /* SQLite */
    char name[16];      /* PostgreSQL prepared statement */
} stmt_entry_t;

struct nsdb {
    nsdb_kind_t kind;
    sqlite3 *lite;
    PGconn *pg;
    bool in_tx;
    stmt_entry_t *stmts;
    size_t nstmts, cap_stmts;
    unsigned next_name;
    char errmsg[512];
};

typedef struct {
    bool null;
    nsdb_type_t type;
    int64_t i;
    double d;
    char *text;
} cell_t;

struct nsdb_rows {
    size_t nrows, ncols;
    cell_t *cells;
};

const char *nsdb_strerror(int code)
{
    switch (code) {
    case NSDB_OK:
        return "success";
    case NSDB_ERR_ARG:
        return "invalid argument";
    case NSDB_ERR_CONNECT:
        return "database connection failed";
    case NSDB_ERR_SQL:
        return "SQL statement failed";
    case NSDB_ERR_NOMEM:
        return "out of memory";
    case NSDB_ERR_RETRY:
        return "transaction conflict, retry";
    case NSDB_ERR_SCHEMA:
        return "database schema is newer than this program";
    default:
        return "unknown error";
    }
}

static void set_err(nsdb_t *db, const char *fmt, const char *detail)
{
    snprintf(db->errmsg, sizeof db->errmsg, fmt, detail ? detail : "");
    /* libpq messages end with a newline: keep log lines on one line */
    for (char *p = db->errmsg; *p; p++) {
        if (*p == '\n' || *p == '\r')
            *p = *(p + 1) ? ' ' : '\0';
    }
}

const char *nsdb_errmsg(const nsdb_t *db)
{
    return db ? db->errmsg : "";
}

char *nsdb_url_redacted(const char *url, char *out, size_t out_len)
{
    if (!out || out_len == 0)
        return out;
    snprintf(out, out_len, "%s", url ? url : "");
    char *scheme = strstr(out, "://");
    if (!scheme)
        return out;
    char *at = strchr(scheme + 3, '@');
    char *colon = strchr(scheme + 3, ':');
    if (at && colon && colon < at) {
        char rest[1024];
        snprintf(rest, sizeof rest, "%s", at);
        snprintf(colon, out_len - (size_t)(colon - out), ":***%s", rest);
    }
    return out;
}

/* A REAL column read as an integer: truncated toward zero, saturated at the int64 range
 * (a double outside it has no defined conversion; NaN gives 0). */
static int64_t real_to_int(double d)
{
    if (isnan(d))
        return 0;
    if (d >= 9223372036854775807.0)
        return INT64_MAX;
    if (d <= -9223372036854775808.0)
        return INT64_MIN;
    return (int64_t)d;
}

static uint64_t hash_sql(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void clear_stmts(nsdb_t *db)
{
    for (size_t i = 0; i < db->nstmts; i++) {
        if (db->stmts[i].stmt)
            sqlite3_finalize(db->stmts[i].stmt);
        free(db->stmts[i].sql);
    }
    db->nstmts = 0;
}

/* `$N` -> `?N` for SQLite. The SQL is the program's own constant text, never input. */
static char *sqlite_sql(const char *sql)
{
    char *out = strdup(sql);
    if (!out)
        return NULL;
    for (char *p = out; *p; p++) {
        if (*p == '$' && isdigit((unsigned char)p[1]))
            *p = '?';
    }
    return out;
}

static int pg_classify(nsdb_t *db, PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    set_err(db, "%s", res ? PQresultErrorMessage(res) : PQerrorMessage(db->pg));
    if (PQstatus(db->pg) != CONNECTION_OK)
        return NSDB_ERR_CONNECT;
    if (state && (!strcmp(state, "40001") || !strcmp(state, "40P01")))
        return NSDB_ERR_RETRY;
    if (state && (!strncmp(state, "08", 2) || !strncmp(state, "57P", 3)))
        return NSDB_ERR_CONNECT;
    if (!state && !res)
        return NSDB_ERR_CONNECT;
    return NSDB_ERR_SQL;
}

static int lite_classify(nsdb_t *db, int rc)
{
    set_err(db, "%s", sqlite3_errmsg(db->lite));
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
        return NSDB_ERR_RETRY;
    if (rc == SQLITE_NOMEM)
        return NSDB_ERR_NOMEM;
    return NSDB_ERR_SQL;
}

/* The cached statement for sql, preparing it on first use. */
static stmt_entry_t *get_stmt(nsdb_t *db, const char *sql, int *code)
{
    uint64_t h = hash_sql(sql);
    for (size_t i = 0; i < db->nstmts; i++) {
        if (db->stmts[i].hash == h && !strcmp(db->stmts[i].sql, sql))
            return &db->stmts[i];
    }
    if (strlen(sql) > SQL_MAX_BYTES) {
        *code = NSDB_ERR_ARG;
        return NULL;
    }
    if (db->nstmts == db->cap_stmts) {
        size_t cap = db->cap_stmts ? 2 * db->cap_stmts : 32;
        stmt_entry_t *n = realloc(db->stmts, cap * sizeof *n);
        if (!n) {
            *code = NSDB_ERR_NOMEM;
            return NULL;
        }
        db->stmts = n;
        db->cap_stmts = cap;
    }
    stmt_entry_t e = {.hash = h, .sql = strdup(sql)};
    if (!e.sql) {
        *code = NSDB_ERR_NOMEM;
        return NULL;
    }
    if (db->kind == NSDB_SQLITE) {
        char *lsql = sqlite_sql(sql);
        if (!lsql) {
            free(e.sql);
            *code = NSDB_ERR_NOMEM;
            return NULL;
        }
        int rc = sqlite3_prepare_v3(db->lite, lsql, -1, SQLITE_PREPARE_PERSISTENT, &e.stmt, NULL);
        free(lsql);
        if (rc != SQLITE_OK) {
            *code = lite_classify(db, rc);
            free(e.sql);
            return NULL;
        }
    } else {
        snprintf(e.name, sizeof e.name, "s%u", db->next_name++);
        PGresult *res = PQprepare(db->pg, e.name, sql, 0, NULL);
        if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) {
            *code = pg_classify(db, res);
            PQclear(res);
            free(e.sql);
            return NULL;
        }
        PQclear(res);
    }
    db->stmts[db->nstmts] = e;
    return &db->stmts[db->nstmts++];
}

static void rows_free_cells(nsdb_rows_t *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nrows * r->ncols; i++)
        free(r->cells[i].text);
    free(r->cells);
    r->cells = NULL;
}

void nsdb_rows_free(nsdb_rows_t *r)
{
    rows_free_cells(r);
    free(r);
}

static int rows_grow(nsdb_rows_t *r, size_t *cap)
{
    if (r->nrows < *cap)
        return 0;
    size_t ncap = *cap ? 2 * *cap : 8;
    cell_t *n = realloc(r->cells, ncap * (r->ncols ? r->ncols : 1) * sizeof *n);
    if (!n)
        return -1;
    r->cells = n;
    *cap = ncap;
    return 0;
}

static int lite_run(nsdb_t *db, const char *sql, const nsdb_val_t *params, size_t n,
                    nsdb_rows_t *rows)
{
    int code = 0;
    stmt_entry_t *e = get_stmt(db, sql, &code);
    if (!e)
        return code;
    sqlite3_stmt *st = e->stmt;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if ((int)n > sqlite3_bind_parameter_count(st)) {
        set_err(db, "%s", "more parameters than placeholders");
        return NSDB_ERR_ARG;
    }
    for (size_t i = 0; i < n; i++) {
        int rc = SQLITE_OK, idx = (int)i + 1;
        switch (params[i].type) {
        case NSDB_T_NULL:
            rc = sqlite3_bind_null(st, idx);
            break;
        case NSDB_T_INT:
            rc = sqlite3_bind_int64(st, idx, params[i].i);
            break;
        case NSDB_T_REAL:
            rc = sqlite3_bind_double(st, idx, params[i].d);
            break;
        case NSDB_T_TEXT:
            rc = sqlite3_bind_text(st, idx, params[i].s, -1, SQLITE_TRANSIENT);
            break;
        }
        if (rc != SQLITE_OK)
            return lite_classify(db, rc);
    }
    size_t cap = 0;
    sqlite3_int64 before = sqlite3_total_changes64(db->lite);
    if (rows)
        rows->ncols = (size_t)sqlite3_column_count(st);
    for (;;) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW) {
            code = lite_classify(db, rc);
            sqlite3_reset(st);
            return code;
        }
        if (!rows)
            continue;
        if (rows_grow(rows, &cap) < 0) {
            sqlite3_reset(st);
            return NSDB_ERR_NOMEM;
        }
        cell_t *row = &rows->cells[rows->nrows * rows->ncols];
        for (size_t c = 0; c < rows->ncols; c++)
            row[c] = (cell_t){.null = true};
        rows->nrows++;
        for (size_t c = 0; c < rows->ncols; c++) {
            int t = sqlite3_column_type(st, (int)c);
            if (t == SQLITE_NULL)
                continue;
            cell_t *cell = &row[c];
            cell->null = false;
            if (t == SQLITE_INTEGER) {
                cell->type = NSDB_T_INT;
                cell->i = sqlite3_column_int64(st, (int)c);
                cell->d = (double)cell->i;
            } else if (t == SQLITE_FLOAT) {
                cell->type = NSDB_T_REAL;
                cell->d = sqlite3_column_double(st, (int)c);
                cell->i = real_to_int(cell->d);
            } else {
                cell->type = NSDB_T_TEXT;
            }
            if (t != SQLITE_INTEGER && t != SQLITE_FLOAT) {
                /* numbers get their text only when asked (nsdb_rows_text): formatting
                 * every REAL costs more than the query */
                const unsigned char *txt = sqlite3_column_text(st, (int)c);
                cell->text = strdup(txt ? (const char *)txt : "");
                if (!cell->text) {
                    sqlite3_reset(st);
                    return NSDB_ERR_NOMEM;
                }
                cell->i = strtoll(cell->text, NULL, 10);
                cell->d = strtod(cell->text, NULL);
            }
        }
    }
    /* total changes: sqlite3_changes() would repeat the last DML's count after DDL */
    int changes = (int)(sqlite3_total_changes64(db->lite) - before);
    sqlite3_reset(st);
    return rows ? (int)rows->nrows : changes;
}

static int pg_run(nsdb_t *db, const char *sql, const nsdb_val_t *params, size_t n,
                  nsdb_rows_t *rows)
{
    int code = 0;
    stmt_entry_t *e = get_stmt(db, sql, &code);
    if (!e)
        return code;
    char buf[NSDB_MAX_PARAMS][32];
    const char *values[NSDB_MAX_PARAMS];
    for (size_t i = 0; i < n; i++) {
        switch (params[i].type) {
        case NSDB_T_NULL:
            values[i] = NULL;
            break;
        case NSDB_T_INT:
            snprintf(buf[i], sizeof buf[i], "%" PRId64, params[i].i);
            values[i] = buf[i];
            break;
        case NSDB_T_REAL:
            snprintf(buf[i], sizeof buf[i], "%.17g", params[i].d);
            values[i] = buf[i];
            break;
        case NSDB_T_TEXT:
            values[i] = params[i].s;
            break;
        }
    }
    PGresult *res = PQexecPrepared(db->pg, e->name, (int)n, values, NULL, NULL, 0);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        code = pg_classify(db, res);
        PQclear(res);
        if (code == NSDB_ERR_CONNECT)
            clear_stmts(db);
        return code;
    }
    int changes = 0;
    const char *tuples = PQcmdTuples(res);
    if (tuples && *tuples)
        changes = atoi(tuples);
    if (rows) {
        rows->nrows = 0;
        rows->ncols = (size_t)PQnfields(res);
        size_t nr = (size_t)PQntuples(res);
        if (nr && rows->ncols) {
            rows->cells = calloc(nr * rows->ncols, sizeof *rows->cells);
            if (!rows->cells) {
                PQclear(res);
                return NSDB_ERR_NOMEM;
            }
        }
        for (size_t r = 0; r < nr; r++) {
            rows->nrows++;
            for (size_t c = 0; c < rows->ncols; c++) {
                cell_t *cell = &rows->cells[r * rows->ncols + c];
                cell->null = PQgetisnull(res, (int)r, (int)c);
                if (cell->null)
                    continue;
                cell->type = NSDB_T_TEXT;
                cell->text = strdup(PQgetvalue(res, (int)r, (int)c));
                if (!cell->text) {
                    PQclear(res);
                    return NSDB_ERR_NOMEM;
                }
                cell->i = strtoll(cell->text, NULL, 10);
                cell->d = strtod(cell->text, NULL);
            }
        }
        changes = (int)nr;
    }
    PQclear(res);
    return changes;
}

static int run(nsdb_t *db, const char *sql, const nsdb_val_t *params, size_t n,
               nsdb_rows_t *rows)
{
    if (!db || !sql || (n && !params) || n > NSDB_MAX_PARAMS)
        return NSDB_ERR_ARG;
    db->errmsg[0] = '\0';
    return db->kind == NSDB_SQLITE ? lite_run(db, sql, params, n, rows)
                                   : pg_run(db, sql, params, n, rows);
}

int nsdb_exec(nsdb_t *db, const char *sql, const nsdb_val_t *params, size_t n)
{
    return run(db, sql, params, n, NULL);
}

int nsdb_query(nsdb_t *db, const char *sql, const nsdb_val_t *params, size_t n,
               nsdb_rows_t **out)
{
    if (!out)
        return NSDB_ERR_ARG;
    *out = NULL;
    nsdb_rows_t *r = calloc(1, sizeof *r);
    if (!r)
        return NSDB_ERR_NOMEM;
    int rc = run(db, sql, params, n, r);
    if (rc < 0) {
        nsdb_rows_free(r);
        return rc;
    }
    *out = r;
    return rc;
}

int nsdb_query_int(nsdb_t *db, const char *sql, const nsdb_val_t *params, size_t n,
                   int64_t *v)
{
    nsdb_rows_t *r = NULL;
    int rc = nsdb_query(db, sql, params, n, &r);
    if (rc < 0)
        return rc;
    int found = 0;
    if (nsdb_rows_count(r) > 0 && !nsdb_rows_isnull(r, 0, 0)) {
        if (v)
            *v = nsdb_rows_int(r, 0, 0);
        found = 1;
    }
    nsdb_rows_free(r);
    return found;
}

size_t nsdb_rows_count(const nsdb_rows_t *r)
{
    return r ? r->nrows : 0;
}

size_t nsdb_rows_columns(const nsdb_rows_t *r)
{
    return r ? r->ncols : 0;
}

static const cell_t *cell_at(const nsdb_rows_t *r, size_t row, size_t col)
{
    if (!r || row >= r->nrows || col >= r->ncols)
        return NULL;
    return &r->cells[row * r->ncols + col];
}

bool nsdb_rows_isnull(const nsdb_rows_t *r, size_t row, size_t col)
{
    const cell_t *c = cell_at(r, row, col);
    return !c || c->null;
}

const char *nsdb_rows_text(const nsdb_rows_t *r, size_t row, size_t col)
{
    const cell_t *c = cell_at(r, row, col);
    if (!c || c->null)
        return NULL;
    if (!c->text) {
        /* a SQLite number: its text is made on first request (the cells are the result's
         * own memory, so this does not modify anything the caller handed in) */
        char buf[40];
        if (c->type == NSDB_T_INT)
            snprintf(buf, sizeof buf, "%" PRId64, c->i);
        else
            snprintf(buf, sizeof buf, "%.17g", c->d);
        r->cells[(size_t)(c - r->cells)].text = strdup(buf);
    }
    return c->text;
}

int64_t nsdb_rows_int(const nsdb_rows_t *r, size_t row, size_t col)
{
    const cell_t *c = cell_at(r, row, col);
    return c && !c->null ? c->i : 0;
}

double nsdb_rows_real(const nsdb_rows_t *r, size_t row, size_t col)
{
    const cell_t *c = cell_at(r, row, col);
    return c && !c->null ? c->d : 0.0;
}

/* Statements without parameters and possibly several of them (migrations, BEGIN). */
static int exec_script(nsdb_t *db, const char *sql)
{
    if (db->kind == NSDB_SQLITE) {
        char *msg = NULL;
        int rc = sqlite3_exec(db->lite, sql, NULL, NULL, &msg);
        if (rc != SQLITE_OK) {
            set_err(db, "%s", msg ? msg : sqlite3_errstr(rc));
            sqlite3_free(msg);
            return rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? NSDB_ERR_RETRY : NSDB_ERR_SQL;
        }
        return 0;
    }
    PGresult *res = PQexec(db->pg, sql);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    int rc = 0;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        rc = pg_classify(db, res);
        if (rc == NSDB_ERR_CONNECT)
            clear_stmts(db);
    }
    PQclear(res);
    return rc;
}

int nsdb_begin(nsdb_t *db)
{
    if (!db)
        return NSDB_ERR_ARG;
    if (db->in_tx)
        nsdb_rollback(db);
    if (db->kind == NSDB_POSTGRES && PQstatus(db->pg) != CONNECTION_OK) {
        clear_stmts(db);
        PQreset(db->pg);
        if (PQstatus(db->pg) != CONNECTION_OK) {
            set_err(db, "%s", PQerrorMessage(db->pg));
            return NSDB_ERR_CONNECT;
        }
        log_notice("Database connection re-established");
    }
    int rc = exec_script(db, db->kind == NSDB_SQLITE ? "BEGIN IMMEDIATE" : "BEGIN");
    if (rc == 0)
        db->in_tx = true;
    return rc;
}

int nsdb_commit(nsdb_t *db)
{
    if (!db || !db->in_tx)
        return NSDB_ERR_ARG;
    int rc = exec_script(db, "COMMIT");
    if (rc < 0) {
        nsdb_rollback(db);
        return rc;
    }
    db->in_tx = false;
    return 0;
}

void nsdb_rollback(nsdb_t *db)
{
    if (!db)
        return;
    db->in_tx = false;
    if (db->kind == NSDB_SQLITE) {
        if (!sqlite3_get_autocommit(db->lite))
            sqlite3_exec(db->lite, "ROLLBACK", NULL, NULL, NULL);
        return;
    }
    if (PQstatus(db->pg) != CONNECTION_OK)
        return;
    PGresult *res = PQexec(db->pg, "ROLLBACK");
    if (!res || PQresultStatus(res) != PGRES_COMMAND_OK)
        log_debug("Rollback failed, error: %s", PQerrorMessage(db->pg));
    PQclear(res);
}

int nsdb_schema_version(nsdb_t *db)
{
    int64_t v = 0;
    int rc = nsdb_query_int(db, "SELECT MAX(version) FROM ns_schema", NULL, 0, &v);
    if (rc < 0)
        return rc;
    return (int)v;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int migrate(nsdb_t *db, char *err, size_t err_len)
{
    int rc = nsdb_begin(db);
    if (rc == 0 && db->kind == NSDB_POSTGRES)
        rc = exec_script(db, "SELECT pg_advisory_xact_lock(1601073508)");
    if (rc == 0)
        rc = exec_script(db, "CREATE TABLE IF NOT EXISTS ns_schema (version INTEGER PRIMARY KEY, "
                             "name TEXT NOT NULL, applied_s DOUBLE PRECISION NOT NULL)");
    int have = rc == 0 ? nsdb_schema_version(db) : rc;
    if (have < 0) {
        errbuf_set(err, err_len, "cannot read the schema version: %s", db->errmsg);
        nsdb_rollback(db);
        return have;
    }
    int latest = nsdb_nmigrations ? nsdb_migrations[nsdb_nmigrations - 1].version : 0;
    if (have > latest) {
        errbuf_set(err, err_len,
                   "the database has schema version %d, this program knows up to %d "
                   "(a newer sigfox-ns migrated it)",
                   have, latest);
        nsdb_rollback(db);
        return NSDB_ERR_SCHEMA;
    }
    for (size_t i = 0; i < nsdb_nmigrations; i++) {
        const nsdb_migration_t *m = &nsdb_migrations[i];
        if (m->version <= have)
            continue;
        const char *sql = db->kind == NSDB_POSTGRES && m->pg ? m->pg : m->sqlite;
        rc = exec_script(db, sql);
        if (rc == 0) {
            nsdb_val_t p[] = {NSDB_INT(m->version), NSDB_TEXT(m->name), NSDB_REAL(now_s())};
            rc = nsdb_exec(db, "INSERT INTO ns_schema (version, name, applied_s) "
                               "VALUES ($1, $2, $3)",
                           p, 3);
        }
        if (rc < 0) {
            errbuf_set(err, err_len, "migration %d (%s) failed: %s", m->version, m->name,
                       db->errmsg);
            nsdb_rollback(db);
            return rc;
        }
        log_info("Database migrated, version: %d, name: %s", m->version, m->name);
    }
    rc = nsdb_commit(db);
    if (rc < 0)
        errbuf_set(err, err_len, "cannot commit the migrations: %s", db->errmsg);
    return rc;
}

static int open_sqlite(nsdb_t *db, const char *path, int busy_ms, char *err, size_t err_len)
{
    int rc = sqlite3_open_v2(path, &db->lite, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        errbuf_set(err, err_len, "cannot open SQLite database %s: %s", path,
                   db->lite ? sqlite3_errmsg(db->lite) : sqlite3_errstr(rc));
        return NSDB_ERR_CONNECT;
    }
    sqlite3_busy_timeout(db->lite, busy_ms > 0 ? busy_ms : DEFAULT_BUSY_MS);
    /* WAL: readers (the command thread) never block the writer; synchronous FULL: a
     * committed (and acknowledged) batch survives a power cut, not only a crash. */
    const char *pragmas = strcmp(path, ":memory:")
                              ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
                                "PRAGMA foreign_keys=ON"
                              : "PRAGMA foreign_keys=ON";
    if (exec_script(db, pragmas) < 0) {
        errbuf_set(err, err_len, "cannot set up SQLite database %s: %s", path, db->errmsg);
        return NSDB_ERR_CONNECT;
    }
    return 0;
}

static int open_pg(nsdb_t *db, const char *url, char *err, size_t err_len)
{
    db->pg = PQconnectdb(url);
    if (!db->pg || PQstatus(db->pg) != CONNECTION_OK) {
        char red[512];
        errbuf_set(err, err_len, "cannot connect to PostgreSQL %s: %s",
                   nsdb_url_redacted(url, red, sizeof red),
                   db->pg ? PQerrorMessage(db->pg) : "out of memory");
        if (err) {
            for (char *p = err; *p; p++)
                if (*p == '\n')
                    *p = ' ';
        }
        return NSDB_ERR_CONNECT;
    }
    /* Notices (e.g. "relation already exists, skipping") are not errors. */
    PGresult *res = PQexec(db->pg, "SET client_min_messages = warning");
    PQclear(res);
    return 0;
}

nsdb_t *nsdb_open(const char *url, int busy_timeout_ms, char *err, size_t err_len)
{
    if (!url || !*url) {
        errbuf_set(err, err_len, "no storage URL");
        return NULL;
    }
    nsdb_t *db = calloc(1, sizeof *db);
    if (!db) {
        errbuf_set(err, err_len, "out of memory");
        return NULL;
    }
    int rc;
    if (!strncmp(url, "postgresql://", 13) || !strncmp(url, "postgres://", 11)) {
        db->kind = NSDB_POSTGRES;
        rc = open_pg(db, url, err, err_len);
    } else {
        db->kind = NSDB_SQLITE;
        const char *path = url;
        if (!strncmp(url, "sqlite://", 9))
            path = url + 9;
        else if (!strncmp(url, "sqlite:", 7))
            path = url + 7;
        if (!*path) {
            errbuf_set(err, err_len, "storage URL %s names no file", url);
            free(db);
            return NULL;
        }
        rc = open_sqlite(db, path, busy_timeout_ms, err, err_len);
    }
    if (rc == 0)
        rc = migrate(db, err, err_len);
    if (rc < 0) {
        nsdb_close(db);
        return NULL;
    }
    return db;
}

void nsdb_close(nsdb_t *db)
{
    if (!db)
        return;
    if (db->in_tx)
        nsdb_rollback(db);
    clear_stmts(db);
    free(db->stmts);
    if (db->lite)
        sqlite3_close(db->lite);
    if (db->pg)
        PQfinish(db->pg);
    free(db);
}
