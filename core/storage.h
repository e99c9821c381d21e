/* The storage thread: every write from a worker (generation records, usage,
 * key changes) and every read a route needs goes through one bounded queue to
 * one thread that owns the database connection (SQLite or PostgreSQL, same
 * SQL). Workers enqueue and return; an op may carry a `done` callback, run on
 * the storage thread after its batch committed (the caller wakes its own loop
 * from there, e.g. with uv_async_send). Writes are committed in batches: the
 * thread takes whatever is queued, commits it in one transaction, acks, and
 * goes back for more, so a record is committed within a commit time of being
 * queued. */
#ifndef LLMUX_STORAGE_H
#define LLMUX_STORAGE_H
#include "../sdk/llmux_plugin.h"
#include "storage_db.h"
#include <stdint.h>

typedef struct {
    char id[48];
    char key_hash[65]; /* "" when auth = "none" */
    char model[256];
    char provider[128];
    char upstream_id[128];
    int streamed, cancelled, status, is_byok;
    double latency_ms, generation_time_ms, ttft_ms; /* ttft < 0: none */
    char finish_reason[24];
    char native_finish_reason[64];
    int64_t tokens_prompt, tokens_completion, tokens_reasoning, tokens_cached;
    double cost;
    int64_t created_at;
} llmux_gen_record;

typedef struct {
    char hash[65];
    char *name, *label;
    int has_limit;
    double limit_usd, usage_usd;
    int disabled;
    int64_t expires_at; /* 0: never */
    int64_t created_at, updated_at;
    int64_t rl_requests, rl_interval_s; /* 0: no rate limit */
    char *byok;         /* encrypted JSON ("v1:<hex>") or NULL */
} llmux_key_row;

enum {
    LLMUX_STORAGE_GEN,          /* gen (+ usage_delta on gen.key_hash) */
    LLMUX_STORAGE_KEY_UPSERT,   /* key (usage is not overwritten) */
    LLMUX_STORAGE_KEY_DELETE,   /* key.hash */
    LLMUX_STORAGE_GET_GENERATION, /* q_id -> out (JSON object) or rc = 404 */
    LLMUX_STORAGE_ACTIVITY,     /* q_key ("" = all), q_since -> out (JSON array) */
    LLMUX_STORAGE_SYNC,         /* nothing: done runs once everything before it committed */
};

typedef struct llmux_storage_op {
    struct llmux_storage_op *next;
    int kind;
    llmux_gen_record gen;
    double usage_delta;
    llmux_key_row key;   /* strings owned by the op */
    char q_id[64];
    char q_key[65];
    int64_t q_since;
    int rc;              /* 0 ok, -1 database error, 404 not found */
    llmux_buf out;       /* query result */
    /* Storage thread, after the batch: must not touch the op afterwards
     * unless it owns it. NULL: the storage thread frees the op. */
    void (*done)(struct llmux_storage_op *op);
    void *ud;
} llmux_storage_op;

typedef struct {
    void (*usage_committed)(const char *key_hash, double delta); /* after each batch */
    void (*keys_loaded)(llmux_key_row *rows, size_t n);          /* at start and every refresh */
} llmux_storage_hooks;

/* Opens (and migrates) the database, loads the keys once through
 * hooks->keys_loaded, then starts the thread. refresh_ms: how often keys are
 * re-read (other instances' usage and changes); 0 = never. */
int llmux_storage_start(int is_postgres, const char *target, const llmux_storage_hooks *hooks,
                        uint32_t refresh_ms, size_t queue_max, char *err, size_t errlen);
int llmux_storage_running(void);
/* 0: queued (the storage thread owns the op's fate). -1: not running or the
 * queue is full (the caller keeps the op). */
int llmux_storage_submit(llmux_storage_op *op);
/* Commits what is queued, stops and joins the thread, closes the database. */
void llmux_storage_stop(void);
/* Counters for /admin and the docs. */
uint64_t llmux_storage_dropped(void);

llmux_storage_op *llmux_storage_op_new(int kind);
void llmux_storage_op_free(llmux_storage_op *op);
void llmux_key_row_clear(llmux_key_row *k);

/* Direct use from the caller's thread (CLI, tests): the same SQL. */
int llmux_storage_put_key(llmux_db *db, const llmux_key_row *k, char *err, size_t errlen);
int llmux_storage_put_generation(llmux_db *db, const llmux_gen_record *g, double usage_delta, char *err,
                                 size_t errlen);
/* rows: malloc'd array, free each with llmux_key_row_clear, then free. */
int llmux_storage_load_keys(llmux_db *db, llmux_key_row **rows, size_t *n, char *err, size_t errlen);
/* Renders one generation (OpenRouter GET /generation "data") into out; 404 if absent. */
int llmux_storage_get_generation(llmux_db *db, const char *id, llmux_buf *out, char *key_hash_out,
                                 char *err, size_t errlen);
int llmux_storage_activity(llmux_db *db, const char *key_hash, int64_t since, llmux_buf *out, char *err,
                           size_t errlen);
#endif
