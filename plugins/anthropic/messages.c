/* OpenAI messages[] -> Anthropic system + messages. */
#include "anth.h"

#include <string.h>

enum { ROLE_NONE = 0, ROLE_USER = 1, ROLE_ASSISTANT = 2 };

typedef struct {
    llmux_call *c;
    const llmux_host *h;
    const llmux_json *d;
    llmux_jw *w;
    int cur;     /* role of the open message */
    int nmsg;    /* messages written */
    int nblk;    /* blocks in the open message */
    int inner;   /* >=0: writing into a tool_result content array */
} conv;

/* Starts a content block of `role`: opens/merges messages and writes commas. */
static void begin_block(conv *v, int role)
{
    if (v->inner >= 0) {
        if (v->inner++) llmux_jw_lit(v->w, ",");
        return;
    }
    if (v->cur != role) {
        if (v->cur) llmux_jw_lit(v->w, "]}");
        if (v->nmsg++) llmux_jw_lit(v->w, ",");
        llmux_jw_lit(v->w, role == ROLE_USER ? "{\"role\":\"user\",\"content\":["
                                            : "{\"role\":\"assistant\",\"content\":[");
        v->cur = role;
        v->nblk = 0;
    }
    if (v->nblk++) llmux_jw_lit(v->w, ",");
}

static void copy_cache_control(conv *v, int part)
{
    int cc = llmux_jget(v->h, v->d, part, "cache_control");
    if (llmux_jis(v->d, cc, LLMUX_JSON_OBJECT)) {
        llmux_jw_lit(v->w, ",\"cache_control\":");
        llmux_jw_tok(v->w, v->d, cc);
    }
}

static void text_block(conv *v, int role, int str_tok, int part)
{
    if (v->d->tok[str_tok].end == v->d->tok[str_tok].start) return; /* empty text is rejected upstream */
    begin_block(v, role);
    llmux_jw_lit(v->w, "{\"type\":\"text\",\"text\":");
    llmux_jw_tok(v->w, v->d, str_tok);
    if (part >= 0) copy_cache_control(v, part);
    llmux_jw_lit(v->w, "}");
}

/* Writes an image/document block from a URL (http(s) or base64 data URL). */
static int media_block(conv *v, int role, int url_tok, int part, int is_doc, const char *what)
{
    llmux_buf u = {0};
    llmux_media_url m;
    int rc = llmux_part_url(v->c, v->h, v->d, url_tok, what, &u, &m);
    if (rc) goto out;
    const char *type = is_doc ? "document" : "image";
    if (m.mime) {
        if (is_doc && !(m.mime_len == 15 && memcmp(m.mime, "application/pdf", 15) == 0)) {
            rc = llmux_refuse(v->c, v->h, "file part: only PDF files can be sent to Anthropic");
            goto out;
        }
        begin_block(v, role);
        llmux_jw_lit(v->w, "{\"type\":\"");
        llmux_jw_lit(v->w, type);
        llmux_jw_lit(v->w, "\",\"source\":{\"type\":\"base64\",\"media_type\":");
        llmux_jw_str(v->w, m.mime, m.mime_len);
        llmux_jw_lit(v->w, ",\"data\":");
        llmux_jw_str(v->w, m.data, m.data_len);
        llmux_jw_lit(v->w, "}");
    } else {
        begin_block(v, role);
        llmux_jw_lit(v->w, "{\"type\":\"");
        llmux_jw_lit(v->w, type);
        llmux_jw_lit(v->w, "\",\"source\":{\"type\":\"url\",\"url\":");
        llmux_jw_str(v->w, m.url, m.url_len);
        llmux_jw_lit(v->w, "}");
    }
    copy_cache_control(v, part);
    llmux_jw_lit(v->w, "}");
out:
    v->h->buf_free(&u);
    return rc;
}

typedef struct {
    conv *v;
    int role;
} part_arg;

static void text_cb(void *arg, int str_tok)
{
    part_arg *pa = arg;
    text_block(pa->v, pa->role, str_tok, -1);
}

/* One OpenAI content part. */
static int part_cb(void *arg, int part)
{
    part_arg *pa = arg;
    conv *v = pa->v;
    llmux_part_kind kind;
    int val;
    int rc = llmux_part_read(v->c, v->h, v->d, part, &kind, &val);
    if (rc) return rc;
    switch (kind) {
    case LLMUX_PART_TEXT: text_block(v, pa->role, val, part); return 0;
    case LLMUX_PART_IMAGE: return media_block(v, pa->role, val, part, 0, "image_url");
    case LLMUX_PART_FILE: return media_block(v, pa->role, val, part, 1, "file");
    case LLMUX_PART_AUDIO: break;
    }
    return llmux_refuse(v->c, v->h, "input_audio parts are not supported by Anthropic models");
}

/* content: string or array of parts. */
static int content_blocks(conv *v, int role, int content)
{
    part_arg pa = {v, role};
    return llmux_content_each(v->c, v->h, v->d, content, text_cb, part_cb, &pa);
}

/* Earlier-turn reasoning_details -> thinking / redacted_thinking blocks. */
static void reasoning_blocks(conv *v, int details)
{
    const llmux_host *h = v->h;
    const llmux_json *d = v->d;
    if (!llmux_jis(d, details, LLMUX_JSON_ARRAY)) return;
    int it = details + 1;
    for (int k = 0; k < d->tok[details].size; k++, it = h->json_skip(d, it)) {
        int type = llmux_jget(h, d, it, "type");
        int fmt = llmux_jget(h, d, it, "format");
        if (fmt >= 0 && !llmux_jis_str(h, d, fmt, "anthropic-claude-v1")) continue;
        if (llmux_jis_str(h, d, type, "reasoning.text")) {
            int text = llmux_jget(h, d, it, "text");
            int sig = llmux_jget(h, d, it, "signature");
            if (!llmux_jis(d, sig, LLMUX_JSON_STRING) || !llmux_jis(d, text, LLMUX_JSON_STRING)) continue;
            begin_block(v, ROLE_ASSISTANT);
            llmux_jw_lit(v->w, "{\"type\":\"thinking\",\"thinking\":");
            llmux_jw_tok(v->w, d, text);
            llmux_jw_lit(v->w, ",\"signature\":");
            llmux_jw_tok(v->w, d, sig);
            llmux_jw_lit(v->w, "}");
        } else if (llmux_jis_str(h, d, type, "reasoning.encrypted")) {
            int data = llmux_jget(h, d, it, "data");
            if (!llmux_jis(d, data, LLMUX_JSON_STRING)) continue;
            begin_block(v, ROLE_ASSISTANT);
            llmux_jw_lit(v->w, "{\"type\":\"redacted_thinking\",\"data\":");
            llmux_jw_tok(v->w, d, data);
            llmux_jw_lit(v->w, "}");
        }
    }
}

/* Tool call arguments are a JSON-encoded string; Anthropic wants the object. */
static int tool_use_block(conv *v, int mi, int k, int tc)
{
    const llmux_host *h = v->h;
    const llmux_json *d = v->d;
    int id = llmux_jget(h, d, tc, "id");
    int fn = llmux_jget(h, d, tc, "function");
    int name = llmux_jget(h, d, fn, "name");
    int args = llmux_jget(h, d, fn, "arguments");
    if (!llmux_jis(d, id, LLMUX_JSON_STRING) || !llmux_jis(d, name, LLMUX_JSON_STRING))
        return llmux_refuse(v->c, h, "messages[%d].tool_calls[%d] needs an id and function.name", mi, k);
    llmux_buf a = {0};
    llmux_json parsed = {0};
    const char *obj;
    size_t n;
    int rc = llmux_tool_args(h, d, args, &a, &parsed, &obj, &n);
    if (rc == LLMUX_EINVAL)
        rc = llmux_refuse(v->c, h,
                          "messages[%d].tool_calls[%d].function.arguments is not a valid JSON object", mi, k);
    if (rc) goto out;
    begin_block(v, ROLE_ASSISTANT);
    llmux_jw_lit(v->w, "{\"type\":\"tool_use\",\"id\":");
    llmux_jw_tok(v->w, d, id);
    llmux_jw_lit(v->w, ",\"name\":");
    llmux_jw_tok(v->w, d, name);
    llmux_jw_lit(v->w, ",\"input\":");
    llmux_jw_raw(v->w, obj, n);
    llmux_jw_lit(v->w, "}");
out:
    if (parsed.tok) h->json_release(&parsed);
    h->buf_free(&a);
    return rc;
}

static int tool_result_block(conv *v, int mi, int msg)
{
    const llmux_host *h = v->h;
    const llmux_json *d = v->d;
    int id = llmux_jget(h, d, msg, "tool_call_id");
    int content = llmux_jget(h, d, msg, "content");
    if (!llmux_jis(d, id, LLMUX_JSON_STRING))
        return llmux_refuse(v->c, h, "messages[%d]: tool message without tool_call_id", mi);
    begin_block(v, ROLE_USER);
    llmux_jw_lit(v->w, "{\"type\":\"tool_result\",\"tool_use_id\":");
    llmux_jw_tok(v->w, d, id);
    if (llmux_jis(d, content, LLMUX_JSON_STRING)) {
        llmux_jw_lit(v->w, ",\"content\":");
        llmux_jw_tok(v->w, d, content);
    } else if (llmux_jis(d, content, LLMUX_JSON_ARRAY)) {
        llmux_jw_lit(v->w, ",\"content\":[");
        v->inner = 0;
        int rc = content_blocks(v, ROLE_USER, content);
        v->inner = -1;
        if (rc) return rc;
        llmux_jw_lit(v->w, "]");
    }
    llmux_jw_lit(v->w, "}");
    return 0;
}

/* system/developer content -> top-level system text blocks. */
static int system_blocks(conv *v, llmux_jw *sys, int *nsys, int content)
{
    return llmux_system_text(v->c, v->h, v->d, content, sys, nsys, "{\"type\":\"text\",\"text\":",
                             LLMUX_SYS_TYPED | LLMUX_SYS_CACHE_CONTROL);
}

int anth_build_messages(llmux_call *c, const anth_ctx *ctx, llmux_jw *w, llmux_jw *sys, int *nsys)
{
    const llmux_json *d = &c->req->body;
    conv v = {c, ctx->h, d, w, ROLE_NONE, 0, 0, -1};
    const llmux_host *h = ctx->h;
    int msgs = llmux_jget(h, d, 0, "messages");
    int rc = 0;

    llmux_jw_lit(w, "\"messages\":[");
    if (!llmux_jis(d, msgs, LLMUX_JSON_ARRAY)) {
        int prompt = llmux_jget(h, d, 0, "prompt");
        if (!llmux_jis(d, prompt, LLMUX_JSON_STRING))
            return llmux_refuse(c, h, "messages must be an array");
        text_block(&v, ROLE_USER, prompt, -1);
    } else {
        int it = msgs + 1;
        for (int mi = 0; mi < d->tok[msgs].size && !rc; mi++, it = h->json_skip(d, it)) {
            int role = llmux_jget(h, d, it, "role");
            int content = llmux_jget(h, d, it, "content");
            if (llmux_jis_str(h, d, role, "system") || llmux_jis_str(h, d, role, "developer")) {
                rc = system_blocks(&v, sys, nsys, content);
            } else if (llmux_jis_str(h, d, role, "user")) {
                rc = content_blocks(&v, ROLE_USER, content);
            } else if (llmux_jis_str(h, d, role, "assistant")) {
                reasoning_blocks(&v, llmux_jget(h, d, it, "reasoning_details"));
                rc = content_blocks(&v, ROLE_ASSISTANT, content);
                int tcs = llmux_jget(h, d, it, "tool_calls");
                if (!rc && llmux_jis(d, tcs, LLMUX_JSON_ARRAY)) {
                    int tc = tcs + 1;
                    for (int k = 0; k < d->tok[tcs].size && !rc; k++, tc = h->json_skip(d, tc))
                        rc = tool_use_block(&v, mi, k, tc);
                }
            } else if (llmux_jis_str(h, d, role, "tool")) {
                rc = tool_result_block(&v, mi, it);
            } else {
                rc = llmux_refuse(c, h, "messages[%d]: unsupported role", mi);
            }
        }
    }
    if (rc) return rc;
    if (v.cur) llmux_jw_lit(w, "]}");
    llmux_jw_lit(w, "]");
    if (v.nmsg == 0) return llmux_refuse(c, h, "the conversation has no user or assistant content");
    return w->err;
}
