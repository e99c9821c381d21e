// Chat completions through the gemini plugin to the Gemini mock: contents /
// systemInstruction translation, thought parts -> reasoning, functionCall
// parts -> tool_calls with generated ids, usage incl. thoughts, 429 with
// RetryInfo in the body, error JSON served as text/event-stream.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGeminiMock, promptTokensFor, countTokens } from '../mocks/gemini.mjs';
import { startOpenAIMock } from '../mocks/openai.mjs';
import {
  startLlmux, shutdown, skipNoBinary, buildConfig, geminiProvider, openaiProvider, model, endpoint, postJSON, postSSE,
  assembleToolCalls, expectErrorShape,
} from './harness.mjs';

const TOOLS = [
  { type: 'function', function: { name: 'get_weather', description: 'weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } },
  { type: 'function', function: { name: 'get_time', description: 'time', parameters: { type: 'object', properties: { tz: { type: 'string' } } } } },
];

describe('chat completions via the gemini plugin', { skip: skipNoBinary, timeout: 60000 }, () => {
  let gem, good, gw, url;
  before(async () => {
    gem = await startGeminiMock({ retryDelay: '2s' });
    good = await startOpenAIMock({ reply: 'fallback answer' });
    gw = await startLlmux({
      config: buildConfig({
        providers: {
          gem: geminiProvider(gem, { name: 'Gemini Mock' }),
          good: openaiProvider(good, { name: 'Good Upstream' }),
        },
        models: [
          model('google/gemini', [endpoint('gem', 'gemini-test')]),
          model('google/limited', [endpoint('gem', 'l@fail-429')]),
          model('google/sse-error', [endpoint('gem', 's@sse-error-body')]),
          model('google/sse-error-fo', [endpoint('gem', 't@sse-error-body'), endpoint('good', 'gpt-fallback')]),
          model('google/midstream', [endpoint('gem', 'm@error-midstream')]),
        ],
      }),
    });
    url = `${gw.url}/api/v1/chat/completions`;
  });
  after(() => shutdown(gw, gem, good));

  const messages = [
    { role: 'system', content: 'be brief' },
    { role: 'user', content: 'hi' },
    { role: 'assistant', content: 'hello' },
    { role: 'user', content: 'hello gemini world today' },
  ];

  it('translates the request to generateContent', async () => {
    const r = await postJSON(url, { model: 'google/gemini', messages, temperature: 0.3, max_tokens: 100 });
    assert.equal(r.status, 200, r.text);
    const rec = gem.requests.at(-1);
    assert.match(rec.path, /\/v1beta\/models\/gemini-test:(stream)?[gG]enerateContent$/);
    assert.equal(rec.headers['x-goog-api-key'] ?? rec.query.key, 'gemini-test-key');
    const b = rec.body;
    assert.deepEqual(b.systemInstruction.parts.map((p) => p.text).join(''), 'be brief');
    assert.deepEqual(b.contents.map((c) => c.role), ['user', 'model', 'user']);
    assert.equal(b.contents[2].parts[0].text, 'hello gemini world today');
    assert.equal(b.generationConfig.temperature, 0.3);
    assert.equal(b.generationConfig.maxOutputTokens, 100);
  });

  it('non-stream answer: content, finish reasons, usage', async () => {
    const r = await postJSON(url, { model: 'google/gemini', messages });
    assert.equal(r.status, 200, r.text);
    const j = r.json;
    assert.match(j.id, /^gen-/);
    assert.equal(j.provider, 'Gemini Mock');
    assert.equal(j.choices[0].message.content, 'hello gemini world today');
    assert.equal(j.choices[0].finish_reason, 'stop');
    assert.equal(j.choices[0].native_finish_reason, 'STOP');
    const p = promptTokensFor(gem.requests.at(-1).body);
    assert.equal(j.usage.prompt_tokens, p);
    assert.equal(j.usage.completion_tokens, 4);
    assert.equal(j.usage.total_tokens, p + 4);
  });

  it('stream answer (CRLF-separated events)', async () => {
    const s = await postSSE(url, { model: 'google/gemini', messages, stream: true });
    assert.equal(s.status, 200);
    assert.ok(s.done);
    assert.equal(s.text, 'hello gemini world today');
    const fin = s.chunks.flatMap((c) => c.choices || []).find((ch) => ch.finish_reason);
    assert.equal(fin.finish_reason, 'stop');
    assert.equal(fin.native_finish_reason, 'STOP');
    const last = s.chunks.at(-1);
    assert.deepEqual(last.choices, []);
    assert.equal(last.usage.completion_tokens, 4);
  });

  it('MAX_TOKENS maps to length', async () => {
    const r = await postJSON(url, { model: 'google/gemini', messages, max_tokens: 2 });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices[0].message.content, 'hello gemini');
    assert.equal(r.json.choices[0].finish_reason, 'length');
    assert.equal(r.json.choices[0].native_finish_reason, 'MAX_TOKENS');
  });

  it('reasoning: thought parts become reasoning and thoughts count as reasoning tokens', async () => {
    const body = { model: 'google/gemini', messages, reasoning: { max_tokens: 1024 } };
    const r = await postJSON(url, body);
    assert.equal(r.status, 200, r.text);
    const cfg = gem.requests.at(-1).body.generationConfig.thinkingConfig;
    assert.equal(cfg.includeThoughts, true);
    assert.equal(cfg.thinkingBudget, 1024);
    const thoughts = 'Thinking about: hello gemini world today';
    const msg = r.json.choices[0].message;
    assert.equal(msg.content, 'hello gemini world today');
    assert.equal(msg.reasoning, thoughts);
    assert.equal(r.json.usage.completion_tokens_details.reasoning_tokens, countTokens(thoughts));
    assert.equal(r.json.usage.completion_tokens, 4 + countTokens(thoughts), 'completion tokens include reasoning');

    const s = await postSSE(url, { ...body, stream: true });
    assert.ok(s.done);
    assert.equal(s.reasoning, thoughts);
    assert.equal(s.text, 'hello gemini world today');
  });

  it('functionCall parts become tool_calls with generated, distinct ids', async () => {
    const body = { model: 'google/gemini', messages: [{ role: 'user', content: 'use the tools' }], tools: TOOLS };
    const r = await postJSON(url, body);
    assert.equal(r.status, 200, r.text);
    const decls = gem.requests.at(-1).body.tools.flatMap((t) => t.functionDeclarations || []);
    assert.deepEqual(decls.map((d) => d.name), ['get_weather', 'get_time']);
    const c = r.json.choices[0];
    assert.equal(c.finish_reason, 'tool_calls');
    const calls = c.message.tool_calls;
    assert.equal(calls.length, 2);
    assert.ok(calls.every((t) => typeof t.id === 'string' && t.id.length > 0), 'ids generated');
    assert.notEqual(calls[0].id, calls[1].id);
    assert.deepEqual(JSON.parse(calls[0].function.arguments), { city: 'city-value' });
    assert.deepEqual(JSON.parse(calls[1].function.arguments), { tz: 'tz-value' });

    const s = await postSSE(url, { ...body, stream: true });
    assert.ok(s.done);
    const sc = assembleToolCalls(s.chunks);
    assert.equal(sc.length, 2);
    assert.ok(sc.every((t) => t.id), 'ids in the stream');
    assert.deepEqual(JSON.parse(sc[0].arguments), { city: 'city-value' });
    const fin = s.chunks.flatMap((x) => x.choices || []).find((ch) => ch.finish_reason);
    assert.equal(fin.finish_reason, 'tool_calls');
  });

  it('tool results go back as functionResponse parts', async () => {
    const convo = [
      { role: 'user', content: 'weather?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_x', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
      { role: 'tool', tool_call_id: 'call_x', content: '{"sky":"sunny"}' },
    ];
    const r = await postJSON(url, { model: 'google/gemini', messages: convo, tools: TOOLS });
    assert.equal(r.status, 200, r.text);
    const contents = gem.requests.at(-1).body.contents;
    const fc = contents.flatMap((c) => c.parts).find((p) => p.functionCall);
    assert.equal(fc.functionCall.name, 'get_weather');
    assert.deepEqual(fc.functionCall.args, { city: 'Paris' });
    const fr = contents.flatMap((c) => c.parts).find((p) => p.functionResponse);
    assert.ok(fr, 'functionResponse part sent');
    assert.equal(fr.functionResponse.name, 'get_weather', 'the response is matched to its call by name');
  });

  it('429 with RetryInfo in the body gives 429 with Retry-After from retryDelay', async () => {
    const r = await postJSON(url, { model: 'google/limited', messages });
    expectErrorShape(assert, r, 429);
    assert.equal(r.headers.get('retry-after'), '2');
  });

  it('an error JSON served as text/event-stream is an upstream error, not a stream', async () => {
    const r = await postJSON(url, { model: 'google/sse-error', messages });
    const e = expectErrorShape(assert, r, 502);
    assert.match(JSON.stringify(e), /overloaded/i, 'the upstream message is reported');
    const fo = await postJSON(url, { model: 'google/sse-error-fo', messages, provider: { order: ['gem', 'good'] } });
    assert.equal(fo.status, 200, fo.text);
    assert.equal(fo.json.provider, 'Good Upstream');
  });

  it('an error object mid-stream ends the stream with an error chunk', async () => {
    const s = await postSSE(url, {
      model: 'google/midstream',
      messages: [{ role: 'user', content: 'a b c d e f g h' }],
      stream: true,
    });
    assert.equal(s.status, 200);
    assert.ok(s.text.startsWith('a b c d'), s.text);
    const e = s.chunks.find((c) => c.error);
    assert.ok(e, 'error chunk');
    const fin = s.chunks.flatMap((c) => c.choices || []).filter((ch) => ch.finish_reason);
    assert.equal(fin.at(-1).finish_reason, 'error');
    assert.ok(s.done);
  });
});
