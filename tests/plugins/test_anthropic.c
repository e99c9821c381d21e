/* Golden tests for plugins/anthropic: request translation (multi-turn tools +
 * reasoning replay), stream translation fed whole, split at every byte
 * boundary and byte by byte, and error mapping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "test_host.h"

typedef test_fx fx;

/* base_url stays NULL: the default https://api.anthropic.com/v1 */
static void fx_init(fx *f, const char *version)
{
    assert_int_equal(test_fx_init(f, "anthropic", "sk-ant-test", version ? "version" : NULL, version), 0);
}

static int setup(void **state)
{
    return test_fx_setup(state, "anthropic", "sk-ant-test", "anthropic/claude-sonnet", "claude-sonnet-4-5");
}

static int prep(fx *f, const char *body) { return test_fx_prepare(f, body); }

/* ---- request ------------------------------------------------------------ */

static const char *multi_turn_req =
    "{\"model\":\"anthropic/claude-sonnet\",\"max_tokens\":2000,\"temperature\":0.5,\"top_p\":0.9,"
    "\"top_k\":40,\"stop\":\"END\",\"user\":\"user-7\",\"logit_bias\":{\"1\":2},"
    "\"reasoning\":{\"effort\":\"high\"},\"parallel_tool_calls\":false,\"tool_choice\":\"auto\","
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}}],"
    "\"messages\":["
    "{\"role\":\"system\",\"content\":\"Be brief.\"},"
    "{\"role\":\"developer\",\"content\":[{\"type\":\"text\",\"text\":\"Cache me\","
    "\"cache_control\":{\"type\":\"ephemeral\"}}]},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Weather in Paris and Rome?\"},"
    "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image\\/png;base64,iVBORw0=\"}},"
    "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://x.test/a.jpg\"}}]},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"file\",\"file\":{\"filename\":\"a.pdf\","
    "\"file_data\":\"data:application/pdf;base64,JVBERi0=\"}}]},"
    "{\"role\":\"assistant\",\"content\":null,\"reasoning_details\":[{\"type\":\"reasoning.text\","
    "\"text\":\"Two \\\"cities\\\".\",\"signature\":\"sig1\",\"format\":\"anthropic-claude-v1\",\"index\":0},"
    "{\"type\":\"reasoning.encrypted\",\"data\":\"ENC\",\"format\":\"anthropic-claude-v1\"}],"
    "\"tool_calls\":[{\"id\":\"toolu_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
    "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}},"
    "{\"id\":\"toolu_2\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
    "\"arguments\":\"{\\\"city\\\": \\\"Rome\\\"}\"}}]},"
    "{\"role\":\"tool\",\"tool_call_id\":\"toolu_1\",\"content\":\"18C\"},"
    "{\"role\":\"tool\",\"tool_call_id\":\"toolu_2\",\"content\":[{\"type\":\"text\",\"text\":\"24C\"}]},"
    "{\"role\":\"user\",\"content\":\"Thanks\"},"
    "{\"role\":\"assistant\",\"content\":\"You're welcome.\"},"
    "{\"role\":\"user\",\"content\":\"Bye\"}]}";

static const char *multi_turn_body =
    "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":2000,\"stream\":true,"
    "\"messages\":["
    "{\"role\":\"user\",\"content\":["
    "{\"type\":\"text\",\"text\":\"Weather in Paris and Rome?\"},"
    "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"iVBORw0=\"}},"
    "{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":\"https://x.test/a.jpg\"}},"
    "{\"type\":\"document\",\"source\":{\"type\":\"base64\",\"media_type\":\"application/pdf\",\"data\":\"JVBERi0=\"}}]},"
    "{\"role\":\"assistant\",\"content\":["
    "{\"type\":\"thinking\",\"thinking\":\"Two \\\"cities\\\".\",\"signature\":\"sig1\"},"
    "{\"type\":\"redacted_thinking\",\"data\":\"ENC\"},"
    "{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"get_weather\",\"input\":{\"city\":\"Paris\"}},"
    "{\"type\":\"tool_use\",\"id\":\"toolu_2\",\"name\":\"get_weather\",\"input\":{\"city\": \"Rome\"}}]},"
    "{\"role\":\"user\",\"content\":["
    "{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_1\",\"content\":\"18C\"},"
    "{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_2\",\"content\":[{\"type\":\"text\",\"text\":\"24C\"}]},"
    "{\"type\":\"text\",\"text\":\"Thanks\"}]},"
    "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"You're welcome.\"}]},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Bye\"}]}],"
    "\"system\":[{\"type\":\"text\",\"text\":\"Be brief.\"},"
    "{\"type\":\"text\",\"text\":\"Cache me\",\"cache_control\":{\"type\":\"ephemeral\"}}],"
    "\"tools\":[{\"name\":\"get_weather\",\"description\":\"Weather\",\"input_schema\":"
    "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}],"
    "\"tool_choice\":{\"type\":\"auto\",\"disable_parallel_tool_use\":true},"
    "\"stop_sequences\":[\"END\"],\"top_p\":0.9,"
    "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":1600},"
    "\"metadata\":{\"user_id\":\"user-7\"}}";

static void test_request_multi_turn(void **state)
{
    fx *f = *state;
    assert_int_equal(prep(f, multi_turn_req), 0);
    assert_string_equal(f->out.url.data, "https://api.anthropic.com/v1/messages");
    assert_true(test_outreq_has_header(&f->out, "x-api-key", "sk-ant-test"));
    assert_true(test_outreq_has_header(&f->out, "anthropic-version", "2023-06-01"));
    assert_true(test_outreq_has_header(&f->out, "accept", "text/event-stream"));
    assert_true(test_outreq_has_header(&f->out, "content-type", "application/json"));
    assert_string_equal(f->out.body.data, multi_turn_body);
    assert_string_equal(test_events_str(), "");
}

static void test_request_bearer_version_drops_sampling(void **state)
{
    fx *f = *state;
    f->p->fini(f->ctx);
    fx_init(f, "2026-10-21");
    f->ep.max_completion_tokens = 8192;
    assert_int_equal(prep(f, "{\"model\":\"a/b\",\"temperature\":0.2,\"top_p\":1,\"top_k\":3,"
                             "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\","
                             "\"schema\":{\"type\":\"object\"}}},"
                             "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],"
                             "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"f\"}},"
                             "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},"
                             "{\"role\":\"user\",\"content\":\"again\"}]}"),
                     0);
    assert_true(test_outreq_has_header(&f->out, "authorization", "Bearer sk-ant-test"));
    assert_true(test_outreq_has_header(&f->out, "anthropic-version", "2026-10-21"));
    assert_false(test_outreq_has_header(&f->out, "x-api-key", "sk-ant-test"));
    assert_string_equal(f->out.body.data,
                        "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":8192,\"stream\":true,"
                        "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi\"},"
                        "{\"type\":\"text\",\"text\":\"again\"}]}],"
                        "\"output_config\":{\"format\":{\"type\":\"json_schema\",\"schema\":{\"type\":\"object\"}}},"
                        "\"tools\":[{\"name\":\"f\",\"input_schema\":{\"type\":\"object\",\"properties\":{}}}],"
                        "\"tool_choice\":{\"type\":\"tool\",\"name\":\"f\"}}");
}

static void test_request_thinking_raises_max_tokens(void **state)
{
    fx *f = *state;
    assert_int_equal(prep(f, "{\"model\":\"a/b\",\"max_tokens\":500,\"reasoning\":{\"max_tokens\":3000},"
                             "\"api_key\":1,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"),
                     0);
    assert_string_equal(f->out.body.data,
                        "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":3500,\"stream\":true,"
                        "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi\"}]}],"
                        "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":3000}}");
}

static void test_request_refusals(void **state)
{
    fx *f = *state;
    assert_int_equal(prep(f, "{\"model\":\"a/b\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"},"
                             "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"t\",\"type\":\"function\","
                             "\"function\":{\"name\":\"f\",\"arguments\":\"{not json\"}}]}]}"),
                     LLMUX_EINVAL);
    assert_string_equal(test_events_str(),
                        "error status=400 retry_ms=0 msg=messages[1].tool_calls[0].function.arguments is "
                        "not a valid JSON object raw=\n");
    assert_int_equal(prep(f, "{\"model\":\"a/b\",\"n\":2,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"),
                     LLMUX_EINVAL);
    assert_string_equal(test_events_str(),
                        "error status=400 retry_ms=0 msg=n > 1 is not supported by Anthropic models raw=\n");
    assert_int_equal(prep(f, "{\"model\":\"a/b\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
                             "\"input_audio\",\"input_audio\":{\"data\":\"AA\",\"format\":\"wav\"}}]}]}"),
                     LLMUX_EINVAL);
    assert_string_equal(test_events_str(), "error status=400 retry_ms=0 msg=input_audio parts are not "
                                           "supported by Anthropic models raw=\n");
    assert_int_equal(prep(f, "{\"model\":\"a/b\",\"reasoning\":{\"effort\":\"low\"},\"tool_choice\":\"required\","
                             "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],"
                             "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"),
                     LLMUX_EINVAL);
    assert_string_equal(test_events_str(), "error status=400 retry_ms=0 msg=reasoning cannot be combined with a "
                                           "forced tool_choice on Anthropic models raw=\n");
}

/* ---- streams ------------------------------------------------------------ */

static const char *thinking_tools_sse =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01XY\",\"type\":\"message\",\"role\":\"assistant\","
    "\"model\":\"claude-sonnet-4-5\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,"
    "\"usage\":{\"input_tokens\":100,\"cache_creation_input_tokens\":20,\"cache_read_input_tokens\":30,"
    "\"output_tokens\":1}}}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}\n\n"
    "event: ping\n"
    "data: {\"type\": \"ping\"}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"Need \\\"both\\\" cities.\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"\\nCall tools.\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"EqQBCgIYAhIM+/=\"}}\n\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"Checking \\u00e9.\"}}\n\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":1}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_A\",\"name\":\"get_weather\",\"input\":{}}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"city\\\": \\\"Pa\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"ris\\\"}\"}}\n\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":2}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":3,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_B\",\"name\":\"get_weather\",\"input\":{}}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":3,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"city\\\":\\\"Rome\\\"}\"}}\n\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":3}\n\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":87}}\n\n"
    "event: message_stop\n"
    "data: {\"type\":\"message_stop\"}\n\n";

static void test_stream_thinking_and_parallel_tools(void **state)
{
    test_transcript t = {200, NULL, thinking_tools_sse};
    test_fx_check_transcript(*state, &t,
                     "upstream_id msg_01XY\n"
                     "delta 0 reasoning Need \\\"both\\\" cities.\n"
                     "delta 0 reasoning \\nCall tools.\n"
                     "reasoning_detail 0 {\"type\":\"reasoning.text\",\"text\":\"Need \\\"both\\\" cities.\\nCall tools.\","
                     "\"signature\":\"EqQBCgIYAhIM+/=\",\"format\":\"anthropic-claude-v1\",\"index\":0}\n"
                     "delta 0 content Checking \\u00e9.\n"
                     "tool 0 idx=0 id=toolu_A name=get_weather args=\n"
                     "tool 0 idx=0 args={\\\"city\\\": \\\"Pa\n"
                     "tool 0 idx=0 args=ris\\\"}\n"
                     "tool 0 idx=1 id=toolu_B name=get_weather args=\n"
                     "tool 0 idx=1 args={\\\"city\\\":\\\"Rome\\\"}\n"
                     "finish 0 tool_calls native=tool_use\n"
                     "usage p=150 c=87 r=-1 cached=30 cw=20\n");
}

static void test_stream_redacted_thinking_max_tokens(void **state)
{
    test_transcript t = {200, NULL,
                    "event: message_start\r\n"
                    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_2\",\"usage\":{\"input_tokens\":5,\"output_tokens\":0}}}\r\n\r\n"
                    "event: content_block_start\r\n"
                    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"redacted_thinking\",\"data\":\"EmwKAhgBEgy3\"}}\r\n\r\n"
                    "event: content_block_stop\r\n"
                    "data: {\"type\":\"content_block_stop\",\"index\":0}\r\n\r\n"
                    "event: content_block_start\r\n"
                    "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"Hi\"}}\r\n\r\n"
                    "event: content_block_delta\r\n"
                    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\" there\"}}\r\n\r\n"
                    "event: message_delta\r\n"
                    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\"},\"usage\":{\"output_tokens\":16}}\r\n\r\n"
                    "event: message_stop\r\n"
                    "data: {\"type\":\"message_stop\"}\r\n\r\n"};
    test_fx_check_transcript(*state, &t,
                     "upstream_id msg_2\n"
                     "reasoning_detail 0 {\"type\":\"reasoning.encrypted\",\"data\":\"EmwKAhgBEgy3\",\"format\":\"anthropic-claude-v1\",\"index\":0}\n"
                     "delta 0 content Hi\n"
                     "delta 0 content  there\n"
                     "finish 0 length native=max_tokens\n"
                     "usage p=5 c=16 r=-1 cached=-1 cw=-1\n");
}

static void test_stream_error_after_content(void **state)
{
    test_transcript t = {200, NULL,
                    "event: message_start\n"
                    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_3\",\"usage\":{\"input_tokens\":9,\"output_tokens\":1}}}\n\n"
                    "event: content_block_start\n"
                    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
                    "event: content_block_delta\n"
                    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}\n\n"
                    "event: error\n"
                    "data: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"
                    "event: content_block_delta\n"
                    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"lo\"}}\n\n"};
    test_fx_check_transcript(*state, &t,
                     "upstream_id msg_3\n"
                     "delta 0 content Hel\n"
                     "error status=502 retry_ms=0 msg=Anthropic overloaded_error: Overloaded "
                     "raw={\\\"type\\\":\\\"error\\\",\\\"error\\\":{\\\"type\\\":\\\"overloaded_error\\\",\\\"message\\\":\\\"Overloaded\\\"}}\n");
}

static void test_http_529_before_stream(void **state)
{
    test_transcript t = {529, "7",
                    "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}"};
    test_fx_check_transcript(*state, &t,
                     "error status=502 retry_ms=7000 msg=Anthropic overloaded_error: Overloaded "
                     "raw={\\\"type\\\":\\\"error\\\",\\\"error\\\":{\\\"type\\\":\\\"overloaded_error\\\",\\\"message\\\":\\\"Overloaded\\\"}}\n");
}

static void test_http_errors_mapping(void **state)
{
    test_transcript rl = {429, "12",
                     "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"Slow down\"}}"};
    test_fx_check_transcript(*state, &rl,
                     "error status=429 retry_ms=12000 msg=Anthropic rate_limit_error: Slow down "
                     "raw={\\\"type\\\":\\\"error\\\",\\\"error\\\":{\\\"type\\\":\\\"rate_limit_error\\\",\\\"message\\\":\\\"Slow down\\\"}}\n");
    test_transcript bad = {400, NULL,
                      "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":\"max_tokens: too big\"}}"};
    char *s = test_fx_run(*state, &bad, 0);
    assert_non_null(strstr(s, "error status=400 retry_ms=0 msg=Anthropic invalid_request_error: max_tokens: too big raw="));
    free(s);
    test_transcript auth = {401, NULL, "{\"type\":\"error\",\"error\":{\"type\":\"authentication_error\",\"message\":\"invalid x-api-key\"}}"};
    s = test_fx_run(*state, &auth, 0);
    assert_non_null(strstr(s, "error status=502 "));
    free(s);
    test_transcript html = {503, NULL, "<html>down</html>"};
    s = test_fx_run(*state, &html, 0);
    assert_string_equal(s, "error status=502 retry_ms=0 msg=Anthropic error (HTTP 503) raw=<html>down</html>\n");
    free(s);
}

static void test_stream_truncated(void **state)
{
    test_transcript t = {200, NULL,
                    "event: message_start\n"
                    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":1}}}\n\n"
                    "event: content_block_start\n"
                    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
                    "event: content_block_delta\n"
                    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"par\"}}\n\n"};
    test_fx_check_transcript(*state, &t,
                     "upstream_id m\n"
                     "delta 0 content par\n"
                     "error status=502 retry_ms=0 msg=Anthropic stream ended before message_stop raw=\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_request_multi_turn, setup, test_fx_teardown),
        cmocka_unit_test_setup_teardown(test_request_bearer_version_drops_sampling, setup, test_fx_teardown),
        cmocka_unit_test_setup_teardown(test_request_thinking_raises_max_tokens, setup, test_fx_teardown),
        cmocka_unit_test_setup_teardown(test_request_refusals, setup, test_fx_teardown),
        cmocka_unit_test_setup_teardown(test_stream_thinking_and_parallel_tools, setup, test_fx_teardown),
        cmocka_unit_test_setup_teardown(test_stream_redacted_thinking_max_tokens, setup, test_fx_teardown),
        cmocka_unit_test_setup_teardown(test_stream_error_after_content, setup, test_fx_teardown),
        cmocka_unit_test_setup_teardown(test_http_529_before_stream, setup, test_fx_teardown),
        cmocka_unit_test_setup_teardown(test_http_errors_mapping, setup, test_fx_teardown),
        cmocka_unit_test_setup_teardown(test_stream_truncated, setup, test_fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
