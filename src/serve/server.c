/* server: the HTTP routes of rys serve over libmicrohttpd and the scheduler
 * that batches their requests (server.h). */
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
#include <poll.h>
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
/* How often a waiting connection looks whether its client is still there. */
#define POLL_MS 100

/* The routes, in the order of the metrics' route label. */
static const char *const ROUTES[][2] = {
    {"/health", "GET"}, {"/v1/models", "GET"}, {"/v1/completions", "POST"}, {"/v1/chat/completions", "POST"},
    {"/tokenize", "POST"}, {"/detokenize", "POST"}, {"/tokenizer_info", "GET"}, {"/metrics", "GET"},
};
enum { R_HEALTH, R_MODELS, R_COMPLETIONS, R_CHAT, R_TOKENIZE, R_DETOKENIZE, R_TOKINFO, R_METRICS, N_ROUTES };
#define R_OTHER N_ROUTES    /* no route: one label for all */

/* Upper bounds (seconds) of the request latency histogram's buckets. */
static const double LAT_BUCKETS[] = {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};
#define N_BUCKETS ((int)(sizeof LAT_BUCKETS / sizeof LAT_BUCKETS[0]))
#define MAX_STATUS_KEYS 64

/* Requests answered with one status on one route. */
typedef struct { int route, status; long n; } status_count;

/* Counters behind /metrics (under mu). */
typedef struct {
    pthread_mutex_t mu;
    status_count by_status[MAX_STATUS_KEYS];
    int n_keys;
    long prompt_tokens, gen_tokens, cancelled, timeouts, rejected;
    long steps, step_seqs;          /* decode steps run, and the sequences in them */
    long echo_shared;               /* echoed prompt positions copied from another prompt of their prefill */
    long lat_bucket[N_BUCKETS];     /* per bucket, not cumulative */
    long lat_count;
    double lat_sum;
} metrics;

typedef struct job job;
typedef struct lane lane;

typedef struct {
    const serve_config *cfg;
    metrics met;
    atomic_int in_flight;       /* requests begun and not yet completed */
    atomic_long next_id;
    atomic_bool draining;       /* SIGINT/SIGTERM: new generations get 503 */
    /* the scheduler's state, under mu: the queue, and the lanes it alone runs */
    pthread_mutex_t mu;
    pthread_cond_t wake;        /* a request queued, or quit */
    job *queue_head, *queue_tail;
    int n_queued;               /* requests with a sequence not yet admitted */
    int n_active;               /* sequences in slots */
    bool quit;
    lane **lanes;
    int n_lanes;
    pthread_t scheduler;
} server;

/* One connection's request while its body arrives, and what it was answered. */
typedef struct {
    char *body;
    size_t len, cap;
    bool too_large;         /* a body without a length passed the limit: the rest is dropped */
    int route;              /* R_*, R_OTHER */
    unsigned status;        /* what it was answered, 0 = nothing yet */
    double t0;
} conn_req;

/* The status of the response this connection's thread queued last (one
 * thread per connection, so a thread-local is the connection's). */
static _Thread_local unsigned queued_status;

/* ---- responses ------------------------------------------------------------ */

/* Queues o (consumed) as the JSON response with the given status; a 429 or
 * 503 says when to come back (Retry-After). */
static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, json_t *o) {
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", "application/json");
    if (status == 429 || status == 503) MHD_add_response_header(r, "Retry-After", "1");
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    queued_status = status;
    return rc;
}

static enum MHD_Result send_error(struct MHD_Connection *c, const api_error *e) {
    return send_json(c, (unsigned)e->status, api_error_json(e));
}

/* Whether the client of c has closed its end (it went away). */
static bool client_gone(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return true;
    struct pollfd p = {ci->connect_fd, POLLRDHUP, 0};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

/* ---- metrics -------------------------------------------------------------- */

/* Counts one answered request: its route, status and seconds. */
static void metrics_request(metrics *m, int route, unsigned status, double seconds) {
    pthread_mutex_lock(&m->mu);
    int k = 0;
    while (k < m->n_keys && !(m->by_status[k].route == route && m->by_status[k].status == (int)status)) k++;
    if (k == m->n_keys && k < MAX_STATUS_KEYS) m->by_status[m->n_keys++] = (status_count){route, (int)status, 0};
    if (k < m->n_keys) m->by_status[k].n++;
    int b = 0;
    while (b < N_BUCKETS && seconds > LAT_BUCKETS[b]) b++;
    if (b < N_BUCKETS) m->lat_bucket[b]++;
    m->lat_count++;
    m->lat_sum += seconds;
    pthread_mutex_unlock(&m->mu);
}

/* Adds n to one of the counters. */
static void metrics_add(metrics *m, long *counter, long n) {
    pthread_mutex_lock(&m->mu);
    *counter += n;
    pthread_mutex_unlock(&m->mu);
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

/* Appends the first n entries of src (same k) to dst. */
static void lp_copy_prefix(lp_list *dst, const lp_list *src, int n) {
    int k = dst->k ? dst->k : 1;
    while (dst->cap < dst->n + n) {
        dst->cap = dst->cap ? 2 * dst->cap : 16;
        dst->lp = xrealloc(dst->lp, (size_t)dst->cap * sizeof *dst->lp);
        dst->top_ids = xrealloc(dst->top_ids, (size_t)dst->cap * k * sizeof *dst->top_ids);
        dst->top_lp = xrealloc(dst->top_lp, (size_t)dst->cap * k * sizeof *dst->top_lp);
    }
    memcpy(dst->lp + dst->n, src->lp, (size_t)n * sizeof *dst->lp);
    if (dst->k) {
        memcpy(dst->top_ids + (size_t)dst->n * k, src->top_ids, (size_t)n * k * sizeof *dst->top_ids);
        memcpy(dst->top_lp + (size_t)dst->n * k, src->top_lp, (size_t)n * k * sizeof *dst->top_lp);
    }
    dst->n += n;
}

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


/* ---- requests as the scheduler sees them ---------------------------------- */

/* One sequence of a request: a prompt of a completion (its choice index) or
 * a chat's conversation. The scheduler alone touches it between admission
 * and the job's end, except the stream buffer (the job's mu). */
typedef struct {
    job *j;
    int index;
    int32_t *ids;
    int n_ids, n_predict;
    bool echo_lp;           /* the prompt's own log-probabilities are wanted (echo + logprobs) */
    sample_params sp;
    rng_state rng;
    gen_output out;
    bool started, done;
    const char *finish;     /* "stop" or "length" once done */
    /* the text as it grows: stop strings and streaming */
    char *text;
    size_t text_len, text_cap, emitted;
    tokenizer_stream ts;
    long stop_at;           /* where a stop string begins in text, -1 = none yet */
    /* log-probabilities: the latest row's log-softmax, per generated token, of the prompt */
    float *lsm;
    lp_list lps, echo_lps;
} item;

/* A request between its connection and the scheduler, freed by whichever
 * lets go of it last (refs). */
struct job {
    server *s;
    api_request rq;
    bool chat, stream;
    layer_path path;
    item *items;
    int n_items;
    int n_admitted, n_done;     /* the scheduler's count */
    double t0, deadline;
    atomic_bool cancelled;      /* the client went away */
    struct MHD_Connection *conn;    /* a stream's connection, to see its client go */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* under mu */
    int refs;
    bool finished;
    int fail_status;            /* 0 = answered; else the error's status */
    const char *fail_type;
    char fail_msg[256];
    char *buf;                  /* a stream's bytes not yet read */
    size_t len, cap, sent;
    char id[64];
    time_t created;
    job *next;                  /* in the queue */
};

static void job_unref(job *j) {
    pthread_mutex_lock(&j->mu);
    bool last = --j->refs == 0;
    pthread_mutex_unlock(&j->mu);
    if (!last) return;
    for (int i = 0; i < j->n_items; i++) {
        item *it = &j->items[i];
        free(it->ids);
        free(it->text);
        free(it->lsm);
        lp_free(&it->lps);
        lp_free(&it->echo_lps);
        if (it->started) gen_output_free(&it->out, 1);
    }
    free(j->items);
    api_request_free(&j->rq);
    path_free(&j->path);
    free(j->buf);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j);
}

/* ---- streaming ------------------------------------------------------------ */

/* Appends bytes to a stream's buffer and wakes its reader (under the job's mu). */
static void stream_write_locked(job *j, const char *data, size_t len) {
    if (j->len + len > j->cap) {
        j->cap = 2 * (j->len + len);
        j->buf = xrealloc(j->buf, j->cap);
    }
    memcpy(j->buf + j->len, data, len);
    j->len += len;
    pthread_cond_broadcast(&j->cv);
}

/* Sends one server-sent event "data: <o as compact JSON>\n\n"; o is consumed. */
static void stream_event(job *j, json_t *o) {
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    pthread_mutex_lock(&j->mu);
    stream_write_locked(j, "data: ", 6);
    stream_write_locked(j, text, strlen(text));
    stream_write_locked(j, "\n\n", 2);
    pthread_mutex_unlock(&j->mu);
    free(text);
}

/* Sends one chunk of choice `index`: a chat.completion.chunk whose delta
 * holds content (if any) and the role (with_role), or a text_completion
 * whose text is content (or ""); finish is the finish reason or NULL.
 * content is consumed. */
static void stream_chunk(job *j, int index, json_t *content, bool with_role, const char *finish) {
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(j->id));
    json_object_set_new(o, "object", json_string(j->chat ? "chat.completion.chunk" : "text_completion"));
    json_object_set_new(o, "created", json_integer((json_int_t)j->created));
    json_object_set_new(o, "model", json_string(j->rq.model));
    json_t *ch = json_object();
    json_object_set_new(ch, "index", json_integer(index));
    if (j->chat) {
        json_t *delta = json_object();
        if (with_role) json_object_set_new(delta, "role", json_string("assistant"));
        if (content) json_object_set_new(delta, "content", content);
        json_object_set_new(ch, "delta", delta);
        json_object_set_new(ch, "logprobs", json_null());
    } else {
        json_object_set_new(ch, "text", content ? content : json_string(""));
        json_object_set_new(ch, "logprobs", json_null());
    }
    json_object_set_new(ch, "finish_reason", finish ? json_string(finish) : json_null());
    json_t *choices = json_array();
    json_array_append_new(choices, ch);
    json_object_set_new(o, "choices", choices);
    stream_event(j, o);
}

/* ---- an item's text: stop strings, streaming ------------------------------ */

/* Where the earliest stop string begins in text[0..len), or -1. */
static long find_stop(const char *text, size_t len, char *const *stop, int n_stop) {
    long best = -1;
    for (int i = 0; i < n_stop; i++) {
        const char *hit = memmem(text, len, stop[i], strlen(stop[i]));
        if (hit && (best < 0 || hit - text < best)) best = hit - text;
    }
    return best;
}

/* Streams what of the item's text can no longer become part of a stop
 * string (all of it when final), never splitting a UTF-8 character. */
static void item_emit(item *it, bool final) {
    job *j = it->j;
    if (!j->stream) return;
    size_t upto = it->stop_at >= 0 ? (size_t)it->stop_at : it->text_len;
    if (!final && it->stop_at < 0) {
        size_t hold = 0;
        for (int i = 0; i < j->rq.n_stop; i++)
            if (strlen(j->rq.stop[i]) - 1 > hold) hold = strlen(j->rq.stop[i]) - 1;
        upto = upto > hold ? upto - hold : 0;
        while (upto > it->emitted && ((unsigned char)it->text[upto] & 0xC0) == 0x80) upto--;
    }
    if (upto > it->emitted) {
        stream_chunk(j, it->index, api_token_string(it->text + it->emitted, upto - it->emitted), false, NULL);
        it->emitted = upto;
    }
}

/* Appends len bytes to the item's text and looks for a stop string in it. */
static void item_add_text(item *it, const char *bytes, size_t len) {
    if (it->stop_at >= 0) return;
    if (it->text_len + len + 1 > it->text_cap) {
        it->text_cap = 2 * (it->text_len + len + 1);
        it->text = xrealloc(it->text, it->text_cap);
    }
    memcpy(it->text + it->text_len, bytes, len);
    it->text_len += len;
    it->text[it->text_len] = 0;
    const api_request *rq = &it->j->rq;
    /* a stop string can only begin where it would still overlap the new bytes */
    size_t longest = 0;
    for (int i = 0; i < rq->n_stop; i++)
        if (strlen(rq->stop[i]) > longest) longest = strlen(rq->stop[i]);
    size_t from = it->text_len > len + longest ? it->text_len - len - longest : 0;
    long at = find_stop(it->text + from, it->text_len - from, rq->stop, rq->n_stop);
    it->stop_at = at >= 0 ? (long)from + at : -1;
    item_emit(it, false);
}

/* ---- lanes: one path's decode loop ---------------------------------------- */

/* A path's forward context with max_batch KV sequences and its decode loop;
 * the items in its slots. Served paths keep theirs; a path named only by a
 * request's model id loses its lane when the lane is idle. */
struct lane {
    server *s;
    layer_path path;
    bool keep;
    forward_ctx *f;
    gen_runner inner;           /* forward_batch on f */
    gen_loop *g;
    item **slot;                /* [max_batch] */
    int n_busy;
    float *chunk;               /* [ECHO_CHUNK][n_vocab]: an echoed prompt's logits */
    /* a prefill's split of its prompts */
    const int32_t **p_prompts;
    int *p_len, *p_predict, *p_seq, *p_row;
};

/* Keeps the log-softmax of the row for an item that reports log-probabilities. */
static void keep_lsm(lane *ln, int slot, const float *row) {
    item *it = ln->slot[slot];
    if (it && it->lsm) log_softmax(row, ln->inner.n_vocab, it->lsm);
}

/* An echoed prompt of slot `slot` in chunks with every position's logits:
 * each position's log-probabilities into the item, the last row's logits
 * to out. When donor >= 0 (an echoed prompt of this prefill, same top-k)
 * shares the first `common` tokens, its KV rows of positions [0, common-1)
 * are copied and its entries of tokens [0, common) taken: rows are causal,
 * so those are the bits this prompt would compute (lm-eval's requests share
 * their context and differ in the continuation). 0 or -1. */
static int echo_prefill(lane *ln, int slot, int donor, int common, float *out) {
    item *it = ln->slot[slot];
    int n_vocab = ln->inner.n_vocab, n = it->n_ids, from = 0;
    int32_t pos[ECHO_CHUNK], seq[ECHO_CHUNK];
    if (donor >= 0 && common >= 2) {
        /* row common-2 predicts token common-1, still shared; row common-1 predicts the first that may differ */
        from = common - 1;
        if (forward_copy_seq(ln->f, donor, slot, from)) return -1;
        lp_copy_prefix(&it->echo_lps, &ln->slot[donor]->echo_lps, common);
        pthread_mutex_lock(&ln->s->met.mu);
        ln->s->met.echo_shared += from;
        pthread_mutex_unlock(&ln->s->met.mu);
    } else {
        lp_push(&it->echo_lps, NULL, n_vocab, it->ids[0]);
    }
    float *lsm = xmalloc((size_t)n_vocab * sizeof(float));
    int rc = 0;
    for (int start = from; start < n && rc == 0; start += ECHO_CHUNK) {
        int len = n - start < ECHO_CHUNK ? n - start : ECHO_CHUNK;
        for (int i = 0; i < len; i++) {
            pos[i] = start + i;
            seq[i] = slot;
        }
        fwd_batch b = {len, it->ids + start, pos, seq, NULL};
        if (forward_batch(ln->f, &b, ln->chunk) < 0) { rc = -1; break; }
        /* row i predicts token start + i + 1 */
        for (int i = 0; i < len && start + i + 1 < n; i++) {
            log_softmax(ln->chunk + (size_t)i * n_vocab, n_vocab, lsm);
            lp_push(&it->echo_lps, lsm, n_vocab, it->ids[start + i + 1]);
        }
        if (start + len == n) memcpy(out, ln->chunk + (size_t)(len - 1) * n_vocab, (size_t)n_vocab * sizeof(float));
    }
    free(lsm);
    return rc;
}

/* The echoed prompt among done[0..n_done) sharing the most first tokens
 * with slot's (same top-k), into *common; -1 when none shares two. Never on
 * recurrent layers, whose states cannot be copied at a shorter length. */
static int echo_donor(const lane *ln, int slot, const int *done, int n_done, int *common) {
    const item *it = ln->slot[slot];
    int best = -1;
    *common = 0;
    for (int p = 0; p < forward_path(ln->f)->n; p++)
        if (forward_slot_recurrent(ln->f, p)) return -1;
    for (int d = 0; d < n_done; d++) {
        const item *o = ln->slot[done[d]];
        if (o->echo_lps.k != it->echo_lps.k) continue;
        int c = 0;
        while (c < it->n_ids && c < o->n_ids && it->ids[c] == o->ids[c]) c++;
        if (c > *common) { *common = c; best = done[d]; }
    }
    return *common >= 2 ? best : -1;
}

/* gen_runner.prefill of a lane: the plain prompts in one batch through the
 * default runner, an echoed one (every position's logits) on its own. */
static int lane_prefill(void *self, const gen_request *rq, float *logits, int *logit_row) {
    lane *ln = self;
    int n_plain = 0, n_vocab = ln->inner.n_vocab;
    for (int s = 0; s < rq->n; s++) {
        if (ln->slot[rq->seq[s]]->echo_lp) continue;
        ln->p_prompts[n_plain] = rq->prompts[s];
        ln->p_len[n_plain] = rq->prompt_len[s];
        ln->p_predict[n_plain] = rq->n_predict[s];
        ln->p_seq[n_plain] = rq->seq[s];
        n_plain++;
    }
    if (n_plain) {
        gen_request plain = {n_plain, ln->p_prompts, ln->p_len, ln->p_predict, ln->p_seq};
        if (ln->inner.prefill(ln->inner.self, &plain, logits, ln->p_row)) return -1;
    }
    int k = 0, next_row = n_plain, n_echoed = 0;
    for (int s = 0; s < rq->n; s++) {
        int slot = rq->seq[s];
        if (ln->slot[slot]->echo_lp) {
            int common, donor = echo_donor(ln, slot, ln->p_seq + n_plain, n_echoed, &common);
            if (echo_prefill(ln, slot, donor, common, logits + (size_t)next_row * n_vocab)) return -1;
            ln->p_seq[n_plain + n_echoed++] = slot;     /* a donor for the next ones */
            logit_row[s] = next_row++;
        } else {
            logit_row[s] = ln->p_row[k++];
        }
        keep_lsm(ln, slot, logits + (size_t)logit_row[s] * n_vocab);
    }
    return 0;
}

/* gen_runner.step of a lane: the default runner, keeping log-softmaxes. */
static int lane_step(void *self, const fwd_batch *rows, float *logits, int *logit_row) {
    lane *ln = self;
    if (ln->inner.step(ln->inner.self, rows, logits, logit_row)) return -1;
    for (int i = 0; i < rows->n; i++) keep_lsm(ln, rows->seq[i], logits + (size_t)logit_row[i] * ln->inner.n_vocab);
    return 0;
}

/* A lane for path, or NULL with the error set (the KV cache too large). */
static lane *lane_new(server *s, const layer_path *path, bool keep) {
    const serve_config *cfg = s->cfg;
    forward_ctx *f = forward_new(cfg->m, path, cfg->max_batch, cfg->n_ctx, cfg->pool);
    if (!f) return NULL;
    lane *ln = xcalloc(1, sizeof *ln);
    size_t n = (size_t)cfg->max_batch;
    ln->s = s;
    path_copy(path, &ln->path);
    ln->keep = keep;
    ln->f = f;
    ln->inner = gen_runner_forward(f);
    gen_runner r = {ln, ln->inner.n_vocab, lane_prefill, lane_step};
    ln->g = gen_loop_new(&r, cfg->tok, cfg->max_batch);
    ln->slot = xcalloc(n, sizeof *ln->slot);
    ln->chunk = xmalloc((size_t)ECHO_CHUNK * ln->inner.n_vocab * sizeof(float));
    ln->p_prompts = xmalloc(n * sizeof *ln->p_prompts);
    ln->p_len = xmalloc(n * sizeof *ln->p_len);
    ln->p_predict = xmalloc(n * sizeof *ln->p_predict);
    ln->p_seq = xmalloc(n * sizeof *ln->p_seq);
    ln->p_row = xmalloc(n * sizeof *ln->p_row);
    return ln;
}

static void lane_free(lane *ln) {
    gen_loop_free(ln->g);
    forward_free(ln->f);
    path_free(&ln->path);
    free(ln->slot); free(ln->chunk); free(ln->p_prompts); free(ln->p_len); free(ln->p_predict); free(ln->p_seq);
    free(ln->p_row);
    free(ln);
}

static bool same_path(const layer_path *a, const layer_path *b) {
    return a->n == b->n && !memcmp(a->layers, b->layers, (size_t)a->n * sizeof *a->layers);
}

/* ---- the scheduler -------------------------------------------------------- */

/* Ends a job whose items are all done (or that failed: status, type and
 * message): a stream gets its error event and [DONE], a waiting connection
 * wakes. Drops the scheduler's reference. */
static void job_finish(job *j, int status, const char *type, const char *msg) {
    if (status && j->stream) {
        api_error e;
        api_fail(&e, status, type, NULL, "%s", msg);
        stream_event(j, api_error_json(&e));
    }
    pthread_mutex_lock(&j->mu);
    if (status) {
        j->fail_status = status;
        j->fail_type = type;
        snprintf(j->fail_msg, sizeof j->fail_msg, "%s", msg);
    }
    if (j->stream) stream_write_locked(j, "data: [DONE]\n\n", 14);
    j->finished = true;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    job_unref(j);
}

/* An item that will take no more tokens: its last text streamed, its
 * finish reason set, its tokens counted; the job ends with its last item. */
static void item_done(item *it) {
    job *j = it->j;
    if (it->started) {
        char tail[8];
        item_add_text(it, tail, tokenizer_stream_flush(&it->ts, tail, sizeof tail));
        it->finish = it->stop_at >= 0 || it->out.hit_eog ? "stop" : "length";
        metrics_add(&j->s->met, &j->s->met.gen_tokens, it->out.n);
    } else {
        it->finish = "length";
    }
    it->done = true;
    if (j->stream && !j->fail_status) {
        item_emit(it, true);
        stream_chunk(j, it->index, NULL, false, it->finish);
    }
    if (++j->n_done == j->n_items) job_finish(j, 0, NULL, NULL);
}

/* The scheduler's on_token: the token's text (stop strings, streaming) and
 * log-probability. */
static void on_token(void *user, int slot, int32_t t) {
    lane *ln = user;
    item *it = ln->slot[slot];
    const tokenizer *tok = ln->s->cfg->tok;
    if (it->lsm) lp_push(&it->lps, it->lsm, ln->inner.n_vocab, t);
    size_t len;
    tokenizer_token_bytes(tok, t, &len);
    char *buf = xmalloc(len + 8);
    size_t n = tokenizer_stream_token(tok, &it->ts, t, buf, len + 8);
    item_add_text(it, buf, n);
    free(buf);
    /* a stop string ends the sequence at once: no token after it is computed */
    if (it->stop_at >= 0) gen_loop_drop(ln->g, slot);
}

/* Why a job must stop now: 499 (its client went away), 504 (past its
 * deadline), or 0. */
static int job_stop_status(const job *j, double now) {
    if (atomic_load(&j->cancelled)) return 499;
    if (now > j->deadline) return 504;
    return 0;
}

/* Fails job j with the status's error: its items leave their slots and
 * it leaves the queue if it is there. Under s->mu, on the scheduler. */
static void job_abort(server *s, job *j, int status, const char *msg) {
    for (int l = 0; l < s->n_lanes; l++) {
        lane *ln = s->lanes[l];
        for (int k = 0; k < s->cfg->max_batch; k++)
            if (ln->slot[k] && ln->slot[k]->j == j) {
                gen_loop_drop(ln->g, k);
                ln->slot[k] = NULL;
                ln->n_busy--;
                s->n_active--;
            }
    }
    for (job **link = &s->queue_head, *prev = NULL; *link; prev = *link, link = &(*link)->next)
        if (*link == j) {
            *link = j->next;
            if (s->queue_tail == j) s->queue_tail = prev;
            s->n_queued--;
            break;
        }
    if (status == 499) metrics_add(&s->met, &s->met.cancelled, 1);
    if (status == 504) metrics_add(&s->met, &s->met.timeouts, 1);
    const char *type = status == 504 ? "timeout_error" : status == 499 ? "client_closed" : "server_error";
    j->n_done = j->n_items;
    job_finish(j, status, type, msg);
}

/* The message of a stop status. */
static const char *stop_message(int status) {
    return status == 504 ? "the request ran past the server's --timeout" : "the client went away";
}

/* The lane of path, made when there is none. NULL with the error set. */
static lane *lane_for(server *s, const layer_path *path) {
    for (int l = 0; l < s->n_lanes; l++)
        if (same_path(&s->lanes[l]->path, path)) return s->lanes[l];
    bool keep = false;
    for (int i = 0; i < s->cfg->n_paths; i++) keep |= same_path(&s->cfg->paths[i].path, path);
    lane *ln = lane_new(s, path, keep);
    if (!ln) return NULL;
    s->lanes = xrealloc(s->lanes, (size_t)(s->n_lanes + 1) * sizeof *s->lanes);
    s->lanes[s->n_lanes++] = ln;
    return ln;
}

/* Moves queued items into free slots, oldest request first; a request
 * leaves the queue when its last item is admitted, or when it must stop.
 * Under s->mu. */
static void admit_queued(server *s, double now) {
    job **link = &s->queue_head, *prev = NULL;
    while (*link) {
        job *j = *link;
        int stop = job_stop_status(j, now);
        lane *ln = stop ? NULL : lane_for(s, &j->path);
        if (stop || !ln) {
            /* past its deadline, abandoned, or its lane cannot be made
             * (memory): fail the request, keep serving; the queue changed */
            char msg[256];
            snprintf(msg, sizeof msg, "%s", stop ? stop_message(stop) : rys_lasterr());
            job_abort(s, j, stop ? stop : 500, msg);
            link = &s->queue_head;
            prev = NULL;
            continue;
        }
        for (int k = 0; k < s->cfg->max_batch && j->n_admitted < j->n_items; k++) {
            if (ln->slot[k]) continue;
            item *it = &j->items[j->n_admitted++];
            gen_seq q = {it->ids, it->n_ids, it->n_predict, &it->sp, &it->rng};
            if (gen_loop_admit(ln->g, k, &q, &it->out)) rys_die("serve: %s", rys_lasterr());
            it->started = true;
            ln->slot[k] = it;
            ln->n_busy++;
            s->n_active++;
        }
        if (j->n_admitted == j->n_items) {
            *link = j->next;
            if (s->queue_tail == j) s->queue_tail = prev;
            s->n_queued--;
            continue;
        }
        prev = j;
        link = &j->next;
    }
}

/* One step of lane ln (outside s->mu: only this thread touches lanes' loops). */
static void lane_run(server *s, lane *ln) {
    double now = rys_now();
    pthread_mutex_lock(&s->mu);
    for (int k = 0; k < s->cfg->max_batch; k++) {
        item *it = ln->slot[k];
        int stop = it ? job_stop_status(it->j, now) : 0;
        if (stop) job_abort(s, it->j, stop, stop_message(stop));
    }
    pthread_mutex_unlock(&s->mu);
    if (ln->n_busy == 0) return;
    int n_in = ln->n_busy;
    int busy = gen_loop_step(ln->g, on_token, ln);
    pthread_mutex_lock(&s->met.mu);
    s->met.steps++;
    s->met.step_seqs += n_in;
    pthread_mutex_unlock(&s->met.mu);
    pthread_mutex_lock(&s->mu);
    if (busy < 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", rys_lasterr());
        for (int k = 0; k < s->cfg->max_batch; k++)
            if (ln->slot[k]) job_abort(s, ln->slot[k]->j, 500, msg);
    } else {
        for (int k = 0; k < s->cfg->max_batch; k++) {
            item *it = ln->slot[k];
            if (!it || gen_loop_busy(ln->g, k)) continue;
            ln->slot[k] = NULL;
            ln->n_busy--;
            s->n_active--;
            item_done(it);
        }
    }
    pthread_mutex_unlock(&s->mu);
}

/* The scheduler thread: admit, then one step of every lane with sequences,
 * round-robin, until told to quit with nothing left. */
static void *scheduler_main(void *arg) {
    server *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!s->queue_head && s->n_active == 0 && !s->quit) pthread_cond_wait(&s->wake, &s->mu);
        if (s->quit && !s->queue_head && s->n_active == 0) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        admit_queued(s, rys_now());
        /* a path only a request named leaves no lane behind when idle */
        for (int l = 0; l < s->n_lanes; l++) {
            lane *ln = s->lanes[l];
            if (ln->keep || ln->n_busy) continue;
            lane_free(ln);
            s->lanes[l--] = s->lanes[--s->n_lanes];
        }
        int n_lanes = s->n_lanes;
        bool waiting_only = s->n_active == 0 && s->queue_head;
        pthread_mutex_unlock(&s->mu);
        /* lanes only change on this thread, so the list holds while it runs */
        for (int l = 0; l < n_lanes; l++) lane_run(s, s->lanes[l]);
        /* queued requests that found no slot: wait for a step elsewhere, or
         * look again shortly for their deadline or a vanished client */
        if (waiting_only) usleep(POLL_MS * 1000);
    }
    return NULL;
}

/* Puts j in the queue: 0, or the status it is refused with (429: the
 * queue is full; 503: draining). Takes a reference for the scheduler. */
static int job_enqueue(server *s, job *j) {
    if (atomic_load(&s->draining)) return 503;
    pthread_mutex_lock(&s->mu);
    if (s->n_queued >= s->cfg->max_queue) {
        pthread_mutex_unlock(&s->mu);
        metrics_add(&s->met, &s->met.rejected, 1);
        return 429;
    }
    j->refs++;
    j->next = NULL;
    if (s->queue_tail) s->queue_tail->next = j;
    else s->queue_head = j;
    s->queue_tail = j;
    s->n_queued++;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

/* ---- building requests ---------------------------------------------------- */

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

/* A job for rq (taken over: the caller's copy is cleared) along path, with
 * n items; the caller fills each item's ids and limits (item_init). */
static job *job_new(server *s, api_request *rq, bool chat, const layer_path *path, int n) {
    job *j = xcalloc(1, sizeof *j);
    j->s = s;
    j->rq = *rq;
    memset(rq, 0, sizeof *rq);
    j->chat = chat;
    j->stream = j->rq.stream;
    path_copy(path, &j->path);
    j->items = xcalloc((size_t)n, sizeof *j->items);
    j->n_items = n;
    j->t0 = rys_now();
    j->deadline = j->t0 + s->cfg->timeout;
    atomic_init(&j->cancelled, false);
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    j->refs = 1;
    snprintf(j->id, sizeof j->id, "%s-%ld", chat ? "chatcmpl" : "cmpl", atomic_fetch_add(&s->next_id, 1));
    j->created = time(NULL);
    return j;
}

/* Item q of j over the prompt ids (taken): its limit is max_tokens within
 * the context, it reports top-k log-probabilities when k >= 0 (of the prompt
 * too when echo). */
static void item_init(job *j, int q, int32_t *ids, int n_ids, int k, bool echo) {
    const api_request *rq = &j->rq;
    item *it = &j->items[q];
    int room = j->s->cfg->n_ctx - n_ids, max = rq->max_tokens >= 0 ? rq->max_tokens : room;
    it->j = j;
    it->index = q;
    it->ids = ids;
    it->n_ids = n_ids;
    it->n_predict = max < room ? max : room;
    it->sp = (sample_params){rq->temperature, rq->top_p, rq->seed, it->n_predict};
    rng_seed(&it->rng, rq->seed);
    it->stop_at = -1;
    if (k >= 0) {
        it->lsm = xmalloc((size_t)j->s->cfg->m->hp.n_vocab * sizeof(float));
        it->lps.k = it->echo_lps.k = k;
        it->echo_lp = echo;
    }
    metrics_add(&j->s->met, &j->s->met.prompt_tokens, n_ids);
}

/* Queues j and waits for its end, cancelling it when c's client goes away.
 * 0, or -1 with e set (429 or 503 refused, 499/504/500 failed). */
static int run_and_wait(server *s, struct MHD_Connection *c, job *j, api_error *e) {
    int refused = job_enqueue(s, j);
    if (refused) {
        api_fail(e, refused, refused == 429 ? "rate_limit_error" : "server_error", NULL,
                 refused == 429 ? "the queue is full (%d requests wait): retry later" : "the server is shutting down",
                 s->cfg->max_queue);
        e->code = refused == 429 ? "queue_full" : "draining";
        return -1;
    }
    pthread_mutex_lock(&j->mu);
    while (!j->finished) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += POLL_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) { until.tv_sec++; until.tv_nsec -= 1000000000L; }
        pthread_cond_timedwait(&j->cv, &j->mu, &until);
        if (!j->finished && !atomic_load(&j->cancelled) && client_gone(c)) atomic_store(&j->cancelled, true);
    }
    int status = j->fail_status;
    pthread_mutex_unlock(&j->mu);
    if (status) {
        api_fail(e, status, j->fail_type, NULL, "%s", j->fail_msg);
        return -1;
    }
    return 0;
}

/* ---- streams -------------------------------------------------------------- */

/* libmicrohttpd's reader of a stream: waits for the scheduler's next bytes,
 * looking every POLL_MS whether the client is still there. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    job *j = cls;
    pthread_mutex_lock(&j->mu);
    while (j->sent == j->len && !j->finished) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += POLL_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) { until.tv_sec++; until.tv_nsec -= 1000000000L; }
        pthread_cond_timedwait(&j->cv, &j->mu, &until);
        if (j->sent == j->len && !j->finished && client_gone(j->conn)) {
            atomic_store(&j->cancelled, true);
            pthread_mutex_unlock(&j->mu);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
    }
    ssize_t n;
    if (j->sent == j->len) n = MHD_CONTENT_READER_END_OF_STREAM;
    else {
        size_t len = j->len - j->sent < max ? j->len - j->sent : max;
        memcpy(buf, j->buf + j->sent, len);
        j->sent += len;
        n = (ssize_t)len;
    }
    pthread_mutex_unlock(&j->mu);
    return n;
}

/* The response is done or the client left: a job still running is
 * cancelled (the scheduler drops it at its next step) and let go of. */
static void stream_free(void *cls) {
    job *j = cls;
    atomic_store(&j->cancelled, true);
    job_unref(j);
}

/* Answers with a stream of server-sent events that the scheduler fills
 * (the job is handed over), or with the error that refused it. */
static enum MHD_Result start_stream(server *s, struct MHD_Connection *c, job *j) {
    j->conn = c;
    if (j->chat)
        for (int q = 0; q < j->n_items; q++) stream_chunk(j, q, json_string(""), true, NULL);
    int refused = job_enqueue(s, j);
    if (refused) {
        api_error e;
        api_fail(&e, refused, refused == 429 ? "rate_limit_error" : "server_error", NULL,
                 refused == 429 ? "the queue is full (%d requests wait): retry later" : "the server is shutting down",
                 s->cfg->max_queue);
        e.code = refused == 429 ? "queue_full" : "draining";
        job_unref(j);
        return send_error(c, &e);
    }
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, j, stream_free);
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    enum MHD_Result rc = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    queued_status = MHD_HTTP_OK;
    return rc;
}

/* ---- answers -------------------------------------------------------------- */

static json_t *new_lp_obj(void) {
    json_t *o = json_object();
    json_object_set_new(o, "tokens", json_array());
    json_object_set_new(o, "token_logprobs", json_array());
    json_object_set_new(o, "top_logprobs", json_array());
    json_object_set_new(o, "text_offset", json_array());
    return o;
}

/* The response object's common head: id, object, created, model. */
static json_t *response_head(const job *j, const char *object) {
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(j->id));
    json_object_set_new(o, "object", json_string(object));
    json_object_set_new(o, "created", json_integer((json_int_t)j->created));
    json_object_set_new(o, "model", json_string(j->rq.model));
    return o;
}

static json_t *usage_json(long prompt, long completion) {
    json_t *u = json_object();
    json_object_set_new(u, "prompt_tokens", json_integer(prompt));
    json_object_set_new(u, "completion_tokens", json_integer(completion));
    json_object_set_new(u, "total_tokens", json_integer(prompt + completion));
    return u;
}

/* How many of the n generated tokens begin before byte cut of their text
 * (a stop string's start; all of them when cut < 0): those are reported. */
static int tokens_before(const tokenizer *tok, const int32_t *tokens, int n, long cut) {
    if (cut < 0) return n;
    size_t off = 0;
    int keep = 0;
    for (; keep < n; keep++) {
        size_t len;
        tokenizer_token_bytes(tok, tokens[keep], &len);
        if (off >= (size_t)cut) break;
        off += len;
    }
    return keep;
}

/* A chat logprobs entry {token, logprob, bytes} of a token's bytes. */
static json_t *chat_lp_entry(const tokenizer *tok, int32_t id, float lp) {
    size_t len;
    const char *b = tokenizer_token_bytes(tok, id, &len);
    json_t *o = json_object(), *bytes = json_array();
    json_object_set_new(o, "token", api_token_string(b, len));
    json_object_set_new(o, "logprob", json_real(lp));
    for (size_t i = 0; i < len; i++) json_array_append_new(bytes, json_integer((unsigned char)b[i]));
    json_object_set_new(o, "bytes", bytes);
    return o;
}

/* A chat answer's logprobs object {"content": [...]}: per reported token its
 * entry and its top_logprobs (OpenAI's chat form; no end-of-generation token). */
static json_t *chat_logprobs_json(const tokenizer *tok, const item *it, int n) {
    json_t *content = json_array();
    const lp_list *l = &it->lps;
    for (int i = 0; i < n; i++) {
        json_t *e = chat_lp_entry(tok, it->out.tokens[i], l->lp[i]), *top = json_array();
        for (int k = 0; k < l->k; k++)
            json_array_append_new(top, chat_lp_entry(tok, l->top_ids[(size_t)i * l->k + k], l->top_lp[(size_t)i * l->k + k]));
        json_object_set_new(e, "top_logprobs", top);
        json_array_append_new(content, e);
    }
    json_t *o = json_object();
    json_object_set_new(o, "content", content);
    return o;
}

/* A finished completion job's answer. */
static json_t *completion_json(const job *j) {
    const tokenizer *tok = j->s->cfg->tok;
    const api_request *rq = &j->rq;
    int n_vocab = j->s->cfg->m->hp.n_vocab;
    json_t *resp = response_head(j, "text_completion");
    json_t *choices = json_array();
    long n_prompt_tokens = 0, n_completion = 0;
    for (int q = 0; q < j->n_items; q++) {
        item *it = &j->items[q];
        int n_out = it->out.n;
        char *gen_text = tokenizer_decode(tok, it->out.tokens, (size_t)n_out);
        size_t gen_len = strlen(gen_text);
        long cut = find_stop(gen_text, gen_len, rq->stop, rq->n_stop);
        int keep = tokens_before(tok, it->out.tokens, n_out, cut);
        if (cut >= 0) {
            gen_text[cut] = 0;
            gen_len = (size_t)cut;
        }
        char *prompt_text = NULL;
        if (rq->echo) prompt_text = rq->prompts[q].text ? xstrdup(rq->prompts[q].text)
                                                        : tokenizer_decode(tok, it->ids, (size_t)it->n_ids);
        char *text = xmalloc((prompt_text ? strlen(prompt_text) : 0) + gen_len + 1);
        sprintf(text, "%s%s", prompt_text ? prompt_text : "", gen_text);
        json_t *ch = json_object();
        json_object_set_new(ch, "index", json_integer(q));
        json_t *jt = json_string(text);
        json_object_set_new(ch, "text", jt ? jt : api_token_string(text, strlen(text)));
        if (rq->logprobs >= 0) {
            json_t *lp = new_lp_obj();
            size_t offset = 0;
            if (rq->echo) lp_append_json(tok, it->ids, it->n_ids, &it->echo_lps, lp, &offset);
            /* an end-of-generation token is not in the text but is reported with its
             * log-probability, as OpenAI does: lm-evaluation-harness drops the last
             * entry of an echo with max_tokens 1, which must be the generated one */
            int32_t *gen_ids = xmalloc(((size_t)keep + 1) * sizeof *gen_ids);
            memcpy(gen_ids, it->out.tokens, (size_t)keep * sizeof *gen_ids);
            int n_gen = keep;
            if (keep == n_out && it->out.hit_eog) {
                lp_push(&it->lps, it->lsm, n_vocab, it->out.eog_token);
                gen_ids[n_gen++] = it->out.eog_token;
            }
            lp_append_json(tok, gen_ids, n_gen, &it->lps, lp, &offset);
            free(gen_ids);
            json_object_set_new(ch, "logprobs", lp);
        } else {
            json_object_set_new(ch, "logprobs", json_null());
        }
        json_object_set_new(ch, "finish_reason", json_string(cut >= 0 ? "stop" : it->finish));
        json_array_append_new(choices, ch);
        n_prompt_tokens += it->n_ids;
        n_completion += n_out;
        free(text);
        free(prompt_text);
        free(gen_text);
    }
    json_object_set_new(resp, "choices", choices);
    json_object_set_new(resp, "usage", usage_json(n_prompt_tokens, n_completion));
    return resp;
}

/* A finished chat job's answer. */
static json_t *chat_json(const job *j) {
    const item *it = &j->items[0];
    json_t *resp = response_head(j, "chat.completion");
    json_t *msg = json_object();
    json_object_set_new(msg, "role", json_string("assistant"));
    size_t len = it->stop_at >= 0 ? (size_t)it->stop_at : it->text_len;
    json_object_set_new(msg, "content", api_token_string(it->text ? it->text : "", len));
    json_t *ch = json_object();
    json_object_set_new(ch, "index", json_integer(0));
    json_object_set_new(ch, "message", msg);
    int keep = tokens_before(j->s->cfg->tok, it->out.tokens, it->out.n, it->stop_at);
    json_object_set_new(ch, "logprobs", j->rq.logprobs >= 0 ? chat_logprobs_json(j->s->cfg->tok, it, keep) : json_null());
    json_object_set_new(ch, "finish_reason", json_string(it->finish));
    json_t *choices = json_array();
    json_array_append_new(choices, ch);
    json_object_set_new(resp, "choices", choices);
    json_object_set_new(resp, "usage", usage_json(it->n_ids, it->out.n));
    return resp;
}

/* Runs j (handed over) to its end and answers with build's JSON, or its error. */
static enum MHD_Result answer_job(server *s, struct MHD_Connection *c, job *j, json_t *(*build)(const job *)) {
    if (j->stream) return start_stream(s, c, j);
    api_error e;
    int rc = run_and_wait(s, c, j, &e);
    json_t *o = rc ? NULL : build(j);
    job_unref(j);
    return rc ? send_error(c, &e) : send_json(c, 200, o);
}

/* ---- /v1/completions, /v1/chat/completions -------------------------------- */

/* A parsed completion request along path: its prompts as the job's items. */
static enum MHD_Result do_completion(server *s, struct MHD_Connection *c, api_request *rq, const layer_path *path) {
    api_error e;
    if (rq->stream && (rq->echo || rq->logprobs >= 0)) {
        api_fail(&e, 400, "invalid_request_error", rq->echo ? "echo" : "logprobs",
                 "a streamed completion takes no echo or logprobs (not supported yet)");
        return send_error(c, &e);
    }
    job *j = job_new(s, rq, false, path, rq->n_prompts);
    for (int q = 0; q < j->n_items; q++) {
        int32_t *ids = NULL;
        int n_ids;
        if (prompt_ids(s, &j->rq.prompts[q], "prompt", &ids, &n_ids, &e)) {
            free(ids);
            job_unref(j);
            return send_error(c, &e);
        }
        item_init(j, q, ids, n_ids, j->rq.logprobs, j->rq.echo);
    }
    return answer_job(s, c, j, completion_json);
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

/* A parsed chat request along path: the conversation as the job's one item. */
static enum MHD_Result do_chat(server *s, struct MHD_Connection *c, api_request *rq, const layer_path *path) {
    api_error e;
    int32_t *ids = NULL;
    int n_ids;
    if (chat_ids(s, rq, &ids, &n_ids, &e)) {
        free(ids);      /* set when the prompt tokenized but did not fit */
        return send_error(c, &e);
    }
    if (rq->stream && rq->logprobs >= 0) {
        free(ids);
        api_fail(&e, 400, "invalid_request_error", "logprobs", "a streamed chat takes no logprobs (not supported yet)");
        return send_error(c, &e);
    }
    job *j = job_new(s, rq, true, path, 1);
    item_init(j, 0, ids, n_ids, j->rq.logprobs, false);
    return answer_job(s, c, j, chat_json);
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
    else if (atomic_load(&s->draining)) {
        api_fail(&e, 503, "server_error", NULL, "the server is shutting down");
        e.code = "draining";
        rc = send_error(c, &e);
    } else rc = chat ? do_chat(s, c, &rq, path) : do_completion(s, c, &rq, path);
    if (owns_path) path_free(&owned);
    api_request_free(&rq);
    return rc;
}

/* ---- /tokenize, /detokenize, /tokenizer_info ------------------------------ */

/* {"content" or "prompt": text [, "add_special" or "add_special_tokens":
 * bool]} -> {"tokens": [...]}: llama.cpp's and vLLM's spellings. */
static enum MHD_Result do_tokenize(server *s, struct MHD_Connection *c, json_t *body) {
    api_error e;
    const char *key = json_object_get(body, "content") ? "content" : "prompt";
    json_t *content = json_object_get(body, key), *special = json_object_get(body, "add_special");
    if (!special) special = json_object_get(body, "add_special_tokens");
    if (!json_is_string(content)) {
        api_fail(&e, 400, "invalid_request_error", key, "'%s' must be a string", key);
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
        api_fail(&e, 400, "invalid_request_error", key, "%s", rys_lasterr());
        return send_error(c, &e);
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(arr, json_integer(ids[i]));
    free(ids);
    json_t *o = json_object();
    json_object_set_new(o, "tokens", arr);
    json_object_set_new(o, "count", json_integer((json_int_t)n));
    json_object_set_new(o, "max_model_len", json_integer(s->cfg->n_ctx));
    return send_json(c, 200, o);
}

/* {"tokens": [...]} -> {"content": text, "prompt": text}. */
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
    json_object_set_new(o, "prompt", api_token_string(text, len));
    free(text);
    return send_json(c, 200, o);
}

/* The text of token id as JSON, null for none (-1). */
static json_t *token_json(const tokenizer *tok, int32_t id) {
    if (id < 0) return json_null();
    size_t len;
    const char *b = tokenizer_token_bytes(tok, id, &len);
    return api_token_string(b, len);
}

/* What lm-evaluation-harness's remote tokenizer reads (vLLM's
 * /tokenizer_info): the special tokens, the chat template's source, the
 * context. */
static enum MHD_Result do_tokenizer_info(server *s, struct MHD_Connection *c) {
    const tokenizer *tok = s->cfg->tok;
    json_t *o = json_object();
    json_object_set_new(o, "tokenizer_class", json_string("rys"));
    json_object_set_new(o, "eos_token", token_json(tok, tokenizer_eos(tok)));
    json_object_set_new(o, "bos_token", token_json(tok, tokenizer_bos(tok)));
    json_object_set_new(o, "pad_token", json_null());
    json_object_set_new(o, "eos_token_id", tokenizer_eos(tok) >= 0 ? json_integer(tokenizer_eos(tok)) : json_null());
    json_object_set_new(o, "bos_token_id", tokenizer_bos(tok) >= 0 ? json_integer(tokenizer_bos(tok)) : json_null());
    /* whether a prompt text gets BOS: what encoding an empty text adds */
    int32_t *ids;
    size_t n = 0;
    if (tokenizer_encode(tok, "", 0, true, true, &ids, &n) == 0) free(ids);
    json_object_set_new(o, "add_bos_token", json_boolean(n > 0));
    char *tpl = gguf_get_strdup(s->cfg->m->gguf, "tokenizer.chat_template");
    json_object_set_new(o, "chat_template", tpl ? api_token_string(tpl, strlen(tpl)) : json_null());
    free(tpl);
    json_object_set_new(o, "model_max_length", json_integer(s->cfg->n_ctx));
    json_object_set_new(o, "vocab_size", json_integer(tokenizer_n_vocab(tok)));
    return send_json(c, 200, o);
}

/* ---- /metrics ------------------------------------------------------------- */

/* Appends printf output to a growing text. */
static void textf(char **buf, size_t *len, size_t *cap, const char *fmt, ...) RYS_PRINTF(4, 5);
static void textf(char **buf, size_t *len, size_t *cap, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(*buf + *len, *cap - *len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < *cap - *len) { *len += (size_t)n; return; }
        *cap = 2 * *cap + (size_t)(n > 0 ? n : 0);
        *buf = xrealloc(*buf, *cap);
    }
}

/* Prometheus text format (version 0.0.4) of the counters and gauges. */
static enum MHD_Result do_metrics(server *s, struct MHD_Connection *c) {
    size_t len = 0, cap = 4096;
    char *t = xmalloc(cap);
    t[0] = 0;
    pthread_mutex_lock(&s->mu);
    int queued = s->n_queued, active = s->n_active;
    pthread_mutex_unlock(&s->mu);
    metrics *m = &s->met;
    pthread_mutex_lock(&m->mu);
    textf(&t, &len, &cap, "# HELP rys_requests_total HTTP requests answered, by route and status.\n"
                          "# TYPE rys_requests_total counter\n");
    for (int k = 0; k < m->n_keys; k++)
        textf(&t, &len, &cap, "rys_requests_total{route=\"%s\",status=\"%d\"} %ld\n",
              m->by_status[k].route < N_ROUTES ? ROUTES[m->by_status[k].route][0] : "other", m->by_status[k].status,
              m->by_status[k].n);
    textf(&t, &len, &cap,
          "# HELP rys_prompt_tokens_total Prompt tokens of generation requests that passed the checks (429s included).\n"
          "# TYPE rys_prompt_tokens_total counter\nrys_prompt_tokens_total %ld\n"
          "# HELP rys_generation_tokens_total Tokens generated.\n"
          "# TYPE rys_generation_tokens_total counter\nrys_generation_tokens_total %ld\n"
          "# HELP rys_cancelled_total Requests whose client went away before the answer.\n"
          "# TYPE rys_cancelled_total counter\nrys_cancelled_total %ld\n"
          "# HELP rys_timeouts_total Requests that ran past --timeout.\n"
          "# TYPE rys_timeouts_total counter\nrys_timeouts_total %ld\n"
          "# HELP rys_rejected_total Requests refused with 429 (the queue was full).\n"
          "# TYPE rys_rejected_total counter\nrys_rejected_total %ld\n"
          "# HELP rys_decode_steps_total Decode steps run (each one forward batch of a path's sequences).\n"
          "# TYPE rys_decode_steps_total counter\nrys_decode_steps_total %ld\n"
          "# HELP rys_step_sequences_total Sequences in those steps (over steps: the mean batch).\n"
          "# TYPE rys_step_sequences_total counter\nrys_step_sequences_total %ld\n"
          "# HELP rys_echo_shared_tokens_total Echoed prompt positions copied from another prompt of the same prefill.\n"
          "# TYPE rys_echo_shared_tokens_total counter\nrys_echo_shared_tokens_total %ld\n"
          "# HELP rys_queue_depth Requests waiting for a slot.\n"
          "# TYPE rys_queue_depth gauge\nrys_queue_depth %d\n"
          "# HELP rys_active_sequences Sequences in decode slots.\n"
          "# TYPE rys_active_sequences gauge\nrys_active_sequences %d\n"
          "# HELP rys_request_duration_seconds Time from a request's arrival to its answer's end.\n"
          "# TYPE rys_request_duration_seconds histogram\n",
          m->prompt_tokens, m->gen_tokens, m->cancelled, m->timeouts, m->rejected, m->steps, m->step_seqs, m->echo_shared,
          queued, active);
    long cum = 0;
    for (int b = 0; b < N_BUCKETS; b++) {
        cum += m->lat_bucket[b];
        textf(&t, &len, &cap, "rys_request_duration_seconds_bucket{le=\"%g\"} %ld\n", LAT_BUCKETS[b], cum);
    }
    textf(&t, &len, &cap,
          "rys_request_duration_seconds_bucket{le=\"+Inf\"} %ld\nrys_request_duration_seconds_sum %.6f\n"
          "rys_request_duration_seconds_count %ld\n",
          m->lat_count, m->lat_sum, m->lat_count);
    pthread_mutex_unlock(&m->mu);
    struct MHD_Response *r = MHD_create_response_from_buffer(len, t, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    enum MHD_Result rc = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    queued_status = 200;
    return rc;
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

/* A request whose body has fully arrived. */
static enum MHD_Result dispatch(server *s, struct MHD_Connection *c, const char *url, const char *method,
                                conn_req *cr) {
    api_error e;
    int route = R_OTHER;
    for (int i = 0; i < N_ROUTES; i++)
        if (!strcmp(url, ROUTES[i][0])) route = i;
    cr->route = route;
    if (s->cfg->api_key && route != R_HEALTH) {
        const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
        if (!auth || strncmp(auth, "Bearer ", 7) || strcmp(auth + 7, s->cfg->api_key)) {
            api_fail(&e, 401, "invalid_request_error", NULL, "a valid API key is required (Authorization: Bearer KEY)");
            e.code = "invalid_api_key";
            return send_error(c, &e);
        }
    }
    if (route == R_OTHER) {
        api_fail(&e, 404, "invalid_request_error", NULL, "no route %s %s", method, url);
        return send_error(c, &e);
    }
    if (strcmp(method, ROUTES[route][1])) {
        api_fail(&e, 405, "invalid_request_error", NULL, "%s takes %s, not %s", url, ROUTES[route][1], method);
        return send_error(c, &e);
    }
    switch (route) {
    case R_HEALTH: {
        json_t *o = json_object();
        json_object_set_new(o, "status", json_string(atomic_load(&s->draining) ? "draining" : "ok"));
        return send_json(c, 200, o);
    }
    case R_MODELS: return do_models(s, c);
    case R_COMPLETIONS: return do_generation(s, c, cr, false);
    case R_CHAT: return do_generation(s, c, cr, true);
    case R_TOKINFO: return do_tokenizer_info(s, c);
    case R_METRICS: return do_metrics(s, c);
    default: break;
    }
    json_error_t jerr;
    json_t *body = json_loadb(cr->body ? cr->body : "", cr->len, 0, &jerr);
    if (!json_is_object(body)) {
        json_decref(body);
        api_fail(&e, 400, "invalid_request_error", NULL, "the body must be a JSON object");
        return send_error(c, &e);
    }
    enum MHD_Result rc = route == R_TOKENIZE ? do_tokenize(s, c, body) : do_detokenize(s, c, body);
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
        cr->t0 = rys_now();
        cr->route = R_OTHER;
        for (int i = 0; i < N_ROUTES; i++)
            if (!strcmp(url, ROUTES[i][0])) cr->route = i;
        atomic_fetch_add(&s->in_flight, 1);
        const char *length = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (length && strtoull(length, NULL, 10) > BODY_LIMIT) {
            api_error e;
            api_fail(&e, 413, "invalid_request_error", NULL, "the body has %s bytes, more than the limit of %u",
                     length, BODY_LIMIT);
            enum MHD_Result rc = send_error(c, &e);
            cr->status = queued_status;
            return rc;
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
    if (cr->status) return MHD_YES;     /* answered already (413 from the length) */
    queued_status = 0;
    enum MHD_Result rc;
    if (cr->too_large) {
        api_error e;
        api_fail(&e, 413, "invalid_request_error", NULL, "the body is more than the limit of %u bytes", BODY_LIMIT);
        rc = send_error(c, &e);
    } else {
        rc = dispatch(s, c, url, method, cr);
    }
    cr->status = queued_status;
    return rc;
}

/* The request's end (answered, failed or abandoned): count it, free its body. */
static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode term) {
    (void)c;
    server *s = cls;
    conn_req *cr = *con_cls;
    if (!cr) return;
    /* a client that left before its answer was complete: 499, as nginx logs it */
    unsigned status = term == MHD_REQUEST_TERMINATED_COMPLETED_OK || !cr->status ? cr->status : 499;
    if (status) metrics_request(&s->met, cr->route, status, rys_now() - cr->t0);
    free(cr->body);
    free(cr);
    *con_cls = NULL;
    atomic_fetch_sub(&s->in_flight, 1);
}

int serve_run(const serve_config *cfg) {
    server s = {.cfg = cfg};
    pthread_mutex_init(&s.met.mu, NULL);
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.wake, NULL);
    atomic_init(&s.in_flight, 0);
    atomic_init(&s.next_id, 1);
    atomic_init(&s.draining, false);
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)cfg->port);
    int rc = -1;
    if (inet_pton(AF_INET, cfg->host, &addr.sin_addr) != 1) {
        rys_seterr("serve: --host '%s' is not an IPv4 address", cfg->host);
        goto out;
    }
    /* the served paths' lanes are made now: a KV cache too large fails here, not on a request */
    for (int i = 0; i < cfg->n_paths; i++)
        if (!lane_for(&s, &cfg->paths[i].path)) goto out;
    if (pthread_create(&s.scheduler, NULL, scheduler_main, &s)) {
        rys_seterr("serve: cannot start the scheduler thread");
        goto out;
    }
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG,
        (uint16_t)cfg->port, NULL, NULL, on_request, &s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, &s, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)600, MHD_OPTION_END);
    if (!d) {
        rys_seterr("serve: cannot listen on %s:%d (in use, or not an address of this machine)", cfg->host, cfg->port);
    } else {
        fprintf(stderr, "rys: serving %d path%s of %s on http://%s:%d (%d sequences per path, Ctrl-C stops)\n",
                cfg->n_paths, cfg->n_paths == 1 ? "" : "s", cfg->name, cfg->host, cfg->port, cfg->max_batch);
        while (!rys_stop_requested()) usleep(50 * 1000);
        /* stop accepting, answer new requests on open connections 503, let
         * the requests in flight finish, then close */
        atomic_store(&s.draining, true);
        /* the listening socket is ours to close: left open, connections
         * would wait in its backlog that nobody accepts any more */
        MHD_socket listen_fd = MHD_quiesce_daemon(d);
        if (listen_fd != MHD_INVALID_SOCKET) close(listen_fd);
        while (atomic_load(&s.in_flight) > 0) usleep(20 * 1000);
        rc = 0;
    }
    pthread_mutex_lock(&s.mu);
    s.quit = true;
    pthread_cond_signal(&s.wake);
    pthread_mutex_unlock(&s.mu);
    pthread_join(s.scheduler, NULL);
    if (d) MHD_stop_daemon(d);
    if (rc == 0) fprintf(stderr, "rys: serve stopped\n");
out:
    for (int l = 0; l < s.n_lanes; l++) lane_free(s.lanes[l]);
    free(s.lanes);
    pthread_cond_destroy(&s.wake);
    pthread_mutex_destroy(&s.mu);
    pthread_mutex_destroy(&s.met.mu);
    return rc;
}
