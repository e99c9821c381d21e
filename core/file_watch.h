/* Optional file watch (`watch = true` in the config): uv_fs_event on the
 * plugin directory, the routing script and the config file, on the main loop.
 * Bursts of events (a compiler writing a .so, an editor's save-and-rename) are
 * debounced into one call of on_change, which runs the same reload as SIGHUP.
 *
 * Directories are watched rather than files, so a file replaced by rename
 * (the safe way to deploy) is still seen. The watched set follows the
 * published runtime: a reload that turns `watch` on or off, or moves the
 * plugin_dir or the script, takes effect within a second, whatever triggered it. */
#ifndef LLMUX_FILE_WATCH_H
#define LLMUX_FILE_WATCH_H
#include <uv.h>

typedef void (*llmux_file_watch_cb)(void *ud);

/* Starts following the published runtime's config on `loop`. */
int llmux_file_watch_start(uv_loop_t *loop, unsigned debounce_ms, llmux_file_watch_cb on_change, void *ud);
/* Closes every handle; run the loop afterwards so close callbacks free them. */
void llmux_file_watch_stop(void);
/* Number of directories currently watched (0 when watch is off). */
int llmux_file_watch_count(void);
#endif
