/* Config loader: evaluates the Lua config in a sandbox and copies its globals
 * into the immutable C structs of config.h. Every string is owned by the
 * config and freed with it. Errors read "file:line: field: problem". */
#include "config.h"
#include "lua_sandbox.h"
#include <errno.h>
#include <lauxlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef LLMUX_DEFAULT_PLUGIN_DIR
#define LLMUX_DEFAULT_PLUGIN_DIR "build/plugins"
#endif
#ifndef LLMUX_SOURCE_DIR
#define LLMUX_SOURCE_DIR "."
#endif

/* Generous: a config with thousands of models still fits. */
#define CONFIG_LUA_MEMORY (256u * 1024 * 1024)
#define CONFIG_LUA_INSTRUCTIONS 200000000u

static atomic_uint config_generation;

typedef struct {
    lua_State *L;
    const char *file;
    char *err;
    size_t errlen;
    int line;      /* line of the top-level assignment being read; 0 unknown */
    int lines_idx; /* absolute index of the global name -> line table */
} loader;

static const char *const top_level_fields[] = {
    "listen", "workers", "plugin_dir", "plugin_cache_dir", "routing_script", "admin_key",
    "watch", "log", "limits", "timeouts", "routing", "providers", "models",
    "auth", "storage", "redis", "management_key", "byok", NULL,
};

static int in_list(const char *const *list, const char *s)
{
    for (; *list; list++)
        if (!strcmp(*list, s))
            return 1;
    return 0;
}

static int fail(loader *d, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(loader *d, const char *path, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!d->err || !d->errlen)
        return -1;
    if (d->line > 0)
        snprintf(d->err, d->errlen, "%s:%d: %s: %s", d->file, d->line, path, msg);
    else
        snprintf(d->err, d->errlen, "%s: %s: %s", d->file, path, msg);
    return -1;
}

/* vsnprintf keeps gcc's truncation warnings quiet: paths are bounded on
 * purpose and a truncated path in a message is harmless. */
static void pathf(char *out, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void pathf(char *out, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, n, fmt, ap);
    va_end(ap);
}

static void join(char *out, size_t n, const char *path, const char *key)
{
    if (path && *path)
        pathf(out, n, "%s.%s", path, key);
    else
        pathf(out, n, "%s", key);
}

/* Pushes t[key]. Returns 0 (nil, popped), 1 (right type, left on the stack)
 * or -1 (wrong type, popped, error written). */
static int get_typed(loader *d, int t, const char *key, const char *path, int type)
{
    int ty = lua_getfield(d->L, t, key);
    if (ty == LUA_TNIL) {
        lua_pop(d->L, 1);
        return 0;
    }
    if (ty != type) {
        char fp[256];
        join(fp, sizeof fp, path, key);
        fail(d, fp, "expected %s, got %s", lua_typename(d->L, type), lua_typename(d->L, ty));
        lua_pop(d->L, 1);
        return -1;
    }
    return 1;
}

static int opt_string(loader *d, int t, const char *key, const char *path, char **out)
{
    int r = get_typed(d, t, key, path, LUA_TSTRING);
    if (r <= 0)
        return r;
    char *s = strdup(lua_tostring(d->L, -1));
    lua_pop(d->L, 1);
    if (!s)
        return fail(d, key, "out of memory");
    free(*out);
    *out = s;
    return 1;
}

static int opt_number(loader *d, int t, const char *key, const char *path, double *out,
                      double min)
{
    int r = get_typed(d, t, key, path, LUA_TNUMBER);
    if (r <= 0)
        return r;
    double v = lua_tonumber(d->L, -1);
    lua_pop(d->L, 1);
    if (!(v >= min) || v != v || v > 1e300) {
        char fp[256];
        join(fp, sizeof fp, path, key);
        return fail(d, fp, "must be >= %g, got %g", min, v);
    }
    *out = v;
    return 1;
}

static int opt_int(loader *d, int t, const char *key, const char *path, int64_t *out,
                   int64_t min, int64_t max)
{
    int r = get_typed(d, t, key, path, LUA_TNUMBER);
    if (r <= 0)
        return r;
    int isint = 0;
    lua_Integer v = lua_tointegerx(d->L, -1, &isint);
    lua_pop(d->L, 1);
    char fp[256];
    join(fp, sizeof fp, path, key);
    if (!isint)
        return fail(d, fp, "expected an integer");
    if (v < min || v > max)
        return fail(d, fp, "must be between %lld and %lld, got %lld", (long long)min,
                    (long long)max, (long long)v);
    *out = v;
    return 1;
}

static int opt_bool(loader *d, int t, const char *key, const char *path, int *out)
{
    int r = get_typed(d, t, key, path, LUA_TBOOLEAN);
    if (r <= 0)
        return r;
    *out = lua_toboolean(d->L, -1);
    lua_pop(d->L, 1);
    return 1;
}

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void free_kv(llmux_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free((char *)kv[i].key);
        free((char *)kv[i].value);
    }
    free(kv);
}

/* An array of strings. */
static int opt_strlist(loader *d, int t, const char *key, const char *path, char ***out,
                       size_t *nout)
{
    int r = get_typed(d, t, key, path, LUA_TTABLE);
    if (r <= 0)
        return r;
    char fp[256];
    join(fp, sizeof fp, path, key);
    size_t n = lua_rawlen(d->L, -1);
    char **v = calloc(n ? n : 1, sizeof *v);
    if (!v) {
        lua_pop(d->L, 1);
        return fail(d, fp, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        int ty = lua_rawgeti(d->L, -1, (lua_Integer)i + 1);
        if (ty != LUA_TSTRING) {
            fail(d, fp, "[%zu]: expected string, got %s", i + 1, lua_typename(d->L, ty));
            lua_pop(d->L, 2);
            free_strv(v, i);
            return -1;
        }
        v[i] = strdup(lua_tostring(d->L, -1));
        lua_pop(d->L, 1);
        if (!v[i]) {
            lua_pop(d->L, 1);
            free_strv(v, i);
            return fail(d, fp, "out of memory");
        }
    }
    lua_pop(d->L, 1);
    free_strv(*out, *nout);
    *out = v;
    *nout = n;
    return 1;
}

static int kv_cmp(const void *a, const void *b)
{
    return strcmp(((const llmux_kv *)a)->key, ((const llmux_kv *)b)->key);
}

/* String key/values; numbers and booleans are accepted and stringified.
 * Sorted by key so the order does not depend on Lua's hashing. */
static int opt_kv(loader *d, int t, const char *key, const char *path, llmux_kv **out,
                  size_t *nout)
{
    int r = get_typed(d, t, key, path, LUA_TTABLE);
    if (r <= 0)
        return r;
    char fp[256];
    join(fp, sizeof fp, path, key);
    size_t n = 0, cap = 8;
    llmux_kv *kv = calloc(cap, sizeof *kv);
    if (!kv) {
        lua_pop(d->L, 1);
        return fail(d, fp, "out of memory");
    }
    lua_pushnil(d->L);
    while (lua_next(d->L, -2)) {
        if (lua_type(d->L, -2) != LUA_TSTRING) {
            fail(d, fp, "keys must be strings, got %s", luaL_typename(d->L, -2));
            goto bad;
        }
        const char *k = lua_tostring(d->L, -2);
        const char *v;
        int vt = lua_type(d->L, -1);
        if (vt == LUA_TSTRING || vt == LUA_TNUMBER) {
            v = lua_tostring(d->L, -1); /* converts the value copy in place: fine */
        } else if (vt == LUA_TBOOLEAN) {
            v = lua_toboolean(d->L, -1) ? "true" : "false";
        } else {
            fail(d, fp, "%s: expected string, got %s", k, lua_typename(d->L, vt));
            goto bad;
        }
        if (n == cap) {
            llmux_kv *nk = realloc(kv, cap * 2 * sizeof *kv);
            if (!nk) {
                fail(d, fp, "out of memory");
                goto bad;
            }
            kv = nk;
            cap *= 2;
        }
        kv[n].key = strdup(k);
        kv[n].value = strdup(v);
        n++;
        if (!kv[n - 1].key || !kv[n - 1].value) {
            fail(d, fp, "out of memory");
            goto bad;
        }
        lua_pop(d->L, 1);
    }
    lua_pop(d->L, 1);
    qsort(kv, n, sizeof *kv, kv_cmp);
    free_kv(*out, *nout);
    *out = kv;
    *nout = n;
    return 1;
bad:
    lua_pop(d->L, 3);
    free_kv(kv, n);
    return -1;
}

/* Refuses keys a schema table does not know (typos would otherwise be
 * silently ignored). */
static int check_keys(loader *d, int t, const char *path, const char *const *allowed)
{
    lua_pushnil(d->L);
    while (lua_next(d->L, t)) {
        lua_pop(d->L, 1);
        if (lua_type(d->L, -1) != LUA_TSTRING) {
            fail(d, path, "unexpected %s key", luaL_typename(d->L, -1));
            lua_pop(d->L, 1);
            return -1;
        }
        const char *k = lua_tostring(d->L, -1);
        if (!in_list(allowed, k)) {
            fail(d, path, "unknown field '%s'", k);
            lua_pop(d->L, 1);
            return -1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------------- */

static int parse_listen(loader *d, const char *s, llmux_config *c)
{
    const char *host, *hend, *port;
    if (s[0] == '[') {
        host = s + 1;
        hend = strchr(host, ']');
        if (!hend || hend[1] != ':')
            return fail(d, "listen", "expected \"[ipv6]:port\", got \"%s\"", s);
        port = hend + 2;
    } else {
        hend = strrchr(s, ':');
        if (!hend)
            return fail(d, "listen", "expected \"host:port\", got \"%s\"", s);
        host = s;
        port = hend + 1;
        if (memchr(host, ':', (size_t)(hend - host)))
            return fail(d, "listen", "IPv6 addresses need brackets: \"[::1]:8080\"");
    }
    if (hend == host)
        return fail(d, "listen", "empty host in \"%s\"", s);
    char *end;
    errno = 0;
    long p = strtol(port, &end, 10);
    if (!*port || *end || errno || p < 1 || p > 65535 || port[0] == '-' || port[0] == '+')
        return fail(d, "listen", "port must be 1..65535, got \"%s\"", port);
    char *h = strndup(host, (size_t)(hend - host));
    if (!h)
        return fail(d, "listen", "out of memory");
    free(c->listen_host);
    c->listen_host = h;
    c->listen_port = (int)p;
    return 0;
}

static void set_line(loader *d, const char *global)
{
    lua_getfield(d->L, d->lines_idx, global);
    d->line = (int)lua_tointeger(d->L, -1);
    lua_pop(d->L, 1);
}

static int read_log(loader *d, llmux_config *c)
{
    static const char *const keys[] = {"level", "access", NULL};
    static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
    static const char *const access[] = {"text", "json", "off", NULL};
    int t = lua_gettop(d->L);
    if (check_keys(d, t, "log", keys) < 0 || opt_string(d, t, "level", "log", &c->log_level) < 0 ||
        opt_string(d, t, "access", "log", &c->access_log) < 0)
        return -1;
    if (!in_list(levels, c->log_level))
        return fail(d, "log.level", "must be debug|info|warn|error, got \"%s\"", c->log_level);
    if (!in_list(access, c->access_log))
        return fail(d, "log.access", "must be text|json|off, got \"%s\"", c->access_log);
    return 0;
}

static int read_limits(loader *d, llmux_config *c)
{
    static const char *const keys[] = {
        "max_header_bytes", "max_body_bytes", "max_json_tokens", "max_json_depth",
        "idle_timeout_ms", "request_timeout_ms", "lua_memory_bytes", "lua_instructions",
        "stream_buffer_bytes", "max_sse_event_bytes", "max_upstream_body_bytes",
        "max_connections", NULL};
    int t = lua_gettop(d->L);
    if (check_keys(d, t, "limits", keys) < 0)
        return -1;
    int64_t v;
#define INT_FIELD(name, min, max)                                                              \
    v = c->limits.name;                                                                        \
    if (opt_int(d, t, #name, "limits", &v, min, max) < 0)                                      \
        return -1;                                                                             \
    c->limits.name = (__typeof__(c->limits.name))v;
    INT_FIELD(max_header_bytes, 1024, INT32_MAX)
    INT_FIELD(max_body_bytes, 1, INT64_MAX / 2)
    INT_FIELD(max_json_tokens, 16, INT32_MAX)
    INT_FIELD(max_json_depth, 2, 100000)
    INT_FIELD(idle_timeout_ms, 1, UINT32_MAX)
    INT_FIELD(request_timeout_ms, 1, UINT32_MAX)
    INT_FIELD(lua_memory_bytes, 256 * 1024, INT64_MAX / 2)
    INT_FIELD(lua_instructions, 1000, UINT32_MAX)
    INT_FIELD(stream_buffer_bytes, 1, INT64_MAX / 2)
    INT_FIELD(max_sse_event_bytes, 1, INT64_MAX / 2)
    INT_FIELD(max_upstream_body_bytes, 1, INT64_MAX / 2)
    INT_FIELD(max_connections, 1, INT32_MAX)
#undef INT_FIELD
    return 0;
}

static int read_timeouts(loader *d, llmux_config *c)
{
    static const char *const keys[] = {"connect_ms", "first_byte_ms", "between_chunks_ms",
                                       "total_ms", "shutdown_ms", "keepalive_comment_ms", NULL};
    int t = lua_gettop(d->L);
    if (check_keys(d, t, "timeouts", keys) < 0)
        return -1;
    int64_t v;
#define TO_FIELD(name, min)                                                                    \
    v = c->timeouts.name;                                                                      \
    if (opt_int(d, t, #name, "timeouts", &v, min, UINT32_MAX) < 0)                             \
        return -1;                                                                             \
    c->timeouts.name = (uint32_t)v;
    TO_FIELD(connect_ms, 1)
    TO_FIELD(first_byte_ms, 1)
    TO_FIELD(between_chunks_ms, 1)
    TO_FIELD(total_ms, 0)
    TO_FIELD(shutdown_ms, 0)
    TO_FIELD(keepalive_comment_ms, 0)
#undef TO_FIELD
    return 0;
}

static int read_routing(loader *d, llmux_config *c)
{
    static const char *const keys[] = {"failure_threshold", "open_seconds", "failure_window_s",
                                       "ewma_alpha", NULL};
    int t = lua_gettop(d->L);
    int64_t th = c->routing.failure_threshold;
    if (check_keys(d, t, "routing", keys) < 0 ||
        opt_int(d, t, "failure_threshold", "routing", &th, 1, 1000000) < 0 ||
        opt_number(d, t, "open_seconds", "routing", &c->routing.open_seconds, 0) < 0 ||
        opt_number(d, t, "failure_window_s", "routing", &c->routing.failure_window_s, 0) < 0 ||
        opt_number(d, t, "ewma_alpha", "routing", &c->routing.ewma_alpha, 0) < 0)
        return -1;
    c->routing.failure_threshold = (int)th;
    if (!(c->routing.ewma_alpha > 0 && c->routing.ewma_alpha <= 1))
        return fail(d, "routing.ewma_alpha", "must be in (0, 1]");
    return 0;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int read_provider(loader *d, llmux_provider_cfg *p, const char *path)
{
    static const char *const keys[] = {"plugin", "name", "base_url", "api_key", "options",
                                       "data_collection", "zdr", NULL};
    int t = lua_gettop(d->L);
    char *dc = NULL;
    if (check_keys(d, t, path, keys) < 0 || opt_string(d, t, "plugin", path, &p->plugin) < 0 ||
        opt_string(d, t, "name", path, &p->name) < 0 ||
        opt_string(d, t, "base_url", path, &p->base_url) < 0 ||
        opt_string(d, t, "api_key", path, &p->api_key) < 0 ||
        opt_kv(d, t, "options", path, &p->options, &p->n_options) < 0 ||
        opt_bool(d, t, "zdr", path, &p->zdr) < 0 ||
        opt_string(d, t, "data_collection", path, &dc) < 0)
        return -1;
    if (dc) {
        int ok = !strcmp(dc, "allow") || !strcmp(dc, "deny");
        p->data_collection_deny = !strcmp(dc, "deny");
        free(dc);
        if (!ok) {
            char fp[256];
            join(fp, sizeof fp, path, "data_collection");
            return fail(d, fp, "must be \"allow\" or \"deny\"");
        }
    }
    if (!p->plugin && !(p->plugin = strdup(p->id)))
        return fail(d, path, "out of memory");
    if (!p->name && !(p->name = strdup(p->id)))
        return fail(d, path, "out of memory");
    if (p->base_url) {
        size_t n = strlen(p->base_url);
        while (n > 0 && p->base_url[n - 1] == '/')
            p->base_url[--n] = '\0';
    }
    if (!*p->plugin || strchr(p->plugin, '/') || strstr(p->plugin, ".."))
        return fail(d, path, "plugin must be a plain name, got \"%s\"", p->plugin);
    return 0;
}

static int read_providers(loader *d, llmux_config *c)
{
    int t = lua_gettop(d->L);
    size_t n = 0;
    lua_pushnil(d->L);
    while (lua_next(d->L, t)) {
        lua_pop(d->L, 1);
        if (lua_type(d->L, -1) != LUA_TSTRING) {
            lua_pop(d->L, 1);
            return fail(d, "providers", "keys must be provider id strings");
        }
        n++;
    }
    char **ids = calloc(n ? n : 1, sizeof *ids);
    c->providers = calloc(n ? n : 1, sizeof *c->providers);
    if (!ids || !c->providers) {
        free(ids);
        return fail(d, "providers", "out of memory");
    }
    size_t i = 0;
    lua_pushnil(d->L);
    while (lua_next(d->L, t)) {
        lua_pop(d->L, 1);
        ids[i++] = (char *)lua_tostring(d->L, -1); /* anchored by the table */
    }
    qsort(ids, n, sizeof *ids, str_cmp);
    int rc = 0;
    for (i = 0; i < n && rc == 0; i++) {
        llmux_provider_cfg *p = &c->providers[i];
        c->n_providers = i + 1;
        char path[256];
        pathf(path, sizeof path, "providers.%s", ids[i]);
        if (!*ids[i]) {
            rc = fail(d, "providers", "empty provider id");
            break;
        }
        if (!(p->id = strdup(ids[i]))) {
            rc = fail(d, path, "out of memory");
            break;
        }
        int ty = lua_getfield(d->L, t, ids[i]);
        if (ty != LUA_TTABLE) {
            rc = fail(d, path, "expected table, got %s", lua_typename(d->L, ty));
            lua_pop(d->L, 1);
            break;
        }
        rc = read_provider(d, p, path);
        lua_pop(d->L, 1);
        p->view.struct_size = sizeof p->view;
        p->view.name = p->id;
        p->view.base_url = p->base_url;
        p->view.api_key = p->api_key;
        p->view.options = p->options;
        p->view.n_options = p->n_options;
    }
    free(ids);
    return rc;
}

static int valid_model_id(const char *id)
{
    const char *slash = strchr(id, '/');
    if (!slash || slash == id || !slash[1] || strchr(slash + 1, '/'))
        return 0;
    for (const char *p = id; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (!(ch == '/' || ch == '-' || ch == '_' || ch == '.' || (ch >= '0' && ch <= '9') ||
              (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')))
            return 0;
    }
    return 1;
}

static int read_pricing(loader *d, llmux_pricing *pr, const char *path)
{
    static const char *const keys[] = {"prompt", "completion", "request", "image",
                                       "cache_read", "cache_write", "reasoning", NULL};
    int t = lua_gettop(d->L);
    if (check_keys(d, t, path, keys) < 0 || opt_number(d, t, "prompt", path, &pr->prompt, 0) < 0 ||
        opt_number(d, t, "completion", path, &pr->completion, 0) < 0 ||
        opt_number(d, t, "request", path, &pr->request, 0) < 0 ||
        opt_number(d, t, "image", path, &pr->image, 0) < 0 ||
        opt_number(d, t, "cache_read", path, &pr->cache_read, 0) < 0 ||
        opt_number(d, t, "cache_write", path, &pr->cache_write, 0) < 0 ||
        opt_number(d, t, "reasoning", path, &pr->reasoning, 0) < 0)
        return -1;
    return 0;
}

static int read_endpoint(loader *d, llmux_config *c, llmux_model_cfg *m, llmux_endpoint_cfg *e,
                         const char *path)
{
    static const char *const keys[] = {"provider", "model", "pricing", "context_length",
                                       "max_completion_tokens", "supported_parameters",
                                       "quantization", "tags", "options", NULL};
    int t = lua_gettop(d->L);
    char *prov = NULL;
    e->model = m;
    e->pricing.reasoning = -1;
    if (check_keys(d, t, path, keys) < 0 || opt_string(d, t, "provider", path, &prov) < 0)
        return -1;
    char fp[256];
    join(fp, sizeof fp, path, "provider");
    if (!prov)
        return fail(d, fp, "required");
    e->provider = (llmux_provider_cfg *)llmux_config_find_provider(c, prov);
    if (!e->provider) {
        fail(d, fp, "unknown provider \"%s\" (not in providers)", prov);
        free(prov);
        return -1;
    }
    free(prov);
    if (opt_string(d, t, "model", path, &e->upstream_model) < 0 ||
        opt_int(d, t, "context_length", path, &e->context_length, 0, INT64_MAX / 2) < 0 ||
        opt_int(d, t, "max_completion_tokens", path, &e->max_completion_tokens, 0,
                INT64_MAX / 2) < 0 ||
        opt_strlist(d, t, "supported_parameters", path, &e->supported_parameters,
                    &e->n_supported_parameters) < 0 ||
        opt_string(d, t, "quantization", path, &e->quantization) < 0 ||
        opt_strlist(d, t, "tags", path, &e->tags, &e->n_tags) < 0 ||
        opt_kv(d, t, "options", path, &e->options, &e->n_options) < 0)
        return -1;
    join(fp, sizeof fp, path, "pricing");
    int r = get_typed(d, t, "pricing", path, LUA_TTABLE);
    if (r < 0)
        return -1;
    if (r > 0) {
        r = read_pricing(d, &e->pricing, fp);
        lua_pop(d->L, 1);
        if (r < 0)
            return -1;
    }
    if (!e->upstream_model && !(e->upstream_model = strdup(strchr(m->id, '/') + 1)))
        return fail(d, path, "out of memory");
    return 0;
}

static int read_model(loader *d, llmux_config *c, llmux_model_cfg *m, const char *path)
{
    static const char *const keys[] = {"id", "name", "description", "created",
                                       "context_length", "input_modalities",
                                       "output_modalities", "tokenizer", "endpoints", NULL};
    int t = lua_gettop(d->L);
    if (check_keys(d, t, path, keys) < 0 || opt_string(d, t, "id", path, &m->id) < 0)
        return -1;
    char fp[256];
    join(fp, sizeof fp, path, "id");
    if (!m->id)
        return fail(d, fp, "required");
    if (!valid_model_id(m->id))
        return fail(d, fp, "\"%s\" is not of the form author/slug", m->id);
    for (llmux_model_cfg *o = c->models; o < m; o++)
        if (!strcmp(o->id, m->id))
            return fail(d, fp, "duplicate model id \"%s\"", m->id);
    if (opt_string(d, t, "name", path, &m->name) < 0 ||
        opt_string(d, t, "description", path, &m->description) < 0 ||
        opt_int(d, t, "created", path, &m->created, 0, INT64_MAX / 2) < 0 ||
        opt_int(d, t, "context_length", path, &m->context_length, 0, INT64_MAX / 2) < 0 ||
        opt_strlist(d, t, "input_modalities", path, &m->input_modalities,
                    &m->n_input_modalities) < 0 ||
        opt_strlist(d, t, "output_modalities", path, &m->output_modalities,
                    &m->n_output_modalities) < 0 ||
        opt_string(d, t, "tokenizer", path, &m->tokenizer) < 0)
        return -1;
    if (!m->name)
        m->name = strdup(m->id);
    if (!m->description)
        m->description = strdup("");
    if (!m->tokenizer)
        m->tokenizer = strdup("Other");
    if (!m->input_modalities && (m->input_modalities = calloc(1, sizeof(char *))) &&
        (m->input_modalities[0] = strdup("text")))
        m->n_input_modalities = 1;
    if (!m->output_modalities && (m->output_modalities = calloc(1, sizeof(char *))) &&
        (m->output_modalities[0] = strdup("text")))
        m->n_output_modalities = 1;
    if (!m->name || !m->description || !m->tokenizer || !m->n_input_modalities ||
        !m->n_output_modalities)
        return fail(d, path, "out of memory");

    join(fp, sizeof fp, path, "endpoints");
    int r = get_typed(d, t, "endpoints", path, LUA_TTABLE);
    if (r < 0)
        return -1;
    if (r == 0)
        return fail(d, fp, "required (at least one endpoint)");
    size_t n = lua_rawlen(d->L, -1);
    if (n == 0) {
        lua_pop(d->L, 1);
        return fail(d, fp, "required (at least one endpoint)");
    }
    m->endpoints = calloc(n, sizeof *m->endpoints);
    if (!m->endpoints) {
        lua_pop(d->L, 1);
        return fail(d, fp, "out of memory");
    }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char ep[256];
        pathf(ep, sizeof ep, "%s[%zu]", fp, i + 1);
        m->n_endpoints = i + 1;
        m->endpoints[i].pricing.reasoning = -1;
        int ty = lua_rawgeti(d->L, -1, (lua_Integer)i + 1);
        if (ty != LUA_TTABLE)
            rc = fail(d, ep, "expected table, got %s", lua_typename(d->L, ty));
        else
            rc = read_endpoint(d, c, m, &m->endpoints[i], ep);
        lua_pop(d->L, 1);
    }
    lua_pop(d->L, 1);
    return rc;
}

static int read_models(loader *d, llmux_config *c)
{
    int t = lua_gettop(d->L);
    size_t n = lua_rawlen(d->L, t);
    c->models = calloc(n ? n : 1, sizeof *c->models);
    if (!c->models)
        return fail(d, "models", "out of memory");
    for (size_t i = 0; i < n; i++) {
        char path[64];
        pathf(path, sizeof path, "models[%zu]", i + 1);
        c->n_models = i + 1;
        int ty = lua_rawgeti(d->L, t, (lua_Integer)i + 1);
        int rc = ty == LUA_TTABLE ? read_model(d, c, &c->models[i], path)
                                  : fail(d, path, "expected table, got %s",
                                         lua_typename(d->L, ty));
        lua_pop(d->L, 1);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* Derived fields: endpoint indexes, plugin-facing views, context lengths. */
static int finish(loader *d, llmux_config *c)
{
    size_t total = 0;
    for (size_t i = 0; i < c->n_models; i++)
        total += c->models[i].n_endpoints;
    c->n_endpoints = total;
    c->endpoint_by_index = calloc(total ? total : 1, sizeof *c->endpoint_by_index);
    if (!c->endpoint_by_index)
        return fail(d, "models", "out of memory");
    int idx = 0;
    for (size_t i = 0; i < c->n_models; i++) {
        llmux_model_cfg *m = &c->models[i];
        if (!m->context_length)
            for (size_t j = 0; j < m->n_endpoints; j++)
                if (m->endpoints[j].context_length > m->context_length)
                    m->context_length = m->endpoints[j].context_length;
        for (size_t j = 0; j < m->n_endpoints; j++) {
            llmux_endpoint_cfg *e = &m->endpoints[j];
            if (!e->context_length)
                e->context_length = m->context_length;
            e->index = idx;
            c->endpoint_by_index[idx++] = e;
            e->view.struct_size = sizeof e->view;
            e->view.model = m->id;
            e->view.upstream_model = e->upstream_model;
            e->view.provider_name = e->provider->name;
            e->view.context_length = e->context_length;
            e->view.max_completion_tokens = e->max_completion_tokens;
            e->view.options = e->options;
            e->view.n_options = e->n_options;
        }
    }
    return 0;
}

/* Accounts: auth, storage, redis, management_key, byok (docs/accounts.md). */
static int read_accounts(loader *d, llmux_config *c, int g)
{
    char *auth = NULL;
    set_line(d, "auth");
    if (opt_string(d, g, "auth", "", &auth) < 0)
        return -1;
    if (auth) {
        int ok = !strcmp(auth, "none") || !strcmp(auth, "keys");
        c->auth_keys = !strcmp(auth, "keys");
        free(auth);
        if (!ok)
            return fail(d, "auth", "must be \"none\" or \"keys\"");
    }
    set_line(d, "storage");
    int ty = lua_getfield(d->L, g, "storage");
    if (ty == LUA_TBOOLEAN && !lua_toboolean(d->L, -1)) {
        c->storage_mode = 0;
        c->storage_explicit = 1;
        lua_pop(d->L, 1);
    } else if (ty == LUA_TTABLE) {
        static const char *const keys[] = {"sqlite", "postgres", "durable", NULL};
        int t = lua_gettop(d->L);
        char *sq = NULL, *pg = NULL;
        int bad = check_keys(d, t, "storage", keys) < 0 || opt_string(d, t, "sqlite", "storage", &sq) < 0 ||
                  opt_string(d, t, "postgres", "storage", &pg) < 0 ||
                  opt_bool(d, t, "durable", "storage", &c->storage_durable) < 0;
        lua_pop(d->L, 1);
        if (!bad && sq && pg)
            bad = fail(d, "storage", "set either sqlite or postgres, not both") < 0;
        if (bad) {
            free(sq);
            free(pg);
            return -1;
        }
        c->storage_explicit = 1;
        if (sq || pg) {
            free(c->storage_path);
            c->storage_path = sq ? sq : pg;
            c->storage_mode = sq ? 1 : 2;
        }
    } else if (ty != LUA_TNIL) {
        lua_pop(d->L, 1);
        return fail(d, "storage", "expected a table ({sqlite = PATH} or {postgres = CONNINFO}) or false");
    } else {
        lua_pop(d->L, 1);
    }
    set_line(d, "redis");
    if (opt_string(d, g, "redis", "", &c->redis) < 0)
        return -1;
    set_line(d, "management_key");
    if (opt_string(d, g, "management_key", "", &c->management_key) < 0)
        return -1;
    set_line(d, "byok");
    int r = get_typed(d, g, "byok", "", LUA_TTABLE);
    if (r < 0)
        return -1;
    if (r > 0) {
        static const char *const keys[] = {"encryption_key_env", "fee", NULL};
        int t = lua_gettop(d->L);
        int bad = check_keys(d, t, "byok", keys) < 0 ||
                  opt_string(d, t, "encryption_key_env", "byok", &c->byok_key_env) < 0 ||
                  opt_number(d, t, "fee", "byok", &c->byok_fee, 0) < 0;
        lua_pop(d->L, 1);
        if (bad)
            return -1;
    }
    return 0;
}

static int read_globals(loader *d, llmux_config *c)
{
    lua_State *L = d->L;
    int g = lua_gettop(L); /* _G */
    const char *strs[] = {"plugin_dir", "plugin_cache_dir", "routing_script", "admin_key"};
    char **dst[] = {&c->plugin_dir, &c->plugin_cache_dir, &c->routing_script, &c->admin_key};
    for (int i = 0; i < 4; i++) {
        set_line(d, strs[i]);
        if (opt_string(d, g, strs[i], "", dst[i]) < 0)
            return -1;
    }
    set_line(d, "listen");
    char *listen = NULL;
    if (opt_string(d, g, "listen", "", &listen) < 0)
        return -1;
    if (listen) {
        int rc = parse_listen(d, listen, c);
        free(listen);
        if (rc < 0)
            return -1;
    }
    set_line(d, "workers");
    int64_t w = c->workers;
    if (opt_int(d, g, "workers", "", &w, 0, 4096) < 0)
        return -1;
    c->workers = (int)w;
    set_line(d, "watch");
    if (opt_bool(d, g, "watch", "", &c->watch) < 0)
        return -1;

    static const struct {
        const char *name;
        int (*read)(loader *, llmux_config *);
    } tables[] = {{"log", read_log}, {"limits", read_limits}, {"timeouts", read_timeouts},
                  {"routing", read_routing},
                  {"providers", read_providers}, {"models", read_models}};
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        set_line(d, tables[i].name);
        int r = get_typed(d, g, tables[i].name, "", LUA_TTABLE);
        if (r < 0)
            return -1;
        if (r == 0)
            continue;
        r = tables[i].read(d, c);
        lua_settop(L, g);
        if (r < 0)
            return -1;
    }
    if (read_accounts(d, c, g) < 0)
        return -1;
    if (c->storage_durable < 0)
        c->storage_durable = c->auth_keys;
    lua_settop(L, g);
    d->line = 0;
    return finish(d, c);
}

/* Any global that is neither in the schema, a function, nor present before
 * the file ran is most likely a typo ("model = {...}"). */
static int check_unknown_globals(loader *d, int baseline)
{
    lua_State *L = d->L;
    lua_pushglobaltable(L);
    int g = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, g)) {
        int isfn = lua_type(L, -1) == LUA_TFUNCTION;
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING || isfn)
            continue;
        const char *k = lua_tostring(L, -1);
        if (in_list(top_level_fields, k))
            continue;
        lua_pushvalue(L, -1);
        int known = lua_rawget(L, baseline) != LUA_TNIL;
        lua_pop(L, 1);
        if (known)
            continue;
        set_line(d, k);
        fail(d, k, "unknown top-level field");
        lua_settop(L, g - 1);
        return -1;
    }
    lua_pop(L, 1);
    return 0;
}

/* __newindex on _G while the file runs: remembers the line that first set
 * each global, for error messages. */
static int track_global(lua_State *L)
{
    lua_Debug ar;
    if (lua_type(L, 2) == LUA_TSTRING && lua_getstack(L, 1, &ar) && lua_getinfo(L, "l", &ar) &&
        ar.currentline > 0) {
        lua_pushvalue(L, 2);
        lua_pushinteger(L, ar.currentline);
        lua_rawset(L, lua_upvalueindex(1));
    }
    lua_rawset(L, 1);
    return 0;
}

static int lua_env(lua_State *L)
{
    const char *v = getenv(luaL_checkstring(L, 1));
    if (v)
        lua_pushstring(L, v);
    else
        lua_pushnil(L);
    return 1;
}

static void config_free(llmux_config *c)
{
    if (!c)
        return;
    free(c->source_path);
    free(c->listen_host);
    free(c->plugin_dir);
    free(c->plugin_cache_dir);
    free(c->routing_script);
    free(c->log_level);
    free(c->access_log);
    free(c->admin_key);
    free(c->storage_path);
    free(c->redis);
    free(c->management_key);
    free(c->byok_key_env);
    for (size_t i = 0; i < c->n_providers; i++) {
        llmux_provider_cfg *p = &c->providers[i];
        free(p->id);
        free(p->plugin);
        free(p->name);
        free(p->base_url);
        free(p->api_key);
        free_kv(p->options, p->n_options);
    }
    free(c->providers);
    for (size_t i = 0; i < c->n_models; i++) {
        llmux_model_cfg *m = &c->models[i];
        free(m->id);
        free(m->name);
        free(m->description);
        free(m->tokenizer);
        free_strv(m->input_modalities, m->n_input_modalities);
        free_strv(m->output_modalities, m->n_output_modalities);
        for (size_t j = 0; j < m->n_endpoints; j++) {
            llmux_endpoint_cfg *e = &m->endpoints[j];
            free(e->upstream_model);
            free_strv(e->supported_parameters, e->n_supported_parameters);
            free(e->quantization);
            free_strv(e->tags, e->n_tags);
            free_kv(e->options, e->n_options);
        }
        free(m->endpoints);
    }
    free(c->models);
    free(c->endpoint_by_index);
    free(c);
}

static llmux_config *config_defaults(void)
{
    llmux_config *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    atomic_init(&c->refs, 1);
    c->listen_port = 8080;
    c->workers = 0;
    char cache[64];
    snprintf(cache, sizeof cache, "/tmp/llmux-plugins-%u", (unsigned)getuid());
    c->listen_host = strdup("127.0.0.1");
    c->plugin_dir = strdup(LLMUX_DEFAULT_PLUGIN_DIR);
    c->plugin_cache_dir = strdup(cache);
    c->log_level = strdup("info");
    c->access_log = strdup("text");
    c->storage_mode = 1; /* accounts: SQLite llmux.db unless configured */
    c->storage_durable = -1; /* unset: durable when auth = "keys" */
    c->storage_path = strdup("llmux.db");
    c->byok_key_env = strdup("LLMUX_BYOK_KEY");
    c->byok_fee = 0.05;
    c->limits = (llmux_limits){
        .max_header_bytes = 64 * 1024,       .max_body_bytes = 10 * 1024 * 1024,
        .max_json_tokens = 262144,           .max_json_depth = 64,
        .idle_timeout_ms = 60000,            .request_timeout_ms = 30000,
        .lua_memory_bytes = 8 * 1024 * 1024, .lua_instructions = 1000000,
        .stream_buffer_bytes = 1024 * 1024,  .max_sse_event_bytes = 4 * 1024 * 1024,
        .max_upstream_body_bytes = 64 * 1024 * 1024, .max_connections = 20000,
    };
    c->timeouts = (llmux_timeouts){
        .connect_ms = 5000,  .first_byte_ms = 60000, .between_chunks_ms = 60000,
        .total_ms = 0,       .shutdown_ms = 10000,   .keepalive_comment_ms = 2000,
    };
    c->routing = (llmux_routing_cfg){.failure_threshold = 5, .open_seconds = 30,
                                     .failure_window_s = 30, .ewma_alpha = 0.2};
    if (!c->listen_host || !c->plugin_dir || !c->plugin_cache_dir || !c->log_level ||
        !c->access_log || !c->storage_path || !c->byok_key_env) {
        config_free(c);
        return NULL;
    }
    return c;
}

llmux_config *llmux_config_load_string(const char *src, size_t len, const char *name,
                                       char *err, size_t errlen)
{
    const char *file = name ? name : "<default>";
    loader d = {.file = file, .err = err, .errlen = errlen};
    if (err && errlen)
        err[0] = '\0';
    llmux_config *c = config_defaults();
    llmux_lua_sandbox *sb = llmux_sandbox_new(CONFIG_LUA_MEMORY, CONFIG_LUA_INSTRUCTIONS);
    if (!c || !sb) {
        fail(&d, "config", "out of memory");
        goto bad;
    }
    lua_State *L = d.L = sb->L;
    lua_pushcfunction(L, lua_env);
    lua_setglobal(L, "env");

    /* baseline: globals that exist before the file runs */
    lua_newtable(L);
    int baseline = lua_gettop(L);
    lua_pushglobaltable(L);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_pushboolean(L, 1);
        lua_rawset(L, baseline);
    }
    lua_pop(L, 1);
    lua_newtable(L);
    d.lines_idx = lua_gettop(L);
    lua_pushglobaltable(L);
    lua_newtable(L); /* metatable */
    lua_pushvalue(L, d.lines_idx);
    lua_pushcclosure(L, track_global, 1);
    lua_setfield(L, -2, "__newindex");
    lua_setmetatable(L, -2);
    lua_pop(L, 1);

    char chunk[1024];
    snprintf(chunk, sizeof chunk, "%s%s", name ? "@" : "=", file);
    if (llmux_sandbox_load(sb, src, len, chunk) != LUA_OK ||
        llmux_sandbox_pcall(sb, 0, 0) != LUA_OK) {
        if (err && errlen)
            snprintf(err, errlen, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "error");
        goto bad;
    }
    lua_pushglobaltable(L);
    lua_pushnil(L);
    lua_setmetatable(L, -2);
    if (read_globals(&d, c) < 0)
        goto bad;
    lua_settop(L, d.lines_idx);
    if (check_unknown_globals(&d, baseline) < 0)
        goto bad;
    if (!c->routing_script && !(c->routing_script = strdup(LLMUX_SOURCE_DIR "/scripts/default.lua")))
        goto bad;
    if (name && !(c->source_path = strdup(name)))
        goto bad;
    llmux_sandbox_free(sb);
    c->generation = atomic_fetch_add(&config_generation, 1) + 1;
    return c;
bad:
    if (err && errlen && !err[0])
        snprintf(err, errlen, "%s: out of memory", file);
    llmux_sandbox_free(sb);
    config_free(c);
    return NULL;
}

llmux_config *llmux_config_load(const char *path, char *err, size_t errlen)
{
    if (!path) {
        const char *src = llmux_default_config_lua();
        return llmux_config_load_string(src, strlen(src), NULL, err, errlen);
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (err && errlen)
            snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 65536;
            char *nb = ncap > (size_t)64 << 20 ? NULL : realloc(buf, ncap);
            if (!nb) {
                free(buf);
                fclose(f);
                if (err && errlen)
                    snprintf(err, errlen, "%s: too large or out of memory", path);
                return NULL;
            }
            buf = nb;
            cap = ncap;
        }
        size_t r = fread(buf + len, 1, cap - len, f);
        len += r;
        if (r == 0)
            break;
    }
    int rerr = ferror(f);
    fclose(f);
    if (rerr) {
        free(buf);
        if (err && errlen)
            snprintf(err, errlen, "%s: read error", path);
        return NULL;
    }
    llmux_config *c = llmux_config_load_string(buf, len, path, err, errlen);
    free(buf);
    return c;
}

const llmux_model_cfg *llmux_config_find_model(const llmux_config *c, const char *id, size_t len)
{
    if (!c || !id)
        return NULL;
    for (size_t i = 0; i < c->n_models; i++) {
        const char *m = c->models[i].id;
        if (strlen(m) == len && !memcmp(m, id, len))
            return &c->models[i];
    }
    return NULL;
}

const llmux_provider_cfg *llmux_config_find_provider(const llmux_config *c, const char *id)
{
    if (!c || !id)
        return NULL;
    for (size_t i = 0; i < c->n_providers; i++)
        if (c->providers[i].id && !strcmp(c->providers[i].id, id))
            return &c->providers[i];
    return NULL;
}

void llmux_config_ref(llmux_config *c)
{
    if (c)
        atomic_fetch_add(&c->refs, 1);
}

void llmux_config_unref(llmux_config *c)
{
    if (c && atomic_fetch_sub(&c->refs, 1) == 1)
        config_free(c);
}
