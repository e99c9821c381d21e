/* Output writer for the OpenAI/OpenRouter dialect: chat.completion and
 * chat.completion.chunk (and the legacy text_completion shapes). */
#include "buf.h"
#include "exchange.h"
#include <string.h>

static int legacy(const llmux_exchange *ex) { return ex->api == 1; }

static void ensure_headers(llmux_exchange *ex)
{
    if (ex->headers_sent) return;
    ex->headers_sent = 1;
    ex->final_status = 200;
    llmux_conn_stream_begin(ex->conn, 200, "text/event-stream", "X-Accel-Buffering: no\r\n");
}

/* data: {"id":..,"object":..,"created":..,"model":..,"provider":.., -- the
 * same for every chunk of an attempt, so it is formatted once and copied. */
static void chunk_head(llmux_exchange *ex)
{
    llmux_buf *p = &ex->chunk_prefix;
    if (!p->len || ex->chunk_prefix_ep != ex->ep) {
        llmux_buf_reset(p);
        llmux_buf_printf(p, "data: {\"id\":\"%s\",\"object\":\"%s\",\"created\":%lld,\"model\":", ex->gen_id,
                         legacy(ex) ? "text_completion" : "chat.completion.chunk", (long long)ex->created);
        llmux_buf_append_jstr(p, ex->ep ? ex->ep->model->id : ex->model);
        llmux_buf_append_str(p, ",\"provider\":");
        llmux_buf_append_jstr(p, ex->ep ? ex->ep->provider->name : "");
        llmux_buf_append_char(p, ',');
        ex->chunk_prefix_ep = ex->ep;
    }
    llmux_buf_append(&ex->wbuf, p->data, p->len);
}

static void choice_open(llmux_exchange *ex)
{
    chunk_head(ex);
    llmux_buf_append_str(&ex->wbuf, legacy(ex) ? "\"choices\":[{\"index\":0," : "\"choices\":[{\"index\":0,\"delta\":{");
    if (!legacy(ex) && !ex->role_sent) {
        llmux_buf_append_str(&ex->wbuf, "\"role\":\"assistant\",");
        ex->role_sent = 1;
    }
}

static void choice_close(llmux_exchange *ex, const char *finish, const char *native)
{
    llmux_buf *b = &ex->wbuf;
    if (!legacy(ex)) llmux_buf_append_char(b, '}');
    llmux_buf_append_str(b, ",\"finish_reason\":");
    if (finish) llmux_buf_append_jstr(b, finish); else llmux_buf_append_str(b, "null");
    llmux_buf_append_str(b, ",\"native_finish_reason\":");
    if (native && *native) llmux_buf_append_jstr(b, native); else llmux_buf_append_str(b, "null");
    llmux_buf_append_str(b, ",\"logprobs\":null}]}\n\n");
}

static int o_delta(llmux_exchange *ex, llmux_delta_kind k, const char *s, size_t n)
{
    if (legacy(ex) && k != LLMUX_DELTA_CONTENT) return 0; /* text_completion has only text */
    ensure_headers(ex);
    choice_open(ex);
    llmux_buf *b = &ex->wbuf;
    if (legacy(ex)) {
        llmux_buf_append_str(b, "\"text\":\"");
    } else {
        llmux_buf_append_str(b, k == LLMUX_DELTA_REASONING ? "\"reasoning\":\"" : k == LLMUX_DELTA_REFUSAL ? "\"refusal\":\"" : "\"content\":\"");
    }
    llmux_buf_append(b, s, n);
    llmux_buf_append_char(b, '"');
    choice_close(ex, NULL, NULL);
    return 0;
}

static int o_tool_call(llmux_exchange *ex, int index, int first, const char *id, size_t idl, const char *name,
                       size_t nl, const char *args, size_t al)
{
    if (legacy(ex)) return 0;
    ensure_headers(ex);
    choice_open(ex);
    llmux_buf *b = &ex->wbuf;
    llmux_buf_append_str(b, "\"tool_calls\":[{\"index\":");
    llmux_buf_append_i64(b, index);
    llmux_buf_append_char(b, ',');
    if (first || (id && idl)) {
        llmux_buf_append_str(b, "\"id\":\"");
        if (id) llmux_buf_append(b, id, idl);
        llmux_buf_append_str(b, "\",\"type\":\"function\",");
    }
    llmux_buf_append_str(b, "\"function\":{");
    if (name && nl) {
        llmux_buf_append_str(b, "\"name\":\"");
        llmux_buf_append(b, name, nl);
        llmux_buf_append_str(b, "\",");
    }
    llmux_buf_append_str(b, "\"arguments\":\"");
    if (args) llmux_buf_append(b, args, al);
    llmux_buf_append_str(b, "\"}}]");
    choice_close(ex, NULL, NULL);
    return 0;
}

static int o_reasoning_detail(llmux_exchange *ex, const char *json, size_t n)
{
    if (legacy(ex)) return 0;
    ensure_headers(ex);
    choice_open(ex);
    llmux_buf_append_str(&ex->wbuf, "\"reasoning_details\":[");
    llmux_buf_append(&ex->wbuf, json, n);
    llmux_buf_append_char(&ex->wbuf, ']');
    choice_close(ex, NULL, NULL);
    return 0;
}

static int o_finish(llmux_exchange *ex)
{
    ensure_headers(ex);
    choice_open(ex);
    if (legacy(ex)) llmux_buf_append_str(&ex->wbuf, "\"text\":\"\"");
    else if (ex->wbuf.len && ex->wbuf.data[ex->wbuf.len - 1] == ',') ex->wbuf.len--; /* role only */
    choice_close(ex, llmux_finish_name(ex->res.finish), ex->res.native_finish);
    return 0;
}

static void append_message(llmux_exchange *ex, llmux_buf *b)
{
    const llmux_result *r = &ex->res;
    if (legacy(ex)) {
        llmux_buf_append_str(b, "\"text\":\"");
        llmux_buf_append(b, r->content.data ? r->content.data : "", r->content.len);
        llmux_buf_append_char(b, '"');
        return;
    }
    llmux_buf_append_str(b, "\"message\":{\"role\":\"assistant\",\"content\":");
    if (r->content.len || !r->n_tools) {
        llmux_buf_append_char(b, '"');
        llmux_buf_append(b, r->content.data ? r->content.data : "", r->content.len);
        llmux_buf_append_char(b, '"');
    } else llmux_buf_append_str(b, "null");
    llmux_buf_append_str(b, ",\"refusal\":");
    if (r->refusal.len) {
        llmux_buf_append_char(b, '"');
        llmux_buf_append(b, r->refusal.data, r->refusal.len);
        llmux_buf_append_char(b, '"');
    } else llmux_buf_append_str(b, "null");
    llmux_buf_append_str(b, ",\"reasoning\":");
    if (r->reasoning.len) {
        llmux_buf_append_char(b, '"');
        llmux_buf_append(b, r->reasoning.data, r->reasoning.len);
        llmux_buf_append_char(b, '"');
    } else llmux_buf_append_str(b, "null");
    llmux_buf_append_str(b, ",\"reasoning_details\":[");
    if (r->reasoning_details.len) llmux_buf_append(b, r->reasoning_details.data, r->reasoning_details.len);
    llmux_buf_append_char(b, ']');
    if (r->n_tools) {
        llmux_buf_append_str(b, ",\"tool_calls\":[");
        for (int i = 0; i < r->n_tools; i++) {
            const llmux_tool_acc *t = &r->tools[i];
            if (i) llmux_buf_append_char(b, ',');
            llmux_buf_printf(b, "{\"index\":%d,\"id\":\"", i);
            llmux_buf_append(b, t->id.data ? t->id.data : "", t->id.len);
            llmux_buf_append_str(b, "\",\"type\":\"function\",\"function\":{\"name\":\"");
            llmux_buf_append(b, t->name.data ? t->name.data : "", t->name.len);
            llmux_buf_append_str(b, "\",\"arguments\":\"");
            llmux_buf_append(b, t->args.data ? t->args.data : "", t->args.len);
            llmux_buf_append_str(b, "\"}}");
        }
        llmux_buf_append_char(b, ']');
    }
    llmux_buf_append_char(b, '}');
}

static void o_complete(llmux_exchange *ex)
{
    if (ex->stream) {
        ensure_headers(ex);
        chunk_head(ex);
        llmux_buf_append_str(&ex->wbuf, "\"choices\":[],\"usage\":");
        llmux_usage_json(&ex->wbuf, ex);
        llmux_buf_append_str(&ex->wbuf, "}\n\ndata: [DONE]\n\n");
        llmux_exchange_flush(ex);
        llmux_conn_stream_end(ex->conn);
        return;
    }
    llmux_buf b = {0};
    llmux_buf_append_str(&b, "{\"id\":\"");
    llmux_buf_append_str(&b, ex->gen_id);
    llmux_buf_append_str(&b, legacy(ex) ? "\",\"object\":\"text_completion\",\"created\":" : "\",\"object\":\"chat.completion\",\"created\":");
    llmux_buf_append_i64(&b, ex->created);
    llmux_buf_append_str(&b, ",\"model\":");
    llmux_buf_append_jstr(&b, ex->ep->model->id);
    llmux_buf_append_str(&b, ",\"provider\":");
    llmux_buf_append_jstr(&b, ex->ep->provider->name);
    llmux_buf_append_str(&b, ",\"system_fingerprint\":null,\"choices\":[{\"index\":0,\"logprobs\":null,\"finish_reason\":");
    llmux_buf_append_jstr(&b, llmux_finish_name(ex->res.finish) ? llmux_finish_name(ex->res.finish) : "stop");
    llmux_buf_append_str(&b, ",\"native_finish_reason\":");
    if (ex->res.native_finish[0]) llmux_buf_append_jstr(&b, ex->res.native_finish);
    else llmux_buf_append_str(&b, "null");
    llmux_buf_append_char(&b, ',');
    append_message(ex, &b);
    llmux_buf_append_str(&b, "}],\"usage\":");
    llmux_usage_json(&b, ex);
    llmux_buf_append_char(&b, '}');
    ex->final_status = 200;
    llmux_conn_respond(ex->conn, 200, "application/json", NULL, b.data, b.len);
    llmux_buf_free(&b);
}

static void o_fail(llmux_exchange *ex, int status, const char *message, const char *metadata)
{
    if (!ex->headers_sent) {
        char extra[64] = "";
        if (status == 429 || status == 503) {
            unsigned secs = ex->retry_after_ms ? (ex->retry_after_ms + 999) / 1000 : 1;
            snprintf(extra, sizeof extra, "Retry-After: %u\r\n", secs);
        }
        ex->final_status = status;
        llmux_conn_respond_error(ex->conn, status, message, metadata, extra[0] ? extra : NULL);
        return;
    }
    /* The stream already began: HTTP status stays 200, the error travels in a chunk. */
    chunk_head(ex);
    llmux_buf *b = &ex->wbuf;
    llmux_buf_printf(b, "\"error\":{\"code\":%d,\"message\":", status);
    llmux_buf_append_jstr(b, message);
    llmux_buf_append_str(b, ",\"metadata\":");
    llmux_buf_append_str(b, metadata ? metadata : "{}");
    llmux_buf_append_str(b, legacy(ex) ? "},\"choices\":[{\"index\":0,\"text\":\"\",\"finish_reason\":\"error\"}]}\n\n"
                                       : "},\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\"},\"finish_reason\":\"error\",\"native_finish_reason\":null}]}\n\n");
    if (ex->res.has_usage) {
        chunk_head(ex);
        llmux_buf_append_str(b, "\"choices\":[],\"usage\":");
        llmux_usage_json(b, ex);
        llmux_buf_append_str(b, "}\n\n");
    }
    llmux_buf_append_str(b, "data: [DONE]\n\n");
    llmux_exchange_flush(ex);
    llmux_conn_stream_end(ex->conn);
}

static void o_waiting(llmux_exchange *ex)
{
    ensure_headers(ex);
    llmux_conn_stream_write(ex->conn, ": OPENROUTER PROCESSING\n\n", 25);
}

const llmux_output_ops llmux_out_openai = {o_delta, o_tool_call, o_reasoning_detail, o_finish,
                                           o_complete, o_fail, o_waiting};
