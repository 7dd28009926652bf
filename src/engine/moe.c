/* moe: the mixture-of-experts feed-forward, see moe.h.
 * A micro-batch goes through in four steps: the router's product and each
 * token's top-k; a counting sort of the (token, rank) pairs by expert that
 * gathers their input rows into one block per expert (tokens in batch
 * order inside it); per chosen expert one gate/up product and one down
 * product over its block (the whole pool works on each product, as on a
 * dense layer's); and the weighted sum back into each token's row. Every
 * product's rows are computed independently of the other rows of the call
 * (quant_matmul's contract), so a token's numbers do not depend on which
 * other tokens share its batch or its experts. */
#include "engine/moe.h"
#include "base/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct moe_scratch {
    int max_tokens, n_expert, k, dim, ffn;
    float *logits;              /* [max_tokens][n_expert] router output */
    float *probs;               /* [n_expert] one token's softmax */
    int *chosen;                /* [max_tokens][k] experts, best first */
    float *weights;             /* [max_tokens][k] their renormalised weights */
    int *row_of;                /* [max_tokens][k] the pair's row in the expert-sorted blocks */
    int *start;                 /* [n_expert + 1] first sorted row of each expert's block */
    int *fill;                  /* [n_expert] rows placed so far in each block */
    float *xin;                 /* [max_tokens * k][dim] input rows sorted by expert */
    float *gate, *up;           /* [max_tokens * k][ffn] */
    float *y;                   /* [max_tokens * k][dim] expert outputs, sorted rows */
    int shexp;                  /* the shared expert's width (qwen35moe), 0 if none */
    float *sh_gate, *sh_up;     /* [max_tokens][shexp] */
    float *sh_y;                /* [max_tokens][dim] its output */
    float *sh_g;                /* [max_tokens] its gate's logit */
};

moe_scratch *moe_new(const model_hparams *hp, int max_tokens) {
    moe_scratch *s = xcalloc(1, sizeof *s);
    s->max_tokens = max_tokens;
    s->n_expert = hp->n_expert;
    s->k = hp->n_expert_used;
    s->dim = hp->dim;
    s->ffn = hp->expert_ffn_dim;
    size_t pairs = (size_t)max_tokens * s->k;
    s->logits = xmalloc((size_t)max_tokens * s->n_expert * sizeof(float));
    s->probs = xmalloc((size_t)s->n_expert * sizeof(float));
    s->chosen = xmalloc(pairs * sizeof(int));
    s->weights = xmalloc(pairs * sizeof(float));
    s->row_of = xmalloc(pairs * sizeof(int));
    s->start = xmalloc(((size_t)s->n_expert + 1) * sizeof(int));
    s->fill = xmalloc((size_t)s->n_expert * sizeof(int));
    s->xin = xmalloc(pairs * s->dim * sizeof(float));
    s->gate = xmalloc(pairs * s->ffn * sizeof(float));
    s->up = xmalloc(pairs * s->ffn * sizeof(float));
    s->y = xmalloc(pairs * s->dim * sizeof(float));
    s->shexp = hp->shexp_ffn_dim;
    if (s->shexp) {
        s->sh_gate = xmalloc((size_t)max_tokens * s->shexp * sizeof(float));
        s->sh_up = xmalloc((size_t)max_tokens * s->shexp * sizeof(float));
        s->sh_y = xmalloc((size_t)max_tokens * s->dim * sizeof(float));
        s->sh_g = xmalloc((size_t)max_tokens * sizeof(float));
    }
    return s;
}

void moe_free(moe_scratch *s) {
    if (!s) return;
    free(s->logits); free(s->probs); free(s->chosen); free(s->weights); free(s->row_of);
    free(s->start); free(s->fill); free(s->xin); free(s->gate); free(s->up); free(s->y);
    free(s->sh_gate); free(s->sh_up); free(s->sh_y); free(s->sh_g);
    free(s);
}

/* The softmax as ggml_soft_max computes it (exponentials in f32, their sum
 * in double, one f32 scale), so the experts' ranking and weights carry
 * llama.cpp's roundings; the top-k by repeated maximum. */
void moe_route(const float *logits, int n_expert, int k, float *probs, int *chosen, float *weights) {
    float max = logits[0];
    for (int e = 1; e < n_expert; e++) max = logits[e] > max ? logits[e] : max;
    for (int e = 0; e < n_expert; e++) probs[e] = logits[e] - max;
    quant_expf_n(probs, n_expert);
    double sum = 0;
    for (int e = 0; e < n_expert; e++) sum += (double)probs[e];
    float scale = (float)(1.0 / sum);
    for (int e = 0; e < n_expert; e++) probs[e] *= scale;
    double picked = 0;
    for (int r = 0; r < k; r++) {
        int best = -1;
        for (int e = 0; e < n_expert; e++) {
            bool taken = false;
            for (int q = 0; q < r; q++) taken |= chosen[q] == e;
            if (!taken && (best < 0 || probs[e] > probs[best])) best = e;
        }
        chosen[r] = best;
        weights[r] = probs[best];
        picked += (double)probs[best];
    }
    /* renormalised over the chosen: qwen3moe's norm_topk_prob */
    float total = (float)picked;
    if (total < 6.103515625e-5f) total = 6.103515625e-5f;
    for (int r = 0; r < k; r++) weights[r] /= total;
}

/* silu(gate) * up over rows [lo, hi) of the sorted blocks, the exponentials
 * a chunk at a time (as the dense feed-forward computes it). */
typedef struct {
    float *gate;
    const float *up;
    int width;
    long rows;
} act_job;

static void act_worker(void *ctx, int ith, int nth) {
    const act_job *J = ctx;
    long lo, hi;
    pool_split(J->rows, ith, nth, &lo, &hi);
    enum { CHUNK = 256 };
    float e[CHUNK];
    for (long row = lo; row < hi; row++) {
        float *g = J->gate + (size_t)row * J->width;
        const float *u = J->up + (size_t)row * J->width;
        for (int i0 = 0; i0 < J->width; i0 += CHUNK) {
            int n = J->width - i0 < CHUNK ? J->width - i0 : CHUNK;
            for (int i = 0; i < n; i++) e[i] = -g[i0 + i];
            quant_expf_n(e, n);
            for (int i = 0; i < n; i++) g[i0 + i] = g[i0 + i] / (1.0f + e[i]) * u[i0 + i];
        }
    }
}

void moe_ffn(moe_scratch *s, const layer_weights *L, const float *xn, int n, float *out, pool *pool) {
    const int k = s->k, dim = s->dim, ffn = s->ffn, n_expert = s->n_expert;

    /* route every token */
    quant_matmul(&L->router, xn, n, s->logits, pool);
    for (int t = 0; t < n; t++)
        moe_route(s->logits + (size_t)t * n_expert, n_expert, k, s->probs, s->chosen + (size_t)t * k,
                  s->weights + (size_t)t * k);

    /* counting sort of the (token, rank) pairs by expert; gather their rows */
    memset(s->fill, 0, (size_t)n_expert * sizeof(int));
    for (int i = 0; i < n * k; i++) s->fill[s->chosen[i]]++;
    s->start[0] = 0;
    for (int e = 0; e < n_expert; e++) s->start[e + 1] = s->start[e] + s->fill[e];
    memset(s->fill, 0, (size_t)n_expert * sizeof(int));
    for (int i = 0; i < n * k; i++) {
        int e = s->chosen[i], row = s->start[e] + s->fill[e]++;
        s->row_of[i] = row;
        memcpy(s->xin + (size_t)row * dim, xn + (size_t)(i / k) * dim, (size_t)dim * sizeof(float));
    }

    /* each chosen expert's products over its block of rows */
    for (int e = 0; e < n_expert; e++) {
        int r0 = s->start[e], rows = s->start[e + 1] - r0;
        if (!rows) continue;
        const quant_matrix *gate_up[] = {&L->gate_exps[e], &L->up_exps[e]};
        quant_matmul_many(gate_up, 2, s->xin + (size_t)r0 * dim, rows,
                          (float *const[]){s->gate + (size_t)r0 * ffn, s->up + (size_t)r0 * ffn}, pool);
    }
    act_job job = {s->gate, s->up, ffn, (long)n * k};
    if (n * k <= 8) act_worker(&job, 0, 1);  /* decode: waking the pool costs more than the work */
    else pool_run(pool, act_worker, &job);
    for (int e = 0; e < n_expert; e++) {
        int r0 = s->start[e], rows = s->start[e + 1] - r0;
        if (rows) quant_matmul(&L->down_exps[e], s->gate + (size_t)r0 * ffn, rows, s->y + (size_t)r0 * dim, pool);
    }

    /* each token's weighted outputs, added best first as llama.cpp adds them */
    for (int t = 0; t < n; t++) {
        float *o = out + (size_t)t * dim;
        for (int r = 0; r < k; r++) {
            float w = s->weights[(size_t)t * k + r];
            const float *y = s->y + (size_t)s->row_of[(size_t)t * k + r] * dim;
            if (r == 0)
                for (int i = 0; i < dim; i++) o[i] = y[i] * w;
            else
                for (int i = 0; i < dim; i++) o[i] += y[i] * w;
        }
    }

    /* qwen35moe: + the shared expert's output times sigmoid of its gate */
    if (s->shexp && L->shexp_up.n_out) {
        const quant_matrix *gate_up[] = {&L->shexp_gate, &L->shexp_up};
        quant_matmul_many(gate_up, 2, xn, n, (float *const[]){s->sh_gate, s->sh_up}, pool);
        act_job sj = {s->sh_gate, s->sh_up, s->shexp, n};
        if (n <= 8) act_worker(&sj, 0, 1);
        else pool_run(pool, act_worker, &sj);
        quant_matmul(&L->shexp_down, s->sh_gate, n, s->sh_y, pool);
        quant_matmul(&L->shexp_gate_inp, xn, n, s->sh_g, pool);
        for (int t = 0; t < n; t++) {
            float g = 1.0f / (1.0f + expf(-s->sh_g[t]));
            float *o = out + (size_t)t * dim;
            const float *y = s->sh_y + (size_t)t * dim;
            for (int i = 0; i < dim; i++) o[i] += y[i] * g;
        }
    }
}
