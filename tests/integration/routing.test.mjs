// Routing end to end (scripts/default.lua with default balancing, no
// provider.order): the cheapest endpoint of each model fails in its own way
// (500, connection refused, 429 with Retry-After, first-byte timeout); the
// client gets the answer of the next endpoint and `provider` names it; the
// next request skips the failed/parked endpoint. Also: capability 404s,
// :online, and :thinking turning reasoning on in the upstream request.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startOpenAIMock } from '../mocks/openai.mjs';
import {
  startLlmux, skipNoBinary, buildConfig, openaiProvider, deadProvider, model, endpoint, postJSON, freePort,
  expectErrorShape,
} from './harness.mjs';

const FIRST_BYTE_MS = 400;
// The failing endpoint is 100x cheaper: 1/price^2 makes it the first choice
// 9999 times in 10000, so the first request (nearly) always tries it.
const CHEAP = { prompt: 1e-8, completion: 1e-8, request: 0 };
const DEAR = { prompt: 1e-6, completion: 1e-6, request: 0 };

describe('routing', { skip: skipNoBinary, timeout: 60000 }, () => {
  let bad, good, gw, url, deadPort;
  before(async () => {
    bad = await startOpenAIMock({ retryAfter: '2' });
    good = await startOpenAIMock({ reply: 'answer from the good upstream' });
    deadPort = await freePort();
    const p = (name) => openaiProvider(bad, { name });
    const pair = (id, badProv, badModel, goodModel) =>
      model(id, [endpoint(badProv, badModel, { pricing: CHEAP }), endpoint('good', goodModel, { pricing: DEAR })]);
    gw = await startLlmux({
      workers: 1, // one worker: the health the next request sees is this one's
      config: buildConfig({
        providers: {
          p500: p('Failing 500'),
          p429: p('Limited 429'),
          phang: p('Hanging'),
          pdead: deadProvider(deadPort, { name: 'Refusing' }),
          good: openaiProvider(good, { name: 'Good Upstream' }),
        },
        models: [
          pair('rt/500', 'p500', 'a@fail-500', 'g-a'),
          pair('rt/dead', 'pdead', 'b', 'g-b'),
          pair('rt/429', 'p429', 'c@fail-429', 'g-c'),
          pair('rt/hang', 'phang', 'd@hang', 'g-d'),
          model('rt/notools', [endpoint('good', 'g-e', { supported_parameters: ['temperature', 'max_tokens'] })]),
          model('rt/think', [endpoint('good', 'g-f', { supported_parameters: ['temperature', 'reasoning'] })]),
        ],
        timeouts: { connect_ms: 1000, first_byte_ms: FIRST_BYTE_MS },
      }),
    });
    url = `${gw.url}/api/v1/chat/completions`;
  });
  after(async () => {
    await gw?.stop();
    await bad?.close();
    await good?.close();
  });

  // Each request its own conversation: prompt-cache stickiness (same prefix ->
  // the endpoint that answered it) must not be what keeps a failed endpoint away.
  let turn = 0;
  const ask = (modelId, extra = {}) =>
    postJSON(url, { model: modelId, messages: [{ role: 'user', content: `hello ${++turn}` }], ...extra });
  const seen = (mock, upstreamModel) => mock.requests.filter((r) => r.body && r.body.model === upstreamModel);

  for (const [id, badModel, goodModel, what] of [
    ['rt/500', 'a@fail-500', 'g-a', 'HTTP 500'],
    ['rt/429', 'c@fail-429', 'g-c', 'HTTP 429 with Retry-After'],
    ['rt/hang', 'd@hang', 'g-d', `no first byte within ${FIRST_BYTE_MS} ms`],
  ]) {
    it(`${what}: the next endpoint answers, and the next request skips the failed one`, async () => {
      const r = await ask(id);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.provider, 'Good Upstream');
      assert.match(r.json.choices[0].message.content, /answer from the good upstream/);
      const tried = seen(bad, badModel).length;
      assert.ok(tried <= 1);
      const again = await ask(id);
      assert.equal(again.status, 200, again.text);
      assert.equal(again.json.provider, 'Good Upstream');
      assert.equal(seen(bad, badModel).length, tried, 'the failed endpoint was not tried again');
      assert.equal(seen(good, goodModel).length, 2);
    });
  }

  it('connection refused: the next endpoint answers, then the refusing one is skipped', async () => {
    const t0 = Date.now();
    const r = await ask('rt/dead');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.provider, 'Good Upstream');
    const again = await ask('rt/dead');
    assert.equal(again.json.provider, 'Good Upstream');
    assert.equal(seen(good, 'g-b').length, 2);
    assert.ok(Date.now() - t0 < 5000);
  });

  it('a parked endpoint (429, Retry-After: 2) is skipped even with the failure window disabled', async () => {
    // fresh gateway whose failure window is 0 s: only the parking keeps it away
    const gw2 = await startLlmux({
      workers: 1,
      config: buildConfig({
        providers: { p429: openaiProvider(bad, { name: 'Limited 429' }), good: openaiProvider(good, { name: 'Good Upstream' }) },
        models: [model('rt/park', [endpoint('p429', 'p@fail-429', { pricing: CHEAP }), endpoint('good', 'g-p', { pricing: DEAR })])],
        routing: { failure_window_s: 0 },
      }),
    });
    try {
      const u = `${gw2.url}/api/v1/chat/completions`;
      const body = (content) => ({ model: 'rt/park', messages: [{ role: 'user', content }] });
      const r = await postJSON(u, body('one'));
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.provider, 'Good Upstream');
      const n = seen(bad, 'p@fail-429').length;
      assert.equal(n, 1);
      const r2 = await postJSON(u, body('two'));
      assert.equal(r2.json.provider, 'Good Upstream');
      assert.equal(seen(bad, 'p@fail-429').length, 1, 'parked: not contacted');
      await new Promise((res) => setTimeout(res, 2300));
      await postJSON(u, body('three'));
      assert.equal(seen(bad, 'p@fail-429').length, 2, 'tried again once Retry-After has passed');
      // the same conversation as a request that succeeded sticks to its endpoint
      const before = seen(good, 'g-p').length;
      const r4 = await postJSON(u, body('two'));
      assert.equal(r4.json.provider, 'Good Upstream');
      assert.equal(seen(good, 'g-p').length, before + 1);
      assert.equal(seen(bad, 'p@fail-429').length, 2, 'prompt-cache stickiness: not the cheaper endpoint');
    } finally {
      await gw2.stop();
    }
  });

  it('tools on a model whose endpoints cannot call tools: 404 naming what is missing', async () => {
    const r = await ask('rt/notools', {
      tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: {} } } }],
    });
    const e = expectErrorShape(assert, r, 404);
    assert.match(e.message, /no endpoint of rt\/notools supports tools/);
  });

  it('a prompt longer than every context: 404', async () => {
    const r = await ask('rt/notools', { max_tokens: 100000 });
    const e = expectErrorShape(assert, r, 404);
    assert.match(e.message, /context/);
  });

  it(':online without a search backend is a clear 400', async () => {
    const r = await ask('rt/think:online');
    const e = expectErrorShape(assert, r, 400);
    assert.match(e.message, /web search/);
  });

  it(':thinking sends reasoning to the upstream', async () => {
    const r = await ask('rt/think:thinking');
    assert.equal(r.status, 200, r.text);
    const sent = seen(good, 'g-f');
    assert.equal(sent.length, 1);
    assert.deepEqual(sent[0].body.reasoning, { enabled: true });
    assert.match(sent[0].body.messages[0].content, /^hello/);
  });
});
