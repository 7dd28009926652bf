/* server: the HTTP routes of rys serve over libmicrohttpd (server.h). */
#include "serve/server.h"
#include "serve/api.h"

#include "base/util.h"
#include "engine/forward.h"
#include "engine/generate.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A body larger than this is refused with 413 before it is read. */
#define BODY_LIMIT (8u << 20)
/* Prompt positions per forward call when every position's logits are wanted
 * (echo with logprobs): bounds the logits buffer to this many rows. */
#define ECHO_CHUNK 64

typedef struct {
    const serve_config *cfg;
    pthread_mutex_t infer;      /* one request through the model at a time */
    atomic_int in_flight;       /* requests begun and not yet completed */
    atomic_long next_id;
} server;

/* One connection's request while its body arrives. */
typedef struct {
    char *body;
    size_t len, cap;
    bool too_large;         /* a body without a length passed the limit: the rest is dropped */
} conn_req;

/* ---- responses ------------------------------------------------------------ */

/* Queues o (consumed) as the JSON response with the given status. */
static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, json_t *o) {
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result send_error(struct MHD_Connection *c, const api_error *e) {
    return send_json(c, (unsigned)e->status, api_error_json(e));
}

/* ---- model ids and paths -------------------------------------------------- */

int serve_path_from_spec(const char *spec, int n_model, layer_path *out) {
    if (!strcmp(spec, "baseline")) return path_baseline(n_model, out);
    if (!strncmp(spec, "blocks:", 7)) return path_from_blocks(spec + 7, n_model, out);
    if (!strncmp(spec, "layers:", 7)) return path_from_layers(spec + 7, n_model, out);
    rys_seterr("'%s' is not a path spec (baseline, blocks:I,J or layers:LIST)", spec);
    return -1;
}

/* The path a request's model id asks for: one served, or any valid spec after
 * "NAME@". *owned is set (to be freed) when the path was parsed for this
 * request. NULL with e set (404) for an id naming no model or path. */
static const layer_path *resolve_model(const server *s, const char *id, layer_path *owned, bool *is_owned,
                                       api_error *e) {
    *is_owned = false;
    for (int i = 0; i < s->cfg->n_paths; i++)
        if (!strcmp(id, s->cfg->paths[i].id)) return &s->cfg->paths[i].path;
    const char *spec;
    size_t name_len = api_model_name_len(id, &spec);
    if (spec && name_len == strlen(s->cfg->name) && !strncmp(id, s->cfg->name, name_len)) {
        if (serve_path_from_spec(spec, s->cfg->m->hp.n_layers, owned) == 0) {
            *is_owned = true;
            return owned;
        }
        api_fail(e, 404, "invalid_request_error", "model", "model '%s': %s", id, rys_lasterr());
    } else {
        api_fail(e, 404, "invalid_request_error", "model", "the model '%s' does not exist (GET /v1/models lists them)",
                 id);
    }
    e->code = "model_not_found";
    return NULL;
}

/* ---- log-probabilities ---------------------------------------------------- */

/* dst = log-softmax of the n logits in src (computed in double). */
static void log_softmax(const float *src, int n, float *dst) {
    double max = src[0];
    for (int i = 1; i < n; i++) if (src[i] > max) max = src[i];
    double sum = 0;
    for (int i = 0; i < n; i++) sum += exp((double)src[i] - max);
    double lse = max + log(sum);
    for (int i = 0; i < n; i++) dst[i] = (float)((double)src[i] - lse);
}

/* The k largest entries of lsm (k <= 20), ids into top_ids, values into top_lp, largest first. */
static void top_k(const float *lsm, int n, int k, int32_t *top_ids, float *top_lp) {
    for (int j = 0; j < k; j++) {
        int best = -1;
        for (int i = 0; i < n; i++) {
            bool taken = false;
            for (int q = 0; q < j; q++) taken |= top_ids[q] == i;
            if (!taken && (best < 0 || lsm[i] > lsm[best])) best = i;
        }
        top_ids[j] = best;
        top_lp[j] = lsm[best];
    }
}

/* Log-probabilities of a run of tokens: per token its own and the top k. */
typedef struct {
    int n, cap, k;
    float *lp;          /* [cap]; NAN = none (the first prompt token) */
    int32_t *top_ids;   /* [cap][k] */
    float *top_lp;      /* [cap][k] */
} lp_list;

static void lp_push(lp_list *l, const float *lsm, int n_vocab, int32_t token) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->lp = xrealloc(l->lp, (size_t)l->cap * sizeof *l->lp);
        l->top_ids = xrealloc(l->top_ids, (size_t)l->cap * (size_t)(l->k ? l->k : 1) * sizeof *l->top_ids);
        l->top_lp = xrealloc(l->top_lp, (size_t)l->cap * (size_t)(l->k ? l->k : 1) * sizeof *l->top_lp);
    }
    l->lp[l->n] = lsm ? lsm[token] : NAN;
    if (lsm) top_k(lsm, n_vocab, l->k, l->top_ids + (size_t)l->n * l->k, l->top_lp + (size_t)l->n * l->k);
    l->n++;
}

static void lp_free(lp_list *l) { free(l->lp); free(l->top_ids); free(l->top_lp); }

/* Appends the first n tokens of ids with their entries of l to the four
 * arrays of a completion's logprobs object; *offset is the running text offset. */
static void lp_append_json(const tokenizer *tok, const int32_t *ids, int n, const lp_list *l, json_t *lp_obj,
                           size_t *offset) {
    json_t *tokens = json_object_get(lp_obj, "tokens"), *token_lp = json_object_get(lp_obj, "token_logprobs"),
           *top = json_object_get(lp_obj, "top_logprobs"), *offs = json_object_get(lp_obj, "text_offset");
    for (int i = 0; i < n; i++) {
        size_t len;
        const char *bytes = tokenizer_token_bytes(tok, ids[i], &len);
        json_array_append_new(tokens, api_token_string(bytes, len));
        json_array_append_new(offs, json_integer((json_int_t)*offset));
        *offset += len;
        if (isnan(l->lp[i])) {
            json_array_append_new(token_lp, json_null());
            json_array_append_new(top, json_null());
            continue;
        }
        json_array_append_new(token_lp, json_real(l->lp[i]));
        json_t *alts = json_object();
        for (int j = 0; j < l->k; j++) {
            int32_t id = l->top_ids[(size_t)i * l->k + j];
            const char *b = tokenizer_token_bytes(tok, id, &len);
            json_t *key = api_token_string(b, len);
            json_object_set_new(alts, json_string_value(key), json_real(l->top_lp[(size_t)i * l->k + j]));
            json_decref(key);
        }
        json_array_append_new(top, alts);
    }
}

/* The prompt's own log-probabilities (echo): every position's logits, run in
 * chunks on a context of its own; the first token gets none. 0 or -1. */
static int prompt_logprobs(const server *s, const layer_path *path, const int32_t *ids, int n, lp_list *out) {
    const model *m = s->cfg->m;
    int n_vocab = m->hp.n_vocab;
    forward_ctx *f = forward_new(m, path, 1, n, s->cfg->pool);
    if (!f) return -1;
    float *logits = xmalloc((size_t)ECHO_CHUNK * n_vocab * sizeof(float)), *lsm = xmalloc((size_t)n_vocab * sizeof(float));
    int32_t pos[ECHO_CHUNK], seq[ECHO_CHUNK] = {0};
    int rc = 0;
    lp_push(out, NULL, n_vocab, ids[0]);
    for (int start = 0; start < n && rc == 0; start += ECHO_CHUNK) {
        int len = n - start < ECHO_CHUNK ? n - start : ECHO_CHUNK;
        for (int i = 0; i < len; i++) pos[i] = start + i;
        fwd_batch b = {len, ids + start, pos, seq, NULL};
        if (forward_batch(f, &b, logits) < 0) { rc = -1; break; }
        /* row i predicts token start + i + 1 */
        for (int i = 0; i < len && start + i + 1 < n; i++) {
            log_softmax(logits + (size_t)i * n_vocab, n_vocab, lsm);
            lp_push(out, lsm, n_vocab, ids[start + i + 1]);
        }
    }
    free(logits);
    free(lsm);
    forward_free(f);
    return rc;
}

/* ---- generation ----------------------------------------------------------- */

/* What a stream's client has been sent of a choice's text, and its stop strings. */
typedef struct stream stream;

/* The generation of one request: the runner wrapped to keep each sequence's
 * latest log-softmax (for logprobs), the text so far (for stop strings). */
typedef struct {
    gen_runner inner;
    int n_vocab, n_seq;
    float *lsm;             /* [n_seq][n_vocab], NULL when no logprobs are wanted */
    lp_list *lps;           /* [n_seq] */
    const tokenizer *tok;
    /* chat: the one sequence's text as it grows, for stop strings and streaming */
    char *text;
    size_t text_len, text_cap, emitted;
    tokenizer_stream ts;
    char *const *stop;
    int n_stop;
    long stop_at;           /* where a stop string begins in text, -1 = none yet */
    stream *sink;           /* set: send each new piece of text as it is safe to */
    sample_params sp;       /* temperature, top_p, seed (n_predict: per sequence in the request) */
} gen_job;

static void stream_send_delta(stream *st, const char *text, size_t len);

static void keep_lsm(gen_job *j, int seq, const float *row) {
    if (j->lsm) log_softmax(row, j->n_vocab, j->lsm + (size_t)seq * j->n_vocab);
}

static int job_prefill(void *self, const gen_request *rq, float *logits, int *logit_row) {
    gen_job *j = self;
    if (j->inner.prefill(j->inner.self, rq, logits, logit_row)) return -1;
    for (int s = 0; s < rq->n; s++) keep_lsm(j, s, logits + (size_t)logit_row[s] * j->n_vocab);
    return 0;
}

static int job_step(void *self, const fwd_batch *rows, float *logits, int *logit_row) {
    gen_job *j = self;
    if (j->inner.step(j->inner.self, rows, logits, logit_row)) return -1;
    for (int i = 0; i < rows->n; i++) keep_lsm(j, rows->seq[i], logits + (size_t)logit_row[i] * j->n_vocab);
    return 0;
}

/* Where the earliest stop string begins in text[0..len), or -1. */
static long find_stop(const char *text, size_t len, char *const *stop, int n_stop) {
    long best = -1;
    for (int i = 0; i < n_stop; i++) {
        const char *hit = memmem(text, len, stop[i], strlen(stop[i]));
        if (hit && (best < 0 || hit - text < best)) best = hit - text;
    }
    return best;
}

/* Sends what of the text can no longer become part of a stop string (all of
 * it when final), never splitting a UTF-8 character. */
static void job_emit(gen_job *j, bool final) {
    if (!j->sink) return;
    size_t upto = j->stop_at >= 0 ? (size_t)j->stop_at : j->text_len;
    if (!final && j->stop_at < 0) {
        size_t hold = 0;
        for (int i = 0; i < j->n_stop; i++)
            if (strlen(j->stop[i]) - 1 > hold) hold = strlen(j->stop[i]) - 1;
        upto = upto > hold ? upto - hold : 0;
        while (upto > j->emitted && ((unsigned char)j->text[upto] & 0xC0) == 0x80) upto--;
    }
    if (upto > j->emitted) {
        stream_send_delta(j->sink, j->text + j->emitted, upto - j->emitted);
        j->emitted = upto;
    }
}

/* Appends len bytes to the job's text and looks for a stop string in it. */
static void job_add_text(gen_job *j, const char *bytes, size_t len) {
    if (j->stop_at >= 0) return;
    if (j->text_len + len + 1 > j->text_cap) {
        j->text_cap = 2 * (j->text_len + len + 1);
        j->text = xrealloc(j->text, j->text_cap);
    }
    memcpy(j->text + j->text_len, bytes, len);
    j->text_len += len;
    j->text[j->text_len] = 0;
    j->stop_at = find_stop(j->text, j->text_len, j->stop, j->n_stop);
    job_emit(j, false);
}

static void job_on_token(void *user, int seq, int32_t t) {
    gen_job *j = user;
    if (j->lsm) lp_push(&j->lps[seq], j->lsm + (size_t)seq * j->n_vocab, j->n_vocab, t);
    if (j->n_seq == 1) {
        size_t len;
        tokenizer_token_bytes(j->tok, t, &len);
        char *buf = xmalloc(len + 8);
        size_t n = tokenizer_stream_token(j->tok, &j->ts, t, buf, len + 8);
        job_add_text(j, buf, n);
        free(buf);
    }
}

/* Runs the prompts along path, each making up to n_predict[s] tokens, with
 * logprobs (top k) when k >= 0. out has n entries. 0 or -1 with the error set. */
static int run_generation(const server *s, const layer_path *path, const gen_request *rq, int k, gen_job *j,
                          gen_output *out) {
    int need = 1;
    for (int q = 0; q < rq->n; q++)
        if (rq->prompt_len[q] + rq->n_predict[q] > need) need = rq->prompt_len[q] + rq->n_predict[q];
    forward_ctx *f = forward_new(s->cfg->m, path, rq->n, need, s->cfg->pool);
    if (!f) return -1;
    j->inner = gen_runner_forward(f);
    j->n_vocab = j->inner.n_vocab;
    j->n_seq = rq->n;
    j->tok = s->cfg->tok;
    j->lps = xcalloc((size_t)rq->n, sizeof *j->lps);
    for (int q = 0; q < rq->n; q++) j->lps[q].k = k < 0 ? 0 : k;
    if (k >= 0) j->lsm = xmalloc((size_t)rq->n * j->n_vocab * sizeof(float));
    gen_runner r = {j, j->n_vocab, job_prefill, job_step};
    int rc = generate_loop(&r, s->cfg->tok, rq, &j->sp, out, job_on_token, j);
    if (rc == 0 && j->n_seq == 1) {
        char tail[8];
        job_add_text(j, tail, tokenizer_stream_flush(&j->ts, tail, sizeof tail));
    }
    forward_free(f);
    return rc;
}

static void job_free(gen_job *j) {
    if (j->lps)
        for (int q = 0; q < j->n_seq; q++) lp_free(&j->lps[q]);
    free(j->lps);
    free(j->lsm);
    free(j->text);
}

/* A job for request rq: its sampling parameters and stop strings. */
static gen_job job_for(const api_request *rq) {
    gen_job j = {0};
    j.stop = rq->stop;
    j.n_stop = rq->n_stop;
    j.stop_at = -1;
    j.sp = (sample_params){rq->temperature, rq->top_p, rq->seed, 0};
    return j;
}

/* ---- /v1/completions ------------------------------------------------------ */

/* The ids of a prompt: text tokenized (BOS as the model says, special tokens
 * parsed, as rys run does) or the ids as given, checked against the
 * vocabulary and the context. 0 or -1 with e set. */
static int prompt_ids(const server *s, const api_prompt *p, const char *param, int32_t **ids, int *n, api_error *e) {
    if (p->text) {
        size_t len;
        if (tokenizer_encode(s->cfg->tok, p->text, strlen(p->text), true, true, ids, &len)) {
            api_fail(e, 400, "invalid_request_error", param, "%s", rys_lasterr());
            return -1;
        }
        *n = (int)len;
    } else {
        *ids = xmalloc((size_t)p->n_ids * sizeof **ids);
        memcpy(*ids, p->ids, (size_t)p->n_ids * sizeof **ids);
        *n = p->n_ids;
        for (int i = 0; i < *n; i++)
            if ((*ids)[i] >= s->cfg->m->hp.n_vocab) {
                api_fail(e, 400, "invalid_request_error", param, "token id %d is outside the vocabulary of %d",
                         (*ids)[i], s->cfg->m->hp.n_vocab);
                return -1;
            }
    }
    if (*n == 0) { api_fail(e, 400, "invalid_request_error", param, "the prompt has no tokens"); return -1; }
    if (*n > s->cfg->n_ctx) {
        api_fail(e, 400, "invalid_request_error", param, "the prompt has %d tokens, more than the context of %d", *n,
                 s->cfg->n_ctx);
        e->code = "context_length_exceeded";
        return -1;
    }
    return 0;
}

static json_t *new_lp_obj(void) {
    json_t *o = json_object();
    json_object_set_new(o, "tokens", json_array());
    json_object_set_new(o, "token_logprobs", json_array());
    json_object_set_new(o, "top_logprobs", json_array());
    json_object_set_new(o, "text_offset", json_array());
    return o;
}

/* The response object's common head: id, object, created, model. */
static json_t *response_head(server *s, const char *prefix, const char *object, const char *model_id) {
    char id[64];
    snprintf(id, sizeof id, "%s-%ld", prefix, atomic_fetch_add(&s->next_id, 1));
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(id));
    json_object_set_new(o, "object", json_string(object));
    json_object_set_new(o, "created", json_integer((json_int_t)time(NULL)));
    json_object_set_new(o, "model", json_string(model_id));
    return o;
}

static json_t *usage_json(long prompt, long completion) {
    json_t *u = json_object();
    json_object_set_new(u, "prompt_tokens", json_integer(prompt));
    json_object_set_new(u, "completion_tokens", json_integer(completion));
    json_object_set_new(u, "total_tokens", json_integer(prompt + completion));
    return u;
}

/* Answers a parsed completion request along path (under the inference lock). */
static enum MHD_Result do_completion(server *s, struct MHD_Connection *c, const api_request *rq,
                                     const layer_path *path) {
    const tokenizer *tok = s->cfg->tok;
    int n = rq->n_prompts;
    int32_t **ids = xcalloc((size_t)n, sizeof *ids);
    int *n_ids = xcalloc((size_t)n, sizeof *n_ids), *n_predict = xcalloc((size_t)n, sizeof *n_predict);
    lp_list *echo_lps = xcalloc((size_t)n, sizeof *echo_lps);
    gen_output *out = xcalloc((size_t)n, sizeof *out);
    gen_job j = job_for(rq);
    api_error e;
    json_t *resp = NULL;
    bool generated = false;
    for (int q = 0; q < n; q++) {
        if (prompt_ids(s, &rq->prompts[q], "prompt", &ids[q], &n_ids[q], &e)) goto fail;
        int room = s->cfg->n_ctx - n_ids[q];
        n_predict[q] = rq->max_tokens < room ? rq->max_tokens : room;
    }
    if (rq->echo && rq->logprobs >= 0)
        for (int q = 0; q < n; q++) {
            echo_lps[q].k = rq->logprobs;
            if (prompt_logprobs(s, path, ids[q], n_ids[q], &echo_lps[q])) goto internal;
        }
    bool any = false;
    for (int q = 0; q < n; q++) any |= n_predict[q] > 0;
    if (any) {
        gen_request grq = {n, (const int32_t *const *)ids, n_ids, n_predict, NULL};
        if (run_generation(s, path, &grq, rq->logprobs, &j, out)) goto internal;
        generated = true;
    }
    resp = response_head(s, "cmpl", "text_completion", rq->model);
    json_t *choices = json_array();
    long n_prompt_tokens = 0, n_completion = 0;
    for (int q = 0; q < n; q++) {
        int n_out = generated ? out[q].n : 0;
        char *gen_text = tokenizer_decode(tok, generated ? out[q].tokens : NULL, (size_t)n_out);
        size_t gen_len = strlen(gen_text);
        const char *finish = generated && out[q].hit_eog ? "stop" : "length";
        long cut = find_stop(gen_text, gen_len, rq->stop, rq->n_stop);
        int keep = n_out;      /* generated tokens reported: those that begin before the stop string */
        if (cut >= 0) {
            gen_text[cut] = 0;
            gen_len = (size_t)cut;
            finish = "stop";
            size_t off = 0;
            for (keep = 0; keep < n_out; keep++) {
                size_t len;
                tokenizer_token_bytes(tok, out[q].tokens[keep], &len);
                if (off >= (size_t)cut) break;
                off += len;
            }
        }
        char *prompt_text = NULL;
        if (rq->echo) prompt_text = rq->prompts[q].text ? xstrdup(rq->prompts[q].text)
                                                        : tokenizer_decode(tok, ids[q], (size_t)n_ids[q]);
        char *text = xmalloc((prompt_text ? strlen(prompt_text) : 0) + gen_len + 1);
        sprintf(text, "%s%s", prompt_text ? prompt_text : "", gen_text);
        json_t *ch = json_object();
        json_object_set_new(ch, "index", json_integer(q));
        json_t *jt = json_string(text);
        json_object_set_new(ch, "text", jt ? jt : api_token_string(text, strlen(text)));
        if (rq->logprobs >= 0) {
            json_t *lp = new_lp_obj();
            size_t offset = 0;
            if (rq->echo) lp_append_json(tok, ids[q], n_ids[q], &echo_lps[q], lp, &offset);
            if (generated) {
                /* an end-of-generation token is not in the text but is reported with its
                 * log-probability, as OpenAI does: lm-evaluation-harness drops the last
                 * entry of an echo with max_tokens 1, which must be the generated one */
                int32_t *gen_ids = xmalloc(((size_t)keep + 1) * sizeof *gen_ids);
                memcpy(gen_ids, out[q].tokens, (size_t)keep * sizeof *gen_ids);
                int n_gen = keep;
                if (keep == n_out && out[q].hit_eog) {
                    lp_push(&j.lps[q], j.lsm + (size_t)q * j.n_vocab, j.n_vocab, out[q].eog_token);
                    gen_ids[n_gen++] = out[q].eog_token;
                }
                lp_append_json(tok, gen_ids, n_gen, &j.lps[q], lp, &offset);
                free(gen_ids);
            }
            json_object_set_new(ch, "logprobs", lp);
        } else {
            json_object_set_new(ch, "logprobs", json_null());
        }
        json_object_set_new(ch, "finish_reason", json_string(finish));
        json_array_append_new(choices, ch);
        n_prompt_tokens += n_ids[q];
        n_completion += n_out;
        free(text);
        free(prompt_text);
        free(gen_text);
    }
    json_object_set_new(resp, "choices", choices);
    json_object_set_new(resp, "usage", usage_json(n_prompt_tokens, n_completion));
    goto done;
internal:
    api_fail(&e, 500, "server_error", NULL, "%s", rys_lasterr());
fail:
    resp = api_error_json(&e);
done:;
    unsigned status = json_object_get(resp, "error") ? (unsigned)e.status : 200;
    for (int q = 0; q < n; q++) {
        free(ids[q]);
        lp_free(&echo_lps[q]);
    }
    if (generated) gen_output_free(out, n);
    free(out); free(ids); free(n_ids); free(n_predict); free(echo_lps);
    job_free(&j);
    return send_json(c, status, resp);
}

/* ---- /v1/chat/completions ------------------------------------------------- */

/* A streamed response's bytes between the generating thread and the
 * connection's reader. */
struct stream {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *buf;
    size_t len, cap, sent;
    bool done;
    pthread_t thread;
    /* the job the thread runs */
    server *s;
    api_request rq;
    int32_t *ids;
    int n_ids, n_predict;
    layer_path owned;
    bool owns_path;
    const layer_path *path;
    char id[64];
    time_t created;
    bool chat;              /* chat.completion.chunk deltas, else text_completion texts */
};

static void stream_write(stream *st, const char *data, size_t len) {
    pthread_mutex_lock(&st->mu);
    if (st->len + len > st->cap) {
        st->cap = 2 * (st->len + len);
        st->buf = xrealloc(st->buf, st->cap);
    }
    memcpy(st->buf + st->len, data, len);
    st->len += len;
    pthread_cond_signal(&st->cv);
    pthread_mutex_unlock(&st->mu);
}

/* Sends one server-sent event "data: <o as compact JSON>\n\n"; o is consumed. */
static void stream_event(stream *st, json_t *o) {
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    stream_write(st, "data: ", 6);
    stream_write(st, text, strlen(text));
    stream_write(st, "\n\n", 2);
    free(text);
}

/* Sends one chunk: a chat.completion.chunk whose delta holds content (if
 * any) and the role (with_role), or a text_completion whose text is content
 * (or ""); finish is the finish reason or NULL. content is consumed. */
static void stream_chunk(stream *st, json_t *content, bool with_role, const char *finish) {
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(st->id));
    json_object_set_new(o, "object", json_string(st->chat ? "chat.completion.chunk" : "text_completion"));
    json_object_set_new(o, "created", json_integer((json_int_t)st->created));
    json_object_set_new(o, "model", json_string(st->rq.model));
    json_t *ch = json_object();
    json_object_set_new(ch, "index", json_integer(0));
    if (st->chat) {
        json_t *delta = json_object();
        if (with_role) json_object_set_new(delta, "role", json_string("assistant"));
        if (content) json_object_set_new(delta, "content", content);
        json_object_set_new(ch, "delta", delta);
    } else {
        json_object_set_new(ch, "text", content ? content : json_string(""));
        json_object_set_new(ch, "logprobs", json_null());
    }
    json_object_set_new(ch, "finish_reason", finish ? json_string(finish) : json_null());
    json_t *choices = json_array();
    json_array_append_new(choices, ch);
    json_object_set_new(o, "choices", choices);
    stream_event(st, o);
}

static void stream_send_delta(stream *st, const char *text, size_t len) {
    stream_chunk(st, api_token_string(text, len), false, NULL);
}

/* The chat answer's text and finish reason from a finished job. */
static const char *chat_finish(const gen_job *j, const gen_output *out) {
    if (j->stop_at >= 0 || out->hit_eog) return "stop";
    return "length";
}

/* The streaming thread: generates under the inference lock, sending chunks. */
static void *stream_main(void *arg) {
    stream *st = arg;
    server *s = st->s;
    if (st->chat) stream_chunk(st, json_string(""), true, NULL);
    gen_job j = job_for(&st->rq);
    j.sink = st;
    gen_output out = {0};
    pthread_mutex_lock(&s->infer);
    gen_request grq = {1, (const int32_t *const *)&st->ids, &st->n_ids, &st->n_predict, NULL};
    int rc = st->n_predict > 0 ? run_generation(s, st->path, &grq, -1, &j, &out) : 0;
    pthread_mutex_unlock(&s->infer);
    if (rc) {
        /* the status line is sent: the error goes as an event of its own */
        api_error e;
        api_fail(&e, 500, "server_error", NULL, "%s", rys_lasterr());
        stream_event(st, api_error_json(&e));
    } else {
        job_emit(&j, true);
        stream_chunk(st, NULL, false, chat_finish(&j, &out));
    }
    stream_write(st, "data: [DONE]\n\n", 14);
    if (st->n_predict > 0 && rc == 0) gen_output_free(&out, 1);
    job_free(&j);
    pthread_mutex_lock(&st->mu);
    st->done = true;
    pthread_cond_signal(&st->cv);
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

/* libmicrohttpd's reader: waits for the thread's next bytes. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    stream *st = cls;
    pthread_mutex_lock(&st->mu);
    while (st->sent == st->len && !st->done) pthread_cond_wait(&st->cv, &st->mu);
    ssize_t n;
    if (st->sent == st->len) n = MHD_CONTENT_READER_END_OF_STREAM;
    else {
        size_t len = st->len - st->sent < max ? st->len - st->sent : max;
        memcpy(buf, st->buf + st->sent, len);
        st->sent += len;
        n = (ssize_t)len;
    }
    pthread_mutex_unlock(&st->mu);
    return n;
}

/* Called when the response is done or the client left: the generation is
 * not interrupted, so wait for it before freeing what it uses. */
static void stream_free(void *cls) {
    stream *st = cls;
    pthread_join(st->thread, NULL);
    api_request_free(&st->rq);
    free(st->ids);
    if (st->owns_path) path_free(&st->owned);
    free(st->buf);
    pthread_mutex_destroy(&st->mu);
    pthread_cond_destroy(&st->cv);
    free(st);
}

/* The chat request's prompt ids: the template's rendering, tokenized as rys
 * run --chat does. 0 or -1 with e set. */
static int chat_ids(const server *s, const api_request *rq, int32_t **ids, int *n, api_error *e) {
    if (!s->cfg->tpl) {
        api_fail(e, 400, "invalid_request_error", "messages", "the model has no chat template rys knows");
        return -1;
    }
    char *text = chat_format(s->cfg->tpl, rq->messages, rq->n_messages, true);
    if (!text) { api_fail(e, 400, "invalid_request_error", "messages", "%s", rys_lasterr()); return -1; }
    api_prompt p = {text, NULL, 0};
    int rc = prompt_ids(s, &p, "messages", ids, n, e);
    free(text);
    return rc;
}

/* Answers with a stream of server-sent events that a thread of its own
 * fills: it takes over rq, ids and the path when *owns_path (the caller's
 * copies are cleared). */
static enum MHD_Result start_stream(server *s, struct MHD_Connection *c, bool chat, api_request *rq, int32_t *ids,
                                    int n_ids, int n_predict, layer_path *owned, bool *owns_path,
                                    const layer_path *path) {
    stream *st = xcalloc(1, sizeof *st);
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->cv, NULL);
    st->s = s;
    st->chat = chat;
    st->rq = *rq;
    memset(rq, 0, sizeof *rq);
    st->ids = ids;
    st->n_ids = n_ids;
    st->n_predict = n_predict;
    if (*owns_path) {
        st->owned = *owned;
        st->owns_path = true;
        *owns_path = false;
        st->path = &st->owned;
    } else {
        st->path = path;
    }
    snprintf(st->id, sizeof st->id, "%s-%ld", chat ? "chatcmpl" : "cmpl", atomic_fetch_add(&s->next_id, 1));
    st->created = time(NULL);
    if (pthread_create(&st->thread, NULL, stream_main, st)) rys_die("serve: cannot start a thread");
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, st, stream_free);
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    enum MHD_Result rc = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return rc;
}

/* Answers a chat request along path; a stream takes over rq and the path. */
static enum MHD_Result do_chat(server *s, struct MHD_Connection *c, api_request *rq, layer_path *owned,
                               bool *owns_path, const layer_path *path) {
    api_error e;
    int32_t *ids = NULL;
    int n_ids;
    if (chat_ids(s, rq, &ids, &n_ids, &e)) {
        free(ids);      /* set when the prompt tokenized but did not fit */
        return send_error(c, &e);
    }
    int room = s->cfg->n_ctx - n_ids;
    int n_predict = rq->max_tokens >= 0 && rq->max_tokens < room ? rq->max_tokens : room;
    if (rq->stream) return start_stream(s, c, true, rq, ids, n_ids, n_predict, owned, owns_path, path);
    gen_job j = job_for(rq);
    gen_output out = {0};
    pthread_mutex_lock(&s->infer);
    gen_request grq = {1, (const int32_t *const *)&ids, &n_ids, &n_predict, NULL};
    int rc = n_predict > 0 ? run_generation(s, path, &grq, -1, &j, &out) : 0;
    pthread_mutex_unlock(&s->infer);
    free(ids);
    if (rc) {
        job_free(&j);
        api_fail(&e, 500, "server_error", NULL, "%s", rys_lasterr());
        return send_error(c, &e);
    }
    json_t *resp = response_head(s, "chatcmpl", "chat.completion", rq->model);
    json_t *msg = json_object();
    json_object_set_new(msg, "role", json_string("assistant"));
    size_t len = j.stop_at >= 0 ? (size_t)j.stop_at : j.text_len;
    json_object_set_new(msg, "content", api_token_string(j.text ? j.text : "", len));
    json_t *ch = json_object();
    json_object_set_new(ch, "index", json_integer(0));
    json_object_set_new(ch, "message", msg);
    json_object_set_new(ch, "logprobs", json_null());
    json_object_set_new(ch, "finish_reason", json_string(chat_finish(&j, &out)));
    json_t *choices = json_array();
    json_array_append_new(choices, ch);
    json_object_set_new(resp, "choices", choices);
    json_object_set_new(resp, "usage", usage_json(n_ids, out.n));
    if (n_predict > 0) gen_output_free(&out, 1);
    job_free(&j);
    return send_json(c, 200, resp);
}

/* ---- /tokenize, /detokenize ----------------------------------------------- */

/* {"content": text [, "add_special": bool]} -> {"tokens": [...]}. */
static enum MHD_Result do_tokenize(server *s, struct MHD_Connection *c, json_t *body) {
    api_error e;
    json_t *content = json_object_get(body, "content"), *special = json_object_get(body, "add_special");
    if (!json_is_string(content)) {
        api_fail(&e, 400, "invalid_request_error", "content", "'content' must be a string");
        return send_error(c, &e);
    }
    if (special && !json_is_boolean(special)) {
        api_fail(&e, 400, "invalid_request_error", "add_special", "'add_special' must be a boolean");
        return send_error(c, &e);
    }
    int32_t *ids;
    size_t n;
    /* no BOS unless asked: llama.cpp's server's default */
    if (tokenizer_encode(s->cfg->tok, json_string_value(content), json_string_length(content), json_is_true(special),
                         true, &ids, &n)) {
        api_fail(&e, 400, "invalid_request_error", "content", "%s", rys_lasterr());
        return send_error(c, &e);
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(arr, json_integer(ids[i]));
    free(ids);
    json_t *o = json_object();
    json_object_set_new(o, "tokens", arr);
    return send_json(c, 200, o);
}

/* {"tokens": [...]} -> {"content": text}. */
static enum MHD_Result do_detokenize(server *s, struct MHD_Connection *c, json_t *body) {
    api_error e;
    json_t *tokens = json_object_get(body, "tokens");
    if (!json_is_array(tokens)) {
        api_fail(&e, 400, "invalid_request_error", "tokens", "'tokens' must be a list of token ids");
        return send_error(c, &e);
    }
    size_t n = json_array_size(tokens);
    int32_t *ids = xmalloc((n ? n : 1) * sizeof *ids);
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(tokens, i);
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= s->cfg->m->hp.n_vocab) {
            free(ids);
            api_fail(&e, 400, "invalid_request_error", "tokens", "'tokens' must be a list of token ids below %d",
                     s->cfg->m->hp.n_vocab);
            return send_error(c, &e);
        }
        ids[i] = (int32_t)json_integer_value(v);
    }
    size_t len;
    char *text = tokenizer_decode_len(s->cfg->tok, ids, n, &len);
    free(ids);
    json_t *o = json_object();
    json_object_set_new(o, "content", api_token_string(text, len));
    free(text);
    return send_json(c, 200, o);
}

/* ---- routing -------------------------------------------------------------- */

static enum MHD_Result do_models(server *s, struct MHD_Connection *c) {
    json_t *data = json_array();
    for (int i = 0; i < s->cfg->n_paths; i++) {
        json_t *m = json_object();
        json_object_set_new(m, "id", json_string(s->cfg->paths[i].id));
        json_object_set_new(m, "object", json_string("model"));
        json_object_set_new(m, "created", json_integer(0));
        json_object_set_new(m, "owned_by", json_string("rys"));
        json_array_append_new(data, m);
    }
    json_t *o = json_object();
    json_object_set_new(o, "object", json_string("list"));
    json_object_set_new(o, "data", data);
    return send_json(c, 200, o);
}

/* A streamed completion: one prompt, without echo or logprobs in this slice. */
static enum MHD_Result completion_stream(server *s, struct MHD_Connection *c, api_request *rq, layer_path *owned,
                                         bool *owns_path, const layer_path *path) {
    api_error e;
    const char *unsupported = rq->n_prompts != 1 ? "prompt" : rq->echo ? "echo" : rq->logprobs >= 0 ? "logprobs" : NULL;
    if (unsupported) {
        api_fail(&e, 400, "invalid_request_error", unsupported,
                 "a streamed completion takes one prompt, without echo or logprobs (not supported yet)");
        return send_error(c, &e);
    }
    int32_t *ids = NULL;
    int n_ids;
    if (prompt_ids(s, &rq->prompts[0], "prompt", &ids, &n_ids, &e)) {
        free(ids);
        return send_error(c, &e);
    }
    int room = s->cfg->n_ctx - n_ids;
    int n_predict = rq->max_tokens < room ? rq->max_tokens : room;
    return start_stream(s, c, false, rq, ids, n_ids, n_predict, owned, owns_path, path);
}

/* Completions and chat: parse, pick the path, answer. */
static enum MHD_Result do_generation(server *s, struct MHD_Connection *c, const conn_req *cr, bool chat) {
    api_request rq;
    api_error e;
    const char *body = cr->body ? cr->body : "";    /* no body at all: parsed as empty, a 400 */
    int parsed = chat ? api_parse_chat(body, cr->len, &rq, &e) : api_parse_completion(body, cr->len, &rq, &e);
    if (parsed) {
        api_request_free(&rq);
        return send_error(c, &e);
    }
    layer_path owned;
    bool owns_path;
    const layer_path *path = resolve_model(s, rq.model, &owned, &owns_path, &e);
    enum MHD_Result rc;
    if (!path) rc = send_error(c, &e);
    else if (chat) rc = do_chat(s, c, &rq, &owned, &owns_path, path);
    else if (rq.stream) rc = completion_stream(s, c, &rq, &owned, &owns_path, path);
    else {
        pthread_mutex_lock(&s->infer);
        rc = do_completion(s, c, &rq, path);
        pthread_mutex_unlock(&s->infer);
    }
    if (owns_path) path_free(&owned);
    api_request_free(&rq);
    return rc;
}

/* A request whose body has fully arrived. */
static enum MHD_Result dispatch(server *s, struct MHD_Connection *c, const char *url, const char *method,
                                const conn_req *cr) {
    api_error e;
    if (s->cfg->api_key && strcmp(url, "/health")) {
        const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
        if (!auth || strncmp(auth, "Bearer ", 7) || strcmp(auth + 7, s->cfg->api_key)) {
            api_fail(&e, 401, "invalid_request_error", NULL, "a valid API key is required (Authorization: Bearer KEY)");
            e.code = "invalid_api_key";
            return send_error(c, &e);
        }
    }
    static const char *const routes[][2] = {
        {"/health", "GET"}, {"/v1/models", "GET"}, {"/v1/completions", "POST"}, {"/v1/chat/completions", "POST"},
        {"/tokenize", "POST"}, {"/detokenize", "POST"},
    };
    int route = -1;
    for (int i = 0; i < (int)(sizeof routes / sizeof routes[0]); i++)
        if (!strcmp(url, routes[i][0])) route = i;
    if (route < 0) {
        api_fail(&e, 404, "invalid_request_error", NULL, "no route %s %s", method, url);
        return send_error(c, &e);
    }
    if (strcmp(method, routes[route][1])) {
        api_fail(&e, 405, "invalid_request_error", NULL, "%s takes %s, not %s", url, routes[route][1], method);
        return send_error(c, &e);
    }
    switch (route) {
    case 0: {
        json_t *o = json_object();
        json_object_set_new(o, "status", json_string("ok"));
        return send_json(c, 200, o);
    }
    case 1: return do_models(s, c);
    case 2: return do_generation(s, c, cr, false);
    case 3: return do_generation(s, c, cr, true);
    default: break;
    }
    json_error_t jerr;
    json_t *body = json_loadb(cr->body ? cr->body : "", cr->len, 0, &jerr);
    if (!json_is_object(body)) {
        json_decref(body);
        api_fail(&e, 400, "invalid_request_error", NULL, "the body must be a JSON object");
        return send_error(c, &e);
    }
    pthread_mutex_lock(&s->infer);
    enum MHD_Result rc = route == 4 ? do_tokenize(s, c, body) : do_detokenize(s, c, body);
    pthread_mutex_unlock(&s->infer);
    json_decref(body);
    return rc;
}

/* libmicrohttpd's handler: called once when the headers are in, then per
 * piece of body, then once more with none left. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    (void)version;
    server *s = cls;
    conn_req *cr = *con_cls;
    if (!cr) {
        *con_cls = cr = xcalloc(1, sizeof *cr);
        atomic_fetch_add(&s->in_flight, 1);
        const char *length = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (length && strtoull(length, NULL, 10) > BODY_LIMIT) {
            api_error e;
            api_fail(&e, 413, "invalid_request_error", NULL, "the body has %s bytes, more than the limit of %u",
                     length, BODY_LIMIT);
            return send_error(c, &e);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (cr->too_large || cr->len + *upload_size > BODY_LIMIT) {
            /* a chunked body with no length: libmicrohttpd takes no response
             * while the body arrives, so drop the rest and answer 413 at its end */
            cr->too_large = true;
            *upload_size = 0;
            return MHD_YES;
        }
        if (cr->len + *upload_size > cr->cap) {
            cr->cap = 2 * (cr->len + *upload_size);
            cr->body = xrealloc(cr->body, cr->cap);
        }
        memcpy(cr->body + cr->len, upload, *upload_size);
        cr->len += *upload_size;
        *upload_size = 0;
        return MHD_YES;
    }
    if (cr->too_large) {
        api_error e;
        api_fail(&e, 413, "invalid_request_error", NULL, "the body is more than the limit of %u bytes", BODY_LIMIT);
        return send_error(c, &e);
    }
    return dispatch(s, c, url, method, cr);
}

/* The request's end (answered, failed or abandoned): free its body. */
static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode term) {
    (void)c;
    (void)term;
    server *s = cls;
    conn_req *cr = *con_cls;
    if (!cr) return;
    free(cr->body);
    free(cr);
    *con_cls = NULL;
    atomic_fetch_sub(&s->in_flight, 1);
}

int serve_run(const serve_config *cfg) {
    server s = {.cfg = cfg};
    pthread_mutex_init(&s.infer, NULL);
    atomic_init(&s.in_flight, 0);
    atomic_init(&s.next_id, 1);
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)cfg->port);
    if (inet_pton(AF_INET, cfg->host, &addr.sin_addr) != 1) {
        rys_seterr("serve: --host '%s' is not an IPv4 address", cfg->host);
        return -1;
    }
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG,
        (uint16_t)cfg->port, NULL, NULL, on_request, &s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, &s, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)600, MHD_OPTION_END);
    if (!d) {
        rys_seterr("serve: cannot listen on %s:%d (in use, or not an address of this machine)", cfg->host, cfg->port);
        pthread_mutex_destroy(&s.infer);
        return -1;
    }
    fprintf(stderr, "rys: serving %d path%s of %s on http://%s:%d (Ctrl-C stops)\n", cfg->n_paths,
            cfg->n_paths == 1 ? "" : "s", cfg->name, cfg->host, cfg->port);
    while (!rys_stop_requested()) usleep(50 * 1000);
    /* stop accepting, let the requests in flight finish, then close */
    MHD_quiesce_daemon(d);
    while (atomic_load(&s.in_flight) > 0) usleep(20 * 1000);
    MHD_stop_daemon(d);
    pthread_mutex_destroy(&s.infer);
    fprintf(stderr, "rys: serve stopped\n");
    return 0;
}
