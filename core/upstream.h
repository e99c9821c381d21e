/* Upstream HTTP calls: one libcurl multi handle per worker, driven by the
 * worker's uv loop (uv_poll per socket, one uv_timer for curl's timeouts).
 * Connections (and HTTP/2 sessions) are reused across requests because the
 * multi handle's connection cache lives as long as the worker. */
#ifndef LLMUX_UPSTREAM_H
#define LLMUX_UPSTREAM_H
#include <uv.h>
#include <curl/curl.h>
#include "../sdk/llmux_plugin.h"

typedef struct llmux_upstream llmux_upstream;
typedef struct llmux_xfer llmux_xfer;

#define LLMUX_XFER_PAUSE ((size_t)-1)

typedef struct {
    /* Status and headers, once, before the first body byte (or before done). */
    void (*on_headers)(void *ud, int status, const llmux_kv *headers, size_t n);
    /* Body bytes. Return n to continue, LLMUX_XFER_PAUSE to pause (the same
     * bytes are delivered again after llmux_xfer_resume), or 0 to abort. */
    size_t (*on_body)(void *ud, const char *data, size_t n);
    /* Finished: curl result (CURLE_OK on success) and HTTP status. The xfer is
     * freed right after this returns. */
    void (*on_done)(void *ud, CURLcode result, int status, const char *errmsg);
} llmux_xfer_cb;

typedef struct {
    const char *url;
    struct curl_slist *headers; /* ownership passes to the xfer */
    const char *body; size_t body_len; /* must outlive the xfer */
    long connect_timeout_ms;
    long total_timeout_ms; /* 0 = none */
} llmux_xfer_req;

llmux_upstream *llmux_upstream_new(uv_loop_t *loop);
/* Cancels every transfer and closes handles; frees when libuv is done. */
void llmux_upstream_close(llmux_upstream *u);

llmux_xfer *llmux_xfer_start(llmux_upstream *u, const llmux_xfer_req *req,
                             const llmux_xfer_cb *cb, void *ud, char *err, size_t errlen);
/* Stops a transfer now; no callback runs afterwards. Never call from inside
 * one of this transfer's callbacks (return 0 from on_body instead). */
void llmux_xfer_cancel(llmux_xfer *x);
void llmux_xfer_resume(llmux_xfer *x);
#endif
