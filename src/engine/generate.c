/* generate: see generate.h. */
#include "engine/generate.h"
#include "base/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void rng_seed(rng_state *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
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

int generate(forward_ctx *f, const tokenizer *tok, const int32_t *const *prompts, const int *prompt_lens,
             int n_prompts, const sample_params *sp, gen_output *out, gen_callback on_token, void *user) {
    const kv_cache *kv = forward_kv(f);
    int n_vocab = tokenizer_n_vocab(tok);
    if (n_prompts > kv->n_seq) { rys_seterr("generate: %d prompts but only %d sequences", n_prompts, kv->n_seq); return -1; }
    int total = 0;
    for (int s = 0; s < n_prompts; s++) {
        if (prompt_lens[s] < 1) { rys_seterr("generate: prompt %d is empty", s); return -1; }
        if (prompt_lens[s] + sp->n_predict > kv->n_ctx) {
            rys_seterr("generate: prompt %d has %d tokens; with %d new ones it exceeds the context of %d",
                       s, prompt_lens[s], sp->n_predict, kv->n_ctx);
            return -1;
        }
        total += prompt_lens[s];
    }
    int cap = total > n_prompts ? total : n_prompts;
    int32_t *tokens = xmalloc((size_t)cap * sizeof *tokens), *pos = xmalloc((size_t)cap * sizeof *pos),
            *seq = xmalloc((size_t)cap * sizeof *seq);
    bool *want = xmalloc((size_t)cap * sizeof *want);
    float *logits = xmalloc((size_t)n_prompts * n_vocab * sizeof(float));
    int *cur_len = xmalloc((size_t)n_prompts * sizeof *cur_len), *row_of = xmalloc((size_t)n_prompts * sizeof *row_of);
    bool *active = xmalloc((size_t)n_prompts * sizeof *active);
    rng_state rng;
    rng_seed(&rng, sp->seed);
    int rc = -1, n = 0;

    for (int s = 0; s < n_prompts; s++) {
        out[s].tokens = xmalloc((size_t)(sp->n_predict > 0 ? sp->n_predict : 1) * sizeof(int32_t));
        out[s].n = 0;
        out[s].hit_eog = false;
        for (int i = 0; i < prompt_lens[s]; i++) {
            tokens[n] = prompts[s][i];
            pos[n] = i;
            seq[n] = s;
            want[n] = i == prompt_lens[s] - 1;
            n++;
        }
        cur_len[s] = prompt_lens[s];
        active[s] = sp->n_predict > 0;
        row_of[s] = s;
    }
    fwd_batch b = {n, tokens, pos, seq, want};
    if (forward_batch(f, &b, logits) < 0) goto done;

    for (int step = 0; step < sp->n_predict; step++) {
        n = 0;
        for (int s = 0; s < n_prompts; s++) {
            if (!active[s]) continue;
            int32_t t = sample_token(logits + (size_t)row_of[s] * n_vocab, n_vocab, sp, &rng);
            if (tokenizer_is_eog(tok, t)) { active[s] = false; out[s].hit_eog = true; continue; }
            out[s].tokens[out[s].n++] = t;
            if (on_token) on_token(user, s, t);
            if (out[s].n >= sp->n_predict) { active[s] = false; continue; }
            tokens[n] = t;
            pos[n] = cur_len[s]++;
            seq[n] = s;
            want[n] = true;
            row_of[s] = n;
            n++;
        }
        if (n == 0) break;
        fwd_batch d = {n, tokens, pos, seq, want};
        if (forward_batch(f, &d, logits) < 0) goto done;
    }
    rc = 0;
done:
    free(tokens); free(pos); free(seq); free(want); free(logits);
    free(cur_len); free(row_of); free(active);
    return rc;
}
