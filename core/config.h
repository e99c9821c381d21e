/* The gateway configuration: loaded from a Lua file (or the embedded default)
 * into immutable C structs. A loaded config is a refcounted generation: a
 * reload builds a new one and swaps it in; requests hold the one they began on. */
#ifndef LLMUX_CONFIG_H
#define LLMUX_CONFIG_H
#include "../sdk/llmux_plugin.h"
#include <stdatomic.h>

typedef struct {
    double prompt;      /* USD per prompt token */
    double completion;  /* USD per completion token */
    double request;     /* USD per request */
    double image;       /* USD per input image */
    double cache_read;  /* USD per cached prompt token read (input_cache_read) */
    double cache_write; /* USD per prompt token written to cache */
    double reasoning;   /* USD per reasoning token; <0: same as completion */
} llmux_pricing;

typedef struct llmux_provider_cfg {
    char *id;        /* key in the providers table, e.g. "openai" */
    char *plugin;    /* plugin name -> <plugin_dir>/<plugin>.so */
    char *name;      /* display name, e.g. "OpenAI" (defaults to id) */
    char *base_url;  /* trailing '/' removed */
    char *api_key;   /* resolved from env("VAR") or literal; may be NULL */
    llmux_kv *options; size_t n_options;  /* string key/values */
    int data_collection_deny; /* provider policy: does not collect data */
    int zdr;                  /* zero data retention */
    llmux_provider_config view; /* what plugins see (points into the above) */
} llmux_provider_cfg;

typedef struct llmux_endpoint_cfg {
    struct llmux_model_cfg *model; /* back pointer */
    llmux_provider_cfg *provider;
    char *upstream_model;
    llmux_pricing pricing;
    int64_t context_length;
    int64_t max_completion_tokens;
    char **supported_parameters; size_t n_supported_parameters;
    char *quantization;         /* may be NULL */
    char **tags; size_t n_tags; /* e.g. "extended", "free" */
    llmux_kv *options; size_t n_options;
    int index;                  /* global endpoint index (stats slot) */
    llmux_endpoint view;        /* what plugins see */
} llmux_endpoint_cfg;

typedef struct llmux_model_cfg {
    char *id;           /* "author/slug" */
    char *name;
    char *description;
    int64_t created;
    int64_t context_length;
    char **input_modalities; size_t n_input_modalities;   /* default {"text"} */
    char **output_modalities; size_t n_output_modalities; /* default {"text"} */
    char *tokenizer;
    llmux_endpoint_cfg *endpoints; size_t n_endpoints;
} llmux_model_cfg;

typedef struct {
    size_t max_header_bytes;   /* 64 KiB -> 431 */
    size_t max_body_bytes;     /* 10 MiB -> 413 */
    int max_json_tokens;       /* 262144 */
    int max_json_depth;        /* 64 */
    uint32_t idle_timeout_ms;  /* keep-alive idle, 60000 */
    uint32_t request_timeout_ms; /* reading one request, 30000 */
    size_t lua_memory_bytes;   /* 8 MiB */
    uint32_t lua_instructions; /* 1,000,000 per route() */
    size_t stream_buffer_bytes;/* client write backlog before pausing upstream, 1 MiB */
    size_t max_sse_event_bytes;/* 4 MiB */
    size_t max_upstream_body_bytes; /* 64 MiB for non-stream bodies */
    int max_connections;       /* per worker, 20000 */
} llmux_limits;

typedef struct {
    uint32_t connect_ms;        /* 5000 */
    uint32_t first_byte_ms;     /* 60000 */
    uint32_t between_chunks_ms; /* 60000 */
    uint32_t total_ms;          /* 0 = none */
    uint32_t shutdown_ms;       /* 10000: drain deadline on SIGTERM */
    uint32_t keepalive_comment_ms; /* ": OPENROUTER PROCESSING" interval, 2000 */
} llmux_timeouts;

/* Endpoint health policy (core/stats.c) used by routing. */
typedef struct {
    int failure_threshold;   /* consecutive failures that open the circuit, 5 */
    double open_seconds;     /* open circuit cool-down before one half-open probe, 30 */
    double failure_window_s; /* a failure this recent deprioritises the endpoint, 30 */
    double ewma_alpha;       /* weight of the newest sample in the EWMAs, 0.2 */
} llmux_routing_cfg;

typedef struct llmux_config {
    atomic_int refs;
    unsigned generation;
    char *source_path;       /* NULL for the embedded default */
    char *listen_host;       /* "127.0.0.1" */
    int listen_port;         /* 8080 */
    int workers;             /* 0 = number of cores */
    char *plugin_dir;        /* "build/plugins" */
    char *plugin_cache_dir;  /* content-addressed copies, default "<tmp>/llmux-plugins" */
    char *routing_script;    /* path; NULL = built-in default.lua path */
    char *log_level;         /* "debug"|"info"|"warn"|"error" */
    char *access_log;        /* "text"|"json"|"off" */
    char *admin_key;         /* may be NULL: admin routes disabled */
    /* accounts, usage and cost (docs/accounts.md) */
    int auth_keys;           /* auth = "keys": a Bearer key is required */
    int storage_mode;        /* 0 off, 1 sqlite, 2 postgres */
    int storage_explicit;    /* storage was set in the file (else the default may fail softly) */
    int storage_durable;     /* storage.durable: final bytes wait for the record's commit (default: auth = "keys") */
    char *storage_path;      /* sqlite path or postgres conninfo */
    char *redis;             /* "host:port" for shared rate limits; may be NULL */
    char *management_key;    /* may be NULL: /keys management disabled */
    char *byok_key_env;      /* env var holding the BYOK encryption key */
    double byok_fee;         /* fraction of the upstream cost charged for BYOK calls */
    int watch;               /* reload when plugin_dir, the script or the config change */
    llmux_limits limits;
    llmux_timeouts timeouts;
    llmux_routing_cfg routing;
    llmux_provider_cfg *providers; size_t n_providers;
    llmux_model_cfg *models; size_t n_models;
    size_t n_endpoints;       /* total, endpoints indexed 0..n-1 */
    llmux_endpoint_cfg **endpoint_by_index;
} llmux_config;

/* Loads a config file (path) or the embedded default (path == NULL).
 * On error returns NULL and writes "file:line: field: problem" into err. */
llmux_config *llmux_config_load(const char *path, char *err, size_t errlen);
const llmux_model_cfg *llmux_config_find_model(const llmux_config *c, const char *id, size_t len);
const llmux_provider_cfg *llmux_config_find_provider(const llmux_config *c, const char *id);
void llmux_config_ref(llmux_config *c);
void llmux_config_unref(llmux_config *c); /* frees at zero */
/* The embedded default config (Lua source), what llmux_config_load(NULL) reads. */
const char *llmux_default_config_lua(void);
/* Loads a config from Lua source held in memory; `name` is used in error
 * messages (and as source_path when not NULL). */
llmux_config *llmux_config_load_string(const char *src, size_t len, const char *name,
                                       char *err, size_t errlen);
#endif
