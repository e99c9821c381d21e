/* The embedded default config: a mock provider and two mock models, so that
 * `llmux` with no config file answers requests out of the box. */
#include "config.h"

const char *llmux_default_config_lua(void)
{
    return
        "-- llmux embedded default configuration\n"
        "listen = \"127.0.0.1:8080\"\n"
        "workers = 0\n"
        "log = { level = \"info\", access = \"text\" }\n"
        "\n"
        "providers = {\n"
        "  mock = { plugin = \"mock\", name = \"Mock\", data_collection = \"deny\", zdr = true },\n"
        "}\n"
        "\n"
        "local params = { \"temperature\", \"top_p\", \"max_tokens\", \"stop\", \"seed\",\n"
        "                 \"frequency_penalty\", \"presence_penalty\", \"tools\", \"tool_choice\",\n"
        "                 \"response_format\", \"stream_options\" }\n"
        "local pricing = { prompt = 0.0000005, completion = 0.0000015 }\n"
        "\n"
        "models = {\n"
        "  { id = \"mock/echo\", name = \"Mock: Echo\",\n"
        "    description = \"Echoes the last user message back.\",\n"
        "    context_length = 32768, created = 1700000000, tokenizer = \"Other\",\n"
        "    endpoints = {\n"
        "      { provider = \"mock\", model = \"echo\", pricing = pricing,\n"
        "        context_length = 32768, max_completion_tokens = 4096,\n"
        "        supported_parameters = params },\n"
        "    } },\n"
        "  { id = \"mock/lorem\", name = \"Mock: Lorem\",\n"
        "    description = \"Streams lorem ipsum tokens with a delay.\",\n"
        "    context_length = 32768, created = 1700000000, tokenizer = \"Other\",\n"
        "    endpoints = {\n"
        "      { provider = \"mock\", model = \"lorem\", pricing = pricing,\n"
        "        context_length = 32768, max_completion_tokens = 4096,\n"
        "        supported_parameters = params,\n"
        "        options = { delay_ms = \"20\", tokens = \"64\" } },\n"
        "    } },\n"
        "}\n";
}
