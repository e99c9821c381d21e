/* Gemini SSE stream (one GenerateContentResponse per event) -> canonical events. */
#include "gem.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    llmux_call *c;
    const llmux_host *h;
    gem_state *st;
    const llmux_json *d;
} ev;

static void read_usage(ev *e, int u)
{
    const llmux_host *h = e->h;
    int i;
    if (!llmux_jis(e->d, u, LLMUX_JSON_OBJECT)) return;
    e->st->have_usage = 1;
    if ((i = llmux_jget(h, e->d, u, "promptTokenCount")) >= 0) h->json_int(e->d, i, &e->st->prompt);
    if ((i = llmux_jget(h, e->d, u, "candidatesTokenCount")) >= 0) h->json_int(e->d, i, &e->st->cand);
    if ((i = llmux_jget(h, e->d, u, "thoughtsTokenCount")) >= 0) h->json_int(e->d, i, &e->st->thoughts);
    if ((i = llmux_jget(h, e->d, u, "cachedContentTokenCount")) >= 0) h->json_int(e->d, i, &e->st->cached);
}

static int detail(ev *e, int sig, const char *id, size_t id_len)
{
    const llmux_host *h = e->h;
    llmux_buf j = {0};
    size_t n;
    const char *s = llmux_jraw(e->d, sig, &n);
    int rc = h->buf_append_str(&j, "{\"type\":\"reasoning.encrypted\",\"data\":\"");
    if (!rc) rc = h->buf_append(&j, s, n);
    if (!rc && id) {
        rc = h->buf_append_str(&j, "\",\"id\":\"");
        if (!rc) rc = h->buf_append(&j, id, id_len);
    }
    if (!rc) rc = h->buf_printf(&j, "\",\"format\":\"google-gemini-v1\",\"index\":%d}", e->st->ndetails++);
    if (!rc) rc = h->emit_reasoning_detail(e->c, 0, j.data, j.len);
    h->buf_free(&j);
    return rc;
}

static int function_call(ev *e, int fc, int sig)
{
    const llmux_host *h = e->h;
    const llmux_json *d = e->d;
    gem_state *st = e->st;
    int name = llmux_jget(h, d, fc, "name");
    int args = llmux_jget(h, d, fc, "args");
    char id[160];
    llmux_buf a = {0};
    size_t nl;
    if (!llmux_jis(d, name, LLMUX_JSON_STRING)) return LLMUX_EPROTO;
    const char *ns = llmux_jraw(d, name, &nl);
    int idx = st->ntools++;
    /* Gemini has no call ids: derive a stable one from the response id. */
    int il = st->resp_id.len && st->resp_id.len < 100
                 ? snprintf(id, sizeof id, "call_%.*s_%d", (int)st->resp_id.len, st->resp_id.data, idx)
                 : snprintf(id, sizeof id, "call_%d", idx);
    int rc = 0;
    if (args >= 0)
        rc = h->buf_append_escaped(&a, d->text + d->tok[args].start - (d->tok[args].type == LLMUX_JSON_STRING),
                                   (size_t)(d->tok[args].end - d->tok[args].start) +
                                       2 * (d->tok[args].type == LLMUX_JSON_STRING));
    else
        rc = h->buf_append_str(&a, "{}");
    if (!rc) rc = h->emit_tool_call(e->c, 0, idx, id, (size_t)il, ns, nl, a.data, a.len);
    h->buf_free(&a);
    if (!rc && sig >= 0) rc = detail(e, sig, id, (size_t)il);
    return rc;
}

static int parts(ev *e, int content)
{
    const llmux_host *h = e->h;
    const llmux_json *d = e->d;
    int ps = llmux_jget(h, d, content, "parts");
    if (!llmux_jis(d, ps, LLMUX_JSON_ARRAY)) return 0;
    int it = ps + 1;
    for (int k = 0; k < d->tok[ps].size; k++, it = h->json_skip(d, it)) {
        int text = llmux_jget(h, d, it, "text");
        int fc = llmux_jget(h, d, it, "functionCall");
        int sig = llmux_jget(h, d, it, "thoughtSignature");
        int rc = 0;
        if (!llmux_jis(d, sig, LLMUX_JSON_STRING)) sig = -1;
        if (llmux_jis(d, fc, LLMUX_JSON_OBJECT)) {
            rc = function_call(e, fc, sig);
        } else {
            if (llmux_jis(d, text, LLMUX_JSON_STRING) && d->tok[text].end > d->tok[text].start) {
                size_t n;
                const char *s = llmux_jraw(d, text, &n);
                int thought = h->json_bool(d, llmux_jget(h, d, it, "thought")) == 1;
                rc = h->emit_delta(e->c, 0, thought ? LLMUX_DELTA_REASONING : LLMUX_DELTA_CONTENT, s, n);
            }
            if (!rc && sig >= 0) rc = detail(e, sig, NULL, 0);
        }
        if (rc) return rc;
    }
    return 0;
}

static int on_event(void *ud, const char *event, size_t event_len, const char *data, size_t data_len)
{
    llmux_call *c = ud;
    gem_state *st = c->state;
    const llmux_host *h = ((const gem_ctx *)c->plugin_ctx)->h;
    llmux_json doc = {0};
    int rc = 0;
    (void)event;
    (void)event_len;
    if (st->errored || data_len == 0) return 0;
    st->events++;
    if (h->json_parse(data, data_len, &doc) != 0) {
        st->errored = 1;
        h->emit_error(c, 502, "Gemini sent an unparseable stream event", data, data_len, 0);
        return LLMUX_EPROTO;
    }
    ev e = {c, h, st, &doc};
    if (llmux_jget(h, &doc, 0, "error") >= 0) {
        st->errored = 1;
        rc = gem_emit_error_json(c, h, st->status, data, data_len, st->retry_after_ms);
        goto out;
    }
    int rid = llmux_jget(h, &doc, 0, "responseId");
    if (llmux_jis(&doc, rid, LLMUX_JSON_STRING) && st->resp_id.len == 0) {
        size_t n;
        const char *s = llmux_jraw(&doc, rid, &n);
        if (n && (rc = h->buf_append(&st->resp_id, s, n)) == 0) rc = h->set_upstream_id(c, s, n);
        if (rc) goto out;
    }
    int pf = llmux_jget(h, &doc, 0, "promptFeedback");
    int br = llmux_jget(h, &doc, pf, "blockReason");
    if (llmux_jis(&doc, br, LLMUX_JSON_STRING)) {
        size_t n;
        const char *s = llmux_jraw(&doc, br, &n);
        st->blocked = 1;
        st->finish.len = 0;
        if ((rc = h->buf_append(&st->finish, s, n))) goto out;
    }
    int cands = llmux_jget(h, &doc, 0, "candidates");
    if (llmux_jis(&doc, cands, LLMUX_JSON_ARRAY) && doc.tok[cands].size > 0) {
        int cand = cands + 1;
        if ((rc = parts(&e, llmux_jget(h, &doc, cand, "content")))) goto out;
        int fr = llmux_jget(h, &doc, cand, "finishReason");
        if (llmux_jis(&doc, fr, LLMUX_JSON_STRING) && !st->blocked) {
            size_t n;
            const char *s = llmux_jraw(&doc, fr, &n);
            st->finish.len = 0;
            if ((rc = h->buf_append(&st->finish, s, n))) goto out;
        }
    }
    read_usage(&e, llmux_jget(h, &doc, 0, "usageMetadata"));
out:
    if (rc == LLMUX_EPROTO && !st->errored) {
        st->errored = 1;
        h->emit_error(c, 502, "Gemini sent an unexpected stream event", data, data_len, 0);
    }
    h->json_release(&doc);
    return rc;
}

int gem_stream_feed(llmux_call *c, const char *data, size_t n)
{
    gem_state *st = c->state;
    const llmux_host *h = ((const gem_ctx *)c->plugin_ctx)->h;
    if (st->errored) return 0;
    /* Keep the unframed bytes until an event shows this really is SSE: errors
     * come back as a plain JSON body, sometimes labelled text/event-stream. */
    if (st->http_error || st->events == 0) {
        size_t room = GEM_MAX_RAW - st->raw.len;
        if (h->buf_append(&st->raw, data, n < room ? n : room)) return LLMUX_ENOMEM;
        if (st->http_error) return 0;
    }
    int rc = h->sse_feed(&st->sse, data, n, on_event, c);
    if (rc == LLMUX_ELIMIT && !st->errored) {
        st->errored = 1;
        h->emit_error(c, 502, "Gemini stream event exceeds the stream buffer limit", NULL, 0, 0);
    }
    return rc;
}

static int is(const llmux_buf *b, const char *s)
{
    return b->len == strlen(s) && memcmp(b->data, s, b->len) == 0;
}

int gem_stream_done(llmux_call *c, int status)
{
    gem_state *st = c->state;
    const llmux_host *h = ((const gem_ctx *)c->plugin_ctx)->h;
    int rc = 0;
    if (!st || st->errored || st->done) return 0;
    st->done = 1;
    if (st->http_error || (st->events == 0 && st->raw.len)) {
        st->errored = 1;
        return gem_emit_error_json(c, h, st->http_error ? st->status : 502, st->raw.data, st->raw.len,
                                   st->retry_after_ms);
    }
    if (!st->finish.len) {
        st->errored = 1;
        h->emit_error(c, 502,
                      status < 0 ? "Gemini connection failed before the answer completed"
                                 : "Gemini stream ended without a finishReason",
                      NULL, 0, 0);
        return LLMUX_EUPSTREAM;
    }
    llmux_finish fin = LLMUX_FINISH_STOP;
    const llmux_buf *f = &st->finish;
    if (st->blocked) {
        fin = LLMUX_FINISH_CONTENT_FILTER;
    } else if (is(f, "STOP")) {
        fin = st->ntools ? LLMUX_FINISH_TOOL_CALLS : LLMUX_FINISH_STOP;
    } else if (is(f, "MAX_TOKENS")) {
        fin = LLMUX_FINISH_LENGTH;
    } else if (is(f, "SAFETY") || is(f, "RECITATION") || is(f, "BLOCKLIST") || is(f, "PROHIBITED_CONTENT") ||
               is(f, "SPII") || is(f, "IMAGE_SAFETY") || is(f, "IMAGE_PROHIBITED_CONTENT")) {
        fin = LLMUX_FINISH_CONTENT_FILTER;
    } else if (is(f, "MALFORMED_FUNCTION_CALL") || is(f, "UNEXPECTED_TOOL_CALL")) {
        fin = LLMUX_FINISH_ERROR;
    }
    if (fin == LLMUX_FINISH_CONTENT_FILTER) {
        llmux_buf m = {0};
        rc = h->buf_printf(&m, "%s was blocked by Gemini's content filters (%.*s).",
                           st->blocked ? "The prompt" : "The response", (int)f->len, f->data);
        if (!rc) rc = h->emit_delta(c, 0, LLMUX_DELTA_REFUSAL, m.data, m.len);
        h->buf_free(&m);
    }
    if (!rc) rc = h->emit_finish(c, 0, fin, f->data, f->len);
    if (!rc && st->have_usage) {
        llmux_usage u;
        int64_t th = st->thoughts > 0 ? st->thoughts : 0;
        u.prompt_tokens = st->prompt;
        u.completion_tokens = (st->cand > 0 ? st->cand : 0) + th;
        u.reasoning_tokens = st->thoughts >= 0 ? st->thoughts : (st->cand >= 0 ? 0 : -1);
        u.cached_tokens = st->cached >= 0 ? st->cached : 0;
        u.cache_write_tokens = -1;
        rc = h->emit_usage(c, &u);
    }
    return rc;
}

void gem_state_free(const llmux_host *h, gem_state *st)
{
    if (!st) return;
    h->sse_free(&st->sse);
    h->buf_free(&st->raw);
    h->buf_free(&st->resp_id);
    h->buf_free(&st->finish);
    h->free(st);
}
