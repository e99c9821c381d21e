/* Accounts: API keys (hashed, cached in memory per process), credit limits,
 * per-key rate limits, usage accounting, generation records and BYOK.
 * Key lookups never touch the database on a worker: every process keeps all
 * keys in memory, loaded at start and refreshed by the storage thread (which
 * also persists every change). See docs/accounts.md. */
#ifndef LLMUX_ACCOUNTS_H
#define LLMUX_ACCOUNTS_H
#include "config.h"
#include "http_server.h"
#include "storage.h"
#include <pthread.h>
#include <stdint.h>

struct llmux_exchange;

typedef struct llmux_key {
    struct llmux_key *next; /* hash chain */
    char hash[65];
    pthread_mutex_t mu;     /* everything below */
    char *name, *label;
    int has_limit;
    double limit;
    double usage_db;        /* usage as last read from / written to the database */
    double pending;         /* added here, not yet committed */
    int disabled, deleted;
    int64_t expires_at, created_at, updated_at;
    int64_t rl_requests, rl_interval_s;
    double tokens;          /* in-process token bucket */
    uint64_t bucket_ns;
    char *byok_enc;         /* as stored */
    llmux_kv *byok;         /* decrypted provider id -> key; never logged */
    size_t n_byok;
} llmux_key;

/* Start-up (main thread): opens storage from the config, loads the keys,
 * starts the storage thread. Returns -1 with err on a fatal problem. */
int llmux_accounts_start(const llmux_config *cfg, char *err, size_t errlen);
void llmux_accounts_stop(void); /* after the workers stopped */
int llmux_accounts_storage_on(void);

/* Request path (chat.c / exchange.c). Each returns 0 to go on, or -1 when it
 * already answered the client (the exchange is finished). */
int llmux_accounts_authorize(struct llmux_exchange *ex, const llmux_http_request *r);
/* After planning: credit check (402), rate limit (429; Redis answers
 * asynchronously), then llmux_exchange_run. */
void llmux_accounts_run(struct llmux_exchange *ex);
/* At attempt start: the BYOK key for the attempt's provider, if any. */
void llmux_accounts_attempt_start(struct llmux_exchange *ex);
/* On success, before the final bytes: records the generation; returns 1 when
 * the answer waits for the commit (durable storage) and will be completed by
 * llmux_exchange_complete, 0 to complete now. */
int llmux_accounts_before_complete(struct llmux_exchange *ex);
/* From exchange_finish (every request, aborted ones too): records the
 * generation unless already recorded, releases pending waits. */
void llmux_accounts_finish(struct llmux_exchange *ex);
/* What the key is charged for this exchange's usage (BYOK fee applied). */
double llmux_accounts_charge(const struct llmux_exchange *ex);

/* Routes (accounts_api.c): GET /key, GET /credits, GET|POST /keys,
 * GET|PATCH|DELETE /keys/{hash}, GET /generation?id=, GET /activity.
 * path is without the /api/v1/ or /v1/ prefix. Returns 1 if handled. */
int llmux_handle_accounts(llmux_conn *c, const llmux_http_request *r, const char *path);

/* Keys (routes, CLI). */
void llmux_key_hash(const char *key, size_t n, char out[65]);
int llmux_key_generate(char out[80]); /* "sk-llmux-v1-<64 hex>" */
/* Live key by hash, or NULL. Entries live until llmux_accounts_stop. */
llmux_key *llmux_accounts_find(const char *hash);
/* Calls cb for each live key (under the table's read lock). */
void llmux_accounts_each(void (*cb)(llmux_key *k, void *ud), void *ud);
/* Adds or updates a key in memory from row (usage kept for an existing key)
 * and, when persist, queues the row for storage. NULL on failure. */
llmux_key *llmux_accounts_upsert(const llmux_key_row *row, int persist);
int llmux_accounts_delete(const char *hash); /* 0, or -1 if unknown */
/* A copy of the key's state (strings malloc'd; clear with llmux_key_row_clear). */
void llmux_key_snapshot(llmux_key *k, llmux_key_row *out);
double llmux_key_usage(llmux_key *k);
/* The configured BYOK encryption key (from the environment), or NULL. */
const unsigned char *llmux_accounts_byok_key(void);

/* BYOK encryption at rest (AES-256-GCM): "v1:" + hex(iv | tag | ciphertext). */
int llmux_byok_key_from_env(const char *env_name, unsigned char key[32]); /* 0, or -1 if unset */
char *llmux_byok_encrypt(const unsigned char key[32], const char *plain, size_t n);
char *llmux_byok_decrypt(const unsigned char key[32], const char *enc, size_t *n);
int llmux_random_bytes(void *buf, size_t n);
/* Constant-time string compare (secrets). */
int llmux_secret_eq(const char *a, const char *b);
#endif
