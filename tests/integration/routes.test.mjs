// Routes of the OpenRouter-compatible API: /health, models, model endpoints,
// chat and legacy completions, under both /api/v1 and /v1.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startOpenAIMock, contentText } from '../mocks/openai.mjs';
import {
  startLlmux, shutdown, skipNoBinary, buildConfig, openaiProvider, model, endpoint, getJSON, postJSON, expectErrorShape,
} from './harness.mjs';

const PRICING = { prompt: 0.000001, completion: 0.000002, request: 0.0001 };

describe('routes', { skip: skipNoBinary, timeout: 60000 }, () => {
  let up, gw;
  before(async () => {
    up = await startOpenAIMock();
    gw = await startLlmux({
      config: buildConfig({
        providers: { oa: openaiProvider(up, { name: 'OpenAI Mock' }) },
        models: [
          model('test/echo', [endpoint('oa', 'gpt-4o', { pricing: PRICING, context_length: 16384, quantization: 'fp16' })], {
            name: 'Test Echo',
            description: 'echoes',
            context_length: 16384,
          }),
        ],
      }),
    });
  });
  after(() => shutdown(gw, up));

  it('GET /health answers 200', async () => {
    const r = await fetch(`${gw.url}/health`);
    assert.equal(r.status, 200);
    await r.arrayBuffer();
  });

  for (const prefix of ['/api/v1', '/v1']) {
    it(`GET ${prefix}/models lists configured models in OpenRouter shape`, async () => {
      const r = await getJSON(`${gw.url}${prefix}/models`);
      assert.equal(r.status, 200, r.text);
      assert.ok(Array.isArray(r.json.data), 'data is an array');
      const m = r.json.data.find((x) => x.id === 'test/echo');
      assert.ok(m, `test/echo listed: ${r.text}`);
      assert.equal(m.name, 'Test Echo');
      assert.equal(typeof m.created, 'number');
      assert.equal(m.context_length, 16384);
      assert.ok(m.architecture && Array.isArray(m.architecture.input_modalities), 'architecture.input_modalities');
      assert.ok(m.pricing, 'pricing present');
      assert.equal(typeof m.pricing.prompt, 'string', 'pricing values are strings');
      assert.equal(Number(m.pricing.prompt), PRICING.prompt);
      assert.equal(Number(m.pricing.completion), PRICING.completion);
      assert.equal(Number(m.pricing.request), PRICING.request);
      assert.ok(Array.isArray(m.supported_parameters), 'supported_parameters');
      assert.ok(m.supported_parameters.includes('tools'));
    });

    it(`GET ${prefix}/models/{author}/{slug}/endpoints describes the endpoints`, async () => {
      const r = await getJSON(`${gw.url}${prefix}/models/test/echo/endpoints`);
      assert.equal(r.status, 200, r.text);
      const d = r.json.data;
      assert.ok(d && Array.isArray(d.endpoints), `data.endpoints: ${r.text}`);
      assert.equal(d.id, 'test/echo');
      assert.equal(d.endpoints.length, 1);
      const e = d.endpoints[0];
      assert.equal(e.provider_name, 'OpenAI Mock');
      assert.equal(e.context_length, 16384);
      assert.equal(Number(e.pricing.prompt), PRICING.prompt);
      assert.equal(e.quantization, 'fp16');
      assert.ok(Array.isArray(e.supported_parameters));
    });

    it(`GET ${prefix}/models/{unknown}/endpoints is 404`, async () => {
      const r = await getJSON(`${gw.url}${prefix}/models/nobody/nothing/endpoints`);
      expectErrorShape(assert, r, 404);
    });

    it(`POST ${prefix}/chat/completions answers`, async () => {
      const r = await postJSON(`${gw.url}${prefix}/chat/completions`, {
        model: 'test/echo',
        messages: [{ role: 'user', content: `via ${prefix}` }],
      });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.choices[0].message.content, `via ${prefix}`);
    });

    it(`POST ${prefix}/completions accepts a legacy prompt`, async () => {
      const before = up.requests.length;
      const r = await postJSON(`${gw.url}${prefix}/completions`, { model: 'test/echo', prompt: 'legacy prompt text' });
      assert.equal(r.status, 200, r.text);
      assert.match(r.json.id, /^gen-/);
      const ch = r.json.choices[0];
      const text = ch.text ?? (ch.message && ch.message.content);
      assert.equal(text, 'legacy prompt text', `choices[0].text: ${r.text}`);
      assert.equal(ch.finish_reason, 'stop');
      assert.ok(r.json.usage && r.json.usage.total_tokens > 0, 'usage');
      assert.equal(up.requests.length, before + 1, 'the upstream was called once');
      const sent = up.requests.at(-1).body;
      assert.equal(sent.messages.at(-1).role, 'user');
      assert.equal(contentText(sent.messages.at(-1).content), 'legacy prompt text');
    });
  }

  it('an unknown route is a JSON 404', async () => {
    const r = await getJSON(`${gw.url}/api/v1/no-such-route`);
    expectErrorShape(assert, r, 404);
  });
});
