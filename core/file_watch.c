#include "file_watch.h"
#include "log.h"
#include "runtime.h"
#include <stdlib.h>
#include <string.h>

#define MAX_DIRS 3
#define MAX_FILTERS 3

/* One watched directory and the names in it that matter. A NULL filter
 * means "any plugin image" (*.so that is not a cache copy). */
typedef struct watch_dir {
    uv_fs_event_t ev;
    char *dir;
    char *names[MAX_FILTERS];
    int n_names;
    int any_so;
} watch_dir;

static struct {
    uv_loop_t *loop;
    uv_timer_t debounce;   /* restarted by every event; fires on_change once quiet */
    uv_timer_t follow;     /* re-reads the published config's watch settings */
    unsigned debounce_ms;
    llmux_file_watch_cb cb;
    void *ud;
    watch_dir *dirs[MAX_DIRS];
    int n_dirs;
    unsigned seen_generation;
    char *signature;       /* what the current set was built from */
    int started;
} g;

static void dir_closed(uv_handle_t *h)
{
    watch_dir *d = h->data;
    free(d->dir);
    for (int i = 0; i < d->n_names; i++) free(d->names[i]);
    free(d);
}

static void close_all(void)
{
    for (int i = 0; i < g.n_dirs; i++) {
        uv_fs_event_stop(&g.dirs[i]->ev);
        uv_close((uv_handle_t *)&g.dirs[i]->ev, dir_closed);
    }
    g.n_dirs = 0;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* "<name>-<32 hex>.so": the plugin host's content-addressed copies, in case
 * plugin_cache_dir is the plugin dir itself (their churn must not trigger reloads). */
static int is_cache_copy(const char *f)
{
    size_t n = strlen(f);
    if (n < 3 + 33 + 1) return 0;
    const char *h = f + n - 3 - 32;
    if (h[-1] != '-') return 0;
    for (int i = 0; i < 32; i++)
        if (!strchr("0123456789abcdef", h[i])) return 0;
    return 1;
}

static int matters(const watch_dir *d, const char *file)
{
    if (!file) return 1; /* the platform did not say which: assume it matters */
    if (d->any_so && ends_with(file, ".so") && !is_cache_copy(file)) return 1;
    for (int i = 0; i < d->n_names; i++)
        if (strcmp(d->names[i], file) == 0) return 1;
    return 0;
}

static void on_debounced(uv_timer_t *t)
{
    (void)t;
    LOG_INFO("file watch: change detected, reloading");
    g.cb(g.ud);
}

static void on_fs_event(uv_fs_event_t *h, const char *file, int events, int status)
{
    watch_dir *d = h->data;
    (void)events;
    if (status < 0) {
        LOG_WARN("file watch: %s: %s", d->dir, uv_strerror(status));
        return;
    }
    if (!matters(d, file)) return;
    LOG_DEBUG("file watch: %s/%s changed", d->dir, file ? file : "?");
    uv_timer_start(&g.debounce, on_debounced, g.debounce_ms, 0);
}

static void split_path(const char *path, char **dir, char **base)
{
    const char *slash = strrchr(path, '/');
    if (!slash) { *dir = strdup("."); *base = strdup(path); return; }
    *dir = slash == path ? strdup("/") : strndup(path, (size_t)(slash - path));
    *base = strdup(slash + 1);
}

static watch_dir *find_or_add(const char *dir)
{
    for (int i = 0; i < g.n_dirs; i++)
        if (strcmp(g.dirs[i]->dir, dir) == 0) return g.dirs[i];
    if (g.n_dirs == MAX_DIRS) return NULL;
    watch_dir *d = calloc(1, sizeof *d);
    if (!d || !(d->dir = strdup(dir))) { free(d); return NULL; }
    uv_fs_event_init(g.loop, &d->ev);
    d->ev.data = d;
    int rc = uv_fs_event_start(&d->ev, on_fs_event, d->dir, 0);
    if (rc < 0) {
        LOG_WARN("file watch: cannot watch %s: %s", d->dir, uv_strerror(rc));
        uv_close((uv_handle_t *)&d->ev, dir_closed);
        return NULL;
    }
    g.dirs[g.n_dirs++] = d;
    return d;
}

static void add_file(const char *path)
{
    if (!path) return;
    char *dir = NULL, *base = NULL;
    split_path(path, &dir, &base);
    watch_dir *d = dir && base ? find_or_add(dir) : NULL;
    if (d && d->n_names < MAX_FILTERS) d->names[d->n_names++] = base, base = NULL;
    free(dir);
    free(base);
}

/* Rebuilds the watched set when the published config asks for a different one. */
static void follow(void)
{
    unsigned gen = llmux_runtime_current_generation();
    if (gen == g.seen_generation) return;
    g.seen_generation = gen;
    llmux_runtime *rt = llmux_runtime_acquire();
    if (!rt) return;
    const llmux_config *c = rt->cfg;
    char sig[4096] = "";
    if (c->watch)
        snprintf(sig, sizeof sig, "%s\n%s\n%s", c->plugin_dir, c->routing_script ? c->routing_script : "",
                 c->source_path ? c->source_path : "");
    if (!g.signature || strcmp(sig, g.signature) != 0) {
        close_all();
        if (c->watch) {
            watch_dir *pd = find_or_add(c->plugin_dir);
            if (pd) pd->any_so = 1;
            add_file(c->routing_script);
            add_file(c->source_path); /* NULL for the embedded default config */
            LOG_INFO("file watch: on (%d directories: plugin dir %s, routing script, config), debounce %u ms",
                     g.n_dirs, c->plugin_dir, g.debounce_ms);
        } else if (g.signature && g.signature[0]) {
            LOG_INFO("file watch: off");
        }
        free(g.signature);
        g.signature = strdup(sig);
    }
    llmux_runtime_unref(rt);
}

static void on_follow(uv_timer_t *t)
{
    (void)t;
    follow();
}

int llmux_file_watch_start(uv_loop_t *loop, unsigned debounce_ms, llmux_file_watch_cb on_change, void *ud)
{
    g.loop = loop;
    g.debounce_ms = debounce_ms;
    g.cb = on_change;
    g.ud = ud;
    uv_timer_init(loop, &g.debounce);
    uv_timer_init(loop, &g.follow);
    g.started = 1;
    follow();
    uv_timer_start(&g.follow, on_follow, 1000, 1000);
    return 0;
}

void llmux_file_watch_stop(void)
{
    if (!g.started) return;
    g.started = 0;
    close_all();
    uv_timer_stop(&g.debounce);
    uv_timer_stop(&g.follow);
    uv_close((uv_handle_t *)&g.debounce, NULL);
    uv_close((uv_handle_t *)&g.follow, NULL);
    free(g.signature);
    g.signature = NULL;
}

int llmux_file_watch_count(void) { return g.n_dirs; }
