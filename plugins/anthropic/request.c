/* Canonical chat-completions body -> Anthropic Messages request body. */
#include "anth.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int anth_refuse(llmux_call *c, const llmux_host *h, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    h->emit_error(c, 400, msg, NULL, 0, 0);
    return LLMUX_EINVAL;
}

/* reasoning {effort|max_tokens|enabled} -> thinking budget (0 = off). */
static int64_t thinking_budget(const llmux_host *h, const llmux_json *d, int64_t max_tokens)
{
    int r = anth_get(h, d, 0, "reasoning");
    if (!anth_is(d, r, LLMUX_JSON_OBJECT)) return 0;
    int en = anth_get(h, d, r, "enabled");
    if (en >= 0 && h->json_bool(d, en) == 0) return 0;
    int64_t budget = 0;
    int mt = anth_get(h, d, r, "max_tokens");
    int eff = anth_get(h, d, r, "effort");
    if (mt >= 0 && h->json_int(d, mt, &budget) == 0) {
        /* explicit budget */
    } else if (anth_is(d, eff, LLMUX_JSON_STRING)) {
        int pct = 50;
        if (h->json_eq(d, eff, "high")) pct = 80;
        else if (h->json_eq(d, eff, "medium")) pct = 50;
        else if (h->json_eq(d, eff, "low")) pct = 20;
        else if (h->json_eq(d, eff, "minimal")) pct = 10;
        else if (h->json_eq(d, eff, "none")) return 0;
        budget = max_tokens * pct / 100;
    } else if (en >= 0 && h->json_bool(d, en) == 1) {
        budget = max_tokens / 2;
    } else {
        return 0;
    }
    return budget < 1024 ? 1024 : budget;
}

static void tools(llmux_call *c, const llmux_host *h, const llmux_json *d, anth_jw *w, int *rc)
{
    int t = anth_get(h, d, 0, "tools");
    if (!anth_is(d, t, LLMUX_JSON_ARRAY) || d->tok[t].size == 0) return;
    anth_jw_lit(w, ",\"tools\":[");
    int it = t + 1;
    for (int k = 0; k < d->tok[t].size; k++, it = h->json_skip(d, it)) {
        int fn = anth_get(h, d, it, "function");
        int name = anth_get(h, d, fn, "name");
        if (!anth_is_str(h, d, anth_get(h, d, it, "type"), "function") || !anth_is(d, name, LLMUX_JSON_STRING)) {
            *rc = anth_refuse(c, h, "tools[%d]: only function tools with a name are supported", k);
            return;
        }
        if (k) anth_jw_lit(w, ",");
        anth_jw_lit(w, "{\"name\":");
        anth_jw_tok(w, d, name);
        int desc = anth_get(h, d, fn, "description");
        if (anth_is(d, desc, LLMUX_JSON_STRING)) {
            anth_jw_lit(w, ",\"description\":");
            anth_jw_tok(w, d, desc);
        }
        int params = anth_get(h, d, fn, "parameters");
        anth_jw_lit(w, ",\"input_schema\":");
        if (anth_is(d, params, LLMUX_JSON_OBJECT))
            anth_jw_tok(w, d, params);
        else
            anth_jw_lit(w, "{\"type\":\"object\",\"properties\":{}}");
        int cc = anth_get(h, d, it, "cache_control");
        if (anth_is(d, cc, LLMUX_JSON_OBJECT)) {
            anth_jw_lit(w, ",\"cache_control\":");
            anth_jw_tok(w, d, cc);
        }
        anth_jw_lit(w, "}");
    }
    anth_jw_lit(w, "]");
}

static void tool_choice(llmux_call *c, const llmux_host *h, const llmux_json *d, anth_jw *w, int *rc)
{
    int tc = anth_get(h, d, 0, "tool_choice");
    int ptc = anth_get(h, d, 0, "parallel_tool_calls");
    int no_parallel = ptc >= 0 && h->json_bool(d, ptc) == 0;
    int t = anth_get(h, d, 0, "tools");
    int has_tools = anth_is(d, t, LLMUX_JSON_ARRAY) && d->tok[t].size > 0;
    if (!has_tools) return;
    const char *type = "auto";
    int name = -1;
    if (anth_is(d, tc, LLMUX_JSON_STRING)) {
        if (h->json_eq(d, tc, "none")) type = "none";
        else if (h->json_eq(d, tc, "required")) type = "any";
        else if (h->json_eq(d, tc, "auto")) type = "auto";
        else { *rc = anth_refuse(c, h, "tool_choice: unknown value"); return; }
    } else if (anth_is(d, tc, LLMUX_JSON_OBJECT)) {
        name = anth_get(h, d, anth_get(h, d, tc, "function"), "name");
        if (!anth_is(d, name, LLMUX_JSON_STRING)) {
            *rc = anth_refuse(c, h, "tool_choice: expected {type:\"function\",function:{name}}");
            return;
        }
        type = "tool";
    } else if (!no_parallel) {
        return;
    }
    anth_jw_lit(w, ",\"tool_choice\":{\"type\":\"");
    anth_jw_lit(w, type);
    anth_jw_lit(w, "\"");
    if (name >= 0) {
        anth_jw_lit(w, ",\"name\":");
        anth_jw_tok(w, d, name);
    }
    if (no_parallel && strcmp(type, "none") != 0) anth_jw_lit(w, ",\"disable_parallel_tool_use\":true");
    anth_jw_lit(w, "}");
}

static void copy_num(const llmux_host *h, const llmux_json *d, anth_jw *w, const char *from, const char *to)
{
    int i = anth_get(h, d, 0, from);
    if (!anth_is(d, i, LLMUX_JSON_PRIMITIVE)) return;
    double x;
    if (h->json_double(d, i, &x) != 0) return; /* null */
    anth_jw_lit(w, ",\"");
    anth_jw_lit(w, to);
    anth_jw_lit(w, "\":");
    anth_jw_tok(w, d, i);
}

int anth_build_body(llmux_call *c, const anth_ctx *ctx, llmux_buf *body)
{
    const llmux_host *h = ctx->h;
    const llmux_json *d = &c->req->body;
    llmux_buf sysb = {0};
    anth_jw w = {h, body, 0};
    anth_jw sys = {h, &sysb, 0};
    int nsys = 0, rc = 0;

    int n = anth_get(h, d, 0, "n");
    int64_t nv = 1;
    if (n >= 0 && h->json_int(d, n, &nv) == 0 && nv > 1)
        return anth_refuse(c, h, "n > 1 is not supported by Anthropic models");

    int64_t max_tokens = c->req->max_tokens > 0 ? c->req->max_tokens
                         : c->ep->max_completion_tokens > 0 ? c->ep->max_completion_tokens : 4096;
    int64_t budget = thinking_budget(h, d, max_tokens);
    if (budget && max_tokens <= budget) max_tokens = budget + max_tokens;
    int tcx = anth_get(h, d, 0, "tool_choice");
    if (budget && (anth_is(d, tcx, LLMUX_JSON_OBJECT) || anth_is_str(h, d, tcx, "required")))
        return anth_refuse(c, h, "reasoning cannot be combined with a forced tool_choice on Anthropic models");

    anth_jw_lit(&w, "{\"model\":");
    anth_jw_str(&w, c->ep->upstream_model, strlen(c->ep->upstream_model));
    anth_jw_lit(&w, ",\"max_tokens\":");
    anth_jw_i64(&w, max_tokens);
    anth_jw_lit(&w, ",\"stream\":true,");

    rc = anth_build_messages(c, ctx, &w, &sys, &nsys);
    if (rc) goto out;

    /* response_format */
    int rf = anth_get(h, d, 0, "response_format");
    int rft = anth_get(h, d, rf, "type");
    int schema = -1;
    if (anth_is_str(h, d, rft, "json_schema")) {
        schema = anth_get(h, d, anth_get(h, d, rf, "json_schema"), "schema");
        if (!anth_is(d, schema, LLMUX_JSON_OBJECT)) {
            rc = anth_refuse(c, h, "response_format.json_schema.schema must be an object");
            goto out;
        }
    }
    if (anth_is_str(h, d, rft, "json_object") || (schema >= 0 && !ctx->structured)) {
        if (nsys++) anth_jw_lit(&sys, ",");
        anth_jw_lit(&sys, "{\"type\":\"text\",\"text\":");
        if (schema >= 0) {
            llmux_buf tmp = {0};
            anth_jw tw = {h, &tmp, 0};
            anth_jw_lit(&tw, "Respond only with a JSON value that matches this JSON Schema, with no other text: ");
            anth_jw_tok(&tw, d, schema);
            if (tw.err) { h->buf_free(&tmp); rc = tw.err; goto out; }
            anth_jw_str(&sys, tmp.data, tmp.len);
            h->buf_free(&tmp);
        } else {
            anth_jw_lit(&sys, "\"Respond only with a single valid JSON object, with no other text.\"");
        }
        anth_jw_lit(&sys, "}");
    }
    if (sys.err) { rc = sys.err; goto out; }
    if (nsys) {
        anth_jw_lit(&w, ",\"system\":[");
        anth_jw_raw(&w, sysb.data, sysb.len);
        anth_jw_lit(&w, "]");
    }
    if (schema >= 0 && ctx->structured) {
        anth_jw_lit(&w, ",\"output_config\":{\"format\":{\"type\":\"json_schema\",\"schema\":");
        anth_jw_tok(&w, d, schema);
        anth_jw_lit(&w, "}}");
    }

    tools(c, h, d, &w, &rc);
    if (rc) goto out;
    tool_choice(c, h, d, &w, &rc);
    if (rc) goto out;

    int stop = anth_get(h, d, 0, "stop");
    if (anth_is(d, stop, LLMUX_JSON_STRING)) {
        anth_jw_lit(&w, ",\"stop_sequences\":[");
        anth_jw_tok(&w, d, stop);
        anth_jw_lit(&w, "]");
    } else if (anth_is(d, stop, LLMUX_JSON_ARRAY) && d->tok[stop].size > 0) {
        anth_jw_lit(&w, ",\"stop_sequences\":");
        anth_jw_tok(&w, d, stop);
    }

    /* The bearer API version rejects sampling fields; extended thinking does
     * not allow changing temperature or top_k. */
    if (!ctx->bearer) {
        if (!budget) copy_num(h, d, &w, "temperature", "temperature");
        copy_num(h, d, &w, "top_p", "top_p");
        if (!budget) copy_num(h, d, &w, "top_k", "top_k");
    }
    if (budget) {
        anth_jw_lit(&w, ",\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":");
        anth_jw_i64(&w, budget);
        anth_jw_lit(&w, "}");
    }
    int user = anth_get(h, d, 0, "user");
    if (anth_is(d, user, LLMUX_JSON_STRING)) {
        anth_jw_lit(&w, ",\"metadata\":{\"user_id\":");
        anth_jw_tok(&w, d, user);
        anth_jw_lit(&w, "}");
    }
    anth_jw_lit(&w, "}");
    rc = w.err;
out:
    h->buf_free(&sysb);
    return rc;
}
