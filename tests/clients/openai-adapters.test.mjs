// The official `openai` npm SDK against llmux (baseURL .../api/v1) through
// each provider adapter (openai, anthropic, gemini plugins, each at its mock)
// with tools, reasoning and streaming: chat.completions.create non-stream and
// stream (iterating chunks), and the SDK's stream helper. Each adapter runs
// the two first turns of TOOL_SCENARIO (tests/mocks/common.mjs): parallel tool
// calls, then the tool results sent back and the final answer.
// Needs `npm ci` in tests/clients; skips with a message when it was not run.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TOOL_SCENARIO } from '../mocks/common.mjs';
import { loadClientSdk } from '../integration/harness.mjs';
import {
  SCENARIO_TOOLS as TOOLS, SCENARIO_RESULTS as RESULTS, SCENARIO_MESSAGES as MESSAGES, SCENARIO_ADAPTERS, startScenarioAdapters,
} from '../integration/scenario.mjs';

const { sdk: OpenAI, skip } = await loadClientSdk(() => import('openai'), 'the openai SDK');

const TOOLS_STAGE = TOOL_SCENARIO.stages.tools;
const ANSWER_STAGE = TOOL_SCENARIO.stages.answer;
// `reasoning` is an OpenRouter field: the SDK sends unknown body keys as they are.
const common = (m) => ({ model: m, tools: TOOLS, tool_choice: 'auto', reasoning: { max_tokens: 2048 }, max_tokens: 4096 });

function checkToolCalls(calls) {
  assert.equal(calls.length, 2, JSON.stringify(calls));
  assert.deepEqual(
    calls.map((t) => [t.type, t.function.name, JSON.parse(t.function.arguments)]),
    TOOLS_STAGE.calls.map((c) => ['function', c.name, c.arguments]),
  );
  assert.ok(calls.every((t) => typeof t.id === 'string' && t.id.length > 0), 'tool call ids');
  assert.notEqual(calls[0].id, calls[1].id, 'distinct tool call ids');
}

function checkUsage(u) {
  assert.ok(u, 'usage present');
  assert.ok(u.prompt_tokens > 0 && u.completion_tokens > 0, JSON.stringify(u));
  assert.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens);
  assert.ok(typeof u.cost === 'number' && u.cost > 0, `usage.cost ${u.cost}`);
}

const toolResults = (calls) => calls.map((t) => ({ role: 'tool', tool_call_id: t.id, content: RESULTS[t.function.name] }));

/** Iterates an SDK stream; returns {content, reasoning, reasoning_details, tool_calls, finish, usage, n}. */
async function drain(stream) {
  const out = { content: '', reasoning: '', reasoning_details: [], tool_calls: [], finish: null, usage: null, n: 0 };
  for await (const chunk of stream) {
    out.n++;
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (chunk.usage) out.usage = chunk.usage;
    for (const ch of chunk.choices) {
      const d = ch.delta;
      out.content += d.content ?? '';
      out.reasoning += d.reasoning ?? '';
      if (Array.isArray(d.reasoning_details)) out.reasoning_details.push(...d.reasoning_details);
      for (const tc of d.tool_calls ?? []) {
        const slot = (out.tool_calls[tc.index] ??= { id: undefined, type: undefined, function: { name: '', arguments: '' } });
        if (tc.id) slot.id = tc.id;
        if (tc.type) slot.type = tc.type;
        if (tc.function?.name) slot.function.name += tc.function.name;
        if (tc.function?.arguments) slot.function.arguments += tc.function.arguments;
      }
      if (ch.finish_reason) out.finish = ch.finish_reason;
    }
  }
  return out;
}

describe('openai SDK through the openai, anthropic and gemini adapters', { skip, timeout: 90000 }, () => {
  let trio, client;
  before(async () => {
    const params = ['temperature', 'max_tokens', 'tools', 'tool_choice', 'parallel_tool_calls', 'reasoning', 'stream_options'];
    trio = await startScenarioAdapters('sdk', params);
    client = new OpenAI({ baseURL: `${trio.gw.url}/api/v1`, apiKey: 'test', maxRetries: 0, timeout: 20000 });
  });
  after(() => trio && trio.stop());

  for (const a of SCENARIO_ADAPTERS) {
    const m = `sdk/${a}`;

    it(`${a}: create() non-stream: parallel tool calls, then the answer`, async () => {
      const r1 = await client.chat.completions.create({ ...common(m), messages: MESSAGES });
      assert.equal(r1.object, 'chat.completion');
      assert.equal(r1.model, m);
      const c1 = r1.choices[0];
      assert.equal(c1.finish_reason, 'tool_calls');
      assert.equal(c1.message.role, 'assistant');
      assert.equal(c1.message.content, TOOLS_STAGE.text);
      assert.equal(c1.message.reasoning, TOOLS_STAGE.reasoning, 'reasoning survives the SDK');
      checkToolCalls(c1.message.tool_calls);
      checkUsage(r1.usage);

      // The message goes back exactly as the SDK returned it.
      const r2 = await client.chat.completions.create({
        ...common(m),
        messages: [...MESSAGES, c1.message, ...toolResults(c1.message.tool_calls)],
      });
      const c2 = r2.choices[0];
      assert.equal(c2.finish_reason, 'stop');
      assert.equal(c2.message.content, ANSWER_STAGE.text);
      assert.equal(c2.message.reasoning, ANSWER_STAGE.reasoning);
      assert.ok(!c2.message.tool_calls || c2.message.tool_calls.length === 0);
      checkUsage(r2.usage);
    });

    it(`${a}: create() stream: tool-call fragments by index, then the answer`, async () => {
      const s1 = await drain(
        await client.chat.completions.create({ ...common(m), messages: MESSAGES, stream: true, stream_options: { include_usage: true } }),
      );
      assert.ok(s1.n >= 3, `several chunks (${s1.n})`);
      assert.equal(s1.finish, 'tool_calls');
      assert.equal(s1.content, TOOLS_STAGE.text);
      assert.equal(s1.reasoning, TOOLS_STAGE.reasoning);
      checkToolCalls(s1.tool_calls);
      checkUsage(s1.usage);

      const asst = { role: 'assistant', content: s1.content, tool_calls: s1.tool_calls, reasoning: s1.reasoning };
      if (s1.reasoning_details.length) asst.reasoning_details = s1.reasoning_details;
      const s2 = await drain(
        await client.chat.completions.create({
          ...common(m),
          messages: [...MESSAGES, asst, ...toolResults(s1.tool_calls)],
          stream: true,
          stream_options: { include_usage: true },
        }),
      );
      assert.equal(s2.finish, 'stop');
      assert.equal(s2.content, ANSWER_STAGE.text);
      assert.equal(s2.reasoning, ANSWER_STAGE.reasoning);
      assert.equal(s2.tool_calls.length, 0);
      checkUsage(s2.usage);
    });

    it(`${a}: the stream helper assembles tool calls and content`, async () => {
      const runner = client.chat.completions.stream({ ...common(m), messages: MESSAGES });
      const done = [];
      runner.on('tool_calls.function.arguments.done', (e) => done.push(e.name));
      const final = await runner.finalChatCompletion();
      const c = final.choices[0];
      assert.equal(c.finish_reason, 'tool_calls');
      assert.equal(c.message.content, TOOLS_STAGE.text);
      checkToolCalls(c.message.tool_calls);
      assert.deepEqual(done, TOOLS_STAGE.calls.map((x) => x.name), 'one arguments.done event per call, in order');
      checkUsage(final.usage);

      // Turn 2 with the tool calls from the helper. The helper's message is
      // not replayed whole: it keeps only the last delta of non-OpenAI fields
      // (reasoning, reasoning_details), an SDK limitation; replay of those is
      // covered by the create() tests above and tests/integration/equivalence.
      const details = [];
      const runner1 = client.chat.completions.stream({ ...common(m), messages: MESSAGES });
      runner1.on('chunk', (ch) => {
        for (const x of ch.choices) if (Array.isArray(x.delta.reasoning_details)) details.push(...x.delta.reasoning_details);
      });
      const f1 = await runner1.finalChatCompletion();
      const tc = f1.choices[0].message.tool_calls.map((t) => ({ id: t.id, type: t.type, function: { name: t.function.name, arguments: t.function.arguments } }));
      const asst = { role: 'assistant', content: f1.choices[0].message.content, tool_calls: tc };
      if (details.length) asst.reasoning_details = details;
      const runner2 = client.chat.completions.stream({ ...common(m), messages: [...MESSAGES, asst, ...toolResults(tc)] });
      const deltas = [];
      runner2.on('content', (d) => deltas.push(d));
      const f2 = await runner2.finalChatCompletion();
      assert.equal(f2.choices[0].finish_reason, 'stop');
      assert.equal(f2.choices[0].message.content, ANSWER_STAGE.text);
      assert.equal(deltas.join(''), ANSWER_STAGE.text);
      checkUsage(f2.usage);
    });
  }
});
