#include "runtime.h"
#include "log.h"
#include "router.h"
#include "stats.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t g_pub_lock = PTHREAD_MUTEX_INITIALIZER;   /* guards g_current */
static pthread_mutex_t g_reload_lock = PTHREAD_MUTEX_INITIALIZER; /* one reload at a time */
static llmux_runtime *g_current;
static atomic_uint g_current_gen;
static unsigned g_next_gen;
static char *g_origin_path;

static void runtime_free(llmux_runtime *rt)
{
    if (rt->providers) {
        for (size_t i = 0; i < rt->cfg->n_providers; i++) {
            llmux_provider_rt *p = &rt->providers[i];
            if (p->img && p->ctx && p->img->d.fini) p->img->d.fini(p->ctx);
            llmux_plugin_image_unref(p->img);
        }
        free(rt->providers);
    }
    free(rt->slots);
    llmux_config_unref(rt->cfg);
    free(rt);
}

llmux_runtime *llmux_runtime_build(const char *config_path, const char *host, int port, char *err, size_t errlen)
{
    llmux_config *cfg = llmux_config_load(config_path, err, errlen);
    if (!cfg) return NULL;
    if (host) { free(cfg->listen_host); cfg->listen_host = strdup(host); }
    if (port > 0) cfg->listen_port = port;
    llmux_runtime *rt = calloc(1, sizeof *rt);
    if (!rt) { llmux_config_unref(cfg); snprintf(err, errlen, "out of memory"); return NULL; }
    rt->cfg = cfg;
    rt->listen_from_cli = host || port > 0;
    atomic_init(&rt->refs, 1);
    rt->created_at = time(NULL);
    rt->providers = calloc(cfg->n_providers ? cfg->n_providers : 1, sizeof *rt->providers);
    if (!rt->providers) { runtime_free(rt); snprintf(err, errlen, "out of memory"); return NULL; }
    for (size_t i = 0; i < cfg->n_providers; i++) {
        llmux_provider_cfg *pc = &cfg->providers[i];
        llmux_provider_rt *p = &rt->providers[i];
        p->cfg = pc;
        p->img = llmux_plugin_load(cfg->plugin_dir, cfg->plugin_cache_dir, pc->plugin, err, errlen);
        if (!p->img) { runtime_free(rt); return NULL; }
        int rc = p->img->d.init(llmux_host_api(), &pc->view, &p->ctx);
        if (rc != 0) {
            p->ctx = NULL;
            snprintf(err, errlen, "provider %s: plugin %s refused its configuration (init returned %d)", pc->id,
                     pc->plugin, rc);
            runtime_free(rt);
            return NULL;
        }
    }
    rt->slots = calloc(cfg->n_endpoints ? cfg->n_endpoints : 1, sizeof *rt->slots);
    if (!rt->slots) { runtime_free(rt); snprintf(err, errlen, "out of memory"); return NULL; }
    for (size_t i = 0; i < cfg->n_endpoints; i++) {
        const llmux_endpoint_cfg *ep = cfg->endpoint_by_index[i];
        rt->slots[i] = llmux_stats_slot_for(ep->model->id, ep->provider->id);
    }
    /* Compile the routing script once here so a broken one is refused before any swap. */
    llmux_router *r = llmux_router_new(cfg->routing_script, cfg->limits.lua_memory_bytes,
                                       cfg->limits.lua_instructions, err, errlen);
    if (!r) { runtime_free(rt); return NULL; }
    llmux_router_free(r);
    return rt;
}

void llmux_runtime_ref(llmux_runtime *rt) { atomic_fetch_add_explicit(&rt->refs, 1, memory_order_relaxed); }

void llmux_runtime_unref(llmux_runtime *rt)
{
    if (rt && atomic_fetch_sub_explicit(&rt->refs, 1, memory_order_acq_rel) == 1) {
        llmux_log(LLMUX_LOG_INFO, "runtime generation %u drained and released", rt->generation);
        runtime_free(rt);
    }
}

void llmux_runtime_publish(llmux_runtime *rt)
{
    pthread_mutex_lock(&g_pub_lock);
    rt->generation = ++g_next_gen;
    rt->script_generation = rt->generation;
    llmux_runtime *old = g_current;
    g_current = rt;
    atomic_store(&g_current_gen, rt->generation);
    pthread_mutex_unlock(&g_pub_lock);
    llmux_runtime_unref(old);
}

llmux_runtime *llmux_runtime_acquire(void)
{
    pthread_mutex_lock(&g_pub_lock);
    llmux_runtime *rt = g_current;
    if (rt) llmux_runtime_ref(rt);
    pthread_mutex_unlock(&g_pub_lock);
    return rt;
}

unsigned llmux_runtime_current_generation(void) { return atomic_load_explicit(&g_current_gen, memory_order_acquire); }

void llmux_runtime_set_origin(const char *config_path)
{
    free(g_origin_path);
    g_origin_path = config_path ? strdup(config_path) : NULL;
}

int llmux_runtime_reload(char *err, size_t errlen)
{
    pthread_mutex_lock(&g_reload_lock);
    llmux_runtime *cur = llmux_runtime_acquire();
    /* The listening sockets stay bound: a --listen override is kept as is, and a
     * changed listen in the file is reported, not applied. */
    int keep_cli = cur && cur->listen_from_cli;
    llmux_runtime *rt = llmux_runtime_build(g_origin_path, keep_cli ? cur->cfg->listen_host : NULL,
                                            keep_cli ? cur->cfg->listen_port : 0, err, errlen);
    if (!rt) {
        llmux_log(LLMUX_LOG_ERROR, "reload refused, generation %u keeps serving: %s", cur ? cur->generation : 0, err);
        llmux_runtime_unref(cur);
        pthread_mutex_unlock(&g_reload_lock);
        return -1;
    }
    err[0] = '\0';
    if (cur) {
        rt->listen_from_cli = cur->listen_from_cli;
        llmux_config *nc = rt->cfg, *oc = cur->cfg;
        if (strcmp(nc->listen_host, oc->listen_host) != 0 || nc->listen_port != oc->listen_port) {
            snprintf(err, errlen, "listen %s:%d cannot apply live; still listening on %s:%d until restart",
                     nc->listen_host, nc->listen_port, oc->listen_host, oc->listen_port);
            llmux_log(LLMUX_LOG_WARN, "reload: %s", err);
            char *h = strdup(oc->listen_host); /* the status pages show what is really bound */
            if (h) { free(nc->listen_host); nc->listen_host = h; nc->listen_port = oc->listen_port; }
        }
        if (oc->workers != nc->workers) {
            size_t n = strlen(err);
            snprintf(err + n, errlen - n, "%s'workers' changes apply only at restart", n ? "; " : "");
            llmux_log(LLMUX_LOG_WARN, "reload: 'workers' changes apply only at restart");
        }
    }
    llmux_runtime_unref(cur);
    llmux_runtime_publish(rt);
    llmux_log(LLMUX_LOG_INFO, "reloaded: runtime generation %u (config generation %u)", rt->generation,
              rt->cfg->generation);
    pthread_mutex_unlock(&g_reload_lock);
    return 0;
}

void llmux_runtime_shutdown(void)
{
    pthread_mutex_lock(&g_pub_lock);
    llmux_runtime *old = g_current;
    g_current = NULL;
    pthread_mutex_unlock(&g_pub_lock);
    llmux_runtime_unref(old);
    free(g_origin_path);
    g_origin_path = NULL;
}

const llmux_provider_rt *llmux_runtime_provider(const llmux_runtime *rt, const llmux_provider_cfg *p)
{
    size_t i = (size_t)(p - rt->cfg->providers);
    return i < rt->cfg->n_providers ? &rt->providers[i] : NULL;
}
