// Reload under load: 4 clients send streaming and non-streaming requests for
// ~20 s while the shout adapter .so is replaced 20+ times (two good builds with
// different versions, and broken builds that must be refused) and the routing
// script 20+ times (two valid scripts and a broken one). Requirements: zero
// failed requests, every old generation unloaded once drained, RSS flat.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { skipNoBinary, PLUGIN_DIR, BUILD_DIR } from './harness.mjs';
import {
  haveCc, installSdk, buildPlugin, SHOUT_SRC, VARIANTS_SRC, swapFile, writeFileAtomic, adminReload, adminGet,
  reloadConfig, spawnLlmux, tmpDir, freePort, sleep, rssKiB, SOURCE_DIR,
} from '../reload/lib.mjs';

const skip = skipNoBinary || (haveCc ? false : 'cc or pkg-config missing');
const LOAD_MS = Number(process.env.RELOAD_LOAD_MS || 20000);
const CLIENTS = 4;
const SWAPS = 20; // of each kind
const SANITIZED = /asan|sanitize/i.test(BUILD_DIR) || Boolean(process.env.ASAN_OPTIONS);

describe('hot reload under load', { skip, timeout: 90000 }, () => {
  let dir, gw, pluginDir, cacheDir, script, builds, scripts;

  before(async () => {
    dir = tmpDir('reload-load');
    const sdk = installSdk(dir);
    pluginDir = path.join(dir, 'plugins');
    cacheDir = path.join(dir, 'cache');
    fs.mkdirSync(pluginDir);
    const b = (name, src, defs) => buildPlugin(sdk, src, path.join(dir, `${name}.so`), defs);
    builds = {
      A: b('A', SHOUT_SRC, ['SHOUT_VERSION="2.0.0-a"']),
      B: b('B', SHOUT_SRC, ['SHOUT_VERSION="2.0.0-b"']),
      broken: [b('bad_major', VARIANTS_SRC, ['ABI_BAD_MAJOR']), b('init_fail', VARIANTS_SRC, ['ABI_INIT_FAIL']),
        b('no_entry', VARIANTS_SRC, ['ABI_NO_ENTRY'])],
    };
    fs.copyFileSync(path.join(PLUGIN_DIR, 'mock.so'), path.join(pluginDir, 'mock.so'));
    swapFile(builds.A, path.join(pluginDir, 'shout.so'));
    const base = fs.readFileSync(path.join(SOURCE_DIR, 'scripts', 'default.lua'), 'utf8');
    scripts = { one: `-- variant one\n${base}`, two: `-- variant two\n${base}\n-- end\n`, broken: `${base}\nthis is not lua (\n` };
    script = path.join(dir, 'route.lua');
    writeFileAtomic(script, scripts.one);
    const port = await freePort();
    const cfg = path.join(dir, 'config.lua');
    fs.writeFileSync(cfg, reloadConfig({ pluginDir, cacheDir, script, shoutDelayMs: 3, withMock: true, workers: 4 }));
    gw = await spawnLlmux(['--config', cfg, '--listen', `127.0.0.1:${port}`], port);
  });
  after(async () => {
    await gw?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('fails zero requests, unloads every old generation, keeps RSS flat', async () => {
    const url = `${gw.url}/api/v1/chat/completions`;
    const stats = { served: 0, stream: 0, failures: [] };
    let stop = false;
    const words = 'the quick brown fox jumps over the lazy dog again and again';

    async function one(i) {
      const stream = i % 2 === 0;
      const lorem = i % 5 === 4;
      const body = lorem
        ? { model: 'mock/lorem', stream, max_tokens: 16, messages: [{ role: 'user', content: 'x' }] }
        : { model: 'shout/echo', stream, messages: [{ role: 'user', content: `${words} ${i}` }] };
      try {
        const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
        const text = await r.text();
        if (r.status !== 200) throw new Error(`status ${r.status}: ${text.slice(0, 300)}`);
        let content;
        if (stream) {
          if (!text.includes('data: [DONE]')) throw new Error(`stream without [DONE]: ${text.slice(-300)}`);
          content = '';
          for (const line of text.split('\n')) {
            if (!line.startsWith('data: {')) continue;
            const c = JSON.parse(line.slice(6));
            if (c.error || c.choices?.[0]?.finish_reason === 'error') throw new Error(`error chunk: ${line}`);
            content += c.choices?.[0]?.delta?.content ?? '';
          }
          stats.stream++;
        } else {
          const j = JSON.parse(text);
          content = j.choices[0].message.content;
        }
        if (!lorem && content !== `${words} ${i}`.toUpperCase()) throw new Error(`wrong content: ${content}`);
        if (lorem && content.split(' ').length !== 16) throw new Error(`wrong lorem: ${content}`);
        stats.served++;
      } catch (e) {
        stats.failures.push(String(e.message || e));
      }
    }
    let seq = 0;
    const client = async () => { while (!stop) await one(seq++); };

    // Warm up (allocator arenas, curl, Lua states) before the RSS baseline.
    const clients = Array.from({ length: CLIENTS }, client);
    await sleep(1000);
    for (const v of ['two', 'one']) { // and a couple of reloads, so per-reload pools exist before the baseline
      writeFileAtomic(script, scripts[v]);
      assert.equal((await adminReload(gw.url)).status, 200);
      await sleep(500);
    }
    const rssBefore = rssKiB(gw.proc.pid);
    const servedAtStart = stats.served;
    const t0 = Date.now();

    const reloads = { ok: 0, refused: 0, unexpected: [] };
    const expect = async (want, what) => {
      const r = await adminReload(gw.url);
      if (r.status === 200) reloads.ok++;
      else if (r.status === 422) reloads.refused++;
      if (r.status !== want) reloads.unexpected.push(`${what}: wanted ${want}, got ${r.status} ${r.text}`);
    };
    const gap = Math.max(50, Math.floor(LOAD_MS / (SWAPS * 2 + 10)));
    let pluginSwaps = 0, scriptSwaps = 0, good = 'A';
    for (let k = 0; k < SWAPS; k++) {
      // the adapter: every 4th replacement is a broken build, then a good one goes back
      if (k % 4 === 3) {
        swapFile(builds.broken[k % 3], path.join(pluginDir, 'shout.so'));
        pluginSwaps++;
        await expect(422, `broken plugin #${k}`);
        await sleep(gap / 2);
      }
      good = good === 'A' ? 'B' : 'A';
      swapFile(builds[good], path.join(pluginDir, 'shout.so'));
      pluginSwaps++;
      await expect(200, `plugin ${good} #${k}`);
      await sleep(gap);
      // the routing script: every 5th replacement is broken, then a valid one goes back
      if (k % 5 === 2) {
        writeFileAtomic(script, scripts.broken);
        scriptSwaps++;
        await expect(422, `broken script #${k}`);
        await sleep(gap / 2);
      }
      writeFileAtomic(script, k % 2 ? scripts.one : scripts.two);
      scriptSwaps++;
      await expect(200, `script #${k}`);
      await sleep(gap);
    }
    while (Date.now() - t0 < LOAD_MS) await sleep(100);
    stop = true;
    await Promise.all(clients);
    const servedDuring = stats.served - servedAtStart;
    await sleep(500); // let the last calls drain and workers settle

    const imgs = (await adminGet(gw.url, 'plugins')).data;
    const status = await adminGet(gw.url, 'status');
    const rssAfter = rssKiB(gw.proc.pid);
    const logs = gw.logs();
    const count = (re) => (logs.match(re) || []).length;
    const shoutLoaded = count(/plugin shout 2\.0\.0-[ab] loaded/g);
    const shoutUnloaded = count(/plugin shout 2\.0\.0-[ab] generation \d+ unloaded/g);
    const runtimesReleased = count(/runtime generation \d+ drained and released/g);
    const stillMapped = count(/still mapped after dlclose/g);
    const cacheFiles = fs.readdirSync(cacheDir).filter((f) => f.endsWith('.so'));

    const report = {
      duration_s: ((Date.now() - t0) / 1000).toFixed(1),
      requests_served: stats.served,
      requests_served_during_reloads: servedDuring,
      streaming: stats.stream,
      failures: stats.failures.length,
      plugin_replacements: pluginSwaps,
      script_replacements: scriptSwaps,
      reloads_ok: reloads.ok,
      reloads_refused: reloads.refused,
      shout_images_loaded: shoutLoaded,
      shout_images_unloaded: shoutUnloaded,
      runtimes_released: runtimesReleased,
      runtime_generation: status.runtime_generation,
      images_now: imgs.map((p) => `${p.name} ${p.version} gen ${p.generation} inflight ${p.inflight}`),
      cache_files: cacheFiles.length,
      rss_before_kib: rssBefore,
      rss_after_kib: rssAfter,
      rss_growth_pct: (((rssAfter - rssBefore) / rssBefore) * 100).toFixed(1),
    };
    console.log(`reload-under-load: ${JSON.stringify(report, null, 1)}`);

    assert.deepEqual(stats.failures.slice(0, 5), [], `${stats.failures.length} failed requests`);
    assert.deepEqual(reloads.unexpected, []);
    assert.ok(pluginSwaps >= SWAPS && scriptSwaps >= SWAPS, `${pluginSwaps} plugin and ${scriptSwaps} script replacements`);
    assert.ok(servedDuring > 100, `only ${servedDuring} requests during the reloads`);
    // Every old generation is gone: one image per plugin, nothing in flight, every
    // runtime but the current one released, every replaced shout image unloaded.
    assert.deepEqual(imgs.map((p) => p.name).sort(), ['mock', 'shout'], JSON.stringify(imgs));
    assert.ok(imgs.every((p) => p.inflight === 0 && p.refs === 1), JSON.stringify(imgs));
    assert.equal(imgs.find((p) => p.name === 'shout').version, good === 'A' ? '2.0.0-a' : '2.0.0-b');
    assert.equal(shoutUnloaded, shoutLoaded - 1, 'every shout image but the current one unloaded');
    assert.equal(runtimesReleased, status.runtime_generation - 1, 'every runtime but the current one released');
    assert.equal(stillMapped, 0);
    assert.equal(cacheFiles.length, 2, `cache dir holds only the live copies: ${cacheFiles}`);
    // ASan's quarantine holds freed memory on purpose: RSS says nothing there.
    if (!SANITIZED) assert.ok(rssAfter < rssBefore * 1.2, `RSS grew from ${rssBefore} to ${rssAfter} KiB`);
  });
});
