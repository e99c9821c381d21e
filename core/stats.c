#include "stats.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct llmux_stats_slot {
    pthread_mutex_t lock;
    char *key;
    double ttft, latency, throughput, error_rate;
    double last_failure; /* monotonic seconds, <0 never */
    double opened_at;
    double parked_until;
    int consecutive_failures;
    int inflight;
    int circuit; /* 0 closed, 1 open, 2 half-open */
    int probing; /* the one half-open probe is in flight */
    llmux_stats_slot *next;
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static llmux_stats_slot *g_slots;
/* The policy is read on every request by every worker and written on
 * (re)load: one atomic per field, no lock. Doubles travel as their bits. */
static atomic_int g_threshold = 5;
static _Atomic uint64_t g_open_bits, g_alpha_bits, g_window_bits;
static atomic_int g_policy_set;
static _Atomic uint64_t g_skew_bits;

static uint64_t dbits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static double bitsd(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static void policy_defaults(void)
{
    if (atomic_load_explicit(&g_policy_set, memory_order_acquire)) return;
    llmux_stats_policy p = {5, 30.0, 0.2, 30.0};
    llmux_stats_set_policy(&p);
}

static double pol_open(void) { return bitsd(atomic_load_explicit(&g_open_bits, memory_order_relaxed)); }
static double pol_alpha(void) { return bitsd(atomic_load_explicit(&g_alpha_bits, memory_order_relaxed)); }
static double pol_window(void) { return bitsd(atomic_load_explicit(&g_window_bits, memory_order_relaxed)); }

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9 + bitsd(atomic_load_explicit(&g_skew_bits, memory_order_relaxed));
}

void llmux_stats_set_policy(const llmux_stats_policy *p)
{
    atomic_store_explicit(&g_threshold, p->failure_threshold > 0 ? p->failure_threshold : 1, memory_order_relaxed);
    atomic_store_explicit(&g_open_bits, dbits(p->open_seconds >= 0 ? p->open_seconds : 0), memory_order_relaxed);
    atomic_store_explicit(&g_alpha_bits, dbits(p->ewma_alpha > 0 && p->ewma_alpha <= 1 ? p->ewma_alpha : 0.2),
                          memory_order_relaxed);
    atomic_store_explicit(&g_window_bits, dbits(p->failure_window_s >= 0 ? p->failure_window_s : 0),
                          memory_order_relaxed);
    atomic_store_explicit(&g_policy_set, 1, memory_order_release);
}

void llmux_stats_get_policy(llmux_stats_policy *out)
{
    policy_defaults();
    out->failure_threshold = atomic_load_explicit(&g_threshold, memory_order_relaxed);
    out->open_seconds = pol_open();
    out->ewma_alpha = pol_alpha();
    out->failure_window_s = pol_window();
}

void llmux_stats_test_advance(double seconds)
{
    double cur = bitsd(atomic_load(&g_skew_bits));
    atomic_store(&g_skew_bits, dbits(cur + seconds));
}

llmux_stats_slot *llmux_stats_slot_for(const char *model, const char *provider)
{
    size_t ml = strlen(model), pl = strlen(provider);
    pthread_mutex_lock(&g_lock);
    for (llmux_stats_slot *s = g_slots; s; s = s->next)
        if (strncmp(s->key, model, ml) == 0 && s->key[ml] == '|' && strcmp(s->key + ml + 1, provider) == 0) {
            pthread_mutex_unlock(&g_lock);
            return s;
        }
    llmux_stats_slot *s = calloc(1, sizeof *s);
    if (s) s->key = malloc(ml + pl + 2);
    if (!s || !s->key) { free(s); pthread_mutex_unlock(&g_lock); return NULL; }
    memcpy(s->key, model, ml);
    s->key[ml] = '|';
    memcpy(s->key + ml + 1, provider, pl + 1);
    pthread_mutex_init(&s->lock, NULL);
    s->last_failure = -1;
    s->next = g_slots;
    g_slots = s;
    pthread_mutex_unlock(&g_lock);
    return s;
}

static void refresh_circuit(llmux_stats_slot *s, double t)
{
    if (s->circuit == 1 && t - s->opened_at >= pol_open()) s->circuit = 2; /* probe allowed */
}

void llmux_stats_snapshot(llmux_stats_slot *s, llmux_endpoint_stats *o)
{
    memset(o, 0, sizeof *o);
    o->last_failure_age_s = -1;
    if (!s) return;
    policy_defaults();
    double t = now_s();
    pthread_mutex_lock(&s->lock);
    refresh_circuit(s, t);
    o->ttft_ms_ewma = s->ttft;
    o->latency_ms_ewma = s->latency;
    o->throughput_ewma = s->throughput;
    o->error_rate_ewma = s->error_rate;
    o->last_failure_age_s = s->last_failure < 0 ? -1 : t - s->last_failure;
    o->inflight = s->inflight;
    o->circuit = s->circuit;
    o->parked_for_s = s->parked_until > t ? s->parked_until - t : 0;
    o->recent_failure = s->last_failure >= 0 && t - s->last_failure < pol_window();
    o->consecutive_failures = s->consecutive_failures;
    pthread_mutex_unlock(&s->lock);
}

int llmux_stats_admit(llmux_stats_slot *s)
{
    if (!s) return 0;
    policy_defaults();
    int ok = 0;
    pthread_mutex_lock(&s->lock);
    refresh_circuit(s, now_s());
    if (s->circuit == 1) ok = -1;
    else if (s->circuit == 2) { /* half-open: exactly one probe until it ends */
        if (s->probing) ok = -1;
        else s->probing = 1;
    }
    pthread_mutex_unlock(&s->lock);
    return ok;
}

void llmux_stats_begin(llmux_stats_slot *s)
{
    if (!s) return;
    pthread_mutex_lock(&s->lock);
    s->inflight++;
    pthread_mutex_unlock(&s->lock);
}

static double ewma(double old, double sample)
{
    return old == 0 ? sample : old + pol_alpha() * (sample - old);
}

void llmux_stats_end(llmux_stats_slot *s, int ok, double ttft_ms, double latency_ms, int64_t completion_tokens,
                     uint32_t retry_after_ms)
{
    if (!s) return;
    policy_defaults();
    double t = now_s();
    pthread_mutex_lock(&s->lock);
    if (s->inflight > 0) s->inflight--;
    s->probing = 0;
    s->error_rate = s->error_rate + pol_alpha() * ((ok ? 0.0 : 1.0) - s->error_rate);
    if (ok) {
        if (ttft_ms >= 0) s->ttft = ewma(s->ttft, ttft_ms);
        if (latency_ms >= 0) s->latency = ewma(s->latency, latency_ms);
        double gen_s = (latency_ms - (ttft_ms > 0 ? ttft_ms : 0)) / 1000.0;
        if (completion_tokens > 0 && gen_s > 0.001) s->throughput = ewma(s->throughput, (double)completion_tokens / gen_s);
        s->consecutive_failures = 0;
        s->circuit = 0;
    } else {
        s->last_failure = t;
        s->consecutive_failures++;
        if (s->circuit == 2 ||
            s->consecutive_failures >= atomic_load_explicit(&g_threshold, memory_order_relaxed)) {
            s->circuit = 1;
            s->opened_at = t;
        }
    }
    if (retry_after_ms) s->parked_until = t + retry_after_ms / 1000.0;
    pthread_mutex_unlock(&s->lock);
}

void llmux_stats_test_reset(llmux_stats_slot *s)
{
    if (!s) return;
    pthread_mutex_lock(&s->lock);
    s->ttft = s->latency = s->throughput = s->error_rate = 0;
    s->last_failure = -1;
    s->opened_at = s->parked_until = 0;
    s->consecutive_failures = s->inflight = s->circuit = s->probing = 0;
    pthread_mutex_unlock(&s->lock);
}
