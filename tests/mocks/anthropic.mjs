// Mock of Anthropic's Messages API (POST .../v1/messages), JSON and SSE, with
// the failure behaviours described in common.mjs (plus fail-529 =
// overloaded_error, and error-midstream = an `event: error` after content).
//
// Faithful where a gateway can trip: anthropic-version is required; version
// "2026-10-21" takes the key as a Bearer token and rejects temperature/top_p/top_k
// ("Extra inputs are not permitted"); max_tokens is required. With
// `thinking: {type:"enabled"}` the reply starts with a thinking block
// (thinking_delta + signature_delta). Tools are called when the last user
// message mentions "tool" or tool_choice is {type:"any"|"tool"}.
// Usage: input_tokens counts words of system + message texts,
// output_tokens the words of thinking + text (+ tool-input size).
import {
  startMock, runStandalone, countTokens, splitWords, truncateWords, stableId, exampleArgs, TOOL_SCENARIO, isToolScenario, scenarioSignature,
} from './common.mjs';

export { countTokens };

export const NEW_VERSION = '2026-10-21';

function blocksText(content) {
  if (content == null) return '';
  if (typeof content === 'string') return content;
  if (Array.isArray(content))
    return content
      .filter((b) => b && b.type === 'text')
      .map((b) => b.text)
      .join(' ');
  return '';
}

/** input_tokens the mock reports (before cache accounting). */
export function inputTokensFor(body) {
  let n = 0;
  if (body.system) n += countTokens(blocksText(body.system));
  for (const m of body.messages || []) n += countTokens(blocksText(m.content));
  return n;
}

function lastUserText(body) {
  const msgs = body.messages || [];
  for (let i = msgs.length - 1; i >= 0; i--) if (msgs[i].role === 'user') return blocksText(msgs[i].content);
  return '';
}

export function toolUsesFor(body) {
  const tools = (body.tools || []).filter((t) => t && t.name && t.input_schema);
  if (!tools.length) return [];
  const choice = body.tool_choice || { type: 'auto' };
  if (choice.type === 'none') return [];
  let eligible = tools;
  if (choice.type === 'tool') eligible = tools.filter((t) => t.name === choice.name);
  else if (choice.type !== 'any' && !/\btools?\b/i.test(lastUserText(body))) return [];
  if (choice.disable_parallel_tool_use) eligible = eligible.slice(0, 1);
  return eligible.map((t, i) => ({
    id: `toolu_${stableId(`${t.name}:${i}`, 24)}`,
    name: t.name,
    input: exampleArgs(t.input_schema),
  }));
}

const ERROR_TYPES = {
  400: ['invalid_request_error', 'messages: at least one message is required'],
  401: ['authentication_error', 'invalid x-api-key'],
  403: ['permission_error', 'Your API key does not have permission to use the specified resource.'],
  404: ['not_found_error', 'model: not found'],
  413: ['request_too_large', 'Request exceeds the maximum allowed number of bytes.'],
  429: ['rate_limit_error', 'This request would exceed the rate limit for your organization of 50 requests per minute.'],
  500: ['api_error', 'Internal server error'],
  529: ['overloaded_error', 'Overloaded'],
};

function errorBody(type, message, requestId) {
  const e = { type: 'error', error: { type, message } };
  if (requestId) e.request_id = requestId;
  return e;
}

const provider = {
  name: 'anthropic',
  route(req, url, rec) {
    if (req.method === 'POST' && url.pathname.endsWith('/messages')) return { kind: 'messages', model: rec.body && rec.body.model };
    return null;
  },
  notFound(req) {
    return { status: 404, json: errorBody('not_found_error', `Not Found: ${req.method} ${req.url}`) };
  },
  checkAuth(rec, key) {
    const v = rec.headers['anthropic-version'];
    if (v === NEW_VERSION) return rec.headers.authorization === `Bearer ${key}`;
    return rec.headers['x-api-key'] === key;
  },
  error(status, ctx) {
    const [type, message] = ERROR_TYPES[status] || ['api_error', `mock error ${status}`];
    const requestId = `req_${stableId(String(ctx.rec.seq), 24)}`;
    const headers = { 'request-id': requestId };
    if (status === 429) {
      headers['retry-after'] = String(ctx.options.retryAfter);
      headers['anthropic-ratelimit-requests-limit'] = '50';
      headers['anthropic-ratelimit-requests-remaining'] = '0';
    }
    return { status, headers, json: errorBody(type, message, requestId) };
  },
  validate(rec) {
    const bad = (msg) => ({ status: 400, json: errorBody('invalid_request_error', msg) });
    const version = rec.headers['anthropic-version'];
    if (!version) return bad('anthropic-version: header is required');
    const b = rec.body;
    if (!b || typeof b !== 'object') return bad('There was an issue with your request body: could not parse JSON');
    if (version === NEW_VERSION) {
      for (const k of ['temperature', 'top_p', 'top_k']) if (k in b) return bad(`${k}: Extra inputs are not permitted`);
    }
    if (typeof b.model !== 'string') return bad('model: Field required');
    if (typeof b.max_tokens !== 'number') return bad('max_tokens: Field required');
    if (!Array.isArray(b.messages) || !b.messages.length) return bad('messages: at least one message is required');
    if (b.messages[0].role !== 'user') return bad('messages: first message must use the "user" role');
    return null;
  },
  reply(rec, ctx) {
    if (isToolScenario(rec.body.model)) return scenarioReply(rec);
    const body = rec.body;
    const { options } = ctx;
    const id = `msg_${stableId(`${rec.seq}:${rec.rawBody}`, 24)}`;
    const model = body.model;
    const uses = toolUsesFor(body);
    const thinkingOn = body.thinking && body.thinking.type === 'enabled';
    const full = options.reply ?? (lastUserText(body) || 'Hello from the Anthropic mock.');
    const thinking = thinkingOn ? `Thinking about: ${full}` : '';
    const signature = thinkingOn ? `sig_${stableId(thinking, 48)}` : '';
    const { text, truncated } = uses.length ? { text: '', truncated: false } : truncateWords(full, body.max_tokens);
    const stop = uses.length ? 'tool_use' : truncated ? 'max_tokens' : 'end_turn';
    const inputs = uses.map((u) => JSON.stringify(u.input));
    const output =
      countTokens(thinking) + countTokens(text) + inputs.reduce((n, s) => n + 1 + Math.ceil(s.length / 4), 0);
    const cached = options.cachedTokens;
    const usage = {
      input_tokens: Math.max(0, inputTokensFor(body) - cached),
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: cached,
      output_tokens: output,
      service_tier: 'standard',
    };

    if (!body.stream) {
      const content = [];
      if (thinkingOn) content.push({ type: 'thinking', thinking, signature });
      if (!uses.length) content.push({ type: 'text', text });
      for (const u of uses) content.push({ type: 'tool_use', id: u.id, name: u.name, input: u.input });
      return {
        status: 200,
        headers: { 'request-id': `req_${stableId(id, 24)}` },
        json: { id, type: 'message', role: 'assistant', model, content, stop_reason: stop, stop_sequence: null, usage },
      };
    }

    const frames = [];
    const ev = (name, obj, content = false) => frames.push({ data: `event: ${name}\ndata: ${JSON.stringify(obj)}\n\n`, content });
    ev('message_start', {
      type: 'message_start',
      message: {
        id, type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null,
        usage: { ...usage, output_tokens: 1 },
      },
    });
    let index = 0;
    if (thinkingOn) {
      ev('content_block_start', { type: 'content_block_start', index, content_block: { type: 'thinking', thinking: '', signature: '' } });
      for (const w of splitWords(thinking)) ev('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'thinking_delta', thinking: w } }, true);
      ev('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'signature_delta', signature } });
      ev('content_block_stop', { type: 'content_block_stop', index });
      index++;
    }
    if (!uses.length) {
      ev('content_block_start', { type: 'content_block_start', index, content_block: { type: 'text', text: '' } });
      if (index === 0) ev('ping', { type: 'ping' });
      for (const w of splitWords(text)) ev('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'text_delta', text: w } }, true);
      ev('content_block_stop', { type: 'content_block_stop', index });
      index++;
    }
    uses.forEach((u, k) => {
      ev('content_block_start', { type: 'content_block_start', index, content_block: { type: 'tool_use', id: u.id, name: u.name, input: {} } });
      if (index === 0) ev('ping', { type: 'ping' });
      ev('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: '' } });
      const s = inputs[k];
      for (let i = 0; i < s.length; i += 7)
        ev('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: s.slice(i, i + 7) } }, true);
      ev('content_block_stop', { type: 'content_block_stop', index });
      index++;
    });
    ev('message_delta', {
      type: 'message_delta',
      delta: { stop_reason: stop, stop_sequence: null },
      usage: { output_tokens: output },
    });
    ev('message_stop', { type: 'message_stop' });
    return { frames, headers: { 'request-id': `req_${stableId(id, 24)}` } };
  },
  midstreamError() {
    return `event: error\ndata: ${JSON.stringify(errorBody('overloaded_error', 'Overloaded'))}\n\n`;
  },
};

// --- tool scenario (see TOOL_SCENARIO in common.mjs) -------------------------

const SIG_PREFIX = 'ErUBCkYIBRgCIkB';
const scenarioBad = (msg) => ({ status: 400, json: errorBody('invalid_request_error', msg, 'req_scenario') });
const blocks = (content) => (Array.isArray(content) ? content : typeof content === 'string' ? [{ type: 'text', text: content }] : []);

/** Stage of the scenario conversation, or a 400 with the Messages API's own
 * wording for the rules a tool + thinking conversation must follow. */
function scenarioStage(body) {
  const msgs = body.messages;
  const thinkingOn = body.thinking && body.thinking.type === 'enabled';
  const issued = new Map(Object.keys(TOOL_SCENARIO.stages).map((st) => [scenarioSignature(st, SIG_PREFIX), TOOL_SCENARIO.stages[st].reasoning]));
  for (let i = 0; i < msgs.length; i++) {
    const bs = blocks(msgs[i].content);
    if (msgs[i].role === 'assistant') {
      for (let k = 0; k < bs.length; k++) {
        if (bs[k].type !== 'thinking') continue;
        if (issued.get(bs[k].signature) !== bs[k].thinking) return scenarioBad(`messages.${i}.content.${k}: Invalid \`signature\` in \`thinking\` block`);
      }
      const uses = bs.filter((b) => b.type === 'tool_use').map((b) => b.id);
      if (uses.length) {
        const next = msgs[i + 1];
        const results = next && next.role === 'user' ? blocks(next.content).filter((b) => b.type === 'tool_result').map((b) => b.tool_use_id) : [];
        const missing = uses.filter((id) => !results.includes(id));
        if (missing.length)
          return scenarioBad(
            `messages.${i + 1}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${missing.join(', ')}. Each \`tool_use\` block must have a corresponding \`tool_result\` block in the next message.`,
          );
      }
    } else {
      const prev = msgs[i - 1];
      const uses = prev ? blocks(prev.content).filter((b) => b.type === 'tool_use').map((b) => b.id) : [];
      for (let k = 0; k < bs.length; k++) {
        if (bs[k].type === 'tool_result' && !uses.includes(bs[k].tool_use_id))
          return scenarioBad(
            `messages.${i}.content.${k}: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ${bs[k].tool_use_id}. Each \`tool_result\` block must have a corresponding \`tool_use\` block in the previous message.`,
          );
      }
    }
  }
  const last = msgs.at(-1);
  const hasResults = (m) => m.role === 'user' && blocks(m.content).some((b) => b.type === 'tool_result');
  if (hasResults(last)) {
    const asst = msgs.at(-2);
    const first = asst && blocks(asst.content)[0];
    if (thinkingOn && (!first || (first.type !== 'thinking' && first.type !== 'redacted_thinking')))
      return scenarioBad(
        `messages.${msgs.length - 2}.content.0.type: Expected \`thinking\` or \`redacted_thinking\`, but found \`${first ? first.type : 'nothing'}\`. When \`thinking\` is enabled, a final \`assistant\` message must start with a thinking block (preceeding the lastmost set of \`tool_use\` and \`tool_result\` blocks). We recommend you include thinking blocks from previous turns. To avoid this requirement, disable \`thinking\`. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking`,
      );
    return 'answer';
  }
  if (msgs.some(hasResults)) return 'followup';
  const names = (body.tools || []).map((t) => t && t.name);
  for (const n of TOOL_SCENARIO.tools) if (!names.includes(n)) return scenarioBad(`scenario: tool ${n} not declared`);
  return 'tools';
}

/** The scenario as Claude answers it: a signed thinking block, a text block,
 * then parallel tool_use blocks whose input streams as input_json_delta
 * fragments of 7 characters. */
function scenarioReply(rec) {
  const body = rec.body;
  const stage = scenarioStage(body);
  if (typeof stage !== 'string') return stage;
  const sc = TOOL_SCENARIO.stages[stage];
  const thinkingOn = body.thinking && body.thinking.type === 'enabled';
  const thinking = thinkingOn ? sc.reasoning : '';
  const signature = thinkingOn ? scenarioSignature(stage, SIG_PREFIX) : '';
  const uses = sc.calls.map((c, i) => ({ id: `toolu_${stableId(`${rec.seq}:${c.name}:${i}`, 24)}`, name: c.name, input: c.arguments }));
  const inputs = uses.map((u) => JSON.stringify(u.input));
  const stop = uses.length ? 'tool_use' : 'end_turn';
  const id = `msg_${stableId(`${rec.seq}:${rec.rawBody}`, 24)}`;
  const model = body.model;
  const output = countTokens(thinking) + countTokens(sc.text) + inputs.reduce((n, s) => n + 1 + Math.ceil(s.length / 4), 0);
  const usage = { input_tokens: inputTokensFor(body), cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: output, service_tier: 'standard' };
  const headers = { 'request-id': `req_${stableId(id, 24)}` };
  if (!body.stream) {
    const content = [];
    if (thinking) content.push({ type: 'thinking', thinking, signature });
    content.push({ type: 'text', text: sc.text });
    for (const u of uses) content.push({ type: 'tool_use', id: u.id, name: u.name, input: u.input });
    return { status: 200, headers, json: { id, type: 'message', role: 'assistant', model, content, stop_reason: stop, stop_sequence: null, usage } };
  }
  const frames = [];
  const ev = (name, obj, content = false) => frames.push({ data: `event: ${name}\ndata: ${JSON.stringify(obj)}\n\n`, content });
  const delta = (index, d) => ev('content_block_delta', { type: 'content_block_delta', index, delta: d }, true);
  ev('message_start', {
    type: 'message_start',
    message: { id, type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null, usage: { ...usage, output_tokens: 1 } },
  });
  let index = 0;
  const start = (block) => {
    ev('content_block_start', { type: 'content_block_start', index, content_block: block });
    if (index === 0) ev('ping', { type: 'ping' });
  };
  const stopBlock = () => ev('content_block_stop', { type: 'content_block_stop', index: index++ });
  if (thinking) {
    start({ type: 'thinking', thinking: '', signature: '' });
    for (const w of splitWords(thinking)) delta(index, { type: 'thinking_delta', thinking: w });
    delta(index, { type: 'signature_delta', signature });
    stopBlock();
  }
  start({ type: 'text', text: '' });
  for (const w of splitWords(sc.text)) delta(index, { type: 'text_delta', text: w });
  stopBlock();
  uses.forEach((u, k) => {
    start({ type: 'tool_use', id: u.id, name: u.name, input: {} });
    delta(index, { type: 'input_json_delta', partial_json: '' });
    for (let i = 0; i < inputs[k].length; i += 7) delta(index, { type: 'input_json_delta', partial_json: inputs[k].slice(i, i + 7) });
    stopBlock();
  });
  ev('message_delta', { type: 'message_delta', delta: { stop_reason: stop, stop_sequence: null }, usage: { output_tokens: output } });
  ev('message_stop', { type: 'message_stop' });
  return { frames, headers };
}

/** Starts the Anthropic mock: {port, url, close(), requests, setBehavior(), waitForRequests()}. */
export function startAnthropicMock(opts = {}) {
  return startMock(provider, opts);
}

await runStandalone(import.meta.url, startAnthropicMock);
