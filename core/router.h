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
    int recent_failure;        /* failed within routing.failure_window_s */
    int consecutive_failures;
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
    uint64_t prefix_hash;      /* llmux_router_prefix_hash(body); 0 = none */
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

/* What a plan may carry besides its attempts (llmux_router_plan_ex). */
typedef struct {
    int status;           /* route() refused: 400..599 (0 = not refused) */
    char message[256];    /* its message, for the client ("" = none) */
    char *params_json;    /* plan.params as JSON object members without the
                           * braces ("\"temperature\":0.2"); malloc'd, NULL = none */
} llmux_route_result;

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
/* As llmux_router_plan, and also reports a refusal (route() returned
 * nil/{} plus a message and status) and parameter overrides in *res (which
 * the caller releases with llmux_route_result_free). */
int llmux_router_plan_ex(llmux_router *r, const llmux_route_request *req,
                         const llmux_candidate *cands, int ncands,
                         llmux_attempt *out, int max_out, llmux_route_result *res);
void llmux_route_result_free(llmux_route_result *res);
/* Calls the script's optional on_result(request, candidate, ok) after an
 * exchange ended: cand is the index (0-based) of the candidate that answered
 * (ok) or failed last. Errors are logged and counted, never raised. */
void llmux_router_on_result(llmux_router *r, const llmux_route_request *req,
                            const llmux_candidate *cands, int ncands, int cand, int ok);
/* Seeds the state's math.random (tests; workers are seeded at random). */
void llmux_router_seed(llmux_router *r, uint64_t seed);
/* A 64-bit hash of the first LLMUX_PREFIX_HASH_BYTES bytes of the body's
 * `messages` (or `prompt`) JSON text, never 0; 0 if there is none. Requests
 * of one conversation share it once their start is that long. */
#define LLMUX_PREFIX_HASH_BYTES 2048
uint64_t llmux_router_prefix_hash(const llmux_json *body);
/* Builds a new body: `body` with each top-level member named in
 * members_json (object members without braces) replaced or added.
 * Returns a malloc'd NUL-terminated copy (length in *out_len) or NULL. */
char *llmux_router_rewrite_body(const llmux_json *doc, const char *members_json,
                                size_t *out_len);
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
