/* api: the OpenAI-compatible request bodies rys serve accepts, parsed and
 * checked without a model, and the error object every failure answers with.
 *
 * Why apart from the server: parsing is where bad input arrives, so it is a
 * pure function of the body that the unit tests drive with every malformed
 * shape; the server then only sees requests whose fields have the right
 * types and ranges. */
#ifndef RYS_SERVE_API_H
#define RYS_SERVE_API_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/util.h"
#include "engine/chat.h"

/* A failed request: the HTTP status and OpenAI's error fields. */
typedef struct {
    int status;             /* 400, 401, 404, 413, 429, 499, 500, 503, 504 */
    const char *type;       /* "invalid_request_error", "not_found_error", ... */
    char param[64];         /* the offending field, "" for none */
    const char *code;       /* "model_not_found" ..., or NULL */
    char message[512];
} api_error;

/* Fills e with status, type, the field param (may be NULL) and the message. */
void api_fail(api_error *e, int status, const char *type, const char *param, const char *fmt, ...) RYS_PRINTF(5, 6);
/* OpenAI's error object {"error": {"message", "type", "param", "code"}} for e. */
json_t *api_error_json(const api_error *e);

/* One prompt: text to tokenize, or token ids as given. */
typedef struct {
    char *text;             /* NULL when ids */
    int32_t *ids;
    int n_ids;
} api_prompt;

/* A completion or chat completion request, every field checked. */
typedef struct {
    char *model;            /* the requested model id */
    api_prompt *prompts;    /* completions: one or more */
    int n_prompts;
    chat_message *messages; /* chat: the conversation (strings owned here) */
    size_t n_messages;
    int max_tokens;         /* -1 = not given */
    float temperature, top_p;
    uint64_t seed;
    char **stop;            /* stop strings, n_stop of them */
    int n_stop;
    bool echo;
    int logprobs;           /* top-k to report, -1 = none (chat: top_logprobs when logprobs is true) */
    bool stream;
} api_request;

/* Parses a /v1/completions body into rq: 0, or -1 with e set (400 naming the
 * field for a missing or mistyped one, 400 for malformed JSON) and rq empty. */
int api_parse_completion(const char *body, size_t len, api_request *rq, api_error *e);
/* The same for a /v1/chat/completions body (messages of string contents;
 * "logprobs": true with "top_logprobs" k <= 20, default 0). */
int api_parse_chat(const char *body, size_t len, api_request *rq, api_error *e);
void api_request_free(api_request *rq);

/* Splits a model id "NAME" or "NAME@SPEC" at the first '@': *spec is NULL
 * when there is none. Returns the name's length. */
size_t api_model_name_len(const char *id, const char **spec);

/* The JSON value of s as a string: s itself when it is valid UTF-8, else
 * "bytes:\xNN..." escapes (OpenAI's spelling for a token that is part of a
 * character). */
json_t *api_token_string(const char *s, size_t len);

#endif
