/* Growable byte buffers and JSON string escaping. */
#include "buf.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Invariant after any successful append: cap > len and data[len] == 0. */
int llmux_buf_reserve(llmux_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - 1 - b->len)
        return LLMUX_ENOMEM;
    size_t need = b->len + extra + 1;
    if (b->data && need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p)
        return LLMUX_ENOMEM;
    b->data = p;
    b->cap = cap;
    b->data[b->len] = '\0';
    return 0;
}

int llmux_buf_append(llmux_buf *b, const void *data, size_t n)
{
    if (llmux_buf_reserve(b, n))
        return LLMUX_ENOMEM;
    if (n)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int llmux_buf_append_str(llmux_buf *b, const char *s)
{
    return llmux_buf_append(b, s, strlen(s));
}

int llmux_buf_append_char(llmux_buf *b, char c)
{
    return llmux_buf_append(b, &c, 1);
}

int llmux_buf_vprintf(llmux_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    if (llmux_buf_reserve(b, 0)) {
        va_end(ap2);
        return LLMUX_ENOMEM;
    }
    size_t avail = b->cap - b->len;
    int n = vsnprintf(b->data + b->len, avail, fmt, ap);
    if (n < 0) {
        b->data[b->len] = '\0';
        va_end(ap2);
        return LLMUX_ENOMEM;
    }
    if ((size_t)n >= avail) {
        if (llmux_buf_reserve(b, (size_t)n)) {
            b->data[b->len] = '\0';
            va_end(ap2);
            return LLMUX_ENOMEM;
        }
        vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap2);
    }
    va_end(ap2);
    b->len += (size_t)n;
    return 0;
}

int llmux_buf_printf(llmux_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = llmux_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

size_t llmux_utf8_valid_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c >= 0xC2 && c <= 0xDF) {
        return (n >= 2 && (s[1] & 0xC0) == 0x80) ? 2 : 0;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
            return 0;
        if (c == 0xE0 && s[1] < 0xA0) /* overlong */
            return 0;
        if (c == 0xED && s[1] >= 0xA0) /* surrogate */
            return 0;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && s[1] < 0x90) /* overlong */
            return 0;
        if (c == 0xF4 && s[1] >= 0x90) /* > U+10FFFF */
            return 0;
        return 4;
    }
    return 0;
}

/* Number of bytes a maximal invalid prefix covers: a lead byte plus the
 * continuation bytes that could have belonged to it (one U+FFFD each). */
static size_t utf8_invalid_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t want = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 1;
    size_t i = 1;
    /* Only swallow continuations that are plausible for this lead byte. */
    while (i < want && i < n && (s[i] & 0xC0) == 0x80) {
        if (i == 1 && ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] >= 0xA0) ||
                       (c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] >= 0x90)))
            break;
        i++;
    }
    return i;
}

int llmux_buf_append_escaped(llmux_buf *b, const char *str, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    /* Worst typical case is small growth; reserve the input size up front. */
    if (llmux_buf_reserve(b, n))
        return LLMUX_ENOMEM;
    while (i < n) {
        size_t run = i;
        while (run < n && s[run] >= 0x20 && s[run] < 0x80 && s[run] != '"' && s[run] != '\\')
            run++;
        if (run > i) {
            if (llmux_buf_append(b, s + i, run - i))
                return LLMUX_ENOMEM;
            i = run;
            if (i == n)
                break;
        }
        unsigned c = s[i];
        char esc[6];
        size_t elen = 2;
        esc[0] = '\\';
        if (c < 0x80) {
            switch (c) {
            case '"': esc[1] = '"'; break;
            case '\\': esc[1] = '\\'; break;
            case '\n': esc[1] = 'n'; break;
            case '\r': esc[1] = 'r'; break;
            case '\t': esc[1] = 't'; break;
            case '\b': esc[1] = 'b'; break;
            case '\f': esc[1] = 'f'; break;
            default:
                esc[1] = 'u';
                esc[2] = '0';
                esc[3] = '0';
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                elen = 6;
            }
            if (llmux_buf_append(b, esc, elen))
                return LLMUX_ENOMEM;
            i++;
            continue;
        }
        size_t v = llmux_utf8_valid_len(s + i, n - i);
        if (v) {
            if (llmux_buf_append(b, s + i, v))
                return LLMUX_ENOMEM;
            i += v;
        } else {
            if (llmux_buf_append(b, "\xEF\xBF\xBD", 3))
                return LLMUX_ENOMEM;
            i += utf8_invalid_len(s + i, n - i);
        }
    }
    return 0;
}

int llmux_buf_append_jstr(llmux_buf *b, const char *s)
{
    if (llmux_buf_append_char(b, '"') || llmux_buf_append_escaped(b, s, strlen(s)) ||
        llmux_buf_append_char(b, '"'))
        return LLMUX_ENOMEM;
    return 0;
}

int llmux_buf_append_double(llmux_buf *b, double v)
{
    if (!isfinite(v))
        return llmux_buf_append_char(b, '0');
    char tmp[40];
    /* Shortest of 15/16/17 significant digits that reads back exactly. */
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (prec == 17 || strtod(tmp, NULL) == v)
            break;
    }
    /* A comma decimal separator would break JSON; the core never sets a
     * numeric locale, but be safe. */
    for (char *p = tmp; *p; p++)
        if (*p == ',')
            *p = '.';
    return llmux_buf_append_str(b, tmp);
}

void llmux_buf_reset(llmux_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void llmux_buf_free(llmux_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

char *llmux_buf_steal(llmux_buf *b)
{
    if (!b->data && llmux_buf_reserve(b, 0))
        return NULL;
    char *p = b->data;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

size_t llmux_fmt_uint(char *out, uint64_t v, unsigned base, int min_digits)
{
    static const char digits[] = "0123456789abcdef";
    char tmp[64];
    int n = 0;
    do {
        tmp[n++] = digits[v % base];
        v /= base;
    } while (v);
    while (n < min_digits && n < (int)sizeof tmp) tmp[n++] = '0';
    for (int i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    out[n] = '\0';
    return (size_t)n;
}

int llmux_buf_append_i64(llmux_buf *b, int64_t v)
{
    char s[24];
    size_t n = 0;
    uint64_t u = (uint64_t)v;
    if (v < 0) {
        s[n++] = '-';
        u = 0 - u; /* well defined for INT64_MIN too */
    }
    n += llmux_fmt_uint(s + n, u, 10, 1);
    return llmux_buf_append(b, s, n);
}
