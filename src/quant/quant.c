/* quant: the table of ggml types (names and block sizes for every id a GGUF
 * file may carry, decoders for the ones rys computes with) and the matrix
 * product driver: quantize the activations once, then run the active dot
 * kernel over (weight row, activation row) pairs, output rows split across
 * the pool's threads. */
#include "quant/kquants.h"
#include "quant/legacy.h"
#include "quant/quant_impl.h"
#include "base/pool.h"
#include "base/util.h"

#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    quant_info info;
    quant_dequant_fn dequant;
    enum quant_act act;
} quant_format;

#define KNOWN(NAME, BS, TS) {.info = {NAME, BS, TS, false}}
#define COMPUTED(NAME, BS, TS, DEQ, ACT) {.info = {NAME, BS, TS, true}, .dequant = DEQ, .act = ACT}

/* Sizes are ggml's (ggml.c type_traits); ids 4, 5, 31-33 and 36-38 were
 * retired by ggml and stay unknown. */
static const quant_format formats[QT_COUNT] = {
    [QT_F32] = COMPUTED("F32", 1, 4, quant_dequant_f32, QA_F32),
    [QT_F16] = COMPUTED("F16", 1, 2, quant_dequant_f16, QA_F32),
    [QT_Q4_0] = COMPUTED("Q4_0", 32, 18, quant_dequant_q4_0, QA_Q8A),
    [QT_Q4_1] = COMPUTED("Q4_1", 32, 20, quant_dequant_q4_1, QA_Q8A),
    [QT_Q5_0] = COMPUTED("Q5_0", 32, 22, quant_dequant_q5_0, QA_Q8A),
    [QT_Q5_1] = COMPUTED("Q5_1", 32, 24, quant_dequant_q5_1, QA_Q8A),
    [QT_Q8_0] = COMPUTED("Q8_0", 32, 34, quant_dequant_q8_0, QA_Q8A),
    [QT_Q8_1] = KNOWN("Q8_1", 32, 36),
    [QT_Q2_K] = KNOWN("Q2_K", 256, 84),
    [QT_Q3_K] = KNOWN("Q3_K", 256, 110),
    [QT_Q4_K] = COMPUTED("Q4_K", 256, 144, quant_dequant_q4_K, QA_Q8K),
    [QT_Q5_K] = COMPUTED("Q5_K", 256, 176, quant_dequant_q5_K, QA_Q8K),
    [QT_Q6_K] = COMPUTED("Q6_K", 256, 210, quant_dequant_q6_K, QA_Q8K),
    [QT_Q8_K] = KNOWN("Q8_K", 256, 292),
    [16] = KNOWN("IQ2_XXS", 256, 66),
    [17] = KNOWN("IQ2_XS", 256, 74),
    [18] = KNOWN("IQ3_XXS", 256, 98),
    [19] = KNOWN("IQ1_S", 256, 50),
    [20] = KNOWN("IQ4_NL", 32, 18),
    [21] = KNOWN("IQ3_S", 256, 110),
    [22] = KNOWN("IQ2_S", 256, 82),
    [23] = KNOWN("IQ4_XS", 256, 136),
    [24] = KNOWN("I8", 1, 1),
    [25] = KNOWN("I16", 1, 2),
    [26] = KNOWN("I32", 1, 4),
    [27] = KNOWN("I64", 1, 8),
    [28] = KNOWN("F64", 1, 8),
    [29] = KNOWN("IQ1_M", 256, 56),
    [QT_BF16] = COMPUTED("BF16", 1, 2, quant_dequant_bf16, QA_F32),
    [34] = KNOWN("TQ1_0", 256, 54),
    [35] = KNOWN("TQ2_0", 256, 66),
    [39] = KNOWN("MXFP4", 32, 17),
};

static const quant_format *format_of(uint32_t type) {
    return type < QT_COUNT && formats[type].info.name ? &formats[type] : NULL;
}

const quant_info *quant_get_info(uint32_t type) {
    const quant_format *f = format_of(type);
    return f ? &f->info : NULL;
}

size_t quant_row_size(uint32_t type, int64_t n) {
    const quant_format *f = format_of(type);
    if (!f || n < 0 || n % f->info.block_size) return 0;
    return (size_t)(n / f->info.block_size) * f->info.type_size;
}

/* Multiplies the fp16 at p by a, rounding to fp16. */
static void scale_fp16_at(uint8_t *p, float a) {
    uint16_t h;
    memcpy(&h, p, sizeof h);
    h = quant_f32_to_fp16(quant_fp16_to_f32(h) * a);
    memcpy(p, &h, sizeof h);
}

static const quant_format *computable(uint32_t type, int64_t n, const char *what);

int quant_scale_row(uint32_t type, void *row, int64_t n, float a) {
    const quant_format *f = computable(type, n, "scale");
    if (!f) return -1;
    uint8_t *b = row;
    /* byte offsets of each block's fp16 scale fields: every value of a block
     * is linear in them (d*q, d*q + m, d*sc*q - dmin*m) */
    size_t off[2];
    int n_off;
    switch (type) {
    case QT_F32: {
        float *v = row;
        for (int64_t i = 0; i < n; i++) v[i] *= a;
        return 0;
    }
    case QT_F16: case QT_BF16: {
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, b + 2 * i, sizeof h);
            h = type == QT_F16 ? quant_f32_to_fp16(quant_fp16_to_f32(h) * a) : quant_f32_to_bf16(quant_bf16_to_f32(h) * a);
            memcpy(b + 2 * i, &h, sizeof h);
        }
        return 0;
    }
    case QT_Q4_0: off[0] = offsetof(block_q4_0, d); n_off = 1; break;
    case QT_Q5_0: off[0] = offsetof(block_q5_0, d); n_off = 1; break;
    case QT_Q8_0: off[0] = offsetof(block_q8_0, d); n_off = 1; break;
    case QT_Q4_1: off[0] = offsetof(block_q4_1, d); off[1] = offsetof(block_q4_1, m); n_off = 2; break;
    case QT_Q5_1: off[0] = offsetof(block_q5_1, d); off[1] = offsetof(block_q5_1, m); n_off = 2; break;
    case QT_Q4_K: off[0] = offsetof(block_q4_K, d); off[1] = offsetof(block_q4_K, dmin); n_off = 2; break;
    case QT_Q5_K: off[0] = offsetof(block_q5_K, d); off[1] = offsetof(block_q5_K, dmin); n_off = 2; break;
    case QT_Q6_K: off[0] = offsetof(block_q6_K, d); n_off = 1; break;
    default:
        rys_seterr("scale: type %s has no block scales rys knows", f->info.name);
        return -1;
    }
    for (int64_t k = 0; k < n / f->info.block_size; k++, b += f->info.type_size)
        for (int i = 0; i < n_off; i++) scale_fp16_at(b + off[i], a);
    return 0;
}

/* The format of type if rys computes with it and n fits its blocks. */
static const quant_format *computable(uint32_t type, int64_t n, const char *what) {
    const quant_format *f = format_of(type);
    if (!f || !f->dequant) {
        rys_seterr("%s: type %s is not supported", what, f ? f->info.name : "unknown");
        return NULL;
    }
    if (n <= 0 || n % f->info.block_size) {
        rys_seterr("%s: %lld elements is not a positive multiple of the %s block size %d", what, (long long)n,
                   f->info.name, f->info.block_size);
        return NULL;
    }
    return f;
}

int quant_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n) {
    const quant_format *f = computable(type, n, "dequantize");
    if (!f) return -1;
    f->dequant(src, dst, n);
    return 0;
}

/* Activation row: its quantizer and its size in bytes for n elements. */
static quant_act_fn act_quantizer(const quant_kernels *k, enum quant_act act, int64_t n, size_t *row_bytes) {
    switch (act) {
    case QA_Q8A:
        *row_bytes = (size_t)(n / QK_LEGACY) * sizeof(block_q8a);
        return k->act_q8a ? k->act_q8a : quant_act_q8a;
    case QA_Q8K:
        *row_bytes = (size_t)(n / QK_K) * sizeof(block_q8_K);
        return k->act_q8_K ? k->act_q8_K : quant_act_q8_K;
    default: *row_bytes = (size_t)n * sizeof(float); return NULL;
    }
}

/* Per-thread scratch: grows, never shrinks, freed when the thread exits.
 * Per thread, so concurrent callers never share it; one buffer per use
 * (enum quant_scratch), so a kernel's own never overwrites the activations
 * its caller quantized. */
typedef struct { void *data[QS_COUNT]; size_t size[QS_COUNT]; } scratch;
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *p) {
    scratch *s = p;
    for (int i = 0; i < QS_COUNT; i++) free(s->data[i]);
    free(s);
}

static void scratch_key_init(void) { pthread_key_create(&scratch_key, scratch_free); }

void *quant_scratch(enum quant_scratch use, size_t size) {
    pthread_once(&scratch_once, scratch_key_init);
    scratch *s = pthread_getspecific(scratch_key);
    if (!s) {
        s = xcalloc(1, sizeof *s);
        pthread_setspecific(scratch_key, s);
    }
    if (s->size[use] < size) {
        free(s->data[use]);
        s->data[use] = xmalloc(size);
        s->size[use] = size;
    }
    return s->data[use];
}

typedef struct {
    quant_dot_fn dot;
    quant_dot_tile_fn dot_tile;
    int tile_rows, tile_cols;
    const uint8_t *w;
    size_t w_row;
    int64_t n_in, n_out, n_batch, batch_tile;
    const uint8_t *xq;
    size_t xq_row;
    float *y;
} matmul_job;

#define W_BLOCK_BYTES (256 * 1024) /* weight rows a thread keeps in L2 */

/* Each thread owns a contiguous range of output rows. For a tile of
 * activation rows small enough to stay in L2, every weight row is loaded once
 * and used against each activation row of the tile while it is in L1. With
 * a tile kernel the loops turn around: a block of weight rows stays in L2
 * while each group of tile_cols activation rows, held in L1, meets all of
 * them, so the activations are not re-read from L2 for every output. */
static void matmul_worker(void *ctx, int ith, int nth) {
    const matmul_job *j = ctx;
    long lo, hi;
    pool_split((long)j->n_out, ith, nth, &lo, &hi);
    long o_block = (long)(W_BLOCK_BYTES / j->w_row);
    if (o_block < 1) o_block = 1;
    for (int64_t b0 = 0; b0 < j->n_batch; b0 += j->batch_tile) {
        int64_t b1 = b0 + j->batch_tile < j->n_batch ? b0 + j->batch_tile : j->n_batch;
        if (!j->dot_tile) {
            for (long o = lo; o < hi; o++) {
                const uint8_t *wr = j->w + (size_t)o * j->w_row;
                for (int64_t b = b0; b < b1; b++)
                    j->y[b * j->n_out + o] = j->dot(j->n_in, wr, j->xq + (size_t)b * j->xq_row);
            }
            continue;
        }
        for (long o0 = lo; o0 < hi; o0 += o_block) {
            long o1 = o0 + o_block < hi ? o0 + o_block : hi;
            for (int64_t b = b0; b < b1; b += j->tile_cols) {
                int nx = b1 - b < j->tile_cols ? (int)(b1 - b) : j->tile_cols;
                for (long o = o0; o < o1; o += j->tile_rows) {
                    int nw = o1 - o < j->tile_rows ? (int)(o1 - o) : j->tile_rows;
                    j->dot_tile(j->n_in, j->w + (size_t)o * j->w_row, j->w_row, nw, j->xq + (size_t)b * j->xq_row,
                                j->xq_row, nx, j->y + b * j->n_out + o, (size_t)j->n_out);
                }
            }
        }
    }
}

#define ACT_TILE_BYTES (256 * 1024)

/* A packed product job: up to QUANT_MANY_MAX matrices multiplied by the same
 * activation rows (a layer's Q, K and V; gate and up). The rows are quantized
 * once per activation format, the per-block sums made once per distinct
 * (format, scale block, offset), and all matrices' output groups are split
 * across the threads in one pool job. Which part of the split computes an
 * output changes nothing in its bits. */
enum { ACT_FORMATS = 2 }; /* Q8A, Q8_K */

typedef struct {
    quant_act_fn quantize;
    bool k_act;          /* Q8_K: per-256 scale, exact sums of 16 values */
    uint8_t *xq;         /* [n_batch][row_bytes] */
    size_t row_bytes;
} act_rows;

typedef struct {
    int act;             /* which act_rows */
    int blk_len, offset; /* the weight format's scale block and value offset */
    int64_t n_blk;
    float *dsc;          /* [n_batch][3][n_blk]: d, s, correction (int32 bits) */
    quant_packed_act a;  /* the rows and sums as the kernels read them */
} act_sums;

typedef struct {
    quant_block_shape shape;
    const quant_packed *w;       /* gemm on the packed copy, or */
    quant_gemv_fn gemv;          /* the one-row kernel on the interleaved blocks */
    const quant_interleaved *il;
    quant_packed_act a;          /* its act_sums' */
    int sums;                    /* which of the job's act_sums */
    int64_t g_first;             /* its first group among the job's */
    float *y;
} packed_part;

typedef struct {
    quant_gemm_fn gemm;
    const float *x;
    int64_t n_in, n_batch, n_groups;
    int n_acts, n_sums, n_parts;
    act_rows act[ACT_FORMATS];
    act_sums sums[QUANT_MANY_MAX];
    packed_part part[QUANT_MANY_MAX];
} packed_job;

/* Inlined with a constant n, so the compiler vectorizes the sum (a byte at
 * a time it was most of the time spent quantizing activations). */
static inline __attribute__((always_inline)) int sum_i8(const int8_t *q, int n) {
    int sum = 0;
    for (int l = 0; l < n; l++) sum += q[l];
    return sum;
}

/* Per weight scale block of one quantized row: the activation scale, the
 * scaled value sum and the integer correction offset * (value sum). */
static void block_sums(const act_rows *ar, const act_sums *as, const uint8_t *row, float *d) {
    float *s = d + as->n_blk;
    int32_t *corr = (int32_t *)(s + as->n_blk);
    int64_t blk = 0;
    for (const uint8_t *sb = row; blk < as->n_blk; sb += as->a.sb_bytes)
        for (int in_sb = 0; in_sb < as->a.blk_per_sb && blk < as->n_blk; in_sb++, blk++) {
            int sum = 0;
            if (ar->k_act) {
                const int16_t *bs = ((const block_q8_K *)sb)->bsums + in_sb * as->blk_len / 16;
                for (int l = 0; l < as->blk_len / 16; l++) sum += bs[l];
            } else {
                const int8_t *qs = (const int8_t *)(sb + as->a.sb_header) + in_sb * as->blk_len;
                sum = as->blk_len == 32 ? sum_i8(qs, 32) : sum_i8(qs, 16);
            }
            float ad = ar->k_act ? ((const block_q8_K *)sb)->d : ((const block_q8a *)sb)->d;
            d[blk] = ad;
            s[blk] = ar->k_act ? ad * (float)sum : ((const block_q8a *)sb)->s;
            corr[blk] = as->offset * sum;
        }
}

/* Activation rows, split across threads: quantized as for the dot kernels,
 * once per format, then their block sums for every part's layout. */
static void packed_act_worker(void *ctx, int ith, int nth) {
    const packed_job *j = ctx;
    long lo, hi;
    pool_split((long)j->n_batch, ith, nth, &lo, &hi);
    for (long b = lo; b < hi; b++) {
        for (int a = 0; a < j->n_acts; a++)
            j->act[a].quantize(j->x + b * j->n_in, j->act[a].xq + (size_t)b * j->act[a].row_bytes, j->n_in);
        for (int k = 0; k < j->n_sums; k++) {
            const act_sums *as = &j->sums[k];
            const act_rows *ar = &j->act[as->act];
            block_sums(ar, as, ar->xq + (size_t)b * ar->row_bytes, as->dsc + (size_t)b * 3 * (size_t)as->n_blk);
        }
    }
}

/* Each thread takes a run of the job's groups, across matrix boundaries. */
static void packed_worker(void *ctx, int ith, int nth) {
    const packed_job *j = ctx;
    long lo, hi;
    pool_split((long)j->n_groups, ith, nth, &lo, &hi);
    for (int m = 0; m < j->n_parts; m++) {
        const packed_part *p = &j->part[m];
        int64_t g0 = lo > p->g_first ? lo - p->g_first : 0, g1 = hi - p->g_first;
        if (g1 > p->shape.n_groups) g1 = p->shape.n_groups;
        if (g0 >= g1) continue;
        if (p->gemv) p->gemv(p->il, g0, g1, &p->a, p->y);
        else j->gemm(p->w, g0, g1, &p->a, j->n_batch, p->y);
    }
}

/* Scratch bytes for a job's quantized rows and for one act_sums' sums,
 * each region padded to a cache line. */
static size_t rows_bytes(const act_rows *ar, int64_t n_batch) {
    return (ar->row_bytes * (size_t)n_batch + 63) & ~(size_t)63;
}

static size_t sums_bytes(const act_sums *as, int64_t n_batch) {
    return (sizeof(float) * 3 * (size_t)as->n_blk * (size_t)n_batch + 63) & ~(size_t)63;
}

/* The shapes of matrices m[0..n) if they can all go through the family's
 * packed kernels; false otherwise. */
static bool all_packed(const quant_kernels *k, const quant_matrix *const *m, int n, quant_block_shape *shape) {
    if (!k->gemm) return false;
    for (int i = 0; i < n; i++)
        if (!quant_block_shape_of(m[i], k->gemm_max_bits, &shape[i])) return false;
    return true;
}

/* The index of the job's activation rows in the Q8_K (k_act) or Q8A
 * format, added on first use. A job has at most ACT_FORMATS of them, so a
 * scan is the whole lookup. */
static int act_rows_index(packed_job *j, const quant_kernels *k, bool k_act) {
    for (int a = 0; a < j->n_acts; a++)
        if (j->act[a].k_act == k_act) return a;
    act_rows *ar = &j->act[j->n_acts];
    ar->k_act = k_act;
    ar->quantize = act_quantizer(k, k_act ? QA_Q8K : QA_Q8A, j->n_in, &ar->row_bytes);
    return j->n_acts++;
}

/* The index of the job's block sums of activation rows a in the layout
 * shape's weights read (scale block, value offset), added on first use.
 * A job has at most one per matrix, QUANT_MANY_MAX, so a scan is the whole
 * lookup. */
static int act_sums_index(packed_job *j, int a, const quant_block_shape *shape) {
    for (int s = 0; s < j->n_sums; s++)
        if (j->sums[s].act == a && j->sums[s].blk_len == shape->blk_len && j->sums[s].offset == shape->offset)
            return s;
    bool k_act = j->act[a].k_act;
    j->sums[j->n_sums] = (act_sums){
        .act = a,
        .blk_len = shape->blk_len,
        .offset = shape->offset,
        .n_blk = shape->n_blk,
        .a = {.row_bytes = j->act[a].row_bytes,
              .sb_bytes = k_act ? sizeof(block_q8_K) : sizeof(block_q8a),
              .sb_header = k_act ? offsetof(block_q8_K, qs) : offsetof(block_q8a, qs),
              .blk_per_sb = (k_act ? QK_K : QK_LEGACY) / shape->blk_len},
    };
    return j->n_sums++;
}

/* Block-format products of one activation batch through the packed
 * kernels: the decode kernel on the interleaved blocks for one row where the
 * family has one, else gemm on the packed copy (each made on first use).
 * Matrices that read the same activation format share its quantized rows,
 * and those that also share a scale layout share its block sums. */
static void matmul_packed(const quant_kernels *k, const quant_matrix *const *m, const quant_block_shape *shape,
                          int n, const float *x, int64_t n_batch, float *const *y, struct pool *pool) {
    packed_job j = {.gemm = k->gemm, .x = x, .n_in = shape[0].n_in, .n_batch = n_batch};
    for (int i = 0; i < n; i++) {
        packed_part *p = &j.part[j.n_parts++];
        p->shape = shape[i];
        p->y = y[i];
        p->g_first = j.n_groups;
        j.n_groups += shape[i].n_groups;
        if (n_batch == 1 && k->gemv[m[i]->type] && (p->il = quant_interleaved_get(m[i], pool)))
            p->gemv = k->gemv[m[i]->type];
        else
            p->w = quant_packed_get(m[i], k->gemm_max_bits, pool);
        int a = act_rows_index(&j, k, format_of(m[i]->type)->act == QA_Q8K);
        p->sums = act_sums_index(&j, a, &shape[i]);
    }
    /* one scratch region: every format's quantized rows, then every layout's sums */
    size_t bytes = 0;
    for (int a = 0; a < j.n_acts; a++) bytes += rows_bytes(&j.act[a], n_batch);
    for (int s = 0; s < j.n_sums; s++) bytes += sums_bytes(&j.sums[s], n_batch);
    uint8_t *at = quant_scratch(QS_ACT, bytes);
    for (int a = 0; a < j.n_acts; a++) {
        j.act[a].xq = at;
        at += rows_bytes(&j.act[a], n_batch);
    }
    for (int s = 0; s < j.n_sums; s++) {
        act_sums *as = &j.sums[s];
        as->dsc = (float *)at;
        at += sums_bytes(as, n_batch);
        as->a.x = j.act[as->act].xq;
        as->a.dsc = as->dsc;
    }
    for (int i = 0; i < n; i++) j.part[i].a = j.sums[j.part[i].sums].a;
    pool_run(pool, packed_act_worker, &j);
    pool_run(pool, packed_worker, &j);
}

/* Float weights (and block formats the family has no packed kernel for):
 * the dot or tile kernels over (weight row, activation row) pairs. */
static void matmul_dots(const quant_kernels *k, const quant_matrix *w, const quant_format *f, const float *x,
                        int64_t n_batch, float *y, struct pool *pool) {
    matmul_job j = {
        .dot = k->dot[w->type],
        .dot_tile = n_batch > 1 ? k->dot_tile[w->type] : NULL,
        .tile_rows = k->tile_rows,
        .tile_cols = k->tile_cols,
        .w = w->data,
        .w_row = quant_row_size(w->type, w->n_in),
        .n_in = w->n_in,
        .n_out = w->n_out,
        .n_batch = n_batch,
        .y = y,
    };
    quant_act_fn quantize = act_quantizer(k, f->act, w->n_in, &j.xq_row);
    if (quantize) {
        uint8_t *xq = quant_scratch(QS_ACT, j.xq_row * (size_t)n_batch);
        for (int64_t b = 0; b < n_batch; b++) quantize(x + b * w->n_in, xq + (size_t)b * j.xq_row, w->n_in);
        j.xq = xq;
    } else {
        j.xq = (const uint8_t *)x;
    }
    j.batch_tile = (int64_t)(ACT_TILE_BYTES / j.xq_row);
    if (j.batch_tile < 1) j.batch_tile = 1;
    pool_run(pool, matmul_worker, &j);
}

int quant_matmul_many(const quant_matrix *const *w, int n, const float *x, int64_t n_batch, float *const *y,
                      struct pool *pool) {
    if (n < 1 || n > QUANT_MANY_MAX) {
        rys_seterr("matmul: %d matrices in one product (1 to %d)", n, QUANT_MANY_MAX);
        return -1;
    }
    const quant_format *f[QUANT_MANY_MAX];
    for (int i = 0; i < n; i++) {
        if (!(f[i] = computable(w[i]->type, w[i]->n_in, "matmul"))) return -1;
        if (w[i]->n_out <= 0 || n_batch <= 0) {
            rys_seterr("matmul: empty product (%lld outputs, batch %lld)", (long long)w[i]->n_out,
                       (long long)n_batch);
            return -1;
        }
        if (w[i]->n_in != w[0]->n_in) {
            rys_seterr("matmul: matrices sharing an input have %lld and %lld inputs", (long long)w[0]->n_in,
                       (long long)w[i]->n_in);
            return -1;
        }
    }
    const quant_kernels *k = quant_active_kernels();
    quant_block_shape shape[QUANT_MANY_MAX];
    if (all_packed(k, w, n, shape)) {
        matmul_packed(k, w, shape, n, x, n_batch, y, pool);
        return 0;
    }
    for (int i = 0; i < n; i++) {
        if (all_packed(k, &w[i], 1, shape))
            matmul_packed(k, &w[i], shape, 1, x, n_batch, &y[i], pool);
        else
            matmul_dots(k, w[i], f[i], x, n_batch, y[i], pool);
    }
    return 0;
}

int quant_matmul(const quant_matrix *w, const float *x, int64_t n_batch, float *y, struct pool *pool) {
    return quant_matmul_many(&w, 1, x, n_batch, &y, pool);
}

void quant_attn_scores_f16(float *s, size_t s_stride, const float *const *q, int n_q, const uint16_t *k, size_t stride,
                           int64_t n_rows, int64_t n, float scale) {
    quant_active_kernels()->attn_scores_f16(s, s_stride, q, n_q, k, stride, n_rows, n, scale);
}

void quant_attn_accum_f16(float *y, size_t y_stride, const float *p, size_t p_stride, int n_heads, const uint16_t *v,
                          size_t stride, int64_t n_rows, int64_t n) {
    quant_active_kernels()->attn_accum_f16(y, y_stride, p, p_stride, n_heads, v, stride, n_rows, n);
}

void quant_fp16_round_n(float *x, int64_t n) { quant_active_kernels()->round_f16(x, n); }

void quant_f32_to_fp16_n(const float *x, uint16_t *h, int64_t n) { quant_active_kernels()->to_f16(x, h, n); }

static bool exp_kernel_ok;
static void exp_kernel_check(void) {
    const quant_kernels *k = quant_active_kernels();
    exp_kernel_ok = k->exp_f32 && k->exp_f32_check();
}

void quant_expf_n(float *x, int64_t n) {
    const quant_kernels *k = quant_active_kernels();
    if (k->exp_f32) {
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        pthread_once(&once, exp_kernel_check);
        if (exp_kernel_ok) {
            k->exp_f32(x, n);
            return;
        }
    }
    for (int64_t i = 0; i < n; i++) x[i] = expf(x[i]);
}

double quant_peak_macs(void) {
    const quant_kernels *k = quant_active_kernels();
    if (!k->gemm_peak) return 0;
    double best = 0;
    for (int r = 0; r < 3; r++) {
        double v = k->gemm_peak(1 << 18);
        if (v > best) best = v;
    }
    return best;
}
