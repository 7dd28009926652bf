/* forward: the forward pass. The per-layer work reads top to bottom in
 * run_layers(); forward_batch() (embedding, layers, logits) and
 * forward_layers() cut the batch into micro-batches and call it for each.
 * It walks path positions, not layers: position p runs with the weights of
 * layer path.layers[p] and keeps its K/V in KV slot p, so a layer that
 * appears twice on the path has a cache for each visit.
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
#include "engine/forward.h"
#include "engine/moe.h"
#include "engine/deltanet.h"
#include "base/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define UBATCH 256
#define QBLOCK 16   /* tokens of one sequence whose attention scores are computed together */

/* KV cache: one slot per path position, each [n_seq][n_ctx][kv_dim] for K and
 * V, in fp16 like llama.cpp's default cache (half the memory of f32, and its
 * rounding is part of the numbers we match). A slot's buffers may be borrowed
 * from another cache (owned[p] false, see forward_share_slot). */
typedef struct {
    int n_slots, n_seq, n_ctx, kv_dim;
    uint16_t **k, **v;
    bool *owned;
} kv_cache;

struct forward_ctx {
    const model *m;
    layer_path path;
    kv_cache kv;
    pool *pool;
    /* scratch for one micro-batch, a row per token: x the hidden states
     * (forward_batch's; forward_layers works on the caller's), xn their norm,
     * the next product's input; q, k, v the projections; att the heads'
     * attention output, wo's input; o wo's or w_down's output before the
     * residual add; gate and up the feed-forward's two products */
    float *x, *xn, *q, *k, *v, *att, *o, *gate, *up;
    float *scores;              /* [n_threads][QBLOCK x GQA group][n_ctx] attention scratch */
    const float **queries;      /* [n_threads][QBLOCK x GQA group] query rows of one work item */
    int *qblocks;               /* [UBATCH + 1] first batch row of each query block */
    float *rope_cs;             /* [UBATCH][rope_dims] cos, sin of the micro-batch's positions */
    moe_scratch *moe;           /* the experts' scratch (MoE models), or NULL */
    dn_cache *dn;               /* recurrent states of Gated DeltaNet positions (qwen35), or NULL */
    float *qraw, *qgate;        /* gated attention (qwen35): wq's rows [query | gate] per head, the gates */
    int *kept;                  /* [UBATCH] micro-batch rows kept past the last position's K and V */
    /* damped-Euler traversals (path.seg): the state each token entered the
     * open traversal with, [n_seq][n_ctx][dim] by the token's sequence and
     * position, since a caller may run a traversal's positions in several
     * calls on differently ordered rows; NULL when the path has none */
    float *x0;
    int32_t *kept_pos, *kept_seq;
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
    size_t ffn = hp->n_expert ? 0 : (size_t)hp->ffn_dim;   /* the experts have their own scratch */
    f->gate = xmalloc(U * ffn * sizeof(float));
    f->up = xmalloc(U * ffn * sizeof(float));
    f->moe = hp->n_expert ? moe_new(hp, UBATCH) : NULL;
    f->dn = dn_new(m, path, n_seq, UBATCH);
    f->qraw = hp->attn_gate ? xmalloc(U * 2 * q_dim * sizeof(float)) : NULL;
    f->qgate = hp->attn_gate ? xmalloc(U * q_dim * sizeof(float)) : NULL;
    size_t group_rows = (size_t)QBLOCK * (hp->n_head / hp->n_head_kv);
    f->scores = xmalloc((size_t)pool_size(pool) * group_rows * n_ctx * sizeof(float));
    f->queries = xmalloc((size_t)pool_size(pool) * group_rows * sizeof *f->queries);
    f->qblocks = xmalloc((UBATCH + 1) * sizeof *f->qblocks);
    f->rope_cs = xmalloc(U * (size_t)hp->rope_dims * sizeof(float));
    f->kept = xmalloc(U * sizeof *f->kept);
    f->kept_pos = xmalloc(U * sizeof *f->kept_pos);
    f->kept_seq = xmalloc(U * sizeof *f->kept_seq);
    if (path->n_seg) f->x0 = xcalloc((size_t)n_seq * n_ctx * hp->dim, sizeof(float));
    return f;
}

void forward_free(forward_ctx *f) {
    if (!f) return;
    kv_free(&f->kv);
    path_free(&f->path);
    free(f->x); free(f->xn); free(f->q); free(f->k); free(f->v);
    free(f->att); free(f->o); free(f->gate); free(f->up); free(f->scores); free(f->rope_cs);
    free(f->queries); free(f->qblocks);
    moe_free(f->moe);
    dn_free(f->dn);
    free(f->qraw); free(f->qgate);
    free(f->kept); free(f->kept_pos); free(f->kept_seq);
    free(f->x0);
    free(f);
}

const model *forward_model(const forward_ctx *f) { return f->m; }
const layer_path *forward_path(const forward_ctx *f) { return &f->path; }
kv_shape forward_kv_shape(const forward_ctx *f) {
    return (kv_shape){f->kv.n_slots, f->kv.n_seq, f->kv.n_ctx, f->kv.kv_dim};
}

/* The offset of (seq, pos) in a slot's buffers, or -1 with an error when
 * positions [pos, pos + n_pos) of seq in slot lie outside the cache. */
static long long kv_offset(const kv_cache *kv, int slot, int seq, int pos, int n_pos) {
    if (slot < 0 || slot >= kv->n_slots || seq < 0 || seq >= kv->n_seq || pos < 0 || n_pos < 0 || pos > kv->n_ctx - n_pos) {
        rys_seterr("forward: positions %d..%d of sequence %d in KV slot %d lie outside the cache", pos, pos + n_pos - 1,
                   seq, slot);
        return -1;
    }
    return ((long long)seq * kv->n_ctx + pos) * kv->kv_dim;
}

int forward_kv_read(const forward_ctx *f, int slot, int seq, int pos, int n_pos, uint16_t *k, uint16_t *v) {
    long long at = kv_offset(&f->kv, slot, seq, pos, n_pos);
    if (at < 0) return -1;
    size_t bytes = (size_t)n_pos * f->kv.kv_dim * sizeof(uint16_t);
    memcpy(k, f->kv.k[slot] + at, bytes);
    memcpy(v, f->kv.v[slot] + at, bytes);
    return 0;
}

int forward_kv_write(forward_ctx *f, int slot, int seq, int pos, int n_pos, const uint16_t *k, const uint16_t *v) {
    long long at = kv_offset(&f->kv, slot, seq, pos, n_pos);
    if (at < 0) return -1;
    size_t bytes = (size_t)n_pos * f->kv.kv_dim * sizeof(uint16_t);
    memcpy(f->kv.k[slot] + at, k, bytes);
    memcpy(f->kv.v[slot] + at, v, bytes);
    return 0;
}

int forward_copy_seq_slots(forward_ctx *f, int slot_begin, int slot_end, int src, int dst, int n_pos) {
    kv_cache *kv = &f->kv;
    if (src < 0 || dst < 0 || src >= kv->n_seq || dst >= kv->n_seq || n_pos < 0 || n_pos > kv->n_ctx ||
        slot_begin < 0 || slot_end > kv->n_slots || slot_begin > slot_end) {
        rys_seterr("forward: cannot copy %d positions from sequence %d to %d in KV slots %d..%d", n_pos, src, dst,
                   slot_begin, slot_end - 1);
        return -1;
    }
    size_t row = (size_t)kv->n_ctx * kv->kv_dim, bytes = (size_t)n_pos * kv->kv_dim * sizeof(uint16_t);
    for (int p = slot_begin; p < slot_end; p++) {
        memcpy(kv->k[p] + dst * row, kv->k[p] + src * row, bytes);
        memcpy(kv->v[p] + dst * row, kv->v[p] + src * row, bytes);
    }
    return dn_copy_seq(f->dn, slot_begin, slot_end, src, dst, n_pos);
}

int forward_copy_seq(forward_ctx *f, int src, int dst, int n_pos) {
    return forward_copy_seq_slots(f, 0, f->kv.n_slots, src, dst, n_pos);
}

int forward_share_slot(forward_ctx *f, int slot, forward_ctx *src, int src_slot) {
    kv_cache *kv = &f->kv;
    const kv_cache *o = &src->kv;
    if (f->m != src->m || kv->n_seq != o->n_seq || kv->n_ctx != o->n_ctx || slot < 0 || slot >= kv->n_slots ||
        src_slot < 0 || src_slot >= o->n_slots) {
        rys_seterr("forward: cannot share KV slot %d with slot %d of another cache", slot, src_slot);
        return -1;
    }
    if (dn_slot_recurrent(f->dn, slot)) {
        /* a borrower's new tokens would overwrite the owner's state: no prefix reuse there yet */
        rys_seterr("forward: path position %d is a recurrent layer, whose state cannot be shared", slot);
        return -1;
    }
    if (kv->owned[slot]) { free(kv->k[slot]); free(kv->v[slot]); }
    kv->k[slot] = o->k[src_slot];
    kv->v[slot] = o->v[src_slot];
    kv->owned[slot] = false;
    return 0;
}

bool forward_slot_recurrent(const forward_ctx *f, int slot) { return dn_slot_recurrent(f->dn, slot); }

size_t forward_recurrent_floats(const forward_ctx *f) { return dn_state_floats(f->dn); }

int forward_recurrent_read(const forward_ctx *f, int slot, int seq, float *buf, int *held) {
    return dn_state_read(f->dn, slot, seq, buf, held);
}

int forward_recurrent_write(forward_ctx *f, int slot, int seq, const float *buf, int held) {
    return dn_state_write(f->dn, slot, seq, buf, held);
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
    int t0;             /* micro-batch: tokens from t0 */
    int slot;           /* KV slot = path position */
    bool sliding;
    int n_blocks;       /* query blocks: micro-batch rows [qblocks[i], qblocks[i+1]) */
} attn_job;

/* Runs of up to QBLOCK tokens of one sequence: their queries meet the same
 * keys, so each K row is converted once for all of them. */
static int query_blocks(forward_ctx *f, const fwd_batch *b, int t0, int n) {
    int nb = 0;
    for (int t = 0; t < n; t++)
        if (t == 0 || b->seq[t0 + t] != b->seq[t0 + f->qblocks[nb - 1]] || t - f->qblocks[nb - 1] == QBLOCK)
            f->qblocks[nb++] = t;
    f->qblocks[nb] = n;
    return nb;
}

/* The first key a token at pos sees. */
static int first_key(const model_hparams *hp, bool sliding, int pos) {
    return sliding && hp->sliding_window > 0 && pos - hp->sliding_window + 1 > 0 ? pos - hp->sliding_window + 1 : 0;
}

/* The largest of n scores (NaNs skipped). Four running maxima break the
 * compare chain; a maximum does not depend on the order (only which of +0
 * and -0 wins a tie may, and exp of the difference does not see that). */
static float max_score(const float *sc, int n) {
    float m[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
    int j = 0;
    for (; j + 4 <= n; j += 4)
        for (int l = 0; l < 4; l++) m[l] = sc[j + l] > m[l] ? sc[j + l] : m[l];
    for (; j < n; j++) m[0] = sc[j] > m[0] ? sc[j] : m[0];
    float a = m[1] > m[0] ? m[1] : m[0], b = m[3] > m[2] ? m[3] : m[2];
    return b > a ? b : a;
}

/* Softmax of n_rows rows of n scores (rows `stride` apart) in place, as ggml
 * computes it (max subtracted, sum in double in key order), the weights
 * rounded to fp16: llama.cpp multiplies them with the fp16 V so. The rows'
 * sums run side by side, each still in key order, so the adds of one row
 * do not wait on each other. */
static void softmax_f16(float *sc, size_t stride, int n_rows, int n) {
    for (int h = 0; h < n_rows; h++) {
        float *r = sc + (size_t)h * stride, mx = max_score(r, n);
        for (int j = 0; j < n; j++) r[j] -= mx;
        quant_expf_n(r, n);
    }
    for (int h0 = 0; h0 < n_rows; h0 += 4) {
        int nh = n_rows - h0 < 4 ? n_rows - h0 : 4;
        const float *r[4];
        for (int h = 0; h < 4; h++) r[h] = sc + (size_t)(h0 + (h < nh ? h : 0)) * stride;
        double sum[4] = {0, 0, 0, 0};
        for (int j = 0; j < n; j++)
#pragma GCC unroll 4
            for (int h = 0; h < 4; h++) sum[h] += r[h][j];
        for (int h = 0; h < nh; h++) {
            float *row = sc + (size_t)(h0 + h) * stride, inv = (float)(1.0 / sum[h]);
            for (int j = 0; j < n; j++) row[j] *= inv;
            quant_fp16_round_n(row, n);
        }
    }
}

/* Work items are (query block, run of query heads of one KV head): the
 * heads of a GQA group go together, so each K/V row is converted once for
 * all of them; with fewer blocks x KV heads than threads (decode of a small
 * model), single heads, so every thread has work. The items are numbered
 * block by block, each block's head runs in turn (attn_item_at). */
static int attn_heads_per_item(const forward_ctx *f, int n_blocks) {
    const model_hparams *hp = &f->m->hp;
    return (long)n_blocks * hp->n_head_kv >= pool_size(f->pool) ? hp->n_head / hp->n_head_kv : 1;
}

/* The keys query block i meets: from its earliest first key to its last
 * position. */
static void block_keys(const forward_ctx *f, const attn_job *J, int i, int *k0, int *k1) {
    const model_hparams *hp = &f->m->hp;
    const int *pos = J->b->pos + J->t0;
    int tb = f->qblocks[i], te = f->qblocks[i + 1];
    *k0 = first_key(hp, J->sliding, pos[tb]);
    *k1 = pos[tb];
    for (int t = tb; t < te; t++) {
        int a = first_key(hp, J->sliding, pos[t]);
        *k0 = a < *k0 ? a : *k0;
        *k1 = pos[t] > *k1 ? pos[t] : *k1;
    }
}

/* Query block i's attention cost: its queries times the keys they span. */
static double block_cost(const forward_ctx *f, const attn_job *J, int i) {
    int k0, k1;
    block_keys(f, J, i, &k0, &k1);
    return (double)(f->qblocks[i + 1] - f->qblocks[i]) * (k1 - k0 + 1);
}

/* One attention work item: a query block's tokens against a run of query
 * heads that share one KV head. */
typedef struct {
    int block;                  /* query block */
    int row_begin, row_end;     /* its micro-batch rows [row_begin, row_end) */
    int head_first, n_heads;    /* query heads [head_first, head_first + n_heads) */
} attn_item;

/* Work item w when each query block is cut into runs_per_block runs of
 * heads_per_item heads. */
static attn_item attn_item_at(const forward_ctx *f, long w, int runs_per_block, int heads_per_item) {
    int block = (int)(w / runs_per_block);
    return (attn_item){
        .block = block,
        .row_begin = f->qblocks[block],
        .row_end = f->qblocks[block + 1],
        .head_first = (int)(w % runs_per_block) * heads_per_item,
        .n_heads = heads_per_item,
    };
}

/* Thread ith's run of work items, split by cost (queries x keys), not by
 * count: in a causal prompt a late block meets up to 16 times the keys of an
 * early one, and a scan's decode step mixes sequences of 100 and 800 tokens,
 * so equal counts left one thread most of the work while the other waited.
 * Item w goes to the thread whose share holds the middle of its cost; every
 * thread computes the same cut, so each item runs once. */
static void attn_items(const forward_ctx *f, const attn_job *J, int runs_per_block, int ith, int nth, long *lo,
                       long *hi) {
    double total = 0;
    for (int i = 0; i < J->n_blocks; i++) total += block_cost(f, J, i) * runs_per_block;
    *lo = *hi = 0;
    double before = 0;
    long w = 0;
    for (int i = 0; i < J->n_blocks; i++) {
        double cost = block_cost(f, J, i);
        for (int r = 0; r < runs_per_block; r++, w++, before += cost) {
            int owner = (int)((before + cost / 2) * nth / total);
            if (owner < ith) *lo = w + 1;
            if (owner <= ith) *hi = w + 1;
        }
    }
    if (*hi < *lo) *hi = *lo;
}

/* Thread ith's share of one layer's attention: for each of its work items,
 * the scores of the item's queries against the keys its block spans (one
 * row of n_ctx per query), each query's softmax over its own keys, and the
 * weighted sum of V rows into att. */
static void attn_worker(void *ctx, int ith, int nth) {
    attn_job *J = ctx;
    forward_ctx *f = J->f;
    const model_hparams *hp = &f->m->hp;
    const kv_cache *kv = &f->kv;
    const int *pos = J->b->pos + J->t0;
    int hd = hp->head_dim, q_dim = hp->n_head * hd, group = hp->n_head / hp->n_head_kv;
    int heads_per_item = attn_heads_per_item(f, J->n_blocks), runs_per_block = hp->n_head / heads_per_item;
    float *scores = f->scores + (size_t)ith * QBLOCK * group * kv->n_ctx;
    const float **queries = f->queries + (size_t)ith * QBLOCK * group;
    long lo, hi;
    attn_items(f, J, runs_per_block, ith, nth, &lo, &hi);
    for (long w = lo; w < hi; w++) {
        attn_item it = attn_item_at(f, w, runs_per_block, heads_per_item);
        int k0, k1;
        block_keys(f, J, it.block, &k0, &k1);
        /* score row (t - row_begin) * n_heads + h is token t's head head_first + h */
        for (int t = it.row_begin; t < it.row_end; t++)
            for (int h = 0; h < it.n_heads; h++)
                queries[(t - it.row_begin) * it.n_heads + h] = f->q + (size_t)t * q_dim + (it.head_first + h) * hd;
        size_t base = (size_t)J->b->seq[J->t0 + it.row_begin] * kv->n_ctx * kv->kv_dim +
                      (size_t)(it.head_first / group) * hd;
        const uint16_t *K = kv->k[J->slot] + base, *V = kv->v[J->slot] + base;
        quant_attn_scores_f16(scores, kv->n_ctx, queries, (it.row_end - it.row_begin) * it.n_heads,
                              K + (size_t)k0 * kv->kv_dim, kv->kv_dim, k1 - k0 + 1, hd, hp->attn_scale);
        /* each token weighs only its own keys: scores of later positions are dropped */
        for (int t = it.row_begin; t < it.row_end; t++) {
            int first = first_key(hp, J->sliding, pos[t]), n_keys = pos[t] - first + 1;
            float *weights = scores + (size_t)(t - it.row_begin) * it.n_heads * kv->n_ctx + (first - k0);
            softmax_f16(weights, kv->n_ctx, it.n_heads, n_keys);
            float *out = f->att + (size_t)t * q_dim + it.head_first * hd;
            memset(out, 0, (size_t)it.n_heads * hd * sizeof(float));
            quant_attn_accum_f16(out, hd, weights, kv->n_ctx, it.n_heads, V + (size_t)first * kv->kv_dim,
                                 kv->kv_dim, n_keys, hd);
        }
    }
}

/* ---- per-token steps ---------------------------------------------------------- */

/* The elementwise work between matrix products, one token at a time, split
 * across the pool: each token's numbers come from the same scalar code
 * whatever the split. */
typedef struct token_map token_map;
struct token_map {
    forward_ctx *f;
    const fwd_batch *b;
    const layer_weights *L;
    int t0, n, slot;
    float scale;                                /* the position's residual scale (path.scale) */
    float *x;                                   /* hidden states [n][dim] */
    void (*step)(const token_map *m, int t);
};

static void token_worker(void *ctx, int ith, int nth) {
    const token_map *m = ctx;
    long lo, hi;
    pool_split(m->n, ith, nth, &lo, &hi);
    for (long t = lo; t < hi; t++) m->step(m, (int)t);
}

static void map_tokens(token_map *m, void (*step)(const token_map *m, int t)) {
    m->step = step;
    if (m->n == 1) step(m, 0); /* decode: waking the pool costs more than the work */
    else pool_run(m->f->pool, token_worker, m);
}

static void attn_norm_step(const token_map *m, int t) {
    const model_hparams *hp = &m->f->m->hp;
    rmsnorm(m->f->xn + (size_t)t * hp->dim, m->x + (size_t)t * hp->dim, m->L->attn_norm, hp->dim, hp->rms_eps);
}

/* Biases, q/k norms, RoPE; Q rounded to fp16 and K, V stored in the fp16 cache. */
static void qkv_step(const token_map *m, int t) {
    forward_ctx *f = m->f;
    const model_hparams *hp = &f->m->hp;
    const layer_weights *L = m->L;
    int hd = hp->head_dim, q_dim = hp->n_head * hd, kv_dim = hp->n_head_kv * hd;
    float *qt = f->q + (size_t)t * q_dim, *kt = f->k + (size_t)t * kv_dim, *vt = f->v + (size_t)t * kv_dim;
    if (f->qgate) /* gated attention: each head's query, then its gate */
        for (int h = 0; h < hp->n_head; h++) {
            const float *raw = f->qraw + (size_t)t * 2 * q_dim + (size_t)h * 2 * hd;
            memcpy(qt + h * hd, raw, (size_t)hd * sizeof(float));
            memcpy(f->qgate + (size_t)t * q_dim + h * hd, raw + hd, (size_t)hd * sizeof(float));
        }
    if (L->bq) {
        for (int i = 0; i < q_dim; i++) qt[i] += L->bq[i];
        for (int i = 0; i < kv_dim; i++) { kt[i] += L->bk[i]; vt[i] += L->bv[i]; }
    }
    int pos = m->b->pos[m->t0 + t];
    float *cs = f->rope_cs + (size_t)t * hp->rope_dims;
    if (L->sliding) rope_angles(cs, pos, hp->rope_dims, hp->rope_base_local, 1.0f);
    else rope_angles(cs, pos, hp->rope_dims, hp->rope_base, hp->rope_scale);
    for (int h = 0; h < hp->n_head; h++) {
        if (L->q_norm) rmsnorm(qt + h * hd, qt + h * hd, L->q_norm, hd, hp->rms_eps);
        rope(qt + h * hd, cs, hp->rope_dims, hp->rope);
    }
    /* queries meet the fp16 keys in fp16, as in llama.cpp */
    quant_fp16_round_n(qt, q_dim);
    for (int h = 0; h < hp->n_head_kv; h++) {
        if (L->k_norm) rmsnorm(kt + h * hd, kt + h * hd, L->k_norm, hd, hp->rms_eps);
        rope(kt + h * hd, cs, hp->rope_dims, hp->rope);
    }
    kv_cache *kv = &f->kv;
    size_t at = ((size_t)m->b->seq[m->t0 + t] * kv->n_ctx + pos) * kv_dim;
    quant_f32_to_fp16_n(kt, kv->k[m->slot] + at, kv_dim);
    quant_f32_to_fp16_n(vt, kv->v[m->slot] + at, kv_dim);
}

/* Gated attention (qwen35): the heads' output times sigmoid of their gates. */
static void attn_gate_step(const token_map *m, int t) {
    const model_hparams *hp = &m->f->m->hp;
    int q_dim = hp->n_head * hp->head_dim;
    float *a = m->f->att + (size_t)t * q_dim;
    const float *g = m->f->qgate + (size_t)t * q_dim;
    for (int i = 0; i < q_dim; i++) a[i] *= 1.0f / (1.0f + expf(-g[i]));
}

/* x += (post-norm of) the attention output; then the feed-forward's input norm. */
static void attn_residual_step(const token_map *m, int t) {
    const model_hparams *hp = &m->f->m->hp;
    const layer_weights *L = m->L;
    float *xt = m->x + (size_t)t * hp->dim, *ot = m->f->o + (size_t)t * hp->dim;
    if (L->post_attn_norm) rmsnorm(ot, ot, L->post_attn_norm, hp->dim, hp->rms_eps);
    /* an undamped position adds without a multiply: the bits of a path without scales */
    if (m->scale == 1.0f) for (int i = 0; i < hp->dim; i++) xt[i] += ot[i];
    else for (int i = 0; i < hp->dim; i++) xt[i] += m->scale * ot[i];
    rmsnorm(m->f->xn + (size_t)t * hp->dim, xt, L->ffn_norm, hp->dim, hp->rms_eps);
}

/* gate = act(gate) * up; SiLU's exponentials a chunk at a time */
static void ffn_act_step(const token_map *m, int t) {
    const model_hparams *hp = &m->f->m->hp;
    float *g = m->f->gate + (size_t)t * hp->ffn_dim, *u = m->f->up + (size_t)t * hp->ffn_dim;
    if (hp->gelu) {
        for (int i = 0; i < hp->ffn_dim; i++) g[i] = gelu_tanh(g[i]) * u[i];
        return;
    }
    enum { CHUNK = 256 };
    float e[CHUNK];
    for (int i0 = 0; i0 < hp->ffn_dim; i0 += CHUNK) {
        int n = hp->ffn_dim - i0 < CHUNK ? hp->ffn_dim - i0 : CHUNK;
        for (int i = 0; i < n; i++) e[i] = -g[i0 + i];
        quant_expf_n(e, n);
        for (int i = 0; i < n; i++) g[i0 + i] = g[i0 + i] / (1.0f + e[i]) * u[i0 + i];
    }
}

/* x += (post-norm of) the feed-forward output */
static void ffn_residual_step(const token_map *m, int t) {
    const model_hparams *hp = &m->f->m->hp;
    float *xt = m->x + (size_t)t * hp->dim, *ot = m->f->o + (size_t)t * hp->dim;
    if (m->L->post_ffn_norm) rmsnorm(ot, ot, m->L->post_ffn_norm, hp->dim, hp->rms_eps);
    if (m->scale == 1.0f) for (int i = 0; i < hp->dim; i++) xt[i] += ot[i];
    else for (int i = 0; i < hp->dim; i++) xt[i] += m->scale * ot[i];
}

/* ---- the feed-forward, one function per kind --------------------------------- */

/* f->o = down(act(gate(xn)) * up(xn)) for the micro-batch's n rows. */
static void ffn_dense(forward_ctx *f, token_map *tm) {
    const layer_weights *L = tm->L;
    const quant_matrix *gate_up[] = {&L->w_gate, &L->w_up};
    quant_matmul_many(gate_up, 2, f->xn, tm->n, (float *const[]){f->gate, f->up}, f->pool);
    map_tokens(tm, ffn_act_step);
    quant_matmul(&L->w_down, f->gate, tm->n, f->o, f->pool);
}

/* f->o = the mixture of experts' output for the n rows of xn (moe.c). */
static void ffn_moe(forward_ctx *f, token_map *tm) {
    moe_ffn(f->moe, tm->L, f->xn, tm->n, f->o, f->pool);
}

/* ---- the layer loop --------------------------------------------------------- */

/* Moves the micro-batch's rows that want logits (hidden states x, queries q)
 * to its front, in order, and describes them in kept; returns their number.
 * Past the path's last K and V nothing else reads the other rows. */
static int keep_wanted_rows(forward_ctx *f, const fwd_batch *b, int t0, int n, float *x, fwd_batch *kept) {
    const model_hparams *hp = &f->m->hp;
    size_t dim = (size_t)hp->dim, q_dim = (size_t)hp->n_head * hp->head_dim;
    int n_kept = 0;
    for (int t = 0; t < n; t++) {
        if (!b->want_logits[t0 + t]) continue;
        if (t != n_kept) {
            memcpy(x + n_kept * dim, x + t * dim, dim * sizeof *x);
            memcpy(f->q + n_kept * q_dim, f->q + t * q_dim, q_dim * sizeof *f->q);
            if (f->qgate) memcpy(f->qgate + n_kept * q_dim, f->qgate + t * q_dim, q_dim * sizeof *f->qgate);
        }
        f->kept[n_kept] = t;
        f->kept_pos[n_kept] = b->pos[t0 + t];
        f->kept_seq[n_kept] = b->seq[t0 + t];
        n_kept++;
    }
    *kept = (fwd_batch){.n = n_kept, .pos = f->kept_pos, .seq = f->kept_seq};
    return n_kept;
}

/* Kept row k back to micro-batch row kept[k]: from the last down, so no row
 * is overwritten before it moves. */
static void restore_kept_rows(const forward_ctx *f, int n_kept, float *x) {
    size_t dim = (size_t)f->m->hp.dim;
    for (int k = n_kept - 1; k >= 0; k--)
        if (f->kept[k] != k) memcpy(x + (size_t)f->kept[k] * dim, x + k * dim, dim * sizeof *x);
}

/* Damped-Euler traversals ("Training-Free Looped Transformers", Chen et al.,
 * arXiv 2605.23872): a traversal of positions [begin, end) runs its layers at
 * full strength; entering it, each token's state x0 is kept, and leaving it
 * the state becomes x0 + h (x - x0): the traversal's whole update G(x0) - x0
 * scaled by h. Rows are found by sequence and position. */
static float *x0_row(const forward_ctx *f, const fwd_batch *b, int t0, int t) {
    size_t at = (size_t)b->seq[t0 + t] * f->kv.n_ctx + (size_t)b->pos[t0 + t];
    return f->x0 + at * f->m->hp.dim;
}

static void euler_enter(const forward_ctx *f, const fwd_batch *b, int t0, int n, const float *x, int p) {
    for (int s = 0; s < f->path.n_seg; s++)
        if (f->path.seg[s].begin == p)
            for (int t = 0; t < n; t++)
                memcpy(x0_row(f, b, t0, t), x + (size_t)t * f->m->hp.dim, (size_t)f->m->hp.dim * sizeof *x);
}

static void euler_leave(const forward_ctx *f, const fwd_batch *b, int t0, int n, float *x, int p) {
    int dim = f->m->hp.dim;
    for (int s = 0; s < f->path.n_seg; s++) {
        if (f->path.seg[s].end != p + 1) continue;
        float h = f->path.seg[s].h;
        for (int t = 0; t < n; t++) {
            const float *x0 = x0_row(f, b, t0, t);
            float *xt = x + (size_t)t * dim;
            for (int i = 0; i < dim; i++) xt[i] = x0[i] + h * (xt[i] - x0[i]);
        }
    }
}

/* One micro-batch of n tokens (batch rows t0..t0+n-1) through path positions
 * [p_begin, p_end); hidden states in x[n][dim]. With trim, the path's last
 * position computes only K and V for rows without want_logits: a prompt's
 * other tokens are needed there only as keys and values, and their
 * attention output and feed-forward would be the whole layer's work again. */
static void run_layers(forward_ctx *f, const fwd_batch *b, int t0, int n, float *x, int p_begin, int p_end,
                       bool trim) {
    const model *m = f->m;
    int n_blocks = query_blocks(f, b, t0, n), n_kept = -1;
    fwd_batch kept;

    for (int p = p_begin; p < p_end; p++) {
        const int layer = f->path.layers[p];      /* whose weights */
        const int slot = p;                       /* whose KV cache */
        const layer_weights *L = &m->layers[layer];
        token_map tm = {.f = f, .b = b, .L = L, .t0 = t0, .n = n, .slot = slot, .x = x,
                        .scale = path_scale(&f->path, p)};
        if (f->x0) euler_enter(f, b, t0, n, x, p);

        map_tokens(&tm, attn_norm_step);
        if (L->recurrent) {
            /* Gated DeltaNet in place of attention; every row runs (they all feed the state) */
            dn_layer(f->dn, slot, L, f->xn, n, b->seq + t0, b->pos + t0, f->o, f->pool);
            map_tokens(&tm, attn_residual_step);
            goto ffn;
        }
        /* attention */
        const quant_matrix *qkv[] = {&L->wq, &L->wk, &L->wv};
        quant_matmul_many(qkv, 3, f->xn, n, (float *const[]){f->qgate ? f->qraw : f->q, f->k, f->v}, f->pool);
        map_tokens(&tm, qkv_step);
        if (trim && p == f->path.n - 1) {
            n_kept = keep_wanted_rows(f, b, t0, n, x, &kept);
            if (n_kept == 0) break;
            b = &kept;
            t0 = 0;
            n = n_kept;
            n_blocks = query_blocks(f, b, t0, n);
            tm.b = b;
            tm.t0 = t0;
            tm.n = n;
        }
        attn_job job = {f, b, t0, slot, L->sliding, n_blocks};
        pool_run(f->pool, attn_worker, &job);
        if (f->qgate) map_tokens(&tm, attn_gate_step);
        quant_matmul(&L->wo, f->att, n, f->o, f->pool);
        map_tokens(&tm, attn_residual_step);
    ffn:

        if (L->gate_exps) ffn_moe(f, &tm);
        else ffn_dense(f, &tm);
        map_tokens(&tm, ffn_residual_step);
        if (f->x0) euler_leave(f, b, t0, n, x, p);
    }
    if (n_kept > 0) restore_kept_rows(f, n_kept, x);
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

static int layers(forward_ctx *f, const fwd_batch *b, float *x, int p_begin, int p_end, bool trim) {
    if (p_begin < 0 || p_end > f->path.n || p_begin > p_end) { rys_seterr("forward: bad path range"); return -1; }
    if (check_batch(f, b) || dn_check(f->dn, p_begin, p_end, b->n, b->seq, b->pos)) return -1;
    int dim = f->m->hp.dim;
    for (int t0 = 0; t0 < b->n; t0 += UBATCH) {
        int n = b->n - t0 < UBATCH ? b->n - t0 : UBATCH;
        run_layers(f, b, t0, n, x + (size_t)t0 * dim, p_begin, p_end, trim);
    }
    return 0;
}

int forward_layers(forward_ctx *f, const fwd_batch *b, float *x, int p_begin, int p_end) {
    return layers(f, b, x, p_begin, p_end, false);
}

int forward_layers_for_output(forward_ctx *f, const fwd_batch *b, float *x, int p_begin) {
    return layers(f, b, x, p_begin, f->path.n, b->want_logits != NULL);
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
    if (check_batch(f, b) || dn_check(f->dn, 0, f->path.n, b->n, b->seq, b->pos)) return -1;
    const model *m = f->m;
    int dim = m->hp.dim, rows = 0, n_vocab = m->hp.n_vocab;
    for (int t0 = 0; t0 < b->n; t0 += UBATCH) {
        int n = b->n - t0 < UBATCH ? b->n - t0 : UBATCH;
        for (int t = 0; t < n; t++) model_embed(m, b->tokens[t0 + t], f->x + (size_t)t * dim);
        run_layers(f, b, t0, n, f->x, 0, f->path.n, b->want_logits != NULL);
        fwd_batch sub = {n, b->tokens + t0, b->pos + t0, b->seq + t0, b->want_logits ? b->want_logits + t0 : NULL};
        rows += forward_output(f, &sub, f->x, logits + (size_t)rows * n_vocab);
    }
    return rows;
}
