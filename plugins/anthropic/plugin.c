/* Anthropic Messages API provider: descriptor, config and call lifecycle. */
#include "anth.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int anth_init(const llmux_host *h, const llmux_provider_config *cfg, void **out)
{
    anth_ctx *ctx = h->calloc(1, sizeof *ctx);
    if (!ctx) return LLMUX_ENOMEM;
    ctx->h = h;
    ctx->base_url = cfg->base_url && *cfg->base_url ? cfg->base_url : ANTH_DEFAULT_BASE;
    const char *v = h->kv_get(cfg->options, cfg->n_options, "version");
    ctx->version = v && *v ? v : ANTH_DEFAULT_VERSION;
    /* API versions are dates: anything at or after the bearer version uses it. */
    ctx->bearer = strcmp(ctx->version, ANTH_BEARER_VERSION) >= 0;
    ctx->beta = h->kv_get(cfg->options, cfg->n_options, "beta");
    const char *so = h->kv_get(cfg->options, cfg->n_options, "structured_outputs");
    ctx->structured = !(so && (strcmp(so, "false") == 0 || strcmp(so, "0") == 0));
    *out = ctx;
    return 0;
}

static void anth_fini(void *p)
{
    anth_ctx *ctx = p;
    if (ctx) ctx->h->free(ctx);
}

static int anth_prepare(llmux_call *c, llmux_outreq *out)
{
    const anth_ctx *ctx = c->plugin_ctx;
    const llmux_host *h = ctx->h;
    llmux_buf tmp = {0};
    int rc = anth_build_body(c, ctx, h->req_body(out));
    if (rc) return rc;

    rc = h->buf_printf(&tmp, "%s/messages", ctx->base_url);
    if (!rc) rc = h->req_set_url(out, tmp.data);
    if (!rc) rc = h->req_add_header(out, "content-type", "application/json");
    if (!rc) rc = h->req_add_header(out, "accept", "text/event-stream");
    if (!rc) rc = h->req_add_header(out, "anthropic-version", ctx->version);
    if (!rc && ctx->beta && *ctx->beta) rc = h->req_add_header(out, "anthropic-beta", ctx->beta);
    const char *key = c->req->api_key_override ? c->req->api_key_override : c->provider->api_key;
    if (!rc && key && *key) {
        if (ctx->bearer) {
            tmp.len = 0;
            rc = h->buf_printf(&tmp, "Bearer %s", key);
            if (!rc) rc = h->req_add_header(out, "authorization", tmp.data);
        } else {
            rc = h->req_add_header(out, "x-api-key", key);
        }
    }
    h->buf_free(&tmp);
    if (rc) return rc;
    anth_state *st = h->calloc(1, sizeof *st);
    if (!st) return LLMUX_ENOMEM;
    st->in_tok = st->out_tok = st->cache_read = st->cache_write = -1;
    c->state = st;
    return 0;
}

/* Retry-After: delta-seconds (HTTP-dates are ignored). */
static uint32_t retry_after(const char *v)
{
    char *end;
    double s = strtod(v, &end);
    if (end == v || s < 0 || s > 86400) return 0;
    return (uint32_t)(s * 1000.0);
}

static int anth_on_headers(llmux_call *c, int status, const llmux_kv *hdr, size_t n)
{
    anth_state *st = c->state;
    if (!st) return LLMUX_EINVAL;
    st->status = status;
    st->http_error = status < 200 || status > 299;
    for (size_t i = 0; i < n; i++)
        if (hdr[i].key && hdr[i].value && strcasecmp(hdr[i].key, "retry-after") == 0)
            st->retry_after_ms = retry_after(hdr[i].value);
    return 0;
}

static int anth_on_data(llmux_call *c, const char *data, size_t n)
{
    if (!c->state) return LLMUX_EINVAL;
    return anth_stream_feed(c, data, n);
}

static int anth_on_done(llmux_call *c, int status)
{
    return anth_stream_done(c, status);
}

static void anth_release(llmux_call *c)
{
    const anth_ctx *ctx = c->plugin_ctx;
    anth_state_free(ctx->h, c->state);
    c->state = NULL;
}

static const llmux_plugin anth_plugin = {
    .magic = LLMUX_PLUGIN_MAGIC,
    .abi_major = LLMUX_ABI_MAJOR,
    .abi_minor = LLMUX_ABI_MINOR,
    .struct_size = sizeof(llmux_plugin),
    .name = "anthropic",
    .version = "1.0.0",
    .init = anth_init,
    .prepare = anth_prepare,
    .on_headers = anth_on_headers,
    .on_data = anth_on_data,
    .on_done = anth_on_done,
    .release = anth_release,
    .fini = anth_fini,
    .on_tick = NULL,
};

LLMUX_EXPORT const llmux_plugin *llmux_plugin_v1(void) { return &anth_plugin; }
