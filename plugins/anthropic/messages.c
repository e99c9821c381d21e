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
    int rc = 0;
    if (!llmux_jis(v->d, url_tok, LLMUX_JSON_STRING))
        return llmux_refuse(v->c, v->h, "%s part without a url", what);
    if (v->h->json_unescape(v->d, url_tok, &u) != 0) return LLMUX_ENOMEM;
    const char *s = u.data ? u.data : "";
    size_t n = u.len;
    const char *type = is_doc ? "document" : "image";
    if (n > 5 && memcmp(s, "data:", 5) == 0) {
        const char *comma = memchr(s, ',', n);
        const char *b64 = NULL;
        size_t mlen = 0;
        if (comma && comma - s >= 12 && memcmp(comma - 7, ";base64", 7) == 0) {
            b64 = comma + 1;
            mlen = (size_t)(comma - 7 - (s + 5));
        }
        if (!b64) {
            rc = llmux_refuse(v->c, v->h, "%s part: only base64 data: URLs are supported", what);
            goto out;
        }
        if (is_doc && !(mlen == 15 && memcmp(s + 5, "application/pdf", 15) == 0)) {
            rc = llmux_refuse(v->c, v->h, "file part: only PDF files can be sent to Anthropic");
            goto out;
        }
        begin_block(v, role);
        llmux_jw_lit(v->w, "{\"type\":\"");
        llmux_jw_lit(v->w, type);
        llmux_jw_lit(v->w, "\",\"source\":{\"type\":\"base64\",\"media_type\":");
        llmux_jw_str(v->w, s + 5, mlen);
        llmux_jw_lit(v->w, ",\"data\":");
        llmux_jw_str(v->w, b64, n - (size_t)(b64 - s));
        llmux_jw_lit(v->w, "}");
    } else if ((n > 7 && memcmp(s, "http://", 7) == 0) || (n > 8 && memcmp(s, "https://", 8) == 0)) {
        begin_block(v, role);
        llmux_jw_lit(v->w, "{\"type\":\"");
        llmux_jw_lit(v->w, type);
        llmux_jw_lit(v->w, "\",\"source\":{\"type\":\"url\",\"url\":");
        llmux_jw_str(v->w, s, n);
        llmux_jw_lit(v->w, "}");
    } else {
        rc = llmux_refuse(v->c, v->h, "%s part: url must be http(s) or a base64 data: URL", what);
        goto out;
    }
    copy_cache_control(v, part);
    llmux_jw_lit(v->w, "}");
out:
    v->h->buf_free(&u);
    return rc;
}

/* One OpenAI content part. */
static int part_block(conv *v, int role, int part)
{
    const llmux_host *h = v->h;
    const llmux_json *d = v->d;
    int type = llmux_jget(h, d, part, "type");
    if (llmux_jis_str(h, d, type, "text")) {
        int t = llmux_jget(h, d, part, "text");
        if (!llmux_jis(d, t, LLMUX_JSON_STRING))
            return llmux_refuse(v->c, h, "text part without a text string");
        text_block(v, role, t, part);
        return 0;
    }
    if (llmux_jis_str(h, d, type, "image_url")) {
        int iu = llmux_jget(h, d, part, "image_url");
        int url = llmux_jis(d, iu, LLMUX_JSON_STRING) ? iu : llmux_jget(h, d, iu, "url");
        return media_block(v, role, url, part, 0, "image_url");
    }
    if (llmux_jis_str(h, d, type, "file")) {
        int f = llmux_jget(h, d, part, "file");
        int fd = llmux_jget(h, d, f, "file_data");
        if (fd < 0)
            return llmux_refuse(v->c, h, "file part: only inline file_data is supported (no file_id)");
        return media_block(v, role, fd, part, 1, "file");
    }
    if (llmux_jis_str(h, d, type, "input_audio"))
        return llmux_refuse(v->c, h, "input_audio parts are not supported by Anthropic models");
    return llmux_refuse(v->c, h, "unsupported content part type");
}

/* content: string or array of parts. */
static int content_blocks(conv *v, int role, int content)
{
    const llmux_json *d = v->d;
    if (content < 0 || d->tok[content].type == LLMUX_JSON_PRIMITIVE) return 0; /* null */
    if (d->tok[content].type == LLMUX_JSON_STRING) {
        text_block(v, role, content, -1);
        return 0;
    }
    if (d->tok[content].type != LLMUX_JSON_ARRAY)
        return llmux_refuse(v->c, v->h, "message content must be a string or an array of parts");
    int it = content + 1;
    for (int k = 0; k < d->tok[content].size; k++, it = v->h->json_skip(d, it)) {
        int rc = part_block(v, role, it);
        if (rc) return rc;
    }
    return 0;
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
    int rc = 0;
    if (llmux_jis(d, args, LLMUX_JSON_OBJECT)) {
        begin_block(v, ROLE_ASSISTANT);
        llmux_jw_lit(v->w, "{\"type\":\"tool_use\",\"id\":");
        llmux_jw_tok(v->w, d, id);
        llmux_jw_lit(v->w, ",\"name\":");
        llmux_jw_tok(v->w, d, name);
        llmux_jw_lit(v->w, ",\"input\":");
        llmux_jw_tok(v->w, d, args);
        llmux_jw_lit(v->w, "}");
        return 0;
    }
    if (llmux_jis(d, args, LLMUX_JSON_STRING) && h->json_unescape(d, args, &a) != 0) return LLMUX_ENOMEM;
    size_t p = 0;
    while (p < a.len && (a.data[p] == ' ' || a.data[p] == '\n' || a.data[p] == '\t' || a.data[p] == '\r')) p++;
    int empty = p == a.len;
    if (!empty && (h->json_parse(a.data, a.len, &parsed) != 0 || parsed.ntok < 1 ||
                   parsed.tok[0].type != LLMUX_JSON_OBJECT)) {
        rc = llmux_refuse(v->c, h,
                          "messages[%d].tool_calls[%d].function.arguments is not a valid JSON object", mi, k);
        goto out;
    }
    begin_block(v, ROLE_ASSISTANT);
    llmux_jw_lit(v->w, "{\"type\":\"tool_use\",\"id\":");
    llmux_jw_tok(v->w, d, id);
    llmux_jw_lit(v->w, ",\"name\":");
    llmux_jw_tok(v->w, d, name);
    llmux_jw_lit(v->w, ",\"input\":");
    if (empty)
        llmux_jw_lit(v->w, "{}");
    else
        llmux_jw_raw(v->w, a.data + parsed.tok[0].start, (size_t)(parsed.tok[0].end - parsed.tok[0].start));
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
    const llmux_host *h = v->h;
    const llmux_json *d = v->d;
    if (llmux_jis(d, content, LLMUX_JSON_STRING)) {
        if (d->tok[content].end == d->tok[content].start) return 0;
        if ((*nsys)++) llmux_jw_lit(sys, ",");
        llmux_jw_lit(sys, "{\"type\":\"text\",\"text\":");
        llmux_jw_tok(sys, d, content);
        llmux_jw_lit(sys, "}");
        return 0;
    }
    if (!llmux_jis(d, content, LLMUX_JSON_ARRAY)) return 0;
    int it = content + 1;
    for (int k = 0; k < d->tok[content].size; k++, it = h->json_skip(d, it)) {
        int t = llmux_jget(h, d, it, "text");
        if (!llmux_jis_str(h, d, llmux_jget(h, d, it, "type"), "text") || !llmux_jis(d, t, LLMUX_JSON_STRING))
            return llmux_refuse(v->c, h, "system messages may contain only text parts");
        if ((*nsys)++) llmux_jw_lit(sys, ",");
        llmux_jw_lit(sys, "{\"type\":\"text\",\"text\":");
        llmux_jw_tok(sys, d, t);
        int cc = llmux_jget(h, d, it, "cache_control");
        if (llmux_jis(d, cc, LLMUX_JSON_OBJECT)) {
            llmux_jw_lit(sys, ",\"cache_control\":");
            llmux_jw_tok(sys, d, cc);
        }
        llmux_jw_lit(sys, "}");
    }
    return 0;
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
