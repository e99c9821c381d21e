/* A worker thread: its own uv loop, SO_REUSEPORT listener, curl multi and Lua
 * router. Nothing here is shared with other workers except the runtime
 * (refcounted, swapped on reload). */
#ifndef LLMUX_WORKER_H
#define LLMUX_WORKER_H
#include <uv.h>
#include <stdatomic.h>
#include "runtime.h"
#include "router.h"

struct llmux_upstream;
struct llmux_conn;

typedef struct llmux_worker {
    int id;
    uv_loop_t loop;
    uv_thread_t thread;
    uv_tcp_t listener;
    uv_async_t wake;          /* reload / shutdown notifications */
    uv_timer_t shutdown_timer;
    struct llmux_upstream *up;
    llmux_runtime *rt;        /* the generation this worker serves new requests with */
    llmux_router *router;
    unsigned router_generation;
    struct llmux_conn *conns; /* intrusive list of open connections */
    int n_conns;
    int n_busy;               /* connections with a request in progress */
    int conn_peak;            /* most connections open since the last memory trim */
    uv_timer_t trim_timer;
    int stopping;
    atomic_int stop_requested;
    uint64_t rng;             /* xorshift state for ids and routing */
    const char *listen_host;
    int listen_port;
    char read_buf[65536];
    int started_ok;
    char start_err[256];
} llmux_worker;

int llmux_workers_start(int n, const char *host, int port, char *err, size_t errlen);
/* Tells every worker to reload its runtime pointer / router. */
void llmux_workers_notify(void);
/* Graceful: stop accepting, let in-flight finish until the deadline, join. */
void llmux_workers_stop(uint32_t deadline_ms);
int llmux_workers_count(void);
llmux_worker *llmux_worker_get(int i);
/* Refreshes w->rt / w->router if a newer runtime was published. */
void llmux_worker_refresh(llmux_worker *w);
uint64_t llmux_worker_random(llmux_worker *w);
/* Called when connections close: schedules a memory trim after a burst. */
void llmux_worker_conns_dropped(llmux_worker *w);
uint64_t llmux_now_ns(void);
#endif
