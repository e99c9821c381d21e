// llmux with no --config serves the embedded default: the mock plugin's
// mock/echo and mock/lorem models, no network needed.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startLlmux, shutdown, skipNoBinary, getJSON, postJSON, postSSE, assembleToolCalls } from './harness.mjs';

describe('embedded default config (mock plugin)', { skip: skipNoBinary, timeout: 60000 }, () => {
  let gw, url;
  before(async () => {
    gw = await startLlmux({});
    url = `${gw.url}/api/v1/chat/completions`;
  });
  after(() => shutdown(gw));

  it('lists mock/echo and mock/lorem', async () => {
    const r = await getJSON(`${gw.url}/api/v1/models`);
    assert.equal(r.status, 200, r.text);
    const ids = r.json.data.map((m) => m.id);
    assert.ok(ids.includes('mock/echo'), ids.join(','));
    assert.ok(ids.includes('mock/lorem'), ids.join(','));
  });

  it('mock/echo echoes the last user message (non-stream)', async () => {
    const r = await postJSON(url, {
      model: 'mock/echo',
      messages: [
        { role: 'user', content: 'first' },
        { role: 'assistant', content: 'ok' },
        { role: 'user', content: 'echo "this" back, please ✓' },
      ],
    });
    assert.equal(r.status, 200, r.text);
    assert.match(r.json.id, /^gen-/);
    assert.equal(r.json.object, 'chat.completion');
    assert.equal(r.json.model, 'mock/echo');
    assert.equal(r.json.provider, 'Mock');
    assert.equal(r.json.choices[0].message.role, 'assistant');
    assert.equal(r.json.choices[0].message.content, 'echo "this" back, please ✓');
    assert.equal(r.json.choices[0].finish_reason, 'stop');
    const u = r.json.usage;
    assert.ok(u.prompt_tokens > 0 && u.completion_tokens > 0, JSON.stringify(u));
    assert.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens);
    const expected = u.prompt_tokens * 0.0000005 + u.completion_tokens * 0.0000015;
    assert.ok(Math.abs(u.cost - expected) < 1e-12, `cost ${u.cost} = prompt*0.0000005 + completion*0.0000015 (${expected})`);
  });

  it('mock/echo echoes the last user message (stream)', async () => {
    const s = await postSSE(url, { model: 'mock/echo', messages: [{ role: 'user', content: 'stream me back' }], stream: true });
    assert.equal(s.status, 200);
    assert.match(s.headers.get('content-type'), /^text\/event-stream/);
    assert.equal(s.text, 'stream me back');
    assert.ok(s.done, '[DONE]');
    assert.equal(s.chunks[0].choices[0].delta.role, 'assistant');
    const last = s.chunks.at(-1);
    assert.deepEqual(last.choices, []);
    assert.ok(last.usage && typeof last.usage.cost === 'number', 'usage with cost last');
  });

  it('mock/echo with array content parts echoes the text parts', async () => {
    const r = await postJSON(url, {
      model: 'mock/echo',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'parts' }, { type: 'text', text: 'work' }] }],
    });
    assert.equal(r.status, 200, r.text);
    assert.match(r.json.choices[0].message.content, /parts\s*work/);
  });

  it('mock/echo answers with a tool call when asked about the weather', async () => {
    const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { location: { type: 'string' } } } } }];
    const r = await postJSON(url, { model: 'mock/echo', messages: [{ role: 'user', content: 'what is the weather in Paris?' }], tools });
    assert.equal(r.status, 200, r.text);
    const c = r.json.choices[0];
    assert.equal(c.finish_reason, 'tool_calls');
    assert.equal(c.message.tool_calls[0].function.name, 'get_weather');
    assert.deepEqual(JSON.parse(c.message.tool_calls[0].function.arguments), { location: 'Paris' });
    const s = await postSSE(url, { model: 'mock/echo', messages: [{ role: 'user', content: 'weather in Paris?' }], tools, stream: true });
    const calls = assembleToolCalls(s.chunks);
    assert.equal(calls.length, 1);
    assert.equal(calls[0].name, 'get_weather');
    assert.deepEqual(JSON.parse(calls[0].arguments), { location: 'Paris' });
  });

  it('mock/lorem streams words over time', async () => {
    const t0 = Date.now();
    const s = await postSSE(url, { model: 'mock/lorem', messages: [{ role: 'user', content: 'go' }], stream: true, max_tokens: 12 });
    const took = Date.now() - t0;
    assert.equal(s.status, 200);
    assert.ok(s.done);
    assert.match(s.text, /^Lorem ipsum dolor/);
    assert.equal(s.text.trim().split(/\s+/).length, 12, s.text);
    const contentChunks = s.chunks.filter((c) => c.choices && c.choices[0] && c.choices[0].delta && c.choices[0].delta.content);
    assert.ok(contentChunks.length >= 6, `streamed in pieces (${contentChunks.length} content chunks)`);
    assert.ok(took >= 150, `paced by delay_ms=20 (${took} ms)`);
    const fin = s.chunks.find((c) => c.choices && c.choices.some((ch) => ch.finish_reason));
    assert.equal(fin.choices[0].finish_reason, 'length', 'cut by max_tokens');
    assert.equal(s.chunks.at(-1).usage.completion_tokens, 12);
  });

  it('mock/lorem non-stream assembles the same text', async () => {
    const r = await postJSON(url, { model: 'mock/lorem', messages: [{ role: 'user', content: 'go' }], max_tokens: 5 });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices[0].message.content.trim().split(/\s+/).length, 5);
    assert.match(r.json.choices[0].message.content, /^Lorem ipsum/);
  });
});
