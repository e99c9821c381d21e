// Preloaded (node --import) into the peer gateway only, and only to make its SSE
// path work on this machine's Node 20: fetch() returns Responses whose Headers are
// immutable, the peer re-wraps an upstream SSE response through @hono/node-server's
// Response class (which keeps that same Headers object) and then appends its own
// headers, which throws "immutable" and fails every stream. Re-wrapping SSE answers
// in a fresh Response gives them mutable headers. JSON answers are untouched.
const realFetch = globalThis.fetch;
const RealResponse = globalThis.Response;
globalThis.fetch = async function benchFetch(...args) {
  const r = await realFetch(...args);
  const type = r.headers.get('content-type') || '';
  if (!type.startsWith('text/event-stream')) return r;
  return new RealResponse(r.body, { status: r.status, statusText: r.statusText, headers: new Headers(r.headers) });
};
