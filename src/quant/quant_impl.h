/* quant_impl: what the format files, the ISA kernels (src/kernels/dot_*.c),
 * dispatch and the matrix driver share inside the quant module. Nothing
 * outside src/quant and src/kernels includes it (but tests/test_quant.c).
 *
 * A matrix product is one activation quantizer per call plus one dot kernel
 * per (weight row, activation row); the format files own the portable
 * versions, which are the oracle every ISA kernel is tested against. */
#ifndef RYS_QUANT_IMPL_H
#define RYS_QUANT_IMPL_H

#include "quant/quant.h"

typedef void (*quant_dequant_fn)(const void *src, float *dst, int64_t n);
/* Quantize n activations (n a multiple of the activation block) into dst. */
typedef void (*quant_act_fn)(const float *x, void *dst, int64_t n);
/* Dot product of one weight row and one activation row of n elements. */
typedef float (*quant_dot_fn)(int64_t n, const void *w, const void *x);
/* Float weights in register tiles: y[c*y_stride + r] = dot(weight row
 * w + r*w_row, activation row x + c*x_stride) for r < nw, c < nx (at most
 * the family's tile_rows and tile_cols), each with the bits of the family's
 * single dot: a weight vector loaded serves nx rows and an activation
 * vector nw, which is what makes batched products cheaper per row than
 * decode. */
typedef void (*quant_dot_tile_fn)(int64_t n, const void *w, size_t w_row, int nw, const void *x, size_t x_stride,
                                  int nx, float *y, size_t y_stride);

/* Packed weights, for the matrix-matrix kernels: a block format unpacked
 * once per matrix (and cached, see quant_packed_get) into unsigned 8-bit
 * values interleaved across 16 output rows, with per-block float scales and
 * minimums: weight = scale * (value - offset) + min. One kernel then serves
 * every block format, and since a row's integer sums are exact and its float
 * steps fixed, a row's result never depends on the other rows of the call. */
#define QUANT_PACK_ROWS 16
typedef struct {
    int64_t n_in, n_out, n_groups; /* groups of QUANT_PACK_ROWS rows, the last zero-padded */
    int blk_len;                   /* elements per scale block: 32 or 16 */
    int64_t n_blk;                 /* scale blocks per row */
    int offset;                    /* the format's constant value offset (0 if it has minimums) */
    int value_bits;                /* values lie in [0, 2^value_bits) */
    bool has_min;
    /* q: [group][block][blk_len/4 quads][16 rows][4 values], 64-byte aligned;
     * scale, min: [group][block][16 rows]. */
    uint8_t *q;
    float *scale, *min;
    void *mem; /* the one allocation holding them */
} quant_packed;

/* Interleaved blocks, for the one-row (decode) kernels: a block format's
 * own blocks with the 16 rows of a group interleaved a 32-bit word at a
 * time, so one aligned 64-byte load holds the same word of 16 rows and a
 * vpdpbusd against 4 activation bytes broadcast advances 16 dot products,
 * as in the packed kernel but at the file's size (Q4_K 0.56 bytes a
 * weight against the packed 1.25). Words per block, by format (fields
 * moved to word boundaries, fp16 fields in a word's low half):
 *   Q4_0: d | qs[4]          Q4_1: d,m | qs[4]
 *   Q5_0: d | qh' | qs[4]    Q5_1: d,m | qh' | qs[4]
 *   Q4_K: the block as is (36 words)
 *   Q6_K: scales[4] | d | per half n and t < 8: ql[16n+t], ql[16n+8+t],
 *         qh[8n+t] (53 words, in the order the kernel reads them)
 * where qh' is qh rearranged for word t of qs: bit 8k+t is the fifth bit of
 * element 4t+k (byte k's low nibble) and bit 8k+4+t that of element
 * 16+4t+k (its high nibble), so one shift and mask give a word's fifth
 * bits. A group's words are read front to back, one stream the hardware
 * prefetchers follow. */
typedef struct {
    int64_t n_in, n_out, n_groups; /* groups of QUANT_PACK_ROWS rows, the last zero-padded */
    int64_t n_blocks;              /* the format's blocks per row */
    int block_words;
    const uint32_t *w; /* [group][block][word][16 rows], 64-byte aligned */
    void *mem;
} quant_interleaved;

/* The shape of a block format's packed form (the fields of quant_packed
 * but q, scale, min), known without packing. */
typedef struct {
    int64_t n_in, n_out, n_groups;
    int blk_len;
    int64_t n_blk;
    int offset;
    bool has_min;
} quant_block_shape;

/* Activation rows for a packed product: the 8-bit values of quant_matmul's
 * quantized rows, where they lie, plus per scale block and row the float
 * scale d, the scaled value sum s (for formats with minimums) and the
 * integer correction offset * (sum of values), laid out [row][3][n_blk]. */
typedef struct {
    const uint8_t *x;   /* quantized rows */
    size_t row_bytes;   /* between rows */
    size_t sb_bytes;    /* bytes per activation block (Q8A or Q8_K) */
    size_t sb_header;   /* bytes before its values */
    int blk_per_sb;     /* weight scale blocks per activation block */
    const float *dsc;   /* d, s, correction (int32 bits) */
} quant_packed_act;

typedef void (*quant_unpack_fn)(const void *src, int64_t n, uint8_t *q, float *scale, float *min);
/* y[b*n_out + o] for the groups [g0, g1) and every row b < n_batch. */
typedef void (*quant_gemm_fn)(const quant_packed *w, int64_t g0, int64_t g1, const quant_packed_act *a,
                              int64_t n_batch, float *y);
/* y[o] for the rows of groups [g0, g1) of one activation row, read from
 * the interleaved blocks (not the packed copy) with the gemm kernel's bits. */
typedef void (*quant_gemv_fn)(const quant_interleaved *w, int64_t g0, int64_t g1, const quant_packed_act *a,
                              float *y);

/* The packed shape of w; false if the type has no unpacker or its values
 * need more than max_bits bits. */
bool quant_block_shape_of(const quant_matrix *w, int max_bits, quant_block_shape *s);
/* The packed form of w, made on first use (the pool helps) and cached by
 * data pointer, checked against samples of the data so that a freed and
 * reused address is noticed; NULL where quant_block_shape_of is false.
 * Thread-safe. */
const quant_packed *quant_packed_get(const quant_matrix *w, int max_bits, struct pool *pool);
/* The interleaved form of w, made and cached the same way (beside the
 * packed one, if any); NULL if the format has no interleaved layout. */
const quant_interleaved *quant_interleaved_get(const quant_matrix *w, struct pool *pool);

/* A per-thread buffer of at least size bytes, kept for the thread's next
 * call (see quant.c): QS_ACT for the activations quant_matmul quantizes,
 * QS_KERNEL for a kernel's own copy of them. */
enum quant_scratch { QS_ACT = 0, QS_KERNEL, QS_COUNT };
void *quant_scratch(enum quant_scratch use, size_t size);

/* The activation format a weight type is multiplied with. */
enum quant_act { QA_NONE = 0, QA_F32, QA_Q8A, QA_Q8K };

typedef void (*quant_attn_scores_fn)(float *s, size_t s_stride, const float *const *q, int n_q, const uint16_t *k,
                                    size_t stride, int64_t n_rows, int64_t n, float scale);
typedef void (*quant_attn_accum_fn)(float *y, size_t y_stride, const float *p, size_t p_stride, int n_heads,
                                    const uint16_t *v, size_t stride, int64_t n_rows, int64_t n);

/* One kernel family: a dot kernel per weight type (NULL: not computable),
 * and optionally a tile one (NULL: the driver loops over dot). */
typedef struct {
    enum quant_path path;
    quant_dot_fn dot[QT_COUNT];
    quant_dot_tile_fn dot_tile[QT_COUNT];
    int tile_rows, tile_cols;
    /* If set, block formats with an unpacker and values of at most
     * gemm_max_bits bits go through packed weights and this kernel for every
     * batch size but where gemv takes one row (results stay bit-identical
     * whatever the batch). */
    quant_gemm_fn gemm;
    int gemm_max_bits;
    /* Optional, per weight type: batches of one row take it instead of gemm,
     * on the interleaved blocks, with gemm's bits (decode is bound by
     * memory, and the format's blocks are smaller than the packed copy). */
    quant_gemv_fn gemv[QT_COUNT];
    /* Measured multiply-adds per second of gemm's instruction, one thread. */
    double (*gemm_peak)(int64_t iters);
    /* Faster activation quantizers giving the portable ones' bits (NULL:
     * the portable ones). */
    quant_act_fn act_q8a, act_q8_K;
    /* quant_attn_scores_f16, quant_attn_accum_f16, quant_fp16_round_n and
     * quant_f32_to_fp16_n (quant.h), same arguments. */
    quant_attn_scores_fn attn_scores_f16;
    quant_attn_accum_fn attn_accum_f16;
    void (*round_f16)(float *x, int64_t n);
    void (*to_f16)(const float *x, uint16_t *h, int64_t n);
    /* quant_expf_n, if the family has a kernel; it must pass its check. */
    void (*exp_f32)(float *x, int64_t n);
    bool (*exp_f32_check)(void);
} quant_kernels;

/* The family in use (chosen by quant_init, or lazily on first use). */
const quant_kernels *quant_active_kernels(void);
/* The family of a path; NULL if rys has no kernels for it. */
const quant_kernels *quant_path_kernels(enum quant_path p);

/* float.c: F32, F16, BF16 weights; activations stay f32. */
void quant_dequant_f32(const void *src, float *dst, int64_t n);
void quant_dequant_f16(const void *src, float *dst, int64_t n);
void quant_dequant_bf16(const void *src, float *dst, int64_t n);
float quant_dot_f32_portable(int64_t n, const void *w, const void *x);
float quant_dot_f16_portable(int64_t n, const void *w, const void *x);
float quant_dot_bf16_portable(int64_t n, const void *w, const void *x);
void quant_attn_scores_f16_portable(float *s, size_t s_stride, const float *const *q, int n_q, const uint16_t *k,
                                   size_t stride, int64_t n_rows, int64_t n, float scale);
void quant_attn_accum_f16_portable(float *y, size_t y_stride, const float *p, size_t p_stride, int n_heads,
                                   const uint16_t *v, size_t stride, int64_t n_rows, int64_t n);
void quant_round_f16_portable(float *x, int64_t n);
void quant_to_f16_portable(const float *x, uint16_t *h, int64_t n);

/* legacy.c: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 weights with Q8A activations. */
void quant_dequant_q4_0(const void *src, float *dst, int64_t n);
void quant_dequant_q4_1(const void *src, float *dst, int64_t n);
void quant_dequant_q5_0(const void *src, float *dst, int64_t n);
void quant_dequant_q5_1(const void *src, float *dst, int64_t n);
void quant_dequant_q8_0(const void *src, float *dst, int64_t n);
void quant_act_q8a(const float *x, void *dst, int64_t n);
float quant_dot_q4_0_portable(int64_t n, const void *w, const void *x);
float quant_dot_q4_1_portable(int64_t n, const void *w, const void *x);
float quant_dot_q5_0_portable(int64_t n, const void *w, const void *x);
float quant_dot_q5_1_portable(int64_t n, const void *w, const void *x);
float quant_dot_q8_0_portable(int64_t n, const void *w, const void *x);

void quant_unpack_q4_0(const void *src, int64_t n, uint8_t *q, float *scale, float *min);
void quant_unpack_q4_1(const void *src, int64_t n, uint8_t *q, float *scale, float *min);
void quant_unpack_q5_0(const void *src, int64_t n, uint8_t *q, float *scale, float *min);
void quant_unpack_q5_1(const void *src, int64_t n, uint8_t *q, float *scale, float *min);
void quant_unpack_q8_0(const void *src, int64_t n, uint8_t *q, float *scale, float *min);

/* kquants.c: Q4_K, Q5_K, Q6_K weights with Q8_K activations. */
void quant_dequant_q4_K(const void *src, float *dst, int64_t n);
void quant_dequant_q5_K(const void *src, float *dst, int64_t n);
void quant_dequant_q6_K(const void *src, float *dst, int64_t n);
void quant_dequant_q8_K(const void *src, float *dst, int64_t n);
void quant_act_q8_K(const float *x, void *dst, int64_t n);
float quant_q8_K_iscale(const float *x);
float quant_dot_q4_K_portable(int64_t n, const void *w, const void *x);
float quant_dot_q5_K_portable(int64_t n, const void *w, const void *x);
float quant_dot_q6_K_portable(int64_t n, const void *w, const void *x);

void quant_unpack_q4_K(const void *src, int64_t n, uint8_t *q, float *scale, float *min);
void quant_unpack_q5_K(const void *src, int64_t n, uint8_t *q, float *scale, float *min);
void quant_unpack_q6_K(const void *src, int64_t n, uint8_t *q, float *scale, float *min);

/* src/kernels/gemm_avx512.c: packed products with AVX-512 VNNI. */
void quant_gemm_avx512(const quant_packed *w, int64_t g0, int64_t g1, const quant_packed_act *a, int64_t n_batch,
                       float *y);
double quant_gemm_peak_avx512(int64_t iters);
/* src/kernels/gemv_avx512.c: one activation row against interleaved
 * blocks, with quant_gemm_avx512's bits. */
void quant_gemv_q4_0_avx512(const quant_interleaved *w, int64_t g0, int64_t g1, const quant_packed_act *a, float *y);
void quant_gemv_q4_1_avx512(const quant_interleaved *w, int64_t g0, int64_t g1, const quant_packed_act *a, float *y);
void quant_gemv_q5_0_avx512(const quant_interleaved *w, int64_t g0, int64_t g1, const quant_packed_act *a, float *y);
void quant_gemv_q5_1_avx512(const quant_interleaved *w, int64_t g0, int64_t g1, const quant_packed_act *a, float *y);
void quant_gemv_q4_K_avx512(const quant_interleaved *w, int64_t g0, int64_t g1, const quant_packed_act *a, float *y);
void quant_gemv_q6_K_avx512(const quant_interleaved *w, int64_t g0, int64_t g1, const quant_packed_act *a, float *y);
void quant_act_q8a_avx512(const float *x, void *dst, int64_t n);
/* src/kernels/float_avx512.c: float-weight tiles of 4 weight rows by up to 6
 * activation rows, with the AVX2 dot's bits. */
void quant_dot_tile_f32_avx512(int64_t n, const void *w, size_t w_row, int nw, const void *x, size_t x_stride, int nx,
                               float *y, size_t y_stride);
void quant_dot_tile_f16_avx512(int64_t n, const void *w, size_t w_row, int nw, const void *x, size_t x_stride, int nx,
                               float *y, size_t y_stride);
void quant_dot_tile_bf16_avx512(int64_t n, const void *w, size_t w_row, int nw, const void *x, size_t x_stride,
                                int nx, float *y, size_t y_stride);
void quant_act_q8_K_avx512(const float *x, void *dst, int64_t n);
/* src/kernels/exp_avx512.c: expf over an array with the C library's bits,
 * and the check that it has them here (dispatch uses it only then). */
void quant_exp_avx512(float *x, int64_t n);
bool quant_exp_avx512_check(void);
/* src/kernels/attn_avx512.c: quant_attn_scores_f16 over 16 keys at a time
 * and quant_attn_accum_f16 with all heads' sums in zmm registers, both with
 * the AVX2 kernels' bits. */
void quant_attn_scores_f16_avx512(float *s, size_t s_stride, const float *const *q, int n_q, const uint16_t *k,
                                  size_t stride, int64_t n_rows, int64_t n, float scale);
void quant_attn_accum_f16_avx512(float *y, size_t y_stride, const float *p, size_t p_stride, int n_heads,
                                 const uint16_t *v, size_t stride, int64_t n_rows, int64_t n);

/* src/kernels/gemm_avx2.c: the same products with AVX2, with the VNNI
 * kernel's bits. */
void quant_gemm_avx2(const quant_packed *w, int64_t g0, int64_t g1, const quant_packed_act *a, int64_t n_batch,
                     float *y);
double quant_gemm_peak_avx2(int64_t iters);
/* src/kernels/gemv_avx2.c: one activation row against interleaved blocks,
 * with quant_gemm_avx2's bits. */
void quant_gemv_q4_0_avx2(const quant_interleaved *w, int64_t g0, int64_t g1, const quant_packed_act *a, float *y);
void quant_gemv_q4_1_avx2(const quant_interleaved *w, int64_t g0, int64_t g1, const quant_packed_act *a, float *y);
void quant_gemv_q5_0_avx2(const quant_interleaved *w, int64_t g0, int64_t g1, const quant_packed_act *a, float *y);
void quant_gemv_q5_1_avx2(const quant_interleaved *w, int64_t g0, int64_t g1, const quant_packed_act *a, float *y);
void quant_gemv_q4_K_avx2(const quant_interleaved *w, int64_t g0, int64_t g1, const quant_packed_act *a, float *y);
void quant_gemv_q6_K_avx2(const quant_interleaved *w, int64_t g0, int64_t g1, const quant_packed_act *a, float *y);

/* src/kernels/gemm_amx.c: the same products on AMX tiles for batches of 16
 * rows and more (the VNNI kernel for the rest), with its bits. */
void quant_gemm_amx(const quant_packed *w, int64_t g0, int64_t g1, const quant_packed_act *a, int64_t n_batch,
                    float *y);
double quant_gemm_peak_amx(int64_t iters);

/* src/kernels/dot_avx2.c: the float formats' dot products and the fp16
 * attention kernels with AVX2 + FMA + F16C. */
float quant_dot_f32_avx2(int64_t n, const void *w, const void *x);
float quant_dot_f16_avx2(int64_t n, const void *w, const void *x);
float quant_dot_bf16_avx2(int64_t n, const void *w, const void *x);
void quant_attn_scores_f16_avx2(float *s, size_t s_stride, const float *const *q, int n_q, const uint16_t *k,
                               size_t stride, int64_t n_rows, int64_t n, float scale);
void quant_attn_accum_f16_avx2(float *y, size_t y_stride, const float *p, size_t p_stride, int n_heads,
                               const uint16_t *v, size_t stride, int64_t n_rows, int64_t n);
void quant_round_f16_avx2(float *x, int64_t n);
void quant_to_f16_avx2(const float *x, uint16_t *h, int64_t n);
void quant_dot_tile_f32_avx2(int64_t n, const void *w, size_t w_row, int nw, const void *x, size_t x_stride, int nx,
                             float *y, size_t y_stride);
void quant_dot_tile_f16_avx2(int64_t n, const void *w, size_t w_row, int nw, const void *x, size_t x_stride, int nx,
                             float *y, size_t y_stride);
void quant_dot_tile_bf16_avx2(int64_t n, const void *w, size_t w_row, int nw, const void *x, size_t x_stride, int nx,
                              float *y, size_t y_stride);

#endif
