/* gemm_amx: the packed matrix product (quant_impl.h) on AMX tiles, for
 * batches of 16 activation rows or more (the Makefile adds the flags because
 * of the _amx suffix; dispatch only calls it where the CPU has AMX and Linux
 * granted the tile state).
 *
 * Why it gives the VNNI kernel's bits: both compute, per scale block, the
 * exact integer sum of 8-bit products (int32 cannot round), then the same
 * float steps in the same order (cvt, times weight scale * activation scale,
 * fused add; the minimum term after it). The tile instruction only produces
 * those integer sums faster; the float epilogue per block is AVX-512 code
 * identical in operations to gemm_avx512.c's. So a row's logits do not depend
 * on whether its batch went through tiles, and rows left over (a batch not a
 * multiple of 16, decode) go to the VNNI kernel.
 *
 * Layout: the packed weights' [quad][16 rows][4 values] blocks are exactly
 * the B operand of TDPBSUD (K/4 rows of 16 columns x 4 bytes); the A operand
 * is one block's values of 16 activation rows, from a copy of the
 * activations laid out tile by tile. One call of amx_tile produces 16 rows x
 * 16 outputs with its 16 accumulators in zmm registers.
 *
 * Why it is not much faster than VNNI here: per 32-value block a tile
 * product (about 7 ns) needs two tile loads (3.4 ns each) and a tile store
 * (6 ns) for the rescaling, measured on the machine this was written on;
 * the per-block scales of the GGUF formats, kept exact, cost more than the
 * products. */
#include "quant/quant_impl.h"

#include <immintrin.h>
#include <string.h>
#include <time.h>

#define AMX_M 16 /* activation rows per tile */
#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* The 64-byte LDTILECFG operand (palette 1). */
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} __attribute__((aligned(64))) tile_config;

/* Tiles 0-3: int32 sums (16 x 16); 4-5: activations (16 rows x blk_len
 * bytes); 6-7: weights (blk_len/4 rows x 64 bytes). */
static void configure_tiles(int blk_len) {
    tile_config c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int t = 0; t < 4; t++) { c.rows[t] = AMX_M; c.colsb[t] = 64; }
    for (int t = 4; t < 6; t++) { c.rows[t] = AMX_M; c.colsb[t] = (uint16_t)blk_len; }
    for (int t = 6; t < 8; t++) { c.rows[t] = (uint8_t)(blk_len / 4); c.colsb[t] = 64; }
    _tile_loadconfig(&c);
}

/* The activations of one call, copied tile by tile so that every tile load
 * and every scale read of the kernel is one contiguous run: for each chunk
 * of 16 rows and each scale block, the block's values of the 16 rows
 * (16 x blk_len bytes), and d, s, correction of the 16 rows. Made by each
 * thread for itself (a copy is cheap next to the products it feeds). */
typedef struct {
    int8_t *q;  /* [chunk][blk][16][blk_len] */
    float *dsc; /* [chunk][blk][3][16] */
} act_tiles;

static act_tiles tiles_make(const quant_packed *w, const quant_packed_act *a, int64_t n_chunks) {
    const int blk_len = w->blk_len;
    const int64_t n_blk = w->n_blk;
    size_t q_bytes = (size_t)(n_chunks * n_blk) * AMX_M * (size_t)blk_len;
    void *mem = quant_scratch(QS_KERNEL, q_bytes + (size_t)(n_chunks * n_blk) * 3 * AMX_M * sizeof(float) + 64);
    act_tiles t;
    t.q = (int8_t *)(((uintptr_t)mem + 63) & ~(uintptr_t)63);
    t.dsc = (float *)(t.q + q_bytes);
    for (int64_t c = 0; c < n_chunks; c++)
        for (int r = 0; r < AMX_M; r++) {
            int64_t m = c * AMX_M + r;
            const uint8_t *row = a->x + (size_t)m * a->row_bytes + a->sb_header;
            const float *dsc = a->dsc + (size_t)m * 3 * (size_t)n_blk;
            for (int64_t blk = 0; blk < n_blk; blk++) {
                const uint8_t *src = row + (size_t)(blk / a->blk_per_sb) * a->sb_bytes +
                                     (size_t)(blk % a->blk_per_sb) * (size_t)blk_len;
                size_t tile = (size_t)(c * n_blk + blk);
                memcpy(t.q + (tile * AMX_M + (size_t)r) * (size_t)blk_len, src, (size_t)blk_len);
                float *d = t.dsc + tile * 3 * AMX_M;
                d[r] = dsc[blk];
                d[AMX_M + r] = dsc[n_blk + blk];
                d[2 * AMX_M + r] = dsc[2 * n_blk + blk];
            }
        }
    return t;
}

/* acc[r] += one block's contribution for activation row r, from its
 * integer sums, as gemm_avx512 adds it: ws, wm the block's weight scales and
 * minimums of the group, dsc the block's activation d, s, correction of the
 * 16 rows. */
ALWAYS_INLINE void scale_block(bool has_min, const float *ws, const float *wm, const float *dsc,
                               const int32_t sums[AMX_M][16], __m512 acc[AMX_M]) {
    __m512 sw = _mm512_load_ps(ws), mw = has_min ? _mm512_load_ps(wm) : _mm512_setzero_ps();
#pragma GCC unroll 16
    for (int r = 0; r < AMX_M; r++) {
        __m512i is = _mm512_load_si512((const void *)sums[r]);
        if (!has_min) {
            int32_t corr;
            memcpy(&corr, dsc + 2 * AMX_M + r, sizeof corr);
            is = _mm512_sub_epi32(is, _mm512_set1_epi32(corr));
        }
        acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), _mm512_mul_ps(sw, _mm512_set1_ps(dsc[r])), acc[r]);
        if (has_min) acc[r] = _mm512_fmadd_ps(mw, _mm512_set1_ps(dsc[AMX_M + r]), acc[r]);
    }
}

/* Integer sums of one block into tile C, from activation tile TA and
 * weight tile TB. */
#define TILE_SUMS(C, TA, TB, A, B)                                                                        \
    do {                                                                                                  \
        _tile_zero(C);                                                                                    \
        _tile_loadd(TA, (A), blk_len);                                                                    \
        _tile_loadd(TB, (B), 64);                                                                         \
        _tile_dpbsud(C, TA, TB);                                                                          \
    } while (0)

/* Group g (16 outputs) for the 16 activation rows of chunk c, into y, with
 * the 16 accumulators in registers. The tile unit runs three blocks ahead
 * of the vector unit's scaling (a tile product takes longer than the
 * scaling of its result): block k's sums go to tile k % 4, its operands to
 * tiles 4 + k % 2 and 6 + k % 2. Sums are scaled one block after they are
 * stored, when the store has reached the cache (a load right behind a tile
 * store waits for it). */
ALWAYS_INLINE void amx_tile(const quant_packed *w, const act_tiles *t, int64_t g, int64_t c, bool has_min, float *y) {
    const int blk_len = w->blk_len;
    const int64_t n_blk = w->n_blk;
    const size_t a_step = AMX_M * (size_t)blk_len, b_step = (size_t)blk_len * 16;
    const int8_t *A = t->q + (size_t)(c * n_blk) * a_step;
    const uint8_t *B = w->q + (size_t)g * (size_t)n_blk * b_step;
    const float *ws = w->scale + (size_t)(g * n_blk) * QUANT_PACK_ROWS;
    const float *wm = w->min + (size_t)(g * n_blk) * QUANT_PACK_ROWS;
    const float *dsc = t->dsc + (size_t)(c * n_blk) * 3 * AMX_M;
    int32_t sums[2][AMX_M][16] __attribute__((aligned(64)));
    __m512 acc[AMX_M];
#pragma GCC unroll 16
    for (int r = 0; r < AMX_M; r++) acc[r] = _mm512_setzero_ps();
#define AHEAD(k, C, TA, TB)                                                                               \
    if ((k) < n_blk) TILE_SUMS(C, TA, TB, A + (size_t)(k) * a_step, B + (size_t)(k) * b_step)
#define BLOCK_SCALE(k)                                                                                    \
    scale_block(has_min, ws + (size_t)(k) * QUANT_PACK_ROWS, wm + (size_t)(k) * QUANT_PACK_ROWS,          \
                dsc + (size_t)(k) * 3 * AMX_M, sums[(k) & 1], acc)
#define SCALE(k, C, NEXT)                                                                                 \
    do {                                                                                                  \
        _tile_stored(C, sums[(k) & 1], 64);                                                               \
        NEXT;                                                                                             \
        if ((k) > 0) BLOCK_SCALE((k) - 1);                                                                \
        if ((k) + 1 == n_blk) {                                                                           \
            BLOCK_SCALE(k);                                                                               \
            goto done;                                                                                    \
        }                                                                                                 \
    } while (0)
    AHEAD(0, 0, 4, 6);
    AHEAD(1, 1, 5, 7);
    AHEAD(2, 2, 4, 6);
    for (int64_t k = 0;; k += 4) {
        SCALE(k, 0, AHEAD(k + 3, 3, 5, 7));
        SCALE(k + 1, 1, AHEAD(k + 4, 0, 4, 6));
        SCALE(k + 2, 2, AHEAD(k + 5, 1, 5, 7));
        SCALE(k + 3, 3, AHEAD(k + 6, 2, 4, 6));
    }
#undef AHEAD
#undef SCALE
#undef BLOCK_SCALE
done:;
    int64_t o0 = g * QUANT_PACK_ROWS, left = w->n_out - o0;
    __mmask16 keep = left >= QUANT_PACK_ROWS ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
#pragma GCC unroll 16
    for (int r = 0; r < AMX_M; r++)
        _mm512_mask_storeu_ps(y + (size_t)(c * AMX_M + r) * (size_t)w->n_out + o0, keep, acc[r]);
}

static void amx_tile_min(const quant_packed *w, const act_tiles *t, int64_t g, int64_t c, float *y) {
    amx_tile(w, t, g, c, true, y);
}
static void amx_tile_off(const quant_packed *w, const act_tiles *t, int64_t g, int64_t c, float *y) {
    amx_tile(w, t, g, c, false, y);
}

/* Activation rows past the last full 16 go to the VNNI kernel, and so do
 * formats with 16-value scale blocks (Q6_K): a tile product of K = 16 does a
 * quarter of a full one's work for the same tile traffic, and measured here
 * the VNNI kernel was as fast or faster on them. A group's weights stay in
 * cache while every 16-row chunk of the activations passes them. */
void quant_gemm_amx(const quant_packed *w, int64_t g0, int64_t g1, const quant_packed_act *a, int64_t n_batch,
                    float *y) {
    int64_t n_chunks = n_batch / AMX_M, full = n_chunks * AMX_M;
    if (full == 0 || w->blk_len < 32) {
        quant_gemm_avx512(w, g0, g1, a, n_batch, y);
        return;
    }
    act_tiles t = tiles_make(w, a, n_chunks);
    void (*tile)(const quant_packed *, const act_tiles *, int64_t, int64_t, float *) =
        w->has_min ? amx_tile_min : amx_tile_off;
    configure_tiles(w->blk_len);
    for (int64_t g = g0; g < g1; g++)
        for (int64_t c = 0; c < n_chunks; c++) tile(w, &t, g, c, y);
    _tile_release();
    if (full < n_batch) {
        quant_packed_act rest = *a;
        rest.x += (size_t)full * a->row_bytes;
        rest.dsc += (size_t)full * 3 * (size_t)w->n_blk;
        quant_gemm_avx512(w, g0, g1, &rest, n_batch - full, y + (size_t)full * (size_t)w->n_out);
    }
}

/* Multiply-adds per second one thread gets from TDPBSSD on full tiles
 * (16 x 16 x 64, four independent accumulators): the compute limit rys bench
 * compares the tile kernel with. */
double quant_gemm_peak_amx(int64_t iters) {
    tile_config c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int t = 0; t < 8; t++) { c.rows[t] = 16; c.colsb[t] = 64; }
    _tile_loadconfig(&c);
    static const int8_t ones[16 * 64] __attribute__((aligned(64))) = {1};
    _tile_loadd(4, ones, 64);
    _tile_loadd(5, ones, 64);
    _tile_loadd(6, ones, 64);
    _tile_loadd(7, ones, 64);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    iters /= 16;
    if (iters < 1) iters = 1;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int64_t it = 0; it < iters; it++) {
        _tile_dpbssd(0, 4, 6);
        _tile_dpbssd(1, 4, 7);
        _tile_dpbssd(2, 5, 6);
        _tile_dpbssd(3, 5, 7);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    static int32_t sink[16 * 16] __attribute__((aligned(64)));
    _tile_stored(0, sink, 64);
    _tile_release();
    double dt = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    return (double)iters * 4 * 16 * 16 * 64 / dt;
}
