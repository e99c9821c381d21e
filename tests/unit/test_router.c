/* Router: default.lua's plans, the sandbox, the budgets (instructions and
 * memory) with recovery, rejected results, and a route() micro-benchmark. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "json.h"
#include "lua_sandbox.h"
#include "router.h"

#define DEFAULT_SCRIPT LLMUX_SOURCE_DIR "/scripts/default.lua"

static char script_path[256];

static const char *write_script(const char *src)
{
    snprintf(script_path, sizeof script_path, "/tmp/llmux-test-route-%d.lua", (int)getpid());
    FILE *f = fopen(script_path, "w");
    assert_non_null(f);
    fputs(src, f);
    fclose(f);
    return script_path;
}

static llmux_router *new_router(const char *src, size_t mem)
{
    char err[512];
    llmux_router *r = llmux_router_new(write_script(src), mem, 100000, err, sizeof err);
    if (!r)
        fail_msg("router_new: %s", err);
    unlink(script_path);
    return r;
}

/* Model a/m on providers p1 (P-One), p2, p3; fallback model b/f on p1, p2. */
static const char *routing_config =
    "providers = { p1 = { name = \"P-One\" }, p2 = { name = \"P-Two\" }, p3 = { name = \"P-Three\" } }\n"
    "models = {\n"
    "  { id = \"a/m\", endpoints = { { provider = \"p1\" }, { provider = \"p2\" }, { provider = \"p3\" } } },\n"
    "  { id = \"b/f\", endpoints = { { provider = \"p1\" }, { provider = \"p2\" } } },\n"
    "}\n";

typedef struct {
    llmux_config *cfg;
    llmux_candidate cands[8];
    int n;
} fixture;

static void fixture_init(fixture *fx)
{
    char err[512];
    fx->cfg = llmux_config_load_string(routing_config, strlen(routing_config), "routing", err,
                                       sizeof err);
    if (!fx->cfg)
        fail_msg("%s", err);
    memset(fx->cands, 0, sizeof fx->cands);
    fx->n = (int)fx->cfg->n_endpoints;
    for (int i = 0; i < fx->n; i++) {
        fx->cands[i].ep = fx->cfg->endpoint_by_index[i];
        fx->cands[i].stats.last_failure_age_s = -1;
    }
}

/* Plans for a body; returns the 1-based candidate list as "1,2,3". */
static const char *plan_str(llmux_router *r, fixture *fx, const char *body)
{
    static char out[128];
    llmux_json doc = {0};
    llmux_json_limits lim = {.max_tokens = 1024, .max_depth = 32};
    if (llmux_json_parse(body, strlen(body), &lim, &doc, NULL, NULL) != 0)
        fail_msg("bad test JSON: %s", body);
    llmux_route_request req = {.body = &doc, .model = "a/m"};
    llmux_attempt at[16];
    int n = llmux_router_plan(r, &req, fx->cands, fx->n, at, 16);
    llmux_json_release(&doc);
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        char b[16];
        snprintf(b, sizeof b, "%s%d", i ? "," : "", at[i].candidate + 1);
        strcat(out, b);
    }
    return out;
}

static void test_request_and_candidate_fields(void **state)
{
    (void)state;
    fixture fx;
    fixture_init(&fx);
    llmux_router *r = new_router(
        "function route(req, c)\n"
        "  assert(req.model == 'a/m' and req.variant == 'nitro')\n"
        "  assert(req.stream == true and req.has_tools == true and req.has_images == false)\n"
        "  assert(req.has_response_format == false and req.has_reasoning == true)\n"
        "  assert(req.estimated_prompt_tokens == 1234 and req.max_tokens == 99)\n"
        "  assert(req.key_label == 'team-a')\n"
        "  assert(req.headers['x-title'] == 'App' and req.headers['http-referer'] == 'r')\n"
        "  assert(req.headers.authorization == nil and req.headers['x-api-key'] == nil)\n"
        "  assert(req.models[1] == 'b/f' and req.models[2] == 'c/g' and #req.models == 2)\n"
        "  local p = req.provider\n"
        "  assert(p.order[1] == 'p2' and p.allow_fallbacks == false and p.max_price.prompt == 1.5)\n"
        "  assert(p.name == 'a\"b\\n' and p.deep.x.y == true and p.nothing == nil)\n"
        "  assert(req.parameters.temperature and req.parameters.provider and not req.parameters.top_k)\n"
        "  assert(#c == 5)\n"
        "  local x = c[2]\n"
        "  assert(x.index == 2 and x.model == 'a/m' and x.provider == 'p2' and x.provider_name == 'P-Two')\n"
        "  assert(x.upstream_model == 'm' and x.pricing.prompt == 0 and x.context_length == 0)\n"
        "  assert(x.supported_parameters and x.tags and x.data_collection == 'allow' and x.zdr == false)\n"
        "  local s = x.stats\n"
        "  assert(s.ttft_ms == 250 and s.latency_ms == 900 and s.throughput == 40)\n"
        "  assert(s.error_rate == 0.25 and s.last_failure_age_s == 7 and s.inflight == 3)\n"
        "  assert(s.circuit == 'half_open' and s.parked_for_s == 0)\n"
        "  assert(s.recent_failure == true and s.consecutive_failures == 2)\n"
        "  assert(x.input_modalities.text and not x.input_modalities.image and x.id == 'a/m|p2')\n"
        "  assert(req.prefix_hash == 77)\n"
        "  assert(c[1].stats.last_failure_age_s == nil and c[1].stats.circuit == 'closed')\n"
        "  return { { candidate = 2, timeout_ms = 1500 }, 5 }\n"
        "end\n",
        1 << 20);
    llmux_router_set_config(r, fx.cfg);
    const char *body = "{\"model\":\"a/m:nitro\",\"models\":[\"b/f\",\"c/g\"],\"temperature\":0.5,"
                       "\"provider\":{\"order\":[\"p2\"],\"allow_fallbacks\":false,"
                       "\"max_price\":{\"prompt\":1.5},\"name\":\"a\\\"b\\n\",\"nothing\":null,"
                       "\"deep\":{\"x\":{\"y\":true}}}}";
    llmux_json doc = {0};
    llmux_json_limits lim = {.max_tokens = 1024, .max_depth = 32};
    assert_int_equal(llmux_json_parse(body, strlen(body), &lim, &doc, NULL, NULL), 0);
    llmux_kv headers[] = {{"X-Title", "App"}, {"HTTP-Referer", "r"},
                          {"Authorization", "Bearer sk-secret"}, {"X-Api-Key", "k"}};
    llmux_route_request req = {.body = &doc, .model = "a/m", .variant = "nitro", .stream = 1,
                               .has_tools = 1, .has_reasoning = 1,
                               .estimated_prompt_tokens = 1234, .max_tokens = 99,
                               .key_label = "team-a", .headers = headers, .n_headers = 4,
                               .prefix_hash = 77};
    fx.cands[1].stats = (llmux_endpoint_stats){250, 900, 40, 0.25, 7, 3, 2, 0, 1, 2};
    llmux_attempt at[8];
    for (int round = 0; round < 3; round++) { /* cached tables are refreshed */
        int n = llmux_router_plan(r, &req, fx.cands, fx.n, at, 8);
        assert_int_equal(llmux_router_fallbacks(r), 0);
        assert_int_equal(n, 2);
        assert_int_equal(at[0].candidate, 1);
        assert_int_equal(at[0].timeout_ms, 1500);
        assert_int_equal(at[1].candidate, 4);
        assert_int_equal(at[1].timeout_ms, 0);
    }
    /* max_out truncates */
    assert_int_equal(llmux_router_plan(r, &req, fx.cands, fx.n, at, 1), 1);
    llmux_json_release(&doc);
    llmux_router_free(r);

    /* the same endpoint offered twice gets two distinct tables */
    r = new_router("function route(req, c)\n"
                   "  assert(c[1] ~= c[2] and c[1].index == 1 and c[2].index == 2)\n"
                   "  assert(c[1].provider == 'p2' and c[2].provider == 'p2')\n"
                   "  assert(c[1].stats.inflight == 0 and c[2].stats.inflight == 3)\n"
                   "  return { 2 }\n"
                   "end\n",
                   1 << 20);
    llmux_router_set_config(r, fx.cfg);
    llmux_candidate dup[2] = {fx.cands[1], fx.cands[1]};
    dup[0].stats.inflight = 0;
    dup[1].stats.inflight = 3;
    llmux_route_request req2 = {.model = "a/m"};
    for (int round = 0; round < 2; round++) {
        int n = llmux_router_plan(r, &req2, dup, 2, at, 8);
        assert_int_equal(llmux_router_fallbacks(r), 0);
        assert_int_equal(n, 1);
        assert_int_equal(at[0].candidate, 1);
    }
    llmux_router_free(r);
    llmux_config_unref(fx.cfg);
}

static void test_budget_and_memory(void **state)
{
    (void)state;
    fixture fx;
    fixture_init(&fx);
    llmux_router *r = new_router("function route(req, c)\n"
                                 "  if req.parameters.loop then while true do end end\n"
                                 "  if req.parameters.catch then\n"
                                 "    while true do pcall(function() while true do end end) end\n"
                                 "  end\n"
                                 "  if req.parameters.alloc then\n"
                                 "    local t = {}\n"
                                 "    while true do t[#t + 1] = string.rep('x', 4096) .. #t end\n"
                                 "  end\n"
                                 "  return { 3, 1 }\n"
                                 "end\n",
                                 2 << 20);
    llmux_router_set_config(r, fx.cfg);
    assert_string_equal(plan_str(r, &fx, "{}"), "3,1");
    for (int i = 0; i < 3; i++) {
        assert_string_equal(plan_str(r, &fx, "{\"loop\":1}"), "1,2,3,4,5");
        assert_int_equal(llmux_router_fallbacks(r), 3 * i + 1);
        assert_string_equal(plan_str(r, &fx, "{\"catch\":1}"), "1,2,3,4,5");
        assert_int_equal(llmux_router_fallbacks(r), 3 * i + 2);
        assert_string_equal(plan_str(r, &fx, "{\"alloc\":1}"), "1,2,3,4,5");
        assert_int_equal(llmux_router_fallbacks(r), 3 * i + 3);
        assert_string_equal(plan_str(r, &fx, "{}"), "3,1");
    }
    llmux_router_free(r);
    llmux_config_unref(fx.cfg);
}

static void test_rejected_results(void **state)
{
    (void)state;
    fixture fx;
    fixture_init(&fx);
    llmux_router *r = new_router("function route(req, c)\n"
                                 "  local p = req.parameters\n"
                                 "  if p.str then return 'garbage' end\n"
                                 "  if p.range then return { 1, 6 } end\n"
                                 "  if p.zero then return { 0 } end\n"
                                 "  if p.dup then return { 2, 1, 2 } end\n"
                                 "  if p.float then return { 1.5 } end\n"
                                 "  if p.badtab then return { { candidate = 'x' } } end\n"
                                 "  if p.badto then return { { candidate = 1, timeout_ms = -1 } } end\n"
                                 "  if p.err then error('oops') end\n"
                                 "  if p.errobj then error({}) end\n"
                                 "  if p.none then return end\n"
                                 "  return { 2.0 }\n"
                                 "end\n",
                                 1 << 20);
    /* no set_config: every candidate table is built per call */
    const char *bad[] = {"str", "range", "zero", "dup", "float", "badtab", "badto", "err", "errobj",
                         "none"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char body[64];
        snprintf(body, sizeof body, "{\"%s\":true}", bad[i]);
        assert_string_equal(plan_str(r, &fx, body), "1,2,3,4,5");
        assert_int_equal(llmux_router_fallbacks(r), i + 1);
    }
    assert_string_equal(plan_str(r, &fx, "{}"), "2");
    llmux_router_free(r);

    /* no script: always the default plan */
    r = llmux_router_new(NULL, 1 << 20, 1000, NULL, 0);
    assert_non_null(r);
    assert_string_equal(plan_str(r, &fx, "{}"), "1,2,3,4,5");
    llmux_router_free(r);
    llmux_config_unref(fx.cfg);
}

static void test_refused_scripts(void **state)
{
    (void)state;
    char err[512];
    assert_null(llmux_router_new(write_script("function route(\n  return {}\nend\n"), 1 << 20,
                                 100000, err, sizeof err));
    char want[300];
    snprintf(want, sizeof want, "%s:2:", script_path);
    if (!strstr(err, want))
        fail_msg("'%s' lacks '%s'", err, want);
    assert_null(llmux_router_new(write_script("x = 1\n"), 1 << 20, 100000, err, sizeof err));
    assert_non_null(strstr(err, "route"));
    assert_null(llmux_router_new(write_script("error('at load')\n"), 1 << 20, 100000, err, sizeof err));
    assert_non_null(strstr(err, "at load"));
    assert_null(llmux_router_new(write_script("while true do end\n"), 1 << 20, 100000, err, sizeof err));
    assert_non_null(strstr(err, "instruction budget exceeded"));
    assert_null(llmux_router_new(write_script("\x1bLuaT"), 1 << 20, 100000, err, sizeof err));
    assert_non_null(strstr(err, "binary"));
    assert_null(llmux_router_new("/nonexistent.lua", 1 << 20, 100000, err, sizeof err));
    unlink(script_path);
}

typedef struct {
    char data[4096];
    size_t len;
} dump_buf;

static int dump_writer(lua_State *L, const void *p, size_t sz, void *ud)
{
    (void)L;
    dump_buf *b = ud;
    if (b->len + sz > sizeof b->data)
        return 1;
    memcpy(b->data + b->len, p, sz);
    b->len += sz;
    return 0;
}

static void test_sandbox(void **state)
{
    (void)state;
    /* real bytecode, made in an unrestricted state */
    lua_State *full = luaL_newstate();
    assert_int_equal(luaL_loadstring(full, "return 42"), LUA_OK);
    static dump_buf b;
    assert_int_equal(lua_dump(full, dump_writer, &b, 0), 0);
    size_t bclen = b.len;
    const char *bc = b.data;

    llmux_lua_sandbox *sb = llmux_sandbox_new(1 << 20, 100000);
    assert_non_null(sb);
    lua_State *L = sb->L;
    lua_pushlstring(L, bc, bclen);
    lua_setglobal(L, "BYTECODE");
    const char *checks =
        "assert(io == nil and os == nil and package == nil and debug == nil)\n"
        "assert(require == nil and dofile == nil and loadfile == nil and print == nil)\n"
        "assert(string.dump == nil)\n"
        "assert(BYTECODE:sub(1, 4) == '\\27Lua')\n"
        "local f, e = load(BYTECODE)\n"
        "assert(f == nil and e:find('binary'), e)\n"
        "assert(load(BYTECODE, 'x', 'b') == nil)\n"
        "assert(load(function() return nil end) == nil)\n"
        "assert(load('return 1 + 1')() == 2)\n"
        "local env = { y = 5 }\n"
        "assert(load('return y', 'c', 't', env)() == 5)\n"
        "assert(string.format('%d', 3) == '3' and table.concat({1, 2}) == '12')\n"
        "assert(math.max(1, 2) == 2 and utf8.char(72) == 'H')\n"
        "assert(collectgarbage('count') > 0)\n"
        "return true\n";
    assert_int_equal(llmux_sandbox_load(sb, checks, strlen(checks), "=checks"), LUA_OK);
    if (llmux_sandbox_pcall(sb, 0, 1) != LUA_OK)
        fail_msg("%s", lua_tostring(L, -1));
    lua_pop(L, 1);
    assert_int_not_equal(llmux_sandbox_load(sb, bc, bclen, "=bin"), LUA_OK);
    lua_pop(L, 1);

    /* memory cap: raises, then the state keeps working */
    const char *hog = "local t = {} while true do t[#t + 1] = string.rep('y', 1000) .. #t end";
    for (int i = 0; i < 3; i++) {
        assert_int_equal(llmux_sandbox_load(sb, hog, strlen(hog), "=hog"), LUA_OK);
        assert_int_equal(llmux_sandbox_pcall(sb, 0, 0), LUA_ERRMEM);
        lua_pop(L, 1);
        assert_true(sb->mem_used <= sb->mem_limit);
        const char *ok = "return 1 + 1";
        assert_int_equal(llmux_sandbox_load(sb, ok, strlen(ok), "=ok"), LUA_OK);
        assert_int_equal(llmux_sandbox_pcall(sb, 0, 1), LUA_OK);
        assert_int_equal(lua_tointeger(L, -1), 2);
        lua_pop(L, 1);
    }
    llmux_sandbox_free(sb);
    lua_close(full);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* 20 candidates: model x/big on 20 providers, with stats. */
static void test_benchmark(void **state)
{
    (void)state;
    char src[8192];
    size_t off = (size_t)snprintf(src, sizeof src, "providers = {");
    for (int i = 0; i < 20; i++)
        off += (size_t)snprintf(src + off, sizeof src - off, " p%d = { name = \"P%d\" },", i, i);
    off += (size_t)snprintf(src + off, sizeof src - off,
                            "}\nlocal sp = { 'temperature', 'top_p', 'max_tokens', 'stop', "
                            "'tools', 'tool_choice', 'seed', 'response_format' }\n"
                            "models = { { id = \"x/big\", endpoints = {");
    for (int i = 0; i < 20; i++)
        off += (size_t)snprintf(src + off, sizeof src - off,
                                " { provider = \"p%d\", pricing = { prompt = %g, completion = %g },"
                                " context_length = 128000, supported_parameters = sp,"
                                " tags = { 'extended' } },",
                                i, 1e-6 * (i + 1), 2e-6 * (i + 1));
    snprintf(src + off, sizeof src - off, "} } }\n");
    char err[512];
    llmux_config *cfg = llmux_config_load_string(src, strlen(src), "bench", err, sizeof err);
    if (!cfg)
        fail_msg("%s", err);
    llmux_candidate cands[20];
    for (int i = 0; i < 20; i++) {
        cands[i].ep = cfg->endpoint_by_index[i];
        cands[i].stats = (llmux_endpoint_stats){300 + i, 1200, 55, 0.01, -1, i % 3, i == 4, 0, 0, 0};
    }
    /* LLMUX_BENCH_BUDGET: instruction budget (0 = none: the cost of the count hook) */
    const char *env_budget = getenv("LLMUX_BENCH_BUDGET");
    uint32_t budget = env_budget ? (uint32_t)strtoul(env_budget, NULL, 10) : 1000000;
    llmux_router *r = llmux_router_new(DEFAULT_SCRIPT, 8 << 20, budget, err, sizeof err);
    if (!r)
        fail_msg("%s", err);
    llmux_router_set_config(r, cfg);
    llmux_router_seed(r, 1);
    static const struct {
        const char *what, *body;
        int has_tools, ncands;
    } cases[] = {
        {"default balancing",
         "{\"model\":\"x/big\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
         "\"temperature\":0.7,\"stream\":true}", 0, 20},
        {"1 candidate, tiny body",
         "{\"model\":\"x/big\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", 0, 1},
        {"tools + provider.sort=throughput",
         "{\"model\":\"x/big\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
         "\"tools\":[],\"provider\":{\"sort\":\"throughput\"}}", 1, 20},
        {"provider.order+ignore",
         "{\"model\":\"x/big\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
         "\"temperature\":0.7,\"stream\":true,"
         "\"provider\":{\"order\":[\"p7\",\"p3\"],\"ignore\":[\"p9\"]}}", 0, 20},
    };
    /* LLMUX_BENCH_N / LLMUX_BENCH_CASE: fewer plans / one case (callgrind) */
    const char *env_n = getenv("LLMUX_BENCH_N"), *env_case = getenv("LLMUX_BENCH_CASE");
    int N = env_n && atoi(env_n) > 0 ? atoi(env_n) : 20000;
    double *t = malloc((size_t)N * sizeof *t);
    assert_non_null(t);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        if (env_case && (size_t)atoi(env_case) != k)
            continue;
        int nc = cases[k].ncands;
        llmux_json doc = {0};
        llmux_json_limits lim = {.max_tokens = 1024, .max_depth = 32};
        assert_int_equal(llmux_json_parse(cases[k].body, strlen(cases[k].body), &lim, &doc, NULL, NULL), 0);
        llmux_kv headers[] = {{"X-Title", "bench"}};
        llmux_route_request req = {.body = &doc, .model = "x/big", .stream = 1,
                                   .has_tools = cases[k].has_tools,
                                   .estimated_prompt_tokens = 10, .headers = headers, .n_headers = 1,
                                   .prefix_hash = llmux_router_prefix_hash(&doc)};
        llmux_attempt at[32];
        int n = 0;
        for (int i = 0; i < N; i++) {
            double t0 = now_us();
            n = llmux_router_plan(r, &req, cands, nc, at, 32);
            t[i] = now_us() - t0;
        }
        assert_int_equal(llmux_router_fallbacks(r), 0);
        if (nc == 1) {
            assert_int_equal(n, 1);
            assert_int_equal(at[0].candidate, 0);
        } else if (k == 3) {
            assert_int_equal(n, 19); /* 20 - ignored p9; the open circuit p4 goes last */
            assert_int_equal(at[0].candidate, 7);
            assert_int_equal(at[1].candidate, 3);
            assert_int_equal(at[18].candidate, 4);
        } else {
            assert_int_equal(n, 20);
            assert_int_equal(at[19].candidate, 4);
        }
        qsort(t, N, sizeof *t, cmp_double);
        printf("route() default.lua, %d candidates, %s, %d plans: p50 %.2f us, p99 %.2f us, "
               "max %.2f us\n", nc, cases[k].what, N, t[N / 2], t[N * 99 / 100], t[N - 1]);
        assert_true(t[N / 2] < 200.0);
        llmux_json_release(&doc);
    }
    free(t);
    llmux_router_free(r);
    llmux_config_unref(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_and_candidate_fields),
        cmocka_unit_test(test_budget_and_memory),
        cmocka_unit_test(test_rejected_results),
        cmocka_unit_test(test_refused_scripts),
        cmocka_unit_test(test_sandbox),
        cmocka_unit_test(test_benchmark),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
