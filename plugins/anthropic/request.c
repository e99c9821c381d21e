/* Canonical chat-completions body -> Anthropic Messages request body. */
#include "anth.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* reasoning {effort|max_tokens|enabled} -> thinking budget (0 = off). */
static int64_t thinking_budget(const llmux_host *h, const llmux_json *d, int64_t max_tokens)
{
    int r = llmux_jget(h, d, 0, "reasoning");
    if (!llmux_jis(d, r, LLMUX_JSON_OBJECT)) return 0;
    int en = llmux_jget(h, d, r, "enabled");
    if (en >= 0 && h->json_bool(d, en) == 0) return 0;
    int64_t budget = 0;
    int mt = llmux_jget(h, d, r, "max_tokens");
    int eff = llmux_jget(h, d, r, "effort");
    if (mt >= 0 && h->json_int(d, mt, &budget) == 0) {
        /* explicit budget */
    } else if (llmux_jis(d, eff, LLMUX_JSON_STRING)) {
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

static void tools(llmux_call *c, const llmux_host *h, const llmux_json *d, llmux_jw *w, int *rc)
{
    int t = llmux_jget(h, d, 0, "tools");
    if (!llmux_jis(d, t, LLMUX_JSON_ARRAY) || d->tok[t].size == 0) return;
    llmux_jw_lit(w, ",\"tools\":[");
    int it = t + 1;
    for (int k = 0; k < d->tok[t].size; k++, it = h->json_skip(d, it)) {
        int params;
        if ((*rc = llmux_function_tool(c, h, d, it, k, w, &params))) return;
        llmux_jw_lit(w, ",\"input_schema\":");
        if (llmux_jis(d, params, LLMUX_JSON_OBJECT))
            llmux_jw_tok(w, d, params);
        else
            llmux_jw_lit(w, "{\"type\":\"object\",\"properties\":{}}");
        int cc = llmux_jget(h, d, it, "cache_control");
        if (llmux_jis(d, cc, LLMUX_JSON_OBJECT)) {
            llmux_jw_lit(w, ",\"cache_control\":");
            llmux_jw_tok(w, d, cc);
        }
        llmux_jw_lit(w, "}");
    }
    llmux_jw_lit(w, "]");
}

static void tool_choice(llmux_call *c, const llmux_host *h, const llmux_json *d, llmux_jw *w, int *rc)
{
    int ptc = llmux_jget(h, d, 0, "parallel_tool_calls");
    int no_parallel = ptc >= 0 && h->json_bool(d, ptc) == 0;
    int t = llmux_jget(h, d, 0, "tools");
    int has_tools = llmux_jis(d, t, LLMUX_JSON_ARRAY) && d->tok[t].size > 0;
    if (!has_tools) return;
    llmux_tool_choice choice;
    int name;
    if ((*rc = llmux_tool_choice_read(c, h, d, &choice, &name))) return;
    const char *type = "auto";
    switch (choice) {
    case LLMUX_CHOICE_NONE: type = "none"; break;
    case LLMUX_CHOICE_REQUIRED: type = "any"; break;
    case LLMUX_CHOICE_AUTO: type = "auto"; break;
    case LLMUX_CHOICE_FUNCTION: type = "tool"; break;
    case LLMUX_CHOICE_UNSET:
        if (!no_parallel) return;
        break;
    }
    llmux_jw_lit(w, ",\"tool_choice\":{\"type\":\"");
    llmux_jw_lit(w, type);
    llmux_jw_lit(w, "\"");
    if (name >= 0) {
        llmux_jw_lit(w, ",\"name\":");
        llmux_jw_tok(w, d, name);
    }
    if (no_parallel && strcmp(type, "none") != 0) llmux_jw_lit(w, ",\"disable_parallel_tool_use\":true");
    llmux_jw_lit(w, "}");
}

static void copy_num(const llmux_host *h, const llmux_json *d, llmux_jw *w, const char *from, const char *to)
{
    int i = llmux_jget(h, d, 0, from);
    if (!llmux_jis(d, i, LLMUX_JSON_PRIMITIVE)) return;
    double x;
    if (h->json_double(d, i, &x) != 0) return; /* null */
    llmux_jw_lit(w, ",\"");
    llmux_jw_lit(w, to);
    llmux_jw_lit(w, "\":");
    llmux_jw_tok(w, d, i);
}

int anth_build_body(llmux_call *c, const anth_ctx *ctx, llmux_buf *body)
{
    const llmux_host *h = ctx->h;
    const llmux_json *d = &c->req->body;
    llmux_buf sysb = {0};
    llmux_jw w = {h, body, 0};
    llmux_jw sys = {h, &sysb, 0};
    int nsys = 0, rc = 0;

    int n = llmux_jget(h, d, 0, "n");
    int64_t nv = 1;
    if (n >= 0 && h->json_int(d, n, &nv) == 0 && nv > 1)
        return llmux_refuse(c, h, "n > 1 is not supported by Anthropic models");

    int64_t max_tokens = c->req->max_tokens > 0 ? c->req->max_tokens
                         : c->ep->max_completion_tokens > 0 ? c->ep->max_completion_tokens : 4096;
    int64_t budget = thinking_budget(h, d, max_tokens);
    if (budget && max_tokens <= budget) max_tokens = budget + max_tokens;
    int tcx = llmux_jget(h, d, 0, "tool_choice");
    if (budget && (llmux_jis(d, tcx, LLMUX_JSON_OBJECT) || llmux_jis_str(h, d, tcx, "required")))
        return llmux_refuse(c, h, "reasoning cannot be combined with a forced tool_choice on Anthropic models");

    llmux_jw_lit(&w, "{\"model\":");
    llmux_jw_str(&w, c->ep->upstream_model, strlen(c->ep->upstream_model));
    llmux_jw_lit(&w, ",\"max_tokens\":");
    llmux_jw_i64(&w, max_tokens);
    llmux_jw_lit(&w, ",\"stream\":true,");

    rc = anth_build_messages(c, ctx, &w, &sys, &nsys);
    if (rc) goto out;

    /* response_format */
    int rf = llmux_jget(h, d, 0, "response_format");
    int rft = llmux_jget(h, d, rf, "type");
    int schema = -1;
    if (llmux_jis_str(h, d, rft, "json_schema")) {
        schema = llmux_jget(h, d, llmux_jget(h, d, rf, "json_schema"), "schema");
        if (!llmux_jis(d, schema, LLMUX_JSON_OBJECT)) {
            rc = llmux_refuse(c, h, "response_format.json_schema.schema must be an object");
            goto out;
        }
    }
    if (llmux_jis_str(h, d, rft, "json_object") || (schema >= 0 && !ctx->structured)) {
        if (nsys++) llmux_jw_lit(&sys, ",");
        llmux_jw_lit(&sys, "{\"type\":\"text\",\"text\":");
        if (schema >= 0) {
            llmux_buf tmp = {0};
            llmux_jw tw = {h, &tmp, 0};
            llmux_jw_lit(&tw, "Respond only with a JSON value that matches this JSON Schema, with no other text: ");
            llmux_jw_tok(&tw, d, schema);
            if (tw.err) { h->buf_free(&tmp); rc = tw.err; goto out; }
            llmux_jw_str(&sys, tmp.data, tmp.len);
            h->buf_free(&tmp);
        } else {
            llmux_jw_lit(&sys, "\"Respond only with a single valid JSON object, with no other text.\"");
        }
        llmux_jw_lit(&sys, "}");
    }
    if (sys.err) { rc = sys.err; goto out; }
    if (nsys) {
        llmux_jw_lit(&w, ",\"system\":[");
        llmux_jw_raw(&w, sysb.data, sysb.len);
        llmux_jw_lit(&w, "]");
    }
    if (schema >= 0 && ctx->structured) {
        llmux_jw_lit(&w, ",\"output_config\":{\"format\":{\"type\":\"json_schema\",\"schema\":");
        llmux_jw_tok(&w, d, schema);
        llmux_jw_lit(&w, "}}");
    }

    tools(c, h, d, &w, &rc);
    if (rc) goto out;
    tool_choice(c, h, d, &w, &rc);
    if (rc) goto out;

    int stop = llmux_jget(h, d, 0, "stop");
    if (llmux_jis(d, stop, LLMUX_JSON_STRING)) {
        llmux_jw_lit(&w, ",\"stop_sequences\":[");
        llmux_jw_tok(&w, d, stop);
        llmux_jw_lit(&w, "]");
    } else if (llmux_jis(d, stop, LLMUX_JSON_ARRAY) && d->tok[stop].size > 0) {
        llmux_jw_lit(&w, ",\"stop_sequences\":");
        llmux_jw_tok(&w, d, stop);
    }

    /* The bearer API version rejects sampling fields; extended thinking does
     * not allow changing temperature or top_k. */
    if (!ctx->bearer) {
        if (!budget) copy_num(h, d, &w, "temperature", "temperature");
        copy_num(h, d, &w, "top_p", "top_p");
        if (!budget) copy_num(h, d, &w, "top_k", "top_k");
    }
    if (budget) {
        llmux_jw_lit(&w, ",\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":");
        llmux_jw_i64(&w, budget);
        llmux_jw_lit(&w, "}");
    }
    int user = llmux_jget(h, d, 0, "user");
    if (llmux_jis(d, user, LLMUX_JSON_STRING)) {
        llmux_jw_lit(&w, ",\"metadata\":{\"user_id\":");
        llmux_jw_tok(&w, d, user);
        llmux_jw_lit(&w, "}");
    }
    llmux_jw_lit(&w, "}");
    rc = w.err;
out:
    h->buf_free(&sysb);
    return rc;
}
