/* JSON reading: a strict RFC 8259 validator in front of jsmn.
 *
 * jsmn (non-strict) tokenises, but accepts unquoted keys, missing separators,
 * bad escapes, raw control characters, invalid UTF-8 and bad numbers. So a
 * strict pass over the text checks all of that first, enforces the depth
 * limit and the token budget (from the configured limit, never a guess) and
 * counts the tokens; jsmn then tokenises into an array of exactly that size,
 * and a count that disagrees refuses the document.
 * String bodies are scanned eight bytes at a time while they are plain ASCII;
 * token arrays come from a small per-thread cache. */
#include "json.h"

#include <limits.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define JSMN_STATIC /* jsmn tokenises; the strict pass below validates and sizes */
#include <jsmn.h>

_Static_assert(sizeof(llmux_jtok) == sizeof(jsmntok_t), "llmux_jtok must match jsmntok_t");
_Static_assert(offsetof(llmux_jtok, type) == offsetof(jsmntok_t, type), "type offset");
_Static_assert(offsetof(llmux_jtok, start) == offsetof(jsmntok_t, start), "start offset");
_Static_assert(offsetof(llmux_jtok, end) == offsetof(jsmntok_t, end), "end offset");
_Static_assert(offsetof(llmux_jtok, size) == offsetof(jsmntok_t, size), "size offset");
_Static_assert(sizeof(llmux_json_type) == sizeof(jsmntype_t), "enum size");
_Static_assert((int)LLMUX_JSON_OBJECT == (int)JSMN_OBJECT && (int)LLMUX_JSON_ARRAY == (int)JSMN_ARRAY &&
                   (int)LLMUX_JSON_STRING == (int)JSMN_STRING &&
                   (int)LLMUX_JSON_PRIMITIVE == (int)JSMN_PRIMITIVE,
               "token type values");

/* ---- validation + tokenising -------------------------------------------- */

/* String body byte classes: 0 plain ASCII, 1 '"', 2 '\\', 3 control, 4 non-ASCII. */
#define R16(x) x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x
static const unsigned char str_class[256] = {
    R16(3), R16(3),
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,         /* 0x20: '"' */
    R16(0), R16(0),
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0,         /* 0x50: '\\' */
    R16(0), R16(0),
    R16(4), R16(4), R16(4), R16(4), R16(4), R16(4), R16(4), R16(4),
};
#undef R16

#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

/* Non-zero iff one of the 8 bytes is not plain ASCII string content
 * (a control character, '"', '\\' or a byte >= 0x80). Exact: with no high
 * bit set no subtraction borrows across bytes. */
static inline uint64_t word_special(const unsigned char *p)
{
    uint64_t w;
    memcpy(&w, p, sizeof w);
    return ((w - ONES * 0x20) | ((w ^ (ONES * '"')) - ONES) | ((w ^ (ONES * '\\')) - ONES) | w) & HIGHS;
}

typedef struct {
    const char *err;
    size_t err_off;
} verr;

static int vfail(verr *e, int rc, const char *msg, size_t off)
{
    e->err = msg;
    e->err_off = off;
    return rc;
}

static inline size_t skip_ws(const unsigned char *s, size_t pos, size_t len)
{
    while (pos < len) {
        unsigned char c = s[pos];
        if (c > ' ' || (c != ' ' && c != '\t' && c != '\n' && c != '\r'))
            break;
        pos++;
    }
    return pos;
}

static const signed char hex_tab[256] = {
#define H16 -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1
    H16, H16, H16,
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, -1, -1, -1, -1, -1, -1,
    -1, 10, 11, 12, 13, 14, 15, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    H16,
    -1, 10, 11, 12, 13, 14, 15, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    H16, H16, H16, H16, H16, H16, H16, H16, H16,
#undef H16
};

/* Reads 4 hex digits at s[i..i+4), or -1. */
static long hex4(const unsigned char *s, size_t i, size_t len)
{
    if (len < 4 || i > len - 4)
        return -1;
    int a = hex_tab[s[i]], b = hex_tab[s[i + 1]], c = hex_tab[s[i + 2]], d = hex_tab[s[i + 3]];
    if ((a | b | c | d) < 0)
        return -1;
    return (long)((a << 12) | (b << 8) | (c << 4) | d);
}

/* Index of the first special byte in the word at p (word_special(p) != 0):
 * the lowest flagged byte is exact, a borrow only ever flags bytes after it. */
static inline size_t first_special(const unsigned char *p, uint64_t m)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    (void)p;
    return (size_t)__builtin_ctzll(m) >> 3;
#else
    (void)m;
    size_t k = 0;
    while (!str_class[p[k]])
        k++;
    return k;
#endif
}

/* i is at the opening quote. Returns the index after the closing quote, or
 * 0 with *e set. */
static inline size_t scan_string(const unsigned char *s, size_t len, size_t i, verr *e)
{
    size_t open = i++;
    for (;;) {
        for (;;) {
            if (len - i >= 8) {
                uint64_t m = word_special(s + i);
                if (!m) {
                    i += 8;
                    continue;
                }
                i += first_special(s + i, m);
            } else {
                while (i < len && !str_class[s[i]])
                    i++;
            }
            break;
        }
        if (i >= len) {
            vfail(e, LLMUX_EPROTO, "invalid JSON: unterminated string", open);
            return 0;
        }
        switch (str_class[s[i]]) {
        case 1:
            return i + 1;
        case 3:
            vfail(e, LLMUX_EPROTO, "invalid JSON: raw control character in string", i);
            return 0;
        case 2:
            if (i + 1 >= len) {
                vfail(e, LLMUX_EPROTO, "invalid JSON: unterminated string", open);
                return 0;
            }
            switch (s[i + 1]) {
            case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
                i += 2;
                continue;
            case 'u': {
                long u = hex4(s, i + 2, len);
                if (u < 0) {
                    vfail(e, LLMUX_EPROTO, "invalid JSON: bad \\u escape in string", i);
                    return 0;
                }
                if (u >= 0xDC00 && u <= 0xDFFF) {
                    vfail(e, LLMUX_EPROTO, "invalid JSON: unpaired surrogate in string", i);
                    return 0;
                }
                if (u >= 0xD800 && u <= 0xDBFF) {
                    long lo = -1;
                    if (i + 7 < len && s[i + 6] == '\\' && s[i + 7] == 'u')
                        lo = hex4(s, i + 8, len);
                    if (lo < 0xDC00 || lo > 0xDFFF) {
                        vfail(e, LLMUX_EPROTO, "invalid JSON: unpaired surrogate in string", i);
                        return 0;
                    }
                    i += 12;
                } else {
                    i += 6;
                }
                continue;
            }
            default:
                vfail(e, LLMUX_EPROTO, "invalid JSON: bad escape in string", i);
                return 0;
            }
        default: { /* 4: a UTF-8 sequence */
            size_t n = llmux_utf8_valid_len(s + i, len - i);
            if (!n) {
                vfail(e, LLMUX_EPROTO, "invalid JSON: invalid UTF-8 in string", i);
                return 0;
            }
            i += n;
        }
        }
    }
}

static inline int is_digit(unsigned char c) { return (unsigned)(c - '0') < 10u; }

/* RFC 8259: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int scan_number(const unsigned char *s, size_t len, size_t *pos, verr *e)
{
    size_t i = *pos, start = *pos;
    if (i < len && s[i] == '-')
        i++;
    if (i >= len || !is_digit(s[i]))
        return vfail(e, LLMUX_EPROTO, "invalid JSON: bad number", start);
    if (s[i] == '0') {
        i++;
        if (i < len && is_digit(s[i]))
            return vfail(e, LLMUX_EPROTO, "invalid JSON: number with leading zero", start);
    } else {
        while (i < len && is_digit(s[i]))
            i++;
    }
    if (i < len && s[i] == '.') {
        i++;
        if (i >= len || !is_digit(s[i]))
            return vfail(e, LLMUX_EPROTO, "invalid JSON: bad number", start);
        while (i < len && is_digit(s[i]))
            i++;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= len || !is_digit(s[i]))
            return vfail(e, LLMUX_EPROTO, "invalid JSON: bad number", start);
        while (i < len && is_digit(s[i]))
            i++;
    }
    *pos = i;
    return 0;
}

/* ---- token arrays --------------------------------------------------------
 *
 * A document's tokens live in a malloc'd block whose first element is a
 * header (its .size is the capacity in tokens); doc->tok points just past it.
 * Released blocks of modest size go to a small per-thread cache, so a parse
 * normally allocates nothing. A block may be released on any thread. */

#define TOK_INITIAL 64
#define TOK_CACHE_SLOTS 4
#define TOK_CACHE_MAX 4096 /* larger blocks are freed, not cached */

typedef struct {
    jsmntok_t *slot[TOK_CACHE_SLOTS];
    int n;
    int registered;
} tok_cache;

static _Thread_local tok_cache t_cache;
static pthread_key_t tok_key;
static int tok_key_ok;
static pthread_once_t tok_key_once = PTHREAD_ONCE_INIT;

static void tok_cache_destroy(void *p)
{
    tok_cache *c = p;
    while (c->n > 0)
        free(c->slot[--c->n]);
}

static void tok_key_init(void) { tok_key_ok = pthread_key_create(&tok_key, tok_cache_destroy) == 0; }

static jsmntok_t *tok_block_get(void)
{
    tok_cache *c = &t_cache;
    if (c->n > 0)
        return c->slot[--c->n];
    jsmntok_t *b = malloc((TOK_INITIAL + 1) * sizeof *b);
    if (b) {
        b[0].type = JSMN_UNDEFINED;
        b[0].start = b[0].end = -1;
        b[0].size = TOK_INITIAL;
    }
    return b;
}

static void tok_block_put(jsmntok_t *b)
{
    tok_cache *c = &t_cache;
    if (b[0].size > TOK_CACHE_MAX || c->n >= TOK_CACHE_SLOTS) {
        free(b);
        return;
    }
    if (!c->registered) {
        /* Free the cached blocks when the thread ends. */
        pthread_once(&tok_key_once, tok_key_init);
        if (!tok_key_ok || pthread_setspecific(tok_key, c) != 0) {
            free(b);
            return;
        }
        c->registered = 1;
    }
    c->slot[c->n++] = b;
}

/* Grows the block to hold at least need tokens (need <= max). */
static jsmntok_t *tok_block_grow(jsmntok_t *b, int need, int max)
{
    long cap = b[0].size;
    while (cap < need)
        cap *= 2;
    if (cap > max)
        cap = max;
    jsmntok_t *nb = realloc(b, ((size_t)cap + 1) * sizeof *nb);
    if (!nb)
        return NULL;
    nb[0].size = (int)cap;
    return nb;
}

/* One strict pass validates the text and counts the tokens jsmn will
 * produce (a container, a key, a value: one each); jsmn then tokenises into
 * an array of exactly that size. Iterative: the stack holds the kind of each
 * open container, bounded by max_depth. */
int llmux_json_parse(const char *text, size_t len, const llmux_json_limits *lim,
                     llmux_json *out, const char **err, size_t *err_off)
{
    memset(out, 0, sizeof *out);
    const char *e_dummy;
    size_t o_dummy;
    if (!err)
        err = &e_dummy;
    if (!err_off)
        err_off = &o_dummy;
    *err = NULL;
    *err_off = 0;
    if (len > (size_t)INT_MAX - 1) {
        *err = "JSON document too large";
        return LLMUX_ELIMIT;
    }
    /* Unset limits (NULL or <= 0) fall back to conservative defaults. */
    int max_tokens = lim && lim->max_tokens > 0 ? lim->max_tokens : LLMUX_JSON_DEFAULT_MAX_TOKENS;
    int max_depth = lim && lim->max_depth > 0 ? lim->max_depth : LLMUX_JSON_DEFAULT_MAX_DEPTH;

    const unsigned char *s = (const unsigned char *)text;
    verr e = {NULL, 0};
    size_t cap = (size_t)max_depth;
    if (cap > len)
        cap = len; /* a document cannot nest deeper than its length */
    int small[64];
    int *stack = cap <= sizeof small / sizeof small[0] ? small : malloc(cap * sizeof *stack);
    jsmntok_t *blk = stack ? tok_block_get() : NULL;
    if (!blk) {
        if (stack && stack != small)
            free(stack);
        *err = "out of memory";
        return LLMUX_ENOMEM;
    }
    jsmntok_t *tok = blk + 1;
    int tcap = blk[0].size;
    int n = 0, depth = 0, rc = 0;
    int cur_obj = 0; /* whether the innermost open container is an object (the stack holds each one's kind) */
    size_t pos = skip_ws(s, 0, len);

#define NEED_TOKEN()                                                                               \
    do {                                                                                           \
        if (n >= max_tokens) {                                                                     \
            rc = vfail(&e, LLMUX_ELIMIT, "JSON document has too many tokens", pos);                \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

    if (pos >= len) {
        rc = vfail(&e, LLMUX_EPROTO, "invalid JSON: empty document", pos);
        goto out;
    }
    for (;;) {
        /* expect a value at pos (whitespace skipped) */
        if (pos >= len) {
            rc = vfail(&e, LLMUX_EPROTO, "invalid JSON: truncated document", pos);
            goto out;
        }
        NEED_TOKEN();
        unsigned char c = s[pos];
        if (c == '{' || c == '[') {
            if (depth >= max_depth || (size_t)depth >= cap) {
                rc = vfail(&e, LLMUX_ELIMIT, "JSON document nested too deeply", pos);
                goto out;
            }
            stack[depth++] = c == '{';
            n++;
            pos = skip_ws(s, pos + 1, len);
            if (pos < len && s[pos] == (c == '{' ? '}' : ']')) {
                ++pos;
                depth--;
                goto after_value;
            }
            cur_obj = c == '{';
            if (c == '{')
                goto expect_key;
            continue;
        }
        if (c == '"') {
            if (!(pos = scan_string(s, len, pos, &e))) {
                rc = LLMUX_EPROTO;
                goto out;
            }
        } else {
            if (c == '-' || is_digit(c)) {
                if ((rc = scan_number(s, len, &pos, &e)))
                    goto out;
            } else if (c == 't' && len - pos >= 4 && !memcmp(s + pos, "true", 4)) {
                pos += 4;
            } else if (c == 'f' && len - pos >= 5 && !memcmp(s + pos, "false", 5)) {
                pos += 5;
            } else if (c == 'n' && len - pos >= 4 && !memcmp(s + pos, "null", 4)) {
                pos += 4;
            } else {
                rc = vfail(&e, LLMUX_EPROTO, "invalid JSON: unexpected character", pos);
                goto out;
            }
        }
        n++;
    after_value:
        pos = skip_ws(s, pos, len);
        if (depth == 0) {
            if (pos != len)
                rc = vfail(&e, LLMUX_EPROTO, "invalid JSON: trailing characters after the root value",
                           pos);
            goto out;
        }
        if (pos >= len) {
            rc = vfail(&e, LLMUX_EPROTO, "invalid JSON: truncated document", pos);
            goto out;
        }
        {
            unsigned char d = s[pos];
            if (d == ',') {
                pos = skip_ws(s, pos + 1, len);
                if (cur_obj)
                    goto expect_key;
                continue;
            }
            if (d == (cur_obj ? '}' : ']')) {
                ++pos;
                depth--;
                if (depth)
                    cur_obj = stack[depth - 1];
                goto after_value;
            }
            rc = vfail(&e, LLMUX_EPROTO,
                       cur_obj ? "invalid JSON: expected ',' or '}' in object"
                               : "invalid JSON: expected ',' or ']' in array",
                       pos);
            goto out;
        }
    expect_key:
        if (pos >= len) {
            rc = vfail(&e, LLMUX_EPROTO, "invalid JSON: truncated document", pos);
            goto out;
        }
        if (s[pos] != '"') {
            rc = vfail(&e, LLMUX_EPROTO, "invalid JSON: object key must be a string", pos);
            goto out;
        }
        NEED_TOKEN();
        if (!(pos = scan_string(s, len, pos, &e))) {
            rc = LLMUX_EPROTO;
            goto out;
        }
        n++; /* the key */
        pos = skip_ws(s, pos, len);
        if (pos >= len || s[pos] != ':') {
            rc = vfail(&e, LLMUX_EPROTO, "invalid JSON: expected ':' after object key", pos);
            goto out;
        }
        pos = skip_ws(s, pos + 1, len);
    }
#undef NEED_TOKEN
out:
    if (stack != small)
        free(stack);
    if (rc) {
        tok_block_put(blk);
        *err = e.err;
        *err_off = e.err_off;
        return rc;
    }
    /* The tokens come from jsmn; the strict pass above counted them. */
    if (n > tcap) {
        jsmntok_t *nb = tok_block_grow(blk, n, max_tokens);
        if (!nb) {
            tok_block_put(blk);
            *err = "out of memory";
            return LLMUX_ENOMEM;
        }
        blk = nb;
        tok = blk + 1;
        tcap = blk[0].size;
    }
    {
        jsmn_parser p;
        jsmn_init(&p);
        int jn = jsmn_parse(&p, text, len, tok, (unsigned)tcap);
        if (jn != n) {
            tok_block_put(blk);
            *err = "invalid JSON: tokeniser disagreement";
            *err_off = 0;
            return LLMUX_EPROTO;
        }
    }
    out->text = text;
    out->len = len;
    out->tok = (const llmux_jtok *)(const void *)tok;
    out->ntok = n;
    return 0;
}

void llmux_json_release(llmux_json *doc)
{
    if (!doc)
        return;
    if (doc->tok)
        tok_block_put((jsmntok_t *)(void *)doc->tok - 1);
    doc->tok = NULL;
    doc->ntok = 0;
}

/* ---- readers ------------------------------------------------------------ */

static int valid_idx(const llmux_json *doc, int i)
{
    return doc && doc->tok && i >= 0 && i < doc->ntok;
}

int llmux_json_skip(const llmux_json *doc, int i)
{
    if (!valid_idx(doc, i))
        return doc ? doc->ntok : 0;
    if (doc->tok[i].size == 0)
        return i + 1; /* a scalar or an empty container */
    /* Every token's size is its number of direct children in token order
     * (an object key has size 1: its value), so count down what remains. */
    long remaining = 1;
    while (remaining > 0 && i < doc->ntok) {
        remaining += doc->tok[i].size - 1;
        i++;
    }
    return i;
}

/* Compares key token i (after unescaping if needed) with s/n. */
static int str_equals(const llmux_json *doc, int i, const char *s, size_t n)
{
    const llmux_jtok *t = &doc->tok[i];
    const char *raw = doc->text + t->start;
    size_t rlen = (size_t)(t->end - t->start);
    if (rlen < n) /* unescaping never makes a string longer */
        return 0;
    if (rlen == n) {
        /* Same bytes: equal unless raw holds an escape (then it unescapes shorter). */
        if (n && (raw[0] != s[0] || memcmp(raw, s, n) != 0))
            return 0;
        return t->type != LLMUX_JSON_STRING || !memchr(raw, '\\', n);
    }
    if (t->type != LLMUX_JSON_STRING || !memchr(raw, '\\', rlen))
        return 0;
    llmux_buf b = {0};
    int eq = llmux_json_unescape(doc, i, &b) == 0 && b.len == n && memcmp(b.data, s, n) == 0;
    llmux_buf_free(&b);
    return eq;
}

int llmux_json_get(const llmux_json *doc, int obj, const char *key)
{
    if (!valid_idx(doc, obj) || doc->tok[obj].type != LLMUX_JSON_OBJECT || !key)
        return -1;
    size_t klen = strlen(key);
    int nkeys = doc->tok[obj].size, ntok = doc->ntok;
    const llmux_jtok *tok = doc->tok;
    int i = obj + 1;
    for (int k = 0; k < nkeys && i + 1 < ntok; k++) {
        if (str_equals(doc, i, key, klen))
            return i + 1;
        /* skip the key and its value */
        int v = i + 1;
        if (tok[v].size == 0) {
            i = v + 1;
        } else {
            long remaining = 1;
            while (remaining > 0 && v < ntok) {
                remaining += tok[v].size - 1;
                v++;
            }
            i = v;
        }
    }
    return -1;
}

int llmux_json_eq(const llmux_json *doc, int i, const char *s)
{
    if (!valid_idx(doc, i) || !s)
        return 0;
    const llmux_jtok *t = &doc->tok[i];
    if (t->type != LLMUX_JSON_STRING && t->type != LLMUX_JSON_PRIMITIVE)
        return 0;
    size_t n = strlen(s), rlen = (size_t)(t->end - t->start);
    return rlen == n && memcmp(doc->text + t->start, s, n) == 0;
}

static int is_number_tok(const llmux_json *doc, int i)
{
    if (!valid_idx(doc, i) || doc->tok[i].type != LLMUX_JSON_PRIMITIVE)
        return 0;
    char c = doc->text[doc->tok[i].start];
    return c == '-' || (c >= '0' && c <= '9');
}

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static void c_locale_init(void) { c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0); }

/* strtod on a NUL-terminated copy of the token, independent of the process
 * locale. Returns 0 or -1 (no number, or out of range). */
static int tok_strtod(const llmux_json *doc, int i, double *out)
{
    const llmux_jtok *t = &doc->tok[i];
    size_t n = (size_t)(t->end - t->start);
    char small[128];
    char *buf = n < sizeof small ? small : malloc(n + 1);
    if (!buf)
        return -1;
    memcpy(buf, doc->text + t->start, n);
    buf[n] = '\0';
    pthread_once(&c_locale_once, c_locale_init);
    char *end;
    double d = c_locale ? strtod_l(buf, &end, c_locale) : strtod(buf, &end);
    int ok = end == buf + n;
    if (buf != small)
        free(buf);
    if (!ok || d == HUGE_VAL || d == -HUGE_VAL)
        return -1;
    *out = d;
    return 0;
}

int llmux_json_int(const llmux_json *doc, int i, int64_t *out)
{
    if (!is_number_tok(doc, i))
        return -1;
    const llmux_jtok *t = &doc->tok[i];
    const char *s = doc->text + t->start, *e = doc->text + t->end;
    int neg = *s == '-';
    const char *p = s + neg;
    uint64_t acc = 0;
    uint64_t lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; p < e && *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (acc > (lim - d) / 10)
            return -1;
        acc = acc * 10 + d;
    }
    if (p == e) {
        *out = neg ? (acc == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)acc) : (int64_t)acc;
        return 0;
    }
    /* Fraction or exponent: accept only exact integers in range. */
    double d;
    if (tok_strtod(doc, i, &d))
        return -1;
    if (!(d < 9223372036854775808.0 && d >= -9223372036854775808.0))
        return -1;
    int64_t v = (int64_t)d;
    if ((double)v != d)
        return -1;
    *out = v;
    return 0;
}

int llmux_json_double(const llmux_json *doc, int i, double *out)
{
    if (!is_number_tok(doc, i))
        return -1;
    return tok_strtod(doc, i, out);
}

int llmux_json_bool(const llmux_json *doc, int i)
{
    if (!valid_idx(doc, i) || doc->tok[i].type != LLMUX_JSON_PRIMITIVE)
        return -1;
    if (llmux_json_eq(doc, i, "true"))
        return 1;
    if (llmux_json_eq(doc, i, "false"))
        return 0;
    return -1;
}

int llmux_json_is_null(const llmux_json *doc, int i)
{
    return valid_idx(doc, i) && doc->tok[i].type == LLMUX_JSON_PRIMITIVE &&
           llmux_json_eq(doc, i, "null");
}

static size_t utf8_encode(unsigned long cp, char *o)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

int llmux_json_unescape(const llmux_json *doc, int i, llmux_buf *out)
{
    if (!valid_idx(doc, i) || doc->tok[i].type != LLMUX_JSON_STRING)
        return LLMUX_EINVAL;
    const unsigned char *s = (const unsigned char *)doc->text + doc->tok[i].start;
    size_t n = (size_t)(doc->tok[i].end - doc->tok[i].start), k = 0;
    if (llmux_buf_reserve(out, n))
        return LLMUX_ENOMEM;
    while (k < n) {
        size_t run = k;
        while (run < n && s[run] != '\\')
            run++;
        if (run > k && llmux_buf_append(out, s + k, run - k))
            return LLMUX_ENOMEM;
        k = run;
        if (k >= n)
            break;
        if (k + 1 >= n)
            return LLMUX_EPROTO;
        char c, enc[4];
        size_t elen = 1;
        switch (s[k + 1]) {
        case '"': c = '"'; break;
        case '\\': c = '\\'; break;
        case '/': c = '/'; break;
        case 'b': c = '\b'; break;
        case 'f': c = '\f'; break;
        case 'n': c = '\n'; break;
        case 'r': c = '\r'; break;
        case 't': c = '\t'; break;
        case 'u': {
            long u = hex4(s, k + 2, n);
            if (u < 0)
                return LLMUX_EPROTO;
            unsigned long cp = (unsigned long)u;
            size_t used = 6;
            if (u >= 0xD800 && u <= 0xDBFF) {
                long lo = -1;
                if (k + 7 < n && s[k + 6] == '\\' && s[k + 7] == 'u')
                    lo = hex4(s, k + 8, n);
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + (((unsigned long)u - 0xD800) << 10) + ((unsigned long)lo - 0xDC00);
                    used = 12;
                } else {
                    cp = 0xFFFD;
                }
            } else if (u >= 0xDC00 && u <= 0xDFFF) {
                cp = 0xFFFD;
            }
            elen = utf8_encode(cp, enc);
            if (llmux_buf_append(out, enc, elen))
                return LLMUX_ENOMEM;
            k += used;
            continue;
        }
        default:
            return LLMUX_EPROTO;
        }
        if (llmux_buf_append_char(out, c))
            return LLMUX_ENOMEM;
        k += 2;
    }
    return 0;
}

int llmux_json_at(const llmux_json *doc, int arr, int k)
{
    if (!valid_idx(doc, arr) || doc->tok[arr].type != LLMUX_JSON_ARRAY || k < 0 ||
        k >= doc->tok[arr].size)
        return -1;
    int i = arr + 1;
    while (k-- > 0 && i < doc->ntok)
        i = llmux_json_skip(doc, i);
    return i < doc->ntok ? i : -1;
}

const char *llmux_json_raw(const llmux_json *doc, int i, size_t *len)
{
    if (!valid_idx(doc, i)) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = (size_t)(doc->tok[i].end - doc->tok[i].start);
    return doc->text + doc->tok[i].start;
}

int llmux_json_append_raw(llmux_buf *b, const llmux_json *doc, int i)
{
    if (!valid_idx(doc, i))
        return LLMUX_EINVAL;
    const llmux_jtok *t = &doc->tok[i];
    int q = t->type == LLMUX_JSON_STRING;
    if ((q && llmux_buf_append_char(b, '"')) ||
        llmux_buf_append(b, doc->text + t->start, (size_t)(t->end - t->start)) ||
        (q && llmux_buf_append_char(b, '"')))
        return LLMUX_ENOMEM;
    return 0;
}
