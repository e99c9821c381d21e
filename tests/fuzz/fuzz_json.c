/* libFuzzer target for core/json.c (and the escaper in core/buf.c).
 * Checks invariants, not just "no crash": a document that parses has tokens
 * inside the text, skip() stays in bounds, every string unescapes, and the
 * escaped form of any byte string re-parses as a valid JSON string. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    llmux_json_limits lim = {4096, 32};
    llmux_json d;
    const char *err = NULL;
    size_t off = 0;
    int rc = llmux_json_parse(text, size, &lim, &d, &err, &off);
    if (rc == 0) {
        llmux_buf b = {0};
        for (int i = 0; i < d.ntok; i++) {
            const llmux_jtok *t = &d.tok[i];
            if (t->start < 0 || t->end < t->start || (size_t)t->end > size)
                abort();
            int next = llmux_json_skip(&d, i);
            if (next <= i || next > d.ntok)
                abort();
            if (t->type == LLMUX_JSON_STRING) {
                llmux_buf_reset(&b);
                if (llmux_json_unescape(&d, i, &b) != 0)
                    abort();
            }
            int64_t iv;
            double dv;
            (void)llmux_json_int(&d, i, &iv);
            (void)llmux_json_double(&d, i, &dv);
            if (t->type == LLMUX_JSON_OBJECT)
                (void)llmux_json_get(&d, i, "model");
        }
        if (llmux_json_skip(&d, 0) != d.ntok)
            abort();
        llmux_buf_free(&b);
        llmux_json_release(&d);
    } else if (rc == LLMUX_EPROTO && (!err || off > size)) {
        abort();
    }

    /* escape(any bytes) must always be valid JSON string content */
    llmux_buf e = {0};
    if (llmux_buf_append_char(&e, '"') || llmux_buf_append_escaped(&e, text, size) ||
        llmux_buf_append_char(&e, '"'))
        abort();
    llmux_json_limits one = {1, 1};
    if (llmux_json_parse(e.data, e.len, &one, &d, NULL, NULL) != 0)
        abort();
    llmux_json_release(&d);
    llmux_buf_free(&e);
    return 0;
}
