// Mock of Google's Gemini API: POST .../models/{model}:generateContent and
// .../models/{model}:streamGenerateContent?alt=sse, with the failure
// behaviours described in common.mjs. Specific to Gemini:
//   - fail-429 carries a google.rpc.RetryInfo {retryDelay:"<opts.retryDelay>"}
//     in the body and *no* Retry-After header;
//   - sse-error-body serves an error JSON with content-type text/event-stream;
//   - stream events are separated by CRLF CRLF, as Google sends them;
//   - thought parts ({text, thought:true}) when
//     generationConfig.thinkingConfig.includeThoughts is true;
//   - functionCall parts arrive whole and carry no id.
// The model name comes from the URL path (so "fail-500" works there too).
// Usage: promptTokenCount counts words of systemInstruction + contents,
// candidatesTokenCount the words of the answer, thoughtsTokenCount those of thoughts.
import {
  startMock, runStandalone, countTokens, splitWords, truncateWords, stableId, exampleArgs, TOOL_SCENARIO, isToolScenario, scenarioSignature,
} from './common.mjs';

export { countTokens };

function partsText(parts) {
  return (parts || [])
    .filter((p) => p && typeof p.text === 'string' && !p.thought)
    .map((p) => p.text)
    .join(' ');
}

export function promptTokensFor(body) {
  let n = 0;
  if (body.systemInstruction) n += countTokens(partsText(body.systemInstruction.parts));
  for (const c of body.contents || []) n += countTokens(partsText(c.parts));
  return n;
}

function lastUserText(body) {
  const cs = body.contents || [];
  for (let i = cs.length - 1; i >= 0; i--) if ((cs[i].role || 'user') === 'user') return partsText(cs[i].parts);
  return '';
}

export function functionCallsFor(body) {
  const decls = [];
  for (const t of body.tools || []) for (const f of t.functionDeclarations || []) decls.push(f);
  if (!decls.length) return [];
  const cfg = (body.toolConfig && body.toolConfig.functionCallingConfig) || {};
  const mode = cfg.mode || 'AUTO';
  if (mode === 'NONE') return [];
  let eligible = decls;
  if (Array.isArray(cfg.allowedFunctionNames) && cfg.allowedFunctionNames.length)
    eligible = decls.filter((d) => cfg.allowedFunctionNames.includes(d.name));
  if (mode !== 'ANY' && !/\btools?\b/i.test(lastUserText(body))) return [];
  return eligible.map((d) => ({ name: d.name, args: exampleArgs(d.parameters || d.parametersJsonSchema) }));
}

const STATUS = {
  400: ['INVALID_ARGUMENT', 'Request contains an invalid argument.'],
  403: ['PERMISSION_DENIED', 'Permission denied on resource project mock.'],
  404: ['NOT_FOUND', 'models/x is not found for API version v1beta, or is not supported for generateContent.'],
  429: ['RESOURCE_EXHAUSTED', 'You exceeded your current quota, please check your plan and billing details.'],
  500: ['INTERNAL', 'An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting'],
  503: ['UNAVAILABLE', 'The model is overloaded. Please try again later.'],
};

const provider = {
  name: 'gemini',
  route(req, url) {
    const m = /\/models\/([^/:]+):(generateContent|streamGenerateContent)$/.exec(url.pathname);
    if (req.method !== 'POST' || !m) return null;
    return { kind: m[2], model: decodeURIComponent(m[1]), stream: m[2] === 'streamGenerateContent', sse: url.searchParams.get('alt') === 'sse' };
  },
  notFound(req) {
    return { status: 404, json: { error: { code: 404, message: `Not found: ${req.url}`, status: 'NOT_FOUND' } } };
  },
  checkAuth(rec, key) {
    return rec.headers['x-goog-api-key'] === key || rec.query.key === key;
  },
  error(status, ctx) {
    const [st, message] = STATUS[status] || ['UNKNOWN', `mock error ${status}`];
    const error = { code: status, message, status: st };
    if (status === 429) {
      error.details = [
        {
          '@type': 'type.googleapis.com/google.rpc.QuotaFailure',
          violations: [{ quotaMetric: 'generativelanguage.googleapis.com/generate_content_free_tier_requests', quotaId: 'GenerateRequestsPerMinutePerProjectPerModel-FreeTier' }],
        },
        { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: ctx.options.retryDelay || '2s' },
      ];
    }
    return { status, json: { error } };
  },
  validate(rec, ctx) {
    const b = rec.body;
    if (!b || typeof b !== 'object') return { status: 400, json: { error: { code: 400, message: 'Invalid JSON payload received.', status: 'INVALID_ARGUMENT' } } };
    if (!Array.isArray(b.contents) || !b.contents.length)
      return { status: 400, json: { error: { code: 400, message: '* GenerateContentRequest.contents: contents is not specified\n', status: 'INVALID_ARGUMENT' } } };
    if (ctx.route.stream && !ctx.route.sse)
      return { status: 400, json: { error: { code: 400, message: 'mock only streams with alt=sse', status: 'INVALID_ARGUMENT' } } };
    return null;
  },
  reply(rec, ctx) {
    if (isToolScenario(ctx.route.model)) return scenarioReply(rec, ctx);
    const body = rec.body;
    const { options, route } = ctx;
    const gen = body.generationConfig || {};
    const thinkingCfg = gen.thinkingConfig || {};
    const calls = functionCallsFor(body);
    const full = options.reply ?? (lastUserText(body) || 'Hello from the Gemini mock.');
    const thoughts = thinkingCfg.includeThoughts ? `Thinking about: ${full}` : '';
    const { text, truncated } = calls.length ? { text: '', truncated: false } : truncateWords(full, gen.maxOutputTokens);
    const finishReason = truncated ? 'MAX_TOKENS' : 'STOP';
    const prompt = promptTokensFor(body);
    const candidates = countTokens(text) + calls.reduce((n, c) => n + 1 + Math.ceil(JSON.stringify(c.args).length / 4), 0);
    const usageMetadata = {
      promptTokenCount: prompt,
      candidatesTokenCount: candidates,
      totalTokenCount: prompt + candidates + countTokens(thoughts),
      promptTokensDetails: [{ modality: 'TEXT', tokenCount: prompt }],
    };
    if (thoughts) usageMetadata.thoughtsTokenCount = countTokens(thoughts);
    if (options.cachedTokens) usageMetadata.cachedContentTokenCount = options.cachedTokens;
    const responseId = stableId(`${rec.seq}:${rec.rawBody}`, 22);
    const modelVersion = route.model;

    if (!route.stream) {
      const parts = [];
      if (thoughts) parts.push({ text: thoughts, thought: true });
      if (text) parts.push({ text });
      for (const c of calls) parts.push({ functionCall: { name: c.name, args: c.args } });
      return {
        status: 200,
        json: {
          candidates: [{ content: { parts, role: 'model' }, finishReason, index: 0 }],
          usageMetadata,
          modelVersion,
          responseId,
        },
      };
    }

    const sep = options.crlf === false ? '\n\n' : '\r\n\r\n';
    const frames = [];
    const partial = { promptTokenCount: prompt, totalTokenCount: prompt, promptTokensDetails: usageMetadata.promptTokensDetails };
    const push = (parts, last = false, content = true) => {
      const cand = { content: { parts, role: 'model' }, index: 0 };
      if (last) cand.finishReason = finishReason;
      const obj = { candidates: [cand], usageMetadata: last ? usageMetadata : partial, modelVersion, responseId };
      frames.push({ data: `data: ${JSON.stringify(obj)}${sep}`, content });
    };
    const thoughtWords = splitWords(thoughts);
    for (let i = 0; i < thoughtWords.length; i += 2) push([{ text: thoughtWords.slice(i, i + 2).join(''), thought: true }]);
    const words = splitWords(text);
    // Gemini streams bigger pieces than OpenAI: two words per event.
    for (let i = 0; i < words.length; i += 2) {
      const last = !calls.length && i + 2 >= words.length;
      push([{ text: words.slice(i, i + 2).join('') }], last);
    }
    if (calls.length) push(calls.map((c) => ({ functionCall: { name: c.name, args: c.args } })), true);
    if (!calls.length && !words.length) push([{ text: '' }], true, false);
    return { frames };
  },
  midstreamError() {
    // Google ends a failing stream with an error object as the last event.
    return `data: ${JSON.stringify({ error: { code: 503, message: 'The model is overloaded. Please try again later.', status: 'UNAVAILABLE' } })}\r\n\r\n`;
  },
};

// --- tool scenario (see TOOL_SCENARIO in common.mjs) -------------------------

const THOUGHT_SIG_PREFIX = 'CiQBcsjafE';
const scenarioBad = (message) => ({ status: 400, json: { error: { code: 400, message, status: 'INVALID_ARGUMENT' } } });

/** Stage of the scenario conversation, or a 400 worded like Gemini's for the
 * rules of function calling (response count, thought signatures). */
function scenarioStage(body) {
  const cs = body.contents;
  for (let i = 0; i < cs.length; i++) {
    const parts = cs[i].parts || [];
    const calls = parts.filter((p) => p.functionCall);
    if (cs[i].role === 'model' && calls.length) {
      const next = cs[i + 1];
      const resp = next ? (next.parts || []).filter((p) => p.functionResponse) : [];
      if (next && resp.length !== calls.length)
        return scenarioBad(
          'Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn.',
        );
      const names = calls.map((p) => p.functionCall.name).sort();
      if (next && JSON.stringify(resp.map((p) => p.functionResponse.name).sort()) !== JSON.stringify(names))
        return scenarioBad('* GenerateContentRequest.contents[' + (i + 1) + '].parts: function response names do not match the function calls');
    }
  }
  const last = cs.at(-1);
  const hasResp = (c) => (c.role || 'user') === 'user' && (c.parts || []).some((p) => p.functionResponse);
  if (hasResp(last)) {
    // Gemini 3: the first functionCall part of the current turn must carry
    // the thought signature it was returned with.
    const prev = cs.at(-2);
    const parts = (prev && prev.parts) || [];
    const pos = parts.findIndex((p) => p.functionCall);
    if (pos >= 0 && parts[pos].thoughtSignature !== scenarioSignature('tools', THOUGHT_SIG_PREFIX))
      return scenarioBad(
        `Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly, and missing thought_signature may lead to degraded model performance. Additional data, function call \`default_api:${parts[pos].functionCall.name}\` , position ${pos + 1}. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details.`,
      );
    return 'answer';
  }
  if (cs.some(hasResp)) return 'followup';
  const names = [];
  for (const t of body.tools || []) for (const f of t.functionDeclarations || []) names.push(f.name);
  for (const n of TOOL_SCENARIO.tools) if (!names.includes(n)) return scenarioBad(`scenario: function ${n} not declared`);
  return 'tools';
}

/** The scenario as Gemini answers it: thought parts, a text part, then the
 * parallel functionCall parts whole in one event (no ids), the first one
 * carrying a thoughtSignature. */
function scenarioReply(rec, ctx) {
  const body = rec.body;
  const { route } = ctx;
  const stage = scenarioStage(body);
  if (typeof stage !== 'string') return stage;
  const sc = TOOL_SCENARIO.stages[stage];
  const thinkingCfg = (body.generationConfig && body.generationConfig.thinkingConfig) || {};
  const thoughts = thinkingCfg.includeThoughts ? sc.reasoning : '';
  const callParts = sc.calls.map((c, i) => {
    const p = { functionCall: { name: c.name, args: c.arguments } };
    if (i === 0) p.thoughtSignature = scenarioSignature(stage, THOUGHT_SIG_PREFIX);
    return p;
  });
  const prompt = promptTokensFor(body);
  const candidates = countTokens(sc.text) + sc.calls.reduce((n, c) => n + 1 + Math.ceil(JSON.stringify(c.arguments).length / 4), 0);
  const usageMetadata = {
    promptTokenCount: prompt,
    candidatesTokenCount: candidates,
    totalTokenCount: prompt + candidates + countTokens(thoughts),
    promptTokensDetails: [{ modality: 'TEXT', tokenCount: prompt }],
  };
  if (thoughts) usageMetadata.thoughtsTokenCount = countTokens(thoughts);
  const responseId = stableId(`${rec.seq}:${rec.rawBody}`, 22);
  const modelVersion = route.model;
  if (!route.stream) {
    const parts = [];
    if (thoughts) parts.push({ text: thoughts, thought: true });
    parts.push({ text: sc.text }, ...callParts);
    return { status: 200, json: { candidates: [{ content: { parts, role: 'model' }, finishReason: 'STOP', index: 0 }], usageMetadata, modelVersion, responseId } };
  }
  const frames = [];
  const partial = { promptTokenCount: prompt, totalTokenCount: prompt, promptTokensDetails: usageMetadata.promptTokensDetails };
  const push = (parts, last) => {
    const cand = { content: { parts, role: 'model' }, index: 0 };
    if (last) cand.finishReason = 'STOP';
    frames.push({ data: `data: ${JSON.stringify({ candidates: [cand], usageMetadata: last ? usageMetadata : partial, modelVersion, responseId })}\r\n\r\n`, content: true });
  };
  const tw = splitWords(thoughts);
  for (let i = 0; i < tw.length; i += 2) push([{ text: tw.slice(i, i + 2).join(''), thought: true }], false);
  const words = splitWords(sc.text);
  for (let i = 0; i < words.length; i += 2) push([{ text: words.slice(i, i + 2).join('') }], !callParts.length && i + 2 >= words.length);
  if (callParts.length) push(callParts, true);
  return { frames };
}

/** Starts the Gemini mock: {port, url, close(), requests, setBehavior(), waitForRequests()}. */
export function startGeminiMock(opts = {}) {
  return startMock(provider, opts);
}

await runStandalone(import.meta.url, startGeminiMock);
