#include "access_log.h"
#include "buf.h"
#include "exchange.h"
#include "log.h"
#include <string.h>

void llmux_access_log(const llmux_exchange *ex)
{
    const char *mode = ex->rt->cfg->access_log;
    if (mode && strcmp(mode, "off") == 0) return;
    uint64_t now = llmux_now_ns();
    double latency = (double)(now - ex->start_ns) / 1e6;
    double ttft = ex->first_token_ns ? (double)(ex->first_token_ns - ex->start_ns) / 1e6 : -1;
    int status = ex->aborted ? 499 : ex->final_status;
    const llmux_usage *u = &ex->res.usage;
    double cost = ex->ep && ex->res.has_usage ? llmux_cost(ex->ep, u) : 0;
    const char *provider = ex->ep ? ex->ep->provider->id : "-";
    char line[1024];
    int n;
    if (mode && strcmp(mode, "json") == 0) {
        llmux_buf b = {0};
        llmux_buf_printf(&b, "{\"type\":\"access\",\"id\":\"%s\",\"status\":%d,\"model\":", ex->gen_id, status);
        llmux_buf_append_jstr(&b, ex->model);
        llmux_buf_append_str(&b, ",\"provider\":");
        llmux_buf_append_jstr(&b, provider);
        llmux_buf_printf(&b, ",\"stream\":%s,\"attempts\":%d,\"latency_ms\":%.3f,\"ttft_ms\":%.3f,"
                             "\"prompt_tokens\":%lld,\"completion_tokens\":%lld,\"cost\":%.10g,\"cancelled\":%s}",
                         ex->stream ? "true" : "false", ex->attempt + (ex->nplan ? 1 : 0), latency, ttft,
                         (long long)u->prompt_tokens, (long long)u->completion_tokens, cost,
                         ex->aborted ? "true" : "false");
        if (b.data) llmux_log_raw(b.data, b.len);
        llmux_buf_free(&b);
        return;
    }
    n = snprintf(line, sizeof line,
                 "access %s status=%d model=%.*s provider=%s stream=%d latency_ms=%.3f ttft_ms=%.3f "
                 "tokens=%lld+%lld cost=%.10g%s",
                 ex->gen_id, status, 128, ex->model, provider, ex->stream, latency, ttft,
                 (long long)u->prompt_tokens, (long long)u->completion_tokens, cost, ex->aborted ? " cancelled" : "");
    if (n > 0) llmux_log_raw(line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}
