/* loadgen: the benchmarks' HTTP/1.1 load generator for what wrk cannot measure:
 * time to the first SSE event, and how many SSE streams a server holds open.
 *
 *   loadgen loop --url URL [--body S | --body-file F] [-H 'K: V']... [--concurrency C]
 *                [--requests N] [--duration S] [--warmup S]
 *       C keep-alive connections, each sending the next request when the previous
 *       answer is complete. Stops after N recorded answers or S seconds.
 *       Prints one JSON object: request latency (write -> last byte) and "first"
 *       (write -> first "data:" line of an SSE body, or first body byte otherwise).
 *
 *   loadgen hold --url URL [--body ...] [-H ...] --streams N [--rate R] [--hold S]
 *                [--ramp-timeout S] [--pids P1,P2]
 *       Opens N streaming requests at R per second, counts the ones that got their
 *       first SSE event and are still open, samples VmRSS of the given pids before,
 *       while holding (S seconds) and after closing, then closes everything.
 *
 * Only loopback targets (127.0.0.0/8) are accepted. Every run ends by itself.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <llhttp.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

enum { MODE_LOOP, MODE_HOLD };

static struct {
    int mode;
    char host[64];
    int port;
    const char *path;
    char *body;
    size_t body_len;
    char *headers; /* extra header lines, each ending in \r\n */
    size_t headers_len;
    int concurrency;
    long requests;
    double duration_s, warmup_s;
    int streams;
    double rate, hold_s, ramp_timeout_s;
    char pids[256];
} opt = { .mode = MODE_LOOP, .port = 80, .path = "/", .concurrency = 1, .duration_s = 10,
          .streams = 1000, .rate = 2000, .hold_s = 3, .ramp_timeout_s = 0 };

static uv_loop_t *loop;
static char *request;
static size_t request_len;
static struct sockaddr_in target;
static llhttp_settings_t settings;

typedef struct client {
    uv_tcp_t tcp;
    uv_connect_t creq;
    llhttp_t parser;
    int open;          /* tcp handle initialised and not yet closed */
    int connected;
    int in_flight;     /* a request was written, its answer is not complete */
    int sse;           /* answer is text/event-stream */
    int header_is_ctype;
    int got_first;
    int line_state;    /* matching "data:" at a line start; -1 mid-line */
    int held;          /* hold mode: counted in g.held */
    int done;          /* hold mode: finished (failed or closed) */
    int status;
    uint64_t t_start, t_first;
} client;

static struct {
    client *clients;
    int nclients;
    int stopping;       /* no new requests */
    int finished;       /* results printed */
    uint64_t t0, t_measure, t_stop;
    /* loop mode */
    uint64_t *lat, *first;
    size_t nlat, cap;
    long issued_after_measure;
    long ok, status_errors, conn_errors;
    /* hold mode */
    int opened, held, failed, ended, held_at_sample, held_min;
    long rss_before, rss_held, rss_after;
    uv_timer_t tick, reconnect;
} g;

static void fail(const char *fmt, const char *what) {
    fprintf(stderr, "loadgen: ");
    fprintf(stderr, fmt, what);
    fprintf(stderr, "\n");
    exit(2);
}

/* ---- RSS sampling ---- */

static long rss_kb_of(const char *pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%s/status", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

static long rss_kb(void) {
    if (!opt.pids[0]) return -1;
    char copy[256];
    snprintf(copy, sizeof copy, "%s", opt.pids);
    long sum = 0;
    for (char *save = NULL, *p = strtok_r(copy, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        long kb = rss_kb_of(p);
        if (kb < 0) return -1;
        sum += kb;
    }
    return sum;
}

/* ---- results ---- */

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_us(uint64_t *v, size_t n, double q) {
    if (n == 0) return -1;
    size_t k = (size_t)ceil(q * (double)n);
    if (k < 1) k = 1;
    if (k > n) k = n;
    return (double)v[k - 1] / 1000.0;
}

static void print_loop_results(void) {
    uint64_t end = g.t_stop ? g.t_stop : uv_hrtime();
    double secs = (double)(end - g.t_measure) / 1e9;
    double mean = 0;
    for (size_t i = 0; i < g.nlat; i++) mean += (double)g.lat[i];
    mean = g.nlat ? mean / (double)g.nlat / 1000.0 : -1;
    qsort(g.lat, g.nlat, sizeof *g.lat, cmp_u64);
    qsort(g.first, g.nlat, sizeof *g.first, cmp_u64);
    printf("{\"mode\":\"loop\",\"concurrency\":%d,\"seconds\":%.3f,\"ok\":%ld,\"status_errors\":%ld,"
           "\"conn_errors\":%ld,\"rps\":%.1f,\"lat_mean_us\":%.1f,\"lat_p50_us\":%.1f,\"lat_p90_us\":%.1f,"
           "\"lat_p99_us\":%.1f,\"lat_max_us\":%.1f,\"first_p50_us\":%.1f,\"first_p90_us\":%.1f,"
           "\"first_p99_us\":%.1f}\n",
           opt.concurrency, secs, g.ok, g.status_errors, g.conn_errors, secs > 0 ? (double)g.ok / secs : 0,
           mean, pct_us(g.lat, g.nlat, 0.50), pct_us(g.lat, g.nlat, 0.90), pct_us(g.lat, g.nlat, 0.99),
           pct_us(g.lat, g.nlat, 1.0), pct_us(g.first, g.nlat, 0.50), pct_us(g.first, g.nlat, 0.90),
           pct_us(g.first, g.nlat, 0.99));
    fflush(stdout);
}

static void print_hold_results(void) {
    long grown = g.rss_held >= 0 && g.rss_before >= 0 ? g.rss_held - g.rss_before : -1;
    printf("{\"mode\":\"hold\",\"target\":%d,\"opened\":%d,\"held\":%d,\"held_min\":%d,\"failed\":%d,"
           "\"ended_early\":%d,\"rss_before_kb\":%ld,\"rss_held_kb\":%ld,\"rss_after_kb\":%ld,"
           "\"bytes_per_stream\":%.0f}\n",
           opt.streams, g.opened, g.held_at_sample, g.held_min, g.failed, g.ended, g.rss_before, g.rss_held,
           g.rss_after, grown >= 0 && g.held_at_sample > 0 ? (double)grown * 1024.0 / g.held_at_sample : -1.0);
    fflush(stdout);
}

/* ---- connections ---- */

static void client_connect(client *c);
static void send_request(client *c);

static void on_closed(uv_handle_t *h) {
    client *c = h->data;
    c->open = 0;
}

static void client_close(client *c) {
    if (c->open && !uv_is_closing((uv_handle_t *)&c->tcp)) uv_close((uv_handle_t *)&c->tcp, on_closed);
    c->connected = 0;
    c->in_flight = 0;
}

static void on_final_close(uv_handle_t *h) { (void)h; }

static void shutdown_all(void) {
    for (int i = 0; i < g.nclients; i++) client_close(&g.clients[i]);
    if (!uv_is_closing((uv_handle_t *)&g.tick)) uv_close((uv_handle_t *)&g.tick, on_final_close);
    if (!uv_is_closing((uv_handle_t *)&g.reconnect)) uv_close((uv_handle_t *)&g.reconnect, on_final_close);
}

static void loop_maybe_finish(void) {
    if (!g.stopping || g.finished) return;
    for (int i = 0; i < g.nclients; i++)
        if (g.clients[i].in_flight) return;
    g.finished = 1;
    print_loop_results();
    shutdown_all();
}

static void loop_stop(void) {
    if (g.stopping) return;
    g.stopping = 1;
    g.t_stop = uv_hrtime();
    loop_maybe_finish();
}

static void record(client *c, uint64_t now) {
    if (opt.mode != MODE_LOOP || g.stopping || !g.t_measure || c->t_start < g.t_measure) return;
    if (c->status != 200) {
        g.status_errors++;
        return;
    }
    if (g.nlat == g.cap) {
        g.cap = g.cap ? g.cap * 2 : 65536;
        g.lat = realloc(g.lat, g.cap * sizeof *g.lat);
        g.first = realloc(g.first, g.cap * sizeof *g.first);
        if (!g.lat || !g.first) fail("%s", "out of memory");
    }
    g.lat[g.nlat] = now - c->t_start;
    g.first[g.nlat] = (c->got_first ? c->t_first : now) - c->t_start;
    g.nlat++;
    g.ok++;
    if (opt.requests > 0 && g.ok >= opt.requests) loop_stop();
}

static void hold_lost(client *c) {
    if (c->done) return;
    c->done = 1;
    if (c->held) {
        c->held = 0;
        g.held--;
        g.ended++;
    } else {
        g.failed++;
    }
}

/* Connection-level failure: count, close, and (loop mode) reconnect a bit later. */
static void client_error(client *c) {
    if (opt.mode == MODE_LOOP) {
        if (!g.stopping && g.t_measure && c->in_flight && c->t_start >= g.t_measure) g.conn_errors++;
        client_close(c);
        loop_maybe_finish();
    } else {
        hold_lost(c);
        client_close(c);
    }
}

static int on_message_begin(llhttp_t *p) {
    client *c = p->data;
    c->sse = 0;
    c->got_first = 0;
    c->line_state = 0;
    c->status = 0;
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len) {
    client *c = p->data;
    c->header_is_ctype = len == 12 && strncasecmp(at, "content-type", 12) == 0;
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len) {
    client *c = p->data;
    if (c->header_is_ctype && memmem(at, len, "event-stream", 12)) c->sse = 1;
    return 0;
}

static int on_headers_complete(llhttp_t *p) {
    client *c = p->data;
    c->status = llhttp_get_status_code(p);
    return 0;
}

static void got_first(client *c) {
    c->got_first = 1;
    c->t_first = uv_hrtime();
    if (opt.mode == MODE_HOLD && !c->done && c->status == 200) {
        c->held = 1;
        g.held++;
    }
}

static int on_body(llhttp_t *p, const char *at, size_t len) {
    client *c = p->data;
    if (c->got_first) return 0;
    if (!c->sse) {
        got_first(c);
        return 0;
    }
    static const char key[] = "data:";
    for (size_t i = 0; i < len; i++) {
        char ch = at[i];
        if (c->line_state >= 0) {
            if (ch == key[c->line_state]) {
                if (++c->line_state == 5) {
                    got_first(c);
                    return 0;
                }
                continue;
            }
            c->line_state = ch == '\n' ? 0 : -1;
        } else if (ch == '\n') {
            c->line_state = 0;
        }
    }
    return 0;
}

static int on_message_complete(llhttp_t *p) {
    client *c = p->data;
    uint64_t now = uv_hrtime();
    c->in_flight = 0;
    if (opt.mode == MODE_HOLD) {
        hold_lost(c); /* the stream ended while it should be held */
        return HPE_PAUSED;
    }
    record(c, now);
    return HPE_PAUSED; /* decide in on_read whether to reuse the connection */
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)h;
    (void)suggested;
    static char slab[65536];
    buf->base = slab;
    buf->len = sizeof slab;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    client *c = s->data;
    if (nread == 0) return;
    if (nread < 0) {
        if (nread == UV_EOF && c->in_flight) llhttp_finish(&c->parser);
        client_error(c);
        return;
    }
    llhttp_errno_t err = llhttp_execute(&c->parser, buf->base, (size_t)nread);
    if (err == HPE_OK) return;
    if (err != HPE_PAUSED) {
        client_error(c);
        return;
    }
    /* An answer completed. */
    if (opt.mode == MODE_HOLD) {
        client_close(c);
        return;
    }
    int keep = llhttp_should_keep_alive(&c->parser);
    llhttp_resume(&c->parser);
    if (g.stopping) {
        client_close(c);
        loop_maybe_finish();
        return;
    }
    if (keep) {
        send_request(c);
    } else {
        client_close(c);
    }
}

static void on_write(uv_write_t *w, int status) {
    client *c = w->data;
    free(w);
    if (status < 0 && c->open) client_error(c);
}

static void send_request(client *c) {
    if (opt.requests > 0 && g.t_measure && g.issued_after_measure >= opt.requests + opt.concurrency) {
        loop_stop();
        return;
    }
    c->in_flight = 1;
    c->t_start = uv_hrtime();
    if (g.t_measure && c->t_start >= g.t_measure) g.issued_after_measure++;
    uv_buf_t b = uv_buf_init(request, (unsigned)request_len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n == (int)request_len) return;
    if (n < 0 && n != UV_EAGAIN) {
        client_error(c);
        return;
    }
    if (n > 0) {
        b.base += n;
        b.len -= (size_t)n;
    }
    uv_write_t *w = malloc(sizeof *w);
    if (!w) fail("%s", "out of memory");
    w->data = c;
    if (uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, on_write) < 0) {
        free(w);
        client_error(c);
    }
}

static void on_connect(uv_connect_t *req, int status) {
    client *c = req->data;
    if (status < 0) {
        client_error(c);
        return;
    }
    if (!c->open) return;
    c->connected = 1;
    uv_tcp_nodelay(&c->tcp, 1);
    llhttp_init(&c->parser, HTTP_RESPONSE, &settings);
    c->parser.data = c;
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read);
    if (g.stopping) {
        client_close(c);
        loop_maybe_finish();
        return;
    }
    send_request(c);
}

static void client_connect(client *c) {
    if (c->open) return;
    uv_tcp_init(loop, &c->tcp);
    c->tcp.data = c;
    c->creq.data = c;
    c->open = 1;
    c->connected = 0;
    int rc = uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&target, on_connect);
    if (rc < 0) client_error(c);
}

/* ---- loop mode timers ---- */

static void on_reconnect(uv_timer_t *t) {
    (void)t;
    uint64_t now = uv_hrtime();
    if (!g.t_measure && now - g.t0 >= (uint64_t)(opt.warmup_s * 1e9)) g.t_measure = now;
    if (g.t_measure && opt.duration_s > 0 && now - g.t_measure >= (uint64_t)(opt.duration_s * 1e9)) loop_stop();
    /* hard bound: whatever happens, end 10 s after the planned end */
    if (now - g.t0 > (uint64_t)((opt.warmup_s + (opt.duration_s > 0 ? opt.duration_s : 600) + 10) * 1e9)) {
        if (!g.finished) {
            g.stopping = 1;
            if (!g.t_stop) g.t_stop = now;
            g.finished = 1;
            print_loop_results();
        }
        shutdown_all();
        return;
    }
    if (g.stopping) {
        loop_maybe_finish();
        return;
    }
    for (int i = 0; i < g.nclients; i++)
        if (!g.clients[i].open) client_connect(&g.clients[i]);
}

/* ---- hold mode ---- */

static int hold_phase; /* 0 ramp, 1 holding, 2 closing */
static uint64_t phase_t;

static void on_hold_tick(uv_timer_t *t) {
    (void)t;
    uint64_t now = uv_hrtime();
    double el = (double)(now - g.t0) / 1e9;
    if (hold_phase == 0) {
        int want = (int)(el * opt.rate) + 1;
        if (want > opt.streams) want = opt.streams;
        while (g.opened < want) client_connect(&g.clients[g.opened++]);
        int settled = g.held + g.failed + g.ended;
        if ((g.opened == opt.streams && settled >= opt.streams) || el > opt.ramp_timeout_s) {
            hold_phase = 1;
            phase_t = now;
            g.held_min = g.held;
            g.held_at_sample = g.held;
            g.rss_held = rss_kb();
            fprintf(stderr, "loadgen: holding %d of %d streams (%d failed) after %.1f s\n", g.held, opt.streams,
                    g.failed, el);
        }
    } else if (hold_phase == 1) {
        if (g.held < g.held_min) g.held_min = g.held;
        long kb = rss_kb();
        if (kb > g.rss_held) {
            g.rss_held = kb;
            g.held_at_sample = g.held;
        }
        if ((double)(now - phase_t) / 1e9 >= opt.hold_s) {
            hold_phase = 2;
            phase_t = now;
            for (int i = 0; i < g.nclients; i++) {
                g.clients[i].done = 1;
                client_close(&g.clients[i]);
            }
        }
    } else if ((double)(now - phase_t) / 1e9 >= 1.5 || el > opt.ramp_timeout_s + opt.hold_s + 10) {
        g.rss_after = rss_kb();
        g.finished = 1;
        print_hold_results();
        shutdown_all();
    }
}

/* ---- options ---- */

static void parse_url(const char *url) {
    if (strncmp(url, "http://", 7) != 0) fail("only http:// URLs: %s", url);
    const char *h = url + 7, *slash = strchr(h, '/');
    opt.path = slash ? slash : "/";
    size_t hl = slash ? (size_t)(slash - h) : strlen(h);
    if (hl >= sizeof opt.host) fail("host too long: %s", url);
    memcpy(opt.host, h, hl);
    opt.host[hl] = 0;
    char *colon = strchr(opt.host, ':');
    if (colon) {
        *colon = 0;
        opt.port = atoi(colon + 1);
    }
    if (strcmp(opt.host, "localhost") == 0) snprintf(opt.host, sizeof opt.host, "127.0.0.1");
    if (uv_ip4_addr(opt.host, opt.port, &target) != 0) fail("not an IPv4 address: %s", opt.host);
    if ((ntohl(target.sin_addr.s_addr) >> 24) != 127) fail("refusing a non-loopback target: %s", opt.host);
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) fail("cannot open %s", path);
    size_t cap = 4096, n = 0;
    char *s = malloc(cap);
    size_t r;
    while (s && (r = fread(s + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) s = realloc(s, cap *= 2);
    }
    fclose(f);
    if (!s) fail("%s", "out of memory");
    *len = n;
    return s;
}

static void add_header(const char *h) {
    size_t n = strlen(h);
    opt.headers = realloc(opt.headers, opt.headers_len + n + 3);
    if (!opt.headers) fail("%s", "out of memory");
    memcpy(opt.headers + opt.headers_len, h, n);
    memcpy(opt.headers + opt.headers_len + n, "\r\n", 3);
    opt.headers_len += n + 2;
}

static void usage(void) {
    fprintf(stderr,
            "usage: loadgen loop --url URL [--body S|--body-file F] [-H 'K: V'] [--concurrency C]\n"
            "                    [--requests N] [--duration S] [--warmup S]\n"
            "       loadgen hold --url URL [--body S|--body-file F] [-H 'K: V'] --streams N [--rate R]\n"
            "                    [--hold S] [--ramp-timeout S] [--pids P1,P2]\n");
    exit(2);
}

int main(int argc, char **argv) {
    if (argc < 2) usage();
    if (strcmp(argv[1], "loop") == 0) opt.mode = MODE_LOOP;
    else if (strcmp(argv[1], "hold") == 0) opt.mode = MODE_HOLD;
    else usage();
    const char *url = NULL;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) usage();
        const char *v = argv[++i];
        if (strcmp(a, "--url") == 0) url = v;
        else if (strcmp(a, "--body") == 0) { opt.body = strdup(v); opt.body_len = strlen(v); }
        else if (strcmp(a, "--body-file") == 0) opt.body = read_file(v, &opt.body_len);
        else if (strcmp(a, "-H") == 0) add_header(v);
        else if (strcmp(a, "--concurrency") == 0) opt.concurrency = atoi(v);
        else if (strcmp(a, "--requests") == 0) opt.requests = atol(v);
        else if (strcmp(a, "--duration") == 0) opt.duration_s = atof(v);
        else if (strcmp(a, "--warmup") == 0) opt.warmup_s = atof(v);
        else if (strcmp(a, "--streams") == 0) opt.streams = atoi(v);
        else if (strcmp(a, "--rate") == 0) opt.rate = atof(v);
        else if (strcmp(a, "--hold") == 0) opt.hold_s = atof(v);
        else if (strcmp(a, "--ramp-timeout") == 0) opt.ramp_timeout_s = atof(v);
        else if (strcmp(a, "--pids") == 0) snprintf(opt.pids, sizeof opt.pids, "%s", v);
        else usage();
    }
    if (!url) usage();
    parse_url(url);
    if (opt.concurrency < 1 || opt.concurrency > 100000 || opt.streams < 1 || opt.streams > 1000000 ||
        opt.rate <= 0 || opt.duration_s < 0 || opt.warmup_s < 0)
        usage();
    if (opt.requests > 0 && opt.duration_s == 10) opt.duration_s = 0; /* --requests alone: count-bound */
    if (opt.requests <= 0 && opt.duration_s <= 0) opt.duration_s = 10;
    if (opt.ramp_timeout_s <= 0) opt.ramp_timeout_s = opt.streams / opt.rate + 10;

    /* The request, built once. */
    size_t cap = strlen(opt.path) + opt.headers_len + opt.body_len + 256;
    request = malloc(cap);
    if (!request) fail("%s", "out of memory");
    if (opt.body)
        request_len = (size_t)snprintf(request, cap,
                                       "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                                       "Content-Length: %zu\r\n%.*s\r\n",
                                       opt.path, opt.host, opt.port, opt.body_len, (int)opt.headers_len,
                                       opt.headers ? opt.headers : "");
    else
        request_len = (size_t)snprintf(request, cap, "GET %s HTTP/1.1\r\nHost: %s:%d\r\n%.*s\r\n", opt.path,
                                       opt.host, opt.port, (int)opt.headers_len, opt.headers ? opt.headers : "");
    if (opt.body) {
        memcpy(request + request_len, opt.body, opt.body_len);
        request_len += opt.body_len;
    }

    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (opt.mode == MODE_HOLD && (rlim_t)opt.streams + 64 > rl.rlim_cur)
        fprintf(stderr, "loadgen: warning: open-file limit %lu is below %d streams\n", (unsigned long)rl.rlim_cur,
                opt.streams);

    llhttp_settings_init(&settings);
    settings.on_message_begin = on_message_begin;
    settings.on_header_field = on_header_field;
    settings.on_header_value = on_header_value;
    settings.on_headers_complete = on_headers_complete;
    settings.on_body = on_body;
    settings.on_message_complete = on_message_complete;

    loop = uv_default_loop();
    g.nclients = opt.mode == MODE_LOOP ? opt.concurrency : opt.streams;
    g.clients = calloc((size_t)g.nclients, sizeof *g.clients);
    if (!g.clients) fail("%s", "out of memory");
    g.t0 = uv_hrtime();
    g.rss_before = rss_kb();
    uv_timer_init(loop, &g.tick);
    uv_timer_init(loop, &g.reconnect);
    if (opt.mode == MODE_LOOP) {
        if (opt.warmup_s <= 0) g.t_measure = g.t0;
        for (int i = 0; i < g.nclients; i++) client_connect(&g.clients[i]);
        uv_timer_start(&g.reconnect, on_reconnect, 10, 10);
    } else {
        uv_timer_start(&g.tick, on_hold_tick, 0, 5);
    }
    uv_run(loop, UV_RUN_DEFAULT);
    if (!g.finished) {
        if (opt.mode == MODE_LOOP) print_loop_results();
        else print_hold_results();
    }
    return g.ok == 0 && opt.mode == MODE_LOOP ? 1 : 0;
}
