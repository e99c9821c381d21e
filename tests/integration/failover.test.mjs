// Failover before the first byte: a model with two endpoints whose first one
// fails (connection refused, 500, 429, hang past timeouts.first_byte_ms)
// answers from the second; when every endpoint fails the client gets 502 (or
// the last upstream's 429 with Retry-After); a lone hanging upstream gives 408.
//
// Every test uses its own endpoints (distinct upstream model names) so that
// one test's failures cannot change another test's routing through the
// endpoint health stats. provider.order pins the attempt order.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startOpenAIMock } from '../mocks/openai.mjs';
import {
  startLlmux, shutdown, skipNoBinary, buildConfig, openaiProvider, deadProvider, model, endpoint, postJSON, postSSE, freePort,
  expectErrorShape,
} from './harness.mjs';

const FIRST_BYTE_MS = 500;

describe('failover', { skip: skipNoBinary, timeout: 60000 }, () => {
  let bad, good, gone, gw, url, deadPort;
  before(async () => {
    bad = await startOpenAIMock();
    gone = await startOpenAIMock({ reply: 'from the soon-gone upstream' });
    good = await startOpenAIMock({ reply: 'answer from the good upstream' });
    deadPort = await freePort();
    const p = (name) => openaiProvider(bad, { name });
    gw = await startLlmux({
      config: buildConfig({
        providers: {
          p500: p('Failing 500'),
          p429: p('Limited 429'),
          phang: p('Hanging'),
          pdead: deadProvider(deadPort, { name: 'Refusing' }),
          good: openaiProvider(good, { name: 'Good Upstream' }),
          gone: openaiProvider(gone, { name: 'Soon Gone' }),
        },
        models: [
          model('fo/500', [endpoint('p500', 'a@fail-500'), endpoint('good', 'g-a')]),
          model('fo/500s', [endpoint('p500', 'b@fail-500'), endpoint('good', 'g-b')]),
          model('fo/429', [endpoint('p429', 'c@fail-429'), endpoint('good', 'g-c')]),
          model('fo/dead', [endpoint('pdead', 'd'), endpoint('good', 'g-d')]),
          model('fo/hang', [endpoint('phang', 'e@hang'), endpoint('good', 'g-e')]),
          model('fo/all', [endpoint('pdead', 'f'), endpoint('p500', 'f@fail-500')]),
          model('fo/all429', [endpoint('p500', 'g@fail-500'), endpoint('p429', 'g@fail-429')]),
          model('fo/hang1', [endpoint('phang', 'h@hang')]),
          model('fo/nofb', [endpoint('p500', 'i@fail-500'), endpoint('good', 'g-i')]),
          model('fo/broken', [endpoint('p500', 'j@fail-500')]),
          model('fo/503', [endpoint('p500', 'k@fail-503')]),
          model('fo/gone', [endpoint('gone', 'gone-1'), endpoint('good', 'g-gone')]),
          model('fo/backup', [endpoint('good', 'g-j')]),
        ],
        timeouts: { connect_ms: 1000, first_byte_ms: FIRST_BYTE_MS },
      }),
    });
    url = `${gw.url}/api/v1/chat/completions`;
  });
  after(() => shutdown(gw, bad, good, gone));

  const ask = (modelId, order, extra = {}) =>
    postJSON(url, { model: modelId, messages: [{ role: 'user', content: 'hello' }], provider: { order }, ...extra });
  const seen = (mock, upstreamModel) => mock.requests.filter((r) => r.body && r.body.model === upstreamModel);

  it('HTTP 500 from the first endpoint: answered by the second', async () => {
    const r = await ask('fo/500', ['p500', 'good']);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.provider, 'Good Upstream');
    assert.equal(r.json.choices[0].message.content, 'answer from the good upstream');
    assert.equal(seen(bad, 'a@fail-500').length, 1, 'the failing endpoint was tried first');
    assert.equal(seen(good, 'g-a').length, 1);
  });

  it('HTTP 500 then a stream from the second endpoint', async () => {
    const s = await postSSE(url, {
      model: 'fo/500s',
      messages: [{ role: 'user', content: 'hello' }],
      provider: { order: ['p500', 'good'] },
      stream: true,
    });
    assert.equal(s.status, 200);
    assert.ok(s.done, '[DONE]');
    assert.equal(s.text, 'answer from the good upstream');
    assert.ok(!s.chunks.some((c) => c.error), 'no error chunk: the failure happened before the first byte');
    assert.equal(seen(bad, 'b@fail-500').length, 1);
    const withProvider = s.chunks.filter((c) => 'provider' in c);
    for (const c of withProvider) assert.equal(c.provider, 'Good Upstream');
  });

  it('HTTP 429 from the first endpoint: answered by the second', async () => {
    const r = await ask('fo/429', ['p429', 'good']);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.provider, 'Good Upstream');
    assert.equal(seen(bad, 'c@fail-429').length, 1);
  });

  it('connection refused on the first endpoint: answered by the second', async () => {
    const r = await ask('fo/dead', ['pdead', 'good']);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.provider, 'Good Upstream');
  });

  it('an upstream that went away after serving (stale pooled connection, then refused) fails over', async () => {
    const first = await ask('fo/gone', ['gone', 'good']);
    assert.equal(first.status, 200, first.text);
    assert.equal(first.json.provider, 'Soon Gone');
    await gone.setBehavior('refuse'); // closes its kept-alive sockets and stops listening
    const r = await ask('fo/gone', ['gone', 'good']);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.provider, 'Good Upstream');
    assert.equal(r.json.choices[0].message.content, 'answer from the good upstream');
  });

  it(`a hanging first endpoint is abandoned after first_byte_ms (${FIRST_BYTE_MS})`, async () => {
    const t0 = Date.now();
    const r = await ask('fo/hang', ['phang', 'good']);
    const took = Date.now() - t0;
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.provider, 'Good Upstream');
    assert.ok(took >= FIRST_BYTE_MS - 50, `waited for the timeout (${took} ms)`);
    assert.ok(took < FIRST_BYTE_MS + 4000, `but not much longer (${took} ms)`);
    const hung = seen(bad, 'e@hang');
    assert.equal(hung.length, 1);
    const closed = await Promise.race([hung[0].closed.then(() => true), new Promise((res) => setTimeout(() => res(false), 2000))]);
    assert.ok(closed, 'llmux closed the hanging upstream request');
  });

  it('every endpoint failing is 502 naming the last provider, with its raw error', async () => {
    const r = await ask('fo/all', ['pdead', 'p500']);
    const e = expectErrorShape(assert, r, 502);
    assert.ok(e.metadata, `metadata present: ${r.text}`);
    assert.equal(e.metadata.provider_name, 'Failing 500');
    const raw = typeof e.metadata.raw === 'string' ? e.metadata.raw : JSON.stringify(e.metadata.raw);
    assert.match(raw, /server had an error/, 'metadata.raw carries the upstream error body');
  });

  it('a lone upstream answering 503 (overloaded) is reported as 502', async () => {
    const r = await ask('fo/503', ['p500']);
    const e = expectErrorShape(assert, r, 502);
    assert.equal(e.metadata.provider_name, 'Failing 500');
    assert.match(JSON.stringify(e.metadata.raw), /overloaded/);
  });

  it("the last upstream's 429 is passed on with Retry-After", async () => {
    const r = await ask('fo/all429', ['p500', 'p429']);
    expectErrorShape(assert, r, 429);
    const ra = r.headers.get('retry-after');
    assert.ok(ra !== null, 'Retry-After header present');
    assert.ok(Number(ra) >= 1, `Retry-After is a positive number of seconds: ${ra}`);
    assert.equal(seen(bad, 'g@fail-500').length, 1);
    assert.equal(seen(bad, 'g@fail-429').length, 1);
  });

  it('a lone hanging upstream gives 408 after first_byte_ms', async () => {
    const t0 = Date.now();
    const r = await ask('fo/hang1', ['phang']);
    const took = Date.now() - t0;
    expectErrorShape(assert, r, 408);
    assert.ok(took >= FIRST_BYTE_MS - 50 && took < FIRST_BYTE_MS + 4000, `took ${took} ms`);
  });

  it('a lone hanging upstream on a stream request also gives 408 (nothing was sent yet)', async () => {
    const s = await postSSE(url, {
      model: 'fo/hang1',
      messages: [{ role: 'user', content: 'hello' }],
      stream: true,
    });
    if (s.status === 200) {
      // The server committed to a 200 stream (e.g. keep-alive comments): the
      // failure must then be an error chunk followed by [DONE].
      assert.equal(s.status, 200);
      const errChunk = s.chunks.find((c) => c.error);
      assert.ok(errChunk, 'error chunk');
      assert.ok(s.done);
    } else {
      expectErrorShape(assert, { status: s.status, text: s.text, json: s.json }, 408);
    }
  });

  it('the `models` fallback list is tried in order when the first model fails', async () => {
    const r = await postJSON(url, { model: 'fo/broken', models: ['fo/broken', 'fo/backup'], messages: [{ role: 'user', content: 'hello' }] });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.model, 'fo/backup', 'the response names the model that answered');
    assert.equal(r.json.provider, 'Good Upstream');
    assert.equal(seen(bad, 'j@fail-500').length, 1, 'the first model was tried');
    assert.equal(seen(good, 'g-j').length, 1);
  });

  it('allow_fallbacks: false tries only the providers in provider.order', async () => {
    const before = seen(good, 'g-i').length;
    const r = await ask('fo/nofb', ['p500'], { provider: { order: ['p500'], allow_fallbacks: false } });
    assert.notEqual(r.status, 200, r.text);
    assert.ok(r.json && r.json.error, r.text);
    assert.equal(seen(good, 'g-i').length, before, 'the endpoint outside provider.order was not tried');
    assert.equal(seen(bad, 'i@fail-500').length, 1);
  });
});
