/* Unit tests for core/sse_parse.c. Events are recorded as "name|data\n". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "buf.h"
#include "sse_parse.h"

typedef struct {
    llmux_buf out;
    int count;
    int stop_after; /* return 7 from the callback at this event (1-based), 0 = never */
} rec;

static int on_event(void *ud, const char *ev, size_t evn, const char *data, size_t n)
{
    rec *r = ud;
    r->count++;
    llmux_buf_append(&r->out, ev, evn);
    llmux_buf_append_char(&r->out, '|');
    llmux_buf_append(&r->out, data, n);
    llmux_buf_append_char(&r->out, '\n');
    return r->stop_after && r->count == r->stop_after ? 7 : 0;
}

/* Feeds `s` in pieces cut at the given positions. */
static void feed_split(const char *s, size_t n, const size_t *cuts, int ncuts, rec *r, size_t max)
{
    llmux_sse p = {0};
    size_t prev = 0;
    for (int k = 0; k <= ncuts; k++) {
        size_t end = k < ncuts ? cuts[k] : n;
        /* copy each piece so reads past it are caught by ASan */
        char *piece = malloc(end - prev + 1);
        memcpy(piece, s + prev, end - prev);
        assert_int_equal(llmux_sse_feed(&p, piece, end - prev, max, on_event, r), 0);
        free(piece);
        prev = end;
    }
    llmux_sse_free(&p);
}

static const char STREAM[] =
    ": comment\r\n"
    "data: {\"a\":1}\n\n"
    "event: message_start\r\n"
    "data: line1\r\n"
    "data:line2\r\n"
    "data:  two spaces\r\n"
    "id: 5\r\n"
    "retry: 100\r\n"
    "\r\n"
    "data\r\r"
    "event: x\n"
    ": only comment, no data\n"
    "\n"
    "event: ping\n"
    "data: [DONE]\r"
    "\r"
    "data: last\n"
    "\n";

static const char WANT[] =
    "|{\"a\":1}\n"
    "message_start|line1\nline2\n two spaces\n"
    "|\n"
    "ping|[DONE]\n"
    "|last\n";

static void test_whole(void **st)
{
    (void)st;
    rec r = {0};
    feed_split(STREAM, sizeof STREAM - 1, NULL, 0, &r, 1 << 20);
    assert_string_equal(r.out.data, WANT);
    assert_int_equal(r.count, 5);
    llmux_buf_free(&r.out);
}

static void test_every_split(void **st)
{
    (void)st;
    size_t n = sizeof STREAM - 1;
    for (size_t i = 0; i <= n; i++) {
        rec r = {0};
        size_t cut[1] = {i};
        feed_split(STREAM, n, cut, 1, &r, 1 << 20);
        if (strcmp(r.out.data ? r.out.data : "", WANT) != 0) {
            print_error("split at %zu gave:\n%s\n", i, r.out.data ? r.out.data : "");
            fail();
        }
        llmux_buf_free(&r.out);
    }
    /* two cuts, every pair */
    for (size_t i = 0; i <= n; i++)
        for (size_t j = i; j <= n; j++) {
            rec r = {0};
            size_t cuts[2] = {i, j};
            feed_split(STREAM, n, cuts, 2, &r, 1 << 20);
            assert_string_equal(r.out.data, WANT);
            llmux_buf_free(&r.out);
        }
    /* byte by byte */
    size_t *cuts = malloc(n * sizeof *cuts);
    for (size_t i = 0; i < n; i++)
        cuts[i] = i + 1;
    rec r = {0};
    feed_split(STREAM, n, cuts, (int)n - 1, &r, 1 << 20);
    assert_string_equal(r.out.data, WANT);
    llmux_buf_free(&r.out);
    free(cuts);
}

static void test_crlf_split(void **st)
{
    (void)st;
    /* CR at the end of one read, LF at the start of the next: one line end,
     * so no spurious blank line dispatches the event early. */
    llmux_sse p = {0};
    rec r = {0};
    assert_int_equal(llmux_sse_feed(&p, "data: a\r", 8, 1024, on_event, &r), 0);
    assert_int_equal(llmux_sse_feed(&p, "\ndata: b\r", 9, 1024, on_event, &r), 0);
    assert_int_equal(r.count, 0);
    assert_int_equal(llmux_sse_feed(&p, "\n\r", 2, 1024, on_event, &r), 0);
    assert_int_equal(r.count, 1);
    assert_string_equal(r.out.data, "|a\nb\n");
    /* the LF after that last CR must not count as another blank line */
    assert_int_equal(llmux_sse_feed(&p, "\ndata: c\n\n", 10, 1024, on_event, &r), 0);
    assert_int_equal(r.count, 2);
    assert_string_equal(r.out.data, "|a\nb\n|c\n");
    llmux_sse_free(&p);
    llmux_buf_free(&r.out);
}

static void test_comments_and_empty(void **st)
{
    (void)st;
    llmux_sse p = {0};
    rec r = {0};
    const char *s = ": keepalive\n\n:\n\nevent: e\n\nid: 1\n\n";
    assert_int_equal(llmux_sse_feed(&p, s, strlen(s), 1024, on_event, &r), 0);
    assert_int_equal(r.count, 0);
    /* the event name was reset by the blank line */
    s = "data: x\n\n";
    assert_int_equal(llmux_sse_feed(&p, s, strlen(s), 1024, on_event, &r), 0);
    assert_string_equal(r.out.data, "|x\n");
    /* "data" without colon and "data:" give empty data lines */
    llmux_buf_reset(&r.out);
    s = "data\n\ndata:\ndata:\n\n";
    assert_int_equal(llmux_sse_feed(&p, s, strlen(s), 1024, on_event, &r), 0);
    assert_string_equal(r.out.data, "|\n|\n\n");
    /* only one leading space is stripped; "data :" is a different field */
    llmux_buf_reset(&r.out);
    s = "data:   x \ndata : y\n\n";
    assert_int_equal(llmux_sse_feed(&p, s, strlen(s), 1024, on_event, &r), 0);
    assert_string_equal(r.out.data, "|  x \n");
    llmux_sse_free(&p);
    llmux_buf_free(&r.out);
}

static void test_limit(void **st)
{
    (void)st;
    llmux_sse p = {0};
    rec r = {0};
    char big[200];
    memset(big, 'x', sizeof big);
    /* an incomplete line longer than the bound */
    assert_int_equal(llmux_sse_feed(&p, "data: ", 6, 100, on_event, &r), 0);
    assert_int_equal(llmux_sse_feed(&p, big, 90, 100, on_event, &r), 0);
    assert_int_equal(llmux_sse_feed(&p, big, 20, 100, on_event, &r), LLMUX_ELIMIT);
    llmux_sse_free(&p);
    /* data accumulated over lines beyond the bound */
    memset(&p, 0, sizeof p);
    for (int k = 0; k < 9; k++)
        assert_int_equal(llmux_sse_feed(&p, "data: 0123456789\n", 17, 100, on_event, &r), 0);
    assert_int_equal(llmux_sse_feed(&p, "data: 0123456789\n", 17, 100, on_event, &r), LLMUX_ELIMIT);
    llmux_sse_free(&p);
    /* a single huge event inside one read is bounded too */
    memset(&p, 0, sizeof p);
    llmux_buf s = {0};
    llmux_buf_append_str(&s, "data: ");
    llmux_buf_append(&s, big, sizeof big);
    llmux_buf_append_str(&s, "\n\n");
    assert_int_equal(llmux_sse_feed(&p, s.data, s.len, 100, on_event, &r), LLMUX_ELIMIT);
    llmux_sse_free(&p);
    /* exactly at the bound is fine */
    memset(&p, 0, sizeof p);
    llmux_buf_reset(&s);
    llmux_buf_append_str(&s, "data: ");
    llmux_buf_append(&s, big, 100);
    llmux_buf_append_str(&s, "\n\n");
    assert_int_equal(llmux_sse_feed(&p, s.data, s.len, 100, on_event, &r), 0);
    assert_int_equal(r.count, 1);
    llmux_sse_free(&p);
    llmux_buf_free(&s);
    llmux_buf_free(&r.out);
}

static void test_callback_stop(void **st)
{
    (void)st;
    llmux_sse p = {0};
    rec r = {0};
    r.stop_after = 2;
    const char *s = "data: 1\n\ndata: 2\n\ndata: 3\n\n";
    assert_int_equal(llmux_sse_feed(&p, s, strlen(s), 1024, on_event, &r), 7);
    assert_int_equal(r.count, 2);
    assert_string_equal(r.out.data, "|1\n|2\n");
    llmux_sse_free(&p);
    llmux_buf_free(&r.out);
}

static void test_pending(void **st)
{
    (void)st;
    /* A plain JSON error body served as text/event-stream yields no event but
     * stays inspectable. */
    llmux_sse p = {0};
    rec r = {0};
    const char *body = "{\n  \"error\": {\n    \"code\": 429\n  }\n}";
    const char *d;
    size_t n;
    assert_int_equal(llmux_sse_pending(&p, &d, &n), 0);
    assert_int_equal(n, 0);
    assert_string_equal(d, "");
    assert_int_equal(llmux_sse_feed(&p, body, 10, 1024, on_event, &r), 0);
    assert_int_equal(llmux_sse_feed(&p, body + 10, strlen(body) - 10, 1024, on_event, &r), 0);
    assert_int_equal(r.count, 0);
    assert_int_equal(llmux_sse_pending(&p, &d, &n), 0);
    assert_int_equal(n, strlen(body));
    assert_string_equal(d, body);
    llmux_sse_free(&p);
    /* after a dispatched event only the following bytes are pending */
    memset(&p, 0, sizeof p);
    const char *s = "data: a\n\ndata: b\nda";
    assert_int_equal(llmux_sse_feed(&p, s, strlen(s), 1024, on_event, &r), 0);
    assert_int_equal(r.count, 1);
    assert_int_equal(llmux_sse_pending(&p, &d, &n), 0);
    assert_string_equal(d, "data: b\nda");
    assert_int_equal(llmux_sse_feed(&p, "ta: c\n\n", 7, 1024, on_event, &r), 0);
    assert_string_equal(r.out.data, "|a\n|b\nc\n");
    assert_int_equal(llmux_sse_pending(&p, &d, &n), 0);
    assert_int_equal(n, 0);
    llmux_sse_free(&p);
    llmux_buf_free(&r.out);
}

static void test_many_events_one_read(void **st)
{
    (void)st;
    llmux_buf s = {0}, want = {0};
    for (int k = 0; k < 1000; k++) {
        llmux_buf_printf(&s, "event: e%d\ndata: {\"k\":%d}\n\n", k % 3, k);
        llmux_buf_printf(&want, "e%d|{\"k\":%d}\n", k % 3, k);
    }
    rec r = {0};
    feed_split(s.data, s.len, NULL, 0, &r, 1 << 20);
    assert_int_equal(r.count, 1000);
    assert_string_equal(r.out.data, want.data);
    /* and in 7-byte reads */
    llmux_buf_free(&r.out);
    memset(&r, 0, sizeof r);
    size_t ncut = s.len / 7;
    size_t *cuts = malloc((ncut + 1) * sizeof *cuts);
    for (size_t i = 0; i < ncut; i++)
        cuts[i] = (i + 1) * 7;
    feed_split(s.data, s.len, cuts, (int)ncut, &r, 1 << 20);
    assert_string_equal(r.out.data, want.data);
    free(cuts);
    llmux_buf_free(&r.out);
    llmux_buf_free(&s);
    llmux_buf_free(&want);
}

/* Mixed line endings (LF, CR, CRLF chosen per line) in one read and in random
 * reads give the events of the same stream written with LF only. */
static void test_mixed_line_endings(void **st)
{
    (void)st;
    unsigned seed = 12345;
    for (int round = 0; round < 200; round++) {
        llmux_buf s = {0}, want = {0};
        for (int k = 0; k < 20; k++) {
            static const char *const eol[] = {"\n", "\r", "\r\n"};
            seed = seed * 1103515245u + 12345u;
            const char *e1 = eol[(seed >> 16) % 3];
            seed = seed * 1103515245u + 12345u;
            const char *e2 = eol[(seed >> 16) % 3];
            /* CR then LF as separate terminators would read as CRLF: avoid "\r" + "\n..." */
            if (!strcmp(e1, "\r") && e2[0] == '\n')
                e2 = "\r";
            llmux_buf_printf(&s, "data: {\"k\":%d}%s%s", k, e1, e2);
            llmux_buf_printf(&want, "|{\"k\":%d}\n", k);
        }
        rec r = {0};
        feed_split(s.data, s.len, NULL, 0, &r, 1 << 20);
        assert_string_equal(r.out.data, want.data);
        llmux_buf_free(&r.out);
        memset(&r, 0, sizeof r);
        size_t cuts[6];
        for (int i = 0; i < 6; i++) {
            seed = seed * 1103515245u + 12345u;
            cuts[i] = (seed >> 8) % (s.len + 1);
        }
        for (int i = 1; i < 6; i++) /* sort */
            for (int j = i; j > 0 && cuts[j - 1] > cuts[j]; j--) {
                size_t t = cuts[j];
                cuts[j] = cuts[j - 1];
                cuts[j - 1] = t;
            }
        feed_split(s.data, s.len, cuts, 6, &r, 1 << 20);
        assert_string_equal(r.out.data, want.data);
        llmux_buf_free(&r.out);
        llmux_buf_free(&s);
        llmux_buf_free(&want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole),         cmocka_unit_test(test_every_split),
        cmocka_unit_test(test_crlf_split),    cmocka_unit_test(test_comments_and_empty),
        cmocka_unit_test(test_limit),         cmocka_unit_test(test_callback_stop),
        cmocka_unit_test(test_pending),       cmocka_unit_test(test_many_events_one_read),
        cmocka_unit_test(test_mixed_line_endings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
