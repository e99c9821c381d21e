/* Hashing, random keys and BYOK encryption at rest, all from OpenSSL's libcrypto. */
#include "accounts.h"
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char k_hex[] = "0123456789abcdef";

static void to_hex(const unsigned char *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = k_hex[in[i] >> 4];
        out[2 * i + 1] = k_hex[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int from_hex(const char *in, size_t n, unsigned char *out)
{
    if (n % 2) return -1;
    for (size_t i = 0; i < n / 2; i++) {
        int v = 0;
        for (int k = 0; k < 2; k++) {
            char c = in[2 * i + (size_t)k];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
            if (d < 0) return -1;
            v = v * 16 + d;
        }
        out[i] = (unsigned char)v;
    }
    return 0;
}

void llmux_key_hash(const char *key, size_t n, char out[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)key, n, md);
    to_hex(md, sizeof md, out);
}

int llmux_random_bytes(void *buf, size_t n) { return RAND_bytes(buf, (int)n) == 1 ? 0 : -1; }

int llmux_key_generate(char out[80])
{
    unsigned char r[32];
    if (llmux_random_bytes(r, sizeof r) < 0) return -1;
    memcpy(out, "sk-llmux-v1-", 12);
    to_hex(r, sizeof r, out + 12);
    OPENSSL_cleanse(r, sizeof r);
    return 0;
}

int llmux_secret_eq(const char *a, const char *b)
{
    if (!a || !b) return 0;
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = (unsigned char)(la != lb);
    for (size_t i = 0; i < la; i++) diff |= (unsigned char)(a[i] ^ b[i % (lb ? lb : 1)]);
    return diff == 0;
}

int llmux_byok_key_from_env(const char *env_name, unsigned char key[32])
{
    const char *v = env_name ? getenv(env_name) : NULL;
    if (!v || !*v) return -1;
    /* 64 hex digits are the key itself; anything else is hashed into one. */
    if (strlen(v) == 64 && from_hex(v, 64, key) == 0) return 0;
    SHA256((const unsigned char *)v, strlen(v), key);
    return 0;
}

char *llmux_byok_encrypt(const unsigned char key[32], const char *plain, size_t n)
{
    unsigned char iv[12], tag[16];
    unsigned char *ct = malloc(n + 16);
    char *out = malloc(3 + 2 * (12 + 16 + n) + 1);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int len = 0, fl = 0, ok = ct && out && c && llmux_random_bytes(iv, sizeof iv) == 0 &&
                           EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, iv) == 1 &&
                           EVP_EncryptUpdate(c, ct, &len, (const unsigned char *)plain, (int)n) == 1 &&
                           EVP_EncryptFinal_ex(c, ct + len, &fl) == 1 &&
                           EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1;
    EVP_CIPHER_CTX_free(c);
    if (!ok) { free(ct); free(out); return NULL; }
    memcpy(out, "v1:", 3);
    to_hex(iv, 12, out + 3);
    to_hex(tag, 16, out + 3 + 24);
    to_hex(ct, (size_t)(len + fl), out + 3 + 24 + 32);
    OPENSSL_cleanse(ct, n);
    free(ct);
    return out;
}

char *llmux_byok_decrypt(const unsigned char key[32], const char *enc, size_t *n)
{
    size_t el = enc ? strlen(enc) : 0;
    if (el < 3 + 56 || strncmp(enc, "v1:", 3) != 0) return NULL;
    size_t ctl = (el - 3 - 56) / 2;
    unsigned char iv[12], tag[16];
    unsigned char *ct = malloc(ctl + 1);
    char *out = malloc(ctl + 1);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int len = 0, fl = 0;
    int ok = ct && out && c && from_hex(enc + 3, 24, iv) == 0 && from_hex(enc + 27, 32, tag) == 0 &&
             from_hex(enc + 59, el - 59, ct) == 0 && EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, iv) == 1 &&
             EVP_DecryptUpdate(c, (unsigned char *)out, &len, ct, (int)ctl) == 1 &&
             EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, tag) == 1 &&
             EVP_DecryptFinal_ex(c, (unsigned char *)out + len, &fl) == 1;
    EVP_CIPHER_CTX_free(c);
    free(ct);
    if (!ok) {
        if (out) OPENSSL_cleanse(out, ctl);
        free(out);
        return NULL;
    }
    out[len + fl] = '\0';
    if (n) *n = (size_t)(len + fl);
    return out;
}
