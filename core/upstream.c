#include "upstream.h"
#include "buf.h"
#include "log.h"
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct llmux_upstream {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    int closing;
    llmux_xfer *xfers;         /* live transfers (for close) */
    CURL *idle[64];            /* reset easy handles kept for reuse (saves curl's per-handle setup) */
    int n_idle;
};

struct llmux_xfer {
    llmux_upstream *u;
    CURL *easy;
    llmux_xfer *prev, *next;
    struct curl_slist *headers;
    llmux_xfer_cb cb;
    void *ud;
    llmux_buf hdr_store;       /* "name\0value\0" pairs */
    int n_hdr;
    int status;
    int headers_delivered;
    int paused;
    /* written before read: not zeroed at allocation */
    llmux_kv hdr_kv[64];
    size_t hdr_off[64][2];
    char errbuf[CURL_ERROR_SIZE];
};

typedef struct {
    uv_poll_t poll;
    curl_socket_t fd;
    llmux_upstream *u;
} sock_ctx;

static void check_done(llmux_upstream *u);

static void on_sock_closed(uv_handle_t *h) { free(h->data); }

static void on_poll(uv_poll_t *p, int status, int events)
{
    sock_ctx *s = p->data;
    int flags = 0;
    if (status < 0) flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
    int running;
    llmux_upstream *u = s->u;
    curl_multi_socket_action(u->multi, s->fd, flags, &running);
    check_done(u);
}

static int on_socket(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)e;
    llmux_upstream *u = userp;
    sock_ctx *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            uv_poll_stop(&s->poll);
            uv_close((uv_handle_t *)&s->poll, on_sock_closed);
            curl_multi_assign(u->multi, fd, NULL);
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s) return -1;
        s->fd = fd;
        s->u = u;
        if (uv_poll_init_socket(u->loop, &s->poll, fd) < 0) { free(s); return -1; }
        s->poll.data = s;
        curl_multi_assign(u->multi, fd, s);
    }
    int ev = 0;
    if (what & CURL_POLL_IN) ev |= UV_READABLE;
    if (what & CURL_POLL_OUT) ev |= UV_WRITABLE;
    uv_poll_start(&s->poll, ev, on_poll);
    return 0;
}

static void on_timeout(uv_timer_t *t)
{
    llmux_upstream *u = t->data;
    int running;
    curl_multi_socket_action(u->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(u);
}

static int on_timer(CURLM *m, long timeout_ms, void *userp)
{
    (void)m;
    llmux_upstream *u = userp;
    if (timeout_ms < 0) uv_timer_stop(&u->timer);
    else uv_timer_start(&u->timer, on_timeout, (uint64_t)timeout_ms, 0); /* 0 runs on the next loop turn */
    return 0;
}

llmux_upstream *llmux_upstream_new(uv_loop_t *loop)
{
    llmux_upstream *u = calloc(1, sizeof *u);
    if (!u) return NULL;
    u->loop = loop;
    u->multi = curl_multi_init();
    if (!u->multi) { free(u); return NULL; }
    uv_timer_init(loop, &u->timer);
    u->timer.data = u;
    curl_multi_setopt(u->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(u->multi, CURLMOPT_SOCKETDATA, u);
    curl_multi_setopt(u->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(u->multi, CURLMOPT_TIMERDATA, u);
    curl_multi_setopt(u->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    curl_multi_setopt(u->multi, CURLMOPT_MAXCONNECTS, 1024L);
    return u;
}

static void xfer_free(llmux_xfer *x)
{
    llmux_upstream *u = x->u;
    if (x->prev) x->prev->next = x->next; else u->xfers = x->next;
    if (x->next) x->next->prev = x->prev;
    curl_multi_remove_handle(u->multi, x->easy);
    if (!u->closing && u->n_idle < (int)(sizeof u->idle / sizeof u->idle[0])) {
        curl_easy_reset(x->easy);
        u->idle[u->n_idle++] = x->easy;
    } else {
        curl_easy_cleanup(x->easy);
    }
    curl_slist_free_all(x->headers);
    llmux_buf_free(&x->hdr_store);
    free(x);
}

static void on_timer_closed(uv_handle_t *h)
{
    llmux_upstream *u = h->data;
    while (u->n_idle) curl_easy_cleanup(u->idle[--u->n_idle]);
    curl_multi_cleanup(u->multi);
    free(u);
}

void llmux_upstream_close(llmux_upstream *u)
{
    u->closing = 1;
    while (u->xfers) xfer_free(u->xfers);
    uv_close((uv_handle_t *)&u->timer, on_timer_closed);
}

static void deliver_headers(llmux_xfer *x)
{
    if (x->headers_delivered) return;
    x->headers_delivered = 1;
    for (int i = 0; i < x->n_hdr; i++) {
        x->hdr_kv[i].key = x->hdr_store.data + x->hdr_off[i][0];
        x->hdr_kv[i].value = x->hdr_store.data + x->hdr_off[i][1];
    }
    if (x->cb.on_headers) x->cb.on_headers(x->ud, x->status, x->hdr_kv, (size_t)x->n_hdr);
}

static size_t on_header_line(char *p, size_t size, size_t n, void *ud)
{
    llmux_xfer *x = ud;
    size_t len = size * n;
    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) { /* a new response (e.g. after 100 Continue) */
        llmux_buf_reset(&x->hdr_store);
        x->n_hdr = 0;
        const char *sp = memchr(p, ' ', len);
        x->status = sp ? atoi(sp + 1) : 0;
        return len;
    }
    const char *colon = memchr(p, ':', len);
    if (!colon || x->n_hdr == 64) return len;
    size_t nl = (size_t)(colon - p);
    const char *v = colon + 1, *end = p + len;
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ')) end--;
    x->hdr_off[x->n_hdr][0] = x->hdr_store.len;
    llmux_buf_append(&x->hdr_store, p, nl);
    for (size_t i = x->hdr_store.len - nl; i < x->hdr_store.len; i++)
        if (x->hdr_store.data[i] >= 'A' && x->hdr_store.data[i] <= 'Z') x->hdr_store.data[i] += 32;
    llmux_buf_append_char(&x->hdr_store, '\0');
    x->hdr_off[x->n_hdr][1] = x->hdr_store.len;
    llmux_buf_append(&x->hdr_store, v, (size_t)(end - v));
    if (llmux_buf_append_char(&x->hdr_store, '\0') == 0) x->n_hdr++;
    return len;
}

static size_t on_write(char *p, size_t size, size_t n, void *ud)
{
    llmux_xfer *x = ud;
    deliver_headers(x);
    size_t r = x->cb.on_body(x->ud, p, size * n);
    if (r == LLMUX_XFER_PAUSE) { x->paused = 1; return CURL_WRITEFUNC_PAUSE; }
    return r;
}

static void check_done(llmux_upstream *u)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(u->multi, &left))) {
        if (m->msg != CURLMSG_DONE) continue;
        CURL *e = m->easy_handle;
        CURLcode res = m->data.result; /* read before the handle is removed */
        llmux_xfer *x = NULL;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&x);
        if (!x) continue;
        long code = 0;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
        if (code) x->status = (int)code;
        curl_multi_remove_handle(u->multi, e);
        deliver_headers(x);
        llmux_xfer_cb cb = x->cb;
        void *ud = x->ud;
        char err[CURL_ERROR_SIZE];
        memcpy(err, x->errbuf[0] ? x->errbuf : curl_easy_strerror(res), sizeof err);
        err[sizeof err - 1] = '\0';
        int status = x->status;
        xfer_free(x);
        cb.on_done(ud, res, status, err);
    }
}

llmux_xfer *llmux_xfer_start(llmux_upstream *u, const llmux_xfer_req *req, const llmux_xfer_cb *cb,
                             void *ud, char *err, size_t errlen)
{
    llmux_xfer *x = malloc(sizeof *x);
    if (x) {
        memset(x, 0, offsetof(llmux_xfer, hdr_kv));
        x->errbuf[0] = '\0';
    }
    CURL *e = u->n_idle ? u->idle[--u->n_idle] : curl_easy_init();
    if (!x || !e) {
        free(x);
        if (e) curl_easy_cleanup(e);
        curl_slist_free_all(req->headers);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    x->u = u;
    x->easy = e;
    x->cb = *cb;
    x->ud = ud;
    x->headers = curl_slist_append(req->headers, "Expect:"); /* no 100-continue round trip */
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header_line);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    /* Streams are many and their chunks small: a smaller receive buffer keeps
     * memory per open stream down (curl's default is 16 KiB per transfer). */
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 8192L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, ""); /* gzip etc. if the upstream wants */
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, req->connect_timeout_ms > 0 ? req->connect_timeout_ms : 5000L);
    if (req->total_timeout_ms > 0) curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, req->total_timeout_ms);
    x->next = u->xfers;
    if (u->xfers) u->xfers->prev = x;
    u->xfers = x;
    CURLMcode mc = curl_multi_add_handle(u->multi, e);
    if (mc != CURLM_OK) {
        snprintf(err, errlen, "curl: %s", curl_multi_strerror(mc));
        x->cb.on_done = NULL;
        xfer_free(x);
        return NULL;
    }
    return x;
}

void llmux_xfer_cancel(llmux_xfer *x) { xfer_free(x); }

void llmux_xfer_resume(llmux_xfer *x)
{
    if (!x->paused) return;
    x->paused = 0;
    curl_easy_pause(x->easy, CURLPAUSE_CONT); /* may deliver buffered data right away */
}
