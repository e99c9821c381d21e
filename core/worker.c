#include "worker.h"
#include "http_server.h"
#include "log.h"
#include "upstream.h"
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static llmux_worker *g_workers;
static int g_n_workers;

uint64_t llmux_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t llmux_worker_random(llmux_worker *w)
{
    uint64_t x = w->rng; /* xorshift64*: ids and routing need speed, not secrecy */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    w->rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

void llmux_worker_refresh(llmux_worker *w)
{
    if (w->rt && w->rt->generation == llmux_runtime_current_generation()) return;
    llmux_runtime *rt = llmux_runtime_acquire();
    if (!rt) return;
    if (w->rt && rt->script_generation == w->router_generation) {
        llmux_runtime_unref(w->rt);
        w->rt = rt;
        return;
    }
    char err[512];
    llmux_router *r = llmux_router_new(rt->cfg->routing_script, rt->cfg->limits.lua_memory_bytes,
                                       rt->cfg->limits.lua_instructions, err, sizeof err);
    if (!r && w->router) {
        /* It compiled at reload time; failing now (e.g. memory) keeps the old script. */
        LOG_ERROR("worker %d: routing script failed to load, keeping the previous one: %s", w->id, err);
    } else if (r) {
        llmux_router_free(w->router);
        w->router = r;
    }
    /* The router caches per-endpoint tables for this config (holds a ref). */
    if (w->router) llmux_router_set_config(w->router, rt->cfg);
    w->router_generation = rt->script_generation;
    if (w->rt) llmux_runtime_unref(w->rt);
    w->rt = rt;
}

static void on_shutdown_timer(uv_timer_t *t)
{
    llmux_worker *w = t->data;
    if (w->n_busy > 0) LOG_WARN("worker %d: shutdown deadline passed, closing %d busy connections", w->id, w->n_busy);
    llmux_http_close_all(w);
    uv_close((uv_handle_t *)&w->wake, NULL);
    uv_close((uv_handle_t *)&w->shutdown_timer, NULL);
    uv_close((uv_handle_t *)&w->trim_timer, NULL);
    llmux_upstream_close(w->up);
}

static void on_check_drained(uv_timer_t *t);

/* After a burst of connections (e.g. thousands of streams) has gone, give
 * the freed memory back to the OS instead of letting the allocator keep it. */
static void on_trim(uv_timer_t *t)
{
    llmux_worker *w = t->data;
    if (w->conn_peak >= 256 && w->n_conns < w->conn_peak / 4) {
        malloc_trim(0);
        w->conn_peak = w->n_conns;
    }
}

void llmux_worker_conns_dropped(llmux_worker *w)
{
    /* Trim soon after a burst ends (once the closed connections are freed),
     * not only at the next periodic check. */
    if (w->conn_peak >= 256 && w->n_conns < w->conn_peak / 4 && !w->stopping)
        uv_timer_start(&w->trim_timer, on_trim, 200, 2000);
}

static void on_wake(uv_async_t *a)
{
    llmux_worker *w = a->data;
    if (atomic_load(&w->stop_requested) && !w->stopping) {
        w->stopping = 1;
        llmux_http_stop_accepting(w);
        uv_timer_start(&w->shutdown_timer, on_check_drained, 20, 20);
        return;
    }
    if (!w->stopping) llmux_worker_refresh(w);
}

static uint64_t g_deadline_ns;

static void on_check_drained(uv_timer_t *t)
{
    llmux_worker *w = t->data;
    if (w->n_busy == 0 || llmux_now_ns() >= g_deadline_ns) {
        uv_timer_stop(t);
        on_shutdown_timer(t);
    }
}

static void worker_main(void *arg)
{
    llmux_worker *w = arg;
    uv_run(&w->loop, UV_RUN_DEFAULT);
    llmux_router_free(w->router);
    w->router = NULL;
    if (w->rt) llmux_runtime_unref(w->rt);
    w->rt = NULL;
}

int llmux_workers_start(int n, const char *host, int port, char *err, size_t errlen)
{
    g_workers = calloc((size_t)n, sizeof *g_workers);
    if (!g_workers) { snprintf(err, errlen, "out of memory"); return -1; }
    g_n_workers = n;
    for (int i = 0; i < n; i++) {
        llmux_worker *w = &g_workers[i];
        w->id = i;
        uv_loop_init(&w->loop);
        if (getrandom(&w->rng, sizeof w->rng, 0) != sizeof w->rng || !w->rng) w->rng = llmux_now_ns() | 1;
        uv_async_init(&w->loop, &w->wake, on_wake);
        w->wake.data = w;
        uv_timer_init(&w->loop, &w->shutdown_timer);
        w->shutdown_timer.data = w;
        uv_timer_init(&w->loop, &w->trim_timer);
        w->trim_timer.data = w;
        uv_timer_start(&w->trim_timer, on_trim, 2000, 2000);
        uv_unref((uv_handle_t *)&w->trim_timer);
        w->up = llmux_upstream_new(&w->loop);
        llmux_worker_refresh(w);
        if (!w->up || !w->rt || !w->router) { snprintf(err, errlen, "worker %d: initialisation failed", i); return -1; }
        if (llmux_http_listen(w, &w->listener, host, port, err, errlen) < 0) return -1;
    }
    for (int i = 0; i < n; i++)
        if (uv_thread_create(&g_workers[i].thread, worker_main, &g_workers[i]) != 0) {
            snprintf(err, errlen, "cannot start worker thread %d", i);
            return -1;
        }
    return 0;
}

void llmux_workers_notify(void)
{
    for (int i = 0; i < g_n_workers; i++) uv_async_send(&g_workers[i].wake);
}

void llmux_workers_stop(uint32_t deadline_ms)
{
    g_deadline_ns = llmux_now_ns() + (uint64_t)deadline_ms * 1000000ull;
    for (int i = 0; i < g_n_workers; i++) {
        atomic_store(&g_workers[i].stop_requested, 1);
        uv_async_send(&g_workers[i].wake);
    }
    for (int i = 0; i < g_n_workers; i++) {
        uv_thread_join(&g_workers[i].thread);
        uv_loop_close(&g_workers[i].loop);
    }
    free(g_workers);
    g_workers = NULL;
    g_n_workers = 0;
}

int llmux_workers_count(void) { return g_n_workers; }
llmux_worker *llmux_worker_get(int i) { return i >= 0 && i < g_n_workers ? &g_workers[i] : NULL; }
