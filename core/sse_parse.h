/* Incremental Server-Sent-Events decoder used by plugins through the host
 * table (host->sse_feed). Handles LF, CRLF and CR line endings, "event:",
 * multi-line "data:", comments, and events split across or packed within reads. */
#ifndef LLMUX_SSE_PARSE_H
#define LLMUX_SSE_PARSE_H
#include "../sdk/llmux_plugin.h"

typedef int (*llmux_sse_cb)(void *ud, const char *event, size_t event_len,
                            const char *data, size_t data_len);
/* max_event bounds pending line + data bytes (LLMUX_ELIMIT past it); the raw
 * bytes kept for an event block spanning reads are bounded by 2 * max_event.
 * The callback gets event = "" (len 0) when no "event:" line was seen. Its
 * data is NOT NUL-terminated (it may point into the caller's buffer): use
 * data_len. Both pointers are valid only during the callback. */
int llmux_sse_feed(llmux_sse *p, const char *data, size_t n, size_t max_event,
                   llmux_sse_cb cb, void *ud);
void llmux_sse_free(llmux_sse *p);
/* The raw bytes buffered but not dispatched: every byte received since the
 * last blank line (event boundary), line terminators included, ending with
 * the incomplete last line if any. Lets a plugin inspect at on_done a body
 * that never formed an event (e.g. a plain JSON error sent as
 * text/event-stream: its lines are ignored as unknown fields but kept here).
 * Sets *data (NUL-terminated, valid until the next feed/free) and *len;
 * returns 0. */
int llmux_sse_pending(const llmux_sse *p, const char **data, size_t *len);
#endif
