// Mock of OpenAI's chat-completions API (POST .../chat/completions), JSON and
// SSE, with the failure behaviours described in common.mjs.
//
// Content is deterministic: the reply echoes the last user message (or
// opts.reply). When tools are given and the last user message mentions
// "tool" (or tool_choice is "required"/a named function), the reply is one
// tool call per eligible tool (parallel), or only the first one when
// parallel_tool_calls is false. Usage counts whitespace-separated words
// (countTokens) over all message texts and over the reply.
import { startMock, runStandalone, countTokens, splitWords, truncateWords, stableId, exampleArgs, TOOL_SCENARIO, isToolScenario } from './common.mjs';

export { countTokens };

/** Text of an OpenAI message content (string or array of parts). */
export function contentText(content) {
  if (content == null) return '';
  if (typeof content === 'string') return content;
  if (Array.isArray(content))
    return content
      .filter((p) => p && p.type === 'text')
      .map((p) => p.text)
      .join(' ');
  return '';
}

/** Prompt tokens the mock reports for a chat body. */
export function promptTokensFor(body) {
  let n = 0;
  for (const m of (body && body.messages) || []) n += countTokens(contentText(m.content));
  return n;
}

function lastUserText(body) {
  const msgs = (body && body.messages) || [];
  for (let i = msgs.length - 1; i >= 0; i--) if (msgs[i].role === 'user') return contentText(msgs[i].content);
  return '';
}

/** Which tools the mock will call for this body ([] = answer with text). */
export function toolCallsFor(body) {
  const tools = ((body && body.tools) || []).filter((t) => t && t.type === 'function' && t.function);
  if (tools.length === 0) return [];
  const choice = body.tool_choice;
  if (choice === 'none') return [];
  let eligible = tools;
  if (choice && typeof choice === 'object' && choice.function) {
    eligible = tools.filter((t) => t.function.name === choice.function.name);
  } else if (choice !== 'required' && !/\btools?\b/i.test(lastUserText(body))) {
    return [];
  }
  if (body.parallel_tool_calls === false) eligible = eligible.slice(0, 1);
  return eligible.map((t, i) => {
    const name = t.function.name;
    const args = JSON.stringify(exampleArgs(t.function.parameters));
    return { id: `call_${stableId(`${name}:${i}:${args}`)}`, name, arguments: args };
  });
}

/** Completion tokens for a tool call: one per started 4 characters of arguments. */
export function toolCallTokens(call) {
  return 1 + Math.ceil(call.arguments.length / 4);
}

function usageFor(body, completion, options) {
  const prompt = promptTokensFor(body);
  const u = {
    prompt_tokens: prompt,
    completion_tokens: completion + options.reasoningTokens,
    total_tokens: prompt + completion + options.reasoningTokens,
    prompt_tokens_details: { cached_tokens: options.cachedTokens, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: options.reasoningTokens,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
  return u;
}

const ERRORS = {
  400: { message: "Invalid 'messages': empty array. Expected an array with minimum length 1.", type: 'invalid_request_error', param: 'messages', code: 'empty_array' },
  401: { message: 'Incorrect API key provided: sk-wrong. You can find your API key at https://platform.openai.com/account/api-keys.', type: 'invalid_request_error', param: null, code: 'invalid_api_key' },
  404: { message: 'The model `x` does not exist or you do not have access to it.', type: 'invalid_request_error', param: null, code: 'model_not_found' },
  429: { message: 'Rate limit reached for gpt-4o in organization org-mock on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 1s.', type: 'requests', param: null, code: 'rate_limit_exceeded' },
  500: { message: 'The server had an error while processing your request. Sorry about that!', type: 'server_error', param: null, code: null },
  503: { message: 'The engine is currently overloaded, please try again later.', type: 'server_error', param: null, code: null },
};

const provider = {
  name: 'openai',
  route(req, url, rec) {
    if (req.method === 'POST' && url.pathname.endsWith('/chat/completions')) {
      return { kind: 'chat', model: rec.body && rec.body.model };
    }
    return null;
  },
  notFound(req) {
    return {
      status: 404,
      json: { error: { message: `Invalid URL (${req.method} ${req.url})`, type: 'invalid_request_error', param: null, code: null } },
    };
  },
  checkAuth(rec, key) {
    return rec.headers.authorization === `Bearer ${key}`;
  },
  error(status, ctx) {
    const e = ERRORS[status] || { message: `mock error ${status}`, type: 'server_error', param: null, code: null };
    const headers = { 'x-request-id': `req_${stableId(String(ctx.rec.seq), 16)}` };
    if (status === 429) {
      headers['retry-after'] = String(ctx.options.retryAfter);
      headers['x-ratelimit-limit-requests'] = '3';
      headers['x-ratelimit-remaining-requests'] = '0';
      headers['x-ratelimit-reset-requests'] = '1s';
    }
    return { status, headers, json: { error: e } };
  },
  validate(rec, ctx) {
    const b = rec.body;
    if (!b || typeof b !== 'object') {
      return { status: 400, json: { error: { message: "We could not parse the JSON body of your request.", type: 'invalid_request_error', param: null, code: null } } };
    }
    if (typeof b.model !== 'string' || !b.model) {
      return { status: 400, json: { error: { message: 'you must provide a model parameter', type: 'invalid_request_error', param: null, code: null } } };
    }
    if (!Array.isArray(b.messages) || b.messages.length === 0) return this.error(400, ctx);
    return null;
  },
  reply(rec, ctx) {
    if (isToolScenario(rec.body.model)) return scenarioReply(rec, ctx);
    const body = rec.body;
    const { options } = ctx;
    const id = `chatcmpl-${stableId(`${rec.seq}:${rec.rawBody}`, 29)}`;
    const created = Math.floor(rec.receivedAt / 1000);
    const model = body.model;
    const calls = toolCallsFor(body);
    const maxTokens = body.max_completion_tokens ?? body.max_tokens;
    const full = options.reply ?? (lastUserText(body) || 'Hello from the OpenAI mock.');
    const { text, truncated } = calls.length ? { text: '', truncated: false } : truncateWords(full, maxTokens);
    const finish = calls.length ? 'tool_calls' : truncated ? 'length' : 'stop';
    const completion = calls.length ? calls.reduce((n, c) => n + toolCallTokens(c), 0) : countTokens(text);
    const usage = usageFor(body, completion, options);
    const fingerprint = 'fp_mock0001';

    if (!body.stream) {
      const message = { role: 'assistant', content: calls.length ? null : text, refusal: null, annotations: [] };
      if (calls.length)
        message.tool_calls = calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } }));
      return {
        status: 200,
        headers: { 'x-request-id': `req_${stableId(id, 16)}`, 'openai-processing-ms': '12' },
        json: {
          id,
          object: 'chat.completion',
          created,
          model,
          choices: [{ index: 0, message, logprobs: null, finish_reason: finish }],
          usage,
          service_tier: 'default',
          system_fingerprint: fingerprint,
        },
      };
    }

    const includeUsage = !!(body.stream_options && body.stream_options.include_usage);
    const chunk = (delta, finish_reason = null, extra = {}) => {
      const c = {
        id,
        object: 'chat.completion.chunk',
        created,
        model,
        service_tier: 'default',
        system_fingerprint: fingerprint,
        choices: [{ index: 0, delta, logprobs: null, finish_reason }],
        ...extra,
      };
      if (includeUsage && !('usage' in extra)) c.usage = null;
      return c;
    };
    const frames = [];
    const push = (obj, content = false) => frames.push({ data: `data: ${JSON.stringify(obj)}\n\n`, content });
    if (calls.length) {
      push(chunk({ role: 'assistant', content: null, refusal: null }));
      calls.forEach((c, index) => {
        push(chunk({ tool_calls: [{ index, id: c.id, type: 'function', function: { name: c.name, arguments: '' } }] }), true);
        for (let i = 0; i < c.arguments.length; i += 8) {
          push(chunk({ tool_calls: [{ index, function: { arguments: c.arguments.slice(i, i + 8) } }] }), true);
        }
      });
    } else {
      push(chunk({ role: 'assistant', content: '', refusal: null }));
      for (const w of splitWords(text)) push(chunk({ content: w }), true);
    }
    push(chunk({}, finish));
    if (includeUsage) push({ id, object: 'chat.completion.chunk', created, model, service_tier: 'default', system_fingerprint: fingerprint, choices: [], usage });
    frames.push({ data: 'data: [DONE]\n\n' });
    return { frames, headers: { 'x-request-id': `req_${stableId(id, 16)}` } };
  },
  midstreamError() {
    return `data: ${JSON.stringify({ error: { message: 'The server had an error while processing your request. Sorry about that!', type: 'server_error', param: null, code: null } })}\n\n`;
  },
};

// --- tool scenario (see TOOL_SCENARIO in common.mjs) -------------------------

function scenarioBad(message, param = 'messages') {
  return { status: 400, json: { error: { message, type: 'invalid_request_error', param, code: null } } };
}

/** Stage of the scenario conversation, or an error response (OpenAI's own checks). */
function scenarioStage(body) {
  const msgs = body.messages;
  for (let i = 0; i < msgs.length; i++) {
    const m = msgs[i];
    if (m.role === 'tool') {
      let j = i - 1;
      while (j >= 0 && msgs[j].role === 'tool') j--;
      if (j < 0 || msgs[j].role !== 'assistant' || !Array.isArray(msgs[j].tool_calls))
        return scenarioBad("Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.", `messages.[${i}].role`);
    }
    if (m.role === 'assistant' && Array.isArray(m.tool_calls) && m.tool_calls.length) {
      const answered = new Set();
      for (let j = i + 1; j < msgs.length && msgs[j].role === 'tool'; j++) answered.add(msgs[j].tool_call_id);
      const missing = m.tool_calls.map((t) => t.id).filter((id) => !answered.has(id));
      if (missing.length)
        return scenarioBad(
          `An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: ${missing.join(', ')}`,
          `messages.[${i + 1}].role`,
        );
    }
  }
  const last = msgs.at(-1);
  if (last.role === 'tool') return 'answer';
  if (msgs.some((m) => m.role === 'tool')) return 'followup';
  const names = ((body.tools || []).map((t) => t && t.function && t.function.name));
  for (const n of TOOL_SCENARIO.tools) if (!names.includes(n)) return scenarioBad(`scenario: tool ${n} not declared`, 'tools');
  return 'tools';
}

function scenarioReasoningOn(body) {
  const r = body.reasoning;
  if (r && typeof r === 'object') return r.enabled !== false && r.effort !== 'none';
  return typeof body.reasoning_effort === 'string' && body.reasoning_effort !== 'none';
}

/** The scenario in chat-completions shapes: `reasoning` (message field and
 * deltas, as OpenAI-compatible reasoning servers send it), parallel
 * tool_calls whose arguments stream in 5-character fragments. */
function scenarioReply(rec, ctx) {
  const body = rec.body;
  const stage = scenarioStage(body);
  if (typeof stage !== 'string') return stage;
  const sc = TOOL_SCENARIO.stages[stage];
  const reasoning = scenarioReasoningOn(body) ? sc.reasoning : '';
  const calls = sc.calls.map((c, i) => ({
    id: `call_${stableId(`${rec.seq}:${c.name}:${i}`, 24)}`,
    name: c.name,
    arguments: JSON.stringify(c.arguments),
  }));
  const id = `chatcmpl-${stableId(`${rec.seq}:${rec.rawBody}`, 29)}`;
  const created = Math.floor(rec.receivedAt / 1000);
  const model = body.model;
  const finish = calls.length ? 'tool_calls' : 'stop';
  const prompt = promptTokensFor(body);
  const rtok = countTokens(reasoning);
  const completion = countTokens(sc.text) + rtok + calls.reduce((n, c) => n + toolCallTokens(c), 0);
  const usage = {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: rtok, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
  };
  const fingerprint = 'fp_mock0001';
  const headers = { 'x-request-id': `req_${stableId(id, 16)}` };
  if (!body.stream) {
    const message = { role: 'assistant', content: sc.text, refusal: null, annotations: [] };
    if (reasoning) message.reasoning = reasoning;
    if (calls.length)
      message.tool_calls = calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } }));
    return {
      status: 200,
      headers,
      json: { id, object: 'chat.completion', created, model, choices: [{ index: 0, message, logprobs: null, finish_reason: finish }], usage, system_fingerprint: fingerprint },
    };
  }
  const includeUsage = !!(body.stream_options && body.stream_options.include_usage);
  const frames = [];
  const push = (delta, finish_reason = null, content = true) => {
    const c = { id, object: 'chat.completion.chunk', created, model, system_fingerprint: fingerprint, choices: [{ index: 0, delta, logprobs: null, finish_reason }] };
    if (includeUsage) c.usage = null;
    frames.push({ data: `data: ${JSON.stringify(c)}\n\n`, content });
  };
  push({ role: 'assistant', content: '', refusal: null }, null, false);
  for (const w of splitWords(reasoning)) push({ reasoning: w });
  for (const w of splitWords(sc.text)) push({ content: w });
  calls.forEach((c, index) => {
    push({ tool_calls: [{ index, id: c.id, type: 'function', function: { name: c.name, arguments: '' } }] });
    for (let i = 0; i < c.arguments.length; i += 5) push({ tool_calls: [{ index, function: { arguments: c.arguments.slice(i, i + 5) } }] });
  });
  push({}, finish, false);
  if (includeUsage)
    frames.push({ data: `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, system_fingerprint: fingerprint, choices: [], usage })}\n\n` });
  frames.push({ data: 'data: [DONE]\n\n' });
  return { frames, headers };
}

/** Starts the OpenAI mock: {port, url, close(), requests, setBehavior(), waitForRequests()}. */
export function startOpenAIMock(opts = {}) {
  return startMock(provider, opts);
}

await runStandalone(import.meta.url, startOpenAIMock);
