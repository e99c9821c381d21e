/* Canonical chat-completions body -> Gemini generateContent body. */
#include "gem.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int gem_refuse(llmux_call *c, const llmux_host *h, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    h->emit_error(c, 400, msg, NULL, 0, 0);
    return LLMUX_EINVAL;
}

/* Writes `,"key":value` inside an object, opening it on first use. */
typedef struct {
    gem_jw *w;
    int n;
} obj;

static void key(obj *o, const char *k)
{
    gem_jw_lit(o->w, o->n++ ? ",\"" : "\"");
    gem_jw_lit(o->w, k);
    gem_jw_lit(o->w, "\":");
}

static void copy_num(const llmux_host *h, const llmux_json *d, obj *o, const char *from, const char *to)
{
    int i = gem_get(h, d, 0, from);
    double x;
    if (!gem_is(d, i, LLMUX_JSON_PRIMITIVE) || h->json_double(d, i, &x) != 0) return;
    key(o, to);
    gem_jw_tok(o->w, d, i);
}

/* reasoning -> thinkingConfig; returns 0 when absent. */
static void thinking(const llmux_host *h, const llmux_json *d, int64_t max_tokens, obj *o)
{
    int r = gem_get(h, d, 0, "reasoning");
    if (!gem_is(d, r, LLMUX_JSON_OBJECT)) return;
    int en = gem_get(h, d, r, "enabled"), mt = gem_get(h, d, r, "max_tokens"), eff = gem_get(h, d, r, "effort");
    int64_t budget = -1; /* dynamic */
    int64_t base = max_tokens > 0 ? max_tokens : 16384;
    if (en >= 0 && h->json_bool(d, en) == 0) {
        budget = 0;
    } else if (mt >= 0 && h->json_int(d, mt, &budget) == 0) {
    } else if (gem_is(d, eff, LLMUX_JSON_STRING)) {
        if (h->json_eq(d, eff, "high")) budget = base * 80 / 100;
        else if (h->json_eq(d, eff, "medium")) budget = base * 50 / 100;
        else if (h->json_eq(d, eff, "low")) budget = base * 20 / 100;
        else if (h->json_eq(d, eff, "minimal")) budget = base * 10 / 100;
        else if (h->json_eq(d, eff, "none")) budget = 0;
        if (budget > 0 && budget < 128) budget = 128;
    }
    key(o, "thinkingConfig");
    gem_jw_lit(o->w, budget == 0 ? "{\"includeThoughts\":false,\"thinkingBudget\":"
                                 : "{\"includeThoughts\":true,\"thinkingBudget\":");
    gem_jw_i64(o->w, budget);
    gem_jw_lit(o->w, "}");
}

static int generation_config(llmux_call *c, const llmux_host *h, const llmux_json *d, gem_jw *w)
{
    obj o = {w, 0};
    gem_jw_lit(w, ",\"generationConfig\":{");
    if (c->req->max_tokens > 0) {
        key(&o, "maxOutputTokens");
        gem_jw_i64(w, c->req->max_tokens);
    }
    copy_num(h, d, &o, "temperature", "temperature");
    copy_num(h, d, &o, "top_p", "topP");
    copy_num(h, d, &o, "top_k", "topK");
    copy_num(h, d, &o, "seed", "seed");
    copy_num(h, d, &o, "presence_penalty", "presencePenalty");
    copy_num(h, d, &o, "frequency_penalty", "frequencyPenalty");
    int stop = gem_get(h, d, 0, "stop");
    if (gem_is(d, stop, LLMUX_JSON_STRING)) {
        key(&o, "stopSequences");
        gem_jw_lit(w, "[");
        gem_jw_tok(w, d, stop);
        gem_jw_lit(w, "]");
    } else if (gem_is(d, stop, LLMUX_JSON_ARRAY) && d->tok[stop].size > 0) {
        key(&o, "stopSequences");
        gem_jw_tok(w, d, stop);
    }
    int rf = gem_get(h, d, 0, "response_format");
    int rft = gem_get(h, d, rf, "type");
    if (gem_is_str(h, d, rft, "json_schema")) {
        int schema = gem_get(h, d, gem_get(h, d, rf, "json_schema"), "schema");
        if (!gem_is(d, schema, LLMUX_JSON_OBJECT))
            return gem_refuse(c, h, "response_format.json_schema.schema must be an object");
        key(&o, "responseMimeType");
        gem_jw_lit(w, "\"application/json\"");
        /* responseJsonSchema takes standard JSON Schema (additionalProperties,
         * type arrays), which responseSchema's OpenAPI subset rejects. */
        key(&o, "responseJsonSchema");
        gem_jw_tok(w, d, schema);
    } else if (gem_is_str(h, d, rft, "json_object")) {
        key(&o, "responseMimeType");
        gem_jw_lit(w, "\"application/json\"");
    }
    thinking(h, d, c->req->max_tokens, &o);
    gem_jw_lit(w, "}");
    return 0;
}

static int tools(llmux_call *c, const llmux_host *h, const llmux_json *d, gem_jw *w)
{
    int t = gem_get(h, d, 0, "tools");
    if (!gem_is(d, t, LLMUX_JSON_ARRAY) || d->tok[t].size == 0) return 0;
    gem_jw_lit(w, ",\"tools\":[{\"functionDeclarations\":[");
    int it = t + 1;
    for (int k = 0; k < d->tok[t].size; k++, it = h->json_skip(d, it)) {
        int fn = gem_get(h, d, it, "function");
        int name = gem_get(h, d, fn, "name");
        if (!gem_is_str(h, d, gem_get(h, d, it, "type"), "function") || !gem_is(d, name, LLMUX_JSON_STRING))
            return gem_refuse(c, h, "tools[%d]: only function tools with a name are supported", k);
        if (k) gem_jw_lit(w, ",");
        gem_jw_lit(w, "{\"name\":");
        gem_jw_tok(w, d, name);
        int desc = gem_get(h, d, fn, "description");
        if (gem_is(d, desc, LLMUX_JSON_STRING)) {
            gem_jw_lit(w, ",\"description\":");
            gem_jw_tok(w, d, desc);
        }
        int params = gem_get(h, d, fn, "parameters");
        if (gem_is(d, params, LLMUX_JSON_OBJECT)) {
            /* parametersJsonSchema accepts standard JSON Schema as sent by OpenAI clients. */
            gem_jw_lit(w, ",\"parametersJsonSchema\":");
            gem_jw_tok(w, d, params);
        }
        gem_jw_lit(w, "}");
    }
    gem_jw_lit(w, "]}]");

    int tc = gem_get(h, d, 0, "tool_choice");
    const char *mode = NULL;
    int name = -1;
    if (gem_is(d, tc, LLMUX_JSON_STRING)) {
        if (h->json_eq(d, tc, "none")) mode = "NONE";
        else if (h->json_eq(d, tc, "required")) mode = "ANY";
        else if (h->json_eq(d, tc, "auto")) mode = "AUTO";
        else return gem_refuse(c, h, "tool_choice: unknown value");
    } else if (gem_is(d, tc, LLMUX_JSON_OBJECT)) {
        name = gem_get(h, d, gem_get(h, d, tc, "function"), "name");
        if (!gem_is(d, name, LLMUX_JSON_STRING))
            return gem_refuse(c, h, "tool_choice: expected {type:\"function\",function:{name}}");
        mode = "ANY";
    }
    if (mode) {
        gem_jw_lit(w, ",\"toolConfig\":{\"functionCallingConfig\":{\"mode\":\"");
        gem_jw_lit(w, mode);
        gem_jw_lit(w, "\"");
        if (name >= 0) {
            gem_jw_lit(w, ",\"allowedFunctionNames\":[");
            gem_jw_tok(w, d, name);
            gem_jw_lit(w, "]");
        }
        gem_jw_lit(w, "}}");
    }
    return 0;
}

int gem_build_body(llmux_call *c, const gem_ctx *ctx, llmux_buf *body)
{
    const llmux_host *h = ctx->h;
    const llmux_json *d = &c->req->body;
    llmux_buf sysb = {0};
    gem_jw w = {h, body, 0};
    gem_jw sys = {h, &sysb, 0};
    int nsys = 0, rc;

    int n = gem_get(h, d, 0, "n");
    int64_t nv = 1;
    if (n >= 0 && h->json_int(d, n, &nv) == 0 && nv > 1)
        return gem_refuse(c, h, "n > 1 is not supported for Gemini models");

    gem_jw_lit(&w, "{");
    rc = gem_build_contents(c, ctx, &w, &sys, &nsys);
    if (rc) goto out;
    if ((rc = sys.err)) goto out;
    if (nsys) {
        gem_jw_lit(&w, ",\"systemInstruction\":{\"parts\":[");
        gem_jw_raw(&w, sysb.data, sysb.len);
        gem_jw_lit(&w, "]}");
    }
    if ((rc = tools(c, h, d, &w))) goto out;
    if ((rc = generation_config(c, h, d, &w))) goto out;
    gem_jw_lit(&w, "}");
    rc = w.err;
out:
    h->buf_free(&sysb);
    return rc;
}
