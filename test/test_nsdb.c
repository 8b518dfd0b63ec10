/* test_nsdb: the core's storage layer on SQLite, or on the PostgreSQL server named by
 * NSDB_TEST_URL (test/ns_pg_e2e.sh starts one and runs this binary against it).
 * Licence: MIT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "nsdb.h"
#include "testutil.h"

static char dir[256];

static int setup(void **state)
{
    (void)state;
    return test_tmpdir_create(dir, sizeof dir, "test_nsdb");
}

static int teardown(void **state)
{
    (void)state;
    return test_tmpdir_remove(dir);
}

/* The database under test: a file in dir, or NSDB_TEST_URL (one database for all). */
static const char *db_url(const char *name, char *url, size_t cap)
{
    const char *env = getenv("NSDB_TEST_URL");
    if (env && *env)
        snprintf(url, cap, "%s", env);
    else
        snprintf(url, cap, "sqlite://%s/%s", dir, name);
    return url;
}

static nsdb_t *open_db(const char *name)
{
    char url[512], err[256] = "";
    db_url(name, url, sizeof url);
    nsdb_t *db = nsdb_open(url, 0, err, sizeof err);
    if (!db)
        fail_msg("nsdb_open %s: %s", url, err);
    return db;
}

/* Opening migrates to the last version once; reopening keeps it. */
static void test_migrations(void **state)
{
    (void)state;
    nsdb_t *db = open_db("m.db");
    int latest = nsdb_migrations[nsdb_nmigrations - 1].version;
    assert_int_equal(nsdb_schema_version(db), latest);
    int64_t n = -1;
    assert_int_equal(nsdb_query_int(db, "SELECT COUNT(*) FROM ns_schema", NULL, 0, &n), 1);
    assert_int_equal(n, (int64_t)nsdb_nmigrations);
    nsdb_close(db);
    db = open_db("m.db");
    assert_int_equal(nsdb_query_int(db, "SELECT COUNT(*) FROM ns_schema", NULL, 0, &n), 1);
    assert_int_equal(n, (int64_t)nsdb_nmigrations);
    /* a schema newer than the program is refused (SQLite only: the PostgreSQL run shares
     * one database with the other tests) */
    const char *env = getenv("NSDB_TEST_URL");
    if (env && *env) {
        nsdb_close(db);
        return;
    }
    nsdb_val_t p[] = {NSDB_INT(latest + 1), NSDB_TEXT("future"), NSDB_REAL(0)};
    assert_int_equal(nsdb_exec(db, "INSERT INTO ns_schema VALUES ($1, $2, $3)", p, 3), 1);
    nsdb_close(db);
    char url[512], err[256] = "";
    assert_null(nsdb_open(db_url("m.db", url, sizeof url), 0, err, sizeof err));
    assert_non_null(strstr(err, "newer"));
}

/* Parameters of every type round-trip; text with quotes is data, not SQL. */
static void test_params(void **state)
{
    (void)state;
    nsdb_t *db = open_db("p.db");
    assert_int_equal(nsdb_exec(db, "CREATE TABLE t (a BIGINT, b DOUBLE PRECISION, c TEXT, d TEXT)",
                               NULL, 0),
                     0);
    const char *evil = "x'); DROP TABLE t; --";
    nsdb_val_t p[] = {NSDB_INT(INT64_C(4294967295)), NSDB_REAL(1764158400.123456), NSDB_TEXT(evil),
                      NSDB_NULLV};
    assert_int_equal(nsdb_exec(db, "INSERT INTO t VALUES ($1, $2, $3, $4)", p, 4), 1);
    nsdb_rows_t *r = NULL;
    assert_int_equal(nsdb_query(db, "SELECT a, b, c, d FROM t WHERE c = $1", &p[2], 1, &r), 1);
    assert_int_equal(nsdb_rows_columns(r), 4);
    assert_int_equal(nsdb_rows_int(r, 0, 0), INT64_C(4294967295));
    assert_near(nsdb_rows_real(r, 0, 1), 1764158400.123456, 1e-6);
    assert_string_equal(nsdb_rows_text(r, 0, 2), evil);
    assert_true(nsdb_rows_isnull(r, 0, 3));
    assert_null(nsdb_rows_text(r, 0, 3));
    assert_null(nsdb_rows_text(r, 1, 0)); /* out of range */
    nsdb_rows_free(r);
    /* a bad statement names the problem */
    assert_int_equal(nsdb_exec(db, "SELECT nosuchcolumn FROM t", NULL, 0), NSDB_ERR_SQL);
    assert_non_null(strstr(nsdb_errmsg(db), "nosuchcolumn"));
    nsdb_close(db);
}

/* Rollback discards; commit keeps; the ON CONFLICT claim is won exactly once. */
static void test_transactions_and_claim(void **state)
{
    (void)state;
    nsdb_t *db = open_db("t.db");
    static const char claim[] = "INSERT INTO ns_dedup (ep_id, mc, first_t) VALUES ($1, $2, $3) "
                                "ON CONFLICT (ep_id, mc) DO NOTHING";
    nsdb_val_t p[] = {NSDB_INT(0xFEDCBA98), NSDB_INT(5), NSDB_REAL(100.0)};
    assert_int_equal(nsdb_begin(db), 0);
    assert_int_equal(nsdb_exec(db, claim, p, 3), 1);
    nsdb_rollback(db);
    assert_int_equal(nsdb_begin(db), 0);
    assert_int_equal(nsdb_exec(db, claim, p, 3), 1);
    assert_int_equal(nsdb_commit(db), 0);
    /* a second connection (another writer) loses */
    nsdb_t *db2 = open_db("t.db");
    assert_int_equal(nsdb_begin(db2), 0);
    assert_int_equal(nsdb_exec(db2, claim, p, 3), 0);
    assert_int_equal(nsdb_commit(db2), 0);
    int64_t n = 0;
    assert_int_equal(nsdb_query_int(db2, "SELECT COUNT(*) FROM ns_dedup", NULL, 0, &n), 1);
    assert_int_equal(n, 1);
    nsdb_close(db2);
    nsdb_close(db);
}

static void test_bad_urls(void **state)
{
    (void)state;
    char err[256] = "";
    assert_null(nsdb_open("", 0, err, sizeof err));
    assert_null(nsdb_open("sqlite://", 0, err, sizeof err));
    assert_non_null(strstr(err, "names no file"));
    assert_null(nsdb_open("/nonexistent-dir/x/ns.db", 0, err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent-dir/x/ns.db"));
    /* nothing listens on port 1: a clear error, no hang, password not shown */
    assert_null(nsdb_open("postgresql://u:secret@127.0.0.1:1/db?connect_timeout=2", 0, err,
                          sizeof err));
    assert_non_null(strstr(err, "cannot connect to PostgreSQL"));
    assert_null(strstr(err, "secret"));
    char red[128];
    assert_string_equal(nsdb_url_redacted("postgresql://u:pw@h/db", red, sizeof red),
                        "postgresql://u:***@h/db");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_migrations),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_transactions_and_claim),
        cmocka_unit_test(test_bad_urls),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
