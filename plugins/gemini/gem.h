/* Internal declarations shared by the Gemini plugin's files. */
#ifndef GEM_H
#define GEM_H
#include "llmux_plugin.h"
#include "llmux_plugin_util.h"

#include <stdint.h>
#include <stddef.h>

#define GEM_DEFAULT_BASE "https://generativelanguage.googleapis.com/v1beta"
#define GEM_MAX_RAW (64 * 1024)

typedef struct {
    const llmux_host *h;
    const char *base_url;
} gem_ctx;

/* ---- request translation ------------------------------------------------ */
int gem_build_body(llmux_call *c, const gem_ctx *ctx, llmux_buf *body);
/* Writes "contents":[...] into w and system parts (comma-separated) into sys. */
int gem_build_contents(llmux_call *c, const gem_ctx *ctx, llmux_jw *w, llmux_jw *sys, int *nsys);

/* ---- response ----------------------------------------------------------- */
typedef struct {
    llmux_sse sse;
    int status;
    int http_error;
    uint32_t retry_after_ms;
    llmux_buf raw;        /* body bytes while no SSE event was seen (bounded) */
    int events;           /* SSE events handled */
    llmux_buf resp_id;    /* escaped responseId */
    int ntools;
    int ndetails;
    llmux_buf finish;     /* native finishReason (escaped) */
    int blocked;          /* promptFeedback.blockReason seen */
    int64_t prompt, cand, thoughts, cached;
    int have_usage;
    int errored;
    int done;
} gem_state;

int gem_stream_feed(llmux_call *c, const char *data, size_t n);
int gem_stream_done(llmux_call *c, int status);
void gem_state_free(const llmux_host *h, gem_state *st);

/* Emits the error described by a Google error document (or the status). */
int gem_emit_error_json(llmux_call *c, const llmux_host *h, int http_status,
                        const char *body, size_t n, uint32_t retry_ms);
#endif
