/* SQLite and PostgreSQL backends of storage_db.h. */
#include "storage_db.h"
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STMT_CACHE 32

struct llmux_db {
    int pg;
    sqlite3 *lite;
    struct { const char *key; sqlite3_stmt *st; } cache[STMT_CACHE]; /* keyed by SQL text pointer */
    int ncache;
    PGconn *conn;
    int in_tx;
};

static const char *const k_migrations[] = {
    /* 1: keys and generations */
    "CREATE TABLE IF NOT EXISTS keys ("
    " hash TEXT PRIMARY KEY, name TEXT NOT NULL, label TEXT NOT NULL,"
    " limit_usd DOUBLE PRECISION, usage_usd DOUBLE PRECISION NOT NULL DEFAULT 0,"
    " disabled INTEGER NOT NULL DEFAULT 0, expires_at BIGINT, created_at BIGINT NOT NULL,"
    " updated_at BIGINT, rate_limit_requests BIGINT, rate_limit_interval_s BIGINT, byok TEXT);"
    "CREATE TABLE IF NOT EXISTS generations ("
    " id TEXT PRIMARY KEY, key_hash TEXT, model TEXT NOT NULL, provider TEXT, upstream_id TEXT,"
    " streamed INTEGER NOT NULL, cancelled INTEGER NOT NULL, status INTEGER NOT NULL,"
    " latency_ms DOUBLE PRECISION, generation_time_ms DOUBLE PRECISION, ttft_ms DOUBLE PRECISION,"
    " finish_reason TEXT, native_finish_reason TEXT, tokens_prompt BIGINT NOT NULL,"
    " tokens_completion BIGINT NOT NULL, tokens_reasoning BIGINT NOT NULL, tokens_cached BIGINT NOT NULL,"
    " cost DOUBLE PRECISION NOT NULL, is_byok INTEGER NOT NULL, created_at BIGINT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS generations_key_created ON generations (key_hash, created_at);",
    NULL,
};

const char *llmux_db_kind(const llmux_db *db) { return db->pg ? "postgres" : "sqlite"; }

/* $N -> ?N for SQLite. */
static char *lite_sql(const char *sql)
{
    char *out = strdup(sql);
    if (!out) return NULL;
    for (char *p = out; *p; p++)
        if (*p == '$' && p[1] >= '0' && p[1] <= '9') *p = '?';
    return out;
}

static sqlite3_stmt *lite_prepare(llmux_db *db, const char *sql, int *cached, char *err, size_t errlen)
{
    for (int i = 0; i < db->ncache; i++)
        if (db->cache[i].key == sql) { *cached = 1; return db->cache[i].st; }
    char *s = lite_sql(sql);
    sqlite3_stmt *st = NULL;
    if (!s || sqlite3_prepare_v2(db->lite, s, -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "sqlite prepare: %s", sqlite3_errmsg(db->lite));
        free(s);
        return NULL;
    }
    free(s);
    *cached = 0;
    if (db->ncache < STMT_CACHE) {
        db->cache[db->ncache].key = sql;
        db->cache[db->ncache++].st = st;
        *cached = 1;
    }
    return st;
}

static int lite_exec(llmux_db *db, const char *sql, const llmux_db_val *p, int np, llmux_db_row_cb cb, void *ud,
                     char *err, size_t errlen)
{
    if (np == 0 && !cb && strchr(sql, ';')) { /* DDL scripts: several statements */
        char *msg = NULL;
        if (sqlite3_exec(db->lite, sql, NULL, NULL, &msg) != SQLITE_OK) {
            snprintf(err, errlen, "sqlite: %s", msg ? msg : "error");
            sqlite3_free(msg);
            return -1;
        }
        return 0;
    }
    int cached;
    sqlite3_stmt *st = lite_prepare(db, sql, &cached, err, errlen);
    if (!st) return -1;
    for (int i = 0; i < np; i++) {
        int k = i + 1;
        switch (p[i].type) {
        case LLMUX_DB_INT: sqlite3_bind_int64(st, k, p[i].i); break;
        case LLMUX_DB_DOUBLE: sqlite3_bind_double(st, k, p[i].d); break;
        case LLMUX_DB_TEXT: sqlite3_bind_text(st, k, p[i].s, -1, SQLITE_TRANSIENT); break;
        default: sqlite3_bind_null(st, k);
        }
    }
    int rc, ret = 0, stop = 0;
    const char *vals[64];
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (!cb || stop) continue;
        int n = sqlite3_column_count(st);
        if (n > 64) n = 64;
        for (int i = 0; i < n; i++) vals[i] = (const char *)sqlite3_column_text(st, i);
        stop = cb(ud, n, vals);
    }
    if (rc != SQLITE_DONE) {
        snprintf(err, errlen, "sqlite: %s", sqlite3_errmsg(db->lite));
        ret = -1;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (!cached) sqlite3_finalize(st);
    return ret;
}

static int pg_exec(llmux_db *db, const char *sql, const llmux_db_val *p, int np, llmux_db_row_cb cb, void *ud,
                   char *err, size_t errlen)
{
    char nums[64][32];
    const char *vals[64];
    if (np > 64) { snprintf(err, errlen, "too many parameters"); return -1; }
    for (int i = 0; i < np; i++) {
        switch (p[i].type) {
        case LLMUX_DB_INT: snprintf(nums[i], sizeof nums[i], "%lld", (long long)p[i].i); vals[i] = nums[i]; break;
        case LLMUX_DB_DOUBLE: snprintf(nums[i], sizeof nums[i], "%.17g", p[i].d); vals[i] = nums[i]; break;
        case LLMUX_DB_TEXT: vals[i] = p[i].s; break;
        default: vals[i] = NULL;
        }
    }
    for (int tries = 0; tries < 2; tries++) {
        PGresult *r = np || cb ? PQexecParams(db->conn, sql, np, NULL, vals, NULL, NULL, 0) : PQexec(db->conn, sql);
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
            if (cb && st == PGRES_TUPLES_OK) {
                int nr = PQntuples(r), nc = PQnfields(r);
                if (nc > 64) nc = 64;
                const char *row[64];
                for (int i = 0; i < nr; i++) {
                    for (int c = 0; c < nc; c++) row[c] = PQgetisnull(r, i, c) ? NULL : PQgetvalue(r, i, c);
                    if (cb(ud, nc, row)) break;
                }
            }
            PQclear(r);
            if (!strncmp(sql, "BEGIN", 5)) db->in_tx = 1;
            else if (!strncmp(sql, "COMMIT", 6) || !strncmp(sql, "ROLLBACK", 8)) db->in_tx = 0;
            return 0;
        }
        snprintf(err, errlen, "postgres: %s", PQerrorMessage(db->conn));
        PQclear(r);
        if (PQstatus(db->conn) == CONNECTION_OK) return -1;
        /* Connection lost: reset; retry only a statement outside a transaction. */
        int was_tx = db->in_tx;
        db->in_tx = 0;
        PQreset(db->conn);
        if (was_tx || PQstatus(db->conn) != CONNECTION_OK) return -1;
    }
    return -1;
}

int llmux_db_exec(llmux_db *db, const char *sql, const llmux_db_val *params, int nparams, llmux_db_row_cb cb,
                  void *ud, char *err, size_t errlen)
{
    err[0] = '\0';
    return db->pg ? pg_exec(db, sql, params, nparams, cb, ud, err, errlen)
                  : lite_exec(db, sql, params, nparams, cb, ud, err, errlen);
}

llmux_db *llmux_db_open(int is_postgres, const char *target, char *err, size_t errlen)
{
    llmux_db *db = calloc(1, sizeof *db);
    if (!db) { snprintf(err, errlen, "out of memory"); return NULL; }
    db->pg = is_postgres;
    if (is_postgres) {
        db->conn = PQconnectdb(target);
        if (PQstatus(db->conn) != CONNECTION_OK) {
            /* The message may echo the host, never the password. */
            snprintf(err, errlen, "postgres: cannot connect: %s", PQerrorMessage(db->conn));
            llmux_db_close(db);
            return NULL;
        }
        PQclear(PQexec(db->conn, "SET client_min_messages = warning"));
        return db;
    }
    if (sqlite3_open_v2(target, &db->lite, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        snprintf(err, errlen, "sqlite: cannot open %s: %s", target, db->lite ? sqlite3_errmsg(db->lite) : "out of memory");
        llmux_db_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db->lite, 5000);
    /* WAL + synchronous=NORMAL: a commit is in the WAL file (the OS page cache)
     * before COMMIT returns, so it survives the process being killed. */
    char *msg = NULL;
    if (sqlite3_exec(db->lite, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;", NULL,
                     NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "sqlite: %s: %s", target, msg ? msg : "pragma failed");
        sqlite3_free(msg);
        llmux_db_close(db);
        return NULL;
    }
    return db;
}

void llmux_db_close(llmux_db *db)
{
    if (!db) return;
    for (int i = 0; i < db->ncache; i++) sqlite3_finalize(db->cache[i].st);
    if (db->lite) sqlite3_close(db->lite);
    if (db->conn) PQfinish(db->conn);
    free(db);
}

static int read_version(void *ud, int n, const char *const *v)
{
    if (n > 0 && v[0]) *(int *)ud = atoi(v[0]);
    return 0;
}

static int migrate_once(llmux_db *db, char *err, size_t errlen)
{
    if (llmux_db_exec(db, "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)",
                      NULL, 0, NULL, NULL, err, errlen) < 0)
        return -1;
    int have = 0;
    if (llmux_db_exec(db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", NULL, 0, read_version, &have, err,
                      errlen) < 0)
        return -1;
    for (int v = have + 1; k_migrations[v - 1]; v++) {
        llmux_db_val p[2] = {DB_INT(v), DB_INT(time(NULL))};
        if (llmux_db_exec(db, "BEGIN", NULL, 0, NULL, NULL, err, errlen) < 0) return -1;
        if (llmux_db_exec(db, k_migrations[v - 1], NULL, 0, NULL, NULL, err, errlen) < 0 ||
            llmux_db_exec(db, "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)", p, 2, NULL, NULL,
                          err, errlen) < 0) {
            char e2[64];
            llmux_db_exec(db, "ROLLBACK", NULL, 0, NULL, NULL, e2, sizeof e2);
            return -1;
        }
        if (llmux_db_exec(db, "COMMIT", NULL, 0, NULL, NULL, err, errlen) < 0) return -1;
    }
    return 0;
}

int llmux_db_migrate(llmux_db *db, char *err, size_t errlen)
{
    /* Two instances starting together may race on the first migration: retry once. */
    if (migrate_once(db, err, errlen) == 0) return 0;
    struct timespec ts = {0, 200 * 1000000L};
    nanosleep(&ts, NULL);
    return migrate_once(db, err, errlen);
}
