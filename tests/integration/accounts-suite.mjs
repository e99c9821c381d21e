// The accounts suite (keys, limits, records, routes, BYOK), run against
// SQLite by accounts.test.mjs and against PostgreSQL + Redis by
// accounts-pg.test.mjs. storage: the Lua `storage` value; redis: "host:port" or undefined.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startOpenAIMock, promptTokensFor } from '../mocks/openai.mjs';
import {
  startLlmux, shutdown, buildConfig, openaiProvider, model, endpoint, sleep, expectErrorShape, close2, readSSE,
} from './harness.mjs';

export const MGMT = 'mgmt-test-secret';
export const PRICING = { prompt: 0.000001, completion: 0.000002, request: 0 };
export const BYOK_KEY = 'ab'.repeat(32);
const cost = (p, c) => p * PRICING.prompt + c * PRICING.completion;

export function accountsConfig(up, { storage, redis, extra = {} }) {
  return buildConfig({
    auth: 'keys',
    storage,
    redis,
    management_key: MGMT,
    byok: { encryption_key_env: 'LLMUX_TEST_BYOK', fee: 0.1 },
    providers: { oa: openaiProvider(up, { name: 'OpenAI Mock' }) },
    models: [
      model('acct/gpt', [endpoint('oa', 'gpt-4o', { pricing: PRICING, max_completion_tokens: 1000 })]),
      model('acct/slow', [endpoint('oa', 'gpt-4o@slow-60', { pricing: PRICING, max_completion_tokens: 1000 })]),
    ],
    ...extra,
  });
}

/** HTTP helper: {status, headers, json, text}. */
export async function call(url, path, { method = 'GET', key, body, signal } = {}) {
  const headers = { 'content-type': 'application/json' };
  if (key) headers.authorization = `Bearer ${key}`;
  const r = await fetch(`${url}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    signal: signal ?? AbortSignal.timeout(15000),
  });
  const text = await r.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: r.status, headers: r.headers, json, text };
}

export async function createKey(url, body) {
  const r = await call(url, '/api/v1/keys', { method: 'POST', key: MGMT, body });
  assert.equal(r.status, 201, r.text);
  assert.match(r.json.key, /^sk-llmux-v1-[0-9a-f]{64}$/);
  assert.match(r.json.data.hash, /^[0-9a-f]{64}$/);
  return { key: r.json.key, hash: r.json.data.hash, data: r.json.data };
}

export const chatBody = (extra = {}) => ({ model: 'acct/gpt', messages: [{ role: 'user', content: 'one two three four' }], ...extra });

/** GET /generation until the record is there (non-durable writes commit within ms). */
export async function generation(url, id, key = MGMT) {
  for (let i = 0; i < 100; i++) {
    const r = await call(url, `/api/v1/generation?id=${encodeURIComponent(id)}`, { key });
    if (r.status !== 404) return r;
    await sleep(20);
  }
  return call(url, `/api/v1/generation?id=${encodeURIComponent(id)}`, { key });
}

export function accountsSuite(name, { storage, redis, skip }) {
  describe(name, { skip, timeout: 60000 }, () => {
    let up, gw, url;
    before(async () => {
      if (skip) return;
      up = await startOpenAIMock();
      gw = await startLlmux({ config: accountsConfig(up, { storage, redis }), env: { LLMUX_TEST_BYOK: BYOK_KEY } });
      url = gw.url;
    });
    after(async () => {
      await shutdown(gw, up);
    });

    it('401: missing, invalid, disabled and expired keys (OpenRouter error shape)', async () => {
      expectErrorShape(assert, await call(url, '/api/v1/chat/completions', { method: 'POST', body: chatBody() }), 401);
      expectErrorShape(assert, await call(url, '/v1/chat/completions', { method: 'POST', key: 'sk-llmux-v1-nope', body: chatBody() }), 401);
      const dis = await createKey(url, { name: 'disabled', disabled: true });
      expectErrorShape(assert, await call(url, '/api/v1/chat/completions', { method: 'POST', key: dis.key, body: chatBody() }), 401);
      const exp = await createKey(url, { name: 'expired', expires_at: '2001-01-01T00:00:00Z' });
      const e = expectErrorShape(assert, await call(url, '/api/v1/chat/completions', { method: 'POST', key: exp.key, body: chatBody() }), 401);
      assert.match(e.message, /expired/);
      // auth comes before validation: an unauthenticated caller learns nothing about models
      expectErrorShape(assert, await call(url, '/api/v1/chat/completions', { method: 'POST', body: { model: 'nope/nope' } }), 401);
    });

    it('key management needs the management key; the key is shown once, stored hashed', async () => {
      const plain = await createKey(url, { name: 'mgmt-only' });
      expectErrorShape(assert, await call(url, '/api/v1/keys', { key: plain.key }), 401);
      expectErrorShape(assert, await call(url, '/api/v1/keys'), 401);
      const list = await call(url, '/api/v1/keys', { key: MGMT });
      assert.equal(list.status, 200);
      const item = list.json.data.find((k) => k.hash === plain.hash);
      assert.ok(item, 'the new key is listed');
      assert.equal(item.key, undefined, 'the key itself is never listed');
      assert.ok(!list.text.includes(plain.key), 'no secret in the listing');
      const one = await call(url, `/v1/keys/${plain.hash}`, { key: MGMT });
      assert.equal(one.status, 200);
      assert.equal(one.json.data.name, 'mgmt-only');
      const patched = await call(url, `/api/v1/keys/${plain.hash}`, { method: 'PATCH', key: MGMT, body: { name: 'renamed', limit: 2.5, disabled: true } });
      assert.equal(patched.status, 200, patched.text);
      assert.equal(patched.json.data.name, 'renamed');
      assert.equal(patched.json.data.limit, 2.5);
      assert.equal(patched.json.data.disabled, true);
      expectErrorShape(assert, await call(url, '/api/v1/chat/completions', { method: 'POST', key: plain.key, body: chatBody() }), 401);
      await call(url, `/api/v1/keys/${plain.hash}`, { method: 'PATCH', key: MGMT, body: { disabled: false } });
      assert.equal((await call(url, '/api/v1/chat/completions', { method: 'POST', key: plain.key, body: chatBody() })).status, 200);
      expectErrorShape(assert, await call(url, '/api/v1/keys', { method: 'POST', key: MGMT, body: { limit: 'x' } }), 400);
      const del = await call(url, `/api/v1/keys/${plain.hash}`, { method: 'DELETE', key: MGMT });
      assert.equal(del.status, 200);
      expectErrorShape(assert, await call(url, `/api/v1/keys/${plain.hash}`, { key: MGMT }), 404);
      expectErrorShape(assert, await call(url, '/api/v1/chat/completions', { method: 'POST', key: plain.key, body: chatBody() }), 401);
    });

    it('a completion is recorded with tokens and cost; /key, /credits and /activity add up', async () => {
      const k = await createKey(url, { name: 'usage', limit: 1 });
      const body = chatBody();
      const r = await call(url, '/api/v1/chat/completions', { method: 'POST', key: k.key, body });
      assert.equal(r.status, 200, r.text);
      const p = promptTokensFor(body);
      const c = r.json.usage.completion_tokens;
      assert.equal(r.json.usage.prompt_tokens, p);
      assert.ok(close2(r.json.usage.cost, cost(p, c)), `cost ${r.json.usage.cost}`);
      const g = await generation(url, r.json.id, k.key);
      assert.equal(g.status, 200, g.text);
      const d = g.json.data;
      assert.equal(d.id, r.json.id);
      assert.equal(d.model, 'acct/gpt');
      assert.equal(d.provider_name, 'OpenAI Mock');
      assert.equal(d.streamed, false);
      assert.equal(d.cancelled, false);
      assert.equal(d.tokens_prompt, p);
      assert.equal(d.tokens_completion, c);
      assert.equal(d.finish_reason, 'stop');
      assert.equal(d.is_byok, false);
      assert.ok(close2(d.total_cost, cost(p, c)));
      assert.ok(d.latency >= 0 && typeof d.upstream_id === 'string');
      // another key cannot read it
      const other = await createKey(url, { name: 'other' });
      expectErrorShape(assert, await call(url, `/api/v1/generation?id=${r.json.id}`, { key: other.key }), 404);
      const kk = await call(url, '/api/v1/key', { key: k.key });
      assert.equal(kk.status, 200);
      assert.ok(close2(kk.json.data.usage, cost(p, c)), `usage ${kk.json.data.usage}`);
      assert.equal(kk.json.data.limit, 1);
      assert.ok(close2(kk.json.data.limit_remaining, 1 - cost(p, c)));
      const cr = await call(url, '/api/v1/credits', { key: k.key });
      assert.equal(cr.json.data.total_credits, 1);
      assert.ok(close2(cr.json.data.total_usage, cost(p, c)));
      const act = await call(url, '/api/v1/activity', { key: k.key });
      assert.equal(act.status, 200, act.text);
      assert.equal(act.json.data.length, 1);
      assert.equal(act.json.data[0].requests, 1);
      assert.equal(act.json.data[0].model, 'acct/gpt');
      assert.equal(act.json.data[0].provider_name, 'OpenAI Mock');
      assert.equal(act.json.data[0].prompt_tokens, p);
      assert.ok(close2(act.json.data[0].usage, cost(p, c)));
    });

    it('a streamed generation is recorded with the streamed usage', async () => {
      const k = await createKey(url, { name: 'stream' });
      const body = chatBody({ stream: true, stream_options: { include_usage: true } });
      const r = await fetch(`${url}/api/v1/chat/completions`, {
        method: 'POST', headers: { authorization: `Bearer ${k.key}`, 'content-type': 'application/json' }, body: JSON.stringify(body),
      });
      const sse = await readSSE(r.body);
      assert.ok(sse.done);
      const last = sse.chunks.at(-1);
      const g = await generation(url, last.id, k.key);
      assert.equal(g.status, 200, g.text);
      assert.equal(g.json.data.streamed, true);
      assert.equal(g.json.data.cancelled, false);
      assert.equal(g.json.data.tokens_prompt, last.usage.prompt_tokens);
      assert.equal(g.json.data.tokens_completion, last.usage.completion_tokens);
      assert.ok(close2(g.json.data.total_cost, last.usage.cost));
    });

    it('a cancelled stream is recorded with what was generated before the cancel', async () => {
      const k = await createKey(url, { name: 'cancel' });
      const words = Array.from({ length: 60 }, (_, i) => `w${i}`).join(' ');
      const body = { model: 'acct/slow', stream: true, messages: [{ role: 'user', content: words }] };
      const ac = new AbortController();
      const r = await fetch(`${url}/api/v1/chat/completions`, {
        method: 'POST', headers: { authorization: `Bearer ${k.key}`, 'content-type': 'application/json' }, body: JSON.stringify(body), signal: ac.signal,
      });
      let id, text = '';
      const reader = r.body.getReader();
      const dec = new TextDecoder();
      while (text.split('"content"').length < 6) {
        const { value, done } = await reader.read();
        if (done) break;
        text += dec.decode(value);
        const m = /"id":"(gen-[^"]+)"/.exec(text);
        if (m) id = m[1];
      }
      ac.abort();
      assert.ok(id, 'saw the generation id');
      let g;
      for (let i = 0; i < 100; i++) {
        g = await call(url, `/api/v1/generation?id=${id}`, { key: k.key });
        if (g.status === 200) break;
        await sleep(20);
      }
      assert.equal(g.status, 200, g.text);
      const d = g.json.data;
      assert.equal(d.cancelled, true);
      assert.equal(d.streamed, true);
      assert.ok(d.tokens_completion > 0 && d.tokens_completion < 60, `completion tokens ${d.tokens_completion}`);
      assert.ok(close2(d.total_cost, cost(d.tokens_prompt, d.tokens_completion)), `cost ${d.total_cost}`);
      const kk = await call(url, '/api/v1/key', { key: k.key });
      assert.ok(close2(kk.json.data.usage, d.total_cost), 'the key paid for the cancelled stream');
    });

    it('402 before the call when max_tokens could exceed what is left', async () => {
      const k = await createKey(url, { name: 'poor', limit: 0.001 });
      const before = up.requests.length;
      // 1000 completion tokens at $0.000002 = $0.002 > $0.001
      const e = expectErrorShape(assert, await call(url, '/api/v1/chat/completions', { method: 'POST', key: k.key, body: chatBody({ max_tokens: 1000 }) }), 402);
      assert.match(e.message, /credits/i);
      assert.equal(up.requests.length, before, 'the upstream was not called');
      // without max_tokens the endpoint's max_completion_tokens (1000) is the worst case
      expectErrorShape(assert, await call(url, '/api/v1/chat/completions', { method: 'POST', key: k.key, body: chatBody() }), 402);
      const ok = await call(url, '/api/v1/chat/completions', { method: 'POST', key: k.key, body: chatBody({ max_tokens: 100 }) });
      assert.equal(ok.status, 200, ok.text);
    });

    it('429 with Retry-After and X-RateLimit-* once the key rate is used up', async () => {
      const k = await createKey(url, { name: 'rate', rate_limit: { requests: 3, interval_s: 60 } });
      const codes = [];
      let refused;
      for (let i = 0; i < 5; i++) {
        const r = await call(url, '/api/v1/chat/completions', { method: 'POST', key: k.key, body: chatBody() });
        codes.push(r.status);
        if (r.status === 429) refused = r;
      }
      assert.deepEqual(codes, [200, 200, 200, 429, 429]);
      expectErrorShape(assert, refused, 429);
      assert.ok(Number(refused.headers.get('retry-after')) >= 1);
      assert.equal(refused.headers.get('x-ratelimit-limit'), '3');
      assert.equal(refused.headers.get('x-ratelimit-remaining'), '0');
      assert.ok(Number(refused.headers.get('x-ratelimit-reset')) > Date.now() - 1000);
    });

    it('BYOK: the key\'s own provider key is used, is_byok is reported and the fee charged', async () => {
      const k = await createKey(url, { name: 'byok', byok: { oa: 'sk-user-own-key' } });
      assert.deepEqual(k.data.byok_providers, ['oa']);
      assert.ok(!JSON.stringify(k.data).includes('sk-user-own-key'));
      const r = await call(url, '/api/v1/chat/completions', { method: 'POST', key: k.key, body: chatBody() });
      assert.equal(r.status, 200, r.text);
      assert.equal(up.requests.at(-1).headers.authorization, 'Bearer sk-user-own-key');
      assert.equal(r.json.usage.is_byok, true);
      const full = cost(r.json.usage.prompt_tokens, r.json.usage.completion_tokens);
      assert.ok(close2(r.json.usage.cost, full * 0.1), `fee ${r.json.usage.cost} vs ${full * 0.1}`);
      const g = await generation(url, r.json.id, k.key);
      assert.equal(g.json.data.is_byok, true);
      // a key without BYOK uses the operator's key
      const plain = await createKey(url, { name: 'nobyok' });
      await call(url, '/api/v1/chat/completions', { method: 'POST', key: plain.key, body: chatBody() });
      assert.equal(up.requests.at(-1).headers.authorization, 'Bearer sk-test-openai');
    });
  });
}
