/* Config loader: the embedded default, a file using every field, and the
 * error messages (file:line, field paths, unknown names). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static char tmp_path[256];

static const char *write_tmp(const char *src)
{
    snprintf(tmp_path, sizeof tmp_path, "/tmp/llmux-test-config-%d.lua", (int)getpid());
    FILE *f = fopen(tmp_path, "w");
    assert_non_null(f);
    fputs(src, f);
    fclose(f);
    return tmp_path;
}

static const char *kv(const llmux_kv *v, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v[i].key, key))
            return v[i].value;
    return NULL;
}

static void test_default_config(void **state)
{
    (void)state;
    char err[512];
    llmux_config *c = llmux_config_load(NULL, err, sizeof err);
    assert_non_null(c);
    assert_int_equal(atomic_load(&c->refs), 1);
    assert_string_equal(c->listen_host, "127.0.0.1");
    assert_int_equal(c->listen_port, 8080);
    assert_int_equal(c->workers, 0);
    assert_null(c->source_path);
    assert_string_equal(c->plugin_dir, LLMUX_DEFAULT_PLUGIN_DIR);
    assert_string_equal(c->routing_script, LLMUX_SOURCE_DIR "/scripts/default.lua");
    char cache[64];
    snprintf(cache, sizeof cache, "/tmp/llmux-plugins-%u", (unsigned)getuid());
    assert_string_equal(c->plugin_cache_dir, cache);
    assert_string_equal(c->log_level, "info");
    assert_string_equal(c->access_log, "text");
    assert_null(c->admin_key);
    assert_int_equal(c->limits.max_header_bytes, 65536);
    assert_int_equal(c->limits.max_body_bytes, 10485760);
    assert_int_equal(c->limits.max_json_tokens, 262144);
    assert_int_equal(c->limits.max_json_depth, 64);
    assert_int_equal(c->limits.lua_memory_bytes, 8388608);
    assert_int_equal(c->limits.lua_instructions, 1000000);
    assert_int_equal(c->limits.max_connections, 20000);
    assert_int_equal(c->timeouts.connect_ms, 5000);
    assert_int_equal(c->timeouts.total_ms, 0);
    assert_int_equal(c->timeouts.keepalive_comment_ms, 2000);

    assert_int_equal(c->n_providers, 1);
    assert_string_equal(c->providers[0].id, "mock");
    assert_string_equal(c->providers[0].plugin, "mock");
    assert_string_equal(c->providers[0].name, "Mock");
    assert_int_equal(c->providers[0].view.struct_size, sizeof(llmux_provider_config));
    assert_string_equal(c->providers[0].view.name, "mock");

    assert_int_equal(c->n_models, 2);
    assert_int_equal(c->n_endpoints, 2);
    const llmux_model_cfg *echo = llmux_config_find_model(c, "mock/echoXYZ", 9);
    assert_non_null(echo);
    assert_string_equal(echo->id, "mock/echo");
    assert_null(llmux_config_find_model(c, "mock/ech", 8));
    assert_null(llmux_config_find_model(c, "mock/echo2", 10));
    const llmux_model_cfg *lorem = llmux_config_find_model(c, "mock/lorem", 10);
    assert_non_null(lorem);
    const llmux_endpoint_cfg *e = &lorem->endpoints[0];
    assert_ptr_equal(e->model, lorem);
    assert_ptr_equal(e->provider, llmux_config_find_provider(c, "mock"));
    assert_int_equal(e->index, 1);
    assert_ptr_equal(c->endpoint_by_index[1], e);
    assert_string_equal(e->upstream_model, "lorem");
    assert_string_equal(kv(e->options, e->n_options, "delay_ms"), "20");
    assert_string_equal(kv(e->options, e->n_options, "tokens"), "64");
    assert_true(e->pricing.prompt > 0 && e->pricing.completion > e->pricing.prompt);
    assert_true(e->pricing.reasoning < 0);
    assert_int_equal(e->context_length, 32768);
    assert_int_equal(e->max_completion_tokens, 4096);
    assert_true(e->n_supported_parameters >= 4);
    assert_int_equal(e->view.struct_size, sizeof(llmux_endpoint));
    assert_string_equal(e->view.model, "mock/lorem");
    assert_string_equal(e->view.upstream_model, "lorem");
    assert_string_equal(e->view.provider_name, "Mock");
    assert_int_equal(e->view.context_length, 32768);
    assert_int_equal(e->view.n_options, 2);
    assert_string_equal(echo->endpoints[0].upstream_model, "echo");
    assert_int_equal(echo->n_input_modalities, 1);
    assert_string_equal(echo->input_modalities[0], "text");

    llmux_config *c2 = llmux_config_load(NULL, err, sizeof err);
    assert_non_null(c2);
    assert_true(c2->generation > c->generation);
    llmux_config_ref(c);
    llmux_config_unref(c);
    llmux_config_unref(c);
    llmux_config_unref(c2);
}

static const char *full_config =
    "listen  = \"[::1]:9090\"\n"
    "workers = 3\n"
    "plugin_dir = \"/opt/plugins\"\n"
    "plugin_cache_dir = \"/var/cache/llmux\"\n"
    "routing_script = \"scripts/custom.lua\"\n"
    "admin_key = env(\"LLMUX_TEST_ADMIN\")\n"
    "log = { level = \"debug\", access = \"json\" }\n"
    "limits = { max_header_bytes = 32768, max_body_bytes = 1000000, max_json_tokens = 5000,\n"
    "  max_json_depth = 20, idle_timeout_ms = 1000, request_timeout_ms = 2000,\n"
    "  lua_memory_bytes = 4194304, lua_instructions = 50000, stream_buffer_bytes = 4096,\n"
    "  max_sse_event_bytes = 8192, max_upstream_body_bytes = 16384, max_connections = 77 }\n"
    "timeouts = { connect_ms = 1, first_byte_ms = 2, between_chunks_ms = 3, total_ms = 4,\n"
    "  shutdown_ms = 5, keepalive_comment_ms = 6 }\n"
    "local function helper(x) return x end\n"
    "providers = {\n"
    "  openai = { plugin = \"openai\", name = \"OpenAI\", base_url = \"https://api.example/v1//\",\n"
    "             api_key = env(\"LLMUX_TEST_KEY\"), data_collection = \"deny\", zdr = true,\n"
    "             options = { organization = \"org-1\", retries = 3, beta = true } },\n"
    "  mock = { },\n"
    "}\n"
    "models = {\n"
    "  { id = \"openai/gpt-x\", name = \"GPT X\", description = \"d\", created = 1700000001,\n"
    "    context_length = 128000, input_modalities = { \"text\", \"image\" },\n"
    "    output_modalities = { \"text\" }, tokenizer = \"GPT\",\n"
    "    endpoints = {\n"
    "      { provider = \"openai\", model = \"gpt-x-2024\",\n"
    "        pricing = { prompt = 0.000001, completion = 0.000002, request = 0.01, image = 0.003,\n"
    "                    cache_read = 0.0000001, cache_write = 0.0000002, reasoning = 0.000004 },\n"
    "        context_length = 64000, max_completion_tokens = 16000,\n"
    "        supported_parameters = { \"temperature\", \"tools\" },\n"
    "        quantization = \"fp8\", tags = { \"extended\", \"free\" },\n"
    "        options = { region = \"eu\" } },\n"
    "      { provider = \"mock\" },\n"
    "    } },\n"
    "  { id = \"mock/other\", endpoints = { { provider = \"mock\", context_length = 1000 } } },\n"
    "}\n";

static void test_full_config(void **state)
{
    (void)state;
    setenv("LLMUX_TEST_KEY", "sk-secret", 1);
    unsetenv("LLMUX_TEST_ADMIN");
    char err[512];
    llmux_config *c = llmux_config_load(write_tmp(full_config), err, sizeof err);
    if (!c)
        fail_msg("%s", err);
    assert_string_equal(c->source_path, tmp_path);
    assert_string_equal(c->listen_host, "::1");
    assert_int_equal(c->listen_port, 9090);
    assert_int_equal(c->workers, 3);
    assert_string_equal(c->plugin_dir, "/opt/plugins");
    assert_string_equal(c->plugin_cache_dir, "/var/cache/llmux");
    assert_string_equal(c->routing_script, "scripts/custom.lua");
    assert_null(c->admin_key); /* env() of an unset variable is nil */
    assert_string_equal(c->log_level, "debug");
    assert_string_equal(c->access_log, "json");
    assert_int_equal(c->limits.max_header_bytes, 32768);
    assert_int_equal(c->limits.max_body_bytes, 1000000);
    assert_int_equal(c->limits.max_json_tokens, 5000);
    assert_int_equal(c->limits.max_json_depth, 20);
    assert_int_equal(c->limits.idle_timeout_ms, 1000);
    assert_int_equal(c->limits.request_timeout_ms, 2000);
    assert_int_equal(c->limits.lua_memory_bytes, 4194304);
    assert_int_equal(c->limits.lua_instructions, 50000);
    assert_int_equal(c->limits.stream_buffer_bytes, 4096);
    assert_int_equal(c->limits.max_sse_event_bytes, 8192);
    assert_int_equal(c->limits.max_upstream_body_bytes, 16384);
    assert_int_equal(c->limits.max_connections, 77);
    assert_int_equal(c->timeouts.connect_ms, 1);
    assert_int_equal(c->timeouts.first_byte_ms, 2);
    assert_int_equal(c->timeouts.between_chunks_ms, 3);
    assert_int_equal(c->timeouts.total_ms, 4);
    assert_int_equal(c->timeouts.shutdown_ms, 5);
    assert_int_equal(c->timeouts.keepalive_comment_ms, 6);

    const llmux_provider_cfg *p = llmux_config_find_provider(c, "openai");
    assert_non_null(p);
    assert_string_equal(p->plugin, "openai");
    assert_string_equal(p->name, "OpenAI");
    assert_string_equal(p->base_url, "https://api.example/v1");
    assert_string_equal(p->api_key, "sk-secret");
    assert_true(p->data_collection_deny);
    assert_true(p->zdr);
    assert_int_equal(p->n_options, 3);
    assert_string_equal(kv(p->options, p->n_options, "organization"), "org-1");
    assert_string_equal(kv(p->options, p->n_options, "retries"), "3");
    assert_string_equal(kv(p->options, p->n_options, "beta"), "true");
    assert_string_equal(p->view.base_url, "https://api.example/v1");
    assert_string_equal(p->view.api_key, "sk-secret");
    const llmux_provider_cfg *mock = llmux_config_find_provider(c, "mock");
    assert_string_equal(mock->plugin, "mock");
    assert_string_equal(mock->name, "mock");
    assert_null(mock->base_url);
    assert_false(mock->data_collection_deny);
    assert_null(llmux_config_find_provider(c, "nope"));

    assert_int_equal(c->n_models, 2);
    assert_int_equal(c->n_endpoints, 3);
    const llmux_model_cfg *m = &c->models[0];
    assert_string_equal(m->id, "openai/gpt-x");
    assert_string_equal(m->name, "GPT X");
    assert_string_equal(m->description, "d");
    assert_int_equal(m->created, 1700000001);
    assert_int_equal(m->context_length, 128000);
    assert_int_equal(m->n_input_modalities, 2);
    assert_string_equal(m->input_modalities[1], "image");
    assert_string_equal(m->tokenizer, "GPT");
    assert_int_equal(m->n_endpoints, 2);
    const llmux_endpoint_cfg *e = &m->endpoints[0];
    assert_ptr_equal(e->provider, p);
    assert_string_equal(e->upstream_model, "gpt-x-2024");
    assert_true(e->pricing.prompt == 0.000001);
    assert_true(e->pricing.completion == 0.000002);
    assert_true(e->pricing.request == 0.01);
    assert_true(e->pricing.image == 0.003);
    assert_true(e->pricing.cache_read == 0.0000001);
    assert_true(e->pricing.cache_write == 0.0000002);
    assert_true(e->pricing.reasoning == 0.000004);
    assert_int_equal(e->context_length, 64000);
    assert_int_equal(e->max_completion_tokens, 16000);
    assert_int_equal(e->n_supported_parameters, 2);
    assert_string_equal(e->supported_parameters[1], "tools");
    assert_string_equal(e->quantization, "fp8");
    assert_int_equal(e->n_tags, 2);
    assert_string_equal(e->tags[1], "free");
    assert_string_equal(kv(e->options, e->n_options, "region"), "eu");
    assert_string_equal(e->view.provider_name, "OpenAI");
    assert_int_equal(e->view.context_length, 64000);
    /* second endpoint: defaults from the model */
    const llmux_endpoint_cfg *e2 = &m->endpoints[1];
    assert_string_equal(e2->upstream_model, "gpt-x");
    assert_int_equal(e2->context_length, 128000);
    assert_true(e2->pricing.reasoning < 0);
    assert_int_equal(e2->index, 1);
    /* model without context_length takes its endpoints' */
    assert_int_equal(c->models[1].context_length, 1000);
    assert_string_equal(c->models[1].name, "mock/other");
    assert_ptr_equal(c->endpoint_by_index[2], &c->models[1].endpoints[0]);
    llmux_config_unref(c);
    unlink(tmp_path);
}

/* Loads src and expects failure with an error containing `want`. */
static void expect_error(const char *src, const char *want)
{
    char err[512];
    llmux_config *c = llmux_config_load(write_tmp(src), err, sizeof err);
    if (c) {
        llmux_config_unref(c);
        fail_msg("loaded, expected error containing '%s'", want);
    }
    char full[600];
    snprintf(full, sizeof full, want, tmp_path);
    if (!strstr(err, full))
        fail_msg("error '%s' does not contain '%s'", err, full);
    unlink(tmp_path);
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("listen = \"127.0.0.1:80\"\nx = = 1\n", "%s:2:");
    expect_error("listen = \"127.0.0.1:80\"\n\nerror(\"boom\")\n", "%s:3: boom");
    expect_error("providers = { p = {} }\n"
                 "models = {\n"
                 "  { id = \"a/b\", endpoints = { { provider = \"p\" } } },\n"
                 "  { id = \"a/c\", endpoints = { { provider = \"p\" },\n"
                 "      { provider = \"p\", pricing = { prompt = \"1\" } } } } }\n",
                 "%s:5: models[2].endpoints[2].pricing.prompt: expected number, got string");
    expect_error("providers = { p = {} }\nmodels = { { id = \"a/b\", endpoints = { { provider = "
                 "\"q\" } } } }\n",
                 "%s:2: models[1].endpoints[1].provider: unknown provider \"q\"");
    expect_error("listen = \"127.0.0.1:80\"\nmodel = {}\n", "%s:2: model: unknown top-level field");
    expect_error("providers = { p = {} }\nmodels = { { id = \"nope\", endpoints = { { provider = "
                 "\"p\" } } } }\n",
                 "models[1].id: \"nope\" is not of the form author/slug");
    expect_error("providers = { p = {} }\nmodels = { { id = \"a/b\", endpoints = { { provider = "
                 "\"p\" } } }, { id = \"a/b\", endpoints = { { provider = \"p\" } } } }\n",
                 "models[2].id: duplicate model id \"a/b\"");
    expect_error("providers = { p = {} }\nmodels = { { id = \"a/b\", endpoints = { { provider = "
                 "\"p\", pricing = { completion = -1 } } } } }\n",
                 "models[1].endpoints[1].pricing.completion: must be >= 0");
    expect_error("listen = \"127.0.0.1:70000\"\n", "%s:1: listen: port must be 1..65535");
    expect_error("listen = \"localhost\"\n", "listen: expected \"host:port\"");
    expect_error("listen = 8080\n", "%s:1: listen: expected string, got number");
    expect_error("limits = { max_body_bytes = 1.5 }\n", "limits.max_body_bytes: expected an integer");
    expect_error("limits = { max_bodybytes = 1 }\n", "limits: unknown field 'max_bodybytes'");
    expect_error("log = { level = \"loud\" }\n", "log.level: must be");
    expect_error("providers = { p = { zdr = \"yes\" } }\n", "providers.p.zdr: expected boolean, got string");
    expect_error("providers = { p = {} }\nmodels = { { id = \"a/b\" } }\n", "models[1].endpoints: required");
    expect_error("providers = { p = {} }\nmodels = { { id = \"a/b\", endpoints = { {} } } }\n",
                 "models[1].endpoints[1].provider: required");
    /* sandbox: no io/os/require, binary chunks refused */
    expect_error("local f = io.open(\"/etc/passwd\")\n", "%s:1:");
    expect_error("os.execute(\"true\")\n", "%s:1:");
    expect_error("require(\"os\")\n", "%s:1:");
    expect_error("dofile(\"/etc/passwd\")\n", "%s:1:");
    expect_error("\x1bLua", "attempt to load a binary chunk");
    expect_error("assert(load(\"\\27Lua\\84\\0\"))\n", "%s:1:");

    char err[256];
    assert_null(llmux_config_load("/nonexistent/llmux.lua", err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/llmux.lua: cannot open"));
}

static void test_env_and_listen(void **state)
{
    (void)state;
    setenv("LLMUX_TEST_LISTEN", "0.0.0.0:8181", 1);
    char err[512];
    llmux_config *c = llmux_config_load(write_tmp("listen = env(\"LLMUX_TEST_LISTEN\")\n"
                                                  "admin_key = env(\"LLMUX_TEST_LISTEN\")\n"
                                                  "assert(env(\"LLMUX_TEST_UNSET_VAR\") == nil)\n"),
                                        err, sizeof err);
    if (!c)
        fail_msg("%s", err);
    assert_string_equal(c->listen_host, "0.0.0.0");
    assert_int_equal(c->listen_port, 8181);
    assert_string_equal(c->admin_key, "0.0.0.0:8181");
    assert_int_equal(c->n_models, 0);
    llmux_config_unref(c);
    unlink(tmp_path);
}

static void test_examples_load(void **state)
{
    (void)state;
    const char *files[] = {LLMUX_SOURCE_DIR "/examples/config-mock.lua",
                           LLMUX_SOURCE_DIR "/examples/config-openai.lua"};
    for (size_t i = 0; i < 2; i++) {
        char err[512];
        llmux_config *c = llmux_config_load(files[i], err, sizeof err);
        if (!c)
            fail_msg("%s", err);
        assert_true(c->n_models >= 2);
        llmux_config_unref(c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_config),
        cmocka_unit_test(test_full_config),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_env_and_listen),
        cmocka_unit_test(test_examples_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
