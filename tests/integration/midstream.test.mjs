// Failures after the first byte: the stream stays HTTP 200 and ends with an
// error chunk (finish_reason "error") and [DONE], without failing over. And a
// client that goes away mid-stream makes llmux cancel the upstream request.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startOpenAIMock } from '../mocks/openai.mjs';
import {
  startLlmux, shutdown, skipNoBinary, buildConfig, openaiProvider, model, endpoint, postSSE, sseIterate, sleep,
} from './harness.mjs';

const SENTENCE = 'one two three four five six seven eight nine ten';
const BETWEEN_MS = 1000;

describe('mid-stream failures and cancellation', { skip: skipNoBinary, timeout: 60000 }, () => {
  let up, spare, gw, url;
  before(async () => {
    up = await startOpenAIMock();
    spare = await startOpenAIMock();
    gw = await startLlmux({
      config: buildConfig({
        providers: { up: openaiProvider(up, { name: 'Flaky' }), spare: openaiProvider(spare, { name: 'Spare' }) },
        models: [
          model('ms/reset', [endpoint('up', 'r@reset-midstream'), endpoint('spare', 'spare-r')]),
          model('ms/error', [endpoint('up', 'e@error-midstream'), endpoint('spare', 'spare-e')]),
          model('ms/slow', [endpoint('up', 's@slow-100')]),
          model('ms/slow2', [endpoint('up', 't@slow-100')]),
          model('ms/stall', [endpoint('up', 'st@stall-midstream'), endpoint('spare', 'spare-st')]),
          model('ms/late', [endpoint('up', 'k@delay-1200')]),
        ],
        timeouts: { first_byte_ms: 5000, between_chunks_ms: BETWEEN_MS, keepalive_comment_ms: 200 },
      }),
    });
    url = `${gw.url}/api/v1/chat/completions`;
  });
  after(() => shutdown(gw, up, spare));

  function checkErrorEnding(s, label) {
    assert.equal(s.status, 200, `${label}: status stays 200`);
    assert.ok(s.text.startsWith('one two'), `${label}: content before the failure reached the client: "${s.text}"`);
    assert.ok(!s.text.includes('ten'), `${label}: the stream did not complete`);
    const idx = s.chunks.findIndex((c) => c.error);
    assert.ok(idx >= 0, `${label}: a chunk carries "error": ${JSON.stringify(s.chunks.slice(-3))}`);
    const errChunk = s.chunks[idx];
    assert.equal(typeof errChunk.error.message, 'string');
    assert.ok(errChunk.error.code !== undefined, 'error.code present');
    const fin = s.chunks.flatMap((c) => c.choices || []).filter((ch) => ch.finish_reason);
    assert.ok(fin.length >= 1, 'a finish_reason was sent');
    assert.equal(fin.at(-1).finish_reason, 'error', `${label}: finish_reason "error"`);
    assert.ok(s.done, `${label}: then data: [DONE]`);
    assert.equal(s.afterDone, 0);
    assert.ok(!s.error, `${label}: the client connection ended cleanly (${s.error})`);
  }

  it('upstream connection reset mid-stream: error chunk, finish_reason error, [DONE]', async () => {
    const s = await postSSE(url, {
      model: 'ms/reset',
      messages: [{ role: 'user', content: SENTENCE }],
      stream: true,
      provider: { order: ['up', 'spare'] },
    });
    checkErrorEnding(s, 'reset');
    assert.equal(spare.requests.length, 0, 'no failover after the first byte');
  });

  it('upstream error event mid-stream: error chunk, finish_reason error, [DONE]', async () => {
    const s = await postSSE(url, {
      model: 'ms/error',
      messages: [{ role: 'user', content: SENTENCE }],
      stream: true,
      provider: { order: ['up', 'spare'] },
    });
    checkErrorEnding(s, 'error event');
    assert.equal(spare.requests.length, 0, 'no failover after the first byte');
  });

  it(`an upstream that goes silent mid-stream is ended after between_chunks_ms (${BETWEEN_MS})`, async () => {
    const t0 = Date.now();
    const s = await postSSE(url, {
      model: 'ms/stall',
      messages: [{ role: 'user', content: SENTENCE }],
      stream: true,
      provider: { order: ['up', 'spare'] },
    });
    const took = Date.now() - t0;
    checkErrorEnding(s, 'stall');
    assert.ok(took >= BETWEEN_MS - 50 && took < BETWEEN_MS + 4000, `ended by the timeout (${took} ms)`);
    assert.equal(spare.requests.length, 0, 'no failover after the first byte');
    const rec = up.requests.find((q) => q.body && q.body.model === 'st@stall-midstream');
    const closed = await Promise.race([rec.closed.then(() => true), sleep(2000).then(() => false)]);
    assert.ok(closed, 'llmux closed the silent upstream request');
  });

  it('while waiting for a slow first byte the stream carries SSE comments, which clients ignore', async () => {
    const s = await postSSE(url, { model: 'ms/late', messages: [{ role: 'user', content: 'late but fine' }], stream: true });
    assert.equal(s.status, 200);
    assert.ok(s.comments >= 2, `keep-alive comments every ~200 ms during the 1200 ms wait (${s.comments}: ${JSON.stringify(s.commentTexts)})`);
    assert.ok(s.done);
    assert.equal(s.text, 'late but fine');
    assert.ok(!s.chunks.some((c) => c.error));
  });

  it('a client that disconnects mid-stream makes llmux cancel the upstream request', async () => {
    const long = Array.from({ length: 100 }, (_, i) => `w${i}`).join(' '); // ~10 s at 100 ms/word
    const ac = new AbortController();
    const r = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'ms/slow', messages: [{ role: 'user', content: long }], stream: true }),
      signal: ac.signal,
    });
    assert.equal(r.status, 200);
    let content = 0;
    try {
      for await (const ev of sseIterate(r.body)) {
        if (ev.type !== 'event' || ev.data === '[DONE]') continue;
        const chunk = JSON.parse(ev.data);
        if ((chunk.choices || []).some((ch) => ch.delta && ch.delta.content)) content++;
        if (content >= 2) break;
      }
    } finally {
      ac.abort();
    }
    const abortedAt = Date.now();
    const rec = up.requests.find((q) => q.body && q.body.model === 's@slow-100');
    assert.ok(rec, 'the upstream got the request');
    const closed = await Promise.race([rec.closed.then(() => true), sleep(3000).then(() => false)]);
    assert.ok(closed, 'the upstream request was closed after the client went away');
    const lag = rec.closedAt - abortedAt;
    assert.ok(rec.clientClosed, 'closed by llmux, not finished by the mock');
    assert.ok(lag < 1500, `upstream cancelled within ~1 s of the disconnect (${lag} ms)`);
    assert.ok(rec.framesSent < 50, `the upstream stopped early (${rec.framesSent} frames sent)`);
  });

  it('a client that disconnects before the first byte also cancels the upstream', async () => {
    up.setBehavior((rec) => (rec.body && rec.body.model === 't@slow-100' ? 'delay-3000' : undefined));
    try {
      const ac = new AbortController();
      const p = fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'ms/slow2', messages: [{ role: 'user', content: 'a b c' }], stream: true }),
        signal: ac.signal,
      }).catch((e) => e);
      const rec = await up.waitForRequests(up.requests.length + 1, 5000).then(() => up.requests.at(-1));
      assert.equal(rec.body.model, 't@slow-100');
      ac.abort();
      const abortedAt = Date.now();
      await p;
      const closed = await Promise.race([rec.closed.then(() => true), sleep(3000).then(() => false)]);
      assert.ok(closed, 'the upstream request was closed');
      assert.ok(rec.closedAt - abortedAt < 1500, `within ~1 s (${rec.closedAt - abortedAt} ms)`);
      assert.equal(rec.status, null, 'the mock never answered');
    } finally {
      up.setBehavior(null);
    }
  });

  it('the server keeps serving after the cancellations', async () => {
    const s = await postSSE(url, { model: 'ms/slow', messages: [{ role: 'user', content: 'x y' }], stream: true });
    assert.equal(s.status, 200);
    assert.ok(s.done);
    assert.equal(s.text, 'x y');
  });
});
