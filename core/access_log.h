/* One access-log line per request (text or JSON); never keys or secrets. */
#ifndef LLMUX_ACCESS_LOG_H
#define LLMUX_ACCESS_LOG_H
struct llmux_exchange;
void llmux_access_log(const struct llmux_exchange *ex);
#endif
