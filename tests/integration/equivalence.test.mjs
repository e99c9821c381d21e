// Issue 4, "done when": one tool-calling conversation of several turns, with
// reasoning on, gives the same canonical result through the openai, anthropic
// and gemini adapters, streaming and not.
//
// Each mock answers the conversation of TOOL_SCENARIO (tests/mocks/common.mjs)
// identically, in its own provider's wire shapes:
//   turn 1  user asks, tools given, reasoning on
//           -> reasoning + "Let me check both." + two parallel tool calls
//   turn 2  the assistant message as llmux returned it + two tool results
//           -> reasoning + final text, finish stop
//   turn 3  the answer + a follow-up user message -> reasoning + short text
// Every llmux answer is reduced to a canonical summary (finish_reason, content,
// reasoning, tool calls with parsed arguments, id sanity, usage sanity); the
// summaries must be the expected ones, equal across adapters and equal between
// stream and non-stream. The upstream requests of turns 2 and 3 are checked
// too: tool results in each provider's place, and reasoning replayed through
// reasoning_details (Anthropic thinking signatures, docs/mapping-anthropic.md;
// Gemini thoughtSignature on the functionCall part, docs/mapping-gemini.md).
// The Anthropic and Gemini scenario mocks reject, with the providers' own
// messages, a turn 2 whose signatures or tool results are missing or wrong.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TOOL_SCENARIO } from '../mocks/common.mjs';
import { skipNoBinary, postJSON, postSSE, tryJSON } from './harness.mjs';
import {
  SCENARIO_TOOLS as TOOLS, SCENARIO_RESULTS as RESULTS, SCENARIO_MESSAGES as BASE, SCENARIO_ADAPTERS as ADAPTERS, startScenarioAdapters,
} from './scenario.mjs';

const FOLLOWUP = { role: 'user', content: 'Thanks!' };
const REASONING = { max_tokens: 2048 };

const MODES = ['non-stream', 'stream'];

const USAGE_OK = { prompt_tokens: true, completion_tokens: true, total_is_sum: true, cost_positive: true };

/** The canonical summary every adapter must produce for each turn. */
function expectedSummary(stage) {
  const sc = TOOL_SCENARIO.stages[stage];
  return {
    finish_reason: sc.calls.length ? 'tool_calls' : 'stop',
    content: sc.text,
    reasoning: sc.reasoning,
    reasoning_present: true,
    tool_calls: sc.calls.map((c) => ({ type: 'function', name: c.name, arguments: c.arguments })),
    tool_call_ids_ok: true,
    usage: USAGE_OK,
  };
}
const EXPECTED = [expectedSummary('tools'), expectedSummary('answer'), expectedSummary('followup')];

function usageShape(u) {
  if (!u || typeof u !== 'object') return 'missing';
  const pos = (x) => Number.isInteger(x) && x > 0;
  return {
    prompt_tokens: pos(u.prompt_tokens),
    completion_tokens: pos(u.completion_tokens),
    total_is_sum: u.total_tokens === u.prompt_tokens + u.completion_tokens,
    cost_positive: typeof u.cost === 'number' && u.cost > 0,
  };
}

/** Canonical summary of one answer (already assembled when streamed). */
function summarize({ finish_reason, content, reasoning, tool_calls, usage }) {
  const ids = tool_calls.map((t) => t.id);
  return {
    finish_reason,
    content: content ?? '',
    reasoning: reasoning ?? '',
    reasoning_present: typeof reasoning === 'string' && reasoning.length > 0,
    tool_calls: tool_calls.map((t) => ({ type: t.type, name: t.name, arguments: tryJSON(t.arguments) ?? { unparseable: t.arguments } })),
    tool_call_ids_ok: ids.every((id) => typeof id === 'string' && id.length > 0) && new Set(ids).size === ids.length,
    usage: usageShape(usage),
  };
}

/** One non-streaming turn: {summary, message (to replay as is), json}. */
async function askJSON(url, body) {
  const r = await postJSON(url, body);
  assert.equal(r.status, 200, `HTTP ${r.status}: ${r.text}`);
  const ch = r.json.choices[0];
  const m = ch.message;
  const summary = summarize({
    finish_reason: ch.finish_reason,
    content: m.content,
    reasoning: m.reasoning,
    tool_calls: (m.tool_calls || []).map((t) => ({ id: t.id, type: t.type, name: t.function.name, arguments: t.function.arguments })),
    usage: r.json.usage,
  });
  return { summary, message: m, reasoning_details: m.reasoning_details || [], json: r.json };
}

/** One streaming turn: deltas assembled (tool calls by index) into the same
 * summary and into the assistant message a client would send back. */
async function askSSE(url, body) {
  const s = await postSSE(url, { ...body, stream: true });
  assert.equal(s.status, 200, `HTTP ${s.status}: ${s.text}`);
  assert.ok(s.done, 'stream ends with data: [DONE]');
  assert.equal(s.afterDone, 0, 'nothing after [DONE]');
  assert.ok(!s.chunks.some((c) => c.error), `no error chunk: ${JSON.stringify(s.chunks.find((c) => c.error))}`);
  let content = '';
  let reasoning = '';
  let finish = null;
  let usage = null;
  const details = [];
  const calls = [];
  const problems = [];
  for (const c of s.chunks) {
    assert.equal(c.object, 'chat.completion.chunk');
    if (c.usage) usage = c.usage;
    for (const ch of c.choices || []) {
      const d = ch.delta || {};
      if (typeof d.content === 'string') content += d.content;
      if (typeof d.reasoning === 'string') reasoning += d.reasoning;
      if (Array.isArray(d.reasoning_details)) details.push(...d.reasoning_details);
      for (const tc of d.tool_calls || []) {
        if (!Number.isInteger(tc.index)) problems.push(`tool-call delta without an integer index: ${JSON.stringify(tc)}`);
        const slot = (calls[tc.index] ??= { id: undefined, type: undefined, name: '', arguments: '' });
        if (tc.id) {
          if (slot.id && slot.id !== tc.id) problems.push(`tool call ${tc.index}: id changed from ${slot.id} to ${tc.id}`);
          slot.id = tc.id;
        }
        if (tc.type) slot.type = tc.type;
        if (tc.function && tc.function.name) slot.name += tc.function.name;
        if (tc.function && typeof tc.function.arguments === 'string') slot.arguments += tc.function.arguments;
      }
      if (ch.finish_reason) {
        if (finish) problems.push(`second finish_reason ${ch.finish_reason} after ${finish}`);
        finish = ch.finish_reason;
      }
    }
  }
  assert.deepEqual(problems, [], 'stream deltas are consistent');
  assert.ok(calls.every(Boolean), 'tool-call indexes are dense from 0');
  const summary = summarize({ finish_reason: finish, content, reasoning, tool_calls: calls, usage });
  const message = { role: 'assistant', content: content || null };
  if (calls.length) message.tool_calls = calls.map((t) => ({ id: t.id, type: t.type, function: { name: t.name, arguments: t.arguments } }));
  if (reasoning) message.reasoning = reasoning;
  if (details.length) message.reasoning_details = details;
  return { summary, message, reasoning_details: details, chunks: s.chunks };
}

/** The three-turn conversation; returns {turns, upstream (the mock's records)}. */
async function converse(url, modelId, mock, stream) {
  const ask = stream ? askSSE : askJSON;
  const n0 = mock.requests.length;
  const common = { model: modelId, tools: TOOLS, tool_choice: 'auto', reasoning: REASONING, max_tokens: 4096 };
  const turns = [];
  let messages = [...BASE];
  const t1 = await ask(url, { ...common, messages });
  turns.push(t1);
  const results = (t1.message.tool_calls || []).map((t) => ({ role: 'tool', tool_call_id: t.id, content: RESULTS[t.function.name] ?? 'n/a' }));
  messages = [...messages, t1.message, ...results];
  const t2 = await ask(url, { ...common, messages });
  turns.push(t2);
  messages = [...messages, t2.message, FOLLOWUP];
  const t3 = await ask(url, { ...common, messages });
  turns.push(t3);
  return { turns, upstream: mock.requests.slice(n0) };
}

const textOf = (content) =>
  typeof content === 'string' ? content : (content || []).filter((b) => b && b.type === 'text').map((b) => b.text).join('');

describe('equivalence: one tool + reasoning conversation through the openai, anthropic and gemini adapters', { skip: skipNoBinary, timeout: 120000 }, () => {
  let trio, url;
  const mocks = {};
  const runs = { 'non-stream': {}, stream: {} };

  before(async () => {
    const params = ['temperature', 'max_tokens', 'stop', 'tools', 'tool_choice', 'parallel_tool_calls', 'reasoning', 'include_reasoning', 'stream_options'];
    trio = await startScenarioAdapters('eq', params);
    Object.assign(mocks, trio.mocks);
    url = `${trio.gw.url}/api/v1/chat/completions`;
  });
  after(() => trio && trio.stop());

  for (const mode of MODES) {
    for (const a of ADAPTERS) {
      it(`${a}, ${mode}: three turns give the canonical summaries`, async () => {
        const run = await converse(url, `eq/${a}`, mocks[a], mode === 'stream');
        runs[mode][a] = run;
        assert.equal(run.upstream.length, 3, 'one upstream request per turn');
        run.turns.forEach((t, i) => assert.deepEqual(t.summary, EXPECTED[i], `turn ${i + 1} (${a}, ${mode})`));
      });
    }
  }

  const need = (mode, a) => {
    const r = runs[mode][a];
    assert.ok(r, `the ${a} ${mode} conversation did not complete (see its own test)`);
    return r;
  };

  for (const mode of MODES) {
    it(`${mode}: the three adapters agree turn by turn`, () => {
      const ref = need(mode, 'openai');
      for (const a of ['anthropic', 'gemini']) {
        const r = need(mode, a);
        for (let i = 0; i < 3; i++) assert.deepEqual(r.turns[i].summary, ref.turns[i].summary, `turn ${i + 1}: ${a} vs openai`);
      }
    });
  }

  it('stream and non-stream agree for every adapter', () => {
    for (const a of ADAPTERS) {
      const s = need('stream', a);
      const n = need('non-stream', a);
      for (let i = 0; i < 3; i++) assert.deepEqual(s.turns[i].summary, n.turns[i].summary, `${a} turn ${i + 1}`);
    }
  });

  it('stream and non-stream return the same reasoning_details (call ids aside)', () => {
    const norm = (ds) => ds.map(({ id, ...rest }) => ({ ...rest, id: id === undefined ? 'none' : typeof id }));
    for (const a of ADAPTERS) {
      for (let i = 0; i < 3; i++)
        assert.deepEqual(norm(need('stream', a).turns[i].reasoning_details), norm(need('non-stream', a).turns[i].reasoning_details), `${a} turn ${i + 1}`);
    }
  });

  for (const mode of MODES) {
    it(`${mode}: openai upstream gets the tool messages and the reasoning request`, () => {
      const run = need(mode, 'openai');
      const [r1, r2, r3] = run.upstream.map((r) => r.body);
      for (const b of [r1, r2, r3]) {
        assert.deepEqual(b.reasoning, REASONING, 'reasoning passed through');
        assert.deepEqual(b.tools, TOOLS);
        if (mode === 'stream') assert.equal(b.stream, true);
        else assert.ok(!b.stream, 'non-streaming client, non-streaming upstream request');
      }
      const ids = run.turns[0].message.tool_calls.map((t) => t.id);
      const msgs = r2.messages;
      assert.deepEqual(msgs.map((m) => m.role), ['system', 'user', 'assistant', 'tool', 'tool']);
      assert.deepEqual(
        msgs[2].tool_calls.map((t) => [t.id, t.function.name, JSON.parse(t.function.arguments)]),
        TOOL_SCENARIO.stages.tools.calls.map((c, i) => [ids[i], c.name, c.arguments]),
      );
      assert.deepEqual(msgs.slice(3).map((m) => [m.tool_call_id, m.content]), [[ids[0], RESULTS.get_weather], [ids[1], RESULTS.get_time]]);
      assert.deepEqual(r3.messages.map((m) => m.role), ['system', 'user', 'assistant', 'tool', 'tool', 'assistant', 'user']);
    });

    it(`${mode}: anthropic upstream gets thinking (signature replayed), tool_use and tool_result blocks`, () => {
      const run = need(mode, 'anthropic');
      const [r1, r2, r3] = run.upstream.map((r) => r.body);
      for (const b of [r1, r2, r3]) {
        assert.equal(b.thinking && b.thinking.type, 'enabled');
        assert.equal(b.thinking.budget_tokens, REASONING.max_tokens);
        assert.equal(textOf(b.system), 'You are a concise assistant.');
      }
      const t1 = run.turns[0];
      const sig = t1.reasoning_details.find((d) => d.type === 'reasoning.text' && d.signature);
      assert.ok(sig, `turn 1 returns a signed reasoning.text detail: ${JSON.stringify(t1.reasoning_details)}`);
      assert.equal(sig.text, TOOL_SCENARIO.stages.tools.reasoning);
      const ids = t1.message.tool_calls.map((t) => t.id);
      assert.ok(ids.every((id) => /^toolu_/.test(id)), 'Anthropic tool_use ids kept');

      const msgs = r2.messages;
      assert.deepEqual(msgs.map((m) => m.role), ['user', 'assistant', 'user']);
      const asst = msgs[1].content;
      assert.deepEqual(asst.map((b) => b.type), ['thinking', 'text', 'tool_use', 'tool_use']);
      assert.deepEqual({ thinking: asst[0].thinking, signature: asst[0].signature }, { thinking: sig.text, signature: sig.signature }, 'thinking replayed with its signature');
      assert.equal(asst[1].text, TOOL_SCENARIO.stages.tools.text);
      assert.deepEqual(
        asst.slice(2).map((b) => [b.id, b.name, b.input]),
        TOOL_SCENARIO.stages.tools.calls.map((c, i) => [ids[i], c.name, c.arguments]),
      );
      const results = msgs[2].content;
      assert.deepEqual(results.map((b) => b.type), ['tool_result', 'tool_result']);
      assert.deepEqual(results.map((b) => [b.tool_use_id, textOf(b.content)]), [[ids[0], RESULTS.get_weather], [ids[1], RESULTS.get_time]]);

      // Turn 3: the turn-2 answer's thinking is replayed as well.
      const sig2 = run.turns[1].reasoning_details.find((d) => d.type === 'reasoning.text' && d.signature);
      assert.ok(sig2, 'turn 2 returns a signed reasoning.text detail');
      assert.deepEqual(r3.messages.map((m) => m.role), ['user', 'assistant', 'user', 'assistant', 'user']);
      const a2 = r3.messages[3].content;
      assert.deepEqual(a2.map((b) => b.type), ['thinking', 'text']);
      assert.equal(a2[0].signature, sig2.signature);
      const last = r3.messages[4].content;
      assert.equal(textOf(last), 'Thanks!');
    });

    it(`${mode}: gemini upstream gets functionCall (thoughtSignature replayed) and functionResponse parts`, () => {
      const run = need(mode, 'gemini');
      const [r1, r2, r3] = run.upstream.map((r) => r.body);
      for (const b of [r1, r2, r3]) {
        assert.equal(b.generationConfig.thinkingConfig.includeThoughts, true);
        assert.equal(b.generationConfig.thinkingConfig.thinkingBudget, REASONING.max_tokens);
        assert.deepEqual(b.tools.flatMap((t) => t.functionDeclarations || []).map((f) => f.name), ['get_weather', 'get_time']);
      }
      const t1 = run.turns[0];
      const ids = t1.message.tool_calls.map((t) => t.id);
      const sig = t1.reasoning_details.find((d) => d.type === 'reasoning.encrypted' && d.format === 'google-gemini-v1');
      assert.ok(sig, `turn 1 returns the thoughtSignature as a reasoning detail: ${JSON.stringify(t1.reasoning_details)}`);
      assert.equal(sig.id, ids[0], 'the signature detail names the call it came on');

      const cs = r2.contents;
      assert.deepEqual(cs.map((c) => c.role), ['user', 'model', 'user']);
      const calls = cs[1].parts.filter((p) => p.functionCall);
      assert.deepEqual(calls.map((p) => [p.functionCall.name, p.functionCall.args]), TOOL_SCENARIO.stages.tools.calls.map((c) => [c.name, c.arguments]));
      assert.equal(calls[0].thoughtSignature, sig.data, 'thoughtSignature replayed on the first functionCall part');
      assert.ok(!('thoughtSignature' in calls[1]), 'no signature invented for the second call');
      assert.equal(textOf(cs[1].parts.filter((p) => typeof p.text === 'string' && !p.thought).map((p) => ({ type: 'text', text: p.text }))), TOOL_SCENARIO.stages.tools.text);
      const resp = cs[2].parts.filter((p) => p.functionResponse).map((p) => p.functionResponse);
      assert.deepEqual(resp.map((f) => [f.name, f.response]), [['get_weather', JSON.parse(RESULTS.get_weather)], ['get_time', { content: RESULTS.get_time }]]);
      assert.deepEqual(r3.contents.map((c) => c.role), ['user', 'model', 'user', 'model', 'user']);
    });
  }
});
