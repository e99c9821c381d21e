/*
 * llmux_plugin.h — the whole contract between llmux and a provider plugin.
 *
 * A provider plugin is a shared object that translates between llmux's
 * canonical request/stream (OpenAI chat-completions) and one upstream wire
 * format. It never opens a socket, never blocks, never starts a thread and
 * never allocates outside the host allocator: the core does all I/O.
 *
 * ---------------------------------------------------------------------------
 * Compatibility rules (ABI v1)
 * ---------------------------------------------------------------------------
 *  - The plugin exports exactly one symbol, `llmux_plugin_v1`, a function
 *    returning a pointer to a static, constant `llmux_plugin` descriptor.
 *    Build with -fvisibility=hidden and mark the entry with LLMUX_EXPORT.
 *  - The descriptor starts with magic, abi_major, abi_minor, struct_size.
 *    The host refuses a different major. A plugin built against an older
 *    minor has a smaller struct_size: the host reads only the fields that
 *    struct_size covers and treats the rest as absent (NULL).
 *  - The host API table (`llmux_host`) is append-only: new functions are
 *    added at its end and bump LLMUX_ABI_MINOR. A plugin that needs a newer
 *    function checks `host->struct_size` (see LLMUX_HOST_HAS) before use.
 *  - Every callback returns 0 or a negative LLMUX_E* code; it never exits,
 *    aborts or longjmps.
 *
 * ---------------------------------------------------------------------------
 * Threads, reload and unloading
 * ---------------------------------------------------------------------------
 *  - llmux runs several worker threads. `init` and `fini` run once per loaded
 *    generation; after `init` the ctx must be treated as read-only, because
 *    calls on different workers use it at the same time. Per-call state goes
 *    in `call->state`.
 *  - A plugin can be hot-reloaded: the new image is loaded beside the old one
 *    (from a content-addressed copy), calls in flight finish on the old one,
 *    which is then fini'd and dlclose'd. Therefore a plugin must not start
 *    threads, register atexit handlers, use thread-local destructors, or keep
 *    state in globals (two generations may be mapped at once).
 *
 * ---------------------------------------------------------------------------
 * Text conventions
 * ---------------------------------------------------------------------------
 *  Text handed to the emit_* functions is *JSON-escaped* string content
 *  (the bytes between the quotes of a JSON string), so that text copied from
 *  an upstream JSON document is forwarded without being unescaped and escaped
 *  again. Use host->buf_append_escaped to escape raw text yourself.
 */
#ifndef LLMUX_PLUGIN_H
#define LLMUX_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LLMUX_PLUGIN_MAGIC 0x4c4c4d58u /* "LLMX" */
#define LLMUX_ABI_MAJOR 1
#define LLMUX_ABI_MINOR 0
#define LLMUX_PLUGIN_ENTRY "llmux_plugin_v1"

#if defined(__GNUC__) || defined(__clang__)
#define LLMUX_EXPORT __attribute__((visibility("default")))
#else
#define LLMUX_EXPORT
#endif

/* True when a host/descriptor struct of `size` bytes contains `field`. */
#define LLMUX_HAS_FIELD(ptr, type, field)                                      \
    ((ptr)->struct_size >= offsetof(type, field) + sizeof(((type *)0)->field))
#define LLMUX_HOST_HAS(host, fn) LLMUX_HAS_FIELD(host, llmux_host, fn)

/* ------------------------------------------------------------------------ */
/* Error codes: 0 is success, failures are negative.                        */
/* ------------------------------------------------------------------------ */
enum {
    LLMUX_OK = 0,
    LLMUX_EINVAL = -1,      /* the request cannot be expressed upstream (400) */
    LLMUX_ENOMEM = -2,      /* allocation failed */
    LLMUX_EPROTO = -3,      /* the upstream sent something unparseable (502) */
    LLMUX_EUNSUPPORTED = -4,/* a requested feature is not available (404) */
    LLMUX_ELIMIT = -5,      /* a bound was exceeded */
    LLMUX_EUPSTREAM = -6,   /* the upstream reported an error (see emit_error) */
    LLMUX_ECONFIG = -7      /* bad plugin configuration (init refuses) */
};

/* ------------------------------------------------------------------------ */
/* JSON tokens (same layout as jsmn's jsmntok_t).                           */
/* ------------------------------------------------------------------------ */
typedef enum {
    LLMUX_JSON_UNDEFINED = 0,
    LLMUX_JSON_OBJECT = 1,
    LLMUX_JSON_ARRAY = 2,
    LLMUX_JSON_STRING = 3,
    LLMUX_JSON_PRIMITIVE = 4 /* number, true, false, null */
} llmux_json_type;

typedef struct {
    llmux_json_type type;
    int start; /* byte offset of the first byte (strings: after the quote) */
    int end;   /* byte offset one past the last byte */
    int size;  /* objects: number of keys; arrays: number of elements */
} llmux_jtok;

/* A parsed JSON document: the text and its tokens; token 0 is the root. */
typedef struct {
    const char *text;
    size_t len;
    const llmux_jtok *tok;
    int ntok;
} llmux_json;

/* ------------------------------------------------------------------------ */
/* Growable byte buffer owned by the host.                                  */
/* ------------------------------------------------------------------------ */
typedef struct {
    char *data;
    size_t len;
    size_t cap;
} llmux_buf;

/* SSE parser state, zero-initialise before first use. */
typedef struct llmux_sse {
    llmux_buf pending;  /* bytes of the current incomplete line */
    llmux_buf event;    /* event name */
    llmux_buf data;     /* accumulated data lines */
    int has_data;
} llmux_sse;

/* ------------------------------------------------------------------------ */
/* Canonical stream events.                                                 */
/* ------------------------------------------------------------------------ */
typedef enum {
    LLMUX_DELTA_CONTENT = 0,
    LLMUX_DELTA_REASONING = 1,
    LLMUX_DELTA_REFUSAL = 2
} llmux_delta_kind;

typedef enum {
    LLMUX_FINISH_NONE = 0,
    LLMUX_FINISH_STOP,
    LLMUX_FINISH_LENGTH,
    LLMUX_FINISH_TOOL_CALLS,
    LLMUX_FINISH_CONTENT_FILTER,
    LLMUX_FINISH_ERROR
} llmux_finish;

/* Token usage as reported by the upstream. -1 means "not reported". */
typedef struct {
    int64_t prompt_tokens;
    int64_t completion_tokens;
    int64_t reasoning_tokens;   /* included in completion_tokens */
    int64_t cached_tokens;      /* prompt tokens read from cache */
    int64_t cache_write_tokens; /* prompt tokens written to cache */
} llmux_usage;

/* ------------------------------------------------------------------------ */
/* What a call sees.                                                        */
/* ------------------------------------------------------------------------ */
typedef struct {
    const char *key;
    const char *value;
} llmux_kv;

/* A provider's configuration, from the config file. Strings stay valid for
 * the generation's lifetime. */
typedef struct {
    size_t struct_size;
    const char *name;     /* provider slug, e.g. "openai" */
    const char *base_url; /* e.g. "https://api.openai.com/v1" (no trailing /) */
    const char *api_key;  /* resolved secret, may be NULL; never log it */
    const llmux_kv *options;
    size_t n_options;
} llmux_provider_config;

/* The endpoint (provider x model) chosen for this attempt. */
typedef struct {
    size_t struct_size;
    const char *model;          /* public model id, e.g. "openai/gpt-4o" */
    const char *upstream_model; /* the provider's name for it */
    const char *provider_name;  /* display name, e.g. "OpenAI" */
    int64_t context_length;
    int64_t max_completion_tokens; /* 0 if unknown */
    const llmux_kv *options;       /* per-endpoint extras from the config */
    size_t n_options;
} llmux_endpoint;

/* The canonical request as the client sent it (after validation). */
typedef struct {
    size_t struct_size;
    llmux_json body;       /* the whole chat-completions body */
    int stream;            /* client asked for SSE */
    int is_legacy_prompt;  /* came in on /completions with "prompt" */
    int64_t max_tokens;    /* max_tokens / max_completion_tokens, 0 if absent */
    const char *api_key_override; /* BYOK key for this provider, or NULL */
} llmux_request;

/* One attempt of one request against one endpoint. */
typedef struct llmux_call {
    size_t struct_size;
    void *plugin_ctx;             /* what init returned */
    void *state;                  /* the plugin's per-call state */
    const llmux_request *req;
    const llmux_endpoint *ep;
    const llmux_provider_config *provider;
} llmux_call;

/* The upstream HTTP request a plugin builds in prepare(). Opaque. */
typedef struct llmux_outreq llmux_outreq;

typedef enum { LLMUX_LOG_DEBUG = 0, LLMUX_LOG_INFO, LLMUX_LOG_WARN, LLMUX_LOG_ERROR } llmux_log_level;

/* ------------------------------------------------------------------------ */
/* Host API table. Append-only.                                             */
/* ------------------------------------------------------------------------ */
typedef struct llmux_host {
    uint32_t magic;
    uint16_t abi_major;
    uint16_t abi_minor;
    size_t struct_size;

    /* Memory. Allocation failure returns NULL; free(NULL) is a no-op. */
    void *(*alloc)(size_t n);
    void *(*calloc)(size_t n, size_t size);
    void *(*realloc)(void *p, size_t n);
    void (*free)(void *p);

    /* Logging (one line; never pass secrets). */
    void (*log)(llmux_log_level level, const char *plugin, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
        __attribute__((format(printf, 3, 4)))
#endif
        ;

    /* Buffers. Each returns 0 or LLMUX_ENOMEM. */
    int (*buf_append)(llmux_buf *b, const void *data, size_t n);
    int (*buf_append_str)(llmux_buf *b, const char *s);
    int (*buf_printf)(llmux_buf *b, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
        __attribute__((format(printf, 2, 3)))
#endif
        ;
    /* Appends raw UTF-8 text escaped for a JSON string (no quotes added). */
    int (*buf_append_escaped)(llmux_buf *b, const char *s, size_t n);
    void (*buf_free)(llmux_buf *b);

    /* JSON reading over a parsed document.
     * json_parse: tokenises and validates `text` (strings, escapes, UTF-8,
     *   numbers, depth). Fills *out with host-owned tokens that must be
     *   released with json_release. Returns 0 or LLMUX_EPROTO/LLMUX_ELIMIT. */
    int (*json_parse)(const char *text, size_t len, llmux_json *out);
    void (*json_release)(llmux_json *doc);
    /* Index of the token after the subtree rooted at `i`. */
    int (*json_skip)(const llmux_json *doc, int i);
    /* Index of the value for `key` in object `obj`, or -1. */
    int (*json_get)(const llmux_json *doc, int obj, const char *key);
    /* Token `i` equals the string/primitive `s` (raw bytes compare). */
    int (*json_eq)(const llmux_json *doc, int i, const char *s);
    /* Numeric value of primitive `i`; returns 0 and sets *out, or -1. */
    int (*json_int)(const llmux_json *doc, int i, int64_t *out);
    int (*json_double)(const llmux_json *doc, int i, double *out);
    /* 1 for true, 0 for false, -1 otherwise. */
    int (*json_bool)(const llmux_json *doc, int i);
    /* Unescapes string `i` into buf (appends raw UTF-8). */
    int (*json_unescape)(const llmux_json *doc, int i, llmux_buf *out);

    /* Building the upstream request (in prepare). Strings are copied. */
    int (*req_set_url)(llmux_outreq *r, const char *url);
    int (*req_add_header)(llmux_outreq *r, const char *name, const char *value);
    llmux_buf *(*req_body)(llmux_outreq *r); /* append the body here */
    /* Marks the call as served locally (no HTTP): the host then calls
     * plugin->on_tick(call) after `delay_ms`, on the call's worker loop. */
    int (*req_set_local)(llmux_outreq *r, uint32_t first_delay_ms);

    /* Canonical events, in stream order. `choice` is the choice index. */
    int (*emit_delta)(llmux_call *c, int choice, llmux_delta_kind kind,
                      const char *escaped, size_t n);
    /* A tool-call fragment. id/name (escaped) only on the first fragment
     * of a call (pass NULL later); args is an escaped arguments fragment. */
    int (*emit_tool_call)(llmux_call *c, int choice, int index,
                          const char *id, size_t id_len,
                          const char *name, size_t name_len,
                          const char *args, size_t args_len);
    /* An opaque reasoning_details item (a complete JSON object), e.g. an
     * Anthropic thinking signature, kept so conversations can be replayed. */
    int (*emit_reasoning_detail)(llmux_call *c, int choice, const char *json, size_t n);
    int (*emit_finish)(llmux_call *c, int choice, llmux_finish reason,
                       const char *native, size_t native_len);
    int (*emit_usage)(llmux_call *c, const llmux_usage *u);
    /* The upstream's response id / served model (escaped). */
    int (*set_upstream_id)(llmux_call *c, const char *id, size_t n);
    /* An upstream error. `status` is the HTTP status the client should see
     * (e.g. 429, 502); `retry_after_ms` 0 if unknown; `raw` is the upstream's
     * error body (any bytes) for metadata.raw. */
    int (*emit_error)(llmux_call *c, int status, const char *message,
                      const char *raw, size_t raw_len, uint32_t retry_after_ms);

    /* Local calls (see req_set_local): ask for another on_tick. */
    int (*call_schedule)(llmux_call *c, uint32_t delay_ms);

    /* SSE decoding helper. The parser is plugin-owned storage; feed it
     * upstream bytes, it calls `on_event` once per complete event. Events may
     * span reads and several may arrive in one read. A callback returning
     * non-zero stops feeding and is returned. Bounded by the host's stream
     * buffer limit (LLMUX_ELIMIT). */
    int (*sse_feed)(struct llmux_sse *p, const char *data, size_t n,
                    int (*on_event)(void *ud, const char *event, size_t event_len,
                                    const char *data, size_t data_len),
                    void *ud);
    void (*sse_free)(struct llmux_sse *p);

    /* Looks `key` up in kv options; NULL if absent. */
    const char *(*kv_get)(const llmux_kv *kv, size_t n, const char *key);
} llmux_host;

/* ------------------------------------------------------------------------ */
/* Plugin descriptor.                                                       */
/* ------------------------------------------------------------------------ */
typedef struct llmux_plugin {
    uint32_t magic;      /* LLMUX_PLUGIN_MAGIC */
    uint16_t abi_major;  /* LLMUX_ABI_MAJOR */
    uint16_t abi_minor;  /* LLMUX_ABI_MINOR the plugin was built against */
    size_t struct_size;  /* sizeof(llmux_plugin) */
    const char *name;    /* e.g. "openai" */
    const char *version; /* e.g. "1.0.0" */

    /* Once per generation. Validate config; may veto the load by returning
     * an error. *ctx is passed back to every call. */
    int (*init)(const llmux_host *host, const llmux_provider_config *cfg, void **ctx);
    /* Build the upstream request for one attempt (URL, headers, body), or
     * mark it local. Return LLMUX_EINVAL/LLMUX_EUNSUPPORTED with emit_error
     * to refuse the request with a clear message. */
    int (*prepare)(llmux_call *call, llmux_outreq *out);
    /* Upstream status line and headers (HTTP/1.1 or 2), once per attempt,
     * before on_data. headers is a "Name: value" array. */
    int (*on_headers)(llmux_call *call, int status, const llmux_kv *headers, size_t n);
    /* Upstream body bytes as they arrive. Emit canonical events. */
    int (*on_data)(llmux_call *call, const char *data, size_t n);
    /* The upstream finished (status = HTTP status, or <0 for a transport
     * failure). Flush anything pending (e.g. emit_finish/emit_usage). */
    int (*on_done)(llmux_call *call, int status);
    /* Free call->state. Always called once per prepared call. */
    void (*release)(llmux_call *call);
    /* Once per generation, after the last call drained. */
    void (*fini)(void *ctx);

    /* Optional (may be NULL): local calls, see host->req_set_local. The
     * host calls on_tick after the requested delay. To continue later, call
     * host->call_schedule(call, ms) before returning; returning without
     * scheduling ends the call, and the host then calls on_done(call, 200).
     * A negative return ends the call as failed (emit_error first). */
    int (*on_tick)(llmux_call *call);
} llmux_plugin;

/* The single exported symbol. */
typedef const llmux_plugin *(*llmux_plugin_entry_fn)(void);

#ifdef __cplusplus
}
#endif
#endif /* LLMUX_PLUGIN_H */
