// Durability: llmux killed with SIGKILL in the middle of a load loses no
// generation whose response was completed to the client. With durable storage
// (storage.durable, the default with auth = "keys")
// the final bytes of an answer are only written after its
// record committed (SQLite WAL: in the WAL file before COMMIT returns, so a
// killed process loses nothing that committed).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startLlmux, skipNoBinary, buildConfig, sleep, readSSE } from './harness.mjs';

const pricing = { prompt: 0.000001, completion: 0.000002 };
const config = (db) =>
  buildConfig({
    storage: { sqlite: db, durable: true },
    log: { level: 'warn', access: 'off' },
    providers: { mock: { plugin: 'mock', name: 'Mock' } },
    models: [{ id: 'mock/echo', endpoints: [{ provider: 'mock', model: 'echo', pricing, context_length: 8192, max_completion_tokens: 512 }] }],
  });

async function one(url, i) {
  const stream = i % 2 === 1;
  const r = await fetch(`${url}/api/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'mock/echo', stream, messages: [{ role: 'user', content: `request ${i} says hello` }] }),
    signal: AbortSignal.timeout(5000),
  });
  if (!stream) {
    const j = await r.json(); // throws if the connection died before the end
    return r.status === 200 ? j.id : null;
  }
  const sse = await readSSE(r.body);
  return sse.done && !sse.error && sse.chunks.length ? sse.chunks[0].id : null;
}

describe('generation records survive SIGKILL', { skip: skipNoBinary, timeout: 60000 }, () => {
  it('every completed response is in the database after a restart', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmux-dur-'));
    const db = path.join(dir, 'llmux.db');
    try {
      const gw = await startLlmux({ config: config(db), workers: 2 });
      const completed = [];
      let stop = false, seq = 0;
      const loops = Array.from({ length: 16 }, async () => {
        while (!stop) {
          const i = seq++;
          try {
            const id = await one(gw.url, i);
            if (id) completed.push(id);
          } catch {
            return; // the server died under us: this one did not complete
          }
        }
      });
      await sleep(1200);
      gw.kill('SIGKILL');
      stop = true;
      await Promise.all(loops);
      await gw.exited;
      assert.ok(completed.length > 50, `load ran (${completed.length} completed)`);

      const again = await startLlmux({ config: config(db), workers: 1 });
      try {
        const missing = [];
        for (let k = 0; k < completed.length; k += 32) {
          const batch = completed.slice(k, k + 32);
          const res = await Promise.all(batch.map((id) => fetch(`${again.url}/api/v1/generation?id=${id}`).then((r) => r.status)));
          res.forEach((s, j) => s !== 200 && missing.push(`${batch[j]}:${s}`));
        }
        assert.deepEqual(missing, [], `${missing.length} of ${completed.length} completed generations lost`);
      } finally {
        await again.stop();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
