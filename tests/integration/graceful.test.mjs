// SIGTERM is a graceful shutdown: streams in flight finish (up to
// timeouts.shutdown_ms), then the process exits 0.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startLlmux, skipNoBinary, buildConfig, model, endpoint, sseIterate, sleep, rawHttp } from './harness.mjs';

const config = buildConfig({
  providers: { mock: { plugin: 'mock', name: 'Mock' } },
  models: [model('mock/slow', [endpoint('mock', 'lorem', { options: { delay_ms: '20', tokens: '30' } })])],
  timeouts: { shutdown_ms: 10000 },
});

describe('graceful shutdown', { skip: skipNoBinary, timeout: 60000 }, () => {
  it('an idle server exits 0 promptly on SIGTERM', async () => {
    const gw = await startLlmux({ config });
    const t0 = Date.now();
    const res = await gw.stop({ timeoutMs: 5000 });
    assert.equal(res.code, 0, `exit code (signal ${res.signal})\n${gw.logs()}`);
    assert.ok(Date.now() - t0 < 3000, `exited within 3 s (${Date.now() - t0} ms)`);
  });

  it('SIGTERM during a stream lets the stream finish with [DONE]', async () => {
    const gw = await startLlmux({ config });
    let stopped;
    try {
      const r = await fetch(`${gw.url}/api/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'mock/slow', messages: [{ role: 'user', content: 'go' }], stream: true }),
        signal: AbortSignal.timeout(20000),
      });
      assert.equal(r.status, 200);
      let text = '';
      let done = false;
      let finish = null;
      let signalled = false;
      for await (const ev of sseIterate(r.body)) {
        if (ev.type !== 'event') continue;
        if (ev.data === '[DONE]') {
          done = true;
          continue;
        }
        const c = JSON.parse(ev.data);
        for (const ch of c.choices || []) {
          if (ch.delta && ch.delta.content) text += ch.delta.content;
          if (ch.finish_reason) finish = ch.finish_reason;
        }
        if (!signalled && text.length > 0) {
          signalled = true;
          stopped = gw.stop({ timeoutMs: 10000 });
        }
      }
      assert.ok(signalled, 'SIGTERM was sent mid-stream');
      assert.ok(done, 'the stream ended with [DONE]');
      assert.equal(finish, 'stop');
      assert.equal(text.trim().split(/\s+/).length, 30, `all 30 words arrived: "${text}"`);
      const res = await stopped;
      assert.equal(res.code, 0, `exit code after draining (signal ${res.signal})\n${gw.logs()}`);
    } finally {
      if (!stopped) await gw.stop().catch(() => {});
    }
  });

  it('no new connections are accepted once draining', async () => {
    const gw = await startLlmux({ config });
    try {
      const r = await fetch(`${gw.url}/api/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'mock/slow', messages: [{ role: 'user', content: 'go' }], stream: true }),
      });
      const reading = r.text();
      await sleep(100);
      gw.kill('SIGTERM');
      await sleep(200);
      let refused = false;
      try {
        // A fresh TCP connection (fetch could reuse an idle keep-alive one).
        const h = await rawHttp(gw.port, 'GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n', { timeoutMs: 2000 });
        refused = h.status === 503;
      } catch {
        refused = true;
      }
      assert.ok(refused, 'a new request during the drain is refused or answered 503');
      const body = await reading;
      assert.match(body, /data: \[DONE\]\s*$/, 'the stream in flight still completed');
      const res = await gw.exited;
      assert.equal(res.code, 0);
    } finally {
      await gw.stop().catch(() => {});
    }
  });
});
