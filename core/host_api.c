/* The host API table handed to plugins (append-only, see sdk/llmux_plugin.h). */
#include "plugin_host.h"
#include "buf.h"
#include "call.h"
#include "json.h"
#include "log.h"
#include "sse_parse.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SINK(c) (((llmux_host_call *)(c))->sink)
#define UD(c) (((llmux_host_call *)(c))->ud)

static size_t g_max_sse_event = 4u << 20;
static llmux_json_limits g_plugin_json_limits = {262144, 64};

static void h_free(void *p) { free(p); }

static void h_log(llmux_log_level level, const char *plugin, const char *fmt, ...)
{
    if (!llmux_log_enabled(level)) return;
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    llmux_log_plugin(level, plugin, "%s", line);
}

static int h_buf_printf(llmux_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = llmux_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return r;
}

static int h_json_parse(const char *text, size_t len, llmux_json *out)
{
    return llmux_json_parse(text, len, &g_plugin_json_limits, out, NULL, NULL);
}

static int h_req_set_url(llmux_outreq *r, const char *url)
{
    llmux_buf_reset(&r->url);
    if (llmux_buf_append_str(&r->url, url)) { r->failed = 1; return LLMUX_ENOMEM; }
    return 0;
}

static int h_req_add_header(llmux_outreq *r, const char *name, const char *value)
{
    /* CR/LF in a header value would let a request smuggle headers upstream. */
    if (strpbrk(name, "\r\n:") || strpbrk(value, "\r\n")) return LLMUX_EINVAL;
    size_t n = strlen(name) + strlen(value) + 3;
    char stackbuf[512], *line = n <= sizeof stackbuf ? stackbuf : malloc(n);
    if (!line) { r->failed = 1; return LLMUX_ENOMEM; }
    size_t nl = strlen(name), vl = strlen(value);
    memcpy(line, name, nl);
    memcpy(line + nl, ": ", 2);
    memcpy(line + nl + 2, value, vl + 1);
    struct curl_slist *s = curl_slist_append(r->headers, line);
    if (line != stackbuf) free(line);
    if (!s) { r->failed = 1; return LLMUX_ENOMEM; }
    r->headers = s;
    return 0;
}

static llmux_buf *h_req_body(llmux_outreq *r) { return &r->body; }

static int h_req_set_local(llmux_outreq *r, uint32_t first_delay_ms)
{
    r->local = 1;
    r->first_delay_ms = first_delay_ms;
    return 0;
}

void llmux_outreq_free(struct llmux_outreq *r)
{
    llmux_buf_free(&r->url);
    llmux_buf_free(&r->body);
    curl_slist_free_all(r->headers);
    r->headers = NULL;
}

static int h_emit_delta(llmux_call *c, int choice, llmux_delta_kind k, const char *s, size_t n)
{
    return SINK(c)->delta(UD(c), choice, k, s, n);
}
static int h_emit_tool_call(llmux_call *c, int choice, int index, const char *id, size_t idl,
                            const char *name, size_t nl, const char *args, size_t al)
{
    return SINK(c)->tool_call(UD(c), choice, index, id, idl, name, nl, args, al);
}
static int h_emit_reasoning_detail(llmux_call *c, int choice, const char *json, size_t n)
{
    return SINK(c)->reasoning_detail(UD(c), choice, json, n);
}
static int h_emit_finish(llmux_call *c, int choice, llmux_finish r, const char *native, size_t n)
{
    return SINK(c)->finish(UD(c), choice, r, native, n);
}
static int h_emit_usage(llmux_call *c, const llmux_usage *u) { return SINK(c)->usage(UD(c), u); }
static int h_set_upstream_id(llmux_call *c, const char *id, size_t n) { return SINK(c)->upstream_id(UD(c), id, n); }
static int h_emit_error(llmux_call *c, int status, const char *msg, const char *raw, size_t rl, uint32_t ra)
{
    return SINK(c)->error(UD(c), status, msg, raw, rl, ra);
}
static int h_call_schedule(llmux_call *c, uint32_t ms) { return SINK(c)->schedule(UD(c), ms); }

static int h_sse_feed(llmux_sse *p, const char *data, size_t n,
                      int (*cb)(void *, const char *, size_t, const char *, size_t), void *ud)
{
    return llmux_sse_feed(p, data, n, g_max_sse_event, cb, ud);
}

static const char *h_kv_get(const llmux_kv *kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (kv[i].key && strcmp(kv[i].key, key) == 0) return kv[i].value;
    return NULL;
}

static const llmux_host g_host = {
    .magic = LLMUX_PLUGIN_MAGIC,
    .abi_major = LLMUX_ABI_MAJOR,
    .abi_minor = LLMUX_ABI_MINOR,
    .struct_size = sizeof(llmux_host),
    .alloc = malloc,
    .calloc = calloc,
    .realloc = realloc,
    .free = h_free,
    .log = h_log,
    .buf_append = llmux_buf_append,
    .buf_append_str = llmux_buf_append_str,
    .buf_printf = h_buf_printf,
    .buf_append_escaped = llmux_buf_append_escaped,
    .buf_free = llmux_buf_free,
    .json_parse = h_json_parse,
    .json_release = llmux_json_release,
    .json_skip = llmux_json_skip,
    .json_get = llmux_json_get,
    .json_eq = llmux_json_eq,
    .json_int = llmux_json_int,
    .json_double = llmux_json_double,
    .json_bool = llmux_json_bool,
    .json_unescape = llmux_json_unescape,
    .req_set_url = h_req_set_url,
    .req_add_header = h_req_add_header,
    .req_body = h_req_body,
    .req_set_local = h_req_set_local,
    .emit_delta = h_emit_delta,
    .emit_tool_call = h_emit_tool_call,
    .emit_reasoning_detail = h_emit_reasoning_detail,
    .emit_finish = h_emit_finish,
    .emit_usage = h_emit_usage,
    .set_upstream_id = h_set_upstream_id,
    .emit_error = h_emit_error,
    .call_schedule = h_call_schedule,
    .sse_feed = h_sse_feed,
    .sse_free = llmux_sse_free,
    .kv_get = h_kv_get,
};

const llmux_host *llmux_host_api(void) { return &g_host; }

void llmux_host_set_limits(size_t max_sse_event, int max_json_tokens, int max_json_depth)
{
    g_max_sse_event = max_sse_event;
    g_plugin_json_limits.max_tokens = max_json_tokens;
    g_plugin_json_limits.max_depth = max_json_depth;
}
