/* JSON reading: a strict RFC 8259 validator in front of jsmn.
 *
 * jsmn (non-strict) tokenises, but accepts unquoted keys, missing separators,
 * bad escapes, raw control characters, invalid UTF-8 and bad numbers. So we
 * first run a strict single-pass validator over the text that also counts
 * the tokens the document needs and enforces the depth limit; only a valid
 * document is handed to jsmn, with a token array of exactly that size (the
 * budget comes from the configured limit, never from a guess). jsmn's result
 * must then match the count, which double-checks both passes. */
#include "json.h"

#include <limits.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define JSMN_STATIC
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

/* ---- validation --------------------------------------------------------- */

typedef struct {
    const unsigned char *s;
    size_t len;
    size_t pos;
    const char *err;
    size_t err_off;
    int rc;
} vstate;

static int vfail(vstate *v, int rc, const char *msg, size_t off)
{
    v->rc = rc;
    v->err = msg;
    v->err_off = off;
    return rc;
}

static void skip_ws(vstate *v)
{
    while (v->pos < v->len) {
        unsigned char c = v->s[v->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        v->pos++;
    }
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Reads 4 hex digits at s[i..i+4), or -1. */
static long hex4(const unsigned char *s, size_t i, size_t len)
{
    if (len < 4 || i > len - 4)
        return -1;
    long u = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexval(s[i + (size_t)k]);
        if (h < 0)
            return -1;
        u = u * 16 + h;
    }
    return u;
}

/* v->pos is at the opening quote. Leaves pos after the closing quote. */
static int scan_string(vstate *v)
{
    const unsigned char *s = v->s;
    size_t i = v->pos + 1, len = v->len;
    for (;;) {
        while (i < len && s[i] >= 0x20 && s[i] < 0x80 && s[i] != '"' && s[i] != '\\')
            i++;
        if (i >= len)
            return vfail(v, LLMUX_EPROTO, "invalid JSON: unterminated string", v->pos);
        unsigned char c = s[i];
        if (c == '"') {
            v->pos = i + 1;
            return 0;
        }
        if (c < 0x20)
            return vfail(v, LLMUX_EPROTO, "invalid JSON: raw control character in string", i);
        if (c == '\\') {
            if (i + 1 >= len)
                return vfail(v, LLMUX_EPROTO, "invalid JSON: unterminated string", v->pos);
            switch (s[i + 1]) {
            case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
                i += 2;
                continue;
            case 'u': {
                long u = hex4(s, i + 2, len);
                if (u < 0)
                    return vfail(v, LLMUX_EPROTO, "invalid JSON: bad \\u escape in string", i);
                if (u >= 0xDC00 && u <= 0xDFFF)
                    return vfail(v, LLMUX_EPROTO, "invalid JSON: unpaired surrogate in string", i);
                if (u >= 0xD800 && u <= 0xDBFF) {
                    long lo = -1;
                    if (i + 7 < len && s[i + 6] == '\\' && s[i + 7] == 'u')
                        lo = hex4(s, i + 8, len);
                    if (lo < 0xDC00 || lo > 0xDFFF)
                        return vfail(v, LLMUX_EPROTO, "invalid JSON: unpaired surrogate in string", i);
                    i += 12;
                } else {
                    i += 6;
                }
                continue;
            }
            default:
                return vfail(v, LLMUX_EPROTO, "invalid JSON: bad escape in string", i);
            }
        }
        size_t n = llmux_utf8_valid_len(s + i, len - i);
        if (!n)
            return vfail(v, LLMUX_EPROTO, "invalid JSON: invalid UTF-8 in string", i);
        i += n;
    }
}

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* RFC 8259: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int scan_number(vstate *v)
{
    const unsigned char *s = v->s;
    size_t i = v->pos, len = v->len, start = v->pos;
    if (i < len && s[i] == '-')
        i++;
    if (i >= len || !is_digit(s[i]))
        return vfail(v, LLMUX_EPROTO, "invalid JSON: bad number", start);
    if (s[i] == '0') {
        i++;
        if (i < len && is_digit(s[i]))
            return vfail(v, LLMUX_EPROTO, "invalid JSON: number with leading zero", start);
    } else {
        while (i < len && is_digit(s[i]))
            i++;
    }
    if (i < len && s[i] == '.') {
        i++;
        if (i >= len || !is_digit(s[i]))
            return vfail(v, LLMUX_EPROTO, "invalid JSON: bad number", start);
        while (i < len && is_digit(s[i]))
            i++;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= len || !is_digit(s[i]))
            return vfail(v, LLMUX_EPROTO, "invalid JSON: bad number", start);
        while (i < len && is_digit(s[i]))
            i++;
    }
    v->pos = i;
    return 0;
}

static int scan_literal(vstate *v, const char *lit)
{
    size_t n = strlen(lit);
    if (v->len - v->pos < n || memcmp(v->s + v->pos, lit, n) != 0)
        return vfail(v, LLMUX_EPROTO, "invalid JSON: unexpected character", v->pos);
    v->pos += n;
    return 0;
}

/* Validates the whole text; on success *ntok is the number of jsmn tokens
 * (every value plus every object key). Iterative: the container stack is a
 * byte per level, bounded by max_depth. */
static int validate(vstate *v, int max_tokens, int max_depth, int *ntok)
{
    size_t cap = (size_t)(max_depth > 0 ? max_depth : 0);
    if (cap > v->len)
        cap = v->len; /* a document cannot nest deeper than its length */
    unsigned char small[256];
    unsigned char *stack = cap <= sizeof small ? small : malloc(cap);
    if (!stack)
        return vfail(v, LLMUX_ENOMEM, "out of memory", 0);
    int depth = 0;
    long count = 0;
    int rc = 0;

    skip_ws(v);
    if (v->pos >= v->len) {
        rc = vfail(v, LLMUX_EPROTO, "invalid JSON: empty document", v->pos);
        goto out;
    }
    for (;;) {
        /* expect a value at v->pos (whitespace skipped) */
        if (v->pos >= v->len) {
            rc = vfail(v, LLMUX_EPROTO, "invalid JSON: truncated document", v->pos);
            goto out;
        }
        if (++count > max_tokens) {
            rc = vfail(v, LLMUX_ELIMIT, "JSON document has too many tokens", v->pos);
            goto out;
        }
        unsigned char c = v->s[v->pos];
        if (c == '{' || c == '[') {
            if (depth >= max_depth || (size_t)depth >= cap) {
                rc = vfail(v, LLMUX_ELIMIT, "JSON document nested too deeply", v->pos);
                goto out;
            }
            stack[depth++] = c;
            v->pos++;
            skip_ws(v);
            if (v->pos < v->len && v->s[v->pos] == (c == '{' ? '}' : ']')) {
                v->pos++;
                depth--;
                goto after_value;
            }
            if (c == '{')
                goto expect_key;
            continue;
        } else if (c == '"') {
            rc = scan_string(v);
        } else if (c == '-' || is_digit(c)) {
            rc = scan_number(v);
        } else if (c == 't') {
            rc = scan_literal(v, "true");
        } else if (c == 'f') {
            rc = scan_literal(v, "false");
        } else if (c == 'n') {
            rc = scan_literal(v, "null");
        } else {
            rc = vfail(v, LLMUX_EPROTO, "invalid JSON: unexpected character", v->pos);
        }
        if (rc)
            goto out;
    after_value:
        skip_ws(v);
        if (depth == 0) {
            if (v->pos != v->len)
                rc = vfail(v, LLMUX_EPROTO, "invalid JSON: trailing characters after the root value",
                           v->pos);
            goto out;
        }
        if (v->pos >= v->len) {
            rc = vfail(v, LLMUX_EPROTO, "invalid JSON: truncated document", v->pos);
            goto out;
        }
        {
            unsigned char top = stack[depth - 1], d = v->s[v->pos];
            if (d == ',') {
                v->pos++;
                skip_ws(v);
                if (top == '{')
                    goto expect_key;
                continue;
            }
            if (d == (top == '{' ? '}' : ']')) {
                v->pos++;
                depth--;
                goto after_value;
            }
            rc = vfail(v, LLMUX_EPROTO,
                       top == '{' ? "invalid JSON: expected ',' or '}' in object"
                                  : "invalid JSON: expected ',' or ']' in array",
                       v->pos);
            goto out;
        }
    expect_key:
        if (v->pos >= v->len) {
            rc = vfail(v, LLMUX_EPROTO, "invalid JSON: truncated document", v->pos);
            goto out;
        }
        if (v->s[v->pos] != '"') {
            rc = vfail(v, LLMUX_EPROTO, "invalid JSON: object key must be a string", v->pos);
            goto out;
        }
        if (++count > max_tokens) {
            rc = vfail(v, LLMUX_ELIMIT, "JSON document has too many tokens", v->pos);
            goto out;
        }
        if ((rc = scan_string(v)))
            goto out;
        skip_ws(v);
        if (v->pos >= v->len || v->s[v->pos] != ':') {
            rc = vfail(v, LLMUX_EPROTO, "invalid JSON: expected ':' after object key", v->pos);
            goto out;
        }
        v->pos++;
        skip_ws(v);
    }
out:
    if (stack != small)
        free(stack);
    if (!rc)
        *ntok = (int)count;
    return rc;
}

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

    vstate v = {(const unsigned char *)text, len, 0, NULL, 0, 0};
    int ntok = 0;
    int rc = validate(&v, max_tokens, max_depth, &ntok);
    if (rc) {
        *err = v.err;
        *err_off = v.err_off;
        return rc;
    }
    jsmntok_t *tok = malloc((size_t)ntok * sizeof *tok);
    if (!tok) {
        *err = "out of memory";
        return LLMUX_ENOMEM;
    }
    jsmn_parser p;
    jsmn_init(&p);
    int r = jsmn_parse(&p, text, len, tok, (unsigned)ntok);
    if (r != ntok) {
        /* Cannot happen for a validated document; refuse rather than trust. */
        free(tok);
        *err = "invalid JSON: tokenizer disagrees with validator";
        *err_off = p.pos;
        return r == JSMN_ERROR_NOMEM ? LLMUX_ELIMIT : LLMUX_EPROTO;
    }
    out->text = text;
    out->len = len;
    out->tok = (const llmux_jtok *)(const void *)tok;
    out->ntok = ntok;
    return 0;
}

void llmux_json_release(llmux_json *doc)
{
    if (!doc)
        return;
    free((void *)doc->tok);
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
    /* Every token's size is its number of direct children in token order
     * (an object key has size 1: its value), so count down what remains. */
    long remaining = 1;
    while (remaining > 0 && i < doc->ntok) {
        remaining += doc->tok[i].size - 1;
        i++;
    }
    return i;
}

/* Compares string token i (after unescaping if needed) with s/n. */
static int str_equals(const llmux_json *doc, int i, const char *s, size_t n)
{
    const llmux_jtok *t = &doc->tok[i];
    const char *raw = doc->text + t->start;
    size_t rlen = (size_t)(t->end - t->start);
    if (t->type != LLMUX_JSON_STRING || !memchr(raw, '\\', rlen))
        return rlen == n && memcmp(raw, s, n) == 0;
    if (rlen < n) /* unescaping never makes a string longer */
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
    int nkeys = doc->tok[obj].size;
    int i = obj + 1;
    for (int k = 0; k < nkeys && i + 1 < doc->ntok; k++) {
        if (str_equals(doc, i, key, klen))
            return i + 1;
        i = llmux_json_skip(doc, i + 1);
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
