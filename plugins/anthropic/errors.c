/* Anthropic error bodies -> client-facing status and emit_error. */
#include "anth.h"

#include <string.h>

static int eq(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

int anth_error_status(const char *type, size_t n, int http_status)
{
    if (type) {
        if (eq(type, n, "overloaded_error")) return 502;
        if (eq(type, n, "rate_limit_error")) return 429;
        if (eq(type, n, "invalid_request_error")) return 400;
        if (eq(type, n, "request_too_large")) return 413;
        if (eq(type, n, "authentication_error") || eq(type, n, "permission_error")) return 502;
        if (eq(type, n, "not_found_error")) return 502;
        if (eq(type, n, "api_error")) return 502;
    }
    if (http_status == 429) return 429;
    if (http_status == 400 || http_status == 413) return http_status;
    return 502;
}

/* body: an Anthropic error document {"type":"error","error":{type,message}}
 * or anything else (then only the HTTP status is used). */
int anth_emit_error_json(llmux_call *c, const llmux_host *h, int http_status,
                         const char *body, size_t n, uint32_t retry_ms)
{
    llmux_json doc = {0};
    llmux_buf msg = {0};
    const char *type = NULL;
    size_t tlen = 0;
    int status;
    if (n && h->json_parse(body, n, &doc) == 0) {
        int err = llmux_jget(h, &doc, 0, "error");
        int t = llmux_jget(h, &doc, err, "type");
        int m = llmux_jget(h, &doc, err, "message");
        if (llmux_jis(&doc, t, LLMUX_JSON_STRING)) type = llmux_jraw(&doc, t, &tlen);
        if (llmux_jis(&doc, t, LLMUX_JSON_STRING)) {
            h->buf_append_str(&msg, "Anthropic ");
            h->buf_append(&msg, type, tlen);
        } else {
            h->buf_printf(&msg, "Anthropic error (HTTP %d)", http_status);
        }
        if (llmux_jis(&doc, m, LLMUX_JSON_STRING)) {
            size_t ml;
            const char *ms = llmux_jraw(&doc, m, &ml);
            h->buf_append_str(&msg, ": ");
            h->buf_append(&msg, ms, ml);
        }
    } else if (http_status > 0) {
        h->buf_printf(&msg, "Anthropic error (HTTP %d)", http_status);
    } else {
        h->buf_append_str(&msg, "Anthropic error");
    }
    status = anth_error_status(type, tlen, http_status);
    int rc = h->buf_append(&msg, "", 1); /* NUL */
    h->emit_error(c, status, rc == 0 ? msg.data : "Anthropic error", body, n, retry_ms);
    if (doc.tok) h->json_release(&doc);
    h->buf_free(&msg);
    return LLMUX_EUPSTREAM;
}
