/* libFuzzer target for rys serve's request bodies: the first byte picks the
 * parser (even: /v1/completions, odd: /v1/chat/completions), the rest is the
 * body. Every input must either be refused with a 4xx error object whose
 * message is set, or give a request that keeps the parser's promises (at
 * least one prompt or message, every text present, ranges as documented),
 * and the model-id splitter and the token-string encoder must accept any
 * bytes. */
#include "serve/api.h"

#include <stdlib.h>
#include <string.h>

static void check_request(const api_request *rq, bool chat) {
    if (chat) {
        /* chat takes no echo; its logprobs come only from "logprobs": true */
        if (rq->n_messages < 1 || rq->echo) abort();
        for (size_t i = 0; i < rq->n_messages; i++)
            if (!rq->messages[i].role || !rq->messages[i].content) abort();
    } else {
        if (rq->n_prompts < 1) abort();
        for (int i = 0; i < rq->n_prompts; i++)
            if (!rq->prompts[i].text && rq->prompts[i].n_ids < 1) abort();
    }
    if (rq->max_tokens < -1 || rq->n_stop < 0 || rq->logprobs < -1 || rq->logprobs > 20) abort();
    if (!(rq->temperature >= 0) || !(rq->top_p >= 0 && rq->top_p <= 1)) abort();
    for (int i = 0; i < rq->n_stop; i++)
        if (!rq->stop[i]) abort();
    if (rq->model) {
        const char *spec;
        size_t n = api_model_name_len(rq->model, &spec);
        if (n > strlen(rq->model)) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    bool chat = data[0] & 1;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    api_request rq;
    api_error e;
    memset(&e, 0, sizeof e);
    int rc = chat ? api_parse_chat(body, len, &rq, &e) : api_parse_completion(body, len, &rq, &e);
    if (rc == 0) {
        check_request(&rq, chat);
        api_request_free(&rq);
    } else {
        if (e.status < 400 || e.status > 499 || !e.message[0] || !e.type) abort();
        json_t *j = api_error_json(&e);
        if (!j) abort();
        json_decref(j);
    }
    json_t *s = api_token_string(body, len);
    if (!s) abort();
    json_decref(s);
    return 0;
}
