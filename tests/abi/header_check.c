/* Compiled as C99 -pedantic and as C++ by tests/abi/CMakeLists.txt: the
 * public headers must stand alone in both languages. */
#include "llmux_plugin.h"
#include "llmux_plugin_util.h"

static int host_has_kv_get(const llmux_host *h) { return LLMUX_HOST_HAS(h, kv_get); }
static int plugin_has_tick(const llmux_plugin *p) { return LLMUX_HAS_FIELD(p, llmux_plugin, on_tick); }

int llmux_header_check(const llmux_host *h, const llmux_plugin *p);
int llmux_header_check(const llmux_host *h, const llmux_plugin *p)
{
    llmux_usage u = {0, 0, 0, 0, 0};
    llmux_buf b = {0, 0, 0};
    (void)u; (void)b;
    return host_has_kv_get(h) + plugin_has_tick(p) + (LLMUX_ABI_MAJOR == 1 ? 0 : 1);
}
