-- llmux config for OpenAI-compatible upstreams (OpenAI, or any server that
-- speaks /v1/chat/completions: vLLM, llama.cpp server, Ollama, Together...).
-- Secrets come from the environment via env(): never write keys in this file.
--   export OPENAI_API_KEY=sk-...   LLMUX_ADMIN_KEY=...
--   build/llmux --config examples/config-openai.lua

listen  = "0.0.0.0:8080"        -- "[::]:8080" for IPv6
workers = 0                     -- one per core
admin_key = env("LLMUX_ADMIN_KEY")  -- nil: the admin API is disabled
log = { level = "info", access = "json" }

-- Optional: only what you want to change (see docs/config.md for all).
limits   = { max_body_bytes = 20 * 1024 * 1024 }
timeouts = { connect_ms = 3000, first_byte_ms = 120000 }

providers = {
  openai = {
    plugin = "openai",                        -- build/plugins/openai.so
    name = "OpenAI",
    base_url = "https://api.openai.com/v1",   -- a trailing "/" is removed
    api_key = env("OPENAI_API_KEY"),
    data_collection = "deny", zdr = false,
    -- options = { organization = "org-..." },
  },
  -- A self-hosted OpenAI-compatible server, same plugin:
  local_vllm = {
    plugin = "openai",
    name = "Local vLLM",
    base_url = "http://127.0.0.1:8000/v1",
    api_key = env("VLLM_API_KEY"),            -- nil if unset: no Authorization header
    data_collection = "deny", zdr = true,
  },
}

local chat_params = { "temperature", "top_p", "max_tokens", "stop", "seed",
                      "frequency_penalty", "presence_penalty", "logit_bias",
                      "tools", "tool_choice", "response_format", "stream_options" }

models = {
  { id = "openai/gpt-4o-mini", name = "OpenAI: GPT-4o-mini",
    context_length = 128000, created = 1721260800,
    input_modalities = { "text", "image" }, output_modalities = { "text" },
    tokenizer = "GPT",
    endpoints = {
      { provider = "openai", model = "gpt-4o-mini",
        -- USD per token (OpenRouter's unit): $0.15 / $0.60 per million
        pricing = { prompt = 0.00000015, completion = 0.0000006, cache_read = 0.000000075 },
        max_completion_tokens = 16384, supported_parameters = chat_params },
    } },
  { id = "meta-llama/llama-3.1-8b-instruct", name = "Meta: Llama 3.1 8B Instruct",
    context_length = 131072,
    endpoints = {
      -- first: our own GPU box (cheap); the router fails over in this order
      { provider = "local_vllm", model = "meta-llama/Meta-Llama-3.1-8B-Instruct",
        pricing = { prompt = 0, completion = 0 }, quantization = "bf16",
        context_length = 32768, max_completion_tokens = 8192,
        supported_parameters = { "temperature", "top_p", "max_tokens", "stop", "seed" } },
    } },
}
