#include "routes.h"
#include "accounts.h"
#include "exchange.h"
#include <llhttp.h>
#include <string.h>

static int strip_prefix(const char **path, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncmp(*path, prefix, n) != 0) return 0;
    *path += n;
    return 1;
}

void llmux_dispatch_request(llmux_conn *c, const llmux_http_request *r)
{
    const char *p = r->path;
    int get = r->method == HTTP_GET || r->method == HTTP_HEAD, post = r->method == HTTP_POST;
    if (strcmp(p, "/health") == 0 || strcmp(p, "/api/v1/health") == 0 || strcmp(p, "/v1/health") == 0) {
        llmux_conn_respond(c, 200, "application/json", NULL, "{\"status\":\"ok\"}", 15);
        return;
    }
    if (strip_prefix(&p, "/admin/")) { llmux_handle_admin(c, r, p); return; }
    if (!strip_prefix(&p, "/api/v1/") && !strip_prefix(&p, "/v1/")) {
        llmux_conn_respond_error(c, 404, "no such route", NULL, NULL);
        return;
    }
    /* The POST-only generation routes and the dialect each one speaks. */
    static const struct { const char *path; int api; } gen_routes[] = {
        {"chat/completions", 0}, {"completions", 1}, {"messages", 2}};
    for (size_t i = 0; i < sizeof gen_routes / sizeof gen_routes[0]; i++) {
        if (strcmp(p, gen_routes[i].path) != 0) continue;
        if (post) llmux_handle_chat(c, r, gen_routes[i].api);
        else llmux_conn_respond_error(c, 405, "use POST", NULL, "Allow: POST\r\n");
        return;
    }
    if (strcmp(p, "models") == 0 && get) { llmux_handle_models(c, r); return; }
    if (strcmp(p, "providers") == 0 && get) { llmux_handle_providers(c, r); return; }
    if (strncmp(p, "models/", 7) == 0 && get) {
        const char *m = p + 7;
        size_t len = strlen(m);
        if (len > 10 && strcmp(m + len - 10, "/endpoints") == 0) {
            llmux_handle_model_endpoints(c, r, m, len - 10);
            return;
        }
    }
    if (llmux_handle_accounts(c, r, p)) return; /* key, credits, keys, generation, activity */
    llmux_conn_respond_error(c, 404, "no such route", NULL, NULL);
}
