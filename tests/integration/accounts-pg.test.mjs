// The accounts suite against PostgreSQL and Redis, and two llmux instances
// sharing them. Needs LLMUX_TEST_PG (libpq conninfo) and LLMUX_TEST_REDIS
// (host:port), which .ci/run sets after starting both on 127.0.0.1; skipped
// with a message otherwise.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startOpenAIMock } from '../mocks/openai.mjs';
import { startLlmux, shutdown, skipNoBinary, sleep, expectErrorShape } from './harness.mjs';
import { accountsSuite, accountsConfig, call, createKey, chatBody, BYOK_KEY } from './accounts-suite.mjs';

const PG = process.env.LLMUX_TEST_PG;
const REDIS = process.env.LLMUX_TEST_REDIS;

function reachable(hostport) {
  return new Promise((resolve) => {
    const i = hostport.lastIndexOf(':');
    const s = net.connect(Number(hostport.slice(i + 1)), hostport.slice(0, i));
    const done = (ok) => { s.destroy(); resolve(ok); };
    s.setTimeout(1000, () => done(false));
    s.on('connect', () => done(true));
    s.on('error', () => done(false));
  });
}
const pgHostPort = () => {
  const h = /host=(\S+)/.exec(PG || '')?.[1] || '127.0.0.1';
  const p = /port=(\d+)/.exec(PG || '')?.[1] || '5432';
  return `${h}:${p}`;
};

let skip = skipNoBinary;
if (!skip && (!PG || !REDIS)) skip = 'LLMUX_TEST_PG / LLMUX_TEST_REDIS not set (.ci/run starts PostgreSQL and Redis and sets them)';
if (!skip && !(await reachable(pgHostPort()))) skip = `PostgreSQL not reachable at ${pgHostPort()}`;
if (!skip && !(await reachable(REDIS))) skip = `Redis not reachable at ${REDIS}`;

accountsSuite('accounts (PostgreSQL, Redis rate limits)', { storage: { postgres: PG }, redis: REDIS, skip });

describe('two instances sharing PostgreSQL and Redis', { skip, timeout: 60000 }, () => {
  let up, a, b;
  before(async () => {
    up = await startOpenAIMock();
    const config = accountsConfig(up, { storage: { postgres: PG }, redis: REDIS });
    a = await startLlmux({ config, env: { LLMUX_TEST_BYOK: BYOK_KEY } });
    b = await startLlmux({ config, env: { LLMUX_TEST_BYOK: BYOK_KEY } });
  });
  after(async () => {
    await shutdown(a, b, up);
  });

  async function seenBy(gw, key) {
    for (let i = 0; i < 100; i++) {
      if ((await call(gw.url, '/api/v1/key', { key })).status === 200) return;
      await sleep(50);
    }
    assert.fail('the other instance never saw the new key');
  }

  it('enforce one key\'s rate limit together (Redis window)', async () => {
    const k = await createKey(a.url, { name: 'shared-rate', rate_limit: { requests: 4, interval_s: 60 } });
    await seenBy(b, k.key);
    const codes = [];
    for (let i = 0; i < 8; i++) {
      const gw = i % 2 ? b : a;
      codes.push((await call(gw.url, '/api/v1/chat/completions', { method: 'POST', key: k.key, body: chatBody() })).status);
    }
    assert.deepEqual(codes, [200, 200, 200, 200, 429, 429, 429, 429]);
  });

  it('enforce one key\'s credit limit together (usage shared through PostgreSQL)', async () => {
    const limit = 0.0001;
    const k = await createKey(b.url, { name: 'shared-credit', limit });
    await seenBy(a, k.key);
    let spent = 0, n = 0, refused = null;
    for (let i = 0; i < 40 && !refused; i++) {
      const gw = i % 2 ? b : a;
      const r = await call(gw.url, '/api/v1/chat/completions', { method: 'POST', key: k.key, body: chatBody({ max_tokens: 5 }) });
      if (r.status === 402) { refused = { i, r }; break; }
      assert.equal(r.status, 200, r.text);
      spent += r.json.usage.cost;
      n++;
      await sleep(700); // > the 500 ms key refresh: each instance sees the other's usage
    }
    assert.ok(refused, 'the key ran out of credit');
    assert.ok(n >= 2, `requests were served on both instances before the limit (${n})`);
    expectErrorShape(assert, refused.r, 402);
    assert.ok(spent <= limit, `spent ${spent} within the limit ${limit}`);
    // both instances now refuse, and agree on the usage
    await sleep(700);
    for (const gw of [a, b]) {
      expectErrorShape(assert, await call(gw.url, '/api/v1/chat/completions', { method: 'POST', key: k.key, body: chatBody({ max_tokens: 5 }) }), 402);
      const kk = await call(gw.url, '/api/v1/key', { key: k.key });
      assert.ok(Math.abs(kk.json.data.usage - spent) < 1e-12, `usage ${kk.json.data.usage} vs ${spent}`);
    }
  });
});
