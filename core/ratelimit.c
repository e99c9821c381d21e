#include "ratelimit.h"
#include "log.h"
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

void llmux_ratelimit_bucket(double *tokens, uint64_t *last_ns, int64_t limit, int64_t interval_s, uint64_t now_ns,
                            int64_t now_ms, llmux_rl_result *out)
{
    double cap = (double)limit, rate = (double)limit / (double)(interval_s > 0 ? interval_s : 1) / 1e9; /* per ns */
    if (*last_ns == 0) *tokens = cap;
    else if (now_ns > *last_ns) *tokens += (double)(now_ns - *last_ns) * rate;
    if (*tokens > cap) *tokens = cap;
    *last_ns = now_ns;
    out->limit = limit;
    if (*tokens >= 1.0) {
        *tokens -= 1.0;
        out->allowed = 1;
        out->retry_after_s = 0;
    } else {
        out->allowed = 0;
        double wait_s = (1.0 - *tokens) / (rate * 1e9);
        out->retry_after_s = (uint32_t)wait_s + 1;
    }
    out->remaining = (int64_t)*tokens;
    double full_s = (cap - *tokens) / (rate * 1e9);
    out->reset_ms = now_ms + (int64_t)(full_s * 1000.0 + 0.5);
}

static char g_host[256];
static int g_port;

int llmux_ratelimit_redis_configure(const char *hostport)
{
    g_host[0] = '\0';
    if (!hostport || !*hostport) return 0;
    const char *colon = strrchr(hostport, ':');
    if (!colon) return -1;
    snprintf(g_host, sizeof g_host, "%.*s", (int)(colon - hostport), hostport);
    g_port = atoi(colon + 1);
    if (g_port <= 0 || g_port > 65535 || !g_host[0]) { g_host[0] = '\0'; return -1; }
    return 0;
}

int llmux_ratelimit_redis_enabled(void) { return g_host[0] != '\0'; }

static _Thread_local redisContext *t_redis; /* one connection per pool thread */

static int64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

int llmux_ratelimit_redis_sync(const char *key_hash, int64_t limit, int64_t interval_s, llmux_rl_result *out)
{
    if (!g_host[0]) return -1;
    if (interval_s <= 0) interval_s = 1;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!t_redis) {
            struct timeval tv = {0, 500000};
            t_redis = redisConnectWithTimeout(g_host, g_port, tv);
            if (!t_redis || t_redis->err) {
                if (t_redis) redisFree(t_redis);
                t_redis = NULL;
                return -1;
            }
            redisSetTimeout(t_redis, tv);
        }
        int64_t now = wall_ms();
        int64_t window = now / (interval_s * 1000);
        char key[160];
        snprintf(key, sizeof key, "llmux:rl:%.64s:%lld:%lld", key_hash, (long long)interval_s, (long long)window);
        redisAppendCommand(t_redis, "INCR %s", key);
        redisAppendCommand(t_redis, "EXPIRE %s %lld", key, (long long)interval_s + 1);
        redisReply *r1 = NULL, *r2 = NULL;
        int ok = redisGetReply(t_redis, (void **)&r1) == REDIS_OK && redisGetReply(t_redis, (void **)&r2) == REDIS_OK &&
                 r1 && r1->type == REDIS_REPLY_INTEGER;
        long long count = ok ? r1->integer : 0;
        if (r1) freeReplyObject(r1);
        if (r2) freeReplyObject(r2);
        if (!ok) {
            redisFree(t_redis);
            t_redis = NULL;
            continue;
        }
        int64_t reset = (window + 1) * interval_s * 1000;
        out->limit = limit;
        out->allowed = count <= limit;
        out->remaining = count <= limit ? limit - count : 0;
        out->reset_ms = reset;
        out->retry_after_s = out->allowed ? 0 : (uint32_t)((reset - now + 999) / 1000);
        if (!out->allowed && out->retry_after_s == 0) out->retry_after_s = 1;
        return 0;
    }
    return -1;
}

typedef struct {
    uv_work_t work;
    char hash[65];
    int64_t limit, interval_s;
    llmux_rl_result res;
    int error;
    llmux_rl_cb cb;
    void *ud;
} rl_job;

static void rl_work(uv_work_t *w)
{
    rl_job *j = w->data;
    j->error = llmux_ratelimit_redis_sync(j->hash, j->limit, j->interval_s, &j->res) < 0;
}

static void rl_after(uv_work_t *w, int status)
{
    rl_job *j = w->data;
    j->cb(j->ud, &j->res, j->error || status != 0);
    free(j);
}

int llmux_ratelimit_redis(uv_loop_t *loop, const char *key_hash, int64_t limit, int64_t interval_s, llmux_rl_cb cb,
                          void *ud)
{
    rl_job *j = calloc(1, sizeof *j);
    if (!j) return -1;
    snprintf(j->hash, sizeof j->hash, "%s", key_hash);
    j->limit = limit;
    j->interval_s = interval_s;
    j->cb = cb;
    j->ud = ud;
    j->work.data = j;
    if (uv_queue_work(loop, &j->work, rl_work, rl_after) != 0) {
        free(j);
        return -1;
    }
    return 0;
}

void llmux_ratelimit_shutdown(void)
{
    if (t_redis) {
        redisFree(t_redis);
        t_redis = NULL;
    }
}
