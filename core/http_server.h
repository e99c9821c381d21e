/* The inbound HTTP/1.1 server of one worker: accepts on a SO_REUSEPORT
 * listener, parses with llhttp, enforces the configured limits with JSON
 * errors, keeps connections alive, and writes responses (whole or streamed
 * with chunked encoding) without blocking. One request is handled at a time
 * per connection; pipelined bytes wait until the response is done. */
#ifndef LLMUX_HTTP_SERVER_H
#define LLMUX_HTTP_SERVER_H
#include <uv.h>
#include "../sdk/llmux_plugin.h"
#include "config.h"

struct llmux_worker;
typedef struct llmux_conn llmux_conn;

typedef struct {
    int method;             /* llhttp_method_t */
    const char *path;       /* NUL-terminated, without the query */
    size_t path_len;
    const char *query;      /* after '?', may be "" */
    const llmux_kv *headers;/* names lower-cased */
    size_t n_headers;
    char *body;             /* NUL-terminated; the handler may take it (llmux_conn_take_body) */
    size_t body_len;
    int keep_alive;
    uint64_t start_ns;      /* when the request's first byte was parsed */
} llmux_http_request;

/* A handler attached to a connection while it serves a request. */
typedef struct llmux_handler {
    /* The client went away (or the server is closing the connection): stop
     * everything and detach (llmux_conn_detach) before returning. */
    void (*on_abort)(struct llmux_handler *h);
    /* The write backlog fell under the low-water mark (resume the upstream). */
    void (*on_drain)(struct llmux_handler *h);
} llmux_handler;

int llmux_http_listen(struct llmux_worker *w, uv_tcp_t *listener, const char *host, int port, char *err, size_t errlen);
/* Stops accepting; idle connections are closed, busy ones finish. */
void llmux_http_stop_accepting(struct llmux_worker *w);
void llmux_http_close_all(struct llmux_worker *w);

const char *llmux_http_header(const llmux_http_request *r, const char *lower_name);
char *llmux_conn_take_body(llmux_conn *c, size_t *len); /* caller frees */
struct llmux_worker *llmux_conn_worker(llmux_conn *c);
const llmux_http_request *llmux_conn_request(llmux_conn *c);

void llmux_conn_attach(llmux_conn *c, llmux_handler *h);
void llmux_conn_detach(llmux_conn *c);

/* Whole response. extra_headers: "Name: value\r\n" lines or NULL. */
void llmux_conn_respond(llmux_conn *c, int status, const char *content_type,
                        const char *extra_headers, const char *body, size_t len);
/* {"error":{"code":status,"message":...,"metadata":<metadata_json or {}>}} */
void llmux_conn_respond_error(llmux_conn *c, int status, const char *message,
                              const char *metadata_json, const char *extra_headers);

/* Streamed response with chunked transfer encoding. */
int llmux_conn_stream_begin(llmux_conn *c, int status, const char *content_type, const char *extra_headers);
int llmux_conn_stream_write(llmux_conn *c, const char *data, size_t len);
void llmux_conn_stream_end(llmux_conn *c);
size_t llmux_conn_backlog(const llmux_conn *c);
int llmux_conn_is_closing(const llmux_conn *c);
/* Closes the connection from the loop (never inside the caller's frame);
 * an attached handler gets on_abort. */
void llmux_conn_close(llmux_conn *c);

const char *llmux_http_status_text(int status);
#endif
