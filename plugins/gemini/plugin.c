/* Google Gemini (generativelanguage API) provider: descriptor and call lifecycle. */
#include "gem.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int gem_init(const llmux_host *h, const llmux_provider_config *cfg, void **out)
{
    gem_ctx *ctx = h->calloc(1, sizeof *ctx);
    if (!ctx) return LLMUX_ENOMEM;
    ctx->h = h;
    ctx->base_url = cfg->base_url && *cfg->base_url ? cfg->base_url : GEM_DEFAULT_BASE;
    *out = ctx;
    return 0;
}

static void gem_fini(void *p)
{
    gem_ctx *ctx = p;
    if (ctx) ctx->h->free(ctx);
}

static int gem_prepare(llmux_call *c, llmux_outreq *out)
{
    const gem_ctx *ctx = c->plugin_ctx;
    const llmux_host *h = ctx->h;
    llmux_buf url = {0};
    int rc = gem_build_body(c, ctx, h->req_body(out));
    if (rc) return rc;
    rc = h->buf_printf(&url, "%s/models/%s:streamGenerateContent?alt=sse", ctx->base_url, c->ep->upstream_model);
    if (!rc) rc = h->req_set_url(out, url.data);
    h->buf_free(&url);
    if (!rc) rc = h->req_add_header(out, "content-type", "application/json");
    if (!rc) rc = h->req_add_header(out, "accept", "text/event-stream");
    const char *key = c->req->api_key_override ? c->req->api_key_override : c->provider->api_key;
    if (!rc && key && *key) rc = h->req_add_header(out, "x-goog-api-key", key);
    if (rc) return rc;
    gem_state *st = h->calloc(1, sizeof *st);
    if (!st) return LLMUX_ENOMEM;
    st->prompt = st->cand = st->thoughts = st->cached = -1;
    c->state = st;
    return 0;
}

static int gem_on_headers(llmux_call *c, int status, const llmux_kv *hdr, size_t n)
{
    gem_state *st = c->state;
    if (!st) return LLMUX_EINVAL;
    st->status = status;
    st->http_error = status < 200 || status > 299;
    for (size_t i = 0; i < n; i++) {
        if (hdr[i].key && hdr[i].value && strcasecmp(hdr[i].key, "retry-after") == 0) {
            char *end;
            double s = strtod(hdr[i].value, &end);
            if (end != hdr[i].value && s >= 0 && s <= 86400) st->retry_after_ms = (uint32_t)(s * 1000.0);
        }
    }
    return 0;
}

static int gem_on_data(llmux_call *c, const char *data, size_t n)
{
    if (!c->state) return LLMUX_EINVAL;
    return gem_stream_feed(c, data, n);
}

static int gem_on_done(llmux_call *c, int status) { return gem_stream_done(c, status); }

static void gem_release(llmux_call *c)
{
    const gem_ctx *ctx = c->plugin_ctx;
    gem_state_free(ctx->h, c->state);
    c->state = NULL;
}

static const llmux_plugin gem_plugin = {
    .magic = LLMUX_PLUGIN_MAGIC,
    .abi_major = LLMUX_ABI_MAJOR,
    .abi_minor = LLMUX_ABI_MINOR,
    .struct_size = sizeof(llmux_plugin),
    .name = "gemini",
    .version = "1.0.0",
    .init = gem_init,
    .prepare = gem_prepare,
    .on_headers = gem_on_headers,
    .on_data = gem_on_data,
    .on_done = gem_on_done,
    .release = gem_release,
    .fini = gem_fini,
    .on_tick = NULL,
};

LLMUX_EXPORT const llmux_plugin *llmux_plugin_v1(void) { return &gem_plugin; }
