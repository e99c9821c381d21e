// Test harness: runs a real llmux on 127.0.0.1 against mock upstreams.
//
//   const gw = await startLlmux({ config: luaText });   // or no config: embedded default
//   await fetch(`${gw.url}/api/v1/chat/completions`, ...)
//   await gw.stop();
//
// LLMUX_BUILD_DIR (default ./build) locates the binary and plugins;
// LLMUX_SOURCE_DIR (default: this repo) is the working directory.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const SOURCE_DIR = path.resolve(process.env.LLMUX_SOURCE_DIR || path.join(here, '..', '..'));
export const BUILD_DIR = path.resolve(SOURCE_DIR, process.env.LLMUX_BUILD_DIR || 'build');
export const LLMUX_BIN = path.join(BUILD_DIR, 'llmux');
export const PLUGIN_DIR = path.join(BUILD_DIR, 'plugins');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** True when the llmux binary exists (tests skip with a message otherwise). */
export function haveLlmux() {
  return fs.existsSync(LLMUX_BIN);
}

/** Skip reason for node:test ({skip}) when the server is not built. */
export const skipNoBinary = haveLlmux() ? false : `llmux binary not built at ${LLMUX_BIN}`;

/**
 * For the official-SDK tests in tests/clients: awaits load(), an import() of
 * the SDK written in the test file (so that it resolves from
 * tests/clients/node_modules), and returns {sdk: its default export or null,
 * skip: false, or why the tests skip (`<missing> is not installed`, or no
 * llmux binary)}. A skip is logged as `# SKIP <what>: <why>`.
 */
export async function loadClientSdk(load, missing, what = 'client tests') {
  let sdk = null;
  let sdkMissing = false;
  try {
    ({ default: sdk } = await load());
  } catch {
    sdkMissing = `${missing} is not installed: run \`npm ci\` in tests/clients`;
  }
  const skip = sdkMissing || skipNoBinary;
  if (skip) console.log(`# SKIP ${what}: ${skip}`);
  return { sdk, skip };
}

/** A TCP port that was free a moment ago (listen on 0, close). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// AddressSanitizer / LeakSanitizer / UBSan reports (LLMUX_SANITIZE builds).
const SANITIZER_RE = /ERROR: (Address|Leak)Sanitizer|runtime error: /;

const live = new Set();
process.on('exit', () => {
  for (const p of live) {
    try {
      p.kill('SIGKILL');
    } catch {}
  }
});

async function waitHealthy(url, proc, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null) return false;
    try {
      const r = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) });
      await r.arrayBuffer();
      if (r.status === 200) return true;
    } catch {}
    await sleep(50);
  }
  return false;
}

/**
 * Starts llmux. opts: {config (Lua text; omit for the embedded default),
 * args (extra CLI args), env, workers (default 2), timeoutMs (default 10000)}.
 * Returns {port, url, proc, stop(opts), kill(signal), logs(), configPath, exited}.
 */
export async function startLlmux(opts = {}) {
  if (!haveLlmux()) throw new Error(`llmux binary not found at ${LLMUX_BIN} (set LLMUX_BUILD_DIR)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmux-it-'));
  let configPath = null;
  if (opts.config != null) {
    configPath = path.join(dir, 'config.lua');
    fs.writeFileSync(configPath, opts.config);
  }
  let lastErr;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const args = [];
    if (configPath) args.push('--config', configPath);
    args.push('--listen', `127.0.0.1:${port}`, '--workers', String(opts.workers ?? 2), ...(opts.args || []));
    const out = [];
    const proc = spawn(LLMUX_BIN, args, {
      cwd: SOURCE_DIR,
      env: { ...process.env, ...(opts.env || {}) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    live.add(proc);
    proc.stdout.on('data', (d) => out.push(d));
    proc.stderr.on('data', (d) => out.push(d));
    const exited = new Promise((resolve) =>
      proc.on('exit', (code, signal) => {
        live.delete(proc);
        resolve({ code, signal });
      }),
    );
    const logs = () => Buffer.concat(out).toString('utf8');
    const url = `http://127.0.0.1:${port}`;
    const ok = await waitHealthy(url, proc, opts.timeoutMs ?? 10000);
    if (!ok) {
      proc.kill('SIGKILL');
      await exited;
      lastErr = new Error(`llmux did not answer GET /health 200 on ${url} (args: ${args.join(' ')})\n--- llmux output ---\n${logs()}`);
      if (/address already in use|EADDRINUSE/i.test(logs())) continue;
      throw lastErr;
    }
    let stopped = false;
    return {
      port,
      url,
      proc,
      configPath,
      exited,
      logs,
      kill(signal = 'SIGTERM') {
        proc.kill(signal);
      },
      /** SIGTERM, wait for exit; SIGKILL after timeoutMs (default 5000) and throw. */
      async stop({ signal = 'SIGTERM', timeoutMs = 5000 } = {}) {
        if (stopped) return exited;
        stopped = true;
        if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
        let timer;
        const res = await Promise.race([exited, new Promise((r) => (timer = setTimeout(() => r(null), timeoutMs)))]);
        clearTimeout(timer);
        fs.rmSync(dir, { recursive: true, force: true });
        if (res === null) {
          proc.kill('SIGKILL');
          await exited;
          throw new Error(`llmux did not exit within ${timeoutMs} ms of ${signal}\n--- llmux output ---\n${logs()}`);
        }
        const out = logs();
        if (SANITIZER_RE.test(out)) throw new Error(`llmux reported a sanitizer error\n--- llmux output ---\n${out}`);
        if (signal === 'SIGTERM' && res.code !== 0)
          throw new Error(`llmux exited with ${res.code ?? res.signal} after SIGTERM\n--- llmux output ---\n${out}`);
        return res;
      },
    };
  }
  throw lastErr;
}

/**
 * Stops llmux instances (stop()) and closes mocks (close()), all of them even
 * when one fails, so a failing test never leaves a listener that keeps the
 * test process alive; then throws the first error.
 */
export async function shutdown(...things) {
  const errors = [];
  for (const t of things) {
    if (!t) continue;
    try {
      if (typeof t.stop === 'function') await t.stop();
      else await t.close();
    } catch (err) {
      errors.push(err);
    }
  }
  if (errors.length) throw errors[0];
}

// ---------------------------------------------------------------------------
// Lua config builders
// ---------------------------------------------------------------------------

/** A Lua string literal for any JS string. */
export function luaString(s) {
  let out = '"';
  for (const ch of Buffer.from(String(s), 'utf8')) {
    if (ch === 0x22) out += '\\"';
    else if (ch === 0x5c) out += '\\\\';
    else if (ch >= 0x20 && ch < 0x7f) out += String.fromCharCode(ch);
    else out += `\\${String(ch).padStart(3, '0')}`;
  }
  return `${out}"`;
}

const LUA_IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Lua source for a JS value (objects become tables, arrays sequences). */
export function toLua(v, indent = '') {
  if (v === null || v === undefined) return 'nil';
  if (typeof v === 'string') return luaString(v);
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error(`cannot express ${v} in Lua`);
    return Number.isInteger(v) ? String(v) : v.toExponential();
  }
  if (typeof v === 'boolean') return String(v);
  if (v instanceof LuaRaw) return v.text;
  const inner = `${indent}  `;
  if (Array.isArray(v)) {
    if (!v.length) return '{}';
    return `{\n${v.map((x) => `${inner}${toLua(x, inner)},`).join('\n')}\n${indent}}`;
  }
  const entries = Object.entries(v).filter(([, x]) => x !== undefined);
  if (!entries.length) return '{}';
  return `{\n${entries
    .map(([k, x]) => `${inner}${LUA_IDENT.test(k) ? k : `[${luaString(k)}]`} = ${toLua(x, inner)},`)
    .join('\n')}\n${indent}}`;
}

class LuaRaw {
  constructor(text) {
    this.text = text;
  }
}
/** Verbatim Lua expression inside a toLua() value, e.g. lua('env("KEY")'). */
export const lua = (text) => new LuaRaw(text);

/**
 * Config text. cfg: {providers: {id: {...}}, models: [...], limits, timeouts,
 * log, plugin_dir (default BUILD_DIR/plugins), ...other top-level fields}.
 */
export function buildConfig(cfg = {}) {
  const top = {
    plugin_dir: PLUGIN_DIR,
    plugin_cache_dir: path.join(os.tmpdir(), `llmux-it-plugins-${process.pid}`),
    log: { level: 'info', access: 'text' },
    ...cfg,
  };
  return `-- generated by tests/integration/harness.mjs\n${Object.entries(top)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k} = ${toLua(v)}`)
    .join('\n')}\n`;
}

/** Provider entry for the OpenAI plugin pointed at an OpenAI mock. */
export function openaiProvider(mock, extra = {}) {
  return { plugin: 'openai', name: 'OpenAI Mock', base_url: `${mock.url}/v1`, api_key: 'sk-test-openai', ...extra };
}
/** Provider entry for the Anthropic plugin pointed at an Anthropic mock. */
export function anthropicProvider(mock, extra = {}) {
  return { plugin: 'anthropic', name: 'Anthropic Mock', base_url: `${mock.url}/v1`, api_key: 'sk-ant-test', ...extra };
}
/** Provider entry for the Gemini plugin pointed at a Gemini mock. */
export function geminiProvider(mock, extra = {}) {
  return { plugin: 'gemini', name: 'Gemini Mock', base_url: `${mock.url}/v1beta`, api_key: 'gemini-test-key', ...extra };
}
/** Provider entry for an OpenAI-compatible upstream on a port with nothing listening. */
export function deadProvider(port, extra = {}) {
  return { plugin: 'openai', name: 'Dead Upstream', base_url: `http://127.0.0.1:${port}/v1`, api_key: 'sk-dead', ...extra };
}

export const DEFAULT_PRICING = { prompt: 0.000001, completion: 0.000002, request: 0 };

/** One endpoint. */
export function endpoint(provider, upstreamModel, extra = {}) {
  return {
    provider,
    model: upstreamModel,
    pricing: DEFAULT_PRICING,
    context_length: 8192,
    max_completion_tokens: 4096,
    supported_parameters: ['temperature', 'max_tokens', 'stop', 'tools', 'tool_choice', 'stream_options'],
    ...extra,
  };
}

/** One model with its endpoints. */
export function model(id, endpoints, extra = {}) {
  return { id, name: id, context_length: 8192, created: 1700000000, endpoints, ...extra };
}

// ---------------------------------------------------------------------------
// HTTP helpers
// ---------------------------------------------------------------------------

/** JSON.parse, or undefined when the text is not JSON. */
export function tryJSON(text) {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** POST JSON (or a raw string body); returns {status, headers, text, json}. */
export async function postJSON(url, body, { headers = {}, signal } = {}) {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer test', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: signal ?? AbortSignal.timeout(20000),
  });
  const text = await r.text();
  return { status: r.status, headers: r.headers, text, json: tryJSON(text) };
}

export async function getJSON(url, { headers = {} } = {}) {
  const r = await fetch(url, { headers: { authorization: 'Bearer test', ...headers }, signal: AbortSignal.timeout(20000) });
  const text = await r.text();
  return { status: r.status, headers: r.headers, text, json: tryJSON(text) };
}

/**
 * Sends raw bytes over one TCP connection and reads one HTTP/1.1 response
 * (until Content-Length, the last chunk, or the close). Tolerates the server
 * answering and closing before the whole request was written.
 * Returns {status, headers (lower-case names), body, raw}.
 */
export function rawHttp(port, request, { timeoutMs = 10000 } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const parts = [];
    let done = false;
    const finish = (err) => {
      if (done) return;
      const raw = Buffer.concat(parts);
      const parsed = parseHttpResponse(raw);
      if (!parsed && err) {
        done = true;
        sock.destroy();
        return reject(err);
      }
      if (!parsed || (!parsed.complete && !err && !sock.destroyed)) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(parsed);
    };
    const timer = setTimeout(() => finish(new Error(`rawHttp: no complete response within ${timeoutMs} ms`)), timeoutMs);
    sock.on('data', (d) => {
      parts.push(d);
      finish();
    });
    sock.on('error', () => {}); // EPIPE/ECONNRESET after an early answer: keep what we read
    sock.on('close', () => finish(new Error('rawHttp: connection closed without a response')));
    const chunks = Array.isArray(request) ? request : [request];
    (async () => {
      for (const c of chunks) {
        if (sock.destroyed) return;
        if (typeof c === 'number') await sleep(c);
        else sock.write(c);
      }
    })();
  });
}

/** Parses an HTTP/1.1 response buffer; {complete} says if the body is all
 * there, {consumed} how many bytes of `raw` the response took (pipelining). */
export function parseHttpResponse(raw) {
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const head = raw.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(head[0]);
  if (!m) return null;
  const headers = {};
  for (const line of head.slice(1)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  const rest = raw.subarray(end + 4);
  let complete = false;
  let consumed = raw.length;
  let body = rest;
  if (headers['transfer-encoding'] && /chunked/i.test(headers['transfer-encoding'])) {
    const out = [];
    let off = 0;
    for (;;) {
      const le = rest.indexOf('\r\n', off);
      if (le < 0) break;
      const size = parseInt(rest.subarray(off, le).toString('latin1'), 16);
      if (Number.isNaN(size)) break;
      if (size === 0) {
        // The last-chunk line, optional trailers, then an empty line.
        const t = rest.indexOf('\r\n\r\n', le);
        if (t >= 0) {
          complete = true;
          consumed = end + 4 + t + 4;
        }
        break;
      }
      if (rest.length < le + 2 + size + 2) break;
      out.push(rest.subarray(le + 2, le + 2 + size));
      off = le + 2 + size + 2;
    }
    body = Buffer.concat(out);
  } else if (headers['content-length'] !== undefined) {
    const n = Number(headers['content-length']);
    complete = rest.length >= n;
    body = rest.subarray(0, n);
    consumed = end + 4 + n;
  }
  const text = body.toString('utf8');
  return { status: Number(m[1]), headers, body: text, json: tryJSON(text), complete, consumed, raw: raw.toString('utf8') };
}

// ---------------------------------------------------------------------------
// SSE
// ---------------------------------------------------------------------------

/**
 * Incremental SSE parser over a byte stream (async iterable of Uint8Array,
 * e.g. fetch's response.body). Yields {type:'event', event, data, id} and
 * {type:'comment', text}. Handles CRLF/LF/CR and events split across reads.
 */
export async function* sseIterate(body) {
  const decoder = new TextDecoder();
  let buf = '';
  let data = [];
  let event = '';
  let id;
  let hasData = false;
  const lineRe = /\r\n|\r|\n/;
  const take = function* (final) {
    for (;;) {
      const m = lineRe.exec(buf);
      if (!m) break;
      // A lone \r at the very end may be the first half of \r\n: wait for more.
      if (!final && m[0] === '\r' && m.index === buf.length - 1) break;
      const line = buf.slice(0, m.index);
      buf = buf.slice(m.index + m[0].length);
      if (line === '') {
        if (hasData) yield { type: 'event', event: event || 'message', data: data.join('\n'), id };
        data = [];
        event = '';
        hasData = false;
        continue;
      }
      if (line[0] === ':') {
        yield { type: 'comment', text: line.slice(1).trim() };
        continue;
      }
      const c = line.indexOf(':');
      const field = c < 0 ? line : line.slice(0, c);
      let value = c < 0 ? '' : line.slice(c + 1);
      if (value[0] === ' ') value = value.slice(1);
      if (field === 'data') {
        data.push(value);
        hasData = true;
      } else if (field === 'event') event = value;
      else if (field === 'id') id = value;
    }
  };
  for await (const chunk of body) {
    buf += decoder.decode(chunk, { stream: true });
    yield* take(false);
  }
  buf += decoder.decode();
  yield* take(true);
}

/**
 * Reads a whole SSE response. Returns {events, comments (count), chunks
 * (parsed JSON data events, [DONE] excluded), done (saw data: [DONE]),
 * afterDone (events after [DONE]), text (content deltas joined), error}.
 */
export async function readSSE(body) {
  const out = { events: [], comments: 0, commentTexts: [], chunks: [], done: false, afterDone: 0, text: '', reasoning: '' };
  try {
    for await (const ev of sseIterate(body)) {
      if (ev.type === 'comment') {
        out.comments++;
        out.commentTexts.push(ev.text);
        continue;
      }
      out.events.push(ev);
      if (out.done) {
        out.afterDone++;
        continue;
      }
      if (ev.data === '[DONE]') {
        out.done = true;
        continue;
      }
      const obj = tryJSON(ev.data) ?? { unparseable: ev.data };
      out.chunks.push(obj);
      for (const ch of obj.choices || []) {
        if (ch.delta && typeof ch.delta.content === 'string') out.text += ch.delta.content;
        if (ch.delta && typeof ch.delta.reasoning === 'string') out.reasoning += ch.delta.reasoning;
      }
    }
  } catch (err) {
    out.error = err;
  }
  return out;
}

/** POSTs a streaming chat request and reads the SSE answer; returns {status, headers, ...readSSE}. */
export async function postSSE(url, body, { headers = {}, signal } = {}) {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer test', ...headers },
    body: JSON.stringify(body),
    signal: signal ?? AbortSignal.timeout(30000),
  });
  if (!(r.headers.get('content-type') || '').startsWith('text/event-stream')) {
    const text = await r.text();
    return { status: r.status, headers: r.headers, text, json: tryJSON(text), chunks: [], events: [], done: false };
  }
  return { status: r.status, headers: r.headers, ...(await readSSE(r.body)) };
}

/** Tool calls assembled from stream chunks: [{index, id, type, name, arguments}]. */
export function assembleToolCalls(chunks) {
  const calls = [];
  for (const c of chunks) {
    for (const ch of c.choices || []) {
      for (const tc of (ch.delta && ch.delta.tool_calls) || []) {
        const slot = (calls[tc.index] ??= { index: tc.index, id: undefined, type: undefined, name: '', arguments: '' });
        if (tc.id) slot.id = tc.id;
        if (tc.type) slot.type = tc.type;
        if (tc.function && tc.function.name) slot.name += tc.function.name;
        if (tc.function && typeof tc.function.arguments === 'string') slot.arguments += tc.function.arguments;
      }
    }
  }
  return calls;
}

/** Tool fixtures in Anthropic Messages form (name, description, input_schema). */
export const WEATHER_TOOL = {
  name: 'get_weather',
  description: 'weather for a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};
export const TIME_TOOL = {
  name: 'get_time',
  description: 'time in a zone',
  input_schema: { type: 'object', properties: { tz: { type: 'string' } }, required: ['tz'] },
};

/** The same tool in chat-completions form: {type: 'function', function: {name, description, parameters}}. */
export function chatTool(t) {
  return { type: 'function', function: { name: t.name, description: t.description, parameters: t.input_schema } };
}

/** Asserts an OpenRouter-shaped error body; returns the error object. */
export function expectErrorShape(assert, res, status) {
  assert.equal(res.status, status, `HTTP status (body: ${res.text ?? res.body})`);
  const j = res.json;
  assert.ok(j && typeof j === 'object' && j.error, `error body is JSON with "error": ${res.text ?? res.body}`);
  assert.equal(j.error.code, status, 'error.code equals the HTTP status');
  assert.equal(typeof j.error.message, 'string');
  assert.ok(j.error.message.length > 0, 'error.message is not empty');
  return j.error;
}

export const close2 = (x, y, eps = 1e-12) => Math.abs(x - y) <= eps * Math.max(1, Math.abs(x), Math.abs(y));
