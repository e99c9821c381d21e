/* Unit tests for core/buf.c: growth, printf, JSON escaping, doubles. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <cmocka.h>

#include "buf.h"

static void esc_eq(const char *in, size_t n, const char *want)
{
    llmux_buf b = {0};
    assert_int_equal(llmux_buf_append_escaped(&b, in, n), 0);
    assert_non_null(b.data);
    assert_int_equal(b.len, strlen(want));
    assert_string_equal(b.data, want);
    assert_true(b.cap > b.len);
    llmux_buf_free(&b);
}

static void test_append_growth(void **st)
{
    (void)st;
    llmux_buf b = {0};
    for (int i = 0; i < 10000; i++) {
        assert_int_equal(llmux_buf_append(&b, "abc", 3), 0);
        assert_true(b.cap > b.len);
        assert_int_equal(b.data[b.len], '\0');
    }
    assert_int_equal(b.len, 30000);
    assert_memory_equal(b.data + 29997, "abc", 3);
    assert_int_equal(llmux_buf_append_char(&b, 'x'), 0);
    assert_int_equal(b.data[b.len - 1], 'x');
    llmux_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    assert_int_equal(llmux_buf_append(&b, NULL, 0), 0);
    assert_string_equal(b.data, "");
    llmux_buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.cap, 0);
}

static void test_reserve_overflow(void **st)
{
    (void)st;
    llmux_buf b = {0};
    assert_int_equal(llmux_buf_append_str(&b, "hi"), 0);
    assert_int_equal(llmux_buf_reserve(&b, SIZE_MAX), LLMUX_ENOMEM);
    assert_int_equal(llmux_buf_reserve(&b, SIZE_MAX - 2), LLMUX_ENOMEM);
    assert_string_equal(b.data, "hi");
    llmux_buf_free(&b);
}

static void test_printf_growth(void **st)
{
    (void)st;
    llmux_buf b = {0};
    assert_int_equal(llmux_buf_printf(&b, "%d-%s", 42, "x"), 0);
    assert_string_equal(b.data, "42-x");
    char big[5000];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = 0;
    assert_int_equal(llmux_buf_printf(&b, "[%s]", big), 0);
    assert_int_equal(b.len, 4 + 2 + 4999);
    assert_int_equal(b.data[4], '[');
    assert_int_equal(b.data[b.len - 1], ']');
    assert_int_equal(b.data[b.len], '\0');
    assert_int_equal(llmux_buf_printf(&b, "%s", ""), 0);
    assert_int_equal(b.len, 4 + 2 + 4999);
    llmux_buf_free(&b);
}

static void test_steal(void **st)
{
    (void)st;
    llmux_buf b = {0};
    char *s = llmux_buf_steal(&b);
    assert_non_null(s);
    assert_string_equal(s, "");
    free(s);
    llmux_buf_append_str(&b, "abc");
    s = llmux_buf_steal(&b);
    assert_string_equal(s, "abc");
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    free(s);
}

static void test_escape_controls(void **st)
{
    (void)st;
    for (int c = 0; c < 0x20; c++) {
        char in[1] = {(char)c};
        char want[8];
        switch (c) {
        case '\n': strcpy(want, "\\n"); break;
        case '\r': strcpy(want, "\\r"); break;
        case '\t': strcpy(want, "\\t"); break;
        case '\b': strcpy(want, "\\b"); break;
        case '\f': strcpy(want, "\\f"); break;
        default: snprintf(want, sizeof want, "\\u%04x", c);
        }
        esc_eq(in, 1, want);
    }
    esc_eq("\x7f", 1, "\x7f");
    esc_eq("a\"b\\c/d", 7, "a\\\"b\\\\c/d");
    esc_eq("", 0, "");
    esc_eq("plain text", 10, "plain text");
    esc_eq("x\0y", 3, "x\\u0000y");
}

static void test_escape_utf8(void **st)
{
    (void)st;
    /* valid sequences pass through */
    esc_eq("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 15, "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80");
    esc_eq("\xed\x9f\xbf", 3, "\xed\x9f\xbf");         /* U+D7FF */
    esc_eq("\xee\x80\x80", 3, "\xee\x80\x80");         /* U+E000 */
    esc_eq("\xf4\x8f\xbf\xbf", 4, "\xf4\x8f\xbf\xbf"); /* U+10FFFF */
#define FFFD "\xef\xbf\xbd"
    esc_eq("\xc0\xaf", 2, FFFD FFFD);              /* overlong '/' */
    esc_eq("\xc1\xbf", 2, FFFD FFFD);              /* overlong */
    esc_eq("\xe0\x80\xaf", 3, FFFD FFFD FFFD);     /* overlong 3-byte */
    esc_eq("\xf0\x80\x80\xaf", 4, FFFD FFFD FFFD FFFD); /* overlong 4-byte */
    esc_eq("\xed\xa0\x80", 3, FFFD FFFD FFFD);     /* surrogate D800 */
    esc_eq("\xf4\x90\x80\x80", 4, FFFD FFFD FFFD FFFD); /* > U+10FFFF */
    esc_eq("\xf5\x80", 2, FFFD FFFD);
    esc_eq("\xff", 1, FFFD);
    esc_eq("\x80x", 2, FFFD "x");                  /* stray continuation */
    esc_eq("a\xe2\x82", 3, "a" FFFD);              /* truncated at end */
    esc_eq("\xe2\x82" "b", 3, FFFD "b");           /* truncated before ASCII */
    esc_eq("\xf0\x9f\x98", 3, FFFD);
    esc_eq("\xc3", 1, FFFD);
    esc_eq("\xc3\"", 2, FFFD "\\\"");
#undef FFFD
}

static void test_jstr(void **st)
{
    (void)st;
    llmux_buf b = {0};
    assert_int_equal(llmux_buf_append_jstr(&b, "say \"hi\"\n"), 0);
    assert_string_equal(b.data, "\"say \\\"hi\\\"\\n\"");
    llmux_buf_free(&b);
}

static void dbl_eq(double v, const char *want)
{
    llmux_buf b = {0};
    assert_int_equal(llmux_buf_append_double(&b, v), 0);
    assert_string_equal(b.data, want);
    llmux_buf_free(&b);
}

static void test_double(void **st)
{
    (void)st;
    dbl_eq(0.1, "0.1");
    dbl_eq(1.5, "1.5");
    dbl_eq(100, "100");
    dbl_eq(-2.25, "-2.25");
    dbl_eq(1e-7, "1e-07");
    dbl_eq(NAN, "0");
    dbl_eq(INFINITY, "0");
    dbl_eq(-INFINITY, "0");
    /* round trip for awkward values */
    double vals[] = {0.1 + 0.2, 1.0 / 3.0, 123456789.123456789, 5e-324, 1.7976931348623157e308, 2e-6};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        llmux_buf b = {0};
        assert_int_equal(llmux_buf_append_double(&b, vals[i]), 0);
        assert_true(strtod(b.data, NULL) == vals[i]);
        assert_true(b.len <= 24);
        llmux_buf_free(&b);
    }
    dbl_eq(0.1 + 0.2, "0.30000000000000004");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_growth),  cmocka_unit_test(test_reserve_overflow),
        cmocka_unit_test(test_printf_growth),  cmocka_unit_test(test_steal),
        cmocka_unit_test(test_escape_controls), cmocka_unit_test(test_escape_utf8),
        cmocka_unit_test(test_jstr),           cmocka_unit_test(test_double),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
