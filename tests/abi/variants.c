/* Deliberately unusual builds of the shout example plugin, for the ABI and
 * reload tests. Exactly one ABI_* macro selects the variant:
 *
 *   ABI_OLD_MINOR   built against an older minor: a smaller descriptor that
 *                   ends before on_tick (must load; on_tick reads as absent)
 *   ABI_BAD_MAJOR   abi_major = LLMUX_ABI_MAJOR + 1      (must be refused)
 *   ABI_BAD_MAGIC   wrong magic                           (must be refused)
 *   ABI_NULL_DESC   the entry returns NULL                (must be refused)
 *   ABI_NO_ENTRY    no llmux_plugin_v1 symbol at all      (must be refused)
 *   ABI_INIT_FAIL   init returns LLMUX_ECONFIG            (must be refused)
 */
#include <stddef.h>
#define SHOUT_NO_ENTRY
#include "../../examples/plugins/shout/shout.c"

#if defined(ABI_OLD_MINOR)
/* The descriptor as an older header declared it: no on_tick member. */
struct old_plugin_desc {
    uint32_t magic;
    uint16_t abi_major, abi_minor;
    size_t struct_size;
    const char *name, *version;
    int (*init)(const llmux_host *, const llmux_provider_config *, void **);
    int (*prepare)(llmux_call *, llmux_outreq *);
    int (*on_headers)(llmux_call *, int, const llmux_kv *, size_t);
    int (*on_data)(llmux_call *, const char *, size_t);
    int (*on_done)(llmux_call *, int);
    void (*release)(llmux_call *);
    void (*fini)(void *);
};
static const struct old_plugin_desc old_desc = {
    LLMUX_PLUGIN_MAGIC, LLMUX_ABI_MAJOR, 0, sizeof(struct old_plugin_desc), "shout", "0.9.0-old-minor",
    shout_init, shout_prepare, NULL, shout_on_data, shout_on_done, shout_release, shout_fini,
};
typedef char old_is_prefix[offsetof(llmux_plugin, on_tick) == sizeof(struct old_plugin_desc) ? 1 : -1];
LLMUX_EXPORT const llmux_plugin *llmux_plugin_v1(void) { return (const llmux_plugin *)(const void *)&old_desc; }

#elif defined(ABI_BAD_MAJOR) || defined(ABI_BAD_MAGIC)
static const llmux_plugin bad_desc = {
#ifdef ABI_BAD_MAGIC
    .magic = 0x12345678u, .abi_major = LLMUX_ABI_MAJOR,
#else
    .magic = LLMUX_PLUGIN_MAGIC, .abi_major = LLMUX_ABI_MAJOR + 1,
#endif
    .abi_minor = 0, .struct_size = sizeof(llmux_plugin), .name = "shout", .version = "9.9.9-bad",
    .init = shout_init, .prepare = shout_prepare, .on_data = shout_on_data, .on_done = shout_on_done,
    .release = shout_release, .fini = shout_fini, .on_tick = shout_tick,
};
LLMUX_EXPORT const llmux_plugin *llmux_plugin_v1(void) { return &bad_desc; }

#elif defined(ABI_NULL_DESC)
LLMUX_EXPORT const llmux_plugin *llmux_plugin_v1(void) { return NULL; }
const llmux_plugin *shout_unused(void);
const llmux_plugin *shout_unused(void) { return &shout_plugin; }

#elif defined(ABI_NO_ENTRY)
/* Exports a near-miss name only. */
LLMUX_EXPORT const llmux_plugin *llmux_plugin_v0(void) { return &shout_plugin; }

#elif defined(ABI_INIT_FAIL)
static int failing_init(const llmux_host *host, const llmux_provider_config *cfg, void **ctx)
{
    (void)cfg; (void)ctx;
    host->log(LLMUX_LOG_ERROR, "shout", "init: refusing to load (test build)");
    return LLMUX_ECONFIG;
}
static const llmux_plugin failing_desc = {
    .magic = LLMUX_PLUGIN_MAGIC, .abi_major = LLMUX_ABI_MAJOR, .abi_minor = LLMUX_ABI_MINOR,
    .struct_size = sizeof(llmux_plugin), .name = "shout", .version = "1.0.0-init-fails",
    .init = failing_init, .prepare = shout_prepare, .on_data = shout_on_data, .on_done = shout_on_done,
    .release = shout_release, .fini = shout_fini, .on_tick = shout_tick,
};
LLMUX_EXPORT const llmux_plugin *llmux_plugin_v1(void) { return &failing_desc; }

#else
#error "define one ABI_* variant"
#endif
