/* Anthropic Messages request -> canonical chat-completions body.
 *
 * Strings are copied as they appear in the source (still JSON-escaped), so
 * nothing is unescaped and re-escaped on the way through. The mapping is
 * documented in docs/mapping-anthropic-inbound.md. */
#include "messages_in.h"
#include "buf.h"
#include "exchange.h"
#include "json.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const llmux_json *d;
    llmux_buf *b;    /* the canonical body */
    char *msg; size_t mlen;
    int nmsg;        /* messages written so far (for the commas) */
} tx;

static int bad(tx *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(tx *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->msg, t->mlen, fmt, ap);
    va_end(ap);
    return -1;
}

static int is(const llmux_json *d, int i, llmux_json_type ty) { return i >= 0 && d->tok[i].type == ty; }
static int present(const llmux_json *d, int i) { return i >= 0 && !llmux_json_is_null(d, i); }

/* Appends the escaped content of string token i (no quotes). */
static void str_body(llmux_buf *b, const llmux_json *d, int i)
{
    size_t n;
    const char *s = llmux_json_raw(d, i, &n);
    llmux_buf_append(b, s, n);
}

static int type_is(const llmux_json *d, int obj, const char *type)
{
    int ty = llmux_json_get(d, obj, "type");
    return is(d, ty, LLMUX_JSON_STRING) && llmux_json_eq(d, ty, type);
}

/* The block's "type" as a printable string (for messages). */
static const char *type_name(const llmux_json *d, int obj, char *tmp, size_t n)
{
    int ty = llmux_json_get(d, obj, "type");
    if (!is(d, ty, LLMUX_JSON_STRING)) return "(none)";
    size_t l;
    const char *s = llmux_json_raw(d, ty, &l);
    snprintf(tmp, n, "%.*s", (int)(l < 40 ? l : 40), s);
    return tmp;
}

/* Raw JSON of an object (any whitespace) as the content of a JSON string:
 * insignificant whitespace dropped, then escaped. */
static void append_json_as_string(llmux_buf *b, const char *s, size_t n)
{
    llmux_buf compact = {0};
    int in_str = 0, esc = 0;
    for (size_t k = 0; k < n; k++) {
        char c = s[k];
        if (in_str) {
            if (esc) esc = 0;
            else if (c == '\\') esc = 1;
            else if (c == '"') in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            continue;
        }
        llmux_buf_append_char(&compact, c);
    }
    llmux_buf_append_escaped(b, compact.data ? compact.data : "", compact.len);
    llmux_buf_free(&compact);
}

static void begin_message(tx *t, const char *role)
{
    if (t->nmsg++) llmux_buf_append_char(t->b, ',');
    llmux_buf_printf(t->b, "{\"role\":\"%s\",\"content\":", role);
}

static void copy_cache_control(llmux_buf *b, const llmux_json *d, int blk)
{
    int cc = llmux_json_get(d, blk, "cache_control");
    if (is(d, cc, LLMUX_JSON_OBJECT)) {
        llmux_buf_append_str(b, ",\"cache_control\":");
        llmux_json_append_raw(b, d, cc);
    }
}

/* A text block -> {"type":"text","text":...}. */
static int text_part(tx *t, llmux_buf *pb, int blk, const char *where)
{
    int text = llmux_json_get(t->d, blk, "text");
    if (!is(t->d, text, LLMUX_JSON_STRING)) return bad(t, "%s.text: Field required", where);
    if (pb->len) llmux_buf_append_char(pb, ',');
    llmux_buf_append_str(pb, "{\"type\":\"text\",\"text\":");
    llmux_json_append_raw(pb, t->d, text);
    copy_cache_control(pb, t->d, blk);
    llmux_buf_append_char(pb, '}');
    return 0;
}

/* A source as a URL string: base64 -> "data:<media_type>;base64,<data>",
 * url -> the url as given. */
static void source_url(llmux_buf *pb, const llmux_json *d, int b64, int mt, int data, int url)
{
    if (b64) {
        llmux_buf_append_str(pb, "\"data:");
        str_body(pb, d, mt);
        llmux_buf_append_str(pb, ";base64,");
        str_body(pb, d, data);
        llmux_buf_append_char(pb, '"');
    } else {
        llmux_json_append_raw(pb, d, url);
    }
}

/* image / document / text blocks of a user turn -> content parts. */
static int user_part(tx *t, llmux_buf *pb, int blk, const char *where)
{
    const llmux_json *d = t->d;
    char tmp[48];
    if (type_is(d, blk, "text")) return text_part(t, pb, blk, where);
    int img = type_is(d, blk, "image"), doc = type_is(d, blk, "document");
    if (!img && !doc)
        return bad(t, "%s.type: block type '%s' is not supported in user messages", where, type_name(d, blk, tmp, sizeof tmp));
    int src = llmux_json_get(d, blk, "source");
    if (!is(d, src, LLMUX_JSON_OBJECT)) return bad(t, "%s.source: Field required", where);
    int mt = llmux_json_get(d, src, "media_type"), data = llmux_json_get(d, src, "data"), url = llmux_json_get(d, src, "url");
    int b64 = type_is(d, src, "base64"), isurl = type_is(d, src, "url"), istext = type_is(d, src, "text");
    if (b64 && (!is(d, mt, LLMUX_JSON_STRING) || !is(d, data, LLMUX_JSON_STRING)))
        return bad(t, "%s.source: base64 sources need media_type and data", where);
    if (isurl && !is(d, url, LLMUX_JSON_STRING)) return bad(t, "%s.source.url: Field required", where);
    if (pb->len) llmux_buf_append_char(pb, ',');
    if (img) {
        if (!b64 && !isurl) return bad(t, "%s.source.type: images take a base64 or url source", where);
        llmux_buf_append_str(pb, "{\"type\":\"image_url\",\"image_url\":{\"url\":");
        source_url(pb, d, b64, mt, data, url);
        llmux_buf_append_char(pb, '}');
        copy_cache_control(pb, d, blk);
        llmux_buf_append_char(pb, '}');
        return 0;
    }
    if (istext) { /* a plain-text document is just text */
        if (!is(d, data, LLMUX_JSON_STRING)) return bad(t, "%s.source.data: Field required", where);
        llmux_buf_append_str(pb, "{\"type\":\"text\",\"text\":");
        llmux_json_append_raw(pb, d, data);
        copy_cache_control(pb, d, blk);
        llmux_buf_append_char(pb, '}');
        return 0;
    }
    if (!b64 && !isurl) return bad(t, "%s.source.type: documents take a base64, url or text source", where);
    int title = llmux_json_get(d, blk, "title");
    llmux_buf_append_str(pb, "{\"type\":\"file\",\"file\":{\"filename\":");
    if (is(d, title, LLMUX_JSON_STRING)) llmux_json_append_raw(pb, d, title);
    else llmux_buf_append_str(pb, "\"document.pdf\"");
    llmux_buf_append_str(pb, ",\"file_data\":");
    source_url(pb, d, b64, mt, data, url);
    llmux_buf_append_char(pb, '}');
    copy_cache_control(pb, d, blk);
    llmux_buf_append_char(pb, '}');
    return 0;
}

/* tool_result -> a role "tool" message. Text blocks are joined with "\n";
 * image blocks go to the user message that follows (extra). */
static int tool_result(tx *t, int blk, llmux_buf *extra, const char *where)
{
    const llmux_json *d = t->d;
    int id = llmux_json_get(d, blk, "tool_use_id"), content = llmux_json_get(d, blk, "content");
    if (!is(d, id, LLMUX_JSON_STRING)) return bad(t, "%s.tool_use_id: Field required", where);
    if (t->nmsg++) llmux_buf_append_char(t->b, ',');
    llmux_buf_append_str(t->b, "{\"role\":\"tool\",\"tool_call_id\":");
    llmux_json_append_raw(t->b, d, id);
    llmux_buf_append_str(t->b, ",\"content\":\"");
    if (is(d, content, LLMUX_JSON_STRING)) {
        str_body(t->b, d, content);
    } else if (is(d, content, LLMUX_JSON_ARRAY)) {
        int ntext = 0;
        for (int k = 0, n = d->tok[content].size; k < n; k++) {
            int part = llmux_json_at(d, content, k);
            char w[96];
            if (snprintf(w, sizeof w, "%s.content.%d", where, k) >= (int)sizeof w) w[sizeof w - 1] = '\0';
            if (!is(d, part, LLMUX_JSON_OBJECT)) return bad(t, "%s: Input should be an object", w);
            if (type_is(d, part, "text")) {
                int text = llmux_json_get(d, part, "text");
                if (!is(d, text, LLMUX_JSON_STRING)) return bad(t, "%s.text: Field required", w);
                if (ntext++) llmux_buf_append_str(t->b, "\\n");
                str_body(t->b, d, text);
            } else if (user_part(t, extra, part, w)) {
                return -1;
            }
        }
    } else if (present(d, content)) {
        return bad(t, "%s.content: Input should be a string or a list of blocks", where);
    }
    llmux_buf_append_str(t->b, "\"}");
    return 0;
}

static int user_message(tx *t, int content, const char *where)
{
    const llmux_json *d = t->d;
    llmux_buf parts = {0};
    int rc = 0;
    /* Tool results first: they must follow the assistant's tool calls. */
    for (int k = 0, n = d->tok[content].size; k < n && !rc; k++) {
        int blk = llmux_json_at(d, content, k);
        char w[80];
        snprintf(w, sizeof w, "%s.content.%d", where, k);
        if (!is(d, blk, LLMUX_JSON_OBJECT)) rc = bad(t, "%s: Input should be an object", w);
        else if (type_is(d, blk, "tool_result")) rc = tool_result(t, blk, &parts, w);
    }
    for (int k = 0, n = d->tok[content].size; k < n && !rc; k++) {
        int blk = llmux_json_at(d, content, k);
        char w[80];
        snprintf(w, sizeof w, "%s.content.%d", where, k);
        if (!type_is(d, blk, "tool_result")) rc = user_part(t, &parts, blk, w);
    }
    if (!rc && (parts.len || d->tok[content].size == 0)) {
        begin_message(t, "user");
        llmux_buf_append_char(t->b, '[');
        if (parts.len) llmux_buf_append(t->b, parts.data, parts.len);
        llmux_buf_append_str(t->b, "]}");
    }
    llmux_buf_free(&parts);
    return rc;
}

static int assistant_message(tx *t, int content, const char *where)
{
    const llmux_json *d = t->d;
    llmux_buf text = {0}, calls = {0}, details = {0};
    int rc = 0, ntext = 0;
    for (int k = 0, n = d->tok[content].size; k < n && !rc; k++) {
        int blk = llmux_json_at(d, content, k);
        char w[80], tmp[48];
        snprintf(w, sizeof w, "%s.content.%d", where, k);
        if (!is(d, blk, LLMUX_JSON_OBJECT)) { rc = bad(t, "%s: Input should be an object", w); break; }
        if (type_is(d, blk, "text")) {
            int s = llmux_json_get(d, blk, "text");
            if (!is(d, s, LLMUX_JSON_STRING)) { rc = bad(t, "%s.text: Field required", w); break; }
            str_body(&text, d, s);
            ntext++;
        } else if (type_is(d, blk, "tool_use")) {
            int id = llmux_json_get(d, blk, "id"), name = llmux_json_get(d, blk, "name"), input = llmux_json_get(d, blk, "input");
            if (!is(d, id, LLMUX_JSON_STRING) || !is(d, name, LLMUX_JSON_STRING)) { rc = bad(t, "%s: tool_use needs id and name", w); break; }
            if (present(d, input) && !is(d, input, LLMUX_JSON_OBJECT)) { rc = bad(t, "%s.input: Input should be an object", w); break; }
            if (calls.len) llmux_buf_append_char(&calls, ',');
            llmux_buf_append_str(&calls, "{\"id\":");
            llmux_json_append_raw(&calls, d, id);
            llmux_buf_append_str(&calls, ",\"type\":\"function\",\"function\":{\"name\":");
            llmux_json_append_raw(&calls, d, name);
            llmux_buf_append_str(&calls, ",\"arguments\":\"");
            if (is(d, input, LLMUX_JSON_OBJECT)) {
                size_t il;
                const char *is_ = llmux_json_raw(d, input, &il);
                append_json_as_string(&calls, is_, il);
            } else {
                llmux_buf_append_str(&calls, "{}");
            }
            llmux_buf_append_str(&calls, "\"}}");
        } else if (type_is(d, blk, "thinking")) {
            int th = llmux_json_get(d, blk, "thinking"), sig = llmux_json_get(d, blk, "signature");
            if (!is(d, th, LLMUX_JSON_STRING)) { rc = bad(t, "%s.thinking: Field required", w); break; }
            if (details.len) llmux_buf_append_char(&details, ',');
            llmux_buf_append_str(&details, "{\"type\":\"reasoning.text\",\"text\":");
            llmux_json_append_raw(&details, d, th);
            llmux_buf_append_str(&details, ",\"signature\":");
            if (is(d, sig, LLMUX_JSON_STRING)) llmux_json_append_raw(&details, d, sig);
            else llmux_buf_append_str(&details, "null");
            llmux_buf_append_str(&details, ",\"format\":\"anthropic-claude-v1\"}");
        } else if (type_is(d, blk, "redacted_thinking")) {
            int data = llmux_json_get(d, blk, "data");
            if (!is(d, data, LLMUX_JSON_STRING)) { rc = bad(t, "%s.data: Field required", w); break; }
            if (details.len) llmux_buf_append_char(&details, ',');
            llmux_buf_append_str(&details, "{\"type\":\"reasoning.encrypted\",\"data\":");
            llmux_json_append_raw(&details, d, data);
            llmux_buf_append_str(&details, ",\"format\":\"anthropic-claude-v1\"}");
        } else {
            rc = bad(t, "%s.type: block type '%s' is not supported in assistant messages", w, type_name(d, blk, tmp, sizeof tmp));
        }
    }
    if (!rc) {
        begin_message(t, "assistant");
        if (ntext || !calls.len) {
            llmux_buf_append_char(t->b, '"');
            if (text.len) llmux_buf_append(t->b, text.data, text.len);
            llmux_buf_append_char(t->b, '"');
        } else {
            llmux_buf_append_str(t->b, "null");
        }
        if (calls.len) {
            llmux_buf_append_str(t->b, ",\"tool_calls\":[");
            llmux_buf_append(t->b, calls.data, calls.len);
            llmux_buf_append_char(t->b, ']');
        }
        if (details.len) {
            llmux_buf_append_str(t->b, ",\"reasoning_details\":[");
            llmux_buf_append(t->b, details.data, details.len);
            llmux_buf_append_char(t->b, ']');
        }
        llmux_buf_append_char(t->b, '}');
    }
    llmux_buf_free(&text);
    llmux_buf_free(&calls);
    llmux_buf_free(&details);
    return rc;
}

static int system_prompt(tx *t, int sys)
{
    const llmux_json *d = t->d;
    if (is(d, sys, LLMUX_JSON_STRING)) {
        if (d->tok[sys].end == d->tok[sys].start) return 0;
        begin_message(t, "system");
        llmux_json_append_raw(t->b, d, sys);
        llmux_buf_append_char(t->b, '}');
        return 0;
    }
    if (!is(d, sys, LLMUX_JSON_ARRAY)) return bad(t, "system: Input should be a string or a list of text blocks");
    if (d->tok[sys].size == 0) return 0;
    llmux_buf parts = {0};
    int rc = 0;
    for (int k = 0, n = d->tok[sys].size; k < n && !rc; k++) {
        int blk = llmux_json_at(d, sys, k);
        char w[32];
        snprintf(w, sizeof w, "system.%d", k);
        if (!is(d, blk, LLMUX_JSON_OBJECT) || !type_is(d, blk, "text")) rc = bad(t, "%s: system blocks must be text blocks", w);
        else rc = text_part(t, &parts, blk, w);
    }
    if (!rc) {
        begin_message(t, "system");
        llmux_buf_append_char(t->b, '[');
        llmux_buf_append(t->b, parts.data, parts.len);
        llmux_buf_append_str(t->b, "]}");
    }
    llmux_buf_free(&parts);
    return rc;
}

static int tools_out(tx *t, int tools)
{
    const llmux_json *d = t->d;
    if (!is(d, tools, LLMUX_JSON_ARRAY)) return bad(t, "tools: Input should be a list");
    if (d->tok[tools].size == 0) return 0;
    llmux_buf_append_str(t->b, ",\"tools\":[");
    for (int k = 0, n = d->tok[tools].size; k < n; k++) {
        int tl = llmux_json_at(d, tools, k);
        char tmp[48];
        if (!is(d, tl, LLMUX_JSON_OBJECT)) return bad(t, "tools.%d: Input should be an object", k);
        int ty = llmux_json_get(d, tl, "type");
        if (present(d, ty) && !type_is(d, tl, "custom"))
            return bad(t, "tools.%d: tool type '%s' is not supported (only custom tools with name and input_schema)", k,
                       type_name(d, tl, tmp, sizeof tmp));
        int name = llmux_json_get(d, tl, "name"), desc = llmux_json_get(d, tl, "description");
        int schema = llmux_json_get(d, tl, "input_schema");
        if (!is(d, name, LLMUX_JSON_STRING)) return bad(t, "tools.%d.name: Field required", k);
        if (!is(d, schema, LLMUX_JSON_OBJECT)) return bad(t, "tools.%d.input_schema: Field required", k);
        if (k) llmux_buf_append_char(t->b, ',');
        llmux_buf_append_str(t->b, "{\"type\":\"function\",\"function\":{\"name\":");
        llmux_json_append_raw(t->b, d, name);
        if (is(d, desc, LLMUX_JSON_STRING)) {
            llmux_buf_append_str(t->b, ",\"description\":");
            llmux_json_append_raw(t->b, d, desc);
        }
        llmux_buf_append_str(t->b, ",\"parameters\":");
        llmux_json_append_raw(t->b, d, schema);
        llmux_buf_append_char(t->b, '}');
        copy_cache_control(t->b, d, tl);
        llmux_buf_append_char(t->b, '}');
    }
    llmux_buf_append_char(t->b, ']');
    return 0;
}

static int tool_choice_out(tx *t, int tc)
{
    const llmux_json *d = t->d;
    if (!is(d, tc, LLMUX_JSON_OBJECT)) return bad(t, "tool_choice: Input should be an object");
    llmux_buf_append_str(t->b, ",\"tool_choice\":");
    if (type_is(d, tc, "auto")) llmux_buf_append_str(t->b, "\"auto\"");
    else if (type_is(d, tc, "any")) llmux_buf_append_str(t->b, "\"required\"");
    else if (type_is(d, tc, "none")) llmux_buf_append_str(t->b, "\"none\"");
    else if (type_is(d, tc, "tool")) {
        int name = llmux_json_get(d, tc, "name");
        if (!is(d, name, LLMUX_JSON_STRING)) return bad(t, "tool_choice.name: Field required");
        llmux_buf_append_str(t->b, "{\"type\":\"function\",\"function\":{\"name\":");
        llmux_json_append_raw(t->b, d, name);
        llmux_buf_append_str(t->b, "}}");
    } else {
        return bad(t, "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'");
    }
    int dp = llmux_json_get(d, tc, "disable_parallel_tool_use");
    if (dp >= 0 && llmux_json_bool(d, dp) == 1) llmux_buf_append_str(t->b, ",\"parallel_tool_calls\":false");
    return 0;
}

/* output_config.format (and the older output_format) -> response_format. */
static int output_format_out(tx *t, int fmt)
{
    const llmux_json *d = t->d;
    if (!is(d, fmt, LLMUX_JSON_OBJECT)) return 0;
    if (!type_is(d, fmt, "json_schema")) return bad(t, "output_config.format.type: Input should be 'json_schema'");
    int schema = llmux_json_get(d, fmt, "schema");
    if (!is(d, schema, LLMUX_JSON_OBJECT)) return bad(t, "output_config.format.schema: Field required");
    llmux_buf_append_str(t->b, ",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"output\",\"strict\":true,\"schema\":");
    llmux_json_append_raw(t->b, d, schema);
    llmux_buf_append_str(t->b, "}}");
    return 0;
}

static int number_field(tx *t, const char *name, const char *out_name)
{
    int i = llmux_json_get(t->d, 0, name);
    if (!present(t->d, i)) return 0;
    double v;
    if (llmux_json_double(t->d, i, &v)) return bad(t, "%s: Input should be a valid number", name);
    llmux_buf_printf(t->b, ",\"%s\":", out_name);
    llmux_json_append_raw(t->b, t->d, i);
    return 0;
}

int llmux_messages_translate(const llmux_json *d, llmux_buf *out, char *msg, size_t mlen)
{
    tx t = {d, out, msg, mlen, 0};
    if (d->ntok < 1 || d->tok[0].type != LLMUX_JSON_OBJECT) return bad(&t, "request body must be a JSON object");
    int model = llmux_json_get(d, 0, "model"), mt = llmux_json_get(d, 0, "max_tokens");
    int messages = llmux_json_get(d, 0, "messages");
    if (!present(d, model)) return bad(&t, "model: Field required");
    if (!is(d, model, LLMUX_JSON_STRING)) return bad(&t, "model: Input should be a valid string");
    if (!present(d, mt)) return bad(&t, "max_tokens: Field required");
    int64_t max_tokens;
    if (llmux_json_int(d, mt, &max_tokens) || max_tokens < 1) return bad(&t, "max_tokens: Input should be a positive integer");
    if (!present(d, messages)) return bad(&t, "messages: Field required");
    if (!is(d, messages, LLMUX_JSON_ARRAY)) return bad(&t, "messages: Input should be a valid list");
    if (d->tok[messages].size == 0) return bad(&t, "messages: at least one message is required");

    llmux_buf_append_str(out, "{\"model\":");
    llmux_json_append_raw(out, d, model);
    llmux_buf_append_str(out, ",\"messages\":[");
    int sys = llmux_json_get(d, 0, "system");
    if (present(d, sys) && system_prompt(&t, sys)) return -1;
    for (int k = 0, n = d->tok[messages].size; k < n; k++) {
        int m = llmux_json_at(d, messages, k);
        char where[32];
        snprintf(where, sizeof where, "messages.%d", k);
        if (!is(d, m, LLMUX_JSON_OBJECT)) return bad(&t, "%s: Input should be an object", where);
        int role = llmux_json_get(d, m, "role"), content = llmux_json_get(d, m, "content");
        int user = is(d, role, LLMUX_JSON_STRING) && llmux_json_eq(d, role, "user");
        int assistant = is(d, role, LLMUX_JSON_STRING) && llmux_json_eq(d, role, "assistant");
        if (!user && !assistant) return bad(&t, "%s.role: Input should be 'user' or 'assistant'", where);
        if (is(d, content, LLMUX_JSON_STRING)) {
            begin_message(&t, user ? "user" : "assistant");
            llmux_json_append_raw(out, d, content);
            llmux_buf_append_char(out, '}');
        } else if (is(d, content, LLMUX_JSON_ARRAY)) {
            if ((user ? user_message : assistant_message)(&t, content, where)) return -1;
        } else {
            return bad(&t, "%s.content: Input should be a string or a list of content blocks", where);
        }
    }
    llmux_buf_printf(out, "],\"max_tokens\":%lld", (long long)max_tokens);

    int i;
    if (present(d, i = llmux_json_get(d, 0, "stop_sequences"))) {
        if (!is(d, i, LLMUX_JSON_ARRAY)) return bad(&t, "stop_sequences: Input should be a list of strings");
        for (int k = 0; k < d->tok[i].size; k++)
            if (!is(d, llmux_json_at(d, i, k), LLMUX_JSON_STRING)) return bad(&t, "stop_sequences.%d: Input should be a string", k);
        if (d->tok[i].size) {
            llmux_buf_append_str(out, ",\"stop\":");
            llmux_json_append_raw(out, d, i);
        }
    }
    if (number_field(&t, "temperature", "temperature") || number_field(&t, "top_p", "top_p") ||
        number_field(&t, "top_k", "top_k"))
        return -1;
    if (present(d, i = llmux_json_get(d, 0, "stream"))) {
        int s = llmux_json_bool(d, i);
        if (s < 0) return bad(&t, "stream: Input should be a valid boolean");
        llmux_buf_append_str(out, s ? ",\"stream\":true" : ",\"stream\":false");
    }
    int tools = llmux_json_get(d, 0, "tools");
    if (present(d, tools) && tools_out(&t, tools)) return -1;
    if (present(d, i = llmux_json_get(d, 0, "tool_choice")) && tool_choice_out(&t, i)) return -1;
    if (present(d, i = llmux_json_get(d, 0, "thinking"))) {
        if (!is(d, i, LLMUX_JSON_OBJECT)) return bad(&t, "thinking: Input should be an object");
        if (type_is(d, i, "enabled")) {
            int bt = llmux_json_get(d, i, "budget_tokens");
            int64_t budget;
            if (!present(d, bt)) return bad(&t, "thinking.enabled.budget_tokens: Field required");
            if (llmux_json_int(d, bt, &budget) || budget < 1)
                return bad(&t, "thinking.enabled.budget_tokens: Input should be a positive integer");
            llmux_buf_printf(out, ",\"reasoning\":{\"max_tokens\":%lld}", (long long)budget);
        } else if (type_is(d, i, "adaptive")) {
            llmux_buf_append_str(out, ",\"reasoning\":{\"enabled\":true}");
        } else if (!type_is(d, i, "disabled")) {
            return bad(&t, "thinking.type: Input should be 'enabled', 'adaptive' or 'disabled'");
        }
    }
    if (is(d, i = llmux_json_get(d, 0, "metadata"), LLMUX_JSON_OBJECT)) {
        int u = llmux_json_get(d, i, "user_id");
        if (is(d, u, LLMUX_JSON_STRING)) {
            llmux_buf_append_str(out, ",\"user\":");
            llmux_json_append_raw(out, d, u);
        }
    }
    int oc = llmux_json_get(d, 0, "output_config");
    if (is(d, oc, LLMUX_JSON_OBJECT) && output_format_out(&t, llmux_json_get(d, oc, "format"))) return -1;
    if (!is(d, oc, LLMUX_JSON_OBJECT) && output_format_out(&t, llmux_json_get(d, 0, "output_format"))) return -1;
    llmux_buf_append_char(out, '}');
    return 0;
}

const char *llmux_messages_to_canonical(llmux_exchange *ex, char *msg, size_t mlen)
{
    llmux_buf out = {0};
    if (llmux_messages_translate(&ex->doc, &out, msg, mlen)) {
        llmux_buf_free(&out);
        return msg;
    }
    if (!out.data) return "out of memory";
    size_t len = out.len;
    char *body = llmux_buf_steal(&out);
    llmux_json doc;
    const char *why = NULL;
    const llmux_limits *l = &ex->rt->cfg->limits;
    llmux_json_limits lim = {l->max_json_tokens, l->max_json_depth};
    if (llmux_json_parse(body, len, &lim, &doc, &why, NULL) < 0) {
        free(body);
        snprintf(msg, mlen, "request could not be translated: %s", why ? why : "too large");
        return msg;
    }
    llmux_json_release(&ex->doc);
    free(ex->body);
    ex->body = body;
    ex->body_len = len;
    ex->doc = doc;
    return NULL;
}
