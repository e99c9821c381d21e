/* Anthropic SSE stream -> canonical events. */
#include "anth.h"

#include <string.h>

typedef struct {
    llmux_call *c;
    const llmux_host *h;
    anth_state *st;
    const llmux_json *d;
} ev;

static void read_usage(ev *e, int u)
{
    const llmux_host *h = e->h;
    int64_t v;
    int i;
    if ((i = llmux_jget(h, e->d, u, "input_tokens")) >= 0 && h->json_int(e->d, i, &v) == 0) e->st->in_tok = v;
    if ((i = llmux_jget(h, e->d, u, "output_tokens")) >= 0 && h->json_int(e->d, i, &v) == 0) e->st->out_tok = v;
    if ((i = llmux_jget(h, e->d, u, "cache_read_input_tokens")) >= 0 && h->json_int(e->d, i, &v) == 0)
        e->st->cache_read = v;
    if ((i = llmux_jget(h, e->d, u, "cache_creation_input_tokens")) >= 0 && h->json_int(e->d, i, &v) == 0)
        e->st->cache_write = v;
}

static anth_block *block_at(ev *e, int idx_tok, int create)
{
    anth_state *st = e->st;
    int64_t idx;
    if (idx_tok < 0 || e->h->json_int(e->d, idx_tok, &idx) != 0 || idx < 0 || idx >= ANTH_MAX_BLOCKS)
        return NULL;
    if (idx >= st->nblocks) {
        if (!create) return NULL;
        anth_block *nb = e->h->realloc(st->blocks, (size_t)(idx + 1) * sizeof *nb);
        if (!nb) return NULL;
        for (int k = st->nblocks; k <= idx; k++) nb[k].kind = 'o', nb[k].tool = -1;
        st->blocks = nb;
        st->nblocks = (int)idx + 1;
    }
    return &st->blocks[idx];
}

static int append_str_tok(ev *e, llmux_buf *b, int t)
{
    size_t n;
    if (!llmux_jis(e->d, t, LLMUX_JSON_STRING)) return 0;
    const char *s = llmux_jraw(e->d, t, &n);
    return e->h->buf_append(b, s, n);
}

static int emit_detail(ev *e, const char *head, llmux_buf *a, const char *mid, llmux_buf *b)
{
    llmux_buf j = {0};
    const llmux_host *h = e->h;
    int rc = h->buf_append_str(&j, head);
    if (!rc && a->len) rc = h->buf_append(&j, a->data, a->len);
    if (!rc && mid) rc = h->buf_append_str(&j, mid);
    if (!rc && mid && b->len) rc = h->buf_append(&j, b->data, b->len);
    if (!rc)
        rc = h->buf_printf(&j, "\",\"format\":\"anthropic-claude-v1\",\"index\":%d}", e->st->ndetails++);
    if (!rc) rc = h->emit_reasoning_detail(e->c, 0, j.data, j.len);
    h->buf_free(&j);
    return rc;
}

static int block_start(ev *e)
{
    const llmux_host *h = e->h;
    const llmux_json *d = e->d;
    anth_block *b = block_at(e, llmux_jget(h, d, 0, "index"), 1);
    int cb = llmux_jget(h, d, 0, "content_block");
    int type = llmux_jget(h, d, cb, "type");
    if (!b) return LLMUX_EPROTO;
    if (llmux_jis_str(h, d, type, "text")) {
        b->kind = 't';
        size_t n;
        int t = llmux_jget(h, d, cb, "text");
        if (llmux_jis(d, t, LLMUX_JSON_STRING) && d->tok[t].end > d->tok[t].start) {
            const char *s = llmux_jraw(d, t, &n);
            return h->emit_delta(e->c, 0, LLMUX_DELTA_CONTENT, s, n);
        }
        return 0;
    }
    if (llmux_jis_str(h, d, type, "tool_use")) {
        int id = llmux_jget(h, d, cb, "id"), name = llmux_jget(h, d, cb, "name");
        if (!llmux_jis(d, id, LLMUX_JSON_STRING) || !llmux_jis(d, name, LLMUX_JSON_STRING)) return LLMUX_EPROTO;
        size_t il, nl;
        const char *is = llmux_jraw(d, id, &il), *ns = llmux_jraw(d, name, &nl);
        b->kind = 'u';
        b->tool = e->st->ntools++;
        return h->emit_tool_call(e->c, 0, b->tool, is, il, ns, nl, "", 0);
    }
    if (llmux_jis_str(h, d, type, "thinking")) {
        b->kind = 'k';
        e->st->thinking.len = 0;
        e->st->signature.len = 0;
        int t = llmux_jget(h, d, cb, "thinking");
        if (llmux_jis(d, t, LLMUX_JSON_STRING) && d->tok[t].end > d->tok[t].start) {
            size_t n;
            const char *s = llmux_jraw(d, t, &n);
            int rc = h->emit_delta(e->c, 0, LLMUX_DELTA_REASONING, s, n);
            if (rc) return rc;
            if (append_str_tok(e, &e->st->thinking, t)) return LLMUX_ENOMEM;
        }
        if (append_str_tok(e, &e->st->signature, llmux_jget(h, d, cb, "signature"))) return LLMUX_ENOMEM;
        return 0;
    }
    if (llmux_jis_str(h, d, type, "redacted_thinking")) {
        llmux_buf data = {0};
        b->kind = 'o';
        if (append_str_tok(e, &data, llmux_jget(h, d, cb, "data"))) return LLMUX_ENOMEM;
        int rc = emit_detail(e, "{\"type\":\"reasoning.encrypted\",\"data\":\"", &data, NULL, NULL);
        h->buf_free(&data);
        return rc;
    }
    b->kind = 'o'; /* server tools etc.: not representable in chat completions */
    return 0;
}

static int block_delta(ev *e)
{
    const llmux_host *h = e->h;
    const llmux_json *d = e->d;
    anth_block *b = block_at(e, llmux_jget(h, d, 0, "index"), 0);
    int delta = llmux_jget(h, d, 0, "delta");
    int type = llmux_jget(h, d, delta, "type");
    size_t n;
    const char *s;
    if (!b) return LLMUX_EPROTO;
    if (llmux_jis_str(h, d, type, "text_delta")) {
        int t = llmux_jget(h, d, delta, "text");
        if (!llmux_jis(d, t, LLMUX_JSON_STRING)) return LLMUX_EPROTO;
        s = llmux_jraw(d, t, &n);
        return n ? h->emit_delta(e->c, 0, LLMUX_DELTA_CONTENT, s, n) : 0;
    }
    if (llmux_jis_str(h, d, type, "input_json_delta")) {
        int t = llmux_jget(h, d, delta, "partial_json");
        if (!llmux_jis(d, t, LLMUX_JSON_STRING) || b->kind != 'u') return LLMUX_EPROTO;
        s = llmux_jraw(d, t, &n);
        return n ? h->emit_tool_call(e->c, 0, b->tool, NULL, 0, NULL, 0, s, n) : 0;
    }
    if (llmux_jis_str(h, d, type, "thinking_delta")) {
        int t = llmux_jget(h, d, delta, "thinking");
        if (!llmux_jis(d, t, LLMUX_JSON_STRING)) return LLMUX_EPROTO;
        s = llmux_jraw(d, t, &n);
        if (!n) return 0;
        if (h->buf_append(&e->st->thinking, s, n)) return LLMUX_ENOMEM;
        return h->emit_delta(e->c, 0, LLMUX_DELTA_REASONING, s, n);
    }
    if (llmux_jis_str(h, d, type, "signature_delta")) {
        if (append_str_tok(e, &e->st->signature, llmux_jget(h, d, delta, "signature"))) return LLMUX_ENOMEM;
        return 0;
    }
    return 0; /* citations_delta and future delta types */
}

static int block_stop(ev *e)
{
    anth_block *b = block_at(e, llmux_jget(e->h, e->d, 0, "index"), 0);
    if (!b) return LLMUX_EPROTO;
    if (b->kind == 'k') {
        anth_state *st = e->st;
        int rc = 0;
        if (st->thinking.len || st->signature.len)
            rc = emit_detail(e, "{\"type\":\"reasoning.text\",\"text\":\"", &st->thinking,
                             "\",\"signature\":\"", &st->signature);
        st->thinking.len = st->signature.len = 0;
        return rc;
    }
    return 0;
}

static llmux_finish map_stop(const llmux_host *h, const llmux_json *d, int t)
{
    if (h->json_eq(d, t, "end_turn") || h->json_eq(d, t, "stop_sequence") || h->json_eq(d, t, "pause_turn"))
        return LLMUX_FINISH_STOP;
    if (h->json_eq(d, t, "max_tokens") || h->json_eq(d, t, "model_context_window_exceeded"))
        return LLMUX_FINISH_LENGTH;
    if (h->json_eq(d, t, "tool_use")) return LLMUX_FINISH_TOOL_CALLS;
    if (h->json_eq(d, t, "refusal")) return LLMUX_FINISH_CONTENT_FILTER;
    return LLMUX_FINISH_STOP;
}

static int emit_usage(ev *e)
{
    anth_state *st = e->st;
    llmux_usage u;
    int64_t cr = st->cache_read > 0 ? st->cache_read : 0, cw = st->cache_write > 0 ? st->cache_write : 0;
    u.prompt_tokens = st->in_tok >= 0 ? st->in_tok + cr + cw : -1;
    u.completion_tokens = st->out_tok;
    u.reasoning_tokens = -1; /* Anthropic does not report thinking tokens separately */
    u.cached_tokens = st->cache_read;
    u.cache_write_tokens = st->cache_write;
    return e->h->emit_usage(e->c, &u);
}

static int on_event(void *ud, const char *event, size_t event_len, const char *data, size_t data_len)
{
    llmux_call *c = ud;
    anth_state *st = c->state;
    const llmux_host *h = ((const anth_ctx *)c->plugin_ctx)->h;
    llmux_json doc = {0};
    int rc = 0;
    (void)event;
    (void)event_len;
    if (st->errored || st->stopped) return 0;
    if (h->json_parse(data, data_len, &doc) != 0) {
        if (data_len == 0) return 0;
        h->emit_error(c, 502, "Anthropic sent an unparseable stream event", data, data_len, 0);
        st->errored = 1;
        return LLMUX_EPROTO;
    }
    ev e = {c, h, st, &doc};
    int type = llmux_jget(h, &doc, 0, "type");
    if (llmux_jis_str(h, &doc, type, "content_block_delta")) {
        rc = block_delta(&e);
    } else if (llmux_jis_str(h, &doc, type, "content_block_start")) {
        rc = block_start(&e);
    } else if (llmux_jis_str(h, &doc, type, "content_block_stop")) {
        rc = block_stop(&e);
    } else if (llmux_jis_str(h, &doc, type, "message_start")) {
        int msg = llmux_jget(h, &doc, 0, "message");
        int id = llmux_jget(h, &doc, msg, "id");
        if (llmux_jis(&doc, id, LLMUX_JSON_STRING)) {
            size_t n;
            const char *s = llmux_jraw(&doc, id, &n);
            rc = h->set_upstream_id(c, s, n);
        }
        read_usage(&e, llmux_jget(h, &doc, msg, "usage"));
    } else if (llmux_jis_str(h, &doc, type, "message_delta")) {
        int sr = llmux_jget(h, &doc, llmux_jget(h, &doc, 0, "delta"), "stop_reason");
        read_usage(&e, llmux_jget(h, &doc, 0, "usage"));
        if (llmux_jis(&doc, sr, LLMUX_JSON_STRING) && !st->finished) {
            size_t n;
            const char *s = llmux_jraw(&doc, sr, &n);
            st->finished = 1;
            rc = h->emit_finish(c, 0, map_stop(h, &doc, sr), s, n);
        }
    } else if (llmux_jis_str(h, &doc, type, "message_stop")) {
        st->stopped = 1;
        if (!st->finished) {
            st->finished = 1;
            rc = h->emit_finish(c, 0, LLMUX_FINISH_STOP, NULL, 0);
        }
        if (!rc) rc = emit_usage(&e);
    } else if (llmux_jis_str(h, &doc, type, "error")) {
        st->errored = 1;
        rc = anth_emit_error_json(c, h, 0, data, data_len, 0);
    } /* ping and unknown events are ignored */
    if (rc == LLMUX_EPROTO && !st->errored) {
        st->errored = 1;
        h->emit_error(c, 502, "Anthropic sent an unexpected stream event", data, data_len, 0);
    }
    h->json_release(&doc);
    return rc;
}

int anth_stream_feed(llmux_call *c, const char *data, size_t n)
{
    anth_state *st = c->state;
    const llmux_host *h = ((const anth_ctx *)c->plugin_ctx)->h;
    if (st->errored || st->stopped) return 0;
    if (st->http_error) {
        size_t room = ANTH_MAX_ERRBODY - st->errbody.len;
        if (n > room) n = room;
        return n ? h->buf_append(&st->errbody, data, n) : 0;
    }
    int rc = h->sse_feed(&st->sse, data, n, on_event, c);
    if (rc == LLMUX_ELIMIT && !st->errored) {
        st->errored = 1;
        h->emit_error(c, 502, "Anthropic stream event exceeds the stream buffer limit", NULL, 0, 0);
    }
    return rc;
}

int anth_stream_done(llmux_call *c, int status)
{
    anth_state *st = c->state;
    const llmux_host *h = ((const anth_ctx *)c->plugin_ctx)->h;
    if (!st || st->errored) return 0;
    if (st->http_error) {
        st->errored = 1;
        return anth_emit_error_json(c, h, st->status, st->errbody.data, st->errbody.len, st->retry_after_ms);
    }
    if (st->stopped) return 0;
    if (st->finished) { /* message_stop lost: still account what we know */
        st->stopped = 1;
        ev e = {c, h, st, NULL};
        return emit_usage(&e);
    }
    st->errored = 1;
    h->emit_error(c, 502,
                  status < 0 ? "Anthropic connection failed before the answer completed"
                             : "Anthropic stream ended before message_stop",
                  NULL, 0, 0);
    return LLMUX_EUPSTREAM;
}

void anth_state_free(const llmux_host *h, anth_state *st)
{
    if (!st) return;
    h->sse_free(&st->sse);
    h->buf_free(&st->errbody);
    h->buf_free(&st->thinking);
    h->buf_free(&st->signature);
    h->free(st->blocks);
    h->free(st);
}
