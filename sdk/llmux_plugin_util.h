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

/* ---- reading OpenAI chat requests --------------------------------------- */
/* Helpers for plugins that translate an OpenAI chat body (messages[] with
 * string-or-parts content) into another provider's format. Each refuses a
 * malformed input with a 400 through llmux_refuse and returns LLMUX_EINVAL. */

/* Calls text(arg, tok) for string content, or part(arg, tok) for each element
 * of an array of parts, stopping at the first nonzero return. Absent or null
 * content is nothing (0); any other type is refused. */
static inline int llmux_content_each(llmux_call *c, const llmux_host *h, const llmux_json *d, int content,
                                     void (*text)(void *arg, int str_tok), int (*part)(void *arg, int part_tok),
                                     void *arg)
{
    if (content < 0 || d->tok[content].type == LLMUX_JSON_PRIMITIVE) return 0;
    if (d->tok[content].type == LLMUX_JSON_STRING) {
        text(arg, content);
        return 0;
    }
    if (d->tok[content].type != LLMUX_JSON_ARRAY)
        return llmux_refuse(c, h, "message content must be a string or an array of parts");
    int it = content + 1;
    for (int k = 0; k < d->tok[content].size; k++, it = h->json_skip(d, it)) {
        int rc = part(arg, it);
        if (rc) return rc;
    }
    return 0;
}

/* The kind of an OpenAI content part, and what llmux_part_read returns with it. */
typedef enum {
    LLMUX_PART_TEXT,  /* value: the text string token */
    LLMUX_PART_IMAGE, /* value: image_url (a string) or image_url.url, or -1 */
    LLMUX_PART_FILE,  /* value: file.file_data (>= 0) */
    LLMUX_PART_AUDIO  /* value: the input_audio member, or -1 */
} llmux_part_kind;

/* Reads content part `part` into *kind and *value. Refuses a text part
 * without a text string, a file part without file_data (file_id is not
 * supported) and any other type. */
static inline int llmux_part_read(llmux_call *c, const llmux_host *h, const llmux_json *d, int part,
                                  llmux_part_kind *kind, int *value)
{
    int type = llmux_jget(h, d, part, "type");
    *kind = LLMUX_PART_TEXT;
    *value = -1;
    if (llmux_jis_str(h, d, type, "text")) {
        int t = llmux_jget(h, d, part, "text");
        if (!llmux_jis(d, t, LLMUX_JSON_STRING)) return llmux_refuse(c, h, "text part without a text string");
        *kind = LLMUX_PART_TEXT;
        *value = t;
        return 0;
    }
    if (llmux_jis_str(h, d, type, "image_url")) {
        int iu = llmux_jget(h, d, part, "image_url");
        *kind = LLMUX_PART_IMAGE;
        *value = llmux_jis(d, iu, LLMUX_JSON_STRING) ? iu : llmux_jget(h, d, iu, "url");
        return 0;
    }
    if (llmux_jis_str(h, d, type, "file")) {
        int fd = llmux_jget(h, d, llmux_jget(h, d, part, "file"), "file_data");
        if (fd < 0) return llmux_refuse(c, h, "file part: only inline file_data is supported (no file_id)");
        *kind = LLMUX_PART_FILE;
        *value = fd;
        return 0;
    }
    if (llmux_jis_str(h, d, type, "input_audio")) {
        *kind = LLMUX_PART_AUDIO;
        *value = llmux_jget(h, d, part, "input_audio");
        return 0;
    }
    return llmux_refuse(c, h, "unsupported content part type");
}

/* A media URL read by llmux_part_url: all pointers are into its buffer. */
typedef struct {
    const char *url;  /* the whole URL */
    size_t url_len;
    const char *mime; /* data: URL: its media type; NULL for http(s) */
    size_t mime_len;
    const char *data; /* data: URL: the base64 payload */
    size_t data_len;
} llmux_media_url;

/* Unescapes string token url_tok (an image_url or file_data value) into *u,
 * which the caller frees with buf_free whatever the result, and splits it
 * into *m. Accepts http(s) URLs and base64 data: URLs; refuses a missing url
 * and anything else, naming the part `what` in the message. Returns 0,
 * LLMUX_ENOMEM or LLMUX_EINVAL. */
static inline int llmux_part_url(llmux_call *c, const llmux_host *h, const llmux_json *d, int url_tok,
                                 const char *what, llmux_buf *u, llmux_media_url *m)
{
    if (!llmux_jis(d, url_tok, LLMUX_JSON_STRING)) return llmux_refuse(c, h, "%s part without a url", what);
    if (h->json_unescape(d, url_tok, u) != 0) return LLMUX_ENOMEM;
    const char *s = u->data ? u->data : "";
    size_t n = u->len;
    memset(m, 0, sizeof *m);
    m->url = s;
    m->url_len = n;
    if (n > 5 && memcmp(s, "data:", 5) == 0) {
        const char *comma = (const char *)memchr(s, ',', n);
        if (!comma || comma - s < 12 || memcmp(comma - 7, ";base64", 7) != 0)
            return llmux_refuse(c, h, "%s part: only base64 data: URLs are supported", what);
        m->mime = s + 5;
        m->mime_len = (size_t)(comma - 7 - (s + 5));
        m->data = comma + 1;
        m->data_len = n - (size_t)(comma + 1 - s);
        return 0;
    }
    if ((n > 7 && memcmp(s, "http://", 7) == 0) || (n > 8 && memcmp(s, "https://", 8) == 0)) return 0;
    return llmux_refuse(c, h, "%s part: url must be http(s) or a base64 data: URL", what);
}

/* Tool-call arguments token args (a JSON-encoded string, an object, or
 * absent) as the text of one JSON object in *obj and *n: the object token's own
 * text, the object the string holds, or "{}" for an absent value or a string
 * of only white space. a and parsed are the caller's zeroed scratch, released
 * with buf_free and (if parsed->tok) json_release whatever the result.
 * Returns 0, LLMUX_ENOMEM, or LLMUX_EINVAL (nothing emitted) when the string
 * is not a JSON object. */
static inline int llmux_tool_args(const llmux_host *h, const llmux_json *d, int args, llmux_buf *a,
                                  llmux_json *parsed, const char **obj, size_t *n)
{
    *obj = NULL;
    *n = 0;
    if (llmux_jis(d, args, LLMUX_JSON_OBJECT)) {
        *obj = llmux_jraw(d, args, n);
        return 0;
    }
    if (llmux_jis(d, args, LLMUX_JSON_STRING) && h->json_unescape(d, args, a) != 0) return LLMUX_ENOMEM;
    size_t p = 0;
    while (p < a->len && (a->data[p] == ' ' || a->data[p] == '\n' || a->data[p] == '\t' || a->data[p] == '\r'))
        p++;
    if (p == a->len) {
        *obj = "{}";
        *n = 2;
        return 0;
    }
    if (h->json_parse(a->data, a->len, parsed) != 0 || parsed->ntok < 1 ||
        parsed->tok[0].type != LLMUX_JSON_OBJECT)
        return LLMUX_EINVAL;
    *obj = a->data + parsed->tok[0].start;
    *n = (size_t)(parsed->tok[0].end - parsed->tok[0].start);
    return 0;
}

/* Appends a system/developer message's content (a string, or an array of
 * text parts) to sys as comma-separated objects, counted in *nsys: `open`,
 * the text as a JSON string, then, with LLMUX_SYS_CACHE_CONTROL, the part's
 * cache_control object if it has one, then "}". An empty string adds
 * nothing, other content types are ignored. Refuses a part without a text
 * string, or (with LLMUX_SYS_TYPED) whose type is not "text". */
enum { LLMUX_SYS_TYPED = 1, LLMUX_SYS_CACHE_CONTROL = 2 };
static inline int llmux_system_text(llmux_call *c, const llmux_host *h, const llmux_json *d, int content,
                                    llmux_jw *sys, int *nsys, const char *open, int flags)
{
    if (llmux_jis(d, content, LLMUX_JSON_STRING)) {
        if (d->tok[content].end == d->tok[content].start) return 0;
        if ((*nsys)++) llmux_jw_lit(sys, ",");
        llmux_jw_lit(sys, open);
        llmux_jw_tok(sys, d, content);
        llmux_jw_lit(sys, "}");
        return 0;
    }
    if (!llmux_jis(d, content, LLMUX_JSON_ARRAY)) return 0;
    int it = content + 1;
    for (int k = 0; k < d->tok[content].size; k++, it = h->json_skip(d, it)) {
        int t = llmux_jget(h, d, it, "text");
        if (((flags & LLMUX_SYS_TYPED) && !llmux_jis_str(h, d, llmux_jget(h, d, it, "type"), "text")) ||
            !llmux_jis(d, t, LLMUX_JSON_STRING))
            return llmux_refuse(c, h, "system messages may contain only text parts");
        if ((*nsys)++) llmux_jw_lit(sys, ",");
        llmux_jw_lit(sys, open);
        llmux_jw_tok(sys, d, t);
        if (flags & LLMUX_SYS_CACHE_CONTROL) {
            int cc = llmux_jget(h, d, it, "cache_control");
            if (llmux_jis(d, cc, LLMUX_JSON_OBJECT)) {
                llmux_jw_lit(sys, ",\"cache_control\":");
                llmux_jw_tok(sys, d, cc);
            }
        }
        llmux_jw_lit(sys, "}");
    }
    return 0;
}

/* Writes OpenAI tools[k] (token tool) as the start of a function declaration:
 * a comma unless k is 0, then `{"name":<name>` and, when the function has a
 * description string, `,"description":<description>`, leaving the object
 * open. The function's parameters token (or -1) goes to *params. Refuses a
 * tool that is not a function tool with a name. */
static inline int llmux_function_tool(llmux_call *c, const llmux_host *h, const llmux_json *d, int tool, int k,
                                      llmux_jw *w, int *params)
{
    int fn = llmux_jget(h, d, tool, "function");
    int name = llmux_jget(h, d, fn, "name");
    *params = -1;
    if (!llmux_jis_str(h, d, llmux_jget(h, d, tool, "type"), "function") || !llmux_jis(d, name, LLMUX_JSON_STRING))
        return llmux_refuse(c, h, "tools[%d]: only function tools with a name are supported", k);
    if (k) llmux_jw_lit(w, ",");
    llmux_jw_lit(w, "{\"name\":");
    llmux_jw_tok(w, d, name);
    int desc = llmux_jget(h, d, fn, "description");
    if (llmux_jis(d, desc, LLMUX_JSON_STRING)) {
        llmux_jw_lit(w, ",\"description\":");
        llmux_jw_tok(w, d, desc);
    }
    *params = llmux_jget(h, d, fn, "parameters");
    return 0;
}

/* OpenAI tool_choice, as read by llmux_tool_choice_read. */
typedef enum {
    LLMUX_CHOICE_UNSET,    /* absent, or neither a string nor an object */
    LLMUX_CHOICE_NONE,     /* "none" */
    LLMUX_CHOICE_REQUIRED, /* "required" */
    LLMUX_CHOICE_AUTO,     /* "auto" */
    LLMUX_CHOICE_FUNCTION  /* {type:"function",function:{name}}: the name token */
} llmux_tool_choice;

/* Reads the request's tool_choice into *choice and, for a named function,
 * its name token into *name (else -1). Refuses an unknown string and an
 * object without function.name. */
static inline int llmux_tool_choice_read(llmux_call *c, const llmux_host *h, const llmux_json *d,
                                         llmux_tool_choice *choice, int *name)
{
    int tc = llmux_jget(h, d, 0, "tool_choice");
    *choice = LLMUX_CHOICE_UNSET;
    *name = -1;
    if (llmux_jis(d, tc, LLMUX_JSON_STRING)) {
        if (h->json_eq(d, tc, "none")) *choice = LLMUX_CHOICE_NONE;
        else if (h->json_eq(d, tc, "required")) *choice = LLMUX_CHOICE_REQUIRED;
        else if (h->json_eq(d, tc, "auto")) *choice = LLMUX_CHOICE_AUTO;
        else return llmux_refuse(c, h, "tool_choice: unknown value");
    } else if (llmux_jis(d, tc, LLMUX_JSON_OBJECT)) {
        *name = llmux_jget(h, d, llmux_jget(h, d, tc, "function"), "name");
        if (!llmux_jis(d, *name, LLMUX_JSON_STRING))
            return llmux_refuse(c, h, "tool_choice: expected {type:\"function\",function:{name}}");
        *choice = LLMUX_CHOICE_FUNCTION;
    }
    return 0;
}

#endif /* LLMUX_PLUGIN_UTIL_H */
