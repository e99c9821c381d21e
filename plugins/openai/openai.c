/*
 * openai — any OpenAI-compatible chat-completions upstream.
 *
 * The canonical request already is a chat-completions body, so prepare()
 * copies the client's top-level fields byte for byte, replaces `model` and
 * drops the OpenRouter-only fields. A streaming client gets an upstream
 * stream (with include_usage); otherwise the upstream is asked for one JSON
 * answer. The response side turns SSE chunks or a JSON document (whichever
 * the upstream actually sends) into canonical events, and maps upstream
 * errors to the status the client should see. Each JSON object is walked
 * once, key by key, rather than searched once per field.
 *
 * Provider options: organization (OpenAI-Organization header).
 */
#include "llmux_plugin.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OA_NAME "openai"
#define OA_MAX_JSON_BODY ((size_t)64 << 20) /* non-streaming 2xx answer */
#define OA_MAX_ERROR_BODY ((size_t)64 << 10) /* kept for metadata.raw */
#define OA_MAX_RETRY_AFTER_MS (24u * 3600u * 1000u)

typedef struct {
    const llmux_host *host;
    const char *base_url;
    const char *api_key;
    const char *organization;
    char *url;  /* base_url + "/chat/completions" */
    char *auth; /* "Bearer " + api_key, or NULL */
} oa_ctx;

typedef enum { OA_BODY_UNKNOWN = 0, OA_BODY_SSE, OA_BODY_JSON } oa_body_kind;

typedef struct {
    llmux_call *call;
    int status;
    int ct_sse;             /* content-type said text/event-stream */
    int ct_json;            /* content-type said json */
    oa_body_kind kind;      /* decided on the first non-blank body byte */
    uint32_t retry_after_ms;
    llmux_sse sse;
    llmux_buf body;         /* JSON answer or error body */
    int got_id;
    int tool_next;          /* tool-call indexes seen so far (for index-less servers) */
    int tool_last;
    int stream_done;        /* saw [DONE] */
    int failed;             /* an error was emitted: ignore the rest */
} oa_call;

static const llmux_host *host_of(const llmux_call *c)
{
    return ((const oa_ctx *)c->plugin_ctx)->host;
}

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */
/* ------------------------------------------------------------------------ */

static int tok_is(const llmux_json *d, int i, llmux_json_type t)
{
    return i >= 0 && i < d->ntok && d->tok[i].type == t;
}

static int tok_is_null(const llmux_json *d, int i)
{
    return tok_is(d, i, LLMUX_JSON_PRIMITIVE) && d->tok[i].end - d->tok[i].start == 4 &&
           !memcmp(d->text + d->tok[i].start, "null", 4);
}

/* Raw source bytes of token i, strings with their quotes. */
static void tok_raw(const llmux_json *d, int i, const char **p, size_t *n)
{
    const llmux_jtok *t = &d->tok[i];
    int q = t->type == LLMUX_JSON_STRING ? 1 : 0;
    *p = d->text + t->start - q;
    *n = (size_t)(t->end - t->start + 2 * q);
}

static int append_raw(const llmux_host *h, llmux_buf *b, const llmux_json *d, int i)
{
    const char *p;
    size_t n;
    tok_raw(d, i, &p, &n);
    return h->buf_append(b, p, n);
}

static int ieq_prefix(const char *s, const char *prefix)
{
    for (; *prefix; s++, prefix++) {
        char a = *s, b = *prefix;
        if (a >= 'A' && a <= 'Z')
            a = (char)(a - 'A' + 'a');
        if (b >= 'A' && b <= 'Z')
            b = (char)(b - 'A' + 'a');
        if (a != b)
            return 0;
    }
    return 1;
}

static int ieq(const char *a, size_t an, const char *b)
{
    size_t bn = strlen(b);
    return an == bn && ieq_prefix(a, b) ? 1 : 0;
}

static int icontains(const char *s, size_t n, const char *w)
{
    size_t wl = strlen(w);
    for (size_t i = 0; i + wl <= n; i++) {
        size_t j = 0;
        for (; j < wl; j++) {
            char a = s[i + j];
            if (a >= 'A' && a <= 'Z')
                a = (char)(a - 'A' + 'a');
            if (a != w[j])
                break;
        }
        if (j == wl)
            return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Lifecycle                                                                */
/* ------------------------------------------------------------------------ */

static int oa_init(const llmux_host *host, const llmux_provider_config *cfg, void **ctx)
{
    const char *name = cfg && cfg->name ? cfg->name : OA_NAME;
    if (!cfg || !cfg->base_url || !*cfg->base_url) {
        host->log(LLMUX_LOG_ERROR, OA_NAME, "provider '%s': base_url is required", name);
        return LLMUX_ECONFIG;
    }
    if (strncmp(cfg->base_url, "http://", 7) && strncmp(cfg->base_url, "https://", 8)) {
        host->log(LLMUX_LOG_ERROR, OA_NAME, "provider '%s': base_url must start with http:// or https://",
                  name);
        return LLMUX_ECONFIG;
    }
    oa_ctx *x = host->calloc(1, sizeof *x);
    if (!x)
        return LLMUX_ENOMEM;
    x->host = host;
    x->base_url = cfg->base_url;
    x->api_key = cfg->api_key && *cfg->api_key ? cfg->api_key : NULL;
    x->organization = cfg->options ? host->kv_get(cfg->options, cfg->n_options, "organization") : NULL;
    llmux_buf u = {0}, a = {0};
    int rc = host->buf_append_str(&u, x->base_url);
    if (!rc)
        rc = host->buf_append(&u, "/chat/completions", sizeof "/chat/completions");
    if (!rc && x->api_key) {
        rc = host->buf_append_str(&a, "Bearer ");
        if (!rc)
            rc = host->buf_append(&a, x->api_key, strlen(x->api_key) + 1);
    }
    if (rc) {
        host->buf_free(&u);
        if (a.data)
            memset(a.data, 0, a.cap);
        host->buf_free(&a);
        host->free(x);
        return LLMUX_ENOMEM;
    }
    x->url = u.data;
    x->auth = a.data;
    *ctx = x;
    return 0;
}

static void oa_fini(void *ctx)
{
    oa_ctx *x = ctx;
    if (!x)
        return;
    llmux_buf u = {x->url, 0, 0}, a = {x->auth, 0, 0};
    if (x->auth)
        memset(x->auth, 0, strlen(x->auth)); /* don't leave the secret in freed memory */
    x->host->buf_free(&u);
    x->host->buf_free(&a);
    x->host->free(x);
}

static void oa_release(llmux_call *c)
{
    oa_call *st = c->state;
    if (!st)
        return;
    const llmux_host *h = host_of(c);
    h->sse_free(&st->sse);
    h->buf_free(&st->body);
    h->free(st);
    c->state = NULL;
}

/* ------------------------------------------------------------------------ */
/* Request                                                                  */
/* ------------------------------------------------------------------------ */

/* Fields the upstream must not see: OpenRouter's own, and the ones we set.
 * Compared on the key's raw bytes, a length switch first. */
static int oa_drop_field(const llmux_json *d, int key, int legacy)
{
    const char *k = d->text + d->tok[key].start;
    size_t n = (size_t)(d->tok[key].end - d->tok[key].start);
#define IS(lit) (!memcmp(k, lit, sizeof(lit) - 1))
    switch (n) {
    case 4:
        return legacy && IS("echo");
    case 5:
        return IS("model") || IS("route") || IS("usage");
    case 6:
        return IS("models") || IS("stream") || (legacy && (IS("prompt") || IS("suffix")));
    case 7:
        return IS("plugins") || (legacy && IS("best_of"));
    case 8:
        return IS("provider");
    case 10:
        return IS("transforms");
    case 14:
        return IS("stream_options");
    default:
        return 0;
    }
#undef IS
}

/* Legacy `prompt` becomes one user message. A string, or an array holding
 * exactly one string; token arrays and batches cannot be expressed. */
static int oa_legacy_messages(llmux_call *c, llmux_buf *b)
{
    const llmux_host *h = host_of(c);
    const llmux_json *d = &c->req->body;
    int p = h->json_get(d, 0, "prompt");
    if (tok_is(d, p, LLMUX_JSON_ARRAY) && d->tok[p].size == 1 && tok_is(d, p + 1, LLMUX_JSON_STRING))
        p = p + 1;
    if (!tok_is(d, p, LLMUX_JSON_STRING)) {
        h->emit_error(c, 400, "openai: `prompt` must be a string (or an array of one string)",
                      NULL, 0, 0);
        return LLMUX_EINVAL;
    }
    int rc = h->buf_append_str(b, ",\"messages\":[{\"role\":\"user\",\"content\":");
    if (!rc)
        rc = append_raw(h, b, d, p);
    if (!rc)
        rc = h->buf_append_str(b, "}]");
    return rc;
}

static int oa_build_body(llmux_call *c, llmux_buf *b)
{
    const llmux_host *h = host_of(c);
    const llmux_json *d = &c->req->body;
    const char *model = c->ep && c->ep->upstream_model ? c->ep->upstream_model : "";
    int legacy = c->req->is_legacy_prompt;

    if (d->ntok < 1 || d->tok[0].type != LLMUX_JSON_OBJECT) {
        h->emit_error(c, 400, "openai: request body must be a JSON object", NULL, 0, 0);
        return LLMUX_EINVAL;
    }
    /* The body is at most the client's plus the model and our fields: one
     * allocation up front (append the source, then forget it). */
    size_t mlen = strlen(model), at = b->len;
    int rc = h->buf_append(b, d->text, d->len);
    if (!rc)
        rc = h->buf_append(b, model, mlen);
    b->len = at;
    if (!rc)
        rc = h->buf_append(b, "{\"model\":\"", 10);
    if (!rc)
        rc = h->buf_append_escaped(b, model, mlen);
    if (!rc)
        rc = h->buf_append(b, "\"", 1);
    int drop_legacy = legacy && h->json_get(d, 0, "messages") < 0;
    if (!rc && drop_legacy)
        rc = oa_legacy_messages(c, b);

    int i = 1;
    for (int k = 0; !rc && k < d->tok[0].size && i + 1 < d->ntok; k++) {
        int key = i, val = i + 1;
        i = d->tok[val].size == 0 ? val + 1 : h->json_skip(d, val);
        if (oa_drop_field(d, key, drop_legacy))
            continue;
        /* ,"key":value — the key's quotes come from the source */
        const llmux_jtok *kt = &d->tok[key];
        const char *vp;
        size_t vn;
        tok_raw(d, val, &vp, &vn);
        rc = h->buf_append(b, ",", 1);
        if (!rc && vp == d->text + kt->end + 2 && d->text[kt->end + 1] == ':') {
            /* "key":value contiguous in the source: one copy */
            rc = h->buf_append(b, d->text + kt->start - 1, (size_t)(vp + vn - (d->text + kt->start - 1)));
            continue;
        }
        if (!rc)
            rc = h->buf_append(b, d->text + kt->start - 1, (size_t)(kt->end - kt->start + 2));
        if (!rc)
            rc = h->buf_append(b, ":", 1);
        if (!rc)
            rc = h->buf_append(b, vp, vn);
    }
    if (!rc && c->req->stream)
        rc = h->buf_append_str(b, ",\"stream\":true,\"stream_options\":{\"include_usage\":true}}");
    else if (!rc)
        rc = h->buf_append(b, "}", 1);
    return rc;
}

static int oa_prepare(llmux_call *c, llmux_outreq *out)
{
    const oa_ctx *x = c->plugin_ctx;
    const llmux_host *h = x->host;

    oa_call *st = h->calloc(1, sizeof *st);
    if (!st)
        return LLMUX_ENOMEM;
    st->call = c;
    c->state = st;

    int rc = h->req_set_url(out, x->url);
    if (!rc)
        rc = h->req_add_header(out, "Content-Type", "application/json");
    if (!rc)
        rc = h->req_add_header(out, "Accept", c->req->stream ? "text/event-stream" : "application/json");

    if (!rc && c->req->api_key_override && *c->req->api_key_override) {
        llmux_buf auth = {0};
        rc = h->buf_append_str(&auth, "Bearer ");
        if (!rc)
            rc = h->buf_append(&auth, c->req->api_key_override, strlen(c->req->api_key_override) + 1);
        if (!rc)
            rc = h->req_add_header(out, "Authorization", auth.data);
        if (auth.data)
            memset(auth.data, 0, auth.cap); /* don't leave the secret in freed memory */
        h->buf_free(&auth);
    } else if (!rc && x->auth) {
        rc = h->req_add_header(out, "Authorization", x->auth);
    }
    if (!rc && x->organization && *x->organization)
        rc = h->req_add_header(out, "OpenAI-Organization", x->organization);
    if (rc)
        return rc;

    llmux_buf *body = h->req_body(out);
    if (!body)
        return LLMUX_ENOMEM;
    return oa_build_body(c, body);
}

/* ------------------------------------------------------------------------ */
/* Response translation                                                     */
/* ------------------------------------------------------------------------ */

static llmux_finish oa_finish(const llmux_json *d, int i)
{
    const char *s = d->text + d->tok[i].start;
    size_t n = (size_t)(d->tok[i].end - d->tok[i].start);
#define IS(lit) (n == sizeof(lit) - 1 && !memcmp(s, lit, n))
    if (IS("stop"))
        return LLMUX_FINISH_STOP;
    if (IS("length") || IS("max_tokens"))
        return LLMUX_FINISH_LENGTH;
    if (IS("tool_calls") || IS("function_call"))
        return LLMUX_FINISH_TOOL_CALLS;
    if (IS("content_filter"))
        return LLMUX_FINISH_CONTENT_FILTER;
    if (IS("error"))
        return LLMUX_FINISH_ERROR;
#undef IS
    return LLMUX_FINISH_STOP;
}

/* ---- one walk per object ----------------------------------------------
 * oa_walk visits an object's keys once and records, for each wanted name,
 * the value of its first occurrence (what json_get would return). Keys are
 * compared on their raw bytes; a key holding an escape is unescaped first. */

typedef struct {
    const char *name;
    size_t len;
} oa_key;
#define K(s) {s, sizeof(s) - 1}

static int oa_key_match(const llmux_host *h, const llmux_json *d, int k, const oa_key *keys, int nkeys)
{
    const llmux_jtok *t = &d->tok[k];
    const char *p = d->text + t->start;
    size_t n = (size_t)(t->end - t->start);
    for (int j = 0; j < nkeys; j++)
        if (keys[j].len == n && p[0] == keys[j].name[0] && !memcmp(p, keys[j].name, n))
            return j;
    if (t->type != LLMUX_JSON_STRING || !memchr(p, '\\', n))
        return -1;
    llmux_buf u = {0};
    int found = -1;
    if (h->json_unescape(d, k, &u) == 0)
        for (int j = 0; j < nkeys && found < 0; j++)
            if (keys[j].len == u.len && !memcmp(u.data, keys[j].name, u.len))
                found = j;
    h->buf_free(&u);
    return found;
}

static inline int oa_next(const llmux_host *h, const llmux_json *d, int v)
{
    return d->tok[v].size == 0 ? v + 1 : h->json_skip(d, v);
}

/* out[j] = value index of keys[j] in object obj, or -1. */
static void oa_walk(const llmux_host *h, const llmux_json *d, int obj, const oa_key *keys, int nkeys,
                    int *out)
{
    for (int j = 0; j < nkeys; j++)
        out[j] = -1;
    if (!tok_is(d, obj, LLMUX_JSON_OBJECT))
        return;
    int i = obj + 1;
    for (int k = 0; k < d->tok[obj].size && i + 1 < d->ntok; k++) {
        int j = oa_key_match(h, d, i, keys, nkeys);
        if (j >= 0 && out[j] < 0)
            out[j] = i + 1;
        i = oa_next(h, d, i + 1);
    }
}

static int emit_str(llmux_call *c, const llmux_json *d, int v, int choice, llmux_delta_kind kind,
                    int *emitted)
{
    if (!tok_is(d, v, LLMUX_JSON_STRING) || d->tok[v].end == d->tok[v].start)
        return 0;
    if (emitted)
        *emitted = 1;
    return host_of(c)->emit_delta(c, choice, kind, d->text + d->tok[v].start,
                                  (size_t)(d->tok[v].end - d->tok[v].start));
}

static void str_tok(const llmux_json *d, int i, const char **p, size_t *n)
{
    if (tok_is(d, i, LLMUX_JSON_STRING) && d->tok[i].end > d->tok[i].start) {
        *p = d->text + d->tok[i].start;
        *n = (size_t)(d->tok[i].end - d->tok[i].start);
    } else {
        *p = NULL;
        *n = 0;
    }
}

static const oa_key tc_keys[] = {K("index"), K("id"), K("function")};
enum { TC_INDEX, TC_ID, TC_FUNCTION, TC_N };
static const oa_key fn_keys[] = {K("name"), K("arguments")};
enum { FN_NAME, FN_ARGUMENTS, FN_N };

static int oa_tool_calls(llmux_call *c, const llmux_json *d, int arr, int choice)
{
    const llmux_host *h = host_of(c);
    oa_call *st = c->state;
    int i = arr + 1;
    for (int k = 0; k < d->tok[arr].size && i < d->ntok; k++) {
        int tc = i;
        i = oa_next(h, d, tc);
        if (!tok_is(d, tc, LLMUX_JSON_OBJECT))
            continue;
        int v[TC_N], f[FN_N];
        oa_walk(h, d, tc, tc_keys, TC_N, v);
        /* Some OpenAI-compatible servers omit `index`: a fragment with an id
         * starts the next call, one without continues the last. */
        int64_t index = -1;
        if (v[TC_INDEX] >= 0 && (h->json_int(d, v[TC_INDEX], &index) || index > 1000000))
            index = -1;
        if (index < 0)
            index = v[TC_ID] >= 0 || st->tool_next == 0 ? st->tool_next : st->tool_last;
        st->tool_last = (int)index;
        if (index >= st->tool_next)
            st->tool_next = (int)index + 1;
        oa_walk(h, d, v[TC_FUNCTION], fn_keys, FN_N, f);
        int name = f[FN_NAME], args = f[FN_ARGUMENTS];
        const char *idp, *namep, *argp;
        size_t idn, namen, argn;
        str_tok(d, v[TC_ID], &idp, &idn);
        str_tok(d, name, &namep, &namen);
        str_tok(d, args, &argp, &argn);
        llmux_buf esc = {0};
        if (tok_is(d, args, LLMUX_JSON_OBJECT)) {
            /* some servers send arguments as an object: forward it as text */
            const char *p;
            size_t n;
            tok_raw(d, args, &p, &n);
            if (h->buf_append_escaped(&esc, p, n))
                return LLMUX_ENOMEM;
            argp = esc.data;
            argn = esc.len;
        }
        if (!idp && !namep && !argn)
            continue;
        int rc = h->emit_tool_call(c, choice, (int)index, idp, idn, namep, namen,
                                   argp ? argp : "", argn);
        h->buf_free(&esc);
        if (rc)
            return rc;
    }
    return 0;
}

static const oa_key usage_keys[] = {K("prompt_tokens"), K("completion_tokens"),
                                    K("completion_tokens_details"), K("prompt_tokens_details")};
enum { U_PROMPT, U_COMPLETION, U_COMPLETION_DETAILS, U_PROMPT_DETAILS, U_N };
static const oa_key cdet_keys[] = {K("reasoning_tokens")};
static const oa_key pdet_keys[] = {K("cached_tokens"), K("cache_write_tokens")};

static int oa_usage(llmux_call *c, const llmux_json *d, int u)
{
    const llmux_host *h = host_of(c);
    llmux_usage us = {-1, -1, -1, -1, -1};
    int v[U_N], w[2];
    oa_walk(h, d, u, usage_keys, U_N, v);
    if (v[U_PROMPT] >= 0)
        h->json_int(d, v[U_PROMPT], &us.prompt_tokens);
    if (v[U_COMPLETION] >= 0)
        h->json_int(d, v[U_COMPLETION], &us.completion_tokens);
    if (tok_is(d, v[U_COMPLETION_DETAILS], LLMUX_JSON_OBJECT)) {
        oa_walk(h, d, v[U_COMPLETION_DETAILS], cdet_keys, 1, w);
        if (w[0] >= 0)
            h->json_int(d, w[0], &us.reasoning_tokens);
    }
    if (tok_is(d, v[U_PROMPT_DETAILS], LLMUX_JSON_OBJECT)) {
        oa_walk(h, d, v[U_PROMPT_DETAILS], pdet_keys, 2, w);
        if (w[0] >= 0)
            h->json_int(d, w[0], &us.cached_tokens);
        if (w[1] >= 0)
            h->json_int(d, w[1], &us.cache_write_tokens);
    }
    return h->emit_usage(c, &us);
}

/* error.message (or a string `error`) unescaped into out, NUL-terminated. */
static void oa_error_message(const llmux_host *h, const llmux_json *d, int err, llmux_buf *out)
{
    int m = -1;
    if (tok_is(d, err, LLMUX_JSON_OBJECT))
        m = h->json_get(d, err, "message");
    else if (tok_is(d, err, LLMUX_JSON_STRING))
        m = err;
    if (tok_is(d, m, LLMUX_JSON_STRING) && d->tok[m].end > d->tok[m].start)
        h->json_unescape(d, m, out);
}

static int oa_emit_error(llmux_call *c, int status, const char *msg, const char *raw, size_t raw_len,
                         uint32_t retry_ms)
{
    oa_call *st = c->state;
    if (st->failed)
        return LLMUX_EUPSTREAM;
    st->failed = 1;
    host_of(c)->emit_error(c, status, msg, raw, raw_len, retry_ms);
    return LLMUX_EUPSTREAM;
}

static const oa_key top_keys[] = {K("error"), K("id"), K("choices"), K("usage")};
enum { T_ERROR, T_ID, T_CHOICES, T_USAGE, T_N };
/* choice_keys[1] is "delta" in a stream chunk, "message" in a whole answer */
static const oa_key choice_keys_delta[] = {K("index"), K("delta"), K("finish_reason")};
static const oa_key choice_keys_message[] = {K("index"), K("message"), K("finish_reason")};
enum { C_INDEX, C_DELTA, C_FINISH, C_N };
static const oa_key delta_keys[] = {K("content"), K("reasoning"), K("reasoning_content"),
                                    K("reasoning_details"), K("refusal"), K("tool_calls")};
enum { D_CONTENT, D_REASONING, D_REASONING_CONTENT, D_REASONING_DETAILS, D_REFUSAL, D_TOOL_CALLS, D_N };

/* One chunk (streaming, whole == 0: "delta") or a whole answer ("message"). */
static int oa_translate(llmux_call *c, const llmux_json *d, int whole, const char *raw, size_t raw_len)
{
    const llmux_host *h = host_of(c);
    oa_call *st = c->state;
    int rc = 0;
    if (!tok_is(d, 0, LLMUX_JSON_OBJECT))
        return oa_emit_error(c, 502, "upstream sent an unexpected JSON value", raw, raw_len, 0);

    int top[T_N];
    oa_walk(h, d, 0, top_keys, T_N, top);
    int err = top[T_ERROR];
    if (err >= 0 && !tok_is_null(d, err)) {
        llmux_buf msg = {0};
        oa_error_message(h, d, err, &msg);
        if (h->buf_append(&msg, "", 1) || msg.len <= 1) {
            msg.len = 0;
            h->buf_append_str(&msg, "upstream reported an error");
            h->buf_append(&msg, "", 1);
        }
        rc = oa_emit_error(c, 502, msg.data ? msg.data : "upstream reported an error", raw,
                           raw_len, 0);
        h->buf_free(&msg);
        return rc;
    }

    int id = top[T_ID];
    if (!st->got_id && tok_is(d, id, LLMUX_JSON_STRING) && d->tok[id].end > d->tok[id].start) {
        st->got_id = 1;
        rc = h->set_upstream_id(c, d->text + d->tok[id].start, (size_t)(d->tok[id].end - d->tok[id].start));
        if (rc)
            return rc;
    }

    int choices = top[T_CHOICES];
    if (tok_is(d, choices, LLMUX_JSON_ARRAY)) {
        const oa_key *ck = whole ? choice_keys_message : choice_keys_delta;
        int i = choices + 1;
        for (int k = 0; k < d->tok[choices].size && i < d->ntok; k++) {
            int ch = i;
            i = oa_next(h, d, ch);
            if (!tok_is(d, ch, LLMUX_JSON_OBJECT))
                continue;
            int cv[C_N];
            oa_walk(h, d, ch, ck, C_N, cv);
            int64_t index = k;
            if (cv[C_INDEX] >= 0)
                h->json_int(d, cv[C_INDEX], &index);
            if (index < 0 || index > 1000)
                index = k;
            int choice = (int)index;
            int dl = cv[C_DELTA];
            if (tok_is(d, dl, LLMUX_JSON_OBJECT)) {
                int dv[D_N];
                oa_walk(h, d, dl, delta_keys, D_N, dv);
                int had_reasoning = 0;
                rc = emit_str(c, d, dv[D_REASONING], choice, LLMUX_DELTA_REASONING, &had_reasoning);
                if (!rc && !had_reasoning)
                    rc = emit_str(c, d, dv[D_REASONING_CONTENT], choice, LLMUX_DELTA_REASONING, NULL);
                int rd = dv[D_REASONING_DETAILS];
                if (!rc && tok_is(d, rd, LLMUX_JSON_ARRAY)) {
                    int j = rd + 1;
                    for (int m = 0; !rc && m < d->tok[rd].size && j < d->ntok; m++) {
                        int item = j;
                        j = oa_next(h, d, item);
                        if (tok_is(d, item, LLMUX_JSON_OBJECT))
                            rc = h->emit_reasoning_detail(c, choice, d->text + d->tok[item].start,
                                                          (size_t)(d->tok[item].end - d->tok[item].start));
                    }
                }
                if (!rc)
                    rc = emit_str(c, d, dv[D_CONTENT], choice, LLMUX_DELTA_CONTENT, NULL);
                if (!rc)
                    rc = emit_str(c, d, dv[D_REFUSAL], choice, LLMUX_DELTA_REFUSAL, NULL);
                if (!rc && tok_is(d, dv[D_TOOL_CALLS], LLMUX_JSON_ARRAY))
                    rc = oa_tool_calls(c, d, dv[D_TOOL_CALLS], choice);
                if (rc)
                    return rc;
            }
            int fr = cv[C_FINISH];
            if (tok_is(d, fr, LLMUX_JSON_STRING)) {
                rc = h->emit_finish(c, choice, oa_finish(d, fr), d->text + d->tok[fr].start,
                                    (size_t)(d->tok[fr].end - d->tok[fr].start));
                if (rc)
                    return rc;
            }
        }
    }

    if (tok_is(d, top[T_USAGE], LLMUX_JSON_OBJECT))
        rc = oa_usage(c, d, top[T_USAGE]);
    return rc;
}

static int oa_on_event(void *ud, const char *event, size_t event_len, const char *data, size_t data_len)
{
    llmux_call *c = ud;
    oa_call *st = c->state;
    const llmux_host *h = host_of(c);
    if (st->failed || st->stream_done)
        return 0;
    while (data_len && (data[data_len - 1] == ' ' || data[data_len - 1] == '\r' ||
                        data[data_len - 1] == '\n' || data[data_len - 1] == '\t'))
        data_len--;
    if (!data_len)
        return 0;
    if (data_len == 6 && !memcmp(data, "[DONE]", 6)) {
        st->stream_done = 1;
        return 0;
    }
    llmux_json doc;
    int rc = h->json_parse(data, data_len, &doc);
    if (rc) {
        if (event && ieq(event, event_len, "error"))
            return oa_emit_error(c, 502, "upstream reported an error", data, data_len, 0);
        return oa_emit_error(c, 502, "upstream sent a malformed stream chunk", data, data_len, 0);
    }
    if (event && ieq(event, event_len, "error") && h->json_get(&doc, 0, "error") < 0) {
        llmux_buf msg = {0};
        oa_error_message(h, &doc, h->json_get(&doc, 0, "message") >= 0 ? 0 : -1, &msg);
        if (h->buf_append(&msg, "", 1) || msg.len <= 1) {
            msg.len = 0;
            h->buf_append_str(&msg, "upstream reported an error");
            h->buf_append(&msg, "", 1);
        }
        rc = oa_emit_error(c, 502, msg.data ? msg.data : "upstream reported an error", data, data_len, 0);
        h->buf_free(&msg);
    } else {
        rc = oa_translate(c, &doc, 0, data, data_len);
    }
    h->json_release(&doc);
    return rc;
}

static const char *header_value(const llmux_kv *hv, size_t n, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < n; i++) {
        const char *k = hv[i].key, *v = hv[i].value;
        if (!k)
            continue;
        if (v) {
            if (ieq(k, strlen(k), name)) {
                *vlen = strlen(v);
                return v;
            }
        } else if (ieq_prefix(k, name) && k[nl] == ':') { /* "Name: value" form */
            v = k + nl + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            *vlen = strlen(v);
            return v;
        }
    }
    return NULL;
}

static uint32_t parse_seconds_ms(const char *v, size_t n, double scale)
{
    char tmp[32];
    if (!v || !n || n >= sizeof tmp)
        return 0;
    memcpy(tmp, v, n);
    tmp[n] = '\0';
    char *end = NULL;
    double s = strtod(tmp, &end);
    if (end == tmp || s <= 0)
        return 0; /* HTTP-date form: let the core decide */
    double ms = s * scale;
    if (ms > OA_MAX_RETRY_AFTER_MS)
        ms = OA_MAX_RETRY_AFTER_MS;
    return (uint32_t)(ms + 0.5);
}

static int oa_on_headers(llmux_call *c, int status, const llmux_kv *headers, size_t n)
{
    oa_call *st = c->state;
    st->status = status;
    size_t vl = 0;
    const char *ct = header_value(headers, n, "content-type", &vl);
    if (ct) {
        st->ct_sse = icontains(ct, vl, "text/event-stream");
        st->ct_json = icontains(ct, vl, "json");
    }
    const char *ra = header_value(headers, n, "retry-after-ms", &vl);
    if (ra)
        st->retry_after_ms = parse_seconds_ms(ra, vl, 1.0);
    if (!st->retry_after_ms && (ra = header_value(headers, n, "retry-after", &vl)))
        st->retry_after_ms = parse_seconds_ms(ra, vl, 1000.0);
    return 0;
}

static int is_2xx(int s) { return s >= 200 && s < 300; }

static int oa_on_data(llmux_call *c, const char *data, size_t n)
{
    oa_call *st = c->state;
    const llmux_host *h = host_of(c);
    if (st->failed || !n)
        return 0;
    if (!is_2xx(st->status)) {
        size_t room = OA_MAX_ERROR_BODY - st->body.len;
        return h->buf_append(&st->body, data, n < room ? n : room);
    }
    if (st->kind == OA_BODY_UNKNOWN) {
        /* Sniff: SSE starts with a field name or ':', a JSON answer with '{'.
         * Catches JSON bodies served as event-stream and vice versa. */
        size_t i = 0;
        while (i < n && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n'))
            i++;
        if (i == n) {
            if (st->ct_sse)
                st->kind = OA_BODY_SSE;
            else
                return h->buf_append(&st->body, data, n); /* keep leading blanks */
        } else {
            st->kind = data[i] == '{' || data[i] == '[' ? OA_BODY_JSON : OA_BODY_SSE;
        }
        if (st->kind == OA_BODY_SSE && st->body.len) {
            int rc = h->sse_feed(&st->sse, st->body.data, st->body.len, oa_on_event, c);
            st->body.len = 0;
            if (rc)
                return rc;
        }
    }
    if (st->kind == OA_BODY_JSON) {
        if (st->body.len + n > OA_MAX_JSON_BODY) {
            oa_emit_error(c, 502, "upstream response too large", NULL, 0, 0);
            return LLMUX_ELIMIT;
        }
        return h->buf_append(&st->body, data, n);
    }
    return h->sse_feed(&st->sse, data, n, oa_on_event, c);
}

/* Client-facing status for an upstream HTTP error (401/403/404 handled by the caller). */
static int oa_map_status(int status)
{
    switch (status) {
    case 400:
    case 408:
    case 413:
    case 422:
    case 429:
    case 503:
        return status;
    default:
        return 502;
    }
}

static int oa_finish_error(llmux_call *c, int status)
{
    oa_call *st = c->state;
    const llmux_host *h = host_of(c);
    llmux_json doc;
    int parsed = st->body.len && h->json_parse(st->body.data, st->body.len, &doc) == 0;
    int err = -1;
    llmux_buf msg = {0};
    if (parsed && tok_is(&doc, 0, LLMUX_JSON_OBJECT)) {
        err = h->json_get(&doc, 0, "error");
        if (err >= 0)
            oa_error_message(h, &doc, err, &msg);
        else
            oa_error_message(h, &doc, 0, &msg); /* {"message": "..."} */
        if (!st->retry_after_ms && tok_is(&doc, err, LLMUX_JSON_OBJECT)) {
            int ra = h->json_get(&doc, err, "retry_after");
            double s;
            if (ra >= 0 && h->json_double(&doc, ra, &s) == 0 && s > 0)
                st->retry_after_ms = s * 1000 > OA_MAX_RETRY_AFTER_MS ? OA_MAX_RETRY_AFTER_MS
                                                                      : (uint32_t)(s * 1000 + 0.5);
        }
    }
    int code = 0;
    if (parsed && err >= 0 && tok_is(&doc, err, LLMUX_JSON_OBJECT)) {
        int cd = h->json_get(&doc, err, "code");
        if (tok_is(&doc, cd, LLMUX_JSON_STRING) && h->json_eq(&doc, cd, "model_not_found"))
            code = 404;
    }
    int out;
    if (status == 401 || status == 403) {
        out = 502;
        msg.len = 0;
        h->buf_append_str(&msg, "upstream rejected credentials");
    } else if (status == 404) {
        /* a wrong URL is the operator's problem; an unknown model is the client's */
        int model_missing = code == 404 ||
                            (msg.len && icontains(msg.data, msg.len, "model") &&
                             (icontains(msg.data, msg.len, "not found") ||
                              icontains(msg.data, msg.len, "does not exist")));
        out = model_missing ? 404 : 502;
    } else {
        out = oa_map_status(status);
    }
    if (!msg.len)
        h->buf_printf(&msg, "upstream returned HTTP %d", status);
    h->buf_append(&msg, "", 1);
    if (parsed)
        h->json_release(&doc);
    int rc = oa_emit_error(c, out, msg.data ? msg.data : "upstream error", st->body.data, st->body.len,
                           out == 429 || out == 503 ? st->retry_after_ms : 0);
    h->buf_free(&msg);
    return rc;
}

static int oa_on_done(llmux_call *c, int status)
{
    oa_call *st = c->state;
    const llmux_host *h = host_of(c);
    if (!st)
        return LLMUX_EINVAL;
    if (st->failed)
        return LLMUX_EUPSTREAM;
    if (status < 0)
        return oa_emit_error(c, 502, "upstream connection failed", NULL, 0, 0);
    int s = st->status ? st->status : status;
    if (!is_2xx(s))
        return oa_finish_error(c, s);

    if (st->kind == OA_BODY_JSON) {
        llmux_json doc;
        int rc = h->json_parse(st->body.data, st->body.len, &doc);
        if (rc)
            return oa_emit_error(c, 502, "upstream sent malformed JSON", st->body.data, st->body.len, 0);
        rc = oa_translate(c, &doc, 1, st->body.data, st->body.len);
        h->json_release(&doc);
        return rc;
    }
    if (st->kind == OA_BODY_SSE && !st->stream_done)
        return h->sse_feed(&st->sse, "\n\n", 2, oa_on_event, c); /* flush a last unterminated event */
    return 0;
}

static const llmux_plugin oa_plugin = {
    .magic = LLMUX_PLUGIN_MAGIC,
    .abi_major = LLMUX_ABI_MAJOR,
    .abi_minor = LLMUX_ABI_MINOR,
    .struct_size = sizeof(llmux_plugin),
    .name = OA_NAME,
    .version = "1.0.0",
    .init = oa_init,
    .prepare = oa_prepare,
    .on_headers = oa_on_headers,
    .on_data = oa_on_data,
    .on_done = oa_on_done,
    .release = oa_release,
    .fini = oa_fini,
    .on_tick = NULL,
};

LLMUX_EXPORT const llmux_plugin *llmux_plugin_v1(void) { return &oa_plugin; }
