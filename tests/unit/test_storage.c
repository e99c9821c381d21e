/* The SQLite backend and the storage thread: migrations, keys, generations,
 * usage, activity, and ops acknowledged after their commit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "buf.h"
#include "storage.h"

static char g_path[256];

static int setup(void **state)
{
    (void)state;
    snprintf(g_path, sizeof g_path, "/tmp/llmux-unit-storage-%d.db", (int)getpid());
    unlink(g_path);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char p[300];
    unlink(g_path);
    snprintf(p, sizeof p, "%s-wal", g_path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", g_path);
    unlink(p);
    return 0;
}

static int count_cb(void *ud, int n, const char *const *v)
{
    if (n > 0 && v[0]) *(int *)ud = atoi(v[0]);
    return 0;
}

static void gen(llmux_gen_record *g, const char *id, const char *key, double cost)
{
    memset(g, 0, sizeof *g);
    snprintf(g->id, sizeof g->id, "%s", id);
    snprintf(g->key_hash, sizeof g->key_hash, "%s", key);
    snprintf(g->model, sizeof g->model, "a/b");
    snprintf(g->provider, sizeof g->provider, "Prov");
    snprintf(g->finish_reason, sizeof g->finish_reason, "stop");
    g->status = 200;
    g->tokens_prompt = 10;
    g->tokens_completion = 20;
    g->ttft_ms = -1;
    g->cost = cost;
    g->created_at = time(NULL);
}

static void test_direct(void **state)
{
    (void)state;
    char err[512];
    llmux_db *db = llmux_db_open(0, g_path, err, sizeof err);
    assert_non_null(db);
    assert_int_equal(llmux_db_migrate(db, err, sizeof err), 0);
    assert_int_equal(llmux_db_migrate(db, err, sizeof err), 0); /* idempotent */
    int v = 0;
    assert_int_equal(llmux_db_exec(db, "SELECT MAX(version) FROM schema_migrations", NULL, 0, count_cb, &v, err, sizeof err), 0);
    assert_int_equal(v, 1);

    llmux_key_row k = {0};
    snprintf(k.hash, sizeof k.hash, "%064d", 1);
    k.name = "n";
    k.label = "l";
    k.has_limit = 1;
    k.limit_usd = 2.5;
    k.rl_requests = 5;
    k.rl_interval_s = 10;
    k.created_at = 100;
    assert_int_equal(llmux_storage_put_key(db, &k, err, sizeof err), 0);
    llmux_gen_record g;
    gen(&g, "gen-1", k.hash, 0.25);
    assert_int_equal(llmux_storage_put_generation(db, &g, 0.25, err, sizeof err), 0);
    assert_int_equal(llmux_storage_put_generation(db, &g, 0, err, sizeof err), 0); /* duplicate id ignored */

    llmux_key_row *rows;
    size_t n;
    assert_int_equal(llmux_storage_load_keys(db, &rows, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].label, "l");
    assert_true(rows[0].has_limit);
    assert_true(rows[0].usage_usd > 0.2499 && rows[0].usage_usd < 0.2501);
    assert_int_equal(rows[0].rl_requests, 5);
    assert_int_equal(rows[0].expires_at, 0);
    llmux_key_row_clear(&rows[0]);
    free(rows);

    llmux_buf out = {0};
    char kh[65];
    assert_int_equal(llmux_storage_get_generation(db, "gen-1", &out, kh, err, sizeof err), 0);
    assert_string_equal(kh, k.hash);
    assert_non_null(strstr(out.data, "\"tokens_prompt\":10"));
    assert_non_null(strstr(out.data, "\"time_to_first_token\":null"));
    llmux_buf_reset(&out);
    assert_int_equal(llmux_storage_get_generation(db, "gen-x", &out, kh, err, sizeof err), 404);
    llmux_buf_reset(&out);
    assert_int_equal(llmux_storage_activity(db, k.hash, 0, &out, err, sizeof err), 0);
    assert_non_null(strstr(out.data, "\"requests\":1,"));
    llmux_buf_free(&out);
    llmux_db_close(db);
}

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static int g_done;
static double g_committed;
static size_t g_loaded;

static void on_done(llmux_storage_op *op)
{
    (void)op;
    pthread_mutex_lock(&g_mu);
    g_done++;
    pthread_cond_signal(&g_cv);
    pthread_mutex_unlock(&g_mu);
}

static void usage_committed(const char *hash, double d)
{
    (void)hash;
    pthread_mutex_lock(&g_mu);
    g_committed += d;
    pthread_mutex_unlock(&g_mu);
}

static void keys_loaded(llmux_key_row *rows, size_t n)
{
    (void)rows;
    g_loaded = n;
}

static void test_thread(void **state)
{
    (void)state;
    char err[512];
    llmux_storage_hooks h = {usage_committed, keys_loaded};
    assert_int_equal(llmux_storage_start(0, g_path, &h, 0, 1000, err, sizeof err), 0);
    llmux_storage_op *k = llmux_storage_op_new(LLMUX_STORAGE_KEY_UPSERT);
    snprintf(k->key.hash, sizeof k->key.hash, "%064d", 2);
    k->key.name = strdup("t");
    k->key.label = strdup("t");
    assert_int_equal(llmux_storage_submit(k), 0);
    for (int i = 0; i < 200; i++) {
        llmux_storage_op *op = llmux_storage_op_new(LLMUX_STORAGE_GEN);
        char id[32];
        snprintf(id, sizeof id, "gen-t%d", i);
        gen(&op->gen, id, k->key.hash[0] ? "0000000000000000000000000000000000000000000000000000000000000002" : "", 0.01);
        op->usage_delta = 0.01;
        assert_int_equal(llmux_storage_submit(op), 0);
    }
    /* an acknowledged op: done runs once everything before it committed */
    llmux_storage_op sync = {.kind = LLMUX_STORAGE_SYNC, .done = on_done};
    assert_int_equal(llmux_storage_submit(&sync), 0);
    pthread_mutex_lock(&g_mu);
    while (g_done < 1) pthread_cond_wait(&g_cv, &g_mu);
    double committed = g_committed;
    pthread_mutex_unlock(&g_mu);
    assert_true(committed > 1.999 && committed < 2.001);
    llmux_storage_op q = {.kind = LLMUX_STORAGE_ACTIVITY, .done = on_done};
    snprintf(q.q_key, sizeof q.q_key, "%064d", 2);
    assert_int_equal(llmux_storage_submit(&q), 0);
    pthread_mutex_lock(&g_mu);
    while (g_done < 2) pthread_cond_wait(&g_cv, &g_mu);
    pthread_mutex_unlock(&g_mu);
    assert_int_equal(q.rc, 0);
    assert_non_null(strstr(q.out.data, "\"requests\":200,"));
    llmux_buf_free(&q.out);
    llmux_storage_stop();
    assert_int_equal(g_loaded, 0); /* loaded once at start, before the key existed */
    llmux_db *db = llmux_db_open(0, g_path, err, sizeof err);
    llmux_key_row *rows;
    size_t n;
    assert_int_equal(llmux_storage_load_keys(db, &rows, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    assert_true(rows[0].usage_usd > 1.999 && rows[0].usage_usd < 2.001); /* the deltas, summed per batch */
    llmux_key_row_clear(&rows[0]);
    free(rows);
    llmux_db_close(db);
    assert_int_equal(llmux_storage_running(), 0);
    llmux_storage_op *late = llmux_storage_op_new(LLMUX_STORAGE_GEN);
    assert_int_equal(llmux_storage_submit(late), -1); /* stopped: the caller keeps the op */
    llmux_storage_op_free(late);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_direct, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thread, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
