// Shared machinery for the mock upstreams (OpenAI, Anthropic, Gemini).
//
// A provider module supplies only what differs between wire formats (how a
// request is routed, how a reply/stream/error looks); this file owns the
// HTTP server, request recording and the failure behaviours, so that every
// mock fails in exactly the same, predictable ways.
//
// Behaviours (a name, or an object {name, ...params}):
//   ok                  normal answer
//   delay-N             wait N ms before sending headers (also: slow-first-byte, uses opts.delayMs)
//   slow-N              N ms between stream frames (also: slow-stream, uses opts.slowMs)
//   fail-500 / fail-429 / fail-400 / fail-529 / fail-503   provider-shaped error JSON
//   hang                read the request, never answer
//   reset               destroy the socket before answering
//   reset-midstream     stream 2 content frames, then destroy the socket
//   error-midstream     stream 2 content frames, then the provider's in-stream error event
//   stall-midstream     stream 2 content frames, then go silent with the response open
//   sse-error-body      an error JSON served with content-type text/event-stream (Gemini)
//   refuse              instance-level only: stop listening so connections are refused
// A request picks its behaviour by its model name: "fail-500" or "gpt-4o@fail-500".
// setBehavior(nameOrObjectOrFn) sets the instance default; a function
// (record) => behaviour|undefined is consulted first for every request.
import http from 'node:http';
import { pathToFileURL } from 'node:url';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Deterministic token count used by all mocks: whitespace-separated words. */
export function countTokens(text) {
  if (!text) return 0;
  return String(text).split(/\s+/).filter(Boolean).length;
}

/** Splits a reply into stream pieces: one word (with its leading space) each. */
export function splitWords(text) {
  const out = [];
  const re = /\s*\S+/g;
  let m;
  while ((m = re.exec(text)) !== null) out.push(m[0]);
  if (out.length === 0 && text) out.push(text);
  return out;
}

/** Cuts `text` to at most `max` words; returns {text, truncated}. */
export function truncateWords(text, max) {
  if (!max || max <= 0) return { text, truncated: false };
  const words = splitWords(text);
  if (words.length <= max) return { text, truncated: false };
  return { text: words.slice(0, max).join(''), truncated: true };
}

/** Stable short pseudo-random id from a seed (no Math.random: reproducible). */
export function stableId(seed, len = 24) {
  let h = 2166136261 >>> 0;
  const out = [];
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  for (let i = 0; out.length < len; i++) {
    h ^= seed.charCodeAt(i % Math.max(1, seed.length)) + i;
    h = Math.imul(h, 16777619) >>> 0;
    out.push(alphabet[h % alphabet.length]);
  }
  return out.join('');
}

/** Builds example arguments for a JSON-schema'd function from its parameters. */
export function exampleArgs(schema, hint) {
  const props = (schema && schema.properties) || {};
  const args = {};
  for (const [k, p] of Object.entries(props)) {
    const t = Array.isArray(p.type) ? p.type[0] : p.type;
    if (p.enum && p.enum.length) args[k] = p.enum[0];
    else if (t === 'number' || t === 'integer') args[k] = 1;
    else if (t === 'boolean') args[k] = true;
    else if (t === 'array') args[k] = [];
    else if (t === 'object') args[k] = {};
    else args[k] = hint || `${k}-value`;
  }
  return args;
}

const BEHAVIOR_RE =
  /^(ok|hang|reset|reset-midstream|error-midstream|stall-midstream|sse-error-body|slow-first-byte|slow-stream|refuse|fail-(\d{3})|delay-(\d+)|slow-(\d+))$/;

/** Parses a behaviour name ("delay-300") into {name, ...params}, or null. */
export function parseBehavior(spec) {
  if (spec == null) return null;
  if (typeof spec === 'object') return { ...spec };
  const m = BEHAVIOR_RE.exec(String(spec));
  if (!m) return null;
  if (m[2]) return { name: 'fail', status: Number(m[2]) };
  if (m[3]) return { name: 'delay', ms: Number(m[3]) };
  if (m[4]) return { name: 'slow', ms: Number(m[4]) };
  return { name: m[1] };
}

/** The behaviour a model name asks for: "fail-500" or "anything@fail-500". */
export function behaviorFromModel(model) {
  if (typeof model !== 'string') return null;
  const at = model.lastIndexOf('@');
  return parseBehavior(at >= 0 ? model.slice(at + 1) : model);
}

function readBody(req, limit = 64 * 1024 * 1024) {
  return new Promise((resolve, reject) => {
    const parts = [];
    let n = 0;
    req.on('data', (c) => {
      n += c.length;
      if (n > limit) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      parts.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(parts)));
    req.on('error', reject);
  });
}

/**
 * Starts a mock upstream.
 * provider: {
 *   name,
 *   route(req, url, rec) -> {kind, model} | null      (null: 404; rec.body is parsed)
 *   validate?(rec, ctx) -> errorResponse | null        (e.g. missing headers)
 *   reply(rec, ctx) -> {status?, headers?, json} | {frames:[{data, content?}], headers?}
 *   error(status, ctx) -> {status, headers, json}      provider-shaped error
 *   midstreamError(ctx) -> string                      raw SSE text of an in-stream error
 *   notFound?(req) -> {status, json}
 * }
 * opts: {port=0, host='127.0.0.1', behavior, reply, delayMs=1500, slowMs=200,
 *        chunkDelayMs=0, retryAfter='1', apiKey, cachedTokens=0, reasoningTokens=0,
 *        midstreamAfter=2, midstreamPauseMs=150}
 */
export async function startMock(provider, opts = {}) {
  const options = {
    host: '127.0.0.1',
    port: 0,
    delayMs: 1500,
    slowMs: 200,
    chunkDelayMs: 0,
    retryAfter: '1',
    cachedTokens: 0,
    reasoningTokens: 0,
    midstreamAfter: 2,
    midstreamPauseMs: 150,
    ...opts,
  };
  const requests = [];
  const waiters = [];
  const sockets = new Set();
  let instanceBehavior = opts.behavior ?? null;
  let listening = false;
  let seq = 0;

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, `http://${req.headers.host || '127.0.0.1'}`);
    const rec = {
      seq: ++seq,
      method: req.method,
      url: req.url,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: { ...req.headers },
      rawBody: '',
      body: undefined,
      receivedAt: Date.now(),
      behavior: null,
      status: null,
      framesSent: 0,
      finished: false, // the mock completed its answer
      clientClosed: false, // the peer went away before the answer completed
      closedAt: null,
    };
    let resolveClosed;
    rec.closed = new Promise((r) => (resolveClosed = r));
    res.on('close', () => {
      rec.closedAt = Date.now();
      if (!rec.finished) rec.clientClosed = true;
      resolveClosed(rec);
    });
    try {
      const buf = await readBody(req);
      rec.rawBody = buf.toString('utf8');
      try {
        rec.body = rec.rawBody ? JSON.parse(rec.rawBody) : undefined;
      } catch {
        rec.body = undefined;
      }
    } catch {
      return;
    }
    requests.push(rec);
    for (const w of waiters.splice(0)) w();
    try {
      await handle(req, res, url, rec);
    } catch (err) {
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`mock error: ${err && err.stack}`);
      } else res.destroy();
    }
  });
  server.keepAliveTimeout = 5000;
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  function pickBehavior(rec, route) {
    if (typeof instanceBehavior === 'function') {
      const b = parseBehavior(instanceBehavior(rec));
      if (b) return b;
    }
    return (
      behaviorFromModel(route && route.model) ||
      (typeof instanceBehavior === 'function' ? null : parseBehavior(instanceBehavior)) || { name: 'ok' }
    );
  }

  function sendJSON(res, rec, { status = 200, headers = {}, json, contentType }) {
    const body = typeof json === 'string' ? json : JSON.stringify(json);
    rec.status = status;
    res.writeHead(status, {
      'content-type': contentType || 'application/json',
      'content-length': Buffer.byteLength(body),
      ...headers,
    });
    res.end(body, () => {
      rec.finished = true;
    });
  }

  async function handle(req, res, url, rec) {
    const route = provider.route(req, url, rec);
    if (!route) {
      const nf = provider.notFound
        ? provider.notFound(req)
        : { status: 404, json: { error: { message: `no route ${req.method} ${url.pathname}` } } };
      return sendJSON(res, rec, nf);
    }
    rec.kind = route.kind;
    const ctx = { route, options, rec, url };
    const b = pickBehavior(rec, route);
    rec.behavior = b;

    const pre = b.name === 'delay' ? b.ms : b.name === 'slow-first-byte' ? options.delayMs : 0;
    if (pre > 0) {
      await sleep(pre);
      if (rec.clientClosed) return;
    }
    switch (b.name) {
      case 'hang':
        return; // keep the socket open forever (until close())
      case 'reset':
      case 'refuse': // a connection already accepted cannot be refused: reset it
        req.socket.destroy();
        return;
      case 'fail':
        return sendJSON(res, rec, provider.error(b.status, ctx));
      case 'sse-error-body': {
        const e = provider.error(b.status || 503, ctx);
        return sendJSON(res, rec, { ...e, contentType: 'text/event-stream' });
      }
      default:
        break;
    }

    if (options.apiKey && provider.checkAuth && !provider.checkAuth(rec, options.apiKey)) {
      return sendJSON(res, rec, provider.error(401, ctx));
    }
    const invalid = provider.validate ? provider.validate(rec, ctx) : null;
    if (invalid) return sendJSON(res, rec, invalid);

    const out = provider.reply(rec, ctx);
    if (!out.frames) return sendJSON(res, rec, out);

    const between = b.name === 'slow' ? b.ms : b.name === 'slow-stream' ? options.slowMs : options.chunkDelayMs;
    rec.status = 200;
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      ...(out.headers || {}),
    });
    res.flushHeaders();
    let contentFrames = 0;
    for (const frame of out.frames) {
      if (rec.clientClosed || res.destroyed) return;
      res.write(frame.data);
      rec.framesSent++;
      if (frame.content) contentFrames++;
      if (contentFrames >= options.midstreamAfter && frame.content) {
        if (b.name === 'reset-midstream') {
          await sleep(options.midstreamPauseMs);
          req.socket.destroy();
          return;
        }
        if (b.name === 'stall-midstream') return; // keep the response open, send nothing more
        if (b.name === 'error-midstream') {
          await sleep(options.midstreamPauseMs);
          res.end(provider.midstreamError(ctx), () => {
            rec.finished = true;
          });
          return;
        }
      }
      if (between > 0) await sleep(between);
    }
    res.end(() => {
      rec.finished = true;
    });
  }

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  listening = true;
  const port = server.address().port;

  function stopListening() {
    if (!listening) return Promise.resolve();
    listening = false;
    return new Promise((r) => {
      server.close(() => r());
      for (const s of sockets) s.destroy();
    });
  }

  return {
    port,
    url: `http://127.0.0.1:${port}`,
    server,
    options,
    requests,
    /** Sets the default behaviour (name, {name,...} or fn(record)). "refuse" stops listening. */
    setBehavior(b) {
      instanceBehavior = b;
      if (b === 'refuse' || (b && b.name === 'refuse')) return stopListening();
      return Promise.resolve();
    },
    /** Resolves when at least n requests have been recorded. */
    async waitForRequests(n = 1, timeoutMs = 10000) {
      const deadline = Date.now() + timeoutMs;
      while (requests.length < n) {
        if (Date.now() > deadline) throw new Error(`${provider.name} mock: ${requests.length}/${n} requests after ${timeoutMs} ms`);
        await new Promise((r) => {
          const t = setTimeout(r, Math.max(1, deadline - Date.now()));
          waiters.push(() => {
            clearTimeout(t);
            r();
          });
        });
      }
      return requests[n - 1];
    },
    reset() {
      requests.length = 0;
    },
    close() {
      return stopListening();
    },
  };
}

/** Standalone entry: `node tests/mocks/<x>.mjs --port 0 [--behavior NAME]` prints the port. */
export async function runStandalone(metaUrl, start) {
  if (!process.argv[1] || metaUrl !== pathToFileURL(process.argv[1]).href) return;
  const args = process.argv.slice(2);
  const opt = (name, dflt) => {
    const i = args.indexOf(name);
    return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
  };
  const mock = await start({
    port: Number(opt('--port', '0')),
    host: opt('--host', '127.0.0.1'),
    behavior: opt('--behavior', null),
  });
  process.stdout.write(`${mock.port}\n`);
  const stop = () => mock.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

// ---------------------------------------------------------------------------
// Tool scenario (tests/integration/equivalence.test.mjs): a fixed multi-turn
// tool-calling conversation answered identically by every mock, each in its
// own provider's wire shapes. Selected by an upstream model name starting
// with TOOL_SCENARIO.model; other model names never reach this code.
//   stage "tools":    no tool results yet -> reasoning, a short text, two
//                     parallel tool calls (finish tool_calls)
//   stage "answer":   the conversation ends with tool results -> reasoning +
//                     final text (finish stop)
//   stage "followup": tool results earlier, a user message last -> reasoning +
//                     short text (finish stop)
// Reasoning is only produced when the request turns it on.
// ---------------------------------------------------------------------------

export const TOOL_SCENARIO = Object.freeze({
  model: 'tool-scenario',
  tools: ['get_weather', 'get_time'],
  stages: {
    tools: {
      reasoning: 'The user wants the weather in Zürich and the time in Tokyo. Both are independent, so I call get_weather and get_time in parallel.',
      text: 'Let me check both.',
      calls: [
        { name: 'get_weather', arguments: { city: 'Zürich', unit: 'celsius', days: [1, 2], detail: { wind: true, note: 'say "hi"' } } },
        { name: 'get_time', arguments: { tz: 'Asia/Tokyo', format: '24h' } },
      ],
    },
    answer: {
      reasoning: 'Both tools answered: 18 degrees and sunny in Zürich, 21:05 in Tokyo. Summarise briefly.',
      text: 'Zürich: 18 °C and sunny. Tokyo: it is 21:05 "JST".',
      calls: [],
    },
    followup: {
      reasoning: 'The user says thanks; a short reply is enough.',
      text: 'You are welcome!',
      calls: [],
    },
  },
});

/** True when an upstream model name selects the tool scenario. */
export function isToolScenario(model) {
  return typeof model === 'string' && model.startsWith(TOOL_SCENARIO.model);
}

/** Signature the Anthropic/Gemini scenario attaches to a stage's reasoning. */
export function scenarioSignature(stage, prefix) {
  return `${prefix}${stableId(`${stage}:${TOOL_SCENARIO.stages[stage].reasoning}`, 64)}`;
}
