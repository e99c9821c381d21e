/* Logging: one line per call, written with a single write(2) so lines from
 * several workers never interleave. Secrets must never be passed in. */
#ifndef LLMUX_LOG_H
#define LLMUX_LOG_H
#include "../sdk/llmux_plugin.h"

void llmux_log_set_level(llmux_log_level level);
int llmux_log_parse_level(const char *name, llmux_log_level *out);
int llmux_log_enabled(llmux_log_level level);
void llmux_log(llmux_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void llmux_log_plugin(llmux_log_level level, const char *plugin, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Writes an already formatted line (adds the newline). */
void llmux_log_raw(const char *line, size_t len);

#define LOG_DEBUG(...) do { if (llmux_log_enabled(LLMUX_LOG_DEBUG)) llmux_log(LLMUX_LOG_DEBUG, __VA_ARGS__); } while (0)
#define LOG_INFO(...) llmux_log(LLMUX_LOG_INFO, __VA_ARGS__)
#define LOG_WARN(...) llmux_log(LLMUX_LOG_WARN, __VA_ARGS__)
#define LOG_ERROR(...) llmux_log(LLMUX_LOG_ERROR, __VA_ARGS__)
#endif
