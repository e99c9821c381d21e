/* Growable byte buffers (the SDK's llmux_buf) and JSON-escaping helpers. */
#ifndef LLMUX_BUF_H
#define LLMUX_BUF_H
#include "../sdk/llmux_plugin.h"
#include <stdarg.h>

/* Each returns 0 or LLMUX_ENOMEM. Buffers start zeroed ({0}). */
int llmux_buf_reserve(llmux_buf *b, size_t extra);
int llmux_buf_append(llmux_buf *b, const void *data, size_t n);
int llmux_buf_append_str(llmux_buf *b, const char *s);
int llmux_buf_append_char(llmux_buf *b, char c);
int llmux_buf_printf(llmux_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int llmux_buf_vprintf(llmux_buf *b, const char *fmt, va_list ap);
/* Raw UTF-8 -> JSON string content (no quotes); control chars as \u00XX,
 * invalid UTF-8 bytes replaced by U+FFFD. */
int llmux_buf_append_escaped(llmux_buf *b, const char *s, size_t n);
/* Appends "s" as a quoted JSON string (escaped). */
int llmux_buf_append_jstr(llmux_buf *b, const char *s);
/* Appends a double in shortest round-trip-ish form ("%.17g" trimmed), or 0. */
int llmux_buf_append_double(llmux_buf *b, double v);
/* Length (2..4) of the well-formed UTF-8 sequence at s (s[0] >= 0x80), or 0
 * if it is invalid: overlong, surrogate, above U+10FFFF or truncated. */
size_t llmux_utf8_valid_len(const unsigned char *s, size_t n);
/* Integers without going through printf (hot path). */
int llmux_buf_append_i64(llmux_buf *b, int64_t v);
/* Writes v in base 10 or 16 (lower case), zero-padded to min_digits (<= 64),
 * NUL-terminated, into out (>= max(21, min_digits + 1) bytes); returns the length. */
size_t llmux_fmt_uint(char *out, uint64_t v, unsigned base, int min_digits);
void llmux_buf_reset(llmux_buf *b); /* len = 0, keeps memory */
void llmux_buf_free(llmux_buf *b);
/* Takes ownership of the data (NUL-terminated), leaves b empty. */
char *llmux_buf_steal(llmux_buf *b);
#endif
