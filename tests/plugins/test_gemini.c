/* Golden tests for plugins/gemini: request translation (multi-turn tools,
 * thought signatures, reasoning), stream translation fed whole, split at
 * every byte boundary and byte by byte, and error mapping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "test_host.h"

typedef test_fx fx;

static int setup(void **state)
{
    return test_fx_setup(state, "gemini", "AIza-test", "google/gemini-2.5-flash", "gemini-2.5-flash");
}

static int prep(fx *f, const char *body) { return test_fx_prepare(f, body); }

/* ---- request ------------------------------------------------------------ */

static const char *multi_turn_req =
    "{\"model\":\"google/gemini-2.5-flash\",\"max_tokens\":1000,\"temperature\":0.3,\"top_p\":0.8,"
    "\"top_k\":20,\"seed\":5,\"presence_penalty\":0.1,\"frequency_penalty\":0.2,\"stop\":[\"X\"],"
    "\"user\":\"u\",\"reasoning\":{\"effort\":\"low\"},\"response_format\":{\"type\":\"json_object\"},"
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},"
    "\"additionalProperties\":false}}},{\"type\":\"function\",\"function\":{\"name\":\"get_time\"}}],"
    "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}},"
    "\"messages\":["
    "{\"role\":\"system\",\"content\":\"Be brief.\"},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Weather?\"},"
    "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBO\"}},"
    "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://x.test/cat.webp?s=1\"}}]},"
    "{\"role\":\"assistant\",\"content\":\"Let me check.\",\"reasoning_details\":[{\"type\":\"reasoning.encrypted\","
    "\"data\":\"SIG_A\",\"id\":\"call_r1_0\",\"format\":\"google-gemini-v1\",\"index\":0}],"
    "\"tool_calls\":[{\"id\":\"call_r1_0\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
    "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}},"
    "{\"id\":\"call_r1_1\",\"type\":\"function\",\"function\":{\"name\":\"get_time\",\"arguments\":\"\"}}]},"
    "{\"role\":\"tool\",\"tool_call_id\":\"call_r1_0\",\"content\":\"{\\\"temp\\\":18}\"},"
    "{\"role\":\"tool\",\"tool_call_id\":\"call_r1_1\",\"content\":\"noon\"},"
    "{\"role\":\"user\",\"content\":\"Thanks\"}]}";

static const char *multi_turn_body =
    "{\"contents\":["
    "{\"role\":\"user\",\"parts\":[{\"text\":\"Weather?\"},"
    "{\"inlineData\":{\"mimeType\":\"image/png\",\"data\":\"iVBO\"}},"
    "{\"fileData\":{\"mimeType\":\"image/webp\",\"fileUri\":\"https://x.test/cat.webp?s=1\"}}]},"
    "{\"role\":\"model\",\"parts\":[{\"text\":\"Let me check.\"},"
    "{\"functionCall\":{\"name\":\"get_weather\",\"args\":{\"city\":\"Paris\"}},\"thoughtSignature\":\"SIG_A\"},"
    "{\"functionCall\":{\"name\":\"get_time\",\"args\":{}}}]},"
    "{\"role\":\"user\",\"parts\":["
    "{\"functionResponse\":{\"name\":\"get_weather\",\"response\":{\"temp\":18}}},"
    "{\"functionResponse\":{\"name\":\"get_time\",\"response\":{\"content\":\"noon\"}}},"
    "{\"text\":\"Thanks\"}]}],"
    "\"systemInstruction\":{\"parts\":[{\"text\":\"Be brief.\"}]},"
    "\"tools\":[{\"functionDeclarations\":[{\"name\":\"get_weather\",\"description\":\"Weather\","
    "\"parametersJsonSchema\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},"
    "\"additionalProperties\":false}},{\"name\":\"get_time\"}]}],"
    "\"toolConfig\":{\"functionCallingConfig\":{\"mode\":\"ANY\",\"allowedFunctionNames\":[\"get_weather\"]}},"
    "\"generationConfig\":{\"maxOutputTokens\":1000,\"temperature\":0.3,\"topP\":0.8,\"topK\":20,\"seed\":5,"
    "\"presencePenalty\":0.1,\"frequencyPenalty\":0.2,\"stopSequences\":[\"X\"],"
    "\"responseMimeType\":\"application/json\","
    "\"thinkingConfig\":{\"includeThoughts\":true,\"thinkingBudget\":200}}}";

static void test_request_multi_turn(void **state)
{
    fx *f = *state;
    assert_int_equal(prep(f, multi_turn_req), 0);
    assert_string_equal(f->out.url.data, "https://generativelanguage.googleapis.com/v1beta/models/"
                                         "gemini-2.5-flash:streamGenerateContent?alt=sse");
    assert_true(test_outreq_has_header(&f->out, "x-goog-api-key", "AIza-test"));
    assert_true(test_outreq_has_header(&f->out, "content-type", "application/json"));
    assert_string_equal(f->out.body.data, multi_turn_body);
    assert_string_equal(test_events_str(), "");
}

static void test_request_json_schema_and_options(void **state)
{
    fx *f = *state;
    assert_int_equal(prep(f, "{\"model\":\"a/b\",\"stop\":\"END\",\"tool_choice\":\"none\","
                             "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],"
                             "\"reasoning\":{\"enabled\":false},"
                             "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"r\","
                             "\"schema\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":[\"string\",\"null\"]}}}}},"
                             "\"messages\":[{\"role\":\"developer\",\"content\":[{\"type\":\"text\",\"text\":\"S\"}]},"
                             "{\"role\":\"user\",\"content\":[{\"type\":\"input_audio\",\"input_audio\":"
                             "{\"data\":\"UklG\",\"format\":\"wav\"}},{\"type\":\"file\",\"file\":{\"filename\":\"d.pdf\","
                             "\"file_data\":\"data:application/pdf;base64,JVBE\"}}]}]}"),
                     0);
    assert_string_equal(f->out.body.data,
                        "{\"contents\":[{\"role\":\"user\",\"parts\":["
                        "{\"inlineData\":{\"mimeType\":\"audio/wav\",\"data\":\"UklG\"}},"
                        "{\"inlineData\":{\"mimeType\":\"application/pdf\",\"data\":\"JVBE\"}}]}],"
                        "\"systemInstruction\":{\"parts\":[{\"text\":\"S\"}]},"
                        "\"tools\":[{\"functionDeclarations\":[{\"name\":\"f\"}]}],"
                        "\"toolConfig\":{\"functionCallingConfig\":{\"mode\":\"NONE\"}},"
                        "\"generationConfig\":{\"stopSequences\":[\"END\"],\"responseMimeType\":\"application/json\","
                        "\"responseJsonSchema\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":[\"string\",\"null\"]}}},"
                        "\"thinkingConfig\":{\"includeThoughts\":false,\"thinkingBudget\":0}}}");
}

static void test_request_refusals(void **state)
{
    fx *f = *state;
    assert_int_equal(prep(f, "{\"model\":\"a/b\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"},"
                             "{\"role\":\"tool\",\"tool_call_id\":\"nope\",\"content\":\"r\"}]}"),
                     LLMUX_EINVAL);
    assert_string_equal(test_events_str(), "error status=400 retry_ms=0 msg=messages[1]: tool message does not "
                                           "match an earlier tool call id raw=\n");
    assert_int_equal(prep(f, "{\"model\":\"a/b\",\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"t\","
                             "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"[1,\"}}]}]}"),
                     LLMUX_EINVAL);
    assert_string_equal(test_events_str(), "error status=400 retry_ms=0 msg=messages[0].tool_calls[0].function."
                                           "arguments is not a valid JSON object raw=\n");
    assert_int_equal(prep(f, "{\"model\":\"a/b\",\"n\":3,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"),
                     LLMUX_EINVAL);
}

/* ---- streams ------------------------------------------------------------ */

static void test_stream_thoughts_and_function_calls(void **state)
{
    test_transcript t = {200, NULL,
                    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Thinking about **weather**\\n\","
                    "\"thought\": true}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 50,"
                    "\"totalTokenCount\": 50},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"r1\"}\r\n\r\n"
                    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Let me check \\u00e9.\"}],\"role\": \"model\"},"
                    "\"index\": 0}],\"responseId\": \"r1\"}\r\n\r\n"
                    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"functionCall\": {\"name\": \"get_weather\","
                    "\"args\": {\"city\": \"Paris\"}},\"thoughtSignature\": \"SIG_A\"},{\"functionCall\": {\"name\": "
                    "\"get_weather\",\"args\": {\"city\": \"Rome\",\"units\": [\"c\"]}}}],\"role\": \"model\"},"
                    "\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 50,"
                    "\"candidatesTokenCount\": 30,\"thoughtsTokenCount\": 12,\"cachedContentTokenCount\": 8,"
                    "\"totalTokenCount\": 92},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"r1\"}\r\n\r\n"};
    test_fx_check_transcript(*state, &t,
                     "upstream_id r1\n"
                     "delta 0 reasoning Thinking about **weather**\\n\n"
                     "delta 0 content Let me check \\u00e9.\n"
                     "tool 0 idx=0 id=call_r1_0 name=get_weather args={\\\"city\\\": \\\"Paris\\\"}\n"
                     "reasoning_detail 0 {\"type\":\"reasoning.encrypted\",\"data\":\"SIG_A\",\"id\":\"call_r1_0\","
                     "\"format\":\"google-gemini-v1\",\"index\":0}\n"
                     "tool 0 idx=1 id=call_r1_1 name=get_weather args={\\\"city\\\": \\\"Rome\\\",\\\"units\\\": [\\\"c\\\"]}\n"
                     "finish 0 tool_calls native=STOP\n"
                     "usage p=50 c=42 r=12 cached=8 cw=-1\n");
}

static void test_stream_safety_block(void **state)
{
    test_transcript t = {200, NULL,
                    "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Sure\"}],\"role\":\"model\"},\"index\":0}],"
                    "\"responseId\":\"r2\"}\n\n"
                    "data: {\"candidates\":[{\"finishReason\":\"SAFETY\",\"index\":0,\"safetyRatings\":[{\"category\":"
                    "\"HARM_CATEGORY_DANGEROUS_CONTENT\",\"probability\":\"HIGH\",\"blocked\":true}]}],"
                    "\"usageMetadata\":{\"promptTokenCount\":7,\"candidatesTokenCount\":1,\"totalTokenCount\":8},"
                    "\"responseId\":\"r2\"}\n\n"};
    test_fx_check_transcript(*state, &t,
                     "upstream_id r2\n"
                     "delta 0 content Sure\n"
                     "delta 0 refusal The response was blocked by Gemini's content filters (SAFETY).\n"
                     "finish 0 content_filter native=SAFETY\n"
                     "usage p=7 c=1 r=0 cached=0 cw=-1\n");
}

static void test_stream_prompt_blocked(void **state)
{
    test_transcript t = {200, NULL,
                    "data: {\"promptFeedback\":{\"blockReason\":\"PROHIBITED_CONTENT\"},"
                    "\"usageMetadata\":{\"promptTokenCount\":4,\"totalTokenCount\":4},\"responseId\":\"r3\"}\n\n"};
    test_fx_check_transcript(*state, &t,
                     "upstream_id r3\n"
                     "delta 0 refusal The prompt was blocked by Gemini's content filters (PROHIBITED_CONTENT).\n"
                     "finish 0 content_filter native=PROHIBITED_CONTENT\n"
                     "usage p=4 c=0 r=-1 cached=0 cw=-1\n");
}

static void test_stream_max_tokens(void **state)
{
    test_transcript t = {200, NULL,
                    "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"abc\"}],\"role\":\"model\"},"
                    "\"finishReason\":\"MAX_TOKENS\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":3,"
                    "\"candidatesTokenCount\":5,\"totalTokenCount\":8}}\n\n"};
    test_fx_check_transcript(*state, &t,
                     "delta 0 content abc\n"
                     "finish 0 length native=MAX_TOKENS\n"
                     "usage p=3 c=5 r=0 cached=0 cw=-1\n");
}

static const char *rate_limit_body =
    "{\n  \"error\": {\n    \"code\": 429,\n    \"message\": \"Resource has been exhausted (e.g. check quota).\",\n"
    "    \"status\": \"RESOURCE_EXHAUSTED\",\n    \"details\": [\n      {\n"
    "        \"@type\": \"type.googleapis.com/google.rpc.QuotaFailure\",\n        \"violations\": []\n      },\n"
    "      {\n        \"@type\": \"type.googleapis.com/google.rpc.RetryInfo\",\n        \"retryDelay\": \"1.5s\"\n"
    "      }\n    ]\n  }\n}\n";

static void test_http_429_retry_info(void **state)
{
    test_transcript t = {429, NULL, rate_limit_body};
    char *s = test_fx_run(*state, &t, 0);
    assert_non_null(strstr(s, "error status=429 retry_ms=1500 msg=Gemini RESOURCE_EXHAUSTED: Resource has been "
                              "exhausted (e.g. check quota). raw={\\n  \\\"error\\\""));
    free(s);
    test_fx_check_transcript(*state, &t, (s = test_fx_run(*state, &t, 0)));
    free(s);
}

static const char *invalid_key_body =
    "{\n  \"error\": {\n    \"code\": 400,\n    \"message\": \"API key not valid. Please pass a valid API key.\",\n"
    "    \"status\": \"INVALID_ARGUMENT\"\n  }\n}\n";

static void test_json_error_served_as_event_stream(void **state)
{
    /* Non-2xx status with a text/event-stream content type. */
    test_transcript bad = {400, NULL, invalid_key_body};
    char *expected = NULL;
    test_fx_check_transcript(*state, &bad, (expected = test_fx_run(*state, &bad, 0)));
    assert_non_null(strstr(expected, "error status=400 retry_ms=0 msg=Gemini INVALID_ARGUMENT: API key not valid. "
                                     "Please pass a valid API key. raw={\\n"));
    /* Same body behind a 200: no SSE framing ever appears. */
    test_transcript ok = {200, NULL, invalid_key_body};
    char *s = test_fx_run(*state, &ok, 0);
    assert_string_equal(s, expected);
    test_fx_check_transcript(*state, &ok, expected);
    free(s);
    free(expected);
}

static void test_http_503_and_midstream_error(void **state)
{
    test_transcript t = {503, NULL, "{\"error\":{\"code\":503,\"message\":\"The model is overloaded.\",\"status\":\"UNAVAILABLE\"}}"};
    test_fx_check_transcript(*state, &t,
                     "error status=503 retry_ms=0 msg=Gemini UNAVAILABLE: The model is overloaded. "
                     "raw={\\\"error\\\":{\\\"code\\\":503,\\\"message\\\":\\\"The model is overloaded.\\\",\\\"status\\\":\\\"UNAVAILABLE\\\"}}\n");
    test_transcript mid = {200, NULL,
                      "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hi\"}],\"role\":\"model\"},\"index\":0}],"
                      "\"responseId\":\"r9\"}\n\n"
                      "data: {\"error\":{\"code\":500,\"message\":\"Internal error\",\"status\":\"INTERNAL\"}}\n\n"};
    test_fx_check_transcript(*state, &mid,
                     "upstream_id r9\n"
                     "delta 0 content Hi\n"
                     "error status=502 retry_ms=0 msg=Gemini INTERNAL: Internal error "
                     "raw={\\\"error\\\":{\\\"code\\\":500,\\\"message\\\":\\\"Internal error\\\",\\\"status\\\":\\\"INTERNAL\\\"}}\n");
}

static void test_stream_truncated(void **state)
{
    test_transcript t = {200, NULL, "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hi\"}]}}]}\n\n"};
    test_fx_check_transcript(*state, &t,
                     "delta 0 content Hi\n"
                     "error status=502 retry_ms=0 msg=Gemini stream ended without a finishReason raw=\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_request_multi_turn, setup, test_fx_teardown),
        cmocka_unit_test_setup_teardown(test_request_json_schema_and_options, setup, test_fx_teardown),
        cmocka_unit_test_setup_teardown(test_request_refusals, setup, test_fx_teardown),
        cmocka_unit_test_setup_teardown(test_stream_thoughts_and_function_calls, setup, test_fx_teardown),
        cmocka_unit_test_setup_teardown(test_stream_safety_block, setup, test_fx_teardown),
        cmocka_unit_test_setup_teardown(test_stream_prompt_blocked, setup, test_fx_teardown),
        cmocka_unit_test_setup_teardown(test_stream_max_tokens, setup, test_fx_teardown),
        cmocka_unit_test_setup_teardown(test_http_429_retry_info, setup, test_fx_teardown),
        cmocka_unit_test_setup_teardown(test_json_error_served_as_event_stream, setup, test_fx_teardown),
        cmocka_unit_test_setup_teardown(test_http_503_and_midstream_error, setup, test_fx_teardown),
        cmocka_unit_test_setup_teardown(test_stream_truncated, setup, test_fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
