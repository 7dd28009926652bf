/* quant_impl: what the format files, the ISA kernels (src/kernels/dot_*.c),
 * dispatch and the matrix driver share inside the quant module. Nothing
 * outside src/quant and src/kernels includes it.
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
/* The same for nx (1..QUANT_COLS) activation rows x + c*x_stride at once,
 * into out[c]: each weight block is decoded once and used nx times, which is
 * what makes batched products (prompts) cheaper per row than decode. */
#define QUANT_COLS 4
typedef void (*quant_dot_cols_fn)(int64_t n, const void *w, const void *x, size_t x_stride, int nx, float *out);

/* The activation format a weight type is multiplied with. */
enum quant_act { QA_NONE = 0, QA_F32, QA_Q8A, QA_Q8K };

/* One kernel family: a dot kernel per weight type (NULL: not computable),
 * and optionally a multi-column one (NULL: the driver loops over dot). */
typedef struct {
    enum quant_path path;
    quant_dot_fn dot[QT_COUNT];
    quant_dot_cols_fn dot_cols[QT_COUNT];
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

/* kquants.c: Q4_K, Q5_K, Q6_K weights with Q8_K activations. */
void quant_dequant_q4_K(const void *src, float *dst, int64_t n);
void quant_dequant_q5_K(const void *src, float *dst, int64_t n);
void quant_dequant_q6_K(const void *src, float *dst, int64_t n);
void quant_dequant_q8_K(const void *src, float *dst, int64_t n);
void quant_act_q8_K(const float *x, void *dst, int64_t n);
float quant_dot_q4_K_portable(int64_t n, const void *w, const void *x);
float quant_dot_q5_K_portable(int64_t n, const void *w, const void *x);
float quant_dot_q6_K_portable(int64_t n, const void *w, const void *x);

/* src/kernels/dot_avx2.c: the same dot products with AVX2 + FMA + F16C. */
float quant_dot_f32_avx2(int64_t n, const void *w, const void *x);
float quant_dot_f16_avx2(int64_t n, const void *w, const void *x);
float quant_dot_bf16_avx2(int64_t n, const void *w, const void *x);
float quant_dot_q4_0_avx2(int64_t n, const void *w, const void *x);
float quant_dot_q4_1_avx2(int64_t n, const void *w, const void *x);
float quant_dot_q5_0_avx2(int64_t n, const void *w, const void *x);
float quant_dot_q5_1_avx2(int64_t n, const void *w, const void *x);
float quant_dot_q8_0_avx2(int64_t n, const void *w, const void *x);
float quant_dot_q4_K_avx2(int64_t n, const void *w, const void *x);
float quant_dot_q5_K_avx2(int64_t n, const void *w, const void *x);
float quant_dot_q6_K_avx2(int64_t n, const void *w, const void *x);
void quant_dot_cols_q4_0_avx2(int64_t n, const void *w, const void *x, size_t x_stride, int nx, float *out);
void quant_dot_cols_q4_1_avx2(int64_t n, const void *w, const void *x, size_t x_stride, int nx, float *out);
void quant_dot_cols_q5_0_avx2(int64_t n, const void *w, const void *x, size_t x_stride, int nx, float *out);
void quant_dot_cols_q5_1_avx2(int64_t n, const void *w, const void *x, size_t x_stride, int nx, float *out);
void quant_dot_cols_q8_0_avx2(int64_t n, const void *w, const void *x, size_t x_stride, int nx, float *out);
void quant_dot_cols_q4_K_avx2(int64_t n, const void *w, const void *x, size_t x_stride, int nx, float *out);
void quant_dot_cols_q5_K_avx2(int64_t n, const void *w, const void *x, size_t x_stride, int nx, float *out);
void quant_dot_cols_q6_K_avx2(int64_t n, const void *w, const void *x, size_t x_stride, int nx, float *out);

#endif
