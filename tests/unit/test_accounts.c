/* Accounts building blocks: key hashing, BYOK encryption, the token bucket,
 * the accounts config fields. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "accounts.h"
#include "config.h"
#include "ratelimit.h"

static void test_hash_vector(void **state)
{
    (void)state;
    char h[65];
    llmux_key_hash("abc", 3, h);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_generate(void **state)
{
    (void)state;
    char a[80], b[80];
    assert_int_equal(llmux_key_generate(a), 0);
    assert_int_equal(llmux_key_generate(b), 0);
    assert_int_equal(strlen(a), 12 + 64);
    assert_memory_equal(a, "sk-llmux-v1-", 12);
    assert_string_not_equal(a, b);
}

static void test_byok_roundtrip(void **state)
{
    (void)state;
    unsigned char key[32], other[32];
    memset(key, 7, sizeof key);
    memset(other, 8, sizeof other);
    const char *plain = "{\"openai\":\"sk-secret\"}";
    char *enc = llmux_byok_encrypt(key, plain, strlen(plain));
    assert_non_null(enc);
    assert_memory_equal(enc, "v1:", 3);
    assert_null(strstr(enc, "sk-secret"));
    size_t n;
    char *dec = llmux_byok_decrypt(key, enc, &n);
    assert_non_null(dec);
    assert_string_equal(dec, plain);
    free(dec);
    assert_null(llmux_byok_decrypt(other, enc, &n)); /* wrong key: GCM tag fails */
    enc[strlen(enc) - 1] = enc[strlen(enc) - 1] == '0' ? '1' : '0'; /* tampered ciphertext */
    assert_null(llmux_byok_decrypt(key, enc, &n));
    assert_null(llmux_byok_decrypt(key, "v1:zz", &n));
    free(enc);
}

static void test_byok_key_env(void **state)
{
    (void)state;
    unsigned char k[32];
    setenv("LLMUX_UNIT_BYOK", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", 1);
    assert_int_equal(llmux_byok_key_from_env("LLMUX_UNIT_BYOK", k), 0);
    assert_int_equal(k[0], 0);
    assert_int_equal(k[31], 0x1f);
    unsetenv("LLMUX_UNIT_BYOK");
    assert_int_equal(llmux_byok_key_from_env("LLMUX_UNIT_BYOK", k), -1);
}

static void test_secret_eq(void **state)
{
    (void)state;
    assert_true(llmux_secret_eq("abc", "abc"));
    assert_false(llmux_secret_eq("abc", "abd"));
    assert_false(llmux_secret_eq("abc", "abcd"));
    assert_false(llmux_secret_eq("", "a"));
    assert_false(llmux_secret_eq(NULL, "a"));
}

static void test_bucket(void **state)
{
    (void)state;
    double tokens = 0;
    uint64_t last = 0, t = 1000000000ull;
    llmux_rl_result r;
    for (int i = 0; i < 3; i++) {
        llmux_ratelimit_bucket(&tokens, &last, 3, 60, t, 1000, &r);
        assert_true(r.allowed);
        assert_int_equal(r.remaining, 2 - i);
    }
    llmux_ratelimit_bucket(&tokens, &last, 3, 60, t, 1000, &r);
    assert_false(r.allowed);
    assert_int_equal(r.limit, 3);
    assert_true(r.retry_after_s >= 19 && r.retry_after_s <= 21); /* one token per 20 s */
    t += 20ull * 1000000000ull; /* 20 s later: one token back */
    llmux_ratelimit_bucket(&tokens, &last, 3, 60, t, 21000, &r);
    assert_true(r.allowed);
    llmux_ratelimit_bucket(&tokens, &last, 3, 60, t, 21000, &r);
    assert_false(r.allowed);
}

static void test_config_fields(void **state)
{
    (void)state;
    char err[512];
    const char *src = "auth = \"keys\"\nstorage = { postgres = \"host=x\", durable = false }\nredis = \"127.0.0.1:6379\"\n"
                      "management_key = \"m\"\nbyok = { encryption_key_env = \"E\", fee = 0.2 }\n";
    llmux_config *c = llmux_config_load_string(src, strlen(src), "t.lua", err, sizeof err);
    assert_non_null(c);
    assert_int_equal(c->auth_keys, 1);
    assert_int_equal(c->storage_mode, 2);
    assert_int_equal(c->storage_durable, 0);
    assert_string_equal(c->storage_path, "host=x");
    assert_string_equal(c->redis, "127.0.0.1:6379");
    assert_string_equal(c->management_key, "m");
    assert_string_equal(c->byok_key_env, "E");
    assert_true(c->byok_fee > 0.19 && c->byok_fee < 0.21);
    llmux_config_unref(c);

    const char *d = "";
    c = llmux_config_load_string(d, 0, "d.lua", err, sizeof err);
    assert_non_null(c);
    assert_int_equal(c->auth_keys, 0);
    assert_int_equal(c->storage_mode, 1); /* SQLite llmux.db by default */
    assert_int_equal(c->storage_durable, 0); /* auth = "none": records are not billing */
    llmux_config_unref(c);
    const char *keys = "auth = \"keys\"\n";
    c = llmux_config_load_string(keys, strlen(keys), "k.lua", err, sizeof err);
    assert_non_null(c);
    assert_int_equal(c->storage_durable, 1);
    llmux_config_unref(c);

    const char *off = "storage = false\n";
    c = llmux_config_load_string(off, strlen(off), "o.lua", err, sizeof err);
    assert_non_null(c);
    assert_int_equal(c->storage_mode, 0);
    llmux_config_unref(c);

    const char *bad[] = {"auth = \"maybe\"\n", "storage = { sqlite = \"a\", postgres = \"b\" }\n", "storage = 3\n",
                         "byok = { fee = -1 }\n", "storage = { sqllite = \"x\" }\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        c = llmux_config_load_string(bad[i], strlen(bad[i]), "b.lua", err, sizeof err);
        assert_null(c);
        assert_non_null(strstr(err, "b.lua:1:"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_vector), cmocka_unit_test(test_generate), cmocka_unit_test(test_byok_roundtrip),
        cmocka_unit_test(test_byok_key_env), cmocka_unit_test(test_secret_eq), cmocka_unit_test(test_bucket),
        cmocka_unit_test(test_config_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
