/*
 * plugin_template.c — the smallest complete llmux provider plugin: a local
 * "echo" model. Copy this file, rename "template", and replace the bodies.
 *
 * Build out of tree against the installed SDK:
 *   cc -std=c11 -shared -fPIC -fvisibility=hidden -o template.so plugin_template.c \
 *      $(pkg-config --cflags llmux-plugin)
 * or with CMake:
 *   find_package(llmux-plugin REQUIRED)
 *   llmux_add_plugin(template plugin_template.c)
 *
 * Then put template.so in llmux's plugin_dir and name it in the config:
 *   providers = { mine = { plugin = "template", name = "Mine" } }
 *   models = { { id = "mine/echo", name = "Echo", context_length = 4096,
 *                endpoints = { { provider = "mine", model = "echo",
 *                                pricing = { prompt = 0, completion = 0 } } } } }
 *
 * An HTTP plugin differs only in prepare (req_set_url, req_add_header,
 * req_body instead of req_set_local) and in on_headers/on_data/on_done, which
 * turn upstream bytes into the same emit_* events; see plugins/openai in the
 * llmux tree for a complete one.
 */
#include <llmux_plugin.h>

#include <string.h>

/* Per-generation state: whatever init needs to keep. Read-only after init,
 * because every worker thread uses it at once. Never keep state in globals:
 * after a hot reload, two generations of this .so are mapped at the same time. */
typedef struct {
    const llmux_host *host;
} tpl_ctx;

/* Validate the provider's config and build the ctx. Returning an error
 * (LLMUX_ECONFIG) refuses the load; on a reload, the old generation keeps serving. */
static int tpl_init(const llmux_host *host, const llmux_provider_config *cfg, void **ctx)
{
    (void)cfg; /* cfg->base_url, cfg->api_key, cfg->options: see the header */
    if (!LLMUX_HOST_HAS(host, kv_get)) return LLMUX_ECONFIG; /* host too old for us */
    tpl_ctx *x = host->calloc(1, sizeof *x);
    if (!x) return LLMUX_ENOMEM;
    x->host = host;
    *ctx = x;
    return 0;
}

/* One attempt of one request. Find what to answer, keep it in call->state,
 * and mark the call local: the host then calls on_tick on the worker loop. */
static int tpl_prepare(llmux_call *c, llmux_outreq *out)
{
    const llmux_host *h = ((tpl_ctx *)c->plugin_ctx)->host;
    const llmux_json *d = &c->req->body; /* the validated chat-completions body */
    int msgs = h->json_get(d, 0, "messages"), text = -1;
    if (msgs >= 0 && d->tok[msgs].type == LLMUX_JSON_ARRAY) {
        int i = msgs + 1; /* first element; json_skip steps over a whole subtree */
        for (int k = 0; k < d->tok[msgs].size; k++, i = h->json_skip(d, i)) {
            int content = h->json_get(d, i, "content");
            if (content >= 0 && d->tok[content].type == LLMUX_JSON_STRING) text = content;
        }
    }
    if (text < 0) {
        h->emit_error(c, 400, "template: no message with text content", NULL, 0, 0);
        return LLMUX_EINVAL;
    }
    c->state = (void *)(intptr_t)text; /* tiny state fits in the pointer; else host->alloc */
    return h->req_set_local(out, 0);
}

/* Emit the answer. JSON string tokens are already escaped text, which is what
 * emit_delta wants, so the echo is forwarded without unescaping. */
static int tpl_tick(llmux_call *c)
{
    const llmux_host *h = ((tpl_ctx *)c->plugin_ctx)->host;
    const llmux_json *d = &c->req->body;
    const llmux_jtok *t = &d->tok[(intptr_t)c->state];
    int rc = h->emit_delta(c, 0, LLMUX_DELTA_CONTENT, d->text + t->start, (size_t)(t->end - t->start));
    if (!rc) rc = h->emit_finish(c, 0, LLMUX_FINISH_STOP, "stop", 4);
    /* Returning without call_schedule ends the call; the host then calls on_done(c, 200). */
    return rc;
}

/* Upstream bytes (HTTP plugins only; a local call never receives any). */
static int tpl_on_data(llmux_call *c, const char *data, size_t n)
{
    (void)c; (void)data; (void)n;
    return LLMUX_EPROTO;
}

/* The upstream finished: flush anything pending (usage, finish). */
static int tpl_on_done(llmux_call *c, int status)
{
    (void)c; (void)status;
    return 0;
}

/* Free call->state; called exactly once per prepared call, even on errors. */
static void tpl_release(llmux_call *c) { c->state = NULL; }

/* The generation drained: free the ctx. dlclose follows. */
static void tpl_fini(void *ctx)
{
    tpl_ctx *x = ctx;
    x->host->free(x);
}

static const llmux_plugin tpl_plugin = {
    .magic = LLMUX_PLUGIN_MAGIC,
    .abi_major = LLMUX_ABI_MAJOR,
    .abi_minor = LLMUX_ABI_MINOR,
    .struct_size = sizeof(llmux_plugin), /* how the host knows which fields you have */
    .name = "template",
    .version = "0.1.0",
    .init = tpl_init,
    .prepare = tpl_prepare,
    .on_headers = NULL, /* optional for local plugins */
    .on_data = tpl_on_data,
    .on_done = tpl_on_done,
    .release = tpl_release,
    .fini = tpl_fini,
    .on_tick = tpl_tick,
};

/* The only exported symbol (everything else is hidden by -fvisibility=hidden). */
LLMUX_EXPORT const llmux_plugin *llmux_plugin_v1(void) { return &tpl_plugin; }
