/* generate: see generate.h. */
#include "engine/generate.h"
#include "base/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void rng_seed(rng_state *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = rys_splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

double rng_uniform(rng_state *r) {   /* xoshiro256** */
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t; s[3] = rotl(s[3], 45);
    return (out >> 11) * 0x1.0p-53;
}

/* The first index whose value no later one exceeds (ties go to the lowest
 * index; NaN never wins, and a NaN at 0 stays the answer as it does for the
 * one-pass loop). Two passes: a maximum in 16 independent lanes, then the
 * first index holding it; the one-pass loop waits on a dependent load each
 * element, and it runs for every generated token over 150k logits. */
int32_t sample_argmax(const float *logits, int n) {
    if (n <= 0 || isnan(logits[0])) return 0;
    enum { LANES = 16 };
    float lane[LANES];
    for (int j = 0; j < LANES; j++) lane[j] = logits[0];
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) lane[j] = logits[i + j] > lane[j] ? logits[i + j] : lane[j];
    float m = lane[0];
    for (int j = 1; j < LANES; j++) m = lane[j] > m ? lane[j] : m;
    for (; i < n; i++) m = logits[i] > m ? logits[i] : m;
    for (i = 0; logits[i] != m; i++) {}
    return i;
}

typedef struct { float p; int32_t id; } prob_id;

static int by_prob_desc(const void *a, const void *b) {
    const prob_id *x = a, *y = b;
    if (x->p != y->p) return x->p < y->p ? 1 : -1;
    return x->id - y->id;
}

int32_t sample_token(const float *logits, int n, const sample_params *sp, rng_state *rng) {
    if (sp->temperature <= 0) return sample_argmax(logits, n);
    prob_id *pr = xmalloc((size_t)n * sizeof *pr);
    float mx = logits[sample_argmax(logits, n)];
    double sum = 0;
    for (int i = 0; i < n; i++) {
        pr[i].p = expf((logits[i] - mx) / sp->temperature);
        pr[i].id = i;
        sum += pr[i].p;
    }
    qsort(pr, (size_t)n, sizeof *pr, by_prob_desc);
    /* keep the smallest prefix whose mass reaches top_p */
    int keep = n;
    if (sp->top_p < 1.0f) {
        double c = 0;
        for (int i = 0; i < n; i++) {
            c += pr[i].p / sum;
            if (c >= sp->top_p) { keep = i + 1; break; }
        }
    }
    double mass = 0;
    for (int i = 0; i < keep; i++) mass += pr[i].p;
    double r = rng_uniform(rng) * mass, c = 0;
    int32_t id = pr[keep - 1].id;
    for (int i = 0; i < keep; i++) {
        c += pr[i].p;
        if (r < c) { id = pr[i].id; break; }
    }
    free(pr);
    return id;
}

void gen_output_free(gen_output *o, int n) {
    for (int i = 0; i < n; i++) free(o[i].tokens);
}

/* Where one sequence stands in the decode loop. */
typedef struct {
    bool going;         /* will sample another token */
    int next_pos;       /* position its next token takes */
    int logit_row;      /* its row among the last batch's logits */
} seq_state;

int generate_loop(const gen_runner *r, const tokenizer *tok, const gen_request *rq, const sample_params *sp,
                  gen_output *out, gen_callback on_token, void *user) {
    int n = rq->n, n_vocab = r->n_vocab;
    seq_state *seqs = xmalloc((size_t)n * sizeof *seqs);
    /* a step's rows: at most one per sequence */
    int32_t *tokens = xmalloc((size_t)n * sizeof *tokens), *pos = xmalloc((size_t)n * sizeof *pos),
            *seq = xmalloc((size_t)n * sizeof *seq);
    bool *want = xmalloc((size_t)n * sizeof *want);
    int *logit_row = xmalloc((size_t)n * sizeof *logit_row);
    float *logits = xmalloc((size_t)n * n_vocab * sizeof(float));
    rng_state rng;
    rng_seed(&rng, sp->seed);
    int rc = -1;

    for (int s = 0; s < n; s++) {
        int limit = rq->n_predict[s];
        out[s] = (gen_output){xmalloc((size_t)(limit > 0 ? limit : 1) * sizeof(int32_t)), 0, false, -1};
        seqs[s] = (seq_state){limit > 0, rq->prompt_len[s], 0};
    }
    if (r->prefill(r->self, rq, logits, logit_row)) goto done;
    for (int s = 0; s < n; s++) seqs[s].logit_row = logit_row[s];
    for (;;) {
        int n_rows = 0;
        /* sequences in id order: a sampled generation draws from one rng in that order */
        for (int s = 0; s < n; s++) {
            seq_state *q = &seqs[s];
            if (!q->going) continue;
            int32_t t = sample_token(logits + (size_t)q->logit_row * n_vocab, n_vocab, sp, &rng);
            if (tokenizer_is_eog(tok, t)) {
                q->going = false;
                out[s].hit_eog = true;
                out[s].eog_token = t;
                continue;
            }
            out[s].tokens[out[s].n++] = t;
            if (on_token) on_token(user, s, t);
            /* the last token allowed is not fed back: nothing would read its logits */
            if (out[s].n >= rq->n_predict[s]) { q->going = false; continue; }
            tokens[n_rows] = t;
            pos[n_rows] = q->next_pos++;
            seq[n_rows] = s;
            want[n_rows] = true;
            n_rows++;
        }
        if (n_rows == 0) break;
        fwd_batch rows = {n_rows, tokens, pos, seq, want};
        if (r->step(r->self, &rows, logits, logit_row)) goto done;
        for (int i = 0; i < n_rows; i++) seqs[seq[i]].logit_row = logit_row[i];
    }
    rc = 0;
done:
    if (rc)
        for (int s = 0; s < n; s++) {
            free(out[s].tokens);
            out[s] = (gen_output){NULL, 0, false, -1};
        }
    free(seqs); free(tokens); free(pos); free(seq); free(want); free(logit_row); free(logits);
    return rc;
}

/* The default runner: every batch through forward_batch on one context. */
static int batch_prefill(void *self, const gen_request *rq, float *logits, int *logit_row) {
    forward_ctx *f = self;
    int total = 0;
    for (int s = 0; s < rq->n; s++) total += rq->prompt_len[s];
    int32_t *tokens = xmalloc((size_t)total * sizeof *tokens), *pos = xmalloc((size_t)total * sizeof *pos),
            *seq = xmalloc((size_t)total * sizeof *seq);
    bool *want = xmalloc((size_t)total * sizeof *want);
    int n = 0;
    for (int s = 0; s < rq->n; s++) {
        for (int i = 0; i < rq->prompt_len[s]; i++) {
            tokens[n] = rq->prompts[s][i];
            pos[n] = i;
            seq[n] = s;
            want[n] = i == rq->prompt_len[s] - 1;
            n++;
        }
        logit_row[s] = s;   /* one wanted row per sequence, in sequence order */
    }
    fwd_batch b = {n, tokens, pos, seq, want};
    int rc = forward_batch(f, &b, logits) < 0 ? -1 : 0;
    free(tokens); free(pos); free(seq); free(want);
    return rc;
}

static int batch_step(void *self, const fwd_batch *rows, float *logits, int *logit_row) {
    if (forward_batch(self, rows, logits) < 0) return -1;
    for (int i = 0; i < rows->n; i++) logit_row[i] = i;
    return 0;
}

gen_runner gen_runner_forward(forward_ctx *f) {
    /* rows are as wide as the model's output, which may pad the tokenizer's vocabulary */
    return (gen_runner){f, forward_model(f)->hp.n_vocab, batch_prefill, batch_step};
}

int generate_seqs(forward_ctx *f, const tokenizer *tok, const gen_request *rq, const sample_params *sp, gen_output *out,
                  gen_callback on_token, void *user) {
    kv_shape kv = forward_kv_shape(f);
    if (rq->n > kv.n_seq) { rys_seterr("generate: %d prompts but only %d sequences", rq->n, kv.n_seq); return -1; }
    for (int s = 0; s < rq->n; s++) {
        if (rq->prompt_len[s] < 1) { rys_seterr("generate: prompt %d is empty", s); return -1; }
        if (rq->prompt_len[s] + rq->n_predict[s] > kv.n_ctx) {
            rys_seterr("generate: prompt %d has %d tokens; with %d new ones it exceeds the context of %d",
                       s, rq->prompt_len[s], rq->n_predict[s], kv.n_ctx);
            return -1;
        }
    }
    gen_runner r = gen_runner_forward(f);
    return generate_loop(&r, tok, rq, sp, out, on_token, user);
}

int generate(forward_ctx *f, const tokenizer *tok, const int32_t *const *prompts, const int *prompt_lens,
             int n_prompts, const sample_params *sp, gen_output *out, gen_callback on_token, void *user) {
    int *n_predict = xmalloc((size_t)n_prompts * sizeof *n_predict);
    for (int s = 0; s < n_prompts; s++) n_predict[s] = sp->n_predict;
    gen_request rq = {n_prompts, prompts, prompt_lens, n_predict};
    int rc = generate_seqs(f, tok, &rq, sp, out, on_token, user);
    free(n_predict);
    return rc;
}
