// The official `openai` npm SDK against llmux (baseURL .../api/v1): through
// the openai plugin to the OpenAI mock, and through the mock plugin.
// Needs `npm ci` in tests/clients; skips with a message when it was not run.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startOpenAIMock, promptTokensFor } from '../mocks/openai.mjs';
import {
  startLlmux, shutdown, loadClientSdk, buildConfig, openaiProvider, model, endpoint,
  WEATHER_TOOL, chatTool,
} from '../integration/harness.mjs';

const { sdk: OpenAI, skip } = await loadClientSdk(() => import('openai'), 'the openai SDK');

const TOOLS = [chatTool(WEATHER_TOOL)];

describe('openai SDK against llmux', { skip, timeout: 60000 }, () => {
  let up, gw, client;
  before(async () => {
    up = await startOpenAIMock();
    gw = await startLlmux({
      config: buildConfig({
        providers: {
          oa: openaiProvider(up, { name: 'OpenAI Mock' }),
          mock: { plugin: 'mock', name: 'Mock' },
        },
        models: [
          model('openai/gpt-test', [endpoint('oa', 'gpt-4o')]),
          model('mock/echo', [endpoint('mock', 'echo')]),
          model('mock/lorem', [endpoint('mock', 'lorem', { options: { delay_ms: '5', tokens: '16' } })]),
          model('openai/limited', [endpoint('oa', 'x@fail-429')]),
        ],
      }),
    });
    client = new OpenAI({ baseURL: `${gw.url}/api/v1`, apiKey: 'test', maxRetries: 0, timeout: 20000 });
  });
  after(() => shutdown(gw, up));

  const messages = [
    { role: 'system', content: 'be brief' },
    { role: 'user', content: 'say hello to the sdk' },
  ];

  it('chat.completions.create (non-stream) via the openai plugin', async () => {
    const r = await client.chat.completions.create({ model: 'openai/gpt-test', messages });
    assert.match(r.id, /^gen-/);
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.model, 'openai/gpt-test');
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.equal(r.choices[0].message.content, 'say hello to the sdk');
    assert.equal(r.choices[0].finish_reason, 'stop');
    const p = promptTokensFor({ messages });
    assert.equal(r.usage.prompt_tokens, p);
    assert.equal(r.usage.completion_tokens, 5);
    assert.equal(r.usage.total_tokens, p + 5);
    assert.equal(typeof r.usage.cost, 'number', 'OpenRouter usage.cost passes through the SDK');
    assert.equal(up.requests.at(-1).headers.authorization, 'Bearer sk-test-openai');
  });

  it('chat.completions.create (stream) via the openai plugin', async () => {
    const stream = await client.chat.completions.create({
      model: 'openai/gpt-test',
      messages,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let finish = null;
    let usage = null;
    let n = 0;
    for await (const chunk of stream) {
      n++;
      assert.equal(chunk.object, 'chat.completion.chunk');
      for (const ch of chunk.choices) {
        text += ch.delta.content ?? '';
        if (ch.finish_reason) finish = ch.finish_reason;
      }
      if (chunk.usage) usage = chunk.usage;
    }
    assert.ok(n >= 3, `several chunks (${n})`);
    assert.equal(text, 'say hello to the sdk');
    assert.equal(finish, 'stop');
    assert.ok(usage, 'usage chunk');
    assert.equal(usage.completion_tokens, 5);
    assert.equal(typeof usage.cost, 'number');
  });

  it('the stream helper assembles a final completion', async () => {
    const runner = client.chat.completions.stream({ model: 'openai/gpt-test', messages });
    const deltas = [];
    runner.on('content', (d) => deltas.push(d));
    const final = await runner.finalChatCompletion();
    assert.equal(final.choices[0].message.content, 'say hello to the sdk');
    assert.equal(deltas.join(''), 'say hello to the sdk');
  });

  it('tool calls are returned and parsed by the SDK (non-stream and stream)', async () => {
    const body = { model: 'openai/gpt-test', messages: [{ role: 'user', content: 'use a tool please' }], tools: TOOLS };
    const r = await client.chat.completions.create(body);
    assert.equal(r.choices[0].finish_reason, 'tool_calls');
    const tc = r.choices[0].message.tool_calls;
    assert.equal(tc.length, 1);
    assert.equal(tc[0].type, 'function');
    assert.equal(tc[0].function.name, 'get_weather');
    assert.deepEqual(JSON.parse(tc[0].function.arguments), { city: 'city-value' });

    const runner = client.chat.completions.stream(body);
    const final = await runner.finalChatCompletion();
    const stc = final.choices[0].message.tool_calls;
    assert.equal(stc.length, 1);
    assert.equal(stc[0].function.name, 'get_weather');
    assert.ok(stc[0].id, 'tool call id');
    assert.deepEqual(JSON.parse(stc[0].function.arguments), { city: 'city-value' });
    assert.equal(final.choices[0].finish_reason, 'tool_calls');
  });

  it('mock plugin: mock/echo non-stream and stream', async () => {
    const r = await client.chat.completions.create({ model: 'mock/echo', messages: [{ role: 'user', content: 'echo via sdk' }] });
    assert.equal(r.choices[0].message.content, 'echo via sdk');
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.ok(r.usage.total_tokens > 0);

    const stream = await client.chat.completions.create({ model: 'mock/echo', messages: [{ role: 'user', content: 'echo via sdk' }], stream: true });
    let text = '';
    let finish = null;
    for await (const chunk of stream) {
      for (const ch of chunk.choices) {
        text += ch.delta.content ?? '';
        if (ch.finish_reason) finish = ch.finish_reason;
      }
    }
    assert.equal(text, 'echo via sdk');
    assert.equal(finish, 'stop');
  });

  it('mock plugin: mock/lorem streams', async () => {
    const stream = await client.chat.completions.create({ model: 'mock/lorem', messages: [{ role: 'user', content: 'go' }], stream: true });
    let text = '';
    let contentChunks = 0;
    for await (const chunk of stream) {
      for (const ch of chunk.choices) {
        if (ch.delta.content) {
          contentChunks++;
          text += ch.delta.content;
        }
      }
    }
    assert.match(text, /^Lorem ipsum/);
    assert.equal(text.trim().split(/\s+/).length, 16);
    assert.ok(contentChunks > 1, 'more than one content chunk');
  });

  it('models.list() pages the OpenRouter models list', async () => {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    assert.ok(ids.includes('openai/gpt-test'), ids.join(','));
    assert.ok(ids.includes('mock/echo'));
  });

  it('errors surface as the SDK error classes', async () => {
    await assert.rejects(
      client.chat.completions.create({ model: 'nobody/nothing', messages }),
      (e) => e instanceof OpenAI.NotFoundError && e.status === 404,
    );
    await assert.rejects(
      client.chat.completions.create({ model: 'openai/gpt-test', messages: [] }),
      (e) => e instanceof OpenAI.BadRequestError && e.status === 400,
    );
    await assert.rejects(
      client.chat.completions.create({ model: 'openai/limited', messages }),
      (e) => e instanceof OpenAI.RateLimitError && e.status === 429 && e.headers.get('retry-after') === '1',
    );
  });
});
