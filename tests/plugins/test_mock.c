/* Golden tests for plugins/mock: echo, tool call, lorem (with and without a
 * delay), max_tokens cut, unknown model and the simulated failures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "test_host.h"

typedef test_fx fx;

static int setup(void **state) { return test_fx_setup(state, "mock", NULL, "mock/echo", "echo"); }

/* Teardown is test_fx_teardown: prep does not mark calls prepared, run_local releases them. */
/* Ticks until the plugin stops scheduling itself (as the host would). */
static int run_local(fx *f)
{
    int rc = 0;
    for (int i = 0; i < 10000; i++) {
        size_t before = test_events.len;
        rc = f->p->on_tick(&f->call);
        const char *tail = test_events_str() + before;
        if (rc < 0 || !strstr(tail, "schedule "))
            break;
    }
    if (rc == 0)
        rc = f->p->on_done(&f->call, 200);
    f->p->release(&f->call);
    return rc;
}

static int prep(fx *f, const char *model, const char *body)
{
    f->ep.upstream_model = model;
    test_outreq_free(&f->out);
    test_reset_events();
    return test_prepare(f->p, f->ctx, body, &f->ep, &f->pc, &f->call, &f->out);
}

static void test_echo_string(void **state)
{
    fx *f = *state;
    assert_int_equal(prep(f, "echo",
                          "{\"model\":\"mock/echo\",\"messages\":["
                          "{\"role\":\"system\",\"content\":\"You are terse.\"},"
                          "{\"role\":\"user\",\"content\":\"Hello \\\"there\\\"\"}]}"),
                     0);
    assert_int_equal(f->out.local, 1);
    assert_int_equal(run_local(f), 0);
    /* prompt bytes 14 + 15 = 29 -> 8; reply 15 escaped bytes -> 4 */
    assert_string_equal(test_events_str(), "upstream_id mock-1\n"
                                           "delta 0 content Hello \\\"there\\\"\n"
                                           "finish 0 stop native=stop\n"
                                           "usage p=8 c=4 r=0 cached=0 cw=0\n");
}

static void test_echo_parts_and_counter(void **state)
{
    fx *f = *state;
    const char *body = "{\"model\":\"mock/echo\",\"messages\":["
                       "{\"role\":\"user\",\"content\":\"first\"},"
                       "{\"role\":\"assistant\",\"content\":null},"
                       "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"ab\"},"
                       "{\"type\":\"image_url\",\"image_url\":{\"url\":\"http://x/y.png\"}},"
                       "{\"type\":\"text\",\"text\":\"cd\"}]}]}";
    assert_int_equal(prep(f, "echo", body), 0);
    assert_int_equal(run_local(f), 0);
    assert_string_equal(test_events_str(), "upstream_id mock-1\n"
                                           "delta 0 content abcd\n"
                                           "finish 0 stop native=stop\n"
                                           "usage p=3 c=1 r=0 cached=0 cw=0\n");
    assert_int_equal(prep(f, "echo", body), 0);
    assert_int_equal(run_local(f), 0);
    assert_non_null(strstr(test_events_str(), "upstream_id mock-2\n"));
}

static void test_echo_tool_call(void **state)
{
    fx *f = *state;
    assert_int_equal(
        prep(f, "echo",
             "{\"model\":\"mock/echo\",\"messages\":[{\"role\":\"user\",\"content\":"
             "\"What is the Weather like?\"}],\"tools\":["
             "{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{}}},"
             "{\"type\":\"function\",\"function\":{\"name\":\"other\"}}]}"),
        0);
    assert_int_equal(run_local(f), 0);
    assert_string_equal(test_events_str(),
                        "upstream_id mock-1\n"
                        "tool 0 idx=0 id=call_mock_1 name=get_weather "
                        "args={\\\"location\\\":\\\"Paris\\\"}\n"
                        "finish 0 tool_calls native=tool_calls\n"
                        "usage p=7 c=6 r=0 cached=0 cw=0\n");
}

static void test_echo_tools_without_weather(void **state)
{
    fx *f = *state;
    assert_int_equal(prep(f, "echo",
                          "{\"model\":\"mock/echo\",\"messages\":[{\"role\":\"user\",\"content\":"
                          "\"hi\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}"),
                     0);
    assert_int_equal(run_local(f), 0);
    assert_string_equal(test_events_str(), "upstream_id mock-1\n"
                                           "delta 0 content hi\n"
                                           "finish 0 stop native=stop\n"
                                           "usage p=1 c=1 r=0 cached=0 cw=0\n");
}

static void test_lorem_max_tokens(void **state)
{
    fx *f = *state;
    assert_int_equal(prep(f, "lorem",
                          "{\"model\":\"mock/lorem\",\"max_tokens\":3,\"messages\":"
                          "[{\"role\":\"user\",\"content\":\"12345678\"}]}"),
                     0);
    assert_int_equal(run_local(f), 0);
    assert_string_equal(test_events_str(), "upstream_id mock-1\n"
                                           "delta 0 content Lorem\n"
                                           "delta 0 content  ipsum\n"
                                           "delta 0 content  dolor\n"
                                           "finish 0 length native=length\n"
                                           "usage p=2 c=3 r=0 cached=0 cw=0\n");
}

static void test_lorem_tokens_option_and_delay(void **state)
{
    fx *f = *state;
    f->ep_opts[0].key = "tokens";
    f->ep_opts[0].value = "2";
    f->ep_opts[1].key = "delay_ms";
    f->ep_opts[1].value = "15";
    f->ep.options = f->ep_opts;
    f->ep.n_options = 2;
    assert_int_equal(prep(f, "lorem",
                          "{\"model\":\"mock/lorem\",\"max_tokens\":10,\"messages\":"
                          "[{\"role\":\"user\",\"content\":\"x\"}]}"),
                     0);
    assert_int_equal(f->out.local, 1);
    assert_int_equal(run_local(f), 0);
    assert_string_equal(test_events_str(), "upstream_id mock-1\n"
                                           "delta 0 content Lorem\n"
                                           "schedule 15\n"
                                           "delta 0 content  ipsum\n"
                                           "finish 0 stop native=stop\n"
                                           "usage p=1 c=2 r=0 cached=0 cw=0\n");
}

static void test_lorem_default_count(void **state)
{
    fx *f = *state;
    assert_int_equal(prep(f, "lorem", "{\"model\":\"mock/lorem\",\"messages\":"
                                      "[{\"role\":\"user\",\"content\":\"x\"}]}"),
                     0);
    assert_int_equal(run_local(f), 0);
    const char *ev = test_events_str();
    int deltas = 0;
    for (const char *p = ev; (p = strstr(p, "delta 0 content")); p++)
        deltas++;
    assert_int_equal(deltas, 64);
    assert_non_null(strstr(ev, "finish 0 stop native=stop\nusage p=1 c=64 r=0 cached=0 cw=0\n"));
    assert_null(strstr(ev, "schedule"));
}

static void test_unknown_model(void **state)
{
    fx *f = *state;
    assert_int_equal(prep(f, "nope", "{\"model\":\"mock/nope\",\"messages\":[]}"),
                     LLMUX_EUNSUPPORTED);
    f->p->release(&f->call);
    assert_string_equal(test_events_str(),
                        "error status=404 retry_ms=0 msg=mock: unknown model 'nope' raw=\n");
}

static void test_fail(void **state)
{
    fx *f = *state;
    assert_int_equal(prep(f, "fail", "{\"model\":\"mock/fail\",\"messages\":"
                                     "[{\"role\":\"user\",\"content\":\"x\"}]}"),
                     0);
    assert_int_equal(run_local(f), LLMUX_EUPSTREAM);
    const char *ev = test_events_str();
    assert_non_null(strstr(ev, "error status=500 "));
    assert_null(strstr(ev, "delta"));
}

static void test_fail_midstream(void **state)
{
    fx *f = *state;
    assert_int_equal(prep(f, "fail_midstream", "{\"model\":\"mock/f\",\"messages\":"
                                               "[{\"role\":\"user\",\"content\":\"x\"}]}"),
                     0);
    assert_int_equal(run_local(f), LLMUX_EUPSTREAM);
    const char *ev = test_events_str();
    assert_non_null(strstr(ev, "delta 0 content Lorem\ndelta 0 content  ipsum\nerror status=502 "));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_echo_string, setup, test_fx_teardown),
        cmocka_unit_test_setup_teardown(test_echo_parts_and_counter, setup, test_fx_teardown),
        cmocka_unit_test_setup_teardown(test_echo_tool_call, setup, test_fx_teardown),
        cmocka_unit_test_setup_teardown(test_echo_tools_without_weather, setup, test_fx_teardown),
        cmocka_unit_test_setup_teardown(test_lorem_max_tokens, setup, test_fx_teardown),
        cmocka_unit_test_setup_teardown(test_lorem_tokens_option_and_delay, setup, test_fx_teardown),
        cmocka_unit_test_setup_teardown(test_lorem_default_count, setup, test_fx_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_model, setup, test_fx_teardown),
        cmocka_unit_test_setup_teardown(test_fail, setup, test_fx_teardown),
        cmocka_unit_test_setup_teardown(test_fail_midstream, setup, test_fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
