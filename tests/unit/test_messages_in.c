/* Unit tests for the inbound Anthropic Messages API: request translation to
 * the canonical body (core/messages_in.c), golden bodies, and the stream /
 * message writer (core/out_anthropic.c) driven without a connection.
 * JSON literals are written with ' for " to stay readable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "buf.h"
#include "exchange.h"
#include "json.h"
#include "messages_in.h"

/* ' -> " (a static buffer per call site is enough for these tests). */
static char *q(const char *s)
{
    char *r = strdup(s);
    for (char *p = r; *p; p++)
        if (*p == '\'') *p = '"';
    return r;
}

/* Translates `in`; returns the canonical body (caller frees) or NULL with msg. */
static char *translate(const char *in, char *msg, size_t mlen)
{
    char *text = q(in);
    llmux_json d;
    const char *why = NULL;
    int rc = llmux_json_parse(text, strlen(text), NULL, &d, &why, NULL);
    if (rc) fail_msg("test input does not parse: %s (%s)", why, in);
    llmux_buf out = {0};
    msg[0] = '\0';
    rc = llmux_messages_translate(&d, &out, msg, mlen);
    llmux_json_release(&d);
    free(text);
    if (rc) { llmux_buf_free(&out); return NULL; }
    /* every canonical body must itself be valid JSON */
    llmux_json chk;
    if (llmux_json_parse(out.data, out.len, NULL, &chk, &why, NULL)) fail_msg("output is not JSON: %s\n%s", why, out.data);
    llmux_json_release(&chk);
    return llmux_buf_steal(&out);
}

static void expect_translation(const char *in, const char *golden)
{
    char msg[256];
    char *got = translate(in, msg, sizeof msg);
    if (!got) fail_msg("translation failed: %s", msg);
    char *want = q(golden);
    if (strcmp(got, want)) fail_msg("\n got: %s\nwant: %s", got, want);
    free(got);
    free(want);
}

static void expect_error(const char *in, const char *needle)
{
    char msg[256];
    char *got = translate(in, msg, sizeof msg);
    if (got) fail_msg("expected an error containing '%s', got %s", needle, got);
    if (!strstr(msg, needle)) fail_msg("error '%s' does not contain '%s'", msg, needle);
}

static void test_minimal(void **state)
{
    (void)state;
    expect_translation("{'model':'mock/echo','max_tokens':64,'messages':[{'role':'user','content':'hi \\u00e9 \\\"x\\\"'}]}",
                       "{'model':'mock/echo','messages':[{'role':'user','content':'hi \\u00e9 \\\"x\\\"'}],'max_tokens':64}");
}

static void test_system_and_params(void **state)
{
    (void)state;
    expect_translation(
        "{'model':'anthropic/claude-x','max_tokens':1024,'system':'be brief','stop_sequences':['END','##'],"
        "'temperature':0.5,'top_p':0.9,'top_k':40,'stream':true,'metadata':{'user_id':'u-1'},'service_tier':'auto',"
        "'messages':[{'role':'user','content':'a'},{'role':'assistant','content':'b'},{'role':'user','content':'c'}]}",
        "{'model':'anthropic/claude-x','messages':[{'role':'system','content':'be brief'},{'role':'user','content':'a'},"
        "{'role':'assistant','content':'b'},{'role':'user','content':'c'}],'max_tokens':1024,'stop':['END','##'],"
        "'temperature':0.5,'top_p':0.9,'top_k':40,'stream':true,'user':'u-1'}");
    /* system as text blocks, cache_control kept */
    expect_translation(
        "{'model':'m','max_tokens':5,'system':[{'type':'text','text':'one'},{'type':'text','text':'two','cache_control':{'type':'ephemeral'}}],"
        "'messages':[{'role':'user','content':'x'}]}",
        "{'model':'m','messages':[{'role':'system','content':[{'type':'text','text':'one'},"
        "{'type':'text','text':'two','cache_control':{'type':'ephemeral'}}]},{'role':'user','content':'x'}],'max_tokens':5}");
    /* an empty system string adds nothing */
    expect_translation("{'model':'m','max_tokens':5,'system':'','messages':[{'role':'user','content':'x'}]}",
                       "{'model':'m','messages':[{'role':'user','content':'x'}],'max_tokens':5}");
}

static void test_images_documents(void **state)
{
    (void)state;
    expect_translation(
        "{'model':'m','max_tokens':5,'messages':[{'role':'user','content':["
        "{'type':'image','source':{'type':'base64','media_type':'image/png','data':'iVBOR'}},"
        "{'type':'image','source':{'type':'url','url':'https://x.test/a.jpg'}},"
        "{'type':'document','source':{'type':'base64','media_type':'application/pdf','data':'JVBE'},'title':'r.pdf'},"
        "{'type':'document','source':{'type':'url','url':'https://x.test/d.pdf'}},"
        "{'type':'document','source':{'type':'text','media_type':'text/plain','data':'plain'}},"
        "{'type':'text','text':'what is this?'}]}]}",
        "{'model':'m','messages':[{'role':'user','content':["
        "{'type':'image_url','image_url':{'url':'data:image/png;base64,iVBOR'}},"
        "{'type':'image_url','image_url':{'url':'https://x.test/a.jpg'}},"
        "{'type':'file','file':{'filename':'r.pdf','file_data':'data:application/pdf;base64,JVBE'}},"
        "{'type':'file','file':{'filename':'document.pdf','file_data':'https://x.test/d.pdf'}},"
        "{'type':'text','text':'plain'},"
        "{'type':'text','text':'what is this?'}]}],'max_tokens':5}");
}

static void test_tool_conversation(void **state)
{
    (void)state;
    expect_translation(
        "{'model':'m','max_tokens':100,"
        "'tools':[{'name':'get_weather','description':'weather','input_schema':{'type':'object','properties':{'city':{'type':'string'}}}},"
        "{'type':'custom','name':'t2','input_schema':{'type':'object'},'cache_control':{'type':'ephemeral'}}],"
        "'tool_choice':{'type':'any','disable_parallel_tool_use':true},"
        "'messages':[{'role':'user','content':'weather in Paris and Rome?'},"
        "{'role':'assistant','content':[{'type':'thinking','thinking':'need tools','signature':'sig1'},"
        "{'type':'text','text':'Checking.'},"
        "{'type':'tool_use','id':'toolu_1','name':'get_weather','input':{ 'city' : 'Paris', 'n': [1, 2] }},"
        "{'type':'tool_use','id':'toolu_2','name':'get_weather','input':{}}]},"
        "{'role':'user','content':[{'type':'tool_result','tool_use_id':'toolu_1','content':'sunny'},"
        "{'type':'tool_result','tool_use_id':'toolu_2','content':[{'type':'text','text':'rain'},{'type':'text','text':'cold'}],'is_error':false},"
        "{'type':'text','text':'thanks'}]}]}",
        "{'model':'m','messages':[{'role':'user','content':'weather in Paris and Rome?'},"
        "{'role':'assistant','content':'Checking.','tool_calls':["
        "{'id':'toolu_1','type':'function','function':{'name':'get_weather','arguments':'{\\'city\\':\\'Paris\\',\\'n\\':[1,2]}'}},"
        "{'id':'toolu_2','type':'function','function':{'name':'get_weather','arguments':'{}'}}],"
        "'reasoning_details':[{'type':'reasoning.text','text':'need tools','signature':'sig1','format':'anthropic-claude-v1'}]},"
        "{'role':'tool','tool_call_id':'toolu_1','content':'sunny'},"
        "{'role':'tool','tool_call_id':'toolu_2','content':'rain\\ncold'},"
        "{'role':'user','content':[{'type':'text','text':'thanks'}]}],'max_tokens':100,"
        "'tools':[{'type':'function','function':{'name':'get_weather','description':'weather','parameters':{'type':'object','properties':{'city':{'type':'string'}}}}},"
        "{'type':'function','function':{'name':'t2','parameters':{'type':'object'}},'cache_control':{'type':'ephemeral'}}],"
        "'tool_choice':'required','parallel_tool_calls':false}");
}

static void test_tool_choice_thinking(void **state)
{
    (void)state;
    const char *pre = "{'model':'m','max_tokens':9,'messages':[{'role':'user','content':'x'}],";
    struct { const char *in, *out; } cases[] = {
        {"'tool_choice':{'type':'auto'}}", "'tool_choice':'auto'}"},
        {"'tool_choice':{'type':'none'}}", "'tool_choice':'none'}"},
        {"'tool_choice':{'type':'tool','name':'f'}}", "'tool_choice':{'type':'function','function':{'name':'f'}}}"},
        {"'thinking':{'type':'enabled','budget_tokens':2048}}", "'reasoning':{'max_tokens':2048}}"},
        {"'thinking':{'type':'disabled'}}", "}"},
        {"'thinking':{'type':'adaptive'}}", "'reasoning':{'enabled':true}}"},
        {"'output_config':{'format':{'type':'json_schema','schema':{'type':'object'}}}}",
         "'response_format':{'type':'json_schema','json_schema':{'name':'output','strict':true,'schema':{'type':'object'}}}}"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char in[512], out[512];
        snprintf(in, sizeof in, "%s%s", pre, cases[k].in);
        snprintf(out, sizeof out, "{'model':'m','messages':[{'role':'user','content':'x'}],'max_tokens':9%s%s",
                 strcmp(cases[k].out, "}") ? "," : "", cases[k].out);
        expect_translation(in, out);
    }
}

static void test_assistant_only_tools_and_redacted(void **state)
{
    (void)state;
    expect_translation(
        "{'model':'m','max_tokens':9,'messages':[{'role':'user','content':'x'},{'role':'assistant','content':["
        "{'type':'redacted_thinking','data':'enc=='},{'type':'tool_use','id':'t','name':'f','input':{'a':'b c'}}]},"
        "{'role':'user','content':[{'type':'tool_result','tool_use_id':'t'}]}]}",
        "{'model':'m','messages':[{'role':'user','content':'x'},{'role':'assistant','content':null,'tool_calls':["
        "{'id':'t','type':'function','function':{'name':'f','arguments':'{\\'a\\':\\'b c\\'}'}}],"
        "'reasoning_details':[{'type':'reasoning.encrypted','data':'enc==','format':'anthropic-claude-v1'}]},"
        "{'role':'tool','tool_call_id':'t','content':''}],'max_tokens':9}");
}

static void test_validation(void **state)
{
    (void)state;
    expect_error("{'max_tokens':5,'messages':[{'role':'user','content':'x'}]}", "model: Field required");
    expect_error("{'model':5,'max_tokens':5,'messages':[{'role':'user','content':'x'}]}", "model: Input should be a valid string");
    expect_error("{'model':'m','messages':[{'role':'user','content':'x'}]}", "max_tokens: Field required");
    expect_error("{'model':'m','max_tokens':'5','messages':[{'role':'user','content':'x'}]}", "max_tokens");
    expect_error("{'model':'m','max_tokens':1.5,'messages':[{'role':'user','content':'x'}]}", "max_tokens");
    expect_error("{'model':'m','max_tokens':5}", "messages: Field required");
    expect_error("{'model':'m','max_tokens':5,'messages':[]}", "at least one message");
    expect_error("{'model':'m','max_tokens':5,'messages':[{'role':'system','content':'x'}]}", "messages.0.role");
    expect_error("{'model':'m','max_tokens':5,'messages':[{'role':'user','content':5}]}", "messages.0.content");
    expect_error("{'model':'m','max_tokens':5,'messages':[{'role':'user','content':[{'type':'audio'}]}]}", "'audio' is not supported");
    expect_error("{'model':'m','max_tokens':5,'messages':[{'role':'user','content':'x'}],'tools':[{'type':'web_search_20250305','name':'web_search'}]}",
                 "tools.0: tool type 'web_search_20250305'");
    expect_error("{'model':'m','max_tokens':5,'messages':[{'role':'user','content':'x'}],'tools':[{'name':'f'}]}", "tools.0.input_schema");
    expect_error("{'model':'m','max_tokens':5,'messages':[{'role':'user','content':'x'}],'thinking':{'type':'enabled'}}", "budget_tokens");
    expect_error("{'model':'m','max_tokens':5,'messages':[{'role':'user','content':'x'}],'tool_choice':{'type':'maybe'}}", "tool_choice.type");
    expect_error("{'model':'m','max_tokens':5,'messages':[{'role':'user','content':'x'}],'temperature':'hot'}", "temperature");
    expect_error("[1]", "JSON object");
}

/* ---- the writer ----------------------------------------------------------- */

static llmux_exchange *writer_ex(int stream)
{
    llmux_exchange *ex = calloc(1, sizeof *ex);
    ex->api = 2;
    ex->stream = stream;
    ex->headers_sent = 1; /* no connection: events collect in ex->wbuf */
    snprintf(ex->model, sizeof ex->model, "mock/echo");
    snprintf(ex->gen_id, sizeof ex->gen_id, "gen-1-abc");
    return ex;
}

static void free_ex(llmux_exchange *ex)
{
    llmux_result_reset(&ex->res);
    llmux_buf_free(&ex->res.content);
    llmux_buf_free(&ex->res.reasoning);
    llmux_buf_free(&ex->res.refusal);
    llmux_buf_free(&ex->res.reasoning_details);
    llmux_buf_free(&ex->wbuf);
    free(ex);
}

/* "event|type|index" lines of the written SSE, for order checks. */
static char *event_summary(const llmux_buf *b)
{
    llmux_buf out = {0};
    const char *p = b->data, *end = b->data + b->len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) break;
        if (strncmp(p, "event: ", 7) == 0) {
            llmux_buf_append(&out, p + 7, (size_t)(nl - p - 7));
            const char *data = nl + 1;
            const char *dend = memchr(data, '\n', (size_t)(end - data));
            const char *ix = strstr(data, "\"index\":");
            if (ix && ix < dend) llmux_buf_printf(&out, "#%d", atoi(ix + 8));
            const char *dt = strstr(data, "\"delta\":{\"type\":\"");
            if (dt && dt < dend) {
                dt += 17;
                llmux_buf_append_char(&out, ':');
                llmux_buf_append(&out, dt, strcspn(dt, "\""));
            }
            const char *cb = strstr(data, "\"content_block\":{\"type\":\"");
            if (cb && cb < dend) {
                cb += 25;
                llmux_buf_append_char(&out, ':');
                llmux_buf_append(&out, cb, strcspn(cb, "\""));
            }
            llmux_buf_append_char(&out, ' ');
        }
        p = nl + 1;
    }
    return llmux_buf_steal(&out);
}

static void test_stream_sequence(void **state)
{
    (void)state;
    llmux_exchange *ex = writer_ex(1);
    const llmux_output_ops *o = &llmux_out_anthropic;
    o->delta(ex, LLMUX_DELTA_REASONING, "hmm", 3);
    o->delta(ex, LLMUX_DELTA_REASONING, " ok", 3);
    const char *det = "{\"type\":\"reasoning.text\",\"text\":\"hmm ok\",\"signature\":\"SIG\",\"format\":\"anthropic-claude-v1\"}";
    o->reasoning_detail(ex, det, strlen(det));
    o->delta(ex, LLMUX_DELTA_CONTENT, "Hel", 3);
    o->delta(ex, LLMUX_DELTA_CONTENT, "lo \\\"x\\\"", 8);
    o->tool_call(ex, 0, 1, "call_1", 6, "f", 1, "", 0);
    o->tool_call(ex, 0, 0, NULL, 0, NULL, 0, "{\\\"a\\\":", 7);
    o->tool_call(ex, 0, 0, NULL, 0, NULL, 0, "1}", 2);
    o->tool_call(ex, 1, 1, "call_2", 6, "g", 1, "{}", 2);
    ex->res.finish = LLMUX_FINISH_TOOL_CALLS;
    o->finish(ex);
    char *sum = event_summary(&ex->wbuf);
    assert_string_equal(sum,
                        "message_start content_block_start#0:thinking content_block_delta#0:thinking_delta "
                        "content_block_delta#0:thinking_delta content_block_delta#0:signature_delta content_block_stop#0 "
                        "content_block_start#1:text content_block_delta#1:text_delta content_block_delta#1:text_delta "
                        "content_block_stop#1 content_block_start#2:tool_use content_block_delta#2:input_json_delta "
                        "content_block_delta#2:input_json_delta content_block_stop#2 content_block_start#3:tool_use "
                        "content_block_delta#3:input_json_delta content_block_stop#3 ");
    free(sum);
    /* every data line is JSON and carries its event name as "type" */
    const char *p = ex->wbuf.data;
    int n = 0;
    while ((p = strstr(p, "event: "))) {
        char name[64];
        sscanf(p + 7, "%63[^\n]", name);
        const char *data = strstr(p, "\ndata: ") + 7;
        size_t dl = strcspn(data, "\n");
        llmux_json d;
        assert_int_equal(llmux_json_parse(data, dl, NULL, &d, NULL, NULL), 0);
        assert_true(llmux_json_eq(&d, llmux_json_get(&d, 0, "type"), name));
        llmux_json_release(&d);
        p = data + dl;
        n++;
    }
    assert_int_equal(n, 17);
    assert_non_null(strstr(ex->wbuf.data, "\"text_delta\",\"text\":\"lo \\\"x\\\"\""));
    assert_non_null(strstr(ex->wbuf.data, "{\"type\":\"tool_use\",\"id\":\"call_1\",\"name\":\"f\",\"input\":{}}"));
    assert_non_null(strstr(ex->wbuf.data, "\"partial_json\":\"{\\\"a\\\":\""));
    assert_non_null(strstr(ex->wbuf.data, "\"signature_delta\",\"signature\":\"SIG\""));
    free_ex(ex);
}

static void test_stream_detail_without_deltas_and_redacted(void **state)
{
    (void)state;
    llmux_exchange *ex = writer_ex(1);
    const llmux_output_ops *o = &llmux_out_anthropic;
    const char *det = "{\"type\":\"reasoning.text\",\"text\":\"think\",\"signature\":\"S\"}";
    const char *enc = "{\"type\":\"reasoning.encrypted\",\"data\":\"ENC\"}";
    o->reasoning_detail(ex, det, strlen(det));
    o->reasoning_detail(ex, enc, strlen(enc));
    o->delta(ex, LLMUX_DELTA_CONTENT, "x", 1);
    o->finish(ex);
    char *sum = event_summary(&ex->wbuf);
    assert_string_equal(sum, "message_start content_block_start#0:thinking content_block_delta#0:thinking_delta "
                             "content_block_delta#0:signature_delta content_block_stop#0 "
                             "content_block_start#1:redacted_thinking content_block_stop#1 "
                             "content_block_start#2:text content_block_delta#2:text_delta content_block_stop#2 ");
    free(sum);
    assert_non_null(strstr(ex->wbuf.data, "{\"type\":\"redacted_thinking\",\"data\":\"ENC\"}"));
    free_ex(ex);
}

static void test_message_json(void **state)
{
    (void)state;
    llmux_exchange *ex = writer_ex(0);
    llmux_result *r = &ex->res;
    llmux_buf_append_str(&r->reasoning, "let me think");
    llmux_buf_append_str(&r->reasoning_details,
                         "{\"type\":\"reasoning.text\",\"text\":\"let me think\",\"signature\":\"SIG\",\"format\":\"anthropic-claude-v1\"}");
    llmux_buf_append_str(&r->content, "It is \\\"sunny\\\".");
    r->tools = calloc(2, sizeof *r->tools);
    r->n_tools = 2;
    llmux_buf_append_str(&r->tools[0].id, "call_1");
    llmux_buf_append_str(&r->tools[0].name, "get_weather");
    llmux_buf_append_str(&r->tools[0].args, "{\\\"city\\\": \\\"Paris\\\"}");
    llmux_buf_append_str(&r->tools[1].id, "call_2");
    llmux_buf_append_str(&r->tools[1].name, "broken");
    llmux_buf_append_str(&r->tools[1].args, "{\\\"city\\\":");
    r->finish = LLMUX_FINISH_TOOL_CALLS;
    r->usage = (llmux_usage){100, 20, 5, 30, 10};
    llmux_buf b = {0};
    llmux_anthropic_message_json(ex, &b);
    char *want = q("{'id':'msg_1-abc','type':'message','role':'assistant','model':'mock/echo','content':["
                   "{'type':'thinking','thinking':'let me think','signature':'SIG'},"
                   "{'type':'text','text':'It is \\'sunny\\'.'},"
                   "{'type':'tool_use','id':'call_1','name':'get_weather','input':{'city': 'Paris'}},"
                   "{'type':'tool_use','id':'call_2','name':'broken','input':{}}],"
                   "'stop_reason':'tool_use','stop_sequence':null,'stop_details':null,'usage':{'input_tokens':60,"
                   "'cache_creation_input_tokens':10,'cache_read_input_tokens':30,'output_tokens':20}}");
    assert_string_equal(b.data, want);
    free(want);
    llmux_buf_free(&b);

    /* stop reasons, and an empty answer still has one text block */
    llmux_result_reset(r);
    struct { llmux_finish f; const char *native, *want; } cases[] = {
        {LLMUX_FINISH_STOP, "stop", "end_turn"},         {LLMUX_FINISH_STOP, "stop_sequence", "stop_sequence"},
        {LLMUX_FINISH_LENGTH, "length", "max_tokens"},   {LLMUX_FINISH_CONTENT_FILTER, "refusal", "refusal"},
        {LLMUX_FINISH_STOP, "pause_turn", "pause_turn"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        r->finish = cases[k].f;
        snprintf(r->native_finish, sizeof r->native_finish, "%s", cases[k].native);
        llmux_buf_reset(&b);
        llmux_anthropic_message_json(ex, &b);
        char needle[64];
        snprintf(needle, sizeof needle, "\"stop_reason\":\"%s\"", cases[k].want);
        assert_non_null(strstr(b.data, needle));
        assert_non_null(strstr(b.data, "\"content\":[{\"type\":\"text\",\"text\":\"\"}]"));
    }
    llmux_buf_free(&b);
    free_ex(ex);
}

static void test_error_types(void **state)
{
    (void)state;
    assert_string_equal(llmux_anthropic_error_type(400), "invalid_request_error");
    assert_string_equal(llmux_anthropic_error_type(401), "authentication_error");
    assert_string_equal(llmux_anthropic_error_type(403), "permission_error");
    assert_string_equal(llmux_anthropic_error_type(404), "not_found_error");
    assert_string_equal(llmux_anthropic_error_type(429), "rate_limit_error");
    assert_string_equal(llmux_anthropic_error_type(502), "api_error");
    assert_string_equal(llmux_anthropic_error_type(503), "overloaded_error");
    assert_string_equal(llmux_anthropic_error_type(529), "overloaded_error");
    assert_string_equal(llmux_anthropic_error_type(422), "invalid_request_error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal),
        cmocka_unit_test(test_system_and_params),
        cmocka_unit_test(test_images_documents),
        cmocka_unit_test(test_tool_conversation),
        cmocka_unit_test(test_tool_choice_thinking),
        cmocka_unit_test(test_assistant_only_tools_and_redacted),
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_stream_sequence),
        cmocka_unit_test(test_stream_detail_without_deltas_and_redacted),
        cmocka_unit_test(test_message_json),
        cmocka_unit_test(test_error_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
