/*
 * test_host.h — header-only harness to drive a provider plugin .so without
 * the server. Include it from exactly one test .c file (everything is static).
 *
 *   const llmux_plugin *p;
 *   void *so = test_load_plugin("mock", &p);         // $LLMUX_BUILD_DIR/plugins/mock.so
 *   void *ctx = NULL;
 *   llmux_provider_config pc = {0}; pc.name = "mock"; pc.base_url = "http://x";
 *   p->init(test_host(), &pc, &ctx);
 *   llmux_endpoint ep = {0}; ep.model = "m/a"; ep.upstream_model = "a";
 *   llmux_call call; struct llmux_outreq out;
 *   test_prepare(p, ctx, "{\"model\":\"m/a\",\"stream\":true,...}", &ep, &pc, &call, &out);
 *   p->on_headers(&call, 200, NULL, 0); p->on_data(&call, bytes, n); p->on_done(&call, 200);
 *   assert_string_equal(test_events_str(), "delta 0 content Hi\nfinish 0 stop native=stop\n");
 *   p->release(&call); test_outreq_free(&out); test_request_free(); p->fini(ctx); dlclose(so);
 *
 * Recorded event lines (one per emit_* call, each ending in "\n"):
 *   delta <choice> <content|reasoning|refusal> <escaped text as passed>
 *   tool <choice> idx=<index>[ id=<id>][ name=<name>] args=<args fragment>
 *        (id= / name= appear only when the plugin passed non-NULL)
 *   reasoning_detail <choice> <json as passed>
 *   finish <choice> <none|stop|length|tool_calls|content_filter|error> native=<native or empty>
 *   usage p=<prompt> c=<completion> r=<reasoning> cached=<cached> cw=<cache_write>
 *        (-1 = not reported)
 *   upstream_id <id as passed>
 *   error status=<status> retry_ms=<ms> msg=<message, JSON-escaped> raw=<raw, JSON-escaped>
 *   schedule <ms>
 * Text already escaped by the plugin is recorded verbatim (it cannot contain
 * a raw newline if the plugin escaped correctly); message/raw are escaped by
 * the harness. Every line is also the one in test_events_str().
 *
 * Linking: needs core/buf.c, core/json.c, core/sse_parse.c (llmux_core) and -ldl.
 */
#ifndef LLMUX_TEST_HOST_H
#define LLMUX_TEST_HOST_H

#include <dlfcn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../sdk/llmux_plugin.h"
#include "../../core/buf.h"
#include "../../core/json.h"
#include "../../core/sse_parse.h"

/* The test host's outgoing request (the real server has its own). */
struct llmux_outreq {
    llmux_buf url;
    llmux_buf headers; /* "Name: value\n" lines, in order of req_add_header */
    llmux_buf body;
    int local;
    uint32_t first_delay_ms;
};

#define TEST_HOST_MAX_TOKENS 262144
#define TEST_HOST_MAX_DEPTH 64
#define TEST_HOST_SSE_MAX ((size_t)4 << 20)

#if defined(__GNUC__) || defined(__clang__)
#define TEST_HOST_UNUSED __attribute__((unused))
#else
#define TEST_HOST_UNUSED
#endif

static llmux_buf test_events TEST_HOST_UNUSED;

/* Holds the request built by test_prepare (call->req points here). */
static struct {
    char *text;
    llmux_request req;
} test_request_storage TEST_HOST_UNUSED;

/* ---- host table implementations --------------------------------------- */

static inline void *th_alloc(size_t n) { return malloc(n); }
static inline void *th_calloc(size_t n, size_t s) { return calloc(n, s); }
static inline void *th_realloc(void *p, size_t n) { return realloc(p, n); }
static inline void th_free(void *p) { free(p); }

static inline void th_log(llmux_log_level level, const char *plugin, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline void th_log(llmux_log_level level, const char *plugin, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    va_list ap;
    fprintf(stderr, "[%s] %s: ", (unsigned)level < 4 ? names[level] : "?",
            plugin ? plugin : "-");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static inline int th_json_parse(const char *text, size_t len, llmux_json *out)
{
    llmux_json_limits lim = {TEST_HOST_MAX_TOKENS, TEST_HOST_MAX_DEPTH};
    const char *err = NULL;
    size_t off = 0;
    int rc = llmux_json_parse(text, len, &lim, out, &err, &off);
    if (rc == LLMUX_EPROTO && getenv("TEST_HOST_VERBOSE"))
        fprintf(stderr, "test_host: json_parse: %s at %zu\n", err ? err : "?", off);
    return rc;
}

static inline int th_req_set_url(llmux_outreq *r, const char *url)
{
    llmux_buf_reset(&r->url);
    return llmux_buf_append_str(&r->url, url ? url : "");
}

static inline int th_req_add_header(llmux_outreq *r, const char *name, const char *value)
{
    return llmux_buf_printf(&r->headers, "%s: %s\n", name ? name : "", value ? value : "");
}

static inline llmux_buf *th_req_body(llmux_outreq *r) { return &r->body; }

static inline int th_req_set_local(llmux_outreq *r, uint32_t first_delay_ms)
{
    r->local = 1;
    r->first_delay_ms = first_delay_ms;
    return 0;
}

static inline int th_emit_delta(llmux_call *c, int choice, llmux_delta_kind kind,
                                const char *escaped, size_t n)
{
    static const char *kinds[] = {"content", "reasoning", "refusal"};
    (void)c;
    if (llmux_buf_printf(&test_events, "delta %d %s ", choice,
                         (unsigned)kind < 3 ? kinds[kind] : "?") ||
        llmux_buf_append(&test_events, escaped, escaped ? n : 0) ||
        llmux_buf_append_char(&test_events, '\n'))
        return LLMUX_ENOMEM;
    return 0;
}

static inline int th_emit_tool_call(llmux_call *c, int choice, int index, const char *id,
                                    size_t id_len, const char *name, size_t name_len,
                                    const char *args, size_t args_len)
{
    (void)c;
    if (llmux_buf_printf(&test_events, "tool %d idx=%d", choice, index))
        return LLMUX_ENOMEM;
    if (id && (llmux_buf_append_str(&test_events, " id=") ||
               llmux_buf_append(&test_events, id, id_len)))
        return LLMUX_ENOMEM;
    if (name && (llmux_buf_append_str(&test_events, " name=") ||
                 llmux_buf_append(&test_events, name, name_len)))
        return LLMUX_ENOMEM;
    if (llmux_buf_append_str(&test_events, " args=") ||
        llmux_buf_append(&test_events, args, args ? args_len : 0) ||
        llmux_buf_append_char(&test_events, '\n'))
        return LLMUX_ENOMEM;
    return 0;
}

static inline int th_emit_reasoning_detail(llmux_call *c, int choice, const char *json, size_t n)
{
    (void)c;
    if (llmux_buf_printf(&test_events, "reasoning_detail %d ", choice) ||
        llmux_buf_append(&test_events, json, json ? n : 0) ||
        llmux_buf_append_char(&test_events, '\n'))
        return LLMUX_ENOMEM;
    return 0;
}

static inline const char *test_finish_name(llmux_finish f)
{
    switch (f) {
    case LLMUX_FINISH_NONE: return "none";
    case LLMUX_FINISH_STOP: return "stop";
    case LLMUX_FINISH_LENGTH: return "length";
    case LLMUX_FINISH_TOOL_CALLS: return "tool_calls";
    case LLMUX_FINISH_CONTENT_FILTER: return "content_filter";
    case LLMUX_FINISH_ERROR: return "error";
    }
    return "?";
}

static inline int th_emit_finish(llmux_call *c, int choice, llmux_finish reason,
                                 const char *native, size_t native_len)
{
    (void)c;
    if (llmux_buf_printf(&test_events, "finish %d %s native=", choice, test_finish_name(reason)) ||
        llmux_buf_append(&test_events, native, native ? native_len : 0) ||
        llmux_buf_append_char(&test_events, '\n'))
        return LLMUX_ENOMEM;
    return 0;
}

static inline int th_emit_usage(llmux_call *c, const llmux_usage *u)
{
    (void)c;
    return llmux_buf_printf(&test_events, "usage p=%lld c=%lld r=%lld cached=%lld cw=%lld\n",
                            (long long)u->prompt_tokens, (long long)u->completion_tokens,
                            (long long)u->reasoning_tokens, (long long)u->cached_tokens,
                            (long long)u->cache_write_tokens);
}

static inline int th_set_upstream_id(llmux_call *c, const char *id, size_t n)
{
    (void)c;
    if (llmux_buf_append_str(&test_events, "upstream_id ") ||
        llmux_buf_append(&test_events, id, id ? n : 0) ||
        llmux_buf_append_char(&test_events, '\n'))
        return LLMUX_ENOMEM;
    return 0;
}

static inline int th_emit_error(llmux_call *c, int status, const char *message, const char *raw,
                                size_t raw_len, uint32_t retry_after_ms)
{
    (void)c;
    if (llmux_buf_printf(&test_events, "error status=%d retry_ms=%u msg=", status,
                         (unsigned)retry_after_ms) ||
        llmux_buf_append_escaped(&test_events, message ? message : "",
                                 message ? strlen(message) : 0) ||
        llmux_buf_append_str(&test_events, " raw=") ||
        llmux_buf_append_escaped(&test_events, raw ? raw : "", raw ? raw_len : 0) ||
        llmux_buf_append_char(&test_events, '\n'))
        return LLMUX_ENOMEM;
    return 0;
}

static inline int th_call_schedule(llmux_call *c, uint32_t delay_ms)
{
    (void)c;
    return llmux_buf_printf(&test_events, "schedule %u\n", (unsigned)delay_ms);
}

static inline int th_sse_feed(struct llmux_sse *p, const char *data, size_t n,
                              int (*on_event)(void *ud, const char *event, size_t event_len,
                                              const char *d, size_t data_len),
                              void *ud)
{
    return llmux_sse_feed(p, data, n, TEST_HOST_SSE_MAX, on_event, ud);
}

static inline const char *th_kv_get(const llmux_kv *kv, size_t n, const char *key)
{
    for (size_t i = 0; kv && key && i < n; i++)
        if (kv[i].key && strcmp(kv[i].key, key) == 0)
            return kv[i].value;
    return NULL;
}

/* ---- public helpers ----------------------------------------------------- */

/* A fully filled host table (static storage). */
static inline const llmux_host *test_host(void)
{
    static llmux_host h;
    if (h.magic == LLMUX_PLUGIN_MAGIC)
        return &h;
    h.abi_major = LLMUX_ABI_MAJOR;
    h.abi_minor = LLMUX_ABI_MINOR;
    h.struct_size = sizeof h;
    h.alloc = th_alloc;
    h.calloc = th_calloc;
    h.realloc = th_realloc;
    h.free = th_free;
    h.log = th_log;
    h.buf_append = llmux_buf_append;
    h.buf_append_str = llmux_buf_append_str;
    h.buf_printf = llmux_buf_printf;
    h.buf_append_escaped = llmux_buf_append_escaped;
    h.buf_free = llmux_buf_free;
    h.json_parse = th_json_parse;
    h.json_release = llmux_json_release;
    h.json_skip = llmux_json_skip;
    h.json_get = llmux_json_get;
    h.json_eq = llmux_json_eq;
    h.json_int = llmux_json_int;
    h.json_double = llmux_json_double;
    h.json_bool = llmux_json_bool;
    h.json_unescape = llmux_json_unescape;
    h.req_set_url = th_req_set_url;
    h.req_add_header = th_req_add_header;
    h.req_body = th_req_body;
    h.req_set_local = th_req_set_local;
    h.emit_delta = th_emit_delta;
    h.emit_tool_call = th_emit_tool_call;
    h.emit_reasoning_detail = th_emit_reasoning_detail;
    h.emit_finish = th_emit_finish;
    h.emit_usage = th_emit_usage;
    h.set_upstream_id = th_set_upstream_id;
    h.emit_error = th_emit_error;
    h.call_schedule = th_call_schedule;
    h.sse_feed = th_sse_feed;
    h.sse_free = llmux_sse_free;
    h.kv_get = th_kv_get;
    h.magic = LLMUX_PLUGIN_MAGIC;
    return &h;
}

static inline void test_reset_events(void) { llmux_buf_reset(&test_events); }

/* All recorded event lines so far ("" if none). */
static inline const char *test_events_str(void)
{
    return test_events.data ? test_events.data : "";
}

/* dlopens $LLMUX_BUILD_DIR/plugins/<name>.so (default build dir "build"),
 * resolves llmux_plugin_v1 and checks magic/ABI. Returns the handle for
 * dlclose, or NULL (with a message on stderr). */
static inline void *test_load_plugin(const char *name, const llmux_plugin **out)
{
    const char *dir = getenv("LLMUX_BUILD_DIR");
    char path[4096];
    *out = NULL;
    snprintf(path, sizeof path, "%s/plugins/%s.so", dir && *dir ? dir : "build", name);
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "test_load_plugin: %s\n", dlerror());
        return NULL;
    }
    void *sym = dlsym(h, LLMUX_PLUGIN_ENTRY);
    llmux_plugin_entry_fn fn;
    memcpy(&fn, &sym, sizeof fn); /* object -> function pointer without a cast warning */
    const llmux_plugin *p = sym ? fn() : NULL;
    if (!p || p->magic != LLMUX_PLUGIN_MAGIC || p->abi_major != LLMUX_ABI_MAJOR) {
        fprintf(stderr, "test_load_plugin: %s: bad or missing %s\n", path, LLMUX_PLUGIN_ENTRY);
        dlclose(h);
        return NULL;
    }
    *out = p;
    return h;
}

/* Frees the request kept by the last test_prepare. */
static inline void test_request_free(void)
{
    llmux_json_release(&test_request_storage.req.body);
    free(test_request_storage.text);
    memset(&test_request_storage, 0, sizeof test_request_storage);
}

static inline void test_outreq_free(struct llmux_outreq *o)
{
    llmux_buf_free(&o->url);
    llmux_buf_free(&o->headers);
    llmux_buf_free(&o->body);
    memset(o, 0, sizeof *o);
}

/* 1 if the outreq has exactly the header line "Name: value". */
static inline int test_outreq_has_header(const struct llmux_outreq *o, const char *name,
                                         const char *value)
{
    llmux_buf line = {0};
    int found = 0;
    if (llmux_buf_printf(&line, "%s: %s\n", name, value) == 0 && o->headers.data) {
        const char *h = o->headers.data;
        while (*h) {
            const char *nl = strchr(h, '\n');
            size_t n = nl ? (size_t)(nl - h + 1) : strlen(h);
            if (n == line.len && memcmp(h, line.data, n) == 0) {
                found = 1;
                break;
            }
            h += n;
        }
    }
    llmux_buf_free(&line);
    return found;
}

/* Parses body_json into the canonical request (kept until the next
 * test_prepare / test_request_free), fills *call, zeroes *out and runs
 * p->prepare(call, out). Returns prepare's result, or LLMUX_EPROTO if the body
 * is not valid JSON. call->state is what prepare left there. */
static inline int test_prepare(const llmux_plugin *p, void *ctx, const char *body_json,
                               llmux_endpoint *ep, llmux_provider_config *pc, llmux_call *call,
                               struct llmux_outreq *out)
{
    test_request_free();
    size_t len = strlen(body_json);
    test_request_storage.text = malloc(len + 1);
    if (!test_request_storage.text)
        return LLMUX_ENOMEM;
    memcpy(test_request_storage.text, body_json, len + 1);
    llmux_request *r = &test_request_storage.req;
    r->struct_size = sizeof *r;
    int rc = th_json_parse(test_request_storage.text, len, &r->body);
    if (rc)
        return rc;
    if (r->body.ntok > 0 && r->body.tok[0].type == LLMUX_JSON_OBJECT) {
        int i = llmux_json_get(&r->body, 0, "stream");
        r->stream = i >= 0 && llmux_json_bool(&r->body, i) == 1;
        i = llmux_json_get(&r->body, 0, "max_completion_tokens");
        if (i < 0)
            i = llmux_json_get(&r->body, 0, "max_tokens");
        int64_t v = 0;
        if (i >= 0 && llmux_json_int(&r->body, i, &v) == 0)
            r->max_tokens = v;
        r->is_legacy_prompt = llmux_json_get(&r->body, 0, "prompt") >= 0 &&
                              llmux_json_get(&r->body, 0, "messages") < 0;
    }
    if (ep && ep->struct_size == 0)
        ep->struct_size = sizeof *ep;
    if (pc && pc->struct_size == 0)
        pc->struct_size = sizeof *pc;
    memset(call, 0, sizeof *call);
    call->struct_size = sizeof *call;
    call->plugin_ctx = ctx;
    call->req = r;
    call->ep = ep;
    call->provider = pc;
    memset(out, 0, sizeof *out);
    return p->prepare(call, out);
}

/* ---- fixture: one loaded plugin, one call at a time ---------------------- */

/* What a plugin test keeps between setup and teardown. pc_opts / ep_opts are
 * storage for pc.options / ep.options. */
typedef struct {
    void *so;
    const llmux_plugin *p;
    void *ctx;
    llmux_provider_config pc;
    llmux_kv pc_opts[2];
    llmux_endpoint ep;
    llmux_kv ep_opts[2];
    llmux_call call;
    struct llmux_outreq out;
    int prepared; /* set by test_fx_prepare: call must be released */
} test_fx;

/* A zeroed fixture with $LLMUX_BUILD_DIR/plugins/<name>.so loaded (not yet
 * initialised), or NULL (with a message on stderr when the load failed). */
static inline test_fx *test_fx_open(const char *name)
{
    test_fx *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->so = test_load_plugin(name, &f->p);
    if (!f->so) {
        free(f);
        return NULL;
    }
    return f;
}

/* Releases the call if test_fx_prepare prepared one, and frees the outreq. */
static inline void test_fx_release_call(test_fx *f)
{
    if (f->prepared)
        f->p->release(&f->call);
    f->prepared = 0;
    test_outreq_free(&f->out);
}

/* Releases the call and the kept request, finis the plugin, dlcloses it and
 * frees f. */
static inline void test_fx_close(test_fx *f)
{
    test_fx_release_call(f);
    test_request_free();
    f->p->fini(f->ctx);
    dlclose(f->so);
    free(f);
}

/* Releases the previous call, clears the events and runs test_prepare on f's
 * endpoint and provider. The call is released later whatever prepare
 * returned. */
static inline int test_fx_prepare(test_fx *f, const char *body)
{
    test_fx_release_call(f);
    test_reset_events();
    int rc = test_prepare(f->p, f->ctx, body, &f->ep, &f->pc, &f->call, &f->out);
    f->prepared = 1;
    return rc;
}

/* Fills f->pc (name, api_key, and the one option opt_key=opt_value unless
 * opt_key is NULL) and runs the plugin's init. Returns init's result. */
static inline int test_fx_init(test_fx *f, const char *name, const char *api_key, const char *opt_key,
                               const char *opt_value)
{
    f->pc.name = name;
    f->pc.api_key = api_key;
    f->pc.n_options = 0;
    if (opt_key) {
        f->pc_opts[0].key = opt_key;
        f->pc_opts[0].value = opt_value;
        f->pc.options = f->pc_opts;
        f->pc.n_options = 1;
    }
    return f->p->init(test_host(), &f->pc, &f->ctx);
}

/* cmocka teardown for a fixture made by test_fx_setup. */
static inline int test_fx_teardown(void **state)
{
    test_fx_close((test_fx *)*state);
    return 0;
}

/* One upstream answer: HTTP status, optional Retry-After, body. */
typedef struct {
    int status;
    const char *retry_after; /* NULL: no retry-after header */
    const char *body;
} test_transcript;

/* Needs cmocka's assertions: include <cmocka.h> before this header. */
#ifdef assert_string_equal
/* Prepares a one-message chat request, then feeds t to the call
 * in pieces: split=0 whole, split=k>0 two pieces cut at byte k, split=-1 one
 * byte at a time. Returns a copy of the events (free it). */
static inline char *test_fx_run(test_fx *f, const test_transcript *t, long split)
{
    llmux_kv hdr[2] = {{"content-type", "text/event-stream"}, {"retry-after", t->retry_after}};
    assert_int_equal(
        test_fx_prepare(f, "{\"model\":\"a/b\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"),
        0);
    test_reset_events();
    f->p->on_headers(&f->call, t->status, hdr, t->retry_after ? 2 : 1);
    size_t n = strlen(t->body);
    if (split == 0) {
        f->p->on_data(&f->call, t->body, n);
    } else if (split > 0) {
        f->p->on_data(&f->call, t->body, (size_t)split);
        f->p->on_data(&f->call, t->body + split, n - (size_t)split);
    } else {
        for (size_t i = 0; i < n; i++)
            f->p->on_data(&f->call, t->body + i, 1);
    }
    f->p->on_done(&f->call, t->status);
    char *s = strdup(test_events_str());
    test_fx_release_call(f);
    return s;
}

/* Asserts that t fed whole gives expected, and that every two-piece split
 * and byte-by-byte feeding give the same events. */
static inline void test_fx_check_transcript(test_fx *f, const test_transcript *t,
                                            const char *expected)
{
    char *whole = test_fx_run(f, t, 0);
    assert_string_equal(whole, expected);
    size_t n = strlen(t->body);
    for (size_t k = 1; k < n; k++) {
        char *part = test_fx_run(f, t, (long)k);
        if (strcmp(part, whole) != 0)
            fprintf(stderr, "split at byte %zu differs\n", k);
        assert_string_equal(part, whole);
        free(part);
    }
    char *bytes = test_fx_run(f, t, -1);
    assert_string_equal(bytes, whole);
    free(bytes);
    free(whole);
}

/* The body of a cmocka setup: plugin `name` opened and initialised by
 * test_fx_init (no option), the endpoint's model names set, the events
 * cleared and the fixture put in *state. */
static inline int test_fx_setup(void **state, const char *name, const char *api_key, const char *model,
                                const char *upstream_model)
{
    test_fx *f = test_fx_open(name);
    assert_non_null(f);
    assert_int_equal(test_fx_init(f, name, api_key, NULL, NULL), 0);
    f->ep.model = model;
    f->ep.upstream_model = upstream_model;
    test_reset_events();
    *state = f;
    return 0;
}
#endif /* assert_string_equal */

#endif /* LLMUX_TEST_HOST_H */
