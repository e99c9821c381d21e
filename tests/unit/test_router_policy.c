/* default.lua's policy: 1/price^2 balancing (seeded), each provider field,
 * each variant, capability 404s, health (recent failure, circuit, parking)
 * through the real stats, prompt-cache stickiness through on_result, the
 * route() result contract (refusals, params) and the body rewriting, and
 * every example script in examples/routing/. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "json.h"
#include "router.h"
#include "stats.h"

#define DEFAULT_SCRIPT LLMUX_SOURCE_DIR "/scripts/default.lua"

/* a/m on pricey (1), mid (2), cheap (3); fallback b/f on free (4), cheap (5). */
static const char *policy_config =
    "providers = {\n"
    "  pricey = { name = 'Pricey', zdr = true, data_collection = 'deny' },\n"
    "  mid = { name = 'Mid', data_collection = 'deny' },\n"
    "  cheap = { name = 'Cheap' },\n"
    "  free = { name = 'Freebie' },\n"
    "}\n"
    "local all = { 'temperature', 'top_p', 'max_tokens', 'tools', 'tool_choice',\n"
    "              'response_format', 'reasoning', 'seed' }\n"
    "models = {\n"
    "  { id = 'a/m', input_modalities = { 'text', 'image' }, endpoints = {\n"
    "    { provider = 'pricey', pricing = { prompt = 4e-6, completion = 4e-6, request = 0.01 },\n"
    "      context_length = 200000, supported_parameters = all, quantization = 'fp16',\n"
    "      tags = { 'extended' } },\n"
    "    { provider = 'mid', pricing = { prompt = 2e-6, completion = 2e-6 },\n"
    "      context_length = 32000, supported_parameters = { 'temperature', 'max_tokens', 'tools' },\n"
    "      quantization = 'fp8' },\n"
    "    { provider = 'cheap', pricing = { prompt = 1e-6, completion = 1e-6 },\n"
    "      context_length = 8000, supported_parameters = { 'temperature', 'max_tokens' },\n"
    "      quantization = 'int4' },\n"
    "  } },\n"
    "  { id = 'b/f', endpoints = {\n"
    "    { provider = 'free', pricing = { prompt = 0, completion = 0 }, context_length = 8000,\n"
    "      supported_parameters = { 'temperature' } },\n"
    "    { provider = 'cheap', pricing = { prompt = 1e-6, completion = 1e-6 }, context_length = 8000 },\n"
    "  } },\n"
    "}\n";

typedef struct {
    llmux_config *cfg;
    llmux_router *r;
    llmux_candidate cands[8];
    llmux_stats_slot *slots[8];
    int n;
} fixture;

static fixture fx;

static void refresh_stats(void)
{
    for (int i = 0; i < fx.n; i++)
        llmux_stats_snapshot(fx.slots[i], &fx.cands[i].stats);
}

static int setup(void **state)
{
    (void)state;
    char err[512];
    fx.cfg = llmux_config_load_string(policy_config, strlen(policy_config), "policy", err, sizeof err);
    if (!fx.cfg)
        fail_msg("%s", err);
    fx.n = (int)fx.cfg->n_endpoints;
    for (int i = 0; i < fx.n; i++) {
        const llmux_endpoint_cfg *ep = fx.cfg->endpoint_by_index[i];
        fx.cands[i].ep = ep;
        fx.slots[i] = llmux_stats_slot_for(ep->model->id, ep->provider->id);
        llmux_stats_test_reset(fx.slots[i]);
    }
    fx.r = llmux_router_new(DEFAULT_SCRIPT, 8 << 20, 1000000, err, sizeof err);
    if (!fx.r)
        fail_msg("%s", err);
    assert_int_equal(llmux_router_set_config(fx.r, fx.cfg), 0); /* also sets the stats policy */
    llmux_router_seed(fx.r, 12345);
    refresh_stats();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(llmux_router_fallbacks(fx.r), 0);
    llmux_router_free(fx.r);
    llmux_config_unref(fx.cfg);
    return 0;
}

typedef struct {
    int has_tools, has_images, has_response_format;
    const char *variant;
    int64_t est, max_tokens;
    const char *key_label;
    uint64_t prefix_hash;
    int ncands; /* 0 = all */
    int first;  /* first candidate offered (0-based) */
} opts;

static llmux_route_result last_res;

/* The plan for a body as "1,2,3" (1-based indices into the offered list);
 * a refusal as "404: message". */
static const char *plan(const char *body, opts o)
{
    static char out[512];
    llmux_json doc = {0};
    llmux_json_limits lim = {.max_tokens = 1024, .max_depth = 32};
    if (llmux_json_parse(body, strlen(body), &lim, &doc, NULL, NULL) != 0)
        fail_msg("bad test JSON: %s", body);
    llmux_route_request req = {.body = &doc, .model = "a/m", .variant = o.variant,
                               .has_tools = o.has_tools, .has_images = o.has_images,
                               .has_response_format = o.has_response_format,
                               .estimated_prompt_tokens = o.est ? o.est : 10,
                               .max_tokens = o.max_tokens, .key_label = o.key_label,
                               .prefix_hash = o.prefix_hash};
    llmux_attempt at[16];
    int n = llmux_router_plan_ex(fx.r, &req, fx.cands + o.first, o.ncands ? o.ncands : fx.n - o.first,
                                 at, 16, &last_res);
    llmux_json_release(&doc);
    out[0] = '\0';
    if (n == 0 && last_res.status) {
        snprintf(out, sizeof out, "%d: %s", last_res.status, last_res.message);
        return out;
    }
    for (int i = 0; i < n; i++) {
        char b[16];
        snprintf(b, sizeof b, "%s%d", i ? "," : "", at[i].candidate + 1);
        strcat(out, b);
    }
    llmux_route_result_free(&last_res);
    return out;
}

#define A3 ((opts){.ncands = 3})

static void test_price_weights(void **state)
{
    (void)state;
    /* weights 1/(8e-6)^2 : 1/(4e-6)^2 : 1/(2e-6)^2 = 1 : 4 : 16 */
    const double want[3] = {1.0 / 21, 4.0 / 21, 16.0 / 21};
    int count[3] = {0};
    enum { N = 10000 };
    for (int i = 0; i < N; i++) {
        const char *p = plan("{}", A3);
        int first = p[0] - '1';
        assert_true(first >= 0 && first < 3);
        count[first]++;
        /* the rest follow by price */
        if (first == 0)
            assert_string_equal(p, "1,3,2");
        else if (first == 1)
            assert_string_equal(p, "2,3,1");
        else
            assert_string_equal(p, "3,2,1");
    }
    for (int k = 0; k < 3; k++) {
        double got = (double)count[k] / N;
        printf("candidate %d: first %.2f%% (weight %.2f%%)\n", k + 1, 100 * got, 100 * want[k]);
        assert_true(fabs(got - want[k]) <= 0.02);
    }
    /* the whole list: each model balanced on its own; the free endpoint of
     * b/f (weight of the cheapest) always wins its group */
    for (int i = 0; i < 200; i++) {
        const char *p = plan("{}", (opts){0});
        assert_string_equal(p + strlen(p) - 3, "4,5");
    }
}

/* default.lua's allocation-free path for plain requests (no provider object,
 * no variant) must plan exactly as the general path does: an empty provider
 * object takes the general path with the same preferences, so with the
 * same seed both sequences of plans must match, whatever the health. */
static void test_simple_path_matches_general(void **state)
{
    (void)state;
    static const llmux_endpoint_stats healthy = {.last_failure_age_s = -1};
    static const struct {
        int circuit[3], recent[3];
        double parked[3];
    } cases[] = {
        {{0, 0, 0}, {0, 0, 0}, {0, 0, 0}},
        {{1, 0, 0}, {0, 0, 0}, {0, 0, 0}}, /* open */
        {{0, 2, 0}, {0, 0, 1}, {0, 0, 0}}, /* half-open, recent failure */
        {{0, 0, 0}, {0, 0, 0}, {0, 5, 0}}, /* parked */
        {{1, 0, 0}, {0, 1, 0}, {0, 0, 3}}, /* nothing healthy */
        {{0, 1, 0}, {1, 0, 0}, {0, 0, 0}},
    };
    static const opts shapes[] = {
        {.ncands = 3},
        {.ncands = 3, .est = 9000},           /* cheap's context is too small */
        {.ncands = 1, .first = 2},
        {.ncands = 2, .first = 1},
        {0},                                  /* two models */
        {.ncands = 3, .prefix_hash = 99, .key_label = "k"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (int i = 0; i < 3; i++) {
            fx.cands[i].stats = healthy;
            fx.cands[i].stats.circuit = cases[c].circuit[i];
            fx.cands[i].stats.recent_failure = cases[c].recent[i];
            fx.cands[i].stats.parked_for_s = cases[c].parked[i];
        }
        for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
            char simple[200][32];
            llmux_router_seed(fx.r, 7 + c);
            for (int i = 0; i < 200; i++)
                snprintf(simple[i], sizeof simple[i], "%s", plan("{}", shapes[k]));
            llmux_router_seed(fx.r, 7 + c);
            for (int i = 0; i < 200; i++)
                assert_string_equal(plan("{\"provider\":{}}", shapes[k]), simple[i]);
        }
    }
    refresh_stats();
    llmux_router_seed(fx.r, 12345);
}

static void test_order_only_ignore_fallbacks(void **state)
{
    (void)state;
    assert_string_equal(plan("{\"provider\":{\"order\":[\"cheap\",\"Pricey\"]}}", A3), "3,1,2");
    assert_string_equal(plan("{\"provider\":{\"order\":[\"cheap\",\"pricey\"],\"allow_fallbacks\":false}}", A3),
                        "3,1");
    /* order applies within each model; b/f keeps its balancing */
    assert_string_equal(plan("{\"provider\":{\"order\":[\"cheap\"],\"sort\":\"price\"}}", (opts){0}),
                        "3,2,1,5,4");
    assert_string_equal(plan("{\"provider\":{\"only\":[\"mid\"]}}", A3), "2");
    assert_string_equal(plan("{\"provider\":{\"only\":[\"MID\",\"cheap\"],\"sort\":\"price\"}}", A3), "3,2");
    assert_string_equal(plan("{\"provider\":{\"ignore\":[\"cheap\"],\"sort\":\"price\"}}", A3), "2,1");
    /* no order, no fallbacks: the single first choice */
    assert_string_equal(plan("{\"provider\":{\"sort\":\"price\",\"allow_fallbacks\":false}}", A3), "3");
    assert_string_equal(plan("{\"provider\":{\"sort\":\"price\",\"allow_fallbacks\":false}}", (opts){0}),
                        "3,4");
    const char *p = plan("{\"provider\":{\"only\":[\"nobody\"]}}", A3);
    assert_non_null(strstr(p, "503: no endpoint of a/m meets the routing requirements"));
    assert_non_null(strstr(p, "only"));
}

static void test_sort(void **state)
{
    (void)state;
    assert_string_equal(plan("{\"provider\":{\"sort\":\"price\"}}", A3), "3,2,1");
    assert_string_equal(plan("{\"provider\":{\"sort\":{\"by\":\"price\"}}}", A3), "3,2,1");
    fx.cands[0].stats.throughput_ewma = 100;
    fx.cands[1].stats.throughput_ewma = 50;
    fx.cands[0].stats.ttft_ms_ewma = 900;
    fx.cands[1].stats.ttft_ms_ewma = 300;
    /* unknown (0) goes last */
    assert_string_equal(plan("{\"provider\":{\"sort\":\"throughput\"}}", A3), "1,2,3");
    assert_string_equal(plan("{\"provider\":{\"sort\":\"latency\"}}", A3), "2,1,3");
    refresh_stats();
}

static void test_max_price(void **state)
{
    (void)state;
    /* prompt/completion in USD per million tokens (pricing is per token) */
    assert_string_equal(plan("{\"provider\":{\"max_price\":{\"prompt\":3},\"sort\":\"price\"}}", A3), "3,2");
    assert_string_equal(plan("{\"provider\":{\"max_price\":{\"completion\":1},\"sort\":\"price\"}}", A3), "3");
    /* request: USD per request */
    assert_string_equal(plan("{\"provider\":{\"max_price\":{\"request\":0.001},\"sort\":\"price\"}}", A3), "3,2");
    const char *p = plan("{\"provider\":{\"max_price\":{\"prompt\":0.5}}}", A3);
    assert_non_null(strstr(p, "503: "));
    assert_non_null(strstr(p, "max_price"));
}

static void test_require_parameters(void **state)
{
    (void)state;
    const char *top_p = "{\"top_p\":0.5,\"temperature\":1,\"provider\":{\"require_parameters\":true,\"sort\":\"price\"}}";
    assert_string_equal(plan(top_p, A3), "1");
    assert_string_equal(plan("{\"temperature\":1,\"max_completion_tokens\":5,\"provider\":"
                             "{\"require_parameters\":true,\"sort\":\"price\"}}", A3), "3,2,1");
    /* without require_parameters nothing is filtered */
    assert_string_equal(plan("{\"top_p\":0.5,\"provider\":{\"sort\":\"price\"}}", A3), "3,2,1");
    /* non-model fields (messages, stream, provider...) never count */
    assert_string_equal(plan("{\"messages\":[],\"stream\":true,\"user\":\"u\",\"provider\":"
                             "{\"require_parameters\":true,\"sort\":\"price\"}}", A3), "3,2,1");
}

static void test_data_policy_and_quantization(void **state)
{
    (void)state;
    assert_string_equal(plan("{\"provider\":{\"data_collection\":\"deny\",\"sort\":\"price\"}}", A3), "2,1");
    assert_string_equal(plan("{\"provider\":{\"data_collection\":\"allow\",\"sort\":\"price\"}}", A3), "3,2,1");
    assert_string_equal(plan("{\"provider\":{\"zdr\":true}}", A3), "1");
    assert_string_equal(plan("{\"provider\":{\"quantizations\":[\"fp8\",\"INT4\"],\"sort\":\"price\"}}", A3), "3,2");
    /* an endpoint without a quantization is "unknown" */
    assert_string_equal(plan("{\"provider\":{\"quantizations\":[\"unknown\"],\"sort\":\"price\"}}", (opts){0}),
                        "4,5");
}

static void test_preferred_thresholds(void **state)
{
    (void)state;
    fx.cands[0].stats.throughput_ewma = 100;
    fx.cands[1].stats.throughput_ewma = 100;
    fx.cands[2].stats.throughput_ewma = 10;
    /* deprioritised, not excluded */
    assert_string_equal(plan("{\"provider\":{\"preferred_min_throughput\":50,\"sort\":\"price\"}}", A3), "2,1,3");
    for (int i = 0; i < 300; i++) {
        const char *p = plan("{\"provider\":{\"preferred_min_throughput\":{\"p50\":50}}}", A3);
        assert_true(p[0] != '3');
        assert_int_equal(p[4], '3');
    }
    refresh_stats();
    fx.cands[2].stats.ttft_ms_ewma = 3000;
    fx.cands[1].stats.ttft_ms_ewma = 500;
    assert_string_equal(plan("{\"provider\":{\"preferred_max_latency\":1,\"sort\":\"price\"}}", A3), "2,1,3");
    refresh_stats();
}

static void test_variants(void **state)
{
    (void)state;
    assert_string_equal(plan("{}", (opts){.variant = "free"}), "4");
    assert_string_equal(plan("{}", (opts){.variant = "free", .ncands = 3}),
                        "404: no endpoint of a/m is free (:free)");
    assert_string_equal(plan("{}", (opts){.variant = "floor", .ncands = 3}), "3,2,1");
    fx.cands[1].stats.throughput_ewma = 300;
    fx.cands[2].stats.throughput_ewma = 30;
    assert_string_equal(plan("{}", (opts){.variant = "nitro", .ncands = 3}), "2,3,1");
    refresh_stats();
    assert_string_equal(plan("{}", (opts){.variant = "extended"}), "1");
    /* :thinking needs an endpoint that supports reasoning (b/f's cheap lists
     * no parameters at all: taken to support everything) */
    assert_string_equal(plan("{}", (opts){.variant = "thinking", .ncands = 3}), "1");
    assert_string_equal(plan("{}", (opts){.variant = "thinking", .first = 1, .ncands = 2}),
                        "404: no endpoint of a/m supports reasoning (:thinking)");
}

static void test_capabilities(void **state)
{
    (void)state;
    const char *sp = "{\"provider\":{\"sort\":\"price\"}}";
    assert_string_equal(plan(sp, (opts){.has_tools = 1, .ncands = 3}), "2,1");
    assert_string_equal(plan(sp, (opts){.has_response_format = 1, .ncands = 3}), "1");
    assert_string_equal(plan(sp, (opts){.has_images = 1}), "3,2,1");
    assert_string_equal(plan(sp, (opts){.est = 9000, .ncands = 3}), "2,1");
    assert_string_equal(plan(sp, (opts){.est = 7000, .max_tokens = 2000, .ncands = 3}), "2,1");
    /* nothing can serve it: 404 naming what is missing */
    assert_string_equal(plan("{}", (opts){.has_tools = 1, .first = 2, .ncands = 1}),
                        "404: no endpoint of a/m supports tools");
    assert_string_equal(plan("{}", (opts){.has_images = 1, .first = 3}),
                        "404: no endpoint of b/f supports image input");
    assert_string_equal(plan("{}", (opts){.has_tools = 1, .has_response_format = 1, .first = 1, .ncands = 2}),
                        "404: no endpoint of a/m supports structured output (response_format)");
    assert_string_equal(plan("{}", (opts){.est = 300000, .ncands = 3}),
                        "404: no endpoint of a/m supports a context of 300000 tokens "
                        "(estimated prompt 300000 + max_tokens 0)");
    /* mid lacks response_format, cheap lacks tools and response_format, and
     * with images on b/f: names all of what is missing */
    const char *p = plan("{}", (opts){.has_tools = 1, .has_images = 1, .first = 2});
    assert_non_null(strstr(p, "404: no endpoint of a/m, b/f supports"));
}

static void test_health_window(void **state)
{
    (void)state;
    const char *sp = "{\"provider\":{\"sort\":\"price\"}}";
    llmux_stats_policy pol;
    llmux_stats_get_policy(&pol);
    assert_int_equal(pol.failure_threshold, 5);
    assert_true(pol.failure_window_s == 30);
    /* cheap fails once: the very next plan puts it after the healthy ones */
    llmux_stats_begin(fx.slots[2]);
    llmux_stats_end(fx.slots[2], 0, -1, 12, 0, 0);
    refresh_stats();
    assert_true(fx.cands[2].stats.recent_failure);
    assert_string_equal(plan(sp, A3), "2,1,3");
    for (int i = 0; i < 200; i++) /* balancing never picks it first */
        assert_int_equal(plan("{}", A3)[4], '3');
    llmux_stats_test_advance(20);
    refresh_stats();
    assert_string_equal(plan(sp, A3), "2,1,3");
    /* back after the window */
    llmux_stats_test_advance(11);
    refresh_stats();
    assert_false(fx.cands[2].stats.recent_failure);
    assert_string_equal(plan(sp, A3), "3,2,1");
    /* with allow_fallbacks=false a sick endpoint is dropped... */
    llmux_stats_end(fx.slots[2], 0, -1, 12, 0, 0);
    refresh_stats();
    assert_string_equal(plan("{\"provider\":{\"sort\":\"price\",\"allow_fallbacks\":false}}", A3), "2");
    /* ...unless it is all there is */
    assert_string_equal(plan("{\"provider\":{\"only\":[\"cheap\"],\"allow_fallbacks\":false}}", A3), "3");
    llmux_stats_test_reset(fx.slots[2]);
    refresh_stats();
}

static void test_circuit_and_parking(void **state)
{
    (void)state;
    const char *sp = "{\"provider\":{\"sort\":\"price\"}}";
    llmux_stats_policy pol = {3, 10, 0.2, 30};
    llmux_stats_set_policy(&pol);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(llmux_stats_admit(fx.slots[2]), 0);
        llmux_stats_begin(fx.slots[2]);
        llmux_stats_end(fx.slots[2], 0, -1, 5, 0, 0);
    }
    refresh_stats();
    assert_int_equal(fx.cands[2].stats.circuit, 1);
    assert_int_equal(llmux_stats_admit(fx.slots[2]), -1);
    /* open: after everything, even the fallback model */
    assert_string_equal(plan(sp, (opts){0}), "2,1,4,5,3");
    /* cool-down over: half-open, exactly one probe */
    llmux_stats_test_advance(10.5);
    refresh_stats();
    assert_int_equal(fx.cands[2].stats.circuit, 2);
    assert_string_equal(plan(sp, A3), "2,1,3");
    assert_int_equal(llmux_stats_admit(fx.slots[2]), 0);
    assert_int_equal(llmux_stats_admit(fx.slots[2]), -1);
    /* the probe fails: open again */
    llmux_stats_begin(fx.slots[2]);
    llmux_stats_end(fx.slots[2], 0, -1, 5, 0, 0);
    assert_int_equal(llmux_stats_admit(fx.slots[2]), -1);
    llmux_stats_test_advance(10.5);
    assert_int_equal(llmux_stats_admit(fx.slots[2]), 0);
    /* the probe succeeds: closed */
    llmux_stats_begin(fx.slots[2]);
    llmux_stats_end(fx.slots[2], 1, 100, 300, 20, 0);
    assert_int_equal(llmux_stats_admit(fx.slots[2]), 0);
    assert_int_equal(llmux_stats_admit(fx.slots[2]), 0);
    refresh_stats();
    assert_int_equal(fx.cands[2].stats.circuit, 0);
    assert_int_equal(fx.cands[2].stats.consecutive_failures, 0);
    llmux_stats_test_advance(31);
    refresh_stats();
    assert_string_equal(plan(sp, A3), "3,2,1");

    /* a 429 with Retry-After: 5 s parks it */
    llmux_stats_begin(fx.slots[1]);
    llmux_stats_end(fx.slots[1], 0, -1, 5, 0, 5000);
    refresh_stats();
    assert_true(fx.cands[1].stats.parked_for_s > 4.9);
    assert_string_equal(plan(sp, (opts){0}), "3,1,4,5,2");
    llmux_stats_test_advance(6);
    refresh_stats();
    assert_true(fx.cands[1].stats.parked_for_s == 0);
    assert_string_equal(plan(sp, A3), "3,1,2"); /* still within the failure window */
    llmux_stats_test_advance(30);
    refresh_stats();
    assert_string_equal(plan(sp, A3), "3,2,1");
    pol = (llmux_stats_policy){5, 30, 0.2, 30};
    llmux_stats_set_policy(&pol);
    for (int i = 0; i < fx.n; i++)
        llmux_stats_test_reset(fx.slots[i]);
    refresh_stats();
}

static void result(int cand, int ok, const char *label, uint64_t h)
{
    llmux_route_request req = {.model = "a/m", .key_label = label, .prefix_hash = h};
    llmux_router_on_result(fx.r, &req, fx.cands, fx.n, cand, ok);
}

static void test_stickiness(void **state)
{
    (void)state;
    /* pricey (1/21 of the first picks) served this conversation: it sticks */
    result(0, 1, "team", 99);
    for (int i = 0; i < 100; i++)
        assert_int_equal(plan("{}", (opts){.key_label = "team", .prefix_hash = 99, .ncands = 3})[0], '1');
    /* another key or another prefix: normal balancing */
    int ones = 0;
    for (int i = 0; i < 200; i++) {
        ones += plan("{}", (opts){.key_label = "other", .prefix_hash = 99, .ncands = 3})[0] == '1';
        ones += plan("{}", (opts){.key_label = "team", .prefix_hash = 98, .ncands = 3})[0] == '1';
    }
    assert_true(ones < 60);
    /* unhealthy: not sticky */
    fx.cands[0].stats.recent_failure = 1;
    assert_int_not_equal(plan("{}", (opts){.key_label = "team", .prefix_hash = 99, .ncands = 3})[0], '1');
    refresh_stats();
    /* a failure there forgets it */
    result(0, 0, "team", 99);
    ones = 0;
    for (int i = 0; i < 200; i++)
        ones += plan("{}", (opts){.key_label = "team", .prefix_hash = 99, .ncands = 3})[0] == '1';
    assert_true(ones < 40);
    /* the table stays bounded: many conversations */
    for (uint64_t h = 1000; h < 1000 + 20000; h++)
        result(1, 1, "team", h);
    assert_int_equal(plan("{}", (opts){.key_label = "team", .prefix_hash = 1000 + 19999, .ncands = 3})[0], '2');
}

static llmux_router *script(const char *src)
{
    static char path[128];
    snprintf(path, sizeof path, "/tmp/llmux-test-policy-%d.lua", (int)getpid());
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(src, f);
    fclose(f);
    char err[512];
    llmux_router *r = llmux_router_new(path, 1 << 20, 100000, err, sizeof err);
    unlink(path);
    if (!r)
        fail_msg("%s", err);
    llmux_router_set_config(r, fx.cfg);
    return r;
}

static void test_result_contract(void **state)
{
    (void)state;
    llmux_router *r = script(
        "function route(req, c)\n"
        "  local p = req.parameters\n"
        "  if p.nf then return nil, 'nothing fits', 404 end\n"
        "  if p.empty then return {}, 'busy' end\n"
        "  if p.badstatus then return nil, 'odd', 200 end\n"
        "  if p.nomsg then return nil end\n"
        "  if p.params then return { 2, params = { temperature = 0.25, stop = { 'a', 'b' },\n"
        "    reasoning = { enabled = true }, n = 3, note = 'q\"' } } end\n"
        "  if p.badparams then return { 1, params = { f = function() end } } end\n"
        "  if p.model then return { 1, params = { model = 'x' } } end\n"
        "  return { 1 }, 'ignored', 404\n"
        "end\n");
    llmux_route_request req = {.model = "a/m"};
    llmux_attempt at[8];
    llmux_route_result res;
    struct {
        const char *body;
        int n, status;
        const char *msg;
        unsigned long fallbacks;
    } cases[] = {
        {"{\"nf\":1}", 0, 404, "nothing fits", 0},
        {"{\"empty\":1}", 0, 503, "busy", 0},
        {"{\"badstatus\":1}", 0, 503, "odd", 0},
        {"{\"nomsg\":1}", 5, 0, "", 1},     /* rejected: the default plan */
        {"{\"badparams\":1}", 5, 0, "", 2}, /* rejected */
        {"{\"model\":1}", 5, 0, "", 3},     /* rejected */
        {"{}", 1, 0, "", 3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        llmux_json doc = {0};
        assert_int_equal(llmux_json_parse(cases[i].body, strlen(cases[i].body), NULL, &doc, NULL, NULL), 0);
        req.body = &doc;
        int n = llmux_router_plan_ex(r, &req, fx.cands, fx.n, at, 8, &res);
        assert_int_equal(n, cases[i].n);
        assert_int_equal(res.status, cases[i].status);
        assert_string_equal(res.message, cases[i].msg);
        assert_null(res.params_json);
        assert_int_equal(llmux_router_fallbacks(r), cases[i].fallbacks);
        llmux_json_release(&doc);
    }
    llmux_json doc = {0};
    const char *body = "{\"params\":1,\"model\":\"a/m\",\"temperature\":1,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    assert_int_equal(llmux_json_parse(body, strlen(body), NULL, &doc, NULL, NULL), 0);
    req.body = &doc;
    assert_int_equal(llmux_router_plan_ex(r, &req, fx.cands, fx.n, at, 8, &res), 1);
    assert_non_null(res.params_json);
    /* apply them: temperature replaced, the others added */
    size_t nl = 0;
    char *nb = llmux_router_rewrite_body(&doc, res.params_json, &nl);
    assert_non_null(nb);
    llmux_json nd = {0};
    assert_int_equal(llmux_json_parse(nb, nl, NULL, &nd, NULL, NULL), 0);
    double t;
    assert_int_equal(llmux_json_double(&nd, llmux_json_get(&nd, 0, "temperature"), &t), 0);
    assert_true(t == 0.25);
    int rs = llmux_json_get(&nd, 0, "reasoning");
    assert_int_equal(llmux_json_bool(&nd, llmux_json_get(&nd, rs, "enabled")), 1);
    assert_int_equal(nd.tok[llmux_json_get(&nd, 0, "stop")].size, 2);
    assert_true(llmux_json_eq(&nd, llmux_json_get(&nd, 0, "note"), "q\\\""));
    assert_true(llmux_json_eq(&nd, llmux_json_get(&nd, 0, "model"), "a/m"));
    assert_int_equal(nd.tok[llmux_json_get(&nd, 0, "messages")].size, 1);
    int temps = 0;
    for (const char *q = nb; (q = strstr(q, "\"temperature\"")); q++)
        temps++;
    assert_int_equal(temps, 1);
    llmux_json_release(&nd);
    free(nb);
    llmux_route_result_free(&res);
    llmux_json_release(&doc);
    llmux_router_free(r);

    /* on_result errors are counted, never raised; a non-function is refused */
    r = script("function route(req, c) return { 1 } end\n"
               "function on_result(req, c, ok) error('hook') end\n");
    llmux_router_on_result(r, &req, fx.cands, fx.n, 0, 1);
    llmux_router_free(r);
    char err[256];
    FILE *f = fopen("/tmp/llmux-test-policy-bad.lua", "w");
    fputs("function route() return {} end\non_result = 5\n", f);
    fclose(f);
    assert_null(llmux_router_new("/tmp/llmux-test-policy-bad.lua", 1 << 20, 100000, err, sizeof err));
    assert_non_null(strstr(err, "on_result"));
    unlink("/tmp/llmux-test-policy-bad.lua");
}

static void test_prefix_hash_and_seed(void **state)
{
    (void)state;
    const char *a = "{\"model\":\"x\",\"messages\":[{\"role\":\"system\",\"content\":\"long\"}]}";
    const char *b = "{\"temperature\":1,\"messages\":[{\"role\":\"system\",\"content\":\"long\"}],\"model\":\"y\"}";
    const char *c = "{\"messages\":[{\"role\":\"system\",\"content\":\"other\"}]}";
    llmux_json da = {0}, db = {0}, dc = {0}, dn = {0};
    assert_int_equal(llmux_json_parse(a, strlen(a), NULL, &da, NULL, NULL), 0);
    assert_int_equal(llmux_json_parse(b, strlen(b), NULL, &db, NULL, NULL), 0);
    assert_int_equal(llmux_json_parse(c, strlen(c), NULL, &dc, NULL, NULL), 0);
    assert_int_equal(llmux_json_parse("{}", 2, NULL, &dn, NULL, NULL), 0);
    assert_true(llmux_router_prefix_hash(&da) != 0);
    assert_true(llmux_router_prefix_hash(&da) == llmux_router_prefix_hash(&db));
    assert_true(llmux_router_prefix_hash(&da) != llmux_router_prefix_hash(&dc));
    assert_true(llmux_router_prefix_hash(&dn) == 0);
    llmux_json_release(&da);
    llmux_json_release(&db);
    llmux_json_release(&dc);
    llmux_json_release(&dn);

    char s1[64 * 4] = "", s2[64 * 4] = "";
    llmux_router_seed(fx.r, 7);
    for (int i = 0; i < 40; i++)
        strncat(s1, plan("{}", A3), 1);
    llmux_router_seed(fx.r, 7);
    for (int i = 0; i < 40; i++)
        strncat(s2, plan("{}", A3), 1);
    assert_string_equal(s1, s2);
}

/* Every example policy loads and plans. */
static void test_examples(void **state)
{
    (void)state;
    static const struct {
        const char *file, *body, *header, *label;
        const char *want; /* expected first attempt ("" = any) */
    } ex[] = {
        {"cheapest-within-latency-SLO.lua", "{}", NULL, NULL, "3"},
        {"ab-split-by-header.lua", "{}", "b", NULL, ""},
        {"pin-team-to-provider.lua", "{}", NULL, "team-research", "1"},
        {"budget-aware-downgrade.lua", "{}", NULL, NULL, ""},
    };
    for (size_t i = 0; i < sizeof ex / sizeof ex[0]; i++) {
        char path[512], err[512];
        snprintf(path, sizeof path, "%s/examples/routing/%s", LLMUX_SOURCE_DIR, ex[i].file);
        llmux_router *r = llmux_router_new(path, 4 << 20, 1000000, err, sizeof err);
        if (!r)
            fail_msg("%s: %s", ex[i].file, err);
        llmux_router_set_config(r, fx.cfg);
        llmux_json doc = {0};
        assert_int_equal(llmux_json_parse(ex[i].body, strlen(ex[i].body), NULL, &doc, NULL, NULL), 0);
        llmux_kv h[] = {{"X-Experiment", ex[i].header ? ex[i].header : "a"}};
        llmux_route_request req = {.body = &doc, .model = "a/m", .key_label = ex[i].label,
                                   .estimated_prompt_tokens = 100, .headers = h, .n_headers = 1};
        llmux_attempt at[8];
        llmux_route_result res;
        int n = llmux_router_plan_ex(r, &req, fx.cands, 3, at, 8, &res);
        if (llmux_router_fallbacks(r) != 0)
            fail_msg("%s: route() failed", ex[i].file);
        assert_true(n >= 1);
        if (ex[i].want[0])
            assert_int_equal(at[0].candidate + 1, ex[i].want[0] - '0');
        llmux_route_result_free(&res);
        llmux_json_release(&doc);
        llmux_router_free(r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_price_weights),
        cmocka_unit_test(test_simple_path_matches_general),
        cmocka_unit_test(test_order_only_ignore_fallbacks),
        cmocka_unit_test(test_sort),
        cmocka_unit_test(test_max_price),
        cmocka_unit_test(test_require_parameters),
        cmocka_unit_test(test_data_policy_and_quantization),
        cmocka_unit_test(test_preferred_thresholds),
        cmocka_unit_test(test_variants),
        cmocka_unit_test(test_capabilities),
        cmocka_unit_test(test_health_window),
        cmocka_unit_test(test_circuit_and_parking),
        cmocka_unit_test(test_stickiness),
        cmocka_unit_test(test_result_contract),
        cmocka_unit_test(test_prefix_hash_and_seed),
        cmocka_unit_test(test_examples),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
