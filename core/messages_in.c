#include "messages_in.h"
#include "exchange.h"

/* Placeholder until the Anthropic inbound translation lands. */
const char *llmux_messages_to_canonical(llmux_exchange *ex, char *msg, size_t mlen)
{
    (void)ex; (void)msg; (void)mlen;
    return "the /v1/messages endpoint is not available yet";
}

const llmux_output_ops llmux_out_anthropic;
