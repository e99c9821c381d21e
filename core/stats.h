/* Live per-endpoint statistics (provider x model) kept by the core and shown
 * to the routing script: EWMAs of time to first token, latency, throughput
 * and error rate, last failure, in-flight count, Retry-After parking and a
 * circuit breaker (closed -> open after N consecutive failures -> half-open
 * with one probe after the cool-down). Slots outlive reloads: they are keyed
 * by "model|provider". */
#ifndef LLMUX_STATS_H
#define LLMUX_STATS_H
#include <stdint.h>
#include "router.h"

typedef struct llmux_stats_slot llmux_stats_slot;

typedef struct {
    int failure_threshold;   /* consecutive failures that open the circuit (5) */
    double open_seconds;     /* cool-down before a half-open probe (30) */
    double ewma_alpha;       /* weight of the newest sample (0.2) */
    double failure_window_s; /* a failure this recent marks the endpoint "recently failed" (30) */
} llmux_stats_policy;

/* Process-wide; safe to call from any thread at any time (each field is
 * stored atomically; a reader may briefly see a mix of old and new values). */
void llmux_stats_set_policy(const llmux_stats_policy *p);
void llmux_stats_get_policy(llmux_stats_policy *out);
llmux_stats_slot *llmux_stats_slot_for(const char *model, const char *provider);
void llmux_stats_snapshot(llmux_stats_slot *s, llmux_endpoint_stats *out);
/* Returns 0 if the endpoint may be tried now (takes the half-open probe). */
int llmux_stats_admit(llmux_stats_slot *s);
void llmux_stats_begin(llmux_stats_slot *s);
/* ok: success; ttft_ms/latency_ms < 0 when unknown; retry_after_ms parks it
 * (from a 429/503 Retry-After) until then. */
void llmux_stats_end(llmux_stats_slot *s, int ok, double ttft_ms, double latency_ms,
                     int64_t completion_tokens, uint32_t retry_after_ms);
/* For tests: moves every slot's clock (seconds added to "now"). */
void llmux_stats_test_advance(double seconds);
/* For tests: forgets everything a slot learnt (as if new). */
void llmux_stats_test_reset(llmux_stats_slot *s);
#endif
