#include "log.h"
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static atomic_int g_level = LLMUX_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void llmux_log_set_level(llmux_log_level level) { atomic_store(&g_level, (int)level); }

int llmux_log_parse_level(const char *name, llmux_log_level *out)
{
    for (int i = 0; i < 4; i++)
        if (strcasecmp(name, level_names[i]) == 0) { *out = (llmux_log_level)i; return 0; }
    return -1;
}

int llmux_log_enabled(llmux_log_level level) { return (int)level >= atomic_load_explicit(&g_level, memory_order_relaxed); }

void llmux_log_raw(const char *line, size_t len)
{
    char buf[4096];
    if (len > sizeof buf - 1) len = sizeof buf - 1;
    memcpy(buf, line, len);
    buf[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, buf, len);
    (void)w; /* nothing sensible to do when stderr is gone */
}

static void vlog(llmux_log_level level, const char *who, const char *fmt, va_list ap)
{
    if (!llmux_log_enabled(level)) return;
    char line[4096];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s%s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, level_names[level], who ? who : "", who ? ": " : "");
    if (n < 0) return;
    int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    if (m < 0) return;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof line - 1) len = sizeof line - 1;
    llmux_log_raw(line, len);
}

void llmux_log(llmux_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(level, NULL, fmt, ap);
    va_end(ap);
}

void llmux_log_plugin(llmux_log_level level, const char *plugin, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(level, plugin ? plugin : "plugin", fmt, ap);
    va_end(ap);
}
