/* Inbound Anthropic Messages API (POST /v1/messages): translates the request
 * into the canonical chat-completions body, and writes answers in Anthropic's
 * own shapes and event sequence. */
#ifndef LLMUX_MESSAGES_IN_H
#define LLMUX_MESSAGES_IN_H
#include <stddef.h>
struct llmux_exchange;
struct llmux_output_ops;
/* Replaces ex->body/ex->doc with the canonical body. NULL or a 400 message. */
const char *llmux_messages_to_canonical(struct llmux_exchange *ex, char *msg, size_t mlen);
extern const struct llmux_output_ops llmux_out_anthropic;
#endif
