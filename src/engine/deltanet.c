/* deltanet: the Gated DeltaNet mixer and its recurrent states, see
 * deltanet.h. The four input products run over the whole micro-batch;
 * the convolution and the state update then go token by token in batch
 * order (a sequence's tokens depend on each other through the state), and
 * the output product again over the batch. The state matrix of a head is
 * kept as ggml keeps it, transposed (row j holds column j), so that each
 * step's dot products and updates run along contiguous rows in the order
 * llama.cpp sums them. */
#include "engine/deltanet.h"
#include "base/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct dn_cache {
    int n_slots, n_seq, max_tokens;
    int d_conv, S, n_k, n_v, key_dim, value_dim, conv_dim, dim;
    float rms_eps;
    float **conv;               /* [slot] -> [n_seq][d_conv - 1][conv_dim] past inputs, oldest first; NULL if not recurrent */
    float **state;              /* [slot] -> [n_seq][n_v][S][S] */
    int **held;                 /* [slot] -> [n_seq] tokens absorbed */
    float *mixed, *z, *beta, *alpha, *o; /* scratch [max_tokens][...] */
    float *co, *delta;          /* one token's convolution output [conv_dim], delta [S] */
};

dn_cache *dn_new(const model *m, const layer_path *path, int n_seq, int max_tokens) {
    const model_hparams *hp = &m->hp;
    if (!hp->ssm_n_v) return NULL;
    dn_cache *c = xcalloc(1, sizeof *c);
    c->n_slots = path->n;
    c->n_seq = n_seq;
    c->max_tokens = max_tokens;
    c->d_conv = hp->ssm_d_conv;
    c->S = hp->ssm_s;
    c->n_k = hp->ssm_n_k;
    c->n_v = hp->ssm_n_v;
    c->key_dim = c->S * c->n_k;
    c->value_dim = c->S * c->n_v;
    c->conv_dim = 2 * c->key_dim + c->value_dim;
    c->dim = hp->dim;
    c->rms_eps = hp->rms_eps;
    c->conv = xcalloc((size_t)path->n, sizeof *c->conv);
    c->state = xcalloc((size_t)path->n, sizeof *c->state);
    c->held = xcalloc((size_t)path->n, sizeof *c->held);
    for (int p = 0; p < path->n; p++) {
        if (!m->layers[path->layers[p]].recurrent) continue;
        c->conv[p] = xcalloc((size_t)n_seq * (c->d_conv - 1) * c->conv_dim + 1, sizeof(float));
        c->state[p] = xcalloc((size_t)n_seq * c->n_v * c->S * c->S, sizeof(float));
        c->held[p] = xcalloc((size_t)n_seq, sizeof(int));
    }
    size_t U = (size_t)max_tokens;
    c->mixed = xmalloc(U * c->conv_dim * sizeof(float));
    c->z = xmalloc(U * c->value_dim * sizeof(float));
    c->beta = xmalloc(U * c->n_v * sizeof(float));
    c->alpha = xmalloc(U * c->n_v * sizeof(float));
    c->o = xmalloc(U * c->value_dim * sizeof(float));
    c->co = xmalloc((size_t)c->conv_dim * sizeof(float));
    c->delta = xmalloc((size_t)c->S * sizeof(float));
    return c;
}

void dn_free(dn_cache *c) {
    if (!c) return;
    for (int p = 0; p < c->n_slots; p++) { free(c->conv[p]); free(c->state[p]); free(c->held[p]); }
    free(c->conv); free(c->state); free(c->held);
    free(c->mixed); free(c->z); free(c->beta); free(c->alpha); free(c->o); free(c->co); free(c->delta);
    free(c);
}

bool dn_slot_recurrent(const dn_cache *c, int slot) {
    return c && slot >= 0 && slot < c->n_slots && c->conv[slot];
}

int dn_check(const dn_cache *c, int slot_begin, int slot_end, int n, const int32_t *seq, const int32_t *pos) {
    if (!c) return 0;
    int *next = xmalloc((size_t)c->n_seq * sizeof(int));
    int rc = 0;
    for (int p = slot_begin; p < slot_end && !rc; p++) {
        if (!c->conv[p]) continue;
        memcpy(next, c->held[p], (size_t)c->n_seq * sizeof(int));
        for (int t = 0; t < n && !rc; t++) {
            if (pos[t] != 0 && pos[t] != next[seq[t]]) {
                rys_seterr("forward: token at position %d of sequence %d does not continue its recurrent state at "
                           "path position %d, which holds %d tokens", pos[t], seq[t], p, next[seq[t]]);
                rc = -1;
            }
            next[seq[t]] = pos[t] + 1;
        }
    }
    free(next);
    return rc;
}

static float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }
static float siluf(float x) { return x / (1.0f + expf(-x)); }

/* Sum of a[i] * b[i] in f32, in order. */
static float dot(const float *a, const float *b, int n) {
    float s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* x / |x| per head, as rms_norm(x, eps / n) / sqrt(n), llama.cpp's form. */
static void l2norm(float *x, int n, float eps) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (double)(x[i] * x[i]);
    float scale = 1.0f / sqrtf((float)(ss / n) + eps / (float)n), inv = 1.0f / sqrtf((float)n);
    for (int i = 0; i < n; i++) x[i] = x[i] * scale * inv;
}

/* One token through the convolution and the delta rule; its heads' outputs,
 * normed and gated by z, into o[value_dim]. */
static void dn_token(dn_cache *c, int slot, const layer_weights *L, int t, int sq, int ps, float *o) {
    const int d = c->d_conv, S = c->S;
    float *past = c->conv[slot] + (size_t)sq * (d - 1) * c->conv_dim;
    float *M0 = c->state[slot] + (size_t)sq * c->n_v * S * S;
    if (ps == 0) {
        memset(past, 0, (size_t)(d - 1) * c->conv_dim * sizeof(float));
        memset(M0, 0, (size_t)c->n_v * S * S * sizeof(float));
    }
    const float *in = c->mixed + (size_t)t * c->conv_dim;
    for (int ch = 0; ch < c->conv_dim; ch++) {
        const float *w = L->ssm_conv + (size_t)ch * d;
        float acc = 0;
        for (int i = 0; i < d - 1; i++) acc += past[(size_t)i * c->conv_dim + ch] * w[i];
        acc += in[ch] * w[d - 1];
        c->co[ch] = siluf(acc);
    }
    if (d > 1) {
        memmove(past, past + c->conv_dim, (size_t)(d - 2) * c->conv_dim * sizeof(float));
        memcpy(past + (size_t)(d - 2) * c->conv_dim, in, (size_t)c->conv_dim * sizeof(float));
    }
    float *q = c->co, *k = c->co + c->key_dim, *v = c->co + 2 * c->key_dim;
    for (int h = 0; h < c->n_k; h++) {
        l2norm(q + h * S, S, c->rms_eps);
        l2norm(k + h * S, S, c->rms_eps);
    }
    const float scale = 1.0f / sqrtf((float)S);
    for (int h = 0; h < c->n_v; h++) {
        const float *kh = k + (h % c->n_k) * S, *qh = q + (h % c->n_k) * S, *vh = v + h * S;
        float beta = sigmoidf(c->beta[(size_t)t * c->n_v + h]);
        float a = c->alpha[(size_t)t * c->n_v + h] + L->ssm_dt[h];
        float g = L->ssm_a[h] * (a > 20.0f ? a : log1pf(expf(a)));
        float decay = expf(g);
        float *M = M0 + (size_t)h * S * S, *out = o + h * S;
        for (int i = 0; i < S * S; i++) M[i] *= decay;
        for (int j = 0; j < S; j++) c->delta[j] = (vh[j] - dot(M + (size_t)j * S, kh, S)) * beta;
        for (int j = 0; j < S; j++)
            for (int i = 0; i < S; i++) M[(size_t)j * S + i] += kh[i] * c->delta[j];
        for (int j = 0; j < S; j++) out[j] = dot(M + (size_t)j * S, qh, S) * scale;
        /* norm, then the gate */
        double ss = 0;
        for (int j = 0; j < S; j++) ss += (double)(out[j] * out[j]);
        float r = 1.0f / sqrtf((float)(ss / S) + c->rms_eps);
        const float *zh = c->z + (size_t)t * c->value_dim + h * S;
        for (int j = 0; j < S; j++) out[j] = out[j] * r * L->ssm_norm[j] * siluf(zh[j]);
    }
}

void dn_layer(dn_cache *c, int slot, const layer_weights *L, const float *xn, int n, const int32_t *seq,
              const int32_t *pos, float *out, pool *pool) {
    const quant_matrix *in[] = {&L->ssm_qkv, &L->ssm_z, &L->ssm_beta, &L->ssm_alpha};
    quant_matmul_many(in, 4, xn, n, (float *const[]){c->mixed, c->z, c->beta, c->alpha}, pool);
    for (int t = 0; t < n; t++) {
        dn_token(c, slot, L, t, seq[t], pos[t], c->o + (size_t)t * c->value_dim);
        c->held[slot][seq[t]] = pos[t] + 1;
    }
    quant_matmul(&L->ssm_out, c->o, n, out, pool);
}

int dn_copy_seq(dn_cache *c, int slot_begin, int slot_end, int src, int dst, int n_pos) {
    if (!c || src == dst) return 0;
    size_t conv = (size_t)(c->d_conv - 1) * c->conv_dim, st = (size_t)c->n_v * c->S * c->S;
    for (int p = slot_begin; p < slot_end; p++) {
        if (!c->conv[p]) continue;
        if (c->held[p][src] != n_pos) {
            rys_seterr("forward: cannot copy %d positions of sequence %d: its recurrent state at path position %d "
                       "holds %d tokens", n_pos, src, p, c->held[p][src]);
            return -1;
        }
        memcpy(c->conv[p] + dst * conv, c->conv[p] + src * conv, conv * sizeof(float));
        memcpy(c->state[p] + dst * st, c->state[p] + src * st, st * sizeof(float));
        c->held[p][dst] = n_pos;
    }
    return 0;
}

size_t dn_state_floats(const dn_cache *c) {
    return c ? (size_t)(c->d_conv - 1) * c->conv_dim + (size_t)c->n_v * c->S * c->S : 0;
}

/* Whether (slot, seq) names a recurrent state of c; else the error. */
static bool dn_state_at(const dn_cache *c, int slot, int seq) {
    if (c && slot >= 0 && slot < c->n_slots && c->conv[slot] && seq >= 0 && seq < c->n_seq) return true;
    rys_seterr("forward: path position %d holds no recurrent state of sequence %d", slot, seq);
    return false;
}

int dn_state_read(const dn_cache *c, int slot, int seq, float *buf, int *held) {
    if (!dn_state_at(c, slot, seq)) return -1;
    size_t conv = (size_t)(c->d_conv - 1) * c->conv_dim, st = (size_t)c->n_v * c->S * c->S;
    memcpy(buf, c->conv[slot] + seq * conv, conv * sizeof(float));
    memcpy(buf + conv, c->state[slot] + seq * st, st * sizeof(float));
    *held = c->held[slot][seq];
    return 0;
}

int dn_state_write(dn_cache *c, int slot, int seq, const float *buf, int held) {
    if (!dn_state_at(c, slot, seq)) return -1;
    size_t conv = (size_t)(c->d_conv - 1) * c->conv_dim, st = (size_t)c->n_v * c->S * c->S;
    memcpy(c->conv[slot] + seq * conv, buf, conv * sizeof(float));
    memcpy(c->state[slot] + seq * st, buf + conv, st * sizeof(float));
    c->held[slot][seq] = held;
    return 0;
}
