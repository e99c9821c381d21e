/* Accounts in the request path: the in-memory key table, authorisation,
 * credit and rate limits, usage accounting and generation records. */
#include "accounts.h"
#include "buf.h"
#include "exchange.h"
#include "json.h"
#include "log.h"
#include "ratelimit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#define KEY_BUCKETS 4096

static struct {
    int started, storage_on, durable, have_byok_key;
    unsigned char byok_key[32];
    pthread_rwlock_t lock;    /* the table's shape */
    llmux_key *buckets[KEY_BUCKETS];
    pthread_mutex_t retired_mu; /* strings replaced while requests may still point at them */
    void **retired;
    size_t n_retired, cap_retired;
} A = {.lock = PTHREAD_RWLOCK_INITIALIZER, .retired_mu = PTHREAD_MUTEX_INITIALIZER};

static int64_t now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static unsigned bucket_of(const char *hash)
{
    unsigned h = 2166136261u;
    for (int i = 0; i < 16 && hash[i]; i++) h = (h ^ (unsigned char)hash[i]) * 16777619u;
    return h % KEY_BUCKETS;
}

static void retire(void *p)
{
    if (!p) return;
    pthread_mutex_lock(&A.retired_mu);
    if (A.n_retired == A.cap_retired) {
        size_t cap = A.cap_retired ? A.cap_retired * 2 : 64;
        void **r = realloc(A.retired, cap * sizeof *r);
        if (!r) { pthread_mutex_unlock(&A.retired_mu); return; } /* leak rather than free under a reader */
        A.retired = r;
        A.cap_retired = cap;
    }
    A.retired[A.n_retired++] = p;
    pthread_mutex_unlock(&A.retired_mu);
}

static void retire_byok(llmux_kv *kv, size_t n)
{
    if (!kv) return;
    for (size_t i = 0; i < n; i++) {
        retire((void *)kv[i].key);
        retire((void *)kv[i].value);
    }
    retire(kv);
}

const unsigned char *llmux_accounts_byok_key(void) { return A.have_byok_key ? A.byok_key : NULL; }
int llmux_accounts_storage_on(void) { return A.storage_on; }

/* Decrypts a key's BYOK blob into provider -> key pairs. */
static int byok_parse(const char *enc, llmux_kv **out, size_t *nout)
{
    *out = NULL;
    *nout = 0;
    if (!enc || !*enc) return 0;
    if (!A.have_byok_key) return -1;
    size_t n;
    char *plain = llmux_byok_decrypt(A.byok_key, enc, &n);
    if (!plain) return -1;
    llmux_json doc;
    int rc = -1;
    if (llmux_json_parse(plain, n, NULL, &doc, NULL, NULL) == 0) {
        if (doc.tok[0].type == LLMUX_JSON_OBJECT) {
            int cnt = doc.tok[0].size;
            llmux_kv *kv = calloc((size_t)cnt + 1, sizeof *kv);
            size_t k = 0;
            for (int i = 1; kv && i < doc.ntok && (int)k < cnt;) {
                llmux_buf a = {0}, b = {0};
                int v = i + 1;
                if (doc.tok[v].type == LLMUX_JSON_STRING && llmux_json_unescape(&doc, i, &a) == 0 &&
                    llmux_json_unescape(&doc, v, &b) == 0 && a.data && b.data) {
                    kv[k].key = llmux_buf_steal(&a);
                    kv[k].value = llmux_buf_steal(&b);
                    k++;
                }
                llmux_buf_free(&a);
                llmux_buf_free(&b);
                i = llmux_json_skip(&doc, v);
            }
            if (kv) {
                *out = kv;
                *nout = k;
                rc = 0;
            }
        }
        llmux_json_release(&doc);
    }
    memset(plain, 0, n);
    free(plain);
    return rc;
}

static void key_apply_row(llmux_key *k, const llmux_key_row *row, int from_db)
{
    /* caller holds k->mu */
    if (!k->name || strcmp(k->name, row->name ? row->name : "")) {
        retire(k->name);
        k->name = strdup(row->name ? row->name : "");
    }
    if (!k->label || strcmp(k->label, row->label ? row->label : "")) {
        retire(k->label);
        k->label = strdup(row->label ? row->label : "");
    }
    k->has_limit = row->has_limit;
    k->limit = row->limit_usd;
    if (from_db) k->usage_db = row->usage_usd;
    k->disabled = row->disabled;
    k->expires_at = row->expires_at;
    k->created_at = row->created_at;
    k->updated_at = row->updated_at;
    if (k->rl_requests != row->rl_requests || k->rl_interval_s != row->rl_interval_s) k->bucket_ns = 0;
    k->rl_requests = row->rl_requests;
    k->rl_interval_s = row->rl_interval_s;
    int same = (!k->byok_enc && !row->byok) || (k->byok_enc && row->byok && !strcmp(k->byok_enc, row->byok));
    if (!same) {
        retire(k->byok_enc);
        retire_byok(k->byok, k->n_byok);
        k->byok_enc = row->byok ? strdup(row->byok) : NULL;
        if (byok_parse(k->byok_enc, &k->byok, &k->n_byok) < 0)
            LOG_WARN("key %.12s...: its BYOK keys cannot be decrypted (is the encryption key set?)", k->hash);
    }
}

llmux_key *llmux_accounts_find(const char *hash)
{
    pthread_rwlock_rdlock(&A.lock);
    llmux_key *k = A.buckets[bucket_of(hash)];
    while (k && strcmp(k->hash, hash)) k = k->next;
    pthread_rwlock_unlock(&A.lock);
    return k;
}

/* Finds or creates (under the write lock); deleted entries come back to life. */
static llmux_key *find_or_add(const char *hash)
{
    unsigned b = bucket_of(hash);
    pthread_rwlock_wrlock(&A.lock);
    llmux_key *k = A.buckets[b];
    while (k && strcmp(k->hash, hash)) k = k->next;
    if (!k && (k = calloc(1, sizeof *k))) {
        snprintf(k->hash, sizeof k->hash, "%s", hash);
        pthread_mutex_init(&k->mu, NULL);
        k->next = A.buckets[b];
        A.buckets[b] = k;
    }
    pthread_rwlock_unlock(&A.lock);
    return k;
}

static void queue_key(const llmux_key_row *row, int del)
{
    if (!A.storage_on) return;
    llmux_storage_op *op = llmux_storage_op_new(del ? LLMUX_STORAGE_KEY_DELETE : LLMUX_STORAGE_KEY_UPSERT);
    if (!op) return;
    op->key = *row;
    op->key.name = row->name ? strdup(row->name) : NULL;
    op->key.label = row->label ? strdup(row->label) : NULL;
    op->key.byok = row->byok ? strdup(row->byok) : NULL;
    if (llmux_storage_submit(op) < 0) {
        LOG_ERROR("storage queue full or stopped: key %.12s... change not persisted", row->hash);
        llmux_storage_op_free(op);
    }
}

llmux_key *llmux_accounts_upsert(const llmux_key_row *row, int persist)
{
    llmux_key *k = find_or_add(row->hash);
    if (!k) return NULL;
    pthread_mutex_lock(&k->mu);
    int fresh = k->deleted || !k->name;
    k->deleted = 0;
    key_apply_row(k, row, fresh);
    llmux_key_row snap = *row;
    snap.usage_usd = k->usage_db + k->pending;
    pthread_mutex_unlock(&k->mu);
    if (persist) queue_key(&snap, 0);
    return k;
}

int llmux_accounts_delete(const char *hash)
{
    llmux_key *k = llmux_accounts_find(hash);
    if (!k) return -1;
    pthread_mutex_lock(&k->mu);
    int was = k->deleted;
    k->deleted = 1;
    pthread_mutex_unlock(&k->mu);
    if (was) return -1;
    llmux_key_row row = {0};
    snprintf(row.hash, sizeof row.hash, "%s", hash);
    queue_key(&row, 1);
    return 0;
}

void llmux_key_snapshot(llmux_key *k, llmux_key_row *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&k->mu);
    snprintf(out->hash, sizeof out->hash, "%s", k->hash);
    out->name = strdup(k->name ? k->name : "");
    out->label = strdup(k->label ? k->label : "");
    out->has_limit = k->has_limit;
    out->limit_usd = k->limit;
    out->usage_usd = k->usage_db + k->pending;
    out->disabled = k->disabled;
    out->expires_at = k->expires_at;
    out->created_at = k->created_at;
    out->updated_at = k->updated_at;
    out->rl_requests = k->rl_requests;
    out->rl_interval_s = k->rl_interval_s;
    out->byok = k->byok_enc ? strdup(k->byok_enc) : NULL;
    pthread_mutex_unlock(&k->mu);
}

double llmux_key_usage(llmux_key *k)
{
    pthread_mutex_lock(&k->mu);
    double u = k->usage_db + k->pending;
    pthread_mutex_unlock(&k->mu);
    return u;
}

void llmux_accounts_each(void (*cb)(llmux_key *k, void *ud), void *ud)
{
    pthread_rwlock_rdlock(&A.lock);
    for (int b = 0; b < KEY_BUCKETS; b++)
        for (llmux_key *k = A.buckets[b]; k; k = k->next) {
            pthread_mutex_lock(&k->mu);
            int live = !k->deleted && k->name;
            pthread_mutex_unlock(&k->mu);
            if (live) cb(k, ud);
        }
    pthread_rwlock_unlock(&A.lock);
}

/* ---- storage hooks (storage thread) ---------------------------------------- */

static void on_usage_committed(const char *hash, double delta)
{
    llmux_key *k = llmux_accounts_find(hash);
    if (!k) return;
    pthread_mutex_lock(&k->mu);
    k->pending -= delta;
    k->usage_db += delta;
    if (k->pending < 1e-15 && k->pending > -1e-15) k->pending = 0;
    pthread_mutex_unlock(&k->mu);
}

static void on_keys_loaded(llmux_key_row *rows, size_t n)
{
    /* Keys that vanished from the database (deleted by another instance). */
    pthread_rwlock_rdlock(&A.lock);
    for (int b = 0; b < KEY_BUCKETS; b++)
        for (llmux_key *k = A.buckets[b]; k; k = k->next) {
            int found = 0;
            for (size_t i = 0; i < n && !found; i++) found = !strcmp(rows[i].hash, k->hash);
            if (!found) {
                pthread_mutex_lock(&k->mu);
                /* A key created here moments ago may not be committed yet. */
                if (k->name && now_ms() / 1000 - k->created_at > 5) k->deleted = 1;
                pthread_mutex_unlock(&k->mu);
            }
        }
    pthread_rwlock_unlock(&A.lock);
    for (size_t i = 0; i < n; i++) {
        llmux_key *k = find_or_add(rows[i].hash);
        if (!k) continue;
        pthread_mutex_lock(&k->mu);
        k->deleted = 0;
        key_apply_row(k, &rows[i], 1);
        pthread_mutex_unlock(&k->mu);
    }
}

/* ---- start / stop ----------------------------------------------------------- */

int llmux_accounts_start(const llmux_config *cfg, char *err, size_t errlen)
{
    A.have_byok_key = llmux_byok_key_from_env(cfg->byok_key_env, A.byok_key) == 0;
    A.durable = cfg->storage_durable;
    if (cfg->redis && llmux_ratelimit_redis_configure(cfg->redis) < 0) {
        snprintf(err, errlen, "redis: expected \"host:port\", got \"%s\"", cfg->redis);
        return -1;
    }
    if (cfg->storage_mode) {
        llmux_storage_hooks h = {on_usage_committed, on_keys_loaded};
        /* Several instances share PostgreSQL: re-read keys (usage, changes) often. */
        uint32_t refresh = cfg->storage_mode == 2 ? 500 : 1000;
        char e[512];
        if (llmux_storage_start(cfg->storage_mode == 2, cfg->storage_path, &h, refresh, 65536, e, sizeof e) < 0) {
            if (cfg->storage_explicit || cfg->auth_keys) {
                snprintf(err, errlen, "storage: %s", e);
                return -1;
            }
            LOG_WARN("storage: %s; generations will not be recorded", e);
        } else {
            A.storage_on = 1;
        }
    }
    if (cfg->auth_keys && !A.storage_on) {
        snprintf(err, errlen, "auth = \"keys\" needs storage (storage = { sqlite = PATH } or { postgres = CONNINFO })");
        return -1;
    }
    A.started = 1;
    return 0;
}

void llmux_accounts_stop(void)
{
    if (!A.started) return;
    llmux_storage_stop();
    A.storage_on = 0;
    A.started = 0;
    pthread_rwlock_wrlock(&A.lock);
    for (int b = 0; b < KEY_BUCKETS; b++) {
        for (llmux_key *k = A.buckets[b], *next; k; k = next) {
            next = k->next;
            free(k->name);
            free(k->label);
            free(k->byok_enc);
            for (size_t i = 0; i < k->n_byok; i++) {
                free((void *)k->byok[i].key);
                free((void *)k->byok[i].value);
            }
            free(k->byok);
            pthread_mutex_destroy(&k->mu);
            free(k);
        }
        A.buckets[b] = NULL;
    }
    pthread_rwlock_unlock(&A.lock);
    pthread_mutex_lock(&A.retired_mu);
    for (size_t i = 0; i < A.n_retired; i++) free(A.retired[i]);
    free(A.retired);
    A.retired = NULL;
    A.n_retired = A.cap_retired = 0;
    pthread_mutex_unlock(&A.retired_mu);
    memset(A.byok_key, 0, sizeof A.byok_key);
}

/* ---- request path ------------------------------------------------------------ */

/* Shared head of the things an exchange may wait on (ex is NULLed when the
 * exchange ends first). */
typedef struct {
    llmux_exchange *ex;
} acct_wait;

static void fail_auth(llmux_exchange *ex, int status, const char *msg)
{
    llmux_exchange_fail_early_headers(ex, status, msg, NULL, NULL);
}

int llmux_accounts_authorize(llmux_exchange *ex, const llmux_http_request *r)
{
    const llmux_config *cfg = ex->rt->cfg;
    if (!cfg->auth_keys) return 0;
    const char *h = llmux_http_header(r, "authorization");
    const char *key = NULL;
    if (h && strncasecmp(h, "Bearer ", 7) == 0) key = h + 7;
    else if ((h = llmux_http_header(r, "x-api-key"))) key = h; /* Anthropic clients */
    while (key && *key == ' ') key++;
    if (!key || !*key) { fail_auth(ex, 401, "No auth credentials found: send Authorization: Bearer <key>"); return -1; }
    char hash[65];
    llmux_key_hash(key, strlen(key), hash);
    llmux_key *k = A.started ? llmux_accounts_find(hash) : NULL;
    if (!k) { fail_auth(ex, 401, "Invalid API key"); return -1; }
    pthread_mutex_lock(&k->mu);
    int deleted = k->deleted || !k->name, disabled = k->disabled;
    int expired = k->expires_at && k->expires_at * 1000 <= now_ms();
    ex->key_label = k->label;
    pthread_mutex_unlock(&k->mu);
    if (deleted) { fail_auth(ex, 401, "Invalid API key"); return -1; }
    if (disabled) { fail_auth(ex, 401, "API key is disabled"); return -1; }
    if (expired) { fail_auth(ex, 401, "API key has expired"); return -1; }
    ex->acct_key = k;
    return 0;
}

static double worst_case_cost(const llmux_exchange *ex)
{
    double worst = 0;
    int64_t prompt = (int64_t)(ex->body_len / 4) + 1;
    for (int i = 0; i < ex->nplan; i++) {
        const llmux_endpoint_cfg *ep = ex->cands[ex->plan[i].candidate].ep;
        int64_t mt = ex->req.max_tokens > 0 ? ex->req.max_tokens : ep->max_completion_tokens;
        llmux_usage u = {prompt, mt, 0, 0, 0};
        double c = llmux_cost(ep, &u);
        if (c > worst) worst = c;
    }
    return worst;
}

static void rl_headers(char *out, size_t n, const llmux_rl_result *r)
{
    snprintf(out, n, "Retry-After: %u\r\nX-RateLimit-Limit: %lld\r\nX-RateLimit-Remaining: %lld\r\nX-RateLimit-Reset: %lld\r\n",
             r->retry_after_s, (long long)r->limit, (long long)r->remaining, (long long)r->reset_ms);
}

static void refuse_rate(llmux_exchange *ex, const llmux_rl_result *r)
{
    char hdr[256], msg[160];
    rl_headers(hdr, sizeof hdr, r);
    snprintf(msg, sizeof msg, "Rate limit exceeded: %lld requests per %llds for this key", (long long)r->limit,
             (long long)ex->acct_key->rl_interval_s);
    ex->retry_after_ms = r->retry_after_s * 1000;
    llmux_exchange_fail_early_headers(ex, 429, msg, NULL, hdr);
}

typedef struct {
    acct_wait head;
} rl_wait;

static void local_bucket(llmux_key *k, int64_t limit, int64_t interval, llmux_rl_result *res)
{
    pthread_mutex_lock(&k->mu);
    llmux_ratelimit_bucket(&k->tokens, &k->bucket_ns, limit, interval, llmux_now_ns(), now_ms(), res);
    pthread_mutex_unlock(&k->mu);
}

static void on_redis_rl(void *ud, const llmux_rl_result *r, int error)
{
    rl_wait *w = ud;
    llmux_exchange *ex = w->head.ex;
    free(w);
    if (!ex) return; /* the client went away meanwhile */
    ex->acct_wait = NULL;
    llmux_rl_result res = *r;
    if (error) {
        /* Redis unreachable: fail open to this process's bucket. */
        static _Atomic uint64_t last_warn;
        uint64_t now = llmux_now_ns();
        if (now - last_warn > 10000000000ull) { last_warn = now; LOG_WARN("redis rate limiter unreachable: using the in-process bucket"); }
        local_bucket(ex->acct_key, ex->acct_key->rl_requests, ex->acct_key->rl_interval_s, &res);
    }
    if (!res.allowed) { refuse_rate(ex, &res); return; }
    llmux_exchange_run(ex);
}

void llmux_accounts_run(llmux_exchange *ex)
{
    llmux_key *k = ex->acct_key;
    if (!k) { llmux_exchange_run(ex); return; }
    pthread_mutex_lock(&k->mu);
    int has_limit = k->has_limit;
    double remaining = k->limit - (k->usage_db + k->pending);
    int64_t rl = k->rl_requests, interval = k->rl_interval_s;
    pthread_mutex_unlock(&k->mu);
    if (has_limit) {
        double worst = worst_case_cost(ex);
        if (remaining <= 0 || worst > remaining) {
            char msg[256];
            snprintf(msg, sizeof msg,
                     "Insufficient credits: this request may cost up to $%.6f (max_tokens at the most expensive "
                     "endpoint) and the key has $%.6f left",
                     worst, remaining > 0 ? remaining : 0);
            llmux_exchange_fail_early_headers(ex, 402, msg, NULL, NULL);
            return;
        }
    }
    if (rl > 0) {
        if (llmux_ratelimit_redis_enabled()) {
            rl_wait *w = calloc(1, sizeof *w);
            if (w) {
                w->head.ex = ex;
                if (llmux_ratelimit_redis(&ex->w->loop, k->hash, rl, interval, on_redis_rl, w) == 0) {
                    ex->acct_wait = w;
                    return;
                }
                free(w);
            }
        }
        llmux_rl_result res;
        local_bucket(k, rl, interval, &res);
        if (!res.allowed) { refuse_rate(ex, &res); return; }
    }
    llmux_exchange_run(ex);
}

void llmux_accounts_attempt_start(llmux_exchange *ex)
{
    ex->req.api_key_override = NULL;
    llmux_key *k = ex->acct_key;
    if (!k || !ex->ep) return;
    pthread_mutex_lock(&k->mu);
    for (size_t i = 0; i < k->n_byok; i++)
        if (!strcmp(k->byok[i].key, ex->ep->provider->id)) ex->req.api_key_override = k->byok[i].value;
    pthread_mutex_unlock(&k->mu);
}

double llmux_accounts_charge(const llmux_exchange *ex)
{
    if (!ex->ep) return 0;
    double c = llmux_cost(ex->ep, &ex->res.usage);
    if (ex->req.api_key_override) c *= ex->rt->cfg->byok_fee;
    return c;
}

static const char *finish_or_empty(llmux_finish f)
{
    const char *n = llmux_finish_name(f);
    return n ? n : "";
}

/* Fills the record; returns what the key is charged. */
static double build_record(llmux_exchange *ex, llmux_gen_record *g, int ok)
{
    uint64_t now = llmux_now_ns();
    snprintf(g->id, sizeof g->id, "%s", ex->gen_id);
    snprintf(g->key_hash, sizeof g->key_hash, "%s", ex->acct_key ? ex->acct_key->hash : "");
    snprintf(g->model, sizeof g->model, "%s", ex->ep->model->id);
    snprintf(g->provider, sizeof g->provider, "%s", ex->ep->provider->name);
    snprintf(g->upstream_id, sizeof g->upstream_id, "%s", ex->res.upstream_id);
    g->streamed = ex->stream;
    g->cancelled = ex->aborted;
    g->status = ok ? 200 : ex->aborted ? 499 : ex->final_status ? ex->final_status : ex->err_status;
    g->latency_ms = (double)(now - ex->start_ns) / 1e6;
    g->generation_time_ms = ex->attempt_start_ns ? (double)(now - ex->attempt_start_ns) / 1e6 : 0;
    g->ttft_ms = ex->first_token_ns ? (double)(ex->first_token_ns - ex->start_ns) / 1e6 : -1;
    snprintf(g->finish_reason, sizeof g->finish_reason, "%s", ex->aborted && !ok ? "cancelled" : finish_or_empty(ex->res.finish));
    snprintf(g->native_finish_reason, sizeof g->native_finish_reason, "%s", ex->res.native_finish);
    int produced = ok || ex->res.any_output || ex->res.has_usage;
    if (produced && !ex->res.has_usage) {
        /* No usage from the upstream (cancelled, or it never said): estimate
         * from what was seen, as the engine does for completed answers. */
        size_t chars = ex->res.content.len + ex->res.reasoning.len;
        if (ex->streamed_chars > chars) chars = ex->streamed_chars;
        ex->res.usage = (llmux_usage){(int64_t)(ex->body_len / 4) + 1, (int64_t)((chars + 3) / 4), 0, 0, 0};
        ex->res.has_usage = 1;
    }
    const llmux_usage *u = &ex->res.usage;
    if (produced) {
        g->tokens_prompt = u->prompt_tokens > 0 ? u->prompt_tokens : 0;
        g->tokens_completion = u->completion_tokens > 0 ? u->completion_tokens : 0;
        g->tokens_reasoning = u->reasoning_tokens > 0 ? u->reasoning_tokens : 0;
        g->tokens_cached = u->cached_tokens > 0 ? u->cached_tokens : 0;
    }
    g->is_byok = ex->req.api_key_override != NULL;
    g->cost = produced ? llmux_accounts_charge(ex) : 0;
    g->created_at = ex->created;
    return g->cost;
}

/* Usage goes on the key at once; the storage thread persists it. */
static llmux_storage_op *record_op(llmux_exchange *ex, int ok)
{
    ex->acct_recorded = 1;
    llmux_storage_op *op = llmux_storage_op_new(LLMUX_STORAGE_GEN);
    if (!op) return NULL;
    double charge = build_record(ex, &op->gen, ok);
    llmux_key *k = ex->acct_key;
    if (k && charge > 0) {
        pthread_mutex_lock(&k->mu);
        if (A.storage_on) k->pending += charge;
        else k->usage_db += charge;
        pthread_mutex_unlock(&k->mu);
        op->usage_delta = charge;
    }
    return op;
}

static void drop_record(llmux_storage_op *op)
{
    LOG_ERROR("%s: storage queue full or stopped: generation record dropped", op->gen.id);
    if (op->usage_delta != 0 && op->gen.key_hash[0]) on_usage_committed(op->gen.key_hash, op->usage_delta);
    llmux_storage_op_free(op);
}

typedef struct {
    acct_wait head;
    uv_async_t async;
    llmux_storage_op *op;
} commit_wait;

static void commit_wait_closed(uv_handle_t *h)
{
    commit_wait *w = h->data;
    llmux_storage_op_free(w->op);
    free(w);
}

static void on_committed(uv_async_t *a)
{
    commit_wait *w = a->data;
    llmux_exchange *ex = w->head.ex;
    uv_close((uv_handle_t *)&w->async, commit_wait_closed);
    if (!ex) return;
    ex->acct_wait = NULL;
    llmux_exchange_complete(ex);
}

static void commit_done(llmux_storage_op *op)
{
    commit_wait *w = op->ud;
    uv_async_send(&w->async); /* the last touch of w from the storage thread */
}

int llmux_accounts_before_complete(llmux_exchange *ex)
{
    if (ex->acct_recorded || !ex->ep) return 0;
    llmux_storage_op *op = record_op(ex, 1);
    if (!op) return 0;
    if (!A.storage_on) { llmux_storage_op_free(op); return 0; }
    if (!A.durable) {
        if (llmux_storage_submit(op) < 0) drop_record(op);
        return 0;
    }
    commit_wait *w = calloc(1, sizeof *w);
    if (!w) { if (llmux_storage_submit(op) < 0) drop_record(op); return 0; }
    w->head.ex = ex;
    w->op = op;
    w->async.data = w;
    uv_async_init(&ex->w->loop, &w->async, on_committed);
    op->done = commit_done;
    op->ud = w;
    if (llmux_storage_submit(op) < 0) {
        op->done = NULL;
        w->op = NULL;
        drop_record(op);
        w->head.ex = NULL;
        uv_close((uv_handle_t *)&w->async, commit_wait_closed);
        return 0;
    }
    ex->acct_wait = w;
    return 1;
}

void llmux_accounts_finish(llmux_exchange *ex)
{
    if (ex->acct_wait) {
        ((acct_wait *)ex->acct_wait)->ex = NULL;
        ex->acct_wait = NULL;
    }
    if (ex->acct_recorded || !ex->ep) return;
    if (!A.storage_on) { /* usage still counts in memory */
        llmux_storage_op_free(record_op(ex, 0));
        return;
    }
    llmux_storage_op *op = record_op(ex, 0);
    if (op && llmux_storage_submit(op) < 0) drop_record(op);
}
