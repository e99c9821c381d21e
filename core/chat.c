/* POST chat/completions, completions and messages: parse and validate the
 * body, collect the candidate endpoints (the model, then `models` fallbacks),
 * ask the routing script for a plan, and hand over to the attempt engine. */
#include "buf.h"
#include "accounts.h"
#include "exchange.h"
#include "json.h"
#include "log.h"
#include "messages_in.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const k_variants[] = {"free", "nitro", "floor", "thinking", "extended", "online", "beta", NULL};
static const char *const k_roles[] = {"system", "developer", "user", "assistant", "tool", "function", NULL};

static int in_list(const char *const *list, const char *s, size_t n)
{
    for (int i = 0; list[i]; i++)
        if (strlen(list[i]) == n && memcmp(list[i], s, n) == 0) return 1;
    return 0;
}

/* Splits "author/slug:variant" and finds the model. Returns NULL if unknown. */
static const llmux_model_cfg *resolve_model(const llmux_config *cfg, const char *id, size_t n, char *variant, size_t vlen)
{
    const llmux_model_cfg *m = llmux_config_find_model(cfg, id, n);
    if (variant) variant[0] = '\0';
    if (m) return m;
    const char *colon = memrchr(id, ':', n);
    if (!colon) return NULL;
    size_t base = (size_t)(colon - id), vn = n - base - 1;
    if (!in_list(k_variants, colon + 1, vn)) return NULL;
    if (variant && vn < vlen) { memcpy(variant, colon + 1, vn); variant[vn] = '\0'; }
    return llmux_config_find_model(cfg, id, base);
}

static int is_type(const llmux_json *d, int i, llmux_json_type t) { return i >= 0 && d->tok[i].type == t; }

static int message_has_image(const llmux_json *d, int msg)
{
    int content = llmux_json_get(d, msg, "content");
    if (!is_type(d, content, LLMUX_JSON_ARRAY)) return 0;
    for (int k = 0, n = d->tok[content].size; k < n; k++) {
        int part = llmux_json_at(d, content, k);
        int type = part >= 0 ? llmux_json_get(d, part, "type") : -1;
        if (type >= 0 && llmux_json_eq(d, type, "image_url")) return 1;
    }
    return 0;
}

/* Returns NULL when valid, else a message for a 400. */
static const char *validate(llmux_exchange *ex, char *msgbuf, size_t mlen, llmux_route_request *rr)
{
    const llmux_json *d = &ex->doc;
    if (d->tok[0].type != LLMUX_JSON_OBJECT) return "request body must be a JSON object";
    int i;
    if ((i = llmux_json_get(d, 0, "stream")) >= 0) {
        int b = llmux_json_bool(d, i);
        if (b < 0 && !llmux_json_is_null(d, i)) return "'stream' must be a boolean";
        ex->stream = b == 1;
    }
    if ((i = llmux_json_get(d, 0, "stream_options")) >= 0 && is_type(d, i, LLMUX_JSON_OBJECT)) {
        int iu = llmux_json_get(d, i, "include_usage");
        ex->include_usage = iu >= 0 && llmux_json_bool(d, iu) == 1;
    }
    const char *mt[] = {"max_tokens", "max_completion_tokens"};
    for (int k = 0; k < 2; k++) {
        if ((i = llmux_json_get(d, 0, mt[k])) < 0 || llmux_json_is_null(d, i)) continue;
        int64_t v;
        if (llmux_json_int(d, i, &v) || v < 0) { snprintf(msgbuf, mlen, "'%s' must be a non-negative integer", mt[k]); return msgbuf; }
        ex->req.max_tokens = v;
    }
    struct { const char *name; double lo, hi; } ranges[] = {
        {"temperature", 0, 2}, {"top_p", 0, 1}, {"frequency_penalty", -2, 2}, {"presence_penalty", -2, 2},
        {"repetition_penalty", 0, 2}, {"min_p", 0, 1}, {"top_a", 0, 1}};
    for (size_t k = 0; k < sizeof ranges / sizeof ranges[0]; k++) {
        if ((i = llmux_json_get(d, 0, ranges[k].name)) < 0 || llmux_json_is_null(d, i)) continue;
        double v;
        if (llmux_json_double(d, i, &v) || v < ranges[k].lo || v > ranges[k].hi) {
            snprintf(msgbuf, mlen, "'%s' must be a number between %g and %g", ranges[k].name, ranges[k].lo, ranges[k].hi);
            return msgbuf;
        }
    }
    if (ex->api == 1) {
        i = llmux_json_get(d, 0, "prompt");
        if (!is_type(d, i, LLMUX_JSON_STRING) && !is_type(d, i, LLMUX_JSON_ARRAY)) return "'prompt' is required and must be a string";
        ex->req.is_legacy_prompt = 1;
    } else {
        i = llmux_json_get(d, 0, "messages");
        if (!is_type(d, i, LLMUX_JSON_ARRAY) || d->tok[i].size == 0) return "'messages' is required and must be a non-empty array";
        for (int k = 0, n = d->tok[i].size; k < n; k++) {
            int m = llmux_json_at(d, i, k);
            if (!is_type(d, m, LLMUX_JSON_OBJECT)) { snprintf(msgbuf, mlen, "messages[%d] must be an object", k); return msgbuf; }
            int role = llmux_json_get(d, m, "role");
            size_t rl;
            const char *rs = role >= 0 ? llmux_json_raw(d, role, &rl) : NULL;
            if (!is_type(d, role, LLMUX_JSON_STRING) || !in_list(k_roles, rs, rl)) {
                snprintf(msgbuf, mlen, "messages[%d].role must be one of system, developer, user, assistant, tool", k);
                return msgbuf;
            }
            int content = llmux_json_get(d, m, "content");
            if (content >= 0 && !is_type(d, content, LLMUX_JSON_STRING) && !is_type(d, content, LLMUX_JSON_ARRAY) &&
                !llmux_json_is_null(d, content)) {
                snprintf(msgbuf, mlen, "messages[%d].content must be a string or an array of parts", k);
                return msgbuf;
            }
            if (is_type(d, content, LLMUX_JSON_ARRAY)) {
                for (int p = 0, np = d->tok[content].size; p < np; p++) {
                    int part = llmux_json_at(d, content, p);
                    if (!is_type(d, part, LLMUX_JSON_OBJECT) || !is_type(d, llmux_json_get(d, part, "type"), LLMUX_JSON_STRING)) {
                        snprintf(msgbuf, mlen, "messages[%d].content[%d] must be an object with a 'type'", k, p);
                        return msgbuf;
                    }
                }
            }
            if (message_has_image(d, m)) rr->has_images = 1;
        }
    }
    if ((i = llmux_json_get(d, 0, "tools")) >= 0 && !llmux_json_is_null(d, i)) {
        if (!is_type(d, i, LLMUX_JSON_ARRAY)) return "'tools' must be an array";
        for (int k = 0, n = d->tok[i].size; k < n; k++) {
            int t = llmux_json_at(d, i, k);
            int fn = is_type(d, t, LLMUX_JSON_OBJECT) ? llmux_json_get(d, t, "function") : -1;
            if (!is_type(d, fn, LLMUX_JSON_OBJECT) || !is_type(d, llmux_json_get(d, fn, "name"), LLMUX_JSON_STRING)) {
                snprintf(msgbuf, mlen, "tools[%d] must be {type:\"function\", function:{name, parameters}}", k);
                return msgbuf;
            }
        }
        rr->has_tools = d->tok[i].size > 0;
    }
    if ((i = llmux_json_get(d, 0, "response_format")) >= 0 && is_type(d, i, LLMUX_JSON_OBJECT)) {
        int t = llmux_json_get(d, i, "type");
        rr->has_response_format = t >= 0 && !llmux_json_eq(d, t, "text");
    }
    if ((i = llmux_json_get(d, 0, "reasoning")) >= 0 && is_type(d, i, LLMUX_JSON_OBJECT)) rr->has_reasoning = 1;
    return NULL;
}

static int add_candidates(llmux_exchange *ex, const llmux_model_cfg *m)
{
    for (size_t k = 0; k < m->n_endpoints && ex->ncands < LLMUX_MAX_CANDIDATES; k++) {
        const llmux_endpoint_cfg *ep = &m->endpoints[k];
        for (int j = 0; j < ex->ncands; j++)
            if (ex->cands[j].ep == ep) goto next;
        ex->cands[ex->ncands].ep = ep;
        ex->slots[ex->ncands] = ex->rt->slots[ep->index];
        llmux_stats_snapshot(ex->slots[ex->ncands], &ex->cands[ex->ncands].stats);
        ex->ncands++;
    next:;
    }
    return 0;
}

void llmux_handle_chat(llmux_conn *c, const llmux_http_request *r, int api)
{
    llmux_worker *w = llmux_conn_worker(c);
    llmux_worker_refresh(w);
    llmux_exchange *ex = llmux_exchange_new(c, api == 2 ? &llmux_out_anthropic : &llmux_out_openai, api);
    if (!ex) { llmux_conn_respond_error(c, 500, "out of memory", NULL, NULL); return; }
    if (api == 2) {
        const char *version = llmux_http_header(r, "anthropic-version");
        (void)version; /* both header styles are accepted; auth is checked by the accounts layer */
    }
    const llmux_config *cfg = ex->rt->cfg;
    if (llmux_accounts_authorize(ex, r) < 0) return; /* 401: missing, invalid, disabled or expired key */
    ex->body = llmux_conn_take_body(c, &ex->body_len);
    const char *why = NULL;
    size_t off = 0;
    llmux_json_limits lim = {cfg->limits.max_json_tokens, cfg->limits.max_json_depth};
    int rc = llmux_json_parse(ex->body ? ex->body : "", ex->body_len, &lim, &ex->doc, &why, &off);
    if (rc == LLMUX_ELIMIT) { llmux_exchange_fail_early(ex, 413, why ? why : "request JSON too large or too deeply nested", NULL); return; }
    if (rc < 0) {
        char m[200];
        snprintf(m, sizeof m, "%s (at byte %zu)", why ? why : "invalid JSON", off);
        llmux_exchange_fail_early(ex, 400, m, NULL);
        return;
    }
    ex->req.struct_size = sizeof ex->req;
    ex->req.body = ex->doc;
    llmux_route_request rr;
    memset(&rr, 0, sizeof rr);
    char msg[256];
    const char *bad;
    if (api == 2) {
        /* Anthropic Messages in: translated to the canonical body first. */
        if ((bad = llmux_messages_to_canonical(ex, msg, sizeof msg))) { llmux_exchange_fail_early(ex, 400, bad, NULL); return; }
    }
    if ((bad = validate(ex, msg, sizeof msg, &rr))) { llmux_exchange_fail_early(ex, 400, bad, NULL); return; }
    ex->req.stream = ex->stream;
    ex->req.body = ex->doc;

    const llmux_json *d = &ex->doc;
    int mi = llmux_json_get(d, 0, "model"), ms = llmux_json_get(d, 0, "models");
    if (mi >= 0 && !is_type(d, mi, LLMUX_JSON_STRING)) { llmux_exchange_fail_early(ex, 400, "'model' must be a string", NULL); return; }
    if (ms >= 0 && !is_type(d, ms, LLMUX_JSON_ARRAY) && !llmux_json_is_null(d, ms)) {
        llmux_exchange_fail_early(ex, 400, "'models' must be an array of model ids", NULL);
        return;
    }
    if (mi < 0 && (ms < 0 || !is_type(d, ms, LLMUX_JSON_ARRAY) || d->tok[ms].size == 0)) {
        llmux_exchange_fail_early(ex, 400, "'model' is required", NULL);
        return;
    }
    /* The primary model, then the fallbacks in order. */
    int ids[17], nid = 0;
    if (mi >= 0) ids[nid++] = mi;
    if (ms >= 0 && is_type(d, ms, LLMUX_JSON_ARRAY))
        for (int k = 0; k < d->tok[ms].size && nid < 17; k++) {
            int t = llmux_json_at(d, ms, k);
            if (!is_type(d, t, LLMUX_JSON_STRING)) { llmux_exchange_fail_early(ex, 400, "'models' must be an array of model ids", NULL); return; }
            ids[nid++] = t;
        }
    const llmux_model_cfg *primary = NULL;
    for (int k = 0; k < nid; k++) {
        size_t n;
        const char *s = llmux_json_raw(d, ids[k], &n);
        char variant[32];
        const llmux_model_cfg *m = resolve_model(cfg, s, n, variant, sizeof variant);
        if (k == 0) {
            snprintf(ex->model, sizeof ex->model, "%.*s", (int)n, s);
            if (variant[0]) snprintf(ex->variant, sizeof ex->variant, "%s", variant);
        }
        if (!m) {
            if (k == 0 && nid == 1) {
                char m404[320];
                snprintf(m404, sizeof m404, "model '%.*s' is not available on this gateway", (int)(n < 200 ? n : 200), s);
                llmux_exchange_fail_early(ex, 404, m404, NULL);
                return;
            }
            continue; /* an unknown fallback is skipped, as OpenRouter does */
        }
        if (!primary) primary = m;
        add_candidates(ex, m);
    }
    if (!primary || ex->ncands == 0) { llmux_exchange_fail_early(ex, 404, "none of the requested models is available", NULL); return; }
    if (strcmp(ex->variant, "online") == 0) {
        llmux_exchange_fail_early(ex, 400, "the :online variant needs a web search backend, and none is configured", NULL);
        return;
    }
    char base_model[256];
    snprintf(base_model, sizeof base_model, "%s", primary->id);
    rr.body = &ex->doc;
    rr.model = base_model;
    rr.variant = ex->variant[0] ? ex->variant : NULL;
    rr.stream = ex->stream;
    rr.estimated_prompt_tokens = (int64_t)(ex->body_len / 4) + 1;
    rr.max_tokens = ex->req.max_tokens;
    rr.headers = r->headers;
    rr.n_headers = r->n_headers;
    rr.key_label = ex->key_label;
    rr.prefix_hash = llmux_router_prefix_hash(&ex->doc);
    /* :thinking turns reasoning on (the body gets it unless it has its own) */
    int add_reasoning = rr.variant && !strcmp(rr.variant, "thinking") && !rr.has_reasoning;
    if (add_reasoning) rr.has_reasoning = 1;
    llmux_route_result rres;
    ex->nplan = llmux_router_plan_ex(w->router, &rr, ex->cands, ex->ncands, ex->plan, LLMUX_MAX_CANDIDATES, &rres);
    if (ex->nplan <= 0) {
        llmux_exchange_fail_early(ex, rres.status ? rres.status : 503,
                                  rres.message[0] ? rres.message : "no available provider meets the routing requirements", NULL);
        llmux_route_result_free(&rres);
        return;
    }
    if (rres.params_json || add_reasoning) { /* route() params / :thinking: rewrite the canonical body */
        llmux_buf set = {0};
        if (rres.params_json) llmux_buf_append_str(&set, rres.params_json);
        if (add_reasoning && !(rres.params_json && strstr(rres.params_json, "\"reasoning\":")))
            llmux_buf_printf(&set, "%s\"reasoning\":{\"enabled\":true}", set.len ? "," : "");
        size_t nl = 0;
        char *nb = set.data ? llmux_router_rewrite_body(&ex->doc, set.data, &nl) : NULL;
        llmux_json nd = {0};
        if (nb && llmux_json_parse(nb, nl, &lim, &nd, NULL, NULL) == 0) {
            llmux_json_release(&ex->doc);
            free(ex->body);
            ex->body = nb;
            ex->body_len = nl;
            ex->doc = nd;
            ex->req.body = ex->doc;
        } else {
            free(nb);
            LOG_WARN("%s: could not apply the routing parameter overrides; sending the body unchanged", ex->gen_id);
        }
        llmux_buf_free(&set);
    }
    llmux_route_result_free(&rres);
    llmux_accounts_run(ex); /* 402 credit, 429 rate limit, then llmux_exchange_run */
}
