// Inbound Anthropic Messages API (POST /v1/messages): requests translated to
// the canonical body, answers in Anthropic's Message shape and SSE event
// sequence, Anthropic-shaped errors. Against the mock plugin and through the
// openai plugin to the OpenAI mock.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startOpenAIMock } from '../mocks/openai.mjs';
import { startAnthropicMock } from '../mocks/anthropic.mjs';
import {
  startLlmux, shutdown, skipNoBinary, buildConfig, openaiProvider, anthropicProvider, model, endpoint, sseIterate,
  WEATHER_TOOL, TIME_TOOL,
} from './harness.mjs';

const ANTHROPIC_HEADERS = { 'x-api-key': 'sk-any', 'anthropic-version': '2023-06-01' };

async function post(url, body, headers = ANTHROPIC_HEADERS) {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(20000),
  });
  const text = await r.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: r.status, headers: r.headers, text, json };
}

/** Streams a request; returns {status, headers, events: [{event, data}], raw}. */
async function stream(url, body, headers = ANTHROPIC_HEADERS) {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ ...body, stream: true }),
    signal: AbortSignal.timeout(30000),
  });
  const ctype = r.headers.get('content-type') || '';
  if (!ctype.startsWith('text/event-stream')) {
    const text = await r.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch {}
    return { status: r.status, headers: r.headers, events: [], json, text };
  }
  const events = [];
  const comments = [];
  for await (const ev of sseIterate(r.body)) {
    if (ev.type === 'comment') {
      comments.push(ev.text);
      continue;
    }
    events.push({ event: ev.event, data: JSON.parse(ev.data) });
  }
  return { status: r.status, headers: r.headers, events, comments };
}

/**
 * Checks the Anthropic stream grammar: message_start first, blocks opened in
 * index order 0,1,2…, each delta for an open (or earlier) block, every block
 * stopped once, message_delta then message_stop last; `type` in every data
 * equals the event name. Returns the assembled message.
 */
function checkSequence(events, { allowPing = true } = {}) {
  assert.ok(events.length >= 3, `events: ${JSON.stringify(events)}`);
  for (const e of events) assert.equal(e.data.type, e.event, `data.type matches the event name: ${JSON.stringify(e)}`);
  const names = events.map((e) => e.event).filter((n) => !(allowPing && n === 'ping'));
  assert.equal(names[0], 'message_start');
  assert.equal(names.at(-1), 'message_stop');
  assert.equal(names.at(-2), 'message_delta');
  const msg = structuredClone(events.find((e) => e.event === 'message_start').data.message);
  assert.match(msg.id, /^msg_/);
  assert.equal(msg.type, 'message');
  assert.equal(msg.role, 'assistant');
  assert.deepEqual(msg.content, []);
  assert.equal(msg.stop_reason, null);
  const open = new Set();
  const stopped = new Set();
  const json = {};
  for (const e of events) {
    const d = e.data;
    if (e.event === 'content_block_start') {
      assert.equal(d.index, msg.content.length, 'blocks start in index order');
      assert.equal(open.size, 0, 'one block open at a time');
      msg.content.push(structuredClone(d.content_block));
      open.add(d.index);
    } else if (e.event === 'content_block_delta') {
      assert.ok(d.index < msg.content.length, 'delta for a started block');
      const b = msg.content[d.index];
      if (d.delta.type === 'text_delta') b.text += d.delta.text;
      else if (d.delta.type === 'thinking_delta') b.thinking += d.delta.thinking;
      else if (d.delta.type === 'signature_delta') b.signature = d.delta.signature;
      else if (d.delta.type === 'input_json_delta') json[d.index] = (json[d.index] || '') + d.delta.partial_json;
      else assert.fail(`unknown delta ${d.delta.type}`);
    } else if (e.event === 'content_block_stop') {
      assert.ok(open.has(d.index), `stop for the open block ${d.index}`);
      open.delete(d.index);
      stopped.add(d.index);
    } else if (e.event === 'message_delta') {
      assert.equal(open.size, 0, 'all blocks stopped before message_delta');
      msg.stop_reason = d.delta.stop_reason;
      msg.stop_sequence = d.delta.stop_sequence;
      Object.assign(msg.usage, d.usage);
    }
  }
  assert.equal(stopped.size, msg.content.length, 'every block stopped');
  for (const [i, s] of Object.entries(json)) msg.content[i].input = JSON.parse(s);
  return msg;
}

describe('POST /v1/messages (Anthropic Messages in)', { skip: skipNoBinary, timeout: 90000 }, () => {
  let up, gw, url;
  before(async () => {
    up = await startOpenAIMock();
    gw = await startLlmux({
      config: buildConfig({
        providers: {
          mock: { plugin: 'mock', name: 'Mock' },
          oa: openaiProvider(up, { name: 'OpenAI Mock' }),
        },
        models: [
          model('mock/echo', [endpoint('mock', 'echo')]),
          model('mock/lorem', [endpoint('mock', 'lorem', { options: { delay_ms: '2', tokens: '12' } })]),
          model('openai/gpt-test', [endpoint('oa', 'gpt-4o')], { input_modalities: ['text', 'image', 'file'] }),
          model('openai/slow', [endpoint('oa', 'gpt-4o@delay-700')]),
          model('openai/midstream', [endpoint('oa', 'gpt-4o@error-midstream')]),
          model('openai/limited', [endpoint('oa', 'gpt-4o@fail-429')]),
        ],
        timeouts: { keepalive_comment_ms: 150 },
      }),
    });
    url = `${gw.url}/v1/messages`;
  });
  after(() => shutdown(gw, up));

  it('non-stream: Message object from the mock (x-api-key, 2023-06-01)', async () => {
    const r = await post(url, {
      model: 'mock/echo',
      max_tokens: 64,
      system: 'be brief',
      messages: [{ role: 'user', content: 'hello anthropic client' }],
    });
    assert.equal(r.status, 200, r.text);
    assert.match(r.headers.get('content-type'), /^application\/json/);
    const m = r.json;
    assert.match(m.id, /^msg_/);
    assert.equal(m.type, 'message');
    assert.equal(m.role, 'assistant');
    assert.equal(m.model, 'mock/echo');
    assert.deepEqual(m.content, [{ type: 'text', text: 'hello anthropic client' }]);
    assert.equal(m.stop_reason, 'end_turn');
    assert.equal(m.stop_sequence, null);
    assert.equal(typeof m.usage.input_tokens, 'number');
    assert.ok(m.usage.input_tokens > 0);
    assert.ok(m.usage.output_tokens > 0);
    assert.equal(m.usage.cache_read_input_tokens, 0);
    assert.equal(m.usage.cache_creation_input_tokens, 0);
  });

  it('accepts Authorization: Bearer with anthropic-version 2026-10-21, and text blocks', async () => {
    const r = await post(
      url,
      {
        model: 'mock/echo',
        max_tokens: 64,
        messages: [{ role: 'user', content: [{ type: 'text', text: 'bearer style' }] }],
      },
      { authorization: 'Bearer sk-any', 'anthropic-version': '2026-10-21' },
    );
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.content[0].text, 'bearer style');
  });

  it('stream: the exact event sequence with indexes (mock/lorem)', async () => {
    const s = await stream(url, { model: 'mock/lorem', max_tokens: 100, messages: [{ role: 'user', content: 'go' }] });
    assert.equal(s.status, 200);
    assert.match(s.headers.get('content-type'), /^text\/event-stream/);
    const names = s.events.map((e) => e.event).filter((n) => n !== 'ping');
    assert.equal(names[0], 'message_start');
    assert.equal(names[1], 'content_block_start');
    assert.ok(names.slice(2, -3).every((n) => n === 'content_block_delta'), names.join(','));
    assert.deepEqual(names.slice(-3), ['content_block_stop', 'message_delta', 'message_stop']);
    const msg = checkSequence(s.events);
    assert.equal(msg.content.length, 1);
    assert.equal(msg.content[0].type, 'text');
    assert.equal(msg.content[0].text.trim().split(/\s+/).length, 12);
    assert.equal(msg.stop_reason, 'end_turn');
    assert.equal(msg.usage.output_tokens, 12);
    assert.equal(s.events.filter((e) => e.event === 'content_block_delta').every((e) => e.data.index === 0), true);
  });

  it('tool call from the mock: non-stream tool_use block with parsed input', async () => {
    const r = await post(url, {
      model: 'mock/echo',
      max_tokens: 64,
      tools: [WEATHER_TOOL],
      messages: [{ role: 'user', content: 'what is the weather in Paris?' }],
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.stop_reason, 'tool_use');
    assert.equal(r.json.content.length, 1);
    const t = r.json.content[0];
    assert.equal(t.type, 'tool_use');
    assert.equal(t.name, 'get_weather');
    assert.equal(typeof t.id, 'string');
    assert.deepEqual(t.input, { location: 'Paris' });
  });

  it('tool call from the mock: stream with content_block_start id/name and input_json_delta', async () => {
    const s = await stream(url, {
      model: 'mock/echo',
      max_tokens: 64,
      tools: [WEATHER_TOOL],
      messages: [{ role: 'user', content: 'weather in Paris please' }],
    });
    assert.equal(s.status, 200);
    const msg = checkSequence(s.events);
    assert.equal(msg.stop_reason, 'tool_use');
    assert.equal(msg.content.length, 1);
    assert.equal(msg.content[0].type, 'tool_use');
    assert.equal(msg.content[0].name, 'get_weather');
    assert.equal(msg.content[0].id, 'call_mock_1');
    assert.deepEqual(msg.content[0].input, { location: 'Paris' });
    const start = s.events.find((e) => e.event === 'content_block_start');
    assert.deepEqual(start.data.content_block.input, {});
  });

  it('errors in Anthropic shape: 400 missing max_tokens, 404 unknown model, 400 bad JSON / role', async () => {
    const cases = [
      [{ model: 'mock/echo', messages: [{ role: 'user', content: 'x' }] }, 400, 'invalid_request_error', /max_tokens/],
      [{ model: 'nope/nothing', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }, 404, 'not_found_error', /nope\/nothing/],
      ['{"model": "mock/echo", ', 400, 'invalid_request_error', /./],
      [{ model: 'mock/echo', max_tokens: 5, messages: [{ role: 'system', content: 'x' }] }, 400, 'invalid_request_error', /role/],
      [{ model: 'mock/echo', max_tokens: 5, messages: [] }, 400, 'invalid_request_error', /messages/],
      [{ max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }, 400, 'invalid_request_error', /model/],
    ];
    for (const [body, status, type, re] of cases) {
      const r = await post(url, body);
      assert.equal(r.status, status, r.text);
      assert.equal(r.json.type, 'error', r.text);
      assert.equal(r.json.error.type, type);
      assert.match(r.json.error.message, re);
    }
    // a streaming request that is refused up front still gets a JSON error
    const s = await stream(url, { model: 'mock/echo', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(s.status, 400);
    assert.equal(s.json.error.type, 'invalid_request_error');
  });

  it('429 before the first byte: rate_limit_error with Retry-After', async () => {
    const r = await post(url, { model: 'openai/limited', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] });
    assert.equal(r.status, 429, r.text);
    assert.equal(r.json.error.type, 'rate_limit_error');
    assert.ok(r.headers.get('retry-after'));
  });

  it('through the openai plugin: request translated, parallel tool calls, then the tool results turn', async () => {
    const body = {
      model: 'openai/gpt-test',
      max_tokens: 200,
      system: [{ type: 'text', text: 'you are a tester' }],
      stop_sequences: ['STOP'],
      temperature: 0.3,
      metadata: { user_id: 'user-42' },
      tools: [WEATHER_TOOL, TIME_TOOL],
      tool_choice: { type: 'auto' },
      messages: [{ role: 'user', content: 'use the tools for Paris' }],
    };
    const r = await post(url, body);
    assert.equal(r.status, 200, r.text);
    const sent = up.requests.at(-1).body;
    assert.equal(sent.max_tokens, 200);
    assert.deepEqual(sent.stop, ['STOP']);
    assert.equal(sent.temperature, 0.3);
    assert.equal(sent.user, 'user-42');
    assert.equal(sent.tool_choice, 'auto');
    assert.deepEqual(sent.tools[0], {
      type: 'function',
      function: { name: 'get_weather', description: 'weather for a city', parameters: WEATHER_TOOL.input_schema },
    });
    assert.equal(sent.messages[0].role, 'system');
    assert.equal(r.json.stop_reason, 'tool_use');
    const uses = r.json.content.filter((b) => b.type === 'tool_use');
    assert.deepEqual(uses.map((u) => u.name), ['get_weather', 'get_time']);
    assert.deepEqual(uses[0].input, { city: 'city-value' });
    assert.deepEqual(uses[1].input, { tz: 'tz-value' });

    // The same turn streamed: two tool_use blocks, indexes 0 and 1.
    const s = await stream(url, body);
    const msg = checkSequence(s.events);
    assert.deepEqual(msg.content.map((b) => [b.type, b.name]), [['tool_use', 'get_weather'], ['tool_use', 'get_time']]);
    assert.deepEqual(msg.content.map((b) => b.input), [{ city: 'city-value' }, { tz: 'tz-value' }]);
    assert.deepEqual(msg.content.map((b) => b.id), uses.map((u) => u.id));
    assert.equal(msg.stop_reason, 'tool_use');

    // Next turn: the assistant's tool_use blocks and the user's tool_result blocks.
    const turn2 = {
      ...body,
      messages: [
        ...body.messages,
        { role: 'assistant', content: [{ type: 'text', text: 'Let me check.' }, ...uses] },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: uses[0].id, content: 'sunny' },
            { type: 'tool_result', tool_use_id: uses[1].id, content: [{ type: 'text', text: '12:00' }] },
            { type: 'text', text: 'summarise that please' },
          ],
        },
      ],
    };
    const r2 = await post(url, turn2);
    assert.equal(r2.status, 200, r2.text);
    const sent2 = up.requests.at(-1).body;
    assert.deepEqual(sent2.messages.map((m) => m.role), ['system', 'user', 'assistant', 'tool', 'tool', 'user']);
    const a = sent2.messages[2];
    assert.equal(a.content, 'Let me check.');
    assert.deepEqual(a.tool_calls.map((t) => [t.id, t.function.name, JSON.parse(t.function.arguments)]),
      uses.map((u) => [u.id, u.name, u.input]));
    assert.deepEqual(sent2.messages[3], { role: 'tool', tool_call_id: uses[0].id, content: 'sunny' });
    assert.deepEqual(sent2.messages[4], { role: 'tool', tool_call_id: uses[1].id, content: '12:00' });
    assert.equal(r2.json.stop_reason, 'end_turn');
    assert.deepEqual(r2.json.content, [{ type: 'text', text: 'summarise that please' }]);
  });

  it('disable_parallel_tool_use and a named tool_choice reach the upstream', async () => {
    const r = await post(url, {
      model: 'openai/gpt-test',
      max_tokens: 50,
      tools: [WEATHER_TOOL, TIME_TOOL],
      tool_choice: { type: 'tool', name: 'get_time', disable_parallel_tool_use: true },
      messages: [{ role: 'user', content: 'what time is it' }],
    });
    assert.equal(r.status, 200, r.text);
    const sent = up.requests.at(-1).body;
    assert.deepEqual(sent.tool_choice, { type: 'function', function: { name: 'get_time' } });
    assert.equal(sent.parallel_tool_calls, false);
    assert.deepEqual(r.json.content.map((b) => b.name), ['get_time']);
  });

  it('ping events while waiting for the first byte, then the normal sequence', async () => {
    const s = await stream(url, { model: 'openai/slow', max_tokens: 50, messages: [{ role: 'user', content: 'late answer' }] });
    assert.equal(s.status, 200);
    const names = s.events.map((e) => e.event);
    assert.equal(names[0], 'message_start');
    assert.ok(names.indexOf('ping') > 0 && names.indexOf('ping') < names.indexOf('content_block_start'), names.join(','));
    assert.equal(s.comments.length, 0, 'no OpenRouter-style comments on the Anthropic stream');
    const msg = checkSequence(s.events);
    assert.equal(msg.content[0].text, 'late answer');
  });

  it('an upstream error after content began: event error ends the stream', async () => {
    const s = await stream(url, {
      model: 'openai/midstream',
      max_tokens: 50,
      messages: [{ role: 'user', content: 'one two three four five six' }],
    });
    assert.equal(s.status, 200);
    const names = s.events.map((e) => e.event);
    assert.equal(names[0], 'message_start');
    assert.equal(names.at(-1), 'error', names.join(','));
    assert.ok(!names.includes('message_stop'));
    const err = s.events.at(-1).data;
    assert.equal(err.type, 'error');
    assert.equal(typeof err.error.type, 'string');
    assert.ok(err.error.message.length > 0);
    assert.ok(names.includes('content_block_delta'), 'content before the failure reached the client');
  });

  it('images and documents become image_url / file parts upstream', async () => {
    const r = await post(url, {
      model: 'openai/gpt-test',
      max_tokens: 20,
      messages: [
        {
          role: 'user',
          content: [
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
            { type: 'image', source: { type: 'url', url: 'https://example.test/cat.jpg' } },
            { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: 'JVBERi0=' } },
            { type: 'text', text: 'describe these' },
          ],
        },
      ],
    });
    assert.equal(r.status, 200, r.text);
    const parts = up.requests.at(-1).body.messages[0].content;
    assert.deepEqual(parts[0], { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } });
    assert.deepEqual(parts[1], { type: 'image_url', image_url: { url: 'https://example.test/cat.jpg' } });
    assert.deepEqual(parts[2], { type: 'file', file: { filename: 'document.pdf', file_data: 'data:application/pdf;base64,JVBERi0=' } });
    assert.deepEqual(parts[3], { type: 'text', text: 'describe these' });
  });
});

describe('POST /v1/messages through the anthropic plugin (thinking round trip)', { skip: skipNoBinary, timeout: 60000 }, () => {
  let ant, gw, url;
  before(async () => {
    ant = await startAnthropicMock({ cachedTokens: 3 });
    gw = await startLlmux({
      config: buildConfig({
        providers: { ant: anthropicProvider(ant, { name: 'Anthropic Mock' }) },
        models: [model('anthropic/claude-test', [endpoint('ant', 'claude-sonnet-4-5')])],
      }),
    });
    url = `${gw.url}/v1/messages`;
  });
  after(() => shutdown(gw, ant));

  const base = {
    model: 'anthropic/claude-test',
    max_tokens: 4096,
    thinking: { type: 'enabled', budget_tokens: 2048 },
    tools: [WEATHER_TOOL],
  };

  it('thinking with signature, tool_use and cache usage survive both directions, stream and not', async () => {
    const messages = [{ role: 'user', content: 'use the tool for the weather in Paris' }];
    const r = await post(url, { ...base, messages });
    assert.equal(r.status, 200, r.text);
    const sent = ant.requests.at(-1).body;
    assert.deepEqual(sent.thinking, { type: 'enabled', budget_tokens: 2048 });
    assert.equal(sent.tools[0].name, 'get_weather');
    assert.deepEqual(sent.tools[0].input_schema, WEATHER_TOOL.input_schema);
    const m = r.json;
    assert.deepEqual(m.content.map((b) => b.type), ['thinking', 'tool_use']);
    assert.match(m.content[0].thinking, /^Thinking about: /);
    assert.match(m.content[0].signature, /^sig_/);
    assert.equal(m.content[1].name, 'get_weather');
    assert.equal(m.stop_reason, 'tool_use');
    assert.equal(m.usage.cache_read_input_tokens, 3);

    const s = await stream(url, { ...base, messages });
    assert.equal(s.status, 200);
    const sm = checkSequence(s.events);
    assert.deepEqual(sm.content.map((b) => b.type), ['thinking', 'tool_use']);
    assert.equal(sm.content[0].thinking, m.content[0].thinking);
    assert.equal(sm.content[0].signature, m.content[0].signature);
    assert.deepEqual(sm.content[1].input, m.content[1].input);
    assert.equal(sm.usage.cache_read_input_tokens, 3);
    assert.equal(sm.usage.input_tokens, m.usage.input_tokens);
    assert.equal(sm.usage.output_tokens, m.usage.output_tokens);
    const deltas = s.events.filter((e) => e.event === 'content_block_delta').map((e) => e.data.delta.type);
    assert.ok(deltas.includes('thinking_delta') && deltas.includes('signature_delta') && deltas.includes('input_json_delta'));

    // Next turn: the thinking block is replayed upstream with its signature.
    const turn2 = [
      ...messages,
      { role: 'assistant', content: m.content },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: m.content[1].id, content: 'sunny' }, { type: 'text', text: 'and now?' }] },
    ];
    const r2 = await post(url, { ...base, messages: turn2 });
    assert.equal(r2.status, 200, r2.text);
    const sent2 = ant.requests.at(-1).body;
    const asst = sent2.messages.find((x) => x.role === 'assistant');
    assert.deepEqual(asst.content[0], { type: 'thinking', thinking: m.content[0].thinking, signature: m.content[0].signature });
    assert.equal(asst.content.at(-1).type, 'tool_use');
    assert.equal(asst.content.at(-1).id, m.content[1].id);
    const lastUser = sent2.messages.at(-1);
    assert.equal(lastUser.role, 'user');
    assert.equal(lastUser.content[0].type, 'tool_result');
    assert.equal(lastUser.content[0].tool_use_id, m.content[1].id);
    assert.deepEqual(r2.json.content.map((b) => b.type), ['thinking', 'text']);
    assert.equal(r2.json.content[1].text, 'and now?');
  });
});
