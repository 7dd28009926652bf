/* quant: tensor element formats (one file per format family) and the matrix
 * products the forward pass runs on them.
 *
 * Type ids are ggml's, because they are what GGUF files store. Each format
 * has: its block layout (declared once, in its own file), a reference
 * dequantizer, and dot-product kernels per ISA family chosen at run time.
 * Matrix products quantize the activations once per call into the 8-bit
 * format the weight type pairs with (32-element blocks for the legacy
 * formats, Q8_K for k-quants), as llama.cpp does, so results agree with it
 * to within activation-quantization rounding; F32/F16/BF16 weights multiply
 * f32 activations directly. */
#ifndef RYS_QUANT_H
#define RYS_QUANT_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

struct pool;

enum quant_type {
    QT_F32 = 0, QT_F16 = 1, QT_Q4_0 = 2, QT_Q4_1 = 3, QT_Q5_0 = 6, QT_Q5_1 = 7,
    QT_Q8_0 = 8, QT_Q8_1 = 9, QT_Q2_K = 10, QT_Q3_K = 11, QT_Q4_K = 12, QT_Q5_K = 13,
    QT_Q6_K = 14, QT_Q8_K = 15, QT_BF16 = 30, QT_COUNT = 40
};

typedef struct {
    const char *name;       /* "Q4_K" */
    int block_size;         /* elements per block */
    size_t type_size;       /* bytes per block */
    bool supported;         /* rys can compute with it */
} quant_info;

/* Info for a ggml type id; NULL for ids rys does not know at all. */
const quant_info *quant_get_info(uint32_t type);
/* Bytes of a row of n elements; 0 if n is not a multiple of the block size
 * or the type is unknown. */
size_t quant_row_size(uint32_t type, int64_t n);

/* Reference dequantization of n elements (n multiple of the block size).
 * Returns 0, or -1 with the error set for a type rys cannot decode or a bad n. */
int quant_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n);

/* Multiplies the n values of a row (n a multiple of the block size) by a, in
 * place, as the format can hold it: F32 value by value, F16 and BF16 value by
 * value rounded back to the format, block formats through their fp16 block
 * scales and minimums (d and m, or d and dmin), each rounded to fp16 with the
 * quantized values untouched. Exact (the product's bits) when a is a power of
 * two and no scale leaves fp16's normal range. 0, or -1 with the error set for
 * a type rys does not compute with. */
int quant_scale_row(uint32_t type, void *row, int64_t n, float a);

/* A weight matrix W with n_out rows of n_in elements, row-major, rows in the
 * given type. */
typedef struct {
    uint32_t type;
    int64_t n_in, n_out;
    const void *data;
} quant_matrix;

/* y[b*n_out + o] = sum_k W[o][k] * x[b*n_in + k], for b < n_batch.
 * Threads over the output rows with the pool (NULL = single-threaded); the
 * caller's thread quantizes the activations into a per-thread scratch buffer
 * that grows and is reused, so steady-state calls do not allocate. Calls from
 * different threads may run at once. Returns 0, or -1 with the error set for
 * an unsupported type or n_in not a multiple of the block size. */
int quant_matmul(const quant_matrix *w, const float *x, int64_t n_batch, float *y, struct pool *pool);

/* y[i] = w[i] x for i < n (at most QUANT_MANY_MAX): products of one activation
 * batch with several matrices of the same n_in (a layer's Q, K and V; gate and
 * up). Each y[i] gets exactly what quant_matmul(w[i], ...) gives; the
 * activations are quantized once per format and all products share one pool
 * job, so the small ones do not each pay a round of thread wake-ups. */
#define QUANT_MANY_MAX 4
int quant_matmul_many(const quant_matrix *const *w, int n, const float *x, int64_t n_batch, float *const *y,
                      struct pool *pool);

/* Attention over the fp16 KV cache for query heads that share one K/V head
 * (grouped-query attention), rows of n values `stride` elements apart, with
 * the active family's kernels. Each K/V row is read and converted once for
 * all queries; every (query, row) still gets the bits of its path's one-row
 * loop, whatever the number of queries and rows (the tests hold each path
 * to that). */
/* s[h*s_stride + j] = scale * sum_i k[j*stride + i] * q[h][i], for query
 * vectors h < n_q (the heads of a group, of several tokens), j < n_rows. */
void quant_attn_scores_f16(float *s, size_t s_stride, const float *const *q, int n_q, const uint16_t *k, size_t stride,
                           int64_t n_rows, int64_t n, float scale);
/* y[h*y_stride + i] += sum_j p[h*p_stride + j] * v[j*stride + i], each y
 * element taking rows j = 0, 1, ... in order. */
void quant_attn_accum_f16(float *y, size_t y_stride, const float *p, size_t p_stride, int n_heads, const uint16_t *v,
                          size_t stride, int64_t n_rows, int64_t n);
/* x[i] = x[i] rounded to fp16 (round to nearest even), in place: every path
 * gives quant_fp16_round's bits. */
void quant_fp16_round_n(float *x, int64_t n);
/* x[i] = expf(x[i]) in place, the C library's bits on every path (a
 * family's vector kernel is used only where a check at first use finds
 * those bits). */
void quant_expf_n(float *x, int64_t n);
/* h[i] = quant_f32_to_fp16(x[i]) on every path (NaN payloads aside). */
void quant_f32_to_fp16_n(const float *x, uint16_t *h, int64_t n);

/* Multiply-adds per second one thread of the active path's matrix kernel
 * can reach at most, measured now (about 0.1 s); 0 if the path has none. */
double quant_peak_macs(void);

/* Drop what quant_matmul derived from weights in [data, data+size) (their
 * packed copies); call it before that memory is freed or unmapped. */
void quant_release(const void *data, size_t size);
/* Keeps the packed and interleaved copies of the matrices inside [base,
 * base + size) (a model file's mapping) in the file at path: copies found
 * there (same layout, offset, shape and sampled bytes) are used from it, and
 * quant_release of the range writes the file again, whole, atomically, when
 * the run made copies it lacked. A missing, stale or damaged file costs only
 * the building; a file that cannot be written is left as it was. */
void quant_cache_file(const void *base, size_t size, const char *path);
/* The copies of base's registered range read from its file and made anew so far. */
void quant_cache_file_counts(const void *base, size_t *loaded, size_t *made);

/* Kernel families, best last. quant_cpu_path() is the one in use: the best
 * one rys has kernels for and the CPU supports, or the one forced by
 * RYS_CPU=portable|avx2|avx512|amx (forcing one the CPU lacks, or one rys has
 * no kernels for, is an error reported by quant_init; never a silent
 * fallback). Without quant_init, the first matmul chooses as it would. */
enum quant_path { QP_PORTABLE = 0, QP_AVX2 = 1, QP_AVX512 = 2, QP_AMX = 3 };
/* Detect CPU features and choose the path; 0 on success, -1 with error. */
int quant_init(void);
enum quant_path quant_cpu_path(void);
const char *quant_path_name(enum quant_path p);
/* Force a path (tests); returns -1 with the error set if the CPU lacks it
 * or rys has no kernels for it. */
int quant_set_path(enum quant_path p);
/* The CPU and OS support the ISA extensions of path p. */
bool quant_cpu_supports(enum quant_path p);
/* rys has kernels for path p and this CPU can run them. */
bool quant_path_available(enum quant_path p);

/* fp16 / bf16 conversions (portable). */
float quant_fp16_to_f32(uint16_t h);
uint16_t quant_f32_to_fp16(float f);
/* f rounded to the nearest fp16 value (ties to even), back in f32. */
static inline float quant_fp16_round(float f) { return quant_fp16_to_f32(quant_f32_to_fp16(f)); }
float quant_bf16_to_f32(uint16_t h);
uint16_t quant_f32_to_bf16(float f);

#endif
