/* Admin routes (admin key required): POST /admin/reload, GET /admin/plugins,
 * GET /admin/status. A reload reads files and runs dlopen, so it runs on the
 * libuv thread pool, never on the worker loop. */
#include "buf.h"
#include "http_server.h"
#include "log.h"
#include "routes.h"
#include "runtime.h"
#include "worker.h"
#include <llhttp.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uv_work_t work;
    llmux_handler handler;
    llmux_conn *conn; /* NULL once the client went away */
    int rc;
    char err[512];
} reload_job;

static void job_abort(llmux_handler *h)
{
    reload_job *j = (reload_job *)((char *)h - offsetof(reload_job, handler));
    llmux_conn_detach(j->conn);
    j->conn = NULL;
}

static void do_reload(uv_work_t *w)
{
    reload_job *j = w->data;
    j->rc = llmux_runtime_reload(j->err, sizeof j->err);
}

static void after_reload(uv_work_t *w, int status)
{
    reload_job *j = w->data;
    (void)status;
    if (j->rc == 0) llmux_workers_notify();
    if (j->conn) {
        llmux_conn_detach(j->conn);
        if (j->rc == 0) {
            llmux_buf b = {0};
            llmux_buf_printf(&b, "{\"reloaded\":true,\"generation\":%u", llmux_runtime_current_generation());
            if (j->err[0]) { /* e.g. a listen change that applies only at restart */
                llmux_buf_append_str(&b, ",\"message\":");
                llmux_buf_append_jstr(&b, j->err);
            }
            llmux_buf_append_char(&b, '}');
            llmux_conn_respond(j->conn, 200, "application/json", NULL, b.data, b.len);
            llmux_buf_free(&b);
        } else {
            llmux_conn_respond_error(j->conn, 422, j->err, NULL, NULL);
        }
    }
    free(j);
}

static int authorized(const llmux_http_request *r, const char *key)
{
    const char *h = llmux_http_header(r, "authorization");
    if (!key || !h || strncmp(h, "Bearer ", 7) != 0) return 0;
    /* constant-time compare: the admin key must not leak through timing */
    const char *given = h + 7;
    size_t a = strlen(given), b = strlen(key), n = a > b ? a : b;
    unsigned char diff = (unsigned char)(a != b);
    for (size_t i = 0; i < n; i++) diff |= (unsigned char)((i < a ? given[i] : 0) ^ (i < b ? key[i] : 0));
    return diff == 0;
}

void llmux_handle_admin(llmux_conn *c, const llmux_http_request *r, const char *sub)
{
    llmux_worker *w = llmux_conn_worker(c);
    llmux_worker_refresh(w);
    const char *key = w->rt->cfg->admin_key;
    if (!key) { llmux_conn_respond_error(c, 403, "admin routes are disabled: set admin_key in the config", NULL, NULL); return; }
    if (!authorized(r, key)) { llmux_conn_respond_error(c, 401, "admin key required", NULL, NULL); return; }
    if (strcmp(sub, "reload") == 0 && r->method == HTTP_POST) {
        reload_job *j = calloc(1, sizeof *j);
        if (!j) { llmux_conn_respond_error(c, 500, "out of memory", NULL, NULL); return; }
        j->conn = c;
        j->work.data = j;
        j->handler.on_abort = job_abort;
        llmux_conn_attach(c, &j->handler);
        uv_queue_work(&w->loop, &j->work, do_reload, after_reload);
        return;
    }
    if (strcmp(sub, "plugins") == 0) {
        llmux_buf b = {0};
        llmux_buf_append_str(&b, "{\"data\":");
        llmux_plugin_list_json(&b);
        llmux_buf_append_char(&b, '}');
        llmux_conn_respond(c, 200, "application/json", NULL, b.data, b.len);
        llmux_buf_free(&b);
        return;
    }
    if (strcmp(sub, "status") == 0) {
        llmux_buf b = {0};
        llmux_buf_printf(&b, "{\"runtime_generation\":%u,\"config_generation\":%u,\"script_generation\":%u,"
                             "\"config\":",
                         w->rt->generation, w->rt->cfg->generation, w->rt->script_generation);
        llmux_buf_append_jstr(&b, w->rt->cfg->source_path ? w->rt->cfg->source_path : "(embedded default)");
        llmux_buf_append_str(&b, ",\"routing_script\":");
        llmux_buf_append_jstr(&b, w->rt->cfg->routing_script ? w->rt->cfg->routing_script : "(default)");
        llmux_buf_printf(&b, ",\"workers\":%d,\"router_fallbacks\":%lu}", llmux_workers_count(),
                         llmux_router_fallbacks(w->router));
        llmux_conn_respond(c, 200, "application/json", NULL, b.data, b.len);
        llmux_buf_free(&b);
        return;
    }
    llmux_conn_respond_error(c, 404, "no such admin route", NULL, NULL);
}
