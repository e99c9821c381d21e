/* Internal declarations shared by the Anthropic plugin's files. */
#ifndef ANTH_H
#define ANTH_H
#include "llmux_plugin.h"
#include "llmux_plugin_util.h"

#include <stdint.h>
#include <stddef.h>

#define ANTH_DEFAULT_BASE "https://api.anthropic.com/v1"
#define ANTH_DEFAULT_VERSION "2023-06-01"
/* From this API version on the key goes in Authorization: Bearer and the
 * sampling fields temperature/top_p/top_k are rejected. */
#define ANTH_BEARER_VERSION "2026-10-21"
#define ANTH_MAX_ERRBODY (64 * 1024)
#define ANTH_MAX_BLOCKS 4096

typedef struct {
    const llmux_host *h;
    const char *base_url;
    const char *version;
    const char *beta;   /* optional anthropic-beta header */
    int bearer;         /* key as Authorization: Bearer, no sampling fields */
    int structured;     /* send output_config.format for json_schema */
} anth_ctx;

/* ---- request translation ------------------------------------------------ */
int anth_build_body(llmux_call *c, const anth_ctx *ctx, llmux_buf *body);
/* Writes "system" (may write nothing) and "messages" into w. */
int anth_build_messages(llmux_call *c, const anth_ctx *ctx, llmux_jw *w, llmux_jw *sys,
                        int *nsys);

/* ---- response ----------------------------------------------------------- */
typedef struct {
    char kind;  /* 't' text, 'u' tool_use, 'k' thinking, 'o' other */
    int tool;   /* tool index for 'u' */
} anth_block;

typedef struct {
    llmux_sse sse;
    int status;
    int http_error;          /* non-2xx: body collected into errbody */
    llmux_buf errbody;
    uint32_t retry_after_ms;

    anth_block *blocks;
    int nblocks;
    int ntools;
    int ndetails;            /* reasoning_details emitted so far */
    llmux_buf thinking;      /* escaped text of the open thinking block */
    llmux_buf signature;     /* escaped signature of the open thinking block */

    int64_t in_tok, out_tok, cache_read, cache_write;
    int finished;            /* emit_finish done */
    int stopped;             /* message_stop seen, usage emitted */
    int errored;             /* emit_error done: ignore the rest */
} anth_state;

int anth_stream_feed(llmux_call *c, const char *data, size_t n);
int anth_stream_done(llmux_call *c, int status);
void anth_state_free(const llmux_host *h, anth_state *st);

/* error.type (or HTTP status when type unknown) -> client status */
int anth_error_status(const char *type, size_t n, int http_status);
int anth_emit_error_json(llmux_call *c, const llmux_host *h, int http_status,
                         const char *body, size_t n, uint32_t retry_ms);
#endif
