/* Canonical chat-completions body -> Gemini generateContent body. */
#include "gem.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Writes `,"key":value` inside an object, opening it on first use. */
typedef struct {
    llmux_jw *w;
    int n;
} obj;

static void key(obj *o, const char *k)
{
    llmux_jw_lit(o->w, o->n++ ? ",\"" : "\"");
    llmux_jw_lit(o->w, k);
    llmux_jw_lit(o->w, "\":");
}

static void copy_num(const llmux_host *h, const llmux_json *d, obj *o, const char *from, const char *to)
{
    int i = llmux_jget(h, d, 0, from);
    double x;
    if (!llmux_jis(d, i, LLMUX_JSON_PRIMITIVE) || h->json_double(d, i, &x) != 0) return;
    key(o, to);
    llmux_jw_tok(o->w, d, i);
}

/* reasoning -> thinkingConfig; returns 0 when absent. */
static void thinking(const llmux_host *h, const llmux_json *d, int64_t max_tokens, obj *o)
{
    int r = llmux_jget(h, d, 0, "reasoning");
    if (!llmux_jis(d, r, LLMUX_JSON_OBJECT)) return;
    int en = llmux_jget(h, d, r, "enabled"), mt = llmux_jget(h, d, r, "max_tokens"), eff = llmux_jget(h, d, r, "effort");
    int64_t budget = -1; /* dynamic */
    int64_t base = max_tokens > 0 ? max_tokens : 16384;
    if (en >= 0 && h->json_bool(d, en) == 0) {
        budget = 0;
    } else if (mt >= 0 && h->json_int(d, mt, &budget) == 0) {
    } else if (llmux_jis(d, eff, LLMUX_JSON_STRING)) {
        if (h->json_eq(d, eff, "high")) budget = base * 80 / 100;
        else if (h->json_eq(d, eff, "medium")) budget = base * 50 / 100;
        else if (h->json_eq(d, eff, "low")) budget = base * 20 / 100;
        else if (h->json_eq(d, eff, "minimal")) budget = base * 10 / 100;
        else if (h->json_eq(d, eff, "none")) budget = 0;
        if (budget > 0 && budget < 128) budget = 128;
    }
    key(o, "thinkingConfig");
    llmux_jw_lit(o->w, budget == 0 ? "{\"includeThoughts\":false,\"thinkingBudget\":"
                                 : "{\"includeThoughts\":true,\"thinkingBudget\":");
    llmux_jw_i64(o->w, budget);
    llmux_jw_lit(o->w, "}");
}

static int generation_config(llmux_call *c, const llmux_host *h, const llmux_json *d, llmux_jw *w)
{
    obj o = {w, 0};
    llmux_jw_lit(w, ",\"generationConfig\":{");
    if (c->req->max_tokens > 0) {
        key(&o, "maxOutputTokens");
        llmux_jw_i64(w, c->req->max_tokens);
    }
    copy_num(h, d, &o, "temperature", "temperature");
    copy_num(h, d, &o, "top_p", "topP");
    copy_num(h, d, &o, "top_k", "topK");
    copy_num(h, d, &o, "seed", "seed");
    copy_num(h, d, &o, "presence_penalty", "presencePenalty");
    copy_num(h, d, &o, "frequency_penalty", "frequencyPenalty");
    int stop = llmux_jget(h, d, 0, "stop");
    if (llmux_jis(d, stop, LLMUX_JSON_STRING)) {
        key(&o, "stopSequences");
        llmux_jw_lit(w, "[");
        llmux_jw_tok(w, d, stop);
        llmux_jw_lit(w, "]");
    } else if (llmux_jis(d, stop, LLMUX_JSON_ARRAY) && d->tok[stop].size > 0) {
        key(&o, "stopSequences");
        llmux_jw_tok(w, d, stop);
    }
    int rf = llmux_jget(h, d, 0, "response_format");
    int rft = llmux_jget(h, d, rf, "type");
    if (llmux_jis_str(h, d, rft, "json_schema")) {
        int schema = llmux_jget(h, d, llmux_jget(h, d, rf, "json_schema"), "schema");
        if (!llmux_jis(d, schema, LLMUX_JSON_OBJECT))
            return llmux_refuse(c, h, "response_format.json_schema.schema must be an object");
        key(&o, "responseMimeType");
        llmux_jw_lit(w, "\"application/json\"");
        /* responseJsonSchema takes standard JSON Schema (additionalProperties,
         * type arrays), which responseSchema's OpenAPI subset rejects. */
        key(&o, "responseJsonSchema");
        llmux_jw_tok(w, d, schema);
    } else if (llmux_jis_str(h, d, rft, "json_object")) {
        key(&o, "responseMimeType");
        llmux_jw_lit(w, "\"application/json\"");
    }
    thinking(h, d, c->req->max_tokens, &o);
    llmux_jw_lit(w, "}");
    return 0;
}

static int tools(llmux_call *c, const llmux_host *h, const llmux_json *d, llmux_jw *w)
{
    int t = llmux_jget(h, d, 0, "tools");
    if (!llmux_jis(d, t, LLMUX_JSON_ARRAY) || d->tok[t].size == 0) return 0;
    llmux_jw_lit(w, ",\"tools\":[{\"functionDeclarations\":[");
    int it = t + 1;
    for (int k = 0; k < d->tok[t].size; k++, it = h->json_skip(d, it)) {
        int params;
        int rc = llmux_function_tool(c, h, d, it, k, w, &params);
        if (rc) return rc;
        if (llmux_jis(d, params, LLMUX_JSON_OBJECT)) {
            /* parametersJsonSchema accepts standard JSON Schema as sent by OpenAI clients. */
            llmux_jw_lit(w, ",\"parametersJsonSchema\":");
            llmux_jw_tok(w, d, params);
        }
        llmux_jw_lit(w, "}");
    }
    llmux_jw_lit(w, "]}]");

    llmux_tool_choice choice;
    int name;
    int rc = llmux_tool_choice_read(c, h, d, &choice, &name);
    if (rc) return rc;
    const char *mode = NULL;
    switch (choice) {
    case LLMUX_CHOICE_NONE: mode = "NONE"; break;
    case LLMUX_CHOICE_REQUIRED: mode = "ANY"; break;
    case LLMUX_CHOICE_AUTO: mode = "AUTO"; break;
    case LLMUX_CHOICE_FUNCTION: mode = "ANY"; break;
    case LLMUX_CHOICE_UNSET: break;
    }
    if (mode) {
        llmux_jw_lit(w, ",\"toolConfig\":{\"functionCallingConfig\":{\"mode\":\"");
        llmux_jw_lit(w, mode);
        llmux_jw_lit(w, "\"");
        if (name >= 0) {
            llmux_jw_lit(w, ",\"allowedFunctionNames\":[");
            llmux_jw_tok(w, d, name);
            llmux_jw_lit(w, "]");
        }
        llmux_jw_lit(w, "}}");
    }
    return 0;
}

int gem_build_body(llmux_call *c, const gem_ctx *ctx, llmux_buf *body)
{
    const llmux_host *h = ctx->h;
    const llmux_json *d = &c->req->body;
    llmux_buf sysb = {0};
    llmux_jw w = {h, body, 0};
    llmux_jw sys = {h, &sysb, 0};
    int nsys = 0, rc;

    int n = llmux_jget(h, d, 0, "n");
    int64_t nv = 1;
    if (n >= 0 && h->json_int(d, n, &nv) == 0 && nv > 1)
        return llmux_refuse(c, h, "n > 1 is not supported for Gemini models");

    llmux_jw_lit(&w, "{");
    rc = gem_build_contents(c, ctx, &w, &sys, &nsys);
    if (rc) goto out;
    if ((rc = sys.err)) goto out;
    if (nsys) {
        llmux_jw_lit(&w, ",\"systemInstruction\":{\"parts\":[");
        llmux_jw_raw(&w, sysb.data, sysb.len);
        llmux_jw_lit(&w, "]}");
    }
    if ((rc = tools(c, h, d, &w))) goto out;
    if ((rc = generation_config(c, h, d, &w))) goto out;
    llmux_jw_lit(&w, "}");
    rc = w.err;
out:
    h->buf_free(&sysb);
    return rc;
}
