/* Loading provider plugins: copy the .so to a content-addressed file (so an
 * in-place rebuild never corrupts a mapped image), dlopen RTLD_NOW|RTLD_LOCAL,
 * validate the descriptor (magic, ABI major, struct size), and keep a
 * refcounted image that is dlclose'd when the last generation using it ends. */
#ifndef LLMUX_PLUGIN_HOST_H
#define LLMUX_PLUGIN_HOST_H
#include <stdatomic.h>
#include <time.h>
#include "../sdk/llmux_plugin.h"

typedef struct llmux_plugin_image {
    atomic_int refs;
    char *name;        /* plugin name */
    char *source_path; /* <plugin_dir>/<name>.so */
    char *loaded_path; /* the content-addressed copy actually mapped */
    char hash[33];     /* content hash (hex) */
    void *handle;
    llmux_plugin d;    /* descriptor copy; fields beyond struct_size are NULL */
    unsigned generation;
    time_t loaded_at;
    atomic_int inflight; /* calls currently using this image */
} llmux_plugin_image;

const llmux_host *llmux_host_api(void);

/* Loads (or reuses an already loaded identical image of) plugin `name`. */
llmux_plugin_image *llmux_plugin_load(const char *plugin_dir, const char *cache_dir,
                                      const char *name, char *err, size_t errlen);
void llmux_plugin_image_ref(llmux_plugin_image *img);
void llmux_plugin_image_unref(llmux_plugin_image *img);
/* Writes a JSON array describing loaded images (for /admin/plugins). */
int llmux_plugin_list_json(llmux_buf *out);
/* Limits applied to plugins' json_parse / sse_feed (set at startup). */
void llmux_host_set_limits(size_t max_sse_event, int max_json_tokens, int max_json_depth);
#endif
