/* Small JSON writer and reader helpers over the host's buffers/tokens. */
#include "gem.h"

#include <stdio.h>
#include <string.h>

void gem_jw_raw(gem_jw *w, const char *s, size_t n)
{
    if (!w->err && n && w->h->buf_append(w->b, s, n) != 0)
        w->err = LLMUX_ENOMEM;
}

void gem_jw_lit(gem_jw *w, const char *s) { gem_jw_raw(w, s, strlen(s)); }

void gem_jw_str(gem_jw *w, const char *raw, size_t n)
{
    gem_jw_raw(w, "\"", 1);
    if (!w->err && n && w->h->buf_append_escaped(w->b, raw, n) != 0)
        w->err = LLMUX_ENOMEM;
    gem_jw_raw(w, "\"", 1);
}

void gem_jw_tok(gem_jw *w, const llmux_json *d, int i)
{
    const llmux_jtok *t = &d->tok[i];
    if (t->type == LLMUX_JSON_STRING) gem_jw_raw(w, "\"", 1);
    gem_jw_raw(w, d->text + t->start, (size_t)(t->end - t->start));
    if (t->type == LLMUX_JSON_STRING) gem_jw_raw(w, "\"", 1);
}

void gem_jw_i64(gem_jw *w, int64_t v)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%lld", (long long)v);
    gem_jw_raw(w, tmp, (size_t)n);
}

int gem_is(const llmux_json *d, int i, llmux_json_type t)
{
    return i >= 0 && i < d->ntok && d->tok[i].type == t;
}

int gem_get(const llmux_host *h, const llmux_json *d, int obj, const char *key)
{
    if (!gem_is(d, obj, LLMUX_JSON_OBJECT)) return -1;
    return h->json_get(d, obj, key);
}

int gem_is_str(const llmux_host *h, const llmux_json *d, int i, const char *s)
{
    return gem_is(d, i, LLMUX_JSON_STRING) && h->json_eq(d, i, s);
}

const char *gem_raw(const llmux_json *d, int i, size_t *n)
{
    *n = (size_t)(d->tok[i].end - d->tok[i].start);
    return d->text + d->tok[i].start;
}
