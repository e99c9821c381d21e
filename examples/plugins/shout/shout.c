/*
 * shout — an out-of-tree llmux provider plugin: a local model that answers
 * with the last user message in upper case, one word per tick.
 *
 * It is built against the *installed* SDK, never against llmux's tree:
 *
 *   cc -std=c11 -O2 -shared -fPIC -fvisibility=hidden -o shout.so shout.c \
 *      $(pkg-config --cflags llmux-plugin)
 *
 * Config (provider options, or per-endpoint options):
 *   delay_ms   pause between words (default 0: the whole reply in one tick)
 *   prefix     text put before the reply (raw, default "")
 *
 * Build-time knob, used by llmux's reload tests to make two distinguishable
 * builds of the same source: -DSHOUT_VERSION='"2.0.0"'.
 */
#include <llmux_plugin.h>

#include <stdlib.h>
#include <string.h>

#ifndef SHOUT_VERSION
#define SHOUT_VERSION "1.0.0"
#endif

typedef struct {
    const llmux_host *host;
    unsigned delay_ms;
    llmux_buf prefix; /* JSON-escaped */
} shout_ctx;

typedef struct {
    llmux_buf reply;   /* JSON-escaped, upper-cased */
    size_t pos;        /* bytes of reply already emitted */
    int64_t prompt_words, reply_words;
} shout_call;

/* Upper-cases escaped JSON text without breaking escapes (\n, \u00e9). */
static int append_upper(const llmux_host *h, llmux_buf *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n) {
            size_t len = s[i + 1] == 'u' ? 6 : 2;
            if (i + len > n) len = n - i;
            if (h->buf_append(out, s + i, len)) return LLMUX_ENOMEM;
            i += len - 1;
            continue;
        }
        char c = s[i] >= 'a' && s[i] <= 'z' ? (char)(s[i] - 'a' + 'A') : s[i];
        if (h->buf_append(out, &c, 1)) return LLMUX_ENOMEM;
    }
    return 0;
}

static int64_t count_words(const char *s, size_t n)
{
    int64_t w = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && (i == 0 || s[i - 1] == ' ')) w++;
    return w;
}

static const char *option(const llmux_call *c, const char *key)
{
    const llmux_host *h = ((const shout_ctx *)c->plugin_ctx)->host;
    const char *v = h->kv_get(c->ep->options, c->ep->n_options, key);
    return v ? v : h->kv_get(c->provider->options, c->provider->n_options, key);
}

static int shout_init(const llmux_host *host, const llmux_provider_config *cfg, void **out)
{
    shout_ctx *x = host->calloc(1, sizeof *x);
    if (!x) return LLMUX_ENOMEM;
    x->host = host;
    const char *d = host->kv_get(cfg->options, cfg->n_options, "delay_ms");
    if (d) {
        char *end;
        long v = strtol(d, &end, 10);
        if (*end || v < 0 || v > 60000) {
            host->log(LLMUX_LOG_ERROR, "shout", "delay_ms must be 0..60000, got '%s'", d);
            host->free(x);
            return LLMUX_ECONFIG; /* a plugin may veto its own load */
        }
        x->delay_ms = (unsigned)v;
    }
    const char *p = host->kv_get(cfg->options, cfg->n_options, "prefix");
    if (p && host->buf_append_escaped(&x->prefix, p, strlen(p))) {
        host->free(x);
        return LLMUX_ENOMEM;
    }
    *out = x;
    return 0;
}

static int shout_prepare(llmux_call *c, llmux_outreq *out)
{
    shout_ctx *x = c->plugin_ctx;
    const llmux_host *h = x->host;
    const llmux_json *d = &c->req->body;
    shout_call *st = h->calloc(1, sizeof *st);
    if (!st) return LLMUX_ENOMEM;
    c->state = st;

    /* The last user message with string content. */
    int msgs = h->json_get(d, 0, "messages"), last = -1;
    if (msgs >= 0 && d->tok[msgs].type == LLMUX_JSON_ARRAY) {
        int i = msgs + 1;
        for (int k = 0; k < d->tok[msgs].size; k++) {
            int content = h->json_get(d, i, "content"), role = h->json_get(d, i, "role");
            if (content >= 0 && d->tok[content].type == LLMUX_JSON_STRING) {
                st->prompt_words += count_words(d->text + d->tok[content].start,
                                                (size_t)(d->tok[content].end - d->tok[content].start));
                if (role >= 0 && h->json_eq(d, role, "user")) last = content;
            }
            i = h->json_skip(d, i);
        }
    }
    if (last < 0) {
        h->emit_error(c, 400, "shout: no user message with text content", NULL, 0, 0);
        return LLMUX_EINVAL;
    }
    const char *text = d->text + d->tok[last].start;
    size_t n = (size_t)(d->tok[last].end - d->tok[last].start);
    const char *p = option(c, "prefix");
    if ((p && h->buf_append_escaped(&st->reply, p, strlen(p))) || append_upper(h, &st->reply, text, n))
        return LLMUX_ENOMEM;
    st->reply_words = count_words(st->reply.data, st->reply.len);
    return h->req_set_local(out, 0); /* no HTTP: the host calls on_tick */
}

/* Emits the next word (or everything when there is no delay). */
static int shout_tick(llmux_call *c)
{
    shout_ctx *x = c->plugin_ctx;
    const llmux_host *h = x->host;
    shout_call *st = c->state;
    size_t end = st->reply.len;
    if (x->delay_ms) {
        end = st->pos;
        while (end < st->reply.len && st->reply.data[end] == ' ') end++;
        while (end < st->reply.len && st->reply.data[end] != ' ') end++;
    }
    if (end > st->pos) {
        int rc = h->emit_delta(c, 0, LLMUX_DELTA_CONTENT, st->reply.data + st->pos, end - st->pos);
        if (rc) return rc;
        st->pos = end;
    }
    if (st->pos < st->reply.len) return h->call_schedule(c, x->delay_ms);
    llmux_usage u = {st->prompt_words, st->reply_words, 0, 0, 0};
    int rc = h->emit_finish(c, 0, LLMUX_FINISH_STOP, "stop", 4);
    return rc ? rc : h->emit_usage(c, &u);
}

static int shout_on_data(llmux_call *c, const char *data, size_t n)
{
    (void)c; (void)data; (void)n;
    return LLMUX_EPROTO; /* local calls receive no upstream bytes */
}

static int shout_on_done(llmux_call *c, int status)
{
    (void)c; (void)status;
    return 0;
}

static void shout_release(llmux_call *c)
{
    shout_call *st = c->state;
    if (!st) return;
    const llmux_host *h = ((shout_ctx *)c->plugin_ctx)->host;
    h->buf_free(&st->reply);
    h->free(st);
    c->state = NULL;
}

static void shout_fini(void *ctx)
{
    shout_ctx *x = ctx;
    const llmux_host *h = x->host;
    h->buf_free(&x->prefix);
    h->free(x);
}

static const llmux_plugin shout_plugin = {
    .magic = LLMUX_PLUGIN_MAGIC,
    .abi_major = LLMUX_ABI_MAJOR,
    .abi_minor = LLMUX_ABI_MINOR,
    .struct_size = sizeof(llmux_plugin),
    .name = "shout",
    .version = SHOUT_VERSION,
    .init = shout_init,
    .prepare = shout_prepare,
    .on_headers = NULL,
    .on_data = shout_on_data,
    .on_done = shout_on_done,
    .release = shout_release,
    .fini = shout_fini,
    .on_tick = shout_tick,
};

/* The llmux ABI tests include this file to build deliberately broken variants
 * with their own entry point; a normal build exports this one. */
#ifndef SHOUT_NO_ENTRY
LLMUX_EXPORT const llmux_plugin *llmux_plugin_v1(void) { return &shout_plugin; }
#endif
