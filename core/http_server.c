#include "http_server.h"
#include "buf.h"
#include "log.h"
#include "worker.h"
#include "routes.h"
#include <llhttp.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

enum conn_state { CS_IDLE, CS_READING, CS_HANDLING };

struct llmux_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    llmux_worker *w;
    llmux_conn *prev, *next;
    llhttp_t parser;
    enum conn_state state;
    int closing, close_soon, close_after_response, streaming;
    size_t backlog;           /* bytes queued in uv_write, not yet written */
    size_t header_bytes;
    llmux_buf url, hdrs, body, pending; /* pending: bytes received while busy */
    size_t hdr_name_start[64], hdr_value_start[64];
    int n_hdr;
    int in_value;
    llmux_kv kv[64];
    int too_many_headers;
    llmux_http_request req;
    llmux_handler *h;
    int responded;
    int refs;                 /* close only frees when no write is in flight */
};

typedef struct {
    uv_write_t wr;
    llmux_conn *c;
    size_t len;
    char data[];
} write_req;

static llhttp_settings_t g_settings;
static int g_settings_ready;

static const llmux_limits *limits_of(llmux_conn *c) { return &c->w->rt->cfg->limits; }

const char *llmux_http_status_text(int s)
{
    switch (s) {
    case 200: return "OK"; case 201: return "Created"; case 204: return "No Content";
    case 400: return "Bad Request"; case 401: return "Unauthorized"; case 402: return "Payment Required";
    case 403: return "Forbidden"; case 404: return "Not Found"; case 405: return "Method Not Allowed";
    case 408: return "Request Timeout"; case 411: return "Length Required"; case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type"; case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests"; case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error"; case 501: return "Not Implemented"; case 502: return "Bad Gateway";
    case 503: return "Service Unavailable"; case 504: return "Gateway Timeout";
    default: return "Unknown";
    }
}

/* ---- closing ------------------------------------------------------------ */

static void conn_free(llmux_conn *c)
{
    llmux_buf_free(&c->url);
    llmux_buf_free(&c->hdrs);
    llmux_buf_free(&c->body);
    llmux_buf_free(&c->pending);
    free(c);
}

static void on_timer_closed(uv_handle_t *h)
{
    llmux_conn *c = h->data;
    if (--c->refs == 0) conn_free(c);
}

static void on_tcp_closed(uv_handle_t *h)
{
    llmux_conn *c = h->data;
    if (--c->refs == 0) conn_free(c);
}

static void conn_close(llmux_conn *c)
{
    if (c->closing) return;
    c->closing = 1;
    llmux_worker *w = c->w;
    if (c->prev) c->prev->next = c->next; else w->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    w->n_conns--;
    if (c->state == CS_HANDLING) w->n_busy--;
    llmux_worker_conns_dropped(w);
    if (c->h) {
        llmux_handler *h = c->h;
        h->on_abort(h); /* must detach */
        c->h = NULL;
    }
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
    uv_close((uv_handle_t *)&c->tcp, on_tcp_closed);
}

int llmux_conn_is_closing(const llmux_conn *c) { return c->closing || c->close_soon; }

/* ---- writing ------------------------------------------------------------ */

static void on_write_done(uv_write_t *wr, int status)
{
    write_req *r = (write_req *)wr;
    llmux_conn *c = r->c;
    c->backlog -= r->len;
    free(r);
    c->refs--;
    if (c->refs == 0) { conn_free(c); return; }
    if (status < 0) { conn_close(c); return; }
    if (c->closing) return;
    if (c->h && c->h->on_drain && c->backlog <= limits_of(c)->stream_buffer_bytes / 2) c->h->on_drain(c->h);
    if (c->backlog == 0 && c->close_after_response && c->responded) conn_close(c);
}

static void on_conn_timer(uv_timer_t *t);

/* A write failed while a handler may be on the stack: close from the loop
 * instead, so the handler's on_abort never runs inside its own call. */
static void conn_close_soon(llmux_conn *c)
{
    if (c->closing || c->close_soon) return;
    c->close_soon = 1;
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_timer_start(&c->timer, on_conn_timer, 0, 0);
}

/* Writes bufs in order: try a direct write first, queue the unwritten rest. */
static int conn_write(llmux_conn *c, uv_buf_t *bufs, unsigned n)
{
    if (c->closing || c->close_soon) return -1;
    size_t total = 0;
    for (unsigned i = 0; i < n; i++) total += bufs[i].len;
    size_t done = 0;
    if (c->backlog == 0) {
        int r = uv_try_write((uv_stream_t *)&c->tcp, bufs, n);
        if (r >= 0) done = (size_t)r;
        else if (r != UV_EAGAIN && r != UV_ENOSYS) { conn_close_soon(c); return -1; }
    }
    if (done == total) return 0;
    size_t rest = total - done;
    write_req *wr = malloc(sizeof *wr + rest);
    if (!wr) { conn_close_soon(c); return -1; }
    size_t off = 0, skip = done;
    for (unsigned i = 0; i < n; i++) {
        size_t l = bufs[i].len;
        if (skip >= l) { skip -= l; continue; }
        memcpy(wr->data + off, bufs[i].base + skip, l - skip);
        off += l - skip;
        skip = 0;
    }
    wr->c = c;
    wr->len = rest;
    uv_buf_t b = uv_buf_init(wr->data, (unsigned)rest);
    if (uv_write(&wr->wr, (uv_stream_t *)&c->tcp, &b, 1, on_write_done) < 0) { free(wr); conn_close_soon(c); return -1; }
    c->backlog += rest;
    c->refs++;
    return 0;
}

size_t llmux_conn_backlog(const llmux_conn *c) { return c->backlog; }

static void conn_reset_request(llmux_conn *c)
{
    llmux_buf_reset(&c->url);
    llmux_buf_reset(&c->hdrs);
    llmux_buf_reset(&c->body);
    c->n_hdr = 0;
    c->in_value = 0;
    c->header_bytes = 0;
    c->too_many_headers = 0;
    c->responded = 0;
    c->streaming = 0;
    memset(&c->req, 0, sizeof c->req);
}

static void conn_arm_idle(llmux_conn *c);
static void conn_process(llmux_conn *c, const char *data, size_t len);

/* The response is complete: serve the next pipelined request or go idle. */
static void conn_finish_response(llmux_conn *c)
{
    c->responded = 1;
    if (c->state == CS_HANDLING) c->w->n_busy--;
    c->state = CS_IDLE;
    c->h = NULL;
    if (c->close_after_response || c->w->stopping) {
        c->close_after_response = 1;
        if (c->backlog == 0) conn_close(c);
        return;
    }
    conn_reset_request(c);
    llhttp_resume(&c->parser);
    conn_arm_idle(c);
    if (c->pending.len) {
        llmux_buf p = c->pending;
        memset(&c->pending, 0, sizeof c->pending);
        conn_process(c, p.data, p.len);
        llmux_buf_free(&p);
    }
}

static int append_status_line(llmux_buf *b, llmux_conn *c, int status, const char *ctype, const char *extra)
{
    int rc = llmux_buf_append_str(b, "HTTP/1.1 ");
    rc |= llmux_buf_append_i64(b, status);
    rc |= llmux_buf_append_char(b, ' ');
    rc |= llmux_buf_append_str(b, llmux_http_status_text(status));
    rc |= llmux_buf_append(b, "\r\n", 2);
    if (ctype) {
        rc |= llmux_buf_append_str(b, "Content-Type: ");
        rc |= llmux_buf_append_str(b, ctype);
        rc |= llmux_buf_append(b, "\r\n", 2);
    }
    if (extra) rc |= llmux_buf_append_str(b, extra);
    if (c->close_after_response || c->w->stopping) rc |= llmux_buf_append_str(b, "Connection: close\r\n");
    return rc;
}

void llmux_conn_respond(llmux_conn *c, int status, const char *ctype, const char *extra,
                        const char *body, size_t len)
{
    if (c->closing || c->responded) return;
    if (!c->req.keep_alive) c->close_after_response = 1;
    llmux_buf h = {0};
    int rc = append_status_line(&h, c, status, ctype, extra);
    rc |= llmux_buf_append_str(&h, "Content-Length: ");
    rc |= llmux_buf_append_i64(&h, (int64_t)len);
    rc |= llmux_buf_append(&h, "\r\n\r\n", 4);
    if (rc) { llmux_buf_free(&h); conn_close_soon(c); return; }
    uv_buf_t bufs[2] = {uv_buf_init(h.data, (unsigned)h.len), uv_buf_init((char *)body, (unsigned)len)};
    int wr = conn_write(c, bufs, len ? 2 : 1);
    llmux_buf_free(&h);
    if (wr == 0) conn_finish_response(c);
}

void llmux_conn_respond_error(llmux_conn *c, int status, const char *message, const char *metadata_json,
                              const char *extra)
{
    llmux_buf b = {0};
    int rc = llmux_buf_printf(&b, "{\"error\":{\"code\":%d,\"message\":", status);
    rc |= llmux_buf_append_jstr(&b, message);
    rc |= llmux_buf_append_str(&b, ",\"metadata\":");
    rc |= llmux_buf_append_str(&b, metadata_json ? metadata_json : "{}");
    rc |= llmux_buf_append_str(&b, "}}");
    if (rc) { llmux_buf_free(&b); conn_close_soon(c); return; }
    llmux_conn_respond(c, status, "application/json", extra, b.data, b.len);
    llmux_buf_free(&b);
}

int llmux_conn_stream_begin(llmux_conn *c, int status, const char *ctype, const char *extra)
{
    if (c->closing || c->responded) return -1;
    if (!c->req.keep_alive) c->close_after_response = 1;
    llmux_buf h = {0};
    int rc = append_status_line(&h, c, status, ctype, extra);
    rc |= llmux_buf_append_str(&h, "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n");
    if (rc) { llmux_buf_free(&h); conn_close_soon(c); return -1; }
    uv_buf_t b = uv_buf_init(h.data, (unsigned)h.len);
    int wr = conn_write(c, &b, 1);
    llmux_buf_free(&h);
    c->streaming = 1;
    return wr;
}

int llmux_conn_stream_write(llmux_conn *c, const char *data, size_t len)
{
    if (c->closing || !c->streaming || len == 0) return c->closing ? -1 : 0;
    char head[24];
    int hn = (int)llmux_fmt_uint(head, len, 16, 1);
    head[hn++] = '\r';
    head[hn++] = '\n';
    uv_buf_t bufs[3] = {uv_buf_init(head, (unsigned)hn), uv_buf_init((char *)data, (unsigned)len),
                        uv_buf_init((char *)"\r\n", 2)};
    return conn_write(c, bufs, 3);
}

void llmux_conn_stream_end(llmux_conn *c)
{
    if (c->closing || !c->streaming) return;
    uv_buf_t b = uv_buf_init((char *)"0\r\n\r\n", 5);
    c->streaming = 0;
    if (conn_write(c, &b, 1) == 0) conn_finish_response(c);
}

/* ---- request parsing ---------------------------------------------------- */

static void fail_request(llmux_conn *c, int status, const char *msg)
{
    c->close_after_response = 1;
    c->req.keep_alive = 0;
    if (c->state != CS_HANDLING) {
        c->state = CS_HANDLING;
        c->w->n_busy++;
    }
    llmux_conn_respond_error(c, status, msg, NULL, NULL);
}

static int count_header_bytes(llmux_conn *c, size_t n)
{
    c->header_bytes += n;
    if (c->header_bytes > limits_of(c)->max_header_bytes) return -1;
    return 0;
}

static int on_message_begin(llhttp_t *p)
{
    llmux_conn *c = p->data;
    conn_reset_request(c);
    c->state = CS_READING;
    c->req.start_ns = llmux_now_ns();
    conn_arm_idle(c);
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    llmux_conn *c = p->data;
    if (count_header_bytes(c, len) || llmux_buf_append(&c->url, at, len)) return HPE_USER;
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    llmux_conn *c = p->data;
    if (count_header_bytes(c, len)) return HPE_USER;
    if (c->in_value || c->n_hdr == 0) {
        if (c->n_hdr > 0 && llmux_buf_append_char(&c->hdrs, '\0')) return HPE_USER; /* end previous value */
        if (c->n_hdr == (int)(sizeof c->kv / sizeof c->kv[0])) { c->too_many_headers = 1; return HPE_USER; }
        c->hdr_name_start[c->n_hdr++] = c->hdrs.len;
        c->in_value = 0;
    }
    size_t start = c->hdrs.len;
    if (llmux_buf_append(&c->hdrs, at, len)) return HPE_USER;
    for (size_t i = start; i < c->hdrs.len; i++) c->hdrs.data[i] = (char)tolower((unsigned char)c->hdrs.data[i]);
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    llmux_conn *c = p->data;
    if (count_header_bytes(c, len)) return HPE_USER;
    if (!c->in_value) {
        if (llmux_buf_append_char(&c->hdrs, '\0')) return HPE_USER;
        c->hdr_value_start[c->n_hdr - 1] = c->hdrs.len;
        c->in_value = 1;
    }
    return llmux_buf_append(&c->hdrs, at, len) ? HPE_USER : 0;
}

static int on_headers_complete(llhttp_t *p)
{
    llmux_conn *c = p->data;
    if (c->n_hdr > 0 && !c->in_value) { /* a name without a value */
        if (llmux_buf_append_char(&c->hdrs, '\0')) return HPE_USER;
        c->hdr_value_start[c->n_hdr - 1] = c->hdrs.len;
    }
    if (llmux_buf_append_char(&c->hdrs, '\0')) return HPE_USER;
    for (int i = 0; i < c->n_hdr; i++) {
        c->kv[i].key = c->hdrs.data + c->hdr_name_start[i];
        c->kv[i].value = c->hdrs.data + c->hdr_value_start[i];
    }
    if (p->content_length != 0 && p->content_length != UINT64_MAX &&
        p->content_length > limits_of(c)->max_body_bytes) {
        c->req.body_len = SIZE_MAX; /* marker: reject */
        return HPE_USER;
    }
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    llmux_conn *c = p->data;
    if (c->body.len + len > limits_of(c)->max_body_bytes) { c->req.body_len = SIZE_MAX; return HPE_USER; }
    return llmux_buf_append(&c->body, at, len) ? HPE_USER : 0;
}

static int on_message_complete(llhttp_t *p)
{
    llmux_conn *c = p->data;
    if (llmux_buf_append_char(&c->url, '\0') || llmux_buf_reserve(&c->body, 1)) return HPE_USER;
    c->url.len--;
    c->body.data[c->body.len] = '\0';
    char *q = memchr(c->url.data, '?', c->url.len);
    if (q) { *q = '\0'; c->req.query = q + 1; } else c->req.query = "";
    c->req.path = c->url.data;
    c->req.path_len = strlen(c->url.data);
    c->req.method = llhttp_get_method(p);
    c->req.headers = c->kv;
    c->req.n_headers = (size_t)c->n_hdr;
    c->req.body = c->body.data;
    c->req.body_len = c->body.len;
    c->req.keep_alive = llhttp_should_keep_alive(p);
    c->state = CS_HANDLING;
    c->w->n_busy++;
    uv_timer_stop(&c->timer);
    return HPE_PAUSED; /* one request at a time; resumed in conn_finish_response */
}

static void init_settings(void)
{
    if (g_settings_ready) return;
    llhttp_settings_init(&g_settings);
    g_settings.on_message_begin = on_message_begin;
    g_settings.on_url = on_url;
    g_settings.on_header_field = on_header_field;
    g_settings.on_header_value = on_header_value;
    g_settings.on_headers_complete = on_headers_complete;
    g_settings.on_body = on_body;
    g_settings.on_message_complete = on_message_complete;
    g_settings_ready = 1;
}

static void conn_process(llmux_conn *c, const char *data, size_t len)
{
    if (c->state == CS_HANDLING) { /* a pipelined request waits for the current response */
        if (c->pending.len + len > limits_of(c)->max_header_bytes + limits_of(c)->max_body_bytes) {
            conn_close(c);
            return;
        }
        llmux_buf_append(&c->pending, data, len);
        return;
    }
    llhttp_errno_t e = llhttp_execute(&c->parser, data, len);
    if (e == HPE_OK) return;
    if (e == HPE_PAUSED) {
        const char *stop = llhttp_get_error_pos(&c->parser);
        size_t used = stop ? (size_t)(stop - data) : len;
        if (used < len) llmux_buf_append(&c->pending, data + used, len - used);
        llmux_dispatch_request(c, &c->req);
        return;
    }
    if (c->req.body_len == SIZE_MAX) { fail_request(c, 413, "request body too large"); return; }
    if (c->header_bytes > limits_of(c)->max_header_bytes) { fail_request(c, 431, "request headers too large"); return; }
    if (c->too_many_headers) { fail_request(c, 431, "too many request headers"); return; }
    if (e == HPE_USER) { fail_request(c, 500, "out of memory"); return; }
    char msg[160];
    snprintf(msg, sizeof msg, "malformed HTTP request: %s", llhttp_errno_name(e));
    fail_request(c, 400, msg);
}

/* ---- timers ------------------------------------------------------------- */

static void on_conn_timer(uv_timer_t *t)
{
    llmux_conn *c = t->data;
    if (c->close_soon) { conn_close(c); return; }
    if (c->state == CS_READING && c->header_bytes > 0) { fail_request(c, 408, "request timed out"); return; }
    if (c->state != CS_HANDLING) conn_close(c);
}

static void conn_arm_idle(llmux_conn *c)
{
    const llmux_limits *l = limits_of(c);
    uint32_t ms = c->state == CS_READING ? l->request_timeout_ms : l->idle_timeout_ms;
    if (ms) uv_timer_start(&c->timer, on_conn_timer, ms, 0);
}

/* ---- reading ------------------------------------------------------------ */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    llmux_conn *c = h->data;
    (void)suggested;
    buf->base = c->w->read_buf;
    buf->len = sizeof c->w->read_buf;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    llmux_conn *c = s->data;
    if (n < 0) { conn_close(c); return; }
    if (n == 0 || c->closing) return;
    if (c->state == CS_IDLE) {
        uv_timer_stop(&c->timer);
        conn_arm_idle(c);
    }
    conn_process(c, buf->base, (size_t)n);
}

static void on_connection(uv_stream_t *server, int status)
{
    llmux_worker *w = server->data;
    if (status < 0) return;
    llmux_conn *c = calloc(1, sizeof *c);
    if (!c) return;
    c->w = w;
    uv_tcp_init(&w->loop, &c->tcp);
    uv_timer_init(&w->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->refs = 2;
    c->next = w->conns;
    if (w->conns) w->conns->prev = c;
    w->conns = c;
    if (++w->n_conns > w->conn_peak) w->conn_peak = w->n_conns;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0 || w->stopping ||
        w->n_conns > w->rt->cfg->limits.max_connections) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    llhttp_init(&c->parser, HTTP_REQUEST, &g_settings);
    c->parser.data = c;
    c->state = CS_IDLE;
    conn_arm_idle(c);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

int llmux_http_listen(llmux_worker *w, uv_tcp_t *l, const char *host, int port, char *err, size_t errlen)
{
    init_settings();
    struct sockaddr_storage ss;
    int af = strchr(host, ':') ? AF_INET6 : AF_INET;
    int r = af == AF_INET6 ? uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss)
                           : uv_ip4_addr(host, port, (struct sockaddr_in *)&ss);
    if (r < 0) { snprintf(err, errlen, "bad listen address %s: %s", host, uv_strerror(r)); return -1; }
    if ((r = uv_tcp_init_ex(&w->loop, l, (unsigned)af)) < 0) { snprintf(err, errlen, "socket: %s", uv_strerror(r)); return -1; }
    l->data = w;
    uv_os_fd_t fd;
    uv_fileno((uv_handle_t *)l, &fd);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if ((r = uv_tcp_bind(l, (struct sockaddr *)&ss, 0)) < 0 ||
        (r = uv_listen((uv_stream_t *)l, 1024, on_connection)) < 0) {
        snprintf(err, errlen, "listen on %s:%d: %s", host, port, uv_strerror(r));
        return -1;
    }
    return 0;
}

void llmux_http_stop_accepting(llmux_worker *w)
{
    if (!uv_is_closing((uv_handle_t *)&w->listener)) uv_close((uv_handle_t *)&w->listener, NULL);
    for (llmux_conn *c = w->conns, *n; c; c = n) {
        n = c->next;
        if (c->state != CS_HANDLING) conn_close(c);
        else c->close_after_response = 1;
    }
}

void llmux_http_close_all(llmux_worker *w)
{
    while (w->conns) conn_close(w->conns);
}

const char *llmux_http_header(const llmux_http_request *r, const char *name)
{
    for (size_t i = 0; i < r->n_headers; i++)
        if (strcmp(r->headers[i].key, name) == 0) return r->headers[i].value;
    return NULL;
}

char *llmux_conn_take_body(llmux_conn *c, size_t *len)
{
    *len = c->body.len;
    c->req.body = NULL;
    return llmux_buf_steal(&c->body);
}

llmux_worker *llmux_conn_worker(llmux_conn *c) { return c->w; }
const llmux_http_request *llmux_conn_request(llmux_conn *c) { return &c->req; }
void llmux_conn_attach(llmux_conn *c, llmux_handler *h) { c->h = h; }
void llmux_conn_detach(llmux_conn *c) { c->h = NULL; }

void llmux_conn_close(llmux_conn *c) { conn_close_soon(c); }
