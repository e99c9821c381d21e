/*
 * llmux_plugin_util.h — optional header-only helpers for provider plugins.
 *
 * Everything here is `static inline` and goes through the host table, so a
 * plugin that includes this header still links no library and resolves no
 * symbol from the host. Include it after (or instead of) llmux_plugin.h.
 *
 * JSON writer with a sticky error: every llmux_jw_* call appends to w->b via
 * the host; the first allocation failure sets w->err = LLMUX_ENOMEM and makes
 * every later call a no-op, so a body can be written without checking each
 * step and w.err tested once at the end.
 *
 *   llmux_jw w = {h, body, 0};
 *   llmux_jw_lit(&w, "{\"model\":");
 *   llmux_jw_str(&w, name, strlen(name));
 *   llmux_jw_lit(&w, "}");
 *   if (w.err) return w.err;
 *
 * JSON reading helpers over a parsed document: llmux_jget tolerates a missing
 * or non-object parent (returns -1), llmux_jis a missing token (i < 0).
 */
#ifndef LLMUX_PLUGIN_UTIL_H
#define LLMUX_PLUGIN_UTIL_H

#include "llmux_plugin.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ---- JSON writer with a sticky error ---------------------------------- */
typedef struct {
    const llmux_host *h;
    llmux_buf *b;
    int err; /* 0, or LLMUX_ENOMEM after the first failed append */
} llmux_jw;

/* n bytes of s, as they are. */
static inline void llmux_jw_raw(llmux_jw *w, const char *s, size_t n)
{
    if (!w->err && n && w->h->buf_append(w->b, s, n) != 0)
        w->err = LLMUX_ENOMEM;
}

/* A NUL-terminated literal, as it is. */
static inline void llmux_jw_lit(llmux_jw *w, const char *s) { llmux_jw_raw(w, s, strlen(s)); }

/* A quoted JSON string from raw (unescaped) text. */
static inline void llmux_jw_str(llmux_jw *w, const char *raw, size_t n)
{
    llmux_jw_raw(w, "\"", 1);
    if (!w->err && n && w->h->buf_append_escaped(w->b, raw, n) != 0)
        w->err = LLMUX_ENOMEM;
    llmux_jw_raw(w, "\"", 1);
}

/* Token i of d as a JSON value (strings re-quoted, already escaped). */
static inline void llmux_jw_tok(llmux_jw *w, const llmux_json *d, int i)
{
    const llmux_jtok *t = &d->tok[i];
    if (t->type == LLMUX_JSON_STRING) llmux_jw_raw(w, "\"", 1);
    llmux_jw_raw(w, d->text + t->start, (size_t)(t->end - t->start));
    if (t->type == LLMUX_JSON_STRING) llmux_jw_raw(w, "\"", 1);
}

/* A decimal integer. */
static inline void llmux_jw_i64(llmux_jw *w, int64_t v)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%lld", (long long)v);
    llmux_jw_raw(w, tmp, (size_t)n);
}

/* ---- JSON reading helpers ---------------------------------------------- */

/* 1 if token i exists and has type t. */
static inline int llmux_jis(const llmux_json *d, int i, llmux_json_type t)
{
    return i >= 0 && i < d->ntok && d->tok[i].type == t;
}

/* Value token of key in object obj, or -1 (also when obj is not an object). */
static inline int llmux_jget(const llmux_host *h, const llmux_json *d, int obj, const char *key)
{
    if (!llmux_jis(d, obj, LLMUX_JSON_OBJECT)) return -1;
    return h->json_get(d, obj, key);
}

/* 1 if token i is a string equal to s. */
static inline int llmux_jis_str(const llmux_host *h, const llmux_json *d, int i, const char *s)
{
    return llmux_jis(d, i, LLMUX_JSON_STRING) && h->json_eq(d, i, s);
}

/* The raw text of token i (a string's body still escaped); its length in *n. */
static inline const char *llmux_jraw(const llmux_json *d, int i, size_t *n)
{
    *n = (size_t)(d->tok[i].end - d->tok[i].start);
    return d->text + d->tok[i].start;
}

/* ---- refusing a request ------------------------------------------------- */

/* Emits a 400 error whose message is the formatted text (cut at 255 bytes)
 * and returns LLMUX_EINVAL, for prepare() to return. */
static inline int llmux_refuse(llmux_call *c, const llmux_host *h, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static inline int llmux_refuse(llmux_call *c, const llmux_host *h, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    h->emit_error(c, 400, msg, NULL, 0, 0);
    return LLMUX_EINVAL;
}

#endif /* LLMUX_PLUGIN_UTIL_H */
