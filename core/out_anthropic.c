/* Output writer for the Anthropic Messages dialect (POST /v1/messages): the
 * Message object, the SSE event sequence (message_start, content blocks,
 * message_delta, message_stop, ping, error) and Anthropic's error shape. */
#include "buf.h"
#include "exchange.h"
#include "json.h"
#include "messages_in.h"
#include <string.h>

enum { K_NONE, K_TEXT, K_THINKING, K_TOOL, K_REDACTED };

const char *llmux_anthropic_error_type(int status)
{
    switch (status) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 402: return "billing_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 503: case 529: return "overloaded_error";
    default: return status >= 400 && status < 500 ? "invalid_request_error" : "api_error";
    }
}

static const char *model_of(const llmux_exchange *ex) { return ex->ep ? ex->ep->model->id : ex->model; }

static const char *stop_reason(const llmux_exchange *ex)
{
    const char *native = ex->res.native_finish;
    switch (ex->res.finish) {
    case LLMUX_FINISH_LENGTH: return "max_tokens";
    case LLMUX_FINISH_TOOL_CALLS: return "tool_use";
    case LLMUX_FINISH_CONTENT_FILTER: return "refusal";
    default:
        if (strcmp(native, "stop_sequence") == 0 || strcmp(native, "pause_turn") == 0) return native;
        return "end_turn";
    }
}

static long long nz(int64_t v) { return v > 0 ? (long long)v : 0; }

/* Anthropic counts input_tokens without the cached and cache-written ones. */
static void usage_fields(llmux_buf *b, const llmux_exchange *ex, int with_output)
{
    const llmux_usage *u = &ex->res.usage;
    long long prompt = nz(u->prompt_tokens), cached = nz(u->cached_tokens), written = nz(u->cache_write_tokens);
    long long input = prompt - cached - written;
    llmux_buf_printf(b, "\"input_tokens\":%lld,\"cache_creation_input_tokens\":%lld,\"cache_read_input_tokens\":%lld",
                     input > 0 ? input : 0, written, cached);
    if (with_output) llmux_buf_printf(b, ",\"output_tokens\":%lld", nz(u->completion_tokens));
}

static void message_id(llmux_buf *b, const llmux_exchange *ex)
{
    const char *g = ex->gen_id;
    if (strncmp(g, "gen-", 4) == 0) g += 4;
    llmux_buf_printf(b, "\"msg_%s\"", g);
}

/* ---- non-stream ------------------------------------------------------------ */

/* `args` (JSON-escaped text of a JSON object) -> the object, or {}. */
static void append_tool_input(llmux_buf *b, const llmux_buf *args)
{
    llmux_buf quoted = {0}, raw = {0};
    llmux_json q = {0}, obj = {0};
    int ok = 0;
    if (args->len) {
        llmux_buf_append_char(&quoted, '"');
        llmux_buf_append(&quoted, args->data, args->len);
        llmux_buf_append_char(&quoted, '"');
        if (quoted.data && llmux_json_parse(quoted.data, quoted.len, NULL, &q, NULL, NULL) == 0) {
            if (q.tok[0].type == LLMUX_JSON_STRING && llmux_json_unescape(&q, 0, &raw) == 0 && raw.len &&
                llmux_json_parse(raw.data, raw.len, NULL, &obj, NULL, NULL) == 0) {
                ok = obj.tok[0].type == LLMUX_JSON_OBJECT;
                llmux_json_release(&obj);
            }
            llmux_json_release(&q);
        }
    }
    if (ok) llmux_buf_append(b, raw.data, raw.len);
    else llmux_buf_append_str(b, "{}");
    llmux_buf_free(&quoted);
    llmux_buf_free(&raw);
}

static void str_or_empty(llmux_buf *b, const llmux_json *d, int i)
{
    if (i >= 0 && d->tok[i].type == LLMUX_JSON_STRING) llmux_json_append_raw(b, d, i);
    else llmux_buf_append_str(b, "\"\"");
}

static int is_str_eq(const llmux_json *d, int i, const char *s)
{
    return i >= 0 && d->tok[i].type == LLMUX_JSON_STRING && llmux_json_eq(d, i, s);
}

/* Thinking blocks: one per reasoning_details text item (with its signature);
 * without any, one block from the streamed reasoning text. */
static int append_thinking(llmux_buf *b, const llmux_exchange *ex)
{
    const llmux_result *r = &ex->res;
    int nblocks = 0, ntext = 0;
    llmux_buf arr = {0}, last_sig = {0};
    llmux_json d = {0};
    int parsed = 0;
    if (r->reasoning_details.len) {
        llmux_buf_append_char(&arr, '[');
        llmux_buf_append(&arr, r->reasoning_details.data, r->reasoning_details.len);
        llmux_buf_append_char(&arr, ']');
        parsed = arr.data && llmux_json_parse(arr.data, arr.len, NULL, &d, NULL, NULL) == 0;
    }
    if (parsed) {
        for (int k = 0, n = d.tok[0].size; k < n; k++) {
            int it = llmux_json_at(&d, 0, k);
            if (it < 0 || d.tok[it].type != LLMUX_JSON_OBJECT) continue;
            int ty = llmux_json_get(&d, it, "type");
            int text = llmux_json_get(&d, it, "text"), sig = llmux_json_get(&d, it, "signature");
            if (is_str_eq(&d, ty, "reasoning.text")) {
                if (sig >= 0 && d.tok[sig].type == LLMUX_JSON_STRING) {
                    llmux_buf_reset(&last_sig);
                    llmux_json_append_raw(&last_sig, &d, sig);
                }
                if (text < 0 || d.tok[text].type != LLMUX_JSON_STRING || d.tok[text].end == d.tok[text].start) continue;
                if (nblocks++) llmux_buf_append_char(b, ',');
                llmux_buf_append_str(b, "{\"type\":\"thinking\",\"thinking\":");
                llmux_json_append_raw(b, &d, text);
                llmux_buf_append_str(b, ",\"signature\":");
                str_or_empty(b, &d, sig);
                llmux_buf_append_char(b, '}');
                ntext++;
            } else if (is_str_eq(&d, ty, "reasoning.encrypted")) {
                if (nblocks++) llmux_buf_append_char(b, ',');
                llmux_buf_append_str(b, "{\"type\":\"redacted_thinking\",\"data\":");
                str_or_empty(b, &d, llmux_json_get(&d, it, "data"));
                llmux_buf_append_char(b, '}');
            }
        }
        llmux_json_release(&d);
    }
    if (!ntext && r->reasoning.len) {
        if (nblocks++) llmux_buf_append_char(b, ',');
        llmux_buf_append_str(b, "{\"type\":\"thinking\",\"thinking\":\"");
        llmux_buf_append(b, r->reasoning.data, r->reasoning.len);
        llmux_buf_append_str(b, "\",\"signature\":");
        if (last_sig.len) llmux_buf_append(b, last_sig.data, last_sig.len);
        else llmux_buf_append_str(b, "\"\"");
        llmux_buf_append_char(b, '}');
    }
    llmux_buf_free(&arr);
    llmux_buf_free(&last_sig);
    return nblocks;
}

void llmux_anthropic_message_json(llmux_exchange *ex, llmux_buf *b)
{
    const llmux_result *r = &ex->res;
    llmux_buf_append_str(b, "{\"id\":");
    message_id(b, ex);
    llmux_buf_append_str(b, ",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    llmux_buf_append_jstr(b, model_of(ex));
    llmux_buf_append_str(b, ",\"content\":[");
    int n = append_thinking(b, ex);
    const llmux_buf *text = r->content.len ? &r->content : &r->refusal;
    if (text->len || (!n && !r->n_tools)) {
        if (n++) llmux_buf_append_char(b, ',');
        llmux_buf_append_str(b, "{\"type\":\"text\",\"text\":\"");
        if (text->len) llmux_buf_append(b, text->data, text->len);
        llmux_buf_append_str(b, "\"}");
    }
    for (int i = 0; i < r->n_tools; i++) {
        const llmux_tool_acc *t = &r->tools[i];
        if (n++) llmux_buf_append_char(b, ',');
        llmux_buf_append_str(b, "{\"type\":\"tool_use\",\"id\":\"");
        if (t->id.len) llmux_buf_append(b, t->id.data, t->id.len);
        else llmux_buf_printf(b, "toolu_%s_%d", ex->gen_id, i);
        llmux_buf_append_str(b, "\",\"name\":\"");
        if (t->name.len) llmux_buf_append(b, t->name.data, t->name.len);
        llmux_buf_append_str(b, "\",\"input\":");
        append_tool_input(b, &t->args);
        llmux_buf_append_char(b, '}');
    }
    llmux_buf_append_str(b, "],\"stop_reason\":");
    llmux_buf_append_jstr(b, stop_reason(ex));
    llmux_buf_append_str(b, ",\"stop_sequence\":null,\"stop_details\":null,\"usage\":{");
    usage_fields(b, ex, 1);
    llmux_buf_append_str(b, "}}");
}

/* ---- stream ------------------------------------------------------------------ */

static void event_open(llmux_buf *b, const char *name)
{
    llmux_buf_printf(b, "event: %s\ndata: {\"type\":\"%s\"", name, name);
}

static void ensure_started(llmux_exchange *ex)
{
    if (!ex->headers_sent) {
        ex->headers_sent = 1;
        ex->final_status = 200;
        llmux_conn_stream_begin(ex->conn, 200, "text/event-stream", "X-Accel-Buffering: no\r\n");
    }
    if (ex->anth.started) return;
    ex->anth.started = 1;
    llmux_buf *b = &ex->wbuf;
    event_open(b, "message_start");
    llmux_buf_append_str(b, ",\"message\":{\"id\":");
    message_id(b, ex);
    llmux_buf_append_str(b, ",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    llmux_buf_append_jstr(b, model_of(ex));
    llmux_buf_append_str(b, ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"stop_details\":null,\"usage\":{");
    usage_fields(b, ex, 0);
    llmux_buf_append_str(b, ",\"output_tokens\":0}}}\n\n");
}

static void close_block(llmux_exchange *ex)
{
    if (!ex->anth.open) return;
    event_open(&ex->wbuf, "content_block_stop");
    llmux_buf_printf(&ex->wbuf, ",\"index\":%d}\n\n", ex->anth.next_index - 1);
    ex->anth.open = 0;
    ex->anth.kind = K_NONE;
}

/* Starts block `kind`; the caller appends the content_block object's fields
 * after the returned position, then calls open_end. */
static int open_begin(llmux_exchange *ex, int kind, const char *type)
{
    close_block(ex);
    int idx = ex->anth.next_index++;
    ex->anth.open = 1;
    ex->anth.kind = kind;
    event_open(&ex->wbuf, "content_block_start");
    llmux_buf_printf(&ex->wbuf, ",\"index\":%d,\"content_block\":{\"type\":\"%s\"", idx, type);
    return idx;
}

static void open_end(llmux_exchange *ex) { llmux_buf_append_str(&ex->wbuf, "}}\n\n"); }

static void block_delta(llmux_exchange *ex, int idx, const char *dtype, const char *field, const char *s, size_t n)
{
    llmux_buf *b = &ex->wbuf;
    event_open(b, "content_block_delta");
    llmux_buf_printf(b, ",\"index\":%d,\"delta\":{\"type\":\"%s\",\"%s\":\"", idx, dtype, field);
    llmux_buf_append(b, s, n);
    llmux_buf_append_str(b, "\"}}\n\n");
}

static void open_thinking(llmux_exchange *ex)
{
    open_begin(ex, K_THINKING, "thinking");
    llmux_buf_append_str(&ex->wbuf, ",\"thinking\":\"\",\"signature\":\"\"");
    open_end(ex);
}

static int o_delta(llmux_exchange *ex, llmux_delta_kind k, const char *s, size_t n)
{
    int kind = k == LLMUX_DELTA_REASONING ? K_THINKING : K_TEXT;
    ensure_started(ex);
    if (!ex->anth.open || ex->anth.kind != kind) {
        if (kind == K_THINKING) {
            open_thinking(ex);
        } else {
            open_begin(ex, K_TEXT, "text");
            llmux_buf_append_str(&ex->wbuf, ",\"text\":\"\"");
            open_end(ex);
        }
    }
    if (kind == K_THINKING) block_delta(ex, ex->anth.next_index - 1, "thinking_delta", "thinking", s, n);
    else block_delta(ex, ex->anth.next_index - 1, "text_delta", "text", s, n);
    return 0;
}

static int o_tool_call(llmux_exchange *ex, int index, int first, const char *id, size_t idl, const char *name,
                       size_t nl, const char *args, size_t al)
{
    (void)first;
    if (index < 0 || index >= (int)(sizeof ex->anth.tool_block / sizeof ex->anth.tool_block[0])) return 0;
    ensure_started(ex);
    int blk = ex->anth.tool_block[index] - 1;
    if (blk < 0) {
        blk = open_begin(ex, K_TOOL, "tool_use");
        ex->anth.tool_block[index] = blk + 1;
        llmux_buf *b = &ex->wbuf;
        llmux_buf_append_str(b, ",\"id\":\"");
        if (id && idl) llmux_buf_append(b, id, idl);
        else llmux_buf_printf(b, "toolu_%s_%d", ex->gen_id, index);
        llmux_buf_append_str(b, "\",\"name\":\"");
        if (name && nl) llmux_buf_append(b, name, nl);
        llmux_buf_append_str(b, "\",\"input\":{}");
        open_end(ex);
    }
    /* A fragment for a call whose block was already closed (interleaved
     * parallel calls) still goes to that call's block index. */
    if (args && al) block_delta(ex, blk, "input_json_delta", "partial_json", args, al);
    return 0;
}

static int o_reasoning_detail(llmux_exchange *ex, const char *json, size_t n)
{
    llmux_json d;
    if (llmux_json_parse(json, n, NULL, &d, NULL, NULL) < 0) return 0;
    if (d.tok[0].type != LLMUX_JSON_OBJECT) { llmux_json_release(&d); return 0; }
    int ty = llmux_json_get(&d, 0, "type");
    ensure_started(ex);
    if (is_str_eq(&d, ty, "reasoning.text")) {
        int text = llmux_json_get(&d, 0, "text"), sig = llmux_json_get(&d, 0, "signature");
        int has_sig = sig >= 0 && d.tok[sig].type == LLMUX_JSON_STRING && d.tok[sig].end > d.tok[sig].start;
        int has_text = text >= 0 && d.tok[text].type == LLMUX_JSON_STRING && d.tok[text].end > d.tok[text].start;
        /* With a thinking block open the text was already streamed as
         * reasoning deltas: only the signature is new. */
        if (!(ex->anth.open && ex->anth.kind == K_THINKING) && (has_text || has_sig)) {
            open_thinking(ex);
            if (has_text) {
                size_t tl;
                const char *ts = llmux_json_raw(&d, text, &tl);
                block_delta(ex, ex->anth.next_index - 1, "thinking_delta", "thinking", ts, tl);
            }
        }
        if (has_sig && ex->anth.open) {
            size_t sl;
            const char *ss = llmux_json_raw(&d, sig, &sl);
            block_delta(ex, ex->anth.next_index - 1, "signature_delta", "signature", ss, sl);
            close_block(ex); /* a signature ends a thinking block */
        }
    } else if (is_str_eq(&d, ty, "reasoning.encrypted")) {
        int data = llmux_json_get(&d, 0, "data");
        open_begin(ex, K_REDACTED, "redacted_thinking");
        llmux_buf_append_str(&ex->wbuf, ",\"data\":");
        str_or_empty(&ex->wbuf, &d, data);
        open_end(ex);
        close_block(ex);
    }
    llmux_json_release(&d);
    return 0;
}

static int o_finish(llmux_exchange *ex)
{
    ensure_started(ex);
    close_block(ex);
    return 0;
}

static void stream_close(llmux_exchange *ex)
{
    llmux_exchange_flush(ex);
    llmux_conn_stream_end(ex->conn);
}

static void o_complete(llmux_exchange *ex)
{
    if (ex->stream) {
        ensure_started(ex);
        close_block(ex);
        llmux_buf *b = &ex->wbuf;
        event_open(b, "message_delta");
        llmux_buf_append_str(b, ",\"delta\":{\"stop_reason\":");
        llmux_buf_append_jstr(b, stop_reason(ex));
        llmux_buf_append_str(b, ",\"stop_sequence\":null,\"stop_details\":null},\"usage\":{");
        usage_fields(b, ex, 1);
        llmux_buf_append_str(b, "}}\n\n");
        event_open(b, "message_stop");
        llmux_buf_append_str(b, "}\n\n");
        stream_close(ex);
        return;
    }
    llmux_buf b = {0};
    llmux_anthropic_message_json(ex, &b);
    ex->final_status = 200;
    llmux_conn_respond(ex->conn, 200, "application/json", NULL, b.data, b.len);
    llmux_buf_free(&b);
}

static void error_object(llmux_buf *b, int status, const char *message)
{
    llmux_buf_append_str(b, "\"error\":{\"type\":");
    llmux_buf_append_jstr(b, llmux_anthropic_error_type(status));
    llmux_buf_append_str(b, ",\"message\":");
    llmux_buf_append_jstr(b, message ? message : "error");
    llmux_buf_append_char(b, '}');
}

static void o_fail(llmux_exchange *ex, int status, const char *message, const char *metadata)
{
    (void)metadata; /* Anthropic's error object has no place for it; the access log keeps it */
    if (!ex->headers_sent) {
        char extra[64] = "";
        if (status == 429 || status == 503) {
            unsigned secs = ex->retry_after_ms ? (ex->retry_after_ms + 999) / 1000 : 1;
            snprintf(extra, sizeof extra, "Retry-After: %u\r\n", secs);
        }
        llmux_buf b = {0};
        llmux_buf_append_str(&b, "{\"type\":\"error\",");
        error_object(&b, status, message);
        llmux_buf_printf(&b, ",\"request_id\":\"%s\"}", ex->gen_id);
        ex->final_status = status;
        llmux_conn_respond(ex->conn, status, "application/json", extra[0] ? extra : NULL, b.data, b.len);
        llmux_buf_free(&b);
        return;
    }
    /* The stream already began: the status stays 200, the error is an event. */
    event_open(&ex->wbuf, "error");
    llmux_buf_append_char(&ex->wbuf, ',');
    error_object(&ex->wbuf, status, message);
    llmux_buf_append_str(&ex->wbuf, "}\n\n");
    stream_close(ex);
}

static void o_waiting(llmux_exchange *ex)
{
    ensure_started(ex);
    event_open(&ex->wbuf, "ping");
    llmux_buf_append_str(&ex->wbuf, "}\n\n");
    llmux_exchange_flush(ex);
}

const llmux_output_ops llmux_out_anthropic = {o_delta, o_tool_call, o_reasoning_detail, o_finish,
                                              o_complete, o_fail, o_waiting};
