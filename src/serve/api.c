/* api: request bodies parsed and checked, the error object (api.h). */
#include "serve/api.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void api_fail(api_error *e, int status, const char *type, const char *param, const char *fmt, ...) {
    e->status = status;
    e->type = type;
    e->code = NULL;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

json_t *api_error_json(const api_error *e) {
    json_t *err = json_object();
    json_object_set_new(err, "message", json_string(e->message));
    json_object_set_new(err, "type", json_string(e->type));
    json_object_set_new(err, "param", e->param[0] ? json_string(e->param) : json_null());
    json_object_set_new(err, "code", e->code ? json_string(e->code) : json_null());
    json_t *o = json_object();
    json_object_set_new(o, "error", err);
    return o;
}

/* 400 naming param: the field is there but not what it must be. */
static int bad_field(api_error *e, const char *param, const char *what) {
    api_fail(e, 400, "invalid_request_error", param, "'%s' must be %s", param, what);
    return -1;
}

/* The body as a JSON object: 0, or -1 with e set (400: malformed or not an object). */
static int parse_object(const char *body, size_t len, json_t **out, api_error *e) {
    json_error_t jerr;
    json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!o) {
        api_fail(e, 400, "invalid_request_error", NULL, "malformed JSON body: %s (line %d, column %d)", jerr.text,
                 jerr.line, jerr.column);
        return -1;
    }
    if (!json_is_object(o)) {
        json_decref(o);
        api_fail(e, 400, "invalid_request_error", NULL, "the body must be a JSON object");
        return -1;
    }
    *out = o;
    return 0;
}

/* A token-id list: every element an integer in [0, 2^31). 0 or -1. */
static int parse_ids(json_t *arr, api_prompt *p, api_error *e) {
    size_t n = json_array_size(arr);
    p->ids = xmalloc((n ? n : 1) * sizeof *p->ids);
    p->n_ids = (int)n;
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(arr, i);
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX)
            return bad_field(e, "prompt", "a string, a list of strings, a list of token ids or a list of such lists");
        p->ids[i] = (int32_t)json_integer_value(v);
    }
    return 0;
}

/* prompt: a string, a list of strings, a list of token ids or a list of
 * token-id lists. 0 or -1. */
static int parse_prompt(json_t *v, api_request *rq, api_error *e) {
    const char *what = "a string, a list of strings, a list of token ids or a list of such lists";
    if (!v) { api_fail(e, 400, "invalid_request_error", "prompt", "'prompt' is required"); return -1; }
    if (json_is_string(v)) {
        rq->prompts = xcalloc(1, sizeof *rq->prompts);
        rq->n_prompts = 1;
        rq->prompts[0].text = xstrdup(json_string_value(v));
        return 0;
    }
    if (!json_is_array(v) || json_array_size(v) == 0) return bad_field(e, "prompt", what);
    json_t *first = json_array_get(v, 0);
    if (json_is_integer(first)) {
        rq->prompts = xcalloc(1, sizeof *rq->prompts);
        rq->n_prompts = 1;
        return parse_ids(v, &rq->prompts[0], e);
    }
    size_t n = json_array_size(v);
    rq->prompts = xcalloc(n, sizeof *rq->prompts);
    rq->n_prompts = (int)n;
    for (size_t i = 0; i < n; i++) {
        json_t *item = json_array_get(v, i);
        if (json_is_string(item)) rq->prompts[i].text = xstrdup(json_string_value(item));
        else if (json_is_array(item) && json_array_size(item) > 0) {
            if (parse_ids(item, &rq->prompts[i], e)) return -1;
        } else return bad_field(e, "prompt", what);
    }
    return 0;
}

/* A number field in [lo, hi] into *out, left alone when absent or null. 0 or -1. */
static int get_number(json_t *o, const char *key, double lo, double hi, float *out, api_error *e) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_number(v) || !(json_number_value(v) >= lo && json_number_value(v) <= hi)) {
        char what[64];
        snprintf(what, sizeof what, "a number in [%g, %g]", lo, hi);
        return bad_field(e, key, what);
    }
    *out = (float)json_number_value(v);
    return 0;
}

/* An integer field in [lo, hi] into *out, left alone when absent or null. 0 or -1. */
static int get_int(json_t *o, const char *key, json_int_t lo, json_int_t hi, json_int_t *out, api_error *e) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        char what[80];
        snprintf(what, sizeof what, "an integer in [%lld, %lld]", (long long)lo, (long long)hi);
        return bad_field(e, key, what);
    }
    *out = json_integer_value(v);
    return 0;
}

/* A boolean field into *out, left alone when absent or null. 0 or -1. */
static int get_bool(json_t *o, const char *key, bool *out, api_error *e) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v)) return bad_field(e, key, "a boolean");
    *out = json_is_true(v);
    return 0;
}

/* The fields completions and chat share: model, sampling, stop, stream. 0 or -1. */
static int parse_common(json_t *o, api_request *rq, api_error *e) {
    rq->max_tokens = -1;
    rq->temperature = 1.0f;     /* OpenAI's default */
    rq->top_p = 1.0f;
    rq->seed = 42;
    rq->logprobs = -1;
    json_t *m = json_object_get(o, "model");
    if (!m) { api_fail(e, 400, "invalid_request_error", "model", "'model' is required"); return -1; }
    if (!json_is_string(m)) return bad_field(e, "model", "a string");
    rq->model = xstrdup(json_string_value(m));
    json_int_t max_tokens = -1, seed = 42, n = 1;
    if (get_int(o, "max_tokens", 0, INT32_MAX, &max_tokens, e)) return -1;
    if (get_int(o, "max_completion_tokens", 0, INT32_MAX, &max_tokens, e)) return -1;
    if (get_int(o, "seed", INT64_MIN, INT64_MAX, &seed, e)) return -1;
    if (get_int(o, "n", 1, 1, &n, e)) return -1;
    rq->max_tokens = (int)max_tokens;
    rq->seed = (uint64_t)seed;
    if (get_number(o, "temperature", 0, 2, &rq->temperature, e)) return -1;
    if (get_number(o, "top_p", 0, 1, &rq->top_p, e)) return -1;
    if (get_bool(o, "stream", &rq->stream, e)) return -1;
    json_t *stop = json_object_get(o, "stop");
    if (stop && !json_is_null(stop)) {
        const char *what = "a string or a list of up to 4 strings";
        if (json_is_string(stop)) {
            rq->stop = xmalloc(sizeof *rq->stop);
            rq->stop[rq->n_stop++] = xstrdup(json_string_value(stop));
        } else if (json_is_array(stop) && json_array_size(stop) <= 4) {
            rq->stop = xmalloc((json_array_size(stop) + 1) * sizeof *rq->stop);
            for (size_t i = 0; i < json_array_size(stop); i++) {
                json_t *s = json_array_get(stop, i);
                if (!json_is_string(s)) return bad_field(e, "stop", what);
                rq->stop[rq->n_stop++] = xstrdup(json_string_value(s));
            }
        } else return bad_field(e, "stop", what);
        for (int i = 0; i < rq->n_stop; i++)
            if (!rq->stop[i][0]) return bad_field(e, "stop", "non-empty strings");
    }
    return 0;
}

int api_parse_completion(const char *body, size_t len, api_request *rq, api_error *e) {
    memset(rq, 0, sizeof *rq);
    json_t *o;
    if (parse_object(body, len, &o, e)) return -1;
    int rc = -1;
    if (parse_common(o, rq, e)) goto done;
    if (rq->max_tokens < 0) rq->max_tokens = 16;     /* OpenAI's legacy default */
    if (parse_prompt(json_object_get(o, "prompt"), rq, e)) goto done;
    if (get_bool(o, "echo", &rq->echo, e)) goto done;
    json_int_t logprobs = -1;
    if (get_int(o, "logprobs", 0, 20, &logprobs, e)) goto done;
    rq->logprobs = (int)logprobs;
    rc = 0;
done:
    json_decref(o);
    if (rc) api_request_free(rq);   /* a refused request holds nothing */
    return rc;
}

int api_parse_chat(const char *body, size_t len, api_request *rq, api_error *e) {
    memset(rq, 0, sizeof *rq);
    json_t *o;
    if (parse_object(body, len, &o, e)) return -1;
    int rc = -1;
    if (parse_common(o, rq, e)) goto done;
    json_t *msgs = json_object_get(o, "messages");
    if (!msgs) { api_fail(e, 400, "invalid_request_error", "messages", "'messages' is required"); goto done; }
    if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
        bad_field(e, "messages", "a non-empty list of {\"role\", \"content\"} objects");
        goto done;
    }
    rq->messages = xcalloc(json_array_size(msgs), sizeof *rq->messages);
    for (size_t i = 0; i < json_array_size(msgs); i++) {
        json_t *m = json_array_get(msgs, i);
        json_t *role = json_object_get(m, "role"), *content = json_object_get(m, "content");
        if (!json_is_object(m) || !json_is_string(role) || !json_is_string(content)) {
            bad_field(e, "messages", "a list of objects with string \"role\" and \"content\"");
            goto done;
        }
        rq->messages[i].role = xstrdup(json_string_value(role));
        rq->messages[i].content = xstrdup(json_string_value(content));
        rq->n_messages = i + 1;
    }
    bool logprobs = false;
    json_int_t top = -1;
    if (get_bool(o, "logprobs", &logprobs, e)) goto done;
    if (get_int(o, "top_logprobs", 0, 20, &top, e)) goto done;
    if (top >= 0 && !logprobs) {
        bad_field(e, "top_logprobs", "given only with \"logprobs\": true");
        goto done;
    }
    rq->logprobs = logprobs ? (int)(top >= 0 ? top : 0) : -1;
    rc = 0;
done:
    json_decref(o);
    if (rc) api_request_free(rq);   /* a refused request holds nothing */
    return rc;
}

void api_request_free(api_request *rq) {
    free(rq->model);
    for (int i = 0; i < rq->n_prompts; i++) {
        free(rq->prompts[i].text);
        free(rq->prompts[i].ids);
    }
    free(rq->prompts);
    for (size_t i = 0; i < rq->n_messages; i++) {
        free((char *)rq->messages[i].role);
        free((char *)rq->messages[i].content);
    }
    free(rq->messages);
    for (int i = 0; i < rq->n_stop; i++) free(rq->stop[i]);
    free(rq->stop);
    memset(rq, 0, sizeof *rq);
}

size_t api_model_name_len(const char *id, const char **spec) {
    const char *at = strchr(id, '@');
    *spec = at ? at + 1 : NULL;
    return at ? (size_t)(at - id) : strlen(id);
}

json_t *api_token_string(const char *s, size_t len) {
    json_t *v = json_stringn(s, len);
    if (v) return v;
    /* jansson refuses invalid UTF-8: spell the bytes instead */
    char *buf = xmalloc(6 + 4 * len + 1);
    size_t n = (size_t)sprintf(buf, "bytes:");
    for (size_t i = 0; i < len; i++) n += (size_t)sprintf(buf + n, "\\x%02x", (unsigned char)s[i]);
    v = json_stringn(buf, n);
    free(buf);
    return v;
}
