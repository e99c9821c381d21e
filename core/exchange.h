/* One client request being served: the attempt engine. It walks the routing
 * plan, runs each attempt through its provider plugin (over curl, or locally),
 * enforces the timeouts, fails over before the first content byte reaches
 * the client, and hands canonical events to an output writer (OpenAI chat,
 * legacy completions, Anthropic messages). */
#ifndef LLMUX_EXCHANGE_H
#define LLMUX_EXCHANGE_H
#include "call.h"
#include "http_server.h"
#include "router.h"
#include "runtime.h"
#include "stats.h"
#include "upstream.h"
#include "worker.h"

#define LLMUX_MAX_CANDIDATES 32 /* endpoints of the model plus its fallbacks that one request may consider */

typedef struct {
    llmux_buf id, name, args;
} llmux_tool_acc;

/* Everything an attempt produced, for the final answer and the record. */
typedef struct {
    llmux_buf content, reasoning, refusal, reasoning_details; /* escaped text; details: JSON items joined by ',' */
    llmux_tool_acc *tools; int n_tools;
    llmux_finish finish;
    char native_finish[64];
    int has_usage;
    llmux_usage usage;
    char upstream_id[128];
    int any_output; /* at least one delta/tool event */
} llmux_result;

/* Where the Anthropic stream writer is: blocks are numbered in order, one
 * open at a time; tool call i lives in block tool_block[i]-1 (0: none yet). */
typedef struct {
    int started;       /* message_start went out */
    int open;          /* a content block is open */
    int kind;          /* its kind (out_anthropic.c) */
    int next_index;    /* index of the next block */
    int tool_block[64];
} llmux_anthropic_out;

struct llmux_exchange;
typedef struct llmux_output_ops {
    /* Stream events after the content started (streaming outputs only). */
    int (*delta)(struct llmux_exchange *ex, llmux_delta_kind k, const char *s, size_t n);
    int (*tool_call)(struct llmux_exchange *ex, int index, int first, const char *id, size_t idl,
                     const char *name, size_t nl, const char *args, size_t al);
    int (*reasoning_detail)(struct llmux_exchange *ex, const char *json, size_t n);
    int (*finish)(struct llmux_exchange *ex);
    /* The whole answer (non-stream) or the closing chunks (stream). */
    void (*complete)(struct llmux_exchange *ex);
    /* An error: a JSON error response, or an error chunk if the stream began. */
    void (*fail)(struct llmux_exchange *ex, int status, const char *message, const char *metadata_json);
    /* While waiting for the first byte of a stream. */
    void (*waiting)(struct llmux_exchange *ex);
} llmux_output_ops;

typedef struct llmux_exchange {
    llmux_handler handler; /* first: the connection calls back through it */
    llmux_conn *conn;
    llmux_worker *w;
    llmux_runtime *rt;
    const llmux_output_ops *out;
    int api; /* 0 chat, 1 legacy completions, 2 anthropic messages */

    char *body; size_t body_len;
    llmux_json doc;
    llmux_request req;
    char model[256];      /* requested model id (as sent, with variant) */
    char variant[32];
    int stream;
    int include_usage;

    int ncands;
    int nplan, attempt;

    /* current attempt */
    const llmux_endpoint_cfg *ep;
    const llmux_provider_rt *prov;
    llmux_plugin_image *img;
    llmux_host_call call;
    struct llmux_outreq outreq;
    llmux_xfer *xfer;
    int call_live;        /* prepare succeeded, release pending */
    int local, tick_scheduled;
    int attempt_over;     /* the attempt ended (error or abort) */
    int upstream_status;
    uint64_t attempt_start_ns;

    uv_timer_t timer;     /* attempt timeouts, local ticks */
    uv_timer_t ka_timer;  /* SSE comments while waiting */
    int open_handles;

    int headers_sent;     /* the HTTP status line went out */
    int content_started;  /* a content/tool/reasoning chunk went out: no failover now */
    int finished, aborted, paused;
    int role_sent;
    int final_status;     /* what the client got (for the log and the record) */

    int err_status; uint32_t retry_after_ms;
    llmux_buf err_msg, err_raw;
    char err_provider[128];

    llmux_result res;
    llmux_buf wbuf;        /* output batched per upstream read */
    llmux_buf chunk_prefix;/* "data: {"id":..,"provider":..," for ep (out_openai.c) */
    const llmux_endpoint_cfg *chunk_prefix_ep;
    char gen_id[40];
    int64_t created;
    uint64_t start_ns, first_token_ns;
    const char *key_label;
    /* accounts (accounts.c) */
    struct llmux_key *acct_key; /* the calling key (auth = "keys") */
    void *acct_wait;            /* a pending Redis check or record commit */
    int acct_recorded;
    size_t streamed_chars;      /* content bytes streamed (usage estimate for cancelled streams) */
    llmux_anthropic_out anth; /* Anthropic writer state (out_anthropic.c) */

    /* Scratch: large arrays written before they are read, so they are not
     * zeroed at allocation (keeps the per-request memset small). */
    llmux_candidate cands[LLMUX_MAX_CANDIDATES];
    llmux_stats_slot *slots[LLMUX_MAX_CANDIDATES];
    llmux_attempt plan[LLMUX_MAX_CANDIDATES];
    int tool_seen[64]; /* cleared at each attempt */
} llmux_exchange;

/* Route handlers (chat.c): */
void llmux_handle_chat(llmux_conn *c, const llmux_http_request *r, int api);

/* Engine (exchange.c) */
llmux_exchange *llmux_exchange_new(llmux_conn *c, const llmux_output_ops *out, int api);
void llmux_exchange_run(llmux_exchange *ex); /* after candidates are set */
void llmux_exchange_fail_early(llmux_exchange *ex, int status, const char *message, const char *metadata);
/* The same with extra response headers ("Name: value\r\n" lines; accounts). */
void llmux_exchange_fail_early_headers(llmux_exchange *ex, int status, const char *message, const char *metadata,
                                       const char *extra_headers);
/* Sends the final answer and ends the exchange (a completion deferred by accounts). */
void llmux_exchange_complete(llmux_exchange *ex);
void llmux_exchange_flush(llmux_exchange *ex);
void llmux_result_reset(llmux_result *r);
/* "stop", "length", "tool_calls", "content_filter", "error"; NULL for none. */
const char *llmux_finish_name(llmux_finish f);
double llmux_cost(const llmux_endpoint_cfg *ep, const llmux_usage *u);
void llmux_usage_json(llmux_buf *b, const llmux_exchange *ex);

extern const llmux_output_ops llmux_out_openai;
#endif
