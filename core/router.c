/* The Lua routing host (router.h). Everything that touches the Lua state runs
 * inside one lua_pcall — building the arguments, calling route() and reading
 * its result — so a memory error or a runaway script can never escape as a
 * panic; on any failure the default plan is used.
 *
 * Speed: the static part of each candidate (model, pricing, parameters...) is
 * built once per endpoint and config generation and kept in the registry;
 * per call only `index` and the stats fields are rewritten in place. */
#include "router.h"
#include "buf.h"
#include "json.h"
#include "lua_sandbox.h"
#include "stats.h"
#include <ctype.h>
#include <lauxlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_LUA_MAX_DEPTH 16

struct llmux_router {
    llmux_lua_sandbox *sb;
    int route_ref;            /* registry ref of route(), LUA_NOREF without script */
    int on_result_ref;        /* registry ref of on_result(), LUA_NOREF if none */
    unsigned long fallbacks;
    unsigned long hook_errors; /* on_result() failures */
    unsigned long plans;
    /* per-endpoint cache, valid for the bound config */
    llmux_config *cfg;
    int cache_ref;            /* array: [2i+1] candidate table, [2i+2] its stats */
    int cands_ref;            /* the reused candidates array */
    struct slot {
        const llmux_endpoint_cfg *ep;  /* endpoint the slot was built for */
        llmux_endpoint_stats stats;    /* values now in its stats table */
        int index;                     /* value now in its index field */
    } *slots;
    unsigned *seen;           /* stamp per endpoint slot: duplicate detection */
    unsigned stamp;
    unsigned char *picked;    /* per-candidate flag while validating a result */
    int picked_cap;
    int cache_stale;          /* replace the cache table on the next plan */
    llmux_buf scratch;        /* JSON string unescaping */
    llmux_buf params;         /* plan.params serialised */
    int req_ref;              /* the reused request table (lazy fields: __index) */
    unsigned lazy_set;        /* lazy fields cached in it (bit per LAZY_*) */
    const llmux_route_request *cur_req; /* the request of the call in progress */
};

static void (*router_logger)(int level, const char *msg);
static void bump_stamp(llmux_router *r);

void llmux_router_set_logger(void (*fn)(int level, const char *msg))
{
    router_logger = fn;
}

static void router_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void router_log(int level, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (router_logger)
        router_logger(level, msg);
    else
        fprintf(stderr, "router: %s\n", msg);
}

int llmux_router_default_plan(const llmux_candidate *cands, int ncands, llmux_attempt *out,
                              int max_out)
{
    (void)cands;
    int n = ncands < max_out ? ncands : max_out;
    for (int i = 0; i < n; i++) {
        out[i].candidate = i;
        out[i].timeout_ms = 0;
    }
    return n < 0 ? 0 : n;
}

unsigned long llmux_router_fallbacks(const llmux_router *r)
{
    return r ? r->fallbacks : 0;
}

/* ---------------------------------------------------------------------- */
/* Building the arguments                                                 */
/* ---------------------------------------------------------------------- */

typedef struct {
    llmux_router *r;
    const llmux_route_request *req;
    const llmux_candidate *cands;
    int ncands;
    llmux_attempt *out;
    int max_out;
    int nout;
    const char *reject; /* why the result was rejected (static string) */
    char reject_buf[128];
    llmux_route_result *res; /* may be NULL */
    int refused;             /* route() returned a refusal (status in res) */
    int cand, ok;            /* on_result() arguments */
} plan_ctx;

static void push_json_string(lua_State *L, llmux_router *r, const llmux_json *doc, int i)
{
    size_t len;
    const char *s = llmux_json_raw(doc, i, &len);
    if (!memchr(s, '\\', len)) {
        lua_pushlstring(L, s, len);
        return;
    }
    llmux_buf_reset(&r->scratch);
    if (llmux_json_unescape(doc, i, &r->scratch) != 0)
        luaL_error(L, "out of memory");
    lua_pushlstring(L, r->scratch.data ? r->scratch.data : "", r->scratch.len);
}

/* Pushes the value at token i as a Lua value (nil for null or too deep).
 * Returns the index of the next sibling token. */
static int push_json(lua_State *L, llmux_router *r, const llmux_json *doc, int i, int depth)
{
    const llmux_jtok *t = &doc->tok[i];
    luaL_checkstack(L, 4, "json nesting");
    switch (t->type) {
    case LLMUX_JSON_STRING:
        push_json_string(L, r, doc, i);
        return i + 1;
    case LLMUX_JSON_PRIMITIVE: {
        double d;
        int b = llmux_json_bool(doc, i);
        if (b >= 0)
            lua_pushboolean(L, b);
        else if (llmux_json_is_null(doc, i))
            lua_pushnil(L);
        else if (llmux_json_double(doc, i, &d) == 0)
            lua_pushnumber(L, d);
        else
            lua_pushnil(L);
        return i + 1;
    }
    case LLMUX_JSON_ARRAY:
    case LLMUX_JSON_OBJECT:
        break;
    default:
        lua_pushnil(L);
        return llmux_json_skip(doc, i);
    }
    if (depth >= JSON_LUA_MAX_DEPTH) {
        lua_pushnil(L);
        return llmux_json_skip(doc, i);
    }
    int is_obj = t->type == LLMUX_JSON_OBJECT;
    int n = t->size;
    lua_createtable(L, is_obj ? 0 : n, is_obj ? n : 0);
    int j = i + 1;
    lua_Integer k = 1;
    for (int e = 0; e < n; e++) {
        if (is_obj) {
            push_json_string(L, r, doc, j);
            j = push_json(L, r, doc, j + 1, depth + 1);
            if (lua_isnil(L, -1))
                lua_pop(L, 2); /* null member: absent */
            else
                lua_rawset(L, -3);
        } else {
            j = push_json(L, r, doc, j, depth + 1);
            if (lua_isnil(L, -1))
                lua_pop(L, 1); /* keep the array a sequence */
            else
                lua_rawseti(L, -2, k++);
        }
    }
    return j;
}

static void set_bool(lua_State *L, const char *k, int v)
{
    lua_pushboolean(L, v);
    lua_setfield(L, -2, k);
}

static void set_num(lua_State *L, const char *k, double v)
{
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
}

static void set_int(lua_State *L, const char *k, lua_Integer v)
{
    lua_pushinteger(L, v);
    lua_setfield(L, -2, k);
}

static void set_str_or_nil(lua_State *L, const char *k, const char *v)
{
    if (v)
        lua_pushstring(L, v);
    else
        lua_pushnil(L);
    lua_setfield(L, -2, k);
}

static void set_str(lua_State *L, const char *k, const char *v)
{
    if (!v)
        return;
    lua_pushstring(L, v);
    lua_setfield(L, -2, k);
}

/* Credentials never reach the script. */
static int is_secret_header(const char *name)
{
    static const char *const secret[] = {"authorization", "proxy-authorization", "cookie",
                                         "x-api-key", "api-key", "x-goog-api-key", NULL};
    for (int i = 0; secret[i]; i++)
        if (!strcmp(name, secret[i]))
            return 1;
    return 0;
}

/* The request view. The scalar fields are set when the table is made (a
 * few stores into a presized table); headers, parameters, models and
 * provider cost a table each (provider a JSON -> Lua conversion), and most
 * scripts never read them, so they are built by the metatable's __index on
 * first access and cached in that call's table. */
enum { LAZY_HEADERS, LAZY_PARAMETERS, LAZY_MODELS, LAZY_PROVIDER, LAZY_NONE };

static int lazy_field(const char *k, size_t n)
{
    switch (n) {
    case 6: return !memcmp(k, "models", 6) ? LAZY_MODELS : LAZY_NONE;
    case 7: return !memcmp(k, "headers", 7) ? LAZY_HEADERS : LAZY_NONE;
    case 8: return !memcmp(k, "provider", 8) ? LAZY_PROVIDER : LAZY_NONE;
    case 10: return !memcmp(k, "parameters", 10) ? LAZY_PARAMETERS : LAZY_NONE;
    default: return LAZY_NONE;
    }
}

static void push_headers(lua_State *L, const llmux_route_request *q)
{
    lua_createtable(L, 0, (int)q->n_headers);
    for (size_t i = 0; i < q->n_headers; i++) {
        char name[128];
        const char *k = q->headers[i].key;
        size_t n = k ? strlen(k) : 0;
        if (!k || !q->headers[i].value || n >= sizeof name)
            continue;
        for (size_t j = 0; j < n; j++)
            name[j] = (char)tolower((unsigned char)k[j]);
        name[n] = '\0';
        if (is_secret_header(name))
            continue;
        lua_pushlstring(L, name, n);
        lua_pushstring(L, q->headers[i].value);
        lua_rawset(L, -3);
    }
}

/* parameters (every top-level key), models (the strings of every `models`
 * array, in order) or provider (the last `provider` object; nil if none). */
static void push_body_field(lua_State *L, llmux_router *r, const llmux_route_request *q, int which)
{
    const llmux_json *doc = q->body;
    int have_body = doc && doc->tok && doc->ntok > 0 && doc->tok[0].type == LLMUX_JSON_OBJECT;
    int nkeys = have_body ? doc->tok[0].size : 0;
    if (which == LAZY_PARAMETERS)
        lua_createtable(L, 0, nkeys);
    else if (which == LAZY_MODELS)
        lua_createtable(L, 0, 0);
    int out = lua_gettop(L), provider = -1;
    lua_Integer k = 1;
    for (int e = 0, i = 1; e < nkeys; e++) {
        size_t klen;
        const char *key = llmux_json_raw(doc, i, &klen);
        int v = i + 1;
        if (which == LAZY_PARAMETERS) {
            lua_pushlstring(L, key, klen);
            lua_pushboolean(L, 1);
            lua_rawset(L, out);
        } else if (which == LAZY_MODELS) {
            if (klen == 6 && !memcmp(key, "models", 6) && doc->tok[v].type == LLMUX_JSON_ARRAY) {
                int n = doc->tok[v].size, j = v + 1;
                for (int a = 0; a < n; a++) {
                    if (doc->tok[j].type == LLMUX_JSON_STRING) {
                        push_json_string(L, r, doc, j);
                        lua_rawseti(L, out, k++);
                    }
                    j = llmux_json_skip(doc, j);
                }
            }
        } else if (klen == 8 && !memcmp(key, "provider", 8) &&
                   doc->tok[v].type == LLMUX_JSON_OBJECT) {
            provider = v;
        }
        i = llmux_json_skip(doc, v);
    }
    if (which == LAZY_PROVIDER) {
        if (provider >= 0)
            push_json(L, r, doc, provider, 0);
        else
            lua_pushnil(L);
    }
}

/* __index of the request table: (table, key) -> the lazy field, cached in
 * the table until the next call. Outside a call every lazy field is nil. */
static int request_index(lua_State *L)
{
    llmux_router *r = lua_touserdata(L, lua_upvalueindex(1));
    if (!r->cur_req || lua_type(L, 2) != LUA_TSTRING)
        return 0;
    size_t n;
    const char *k = lua_tolstring(L, 2, &n);
    int which = lazy_field(k, n);
    if (which == LAZY_NONE)
        return 0;
    if (which == LAZY_HEADERS)
        push_headers(L, r->cur_req);
    else
        push_body_field(L, r, r->cur_req, which);
    if (!lua_isnil(L, -1)) {
        lua_pushvalue(L, 2);
        lua_pushvalue(L, -2);
        lua_rawset(L, 1);
        r->lazy_set |= 1u << which;
    }
    return 1;
}

static const char *const lazy_names[] = {"headers", "parameters", "models", "provider"};

/* Fills the reused request table for q and leaves it on the stack. Reusing
 * it means its keys already exist: each store is a plain overwrite, and a
 * call allocates nothing for its request. */
static void push_request(lua_State *L, llmux_router *r, const llmux_route_request *q)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, r->req_ref);
    for (int i = 0; r->lazy_set; i++) { /* the last call's lazy fields */
        if (r->lazy_set & (1u << i)) {
            lua_pushnil(L);
            lua_setfield(L, -2, lazy_names[i]);
            r->lazy_set &= ~(1u << i);
        }
    }
    set_str_or_nil(L, "model", q->model);
    set_str_or_nil(L, "variant", q->variant);
    set_bool(L, "stream", q->stream);
    set_bool(L, "has_tools", q->has_tools);
    set_bool(L, "has_images", q->has_images);
    set_bool(L, "has_response_format", q->has_response_format);
    set_bool(L, "has_reasoning", q->has_reasoning);
    set_int(L, "estimated_prompt_tokens", q->estimated_prompt_tokens);
    set_int(L, "max_tokens", q->max_tokens);
    set_str_or_nil(L, "key_label", q->key_label);
    if (q->prefix_hash)
        lua_pushinteger(L, (lua_Integer)q->prefix_hash);
    else
        lua_pushnil(L);
    lua_setfield(L, -2, "prefix_hash");
    r->cur_req = q;
}

static void push_set(lua_State *L, char *const *v, size_t n)
{
    lua_createtable(L, 0, (int)n);
    for (size_t i = 0; i < n; i++) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, v[i]);
    }
}

/* The static fields of a candidate: everything but index and stats. */
static void push_candidate_static(lua_State *L, const llmux_endpoint_cfg *ep)
{
    lua_createtable(L, 0, 20);
    set_str(L, "model", ep->model ? ep->model->id : NULL);
    set_str(L, "provider", ep->provider ? ep->provider->id : NULL);
    set_str(L, "provider_name", ep->provider ? ep->provider->name : NULL);
    set_str(L, "upstream_model", ep->upstream_model);
    lua_createtable(L, 0, 6);
    set_num(L, "prompt", ep->pricing.prompt);
    set_num(L, "completion", ep->pricing.completion);
    set_num(L, "request", ep->pricing.request);
    set_num(L, "image", ep->pricing.image);
    set_num(L, "cache_read", ep->pricing.cache_read);
    set_num(L, "cache_write", ep->pricing.cache_write);
    lua_setfield(L, -2, "pricing");
    set_int(L, "context_length", ep->context_length);
    set_int(L, "max_completion_tokens", ep->max_completion_tokens);
    push_set(L, ep->supported_parameters, ep->n_supported_parameters);
    lua_setfield(L, -2, "supported_parameters");
    set_str(L, "quantization", ep->quantization);
    push_set(L, ep->tags, ep->n_tags);
    lua_setfield(L, -2, "tags");
    int deny = ep->provider && ep->provider->data_collection_deny;
    set_str(L, "data_collection", deny ? "deny" : "allow");
    set_bool(L, "zdr", ep->provider && ep->provider->zdr);
    if (ep->model)
        push_set(L, ep->model->input_modalities, ep->model->n_input_modalities);
    else
        lua_createtable(L, 0, 0);
    lua_setfield(L, -2, "input_modalities");
    /* a stable identity for script-side caches: "model|provider" */
    lua_pushfstring(L, "%s|%s", ep->model ? ep->model->id : "", ep->provider ? ep->provider->id : "");
    lua_setfield(L, -2, "id");
}

static const char *const circuit_names[] = {"closed", "open", "half_open"};

static const char *circuit_name(int c)
{
    return circuit_names[c >= 0 && c <= 2 ? c : 0];
}

static void set_age(lua_State *L, double age)
{
    if (age >= 0)
        lua_pushnumber(L, age);
    else
        lua_pushnil(L); /* never failed */
    lua_setfield(L, -2, "last_failure_age_s");
}

static void fill_stats(lua_State *L, const llmux_endpoint_stats *s)
{
    set_num(L, "ttft_ms", s->ttft_ms_ewma);
    set_num(L, "latency_ms", s->latency_ms_ewma);
    set_num(L, "throughput", s->throughput_ewma);
    set_num(L, "error_rate", s->error_rate_ewma);
    set_age(L, s->last_failure_age_s);
    set_int(L, "inflight", s->inflight);
    set_str(L, "circuit", circuit_name(s->circuit));
    set_num(L, "parked_for_s", s->parked_for_s);
    set_bool(L, "recent_failure", s->recent_failure);
    set_int(L, "consecutive_failures", s->consecutive_failures);
}

/* Stats change between calls far less often than route() runs: rewrite only
 * the fields that differ from what the cached table holds. */
static void update_stats(lua_State *L, const llmux_endpoint_stats *old,
                         const llmux_endpoint_stats *s)
{
    if (s->ttft_ms_ewma != old->ttft_ms_ewma)
        set_num(L, "ttft_ms", s->ttft_ms_ewma);
    if (s->latency_ms_ewma != old->latency_ms_ewma)
        set_num(L, "latency_ms", s->latency_ms_ewma);
    if (s->throughput_ewma != old->throughput_ewma)
        set_num(L, "throughput", s->throughput_ewma);
    if (s->error_rate_ewma != old->error_rate_ewma)
        set_num(L, "error_rate", s->error_rate_ewma);
    if (s->last_failure_age_s != old->last_failure_age_s)
        set_age(L, s->last_failure_age_s);
    if (s->inflight != old->inflight)
        set_int(L, "inflight", s->inflight);
    if (circuit_name(s->circuit) != circuit_name(old->circuit))
        set_str(L, "circuit", circuit_name(s->circuit));
    if (s->parked_for_s != old->parked_for_s)
        set_num(L, "parked_for_s", s->parked_for_s);
    if (s->recent_failure != old->recent_failure)
        set_bool(L, "recent_failure", s->recent_failure);
    if (s->consecutive_failures != old->consecutive_failures)
        set_int(L, "consecutive_failures", s->consecutive_failures);
}

static int stats_differ(const llmux_endpoint_stats *a, const llmux_endpoint_stats *b)
{
    return a->ttft_ms_ewma != b->ttft_ms_ewma || a->latency_ms_ewma != b->latency_ms_ewma ||
           a->throughput_ewma != b->throughput_ewma || a->error_rate_ewma != b->error_rate_ewma ||
           a->last_failure_age_s != b->last_failure_age_s || a->inflight != b->inflight ||
           circuit_name(a->circuit) != circuit_name(b->circuit) ||
           a->parked_for_s != b->parked_for_s || a->recent_failure != b->recent_failure ||
           a->consecutive_failures != b->consecutive_failures;
}

/* Pushes the candidate table for cands[i] (1-based index i + 1). */
static void push_candidate(lua_State *L, plan_ctx *x, int cache, int i)
{
    llmux_router *r = x->r;
    const llmux_candidate *c = &x->cands[i];
    const llmux_endpoint_cfg *ep = c->ep;
    int cacheable = r->cfg && ep->index >= 0 && (size_t)ep->index < r->cfg->n_endpoints &&
                    r->cfg->endpoint_by_index[ep->index] == ep && r->seen[ep->index] != r->stamp;
    if (!cacheable) {
        push_candidate_static(L, ep);
        lua_createtable(L, 0, 10);
        fill_stats(L, &c->stats);
        lua_setfield(L, -2, "stats");
        set_int(L, "index", i + 1);
        return;
    }
    struct slot *sl = &r->slots[ep->index];
    lua_Integer key = 2 * (lua_Integer)ep->index + 1;
    r->seen[ep->index] = r->stamp;
    if (sl->ep == ep) {
        lua_rawgeti(L, cache, key);
        if (stats_differ(&sl->stats, &c->stats)) { /* most calls: nothing changed */
            sl->ep = NULL; /* an error half-way would leave the table unknown */
            lua_rawgeti(L, cache, key + 1);
            update_stats(L, &sl->stats, &c->stats);
            lua_pop(L, 1);
            sl->ep = ep;
        }
    } else {
        sl->ep = NULL; /* until fully built: an error may interrupt us */
        push_candidate_static(L, ep);
        lua_createtable(L, 0, 10);
        fill_stats(L, &c->stats);
        lua_pushvalue(L, -1);
        lua_rawseti(L, cache, key + 1);
        lua_setfield(L, -2, "stats");
        lua_pushvalue(L, -1);
        lua_rawseti(L, cache, key);
        sl->ep = ep;
        sl->index = 0;
    }
    sl->stats = c->stats;
    if (sl->index != i + 1) {
        sl->index = 0;
        set_int(L, "index", i + 1);
        sl->index = i + 1;
    }
}

/* ---------------------------------------------------------------------- */
/* Reading the result                                                     */
/* ---------------------------------------------------------------------- */

static int reject(plan_ctx *x, const char *fmt, int a)
{
    snprintf(x->reject_buf, sizeof x->reject_buf, fmt, a);
    x->reject = x->reject_buf;
    return -1;
}

static int read_index(lua_State *L, plan_ctx *x, int idx, int pos, int *out)
{
    int isint = 0;
    lua_Integer v = lua_type(L, idx) == LUA_TNUMBER ? lua_tointegerx(L, idx, &isint) : 0;
    if (!isint)
        return reject(x, "attempt %d: candidate index is not an integer", pos);
    if (v < 1 || v > x->ncands)
        return reject(x, "attempt %d: candidate index out of range", pos);
    if (x->r->picked[v - 1])
        return reject(x, "attempt %d: duplicate candidate", pos);
    x->r->picked[v - 1] = 1;
    *out = (int)v - 1;
    return 0;
}

/* Lua value at idx -> JSON (plan.params). Raises on a value JSON cannot
 * express; the caller turns that into a rejected plan. */
static void to_json(lua_State *L, llmux_buf *b, int idx, int depth)
{
    idx = lua_absindex(L, idx);
    int err = 0;
    switch (lua_type(L, idx)) {
    case LUA_TBOOLEAN:
        err = llmux_buf_append_str(b, lua_toboolean(L, idx) ? "true" : "false");
        break;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            err = llmux_buf_printf(b, "%lld", (long long)lua_tointeger(L, idx));
        } else {
            double d = lua_tonumber(L, idx);
            if (d != d || d - d != 0)
                luaL_error(L, "params: a number is not finite");
            err = llmux_buf_append_double(b, d);
        }
        break;
    case LUA_TSTRING: {
        size_t n;
        const char *str = lua_tolstring(L, idx, &n);
        err = llmux_buf_append_char(b, '"') | llmux_buf_append_escaped(b, str, n) |
              llmux_buf_append_char(b, '"');
        break;
    }
    case LUA_TTABLE: {
        if (depth >= JSON_LUA_MAX_DEPTH)
            luaL_error(L, "params: nested too deeply");
        luaL_checkstack(L, 4, "params");
        lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
        if (n > 0) {
            err = llmux_buf_append_char(b, '[');
            for (lua_Integer k = 1; k <= n; k++) {
                if (k > 1)
                    err |= llmux_buf_append_char(b, ',');
                lua_rawgeti(L, idx, k);
                to_json(L, b, -1, depth + 1);
                lua_pop(L, 1);
            }
            err |= llmux_buf_append_char(b, ']');
            break;
        }
        err = llmux_buf_append_char(b, '{');
        int first = 1;
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            if (lua_type(L, -2) != LUA_TSTRING)
                luaL_error(L, "params: object keys must be strings");
            if (!first)
                err |= llmux_buf_append_char(b, ',');
            first = 0;
            size_t kn;
            const char *k = lua_tolstring(L, -2, &kn);
            err |= llmux_buf_append_char(b, '"') | llmux_buf_append_escaped(b, k, kn) |
                   llmux_buf_append_str(b, "\":");
            to_json(L, b, -1, depth + 1);
            lua_pop(L, 1);
        }
        err |= llmux_buf_append_char(b, '}');
        break;
    }
    default:
        luaL_error(L, "params: a %s cannot be sent as JSON", luaL_typename(L, idx));
    }
    if (err)
        luaL_error(L, "out of memory");
}

/* plan.params = { name = value, ... }: top-level body members to set. */
static int read_params(lua_State *L, plan_ctx *x, int res)
{
    int ty = lua_getfield(L, res, "params");
    if (ty == LUA_TNIL) {
        lua_pop(L, 1);
        return 0;
    }
    if (ty != LUA_TTABLE)
        return reject(x, "params must be a table (plan of %d attempts)", x->nout);
    llmux_buf *b = &x->r->params;
    llmux_buf_reset(b);
    int t = lua_gettop(L), first = 1;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            return reject(x, "params keys must be strings (plan of %d attempts)", x->nout);
        size_t kn;
        const char *k = lua_tolstring(L, -2, &kn);
        if ((kn == 5 && !memcmp(k, "model", 5)) || (kn == 6 && !memcmp(k, "models", 6)) ||
            (kn == 8 && !memcmp(k, "messages", 8)) || (kn == 6 && !memcmp(k, "stream", 6)) ||
            (kn == 6 && !memcmp(k, "prompt", 6)))
            return reject(x, "params may not set model, models, messages, prompt or stream (%d)",
                          x->nout);
        if (!first && llmux_buf_append_char(b, ','))
            luaL_error(L, "out of memory");
        first = 0;
        if (llmux_buf_append_char(b, '"') || llmux_buf_append_escaped(b, k, kn) ||
            llmux_buf_append_str(b, "\":"))
            luaL_error(L, "out of memory");
        to_json(L, b, -1, 1);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return 0;
}

/* route() returned nil or an empty plan with a message (and a status). */
static int read_refusal(lua_State *L, plan_ctx *x, int res)
{
    if (lua_type(L, res + 1) != LUA_TSTRING)
        return 0;
    if (lua_type(L, res) == LUA_TTABLE && lua_rawlen(L, res) > 0)
        return 0; /* a plan: the message is ignored */
    if (lua_type(L, res) != LUA_TTABLE && lua_type(L, res) != LUA_TNIL)
        return 0;
    int isint = 0;
    lua_Integer st = lua_tointegerx(L, res + 2, &isint);
    if (!isint || st < 400 || st > 599)
        st = 503;
    x->refused = 1;
    if (x->res) {
        x->res->status = (int)st;
        snprintf(x->res->message, sizeof x->res->message, "%s", lua_tostring(L, res + 1));
    }
    return 1;
}

static int read_result(lua_State *L, plan_ctx *x, int res)
{
    if (read_refusal(L, x, res)) {
        x->nout = 0;
        return 0;
    }
    if (lua_type(L, res) != LUA_TTABLE) {
        snprintf(x->reject_buf, sizeof x->reject_buf, "route() returned %s, not a table",
                 luaL_typename(L, res));
        x->reject = x->reject_buf;
        return -1;
    }
    memset(x->r->picked, 0, (size_t)x->ncands);
    lua_Integer n = luaL_len(L, res);
    x->nout = 0;
    for (lua_Integer k = 1; k <= n; k++) {
        int pos = (int)k, cand;
        int ty = lua_rawgeti(L, res, k);
        if (ty == LUA_TNUMBER) {
            if (read_index(L, x, -1, pos, &cand) < 0)
                return -1;
            lua_pop(L, 1);
            if (x->nout < x->max_out)
                x->out[x->nout++] = (llmux_attempt){cand, 0};
            continue;
        }
        if (ty != LUA_TTABLE)
            return reject(x, "attempt %d: expected a number or a table", pos);
        lua_getfield(L, -1, "candidate");
        if (read_index(L, x, -1, pos, &cand) < 0)
            return -1;
        lua_pop(L, 1);
        uint32_t timeout = 0;
        int tt = lua_getfield(L, -1, "timeout_ms");
        if (tt != LUA_TNIL) {
            double t = lua_tonumber(L, -1);
            if (tt != LUA_TNUMBER || !(t >= 0))
                return reject(x, "attempt %d: timeout_ms must be a number >= 0", pos);
            timeout = t > 4294967295.0 ? UINT32_MAX : (uint32_t)t;
        }
        lua_pop(L, 2);
        if (x->nout < x->max_out)
            x->out[x->nout++] = (llmux_attempt){cand, timeout};
    }
    if (x->res && read_params(L, x, res) < 0)
        return -1;
    return 0;
}

/* Pushes the candidate cache table (a fresh one when a reload marked it
 * stale) and starts a new stamp for the candidates pushed next; returns the
 * table's stack index. */
static int push_cache(lua_State *L, llmux_router *r)
{
    if (r->cache_stale) {
        lua_newtable(L);
        lua_rawseti(L, LUA_REGISTRYINDEX, r->cache_ref);
        r->cache_stale = 0;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, r->cache_ref);
    bump_stamp(r); /* a wrapped stamp clears the old ones: they could collide */
    return lua_gettop(L);
}

/* The protected body: arguments, the call and the result check. */
static int plan_protected(lua_State *L)
{
    plan_ctx *x = lua_touserdata(L, 1);
    llmux_router *r = x->r;
    lua_rawgeti(L, LUA_REGISTRYINDEX, r->route_ref);
    push_request(L, r, x->req);

    int cache = push_cache(L, r);
    lua_rawgeti(L, LUA_REGISTRYINDEX, r->cands_ref);
    int arr = lua_gettop(L);
    for (int i = 0; i < x->ncands; i++) {
        push_candidate(L, x, cache, i);
        lua_rawseti(L, arr, i + 1);
    }
    /* the script may have grown the reused array last time */
    for (lua_Integer k = (lua_Integer)lua_rawlen(L, arr); k > x->ncands; k--) {
        lua_pushnil(L);
        lua_rawseti(L, arr, k);
    }
    lua_remove(L, cache);
    lua_call(L, 2, 3);
    int res = lua_gettop(L) - 2;
    if (read_result(L, x, res) < 0)
        lua_pushboolean(L, 0);
    else
        lua_pushboolean(L, 1);
    return 1;
}

int llmux_router_plan(llmux_router *r, const llmux_route_request *req,
                      const llmux_candidate *cands, int ncands, llmux_attempt *out, int max_out)
{
    return llmux_router_plan_ex(r, req, cands, ncands, out, max_out, NULL);
}

void llmux_route_result_free(llmux_route_result *res)
{
    if (!res)
        return;
    free(res->params_json);
    res->params_json = NULL;
}

int llmux_router_plan_ex(llmux_router *r, const llmux_route_request *req,
                         const llmux_candidate *cands, int ncands, llmux_attempt *out, int max_out,
                         llmux_route_result *res)
{
    if (res)
        memset(res, 0, sizeof *res);
    if (!r || r->route_ref == LUA_NOREF || ncands <= 0 || max_out <= 0)
        return llmux_router_default_plan(cands, ncands, out, max_out);
    if (ncands > r->picked_cap) {
        unsigned char *p = realloc(r->picked, (size_t)ncands);
        if (!p) {
            r->fallbacks++;
            return llmux_router_default_plan(cands, ncands, out, max_out);
        }
        r->picked = p;
        r->picked_cap = ncands;
    }
    r->plans++;
    plan_ctx x = {.r = r, .req = req, .cands = cands, .ncands = ncands, .out = out,
                  .max_out = max_out, .res = res};
    lua_State *L = r->sb->L;
    int top = lua_gettop(L);
    lua_pushcfunction(L, plan_protected);
    lua_pushlightuserdata(L, &x);
    int st = llmux_sandbox_pcall(r->sb, 1, 1);
    int ok = st == LUA_OK && lua_toboolean(L, -1);
    if (!ok) {
        r->fallbacks++;
        const char *why = st != LUA_OK ? lua_tostring(L, -1) : x.reject;
        /* A broken script fails every request: log the first few, then a
         * sample, so the log stays readable. */
        if (r->fallbacks <= 10 || r->fallbacks % 1000 == 0)
            router_log(LLMUX_LOG_WARN, "route() failed (%s); using the default plan [%lu fallbacks]",
                       why ? why : "error object is not a string", r->fallbacks);
    }
    r->cur_req = NULL;
    lua_settop(L, top);
    if (!ok) {
        if (res)
            memset(res, 0, sizeof *res);
        llmux_buf_reset(&r->params);
        return llmux_router_default_plan(cands, ncands, out, max_out);
    }
    if (res && !x.refused && r->params.len) {
        res->params_json = malloc(r->params.len + 1);
        if (res->params_json) {
            memcpy(res->params_json, r->params.data, r->params.len);
            res->params_json[r->params.len] = '\0';
        }
    }
    llmux_buf_reset(&r->params);
    return x.nout;
}

/* ---------------------------------------------------------------------- */
/* on_result, seeding, prefix hash, body rewriting                        */
/* ---------------------------------------------------------------------- */

static void bump_stamp(llmux_router *r)
{
    if (++r->stamp == 0) {
        if (r->cfg)
            memset(r->seen, 0, r->cfg->n_endpoints * sizeof *r->seen);
        r->stamp = 1;
    }
}

static int on_result_protected(lua_State *L)
{
    plan_ctx *x = lua_touserdata(L, 1);
    llmux_router *r = x->r;
    lua_rawgeti(L, LUA_REGISTRYINDEX, r->on_result_ref);
    push_request(L, r, x->req);
    int cache = push_cache(L, r);
    push_candidate(L, x, cache, x->cand);
    lua_remove(L, cache);
    lua_pushboolean(L, x->ok);
    lua_call(L, 3, 0);
    return 0;
}

void llmux_router_on_result(llmux_router *r, const llmux_route_request *req,
                            const llmux_candidate *cands, int ncands, int cand, int ok)
{
    if (!r || r->on_result_ref == LUA_NOREF || !req || cand < 0 || cand >= ncands)
        return;
    plan_ctx x = {.r = r, .req = req, .cands = cands, .ncands = ncands, .cand = cand, .ok = ok};
    lua_State *L = r->sb->L;
    int top = lua_gettop(L);
    lua_pushcfunction(L, on_result_protected);
    lua_pushlightuserdata(L, &x);
    if (llmux_sandbox_pcall(r->sb, 1, 0) != LUA_OK) {
        r->hook_errors++;
        if (r->hook_errors <= 10 || r->hook_errors % 1000 == 0)
            router_log(LLMUX_LOG_WARN, "on_result() failed (%s) [%lu errors]",
                       lua_tostring(L, -1) ? lua_tostring(L, -1) : "error object is not a string",
                       r->hook_errors);
    }
    r->cur_req = NULL;
    lua_settop(L, top);
}

static int seed_protected(lua_State *L)
{
    const uint64_t *seed = lua_touserdata(L, 1);
    lua_getglobal(L, "math");
    lua_getfield(L, -1, "randomseed");
    lua_pushinteger(L, (lua_Integer)*seed);
    lua_call(L, 1, 0);
    return 0;
}

void llmux_router_seed(llmux_router *r, uint64_t seed)
{
    if (!r)
        return;
    lua_State *L = r->sb->L;
    int top = lua_gettop(L);
    lua_pushcfunction(L, seed_protected);
    lua_pushlightuserdata(L, &seed);
    llmux_sandbox_pcall(r->sb, 1, 0);
    lua_settop(L, top);
}

uint64_t llmux_router_prefix_hash(const llmux_json *doc)
{
    if (!doc || !doc->tok || doc->ntok <= 0 || doc->tok[0].type != LLMUX_JSON_OBJECT)
        return 0;
    int v = llmux_json_get(doc, 0, "messages");
    if (v < 0)
        v = llmux_json_get(doc, 0, "prompt");
    if (v < 0)
        return 0;
    const llmux_jtok *t = &doc->tok[v];
    size_t n = (size_t)(t->end - t->start);
    if (n > LLMUX_PREFIX_HASH_BYTES)
        n = LLMUX_PREFIX_HASH_BYTES;
    const unsigned char *p = (const unsigned char *)doc->text + t->start;
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    h ^= h >> 29;
    h &= 0x7fffffffffffffffull; /* a positive Lua integer, never 0 */
    return h ? h : 1;
}

char *llmux_router_rewrite_body(const llmux_json *doc, const char *members_json, size_t *out_len)
{
    if (!doc || !doc->tok || doc->ntok <= 0 || doc->tok[0].type != LLMUX_JSON_OBJECT ||
        !members_json)
        return NULL;
    llmux_buf obj = {0}, out = {0};
    llmux_json add = {0};
    char *ret = NULL;
    if (llmux_buf_printf(&obj, "{%s}", members_json) ||
        llmux_json_parse(obj.data, obj.len, NULL, &add, NULL, NULL) != 0 ||
        add.tok[0].type != LLMUX_JSON_OBJECT)
        goto done;
    int err = llmux_buf_append_char(&out, '{');
    int first = 1;
    for (int e = 0, i = 1; e < doc->tok[0].size; e++) {
        size_t kn;
        const char *k = llmux_json_raw(doc, i, &kn);
        int replaced = 0;
        for (int a = 0, j = 1; a < add.tok[0].size && !replaced; a++) {
            size_t an;
            const char *ak = llmux_json_raw(&add, j, &an);
            replaced = an == kn && !memcmp(ak, k, kn);
            j = llmux_json_skip(&add, j + 1);
        }
        if (!replaced) {
            if (!first)
                err |= llmux_buf_append_char(&out, ',');
            first = 0;
            err |= llmux_json_append_raw(&out, doc, i);
            err |= llmux_buf_append_char(&out, ':');
            err |= llmux_json_append_raw(&out, doc, i + 1);
        }
        i = llmux_json_skip(doc, i + 1);
    }
    if (add.tok[0].size > 0) {
        if (!first)
            err |= llmux_buf_append_char(&out, ',');
        err |= llmux_buf_append_str(&out, members_json);
    }
    err |= llmux_buf_append_char(&out, '}');
    if (err)
        goto done;
    *out_len = out.len;
    ret = llmux_buf_steal(&out);
done:
    llmux_json_release(&add);
    llmux_buf_free(&obj);
    llmux_buf_free(&out);
    return ret;
}


/* ---------------------------------------------------------------------- */

/* Lua-side tables are replaced lazily inside the next protected plan, so
 * nothing here can raise a Lua error. */
static void drop_cache(llmux_router *r)
{
    r->cache_stale = 1;
    free(r->slots);
    free(r->seen);
    r->slots = NULL;
    r->seen = NULL;
    if (r->cfg)
        llmux_config_unref(r->cfg);
    r->cfg = NULL;
}

int llmux_router_set_config(llmux_router *r, llmux_config *cfg)
{
    if (!r || r->cfg == cfg)
        return 0;
    drop_cache(r);
    if (!cfg)
        return 0;
    size_t n = cfg->n_endpoints ? cfg->n_endpoints : 1;
    r->slots = calloc(n, sizeof *r->slots);
    r->seen = calloc(n, sizeof *r->seen);
    if (!r->slots || !r->seen) {
        free(r->slots);
        free(r->seen);
        r->slots = NULL;
        r->seen = NULL;
        return LLMUX_ENOMEM;
    }
    llmux_config_ref(cfg);
    r->cfg = cfg;
    r->stamp = 0;
    /* the circuit/window thresholds come with the config (process-wide) */
    llmux_stats_policy pol = {cfg->routing.failure_threshold, cfg->routing.open_seconds,
                              cfg->routing.ewma_alpha, cfg->routing.failure_window_s};
    llmux_stats_set_policy(&pol);
    return 0;
}

static int make_tables(lua_State *L)
{
    llmux_router *r = lua_touserdata(L, 1);
    lua_newtable(L);
    r->cache_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_newtable(L);
    r->cands_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_createtable(L, 0, 16);
    lua_createtable(L, 0, 2);
    lua_pushlightuserdata(L, r);
    lua_pushcclosure(L, request_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0); /* getmetatable(request) cannot reach it */
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    r->req_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_getglobal(L, "route");
    if (lua_type(L, -1) != LUA_TFUNCTION)
        return luaL_error(L, "the script does not define a global function route(request, candidates)");
    r->route_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    int ty = lua_getglobal(L, "on_result");
    if (ty == LUA_TFUNCTION)
        r->on_result_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    else if (ty != LUA_TNIL)
        return luaL_error(L, "on_result must be a function (it is a %s)", lua_typename(L, ty));
    else
        lua_pop(L, 1);
    return 0;
}

static char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open", path);
        return NULL;
    }
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16384;
            char *nb = cap > (size_t)16 << 20 ? NULL : realloc(buf, cap);
            if (!nb) {
                snprintf(err, errlen, "%s: too large or out of memory", path);
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (!got)
            break;
    }
    fclose(f);
    *len = n;
    return buf;
}

llmux_router *llmux_router_new(const char *script_path, size_t mem_limit,
                               uint32_t instruction_budget, char *err, size_t errlen)
{
    char dummy[8];
    if (!err || !errlen) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = '\0';
    llmux_router *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->route_ref = LUA_NOREF;
    r->on_result_ref = LUA_NOREF;
    r->sb = llmux_sandbox_new(mem_limit, instruction_budget);
    if (!r->sb) {
        snprintf(err, errlen, "cannot create a Lua state within %zu bytes", mem_limit);
        free(r);
        return NULL;
    }
    lua_State *L = r->sb->L;
    if (script_path) {
        size_t len;
        char *src = read_file(script_path, &len, err, errlen);
        if (!src)
            goto bad;
        char chunk[1024];
        snprintf(chunk, sizeof chunk, "@%s", script_path);
        int st = llmux_sandbox_load(r->sb, src, len, chunk);
        free(src);
        if (st != LUA_OK || llmux_sandbox_pcall(r->sb, 0, 0) != LUA_OK) {
            snprintf(err, errlen, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "error");
            goto bad;
        }
    } else {
        /* no script: a table-less router whose every plan is the default */
        return r;
    }
    lua_pushcfunction(L, make_tables);
    lua_pushlightuserdata(L, r);
    if (llmux_sandbox_pcall(r->sb, 1, 0) != LUA_OK) {
        snprintf(err, errlen, "%s: %s", script_path,
                 lua_tostring(L, -1) ? lua_tostring(L, -1) : "error");
        goto bad;
    }
    lua_settop(L, 0);
    return r;
bad:
    llmux_sandbox_free(r->sb);
    free(r);
    return NULL;
}

void llmux_router_free(llmux_router *r)
{
    if (!r)
        return;
    if (r->cfg)
        llmux_config_unref(r->cfg);
    free(r->slots);
    free(r->seen);
    free(r->picked);
    llmux_buf_free(&r->scratch);
    llmux_buf_free(&r->params);
    llmux_sandbox_free(r->sb);
    free(r);
}
