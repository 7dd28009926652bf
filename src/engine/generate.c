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

/* Where one slot of the decode loop stands. */
enum { SLOT_FREE, SLOT_PENDING, SLOT_GOING };
typedef struct {
    int state;
    gen_seq s;
    gen_output *out;
    int next_pos;       /* position its next token takes */
    int logit_row;      /* its row among the loop's logits (prefill rows after the step rows) */
} loop_slot;

struct gen_loop {
    gen_runner r;
    const tokenizer *tok;
    int n_slots, n_vocab;
    loop_slot *slots;
    float *logits;      /* [2 n_slots][n_vocab]: a step's rows, then a prefill's */
    /* a step's rows: at most one per slot */
    int32_t *tokens, *pos, *seq;
    bool *want;
    int *logit_row;
    /* a prefill's prompts */
    const int32_t **p_prompts;
    int *p_len, *p_predict, *p_seq;
};

gen_loop *gen_loop_new(const gen_runner *r, const tokenizer *tok, int n_slots) {
    gen_loop *g = xcalloc(1, sizeof *g);
    size_t n = n_slots > 0 ? (size_t)n_slots : 1;
    g->r = *r;
    g->tok = tok;
    g->n_slots = n_slots;
    g->n_vocab = r->n_vocab;
    g->slots = xcalloc(n, sizeof *g->slots);
    g->logits = xmalloc(2 * n * (size_t)r->n_vocab * sizeof(float));
    g->tokens = xmalloc(n * sizeof *g->tokens);
    g->pos = xmalloc(n * sizeof *g->pos);
    g->seq = xmalloc(n * sizeof *g->seq);
    g->want = xmalloc(n * sizeof *g->want);
    g->logit_row = xmalloc(n * sizeof *g->logit_row);
    g->p_prompts = xmalloc(n * sizeof *g->p_prompts);
    g->p_len = xmalloc(n * sizeof *g->p_len);
    g->p_predict = xmalloc(n * sizeof *g->p_predict);
    g->p_seq = xmalloc(n * sizeof *g->p_seq);
    return g;
}

void gen_loop_free(gen_loop *g) {
    if (!g) return;
    free(g->slots); free(g->logits); free(g->tokens); free(g->pos); free(g->seq); free(g->want);
    free(g->logit_row); free(g->p_prompts); free(g->p_len); free(g->p_predict); free(g->p_seq);
    free(g);
}

int gen_loop_admit(gen_loop *g, int slot, const gen_seq *s, gen_output *out) {
    if (slot < 0 || slot >= g->n_slots) { rys_seterr("generate: slot %d outside 0..%d", slot, g->n_slots - 1); return -1; }
    if (g->slots[slot].state != SLOT_FREE) { rys_seterr("generate: slot %d is busy", slot); return -1; }
    if (s->prompt_len < 1) { rys_seterr("generate: the prompt of slot %d is empty", slot); return -1; }
    int limit = s->n_predict;
    *out = (gen_output){xmalloc((size_t)(limit > 0 ? limit : 1) * sizeof(int32_t)), 0, false, -1};
    g->slots[slot] = (loop_slot){SLOT_PENDING, *s, out, s->prompt_len, 0};
    return 0;
}

void gen_loop_drop(gen_loop *g, int slot) {
    if (slot >= 0 && slot < g->n_slots) g->slots[slot].state = SLOT_FREE;
}

bool gen_loop_busy(const gen_loop *g, int slot) {
    return slot >= 0 && slot < g->n_slots && g->slots[slot].state != SLOT_FREE;
}

int gen_loop_step(gen_loop *g, gen_callback on_token, void *user) {
    int n_vocab = g->n_vocab, n_new = 0;
    for (int i = 0; i < g->n_slots; i++) {
        loop_slot *q = &g->slots[i];
        if (q->state != SLOT_PENDING) continue;
        g->p_prompts[n_new] = q->s.prompt;
        g->p_len[n_new] = q->s.prompt_len;
        g->p_predict[n_new] = q->s.n_predict;
        g->p_seq[n_new] = i;
        n_new++;
    }
    if (n_new) {
        gen_request rq = {n_new, g->p_prompts, g->p_len, g->p_predict, g->p_seq};
        if (g->r.prefill(g->r.self, &rq, g->logits + (size_t)g->n_slots * n_vocab, g->logit_row)) goto fail;
        for (int k = 0; k < n_new; k++) {
            loop_slot *q = &g->slots[g->p_seq[k]];
            q->logit_row = g->n_slots + g->logit_row[k];
            /* a sequence allowed no new token is prefilled (its runner may want it) and done */
            q->state = q->s.n_predict > 0 ? SLOT_GOING : SLOT_FREE;
        }
    }
    int n_rows = 0;
    /* slots in order: sequences sharing an rng draw from it in that order */
    for (int i = 0; i < g->n_slots; i++) {
        loop_slot *q = &g->slots[i];
        if (q->state != SLOT_GOING) continue;
        gen_output *out = q->out;
        int32_t t = sample_token(g->logits + (size_t)q->logit_row * n_vocab, n_vocab, q->s.sp, q->s.rng);
        if (tokenizer_is_eog(g->tok, t)) {
            q->state = SLOT_FREE;
            out->hit_eog = true;
            out->eog_token = t;
            continue;
        }
        out->tokens[out->n++] = t;
        if (on_token) on_token(user, i, t);
        if (q->state != SLOT_GOING) continue;   /* the callback dropped it */
        /* the last token allowed is not fed back: nothing would read its logits */
        if (out->n >= q->s.n_predict) { q->state = SLOT_FREE; continue; }
        g->tokens[n_rows] = t;
        g->pos[n_rows] = q->next_pos++;
        g->seq[n_rows] = i;
        g->want[n_rows] = true;
        n_rows++;
    }
    if (n_rows) {
        fwd_batch rows = {n_rows, g->tokens, g->pos, g->seq, g->want};
        if (g->r.step(g->r.self, &rows, g->logits, g->logit_row)) goto fail;
        for (int k = 0; k < n_rows; k++) g->slots[g->seq[k]].logit_row = g->logit_row[k];
    }
    int busy = 0;
    for (int i = 0; i < g->n_slots; i++) busy += g->slots[i].state != SLOT_FREE;
    return busy;
fail:
    for (int i = 0; i < g->n_slots; i++) g->slots[i].state = SLOT_FREE;
    return -1;
}

int generate_loop(const gen_runner *r, const tokenizer *tok, const gen_request *rq, const sample_params *sp,
                  gen_output *out, gen_callback on_token, void *user) {
    int n = rq->n, rc = 0;
    gen_loop *g = gen_loop_new(r, tok, n);
    rng_state rng;
    rng_seed(&rng, sp->seed);
    for (int s = 0; s < n; s++) out[s] = (gen_output){NULL, 0, false, -1};
    for (int s = 0; s < n && rc == 0; s++) {
        gen_seq q = {rq->prompts[s], rq->prompt_len[s], rq->n_predict[s], sp, &rng};
        rc = gen_loop_admit(g, s, &q, &out[s]);
    }
    while (rc == 0) {
        int busy = gen_loop_step(g, on_token, user);
        if (busy <= 0) { rc = busy; break; }
    }
    if (rc)
        for (int s = 0; s < n; s++) {
            free(out[s].tokens);
            out[s] = (gen_output){NULL, 0, false, -1};
        }
    gen_loop_free(g);
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
            seq[n] = rq->seq ? rq->seq[s] : s;
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
    gen_request rq = {n_prompts, prompts, prompt_lens, n_predict, NULL};
    int rc = generate_seqs(f, tok, &rq, sp, out, on_token, user);
    free(n_predict);
    return rc;
}
