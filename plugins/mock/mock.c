/*
 * mock — a local provider that needs no network. The host serves its calls
 * through req_set_local + on_tick, so `make run` works out of the box and the
 * tests can exercise streaming, tool calls and failover deterministically.
 *
 * Behaviour by endpoint upstream_model:
 *   echo            reply with the last user message (or one tool call to the
 *                   first tool when tools are given and the text says "weather")
 *   lorem           N lorem-ipsum words, N = min(option tokens, max_tokens)
 *   fail            HTTP 500 before any delta (failover tests)
 *   fail_midstream  two deltas, then a 502 error
 * Options (endpoint first, then provider): tokens (default 64), delay_ms
 * (default 0; with 0 everything is emitted in one tick).
 */
#include "llmux_plugin.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MOCK_NAME "mock"
#define MOCK_DEFAULT_TOKENS 64
#define MOCK_MAX_TOKENS 1000000
#define MOCK_MAX_DELAY_MS 60000

typedef struct {
    const llmux_host *host;
    atomic_uint_fast64_t counter; /* the one mutable field: upstream ids */
} mock_ctx;

typedef enum { MOCK_ECHO, MOCK_LOREM, MOCK_FAIL, MOCK_FAIL_MIDSTREAM } mock_mode;

typedef struct {
    mock_mode mode;
    uint32_t delay_ms;
    int64_t total;          /* lorem: words to emit */
    int64_t pos;            /* lorem: words emitted so far */
    int cut_by_max_tokens;  /* lorem: finish "length" */
    int64_t prompt_tokens;
    int tool_call;          /* echo: answer with a tool call */
    llmux_buf reply;        /* echo: escaped reply text, or tool name */
    char upstream_id[40];
} mock_call;

static const char *const lorem_words[] = {
    "Lorem", "ipsum", "dolor", "sit", "amet,", "consectetur", "adipiscing", "elit,",
    "sed", "do", "eiusmod", "tempor", "incididunt", "ut", "labore", "et",
    "dolore", "magna", "aliqua.", "Ut", "enim", "ad", "minim", "veniam,",
    "quis", "nostrud", "exercitation", "ullamco", "laboris", "nisi", "ut", "aliquip",
    "ex", "ea", "commodo", "consequat.", "Duis", "aute", "irure", "dolor",
    "in", "reprehenderit", "in", "voluptate", "velit", "esse", "cillum", "dolore",
    "eu", "fugiat", "nulla", "pariatur.", "Excepteur", "sint", "occaecat", "cupidatat",
    "non", "proident,", "sunt", "in", "culpa", "qui", "officia", "deserunt",
};
#define LOREM_N (sizeof lorem_words / sizeof lorem_words[0])

static const char mock_tool_args[] = "{\\\"location\\\":\\\"Paris\\\"}";

static const llmux_host *host_of(const llmux_call *c)
{
    return ((const mock_ctx *)c->plugin_ctx)->host;
}

static int64_t ceil_div4(int64_t n) { return (n + 3) / 4; }

/* Option lookup: endpoint options win over provider options. */
static const char *mock_option(const llmux_call *c, const char *key)
{
    const llmux_host *h = host_of(c);
    const char *v = NULL;
    if (c->ep && c->ep->options)
        v = h->kv_get(c->ep->options, c->ep->n_options, key);
    if (!v && c->provider && c->provider->options)
        v = h->kv_get(c->provider->options, c->provider->n_options, key);
    return v;
}

static int64_t mock_option_int(const llmux_call *c, const char *key, int64_t dflt,
                               int64_t lo, int64_t hi)
{
    const char *v = mock_option(c, key);
    if (!v || !*v)
        return dflt;
    char *end = NULL;
    long long x = strtoll(v, &end, 10);
    if (end == v || *end)
        return dflt;
    if (x < lo)
        x = lo;
    if (x > hi)
        x = hi;
    return x;
}

/* Raw escaped text of a message content (string, or text parts of an array),
 * appended to `out` when non-NULL. Returns the byte count. */
static size_t content_text(const llmux_host *h, const llmux_json *d, int content,
                           llmux_buf *out, int *err)
{
    if (content < 0)
        return 0;
    const llmux_jtok *t = &d->tok[content];
    if (t->type == LLMUX_JSON_STRING) {
        size_t n = (size_t)(t->end - t->start);
        if (out && h->buf_append(out, d->text + t->start, n))
            *err = LLMUX_ENOMEM;
        return n;
    }
    if (t->type != LLMUX_JSON_ARRAY)
        return 0;
    size_t total = 0;
    int i = content + 1;
    for (int k = 0; k < t->size; k++) {
        if (d->tok[i].type == LLMUX_JSON_OBJECT) {
            int ty = h->json_get(d, i, "type");
            int tx = h->json_get(d, i, "text");
            if (ty >= 0 && h->json_eq(d, ty, "text") && tx >= 0 &&
                d->tok[tx].type == LLMUX_JSON_STRING) {
                size_t n = (size_t)(d->tok[tx].end - d->tok[tx].start);
                if (out && h->buf_append(out, d->text + d->tok[tx].start, n))
                    *err = LLMUX_ENOMEM;
                total += n;
            }
        }
        i = h->json_skip(d, i);
    }
    return total;
}

static int contains_word_ci(const char *s, size_t n, const char *w)
{
    size_t wl = strlen(w);
    for (size_t i = 0; i + wl <= n; i++) {
        size_t j = 0;
        while (j < wl) {
            char ch = s[i + j];
            if (ch >= 'A' && ch <= 'Z')
                ch = (char)(ch - 'A' + 'a');
            if (ch != w[j])
                break;
            j++;
        }
        if (j == wl)
            return 1;
    }
    return 0;
}

/* Fills st for "echo": prompt token count, reply text or tool call. */
static int mock_prepare_echo(llmux_call *c, mock_call *st)
{
    const llmux_host *h = host_of(c);
    const llmux_json *d = &c->req->body;
    int err = 0;
    int64_t prompt_bytes = 0;
    int last_user = -1;

    int msgs = d->ntok > 0 ? h->json_get(d, 0, "messages") : -1;
    if (msgs >= 0 && d->tok[msgs].type == LLMUX_JSON_ARRAY) {
        int i = msgs + 1;
        for (int k = 0; k < d->tok[msgs].size; k++) {
            if (d->tok[i].type == LLMUX_JSON_OBJECT) {
                int role = h->json_get(d, i, "role");
                int content = h->json_get(d, i, "content");
                prompt_bytes += (int64_t)content_text(h, d, content, NULL, &err);
                if (role >= 0 && h->json_eq(d, role, "user"))
                    last_user = content;
            }
            i = h->json_skip(d, i);
        }
    } else {
        /* legacy /completions: echo the prompt */
        int p = d->ntok > 0 ? h->json_get(d, 0, "prompt") : -1;
        prompt_bytes += (int64_t)content_text(h, d, p, NULL, &err);
        last_user = p;
    }
    st->prompt_tokens = ceil_div4(prompt_bytes);
    if (st->prompt_tokens < 1)
        st->prompt_tokens = 1;

    content_text(h, d, last_user, &st->reply, &err);
    if (err)
        return err;

    int tools = d->ntok > 0 ? h->json_get(d, 0, "tools") : -1;
    if (tools >= 0 && d->tok[tools].type == LLMUX_JSON_ARRAY && d->tok[tools].size > 0 &&
        st->reply.data && contains_word_ci(st->reply.data, st->reply.len, "weather")) {
        int fn = h->json_get(d, tools + 1, "function");
        int name = fn >= 0 ? h->json_get(d, fn, "name") : -1;
        if (name >= 0 && d->tok[name].type == LLMUX_JSON_STRING) {
            st->tool_call = 1;
            st->reply.len = 0;
            if (h->buf_append(&st->reply, d->text + d->tok[name].start,
                              (size_t)(d->tok[name].end - d->tok[name].start)))
                return LLMUX_ENOMEM;
        }
    }
    return 0;
}

static int64_t mock_prompt_tokens(llmux_call *c)
{
    mock_call tmp;
    memset(&tmp, 0, sizeof tmp);
    int rc = mock_prepare_echo(c, &tmp);
    host_of(c)->buf_free(&tmp.reply);
    return rc ? 1 : tmp.prompt_tokens;
}

static int mock_init(const llmux_host *host, const llmux_provider_config *cfg, void **ctx)
{
    mock_ctx *m = host->calloc(1, sizeof *m);
    if (!m)
        return LLMUX_ENOMEM;
    m->host = host;
    atomic_init(&m->counter, 0);
    *ctx = m;
    return 0;
}

static void mock_fini(void *ctx)
{
    mock_ctx *m = ctx;
    if (m)
        m->host->free(m);
}

static int mock_prepare(llmux_call *c, llmux_outreq *out)
{
    mock_ctx *m = c->plugin_ctx;
    const llmux_host *h = m->host;
    const char *model = c->ep && c->ep->upstream_model ? c->ep->upstream_model : "";

    mock_call *st = h->calloc(1, sizeof *st);
    if (!st)
        return LLMUX_ENOMEM;
    c->state = st;

    if (!strcmp(model, "echo"))
        st->mode = MOCK_ECHO;
    else if (!strcmp(model, "lorem"))
        st->mode = MOCK_LOREM;
    else if (!strcmp(model, "fail"))
        st->mode = MOCK_FAIL;
    else if (!strcmp(model, "fail_midstream"))
        st->mode = MOCK_FAIL_MIDSTREAM;
    else {
        char msg[256];
        snprintf(msg, sizeof msg, "mock: unknown model '%.200s'", model);
        h->emit_error(c, 404, msg, NULL, 0, 0);
        return LLMUX_EUNSUPPORTED;
    }

    st->delay_ms = (uint32_t)mock_option_int(c, "delay_ms", 0, 0, MOCK_MAX_DELAY_MS);
    int rc = 0;
    if (st->mode == MOCK_ECHO) {
        rc = mock_prepare_echo(c, st);
    } else {
        st->prompt_tokens = mock_prompt_tokens(c);
        st->total = mock_option_int(c, "tokens", MOCK_DEFAULT_TOKENS, 0, MOCK_MAX_TOKENS);
        if (c->req->max_tokens > 0 && c->req->max_tokens < st->total) {
            st->total = c->req->max_tokens;
            st->cut_by_max_tokens = 1;
        }
    }
    if (rc)
        return rc;

    unsigned long long n = (unsigned long long)atomic_fetch_add(&m->counter, 1) + 1;
    snprintf(st->upstream_id, sizeof st->upstream_id, "mock-%llu", n);
    return h->req_set_local(out, 0);
}

static int emit_usage(llmux_call *c, int64_t prompt, int64_t completion)
{
    llmux_usage u;
    u.prompt_tokens = prompt;
    u.completion_tokens = completion;
    u.reasoning_tokens = 0;
    u.cached_tokens = 0;
    u.cache_write_tokens = 0;
    return host_of(c)->emit_usage(c, &u);
}

static int emit_word(llmux_call *c, int64_t i)
{
    char w[64];
    const char *word = lorem_words[(size_t)i % LOREM_N];
    int n = snprintf(w, sizeof w, "%s%s", i ? " " : "", word);
    return host_of(c)->emit_delta(c, 0, LLMUX_DELTA_CONTENT, w, (size_t)n);
}

static int tick_echo(llmux_call *c, mock_call *st)
{
    const llmux_host *h = host_of(c);
    int rc;
    const char *text = st->reply.data ? st->reply.data : "";
    if (st->tool_call) {
        rc = h->emit_tool_call(c, 0, 0, "call_mock_1", 11, text, st->reply.len,
                               mock_tool_args, sizeof mock_tool_args - 1);
        if (!rc)
            rc = h->emit_finish(c, 0, LLMUX_FINISH_TOOL_CALLS, "tool_calls", 10);
        if (!rc)
            rc = emit_usage(c, st->prompt_tokens,
                            ceil_div4((int64_t)(sizeof mock_tool_args - 1)));
        return rc;
    }
    rc = 0;
    if (st->reply.len)
        rc = h->emit_delta(c, 0, LLMUX_DELTA_CONTENT, text, st->reply.len);
    if (!rc)
        rc = h->emit_finish(c, 0, LLMUX_FINISH_STOP, "stop", 4);
    if (!rc)
        rc = emit_usage(c, st->prompt_tokens, ceil_div4((int64_t)st->reply.len));
    return rc;
}

static int tick_lorem(llmux_call *c, mock_call *st)
{
    const llmux_host *h = host_of(c);
    int rc = 0;
    if (st->delay_ms == 0) {
        while (!rc && st->pos < st->total)
            rc = emit_word(c, st->pos++);
    } else if (st->pos < st->total) {
        rc = emit_word(c, st->pos++);
    }
    if (rc)
        return rc;
    if (st->pos < st->total)
        return h->call_schedule(c, st->delay_ms);
    if (st->cut_by_max_tokens)
        rc = h->emit_finish(c, 0, LLMUX_FINISH_LENGTH, "length", 6);
    else
        rc = h->emit_finish(c, 0, LLMUX_FINISH_STOP, "stop", 4);
    if (!rc)
        rc = emit_usage(c, st->prompt_tokens, st->total);
    return rc;
}

static int tick_fail_midstream(llmux_call *c, mock_call *st)
{
    const llmux_host *h = host_of(c);
    int rc = 0;
    while (!rc && st->pos < 2) {
        rc = emit_word(c, st->pos++);
        if (!rc && st->delay_ms && st->pos < 2)
            return h->call_schedule(c, st->delay_ms);
    }
    if (rc)
        return rc;
    static const char raw[] = "{\"error\":{\"message\":\"mock: simulated mid-stream failure\"}}";
    h->emit_error(c, 502, "mock: simulated mid-stream failure", raw, sizeof raw - 1, 0);
    return LLMUX_EUPSTREAM;
}

static int mock_on_tick(llmux_call *c)
{
    mock_call *st = c->state;
    const llmux_host *h = host_of(c);
    if (!st)
        return LLMUX_EINVAL;
    if (st->upstream_id[0]) {
        int rc = h->set_upstream_id(c, st->upstream_id, strlen(st->upstream_id));
        st->upstream_id[0] = '\0';
        if (rc)
            return rc;
    }
    switch (st->mode) {
    case MOCK_ECHO:
        return tick_echo(c, st);
    case MOCK_LOREM:
        return tick_lorem(c, st);
    case MOCK_FAIL_MIDSTREAM:
        return tick_fail_midstream(c, st);
    case MOCK_FAIL:
    default: {
        static const char raw[] = "{\"error\":{\"message\":\"mock: simulated upstream failure\"}}";
        h->emit_error(c, 500, "mock: simulated upstream failure", raw, sizeof raw - 1, 0);
        return LLMUX_EUPSTREAM;
    }
    }
}

/* Local calls never see HTTP; these exist so a host that calls them anyway is fine. */
static int mock_on_headers(llmux_call *c, int status, const llmux_kv *headers, size_t n)
{
    return 0;
}

static int mock_on_data(llmux_call *c, const char *data, size_t n) { return 0; }

static int mock_on_done(llmux_call *c, int status) { return 0; }

static void mock_release(llmux_call *c)
{
    mock_call *st = c->state;
    if (!st)
        return;
    const llmux_host *h = host_of(c);
    h->buf_free(&st->reply);
    h->free(st);
    c->state = NULL;
}

static const llmux_plugin mock_plugin = {
    .magic = LLMUX_PLUGIN_MAGIC,
    .abi_major = LLMUX_ABI_MAJOR,
    .abi_minor = LLMUX_ABI_MINOR,
    .struct_size = sizeof(llmux_plugin),
    .name = MOCK_NAME,
    .version = "1.0.0",
    .init = mock_init,
    .prepare = mock_prepare,
    .on_headers = mock_on_headers,
    .on_data = mock_on_data,
    .on_done = mock_on_done,
    .release = mock_release,
    .fini = mock_fini,
    .on_tick = mock_on_tick,
};

LLMUX_EXPORT const llmux_plugin *llmux_plugin_v1(void) { return &mock_plugin; }
