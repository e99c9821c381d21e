#include "exchange.h"
#include "accounts.h"
#include "access_log.h"
#include "buf.h"
#include "json.h"
#include "log.h"
#include "upstream.h"
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static void attempt_start(llmux_exchange *ex);
static void attempt_end(llmux_exchange *ex, int transport_failed, const char *transport_msg);
static void exchange_finish(llmux_exchange *ex);

/* ---- small helpers ------------------------------------------------------ */

void llmux_result_reset(llmux_result *r)
{
    llmux_buf_reset(&r->content);
    llmux_buf_reset(&r->reasoning);
    llmux_buf_reset(&r->refusal);
    llmux_buf_reset(&r->reasoning_details);
    for (int i = 0; i < r->n_tools; i++) {
        llmux_buf_free(&r->tools[i].id);
        llmux_buf_free(&r->tools[i].name);
        llmux_buf_free(&r->tools[i].args);
    }
    free(r->tools);
    r->tools = NULL;
    r->n_tools = 0;
    r->finish = LLMUX_FINISH_NONE;
    r->native_finish[0] = '\0';
    r->has_usage = 0;
    memset(&r->usage, 0, sizeof r->usage);
    r->upstream_id[0] = '\0';
    r->any_output = 0;
}

const char *llmux_finish_name(llmux_finish f)
{
    switch (f) {
    case LLMUX_FINISH_STOP: return "stop";
    case LLMUX_FINISH_LENGTH: return "length";
    case LLMUX_FINISH_TOOL_CALLS: return "tool_calls";
    case LLMUX_FINISH_CONTENT_FILTER: return "content_filter";
    case LLMUX_FINISH_ERROR: return "error";
    default: return NULL;
    }
}

static void result_free(llmux_result *r)
{
    llmux_result_reset(r);
    llmux_buf_free(&r->content);
    llmux_buf_free(&r->reasoning);
    llmux_buf_free(&r->refusal);
    llmux_buf_free(&r->reasoning_details);
}

static int64_t nz(int64_t v) { return v > 0 ? v : 0; }

double llmux_cost(const llmux_endpoint_cfg *ep, const llmux_usage *u)
{
    const llmux_pricing *p = &ep->pricing;
    double cached = (double)nz(u->cached_tokens), written = (double)nz(u->cache_write_tokens);
    double prompt = (double)nz(u->prompt_tokens);
    /* Without cache prices configured, cached tokens cost what prompt tokens cost. */
    double read_price = p->cache_read > 0 ? p->cache_read : p->prompt;
    double write_price = p->cache_write > 0 ? p->cache_write : p->prompt;
    double uncached = prompt - cached - written;
    if (uncached < 0) uncached = 0;
    double reasoning = (double)nz(u->reasoning_tokens), completion = (double)nz(u->completion_tokens);
    double reasoning_price = p->reasoning >= 0 ? p->reasoning : p->completion;
    if (reasoning > completion) reasoning = completion;
    double c = uncached * p->prompt + cached * read_price + written * write_price +
               (completion - reasoning) * p->completion + reasoning * reasoning_price + p->request;
    return isfinite(c) && c > 0 ? c : 0;
}

void llmux_usage_json(llmux_buf *b, const llmux_exchange *ex)
{
    const llmux_usage *u = &ex->res.usage;
    llmux_buf_append_str(b, "{\"prompt_tokens\":");
    llmux_buf_append_i64(b, nz(u->prompt_tokens));
    llmux_buf_append_str(b, ",\"completion_tokens\":");
    llmux_buf_append_i64(b, nz(u->completion_tokens));
    llmux_buf_append_str(b, ",\"total_tokens\":");
    llmux_buf_append_i64(b, nz(u->prompt_tokens) + nz(u->completion_tokens));
    llmux_buf_append_str(b, ",\"cost\":");
    llmux_buf_append_double(b, llmux_accounts_charge(ex)); /* BYOK: the fee */
    llmux_buf_append_str(b, ex->req.api_key_override ? ",\"is_byok\":true" : ",\"is_byok\":false");
    llmux_buf_append_str(b, ",\"prompt_tokens_details\":{\"cached_tokens\":");
    llmux_buf_append_i64(b, nz(u->cached_tokens));
    llmux_buf_append_str(b, ",\"cache_write_tokens\":");
    llmux_buf_append_i64(b, nz(u->cache_write_tokens));
    llmux_buf_append_str(b, "},\"completion_tokens_details\":{\"reasoning_tokens\":");
    llmux_buf_append_i64(b, nz(u->reasoning_tokens));
    llmux_buf_append_str(b, "}}");
}

static void on_handle_closed(uv_handle_t *h)
{
    llmux_exchange *ex = h->data;
    if (--ex->open_handles > 0) return;
    result_free(&ex->res);
    llmux_buf_free(&ex->err_msg);
    llmux_buf_free(&ex->err_raw);
    llmux_buf_free(&ex->wbuf);
    llmux_buf_free(&ex->chunk_prefix);
    llmux_json_release(&ex->doc);
    free(ex->body);
    if (ex->rt) llmux_runtime_unref(ex->rt);
    free(ex);
}

void llmux_exchange_flush(llmux_exchange *ex)
{
    if (!ex->wbuf.len) return;
    if (!ex->aborted) llmux_conn_stream_write(ex->conn, ex->wbuf.data, ex->wbuf.len);
    llmux_buf_reset(&ex->wbuf);
}

/* ---- lifecycle ---------------------------------------------------------- */

static void release_call(llmux_exchange *ex)
{
    if (ex->xfer) { llmux_xfer_cancel(ex->xfer); ex->xfer = NULL; }
    if (ex->call_live) {
        ex->img->d.release(&ex->call.pub);
        ex->call_live = 0;
        atomic_fetch_sub(&ex->img->inflight, 1);
    }
    llmux_outreq_free(&ex->outreq);
    memset(&ex->outreq, 0, sizeof ex->outreq);
    uv_timer_stop(&ex->timer);
}

static void exchange_finish(llmux_exchange *ex)
{
    if (ex->finished) return;
    ex->finished = 1;
    release_call(ex);
    uv_timer_stop(&ex->ka_timer);
    if (!ex->aborted) llmux_conn_detach(ex->conn);
    llmux_access_log(ex);
    llmux_accounts_finish(ex); /* the generation record, also for aborted requests */
    uv_close((uv_handle_t *)&ex->timer, on_handle_closed);
    uv_close((uv_handle_t *)&ex->ka_timer, on_handle_closed);
}

static void on_abort(llmux_handler *h)
{
    llmux_exchange *ex = (llmux_exchange *)h;
    ex->aborted = 1; /* the client is gone: cancel the upstream call, record what was produced */
    llmux_conn_detach(ex->conn);
    if (ex->ep && !ex->attempt_over) {
        llmux_stats_end(ex->slots[ex->plan[ex->attempt].candidate], 1, -1, -1, 0, 0);
        ex->attempt_over = 1;
    }
    exchange_finish(ex);
}

static void arm_chunk_timer(llmux_exchange *ex);

static void on_drain(llmux_handler *h)
{
    llmux_exchange *ex = (llmux_exchange *)h;
    if (ex->paused && ex->xfer) {
        ex->paused = 0;
        llmux_xfer_resume(ex->xfer); /* may deliver the held bytes right away */
        if (ex->xfer && !ex->paused && !ex->attempt_over) arm_chunk_timer(ex);
    }
}

/* The client read nothing for a whole between-chunks timeout while the
 * upstream was paused for it: give up on the client (the record keeps what
 * was produced) rather than hold the call open for ever. */
static void on_client_stalled(uv_timer_t *t)
{
    llmux_exchange *ex = t->data;
    LOG_WARN("%s: client stopped reading for %u ms, closing", ex->gen_id, ex->rt->cfg->timeouts.between_chunks_ms);
    llmux_conn_close(ex->conn);
}

llmux_exchange *llmux_exchange_new(llmux_conn *c, const llmux_output_ops *out, int api)
{
    llmux_exchange *ex = malloc(sizeof *ex);
    if (!ex) return NULL;
    memset(ex, 0, offsetof(llmux_exchange, cands));
    ex->handler.on_abort = on_abort;
    ex->handler.on_drain = on_drain;
    ex->conn = c;
    ex->w = llmux_conn_worker(c);
    ex->rt = ex->w->rt;
    llmux_runtime_ref(ex->rt);
    ex->out = out;
    ex->api = api;
    ex->start_ns = llmux_now_ns();
    ex->created = (int64_t)time(NULL);
    uint64_t a = llmux_worker_random(ex->w), b = llmux_worker_random(ex->w);
    /* "gen-" + 10 decimal digits of the time + "-" + 16 hex digits, without printf */
    memcpy(ex->gen_id, "gen-", 4);
    llmux_fmt_uint(ex->gen_id + 4, (uint64_t)(ex->created % 10000000000LL), 10, 10);
    ex->gen_id[14] = '-';
    llmux_fmt_uint(ex->gen_id + 15, a ^ (b << 1), 16, 16);
    uv_timer_init(&ex->w->loop, &ex->timer);
    uv_timer_init(&ex->w->loop, &ex->ka_timer);
    ex->timer.data = ex->ka_timer.data = ex;
    ex->open_handles = 2;
    llmux_conn_attach(c, &ex->handler);
    return ex;
}

void llmux_exchange_fail_early(llmux_exchange *ex, int status, const char *message, const char *metadata)
{
    ex->err_status = status;
    llmux_buf_reset(&ex->err_msg);
    llmux_buf_append_str(&ex->err_msg, message);
    ex->out->fail(ex, status, message, metadata);
    exchange_finish(ex);
}

void llmux_exchange_fail_early_headers(llmux_exchange *ex, int status, const char *message, const char *metadata,
                                       const char *extra_headers)
{
    if (!extra_headers || ex->api == 2 || ex->headers_sent) { /* Anthropic errors have their own shape */
        llmux_exchange_fail_early(ex, status, message, metadata);
        return;
    }
    ex->err_status = status;
    llmux_buf_reset(&ex->err_msg);
    llmux_buf_append_str(&ex->err_msg, message);
    ex->final_status = status;
    llmux_conn_respond_error(ex->conn, status, message, metadata, extra_headers);
    exchange_finish(ex);
}

void llmux_exchange_complete(llmux_exchange *ex)
{
    if (ex->finished) return;
    ex->out->complete(ex);
    exchange_finish(ex);
}

/* ---- events from the plugin ---------------------------------------------- */

/* The first content event of a streamed answer: from now on no failover. */
static int begin_content(llmux_exchange *ex)
{
    if (!ex->first_token_ns) ex->first_token_ns = llmux_now_ns();
    ex->res.any_output = 1;
    if (!ex->stream || ex->content_started) return 0;
    ex->content_started = 1;
    uv_timer_stop(&ex->ka_timer);
    return 0;
}

static int sink_delta(void *ud, int choice, llmux_delta_kind k, const char *s, size_t n)
{
    llmux_exchange *ex = ud;
    if (ex->attempt_over || choice != 0 || n == 0) return 0;
    begin_content(ex);
    ex->streamed_chars += n;
    llmux_buf *dst = k == LLMUX_DELTA_REASONING ? &ex->res.reasoning : k == LLMUX_DELTA_REFUSAL ? &ex->res.refusal : &ex->res.content;
    if (!ex->stream || ex->api == 2) llmux_buf_append(dst, s, n); /* assembled answers keep the text */
    else dst->len += 0;
    return ex->stream ? ex->out->delta(ex, k, s, n) : 0;
}

static int sink_tool_call(void *ud, int choice, int index, const char *id, size_t idl, const char *name, size_t nl,
                          const char *args, size_t al)
{
    llmux_exchange *ex = ud;
    if (ex->attempt_over || choice != 0 || index < 0 || index >= 64) return index < 0 || index >= 64 ? LLMUX_ELIMIT : 0;
    begin_content(ex);
    if (index >= ex->res.n_tools) {
        llmux_tool_acc *t = realloc(ex->res.tools, sizeof *t * (size_t)(index + 1));
        if (!t) return LLMUX_ENOMEM;
        memset(t + ex->res.n_tools, 0, sizeof *t * (size_t)(index + 1 - ex->res.n_tools));
        ex->res.tools = t;
        ex->res.n_tools = index + 1;
    }
    llmux_tool_acc *t = &ex->res.tools[index];
    int first = t->id.len == 0 && t->name.len == 0 && t->args.len == 0 && !(ex->tool_seen[index]);
    ex->tool_seen[index] = 1;
    if (id && idl && !t->id.len) llmux_buf_append(&t->id, id, idl);
    if (name && nl && !t->name.len) llmux_buf_append(&t->name, name, nl);
    if (args && al) llmux_buf_append(&t->args, args, al);
    return ex->stream ? ex->out->tool_call(ex, index, first, id, idl, name, nl, args, al) : 0;
}

static int sink_reasoning_detail(void *ud, int choice, const char *json, size_t n)
{
    llmux_exchange *ex = ud;
    if (ex->attempt_over || choice != 0 || n == 0) return 0;
    if (ex->res.reasoning_details.len) llmux_buf_append_char(&ex->res.reasoning_details, ',');
    llmux_buf_append(&ex->res.reasoning_details, json, n);
    if (!ex->stream) return 0;
    begin_content(ex);
    return ex->out->reasoning_detail(ex, json, n);
}

static int sink_finish(void *ud, int choice, llmux_finish reason, const char *native, size_t n)
{
    llmux_exchange *ex = ud;
    if (ex->attempt_over || choice != 0) return 0;
    ex->res.finish = reason;
    if (n >= sizeof ex->res.native_finish) n = sizeof ex->res.native_finish - 1;
    if (native) memcpy(ex->res.native_finish, native, n);
    ex->res.native_finish[native ? n : 0] = '\0';
    if (ex->stream) {
        begin_content(ex);
        return ex->out->finish(ex);
    }
    return 0;
}

static int sink_usage(void *ud, const llmux_usage *u)
{
    llmux_exchange *ex = ud;
    if (ex->attempt_over) return 0;
    ex->res.usage = *u;
    ex->res.has_usage = 1;
    return 0;
}

static int sink_upstream_id(void *ud, const char *id, size_t n)
{
    llmux_exchange *ex = ud;
    if (n >= sizeof ex->res.upstream_id) n = sizeof ex->res.upstream_id - 1;
    memcpy(ex->res.upstream_id, id, n);
    ex->res.upstream_id[n] = '\0';
    return 0;
}

static int sink_error(void *ud, int status, const char *msg, const char *raw, size_t rl, uint32_t retry)
{
    llmux_exchange *ex = ud;
    if (ex->err_status) return 0; /* keep the first error of the attempt */
    /* A provider's own 5xx (overloaded, unavailable) means "the model is down"
     * to the client: 502, as OpenRouter answers. 503 stays ours: "no provider
     * meets the routing requirements". The Retry-After still parks the endpoint. */
    ex->err_status = status >= 400 && status <= 499 ? status : 502;
    ex->retry_after_ms = retry;
    llmux_buf_reset(&ex->err_msg);
    llmux_buf_append_str(&ex->err_msg, msg ? msg : "upstream error");
    llmux_buf_reset(&ex->err_raw);
    if (raw && rl) llmux_buf_append(&ex->err_raw, raw, rl < 65536 ? rl : 65536);
    return 0;
}

static void on_tick(uv_timer_t *t);

static int sink_schedule(void *ud, uint32_t ms)
{
    llmux_exchange *ex = ud;
    if (!ex->local || ex->attempt_over) return LLMUX_EINVAL;
    ex->tick_scheduled = 1;
    uv_timer_start(&ex->timer, on_tick, ms, 0);
    return 0;
}

static const llmux_call_sink g_sink = {sink_delta, sink_tool_call, sink_reasoning_detail, sink_finish,
                                       sink_usage, sink_upstream_id, sink_error, sink_schedule};

/* ---- attempts ------------------------------------------------------------ */

static int retryable(int status)
{
    return status == 408 || status == 429 || status >= 500;
}

static void on_attempt_timeout(uv_timer_t *t)
{
    llmux_exchange *ex = t->data;
    if (ex->xfer) { llmux_xfer_cancel(ex->xfer); ex->xfer = NULL; }
    if (!ex->err_status) {
        ex->err_status = 408;
        llmux_buf_reset(&ex->err_msg);
        llmux_buf_append_str(&ex->err_msg, ex->first_token_ns || ex->res.any_output ?
                             "upstream stalled between chunks" : "upstream timed out before the first byte");
    }
    attempt_end(ex, 0, NULL);
}

static void arm_chunk_timer(llmux_exchange *ex)
{
    const llmux_timeouts *to = &ex->rt->cfg->timeouts;
    uint32_t ms = ex->res.any_output ? to->between_chunks_ms : to->first_byte_ms;
    uint32_t custom = ex->plan[ex->attempt].timeout_ms;
    if (!ex->res.any_output && custom) ms = custom;
    if (ms) uv_timer_start(&ex->timer, on_attempt_timeout, ms, 0);
}

static void xfer_headers(void *ud, int status, const llmux_kv *h, size_t n)
{
    llmux_exchange *ex = ud;
    ex->upstream_status = status;
    if (ex->img->d.on_headers) ex->img->d.on_headers(&ex->call.pub, status, h, n);
}

static size_t xfer_body(void *ud, const char *data, size_t n)
{
    llmux_exchange *ex = ud;
    if (ex->attempt_over || ex->aborted) return 0;
    if (ex->content_started && llmux_conn_backlog(ex->conn) > ex->rt->cfg->limits.stream_buffer_bytes) {
        ex->paused = 1; /* the client is slow: stop reading from the upstream */
        uv_timer_stop(&ex->timer);
        if (ex->rt->cfg->timeouts.between_chunks_ms)
            uv_timer_start(&ex->timer, on_client_stalled, ex->rt->cfg->timeouts.between_chunks_ms, 0);
        return LLMUX_XFER_PAUSE;
    }
    int rc = ex->img->d.on_data(&ex->call.pub, data, n);
    llmux_exchange_flush(ex);
    if (rc < 0 && !ex->err_status) {
        ex->err_status = 502;
        llmux_buf_reset(&ex->err_msg);
        llmux_buf_append_str(&ex->err_msg, "invalid response from upstream");
    }
    if (ex->err_status || rc < 0) return 0; /* abort the transfer; on_done decides */
    arm_chunk_timer(ex);
    return n;
}

static void xfer_done(void *ud, CURLcode res, int status, const char *errmsg)
{
    llmux_exchange *ex = ud;
    ex->xfer = NULL;
    ex->upstream_status = status;
    int transport = res != CURLE_OK && !ex->err_status;
    if (!ex->err_status && !ex->aborted)
        ex->img->d.on_done(&ex->call.pub, transport ? -1 : status);
    llmux_exchange_flush(ex);
    attempt_end(ex, transport && !ex->err_status, errmsg);
}

static void on_tick(uv_timer_t *t)
{
    llmux_exchange *ex = t->data;
    if (ex->attempt_over) return;
    ex->tick_scheduled = 0;
    int rc = ex->img->d.on_tick ? ex->img->d.on_tick(&ex->call.pub) : LLMUX_EUNSUPPORTED;
    llmux_exchange_flush(ex);
    if (ex->attempt_over) return;
    if (rc < 0 || ex->err_status) {
        if (!ex->err_status) sink_error(ex, 502, "local provider failed", NULL, 0, 0);
        attempt_end(ex, 0, NULL);
        return;
    }
    if (ex->tick_scheduled) return;
    ex->img->d.on_done(&ex->call.pub, 200);
    llmux_exchange_flush(ex);
    attempt_end(ex, 0, NULL);
}

static void on_keepalive(uv_timer_t *t)
{
    llmux_exchange *ex = t->data;
    if (ex->content_started || ex->finished) return;
    ex->out->waiting(ex);
}

static void next_attempt(llmux_exchange *ex)
{
    ex->attempt++;
    attempt_start(ex);
}

/* Tells the routing script's on_result() hook how the exchange ended. */
static void report_route_result(llmux_exchange *ex, int ok)
{
    if (!ex->ep || ex->nplan <= 0 || !ex->w->router) return;
    int at = ex->attempt < ex->nplan ? ex->attempt : ex->nplan - 1;
    llmux_route_request rq = {.body = &ex->doc, .model = ex->cands[0].ep->model->id,
                              .variant = ex->variant[0] ? ex->variant : NULL, .stream = ex->stream,
                              .key_label = ex->key_label, .prefix_hash = llmux_router_prefix_hash(&ex->doc)};
    llmux_router_on_result(ex->w->router, &rq, ex->cands, ex->ncands, ex->plan[at].candidate, ok);
}

static void give_up(llmux_exchange *ex)
{
    report_route_result(ex, 0);
    int status = ex->err_status ? ex->err_status : 502;
    llmux_buf meta = {0};
    llmux_buf_append_str(&meta, "{\"provider_name\":");
    llmux_buf_append_jstr(&meta, ex->err_provider[0] ? ex->err_provider : "");
    if (ex->err_raw.len) {
        llmux_buf_append_str(&meta, ",\"raw\":");
        llmux_buf_append_char(&meta, '"');
        llmux_buf_append_escaped(&meta, ex->err_raw.data, ex->err_raw.len);
        llmux_buf_append_char(&meta, '"');
    }
    llmux_buf_append_char(&meta, '}');
    if (!ex->err_msg.len) llmux_buf_append_str(&ex->err_msg, "upstream failed");
    ex->out->fail(ex, status, ex->err_msg.data, meta.data);
    llmux_buf_free(&meta);
    exchange_finish(ex);
}

static void attempt_end(llmux_exchange *ex, int transport_failed, const char *transport_msg)
{
    if (ex->finished) return;
    int cand = ex->plan[ex->attempt].candidate;
    int ok = !ex->err_status && !transport_failed && ex->res.finish != LLMUX_FINISH_NONE;
    if (!ok && !ex->err_status) {
        if (transport_failed) {
            ex->err_status = 502;
            llmux_buf_reset(&ex->err_msg);
            llmux_buf_printf(&ex->err_msg, "upstream connection failed: %s", transport_msg ? transport_msg : "error");
        } else {
            ex->err_status = 502;
            llmux_buf_reset(&ex->err_msg);
            llmux_buf_append_str(&ex->err_msg, ex->res.any_output ? "upstream stream ended without a finish reason"
                                                                  : "upstream returned no answer");
        }
    }
    if (!ex->attempt_over) {
        double now = (double)llmux_now_ns();
        double ttft = ex->first_token_ns ? ((double)ex->first_token_ns - (double)ex->attempt_start_ns) / 1e6 : -1;
        llmux_stats_end(ex->slots[cand], ok, ttft, (now - (double)ex->attempt_start_ns) / 1e6,
                        ex->res.has_usage ? ex->res.usage.completion_tokens : 0,
                        ex->retry_after_ms);
    }
    ex->attempt_over = 1;
    release_call(ex);
    if (ok) {
        if (!ex->res.has_usage) { /* never lose a usage record: estimate from what we saw */
            int64_t p = (int64_t)(ex->body_len / 4) + 1;
            int64_t c = (int64_t)((ex->res.content.len + ex->res.reasoning.len + 3) / 4);
            ex->res.usage = (llmux_usage){p, c, 0, 0, 0};
            ex->res.has_usage = 1;
        }
        report_route_result(ex, 1);
        /* The record is queued before the final bytes; with durable storage
         * they wait for its commit (llmux_exchange_complete). */
        if (llmux_accounts_before_complete(ex)) return;
        ex->out->complete(ex);
        exchange_finish(ex);
        return;
    }
    snprintf(ex->err_provider, sizeof ex->err_provider, "%s", ex->ep->provider->name);
    if (ex->content_started || !retryable(ex->err_status) || ex->attempt + 1 >= ex->nplan) {
        give_up(ex);
        return;
    }
    LOG_INFO("%s: attempt %d on %s failed (%d %s), failing over", ex->gen_id, ex->attempt + 1,
             ex->ep->provider->id, ex->err_status, ex->err_msg.data ? ex->err_msg.data : "");
    next_attempt(ex);
}

static void attempt_start(llmux_exchange *ex)
{
    while (ex->attempt < ex->nplan) {
        int cand = ex->plan[ex->attempt].candidate;
        if (llmux_stats_admit(ex->slots[cand]) == 0) break;
        ex->attempt++; /* circuit open: skip without a call */
    }
    if (ex->attempt >= ex->nplan) {
        if (!ex->err_status) {
            ex->err_status = 503;
            llmux_buf_reset(&ex->err_msg);
            llmux_buf_append_str(&ex->err_msg, "no available provider: every endpoint's circuit is open");
        }
        give_up(ex);
        return;
    }
    int cand = ex->plan[ex->attempt].candidate;
    ex->ep = ex->cands[cand].ep;
    ex->prov = llmux_runtime_provider(ex->rt, ex->ep->provider);
    ex->img = ex->prov->img;
    llmux_accounts_attempt_start(ex); /* BYOK: the key's own provider key */
    llmux_result_reset(&ex->res);
    ex->err_status = 0;
    ex->retry_after_ms = 0;
    llmux_buf_reset(&ex->err_msg);
    llmux_buf_reset(&ex->err_raw);
    ex->attempt_over = 0;
    ex->local = 0;
    ex->first_token_ns = 0;
    ex->upstream_status = 0;
    memset(ex->tool_seen, 0, sizeof ex->tool_seen);
    ex->attempt_start_ns = llmux_now_ns();
    memset(&ex->call, 0, sizeof ex->call);
    ex->call.pub.struct_size = sizeof ex->call.pub;
    ex->call.pub.plugin_ctx = ex->prov->ctx;
    ex->call.pub.req = &ex->req;
    ex->call.pub.ep = &ex->ep->view;
    ex->call.pub.provider = &ex->prov->cfg->view;
    ex->call.sink = &g_sink;
    ex->call.ud = ex;
    memset(&ex->outreq, 0, sizeof ex->outreq);
    llmux_stats_begin(ex->slots[cand]);
    atomic_fetch_add(&ex->img->inflight, 1);
    ex->call_live = 1;
    int rc = ex->img->d.prepare(&ex->call.pub, &ex->outreq);
    if (rc < 0 || ex->outreq.failed || (!ex->outreq.local && !ex->outreq.url.len)) {
        if (!ex->err_status) {
            int st = rc == LLMUX_EINVAL ? 400 : rc == LLMUX_EUNSUPPORTED ? 404 : 502;
            sink_error(ex, st, "the provider plugin could not build the upstream request", NULL, 0, 0);
        }
        attempt_end(ex, 0, NULL);
        return;
    }
    if (ex->outreq.local) {
        ex->local = 1;
        uv_timer_start(&ex->timer, on_tick, ex->outreq.first_delay_ms, 0);
        return;
    }
    const llmux_timeouts *to = &ex->rt->cfg->timeouts;
    llmux_xfer_req xr = {
        .url = ex->outreq.url.data,
        .headers = ex->outreq.headers,
        .body = ex->outreq.body.data ? ex->outreq.body.data : "",
        .body_len = ex->outreq.body.len,
        .connect_timeout_ms = to->connect_ms,
        .total_timeout_ms = to->total_ms,
    };
    ex->outreq.headers = NULL; /* owned by the transfer now */
    static const llmux_xfer_cb cb = {xfer_headers, xfer_body, xfer_done};
    char err[256];
    ex->xfer = llmux_xfer_start(ex->w->up, &xr, &cb, ex, err, sizeof err);
    if (!ex->xfer) {
        sink_error(ex, 502, err, NULL, 0, 0);
        attempt_end(ex, 0, NULL);
        return;
    }
    arm_chunk_timer(ex);
}

void llmux_exchange_run(llmux_exchange *ex)
{
    if (ex->stream && ex->rt->cfg->timeouts.keepalive_comment_ms)
        uv_timer_start(&ex->ka_timer, on_keepalive, ex->rt->cfg->timeouts.keepalive_comment_ms,
                       ex->rt->cfg->timeouts.keepalive_comment_ms);
    ex->attempt = 0;
    attempt_start(ex);
}
