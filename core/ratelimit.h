/* Per-key request rate limits: an in-process token bucket (one process), or
 * a fixed window counted in Redis (INCR + EXPIRE per window) shared by every
 * instance using the same Redis. Redis calls run on the libuv thread pool
 * (one blocking hiredis connection per pool thread) and answer on the
 * worker's loop; a worker never waits on Redis. */
#ifndef LLMUX_RATELIMIT_H
#define LLMUX_RATELIMIT_H
#include <stdint.h>
#include <uv.h>

typedef struct {
    int allowed;
    int64_t limit, remaining;
    int64_t reset_ms;        /* epoch ms when the window resets / the bucket is full */
    uint32_t retry_after_s;  /* when refused */
} llmux_rl_result;

/* Token bucket: capacity `limit`, refilled at limit/interval_s per second.
 * *tokens / *last_ns are the bucket's state (the caller holds the key's lock). */
void llmux_ratelimit_bucket(double *tokens, uint64_t *last_ns, int64_t limit, int64_t interval_s, uint64_t now_ns,
                            int64_t now_ms, llmux_rl_result *out);

/* Redis: set once at start ("host:port"); NULL disables. */
int llmux_ratelimit_redis_configure(const char *hostport);
int llmux_ratelimit_redis_enabled(void);
/* error: Redis unreachable (the caller decides: the gateway fails open to the
 * in-process bucket). */
typedef void (*llmux_rl_cb)(void *ud, const llmux_rl_result *r, int error);
/* Returns 0 (cb will run on loop) or -1. */
int llmux_ratelimit_redis(uv_loop_t *loop, const char *key_hash, int64_t limit, int64_t interval_s, llmux_rl_cb cb,
                          void *ud);
/* The same check, blocking (tests). */
int llmux_ratelimit_redis_sync(const char *key_hash, int64_t limit, int64_t interval_s, llmux_rl_result *out);
void llmux_ratelimit_shutdown(void);
#endif
