/* forward: the forward pass, read top to bottom in forward_layers().
 * Activations are f32; matrix products go through quant_matmul, which
 * quantizes activations to the weight's partner format (as llama.cpp does).
 * Where llama.cpp rounds on purpose (fp16 KV cache, queries and attention
 * weights in fp16, RoPE angles stepped in f32, GELU through fp16) we round
 * the same way, so our logits stay within float-summation noise of its:
 * any other rounding is as accurate but diverges from it by a few percent
 * after a few dozen layers.
 * Large batches are cut into micro-batches of UBATCH tokens so scratch stays
 * small; within a micro-batch every token's K/V is written before attention
 * reads the cache, so causal order holds as long as a sequence's tokens come
 * in position order. */
#include "forward.h"
#include "util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define UBATCH 256

struct forward_ctx {
    const model *m;
    layer_path path;
    kv_cache kv;
    pool *pool;
    /* scratch for one micro-batch */
    float *x, *xn, *q, *k, *v, *att, *o, *gate, *up;
    float *scores;              /* [n_threads][n_ctx] attention scratch */
    float *rope_cs;             /* [UBATCH][rope_dims] cos, sin of the micro-batch's positions */
};

static void kv_free(kv_cache *kv) {
    for (int p = 0; p < kv->n_slots; p++)
        if (kv->owned && kv->owned[p]) { free(kv->k[p]); free(kv->v[p]); }
    free(kv->k); free(kv->v); free(kv->owned);
    memset(kv, 0, sizeof *kv);
}

forward_ctx *forward_new(const model *m, const layer_path *path, int n_seq, int n_ctx, pool *pool) {
    const model_hparams *hp = &m->hp;
    if (n_seq < 1 || n_ctx < 1) { rys_seterr("forward: need at least one sequence and one position"); return NULL; }
    for (int p = 0; p < path->n; p++)
        if (path->layers[p] < 0 || path->layers[p] >= hp->n_layers) {
            rys_seterr("forward: path position %d names layer %d, model has %d", p, path->layers[p], hp->n_layers);
            return NULL;
        }
    int kv_dim = hp->n_head_kv * hp->head_dim;
    size_t slot = (size_t)n_seq * (size_t)n_ctx * (size_t)kv_dim;
    if (slot > ((size_t)1 << 36) / sizeof(uint16_t)) { rys_seterr("forward: KV cache of %d x %d positions is too large", n_seq, n_ctx); return NULL; }
    forward_ctx *f = xcalloc(1, sizeof *f);
    f->m = m;
    path_copy(path, &f->path);
    f->pool = pool;
    kv_cache *kv = &f->kv;
    kv->n_slots = path->n;
    kv->n_seq = n_seq;
    kv->n_ctx = n_ctx;
    kv->kv_dim = kv_dim;
    kv->k = xcalloc((size_t)path->n, sizeof *kv->k);
    kv->v = xcalloc((size_t)path->n, sizeof *kv->v);
    kv->owned = xcalloc((size_t)path->n, sizeof *kv->owned);
    for (int p = 0; p < path->n; p++) {
        /* calloc of large blocks maps zero pages lazily: untouched positions cost no RAM */
        kv->k[p] = xcalloc(slot, sizeof(uint16_t));
        kv->v[p] = xcalloc(slot, sizeof(uint16_t));
        kv->owned[p] = true;
    }
    int q_dim = hp->n_head * hp->head_dim;
    size_t U = UBATCH;
    f->x = xmalloc(U * hp->dim * sizeof(float));
    f->xn = xmalloc(U * hp->dim * sizeof(float));
    f->q = xmalloc(U * q_dim * sizeof(float));
    f->k = xmalloc(U * kv_dim * sizeof(float));
    f->v = xmalloc(U * kv_dim * sizeof(float));
    f->att = xmalloc(U * q_dim * sizeof(float));
    f->o = xmalloc(U * hp->dim * sizeof(float));
    f->gate = xmalloc(U * hp->ffn_dim * sizeof(float));
    f->up = xmalloc(U * hp->ffn_dim * sizeof(float));
    f->scores = xmalloc((size_t)pool_size(pool) * n_ctx * sizeof(float));
    f->rope_cs = xmalloc(U * (size_t)hp->rope_dims * sizeof(float));
    return f;
}

void forward_free(forward_ctx *f) {
    if (!f) return;
    kv_free(&f->kv);
    path_free(&f->path);
    free(f->x); free(f->xn); free(f->q); free(f->k); free(f->v);
    free(f->att); free(f->o); free(f->gate); free(f->up); free(f->scores); free(f->rope_cs);
    free(f);
}

const layer_path *forward_path(const forward_ctx *f) { return &f->path; }
const kv_cache *forward_kv(const forward_ctx *f) { return &f->kv; }

int forward_copy_seq(forward_ctx *f, int src, int dst, int n_pos) {
    kv_cache *kv = &f->kv;
    if (src < 0 || dst < 0 || src >= kv->n_seq || dst >= kv->n_seq || n_pos < 0 || n_pos > kv->n_ctx) {
        rys_seterr("forward: cannot copy %d positions from sequence %d to %d", n_pos, src, dst);
        return -1;
    }
    size_t row = (size_t)kv->n_ctx * kv->kv_dim, bytes = (size_t)n_pos * kv->kv_dim * sizeof(uint16_t);
    for (int p = 0; p < kv->n_slots; p++) {
        memcpy(kv->k[p] + dst * row, kv->k[p] + src * row, bytes);
        memcpy(kv->v[p] + dst * row, kv->v[p] + src * row, bytes);
    }
    return 0;
}

int forward_share_slot(forward_ctx *f, int slot, const forward_ctx *src, int src_slot) {
    kv_cache *kv = &f->kv;
    const kv_cache *o = &src->kv;
    if (f->m != src->m || kv->n_seq != o->n_seq || kv->n_ctx != o->n_ctx || slot < 0 || slot >= kv->n_slots ||
        src_slot < 0 || src_slot >= o->n_slots) {
        rys_seterr("forward: cannot share KV slot %d with slot %d of another cache", slot, src_slot);
        return -1;
    }
    if (kv->owned[slot]) { free(kv->k[slot]); free(kv->v[slot]); }
    kv->k[slot] = o->k[src_slot];
    kv->v[slot] = o->v[src_slot];
    kv->owned[slot] = false;
    return 0;
}

size_t forward_kv_bytes(const forward_ctx *f) {
    return (size_t)2 * f->kv.n_slots * f->kv.n_seq * f->kv.n_ctx * f->kv.kv_dim * sizeof(uint16_t);
}

/* ---- elementwise pieces ---------------------------------------------------- */

/* Squares summed in double, the mean and scale in f32, as ggml's rms_norm. */
static void rmsnorm(float *out, const float *x, const float *w, int n, float eps) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (double)(x[i] * x[i]);
    float mean = (float)(ss / n), scale = 1.0f / sqrtf(mean + eps);
    for (int i = 0; i < n; i++) out[i] = x[i] * scale * w[i];
}

/* cos and sin of the rope_dims/2 angles at position pos: pos * base^(-2i/d),
 * each angle the previous one times a constant in f32, as ggml steps them
 * (its rounding is what llama.cpp's rotations use). */
static void rope_angles(float *cs, int pos, int rope_dims, float base, float freq_scale) {
    int half = rope_dims / 2;
    float theta_scale = powf(base, -2.0f / (float)rope_dims), theta = (float)pos;
    for (int i = 0; i < half; i++, theta *= theta_scale) {
        cs[i] = cosf(freq_scale * theta);
        cs[half + i] = sinf(freq_scale * theta);
    }
}

/* Rotate the first rope_dims of one head vector by the angles rope_angles made. */
static void rope(float *v, const float *cs, int rope_dims, enum rope_kind kind) {
    int half = rope_dims / 2;
    for (int i = 0; i < half; i++) {
        float c = cs[i], s = cs[half + i];
        int a = kind == ROPE_NEOX ? i : 2 * i;
        int b = kind == ROPE_NEOX ? i + half : 2 * i + 1;
        float x0 = v[a], x1 = v[b];
        v[a] = x0 * c - x1 * s;
        v[b] = x0 * s + x1 * c;
    }
}

/* GELU (tanh form) of x rounded to fp16, rounded to fp16: ggml's table. */
static float gelu_tanh(float x) {
    if (x <= -10.0f) return 0.0f;
    if (x >= 10.0f) return x;
    const float k = 0.7978845608028654f;   /* sqrt(2/pi) */
    x = quant_fp16_round(x);
    return quant_fp16_round(0.5f * x * (1.0f + tanhf(k * x * (1.0f + 0.044715f * x * x))));
}

/* ---- attention -------------------------------------------------------------- */

typedef struct {
    forward_ctx *f;
    const fwd_batch *b;
    int t0, n;          /* micro-batch: tokens [t0, t0+n) */
    int slot;           /* KV slot = path position */
    bool sliding;
} attn_job;

static void attn_worker(void *ctx, int ith, int nth) {
    attn_job *J = ctx;
    forward_ctx *f = J->f;
    const model_hparams *hp = &f->m->hp;
    const kv_cache *kv = &f->kv;
    int hd = hp->head_dim, q_dim = hp->n_head * hd, group = hp->n_head / hp->n_head_kv;
    float *sc = f->scores + (size_t)ith * kv->n_ctx;
    long lo, hi;
    pool_split((long)J->n * hp->n_head, ith, nth, &lo, &hi);
    for (long w = lo; w < hi; w++) {
        int t = (int)(w / hp->n_head), h = (int)(w % hp->n_head);
        int gt = J->t0 + t;
        int pos = J->b->pos[gt], s = J->b->seq[gt];
        int first = 0;
        if (J->sliding && hp->sliding_window > 0 && pos - hp->sliding_window + 1 > 0) first = pos - hp->sliding_window + 1;
        const float *qv = f->q + (size_t)t * q_dim + h * hd;
        size_t base = (size_t)s * kv->n_ctx * kv->kv_dim + (size_t)(h / group) * hd;
        const uint16_t *K = kv->k[J->slot] + base, *V = kv->v[J->slot] + base;
        int n_keys = pos - first + 1;
        quant_attn_scores_f16(sc, qv, K + (size_t)first * kv->kv_dim, kv->kv_dim, n_keys, hd, hp->attn_scale);
        float mx = -INFINITY;
        for (int j = 0; j < n_keys; j++) mx = sc[j] > mx ? sc[j] : mx;
        double sum = 0;
        for (int j = 0; j < n_keys; j++) { sc[j] = expf(sc[j] - mx); sum += sc[j]; }
        float inv = (float)(1.0 / sum);
        for (int j = 0; j < n_keys; j++) sc[j] *= inv;
        /* the weights in fp16: llama.cpp multiplies them with the fp16 V so */
        quant_fp16_round_n(sc, n_keys);
        float *out = f->att + (size_t)t * q_dim + h * hd;
        memset(out, 0, hd * sizeof(float));
        quant_attn_accum_f16(out, sc, V + (size_t)first * kv->kv_dim, kv->kv_dim, n_keys, hd);
    }
}

/* ---- the layer loop --------------------------------------------------------- */

/* One micro-batch of n tokens (batch rows t0..t0+n-1) through path positions
 * [p_begin, p_end); hidden states in x[n][dim]. */
static void run_layers(forward_ctx *f, const fwd_batch *b, int t0, int n, float *x, int p_begin, int p_end) {
    const model *m = f->m;
    const model_hparams *hp = &m->hp;
    int dim = hp->dim, hd = hp->head_dim, q_dim = hp->n_head * hd, kv_dim = hp->n_head_kv * hd;
    kv_cache *kv = &f->kv;

    for (int p = p_begin; p < p_end; p++) {
        const int layer = f->path.layers[p];      /* whose weights */
        const int slot = p;                       /* whose KV cache */
        const layer_weights *L = &m->layers[layer];

        /* attention */
        for (int t = 0; t < n; t++) rmsnorm(f->xn + (size_t)t * dim, x + (size_t)t * dim, L->attn_norm, dim, hp->rms_eps);
        quant_matmul(&L->wq, f->xn, n, f->q, f->pool);
        quant_matmul(&L->wk, f->xn, n, f->k, f->pool);
        quant_matmul(&L->wv, f->xn, n, f->v, f->pool);
        for (int t = 0; t < n; t++) {
            float *qt = f->q + (size_t)t * q_dim, *kt = f->k + (size_t)t * kv_dim, *vt = f->v + (size_t)t * kv_dim;
            if (L->bq) {
                for (int i = 0; i < q_dim; i++) qt[i] += L->bq[i];
                for (int i = 0; i < kv_dim; i++) { kt[i] += L->bk[i]; vt[i] += L->bv[i]; }
            }
            int pos = b->pos[t0 + t];
            float *cs = f->rope_cs + (size_t)t * hp->rope_dims;
            if (L->sliding) rope_angles(cs, pos, hp->rope_dims, hp->rope_base_local, 1.0f);
            else rope_angles(cs, pos, hp->rope_dims, hp->rope_base, hp->rope_scale);
            for (int h = 0; h < hp->n_head; h++) {
                if (L->q_norm) rmsnorm(qt + h * hd, qt + h * hd, L->q_norm, hd, hp->rms_eps);
                rope(qt + h * hd, cs, hp->rope_dims, hp->rope);
            }
            /* queries meet the fp16 keys in fp16, as in llama.cpp */
            for (int i = 0; i < q_dim; i++) qt[i] = quant_fp16_round(qt[i]);
            for (int h = 0; h < hp->n_head_kv; h++) {
                if (L->k_norm) rmsnorm(kt + h * hd, kt + h * hd, L->k_norm, hd, hp->rms_eps);
                rope(kt + h * hd, cs, hp->rope_dims, hp->rope);
            }
            size_t at = ((size_t)b->seq[t0 + t] * kv->n_ctx + pos) * kv_dim;
            for (int i = 0; i < kv_dim; i++) {
                kv->k[slot][at + i] = quant_f32_to_fp16(kt[i]);
                kv->v[slot][at + i] = quant_f32_to_fp16(vt[i]);
            }
        }
        attn_job job = {f, b, t0, n, slot, L->sliding};
        pool_run(f->pool, attn_worker, &job);
        quant_matmul(&L->wo, f->att, n, f->o, f->pool);
        for (int t = 0; t < n; t++) {
            float *xt = x + (size_t)t * dim, *ot = f->o + (size_t)t * dim;
            if (L->post_attn_norm) rmsnorm(ot, ot, L->post_attn_norm, dim, hp->rms_eps);
            for (int i = 0; i < dim; i++) xt[i] += ot[i];
        }

        /* feed-forward: down(act(gate(x)) * up(x)) */
        for (int t = 0; t < n; t++) rmsnorm(f->xn + (size_t)t * dim, x + (size_t)t * dim, L->ffn_norm, dim, hp->rms_eps);
        quant_matmul(&L->w_gate, f->xn, n, f->gate, f->pool);
        quant_matmul(&L->w_up, f->xn, n, f->up, f->pool);
        size_t nf = (size_t)n * hp->ffn_dim;
        if (hp->gelu)
            for (size_t i = 0; i < nf; i++) f->gate[i] = gelu_tanh(f->gate[i]) * f->up[i];
        else
            for (size_t i = 0; i < nf; i++) f->gate[i] = f->gate[i] / (1.0f + expf(-f->gate[i])) * f->up[i];
        quant_matmul(&L->w_down, f->gate, n, f->o, f->pool);
        for (int t = 0; t < n; t++) {
            float *xt = x + (size_t)t * dim, *ot = f->o + (size_t)t * dim;
            if (L->post_ffn_norm) rmsnorm(ot, ot, L->post_ffn_norm, dim, hp->rms_eps);
            for (int i = 0; i < dim; i++) xt[i] += ot[i];
        }
    }
}

static int check_batch(const forward_ctx *f, const fwd_batch *b) {
    for (int t = 0; t < b->n; t++) {
        if (b->tokens && (b->tokens[t] < 0 || b->tokens[t] >= f->m->hp.n_vocab)) {
            rys_seterr("forward: token id %d out of range (vocabulary has %d)", b->tokens[t], f->m->hp.n_vocab);
            return -1;
        }
        if (b->pos[t] < 0 || b->pos[t] >= f->kv.n_ctx) {
            rys_seterr("forward: position %d beyond the context of %d tokens", b->pos[t], f->kv.n_ctx);
            return -1;
        }
        if (b->seq[t] < 0 || b->seq[t] >= f->kv.n_seq) {
            rys_seterr("forward: sequence %d out of range (%d sequences)", b->seq[t], f->kv.n_seq);
            return -1;
        }
    }
    return 0;
}

int forward_layers(forward_ctx *f, const fwd_batch *b, float *x, int p_begin, int p_end) {
    if (p_begin < 0 || p_end > f->path.n || p_begin > p_end) { rys_seterr("forward: bad path range"); return -1; }
    if (check_batch(f, b)) return -1;
    int dim = f->m->hp.dim;
    for (int t0 = 0; t0 < b->n; t0 += UBATCH) {
        int n = b->n - t0 < UBATCH ? b->n - t0 : UBATCH;
        run_layers(f, b, t0, n, x + (size_t)t0 * dim, p_begin, p_end);
    }
    return 0;
}

int forward_output(forward_ctx *f, const fwd_batch *b, const float *x, float *logits) {
    const model *m = f->m;
    int dim = m->hp.dim, rows = 0;
    for (int t0 = 0; t0 < b->n; t0 += UBATCH) {
        int n = b->n - t0 < UBATCH ? b->n - t0 : UBATCH, k = 0;
        for (int t = 0; t < n; t++) {
            if (b->want_logits && !b->want_logits[t0 + t]) continue;
            rmsnorm(f->xn + (size_t)k * dim, x + (size_t)(t0 + t) * dim, m->output_norm, dim, m->hp.rms_eps);
            k++;
        }
        if (k) quant_matmul(&m->output, f->xn, k, logits + (size_t)rows * m->hp.n_vocab, f->pool);
        rows += k;
    }
    return rows;
}

int forward_batch(forward_ctx *f, const fwd_batch *b, float *logits) {
    if (check_batch(f, b)) return -1;
    const model *m = f->m;
    int dim = m->hp.dim, rows = 0, n_vocab = m->hp.n_vocab;
    for (int t0 = 0; t0 < b->n; t0 += UBATCH) {
        int n = b->n - t0 < UBATCH ? b->n - t0 : UBATCH;
        for (int t = 0; t < n; t++) model_embed(m, b->tokens[t0 + t], f->x + (size_t)t * dim);
        run_layers(f, b, t0, n, f->x, 0, f->path.n);
        fwd_batch sub = {n, b->tokens + t0, b->pos + t0, b->seq + t0, b->want_logits ? b->want_logits + t0 : NULL};
        rows += forward_output(f, &sub, f->x, logits + (size_t)rows * n_vocab);
    }
    return rows;
}
