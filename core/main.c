/* llmux: command line, start-up, signals (SIGHUP reloads, SIGTERM/SIGINT
 * drain and stop). The main thread serves no requests; workers do. */
#include "file_watch.h"
#include "accounts.h"
#include "log.h"
#include "plugin_host.h"
#include "router.h"
#include "runtime.h"
#include "worker.h"
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: llmux [--config FILE] [--listen HOST:PORT] [--workers N]\n"
            "       llmux --check-config FILE\n"
            "       llmux keys create --label L [--limit USD] [--config FILE]   (prints the key once)\n"
            "       llmux --version | --help\n\n"
            "  --config FILE        Lua config (default: embedded mock config on 127.0.0.1:8080)\n"
            "  --listen HOST:PORT   overrides the config's listen address\n"
            "  --workers N          overrides the number of worker threads (0 = cores)\n"
            "  --check-config FILE  loads and validates FILE (plugins, routing script), then exits\n\n"
            "Signals: SIGHUP reloads config, plugins and routing script; SIGTERM/SIGINT drain and stop.\n");
}

static int parse_listen(const char *s, char *host, size_t hlen, int *port)
{
    const char *colon;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || end[1] != ':') return -1;
        snprintf(host, hlen, "%.*s", (int)(end - s - 1), s + 1);
        colon = end + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon) return -1;
        snprintf(host, hlen, "%.*s", (int)(colon - s), s);
    }
    char *endp;
    long p = strtol(colon + 1, &endp, 10);
    if (*endp || p < 1 || p > 65535) return -1;
    *port = (int)p;
    return 0;
}

static uv_signal_t g_sighup, g_sigterm, g_sigint;
static uint32_t g_shutdown_ms = 10000;

/* SIGHUP and the file watch: same reload as POST /admin/reload (which logs its own outcome). */
static void reload_now(void *why)
{
    char err[512];
    LOG_INFO("%s: reloading", (const char *)why);
    if (llmux_runtime_reload(err, sizeof err) == 0) llmux_workers_notify();
}

static void on_sighup(uv_signal_t *s, int sig)
{
    (void)s; (void)sig;
    reload_now("SIGHUP");
}

static void on_stop(uv_signal_t *s, int sig)
{
    LOG_INFO("signal %d: draining (deadline %u ms)", sig, g_shutdown_ms);
    uv_signal_stop(&g_sighup);
    uv_signal_stop(&g_sigterm);
    uv_signal_stop(&g_sigint);
    uv_stop(s->loop);
}

int llmux_keys_main(int argc, char **argv); /* keys_cli.c */

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "keys") == 0) return llmux_keys_main(argc - 2, argv + 2);
    const char *config = NULL, *listen = NULL, *check = NULL;
    int workers = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_next = i + 1 < argc;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) { usage(stdout); return 0; }
        if (strcmp(a, "--version") == 0) { printf("llmux %s (plugin ABI %d.%d)\n", LLMUX_VERSION, LLMUX_ABI_MAJOR, LLMUX_ABI_MINOR); return 0; }
        if (strcmp(a, "--config") == 0 && has_next) config = argv[++i];
        else if (strcmp(a, "--listen") == 0 && has_next) listen = argv[++i];
        else if (strcmp(a, "--workers") == 0 && has_next) workers = atoi(argv[++i]);
        else if (strcmp(a, "--check-config") == 0 && has_next) check = argv[++i];
        else { fprintf(stderr, "llmux: unknown or incomplete option '%s'\n", a); usage(stderr); return 2; }
    }
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    char err[1024];
    if (check) {
        llmux_runtime *rt = llmux_runtime_build(check, NULL, 0, err, sizeof err);
        if (!rt) { fprintf(stderr, "llmux: %s\n", err); curl_global_cleanup(); return 1; }
        printf("%s: OK (%zu providers, %zu models, %zu endpoints)\n", check, rt->cfg->n_providers, rt->cfg->n_models,
               rt->cfg->n_endpoints);
        llmux_runtime_unref(rt);
        curl_global_cleanup();
        return 0;
    }
    char host[256] = "";
    int port = 0;
    if (listen && parse_listen(listen, host, sizeof host, &port) < 0) {
        fprintf(stderr, "llmux: --listen wants HOST:PORT, got '%s'\n", listen);
        return 2;
    }
    llmux_runtime *rt = llmux_runtime_build(config, host[0] ? host : NULL, port, err, sizeof err);
    if (!rt) { fprintf(stderr, "llmux: %s\n", err); curl_global_cleanup(); return 1; }
    llmux_runtime_set_origin(config);
    const llmux_config *cfg = rt->cfg;
    llmux_log_level lvl;
    if (cfg->log_level && llmux_log_parse_level(cfg->log_level, &lvl) == 0) llmux_log_set_level(lvl);
    llmux_host_set_limits(cfg->limits.max_sse_event_bytes, cfg->limits.max_json_tokens, cfg->limits.max_json_depth);
    g_shutdown_ms = cfg->timeouts.shutdown_ms;
    int n = workers >= 0 ? workers : cfg->workers;
    if (n <= 0) n = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n <= 0) n = 1;
    if (n > 256) n = 256;
    char lhost[256];
    snprintf(lhost, sizeof lhost, "%s", cfg->listen_host);
    int lport = cfg->listen_port;
    if (llmux_accounts_start(cfg, err, sizeof err) < 0) { /* storage thread, keys, redis */
        fprintf(stderr, "llmux: %s\n", err);
        return 1;
    }
    llmux_runtime_publish(rt);
    if (llmux_workers_start(n, lhost, lport, err, sizeof err) < 0) {
        fprintf(stderr, "llmux: %s\n", err);
        return 1;
    }
    LOG_INFO("llmux %s listening on http://%s:%d with %d workers (%s)", LLMUX_VERSION, lhost, lport, n,
             config ? config : "embedded default config");

    uv_loop_t *loop = uv_default_loop();
    uv_signal_init(loop, &g_sighup);
    uv_signal_init(loop, &g_sigterm);
    uv_signal_init(loop, &g_sigint);
    uv_signal_start(&g_sighup, on_sighup, SIGHUP);
    uv_signal_start(&g_sigterm, on_stop, SIGTERM);
    uv_signal_start(&g_sigint, on_stop, SIGINT);
    llmux_file_watch_start(loop, 200, reload_now, "file watch");
    uv_run(loop, UV_RUN_DEFAULT);
    llmux_file_watch_stop();

    llmux_workers_stop(g_shutdown_ms);
    llmux_accounts_stop(); /* commits what is queued */
    uv_close((uv_handle_t *)&g_sighup, NULL);
    uv_close((uv_handle_t *)&g_sigterm, NULL);
    uv_close((uv_handle_t *)&g_sigint, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    llmux_runtime_shutdown();
    curl_global_cleanup();
    LOG_INFO("stopped");
    return 0;
}
