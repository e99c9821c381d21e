// Backpressure: a client that stops reading must make llmux stop reading from
// the upstream (curl_easy_pause) instead of buffering the whole answer. The
// upstream streams ~32 MiB; while the client reads nothing llmux's RSS must
// stay far below that, and once the client reads again every byte arrives.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { startOpenAIMock } from '../mocks/openai.mjs';
import { startLlmux, shutdown, skipNoBinary, buildConfig, openaiProvider, model, endpoint, sleep } from './harness.mjs';

const WORD = 'x'.repeat(4095);
const WORDS = 8192; // 8192 words of 4 KiB: 32 MiB of content
const REPLY = Array.from({ length: WORDS }, () => WORD).join(' ');

function rssKiB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/** One mock streaming REPLY and one single-worker llmux in front of it. */
async function startBig(betweenChunksMs) {
  const up = await startOpenAIMock({ reply: REPLY });
  const gw = await startLlmux({
    config: buildConfig({
      providers: { up: openaiProvider(up) },
      models: [model('bp/big', [endpoint('up', 'big')])],
      timeouts: { first_byte_ms: 10000, between_chunks_ms: betweenChunksMs },
      limits: { stream_buffer_bytes: 1048576 },
    }),
    workers: 1,
  });
  return { up, gw };
}

/** Connects and sends the streaming request for the big answer. */
async function requestBig(port, extraHeaders = '') {
  const body = JSON.stringify({ model: 'bp/big', stream: true, messages: [{ role: 'user', content: 'big' }] });
  const sock = net.connect(port, '127.0.0.1');
  await new Promise((res, rej) => { sock.once('connect', res); sock.once('error', rej); });
  sock.write(`POST /api/v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n${extraHeaders}\r\n${body}`);
  return sock;
}

describe('backpressure from a slow client', { skip: skipNoBinary, timeout: 60000 }, () => {
  let up, gw;
  before(async () => ({ up, gw } = await startBig(10000)));
  after(() => shutdown(gw, up));

  it('a client that stops reading pauses the upstream; memory stays bounded; everything arrives after', async () => {
    const before = rssKiB(gw.proc.pid);
    const sock = await requestBig(gw.port, 'Connection: close\r\n');
    const chunks = [];
    let bytes = 0;
    sock.on('data', (d) => { chunks.push(d); bytes += d.length; });
    await sleep(300);
    sock.pause(); // stop reading: the kernel buffers fill, then llmux's write backlog
    await sleep(2500);
    const during = rssKiB(gw.proc.pid);
    const readWhilePaused = bytes;
    assert.ok(readWhilePaused < 32 * 1048576, `the client had not read everything yet (${readWhilePaused} bytes)`);
    // Without backpressure llmux would hold most of the 32 MiB answer in memory.
    assert.ok(during - before < 12 * 1024,
      `llmux RSS grew by ${during - before} KiB while the client read nothing (before ${before}, during ${during})`);
    sock.resume();
    await new Promise((res) => sock.once('end', res));
    const text = Buffer.concat(chunks).toString('utf8');
    assert.ok(text.startsWith('HTTP/1.1 200'), text.slice(0, 200));
    assert.ok(text.includes('data: [DONE]'), 'the stream finished with [DONE]');
    const words = (text.match(/x{4095}/g) || []).length;
    assert.equal(words, WORDS, 'every word arrived');
    console.log(`backpressure: RSS before ${before} KiB, while paused ${during} KiB, ` +
      `client had ${readWhilePaused} of ${bytes} bytes while paused`);
  });
});

describe('a client that never reads again', { skip: skipNoBinary, timeout: 60000 }, () => {
  let up, gw;
  before(async () => ({ up, gw } = await startBig(1000)));
  after(() => shutdown(gw, up));

  it('is disconnected after between_chunks_ms, and the upstream call is cancelled', async () => {
    const sock = await requestBig(gw.port);
    await sleep(200);
    sock.pause(); // never read again (a paused node socket does not see the close, so watch llmux and the upstream)
    const t0 = Date.now();
    while (Date.now() - t0 < 8000 && !/client stopped reading/.test(gw.logs())) await sleep(100);
    const waited = Date.now() - t0;
    assert.match(gw.logs(), /client stopped reading/, 'llmux gave up on the client');
    assert.ok(waited >= 800, `not before between_chunks_ms (${waited} ms)`);
    // The upstream call is cancelled with it: its connection closes (the mock
    // may count its answer as flushed, the kernel took the last bytes).
    const rec = up.requests.at(-1);
    const t1 = Date.now();
    while (Date.now() - t1 < 3000 && rec.closedAt === null) await sleep(50);
    assert.ok(rec.closedAt !== null, 'the upstream connection was closed');
    assert.match(gw.logs(), /status=499/, 'the access log records the cancelled request');
    sock.destroy();
  });
});
