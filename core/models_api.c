/* GET models, models/{author}/{slug}/endpoints and providers, in
 * OpenRouter's shapes (prices are USD per token, as strings). */
#include "buf.h"
#include "routes.h"
#include "stats.h"
#include "worker.h"
#include <string.h>

static void price(llmux_buf *b, const char *name, double v, int comma)
{
    llmux_buf_printf(b, "%s\"%s\":\"", comma ? "," : "", name);
    llmux_buf_append_double(b, v);
    llmux_buf_append_char(b, '"');
}

static void pricing_json(llmux_buf *b, const llmux_pricing *p)
{
    llmux_buf_append_str(b, "\"pricing\":{");
    price(b, "prompt", p->prompt, 0);
    price(b, "completion", p->completion, 1);
    price(b, "request", p->request, 1);
    price(b, "image", p->image, 1);
    price(b, "input_cache_read", p->cache_read, 1);
    price(b, "input_cache_write", p->cache_write, 1);
    price(b, "internal_reasoning", p->reasoning >= 0 ? p->reasoning : p->completion, 1);
    llmux_buf_append_char(b, '}');
}

static void str_array(llmux_buf *b, char **v, size_t n)
{
    llmux_buf_append_char(b, '[');
    for (size_t i = 0; i < n; i++) {
        if (i) llmux_buf_append_char(b, ',');
        llmux_buf_append_jstr(b, v[i]);
    }
    llmux_buf_append_char(b, ']');
}

static void modality(llmux_buf *b, const llmux_model_cfg *m)
{
    llmux_buf_append_char(b, '"');
    for (size_t i = 0; i < m->n_input_modalities; i++) {
        if (i) llmux_buf_append_char(b, '+');
        llmux_buf_append_escaped(b, m->input_modalities[i], strlen(m->input_modalities[i]));
    }
    llmux_buf_append_str(b, "->");
    for (size_t i = 0; i < m->n_output_modalities; i++) {
        if (i) llmux_buf_append_char(b, '+');
        llmux_buf_append_escaped(b, m->output_modalities[i], strlen(m->output_modalities[i]));
    }
    llmux_buf_append_char(b, '"');
}

/* The model's "top" endpoint: its first one, as configured. */
static void model_json(llmux_buf *b, const llmux_model_cfg *m)
{
    const llmux_endpoint_cfg *top = m->n_endpoints ? &m->endpoints[0] : NULL;
    llmux_buf_append_str(b, "{\"id\":");
    llmux_buf_append_jstr(b, m->id);
    llmux_buf_append_str(b, ",\"canonical_slug\":");
    llmux_buf_append_jstr(b, m->id);
    llmux_buf_append_str(b, ",\"name\":");
    llmux_buf_append_jstr(b, m->name ? m->name : m->id);
    llmux_buf_printf(b, ",\"created\":%lld,\"description\":", (long long)m->created);
    llmux_buf_append_jstr(b, m->description ? m->description : "");
    llmux_buf_printf(b, ",\"context_length\":%lld,\"architecture\":{\"modality\":", (long long)m->context_length);
    modality(b, m);
    llmux_buf_append_str(b, ",\"input_modalities\":");
    str_array(b, m->input_modalities, m->n_input_modalities);
    llmux_buf_append_str(b, ",\"output_modalities\":");
    str_array(b, m->output_modalities, m->n_output_modalities);
    llmux_buf_append_str(b, ",\"tokenizer\":");
    llmux_buf_append_jstr(b, m->tokenizer ? m->tokenizer : "Other");
    llmux_buf_append_str(b, ",\"instruct_type\":null},");
    llmux_pricing zero = {0};
    pricing_json(b, top ? &top->pricing : &zero);
    llmux_buf_printf(b, ",\"top_provider\":{\"context_length\":%lld,\"max_completion_tokens\":%lld,\"is_moderated\":false},"
                        "\"per_request_limits\":null,\"supported_parameters\":",
                     (long long)(top ? top->view.context_length : m->context_length),
                     (long long)(top ? top->max_completion_tokens : 0));
    /* The union of the endpoints' parameters, without repeats. */
    llmux_buf_append_char(b, '[');
    int first = 1;
    for (size_t e = 0; e < m->n_endpoints; e++)
        for (size_t i = 0; i < m->endpoints[e].n_supported_parameters; i++) {
            const char *p = m->endpoints[e].supported_parameters[i];
            int seen = 0;
            for (size_t e2 = 0; e2 <= e && !seen; e2++)
                for (size_t j = 0; j < m->endpoints[e2].n_supported_parameters && !seen; j++) {
                    if (e2 == e && j >= i) break;
                    seen = strcmp(m->endpoints[e2].supported_parameters[j], p) == 0;
                }
            if (seen) continue;
            if (!first) llmux_buf_append_char(b, ',');
            first = 0;
            llmux_buf_append_jstr(b, p);
        }
    llmux_buf_append_str(b, "]}");
}

void llmux_handle_models(llmux_conn *c, const llmux_http_request *r)
{
    (void)r;
    llmux_worker *w = llmux_conn_worker(c);
    llmux_worker_refresh(w);
    const llmux_config *cfg = w->rt->cfg;
    llmux_buf b = {0};
    llmux_buf_append_str(&b, "{\"data\":[");
    for (size_t i = 0; i < cfg->n_models; i++) {
        if (i) llmux_buf_append_char(&b, ',');
        model_json(&b, &cfg->models[i]);
    }
    llmux_buf_append_str(&b, "]}");
    llmux_conn_respond(c, 200, "application/json", NULL, b.data, b.len);
    llmux_buf_free(&b);
}

void llmux_handle_model_endpoints(llmux_conn *c, const llmux_http_request *r, const char *id, size_t len)
{
    (void)r;
    llmux_worker *w = llmux_conn_worker(c);
    llmux_worker_refresh(w);
    const llmux_model_cfg *m = llmux_config_find_model(w->rt->cfg, id, len);
    if (!m) { llmux_conn_respond_error(c, 404, "model not found", NULL, NULL); return; }
    llmux_buf b = {0};
    llmux_buf_append_str(&b, "{\"data\":{\"id\":");
    llmux_buf_append_jstr(&b, m->id);
    llmux_buf_append_str(&b, ",\"name\":");
    llmux_buf_append_jstr(&b, m->name ? m->name : m->id);
    llmux_buf_printf(&b, ",\"created\":%lld,\"description\":", (long long)m->created);
    llmux_buf_append_jstr(&b, m->description ? m->description : "");
    llmux_buf_append_str(&b, ",\"architecture\":{\"modality\":");
    modality(&b, m);
    llmux_buf_append_str(&b, ",\"tokenizer\":");
    llmux_buf_append_jstr(&b, m->tokenizer ? m->tokenizer : "Other");
    llmux_buf_append_str(&b, ",\"instruct_type\":null},\"endpoints\":[");
    for (size_t i = 0; i < m->n_endpoints; i++) {
        const llmux_endpoint_cfg *ep = &m->endpoints[i];
        llmux_endpoint_stats st;
        llmux_stats_snapshot(w->rt->slots[ep->index], &st);
        if (i) llmux_buf_append_char(&b, ',');
        llmux_buf_append_str(&b, "{\"name\":");
        llmux_buf_printf(&b, "\"%s | %s\"", ep->provider->name, m->id);
        llmux_buf_append_str(&b, ",\"provider_name\":");
        llmux_buf_append_jstr(&b, ep->provider->name);
        llmux_buf_append_str(&b, ",\"tag\":");
        llmux_buf_append_jstr(&b, ep->provider->id);
        llmux_buf_printf(&b, ",\"context_length\":%lld,", (long long)ep->view.context_length);
        pricing_json(&b, &ep->pricing);
        llmux_buf_append_str(&b, ",\"quantization\":");
        if (ep->quantization) llmux_buf_append_jstr(&b, ep->quantization); else llmux_buf_append_str(&b, "null");
        llmux_buf_printf(&b, ",\"max_completion_tokens\":%lld,\"max_prompt_tokens\":null,\"supported_parameters\":",
                         (long long)ep->max_completion_tokens);
        str_array(&b, ep->supported_parameters, ep->n_supported_parameters);
        llmux_buf_printf(&b, ",\"status\":%d,\"uptime_last_30m\":", st.circuit == 1 ? -1 : 0);
        llmux_buf_append_double(&b, 100.0 * (1.0 - st.error_rate_ewma));
        llmux_buf_append_str(&b, ",\"latency_last_30m\":");
        llmux_buf_append_double(&b, st.ttft_ms_ewma);
        llmux_buf_append_str(&b, ",\"throughput_last_30m\":");
        llmux_buf_append_double(&b, st.throughput_ewma);
        llmux_buf_append_char(&b, '}');
    }
    llmux_buf_append_str(&b, "]}}");
    llmux_conn_respond(c, 200, "application/json", NULL, b.data, b.len);
    llmux_buf_free(&b);
}

void llmux_handle_providers(llmux_conn *c, const llmux_http_request *r)
{
    (void)r;
    llmux_worker *w = llmux_conn_worker(c);
    llmux_worker_refresh(w);
    const llmux_config *cfg = w->rt->cfg;
    llmux_buf b = {0};
    llmux_buf_append_str(&b, "{\"data\":[");
    for (size_t i = 0; i < cfg->n_providers; i++) {
        const llmux_provider_cfg *p = &cfg->providers[i];
        if (i) llmux_buf_append_char(&b, ',');
        llmux_buf_append_str(&b, "{\"name\":");
        llmux_buf_append_jstr(&b, p->name);
        llmux_buf_append_str(&b, ",\"slug\":");
        llmux_buf_append_jstr(&b, p->id);
        llmux_buf_printf(&b, ",\"data_collection\":\"%s\",\"zdr\":%s,\"privacy_policy_url\":null,\"terms_of_service_url\":null,\"status_page_url\":null}",
                         p->data_collection_deny ? "deny" : "allow", p->zdr ? "true" : "false");
    }
    llmux_buf_append_str(&b, "]}");
    llmux_conn_respond(c, 200, "application/json", NULL, b.data, b.len);
    llmux_buf_free(&b);
}
