/* Google error documents -> client status, retry delay and emit_error. */
#include "gem.h"

#include <stdlib.h>
#include <string.h>

/* details[] RetryInfo.retryDelay ("2s", "1.5s") in milliseconds, or 0. */
static uint32_t retry_delay(const llmux_host *h, const llmux_json *d, int details)
{
    if (!llmux_jis(d, details, LLMUX_JSON_ARRAY)) return 0;
    int it = details + 1;
    for (int k = 0; k < d->tok[details].size; k++, it = h->json_skip(d, it)) {
        int t = llmux_jget(h, d, it, "@type");
        int rd = llmux_jget(h, d, it, "retryDelay");
        size_t tn, n;
        if (!llmux_jis(d, t, LLMUX_JSON_STRING) || !llmux_jis(d, rd, LLMUX_JSON_STRING)) continue;
        const char *ts = llmux_jraw(d, t, &tn);
        if (tn < 9 || memcmp(ts + tn - 9, "RetryInfo", 9) != 0) continue;
        const char *s = llmux_jraw(d, rd, &n);
        char tmp[32];
        if (n == 0 || n >= sizeof tmp) continue;
        memcpy(tmp, s, n);
        tmp[n] = 0;
        char *end;
        double secs = strtod(tmp, &end);
        if (end == tmp || *end != 's' || secs < 0 || secs > 86400) continue;
        return (uint32_t)(secs * 1000.0 + 0.5);
    }
    return 0;
}

static int client_status(const llmux_host *h, const llmux_json *d, int status_tok, int64_t code)
{
    if (code == 429 || llmux_jis_str(h, d, status_tok, "RESOURCE_EXHAUSTED")) return 429;
    if (code == 400 || llmux_jis_str(h, d, status_tok, "INVALID_ARGUMENT") ||
        llmux_jis_str(h, d, status_tok, "FAILED_PRECONDITION") || llmux_jis_str(h, d, status_tok, "OUT_OF_RANGE"))
        return 400;
    if (code == 413) return 413;
    if (code == 503 || llmux_jis_str(h, d, status_tok, "UNAVAILABLE")) return 503;
    return 502;
}

int gem_emit_error_json(llmux_call *c, const llmux_host *h, int http_status,
                        const char *body, size_t n, uint32_t retry_ms)
{
    llmux_json doc = {0};
    llmux_buf msg = {0};
    int status = http_status == 429 ? 429 : http_status == 503 ? 503 : 502;
    if (http_status == 400) status = 400;
    if (n && h->json_parse(body, n, &doc) == 0) {
        int root = 0;
        if (doc.tok[0].type == LLMUX_JSON_ARRAY && doc.tok[0].size > 0) root = 1; /* [ {error} ] */
        int err = llmux_jget(h, &doc, root, "error");
        int code = llmux_jget(h, &doc, err, "code");
        int st = llmux_jget(h, &doc, err, "status");
        int m = llmux_jget(h, &doc, err, "message");
        int64_t cv = http_status;
        if (code >= 0) h->json_int(&doc, code, &cv);
        if (err >= 0) status = client_status(h, &doc, st, cv);
        uint32_t rd = retry_delay(h, &doc, llmux_jget(h, &doc, err, "details"));
        if (rd) retry_ms = rd;
        h->buf_append_str(&msg, "Gemini");
        if (llmux_jis(&doc, st, LLMUX_JSON_STRING)) {
            size_t sl;
            const char *ss = llmux_jraw(&doc, st, &sl);
            h->buf_append_str(&msg, " ");
            h->buf_append(&msg, ss, sl);
        }
        if (llmux_jis(&doc, m, LLMUX_JSON_STRING)) {
            size_t ml;
            const char *ms = llmux_jraw(&doc, m, &ml);
            h->buf_append_str(&msg, ": ");
            h->buf_append(&msg, ms, ml);
        } else {
            h->buf_printf(&msg, " error (HTTP %d)", http_status);
        }
    } else {
        h->buf_printf(&msg, "Gemini error (HTTP %d)", http_status);
    }
    int rc = h->buf_append(&msg, "", 1);
    h->emit_error(c, status, rc == 0 ? msg.data : "Gemini error", body, n, retry_ms);
    if (doc.tok) h->json_release(&doc);
    h->buf_free(&msg);
    return LLMUX_EUPSTREAM;
}
