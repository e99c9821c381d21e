// HTTP/1.1 behaviour of the front end: keep-alive reuse, chunked request
// bodies, pipelining, concurrency.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { startOpenAIMock } from '../mocks/openai.mjs';
import {
  startLlmux, shutdown, skipNoBinary, buildConfig, openaiProvider, model, endpoint, postJSON, rawHttp, parseHttpResponse,
} from './harness.mjs';

function request(agent, port, method, path, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        agent,
        headers: data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {},
        timeout: 10000,
      },
      (res) => {
        const parts = [];
        res.on('data', (d) => parts.push(d));
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(parts).toString(), socket: req.socket }));
      },
    );
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end(data);
  });
}

describe('HTTP/1.1 front end', { skip: skipNoBinary, timeout: 60000 }, () => {
  let up, gw;
  before(async () => {
    up = await startOpenAIMock();
    gw = await startLlmux({
      config: buildConfig({
        providers: { oa: openaiProvider(up) },
        models: [model('test/echo', [endpoint('oa', 'gpt-4o')])],
      }),
    });
  });
  after(() => shutdown(gw, up));

  it('keeps the connection alive across several requests', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const sockets = new Set();
      const chat = { model: 'test/echo', messages: [{ role: 'user', content: 'ping' }] };
      const seq = [
        ['GET', '/health'],
        ['POST', '/api/v1/chat/completions', chat],
        ['GET', '/api/v1/models'],
        ['POST', '/v1/chat/completions', { ...chat, stream: true }],
        ['POST', '/api/v1/chat/completions', { model: 'nobody/nothing', messages: chat.messages }],
        ['POST', '/api/v1/chat/completions', chat],
      ];
      const statuses = [];
      for (const [m, p, b] of seq) {
        const r = await request(agent, gw.port, m, p, b);
        statuses.push(r.status);
        assert.notEqual((r.headers.connection || '').toLowerCase(), 'close', `${m} ${p}: no Connection: close`);
        sockets.add(r.socket);
      }
      assert.deepEqual(statuses, [200, 200, 200, 200, 404, 200]);
      assert.equal(sockets.size, 1, 'all requests used one socket');
    } finally {
      agent.destroy();
    }
  });

  it('accepts a chunked request body', async () => {
    const body = JSON.stringify({ model: 'test/echo', messages: [{ role: 'user', content: 'sent in chunks' }] });
    const cut = [0, 10, 25, body.length];
    const chunks = [];
    for (let i = 0; i + 1 < cut.length; i++) {
      const piece = body.slice(cut[i], cut[i + 1]);
      chunks.push(`${Buffer.byteLength(piece).toString(16)}\r\n${piece}\r\n`, 30);
    }
    const r = await rawHttp(gw.port, [
      'POST /api/v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n',
      ...chunks,
      '0\r\n\r\n',
    ]);
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json.choices[0].message.content, 'sent in chunks');
  });

  it('answers pipelined requests in order', async () => {
    const one = (path) => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`;
    const sock = net.connect(gw.port, '127.0.0.1');
    const parts = [];
    sock.on('data', (d) => parts.push(d));
    sock.on('error', () => {});
    sock.write(one('/health') + one('/api/v1/models') + one('/api/v1/nothing-here'));
    const deadline = Date.now() + 5000;
    const statuses = [];
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      let buf = Buffer.concat(parts);
      statuses.length = 0;
      for (;;) {
        const p = parseHttpResponse(buf);
        if (!p || !p.complete) break;
        statuses.push(p.status);
        buf = buf.subarray(p.consumed);
      }
      if (statuses.length >= 3) break;
    }
    sock.destroy();
    assert.deepEqual(statuses, [200, 200, 404]);
  });

  it('serves concurrent requests', async () => {
    const N = 24;
    const rs = await Promise.all(
      Array.from({ length: N }, (_, i) =>
        postJSON(`${gw.url}/api/v1/chat/completions`, { model: 'test/echo', messages: [{ role: 'user', content: `n${i}` }] }),
      ),
    );
    rs.forEach((r, i) => {
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.choices[0].message.content, `n${i}`);
    });
    assert.equal(new Set(rs.map((r) => r.json.id)).size, N, 'generation ids are unique');
  });
});
