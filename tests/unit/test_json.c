/* Unit tests for core/json.c: strict validation on top of jsmn, limits, readers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <pthread.h>
#include <time.h>

#include "json.h"

/* jsmn itself, as the oracle the single-pass tokenizer must agree with. */
#define JSMN_STATIC
#include <jsmn.h>

static const llmux_json_limits LIM = {1000, 16};

static int parse_rc(const char *s, size_t n, const char **err, size_t *off)
{
    llmux_json d;
    int rc = llmux_json_parse(s, n, &LIM, &d, err, off);
    if (rc == 0)
        llmux_json_release(&d);
    return rc;
}

static void ok(const char *s)
{
    const char *err = NULL;
    size_t off = 0;
    int rc = parse_rc(s, strlen(s), &err, &off);
    if (rc)
        print_error("unexpected failure on %s: %s at %zu\n", s, err ? err : "?", off);
    assert_int_equal(rc, 0);
}

static void bad_n(const char *s, size_t n, const char *want_err)
{
    const char *err = NULL;
    size_t off = 0;
    int rc = parse_rc(s, n, &err, &off);
    if (rc != LLMUX_EPROTO)
        print_error("accepted (rc=%d) invalid %.*s\n", rc, (int)n, s);
    assert_int_equal(rc, LLMUX_EPROTO);
    assert_non_null(err);
    assert_true(strncmp(err, "invalid JSON:", 13) == 0);
    assert_true(off <= n);
    if (want_err && !strstr(err, want_err)) {
        print_error("%s: got error '%s', want '%s'\n", s, err, want_err);
        fail();
    }
}
static void bad(const char *s, const char *want) { bad_n(s, strlen(s), want); }

static void test_valid_docs(void **st)
{
    (void)st;
    ok("{}");
    ok("[]");
    ok("  {\"a\" : 1 , \"b\":[true,false,null, -0.5e+3, 0, 1E2, \"x\"]}\n\t ");
    ok("\"just a string\"");
    ok("42");
    ok("-0");
    ok("null");
    ok("[[[[]]]]");
    ok("{\"k\":{\"k\":{\"k\":[1,{\"z\":\"\"}]}}}");
    ok("\"esc \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\ud83d\\ude00\"");
    ok("\"utf8 \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \x7f\"");
    ok("{\"\":\"\"}");
}

static void test_token_layout(void **st)
{
    (void)st;
    const char *s = "{\"a\":[1,2],\"b\":\"x\"}";
    llmux_json d;
    assert_int_equal(llmux_json_parse(s, strlen(s), &LIM, &d, NULL, NULL), 0);
    assert_int_equal(d.ntok, 7);
    assert_int_equal(d.tok[0].type, LLMUX_JSON_OBJECT);
    assert_int_equal(d.tok[0].size, 2);
    assert_int_equal(d.tok[1].type, LLMUX_JSON_STRING);
    assert_int_equal(d.tok[2].type, LLMUX_JSON_ARRAY);
    assert_int_equal(d.tok[2].size, 2);
    assert_int_equal(d.tok[6].type, LLMUX_JSON_STRING);
    assert_int_equal(d.tok[6].start, 16);
    assert_int_equal(d.tok[6].end, 17);
    llmux_json_release(&d);
    assert_null(d.tok);
}

static void test_invalid_structure(void **st)
{
    (void)st;
    bad("", "empty");
    bad("   ", "empty");
    bad("{\"a\" 1}", "':'");
    bad("[1 2]", "','");
    bad("{\"a\":1 \"b\":2}", "','");
    bad("{a:1}", "key must be a string");
    bad("{1:1}", "key must be a string");
    bad("{\"a\":1,}", "key must be a string");
    bad("[1,]", "unexpected");
    bad("[,1]", "unexpected");
    bad("{\"a\"}", "':'");
    bad("{\"a\":}", "unexpected");
    bad("{\"a\":1:2}", "','");
    bad("[1}", "','");
    bad("{\"a\":1]", "','");
    bad("[1", "truncated");
    bad("{\"a\":", "truncated");
    bad("{}{}", "trailing");
    bad("1 2", "trailing");
    bad("{} x", "trailing");
    bad("[1],", "trailing");
    bad("[[[[[", "truncated");
    bad("]", "unexpected");
    bad("[undefined]", "unexpected");
    bad("[nul]", "unexpected");
    bad("[truex]", "','");
    bad("[True]", "unexpected");
    bad("'a'", "unexpected");
    bad_n("[1]\0", 4, "trailing");
    bad_n("\0", 1, "unexpected");
}

static void test_invalid_numbers(void **st)
{
    (void)st;
    const char *nums[] = {"01", "-", "+1", "1.", ".5", "1e", "1e+", "-01", "0x10", "1.e5",
                          "--1", "NaN", "Infinity", "-Infinity", "1_000", "[1.5.5]", "[00]", "[-]"};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
        bad(nums[i], NULL);
    ok("[0,-0,0.0,1e5,1E-5,1e+5,-1.25e-10,123456789012345678901234567890]");
}

static void test_invalid_strings(void **st)
{
    (void)st;
    bad("\"abc", "unterminated");
    bad("\"abc\\", "unterminated");
    bad("\"\\x\"", "bad escape");
    bad("\"\\a\"", "bad escape");
    bad("\"\\'\"", "bad escape");
    bad("\"\\u12\"", "\\u escape");
    bad("\"\\u12g4\"", "\\u escape");
    bad("\"\\ud800\"", "surrogate");
    bad("\"\\udc00\"", "surrogate");
    bad("\"\\ud800\\u0041\"", "surrogate");
    bad("\"\\ud800x\"", "surrogate");
    bad("\"\\ude00\\ud83d\"", "surrogate");
    bad("\"tab\there\"", "control");
    bad("\"nl\nhere\"", "control");
    bad_n("\"nul\0\"", 6, "control");
    bad("\"\x1f\"", "control");
    bad("\"\xc0\xaf\"", "UTF-8");
    bad("\"\xe0\x80\xaf\"", "UTF-8");
    bad("\"\xed\xa0\x80\"", "UTF-8");
    bad("\"\xf4\x90\x80\x80\"", "UTF-8");
    bad("\"\xff\"", "UTF-8");
    bad("\"\x80\"", "UTF-8");
    bad("\"\xc3\"", "UTF-8");
    bad("{\"\xc3\":1}", "UTF-8");
}

static void test_error_offset(void **st)
{
    (void)st;
    const char *err;
    size_t off;
    assert_int_equal(parse_rc("[1, 2, \"\\q\"]", 12, &err, &off), LLMUX_EPROTO);
    assert_string_equal(err, "invalid JSON: bad escape in string");
    assert_int_equal(off, 8);
    assert_int_equal(parse_rc("{\"a\" 1}", 7, &err, &off), LLMUX_EPROTO);
    assert_int_equal(off, 5);
}

static void test_limits(void **st)
{
    (void)st;
    llmux_json d;
    llmux_json_limits lim = {5, 3};
    assert_int_equal(llmux_json_parse("[1,2,3,4]", 9, &lim, &d, NULL, NULL), 0);
    assert_int_equal(d.ntok, 5);
    llmux_json_release(&d);
    assert_int_equal(llmux_json_parse("[1,2,3,4,5]", 11, &lim, &d, NULL, NULL), LLMUX_ELIMIT);
    assert_int_equal(llmux_json_parse("{\"a\":1,\"b\":2,\"c\":3}", 19, &lim, &d, NULL, NULL),
                     LLMUX_ELIMIT);
    assert_int_equal(llmux_json_parse("[[[1]]]", 7, &lim, &d, NULL, NULL), 0);
    llmux_json_release(&d);
    const char *err = NULL;
    assert_int_equal(llmux_json_parse("[[[[1]]]]", 9, &lim, &d, &err, NULL), LLMUX_ELIMIT);
    assert_non_null(err);
    assert_int_equal(llmux_json_parse("{\"a\":{\"b\":{\"c\":{}}}}", 20, &lim, &d, NULL, NULL),
                     LLMUX_ELIMIT);
    /* a deep document under a big depth limit: iterative, no stack overflow */
    size_t n = 200000;
    char *deep = malloc(2 * n);
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    llmux_json_limits big = {1 << 20, 1 << 20};
    assert_int_equal(llmux_json_parse(deep, 2 * n, &big, &d, NULL, NULL), 0);
    assert_int_equal(d.ntok, (int)n);
    assert_int_equal(llmux_json_skip(&d, 0), (int)n);
    llmux_json_release(&d);
    big.max_depth = 1000;
    assert_int_equal(llmux_json_parse(deep, 2 * n, &big, &d, NULL, NULL), LLMUX_ELIMIT);
    free(deep);
    /* NULL limits fall back to defaults */
    assert_int_equal(llmux_json_parse("[1]", 3, NULL, &d, NULL, NULL), 0);
    llmux_json_release(&d);
}

static llmux_json P(const char *s)
{
    llmux_json d;
    const char *err = NULL;
    size_t off = 0;
    int rc = llmux_json_parse(s, strlen(s), &LIM, &d, &err, &off);
    if (rc)
        print_error("%s at %zu\n", err, off);
    assert_int_equal(rc, 0);
    return d;
}

static void test_skip_get_at(void **st)
{
    (void)st;
    llmux_json d = P("{\"a\":{\"x\":[1,[2,3],{\"y\":4}]},\"b\":2,\"c\":[],\"d\":\"s\",\"e\\u0041\":5,\"q\\\"\":6}");
    assert_int_equal(llmux_json_skip(&d, 0), d.ntok);
    int a = llmux_json_get(&d, 0, "a");
    assert_int_equal(a, 2);
    assert_int_equal(d.tok[a].type, LLMUX_JSON_OBJECT);
    int b = llmux_json_get(&d, 0, "b");
    assert_int_equal(llmux_json_skip(&d, a), b - 1);
    int64_t v;
    assert_int_equal(llmux_json_int(&d, b, &v), 0);
    assert_int_equal(v, 2);
    int x = llmux_json_get(&d, a, "x");
    assert_int_equal(llmux_json_at(&d, x, 0), x + 1);
    int inner = llmux_json_at(&d, x, 1);
    assert_int_equal(d.tok[inner].type, LLMUX_JSON_ARRAY);
    int third = llmux_json_at(&d, x, 2);
    assert_int_equal(llmux_json_int(&d, llmux_json_get(&d, third, "y"), &v), 0);
    assert_int_equal(v, 4);
    assert_int_equal(llmux_json_at(&d, x, 3), -1);
    assert_int_equal(llmux_json_at(&d, x, -1), -1);
    assert_int_equal(llmux_json_at(&d, a, 0), -1);
    int c = llmux_json_get(&d, 0, "c");
    assert_int_equal(d.tok[c].size, 0);
    assert_int_equal(llmux_json_at(&d, c, 0), -1);
    assert_int_equal(llmux_json_get(&d, 0, "zz"), -1);
    assert_int_equal(llmux_json_get(&d, 0, "y"), -1); /* nested keys are not top-level */
    assert_int_equal(llmux_json_get(&d, b, "a"), -1);
    assert_int_equal(llmux_json_get(&d, -1, "a"), -1);
    assert_int_equal(llmux_json_get(&d, 999, "a"), -1);
    /* escaped keys compare after unescaping */
    assert_int_equal(llmux_json_int(&d, llmux_json_get(&d, 0, "eA"), &v), 0);
    assert_int_equal(v, 5);
    assert_int_equal(llmux_json_int(&d, llmux_json_get(&d, 0, "q\""), &v), 0);
    assert_int_equal(v, 6);
    int ds = llmux_json_get(&d, 0, "d");
    assert_true(llmux_json_eq(&d, ds, "s"));
    assert_false(llmux_json_eq(&d, ds, "s2"));
    assert_false(llmux_json_eq(&d, ds, ""));
    assert_false(llmux_json_eq(&d, a, "{"));
    size_t len;
    const char *raw = llmux_json_raw(&d, a, &len);
    assert_int_equal(len, strlen("{\"x\":[1,[2,3],{\"y\":4}]}"));
    assert_memory_equal(raw, "{\"x\":[1,[2,3],{\"y\":4}]}", len);
    llmux_buf out = {0};
    assert_int_equal(llmux_json_append_raw(&out, &d, ds), 0);
    assert_int_equal(llmux_json_append_raw(&out, &d, a), 0);
    assert_string_equal(out.data, "\"s\"{\"x\":[1,[2,3],{\"y\":4}]}");
    llmux_buf_free(&out);
    llmux_json_release(&d);
}

static void test_numbers(void **st)
{
    (void)st;
    llmux_json d = P("[0,-5,9223372036854775807,-9223372036854775808,9223372036854775808,"
                     "-9223372036854775809,1.0,1.5,2e3,1e19,-2.5e1,1E-2,0.1,true,\"7\",null,-0,"
                     "100000000000000000000000000000.0]");
    int64_t v;
    double dv;
    struct { int ok; int64_t v; } want[] = {
        {1, 0}, {1, -5}, {1, INT64_MAX}, {1, INT64_MIN}, {0, 0}, {0, 0}, {1, 1}, {0, 0}, {1, 2000},
        {0, 0}, {1, -25}, {0, 0}, {0, 0}, {0, 0}, {0, 0}, {0, 0}, {1, 0}, {0, 0}};
    for (int k = 0; k < (int)(sizeof want / sizeof want[0]); k++) {
        int i = llmux_json_at(&d, 0, k);
        assert_true(i > 0);
        v = 12345;
        int rc = llmux_json_int(&d, i, &v);
        if (rc != (want[k].ok ? 0 : -1))
            print_error("element %d\n", k);
        assert_int_equal(rc, want[k].ok ? 0 : -1);
        if (want[k].ok)
            assert_true(v == want[k].v);
    }
    assert_int_equal(llmux_json_double(&d, llmux_json_at(&d, 0, 7), &dv), 0);
    assert_true(dv == 1.5);
    assert_int_equal(llmux_json_double(&d, llmux_json_at(&d, 0, 10), &dv), 0);
    assert_true(dv == -25.0);
    assert_int_equal(llmux_json_double(&d, llmux_json_at(&d, 0, 11), &dv), 0);
    assert_true(dv == 0.01);
    assert_int_equal(llmux_json_double(&d, llmux_json_at(&d, 0, 2), &dv), 0);
    assert_true(dv == 9223372036854775807.0);
    assert_int_equal(llmux_json_double(&d, llmux_json_at(&d, 0, 13), &dv), -1);
    assert_int_equal(llmux_json_double(&d, llmux_json_at(&d, 0, 14), &dv), -1);
    assert_int_equal(llmux_json_double(&d, llmux_json_at(&d, 0, 15), &dv), -1);
    assert_int_equal(llmux_json_bool(&d, llmux_json_at(&d, 0, 13)), 1);
    assert_int_equal(llmux_json_bool(&d, llmux_json_at(&d, 0, 0)), -1);
    assert_int_equal(llmux_json_bool(&d, llmux_json_at(&d, 0, 15)), -1);
    assert_true(llmux_json_is_null(&d, llmux_json_at(&d, 0, 15)));
    assert_false(llmux_json_is_null(&d, llmux_json_at(&d, 0, 14)));
    llmux_json_release(&d);

    d = P("[false, 1e400, 1e-400, 0.30000000000000004]");
    assert_int_equal(llmux_json_bool(&d, 1), 0);
    assert_int_equal(llmux_json_double(&d, 2, &dv), -1); /* overflow */
    assert_int_equal(llmux_json_int(&d, 2, &v), -1);
    assert_int_equal(llmux_json_double(&d, 4, &dv), 0);
    assert_true(dv == 0.1 + 0.2);
    llmux_json_release(&d);

    /* a very long number goes through the heap copy */
    char longnum[400];
    strcpy(longnum, "[0.");
    memset(longnum + 3, '1', 300);
    strcpy(longnum + 303, "]");
    d = P(longnum);
    assert_int_equal(llmux_json_double(&d, 1, &dv), 0);
    assert_true(dv > 0.111 && dv < 0.112);
    llmux_json_release(&d);
}

static void test_unescape(void **st)
{
    (void)st;
    llmux_json d = P("[\"a\\\"b\\\\c\\/d\\be\\ff\\ng\\rh\\ti\", \"\\u0041\\u00e9\\u20ac\\ud83d\\ude00\\u0000\","
                     " \"plain \xc3\xa9\", \"\", 5]");
    llmux_buf b = {0};
    assert_int_equal(llmux_json_unescape(&d, 1, &b), 0);
    assert_string_equal(b.data, "a\"b\\c/d\be\ff\ng\rh\ti");
    llmux_buf_reset(&b);
    assert_int_equal(llmux_json_unescape(&d, 2, &b), 0);
    assert_int_equal(b.len, 1 + 2 + 3 + 4 + 1);
    assert_memory_equal(b.data, "A\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\0", 11);
    llmux_buf_reset(&b);
    assert_int_equal(llmux_json_unescape(&d, 3, &b), 0);
    assert_string_equal(b.data, "plain \xc3\xa9");
    llmux_buf_reset(&b);
    assert_int_equal(llmux_json_unescape(&d, 4, &b), 0);
    assert_int_equal(b.len, 0);
    assert_int_equal(llmux_json_unescape(&d, 5, &b), LLMUX_EINVAL);
    assert_int_equal(llmux_json_unescape(&d, 0, &b), LLMUX_EINVAL);
    llmux_buf_free(&b);
    llmux_json_release(&d);
}

static void test_skip_flat(void **st)
{
    (void)st;
    llmux_json d = P("[{\"a\":[1,2,{\"b\":[]}]},3,[[],[4]],\"x\"]");
    int i = 1, k = 0;
    int expect[] = {1, 9, 10, 14};
    while (i < d.ntok) {
        assert_int_equal(i, expect[k]);
        assert_int_equal(llmux_json_at(&d, 0, k), i);
        i = llmux_json_skip(&d, i);
        k++;
    }
    assert_int_equal(k, 4);
    assert_int_equal(llmux_json_skip(&d, d.ntok), d.ntok);
    assert_int_equal(llmux_json_skip(&d, -3), d.ntok);
    llmux_json_release(&d);
}

/* ---- jsmn agreement, token cache, speed --------------------------------- */

static void same_as_jsmn(const char *s, size_t n)
{
    llmux_json_limits lim = {1 << 20, 128};
    llmux_json d;
    const char *err = NULL;
    size_t off = 0;
    int rc = llmux_json_parse(s, n, &lim, &d, &err, &off);
    if (rc) {
        print_error("rejected %.*s: %s at %zu\n", (int)n, s, err ? err : "?", off);
        fail();
    }
    jsmn_parser p;
    jsmn_init(&p);
    int want = jsmn_parse(&p, s, n, NULL, 0);
    assert_int_equal(want, d.ntok);
    jsmntok_t *t = malloc((size_t)(want > 0 ? want : 1) * sizeof *t);
    assert_non_null(t);
    jsmn_init(&p);
    assert_int_equal(jsmn_parse(&p, s, n, t, (unsigned)want), want);
    for (int i = 0; i < want; i++) {
        if ((int)t[i].type != (int)d.tok[i].type || t[i].start != d.tok[i].start ||
            t[i].end != d.tok[i].end || t[i].size != d.tok[i].size) {
            print_error("token %d of %.*s: jsmn %d/%d/%d/%d, ours %d/%d/%d/%d\n", i, (int)n, s,
                        (int)t[i].type, t[i].start, t[i].end, t[i].size, (int)d.tok[i].type,
                        d.tok[i].start, d.tok[i].end, d.tok[i].size);
            fail();
        }
    }
    free(t);
    llmux_json_release(&d);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static unsigned rnd(unsigned n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (unsigned)(rng_state % n);
}

typedef struct {
    char *p;
    size_t n, cap;
} sbuf;
static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}
static void sb_puts(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }
static void ws(sbuf *b)
{
    static const char *const w[] = {"", "", "", " ", "\n", "\t ", "\r\n  "};
    sb_puts(b, w[rnd(7)]);
}
static void gen_string(sbuf *b)
{
    static const char *const parts[] = {"a", "hello world ", "\\\"", "\\\\", "\\/", "\\n", "\\u00e9",
                                        "\\ud83d\\ude00", "\xc3\xa9", "\xe2\x82\xac",
                                        "\xf0\x9f\x98\x80", "0123456789abcdef", "{[:,]}", "\x7f"};
    sb_puts(b, "\"");
    for (unsigned k = rnd(6); k > 0; k--)
        sb_puts(b, parts[rnd(sizeof parts / sizeof parts[0])]);
    sb_puts(b, "\"");
}
static void gen_value(sbuf *b, int depth)
{
    static const char *const prims[] = {"0", "-0", "12", "-3.25", "1e10", "2E-3", "0.5e+7",
                                        "true", "false", "null", "123456789012345678901234"};
    unsigned kind = depth > 6 ? rnd(2) : rnd(4);
    if (kind == 0) {
        sb_puts(b, prims[rnd(sizeof prims / sizeof prims[0])]);
    } else if (kind == 1) {
        gen_string(b);
    } else {
        int obj = kind == 2;
        sb_puts(b, obj ? "{" : "[");
        unsigned n = rnd(5);
        for (unsigned i = 0; i < n; i++) {
            ws(b);
            if (i)
                sb_puts(b, ",");
            ws(b);
            if (obj) {
                gen_string(b);
                ws(b);
                sb_puts(b, ":");
                ws(b);
            }
            gen_value(b, depth + 1);
            ws(b);
        }
        ws(b);
        sb_puts(b, obj ? "}" : "]");
    }
}

static void test_tokens_match_jsmn(void **st)
{
    (void)st;
    static const char *const corpus[] = {
        "{}", "[]", "0", "\"\"", "\"x\"", "true", " null ", "[[]]", "[{}]", "{\"a\":{}}",
        "{\"a\":[]}", "{\"a\":1,\"b\":[1,2,{\"c\":null}],\"d\":{\"e\":\"f\"}}",
        "[1,\"two\",[3,[4]],{\"five\":5}]", "{\"\":\"\",\"\\u0041\":\"\\n\"}",
        "{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
        "\"model\":\"bench-model\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
        "\"content\":\"The quick brown \"},\"finish_reason\":null}]}",
    };
    for (size_t i = 0; i < sizeof corpus / sizeof corpus[0]; i++)
        same_as_jsmn(corpus[i], strlen(corpus[i]));
    sbuf b = {0};
    for (int round = 0; round < 3000; round++) {
        b.n = 0;
        ws(&b);
        gen_value(&b, 0);
        ws(&b);
        same_as_jsmn(b.p, b.n);
    }
    /* Random single-byte damage: whatever we still accept must tokenise like jsmn. */
    static const char flips[] = "{}[]\",:\\ 0a-.e\x01\x80\xff";
    for (int round = 0; round < 3000; round++) {
        b.n = 0;
        gen_value(&b, 0);
        if (!b.n)
            continue;
        b.p[rnd((unsigned)b.n)] = flips[rnd(sizeof flips - 1)];
        llmux_json_limits lim = {1 << 20, 128};
        llmux_json d;
        if (llmux_json_parse(b.p, b.n, &lim, &d, NULL, NULL) == 0) {
            llmux_json_release(&d);
            same_as_jsmn(b.p, b.n);
        }
    }
    free(b.p);
}

/* Token arrays grow past the first block, are reused, and are freed when a
 * thread ends (ASan/valgrind would report a leak otherwise). */
static void *parse_in_thread(void *arg)
{
    const char *s = arg;
    long bad = 0; /* no cmocka asserts off the main thread */
    for (int k = 0; k < 50; k++) {
        llmux_json d[6];
        for (int j = 0; j < 6; j++)
            if (llmux_json_parse(s, strlen(s), NULL, &d[j], NULL, NULL) != 0 || d[j].ntok != 66)
                bad++;
        for (int j = 0; j < 6; j++)
            llmux_json_release(&d[j]);
    }
    return (void *)bad;
}

static void test_token_cache(void **st)
{
    (void)st;
    /* 3 tokens each: more than the first block, and more than a cached block holds */
    size_t sizes[] = {10, 100, 3000, 20000, 5};
    for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
        sbuf b = {0};
        sb_puts(&b, "[");
        for (size_t i = 0; i < sizes[z]; i++)
            sb_puts(&b, i ? ",[\"x\",1]" : "[\"x\",1]");
        sb_puts(&b, "]");
        llmux_json d, d2;
        assert_int_equal(llmux_json_parse(b.p, b.n, NULL, &d, NULL, NULL), 0);
        assert_int_equal(d.ntok, (int)(1 + 3 * sizes[z]));
        assert_int_equal(llmux_json_parse("{\"k\":[1]}", 9, NULL, &d2, NULL, NULL), 0);
        assert_int_equal(d2.ntok, 4);
        assert_int_equal(d.tok[d.ntok - 1].type, LLMUX_JSON_PRIMITIVE);
        assert_int_equal(d.tok[0].size, (int)sizes[z]);
        llmux_json_release(&d);
        llmux_json_release(&d2);
        /* a failed parse leaves nothing behind */
        assert_int_equal(llmux_json_parse(b.p, b.n - 1, NULL, &d, NULL, NULL), LLMUX_EPROTO);
        assert_null(d.tok);
        free(b.p);
    }
    pthread_t th[3];
    sbuf doc = {0}; /* 66 tokens: the first block grows in every thread */
    sb_puts(&doc, "{\"a\":[1,2,3,{\"b\":\"c\"}],\"d\":");
    for (int i = 0; i < 34; i++)
        sb_puts(&doc, "[");
    for (int i = 0; i < 34; i++)
        sb_puts(&doc, i == 0 ? "[]]" : "]");
    sb_puts(&doc, ",\"e\":[7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25]}");
    llmux_json d;
    assert_int_equal(llmux_json_parse(doc.p, doc.n, NULL, &d, NULL, NULL), 0);
    assert_int_equal(d.ntok, 66);
    llmux_json_release(&d);
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&th[i], NULL, parse_in_thread, doc.p), 0);
    for (int i = 0; i < 3; i++) {
        void *bad = NULL;
        pthread_join(th[i], &bad);
        assert_null(bad);
    }
    free(doc.p);
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* Not a pass/fail benchmark: prints ns/byte; the bound only catches a
 * pathological slowdown (it is ~100x the expected figure). */
static void test_parse_speed(void **st)
{
    (void)st;
    const char *chunk = "{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
                        "\"model\":\"bench-model\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
                        "\"content\":\"The quick brown fox jumps over the lazy dog.\"},\"finish_reason\":null}]}";
    sbuf big = {0};
    sb_puts(&big, "{\"messages\":[");
    for (int i = 0; i < 200; i++) {
        sb_puts(&big, i ? "," : "");
        sb_puts(&big, "{\"role\":\"user\",\"content\":\"Lorem ipsum dolor sit amet, consectetur adipiscing "
                      "elit, sed do eiusmod tempor \\\"incididunt\\\" ut labore et dolore magna "
                      "\xc3\xa9\xe2\x82\xac aliqua.\",\"n\":-12.5e3}");
    }
    sb_puts(&big, "]}");
    struct {
        const char *name, *s;
        size_t n;
        int reps;
    } cases[] = {{"chunk", chunk, strlen(chunk), 20000}, {"messages", big.p, big.n, 200}};
    for (size_t c = 0; c < 2; c++) {
        double best = 1e30;
        for (int round = 0; round < 3; round++) {
            double t0 = now_ns();
            for (int r = 0; r < cases[c].reps; r++) {
                llmux_json d;
                assert_int_equal(llmux_json_parse(cases[c].s, cases[c].n, NULL, &d, NULL, NULL), 0);
                llmux_json_release(&d);
            }
            double per = (now_ns() - t0) / ((double)cases[c].reps * (double)cases[c].n);
            if (per < best)
                best = per;
        }
        printf("json_parse %-8s %6zu bytes: %.2f ns/byte\n", cases[c].name, cases[c].n, best);
        assert_true(best < 200.0); /* sanitizer/valgrind builds included */
    }
    free(big.p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_docs),       cmocka_unit_test(test_token_layout),
        cmocka_unit_test(test_invalid_structure), cmocka_unit_test(test_invalid_numbers),
        cmocka_unit_test(test_invalid_strings),  cmocka_unit_test(test_error_offset),
        cmocka_unit_test(test_limits),           cmocka_unit_test(test_skip_get_at),
        cmocka_unit_test(test_numbers),          cmocka_unit_test(test_unescape),
        cmocka_unit_test(test_skip_flat),        cmocka_unit_test(test_tokens_match_jsmn),
        cmocka_unit_test(test_token_cache),      cmocka_unit_test(test_parse_speed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
