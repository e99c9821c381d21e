/* OpenAI messages[] -> Gemini contents[] + systemInstruction parts. */
#include "gem.h"

#include <string.h>
#include <strings.h>

enum { ROLE_NONE = 0, ROLE_USER = 1, ROLE_MODEL = 2 };

typedef struct {
    llmux_call *c;
    const llmux_host *h;
    const llmux_json *d;
    llmux_jw *w;
    int msgs;   /* messages array token */
    int cur, nmsg, npart;
} conv;

static void begin_part(conv *v, int role)
{
    if (v->cur != role) {
        if (v->cur) llmux_jw_lit(v->w, "]}");
        if (v->nmsg++) llmux_jw_lit(v->w, ",");
        llmux_jw_lit(v->w, role == ROLE_USER ? "{\"role\":\"user\",\"parts\":[" : "{\"role\":\"model\",\"parts\":[");
        v->cur = role;
        v->npart = 0;
    }
    if (v->npart++) llmux_jw_lit(v->w, ",");
}

static void text_part(conv *v, int role, int t)
{
    if (v->d->tok[t].end == v->d->tok[t].start) return;
    begin_part(v, role);
    llmux_jw_lit(v->w, "{\"text\":");
    llmux_jw_tok(v->w, v->d, t);
    llmux_jw_lit(v->w, "}");
}

/* Guesses a MIME type from a URL's file extension (query ignored). */
static const char *guess_mime(const char *s, size_t n, const char *fallback)
{
    static const struct { const char *ext, *mime; } map[] = {
        {".png", "image/png"},   {".jpg", "image/jpeg"},     {".jpeg", "image/jpeg"},
        {".webp", "image/webp"}, {".gif", "image/gif"},      {".heic", "image/heic"},
        {".pdf", "application/pdf"}, {".mp3", "audio/mp3"},  {".wav", "audio/wav"},
        {".mp4", "video/mp4"},   {".txt", "text/plain"},
    };
    const char *q = memchr(s, '?', n);
    if (q) n = (size_t)(q - s);
    const char *hash = memchr(s, '#', n);
    if (hash) n = (size_t)(hash - s);
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        size_t el = strlen(map[i].ext);
        if (n > el && strncasecmp(s + n - el, map[i].ext, el) == 0) return map[i].mime;
    }
    return fallback;
}

static int media_part(conv *v, int role, int url_tok, const char *fallback_mime, const char *what)
{
    llmux_buf u = {0};
    llmux_media_url m;
    int rc = llmux_part_url(v->c, v->h, v->d, url_tok, what, &u, &m);
    if (rc) goto out;
    begin_part(v, role);
    if (m.mime) {
        llmux_jw_lit(v->w, "{\"inlineData\":{\"mimeType\":");
        llmux_jw_str(v->w, m.mime, m.mime_len);
        llmux_jw_lit(v->w, ",\"data\":");
        llmux_jw_str(v->w, m.data, m.data_len);
        llmux_jw_lit(v->w, "}}");
    } else {
        llmux_jw_lit(v->w, "{\"fileData\":{\"mimeType\":\"");
        llmux_jw_lit(v->w, guess_mime(m.url, m.url_len, fallback_mime));
        llmux_jw_lit(v->w, "\",\"fileUri\":");
        llmux_jw_str(v->w, m.url, m.url_len);
        llmux_jw_lit(v->w, "}}");
    }
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
    text_part(pa->v, pa->role, str_tok);
}

static int part_cb(void *arg, int p)
{
    part_arg *pa = arg;
    conv *v = pa->v;
    const llmux_host *h = v->h;
    const llmux_json *d = v->d;
    llmux_part_kind kind;
    int val;
    int rc = llmux_part_read(v->c, h, d, p, &kind, &val);
    if (rc) return rc;
    switch (kind) {
    case LLMUX_PART_TEXT: text_part(v, pa->role, val); return 0;
    case LLMUX_PART_IMAGE: return media_part(v, pa->role, val, "image/jpeg", "image_url");
    case LLMUX_PART_FILE: return media_part(v, pa->role, val, "application/pdf", "file");
    case LLMUX_PART_AUDIO: break;
    }
    int data = llmux_jget(h, d, val, "data"), fmt = llmux_jget(h, d, val, "format");
    if (!llmux_jis(d, data, LLMUX_JSON_STRING) || !llmux_jis(d, fmt, LLMUX_JSON_STRING))
        return llmux_refuse(v->c, h, "input_audio part needs data and format");
    begin_part(v, pa->role);
    llmux_jw_lit(v->w, "{\"inlineData\":{\"mimeType\":\"audio/");
    size_t fl;
    const char *fs = llmux_jraw(d, fmt, &fl);
    llmux_jw_raw(v->w, fs, fl);
    llmux_jw_lit(v->w, "\",\"data\":");
    llmux_jw_tok(v->w, d, data);
    llmux_jw_lit(v->w, "}}");
    return 0;
}

static int content_parts(conv *v, int role, int content)
{
    part_arg pa = {v, role};
    return llmux_content_each(v->c, v->h, v->d, content, text_cb, part_cb, &pa);
}

static int same_str(const llmux_json *d, int a, int b)
{
    size_t na, nb;
    const char *sa = llmux_jraw(d, a, &na), *sb = llmux_jraw(d, b, &nb);
    return na == nb && memcmp(sa, sb, na) == 0;
}

/* reasoning_details entry carrying Gemini's thoughtSignature for a call id. */
static int find_signature(conv *v, int details, int id)
{
    const llmux_host *h = v->h;
    const llmux_json *d = v->d;
    if (!llmux_jis(d, details, LLMUX_JSON_ARRAY)) return -1;
    int it = details + 1;
    for (int k = 0; k < d->tok[details].size; k++, it = h->json_skip(d, it)) {
        int rid = llmux_jget(h, d, it, "id"), data = llmux_jget(h, d, it, "data");
        if (llmux_jis_str(h, d, llmux_jget(h, d, it, "type"), "reasoning.encrypted") &&
            llmux_jis_str(h, d, llmux_jget(h, d, it, "format"), "google-gemini-v1") &&
            llmux_jis(d, rid, LLMUX_JSON_STRING) && llmux_jis(d, data, LLMUX_JSON_STRING) && same_str(d, rid, id))
            return data;
    }
    return -1;
}

static int function_call_part(conv *v, int mi, int k, int tc, int details)
{
    const llmux_host *h = v->h;
    const llmux_json *d = v->d;
    int id = llmux_jget(h, d, tc, "id");
    int fn = llmux_jget(h, d, tc, "function");
    int name = llmux_jget(h, d, fn, "name");
    int args = llmux_jget(h, d, fn, "arguments");
    if (!llmux_jis(d, name, LLMUX_JSON_STRING))
        return llmux_refuse(v->c, h, "messages[%d].tool_calls[%d] needs function.name", mi, k);
    llmux_buf a = {0};
    llmux_json parsed = {0};
    const char *obj;
    size_t n;
    int rc = llmux_tool_args(h, d, args, &a, &parsed, &obj, &n);
    if (rc == LLMUX_EINVAL)
        rc = llmux_refuse(v->c, h, "messages[%d].tool_calls[%d].function.arguments is not a valid JSON object",
                          mi, k);
    if (rc) goto out;
    begin_part(v, ROLE_MODEL);
    llmux_jw_lit(v->w, "{\"functionCall\":{\"name\":");
    llmux_jw_tok(v->w, d, name);
    llmux_jw_lit(v->w, ",\"args\":");
    llmux_jw_raw(v->w, obj, n);
    llmux_jw_lit(v->w, "}");
    int sig = llmux_jis(d, id, LLMUX_JSON_STRING) ? find_signature(v, details, id) : -1;
    if (sig >= 0) {
        llmux_jw_lit(v->w, ",\"thoughtSignature\":");
        llmux_jw_tok(v->w, d, sig);
    }
    llmux_jw_lit(v->w, "}");
out:
    if (parsed.tok) h->json_release(&parsed);
    h->buf_free(&a);
    return rc;
}

/* The function name of the earlier tool call with this id, or -1. */
static int lookup_call_name(conv *v, int upto, int id)
{
    const llmux_host *h = v->h;
    const llmux_json *d = v->d;
    int it = v->msgs + 1;
    for (int mi = 0; mi < upto; mi++, it = h->json_skip(d, it)) {
        int tcs = llmux_jget(h, d, it, "tool_calls");
        if (!llmux_jis(d, tcs, LLMUX_JSON_ARRAY)) continue;
        int tc = tcs + 1;
        for (int k = 0; k < d->tok[tcs].size; k++, tc = h->json_skip(d, tc)) {
            int tid = llmux_jget(h, d, tc, "id");
            if (llmux_jis(d, tid, LLMUX_JSON_STRING) && same_str(d, tid, id)) {
                int name = llmux_jget(h, d, llmux_jget(h, d, tc, "function"), "name");
                if (llmux_jis(d, name, LLMUX_JSON_STRING)) return name;
            }
        }
    }
    return -1;
}

static int function_response_part(conv *v, int mi, int msg)
{
    const llmux_host *h = v->h;
    const llmux_json *d = v->d;
    int id = llmux_jget(h, d, msg, "tool_call_id");
    int content = llmux_jget(h, d, msg, "content");
    int name = llmux_jis(d, id, LLMUX_JSON_STRING) ? lookup_call_name(v, mi, id) : -1;
    if (name < 0) name = llmux_jget(h, d, msg, "name");
    if (!llmux_jis(d, name, LLMUX_JSON_STRING))
        return llmux_refuse(v->c, h, "messages[%d]: tool message does not match an earlier tool call id", mi);
    llmux_buf text = {0};
    llmux_json parsed = {0};
    int rc = 0;
    if (llmux_jis(d, content, LLMUX_JSON_STRING)) {
        rc = h->json_unescape(d, content, &text);
    } else if (llmux_jis(d, content, LLMUX_JSON_ARRAY)) {
        int it = content + 1;
        for (int k = 0; k < d->tok[content].size && !rc; k++, it = h->json_skip(d, it)) {
            int t = llmux_jget(h, d, it, "text");
            if (llmux_jis(d, t, LLMUX_JSON_STRING)) rc = h->json_unescape(d, t, &text);
        }
    }
    if (rc) goto out;
    begin_part(v, ROLE_USER);
    llmux_jw_lit(v->w, "{\"functionResponse\":{\"name\":");
    llmux_jw_tok(v->w, d, name);
    llmux_jw_lit(v->w, ",\"response\":");
    if (text.len && h->json_parse(text.data, text.len, &parsed) == 0 && parsed.tok[0].type == LLMUX_JSON_OBJECT) {
        llmux_jw_raw(v->w, text.data + parsed.tok[0].start, (size_t)(parsed.tok[0].end - parsed.tok[0].start));
    } else {
        llmux_jw_lit(v->w, "{\"content\":");
        llmux_jw_str(v->w, text.data ? text.data : "", text.len);
        llmux_jw_lit(v->w, "}");
    }
    llmux_jw_lit(v->w, "}}");
out:
    if (parsed.tok) h->json_release(&parsed);
    h->buf_free(&text);
    return rc;
}

static int system_parts(conv *v, llmux_jw *sys, int *nsys, int content)
{
    return llmux_system_text(v->c, v->h, v->d, content, sys, nsys, "{\"text\":", 0);
}

int gem_build_contents(llmux_call *c, const gem_ctx *ctx, llmux_jw *w, llmux_jw *sys, int *nsys)
{
    const llmux_host *h = ctx->h;
    const llmux_json *d = &c->req->body;
    int msgs = llmux_jget(h, d, 0, "messages");
    conv v = {c, h, d, w, msgs, ROLE_NONE, 0, 0};
    int rc = 0;
    llmux_jw_lit(w, "\"contents\":[");
    if (!llmux_jis(d, msgs, LLMUX_JSON_ARRAY)) {
        int prompt = llmux_jget(h, d, 0, "prompt");
        if (!llmux_jis(d, prompt, LLMUX_JSON_STRING)) return llmux_refuse(c, h, "messages must be an array");
        text_part(&v, ROLE_USER, prompt);
    } else {
        int it = msgs + 1;
        for (int mi = 0; mi < d->tok[msgs].size && !rc; mi++, it = h->json_skip(d, it)) {
            int role = llmux_jget(h, d, it, "role");
            int content = llmux_jget(h, d, it, "content");
            if (llmux_jis_str(h, d, role, "system") || llmux_jis_str(h, d, role, "developer")) {
                rc = system_parts(&v, sys, nsys, content);
            } else if (llmux_jis_str(h, d, role, "user")) {
                rc = content_parts(&v, ROLE_USER, content);
            } else if (llmux_jis_str(h, d, role, "assistant")) {
                rc = content_parts(&v, ROLE_MODEL, content);
                int tcs = llmux_jget(h, d, it, "tool_calls");
                int details = llmux_jget(h, d, it, "reasoning_details");
                if (!rc && llmux_jis(d, tcs, LLMUX_JSON_ARRAY)) {
                    int tc = tcs + 1;
                    for (int k = 0; k < d->tok[tcs].size && !rc; k++, tc = h->json_skip(d, tc))
                        rc = function_call_part(&v, mi, k, tc, details);
                }
            } else if (llmux_jis_str(h, d, role, "tool")) {
                rc = function_response_part(&v, mi, it);
            } else {
                rc = llmux_refuse(c, h, "messages[%d]: unsupported role", mi);
            }
        }
    }
    if (rc) return rc;
    if (v.cur) llmux_jw_lit(w, "]}");
    llmux_jw_lit(w, "]");
    if (!v.nmsg) return llmux_refuse(c, h, "the conversation has no user or assistant content");
    return w->err;
}
