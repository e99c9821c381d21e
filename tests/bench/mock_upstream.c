/* mock_upstream: a fast OpenAI-compatible upstream for the benchmarks.
 *
 * Every response is built once at start-up, so a request costs one parse and
 * one write of a shared buffer: the mock must never be what a benchmark measures.
 *
 *   POST /v1/chat/completions   "stream":true in the body -> SSE, else JSON
 *   GET  /v1/models             a one-model list
 *   GET  /health                "ok"
 *
 * Options: --host H --port P --threads T (one loop per thread, SO_REUSEPORT)
 *          --delay-ms D (before the first byte of an answer)
 *          --chunks N --chunk-bytes B (SSE content chunks; JSON content is N*B bytes)
 *          --stream-delay-ms S (between SSE chunks)
 *          --max-seconds X (exit by itself after X s; 0 = never)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <llhttp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define MAX_BODY_KEEP (1u << 20) /* enough to find "stream" in any bench body */

typedef struct {
    const char *host;
    int port, threads, delay_ms, chunks, chunk_bytes, stream_delay_ms, max_seconds;
} options;

static options opt = { "127.0.0.1", 9000, 1, 0, 8, 16, 0, 0 };

/* Precomputed wire images. */
static uv_buf_t r_json;      /* whole non-stream answer */
static uv_buf_t r_sse_all;   /* whole SSE answer (used when stream_delay_ms == 0) */
static uv_buf_t r_sse_head;  /* headers + first content chunk */
static uv_buf_t r_sse_chunk; /* one further content chunk */
static uv_buf_t r_sse_tail;  /* finish chunk + usage chunk + [DONE] + last chunk */
static uv_buf_t r_models, r_health, r_404, r_400, r_continue;

enum { ROUTE_NONE, ROUTE_CHAT, ROUTE_MODELS, ROUTE_HEALTH };

typedef struct worker {
    uv_loop_t loop;
    uv_tcp_t server;
    uv_thread_t thread;
    int index;
} worker;

typedef struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    llhttp_t parser;
    worker *w;
    int handles_open;   /* tcp + timer; freed when both close callbacks ran */
    int closing;
    int busy;           /* answering a request; parser paused, reads stopped */
    int route;
    int stream;
    int keep_alive;
    int chunks_left;
    int header_is_expect;
    int expect_continue;
    char url[128];
    size_t url_len;
    char *body;
    size_t body_len, body_cap;
    char *pending;      /* bytes read after a complete request (pipelining) */
    size_t pending_len;
} conn;

static void die(const char *what, int err) {
    fprintf(stderr, "mock_upstream: %s: %s\n", what, err < 0 ? uv_strerror(err) : strerror(err));
    exit(1);
}

static uv_buf_t buf_from(const char *s, size_t n) {
    char *p = malloc(n ? n : 1);
    if (!p) die("malloc", ENOMEM);
    memcpy(p, s, n);
    return uv_buf_init(p, (unsigned)n);
}

/* A growable string for building the precomputed answers. */
typedef struct { char *p; size_t n, cap; } sbuf;

static void sb_add(sbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) die("realloc", ENOMEM);
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void sb_fmt(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_fmt(sbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *tmp = malloc((size_t)n + 1);
    if (!tmp) die("malloc", ENOMEM);
    va_start(ap, fmt);
    vsnprintf(tmp, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb_add(b, tmp, (size_t)n);
    free(tmp);
}

/* Wraps one SSE event in an HTTP/1.1 chunk. */
static void sb_chunk(sbuf *b, const char *event, size_t n) {
    sb_fmt(b, "%zx\r\n", n);
    sb_add(b, event, n);
    sb_add(b, "\r\n", 2);
}

static char *content_text(size_t n) {
    static const char words[] = "The quick brown fox jumps over the lazy dog. ";
    char *s = malloc(n + 1);
    if (!s) die("malloc", ENOMEM);
    for (size_t i = 0; i < n; i++) s[i] = words[i % (sizeof words - 1)];
    s[n] = 0;
    return s;
}

#define CHUNK_PREFIX "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\"," \
                     "\"created\":1700000000,\"model\":\"bench-model\","

static void build_responses(void) {
    size_t cb = (size_t)opt.chunk_bytes, nchunks = (size_t)opt.chunks;
    char *piece = content_text(cb);
    char *whole = content_text(cb * nchunks);
    sbuf b = {0}, body = {0}, ev = {0};

    /* Non-stream JSON. */
    sb_fmt(&body, "{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion\",\"created\":1700000000,"
                  "\"model\":\"bench-model\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
                  "\"content\":\"%s\"},\"finish_reason\":\"stop\"}],"
                  "\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":%zu,\"total_tokens\":%zu}}",
           whole, nchunks, nchunks + 12);
    sb_fmt(&b, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n", body.n);
    sb_add(&b, body.p, body.n);
    r_json = buf_from(b.p, b.n);
    b.n = 0;

    /* SSE pieces. */
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                               "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n";
    sb_add(&b, head, sizeof head - 1);
    ev.n = 0;
    sb_fmt(&ev, CHUNK_PREFIX "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"%s\"},"
                "\"finish_reason\":null}]}\n\n", piece);
    sb_chunk(&b, ev.p, ev.n);
    r_sse_head = buf_from(b.p, b.n);
    b.n = 0;

    ev.n = 0;
    sb_fmt(&ev, CHUNK_PREFIX "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"%s\"},"
                "\"finish_reason\":null}]}\n\n", piece);
    sb_chunk(&b, ev.p, ev.n);
    r_sse_chunk = buf_from(b.p, b.n);
    b.n = 0;

    ev.n = 0;
    sb_fmt(&ev, CHUNK_PREFIX "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n");
    sb_chunk(&b, ev.p, ev.n);
    ev.n = 0;
    sb_fmt(&ev, CHUNK_PREFIX "\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":%zu,"
                "\"total_tokens\":%zu}}\n\n", nchunks, nchunks + 12);
    sb_chunk(&b, ev.p, ev.n);
    static const char done[] = "data: [DONE]\n\n";
    sb_chunk(&b, done, sizeof done - 1);
    sb_add(&b, "0\r\n\r\n", 5);
    r_sse_tail = buf_from(b.p, b.n);
    b.n = 0;

    sb_add(&b, r_sse_head.base, r_sse_head.len);
    for (size_t i = 1; i < nchunks; i++) sb_add(&b, r_sse_chunk.base, r_sse_chunk.len);
    sb_add(&b, r_sse_tail.base, r_sse_tail.len);
    r_sse_all = buf_from(b.p, b.n);
    b.n = 0;

    body.n = 0;
    sb_fmt(&body, "{\"object\":\"list\",\"data\":[{\"id\":\"bench-model\",\"object\":\"model\","
                  "\"created\":1700000000,\"owned_by\":\"bench\"}]}");
    sb_fmt(&b, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n", body.n);
    sb_add(&b, body.p, body.n);
    r_models = buf_from(b.p, b.n);
    b.n = 0;

    static const char health[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n";
    r_health = buf_from(health, sizeof health - 1);
    body.n = 0;
    sb_fmt(&body, "{\"error\":{\"message\":\"not found\",\"code\":404}}");
    sb_fmt(&b, "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n", body.n);
    sb_add(&b, body.p, body.n);
    r_404 = buf_from(b.p, b.n);
    b.n = 0;
    static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    r_400 = buf_from(bad, sizeof bad - 1);
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    r_continue = buf_from(cont, sizeof cont - 1);

    free(piece);
    free(whole);
    free(b.p);
    free(body.p);
    free(ev.p);
}

/* ---- connection lifetime ---- */

static void on_handle_closed(uv_handle_t *h) {
    conn *c = h->data;
    if (--c->handles_open == 0) {
        free(c->body);
        free(c->pending);
        free(c);
    }
}

static void conn_close(conn *c) {
    if (c->closing) return;
    c->closing = 1;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

typedef struct { uv_write_t req; int close_after; } write_req;

static void on_write(uv_write_t *req, int status) {
    write_req *wr = (write_req *)req;
    conn *c = req->data;
    if ((status < 0 || wr->close_after) && !c->closing) conn_close(c);
    free(wr);
}

/* Writes a shared, immutable buffer: no copy. */
static void send_buf(conn *c, const uv_buf_t *b, int close_after) {
    if (c->closing) return;
    write_req *wr = malloc(sizeof *wr);
    if (!wr) die("malloc", ENOMEM);
    wr->close_after = close_after;
    wr->req.data = c;
    uv_buf_t copy = *b;
    int rc = uv_write(&wr->req, (uv_stream_t *)&c->tcp, &copy, 1, on_write);
    if (rc < 0) {
        free(wr);
        conn_close(c);
    }
}

static void conn_feed(conn *c, const char *data, size_t len);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)h;
    (void)suggested;
    static __thread char slab[65536];
    buf->base = slab;
    buf->len = sizeof slab;
}

/* The answer is fully queued: accept the next request on this connection. */
static void request_done(conn *c) {
    if (c->closing) return;
    c->busy = 0;
    llhttp_resume(&c->parser);
    if (c->pending_len) {
        char *p = c->pending;
        size_t n = c->pending_len;
        c->pending = NULL;
        c->pending_len = 0;
        conn_feed(c, p, n);
        free(p);
    }
    if (!c->busy && !c->closing) uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read);
}

static void on_stream_tick(uv_timer_t *t) {
    conn *c = t->data;
    if (c->chunks_left > 0) {
        send_buf(c, &r_sse_chunk, 0);
        c->chunks_left--;
    }
    if (c->chunks_left == 0) {
        uv_timer_stop(&c->timer);
        send_buf(c, &r_sse_tail, !c->keep_alive);
        request_done(c);
    }
}

static void answer(conn *c) {
    if (c->route == ROUTE_CHAT && c->stream) {
        if (opt.stream_delay_ms <= 0 || opt.chunks <= 1) {
            send_buf(c, &r_sse_all, !c->keep_alive);
            request_done(c);
            return;
        }
        send_buf(c, &r_sse_head, 0);
        c->chunks_left = opt.chunks - 1;
        uv_timer_start(&c->timer, on_stream_tick, (uint64_t)opt.stream_delay_ms,
                       (uint64_t)opt.stream_delay_ms);
        return;
    }
    const uv_buf_t *b = c->route == ROUTE_CHAT     ? &r_json
                        : c->route == ROUTE_MODELS ? &r_models
                        : c->route == ROUTE_HEALTH ? &r_health
                                                   : &r_404;
    send_buf(c, b, !c->keep_alive);
    request_done(c);
}

static void on_delay(uv_timer_t *t) { answer(t->data); }

/* ---- HTTP parsing ---- */

static int on_message_begin(llhttp_t *p) {
    conn *c = p->data;
    c->url_len = 0;
    c->body_len = 0;
    c->expect_continue = 0;
    c->header_is_expect = 0;
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len) {
    conn *c = p->data;
    size_t room = sizeof c->url - 1 - c->url_len;
    if (len > room) len = room;
    memcpy(c->url + c->url_len, at, len);
    c->url_len += len;
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len) {
    conn *c = p->data;
    c->header_is_expect = (len == 6 && strncasecmp(at, "expect", 6) == 0);
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len) {
    conn *c = p->data;
    if (c->header_is_expect && len >= 12 && strncasecmp(at, "100-continue", 12) == 0) c->expect_continue = 1;
    return 0;
}

static int on_headers_complete(llhttp_t *p) {
    conn *c = p->data;
    c->url[c->url_len] = 0;
    char *q = strchr(c->url, '?');
    if (q) *q = 0;
    if (strcmp(c->url, "/v1/chat/completions") == 0 || strcmp(c->url, "/chat/completions") == 0)
        c->route = ROUTE_CHAT;
    else if (strcmp(c->url, "/v1/models") == 0 || strcmp(c->url, "/models") == 0)
        c->route = ROUTE_MODELS;
    else if (strcmp(c->url, "/health") == 0)
        c->route = ROUTE_HEALTH;
    else
        c->route = ROUTE_NONE;
    if (c->expect_continue) send_buf(c, &r_continue, 0);
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len) {
    conn *c = p->data;
    if (c->route != ROUTE_CHAT || c->body_len >= MAX_BODY_KEEP) return 0;
    if (c->body_len + len > MAX_BODY_KEEP) len = MAX_BODY_KEEP - c->body_len;
    if (c->body_len + len > c->body_cap) {
        size_t cap = c->body_cap ? c->body_cap : 1024;
        while (cap < c->body_len + len) cap *= 2;
        char *nb = realloc(c->body, cap);
        if (!nb) die("realloc", ENOMEM);
        c->body = nb;
        c->body_cap = cap;
    }
    memcpy(c->body + c->body_len, at, len);
    c->body_len += len;
    return 0;
}

/* True when the JSON body has "stream" : true (whitespace tolerated). */
static int body_wants_stream(const char *b, size_t n) {
    static const char key[] = "\"stream\"";
    const char *end = b + n, *p = b;
    while ((p = memmem(p, (size_t)(end - p), key, sizeof key - 1)) != NULL) {
        const char *q = p + sizeof key - 1;
        while (q < end && (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n')) q++;
        if (q < end && *q == ':') {
            q++;
            while (q < end && (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n')) q++;
            return end - q >= 4 && memcmp(q, "true", 4) == 0;
        }
        p += sizeof key - 1;
    }
    return 0;
}

static int on_message_complete(llhttp_t *p) {
    conn *c = p->data;
    c->stream = c->route == ROUTE_CHAT && body_wants_stream(c->body, c->body_len);
    c->keep_alive = llhttp_should_keep_alive(p);
    c->busy = 1;
    return HPE_PAUSED; /* one request at a time; resumed in request_done() */
}

static llhttp_settings_t settings;

static void conn_feed(conn *c, const char *data, size_t len) {
    llhttp_errno_t err = llhttp_execute(&c->parser, data, len);
    if (err == HPE_OK) return;
    if (err == HPE_PAUSED) {
        const char *pos = llhttp_get_error_pos(&c->parser);
        size_t used = pos ? (size_t)(pos - data) : len;
        if (used < len) {
            c->pending = malloc(len - used);
            if (!c->pending) die("malloc", ENOMEM);
            memcpy(c->pending, data + used, len - used);
            c->pending_len = len - used;
        }
        uv_read_stop((uv_stream_t *)&c->tcp);
        if (opt.delay_ms > 0 && c->route == ROUTE_CHAT)
            uv_timer_start(&c->timer, on_delay, (uint64_t)opt.delay_ms, 0);
        else
            answer(c);
        return;
    }
    uv_read_stop((uv_stream_t *)&c->tcp);
    send_buf(c, &r_400, 1);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    conn *c = s->data;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (nread == 0) return;
    if (c->busy) { /* cannot happen with reads stopped, kept for safety */
        char *np = realloc(c->pending, c->pending_len + (size_t)nread);
        if (!np) die("realloc", ENOMEM);
        memcpy(np + c->pending_len, buf->base, (size_t)nread);
        c->pending = np;
        c->pending_len += (size_t)nread;
        return;
    }
    conn_feed(c, buf->base, (size_t)nread);
}

static void on_connection(uv_stream_t *server, int status) {
    if (status < 0) return;
    worker *w = server->data;
    conn *c = calloc(1, sizeof *c);
    if (!c) die("calloc", ENOMEM);
    c->w = w;
    uv_tcp_init(&w->loop, &c->tcp);
    uv_timer_init(&w->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->handles_open = 2;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    llhttp_init(&c->parser, HTTP_REQUEST, &settings);
    c->parser.data = c;
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read);
}

static void on_deadline(uv_timer_t *t) {
    (void)t;
    fprintf(stderr, "mock_upstream: --max-seconds reached, exiting\n");
    _exit(0);
}

static void worker_run(void *arg) {
    worker *w = arg;
    uv_loop_init(&w->loop);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket", errno);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) die("SO_REUSEPORT", errno);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)opt.port);
    if (inet_pton(AF_INET, opt.host, &sa.sin_addr) != 1) die("bad --host", EINVAL);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) die("bind", errno);
    uv_tcp_init(&w->loop, &w->server);
    w->server.data = w;
    int rc = uv_tcp_open(&w->server, fd);
    if (rc < 0) die("uv_tcp_open", rc);
    rc = uv_listen((uv_stream_t *)&w->server, 4096, on_connection);
    if (rc < 0) die("listen", rc);
    uv_timer_t deadline;
    if (w->index == 0 && opt.max_seconds > 0) {
        uv_timer_init(&w->loop, &deadline);
        uv_timer_start(&deadline, on_deadline, (uint64_t)opt.max_seconds * 1000, 0);
        uv_unref((uv_handle_t *)&deadline);
    }
    uv_run(&w->loop, UV_RUN_DEFAULT);
}

static int int_arg(const char *name, const char *v, int lo, int hi) {
    char *end;
    long x = strtol(v, &end, 10);
    if (*v == 0 || *end != 0 || x < lo || x > hi) {
        fprintf(stderr, "mock_upstream: %s must be an integer in [%d, %d]\n", name, lo, hi);
        exit(2);
    }
    return (int)x;
}

static void usage(void) {
    fprintf(stderr, "usage: mock_upstream [--host 127.0.0.1] [--port 9000] [--threads 1] [--delay-ms 0]\n"
                    "                     [--chunks 8] [--chunk-bytes 16] [--stream-delay-ms 0] [--max-seconds 0]\n");
    exit(2);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) usage();
        if (i + 1 >= argc) usage();
        const char *v = argv[++i];
        if (strcmp(a, "--host") == 0) opt.host = v;
        else if (strcmp(a, "--port") == 0) opt.port = int_arg(a, v, 1, 65535);
        else if (strcmp(a, "--threads") == 0) opt.threads = int_arg(a, v, 1, 256);
        else if (strcmp(a, "--delay-ms") == 0) opt.delay_ms = int_arg(a, v, 0, 3600000);
        else if (strcmp(a, "--chunks") == 0) opt.chunks = int_arg(a, v, 1, 10000000);
        else if (strcmp(a, "--chunk-bytes") == 0) opt.chunk_bytes = int_arg(a, v, 1, 1 << 20);
        else if (strcmp(a, "--stream-delay-ms") == 0) opt.stream_delay_ms = int_arg(a, v, 0, 3600000);
        else if (strcmp(a, "--max-seconds") == 0) opt.max_seconds = int_arg(a, v, 0, 86400);
        else usage();
    }
    if ((size_t)opt.chunks * (size_t)opt.chunk_bytes > (64u << 20)) {
        fprintf(stderr, "mock_upstream: chunks * chunk-bytes must stay under 64 MiB\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    llhttp_settings_init(&settings);
    settings.on_message_begin = on_message_begin;
    settings.on_url = on_url;
    settings.on_header_field = on_header_field;
    settings.on_header_value = on_header_value;
    settings.on_headers_complete = on_headers_complete;
    settings.on_body = on_body;
    settings.on_message_complete = on_message_complete;
    build_responses();

    worker *ws = calloc((size_t)opt.threads, sizeof *ws);
    if (!ws) die("calloc", ENOMEM);
    for (int i = 0; i < opt.threads; i++) {
        ws[i].index = i;
        if (i > 0 && uv_thread_create(&ws[i].thread, worker_run, &ws[i]) != 0) die("thread", errno);
    }
    fprintf(stderr, "mock_upstream: listening on %s:%d threads=%d delay=%dms chunks=%dx%dB stream-delay=%dms\n",
            opt.host, opt.port, opt.threads, opt.delay_ms, opt.chunks, opt.chunk_bytes, opt.stream_delay_ms);
    worker_run(&ws[0]);
    return 0;
}
