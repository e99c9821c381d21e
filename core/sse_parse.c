/* Incremental SSE decoder (WHATWG "event stream interpretation").
 *
 * State kept in the SDK's llmux_sse between reads:
 *   pending  - the raw bytes of the current event block (everything since
 *              the last blank line) that arrived in earlier reads; its part
 *              after the last CR/LF is the incomplete line. Keeping the whole
 *              block (not just the incomplete line) is what lets
 *              llmux_sse_pending show a body that never formed an event.
 *   event    - the event name set by "event:".
 *   data     - data lines of the event in progress, joined by "\n".
 *   has_data - flags: SSE_F_DATA (a data line was seen), SSE_F_CR (the
 *              previous read ended in CR, so a leading LF is not a new line).
 *
 * An event whose lines all lie within one read is dispatched straight from
 * the caller's bytes: nothing is copied unless it has several data lines.
 */
#include "sse_parse.h"

#include <string.h>

#include "buf.h"

#define SSE_F_DATA 1
#define SSE_F_CR 2

typedef struct {
    llmux_sse *p;
    size_t max;
    /* The single data line of the event in progress, not yet copied. */
    const char *dptr;
    size_t dlen;
    int direct;
} feed_state;

static size_t data_size(const feed_state *s)
{
    return s->direct ? s->dlen : s->p->data.len;
}

static int materialize(feed_state *s)
{
    if (!s->direct)
        return 0;
    s->direct = 0;
    return llmux_buf_append(&s->p->data, s->dptr, s->dlen);
}

static void reset_event(feed_state *s)
{
    llmux_buf_reset(&s->p->data);
    llmux_buf_reset(&s->p->event);
    s->p->has_data &= ~SSE_F_DATA;
    s->direct = 0;
}

/* Handles one complete line (terminator excluded). Returns 0, the callback's
 * non-zero value, or an LLMUX_E* code. *blank is set for an empty line. */
static int sse_line(feed_state *s, const char *l, size_t n, llmux_sse_cb cb, void *ud, int *blank)
{
    llmux_sse *p = s->p;
    *blank = n == 0;
    if (n == 0) {
        int rc = 0;
        if (p->has_data & SSE_F_DATA) {
            const char *d = s->direct ? s->dptr : (p->data.data ? p->data.data : "");
            const char *ev = p->event.data ? p->event.data : "";
            rc = cb(ud, ev, p->event.len, d, data_size(s));
        }
        reset_event(s);
        return rc;
    }
    if (l[0] == ':')
        return 0; /* comment */
    const char *colon = memchr(l, ':', n);
    size_t flen = colon ? (size_t)(colon - l) : n;
    const char *v = colon ? colon + 1 : l + n;
    size_t vlen = (size_t)(l + n - v);
    if (vlen && *v == ' ') {
        v++;
        vlen--;
    }
    if (flen == 4 && memcmp(l, "data", 4) == 0) {
        if (!(p->has_data & SSE_F_DATA) && p->data.len == 0) {
            s->direct = 1;
            s->dptr = v;
            s->dlen = vlen;
        } else if (materialize(s) || llmux_buf_append_char(&p->data, '\n') ||
                   llmux_buf_append(&p->data, v, vlen)) {
            return LLMUX_ENOMEM;
        }
        p->has_data |= SSE_F_DATA;
        if (data_size(s) > s->max)
            return LLMUX_ELIMIT;
    } else if (flen == 5 && memcmp(l, "event", 5) == 0) {
        if (vlen > s->max)
            return LLMUX_ELIMIT;
        llmux_buf_reset(&p->event);
        if (llmux_buf_append(&p->event, v, vlen))
            return LLMUX_ENOMEM;
    }
    /* id, retry and unknown fields are ignored */
    return 0;
}

/* Length of the incomplete line at the end of the pending block. */
static size_t pending_tail(const llmux_buf *b)
{
    if (!b->len)
        return 0;
    const char *lf = memrchr(b->data, '\n', b->len);
    const char *from = lf ? lf + 1 : b->data;
    const char *cr = memrchr(from, '\r', (size_t)(b->data + b->len - from));
    if (cr)
        from = cr + 1;
    return (size_t)(b->data + b->len - from);
}

int llmux_sse_feed(llmux_sse *p, const char *data, size_t n, size_t max_event, llmux_sse_cb cb,
                   void *ud)
{
    feed_state s = {p, max_event, NULL, 0, 0};
    /* The raw block may hold the data lines plus their field names and other
     * lines; allow it twice the event bound before refusing. */
    size_t raw_max = max_event > ((size_t)-1) / 2 ? (size_t)-1 : max_event * 2;
    size_t pos = 0, block = 0; /* block: first input byte not yet in pending */
    int rc = 0;

    if (n == 0)
        return 0; /* keep SSE_F_CR for the next non-empty read */
    if ((p->has_data & SSE_F_CR) && data[0] == '\n') {
        pos = 1;
        if (p->pending.len == 0)
            block = 1;
    }
    p->has_data &= ~SSE_F_CR;
    size_t tail = pending_tail(&p->pending);

    /* Lines end at CR or LF. LFs are found with memchr; the next CR is
     * looked up once and reused until passed (none at all: one search). */
    size_t cr_next = 0;
    int cr_valid = 0;
    while (pos < n) {
        if (!cr_valid || cr_next < pos) {
            const char *r = memchr(data + pos, '\r', n - pos);
            cr_next = r ? (size_t)(r - data) : n;
            cr_valid = 1;
        }
        const char *lf = memchr(data + pos, '\n', cr_next - pos);
        size_t eol = lf ? (size_t)(lf - data) : cr_next;
        if (eol == n)
            break;
        const char *line = data + pos;
        size_t llen = eol - pos;
        if (tail) {
            /* The line began in an earlier read: complete it in pending. */
            if (tail + llen + data_size(&s) > max_event || p->pending.len + (eol - block) > raw_max)
                return LLMUX_ELIMIT;
            if (llmux_buf_append(&p->pending, data + block, eol - block))
                return LLMUX_ENOMEM;
            block = eol;
            line = p->pending.data + p->pending.len - (tail + llen);
            llen += tail;
            tail = 0;
        }
        size_t next = eol + 1;
        if (data[eol] == '\r') {
            if (next < n && data[next] == '\n')
                next++;
            else if (next == n)
                p->has_data |= SSE_F_CR;
        }
        int blank;
        rc = sse_line(&s, line, llen, cb, ud, &blank);
        if (blank) {
            llmux_buf_reset(&p->pending);
            block = next;
        }
        if (rc) {
            if (!blank) { /* an error mid-event: drop the event */
                reset_event(&s);
                llmux_buf_reset(&p->pending);
            }
            return rc;
        }
        pos = next;
    }

    /* Keep what is left of the block for the next read. */
    if (tail + (n - pos) + data_size(&s) > max_event)
        return LLMUX_ELIMIT;
    if (block < n && p->pending.len + (n - block) > raw_max)
        return LLMUX_ELIMIT;
    if (materialize(&s))
        return LLMUX_ENOMEM;
    if (block < n && llmux_buf_append(&p->pending, data + block, n - block))
        return LLMUX_ENOMEM;
    return 0;
}

int llmux_sse_pending(const llmux_sse *p, const char **data, size_t *len)
{
    *data = p->pending.data ? p->pending.data : "";
    *len = p->pending.len;
    return 0;
}

void llmux_sse_free(llmux_sse *p)
{
    llmux_buf_free(&p->pending);
    llmux_buf_free(&p->event);
    llmux_buf_free(&p->data);
    p->has_data = 0;
}
