/* The storage thread and the SQL both backends share (storage.h). */
#include "storage.h"
#include "buf.h"
#include "log.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH_MAX 1024

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    llmux_storage_op *head, *tail;
    size_t n, max;
    int stop, running, waiting;
    llmux_db *db;
    llmux_storage_hooks hooks;
    uint32_t refresh_ms;
    atomic_uint_fast64_t dropped;
} S = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static const char SQL_GEN[] =
    "INSERT INTO generations (id, key_hash, model, provider, upstream_id, streamed, cancelled, status,"
    " latency_ms, generation_time_ms, ttft_ms, finish_reason, native_finish_reason, tokens_prompt,"
    " tokens_completion, tokens_reasoning, tokens_cached, cost, is_byok, created_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)"
    " ON CONFLICT (id) DO NOTHING";
static const char SQL_USAGE[] = "UPDATE keys SET usage_usd = usage_usd + $1 WHERE hash = $2";
static const char SQL_KEY_UPSERT[] =
    "INSERT INTO keys (hash, name, label, limit_usd, usage_usd, disabled, expires_at, created_at, updated_at,"
    " rate_limit_requests, rate_limit_interval_s, byok)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    " ON CONFLICT (hash) DO UPDATE SET name = excluded.name, label = excluded.label,"
    " limit_usd = excluded.limit_usd, disabled = excluded.disabled, expires_at = excluded.expires_at,"
    " updated_at = excluded.updated_at, rate_limit_requests = excluded.rate_limit_requests,"
    " rate_limit_interval_s = excluded.rate_limit_interval_s, byok = excluded.byok";
static const char SQL_KEY_DELETE[] = "DELETE FROM keys WHERE hash = $1";
static const char SQL_KEYS[] =
    "SELECT hash, name, label, limit_usd, usage_usd, disabled, expires_at, created_at, updated_at,"
    " rate_limit_requests, rate_limit_interval_s, byok FROM keys";
static const char SQL_GET_GEN[] =
    "SELECT id, key_hash, model, provider, upstream_id, streamed, cancelled, status, latency_ms,"
    " generation_time_ms, ttft_ms, finish_reason, native_finish_reason, tokens_prompt, tokens_completion,"
    " tokens_reasoning, tokens_cached, cost, is_byok, created_at FROM generations WHERE id = $1";
static const char SQL_ACTIVITY_ALL[] =
    "SELECT created_at / 86400, model, provider, COUNT(*), SUM(tokens_prompt), SUM(tokens_completion),"
    " SUM(tokens_reasoning), SUM(cost), SUM(CASE WHEN is_byok <> 0 THEN cost ELSE 0 END)"
    " FROM generations WHERE created_at >= $1 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3";
static const char SQL_ACTIVITY_KEY[] =
    "SELECT created_at / 86400, model, provider, COUNT(*), SUM(tokens_prompt), SUM(tokens_completion),"
    " SUM(tokens_reasoning), SUM(cost), SUM(CASE WHEN is_byok <> 0 THEN cost ELSE 0 END)"
    " FROM generations WHERE created_at >= $1 AND key_hash = $2 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3";

/* ---- SQL shared by both backends ----------------------------------------- */

static const char *nonempty(const char *s) { return s && *s ? s : NULL; }

int llmux_storage_put_generation(llmux_db *db, const llmux_gen_record *g, double usage_delta, char *err,
                                 size_t errlen)
{
    llmux_db_val p[20] = {
        DB_TEXT(g->id), DB_TEXT(nonempty(g->key_hash)), DB_TEXT(g->model), DB_TEXT(nonempty(g->provider)),
        DB_TEXT(nonempty(g->upstream_id)), DB_INT(g->streamed), DB_INT(g->cancelled), DB_INT(g->status),
        DB_DBL(g->latency_ms), DB_DBL(g->generation_time_ms), g->ttft_ms >= 0 ? DB_DBL(g->ttft_ms) : DB_NULLV,
        DB_TEXT(nonempty(g->finish_reason)), DB_TEXT(nonempty(g->native_finish_reason)), DB_INT(g->tokens_prompt),
        DB_INT(g->tokens_completion), DB_INT(g->tokens_reasoning), DB_INT(g->tokens_cached), DB_DBL(g->cost),
        DB_INT(g->is_byok), DB_INT(g->created_at)};
    if (llmux_db_exec(db, SQL_GEN, p, 20, NULL, NULL, err, errlen) < 0) return -1;
    if (usage_delta != 0 && g->key_hash[0]) {
        llmux_db_val u[2] = {DB_DBL(usage_delta), DB_TEXT(g->key_hash)};
        if (llmux_db_exec(db, SQL_USAGE, u, 2, NULL, NULL, err, errlen) < 0) return -1;
    }
    return 0;
}

int llmux_storage_put_key(llmux_db *db, const llmux_key_row *k, char *err, size_t errlen)
{
    llmux_db_val p[12] = {
        DB_TEXT(k->hash), DB_TEXT(k->name ? k->name : ""), DB_TEXT(k->label ? k->label : ""),
        k->has_limit ? DB_DBL(k->limit_usd) : DB_NULLV, DB_DBL(k->usage_usd), DB_INT(k->disabled),
        k->expires_at ? DB_INT(k->expires_at) : DB_NULLV, DB_INT(k->created_at), DB_INT(k->updated_at),
        k->rl_requests ? DB_INT(k->rl_requests) : DB_NULLV, k->rl_interval_s ? DB_INT(k->rl_interval_s) : DB_NULLV,
        DB_TEXT(k->byok)};
    return llmux_db_exec(db, SQL_KEY_UPSERT, p, 12, NULL, NULL, err, errlen);
}

void llmux_key_row_clear(llmux_key_row *k)
{
    free(k->name);
    free(k->label);
    free(k->byok);
    k->name = k->label = k->byok = NULL;
}

typedef struct {
    llmux_key_row *rows;
    size_t n, cap;
    int oom;
} key_rows;

static char *dupn(const char *s) { return s ? strdup(s) : NULL; }

static int key_row_cb(void *ud, int nc, const char *const *v)
{
    key_rows *kr = ud;
    if (nc < 12 || !v[0]) return 0;
    if (kr->n == kr->cap) {
        size_t cap = kr->cap ? kr->cap * 2 : 64;
        llmux_key_row *r = realloc(kr->rows, cap * sizeof *r);
        if (!r) { kr->oom = 1; return 1; }
        kr->rows = r;
        kr->cap = cap;
    }
    llmux_key_row *k = &kr->rows[kr->n];
    memset(k, 0, sizeof *k);
    snprintf(k->hash, sizeof k->hash, "%s", v[0]);
    k->name = dupn(v[1] ? v[1] : "");
    k->label = dupn(v[2] ? v[2] : "");
    k->has_limit = v[3] != NULL;
    k->limit_usd = v[3] ? strtod(v[3], NULL) : 0;
    k->usage_usd = v[4] ? strtod(v[4], NULL) : 0;
    k->disabled = v[5] && atoi(v[5]) != 0;
    k->expires_at = v[6] ? strtoll(v[6], NULL, 10) : 0;
    k->created_at = v[7] ? strtoll(v[7], NULL, 10) : 0;
    k->updated_at = v[8] ? strtoll(v[8], NULL, 10) : 0;
    k->rl_requests = v[9] ? strtoll(v[9], NULL, 10) : 0;
    k->rl_interval_s = v[10] ? strtoll(v[10], NULL, 10) : 0;
    k->byok = dupn(v[11]);
    kr->n++;
    return 0;
}

int llmux_storage_load_keys(llmux_db *db, llmux_key_row **rows, size_t *n, char *err, size_t errlen)
{
    key_rows kr = {0};
    int rc = llmux_db_exec(db, SQL_KEYS, NULL, 0, key_row_cb, &kr, err, errlen);
    if (rc < 0 || kr.oom) {
        for (size_t i = 0; i < kr.n; i++) llmux_key_row_clear(&kr.rows[i]);
        free(kr.rows);
        if (kr.oom) snprintf(err, errlen, "out of memory");
        return -1;
    }
    *rows = kr.rows;
    *n = kr.n;
    return 0;
}

static void iso_time(int64_t t, char *out, size_t n)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void jnum_or_null(llmux_buf *b, const char *v, int as_double)
{
    if (!v) { llmux_buf_append_str(b, "null"); return; }
    if (as_double) llmux_buf_append_double(b, strtod(v, NULL));
    else llmux_buf_printf(b, "%lld", strtoll(v, NULL, 10));
}

/* `key` (the literal `,"name":` before a value), then v as a JSON string or null. */
static void jkey_str_or_null(llmux_buf *b, const char *key, const char *v)
{
    llmux_buf_append_str(b, key);
    if (v) llmux_buf_append_jstr(b, v); else llmux_buf_append_str(b, "null");
}

/* `key`, then jnum_or_null(v). */
static void jkey_num(llmux_buf *b, const char *key, const char *v, int as_double)
{
    llmux_buf_append_str(b, key);
    jnum_or_null(b, v, as_double);
}

typedef struct {
    llmux_buf *out;
    char *key_hash;
    int found;
} gen_q;

static int gen_row_cb(void *ud, int nc, const char *const *v)
{
    gen_q *q = ud;
    if (nc < 20) return 1;
    q->found = 1;
    if (q->key_hash) snprintf(q->key_hash, 65, "%s", v[1] ? v[1] : "");
    llmux_buf *b = q->out;
    char when[32];
    iso_time(v[19] ? strtoll(v[19], NULL, 10) : 0, when, sizeof when);
    int byok = v[18] && atoi(v[18]);
    llmux_buf_append_str(b, "{\"id\":");
    llmux_buf_append_jstr(b, v[0]);
    llmux_buf_append_str(b, ",\"model\":");
    llmux_buf_append_jstr(b, v[2] ? v[2] : "");
    jkey_str_or_null(b, ",\"provider_name\":", v[3]);
    jkey_num(b, ",\"total_cost\":", v[17], 1);
    jkey_num(b, ",\"usage\":", v[17], 1);
    llmux_buf_append_str(b, ",\"created_at\":");
    llmux_buf_append_jstr(b, when);
    llmux_buf_printf(b, ",\"streamed\":%s,\"cancelled\":%s,\"status\":%s,\"latency\":",
                     v[5] && atoi(v[5]) ? "true" : "false", v[6] && atoi(v[6]) ? "true" : "false", v[7] ? v[7] : "0");
    jnum_or_null(b, v[8], 1);
    jkey_num(b, ",\"generation_time\":", v[9], 1);
    jkey_num(b, ",\"time_to_first_token\":", v[10], 1);
    jkey_str_or_null(b, ",\"moderation_latency\":null,\"finish_reason\":", v[11]);
    jkey_str_or_null(b, ",\"native_finish_reason\":", v[12]);
    jkey_num(b, ",\"tokens_prompt\":", v[13], 0);
    jkey_num(b, ",\"tokens_completion\":", v[14], 0);
    jkey_num(b, ",\"native_tokens_prompt\":", v[13], 0);
    jkey_num(b, ",\"native_tokens_completion\":", v[14], 0);
    jkey_num(b, ",\"native_tokens_reasoning\":", v[15], 0);
    jkey_num(b, ",\"native_tokens_cached\":", v[16], 0);
    llmux_buf_printf(b, ",\"is_byok\":%s", byok ? "true" : "false");
    jkey_str_or_null(b, ",\"upstream_id\":", v[4]);
    llmux_buf_append_char(b, '}');
    return 1;
}

int llmux_storage_get_generation(llmux_db *db, const char *id, llmux_buf *out, char *key_hash_out, char *err,
                                 size_t errlen)
{
    gen_q q = {out, key_hash_out, 0};
    llmux_db_val p[1] = {DB_TEXT(id)};
    if (llmux_db_exec(db, SQL_GET_GEN, p, 1, gen_row_cb, &q, err, errlen) < 0) return -1;
    return q.found ? 0 : 404;
}

typedef struct {
    llmux_buf *out;
    int n;
} act_q;

static int act_row_cb(void *ud, int nc, const char *const *v)
{
    act_q *q = ud;
    if (nc < 9) return 1;
    llmux_buf *b = q->out;
    char day[16];
    time_t t = (time_t)((v[0] ? strtoll(v[0], NULL, 10) : 0) * 86400);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(day, sizeof day, "%Y-%m-%d", &tm);
    if (q->n++) llmux_buf_append_char(b, ',');
    llmux_buf_printf(b, "{\"date\":\"%s\",\"model\":", day);
    llmux_buf_append_jstr(b, v[1] ? v[1] : "");
    jkey_str_or_null(b, ",\"provider_name\":", v[2]);
    jkey_num(b, ",\"requests\":", v[3], 0);
    jkey_num(b, ",\"prompt_tokens\":", v[4], 0);
    jkey_num(b, ",\"completion_tokens\":", v[5], 0);
    jkey_num(b, ",\"reasoning_tokens\":", v[6], 0);
    jkey_num(b, ",\"usage\":", v[7], 1);
    jkey_num(b, ",\"byok_usage_inference\":", v[8], 1);
    llmux_buf_append_char(b, '}');
    return 0;
}

int llmux_storage_activity(llmux_db *db, const char *key_hash, int64_t since, llmux_buf *out, char *err,
                           size_t errlen)
{
    act_q q = {out, 0};
    llmux_buf_append_char(out, '[');
    llmux_db_val p[2] = {DB_INT(since), DB_TEXT(key_hash)};
    int rc = key_hash && *key_hash ? llmux_db_exec(db, SQL_ACTIVITY_KEY, p, 2, act_row_cb, &q, err, errlen)
                                   : llmux_db_exec(db, SQL_ACTIVITY_ALL, p, 1, act_row_cb, &q, err, errlen);
    llmux_buf_append_char(out, ']');
    return rc;
}

/* ---- the thread ------------------------------------------------------------ */

llmux_storage_op *llmux_storage_op_new(int kind)
{
    llmux_storage_op *op = calloc(1, sizeof *op);
    if (op) op->kind = kind;
    return op;
}

void llmux_storage_op_free(llmux_storage_op *op)
{
    if (!op) return;
    llmux_key_row_clear(&op->key);
    llmux_buf_free(&op->out);
    free(op);
}

int llmux_storage_running(void) { return S.running; }
uint64_t llmux_storage_dropped(void) { return atomic_load(&S.dropped); }

int llmux_storage_submit(llmux_storage_op *op)
{
    op->next = NULL;
    pthread_mutex_lock(&S.mu);
    if (!S.running || S.stop || S.n >= S.max) {
        pthread_mutex_unlock(&S.mu);
        if (op->kind == LLMUX_STORAGE_GEN) atomic_fetch_add(&S.dropped, 1);
        return -1;
    }
    if (S.tail) S.tail->next = op;
    else S.head = op;
    S.tail = op;
    S.n++;
    int wake = S.waiting;
    pthread_mutex_unlock(&S.mu);
    if (wake) pthread_cond_signal(&S.cv);
    return 0;
}

typedef struct {
    char hash[65];
    double delta;
} usage_acc;

static int is_write(const llmux_storage_op *op)
{
    return op->kind == LLMUX_STORAGE_GEN || op->kind == LLMUX_STORAGE_KEY_UPSERT || op->kind == LLMUX_STORAGE_KEY_DELETE;
}

static int apply_write(llmux_storage_op *op, char *err, size_t errlen)
{
    switch (op->kind) {
    case LLMUX_STORAGE_GEN: return llmux_storage_put_generation(S.db, &op->gen, 0, err, errlen);
    case LLMUX_STORAGE_KEY_UPSERT: return llmux_storage_put_key(S.db, &op->key, err, errlen);
    case LLMUX_STORAGE_KEY_DELETE: {
        llmux_db_val p[1] = {DB_TEXT(op->key.hash)};
        return llmux_db_exec(S.db, SQL_KEY_DELETE, p, 1, NULL, NULL, err, errlen);
    }
    }
    return 0;
}

/* One transaction for every write of the batch; usage deltas summed per key. */
static int commit_batch(llmux_storage_op *batch, usage_acc *acc, int *nacc, char *err, size_t errlen)
{
    *nacc = 0;
    if (llmux_db_exec(S.db, "BEGIN", NULL, 0, NULL, NULL, err, errlen) < 0) return -1;
    for (llmux_storage_op *op = batch; op; op = op->next) {
        if (!is_write(op)) continue;
        if (apply_write(op, err, errlen) < 0) goto rollback;
        if (op->kind == LLMUX_STORAGE_GEN && op->usage_delta != 0 && op->gen.key_hash[0]) {
            int k = 0;
            while (k < *nacc && strcmp(acc[k].hash, op->gen.key_hash)) k++;
            if (k == *nacc) {
                if (*nacc == BATCH_MAX) goto rollback;
                snprintf(acc[k].hash, sizeof acc[k].hash, "%s", op->gen.key_hash);
                acc[k].delta = 0;
                (*nacc)++;
            }
            acc[k].delta += op->usage_delta;
        }
    }
    for (int k = 0; k < *nacc; k++) {
        llmux_db_val u[2] = {DB_DBL(acc[k].delta), DB_TEXT(acc[k].hash)};
        if (llmux_db_exec(S.db, SQL_USAGE, u, 2, NULL, NULL, err, errlen) < 0) goto rollback;
    }
    if (llmux_db_exec(S.db, "COMMIT", NULL, 0, NULL, NULL, err, errlen) < 0) goto rollback;
    return 0;
rollback:;
    char e2[128];
    llmux_db_exec(S.db, "ROLLBACK", NULL, 0, NULL, NULL, e2, sizeof e2);
    return -1;
}

static void load_keys(void)
{
    llmux_key_row *rows = NULL;
    size_t n = 0;
    char err[512];
    if (llmux_storage_load_keys(S.db, &rows, &n, err, sizeof err) < 0) {
        LOG_WARN("storage: reading keys failed: %s", err);
        return;
    }
    if (S.hooks.keys_loaded) S.hooks.keys_loaded(rows, n);
    for (size_t i = 0; i < n; i++) llmux_key_row_clear(&rows[i]);
    free(rows);
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void *storage_main(void *arg)
{
    (void)arg;
    static usage_acc acc[BATCH_MAX];
    uint64_t next_refresh = mono_ms() + S.refresh_ms;
    for (;;) {
        pthread_mutex_lock(&S.mu);
        while (!S.head && !S.stop) {
            if (!S.refresh_ms) {
                S.waiting = 1;
                pthread_cond_wait(&S.cv, &S.mu);
                S.waiting = 0;
                continue;
            }
            uint64_t now = mono_ms();
            if (now >= next_refresh) break;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            uint64_t wait = next_refresh - now;
            ts.tv_sec += (time_t)(wait / 1000);
            ts.tv_nsec += (long)(wait % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
            S.waiting = 1;
            pthread_cond_timedwait(&S.cv, &S.mu, &ts);
            S.waiting = 0;
        }
        llmux_storage_op *batch = S.head, *last = NULL;
        int n = 0;
        for (llmux_storage_op *op = S.head; op && n < BATCH_MAX; op = op->next) { last = op; n++; }
        if (last) {
            S.head = last->next;
            if (!S.head) S.tail = NULL;
            last->next = NULL;
            S.n -= (size_t)n;
        } else {
            batch = NULL;
        }
        int stop = S.stop && !S.head;
        pthread_mutex_unlock(&S.mu);

        if (batch) {
            char err[512];
            int nacc = 0, has_write = 0;
            for (llmux_storage_op *op = batch; op; op = op->next) has_write |= is_write(op);
            int rc = has_write ? commit_batch(batch, acc, &nacc, err, sizeof err) : 0;
            if (rc < 0 && has_write) {
                LOG_ERROR("storage: commit of %d ops failed, retrying: %s", n, err);
                rc = commit_batch(batch, acc, &nacc, err, sizeof err);
                if (rc < 0) LOG_ERROR("storage: commit failed again, %d ops lost: %s", n, err);
            }
            if (S.hooks.usage_committed) {
                if (rc == 0) {
                    for (int k = 0; k < nacc; k++) S.hooks.usage_committed(acc[k].hash, acc[k].delta);
                } else { /* not persisted: release the pending amounts anyway */
                    for (llmux_storage_op *op = batch; op; op = op->next)
                        if (op->kind == LLMUX_STORAGE_GEN && op->usage_delta != 0 && op->gen.key_hash[0])
                            S.hooks.usage_committed(op->gen.key_hash, op->usage_delta);
                }
            }
            for (llmux_storage_op *op = batch, *next; op; op = next) {
                next = op->next;
                if (is_write(op)) {
                    op->rc = rc;
                } else if (op->kind == LLMUX_STORAGE_GET_GENERATION) {
                    op->rc = llmux_storage_get_generation(S.db, op->q_id, &op->out, op->gen.key_hash, err, sizeof err);
                    if (op->rc < 0) LOG_ERROR("storage: generation query failed: %s", err);
                } else if (op->kind == LLMUX_STORAGE_ACTIVITY) {
                    op->rc = llmux_storage_activity(S.db, op->q_key, op->q_since, &op->out, err, sizeof err);
                    if (op->rc < 0) LOG_ERROR("storage: activity query failed: %s", err);
                }
                if (op->done) op->done(op);
                else llmux_storage_op_free(op);
            }
        }
        if (S.refresh_ms && mono_ms() >= next_refresh) {
            load_keys();
            next_refresh = mono_ms() + S.refresh_ms;
        }
        if (stop) break;
    }
    return NULL;
}

int llmux_storage_start(int is_postgres, const char *target, const llmux_storage_hooks *hooks, uint32_t refresh_ms,
                        size_t queue_max, char *err, size_t errlen)
{
    if (S.running) { snprintf(err, errlen, "storage already running"); return -1; }
    S.db = llmux_db_open(is_postgres, target, err, errlen);
    if (!S.db) return -1;
    if (llmux_db_migrate(S.db, err, errlen) < 0) {
        llmux_db_close(S.db);
        S.db = NULL;
        return -1;
    }
    if (hooks) S.hooks = *hooks;
    S.refresh_ms = refresh_ms;
    S.max = queue_max ? queue_max : 65536;
    S.stop = 0;
    load_keys();
    if (pthread_create(&S.thread, NULL, storage_main, NULL) != 0) {
        snprintf(err, errlen, "cannot start the storage thread");
        llmux_db_close(S.db);
        S.db = NULL;
        return -1;
    }
    S.running = 1;
    return 0;
}

void llmux_storage_stop(void)
{
    pthread_mutex_lock(&S.mu);
    if (!S.running) { pthread_mutex_unlock(&S.mu); return; }
    S.stop = 1;
    pthread_mutex_unlock(&S.mu);
    pthread_cond_signal(&S.cv);
    pthread_join(S.thread, NULL);
    pthread_mutex_lock(&S.mu);
    S.running = 0;
    pthread_mutex_unlock(&S.mu);
    llmux_db_close(S.db);
    S.db = NULL;
    memset(&S.hooks, 0, sizeof S.hooks);
}
