/* Golden tests for plugins/openai: request translation, stream translation
 * (whole and split at every byte), non-streaming answers and error mapping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "test_host.h"

typedef struct {
    void *so;
    const llmux_plugin *p;
    void *ctx;
    llmux_provider_config pc;
    llmux_kv pc_opts[1];
    llmux_endpoint ep;
    llmux_call call;
    struct llmux_outreq out;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->so = test_load_plugin("openai", &f->p);
    assert_non_null(f->so);
    f->pc.name = "openai";
    f->pc.base_url = "https://api.example.com/v1";
    f->pc.api_key = "sk-test";
    f->pc_opts[0].key = "organization";
    f->pc_opts[0].value = "org-42";
    f->pc.options = f->pc_opts;
    f->pc.n_options = 1;
    assert_int_equal(f->p->init(test_host(), &f->pc, &f->ctx), 0);
    f->ep.model = "openai/gpt-4o";
    f->ep.upstream_model = "gpt-4o";
    test_reset_events();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    test_outreq_free(&f->out);
    test_request_free();
    f->p->fini(f->ctx);
    dlclose(f->so);
    free(f);
    return 0;
}

static const char *simple_req = "{\"model\":\"openai/gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";

static int prep(fx *f, const char *body)
{
    test_outreq_free(&f->out);
    test_reset_events();
    return test_prepare(f->p, f->ctx, body, &f->ep, &f->pc, &f->call, &f->out);
}

/* ---- request ------------------------------------------------------------ */

static void test_request_translation(void **state)
{
    fx *f = *state;
    assert_int_equal(
        prep(f, "{\"model\":\"openai/gpt-4o\",\"models\":[\"a/b\",\"c/d\"],"
                "\"provider\":{\"order\":[\"x\"],\"allow_fallbacks\":false},"
                "\"transforms\":[\"middle-out\"],\"plugins\":[{\"id\":\"web\"}],\"route\":\"fallback\","
                "\"usage\":{\"include\":true},"
                "\"messages\":[{\"role\":\"user\",\"content\":\"Hi \\\"there\\\" \\u00e9\\n\"}],"
                "\"temperature\":0.70,\"max_tokens\":100,\"stream\":false,"
                "\"stream_options\":{\"include_usage\":false},"
                "\"x_custom\":{\"a\":[1, 2.5e3,{\"b\":null}]},\"logit_bias\":{\"50256\":-100},"
                "\"stop\":[\"\\n\\n\"],\"tools\":[],\"seed\":7}"),
        0);
    assert_int_equal(f->out.local, 0);
    assert_string_equal(f->out.url.data, "https://api.example.com/v1/chat/completions");
    assert_string_equal(f->out.body.data,
                        "{\"model\":\"gpt-4o\","
                        "\"messages\":[{\"role\":\"user\",\"content\":\"Hi \\\"there\\\" \\u00e9\\n\"}],"
                        "\"temperature\":0.70,\"max_tokens\":100,"
                        "\"x_custom\":{\"a\":[1, 2.5e3,{\"b\":null}]},\"logit_bias\":{\"50256\":-100},"
                        "\"stop\":[\"\\n\\n\"],\"tools\":[],\"seed\":7}");
    /* the client did not ask for a stream: neither does the upstream request */
    assert_string_equal(f->out.headers.data, "Content-Type: application/json\n"
                                             "Accept: application/json\n"
                                             "Authorization: Bearer sk-test\n"
                                             "OpenAI-Organization: org-42\n");
    assert_string_equal(test_events_str(), "");
    f->p->release(&f->call);
}

static void test_request_translation_stream(void **state)
{
    fx *f = *state;
    /* a streaming client: stream + include_usage replace the client's options;
     * whitespace around keys is dropped, an escaped key is kept as sent */
    assert_int_equal(prep(f, "{ \"model\" : \"openai/gpt-4o\", \"stream\" : true ,"
                             "\"stream_options\":{\"include_usage\":false},"
                             "\"messages\"\t:\n[{\"role\":\"user\",\"content\":\"hi\"}],"
                             "\"\\u0073eed\":1,\"usage\":{\"include\":true},\"top_p\":1}"),
                     0);
    assert_string_equal(f->out.body.data,
                        "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                        "\"\\u0073eed\":1,\"top_p\":1,"
                        "\"stream\":true,\"stream_options\":{\"include_usage\":true}}");
    assert_string_equal(f->out.headers.data, "Content-Type: application/json\n"
                                             "Accept: text/event-stream\n"
                                             "Authorization: Bearer sk-test\n"
                                             "OpenAI-Organization: org-42\n");
    f->p->release(&f->call);
}

static void test_request_auth_variants(void **state)
{
    fx *f = *state;
    /* BYOK key wins over the operator's */
    assert_int_equal(prep(f, simple_req), 0);
    f->p->release(&f->call);
    test_request_storage.req.api_key_override = "sk-user";
    test_outreq_free(&f->out);
    assert_int_equal(f->p->prepare(&f->call, &f->out), 0);
    assert_true(test_outreq_has_header(&f->out, "Authorization", "Bearer sk-user"));
    assert_false(test_outreq_has_header(&f->out, "Authorization", "Bearer sk-test"));
    f->p->release(&f->call);

    /* no key at all: no Authorization header */
    llmux_provider_config pc = {0};
    pc.name = "local";
    pc.base_url = "http://127.0.0.1:8000/v1";
    void *ctx = NULL;
    assert_int_equal(f->p->init(test_host(), &pc, &ctx), 0);
    test_outreq_free(&f->out);
    assert_int_equal(test_prepare(f->p, ctx, simple_req, &f->ep, &pc, &f->call, &f->out), 0);
    assert_string_equal(f->out.url.data, "http://127.0.0.1:8000/v1/chat/completions");
    assert_null(strstr(f->out.headers.data, "Authorization"));
    assert_null(strstr(f->out.headers.data, "OpenAI-Organization"));
    f->p->release(&f->call);
    f->p->fini(ctx);
}

static void test_request_legacy_prompt(void **state)
{
    fx *f = *state;
    f->ep.upstream_model = "gpt-3.5-turbo";
    assert_int_equal(prep(f, "{\"model\":\"openai/gpt-3.5-turbo\",\"prompt\":\"Say \\\"hi\\\"\","
                             "\"max_tokens\":5,\"echo\":false,\"temperature\":0}"),
                     0);
    assert_string_equal(f->out.url.data, "https://api.example.com/v1/chat/completions");
    assert_string_equal(f->out.body.data,
                        "{\"model\":\"gpt-3.5-turbo\","
                        "\"messages\":[{\"role\":\"user\",\"content\":\"Say \\\"hi\\\"\"}],"
                        "\"max_tokens\":5,\"temperature\":0}");
    f->p->release(&f->call);

    assert_int_equal(prep(f, "{\"model\":\"m\",\"prompt\":[\"x\"],\"stream\":true,\"suffix\":\"s\","
                             "\"best_of\":1,\"n\":1}"),
                     0);
    assert_string_equal(f->out.body.data,
                        "{\"model\":\"gpt-3.5-turbo\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                        "\"n\":1,\"stream\":true,\"stream_options\":{\"include_usage\":true}}");
    f->p->release(&f->call);

    /* a batch of prompts cannot be expressed as one chat */
    assert_int_equal(prep(f, "{\"model\":\"m\",\"prompt\":[\"a\",\"b\"]}"), LLMUX_EINVAL);
    assert_non_null(strstr(test_events_str(), "error status=400 "));
    f->p->release(&f->call);
}

static void test_init_requires_base_url(void **state)
{
    fx *f = *state;
    llmux_provider_config pc = {0};
    pc.name = "broken";
    void *ctx = NULL;
    assert_int_equal(f->p->init(test_host(), &pc, &ctx), LLMUX_ECONFIG);
    assert_null(ctx);
}

/* ---- streaming -------------------------------------------------------- */

#define CHUNK(body)                                                                          \
    "data: {\"id\":\"chatcmpl-abc123\",\"object\":\"chat.completion.chunk\",\"created\":1700000000," \
    "\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_1\"," body "}\n\n"

static const char transcript[] =
    ": keep-alive\n\n"
    CHUNK("\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null},"
          "\"logprobs\":null,\"finish_reason\":null}],\"usage\":null")
    CHUNK("\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"Let me think\"},"
          "\"finish_reason\":null}],\"usage\":null")
    CHUNK("\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"},\"finish_reason\":null}],\"usage\":null")
    CHUNK("\"choices\":[{\"index\":0,\"delta\":{\"content\":\" \\\"w\\u00f6rld\\\"\\n\"},"
          "\"finish_reason\":null}],\"usage\":null")
    CHUNK("\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_A\","
          "\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}]},"
          "\"finish_reason\":null}],\"usage\":null")
    CHUNK("\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":"
          "{\"arguments\":\"{\\\"loc\"}}]},\"finish_reason\":null}],\"usage\":null")
    CHUNK("\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"call_B\","
          "\"type\":\"function\",\"function\":{\"name\":\"get_time\",\"arguments\":\"\"}}]},"
          "\"finish_reason\":null}],\"usage\":null")
    CHUNK("\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":"
          "{\"arguments\":\"ation\\\":\\\"Paris\\\"}\"}}]},\"finish_reason\":null}],\"usage\":null")
    CHUNK("\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"function\":"
          "{\"arguments\":\"{\\\"tz\\\":\\\"CET\\\"}\"}}]},\"finish_reason\":null}],\"usage\":null")
    CHUNK("\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}],\"usage\":null")
    CHUNK("\"choices\":[],\"usage\":{\"prompt_tokens\":42,\"completion_tokens\":17,\"total_tokens\":59,"
          "\"prompt_tokens_details\":{\"cached_tokens\":8,\"audio_tokens\":0},"
          "\"completion_tokens_details\":{\"reasoning_tokens\":5,\"audio_tokens\":0}}")
    "data: [DONE]\n\n";

static const char transcript_events[] =
    "upstream_id chatcmpl-abc123\n"
    "delta 0 reasoning Let me think\n"
    "delta 0 content Hello\n"
    "delta 0 content  \\\"w\\u00f6rld\\\"\\n\n"
    "tool 0 idx=0 id=call_A name=get_weather args=\n"
    "tool 0 idx=0 args={\\\"loc\n"
    "tool 0 idx=1 id=call_B name=get_time args=\n"
    "tool 0 idx=0 args=ation\\\":\\\"Paris\\\"}\n"
    "tool 0 idx=1 args={\\\"tz\\\":\\\"CET\\\"}\n"
    "finish 0 tool_calls native=tool_calls\n"
    "usage p=42 c=17 r=5 cached=8 cw=-1\n";

static const llmux_kv sse_headers[] = {{"content-type", "text/event-stream; charset=utf-8"}};

/* Runs one attempt: headers, body in pieces split at `cuts`, done. */
static int feed(fx *f, int status, const llmux_kv *hdr, size_t nh, const char *body, size_t n,
                const size_t *cuts, size_t ncuts)
{
    int rc = f->p->on_headers(&f->call, status, hdr, nh);
    size_t at = 0;
    for (size_t i = 0; rc == 0 && i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : n;
        rc = f->p->on_data(&f->call, body + at, end - at);
        at = end;
    }
    int rc2 = f->p->on_done(&f->call, status);
    f->p->release(&f->call);
    return rc ? rc : rc2;
}

static void test_stream_whole(void **state)
{
    fx *f = *state;
    assert_int_equal(prep(f, simple_req), 0);
    assert_int_equal(feed(f, 200, sse_headers, 1, transcript, sizeof transcript - 1, NULL, 0), 0);
    assert_string_equal(test_events_str(), transcript_events);
}

static void test_stream_split_every_byte(void **state)
{
    fx *f = *state;
    size_t n = sizeof transcript - 1;
    for (size_t cut = 1; cut < n; cut++) {
        assert_int_equal(prep(f, simple_req), 0);
        assert_int_equal(feed(f, 200, sse_headers, 1, transcript, n, &cut, 1), 0);
        if (strcmp(test_events_str(), transcript_events) != 0)
            fail_msg("split at %zu gives:\n%s", cut, test_events_str());
    }
    /* and one byte at a time */
    size_t *cuts = malloc(n * sizeof *cuts);
    assert_non_null(cuts);
    for (size_t i = 0; i + 1 < n; i++)
        cuts[i] = i + 1;
    assert_int_equal(prep(f, simple_req), 0);
    assert_int_equal(feed(f, 200, sse_headers, 1, transcript, n, cuts, n - 1), 0);
    assert_string_equal(test_events_str(), transcript_events);
    free(cuts);
}

static void test_stream_crlf_reasoning_refusal_finishes(void **state)
{
    fx *f = *state;
    static const char body[] =
        "data: {\"id\":\"x1\",\"choices\":[{\"index\":0,\"delta\":{\"reasoning\":\"r1\","
        "\"reasoning_content\":\"r1\"}}]}\r\n\r\n"
        "data: {\"id\":\"x2\",\"choices\":[{\"index\":0,\"delta\":{\"refusal\":\"no\"},"
        "\"finish_reason\":\"function_call\"},"
        "{\"index\":1,\"delta\":{\"content\":\"b\"},\"finish_reason\":\"eos\"}]}\r\n\r\n"
        "data: {\"choices\":[{\"index\":2,\"delta\":{},\"finish_reason\":\"length\"}]}\r\n\r\n"
        "data: {\"choices\":[{\"index\":3,\"delta\":{},\"finish_reason\":\"content_filter\"}],"
        "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}"; /* no final blank line, no [DONE] */
    assert_int_equal(prep(f, simple_req), 0);
    assert_int_equal(feed(f, 200, sse_headers, 1, body, sizeof body - 1, NULL, 0), 0);
    assert_string_equal(test_events_str(), "upstream_id x1\n"
                                           "delta 0 reasoning r1\n"
                                           "delta 0 refusal no\n"
                                           "finish 0 tool_calls native=function_call\n"
                                           "delta 1 content b\n"
                                           "finish 1 stop native=eos\n"
                                           "finish 2 length native=length\n"
                                           "finish 3 content_filter native=content_filter\n"
                                           "usage p=3 c=4 r=-1 cached=-1 cw=-1\n");
}

static void test_stream_tool_calls_without_index(void **state)
{
    fx *f = *state;
    static const char body[] =
        "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"id\":\"a\",\"function\":"
        "{\"name\":\"f\",\"arguments\":\"{\"}}]}}]}\n\n"
        "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"function\":{\"arguments\":\"}\"}}]}}]}\n\n"
        "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"id\":\"b\",\"function\":"
        "{\"name\":\"g\",\"arguments\":{\"x\":1}}}]},\"finish_reason\":\"tool_calls\"}]}\n\n"
        "data: [DONE]\n\n";
    assert_int_equal(prep(f, simple_req), 0);
    assert_int_equal(feed(f, 200, sse_headers, 1, body, sizeof body - 1, NULL, 0), 0);
    assert_string_equal(test_events_str(), "tool 0 idx=0 id=a name=f args={\n"
                                           "tool 0 idx=0 args=}\n"
                                           "tool 0 idx=1 id=b name=g args={\\\"x\\\":1}\n"
                                           "finish 0 tool_calls native=tool_calls\n");
}

static void test_stream_midstream_error(void **state)
{
    fx *f = *state;
    static const char body[] =
        "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n"
        "data: {\"error\":{\"message\":\"The server had an error \\\"x\\\"\",\"type\":\"server_error\"}}\n\n"
        "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ignored\"}}]}\n\n"
        "data: [DONE]\n\n";
    assert_int_equal(prep(f, simple_req), 0);
    assert_int_equal(feed(f, 200, sse_headers, 1, body, sizeof body - 1, NULL, 0), LLMUX_EUPSTREAM);
    assert_string_equal(
        test_events_str(),
        "upstream_id c1\n"
        "delta 0 content Hi\n"
        "error status=502 retry_ms=0 msg=The server had an error \\\"x\\\" "
        "raw={\\\"error\\\":{\\\"message\\\":\\\"The server had an error \\\\\\\"x\\\\\\\"\\\","
        "\\\"type\\\":\\\"server_error\\\"}}\n");
}

static void test_non_streaming_upstream(void **state)
{
    fx *f = *state;
    static const char body[] =
        "{\"id\":\"chatcmpl-9\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,"
        "\"message\":{\"role\":\"assistant\",\"content\":\"Sure.\",\"reasoning_content\":\"hm\","
        "\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"f\","
        "\"arguments\":\"{\\\"a\\\":1}\"}}]},\"finish_reason\":\"tool_calls\"}],"
        "\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":6,\"total_tokens\":11}}";
    static const llmux_kv hdr[] = {{"Content-Type", "application/json"}};
    size_t cut = 40;
    assert_int_equal(prep(f, simple_req), 0);
    assert_int_equal(feed(f, 200, hdr, 1, body, sizeof body - 1, &cut, 1), 0);
    assert_string_equal(test_events_str(), "upstream_id chatcmpl-9\n"
                                           "delta 0 reasoning hm\n"
                                           "delta 0 content Sure.\n"
                                           "tool 0 idx=0 id=call_1 name=f args={\\\"a\\\":1}\n"
                                           "finish 0 tool_calls native=tool_calls\n"
                                           "usage p=5 c=6 r=-1 cached=-1 cw=-1\n");
}

/* Keys are matched like json_get: an escaped key counts, the first of two
 * equal keys wins, unknown keys and odd value types are skipped. */
static void test_non_streaming_key_matching(void **state)
{
    fx *f = *state;
    static const char body[] =
        "{\"object\":\"chat.completion\",\"id\":\"first\",\"id\":\"second\",\"error\":null,"
        "\"\\u0063hoices\":[{\"extra\":{\"message\":{\"content\":\"no\"}},\"message\":{\"conten\\u0074\":\"Yes\","
        "\"content\":\"dup\",\"refusal\":\"\",\"reasoning\":\"r1\",\"reasoning_content\":\"r2\","
        "\"reasoning_details\":[{\"type\":\"reasoning.text\",\"text\":\"t\"},7]},"
        "\"finish_reason\":\"length\",\"index\":2},3],"
        "\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2,"
        "\"completion_tokens_details\":{\"reasoning_tokens\":3},"
        "\"prompt_tokens_details\":{\"cache_write_tokens\":5,\"cached_tokens\":4}},\"usage\":7}";
    static const llmux_kv hdr[] = {{"Content-Type", "application/json"}};
    assert_int_equal(prep(f, simple_req), 0);
    assert_int_equal(feed(f, 200, hdr, 1, body, sizeof body - 1, NULL, 0), 0);
    assert_string_equal(test_events_str(), "upstream_id first\n"
                                           "delta 2 reasoning r1\n"
                                           "reasoning_detail 2 {\"type\":\"reasoning.text\",\"text\":\"t\"}\n"
                                           "delta 2 content Yes\n"
                                           "finish 2 length native=length\n"
                                           "usage p=1 c=2 r=3 cached=4 cw=5\n");
}

/* ---- errors ------------------------------------------------------------- */

static void test_error_429_retry_after(void **state)
{
    fx *f = *state;
    static const char body[] = "{\"error\":{\"message\":\"Rate limit reached\",\"type\":\"requests\"}}";
    static const llmux_kv hdr[] = {{"Content-Type", "application/json"}, {"Retry-After", "7"}};
    assert_int_equal(prep(f, simple_req), 0);
    assert_int_equal(feed(f, 429, hdr, 2, body, sizeof body - 1, NULL, 0), LLMUX_EUPSTREAM);
    assert_string_equal(test_events_str(),
                        "error status=429 retry_ms=7000 msg=Rate limit reached "
                        "raw={\\\"error\\\":{\\\"message\\\":\\\"Rate limit reached\\\","
                        "\\\"type\\\":\\\"requests\\\"}}\n");
}

static void test_error_500_and_503(void **state)
{
    fx *f = *state;
    static const char body[] = "<html>Internal Server Error</html>";
    assert_int_equal(prep(f, simple_req), 0);
    assert_int_equal(feed(f, 500, NULL, 0, body, sizeof body - 1, NULL, 0), LLMUX_EUPSTREAM);
    assert_string_equal(test_events_str(), "error status=502 retry_ms=0 msg=upstream returned HTTP 500 "
                                           "raw=<html>Internal Server Error</html>\n");

    static const char b2[] = "{\"error\":{\"message\":\"overloaded\"}}";
    static const llmux_kv hdr[] = {{"retry-after", "2"}};
    assert_int_equal(prep(f, simple_req), 0);
    assert_int_equal(feed(f, 503, hdr, 1, b2, sizeof b2 - 1, NULL, 0), LLMUX_EUPSTREAM);
    assert_non_null(strstr(test_events_str(), "error status=503 retry_ms=2000 msg=overloaded raw="));
}

static void test_error_400_message(void **state)
{
    fx *f = *state;
    static const char body[] =
        "{\"error\":{\"message\":\"Invalid 'messages[0].role': \\u00e9t\\u00e9\",\"type\":"
        "\"invalid_request_error\",\"param\":\"messages\",\"code\":null}}";
    size_t cut = 10;
    assert_int_equal(prep(f, simple_req), 0);
    assert_int_equal(feed(f, 400, NULL, 0, body, sizeof body - 1, &cut, 1), LLMUX_EUPSTREAM);
    assert_non_null(strstr(test_events_str(),
                           "error status=400 retry_ms=0 msg=Invalid 'messages[0].role': \xc3\xa9t\xc3\xa9 raw="));
}

static void test_error_auth_and_404(void **state)
{
    fx *f = *state;
    static const char b401[] = "{\"error\":{\"message\":\"Incorrect API key provided: sk-***\"}}";
    assert_int_equal(prep(f, simple_req), 0);
    assert_int_equal(feed(f, 401, NULL, 0, b401, sizeof b401 - 1, NULL, 0), LLMUX_EUPSTREAM);
    assert_non_null(strstr(test_events_str(), "error status=502 retry_ms=0 msg=upstream rejected credentials raw="));

    static const char b404m[] =
        "{\"error\":{\"message\":\"The model `gpt-9` does not exist\",\"code\":\"model_not_found\"}}";
    assert_int_equal(prep(f, simple_req), 0);
    assert_int_equal(feed(f, 404, NULL, 0, b404m, sizeof b404m - 1, NULL, 0), LLMUX_EUPSTREAM);
    assert_non_null(strstr(test_events_str(), "error status=404 "));

    static const char b404[] = "404 page not found";
    assert_int_equal(prep(f, simple_req), 0);
    assert_int_equal(feed(f, 404, NULL, 0, b404, sizeof b404 - 1, NULL, 0), LLMUX_EUPSTREAM);
    assert_non_null(strstr(test_events_str(), "error status=502 retry_ms=0 msg=upstream returned HTTP 404 raw=404 page not found\n"));
}

static void test_transport_failure(void **state)
{
    fx *f = *state;
    assert_int_equal(prep(f, simple_req), 0);
    assert_int_equal(f->p->on_done(&f->call, -1), LLMUX_EUPSTREAM);
    f->p->release(&f->call);
    assert_string_equal(test_events_str(), "error status=502 retry_ms=0 msg=upstream connection failed raw=\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_request_translation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_translation_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_auth_variants, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_legacy_prompt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_init_requires_base_url, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_split_every_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_crlf_reasoning_refusal_finishes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_tool_calls_without_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_midstream_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_non_streaming_upstream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_non_streaming_key_matching, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_429_retry_after, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_500_and_503, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_400_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_auth_and_404, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transport_failure, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
