/* Accounts routes: GET /key, GET /credits, GET|POST /keys,
 * GET|PATCH|DELETE /keys/{hash} (management key), GET /generation?id=,
 * GET /activity. Everything but /generation and /activity answers from the
 * in-memory key table; those two are read on the storage thread and answered
 * on the worker's loop through a uv_async. */
#include "accounts.h"
#include "buf.h"
#include "json.h"
#include "log.h"
#include "worker.h"
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    int mgmt;        /* the management key */
    llmux_key *key;  /* a live key */
    int anonymous;   /* auth = "none" and no key given */
} caller;

static const llmux_config *cfg_of(llmux_conn *c) { return llmux_conn_worker(c)->rt->cfg; }

/* 0 ok; -1 answered 401. */
static int identify(llmux_conn *c, const llmux_http_request *r, caller *who, int need_mgmt)
{
    memset(who, 0, sizeof *who);
    const llmux_config *cfg = cfg_of(c);
    const char *h = llmux_http_header(r, "authorization");
    const char *tok = h && strncasecmp(h, "Bearer ", 7) == 0 ? h + 7 : NULL;
    while (tok && *tok == ' ') tok++;
    if (tok && *tok && cfg->management_key && llmux_secret_eq(tok, cfg->management_key)) {
        who->mgmt = 1;
        return 0;
    }
    if (need_mgmt) {
        llmux_conn_respond_error(c, cfg->management_key ? 401 : 403,
                                 cfg->management_key ? "this route needs the management key"
                                                     : "key management is disabled (no management_key configured)",
                                 NULL, NULL);
        return -1;
    }
    if (tok && *tok) {
        char hash[65];
        llmux_key_hash(tok, strlen(tok), hash);
        llmux_key *k = llmux_accounts_find(hash);
        if (k) {
            pthread_mutex_lock(&k->mu);
            int ok = !k->deleted && k->name && !k->disabled && !(k->expires_at && k->expires_at <= time(NULL));
            pthread_mutex_unlock(&k->mu);
            if (ok) { who->key = k; return 0; }
        }
    }
    if (!cfg->auth_keys) { who->anonymous = 1; return 0; }
    llmux_conn_respond_error(c, 401, tok && *tok ? "Invalid API key" : "No auth credentials found", NULL, NULL);
    return -1;
}

static void iso(int64_t t, char *out, size_t n)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void append_num_or_null(llmux_buf *b, int has, double v)
{
    if (has) llmux_buf_append_double(b, v);
    else llmux_buf_append_str(b, "null");
}

static void append_rate_limit(llmux_buf *b, const llmux_key_row *k)
{
    llmux_buf_printf(b, "{\"requests\":%lld,\"interval\":\"%llds\"}", k->rl_requests ? (long long)k->rl_requests : -1LL,
                     (long long)(k->rl_interval_s ? k->rl_interval_s : 10));
}

static void append_byok_providers(llmux_buf *b, llmux_key *k)
{
    llmux_buf_append_char(b, '[');
    pthread_mutex_lock(&k->mu);
    for (size_t i = 0; i < k->n_byok; i++) {
        if (i) llmux_buf_append_char(b, ',');
        llmux_buf_append_jstr(b, k->byok[i].key); /* provider ids only, never the keys */
    }
    pthread_mutex_unlock(&k->mu);
    llmux_buf_append_char(b, ']');
}

/* The management view of a key. */
static void append_key(llmux_buf *b, llmux_key *k)
{
    llmux_key_row s;
    llmux_key_snapshot(k, &s);
    char created[32], updated[32], expires[32];
    iso(s.created_at, created, sizeof created);
    iso(s.updated_at ? s.updated_at : s.created_at, updated, sizeof updated);
    llmux_buf_append_str(b, "{\"hash\":");
    llmux_buf_append_jstr(b, s.hash);
    llmux_buf_append_str(b, ",\"name\":");
    llmux_buf_append_jstr(b, s.name);
    llmux_buf_append_str(b, ",\"label\":");
    llmux_buf_append_jstr(b, s.label);
    llmux_buf_printf(b, ",\"disabled\":%s,\"limit\":", s.disabled ? "true" : "false");
    append_num_or_null(b, s.has_limit, s.limit_usd);
    llmux_buf_append_str(b, ",\"limit_remaining\":");
    append_num_or_null(b, s.has_limit, s.limit_usd - s.usage_usd > 0 ? s.limit_usd - s.usage_usd : 0);
    llmux_buf_append_str(b, ",\"usage\":");
    llmux_buf_append_double(b, s.usage_usd);
    llmux_buf_printf(b, ",\"created_at\":\"%s\",\"updated_at\":\"%s\",\"expires_at\":", created, updated);
    if (s.expires_at) { iso(s.expires_at, expires, sizeof expires); llmux_buf_printf(b, "\"%s\"", expires); }
    else llmux_buf_append_str(b, "null");
    llmux_buf_append_str(b, ",\"rate_limit\":");
    append_rate_limit(b, &s);
    llmux_buf_append_str(b, ",\"byok_providers\":");
    append_byok_providers(b, k);
    llmux_buf_append_char(b, '}');
    llmux_key_row_clear(&s);
}

static void respond_json(llmux_conn *c, int status, llmux_buf *b)
{
    llmux_conn_respond(c, status, "application/json", NULL, b->data ? b->data : "{}", b->data ? b->len : 2);
    llmux_buf_free(b);
}

static void get_key(llmux_conn *c, const llmux_http_request *r)
{
    caller who;
    if (identify(c, r, &who, 0) < 0) return;
    llmux_buf b = {0};
    if (!who.key) {
        llmux_buf_printf(&b, "{\"data\":{\"label\":\"%s\",\"usage\":0,\"limit\":null,\"limit_remaining\":null,"
                              "\"is_free_tier\":false,\"is_management\":%s,\"rate_limit\":{\"requests\":-1,\"interval\":\"10s\"}}}",
                         who.mgmt ? "management" : "anonymous", who.mgmt ? "true" : "false");
        respond_json(c, 200, &b);
        return;
    }
    llmux_key_row s;
    llmux_key_snapshot(who.key, &s);
    llmux_buf_append_str(&b, "{\"data\":{\"label\":");
    llmux_buf_append_jstr(&b, s.label);
    llmux_buf_append_str(&b, ",\"name\":");
    llmux_buf_append_jstr(&b, s.name);
    llmux_buf_append_str(&b, ",\"usage\":");
    llmux_buf_append_double(&b, s.usage_usd);
    llmux_buf_append_str(&b, ",\"limit\":");
    append_num_or_null(&b, s.has_limit, s.limit_usd);
    llmux_buf_append_str(&b, ",\"limit_remaining\":");
    append_num_or_null(&b, s.has_limit, s.limit_usd - s.usage_usd > 0 ? s.limit_usd - s.usage_usd : 0);
    llmux_buf_append_str(&b, ",\"is_free_tier\":false,\"is_management\":false,\"rate_limit\":");
    append_rate_limit(&b, &s);
    llmux_buf_append_str(&b, ",\"byok_providers\":");
    append_byok_providers(&b, who.key);
    llmux_buf_append_str(&b, "}}");
    llmux_key_row_clear(&s);
    respond_json(c, 200, &b);
}

typedef struct {
    double credits, usage;
    int any_limit;
} sums;

static void sum_key(llmux_key *k, void *ud)
{
    sums *s = ud;
    pthread_mutex_lock(&k->mu);
    if (k->has_limit) { s->credits += k->limit; s->any_limit = 1; }
    s->usage += k->usage_db + k->pending;
    pthread_mutex_unlock(&k->mu);
}

static void get_credits(llmux_conn *c, const llmux_http_request *r)
{
    caller who;
    if (identify(c, r, &who, 0) < 0) return;
    sums s = {0};
    if (who.key) sum_key(who.key, &s);
    else llmux_accounts_each(sum_key, &s);
    llmux_buf b = {0};
    llmux_buf_append_str(&b, "{\"data\":{\"total_credits\":");
    append_num_or_null(&b, s.any_limit, s.credits);
    llmux_buf_append_str(&b, ",\"total_usage\":");
    llmux_buf_append_double(&b, s.usage);
    llmux_buf_append_str(&b, "}}");
    respond_json(c, 200, &b);
}

typedef struct {
    llmux_buf *b;
    int n;
} list_ctx;

static void list_key(llmux_key *k, void *ud)
{
    list_ctx *l = ud;
    if (l->n++) llmux_buf_append_char(l->b, ',');
    append_key(l->b, k);
}

/* Reads the fields of a POST/PATCH body into row. Returns NULL or a 400 message. */
static const char *parse_key_body(const llmux_http_request *r, llmux_key_row *row, int creating, char *msg, size_t ml)
{
    llmux_json d;
    const char *why = NULL;
    if (llmux_json_parse(r->body ? r->body : "", r->body_len, NULL, &d, &why, NULL) < 0) return "body must be JSON";
    const char *bad = NULL;
    int i;
    llmux_buf s = {0};
    if (d.tok[0].type != LLMUX_JSON_OBJECT) { bad = "body must be a JSON object"; goto out; }
    if ((i = llmux_json_get(&d, 0, "name")) >= 0) {
        if (d.tok[i].type != LLMUX_JSON_STRING || llmux_json_unescape(&d, i, &s) < 0 || !s.data || !*s.data) { bad = "'name' must be a non-empty string"; goto out; }
        free(row->name);
        row->name = llmux_buf_steal(&s);
    } else if (creating && (i = llmux_json_get(&d, 0, "label")) < 0) {
        bad = "'name' is required";
        goto out;
    }
    if ((i = llmux_json_get(&d, 0, "label")) >= 0) {
        if (d.tok[i].type != LLMUX_JSON_STRING || llmux_json_unescape(&d, i, &s) < 0) { bad = "'label' must be a string"; goto out; }
        free(row->label);
        row->label = llmux_buf_steal(&s);
        if (!row->label) row->label = strdup("");
    }
    if ((i = llmux_json_get(&d, 0, "limit")) >= 0) {
        double v;
        if (llmux_json_is_null(&d, i)) row->has_limit = 0;
        else if (llmux_json_double(&d, i, &v) < 0 || v < 0) { bad = "'limit' must be a non-negative number (USD) or null"; goto out; }
        else { row->has_limit = 1; row->limit_usd = v; }
    }
    if ((i = llmux_json_get(&d, 0, "disabled")) >= 0) {
        int v = llmux_json_bool(&d, i);
        if (v < 0) { bad = "'disabled' must be a boolean"; goto out; }
        row->disabled = v;
    }
    if ((i = llmux_json_get(&d, 0, "expires_at")) >= 0) {
        int64_t t;
        if (llmux_json_is_null(&d, i)) row->expires_at = 0;
        else if (llmux_json_int(&d, i, &t) == 0) row->expires_at = t;
        else if (d.tok[i].type == LLMUX_JSON_STRING && llmux_json_unescape(&d, i, &s) == 0 && s.data) {
            struct tm tm = {0};
            const char *end = strptime(s.data, "%Y-%m-%dT%H:%M:%S", &tm);
            if (!end || (*end && strcmp(end, "Z") && strcmp(end, "+00:00"))) { bad = "'expires_at' must be UTC ISO 8601 (2030-01-01T00:00:00Z) or epoch seconds"; goto out; }
            row->expires_at = (int64_t)timegm(&tm);
            llmux_buf_reset(&s);
        } else { bad = "'expires_at' must be UTC ISO 8601 or epoch seconds"; goto out; }
    }
    if ((i = llmux_json_get(&d, 0, "rate_limit")) >= 0) {
        if (llmux_json_is_null(&d, i)) row->rl_requests = row->rl_interval_s = 0;
        else {
            int rq = d.tok[i].type == LLMUX_JSON_OBJECT ? llmux_json_get(&d, i, "requests") : -1;
            int iv = d.tok[i].type == LLMUX_JSON_OBJECT ? llmux_json_get(&d, i, "interval_s") : -1;
            int64_t a, b = 60;
            if (rq < 0 || llmux_json_int(&d, rq, &a) < 0 || a < 0 || (iv >= 0 && (llmux_json_int(&d, iv, &b) < 0 || b < 1))) {
                bad = "'rate_limit' must be {requests: N, interval_s: SECONDS} or null";
                goto out;
            }
            row->rl_requests = a;
            row->rl_interval_s = a ? b : 0;
        }
    }
    if ((i = llmux_json_get(&d, 0, "byok")) >= 0) {
        free(row->byok);
        row->byok = NULL;
        if (!llmux_json_is_null(&d, i)) {
            if (d.tok[i].type != LLMUX_JSON_OBJECT) { bad = "'byok' must be an object {provider_id: api_key} or null"; goto out; }
            for (int k = i + 1, n = 0; n < d.tok[i].size; n++) {
                if (d.tok[k + 1].type != LLMUX_JSON_STRING) { bad = "'byok' values must be strings"; goto out; }
                k = llmux_json_skip(&d, k + 1);
            }
            const unsigned char *key = llmux_accounts_byok_key();
            if (!key) {
                snprintf(msg, ml, "BYOK needs an encryption key in the environment (byok.encryption_key_env)");
                bad = msg;
                goto out;
            }
            llmux_buf raw = {0};
            llmux_json_append_raw(&raw, &d, i);
            row->byok = raw.data ? llmux_byok_encrypt(key, raw.data, raw.len) : NULL;
            if (raw.data) memset(raw.data, 0, raw.len);
            llmux_buf_free(&raw);
            if (!row->byok) { bad = "could not encrypt the BYOK keys"; goto out; }
        }
    }
out:
    llmux_buf_free(&s);
    llmux_json_release(&d);
    return bad;
}

static void create_key(llmux_conn *c, const llmux_http_request *r)
{
    llmux_key_row row = {0};
    char msg[160];
    const char *bad = parse_key_body(r, &row, 1, msg, sizeof msg);
    if (bad) { llmux_key_row_clear(&row); llmux_conn_respond_error(c, 400, bad, NULL, NULL); return; }
    char key[80];
    if (llmux_key_generate(key) < 0) { llmux_key_row_clear(&row); llmux_conn_respond_error(c, 500, "no randomness", NULL, NULL); return; }
    llmux_key_hash(key, strlen(key), row.hash);
    if (!row.name) row.name = strdup(row.label ? row.label : "");
    if (!row.label) {
        char lab[40];
        snprintf(lab, sizeof lab, "%.15s...%s", key, key + strlen(key) - 3);
        row.label = strdup(lab);
    }
    row.created_at = row.updated_at = time(NULL);
    llmux_key *k = llmux_accounts_upsert(&row, 1);
    llmux_key_row_clear(&row);
    if (!k) { llmux_conn_respond_error(c, 500, "out of memory", NULL, NULL); return; }
    llmux_buf b = {0};
    llmux_buf_append_str(&b, "{\"data\":");
    append_key(&b, k);
    llmux_buf_printf(&b, ",\"key\":\"%s\"}", key); /* shown once */
    memset(key, 0, sizeof key);
    respond_json(c, 201, &b);
    if (b.data) memset(b.data, 0, b.len);
}

static void one_key(llmux_conn *c, const llmux_http_request *r, const char *hash)
{
    llmux_key *k = strlen(hash) == 64 ? llmux_accounts_find(hash) : NULL;
    int live = 0;
    if (k) {
        pthread_mutex_lock(&k->mu);
        live = !k->deleted && k->name;
        pthread_mutex_unlock(&k->mu);
    }
    if (!live) { llmux_conn_respond_error(c, 404, "no such key", NULL, NULL); return; }
    llmux_buf b = {0};
    if (r->method == HTTP_DELETE) {
        llmux_accounts_delete(hash);
        llmux_buf_append_str(&b, "{\"data\":{\"success\":true}}");
        respond_json(c, 200, &b);
        return;
    }
    if (r->method == HTTP_PATCH) {
        llmux_key_row row;
        llmux_key_snapshot(k, &row);
        char msg[160];
        const char *bad = parse_key_body(r, &row, 0, msg, sizeof msg);
        if (bad) { llmux_key_row_clear(&row); llmux_conn_respond_error(c, 400, bad, NULL, NULL); return; }
        row.updated_at = time(NULL);
        llmux_accounts_upsert(&row, 1);
        llmux_key_row_clear(&row);
    } else if (r->method != HTTP_GET && r->method != HTTP_HEAD) {
        llmux_conn_respond_error(c, 405, "use GET, PATCH or DELETE", NULL, "Allow: GET, PATCH, DELETE\r\n");
        return;
    }
    llmux_buf_append_str(&b, "{\"data\":");
    append_key(&b, k);
    llmux_buf_append_char(&b, '}');
    respond_json(c, 200, &b);
}

/* ---- storage reads ------------------------------------------------------------ */

typedef struct {
    llmux_handler handler;
    llmux_conn *conn; /* NULL once the client went away */
    uv_async_t async;
    llmux_storage_op *op;
    char want_key[65]; /* "" = any (management / auth none) */
} read_job;

static void job_abort(llmux_handler *h)
{
    read_job *j = (read_job *)h;
    llmux_conn_detach(j->conn);
    j->conn = NULL;
}

static void job_closed(uv_handle_t *h)
{
    read_job *j = h->data;
    llmux_storage_op_free(j->op);
    free(j);
}

static void job_answer(uv_async_t *a)
{
    read_job *j = a->data;
    llmux_conn *c = j->conn;
    if (c) {
        llmux_conn_detach(c);
        llmux_storage_op *op = j->op;
        if (op->rc < 0) llmux_conn_respond_error(c, 500, "storage error", NULL, NULL);
        else if (op->rc == 404 || (op->kind == LLMUX_STORAGE_GET_GENERATION && j->want_key[0] &&
                                   strcmp(j->want_key, op->gen.key_hash)))
            llmux_conn_respond_error(c, 404, "no such generation", NULL, NULL);
        else {
            llmux_buf b = {0};
            llmux_buf_append_str(&b, "{\"data\":");
            llmux_buf_append(&b, op->out.data ? op->out.data : "null", op->out.data ? op->out.len : 4);
            llmux_buf_append_char(&b, '}');
            respond_json(c, 200, &b);
        }
    }
    uv_close((uv_handle_t *)&j->async, job_closed);
}

static void job_done(llmux_storage_op *op)
{
    read_job *j = op->ud;
    uv_async_send(&j->async);
}

static void storage_read(llmux_conn *c, llmux_storage_op *op, const char *want_key)
{
    if (!llmux_accounts_storage_on()) {
        llmux_storage_op_free(op);
        llmux_conn_respond_error(c, 503, "no storage configured", NULL, NULL);
        return;
    }
    read_job *j = calloc(1, sizeof *j);
    if (!j) { llmux_storage_op_free(op); llmux_conn_respond_error(c, 500, "out of memory", NULL, NULL); return; }
    j->handler.on_abort = job_abort;
    j->conn = c;
    j->op = op;
    snprintf(j->want_key, sizeof j->want_key, "%s", want_key ? want_key : "");
    j->async.data = j;
    uv_async_init(&llmux_conn_worker(c)->loop, &j->async, job_answer);
    op->done = job_done;
    op->ud = j;
    if (llmux_storage_submit(op) < 0) {
        op->done = NULL;
        j->conn = NULL;
        uv_close((uv_handle_t *)&j->async, job_closed);
        llmux_conn_respond_error(c, 503, "storage is busy", NULL, "Retry-After: 1\r\n");
        return;
    }
    llmux_conn_attach(c, &j->handler);
}

static int query_param(const char *q, const char *name, char *out, size_t n)
{
    size_t nl = strlen(name);
    for (const char *p = q; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len > nl && !strncmp(p, name, nl) && p[nl] == '=') {
            size_t o = 0;
            for (size_t i = nl + 1; i < len && o + 1 < n; i++) {
                char ch = p[i];
                if (ch == '%' && i + 2 < len) {
                    char hx[3] = {p[i + 1], p[i + 2], 0};
                    ch = (char)strtol(hx, NULL, 16);
                    i += 2;
                } else if (ch == '+') ch = ' ';
                out[o++] = ch;
            }
            out[o] = '\0';
            return 1;
        }
        p = amp ? amp + 1 : NULL;
    }
    return 0;
}

static void get_generation(llmux_conn *c, const llmux_http_request *r)
{
    caller who;
    if (identify(c, r, &who, 0) < 0) return;
    char id[64];
    if (!query_param(r->query, "id", id, sizeof id) || !id[0]) {
        llmux_conn_respond_error(c, 400, "'id' query parameter is required", NULL, NULL);
        return;
    }
    llmux_storage_op *op = llmux_storage_op_new(LLMUX_STORAGE_GET_GENERATION);
    if (!op) { llmux_conn_respond_error(c, 500, "out of memory", NULL, NULL); return; }
    snprintf(op->q_id, sizeof op->q_id, "%s", id);
    storage_read(c, op, who.key ? who.key->hash : NULL);
}

static void get_activity(llmux_conn *c, const llmux_http_request *r)
{
    caller who;
    if (identify(c, r, &who, 0) < 0) return;
    llmux_storage_op *op = llmux_storage_op_new(LLMUX_STORAGE_ACTIVITY);
    if (!op) { llmux_conn_respond_error(c, 500, "out of memory", NULL, NULL); return; }
    char date[32];
    int64_t since = (time(NULL) / 86400 - 29) * 86400; /* the last 30 days */
    if (query_param(r->query, "date", date, sizeof date)) {
        struct tm tm = {0};
        const char *end = strptime(date, "%Y-%m-%d", &tm);
        if (!end || *end) {
            llmux_storage_op_free(op);
            llmux_conn_respond_error(c, 400, "'date' must be YYYY-MM-DD", NULL, NULL);
            return;
        }
        since = (int64_t)timegm(&tm);
    }
    op->q_since = since;
    snprintf(op->q_key, sizeof op->q_key, "%s", who.key ? who.key->hash : "");
    storage_read(c, op, NULL);
}

int llmux_handle_accounts(llmux_conn *c, const llmux_http_request *r, const char *p)
{
    int get = r->method == HTTP_GET || r->method == HTTP_HEAD;
    if (!strcmp(p, "key") || !strcmp(p, "auth/key")) {
        if (get) get_key(c, r);
        else llmux_conn_respond_error(c, 405, "use GET", NULL, "Allow: GET\r\n");
        return 1;
    }
    if (!strcmp(p, "credits")) {
        if (get) get_credits(c, r);
        else llmux_conn_respond_error(c, 405, "use GET", NULL, "Allow: GET\r\n");
        return 1;
    }
    if (!strcmp(p, "generation")) {
        if (get) get_generation(c, r);
        else llmux_conn_respond_error(c, 405, "use GET", NULL, "Allow: GET\r\n");
        return 1;
    }
    if (!strcmp(p, "activity")) {
        if (get) get_activity(c, r);
        else llmux_conn_respond_error(c, 405, "use GET", NULL, "Allow: GET\r\n");
        return 1;
    }
    if (!strcmp(p, "keys") || !strncmp(p, "keys/", 5)) {
        caller who;
        if (identify(c, r, &who, 1) < 0) return 1;
        if (p[4] == '/') { one_key(c, r, p + 5); return 1; }
        if (r->method == HTTP_POST) { create_key(c, r); return 1; }
        if (!get) { llmux_conn_respond_error(c, 405, "use GET or POST", NULL, "Allow: GET, POST\r\n"); return 1; }
        llmux_buf b = {0};
        list_ctx l = {&b, 0};
        llmux_buf_append_str(&b, "{\"data\":[");
        llmux_accounts_each(list_key, &l);
        llmux_buf_append_str(&b, "]}");
        respond_json(c, 200, &b);
        return 1;
    }
    return 0;
}
