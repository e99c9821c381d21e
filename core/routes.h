/* Request dispatch: maps method + path to a handler. Every API route is
 * served under both /api/v1/ and /v1/. */
#ifndef LLMUX_ROUTES_H
#define LLMUX_ROUTES_H
#include "http_server.h"
void llmux_dispatch_request(llmux_conn *c, const llmux_http_request *r);
/* Handlers in models_api.c / admin.c */
void llmux_handle_models(llmux_conn *c, const llmux_http_request *r);
void llmux_handle_model_endpoints(llmux_conn *c, const llmux_http_request *r, const char *model, size_t len);
void llmux_handle_providers(llmux_conn *c, const llmux_http_request *r);
void llmux_handle_admin(llmux_conn *c, const llmux_http_request *r, const char *sub);
#endif
