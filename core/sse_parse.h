/* Incremental Server-Sent-Events decoder used by plugins through the host
 * table (host->sse_feed). Handles LF, CRLF and CR line endings, "event:",
 * multi-line "data:", comments, and events split across or packed within reads. */
#ifndef LLMUX_SSE_PARSE_H
#define LLMUX_SSE_PARSE_H
#include "../sdk/llmux_plugin.h"

typedef int (*llmux_sse_cb)(void *ud, const char *event, size_t event_len,
                            const char *data, size_t data_len);
/* max_event bounds pending line + data bytes (LLMUX_ELIMIT past it). */
int llmux_sse_feed(llmux_sse *p, const char *data, size_t n, size_t max_event,
                   llmux_sse_cb cb, void *ud);
void llmux_sse_free(llmux_sse *p);
#endif
