// Client errors: {"error":{"code","message","metadata"}} with the right status
// for bad JSON, bad fields, unknown models and the configured size limits.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startOpenAIMock } from '../mocks/openai.mjs';
import {
  startLlmux, shutdown, skipNoBinary, buildConfig, openaiProvider, model, endpoint, postJSON, rawHttp, expectErrorShape, tryJSON,
} from './harness.mjs';

const MAX_BODY = 2048;
const MAX_HEADER = 4096;

describe('client errors', { skip: skipNoBinary, timeout: 60000 }, () => {
  let up, gw, url;
  before(async () => {
    up = await startOpenAIMock();
    gw = await startLlmux({
      config: buildConfig({
        providers: { oa: openaiProvider(up) },
        models: [model('test/echo', [endpoint('oa', 'gpt-4o')])],
        limits: { max_body_bytes: MAX_BODY, max_header_bytes: MAX_HEADER },
      }),
    });
    url = `${gw.url}/api/v1/chat/completions`;
  });
  after(() => shutdown(gw, up));

  const hello = [{ role: 'user', content: 'hi' }];

  it('invalid JSON is 400', async () => {
    const r = await postJSON(url, '{"model": "test/echo", "messages": [');
    expectErrorShape(assert, r, 400);
    assert.match(r.headers.get('content-type') || '', /^application\/json/);
  });

  it('a body that is not a JSON object is 400', async () => {
    expectErrorShape(assert, await postJSON(url, '[1,2,3]'), 400);
  });

  it('invalid UTF-8 inside a JSON string is 400', async () => {
    const body = Buffer.concat([Buffer.from('{"model":"test/echo","messages":[{"role":"user","content":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}]}')]);
    const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const text = await r.text();
    expectErrorShape(assert, { status: r.status, text, json: tryJSON(text) }, 400);
  });

  it('missing messages is 400', async () => {
    const e = expectErrorShape(assert, await postJSON(url, { model: 'test/echo' }), 400);
    assert.match(e.message, /messages/i, 'the message names the field');
  });

  it('empty messages is 400', async () => {
    expectErrorShape(assert, await postJSON(url, { model: 'test/echo', messages: [] }), 400);
  });

  it('messages that is not an array is 400', async () => {
    expectErrorShape(assert, await postJSON(url, { model: 'test/echo', messages: 'hi' }), 400);
  });

  it('a message with an unknown role is 400', async () => {
    expectErrorShape(assert, await postJSON(url, { model: 'test/echo', messages: [{ role: 'wizard', content: 'x' }] }), 400);
  });

  it('missing model is 400', async () => {
    expectErrorShape(assert, await postJSON(url, { messages: hello }), 400);
  });

  it('unknown model is 404', async () => {
    const e = expectErrorShape(assert, await postJSON(url, { model: 'nobody/nothing', messages: hello }), 404);
    assert.ok(e.metadata === undefined || typeof e.metadata === 'object');
  });

  it('none of those reached the upstream', () => {
    assert.equal(up.requests.length, 0);
  });

  it(`a body over limits.max_body_bytes (${MAX_BODY}) is 413`, async () => {
    const body = JSON.stringify({ model: 'test/echo', messages: [{ role: 'user', content: 'x'.repeat(MAX_BODY * 2) }] });
    const r = await rawHttp(
      gw.port,
      `POST /api/v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
    expectErrorShape(assert, r, 413);
  });

  it('a chunked body that grows over the limit is 413', async () => {
    const piece = 'x'.repeat(1000);
    const chunk = `${piece.length.toString(16)}\r\n${piece}\r\n`;
    const head = 'POST /api/v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n';
    const r = await rawHttp(gw.port, [head, chunk, 20, chunk, 20, chunk, 20, chunk, '0\r\n\r\n']);
    expectErrorShape(assert, r, 413);
  });

  it(`headers over limits.max_header_bytes (${MAX_HEADER}) are 431`, async () => {
    const r = await rawHttp(
      gw.port,
      `GET /api/v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(MAX_HEADER * 2)}\r\nConnection: close\r\n\r\n`,
    );
    assert.equal(r.status, 431, r.raw.slice(0, 300));
  });

  it('the server still answers after the errors', async () => {
    const r = await postJSON(url, { model: 'test/echo', messages: hello });
    assert.equal(r.status, 200, r.text);
  });
});
