/* Inbound Anthropic Messages API (POST /v1/messages): translates the request
 * into the canonical chat-completions body (messages_in.c), and writes answers
 * in Anthropic's own shapes and event sequence (out_anthropic.c). */
#ifndef LLMUX_MESSAGES_IN_H
#define LLMUX_MESSAGES_IN_H
#include <stddef.h>
#include "../sdk/llmux_plugin.h"
struct llmux_exchange;
struct llmux_output_ops;

/* Replaces ex->body/ex->doc with the canonical body. NULL or a 400 message
 * (written into msg, or a static string). */
const char *llmux_messages_to_canonical(struct llmux_exchange *ex, char *msg, size_t mlen);

/* The translation itself: the Anthropic request in `d` (token 0 = the body)
 * to a canonical chat-completions JSON body appended to `out`. Returns 0, or
 * -1 with a message for a 400 in msg. */
int llmux_messages_translate(const llmux_json *d, llmux_buf *out, char *msg, size_t mlen);

/* Anthropic's error type for an HTTP status ("invalid_request_error", ...). */
const char *llmux_anthropic_error_type(int status);
/* The non-stream Message object for the exchange's result. */
void llmux_anthropic_message_json(struct llmux_exchange *ex, llmux_buf *b);

extern const struct llmux_output_ops llmux_out_anthropic;
#endif
