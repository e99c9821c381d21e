// Chat completions through the openai plugin to the OpenAI mock: the
// response and stream shapes of the wire contract, usage and cost, tool calls.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startOpenAIMock, promptTokensFor, countTokens } from '../mocks/openai.mjs';
import {
  startLlmux, shutdown, skipNoBinary, buildConfig, openaiProvider, model, endpoint, postJSON, postSSE, assembleToolCalls, close2,
  WEATHER_TOOL, TIME_TOOL, chatTool,
} from './harness.mjs';

const PRICING = { prompt: 0.000001, completion: 0.000002, request: 0.0001 };
const cost = (p, c) => p * PRICING.prompt + c * PRICING.completion + PRICING.request;

const TOOLS = [chatTool(WEATHER_TOOL), chatTool(TIME_TOOL)];

describe('chat completions via the openai plugin', { skip: skipNoBinary, timeout: 60000 }, () => {
  let up, upCached, gw, url;
  before(async () => {
    up = await startOpenAIMock();
    upCached = await startOpenAIMock({ cachedTokens: 2, reasoningTokens: 3 });
    gw = await startLlmux({
      config: buildConfig({
        providers: {
          oa: openaiProvider(up, { name: 'OpenAI Mock' }),
          oac: openaiProvider(upCached, { name: 'Caching Mock', api_key: 'sk-cached' }),
        },
        models: [
          model('test/echo', [endpoint('oa', 'gpt-4o', { pricing: PRICING })]),
          model('test/cached', [endpoint('oac', 'o3-mini')]),
        ],
      }),
    });
    url = `${gw.url}/api/v1/chat/completions`;
  });
  after(() => shutdown(gw, up, upCached));

  const messages = [
    { role: 'system', content: 'be brief' },
    { role: 'user', content: 'the quick brown fox' },
  ];

  it('non-stream response has the OpenRouter shape, usage and cost', async () => {
    const r = await postJSON(url, { model: 'test/echo', messages, temperature: 0.5 });
    assert.equal(r.status, 200, r.text);
    assert.match(r.headers.get('content-type') || '', /^application\/json/);
    const j = r.json;
    assert.match(j.id, /^gen-/, 'id starts with gen-');
    assert.equal(j.object, 'chat.completion');
    assert.equal(typeof j.created, 'number');
    assert.ok(Math.abs(j.created - Date.now() / 1000) < 120, 'created is a current unix time in seconds');
    assert.equal(j.model, 'test/echo');
    assert.equal(j.provider, 'OpenAI Mock');
    assert.equal(j.choices.length, 1);
    const c = j.choices[0];
    assert.equal(c.index, 0);
    assert.equal(c.message.role, 'assistant');
    assert.equal(c.message.content, 'the quick brown fox');
    assert.equal(c.finish_reason, 'stop');
    assert.equal(c.native_finish_reason, 'stop');

    const p = promptTokensFor({ messages });
    const q = countTokens('the quick brown fox');
    assert.equal(j.usage.prompt_tokens, p);
    assert.equal(j.usage.completion_tokens, q);
    assert.equal(j.usage.total_tokens, p + q);
    assert.equal(typeof j.usage.cost, 'number');
    assert.ok(close2(j.usage.cost, cost(p, q)), `cost ${j.usage.cost} != ${cost(p, q)}`);
    assert.equal(j.usage.prompt_tokens_details.cached_tokens, 0);
    assert.equal(j.usage.completion_tokens_details.reasoning_tokens, 0);
  });

  it('forwards the request upstream with the upstream model name and the provider key', async () => {
    const n = up.requests.length;
    await postJSON(url, { model: 'test/echo', messages, temperature: 0.5, max_tokens: 50, provider: { allow_fallbacks: true }, transforms: [] });
    assert.equal(up.requests.length, n + 1);
    const rec = up.requests.at(-1);
    assert.equal(rec.path, '/v1/chat/completions');
    assert.equal(rec.headers.authorization, 'Bearer sk-test-openai', 'provider api_key, not the client key');
    assert.equal(rec.body.model, 'gpt-4o');
    assert.deepEqual(rec.body.messages, messages);
    assert.equal(rec.body.temperature, 0.5);
    assert.ok(rec.body.max_tokens === 50 || rec.body.max_completion_tokens === 50, 'max_tokens forwarded');
    // OpenAI answers 400 "Unrecognized request argument" to these.
    assert.ok(!('provider' in rec.body), 'OpenRouter-only "provider" is not sent upstream');
    assert.ok(!('transforms' in rec.body), 'OpenRouter-only "transforms" is not sent upstream');
  });

  it('reports cached and reasoning tokens from the upstream', async () => {
    const r = await postJSON(url, { model: 'test/cached', messages });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.provider, 'Caching Mock');
    assert.equal(r.json.usage.prompt_tokens_details.cached_tokens, 2);
    assert.equal(r.json.usage.completion_tokens_details.reasoning_tokens, 3);
    assert.equal(r.json.usage.completion_tokens, countTokens('the quick brown fox') + 3);
    assert.equal(upCached.requests.at(-1).headers.authorization, 'Bearer sk-cached');
  });

  it('max_tokens cut gives finish_reason "length"', async () => {
    const r = await postJSON(url, { model: 'test/echo', messages, max_tokens: 2 });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices[0].message.content, 'the quick');
    assert.equal(r.json.choices[0].finish_reason, 'length');
    assert.equal(r.json.choices[0].native_finish_reason, 'length');
    assert.equal(r.json.usage.completion_tokens, 2);
  });

  it('stream has the OpenRouter chunk shape and ends with usage, cost and [DONE]', async () => {
    const s = await postSSE(url, { model: 'test/echo', messages, stream: true });
    assert.equal(s.status, 200, s.text);
    assert.match(s.headers.get('content-type') || '', /^text\/event-stream/);
    assert.ok(s.done, 'data: [DONE] received');
    assert.equal(s.afterDone, 0, 'nothing after [DONE]');
    assert.ok(s.chunks.length >= 3, `several chunks (${s.chunks.length})`);
    const ids = new Set(s.chunks.map((c) => c.id));
    assert.equal(ids.size, 1, 'one id for the whole stream');
    assert.match(s.chunks[0].id, /^gen-/);
    for (const c of s.chunks) {
      assert.equal(c.object, 'chat.completion.chunk');
      assert.equal(c.model, 'test/echo');
      assert.equal(typeof c.created, 'number');
    }
    const firstDelta = s.chunks.find((c) => c.choices && c.choices.length);
    assert.equal(firstDelta.choices[0].delta.role, 'assistant', 'first delta carries the role');
    assert.equal(s.text, 'the quick brown fox');
    const fin = s.chunks.filter((c) => c.choices && c.choices.some((ch) => ch.finish_reason));
    assert.equal(fin.length, 1, 'exactly one chunk with a finish_reason');
    assert.equal(fin[0].choices[0].finish_reason, 'stop');
    assert.equal(fin[0].choices[0].native_finish_reason, 'stop');
    const last = s.chunks.at(-1);
    assert.deepEqual(last.choices, [], 'last data chunk has choices: []');
    const p = promptTokensFor({ messages });
    const q = countTokens('the quick brown fox');
    assert.equal(last.usage.prompt_tokens, p);
    assert.equal(last.usage.completion_tokens, q);
    assert.equal(last.usage.total_tokens, p + q);
    assert.ok(close2(last.usage.cost, cost(p, q)), `cost ${last.usage.cost} != ${cost(p, q)}`);
    const upstreamBody = up.requests.at(-1).body;
    assert.equal(upstreamBody.stream, true, 'the upstream was asked to stream');
    assert.equal(upstreamBody.stream_options && upstreamBody.stream_options.include_usage, true, 'and to include usage');
  });

  it('stream on /v1 with stream_options.include_usage behaves the same', async () => {
    const s = await postSSE(`${gw.url}/v1/chat/completions`, {
      model: 'test/echo',
      messages: [{ role: 'user', content: 'alpha beta' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    assert.equal(s.status, 200);
    assert.ok(s.done);
    assert.equal(s.text, 'alpha beta');
    assert.equal(s.chunks.at(-1).usage.completion_tokens, 2);
  });

  it('text with escapes and non-ASCII survives the round trip exactly', async () => {
    const tricky = 'quote " backslash \\ slash / tab\tnewline\nunicode é ✓ 😀 \u0001 </script>';
    const r = await postJSON(url, { model: 'test/echo', messages: [{ role: 'user', content: tricky }] });
    assert.equal(r.status, 200, r.text);
    assert.equal(up.requests.at(-1).body.messages[0].content, tricky, 'upstream got the exact text');
    assert.equal(r.json.choices[0].message.content, tricky);
    const s = await postSSE(url, { model: 'test/echo', messages: [{ role: 'user', content: tricky }], stream: true });
    assert.equal(s.text, tricky);
  });

  it('non-stream tool calls are returned whole (parallel)', async () => {
    const r = await postJSON(url, {
      model: 'test/echo',
      messages: [{ role: 'user', content: 'please use the tools' }],
      tools: TOOLS,
    });
    assert.equal(r.status, 200, r.text);
    const c = r.json.choices[0];
    assert.equal(c.finish_reason, 'tool_calls');
    assert.equal(c.native_finish_reason, 'tool_calls');
    const calls = c.message.tool_calls;
    assert.equal(calls.length, 2, r.text);
    assert.deepEqual(calls.map((t) => t.function.name), ['get_weather', 'get_time']);
    for (const t of calls) {
      assert.equal(t.type, 'function');
      assert.match(t.id, /^call_/, 'upstream tool-call id kept');
      assert.equal(typeof t.function.arguments, 'string');
    }
    assert.deepEqual(JSON.parse(calls[0].function.arguments), { city: 'city-value' });
    assert.deepEqual(JSON.parse(calls[1].function.arguments), { tz: 'tz-value' });
    assert.deepEqual(up.requests.at(-1).body.tools, TOOLS, 'tools forwarded unchanged');
  });

  it('streamed tool calls assemble into the same calls', async () => {
    const s = await postSSE(url, {
      model: 'test/echo',
      messages: [{ role: 'user', content: 'please use the tools' }],
      tools: TOOLS,
      stream: true,
    });
    assert.equal(s.status, 200);
    assert.ok(s.done);
    const calls = assembleToolCalls(s.chunks);
    assert.equal(calls.length, 2, JSON.stringify(s.chunks));
    assert.deepEqual(calls.map((t) => t.name), ['get_weather', 'get_time']);
    assert.ok(calls.every((t) => t.id && t.type === 'function'), 'each call has an id and type on its first fragment');
    assert.deepEqual(JSON.parse(calls[0].arguments), { city: 'city-value' });
    assert.deepEqual(JSON.parse(calls[1].arguments), { tz: 'tz-value' });
    const fin = s.chunks.find((c) => c.choices && c.choices.some((ch) => ch.finish_reason));
    assert.equal(fin.choices[0].finish_reason, 'tool_calls');
  });

  it('assistant tool-call turns and tool results are forwarded', async () => {
    const convo = [
      { role: 'user', content: 'weather in Paris?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: 'sunny' },
      { role: 'user', content: 'thanks' },
    ];
    const r = await postJSON(url, { model: 'test/echo', messages: convo, tools: TOOLS });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices[0].message.content, 'thanks');
    const sent = up.requests.at(-1).body.messages;
    assert.equal(sent.length, 4);
    assert.equal(sent[1].tool_calls[0].id, 'call_1');
    assert.equal(sent[2].role, 'tool');
    assert.equal(sent[2].tool_call_id, 'call_1');
  });
});
