/* The Lua routing host: one sandboxed lua_State per worker running the
 * routing script's route(request, candidates). The script only decides; the
 * core executes the returned plan. A script error, a blown budget or a bad
 * return value falls back to the default plan and is logged and counted. */
#ifndef LLMUX_ROUTER_H
#define LLMUX_ROUTER_H
#include "config.h"

/* Live per-endpoint statistics the core keeps (read by the script). */
typedef struct {
    double ttft_ms_ewma;       /* time to first token, EWMA; 0 = no data */
    double latency_ms_ewma;    /* end-to-end latency, EWMA */
    double throughput_ewma;    /* completion tokens / s, EWMA */
    double error_rate_ewma;    /* 0..1 */
    double last_failure_age_s; /* seconds since last failure; <0 = never */
    int inflight;
    int circuit;               /* 0 closed, 1 open, 2 half-open */
    double parked_for_s;       /* Retry-After: seconds still parked; 0 = not */
} llmux_endpoint_stats;

/* What route() sees about the request (built by the chat handler). */
typedef struct {
    const llmux_json *body;    /* the validated request body */
    const char *model;         /* primary model id without variant */
    const char *variant;       /* "free","nitro",... or NULL */
    int stream;
    int has_tools, has_images, has_response_format, has_reasoning;
    int64_t estimated_prompt_tokens;
    int64_t max_tokens;
    const char *key_label;     /* may be NULL */
    const llmux_kv *headers; size_t n_headers; /* request headers (no secrets) */
} llmux_route_request;

/* A candidate endpoint offered to the script: an endpoint of the primary
 * model or of one of the `models` fallbacks, in that order. */
typedef struct {
    const llmux_endpoint_cfg *ep;
    llmux_endpoint_stats stats;
} llmux_candidate;

typedef struct {
    int candidate;          /* index into the candidate array */
    uint32_t timeout_ms;    /* 0 = configured default */
} llmux_attempt;

typedef struct llmux_router llmux_router;

/* Creates a sandboxed state and runs the script file (or, if script_path is
 * NULL, nothing: every plan is the default). err gets the reason on failure. */
llmux_router *llmux_router_new(const char *script_path, size_t mem_limit,
                               uint32_t instruction_budget, char *err, size_t errlen);
void llmux_router_free(llmux_router *r);
/* Fills `out` (capacity max_out) with the plan; returns the number of
 * attempts (>= 0). Never fails the request on a script problem: falls back
 * to llmux_router_default_plan. */
int llmux_router_plan(llmux_router *r, const llmux_route_request *req,
                      const llmux_candidate *cands, int ncands,
                      llmux_attempt *out, int max_out);
/* The default: every candidate in the order given. */
int llmux_router_default_plan(const llmux_candidate *cands, int ncands,
                              llmux_attempt *out, int max_out);
/* Counters for /admin/status and metrics. */
unsigned long llmux_router_fallbacks(const llmux_router *r);

/* Binds the config whose endpoints the candidates come from (takes a
 * reference, drops the previous one). Candidates of the bound config use
 * per-endpoint tables cached in the Lua state; others (an older generation
 * still draining) are built per call. Call again after every reload.
 * Returns 0 or LLMUX_ENOMEM (then nothing is bound: still correct, slower). */
int llmux_router_set_config(llmux_router *r, llmux_config *cfg);
/* Where the router's warnings go (level = llmux_log_level); NULL: stderr
 * with a "router:" prefix. Process-wide; set it once at startup. */
void llmux_router_set_logger(void (*fn)(int level, const char *msg));
#endif
