/* JSON reading on top of jsmn, with the validation jsmn does not do:
 * strict syntax, string escapes, UTF-8, number syntax, nesting depth, and a
 * token budget sized from the configured limit. */
#ifndef LLMUX_JSON_H
#define LLMUX_JSON_H
#include "../sdk/llmux_plugin.h"
#include "buf.h"

typedef struct {
    int max_tokens; /* token budget; documents needing more are refused */
    int max_depth;  /* nesting depth limit */
} llmux_json_limits;
/* Used when lim is NULL or a field is <= 0. */
#define LLMUX_JSON_DEFAULT_MAX_TOKENS 65536
#define LLMUX_JSON_DEFAULT_MAX_DEPTH 64

/* Parses and validates. On success returns 0 and out->tok is malloc'd
 * (free with llmux_json_release). Errors: LLMUX_EPROTO (malformed; *err gets
 * a static message naming the problem and its byte offset is in *err_off),
 * LLMUX_ELIMIT (too many tokens or too deep), LLMUX_ENOMEM. err/err_off may be NULL. */
int llmux_json_parse(const char *text, size_t len, const llmux_json_limits *lim,
                     llmux_json *out, const char **err, size_t *err_off);
void llmux_json_release(llmux_json *doc);

int llmux_json_skip(const llmux_json *doc, int i);            /* next sibling index */
int llmux_json_get(const llmux_json *doc, int obj, const char *key); /* value idx or -1 */
int llmux_json_eq(const llmux_json *doc, int i, const char *s);
int llmux_json_int(const llmux_json *doc, int i, int64_t *out);     /* 0 / -1 */
int llmux_json_double(const llmux_json *doc, int i, double *out);   /* 0 / -1 */
int llmux_json_bool(const llmux_json *doc, int i);                  /* 1 / 0 / -1 */
int llmux_json_is_null(const llmux_json *doc, int i);
int llmux_json_unescape(const llmux_json *doc, int i, llmux_buf *out);
/* Array element k of array `arr` (index) or -1. */
int llmux_json_at(const llmux_json *doc, int arr, int k);
/* Pointer/length of token i's raw bytes. For strings: without the quotes. */
const char *llmux_json_raw(const llmux_json *doc, int i, size_t *len);
/* Appends token i re-serialised exactly as in the source (strings quoted). */
int llmux_json_append_raw(llmux_buf *b, const llmux_json *doc, int i);
#endif
