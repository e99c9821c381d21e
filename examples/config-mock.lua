-- llmux config using only the built-in mock provider: no network, no keys.
-- Run: build/llmux --config examples/config-mock.lua
--   curl -s localhost:8080/api/v1/chat/completions \
--     -d '{"model":"mock/echo","messages":[{"role":"user","content":"hi"}]}'

listen  = "127.0.0.1:8080"
workers = 1
log = { level = "debug", access = "text" }

providers = {
  mock      = { plugin = "mock", name = "Mock" },
  -- a second mock provider, to try provider.order / only / ignore and failover
  mock_slow = { plugin = "mock", name = "Mock Slow" },
}

local params = { "temperature", "top_p", "max_tokens", "stop", "seed", "tools", "tool_choice" }

models = {
  { id = "mock/echo", name = "Mock: Echo", description = "Echoes the last user message",
    context_length = 32768,
    endpoints = {
      { provider = "mock", model = "echo",
        pricing = { prompt = 0.0000005, completion = 0.0000015 },
        max_completion_tokens = 4096, supported_parameters = params },
      { provider = "mock_slow", model = "echo",
        pricing = { prompt = 0.0000004, completion = 0.0000012 },
        max_completion_tokens = 4096, supported_parameters = params,
        options = { delay_ms = "200" } },
    } },
  { id = "mock/lorem", name = "Mock: Lorem", description = "Streams lorem ipsum tokens",
    context_length = 32768,
    endpoints = {
      { provider = "mock", model = "lorem",
        pricing = { prompt = 0.0000005, completion = 0.0000015 },
        max_completion_tokens = 4096, supported_parameters = params,
        options = { delay_ms = "20", tokens = "64" } },
    } },
}
