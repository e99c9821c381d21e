/* The host side of one plugin call: the public llmux_call plus where its
 * canonical events go (the chat exchange). Plugins see only llmux_call. */
#ifndef LLMUX_CALL_H
#define LLMUX_CALL_H
#include <curl/curl.h>
#include "../sdk/llmux_plugin.h"

typedef struct {
    int (*delta)(void *ud, int choice, llmux_delta_kind kind, const char *s, size_t n);
    int (*tool_call)(void *ud, int choice, int index, const char *id, size_t id_len,
                     const char *name, size_t name_len, const char *args, size_t args_len);
    int (*reasoning_detail)(void *ud, int choice, const char *json, size_t n);
    int (*finish)(void *ud, int choice, llmux_finish reason, const char *native, size_t n);
    int (*usage)(void *ud, const llmux_usage *u);
    int (*upstream_id)(void *ud, const char *id, size_t n);
    int (*error)(void *ud, int status, const char *message, const char *raw, size_t raw_len,
                 uint32_t retry_after_ms);
    int (*schedule)(void *ud, uint32_t delay_ms);
} llmux_call_sink;

typedef struct llmux_host_call {
    llmux_call pub; /* first: plugins get &pub */
    const llmux_call_sink *sink;
    void *ud;
} llmux_host_call;

struct llmux_outreq {
    llmux_buf url;
    struct curl_slist *headers;
    llmux_buf body;
    int local;
    uint32_t first_delay_ms;
    int failed; /* an allocation failed while building */
};

void llmux_outreq_free(struct llmux_outreq *r);
#endif
