// Chat completions through the anthropic plugin to the Anthropic mock:
// translation both ways, thinking -> reasoning, tool_use -> tool_calls,
// API versions, overloaded/rate-limit errors and an in-stream error event.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startAnthropicMock, inputTokensFor, NEW_VERSION } from '../mocks/anthropic.mjs';
import { startOpenAIMock } from '../mocks/openai.mjs';
import {
  startLlmux, shutdown, skipNoBinary, buildConfig, anthropicProvider, openaiProvider, model, endpoint, postJSON, postSSE,
  assembleToolCalls, expectErrorShape,
} from './harness.mjs';

const TOOLS = [
  { type: 'function', function: { name: 'get_weather', description: 'weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } },
  { type: 'function', function: { name: 'get_time', description: 'time', parameters: { type: 'object', properties: { tz: { type: 'string' } } } } },
];

describe('chat completions via the anthropic plugin', { skip: skipNoBinary, timeout: 60000 }, () => {
  let ant, antCached, good, gw, url;
  before(async () => {
    ant = await startAnthropicMock();
    antCached = await startAnthropicMock({ cachedTokens: 2 });
    good = await startOpenAIMock({ reply: 'fallback answer' });
    gw = await startLlmux({
      config: buildConfig({
        providers: {
          ant: anthropicProvider(ant, { name: 'Anthropic Mock' }),
          antnew: anthropicProvider(ant, { name: 'Anthropic New', options: { version: NEW_VERSION } }),
          antc: anthropicProvider(antCached, { name: 'Anthropic Cached' }),
          good: openaiProvider(good, { name: 'Good Upstream' }),
        },
        models: [
          model('anthropic/claude', [endpoint('ant', 'claude-test')]),
          model('anthropic/claude-new', [endpoint('antnew', 'claude-new')]),
          model('anthropic/cached', [endpoint('antc', 'claude-cached')]),
          model('anthropic/overloaded', [endpoint('ant', 'o@fail-529'), endpoint('good', 'gpt-fallback')]),
          model('anthropic/limited', [endpoint('ant', 'l@fail-429')]),
          model('anthropic/overloaded1', [endpoint('ant', 'o1@fail-529')]),
          model('anthropic/midstream', [endpoint('ant', 'm@error-midstream')]),
        ],
      }),
    });
    url = `${gw.url}/api/v1/chat/completions`;
  });
  after(() => shutdown(gw, ant, antCached, good));

  const messages = [
    { role: 'system', content: 'be brief' },
    { role: 'user', content: 'hello anthropic world' },
  ];

  it('translates the request to the Messages API', async () => {
    const r = await postJSON(url, { model: 'anthropic/claude', messages, temperature: 0.2 });
    assert.equal(r.status, 200, r.text);
    const rec = ant.requests.at(-1);
    assert.match(rec.path, /\/v1\/messages$/);
    assert.equal(rec.headers['x-api-key'], 'sk-ant-test');
    assert.equal(rec.headers['anthropic-version'], '2023-06-01');
    assert.equal(rec.body.model, 'claude-test');
    assert.equal(typeof rec.body.max_tokens, 'number', 'max_tokens always sent (required upstream)');
    const sys = typeof rec.body.system === 'string' ? rec.body.system : rec.body.system.map((b) => b.text).join('');
    assert.equal(sys, 'be brief', 'system message moved to the system field');
    assert.ok(rec.body.messages.every((m) => m.role !== 'system'));
    assert.equal(rec.body.temperature, 0.2);
  });

  it('non-stream answer: content, finish reasons, usage', async () => {
    const r = await postJSON(url, { model: 'anthropic/claude', messages });
    assert.equal(r.status, 200, r.text);
    const j = r.json;
    assert.match(j.id, /^gen-/);
    assert.equal(j.provider, 'Anthropic Mock');
    assert.equal(j.choices[0].message.role, 'assistant');
    assert.equal(j.choices[0].message.content, 'hello anthropic world');
    assert.equal(j.choices[0].finish_reason, 'stop');
    assert.equal(j.choices[0].native_finish_reason, 'end_turn');
    const p = inputTokensFor({ system: 'be brief', messages: [messages[1]] });
    assert.equal(j.usage.prompt_tokens, p);
    assert.equal(j.usage.completion_tokens, 3);
    assert.equal(j.usage.total_tokens, p + 3);
    assert.equal(typeof j.usage.cost, 'number');
  });

  it('stream answer: content, finish reasons, usage from message_start + message_delta', async () => {
    const s = await postSSE(url, { model: 'anthropic/claude', messages, stream: true });
    assert.equal(s.status, 200);
    assert.ok(s.done);
    assert.equal(s.text, 'hello anthropic world');
    const fin = s.chunks.flatMap((c) => c.choices || []).find((ch) => ch.finish_reason);
    assert.equal(fin.finish_reason, 'stop');
    assert.equal(fin.native_finish_reason, 'end_turn');
    const last = s.chunks.at(-1);
    assert.deepEqual(last.choices, []);
    assert.equal(last.usage.prompt_tokens, inputTokensFor({ system: 'be brief', messages: [messages[1]] }));
    assert.equal(last.usage.completion_tokens, 3, 'final output_tokens from message_delta');
    assert.equal(ant.requests.at(-1).body.stream, true);
  });

  it('max_tokens cut maps max_tokens -> length', async () => {
    const r = await postJSON(url, { model: 'anthropic/claude', messages, max_tokens: 1 });
    assert.equal(r.status, 200, r.text);
    assert.equal(ant.requests.at(-1).body.max_tokens, 1);
    assert.equal(r.json.choices[0].finish_reason, 'length');
    assert.equal(r.json.choices[0].native_finish_reason, 'max_tokens');
  });

  it('reasoning turns on thinking; thinking comes back as reasoning', async () => {
    const body = { model: 'anthropic/claude', messages, reasoning: { max_tokens: 2048 }, max_tokens: 4096 };
    const r = await postJSON(url, body);
    assert.equal(r.status, 200, r.text);
    const sent = ant.requests.at(-1).body;
    assert.equal(sent.thinking && sent.thinking.type, 'enabled');
    assert.equal(sent.thinking.budget_tokens, 2048);
    const msg = r.json.choices[0].message;
    assert.equal(msg.content, 'hello anthropic world');
    assert.equal(msg.reasoning, 'Thinking about: hello anthropic world');
    assert.ok(Array.isArray(msg.reasoning_details) && msg.reasoning_details.length > 0, 'reasoning_details kept (signature)');
    assert.match(JSON.stringify(msg.reasoning_details), /sig_/);

    const s = await postSSE(url, { ...body, stream: true });
    assert.ok(s.done);
    assert.equal(s.reasoning, 'Thinking about: hello anthropic world');
    assert.equal(s.text, 'hello anthropic world');
    assert.match(JSON.stringify(s.chunks), /sig_/, 'the signature reaches the client');
  });

  it('tool_use blocks become tool_calls (non-stream and stream)', async () => {
    const body = { model: 'anthropic/claude', messages: [{ role: 'user', content: 'use the tools' }], tools: TOOLS };
    const r = await postJSON(url, body);
    assert.equal(r.status, 200, r.text);
    const sent = ant.requests.at(-1).body;
    assert.deepEqual(sent.tools.map((t) => t.name), ['get_weather', 'get_time']);
    assert.deepEqual(sent.tools[0].input_schema, TOOLS[0].function.parameters);
    const c = r.json.choices[0];
    assert.equal(c.finish_reason, 'tool_calls');
    assert.equal(c.native_finish_reason, 'tool_use');
    assert.equal(c.message.tool_calls.length, 2);
    assert.match(c.message.tool_calls[0].id, /^toolu_/);
    assert.equal(c.message.tool_calls[0].type, 'function');
    assert.deepEqual(JSON.parse(c.message.tool_calls[0].function.arguments), { city: 'city-value' });
    assert.deepEqual(JSON.parse(c.message.tool_calls[1].function.arguments), { tz: 'tz-value' });

    const s = await postSSE(url, { ...body, stream: true });
    assert.ok(s.done);
    const calls = assembleToolCalls(s.chunks);
    assert.equal(calls.length, 2);
    assert.deepEqual(calls.map((x) => x.name), ['get_weather', 'get_time']);
    assert.deepEqual(JSON.parse(calls[0].arguments), { city: 'city-value' });
    assert.deepEqual(JSON.parse(calls[1].arguments), { tz: 'tz-value' });
  });

  it('tool results go back as tool_result blocks', async () => {
    const convo = [
      { role: 'user', content: 'weather?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'toolu_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
      { role: 'tool', tool_call_id: 'toolu_1', content: 'sunny' },
    ];
    const r = await postJSON(url, { model: 'anthropic/claude', messages: convo, tools: TOOLS });
    assert.equal(r.status, 200, r.text);
    const sent = ant.requests.at(-1).body.messages;
    const asst = sent.find((m) => m.role === 'assistant');
    const use = asst.content.find((b) => b.type === 'tool_use');
    assert.equal(use.id, 'toolu_1');
    assert.deepEqual(use.input, { city: 'Paris' });
    const res = sent.at(-1);
    assert.equal(res.role, 'user');
    const tr = res.content.find((b) => b.type === 'tool_result');
    assert.equal(tr.tool_use_id, 'toolu_1');
  });

  it(`API version ${NEW_VERSION}: Bearer key, sampling fields dropped`, async () => {
    const r = await postJSON(url, { model: 'anthropic/claude-new', messages, temperature: 0.7, top_p: 0.9 });
    assert.equal(r.status, 200, r.text);
    const rec = ant.requests.at(-1);
    assert.equal(rec.headers['anthropic-version'], NEW_VERSION);
    assert.equal(rec.headers.authorization, 'Bearer sk-ant-test');
    assert.ok(!('temperature' in rec.body) && !('top_p' in rec.body), 'sampling fields not sent');
  });

  it('cache reads count in prompt_tokens and cached_tokens', async () => {
    const r = await postJSON(url, { model: 'anthropic/cached', messages });
    assert.equal(r.status, 200, r.text);
    const total = inputTokensFor({ system: 'be brief', messages: [messages[1]] });
    assert.equal(r.json.usage.prompt_tokens, total, 'input + cache read');
    assert.equal(r.json.usage.prompt_tokens_details.cached_tokens, 2);
  });

  it('529 overloaded_error fails over to the next endpoint', async () => {
    const r = await postJSON(url, { model: 'anthropic/overloaded', messages, provider: { order: ['ant', 'good'] } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.provider, 'Good Upstream');
    assert.equal(r.json.choices[0].message.content, 'fallback answer');
  });

  it('529 overloaded_error from the only endpoint is a 502 with the raw error', async () => {
    const r = await postJSON(url, { model: 'anthropic/overloaded1', messages });
    const e = expectErrorShape(assert, r, 502);
    assert.equal(e.metadata.provider_name, 'Anthropic Mock');
    assert.match(JSON.stringify(e.metadata.raw), /overloaded_error/);
  });

  it('429 rate_limit_error is passed on with Retry-After', async () => {
    const r = await postJSON(url, { model: 'anthropic/limited', messages });
    expectErrorShape(assert, r, 429);
    assert.equal(r.headers.get('retry-after'), '1');
  });

  it('an `event: error` mid-stream ends the stream with an error chunk', async () => {
    const s = await postSSE(url, { model: 'anthropic/midstream', messages: [{ role: 'user', content: 'a b c d e f' }], stream: true });
    assert.equal(s.status, 200);
    assert.ok(s.text.startsWith('a b'), s.text);
    const e = s.chunks.find((c) => c.error);
    assert.ok(e, 'error chunk');
    assert.match(e.error.message, /overloaded/i);
    const fin = s.chunks.flatMap((c) => c.choices || []).filter((ch) => ch.finish_reason);
    assert.equal(fin.at(-1).finish_reason, 'error');
    assert.ok(s.done);
  });
});
