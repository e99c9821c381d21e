// The official `@anthropic-ai/sdk` against llmux's inbound POST /v1/messages
// (baseURL http://127.0.0.1:PORT: the SDK appends /v1/messages itself), via
// the mock plugin and through the openai plugin to the OpenAI mock.
// Needs `npm ci` in tests/clients; skips with a message when it was not run.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startOpenAIMock } from '../mocks/openai.mjs';
import {
  startLlmux, shutdown, loadClientSdk, buildConfig, openaiProvider, model, endpoint,
  WEATHER_TOOL, TIME_TOOL,
} from '../integration/harness.mjs';

const { sdk: Anthropic, skip } = await loadClientSdk(() => import('@anthropic-ai/sdk'), 'the @anthropic-ai/sdk package', 'anthropic client tests');

describe('@anthropic-ai/sdk against llmux /v1/messages', { skip, timeout: 90000 }, () => {
  let up, gw, clients;
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
          model('openai/midstream', [endpoint('oa', 'gpt-4o@error-midstream')]),
          model('mock/echo', [endpoint('mock', 'echo')]),
          model('mock/lorem', [endpoint('mock', 'lorem', { options: { delay_ms: '2', tokens: '12' } })]),
        ],
      }),
    });
    const common = { baseURL: gw.url, maxRetries: 0, timeout: 20000 };
    clients = {
      // apiKey: this SDK sends it as Authorization: Bearer with anthropic-version 2026-10-21
      apiKey: new Anthropic({ ...common, apiKey: 'sk-ant-test' }),
      authToken: new Anthropic({ ...common, apiKey: null, authToken: 'oauth-token-test' }),
      // the 2023-06-01 style: x-api-key header
      xApiKey: new Anthropic({
        ...common,
        apiKey: null,
        authToken: null,
        defaultHeaders: { 'x-api-key': 'sk-ant-legacy', 'anthropic-version': '2023-06-01' },
      }),
    };
  });
  after(() => shutdown(gw, up));

  for (const style of ['apiKey', 'authToken', 'xApiKey']) {
    it(`messages.create (non-stream) with ${style}`, async () => {
      const m = await clients[style].messages.create({
        model: 'mock/echo',
        max_tokens: 64,
        system: 'be brief',
        messages: [{ role: 'user', content: `hello from ${style}` }],
      });
      assert.match(m.id, /^msg_/);
      assert.equal(m.type, 'message');
      assert.equal(m.role, 'assistant');
      assert.equal(m.model, 'mock/echo');
      assert.deepEqual(m.content, [{ type: 'text', text: `hello from ${style}` }]);
      assert.equal(m.stop_reason, 'end_turn');
      assert.ok(m.usage.input_tokens > 0);
      assert.ok(m.usage.output_tokens > 0);
    });
  }

  it('messages.stream: text events and the final message assembled by the SDK', async () => {
    for (const style of ['apiKey', 'xApiKey']) {
      const stream = clients[style].messages.stream({
        model: 'mock/lorem',
        max_tokens: 100,
        messages: [{ role: 'user', content: 'stream please' }],
      });
      let text = '';
      stream.on('text', (t) => {
        text += t;
      });
      const m = await stream.finalMessage();
      assert.equal(m.content.length, 1);
      assert.equal(m.content[0].type, 'text');
      assert.equal(m.content[0].text, text);
      assert.equal(text.trim().split(/\s+/).length, 12);
      assert.equal(m.stop_reason, 'end_turn');
      assert.equal(m.usage.output_tokens, 12);
      assert.ok(m.usage.input_tokens > 0, 'input_tokens from message_delta');
    }
  });

  it('messages.stream: parallel tool_use blocks through the openai plugin', async () => {
    const stream = clients.authToken.messages.stream({
      model: 'openai/gpt-test',
      max_tokens: 100,
      tools: [WEATHER_TOOL, TIME_TOOL],
      messages: [{ role: 'user', content: 'use the tools for Paris' }],
    });
    const jsonEvents = [];
    stream.on('inputJson', (partial) => jsonEvents.push(partial));
    const m = await stream.finalMessage();
    assert.equal(m.stop_reason, 'tool_use');
    assert.deepEqual(
      m.content.map((b) => [b.type, b.name, b.input]),
      [
        ['tool_use', 'get_weather', { city: 'city-value' }],
        ['tool_use', 'get_time', { tz: 'tz-value' }],
      ],
    );
    assert.ok(m.content.every((b) => typeof b.id === 'string' && b.id.length > 0));
    assert.ok(jsonEvents.length > 0, 'input_json_delta events reached the SDK');
  });

  it('a tool conversation of two turns (create, then tool_result)', async () => {
    const client = clients.apiKey;
    const messages = [{ role: 'user', content: 'what is the weather in Paris?' }];
    const first = await client.messages.create({ model: 'mock/echo', max_tokens: 64, tools: [WEATHER_TOOL], messages });
    assert.equal(first.stop_reason, 'tool_use');
    const use = first.content.find((b) => b.type === 'tool_use');
    assert.deepEqual(use.input, { location: 'Paris' });
    messages.push({ role: 'assistant', content: first.content });
    messages.push({
      role: 'user',
      content: [
        { type: 'tool_result', tool_use_id: use.id, content: 'sunny, 21C' },
        { type: 'text', text: 'thanks for that' },
      ],
    });
    const second = await client.messages.create({ model: 'mock/echo', max_tokens: 64, tools: [WEATHER_TOOL], messages });
    assert.equal(second.stop_reason, 'end_turn');
    assert.equal(second.content[0].text, 'thanks for that');
  });

  it('messages.create with stream: true yields the raw events in order', async () => {
    const stream = await clients.xApiKey.messages.create({
      model: 'mock/echo',
      max_tokens: 64,
      stream: true,
      messages: [{ role: 'user', content: 'raw events' }],
    });
    const types = [];
    for await (const ev of stream) types.push(ev.type);
    assert.deepEqual(types.slice(0, 2), ['message_start', 'content_block_start']);
    assert.ok(types.slice(2, -3).length > 0 && types.slice(2, -3).every((t) => t === 'content_block_delta'), types.join(','));
    assert.deepEqual(types.slice(-3), ['content_block_stop', 'message_delta', 'message_stop']);
  });

  it('errors surface as the SDK error classes', async () => {
    await assert.rejects(
      clients.apiKey.messages.create({ model: 'nope/none', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }),
      (err) => {
        assert.ok(err instanceof Anthropic.NotFoundError, `${err}`);
        assert.equal(err.status, 404);
        assert.equal(err.error.type, 'error');
        assert.equal(err.error.error.type, 'not_found_error');
        return true;
      },
    );
    await assert.rejects(
      clients.apiKey.messages.create({ model: 'mock/echo', messages: [{ role: 'user', content: 'x' }] }),
      (err) => {
        assert.ok(err instanceof Anthropic.BadRequestError, `${err}`);
        assert.equal(err.error.error.type, 'invalid_request_error');
        assert.match(err.error.error.message, /max_tokens/);
        return true;
      },
    );
  });

  it('an error event after the stream began rejects the stream', async () => {
    const stream = clients.apiKey.messages.stream({
      model: 'openai/midstream',
      max_tokens: 50,
      messages: [{ role: 'user', content: 'one two three four five six' }],
    });
    let text = '';
    stream.on('text', (t) => {
      text += t;
    });
    await assert.rejects(stream.finalMessage(), (err) => {
      assert.ok(err instanceof Anthropic.APIError, `${err}`);
      return true;
    });
    assert.ok(text.startsWith('one'), `content before the failure: "${text}"`);
  });
});
