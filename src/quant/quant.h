/* quant: tensor element formats (one file per format family) and the matrix
 * products the forward pass runs on them.
 *
 * Type ids are ggml's, because they are what GGUF files store. Each format
 * has: its block layout (declared once, in its own file), a reference
 * dequantizer, and dot-product kernels per ISA family chosen at run time.
 * Matrix products quantize the activations once per call into the format the
 * weight type pairs with (Q8_0 for the legacy formats, Q8_K for k-quants), as
 * llama.cpp does, so results agree with it to float rounding. */
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

/* Reference dequantization of n elements (n multiple of the block size). */
void quant_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n);

/* A weight matrix W with n_out rows of n_in elements, row-major, rows in the
 * given type. */
typedef struct {
    uint32_t type;
    int64_t n_in, n_out;
    const void *data;
} quant_matrix;

/* y[b*n_out + o] = sum_k W[o][k] * x[b*n_in + k], for b < n_batch.
 * Threads over the pool (NULL = single-threaded). */
void quant_matmul(const quant_matrix *w, const float *x, int64_t n_batch, float *y, struct pool *pool);

/* Kernel families, best last. quant_cpu_path() is the one in use: the best
 * the CPU supports, or the one forced by RYS_CPU=portable|avx2|avx512|amx
 * (forcing one the CPU lacks is an error reported by quant_init). */
enum quant_path { QP_PORTABLE = 0, QP_AVX2 = 1, QP_AVX512 = 2, QP_AMX = 3 };
/* Detect CPU features and choose the path; 0 on success, -1 with error. */
int quant_init(void);
enum quant_path quant_cpu_path(void);
const char *quant_path_name(enum quant_path p);
/* Force a path (tests); returns -1 if the CPU lacks it. */
int quant_set_path(enum quant_path p);

/* fp16 / bf16 conversions (portable). */
float quant_fp16_to_f32(uint16_t h);
uint16_t quant_f32_to_fp16(float f);
float quant_bf16_to_f32(uint16_t h);
uint16_t quant_f32_to_bf16(float f);

#endif
