/* A runtime generation: one config, the plugin images it uses and each
 * provider's plugin context, plus the routing script path. Requests hold a
 * reference to the generation they began on; a reload publishes a new one and
 * the old one is torn down (plugins fini'd and dlclose'd) when its last
 * request ends. */
#ifndef LLMUX_RUNTIME_H
#define LLMUX_RUNTIME_H
#include <stdatomic.h>
#include <time.h>
#include "config.h"
#include "plugin_host.h"

typedef struct {
    const llmux_provider_cfg *cfg;
    llmux_plugin_image *img;
    void *ctx;
} llmux_provider_rt;

typedef struct llmux_runtime {
    atomic_int refs;
    unsigned generation;
    llmux_config *cfg;
    llmux_provider_rt *providers; /* parallel to cfg->providers */
    unsigned script_generation;   /* bumps when the routing script is reloaded */
    struct llmux_stats_slot **slots; /* by endpoint index; slots outlive generations */
    time_t created_at;
    int listen_from_cli;          /* --listen overrode the config's address */
} llmux_runtime;

/* Builds (config from path, or embedded default when NULL) and validates a
 * runtime: loads every plugin, runs init, compiles the routing script. */
llmux_runtime *llmux_runtime_build(const char *config_path, const char *listen_override_host,
                                   int listen_override_port, char *err, size_t errlen);
void llmux_runtime_ref(llmux_runtime *rt);
void llmux_runtime_unref(llmux_runtime *rt);

/* The published generation. acquire returns a new reference. */
void llmux_runtime_publish(llmux_runtime *rt); /* takes ownership of one ref */
llmux_runtime *llmux_runtime_acquire(void);
unsigned llmux_runtime_current_generation(void);
/* Reloads config, plugins and script from the original config path; on
 * failure the old generation keeps serving and err says why. On success err
 * holds "" or a note about settings that apply only at restart (listen,
 * workers). Serialised. */
int llmux_runtime_reload(char *err, size_t errlen);
void llmux_runtime_set_origin(const char *config_path);
/* Drops the published generation at exit. */
void llmux_runtime_shutdown(void);
const llmux_provider_rt *llmux_runtime_provider(const llmux_runtime *rt, const llmux_provider_cfg *p);
#endif
