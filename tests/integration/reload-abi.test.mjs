// Plugin ABI through a running server: the shout example is built out of tree
// (cmake --install to a temp prefix, cc + pkg-config), loaded by llmux, then
// replaced by odd builds (tests/abi/variants.c). An older-minor descriptor
// loads; a wrong major, bad magic, NULL descriptor, missing entry symbol and
// failing init are each refused with 422 + a log line, while the old
// generation keeps serving. Also: a listen change says it cannot apply live,
// and cache copies of refused or unloaded images are removed.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { skipNoBinary, postJSON, postSSE } from './harness.mjs';
import {
  haveCc, installSdk, buildPlugin, SHOUT_SRC, VARIANTS_SRC, swapFile, adminReload, adminGet,
  reloadConfig, spawnLlmux, tmpDir, freePort, sleep, writeFileAtomic,
} from '../reload/lib.mjs';

const skip = skipNoBinary || (haveCc ? false : 'cc or pkg-config missing');

describe('plugin ABI and refusal through a running server', { skip, timeout: 120000 }, () => {
  let dir, gw, port, pluginDir, cacheDir, cfgPath, builds;
  const chat = (content, extra = {}) =>
    postJSON(`${gw.url}/api/v1/chat/completions`, { model: 'shout/echo', messages: [{ role: 'user', content }], ...extra });

  before(async () => {
    dir = tmpDir('abi');
    const sdk = installSdk(dir);
    pluginDir = path.join(dir, 'plugins');
    cacheDir = path.join(dir, 'cache');
    fs.mkdirSync(pluginDir);
    const b = (name, src, defs) => buildPlugin(sdk, src, path.join(dir, `${name}.so`), defs);
    builds = {
      good: b('good', SHOUT_SRC, []),
      good2: b('good2', SHOUT_SRC, ['SHOUT_VERSION="1.1.0"']),
    };
    for (const v of ['OLD_MINOR', 'BAD_MAJOR', 'BAD_MAGIC', 'NULL_DESC', 'NO_ENTRY', 'INIT_FAIL'])
      builds[v] = b(v, VARIANTS_SRC, [`ABI_${v}`]);
    swapFile(builds.good, path.join(pluginDir, 'shout.so'));
    port = await freePort();
    cfgPath = path.join(dir, 'config.lua');
    fs.writeFileSync(cfgPath, reloadConfig({ pluginDir, cacheDir, listen: `127.0.0.1:${port}`, workers: 2 }));
    gw = await spawnLlmux(['--config', cfgPath], port);
  });
  after(async () => {
    await gw?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('serves the out-of-tree shout plugin built with pkg-config', async () => {
    const r = await chat('hello out of tree');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices[0].message.content, 'HELLO OUT OF TREE');
    const s = await postSSE(`${gw.url}/api/v1/chat/completions`, { model: 'shout/echo', stream: true, messages: [{ role: 'user', content: 'a b' }] });
    assert.equal(s.text, 'A B');
    assert.ok(s.done);
  });

  const current = async () => (await adminGet(gw.url, 'plugins')).data.filter((p) => p.name === 'shout');

  const refusals = [
    ['BAD_MAJOR', /ABI major 2, host speaks 1/],
    ['BAD_MAGIC', /bad magic/],
    ['NULL_DESC', /entry returned NULL/],
    ['NO_ENTRY', /no exported llmux_plugin_v1 symbol/],
    ['INIT_FAIL', /refused its configuration/],
  ];
  for (const [variant, reason] of refusals) {
    it(`refuses ${variant} and keeps the old generation serving`, async () => {
      const before = await current();
      assert.equal(before.length, 1, JSON.stringify(before));
      const status0 = await adminGet(gw.url, 'status');
      swapFile(builds[variant], path.join(pluginDir, 'shout.so'));
      const r = await adminReload(gw.url);
      assert.equal(r.status, 422, r.text);
      assert.match(r.json.error.message, reason);
      assert.match(gw.logs(), new RegExp(`reload refused, generation \\d+ keeps serving: .*${reason.source}`));
      const ok = await chat('still here');
      assert.equal(ok.status, 200, ok.text);
      assert.equal(ok.json.choices[0].message.content, 'STILL HERE');
      const after = await current();
      assert.deepEqual(after.map((p) => [p.generation, p.hash, p.version]), before.map((p) => [p.generation, p.hash, p.version]));
      assert.equal((await adminGet(gw.url, 'status')).runtime_generation, status0.runtime_generation);
      // the refused build left nothing in the cache: only the serving image's copy
      assert.deepEqual(fs.readdirSync(cacheDir).filter((f) => f.endsWith('.so')), [path.basename(before[0].path)]);
      swapFile(builds.good, path.join(pluginDir, 'shout.so'));
    });
  }

  it('loads a plugin built against an older minor (descriptor ends before on_tick)', async () => {
    swapFile(builds.OLD_MINOR, path.join(pluginDir, 'shout.so'));
    const r = await adminReload(gw.url);
    assert.equal(r.status, 200, r.text);
    await sleep(200);
    const imgs = await current();
    assert.deepEqual(imgs.map((p) => p.version), ['0.9.0-old-minor']);
    assert.match(gw.logs(), /plugin shout 0\.9\.0-old-minor loaded \(abi 1\.0, 88-byte descriptor/);
    // on_tick is absent for this build, so its local calls fail cleanly instead of crashing
    const e = await chat('no tick');
    assert.ok(e.status >= 400 && e.json && e.json.error, e.text);
    assert.equal((await fetch(`${gw.url}/health`)).status, 200);
  });

  it('replaces the image and unloads the old one once drained', async () => {
    swapFile(builds.good2, path.join(pluginDir, 'shout.so'));
    const r = await adminReload(gw.url);
    assert.equal(r.status, 200, r.text);
    await sleep(300);
    const imgs = await current();
    assert.deepEqual(imgs.map((p) => p.version), ['1.1.0']);
    assert.match(gw.logs(), /plugin shout 0\.9\.0-old-minor generation \d+ unloaded/);
    assert.equal((await chat('v two')).json.choices[0].message.content, 'V TWO');
    assert.deepEqual(fs.readdirSync(cacheDir).filter((f) => f.endsWith('.so')), [path.basename(imgs[0].path)]);
    const st = await adminGet(gw.url, 'status');
    assert.ok(st.config_generation > 0 && st.script_generation > 0, JSON.stringify(st));
  });

  it('reports a listen change that cannot apply live and keeps the old address', async () => {
    const other = await freePort();
    writeFileAtomic(cfgPath, reloadConfig({ pluginDir, cacheDir, listen: `127.0.0.1:${other}`, workers: 2 }));
    const r = await adminReload(gw.url);
    assert.equal(r.status, 200, r.text);
    assert.match(r.json.message, new RegExp(`listen 127\\.0\\.0\\.1:${other} cannot apply live; still listening on 127\\.0\\.0\\.1:${port}`));
    assert.match(gw.logs(), /reload: listen .* cannot apply live/);
    assert.equal((await chat('same port')).status, 200);
    await assert.rejects(fetch(`http://127.0.0.1:${other}/health`));
  });
});
